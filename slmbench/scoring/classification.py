"""Classification and routing metrics with scikit-learn.

Invalid answers and failed calls stay in the denominator (they are wrong answers a user would
have received), but they are not classes: F1 is averaged over the task's label set only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slmbench.scoring.bootstrap import count_bootstrap_ci


def label_index(labels: Sequence[str]) -> dict[str, int]:
    """A label's int code (its position in the task's label set); strings that are not labels
    (an invalid answer, a failed call) have none and are coded -1 by the callers."""
    return {lab: i for i, lab in enumerate(labels)}


def classification_metrics(gold: Sequence[str], pred: Sequence[str], labels: Sequence[str],
                           *, seed: int = 0) -> dict[str, Any]:
    import numpy as np

    labels = list(labels)
    n = len(gold)
    # sklearn is slow on object arrays of strings: code labels as ints (-1: not a label, e.g.
    # an invalid answer or a failed call), which gives identical figures many times faster.
    index = label_index(labels)
    y_true = np.fromiter((index.get(g, -1) for g in gold), dtype=np.int64, count=n)
    y_pred = np.fromiter((index.get(p, -1) for p in pred), dtype=np.int64, count=n)
    n_correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    return coded_classification_metrics(y_true, y_pred, n_correct, labels, seed=seed)


def coded_classification_metrics(y_true: Any, y_pred: Any, n_correct: int,
                                 labels: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """:func:`classification_metrics` from int-coded arrays (:func:`label_index`, -1 for
    anything that is not a label) and the number of items whose answer equals the gold
    string: the form a columnar read of a million rows has, without a string per item.

    Stored runs only hold gold labels of the label set (task loading refuses others, and
    :func:`~slmbench.analysis.summary.check_rows` refuses rows that do not), but the figures are
    defined whatever the codes: a gold that is not a label is a miss, and F1 is taken over the
    labels given with ``zero_division=0`` (sklearn's ``confusion_matrix`` refuses a sample
    without any gold label, so the matrix is counted here)."""
    import numpy as np
    from sklearn.metrics import f1_score, precision_recall_fscore_support

    labels = list(labels)
    n = len(y_true)
    if n == 0:
        return {"n": 0, "accuracy": None, "accuracy_ci": None, "macro_f1": None,
                "weighted_f1": None, "per_class": {}, "confusion": {"labels": labels,
                                                                     "matrix": []}}
    codes = list(range(len(labels)))
    seen = set(np.unique(y_true).tolist()) | set(np.unique(y_pred).tolist())
    present = [i for i in codes if i in seen]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=codes, average=None,
                                                 zero_division=0)
    per_class = {
        lab: {"precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]),
              "support": int(s[i])}
        for i, lab in enumerate(labels)
    }
    return {
        "n": n,
        "accuracy": n_correct / n,
        "accuracy_ci": count_bootstrap_ci(n_correct, n, seed=seed),
        # macro over the labels that occur in gold or predictions: a label absent from both
        # carries no evidence and would drag the mean to 0 on small samples.
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro",
                                   zero_division=0)) if present else 0.0,
        "weighted_f1": float(f1_score(y_true, y_pred, labels=codes, average="weighted",
                                      zero_division=0)),
        "per_class": per_class,
        "confusion": {"labels": labels, "matrix": _confusion(y_true, y_pred, len(labels))},
    }


def _confusion(y_true: Any, y_pred: Any, k: int) -> list[list[int]]:
    """sklearn's ``confusion_matrix(y_true, y_pred, labels=range(k))``: rows gold, columns
    predicted, samples whose gold or prediction is not a label (-1) left out."""
    import numpy as np

    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    both = (y_true >= 0) & (y_pred >= 0)
    cells = np.bincount(y_true[both] * k + y_pred[both], minlength=k * k)
    return cells.reshape(k, k).tolist()


def most_confused(confusion: dict[str, Any], top: int = 5) -> list[tuple[str, str, int]]:
    """(gold, predicted, count) for the largest off-diagonal cells."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    cells = [(labels[i], labels[j], c) for i, row in enumerate(matrix)
             for j, c in enumerate(row) if i != j and c > 0]
    return sorted(cells, key=lambda t: (-t[2], t[0], t[1]))[:top]
