"""Scoring: parse raw outputs per item, then metrics per task kind (scikit-learn)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slmbench.scoring.classification import classification_metrics, most_confused
from slmbench.scoring.extraction import exact_match, extraction_metrics
from slmbench.scoring.parsing import INVALID, label_matcher, parse_json_object, parse_label

__all__ = [
    "INVALID", "classification_metrics", "exact_match", "extraction_metrics", "label_matcher",
    "most_confused", "parse_json_object", "parse_label", "routing_metrics", "task_metrics",
]

ERROR = "<error>"


def routing_metrics(gold: Sequence[str], routed: Sequence[str], routes: Sequence[str],
                    fallback: str, *, seed: int = 0) -> dict[str, Any]:
    """Route accuracy, plus how often the fallback was taken and accuracy if it counts as a miss."""
    out = classification_metrics(gold, routed, routes, seed=seed)
    out.update(fallback_figures(
        len(gold), sum(r == fallback for r in routed),
        sum(g == r and r != fallback for g, r in zip(gold, routed, strict=True))))
    return out


def fallback_figures(n: int, n_fallback: int, n_correct_not_fallback: int) -> dict[str, Any]:
    """How often the fallback route was taken, and route accuracy when it counts as a miss."""
    return {"fallback_rate": n_fallback / n if n else None,
            "accuracy_fallback_as_miss": n_correct_not_fallback / n if n else None}


def outcome_counts(n: int, n_errors: int, n_invalid: int, n_correct: int) -> dict[str, Any]:
    """The error / invalid / correct counts every task kind's summary carries."""
    return {"n_errors": n_errors, "n_invalid": n_invalid,
            "invalid_rate": n_invalid / n if n else None, "n_correct": n_correct}


def predicted_label(kind: str, row: dict[str, Any]) -> str:
    """What a classification or routing row predicted, as scored: a failed call is
    :data:`ERROR`, an invalid answer :data:`INVALID` (a routing row's is its fallback route)."""
    if row.get("error"):
        return ERROR
    if kind == "routing":
        return row.get("routed") or ERROR
    return row["answer"] if row.get("answer") is not None else INVALID


def coded_task_metrics(kind: str, gold: Any, pred: Any, strings: Sequence[str], *,
                       n_errors: int, n_invalid: int, n_correct: int,
                       labels: Sequence[str] = (), fallback: str | None = None,
                       seed: int = 0) -> dict[str, Any]:
    """:func:`task_metrics` of a classification or routing task from a columnar read:
    ``gold`` and ``pred`` are int arrays of codes into ``strings`` (one vocabulary, each string
    once, so equal codes are equal strings; ``pred`` as :func:`predicted_label` gives it), the
    counts are those of the rows' ``error``, ``invalid`` and ``correct`` flags."""
    import numpy as np

    from slmbench.scoring.classification import coded_classification_metrics, label_index

    labels = list(labels)
    index = label_index(labels)
    lut = np.fromiter((index.get(s, -1) for s in strings), dtype=np.int64, count=len(strings))
    hit = gold == pred
    out = coded_classification_metrics(lut[gold], lut[pred], int(np.count_nonzero(hit)), labels,
                                       seed=seed)
    n = len(gold)
    if kind == "routing":
        fb = next((i for i, s in enumerate(strings) if s == (fallback or "")), -1)
        is_fb = pred == fb
        out.update(fallback_figures(n, int(np.count_nonzero(is_fb)),
                                    int(np.count_nonzero(hit & ~is_fb))))
    out.update(outcome_counts(n, n_errors, n_invalid, n_correct))
    return out


def task_metrics(kind: str, rows: Sequence[dict[str, Any]], *, labels: Sequence[str] = (),
                 fields: Sequence[Any] = (), fallback: str | None = None,
                 seed: int = 0) -> dict[str, Any]:
    """Metrics for one task × model from stored result rows only."""
    gold = [r["gold"] for r in rows]
    if kind == "chain":
        from slmbench.scoring.chain import chain_metrics

        out = chain_metrics(gold, [None if r.get("error") else r.get("answer") for r in rows],
                            labels, fields, seed=seed)
    elif kind == "extraction":
        pred = [None if r.get("error") else r.get("answer") for r in rows]
        out = extraction_metrics(gold, pred, fields, seed=seed)
    else:
        pred = [predicted_label(kind, r) for r in rows]
        if kind == "routing":
            out = routing_metrics(gold, pred, labels, fallback or "", seed=seed)
        else:
            out = classification_metrics(gold, pred, labels, seed=seed)
    out.update(outcome_counts(len(rows), sum(bool(r.get("error")) for r in rows),
                              sum(bool(r.get("invalid")) for r in rows),
                              sum(bool(r.get("correct")) for r in rows)))
    return out
