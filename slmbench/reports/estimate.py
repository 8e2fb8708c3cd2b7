"""The "Estimate vs actual" section of the markdown and HTML reports.

A run made with ``--run-id`` after ``slmbench estimate --run-id`` (or ``run --dry-run``) keeps
the estimate as ``estimate.json``; the report sets each figure of it against what the run
measured, so that a user learns how far to trust the next estimate before paying for a run.
The comparison itself is :func:`slmbench.analysis.estimate.estimate_vs_actual`; here it is
only written out, from stored files (no model is called, no tokenizer is loaded).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slmbench.analysis.estimate import COMPARED, estimate_vs_actual
from slmbench.markdown import format_usd, md_cell, md_table

HEAD = ["task", "model", "figure", "low", "expected", "high", "actual", "actual ÷ expected",
        "in range"]


def comparisons(runs: Sequence[Any], summaries: Sequence[dict[str, Any]]
                ) -> list[dict[str, Any]]:
    """Every run folder's estimate against the summary the report shows for it (``runs`` and
    ``summaries`` in the same order; a summary passed in place of a folder has no estimate)."""
    out: list[dict[str, Any]] = []
    for run, summary in zip(runs, summaries, strict=False):
        if isinstance(run, (str, Path)) and Path(run).is_dir():
            out.extend(estimate_vs_actual(run, summary))
    return out


def figure(key: str, value: float | None) -> str:
    """A compared figure as the section writes it."""
    if value is None:
        return "–"
    if key == "usd":
        return format_usd(value)
    if key == "wall_s":
        return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"
    return f"{value:,.0f}"


def ratio(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}×"


def within(value: bool | None) -> str:
    return "–" if value is None else ("yes" if value else "no")


def table_rows(rows: Sequence[dict[str, Any]], multi: bool = False) -> list[list[str]]:
    """One line per task × model × compared figure (a figure neither estimated nor measured
    is left out)."""
    out = []
    for r in rows:
        model = f"{r['run_id']}/{r['model']}" if multi else r["model"]
        for key, label in COMPARED:
            f = r["figures"][key]
            if f["expected"] is None and f["actual"] is None:
                continue
            out.append([r["task"], model, label, figure(key, f["low"]),
                        figure(key, f["expected"]), figure(key, f["high"]),
                        figure(key, f["actual"]), ratio(f["actual_over_expected"]),
                        within(f["within_range"])])
    return out


def notes(rows: Sequence[dict[str, Any]]) -> list[str]:
    """What a reader needs to weigh the figures: how input tokens were counted, and which
    estimates were scaled to the items actually run."""
    out = []
    for r in rows:
        said = f"{r['model']} on {r['task']}: input tokens counted by {r.get('method') or '–'}"
        if r["items_estimated"] != r["items_run"]:
            said += (f"; estimated for {r['items_estimated']} items, run on {r['items_run']}: "
                     "the estimate is scaled per item")
        out.append(said)
    return out


EXPLAIN = ("From the estimate stored with the run (`slmbench estimate --run-id` or `run "
           "--dry-run --run-id`). Output tokens are estimated per item, from the shortest "
           "allowed answer (low) through the gold answers' length (expected) to the output "
           "budget (high); an API model's wall time assumes a per-call latency unless a pilot "
           "measured it.")


def markdown_section(rows: Sequence[dict[str, Any]], multi: bool = False) -> list[str]:
    """The section's markdown parts (none when no run holds an estimate)."""
    if not rows:
        return []
    table = md_table(HEAD, table_rows(rows, multi),
                     ["l", "l", "l", "r", "r", "r", "r", "r", "l"])
    return ["## Estimate vs actual\n", table, EXPLAIN + "\n",
            "\n".join(f"* {md_cell(n)}" for n in notes(rows)) + "\n"]
