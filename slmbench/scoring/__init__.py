"""Scoring: parse raw outputs per item, then metrics per task kind (scikit-learn).

What is kind-specific is chosen by the task's kind object (:mod:`slmbench.tasks.kinds`); the
functions here are the figures every kind shares and the entry points the summary calls.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slmbench.records import ERROR, INVALID
from slmbench.scoring.classification import classification_metrics, most_confused
from slmbench.scoring.extraction import exact_match, extraction_metrics
from slmbench.scoring.parsing import label_matcher, parse_json_object, parse_label

__all__ = [
    "ERROR", "INVALID", "classification_metrics", "exact_match", "extraction_metrics",
    "label_matcher", "most_confused", "parse_json_object", "parse_label", "routing_metrics",
    "task_metrics",
]


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
    """What a label row (a kind with a columnar layout) predicted, as scored: a failed call is
    :data:`ERROR`, an invalid answer :data:`INVALID` (a routing row's is its fallback route)."""
    from slmbench.tasks.kinds import get_kind

    return get_kind(kind).predicted_label(row)


def coded_task_metrics(kind: str, gold: Any, pred: Any, strings: Sequence[str], *,
                       n_errors: int, n_invalid: int, n_correct: int, seed: int = 0,
                       **kwargs: Any) -> dict[str, Any]:
    """:func:`task_metrics` of a task of a columnar kind from a columnar read: ``gold`` and
    ``pred`` are int arrays of codes into ``strings`` (one vocabulary, each string once, so
    equal codes are equal strings; ``pred`` as :func:`predicted_label` gives it), the counts
    are those of the rows' ``error``, ``invalid`` and ``correct`` flags; ``kwargs`` as the
    kind's ``metric_kwargs`` gives them."""
    from slmbench.tasks.kinds import get_kind

    out = get_kind(kind).coded_metrics(gold, pred, strings, seed=seed, **kwargs)
    out.update(outcome_counts(len(gold), n_errors, n_invalid, n_correct))
    return out


def task_metrics(kind: str, rows: Sequence[dict[str, Any]], *, seed: int = 0,
                 **kwargs: Any) -> dict[str, Any]:
    """Metrics for one task × model from stored result rows only (``kwargs``: what the kind's
    ``metric_kwargs`` gives, e.g. labels, fields, fallback)."""
    from slmbench.tasks.kinds import get_kind

    out = get_kind(kind).metrics(rows, seed=seed, **kwargs)
    out.update(outcome_counts(len(rows), sum(bool(r.get("error")) for r in rows),
                              sum(bool(r.get("invalid")) for r in rows),
                              sum(bool(r.get("correct")) for r in rows)))
    return out
