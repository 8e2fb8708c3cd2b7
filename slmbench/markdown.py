"""How a figure, a failure and a markdown table are written, wherever they are written.

Below every package that writes text: a task kind draws its own report section (the kind
knows its figures), ``analysis/`` writes $ figures into its decisions, and ``reports/`` lays
out whole reports; all of them format a value the same way by calling this module, so none of
them has to import a layer above it. Text only: no I/O, no heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

USD_KEYS = ("usd_per_1k_items", "usd_per_correct", "correct_per_usd")
FRONTIER_MARK = "★"
FAILED_KEYS = ("accuracy", *USD_KEYS)  # the cells of a failed row that say so
CELL_REASON = 40  # characters of a failure reason in a table cell (the full one is below it)
REASON_CHARS = 300  # characters of a failure reason in a summary


def format_usd(value: float | None) -> str:
    """A $ figure as every report and message writes it (``None``, unpriced, is a dash)."""
    if value is None:
        return "–"
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 0.01:
        return f"${value:.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"
    return f"${value:.3g}"


def one_line(text: Any, limit: int = REASON_CHARS) -> str:
    """``text`` as one line of at most ``limit`` characters: provider errors run over several
    lines and quote whole request bodies."""
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[:limit - 1].rstrip() + "…"


def failed_cell(reason: str, chars: int = CELL_REASON) -> str:
    """``failed (reason)``, the reason cut to ``chars`` (0: just ``failed``)."""
    return f"failed ({one_line(reason, chars)})" if chars > 0 else "failed"


def fmt(key: str, value: Any, row: dict[str, Any] | None = None) -> str:
    if key in FAILED_KEYS and row is not None and row.get("failed"):
        return failed_cell(row["failed"])
    if key in USD_KEYS and row is not None and not row.get("priced", True):
        return "unpriced"
    if key == "pareto":
        return FRONTIER_MARK if value else ""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"  # no figure (an old summary.json may hold an infinite correct/$)
    if key == "correct_per_usd":
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    if key in USD_KEYS or key == "usd_per_1k_items_batch":
        return format_usd(value)
    if key == "accuracy_ci":
        return f"{value[0]:.1%}–{value[1]:.1%}"
    if key in ("accuracy", "invalid_rate", "fallback_rate", "accuracy_fallback_as_miss",
               "json_valid_rate"):
        return f"{value:.1%}"
    if key in ("macro_f1", "precision", "recall", "f1", "micro_f1"):
        return f"{value:.3f}"
    if key in ("latency_p50_s", "latency_p95_s"):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if key == "items_per_s":
        return f"{value:,.1f}"
    return str(value)


def md_cell(text: Any) -> str:
    """A markdown table cell: pipes escaped, no line breaks."""
    return " ".join(str(text).split()).replace("|", "\\|")


def md_table(head: Sequence[str], rows: Iterable[Sequence[Any]],
             align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured markdown table; ``align`` holds 'l' or 'r' per column."""
    align = align or ["l"] * len(head)
    lines = ["| " + " | ".join(md_cell(h) for h in head) + " |",
             "|" + "|".join("---:" if a == "r" else "---" for a in align) + "|"]
    lines += ["| " + " | ".join(md_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def cell(key: str, row: dict[str, Any], reason_chars: int = CELL_REASON) -> str:
    if key in FAILED_KEYS and row.get("failed"):
        return failed_cell(row["failed"], reason_chars)
    if key == "accuracy_ci":
        value = ([row["accuracy_ci_low"], row["accuracy_ci_high"]]
                 if row["accuracy_ci_low"] is not None else None)
        return fmt(key, value, row)
    return fmt(key, row.get(key), row)


def reliability_part(entry: dict[str, Any]) -> list[str]:
    """Markdown of a model's confidence calibration: ECE and the non-empty reliability bins
    (nothing when no row has a confidence)."""
    n_conf = entry.get("n_confidence") or 0
    if not n_conf or entry.get("ece") is None:
        return []
    missing = entry.get("n_no_confidence") or 0
    sources = ", ".join(entry.get("confidence_sources") or []) or "unknown source"
    text = (f"Calibration: ECE {entry['ece']:.3f} over the {n_conf} items with a confidence "
            f"({sources})")
    text += (f"; {missing} without one (left out, not imputed).\n" if missing else ".\n")
    rows = [[f"{b['lo']:.2f}–{b['hi']:.2f}", b["count"], f"{b['mean_confidence']:.3f}",
             fmt("accuracy", b["accuracy"])] for b in entry.get("reliability") or []]
    return [text, md_table(["confidence", "items", "mean confidence", "accuracy"], rows,
                           ["l", "r", "r", "r"])]


def is_cascade(entry: dict[str, Any]) -> bool:
    """A live cascade's entry (``run --cascade``), not a model's."""
    return "threshold" in entry and "small" in entry


def cascade_part(entry: dict[str, Any]) -> str:
    return (f"Run live: `{md_cell(entry['small'])}` answered all {entry['n_items']} items, "
            f"`{md_cell(entry['large'])}` the {entry['n_escalated']} "
            f"({fmt('accuracy', entry['escalated_share'])}) whose confidence was below "
            f"{entry['threshold']:g}" + (" or whose answer was invalid"
                                          if entry.get("escalate_invalid") else "")
            + ". $ = small on every item + large on the escalated ones.\n")
