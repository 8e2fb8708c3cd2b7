"""TF-IDF (word 1-2 grams + char 2-5 grams) + logistic regression, trained on the train split.

This is the "task-specific small model" of the routing articles: it needs labelled data but no
GPU and costs a fraction of a millisecond per item. Its confidence is the predicted probability
of the chosen class.

``features=word`` drops the char n-grams: a cheaper, slightly less accurate classifier, which
makes an honest small → large cascade pair with the default one. Settings that differ from the
defaults are part of the model's name, so both can sit in one run.
"""

from __future__ import annotations

import time
from typing import Any

from slmbench.errors import InputError
from slmbench.models.base import PRICING_HOURLY, Completion, Model, Request

DEFAULT_SETTINGS: dict[str, Any] = {"C": 10.0, "max_iter": 2000, "seed": 0,
                                     "features": "word+char"}
FEATURES = ("word+char", "word", "char")


def create(settings: dict[str, Any]) -> TfidfLogReg:
    unknown = set(settings) - set(DEFAULT_SETTINGS)
    if unknown:
        key = sorted(unknown)[0]
        raise InputError(f"unknown setting for baseline:tfidf-logreg "
                         f"(known: {', '.join(DEFAULT_SETTINGS)})",
                         field="--model", value=f"{key}={settings[key]}")
    if settings.get("features", "word+char") not in FEATURES:
        raise InputError(f"features must be one of {', '.join(FEATURES)}", field="--model",
                         value=f"features={settings['features']}")
    changed = sorted((k, v) for k, v in settings.items() if DEFAULT_SETTINGS[k] != v)
    name = "baseline:tfidf-logreg" + ("?" + "&".join(f"{k}={v}" for k, v in changed)
                                      if changed else "")
    return TfidfLogReg(name, {**DEFAULT_SETTINGS, **settings})


class TfidfLogReg(Model):
    pricing = PRICING_HOURLY
    cacheable = False  # answers depend on the train split, and cost microseconds anyway

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        super().__init__(name, settings)
        self._pipeline: Any = None
        self._task_name: str | None = None

    def supports(self, kind: str) -> bool:
        return kind in ("classification", "routing")

    def prepare(self, task: Any) -> None:
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import FeatureUnion, make_pipeline

        if not task.train:
            raise InputError("baseline:tfidf-logreg needs a train split (dataset.train_split)",
                             file=task.spec.path, field="dataset.train_split", value=None)
        texts = [it.text for it in task.train]
        labels = [it.gold for it in task.train]
        if len(set(labels)) < 2:
            raise InputError("train split needs at least two distinct labels",
                             file=task.spec.path, field="dataset.train_split",
                             value=task.spec.dataset.train_split)
        parts = {
            "word": TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
            "char": TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        }
        wanted = self.settings["features"].split("+")
        features = FeatureUnion([(k, parts[k]) for k in wanted])
        clf = LogisticRegression(C=self.settings["C"], max_iter=self.settings["max_iter"],
                                 random_state=self.settings["seed"])
        start = time.perf_counter()
        self._pipeline = make_pipeline(features, clf).fit(texts, labels)
        self.train_seconds = time.perf_counter() - start
        self._task_name = task.spec.name

    def complete(self, request: Request) -> Completion:
        start = time.perf_counter()
        proba = self._pipeline.predict_proba([request.text])[0]
        best = int(proba.argmax())
        label = str(self._pipeline.classes_[best])
        return Completion(text=label, latency_s=time.perf_counter() - start,
                          confidence=float(proba[best]), confidence_source="classifier-proba")
