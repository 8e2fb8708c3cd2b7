"""Calibrating a trained baseline's probabilities (``?calibrate=NAME``).

A cascade sends an item on when the first model's confidence is below a threshold; the
threshold means the same thing across models only if a confidence of 0.9 is right about 90 % of
the time for each of them. Every method here learns its mapping from cross-validated
predictions on the train split (never the scored items), with folds at most the rarest label's
count, and serves one classifier fitted on the whole train split (scikit-learn's
``ensemble=False``): answering then costs one classifier's pass, not one per fold.

* ``temperature`` -- one number T for all classes: probabilities are ``softmax(logits / T)``,
  T chosen to minimise the cross-validated log-loss. The answer never changes (argmax is kept),
  so accuracy is the plain model's; only how sure it says it is moves. The usual choice for
  many labels.
* ``isotonic`` / ``sigmoid`` -- scikit-learn's ``CalibratedClassifierCV``: one-vs-rest maps per
  class, then renormalised. More freedom, but with many labels the renormalisation can leave
  the result worse calibrated than before, and the answer may change.

A new method is one entry in :data:`CALIBRATORS`. Heavy libraries are imported lazily.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from slmbench.errors import InputError

if TYPE_CHECKING:
    from slmbench.tasks.loading import LoadedTask


def folds_for(labels: Sequence[str], task: LoadedTask) -> int:
    """Each fold must hold every label: at most the rarest label's count, at most 5."""
    counts = Counter(labels)
    folds = min(5, min(counts.values()))
    if folds < 2:
        rare = min(counts.items(), key=lambda kv: kv[1])[0]
        raise InputError("calibrate needs at least 2 train items of every label",
                         file=task.spec.path, field="dataset.train_split", value=rare)
    return folds


def _sklearn(method: str) -> Callable[[Any, int], Any]:
    def make(clf: Any, folds: int) -> Any:
        from sklearn.calibration import CalibratedClassifierCV

        return CalibratedClassifierCV(clf, method=method, cv=folds, ensemble=False)

    return make


def temperature_scaled(clf: Any, folds: int) -> Any:
    """``clf`` with its probabilities ``softmax(decision_function / T)``; T fitted on
    cross-validated decision values of the train split (a scikit-learn classifier)."""
    return _temperature_class()(clf=clf, folds=folds)


_CLASS: Any = None


def _temperature_class() -> Any:
    """The estimator class, defined on first use: scikit-learn is imported only then."""
    global _CLASS
    if _CLASS is not None:
        return _CLASS
    import numpy as np
    from sklearn.base import BaseEstimator, ClassifierMixin, clone

    def logits_of(scores: Any) -> Any:
        scores = np.asarray(scores, dtype=np.float64)
        if scores.ndim == 1:  # two classes: the decision value is the second's log-odds
            scores = np.column_stack([np.zeros_like(scores), scores])
        return scores

    def softmax(logits: Any, t: float) -> Any:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        e = np.exp(z)
        return e / e.sum(axis=1, keepdims=True)

    class TemperatureScaled(ClassifierMixin, BaseEstimator):
        def __init__(self, clf: Any = None, folds: int = 5) -> None:
            self.clf = clf
            self.folds = folds

        def fit(self, x: Any, y: Sequence[str]) -> TemperatureScaled:
            from scipy.optimize import minimize_scalar
            from sklearn.model_selection import StratifiedKFold, cross_val_predict

            cv = StratifiedKFold(n_splits=self.folds, shuffle=True, random_state=0)
            logits = logits_of(cross_val_predict(clone(self.clf), x, y, cv=cv,
                                                 method="decision_function"))
            self.clf_ = clone(self.clf).fit(x, y)
            self.classes_ = self.clf_.classes_
            index = {c: i for i, c in enumerate(self.classes_)}
            gold = np.array([index[v] for v in y])
            rows = np.arange(len(gold))

            def nll(log_t: float) -> float:
                p = softmax(logits, float(np.exp(log_t)))
                return float(-np.log(np.clip(p[rows, gold], 1e-12, None)).mean())

            best = minimize_scalar(nll, bounds=(-4.0, 4.0), method="bounded")
            self.temperature_ = float(np.exp(best.x))
            return self

        def predict_proba(self, x: Any) -> Any:
            return softmax(logits_of(self.clf_.decision_function(x)), self.temperature_)

        def predict(self, x: Any) -> Any:
            return self.classes_[self.predict_proba(x).argmax(axis=1)]

    _CLASS = TemperatureScaled
    return _CLASS


#: calibrate= name → builds the calibrated classifier from (classifier, folds)
CALIBRATORS: dict[str, Callable[[Any, int], Any]] = {
    "temperature": temperature_scaled,
    "isotonic": _sklearn("isotonic"),
    "sigmoid": _sklearn("sigmoid"),
}


def calibrated(clf: Any, method: str, labels: Sequence[str], task: LoadedTask) -> Any:
    """``clf`` wrapped so that its probabilities are calibrated by ``method``."""
    return CALIBRATORS[method](clf, folds_for(labels, task))
