"""Functions behind ``slmbench pricing list|show|check|diff|import``.  ``rich`` is imported
lazily, and litellm never: ``diff`` and ``import`` read its price map as a file."""

from __future__ import annotations

import datetime as _dt
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slmbench.pricing.check import check_pricing, count_sheets
from slmbench.pricing.sheets import PriceBook, TokenPrice, _as_date, load_pricebook


def _display_path(path: str) -> str:
    p = Path(path)
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p)


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:g}"


def _render(renderable: Any, width: int = 160) -> str:
    from rich.console import Console

    buf = io.StringIO()
    Console(file=buf, width=width, color_system=None, force_terminal=False,
            highlight=False).print(renderable)
    return buf.getvalue()


def sheet_rows(dirs: Sequence[str | Path], today: _dt.date | None = None) -> list[dict]:
    """One dict per loaded sheet (path, kind, provider, dates, rows, sha256, state)."""
    today = today or _dt.date.today()
    book = load_pricebook(dirs)
    rows = []
    for s in sorted(book.sheets, key=lambda s: (s.kind, s.provider or "", s.effective_from,
                                                s.dir_index)):
        rows.append({
            "path": s.path,
            "kind": s.kind,
            "provider": s.provider if s.kind == "provider" else "hardware",
            "effective_from": s.effective_from.isoformat(),
            "retrieved": s.retrieved.isoformat(),
            "rows": s.n_rows,
            "sha256": s.sha256,
            "state": "scheduled" if s.effective_from > today else "in effect",
            "dir_index": s.dir_index,
        })
    return rows


def list_sheets(dirs: Sequence[str | Path], today: _dt.date | None = None):
    """A ``rich.table.Table`` of every sheet under ``dirs``."""
    from rich.table import Table

    table = Table(title="Pricing sheets", show_lines=False)
    for col in ("provider", "effective_from", "retrieved", "rows", "state", "sha256", "path"):
        table.add_column(col, no_wrap=col in ("sha256", "effective_from", "retrieved"))
    for r in sheet_rows(dirs, today):
        table.add_row(r["provider"], r["effective_from"], r["retrieved"], str(r["rows"]),
                      r["state"], r["sha256"][:12], _display_path(r["path"]))
    return table


def model_rows(model_id: str, dirs: Sequence[str | Path],
               on: _dt.date | str | None = None) -> list[dict]:
    """Every dated row for ``model_id``, oldest first, with ``in_effect`` marking the row that
    applies on ``on`` (default today) and ``overridden`` marking rows a later dir replaces."""
    day = _as_date(on) if on is not None else _dt.date.today()
    book: PriceBook = load_pricebook(dirs)
    current: TokenPrice | None = book.lookup(model_id, day)
    out = []
    for p in book.candidates(model_id):
        out.append({
            "model": p.qualified_id,
            "effective_from": p.effective_from.isoformat(),
            "input": p.input,
            "cached_input": p.cached_input,
            "cache_write_input": p.cache_write_input,
            "output": p.output,
            "batch_input": p.batch_input,
            "batch_output": p.batch_output,
            "tiers": [f"{t.name}: >{t.above_input_tokens} tok x{t.input_multiplier:g}/"
                      f"x{t.output_multiplier:g}" for t in p.tiers],
            "off_peak": None if p.off_peak is None else
            f"{_fmt(p.off_peak.input)}/{_fmt(p.off_peak.output)}",
            "confidence": p.confidence,
            "status": p.status,
            "in_effect": current is not None and p is current,
            "overridden": book.is_overridden(p),
            "scheduled": p.effective_from > day,
            "superseded": current is not None and p.effective_from < current.effective_from,
            "sheet": p.sheet_path,
            "sha256": p.sheet_sha256,
        })
    return out


def show_model(model_id: str, dirs: Sequence[str | Path],
               on: _dt.date | str | None = None) -> str:
    """Text table of every dated price for ``model_id``; the row in effect on ``on`` is marked."""
    from rich.table import Table

    day = _as_date(on) if on is not None else _dt.date.today()
    rows = model_rows(model_id, dirs, day)
    if not rows:
        return (f"{model_id}: unpriced (no sheet has a price for it). Add a row to a sheet in "
                "your own --pricing DIR to price it.\n")
    models = ", ".join(dict.fromkeys(r["model"] for r in rows))
    table = Table(title=f"{models}: USD per 1M tokens, date {day.isoformat()}")
    for col in ("", "effective_from", "input", "cached", "cache write", "output", "batch in/out",
                "tiers", "confidence", "status", "sheet"):
        table.add_column(col, overflow="fold")
    for r in rows:
        mark = ("in effect" if r["in_effect"] else "overridden" if r["overridden"]
                else "not yet in effect" if r["scheduled"]
                else "superseded" if r["superseded"] else "")
        batch = ("-" if r["batch_input"] is None
                 else f"{_fmt(r['batch_input'])}/{_fmt(r['batch_output'])}")
        table.add_row(mark, r["effective_from"], _fmt(r["input"]),
                      _fmt(r["cached_input"]), _fmt(r["cache_write_input"]), _fmt(r["output"]),
                      batch,
                      "; ".join(r["tiers"]) or "-", r["confidence"] or "-", r["status"] or "-",
                      f"{_display_path(r['sheet'])} ({r['sha256'][:12]})")
    text = _render(table)
    if not any(r["in_effect"] for r in rows):
        text += f"No price is in effect on {day.isoformat()}: {model_id} is unpriced then.\n"
    return text


def run_check(dirs: Sequence[str | Path], today: _dt.date | None = None) -> tuple[str, int]:
    """Report of ``check_pricing``; exit code 1 if any error-severity problem, else 0."""
    problems = check_pricing(dirs, today)
    errors = [p for p in problems if p.is_error]
    warnings = [p for p in problems if not p.is_error]
    lines = [str(p) for p in errors] + [str(p) for p in warnings]
    n_sheets = count_sheets(dirs)
    lines.append(f"{len(errors)} error(s), {len(warnings)} warning(s) in {n_sheets} sheet(s) "
                 f"under {', '.join(str(d) for d in dirs)}")
    return "\n".join(lines) + "\n", 1 if errors else 0


def run_diff(dirs: Sequence[str | Path], on: _dt.date | str | None = None,
             list_all: bool = False, litellm_json: str | Path | None = None) -> tuple[str, int]:
    """``pricing diff``: the sheets in effect on ``on`` vs litellm's bundled map; exit code 1
    on any disagreement (see :mod:`slmbench.pricing.diff`)."""
    from slmbench.pricing.diff import diff_pricebook, load_litellm_map, load_reviews, render

    day = _as_date(on) if on is not None else _dt.date.today()
    report = diff_pricebook(load_pricebook(dirs), load_litellm_map(litellm_json), day,
                            load_reviews(dirs))
    return render(report, list_all=list_all, shown=_display_path), report.exit_code


def run_import(provider: str, dirs: Sequence[str | Path], *, out: str | Path | None = None,
               on: _dt.date | str | None = None, models: Sequence[str] = (),
               include_existing: bool = False, litellm_json: str | Path | None = None,
               today: _dt.date | None = None) -> str:
    """``pricing import PROVIDER --from-litellm``: draft a new dated sheet (see
    :mod:`slmbench.pricing.importer`); by default ``<first pricing dir>/<provider>/<date>.yaml``."""
    from slmbench.pricing.diff import load_litellm_map
    from slmbench.pricing.importer import import_from_litellm, render_import

    today = today or _dt.date.today()
    day = _as_date(on) if on is not None else today
    target = Path(out) if out is not None else Path(dirs[0]) / provider / f"{day.isoformat()}.yaml"
    result = import_from_litellm(provider, load_pricebook(dirs), load_litellm_map(litellm_json),
                                 out=target, on=day, today=today, models=models,
                                 include_existing=include_existing, shown=_display_path)
    return render_import(result, shown=_display_path)
