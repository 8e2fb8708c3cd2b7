"""``slmbench pricing import PROVIDER --from-litellm``: a dated sheet drafted from litellm's map.

Why: typing a provider's thirty rows by hand invites the unit and column slips that ``check``
exists to catch, while litellm's bundled map already holds them per token.  But the map is a
secondary source with no dates, so what it gives is a *draft*: every row is labelled
``confidence: litellm only`` with the provenance ``litellm <version> bundled map``, and the
header comment lists what to confirm on the provider's own page before the sheet is trusted.

A reviewed row is never replaced without the user seeing it: the new sheet's rows win over
earlier ones by the date rule, so models that a sheet already prices on the new date are left
out unless ``include_existing`` asks for them, and either way the import prints how the map's
figures differ from the rows in effect.  An existing file is never overwritten.
"""

from __future__ import annotations

import datetime as _dt
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slmbench.errors import InputError
from slmbench.pricing.check import _price_rules
from slmbench.pricing.diff import LitellmMap, MapPrice, compare, same
from slmbench.pricing.sheets import PriceBook, TokenPrice, parse_sheet_file

CONFIDENCE = "litellm only"


@dataclass
class ImportResult:
    """What an import wrote and what it showed."""

    path: Path
    text: str
    rows: list[str] = field(default_factory=list)
    #: lines comparing the map with the sheet rows in effect (changed, equal, replaced)
    diff_lines: list[str] = field(default_factory=list)
    #: models a sheet already prices, left out of the new sheet
    kept_out: list[str] = field(default_factory=list)
    #: rows dropped because ``check`` refuses them (id, reason)
    refused: list[tuple[str, str]] = field(default_factory=list)


def _row(entry: MapPrice) -> dict[str, Any]:
    """A sheet row with the map's figures (USD per 1M tokens)."""
    row: dict[str, Any] = {"id": entry.model_id, "input": entry.input}
    if entry.cached_input is not None:
        row["cached_input"] = entry.cached_input
    if entry.cache_write_input is not None and entry.cache_write_input > 0:
        row["cache_write_input"] = entry.cache_write_input
    row["output"] = entry.output
    if entry.batch_input is not None and entry.batch_output is not None:
        row["batch"] = {"input": entry.batch_input, "output": entry.batch_output}
    tiers = []
    for threshold, inp, out in entry.tiers:
        if inp is None or out is None or not entry.input or not entry.output:
            continue
        tiers.append({"name": f"above-{threshold // 1000}k",
                      "above_input_tokens": threshold,
                      "input_multiplier": round(inp / entry.input, 6),
                      "output_multiplier": round(out / entry.output, 6)})
    if tiers:
        row["tiers"] = tiers
    if entry.source:
        row["source"] = entry.source
    row["confidence"] = CONFIDENCE
    if entry.deprecation_date:
        row["status"] = f"deprecation_date {entry.deprecation_date} (litellm)"
    return row


def _to_confirm(entry: MapPrice, row: dict[str, Any]) -> list[str]:
    """What a person must check on the provider's page for one drafted row."""
    todo = ["input/output"]
    todo.append("cached input" if "cached_input" in row else
                "whether cache hits are discounted (no cached price in the map)")
    if "batch" in row:
        todo.append("batch prices")
    if "tiers" in row:
        todo.append("long-context tiers (the multipliers apply to the whole request here)")
    if entry.deprecation_date:
        todo.append(f"the shutdown date ({entry.deprecation_date} in the map)")
    return todo


def _header(provider: str, lmap: LitellmMap, on: _dt.date, today: _dt.date,
            todo: list[str], kept_out: list[str], refused: list[tuple[str, str]]) -> str:
    lines = [
        f"# {provider}: drafted by `slmbench pricing import {provider} --from-litellm` on "
        f"{today.isoformat()}",
        f"# from the {lmap.label} (sha256 {lmap.sha256[:12]}). USD per 1M tokens.",
        "# Every figure here rests on litellm's map alone (no dates, secondary source).",
        "# Confirm by hand on the provider's pricing page, then raise each row's confidence:",
        *[f"#   - {t}" for t in todo],
        f"#   - that each price applied from {on.isoformat()} (effective_from)",
    ]
    if kept_out:
        lines.append("# Left out, already priced by a sheet in effect (see the import's diff):")
        lines += [f"#   - {m}" for m in kept_out]
    if refused:
        lines.append("# Left out, refused by `slmbench pricing check`:")
        lines += [f"#   - {m}: {why}" for m, why in refused]
    return "\n".join(lines) + "\n"


def _dump(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=100)


def _refusals(provider: str, doc: dict[str, Any]) -> list[tuple[str, str]]:
    """Rows ``check`` would refuse (a unit slip in the map, an output price of 0, ...)."""
    with tempfile.TemporaryDirectory() as tmp:
        p = Path(tmp) / provider / f"{doc['effective_from']}.yaml"
        p.parent.mkdir(parents=True)
        p.write_text(_dump(doc), encoding="utf-8")
        parsed = parse_sheet_file(p)
        problems = [*parsed.problems, *_price_rules(parsed)]
    out = []
    for prob in problems:
        if prob.is_error and prob.field and prob.field.startswith("models["):
            out.append((prob.field[7:].split("]", 1)[0], prob.message))
    return out


def import_from_litellm(provider: str, book: PriceBook, lmap: LitellmMap, *,
                        out: Path, on: _dt.date, today: _dt.date | None = None,
                        models: Sequence[str] = (), include_existing: bool = False,
                        shown: Any = str) -> ImportResult:
    """Draft ``out`` (a new sheet of ``provider`` effective ``on``) from the map; see module."""
    today = today or _dt.date.today()
    if out.exists():
        raise InputError("refusing to overwrite an existing file; choose another --out",
                         file=out)
    entries = lmap.of_provider(provider)
    if not entries:
        raise InputError("litellm's map prices no model of this provider", field="PROVIDER",
                         value=provider)
    wanted = {m.lower().removeprefix(provider.lower() + "/") for m in models}
    unknown = wanted - set(entries)
    if unknown:
        raise InputError(f"not in {lmap.label} under {provider}", field="--model",
                         value=sorted(unknown)[0])
    result = ImportResult(path=out, text="")
    chosen: list[MapPrice] = []
    for key, entry in sorted(entries.items()):
        if (wanted and key not in wanted) or not entry.priced:
            continue
        if not wanted and entry.mode is not None and entry.mode not in ("chat", "completion",
                                                                        "responses"):
            continue
        if not wanted and entry.deprecation_date and entry.deprecation_date < on.isoformat():
            continue
        current: TokenPrice | None = book.lookup(f"{provider}/{entry.model_id}", on)
        if current is not None:
            diffs = compare(current, entry)
            where = f"{shown(current.sheet_path)}, confidence {current.confidence or '-'}"
            if diffs:
                result.diff_lines.append(f"~ {provider}/{entry.model_id} differs from {where}:")
                result.diff_lines += [f"    {d}" for d in diffs]
            else:
                result.diff_lines.append(f"= {provider}/{entry.model_id} same as {where}")
            if current.effective_from == on:
                result.kept_out.append(f"{entry.model_id} (a sheet of the same date prices it)")
                continue
            if not include_existing:
                result.kept_out.append(entry.model_id)
                continue
            result.diff_lines.append(f"  ! the new row REPLACES that row from {on.isoformat()}")
        chosen.append(entry)
    if not chosen:
        raise InputError("nothing to import: every model is already priced by a sheet in "
                         "effect (pass --include-existing to draft them anyway) or filtered out",
                         field="PROVIDER", value=provider)
    doc: dict[str, Any] = {
        "provider": provider, "currency": "USD", "unit": "per_1m_tokens",
        "effective_from": on.isoformat(), "retrieved": today.isoformat(),
        "source": [lmap.label] + sorted({e.source for e in chosen if e.source}),
        "confidence": CONFIDENCE,
        "models": [_row(e) for e in chosen],
    }
    result.refused = _refusals(provider, doc)
    if result.refused:
        bad = {m.lower() for m, _ in result.refused}
        doc["models"] = [r for r in doc["models"] if r["id"].lower() not in bad]
        chosen = [e for e in chosen if e.model_id.lower() not in bad]
        if not doc["models"]:
            raise InputError("every drafted row is refused by `pricing check`: "
                             + "; ".join(f"{m}: {w}" for m, w in result.refused),
                             field="PROVIDER", value=provider)
    todo: list[str] = []
    for entry, row in zip(chosen, doc["models"], strict=True):
        todo.append(f"{entry.model_id}: " + ", ".join(_to_confirm(entry, row)))
    result.text = (_header(provider, lmap, on, today, todo, result.kept_out, result.refused)
                   + _dump(doc))
    result.rows = [r["id"] for r in doc["models"]]
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "x", encoding="utf-8") as fh:  # "x": never overwrite, even in a race
        fh.write(result.text)
    return result


def render_import(result: ImportResult, shown: Any = str) -> str:
    lines = [*result.diff_lines]
    if result.refused:
        lines += [f"refused by check: {m}: {why}" for m, why in result.refused]
    lines.append(f"wrote {len(result.rows)} row(s) to {shown(str(result.path))} "
                 f"(confidence: {CONFIDENCE}); confirm the figures listed in its header")
    if result.kept_out:
        lines.append(f"left out {len(result.kept_out)} model(s) a sheet already prices "
                     "(--include-existing drafts them too, replacing those rows from the "
                     "sheet's date)")
    return "\n".join(lines) + "\n"


__all__ = ["CONFIDENCE", "ImportResult", "import_from_litellm", "render_import", "same"]
