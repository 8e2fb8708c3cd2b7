"""The leaderboard: one row per task × model, built from stored results (never a model call).

Every figure comes from a summary, and summaries are rebuilt from stored rows with
:func:`slmbench.analysis.summary.build_summary`. The same rows feed the terminal table, markdown,
CSV, JSON and :func:`leaderboard_frame` (a pandas DataFrame).

*Pareto frontier*: per task, a priced row is on the accuracy–cost frontier when no other priced
row of that task has at least its accuracy at no more $ per 1k items and is strictly better in
one of the two. Unpriced rows are never on it; they stay in the table and say ``unpriced``.

*Failed* rows (a model that could not run: the summary entry's ``failed`` reason) keep their
place in every report but no figure that could pass for a result: their accuracy and $ cells
say ``failed (reason)`` (a terminal says just ``failed`` where the reason would not fit), they
are never on the frontier, they sort last within their task, and the full reason is printed
under the table. In CSV, JSON and the DataFrame their accuracy and $ fields are empty and
``failed`` holds the reason, so the numeric columns stay numeric.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.markdown import (  # noqa: F401 - fmt, md_table, failed_cell: also used by tests
    CELL_REASON,
    FRONTIER_MARK,
    USD_KEYS,
    failed_cell,
    fmt,
    md_cell,
    md_table,
)
from slmbench.markdown import cell as _cell
from slmbench.pricing.run_costs import local_pricing_note

# (title, key) of the terminal and markdown leaderboard, in order
COLUMNS = [
    ("task", "task"), ("model", "model"), ("n", "n_items"), ("accuracy", "accuracy"),
    ("95% CI", "accuracy_ci"), ("macro-F1", "macro_f1"), ("invalid", "invalid_rate"),
    ("truncated", "truncated"), ("errors", "n_errors"), ("p50 s", "latency_p50_s"),
    ("p95 s", "latency_p95_s"), ("items/s", "items_per_s"), ("$/1k items", "usd_per_1k_items"),
    ("$/correct", "usd_per_correct"), ("correct/$", "correct_per_usd"), ("Pareto", "pareto"),
]

# the flat, numeric fields of one leaderboard row (CSV columns, DataFrame columns, JSON rows)
FIELDS = [
    "run_id", "task", "kind", "model", "n_items", "n_correct", "accuracy", "accuracy_ci_low",
    "accuracy_ci_high", "macro_f1", "invalid_rate", "n_invalid", "truncated", "truncated_rate",
    "n_errors", "latency_p50_s", "latency_p95_s", "items_per_s", "total_usd", "usd_per_1k_items",
    "usd_per_correct", "correct_per_usd", "priced", "pareto", "failed",
]

# sort keys: key -> True when higher is better (sorted descending)
SORT_KEYS = {
    "usd_per_correct": False, "usd_per_1k_items": False, "correct_per_usd": True,
    "accuracy": True, "macro_f1": True, "invalid_rate": False, "truncated": False,
    "n_errors": False, "latency_p50_s": False, "latency_p95_s": False, "items_per_s": True,
    "model": False,
}
SORT_ALIASES = {"cost": "usd_per_1k_items", "$/correct": "usd_per_correct",
                "$/1k": "usd_per_1k_items", "correct/$": "correct_per_usd",
                "latency": "latency_p50_s", "p50": "latency_p50_s", "p95": "latency_p95_s",
                "f1": "macro_f1", "invalid": "invalid_rate", "errors": "n_errors"}
DEFAULT_SORT = "usd_per_correct"


# ---------------------------------------------------------------------------------------------
# rows


def load_summaries(runs: Iterable[Any]) -> list[dict[str, Any]]:
    """Summaries rebuilt from stored rows: ``runs`` holds run folders, RunDirs or summaries."""
    from slmbench.analysis.summary import build_summary
    from slmbench.store import RunDir, open_run

    out = []
    for run in runs:
        if isinstance(run, dict):
            out.append(run)
        elif isinstance(run, RunDir):
            out.append(build_summary(run))
        else:
            out.append(build_summary(open_run(run)))
    if not out:
        raise InputError("no run given")
    return out


def _is_priced(entry: dict[str, Any]) -> bool:
    return bool(entry.get("priced", True)) and entry.get("usd_per_1k_items") is not None


def failure_lines(rows: Iterable[dict[str, Any]], multi: bool = False) -> list[str]:
    """One line per failed row with its full reason (a table cell holds a shortened one)."""
    return [f"failed: {r['task']} × {r['model']}" + (f" (run {r['run_id']})" if multi else "")
            + f" could not run: {r['failed']}" for r in rows if r.get("failed")]


def pareto_flags(points: Sequence[tuple[float | None, float | None]]) -> list[bool]:
    """For (accuracy, cost) points: True where no other point dominates (cost None: False)."""
    flags = []
    for i, (acc, cost) in enumerate(points):
        if acc is None or cost is None:
            flags.append(False)
            continue
        dominated = any(
            j != i and a is not None and c is not None and a >= acc and c <= cost
            and (a > acc or c < cost)
            for j, (a, c) in enumerate(points))
        flags.append(not dominated)
    return flags


def resolve_sort(sort: str | None) -> tuple[str, bool]:
    """(key, descending) for a ``--sort`` value; a leading '-' reverses the direction."""
    text = (sort or DEFAULT_SORT).strip()
    flip = text.startswith("-")
    key = text.lstrip("-+")
    key = SORT_ALIASES.get(key, key)
    if key not in SORT_KEYS:
        raise InputError(f"unknown sort key (known: {', '.join(SORT_KEYS)})", field="--sort",
                         value=sort)
    return key, SORT_KEYS[key] != flip


def leaderboard_entries(summaries: Sequence[dict[str, Any]], sort: str | None = None
                        ) -> list[dict[str, Any]]:
    """One flat row per run × task × model with the frontier mark, grouped by task and sorted.

    Rows are ordered by task name, then by ``sort`` (default $ per correct answer, cheapest
    first); rows without the figure (unpriced, or no correct answer) come last, unpriced last of
    all, and failed rows (module docstring) after them whatever the key. Each row keeps its full
    summary entry under ``"entry"``. A cascade run live (``run --cascade``) is a row of its own,
    next to its two models.
    """
    key, descending = resolve_sort(sort)
    rows = []
    for summary in summaries:
        cascades = [c for c in summary.get("cascades") or [] if c.get("complete")]
        for entry in [*summary["results"], *cascades]:
            failed = entry.get("failed") or None
            ci = [None, None] if failed else entry.get("accuracy_ci") or [None, None]
            priced = _is_priced(entry)
            money = priced and not failed
            row = {
                "run_id": summary.get("run_id"), "task": entry["task"],
                "kind": entry.get("kind"), "model": entry["model"],
                "n_items": entry.get("n_items"), "n_correct": entry.get("n_correct"),
                "accuracy": None if failed else entry.get("accuracy"),
                "accuracy_ci_low": ci[0], "accuracy_ci_high": ci[1],
                "macro_f1": None if failed else entry.get("macro_f1"),
                "invalid_rate": entry.get("invalid_rate"), "n_invalid": entry.get("n_invalid"),
                # an old run's rows hold no truncated flag: none was cut off as far as it says
                "truncated": entry.get("truncated", 0),
                "truncated_rate": entry.get("truncated_rate"),
                "n_errors": entry.get("n_errors"), "latency_p50_s": entry.get("latency_p50_s"),
                "latency_p95_s": entry.get("latency_p95_s"),
                "items_per_s": entry.get("items_per_s"),
                "total_usd": entry.get("total_usd") if money else None,
                "usd_per_1k_items": entry.get("usd_per_1k_items") if money else None,
                # --price-mode batch: the same items on the provider's Batch API
                "usd_per_1k_items_batch": (entry.get("usd_per_1k_items_batch") if money
                                           else None),
                "usd_per_correct": entry.get("usd_per_correct") if money else None,
                "correct_per_usd": entry.get("correct_per_usd") if money else None,
                "priced": priced, "pareto": False, "failed": failed, "entry": entry,
            }
            rows.append(row)
    for task in {r["task"] for r in rows}:
        group = [r for r in rows if r["task"] == task]
        # a failed row has no accuracy or $ here, so it neither sits on nor shapes the frontier
        flags = pareto_flags([(r["accuracy"], r["usd_per_1k_items"]) for r in group])
        for r, flag in zip(group, flags, strict=True):
            r["pareto"] = flag

    def order(r: dict[str, Any]) -> tuple:
        value = r.get(key)
        if r["failed"]:  # no figure of it means anything: by name, after every other row
            primary: tuple = (0, "")
        elif key == "model":
            primary = (0, str(value))
        elif value is None:
            primary = (1 if r["priced"] or key not in USD_KEYS else 2, 0.0)
        else:
            primary = (0, -value if descending else value)
        return (r["task"], bool(r["failed"]), primary, -(r["accuracy"] or 0.0), r["model"],
                str(r["run_id"]))

    return sorted(rows, key=order)


def _public(row: dict[str, Any]) -> dict[str, Any]:
    return {k: row[k] for k in FIELDS}


def leaderboard_frame(runs: Iterable[Any], sort: str | None = None):
    """The leaderboard as a pandas DataFrame (one row per run × task × model, raw numbers).

    ``runs``: run folders, :class:`~slmbench.store.RunDir` objects or summaries. $ figures of
    unpriced rows are NaN and ``priced`` is False; ``pareto`` marks the frontier.
    """
    import pandas as pd

    rows = leaderboard_entries(load_summaries(runs), sort)
    return pd.DataFrame([_public(r) for r in rows], columns=FIELDS)


# ---------------------------------------------------------------------------------------------
# terminal


# a narrower terminal drops more columns, and never ``truncated`` or ``errors``: they say
# whether the figures beside them can be trusted (a failed model is nothing but errors)
WIDE = 160
NARROW_DROPS = ("latency_p95_s", "items_per_s", "correct_per_usd", "macro_f1")
NARROWER = 110
NARROWER_DROPS = ("accuracy_ci", "latency_p50_s", "invalid_rate")
NARROWEST = 90
NARROWEST_DROPS = ("n_items", "usd_per_1k_items")
TEXT_KEYS = ("task", "model", "run_id")


# stdout that is not a terminal (a pipe, a file, a CI log) has no width to fit: rich would
# assume 80 columns and hide half the table, so it gets all of them
UNBOUNDED = 1000


def _stdout_console(console_cls: Any) -> Any:
    import sys

    if sys.stdout.isatty():
        return console_cls()
    return console_cls(width=UNBOUNDED, color_system=None)


BATCH_COLUMN = ("$/1k on the Batch API", "usd_per_1k_items_batch")


def _table_columns(multi_run: bool, rows: Sequence[dict[str, Any]] = ()
                   ) -> list[tuple[str, str]]:
    """The columns; the Batch API one after the standard $ when a run was priced with
    ``--price-mode batch`` (its entries carry the key, a figure where the sheet has one)."""
    cols = [("run", "run_id"), *COLUMNS] if multi_run else list(COLUMNS)
    if any("usd_per_1k_items_batch" in r["entry"] for r in rows):
        at = cols.index(("$/1k items", "usd_per_1k_items")) + 1
        cols.insert(at, BATCH_COLUMN)
    return cols


def render_terminal(summary: dict[str, Any] | Sequence[dict[str, Any]], console: Any = None,
                    sort: str | None = None) -> None:
    """Print the leaderboard of one summary (or several) as a rich table."""
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    summaries = [summary] if isinstance(summary, dict) else list(summary)
    console = console or _stdout_console(Console)
    rows = leaderboard_entries(summaries, sort)
    multi = len(summaries) > 1
    title = ("slmbench · runs " + ", ".join(str(s.get("run_id")) for s in summaries) if multi
             else f"slmbench · run {summaries[0]['run_id']}")
    columns = _table_columns(multi, rows)
    # a narrow terminal keeps the columns a decision needs (report --format md has them all)
    if console.width < WIDE:
        columns = [(t, k) for t, k in columns if k not in NARROW_DROPS]
    if console.width < NARROWER:
        columns = [(FRONTIER_MARK if k == "pareto" else t, k) for t, k in columns
                   if k not in NARROWER_DROPS]
    narrowest = console.width < NARROWEST
    if narrowest:  # no frame, and the columns of figures keep whole titles: task and model fold
        tasks = {r["task"] for r in rows}
        drops = NARROWEST_DROPS + (("task",) if len(tasks) == 1 else ())
        columns = [(t, k) for t, k in columns if k not in drops]
        if len(tasks) == 1:
            title += f" · task {next(iter(tasks))}"
        table = Table(title=title, show_lines=False, box=box.SIMPLE_HEAD, pad_edge=False,
                      show_edge=False)
        figures = sum(len(t) for t, k in columns if k not in TEXT_KEYS)
        whole = figures + 3 * (len(columns) - 1) + 8 <= console.width
    else:
        table = Table(title=title, show_lines=False)
        whole = False
    # a failure reason in four cells of a row would squeeze every other column into folds: the
    # accuracy cell holds it in a wide terminal, the $ cells just say failed, the lines under
    # the table give it in full
    reason_chars = CELL_REASON if console.width >= WIDE else 0
    for col_title, key in columns:
        text_col = key in TEXT_KEYS
        min_width = ((len(col_title) if whole and not text_col else None) if narrowest
                     else {"task": 10, "model": 14}.get(key))
        table.add_column(col_title, justify="left" if text_col else "right",
                         overflow="fold", no_wrap=False, min_width=min_width)
    for row in rows:
        # Text: a model name or failure reason holding [brackets] is not rich markup
        table.add_row(*(Text(_cell(key, row, reason_chars if key == "accuracy" else 0))
                        for _, key in columns))
    console.print(table)
    hidden = len(_table_columns(multi, rows)) - len(columns)
    console.print(f"{FRONTIER_MARK} = on the task's accuracy–cost Pareto frontier; sorted by "
                  f"{resolve_sort(sort)[0]}"
                  + (f"; {hidden} columns hidden in this narrow terminal" if hidden else ""))
    for line in failure_lines(rows, multi):
        console.print(Text(line, style="red"))
    for s in summaries:
        pricing = s.get("pricing") or {}
        if pricing:
            prefix = f"run {s.get('run_id')}: " if multi else ""
            note = local_pricing_note(s)
            console.print(f"{prefix}prices as of {pricing.get('price_date')} from "
                          f"{len(pricing.get('sheets', []))} sheet(s)"
                          + (f"; {note}" if note else ""))
        for warning in s.get("warnings", []):
            console.print(f"[yellow]warning:[/] {warning}")


def render_text(summaries: Sequence[dict[str, Any]], sort: str | None = None,
                width: int = UNBOUNDED) -> str:
    """The terminal table as plain text (for ``--format table --out FILE``)."""
    from rich.console import Console

    buf = io.StringIO()
    render_terminal(summaries, Console(file=buf, width=width, color_system=None,
                                       force_terminal=False), sort=sort)
    return buf.getvalue()


def frontier_warnings(summaries: Sequence[dict[str, Any]],
                      manifests: Sequence[dict[str, Any]] = ()) -> list[str]:
    """Why a task's frontier may compare unlike things: its models were scored on different
    numbers of items (a --limit, a stopped run, another run), or, across runs, on data with a
    different fingerprint or task spec. A model that could not run is left out: it is on no
    frontier."""
    out: list[str] = []
    rows = [r for r in leaderboard_entries(summaries) if not r["failed"]]
    multi = len(summaries) > 1
    for task in sorted({r["task"] for r in rows}):
        group = [r for r in rows if r["task"] == task]
        sizes = {r["n_items"] for r in group}
        if len(sizes) > 1:
            shown = ", ".join(f"{r['model']}" + (f" (run {r['run_id']})" if multi else "")
                              + f": {r['n_items']}" for r in group)
            out.append(f"task {task}: the frontier mixes results on different numbers of "
                       f"items ({shown}); accuracy and $ are not measured on the same items")
        for key, what in (("dataset_fingerprint", "dataset"), ("spec_hash", "task spec")):
            seen = {}
            for s, m in zip(summaries, manifests, strict=False):
                value = ((m.get("tasks") or {}).get(task) or {}).get(key)
                if value:
                    seen.setdefault(value, []).append(str(s.get("run_id")))
            if len(seen) > 1:
                out.append(f"task {task}: the runs were scored on a different {what} ("
                           + "; ".join(f"{v[:12]}: run {', '.join(r)}" for v, r in seen.items())
                           + "), so one frontier mixes item sets")
    return out


# ---------------------------------------------------------------------------------------------
# markdown


def _short_path(path: str) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return path


def _task_section(task: str, rows: list[dict[str, Any]], multi: bool) -> list[str]:
    """A task's section: the kind's table of the task, then a part per model (the kind's, or
    why the model failed). A kind no installed kind object knows is shown as labels."""
    from slmbench.tasks.kinds import TaskKind, find_kind

    kind = rows[0]["kind"] or rows[0]["entry"].get("kind")
    shown = find_kind(kind) or TaskKind()
    parts = [f"## {md_cell(task)} ({kind})\n"]
    parts.extend(shown.report_table(rows, multi))
    for r in rows:
        entry = r["entry"]
        name = f"{r['model']} (run {r['run_id']})" if multi else r["model"]
        parts.append(f"### {md_cell(name)}\n")
        if r["failed"]:  # its per-label tables would only tabulate failed calls
            parts.append(f"Failed: the model could not run ({md_cell(r['failed'])}); "
                         f"{r['n_errors'] or 0} of {r['n_items'] or 0} items are errors, and "
                         "none of its figures is a result.\n")
            continue
        parts.extend(shown.report_model(entry))
    return parts


def render_markdown(summary: dict[str, Any] | Sequence[dict[str, Any]],
                    sort: str | None = None, plot: str | None = None,
                    recommendation: Sequence[str] = (), warnings: Sequence[str] = (),
                    estimates: Sequence[dict[str, Any]] = ()) -> str:
    """The leaderboard, per-task sections and a provenance footer as GitHub markdown.

    ``plot``: a relative path to an image of the Pareto plot, embedded under the leaderboard.
    ``warnings``: listed under the leaderboard (:func:`frontier_warnings`).
    ``recommendation``: the markdown parts of the recommendation section
    (:func:`slmbench.reports.recommend.markdown_section`), placed after the leaderboard: it is
    built from the runs' rows, which a summary alone does not hold.
    ``estimates``: the runs' stored estimates set against these summaries
    (:func:`slmbench.reports.estimate.comparisons`), the "Estimate vs actual" section.
    """
    summaries = [summary] if isinstance(summary, dict) else list(summary)
    rows = leaderboard_entries(summaries, sort)
    multi = len(summaries) > 1
    cols = _table_columns(multi, rows)
    parts = ["# slmbench leaderboard\n",
             md_table([t for t, _ in cols], [[_cell(k, r) for _, k in cols] for r in rows],
                      ["l" if k in ("run_id", "task", "model") else "r" for _, k in cols]),
             f"{FRONTIER_MARK} = on the task's accuracy–cost Pareto frontier (no other priced "
             "model is at least as accurate for at most the same $ per 1k items). Sorted by "
             f"`{resolve_sort(sort)[0]}` within each task. 95% CI: seeded percentile bootstrap. "
             "$/correct = total cost ÷ correct answers.\n"]
    failures = failure_lines(rows, multi)
    if failures:
        parts.append("\n".join(f"* {md_cell(line)}" for line in failures) + "\n")
    if warnings:
        parts.append("\n".join(f"* warning: {md_cell(w)}" for w in warnings) + "\n")
    if plot:
        parts.append(f"![accuracy vs $ per 1k items]({plot})\n")
    parts.extend(recommendation)
    tasks: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        tasks.setdefault(r["task"], []).append(r)
    for task, group in tasks.items():
        parts.extend(_task_section(task, group, multi))
    from slmbench.reports.estimate import markdown_section as estimate_section

    parts.extend(estimate_section(estimates, multi))
    from slmbench.reports.calibration import markdown_section as calibration_section

    parts.extend(calibration_section(summaries, multi))
    from slmbench.analysis.breakeven import markdown_section, setup_section

    parts.extend(setup_section(summaries))  # a baseline's training, beside its per-item $
    parts.extend(markdown_section(summaries))  # with --volume: self-hosted vs API
    parts.append("---\n")
    footer = []
    for s in summaries:
        pricing = s.get("pricing") or {}
        sheets = ", ".join(f"`{_short_path(sh['path'])}` (sha256 {sh['sha256'][:12]})"
                           for sh in pricing.get("sheets", [])) or "none"
        note = local_pricing_note(s, recorded_only=True)
        footer.append(f"* run `{s.get('run_id')}`: prices as of {pricing.get('price_date')}; "
                      f"pricing sheets: {sheets}" + (f"; {note}" if note else ""))
        footer.extend(f"  * warning: {w}" for w in s.get("warnings", []))
    parts.append("Generated from stored results only (no model was called).\n\n"
                 + "\n".join(footer) + "\n")
    return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# csv / json


def _plain(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_csv(summaries: Sequence[dict[str, Any]], sort: str | None = None) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in leaderboard_entries(summaries, sort):
        writer.writerow({k: "" if row[k] is None else row[k] for k in FIELDS})
    return buf.getvalue()


def render_json(summaries: Sequence[dict[str, Any]], sort: str | None = None) -> str:
    rows = leaderboard_entries(summaries, sort)
    sections: dict[str, dict[str, Any]] = {}
    from slmbench.tasks.kinds import find_kind

    for r in rows:
        e = r["entry"]
        kind = find_kind(r["kind"])
        detail = {k: e.get(k) for k in ("per_class", "confusion", "per_field", "fallback_rate",
                                         "accuracy_fallback_as_miss", "json_valid_rate",
                                         "micro_precision", "micro_recall", "micro_f1",
                                         "ece", "n_confidence", "n_no_confidence",
                                         "reliability", *(kind.detail_keys if kind else ()))
                  if k in e}
        if e.get("confusion"):
            from slmbench.scoring.classification import most_confused

            detail["most_confused"] = [list(t) for t in most_confused(e["confusion"])]
        sections.setdefault(r["task"], {})[f"{r['run_id']}/{r['model']}"] = detail
    doc = {
        "runs": [s.get("run_id") for s in summaries],
        "pricing": {str(s.get("run_id")): s.get("pricing") for s in summaries},
        "warnings": {str(s.get("run_id")): s.get("warnings", []) for s in summaries},
        "sort": resolve_sort(sort)[0],
        "rows": [{k: _plain(v) for k, v in _public(r).items()} for r in rows],
        "details": sections,
    }
    return json.dumps(doc, indent=2) + "\n"
