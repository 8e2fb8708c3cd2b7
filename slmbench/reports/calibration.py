"""The "Confidence calibration" section of the markdown and HTML reports.

A cascade sends an item on when the first model's confidence is below a threshold, so a
threshold means the same thing across models only if their confidences are calibrated: an
answer given at 0.8 is right about 80 % of the time. Expected calibration error (ECE, computed
with the scores from the stored rows) says how far each model is from that. A baseline run
with ``?calibrate=`` is set against the same model without it, so the table shows the ECE
before and after calibration side by side. Only entries whose rows carry confidences
are listed; the section is left out when none do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

HEAD = ["task", "model", "confidence from", "items with confidence", "ECE",
        "ECE uncalibrated", "accuracy", "accuracy uncalibrated"]
EXPLAIN = ("ECE: expected calibration error over confidence bins, the gap between the "
           "confidence a model gives and how often it is right (0 = a confidence of 0.8 is "
           "right 80 % of the time). Cascade thresholds mean the same thing across models only "
           "where ECE is low. A `calibrate=` variant is set against the same model without it.")


def uncalibrated_name(model: str) -> str | None:
    """``baseline:x?C=5&calibrate=isotonic`` → ``baseline:x?C=5``; None without ``calibrate``."""
    base, _, query = model.partition("?")
    parts = [p for p in query.split("&") if p] if query else []
    kept = [p for p in parts if not p.startswith("calibrate=")]
    if len(kept) == len(parts):
        return None
    return base + ("?" + "&".join(kept) if kept else "")


def table_rows(summaries: Sequence[dict[str, Any]], multi: bool = False) -> list[list[str]]:
    """One line per task × model with confidences."""
    entries = [(s.get("run_id"), e) for s in summaries for e in s.get("results") or []
               if not e.get("failed")]
    by_name = {(e["task"], e["model"]): e for _, e in entries}
    out = []
    for run_id, e in entries:
        if e.get("ece") is None or not e.get("n_confidence"):
            continue
        plain = uncalibrated_name(e["model"])
        before = by_name.get((e["task"], plain)) if plain else None
        model = f"{run_id}/{e['model']}" if multi else e["model"]
        out.append([e["task"], model, ", ".join(e.get("confidence_sources") or []) or "–",
                    f"{e['n_confidence']:,} of {e.get('n', 0):,}", f"{e['ece']:.3f}",
                    f"{before['ece']:.3f}" if before and before.get("ece") is not None
                    else "–", _percent(e.get("accuracy")),
                    _percent(before.get("accuracy")) if before else "–"])
    return out


def _percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def markdown_section(summaries: Sequence[dict[str, Any]], multi: bool = False) -> list[str]:
    from slmbench.markdown import md_table

    rows = table_rows(summaries, multi)
    if not rows:
        return []
    return ["## Confidence calibration\n",
            md_table(HEAD, rows, ["l", "l", "l", "r", "r", "r", "r", "r"]), EXPLAIN + "\n"]
