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
    n = len(gold)
    out["fallback_rate"] = sum(r == fallback for r in routed) / n if n else None
    out["accuracy_fallback_as_miss"] = (
        sum(g == r and r != fallback for g, r in zip(gold, routed, strict=True)) / n if n else None
    )
    return out


def task_metrics(kind: str, rows: Sequence[dict[str, Any]], *, labels: Sequence[str] = (),
                 fields: Sequence[Any] = (), fallback: str | None = None,
                 seed: int = 0) -> dict[str, Any]:
    """Metrics for one task × model from stored result rows only."""
    gold = [r["gold"] for r in rows]
    if kind == "extraction":
        pred = [None if r.get("error") else r.get("answer") for r in rows]
        out = extraction_metrics(gold, pred, fields, seed=seed)
    else:
        def predicted(r: dict[str, Any]) -> str:
            if r.get("error"):
                return ERROR
            if kind == "routing":
                return r.get("routed") or ERROR
            return r["answer"] if r.get("answer") is not None else INVALID

        pred = [predicted(r) for r in rows]
        if kind == "routing":
            out = routing_metrics(gold, pred, labels, fallback or "", seed=seed)
        else:
            out = classification_metrics(gold, pred, labels, seed=seed)
    n = len(rows)
    out["n_errors"] = sum(bool(r.get("error")) for r in rows)
    out["n_invalid"] = sum(bool(r.get("invalid")) for r in rows)
    out["invalid_rate"] = out["n_invalid"] / n if n else None
    out["n_correct"] = sum(bool(r.get("correct")) for r in rows)
    return out
