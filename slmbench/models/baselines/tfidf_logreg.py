"""TF-IDF (word 1-2 grams + char 2-5 grams) + logistic regression, trained on the train split.

This is the "task-specific small model" of the routing articles: it needs labelled data but no
GPU and costs a fraction of a millisecond per item. Its confidence is the predicted probability
of the chosen class.

The features are the baseline's; what is learnt from them is the task kind's
(``TaskKind.fit_classifier``): one label per item by default, so a kind that answers otherwise
(several labels per item) brings its own classifier, and the kinds that set
``trains_classifier`` are the ones this baseline runs on.

``features=word`` drops the char n-grams: a cheaper, slightly less accurate classifier, which
makes an honest small → large cascade pair with the default one. ``calibrate=temperature|
isotonic|sigmoid`` calibrates its probabilities by cross-validation on the train split
(tasks/kinds/calibration.py; compare the ECE of both).
Settings that differ from the defaults are part of the model's name, so both can sit in one
run.
"""

from __future__ import annotations

import time
from typing import Any

from slmbench.errors import InputError
from slmbench.models.base import PRICING_HOURLY, Completion, Model, Request
from slmbench.models.baselines._settings import (
    check_baseline_settings,
    check_calibration,
    timed_prediction,
)

DEFAULT_SETTINGS: dict[str, Any] = {"C": 10.0, "max_iter": 2000, "seed": 0,
                                     "features": "word+char"}
FEATURES = ("word+char", "word", "char")


#: settings taken only when given (a run stored without them resumes unchanged)
OPTIONAL_SETTINGS = ("calibrate",)


def create(settings: dict[str, Any]) -> TfidfLogReg:
    check_baseline_settings("tfidf-logreg", settings, DEFAULT_SETTINGS, OPTIONAL_SETTINGS)
    if settings.get("features", "word+char") not in FEATURES:
        raise InputError(f"features must be one of {', '.join(FEATURES)}", field="--model",
                         value=f"features={settings['features']}")
    changed = sorted((k, v) for k, v in settings.items() if DEFAULT_SETTINGS.get(k) != v)
    name = "baseline:tfidf-logreg" + ("?" + "&".join(f"{k}={v}" for k, v in changed)
                                      if changed else "")
    return TfidfLogReg(name, {**DEFAULT_SETTINGS, **settings})


class TfidfLogReg(Model):
    pricing = PRICING_HOURLY
    cacheable = False  # answers depend on the train split, and cost microseconds anyway
    prompted = False

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        super().__init__(name, settings)
        self._predict: Any = None  # text → (answer text, confidence)
        self._task_name: str | None = None

    def supports(self, kind: str) -> bool:
        from slmbench.tasks.kinds import find_kind

        found = find_kind(kind)
        return found is not None and found.trains_classifier

    def prepare(self, task: Any) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.pipeline import FeatureUnion

        from slmbench.tasks.kinds import get_kind

        if not task.train:
            raise InputError("baseline:tfidf-logreg needs a train split (dataset.train_split)",
                             file=task.spec.path, field="dataset.train_split", value=None)
        parts = {
            "word": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            "char": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        }
        check_calibration(task, self.settings)
        wanted = self.settings["features"].split("+")
        features = FeatureUnion([(k, parts[k]) for k in wanted])
        start, cpu = time.perf_counter(), time.process_time()
        self._predict = get_kind(task.spec.kind).fit_classifier(task, features, self.settings)
        # one-off setup, stored in the pair's timing and priced apart from the items
        self.setup_s = time.perf_counter() - start
        self.setup_cpu_s = time.process_time() - cpu
        self._task_name = task.spec.name

    def complete(self, request: Request) -> Completion:
        return timed_prediction(self._predict, request.text)
