"""Confidence calibration of stored rows: expected calibration error and a reliability table.

A row's ``confidence`` is the model's own probability for its answer (README, *Models →
Decoding and confidence*): ``label-logprob`` (llama.cpp constrained decoding),
``token-logprob`` (API models with ``logprobs=true``) or ``classifier-proba`` (the TF-IDF
baseline). Rows without one (``null``: an API without logprobs, a failed call) are counted and
reported, never imputed.

Bins are equal-width on [0, 1]: with B bins, bin k holds the confidences in [k/B, (k+1)/B), the
last bin also holds 1.0. Over the n rows that have a confidence,

    ECE = Σ_k |bin_k| / n · |accuracy(bin_k) − mean confidence(bin_k)|

where accuracy(bin) is the share of its rows that are correct (invalid answers count as wrong,
as everywhere). Empty bins add nothing. ECE is ``None`` when no row has a confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from slmbench.errors import InputError

DEFAULT_BINS = 10
_SLACK = 1e-9  # float noise around 0 and 1 (exp of a logprob sum can land at 1 + 1e-16)


def check_confidence(value: Any, where: str = "") -> float | None:
    """A stored confidence as a float in [0, 1], ``None`` when absent; else InputError."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not -_SLACK <= value <= 1 + _SLACK:
        raise InputError("a confidence must be a number between 0 and 1 or null",
                         field=f"confidence{f' ({where})' if where else ''}", value=value)
    return min(1.0, max(0.0, float(value)))


def bin_index(confidence: float, bins: int = DEFAULT_BINS) -> int:
    """The equal-width bin of a confidence in [0, 1]: floor(c · B), with 1.0 in the last bin."""
    return min(int(math.floor(confidence * bins)), bins - 1)


def _check_bins(bins: int) -> int:
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise InputError("the number of bins must be a whole number ≥ 1", field="bins",
                         value=bins)
    return bins


def reliability_table(confidences: Sequence[float], correct: Sequence[bool],
                      bins: int = DEFAULT_BINS) -> list[dict[str, Any]]:
    """One dict per bin (empty ones too): ``lo``, ``hi``, ``count``, ``mean_confidence`` and
    ``accuracy`` (both ``None`` for an empty bin). Inputs are the rows *with* a confidence,
    as sequences or numpy arrays. A bin's confidences are summed exactly (``math.fsum``), so
    the table does not depend on the order of the rows."""
    import numpy as np

    bins = _check_bins(bins)
    if len(confidences) != len(correct):
        raise ValueError("confidences and correct must have the same length")
    conf = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    # bin_index, vectorised: floor(c · B), with 1.0 in the last bin
    which = np.minimum(np.floor(conf * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins).tolist()
    hits = np.bincount(which[ok], minlength=bins).tolist()
    order = np.argsort(which, kind="stable")
    ends = np.cumsum(counts).tolist()
    by_bin = conf[order]
    sums = [math.fsum(by_bin[e - c:e].tolist()) for c, e in zip(counts, ends, strict=True)]
    return [{"lo": k / bins, "hi": (k + 1) / bins, "count": counts[k],
             "mean_confidence": sums[k] / counts[k] if counts[k] else None,
             "accuracy": hits[k] / counts[k] if counts[k] else None}
            for k in range(bins)]


def expected_calibration_error(confidences: Sequence[float], correct: Sequence[bool],
                               bins: int = DEFAULT_BINS) -> float | None:
    """ECE over equal-width bins (module docstring); ``None`` without any confidence."""
    return _ece(reliability_table(confidences, correct, bins))


def _ece(table: Sequence[dict[str, Any]]) -> float | None:
    n = sum(b["count"] for b in table)
    if n == 0:
        return None
    return math.fsum(b["count"] / n * abs(b["accuracy"] - b["mean_confidence"])
                     for b in table if b["count"])


def calibration_metrics(rows: Sequence[dict[str, Any]], bins: int = DEFAULT_BINS
                        ) -> dict[str, Any]:
    """Summary fields for one task × model from stored rows.

    ``ece``, ``n_confidence`` (rows with a confidence), ``n_no_confidence`` (rows without,
    left out, never imputed), ``confidence_sources`` and ``reliability`` (the non-empty bins
    of :func:`reliability_table`; empty when no row has a confidence).
    """
    conf, ok = [], []
    for r in rows:
        c = check_confidence(r.get("confidence"), f"item {r.get('item_id')}")
        if c is not None:
            conf.append(c)
            ok.append(bool(r.get("correct")))
    sources = {r["confidence_source"] for r in rows
               if r.get("confidence") is not None and r.get("confidence_source")}
    return calibration_summary(conf, ok, len(rows), sources, bins)


def calibration_summary(confidences: Sequence[float], correct: Sequence[bool], n_rows: int,
                        sources: set[str], bins: int = DEFAULT_BINS) -> dict[str, Any]:
    """:func:`calibration_metrics` from the checked confidences of the ``n_rows`` rows that
    have one, whether each of those is correct, and their confidence sources (lists or the
    arrays of a columnar read)."""
    table = reliability_table(confidences, correct, bins)
    return {
        "ece": _ece(table),
        "n_confidence": len(confidences),
        "n_no_confidence": n_rows - len(confidences),
        "confidence_sources": sorted(sources),
        "reliability": [b for b in table if b["count"]],
    }
