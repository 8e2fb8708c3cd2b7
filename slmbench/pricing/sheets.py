"""Dated pricing sheets: parse, validate and look up prices.

A *pricing directory* holds YAML sheets, one per provider per effective date
(``<dir>/<provider>/<YYYY-MM-DD>.yaml``) plus hourly-compute sheets (``kind: hardware``).
See ``pricing/README.md`` for the format and ``sheet.schema.json`` for the schema.

The date rule: for a model and a date ``on``, the price in effect is the row from the sheet with
the latest ``effective_from <= on``.  When several pricing directories are given, a later directory
(e.g. the user's ``--pricing DIR``) overrides an earlier one for the same model and the same
``effective_from``.  A model that no sheet prices is *unpriced* (``lookup`` returns ``None``).

The field names (which keys each mapping allows, which are required, which model-row fields are
prices) are read from ``sheet.schema.json``, so the schema and this validator cannot disagree on
them: a price added to the schema's ``modelRow`` is accepted, range-checked and carried on
:class:`TokenPrice` without a second list to keep in step.  Types and ranges are checked here by
hand, because the loader must name file, field and value in one line and must not need
``jsonschema`` to start.

Only the standard library and PyYAML are imported here, so ``import slmbench.pricing`` stays fast.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from slmbench.errors import InputError

CURRENCY = "USD"
TOKEN_UNIT = "per_1m_tokens"
SHEET_SUFFIXES = (".yaml", ".yml")

#: marker for "no value" in :class:`Problem` (``None`` is a legitimate YAML value)
NO_VALUE: Any = ...

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_PROVIDER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

SCHEMA_PATH = Path(__file__).with_name("sheet.schema.json")
_SCHEMA_DEFS: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))["$defs"]
_PRICE_REF = "#/$defs/price"


def _keys(definition: dict[str, Any]) -> frozenset[str]:
    return frozenset(definition["properties"])


_MODEL_ROW = _SCHEMA_DEFS["modelRow"]
_PROVIDER_SHEET_KEYS = _keys(_SCHEMA_DEFS["providerSheet"])
_HARDWARE_SHEET_KEYS = _keys(_SCHEMA_DEFS["hardwareSheet"])
_MODEL_KEYS = _keys(_MODEL_ROW)
_MACHINE_KEYS = _keys(_SCHEMA_DEFS["machineRow"])
_TIER_KEYS = _keys(_SCHEMA_DEFS["tier"])
_BATCH_KEYS = _keys(_MODEL_ROW["properties"]["batch"])
_OFF_PEAK_KEYS = _keys(_MODEL_ROW["properties"]["off_peak"])
_DERIVATION_KEYS = _keys(_SCHEMA_DEFS["machineRow"]["properties"]["derivation"])

#: a model row's own prices (USD per 1M tokens), in schema order; each is a :class:`TokenPrice`
#: field of the same name
ROW_PRICE_FIELDS: tuple[str, ...] = tuple(
    k for k, v in _MODEL_ROW["properties"].items() if v.get("$ref") == _PRICE_REF)
_REQUIRED_ROW_FIELDS = frozenset(_MODEL_ROW["required"])
#: how each price is named in an error message
_PRICE_WHAT = {
    "input": "USD per 1M input tokens",
    "output": "USD per 1M output tokens",
    "cached_input": "USD per 1M cached input tokens",
    "cache_write_input": "USD per 1M cache-write input tokens",
}


# --------------------------------------------------------------------------------------------
# data classes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Problem:
    """One problem found in a pricing sheet. ``severity`` is ``"error"`` or ``"warning"``."""

    file: str
    field: str | None
    value: Any
    message: str
    severity: str = "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_input_error(self) -> InputError:
        return InputError(self.message, file=self.file, field=self.field, value=self.value)

    def __str__(self) -> str:
        parts = [self.file]
        if self.field:
            parts.append(f"field '{self.field}'")
        if self.value is not NO_VALUE:
            text = repr(self.value)
            parts.append(f"value {text if len(text) <= 80 else text[:77] + '...'}")
        return f"{self.severity}: {', '.join(parts)}: {self.message}"


@dataclass(frozen=True)
class Tier:
    """A price tier that applies to a whole request whose input tokens exceed a threshold."""

    name: str
    above_input_tokens: int
    input_multiplier: float
    output_multiplier: float


@dataclass(frozen=True)
class OffPeak:
    """Off-peak prices (USD per 1M tokens), e.g. DeepSeek's discounted hours."""

    input: float
    output: float
    cached_input: float | None = None
    hours_utc: str | None = None


@dataclass(frozen=True)
class Sheet:
    """One parsed sheet file (provider or hardware)."""

    path: str
    sha256: str
    kind: str  # "provider" | "hardware"
    provider: str | None
    effective_from: _dt.date
    retrieved: _dt.date
    source: tuple[str, ...]
    confidence: str | None
    note: str | None
    n_rows: int
    dir_index: int = 0
    root: str = ""


@dataclass(frozen=True)
class TokenPrice:
    """Per-token prices for one model from one dated sheet, in USD per 1M tokens."""

    model_id: str
    provider: str
    input: float
    output: float
    cached_input: float | None
    batch_input: float | None
    batch_output: float | None
    tiers: tuple[Tier, ...]
    sheet_path: str
    sheet_sha256: str
    effective_from: _dt.date
    retrieved: _dt.date
    source: tuple[str, ...]
    confidence: str | None
    aliases: tuple[str, ...] = ()
    status: str | None = None
    note: str | None = None
    as_of: str | None = None
    off_peak: OffPeak | None = None
    #: price of input tokens written to the provider's prompt cache; ``None``: billed as input
    cache_write_input: float | None = None
    dir_index: int = field(default=0, repr=False)

    @property
    def qualified_id(self) -> str:
        return f"{self.provider}/{self.model_id}"

    @property
    def has_batch(self) -> bool:
        return self.batch_input is not None and self.batch_output is not None

    def match_keys(self) -> tuple[str, ...]:
        """Lower-cased ids this row answers to (without the provider prefix)."""
        return tuple(dict.fromkeys(k.lower() for k in (self.model_id, *self.aliases)))

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record of the price and where it came from (for result files)."""
        return {
            "model_id": self.model_id,
            "provider": self.provider,
            "currency": CURRENCY,
            "unit": TOKEN_UNIT,
            "input": self.input,
            "cached_input": self.cached_input,
            "cache_write_input": self.cache_write_input,
            "output": self.output,
            "batch_input": self.batch_input,
            "batch_output": self.batch_output,
            "tiers": [t.__dict__.copy() for t in self.tiers],
            "off_peak": None if self.off_peak is None else self.off_peak.__dict__.copy(),
            "effective_from": self.effective_from.isoformat(),
            "retrieved": self.retrieved.isoformat(),
            "source": list(self.source),
            "confidence": self.confidence,
            "status": self.status,
            "sheet_path": self.sheet_path,
            "sheet_sha256": self.sheet_sha256,
        }


@dataclass(frozen=True)
class HourlyRate:
    """Hourly price of a machine (cloud instance, rented GPU, or an amortized owned card)."""

    id: str
    usd_per_hour: float
    sheet_path: str
    sheet_sha256: str
    effective_from: _dt.date
    retrieved: _dt.date
    source: tuple[str, ...]
    confidence: str | None = None
    hardware: str | None = None
    region: str | None = None
    aliases: tuple[str, ...] = ()
    status: str | None = None
    note: str | None = None
    as_of: str | None = None
    derivation: dict[str, float] | None = field(default=None, compare=False)
    dir_index: int = field(default=0, repr=False)

    def match_keys(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(k.lower() for k in (self.id, *self.aliases)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "usd_per_hour": self.usd_per_hour,
            "currency": CURRENCY,
            "hardware": self.hardware,
            "region": self.region,
            "effective_from": self.effective_from.isoformat(),
            "retrieved": self.retrieved.isoformat(),
            "source": list(self.source),
            "confidence": self.confidence,
            "sheet_path": self.sheet_path,
            "sheet_sha256": self.sheet_sha256,
        }


@dataclass
class ParsedSheet:
    """Result of reading one file: what parsed, and every problem found on the way."""

    path: str
    sheet: Sheet | None = None
    prices: list[TokenPrice] = field(default_factory=list)
    rates: list[HourlyRate] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: rows of a sheet whose header is broken: sanity-checked by ``check``, never looked up
    unusable_prices: list[TokenPrice] = field(default_factory=list)
    unusable_rates: list[HourlyRate] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# YAML reading
# --------------------------------------------------------------------------------------------


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (a silent overwrite in plain PyYAML)."""


def _construct_mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    mapping: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            hash(key)
        except TypeError as exc:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark, "found an unhashable key",
                key_node.start_mark,
            ) from exc
        if key in mapping:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"found duplicate key {key!r}", key_node.start_mark,
            )
        mapping[key] = loader.construct_object(value_node, deep=deep)
    return mapping


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - SafeLoader subclass


# --------------------------------------------------------------------------------------------
# validation helpers
# --------------------------------------------------------------------------------------------


class _Ctx:
    """Collects problems for one file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def err(self, field_: str | None, value: Any, message: str) -> None:
        self.problems.append(Problem(self.path, field_, value, message, "error"))

    def warn(self, field_: str | None, value: Any, message: str) -> None:
        self.problems.append(Problem(self.path, field_, value, message, "warning"))


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _number(ctx: _Ctx, doc: dict, key: str, where: str, *, required: bool, what: str) -> Any:
    """Return a finite non-negative float, None when absent/invalid (problem recorded)."""
    fname = f"{where}.{key}" if where else key
    if key not in doc:
        if required:
            ctx.err(fname, NO_VALUE, f"missing required field '{key}' ({what})")
        return None
    v = doc[key]
    if not _is_number(v):
        hint = ""
        if isinstance(v, str):
            stripped = v.strip().lstrip("$").replace(",", "")
            try:
                float(stripped)
                hint = " (write it without quotes, '$' or ',')"
            except ValueError:
                hint = ""
        ctx.err(fname, v, f"must be a number ({what}), not {type(v).__name__}{hint}")
        return None
    fv = float(v)
    if not math.isfinite(fv):
        ctx.err(fname, v, f"must be a finite number ({what})")
        return None
    if fv < 0:
        ctx.err(fname, v, f"negative price is not allowed ({what})")
        return None
    return fv


def _text(ctx: _Ctx, doc: dict, key: str, where: str, *, required: bool = False) -> str | None:
    fname = f"{where}.{key}" if where else key
    if key not in doc:
        if required:
            ctx.err(fname, NO_VALUE, f"missing required field '{key}'")
        return None
    v = doc[key]
    if isinstance(v, _dt.date):  # e.g. `as_of: 2026-06-17`
        return v.isoformat()
    if _is_number(v) and key in ("as_of", "status", "note", "confidence"):
        return str(v)
    if not isinstance(v, str) or not v.strip():
        ctx.err(fname, v, "must be a non-empty string")
        return None
    return v.strip()


def _date(ctx: _Ctx, doc: dict, key: str) -> _dt.date | None:
    if key not in doc:
        ctx.err(key, NO_VALUE, f"missing required field '{key}' (a date, YYYY-MM-DD)")
        return None
    v = doc[key]
    if isinstance(v, _dt.datetime):
        ctx.err(key, v, "must be a date (YYYY-MM-DD) without a time of day")
        return None
    if isinstance(v, _dt.date):
        return v
    if isinstance(v, str) and _DATE_RE.match(v.strip()):
        try:
            return _dt.date.fromisoformat(v.strip())
        except ValueError:
            ctx.err(key, v, "is not a real calendar date (YYYY-MM-DD)")
            return None
    ctx.err(key, v, "must be a date in ISO form YYYY-MM-DD (e.g. 2026-11-22)")
    return None


def _sources(ctx: _Ctx, doc: dict, key: str, where: str, *, required: bool) -> tuple[str, ...]:
    fname = f"{where}.{key}" if where else key
    if key not in doc or doc[key] is None:
        if required:
            ctx.err(fname, doc.get(key, NO_VALUE),
                    "missing source: every sheet must say where its prices come from "
                    "(a URL or a list of URLs)")
        return ()
    v = doc[key]
    items = [v] if isinstance(v, str) else v
    if not isinstance(items, list) or not items:
        ctx.err(fname, v, "source must be a non-empty string or a non-empty list of strings")
        return ()
    out = []
    for i, s in enumerate(items):
        if not isinstance(s, str) or not s.strip():
            ctx.err(f"{fname}[{i}]", s, "each source must be a non-empty string")
            continue
        out.append(s.strip())
    return tuple(out)


def _unknown_keys(ctx: _Ctx, doc: dict, allowed: set[str], where: str) -> None:
    for k in doc:
        if not isinstance(k, str) or k not in allowed:
            fname = f"{where}.{k}" if where else str(k)
            ctx.err(fname, k, f"unknown field; allowed: {', '.join(sorted(allowed))}")


def _aliases(ctx: _Ctx, row: dict, where: str) -> tuple[str, ...]:
    if "aliases" not in row or row["aliases"] is None:
        return ()
    v = row["aliases"]
    if not isinstance(v, list):
        ctx.err(f"{where}.aliases", v, "must be a list of strings")
        return ()
    out = []
    for i, a in enumerate(v):
        if not isinstance(a, str) or not a.strip():
            ctx.err(f"{where}.aliases[{i}]", a, "each alias must be a non-empty string")
            continue
        out.append(a.strip())
    return tuple(out)


def _row_label(row: Any, index: int) -> str:
    if isinstance(row, dict):
        rid = row.get("id")
        if isinstance(rid, str) and rid.strip():
            return f"[{rid.strip()}]"
    return f"[#{index}]"


def _tiers(ctx: _Ctx, row: dict, where: str) -> tuple[Tier, ...]:
    if "tiers" not in row or row["tiers"] is None:
        return ()
    v = row["tiers"]
    if not isinstance(v, list):
        ctx.err(f"{where}.tiers", v, "must be a list of tiers")
        return ()
    out: list[Tier] = []
    seen: set[int] = set()
    for i, t in enumerate(v):
        tw = f"{where}.tiers[{i}]"
        if not isinstance(t, dict):
            ctx.err(tw, t, "each tier must be a mapping with name, above_input_tokens, "
                    "input_multiplier, output_multiplier")
            continue
        n_before = len(ctx.problems)
        _unknown_keys(ctx, t, _TIER_KEYS, tw)
        name = _text(ctx, t, "name", tw, required=True)
        above = t.get("above_input_tokens", NO_VALUE)
        if above is NO_VALUE:
            ctx.err(f"{tw}.above_input_tokens", NO_VALUE,
                    "missing required field 'above_input_tokens' (an integer token count)")
        elif not isinstance(above, int) or isinstance(above, bool) or above <= 0:
            ctx.err(f"{tw}.above_input_tokens", above, "must be a positive integer token count")
        elif above in seen:
            ctx.err(f"{tw}.above_input_tokens", above, "two tiers with the same threshold")
        im = _number(ctx, t, "input_multiplier", tw, required=True, what="multiplier")
        om = _number(ctx, t, "output_multiplier", tw, required=True, what="multiplier")
        for key, m in (("input_multiplier", im), ("output_multiplier", om)):
            if m is not None and m == 0:
                ctx.err(f"{tw}.{key}", t[key], "multiplier must be greater than 0")
        if len(ctx.problems) == n_before and name is not None:
            seen.add(above)
            out.append(Tier(name, int(above), float(im), float(om)))
    return tuple(sorted(out, key=lambda x: x.above_input_tokens))


def _batch(ctx: _Ctx, row: dict, where: str) -> tuple[float | None, float | None]:
    if "batch" not in row or row["batch"] is None:
        return None, None
    b = row["batch"]
    bw = f"{where}.batch"
    if not isinstance(b, dict):
        ctx.err(bw, b, "must be a mapping {input: <price>, output: <price>}")
        return None, None
    _unknown_keys(ctx, b, _BATCH_KEYS, bw)
    bi = _number(ctx, b, "input", bw, required=True, what="USD per 1M batch input tokens")
    bo = _number(ctx, b, "output", bw, required=True, what="USD per 1M batch output tokens")
    if bi is None or bo is None:
        return None, None
    return bi, bo


def _off_peak(ctx: _Ctx, row: dict, where: str) -> OffPeak | None:
    if "off_peak" not in row or row["off_peak"] is None:
        return None
    o = row["off_peak"]
    ow = f"{where}.off_peak"
    if not isinstance(o, dict):
        ctx.err(ow, o, "must be a mapping {input:, output:, cached_input:, hours_utc:}")
        return None
    n_before = len(ctx.problems)
    _unknown_keys(ctx, o, _OFF_PEAK_KEYS, ow)
    oi = _number(ctx, o, "input", ow, required=True, what="USD per 1M off-peak input tokens")
    oo = _number(ctx, o, "output", ow, required=True, what="USD per 1M off-peak output tokens")
    oc = _number(ctx, o, "cached_input", ow, required=False, what="USD per 1M tokens")
    hours = _text(ctx, o, "hours_utc", ow)
    if len(ctx.problems) != n_before or oi is None or oo is None:
        return None
    return OffPeak(oi, oo, oc, hours)


def _check_duplicates(ctx: _Ctx, rows: Sequence[Any], kind: str) -> None:
    """Record an error for every id/alias used twice in the same sheet."""
    seen: dict[str, str] = {}
    for r in rows:
        for i, key in enumerate(r.match_keys()):
            label = f"{kind}[{r.model_id if kind == 'models' else r.id}]"
            fname = f"{label}.id" if i == 0 else f"{label}.aliases"
            if key in seen:
                ctx.err(fname, key, f"duplicate row: '{key}' is already priced by {seen[key]} "
                        "in this sheet")
            else:
                seen[key] = label


# --------------------------------------------------------------------------------------------
# sheet parsing
# --------------------------------------------------------------------------------------------


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def parse_sheet_file(path: str | Path, *, dir_index: int = 0, root: str | Path = "") -> ParsedSheet:
    """Read and validate one sheet file; never raises for bad content (see ``problems``)."""
    p = Path(path)
    spath = str(p)
    ctx = _Ctx(spath)
    out = ParsedSheet(spath, problems=ctx.problems)
    try:
        data = p.read_bytes()
    except OSError as exc:
        ctx.err(None, NO_VALUE, f"cannot read file: {exc.strerror or exc}")
        return out
    sha = _sha256(data)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        ctx.err(None, NO_VALUE, f"not a YAML text file (not UTF-8: {exc.reason} at byte "
                f"{exc.start})")
        return out
    try:
        doc = _load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        ctx.err(None, NO_VALUE, f"invalid YAML{where}: {exc.problem or exc}")
        return out
    except RecursionError:
        ctx.err(None, NO_VALUE, "invalid YAML: nested too deeply")
        return out
    except Exception as exc:  # noqa: BLE001 - PyYAML raises ValueError etc. for bad scalars
        ctx.err(None, NO_VALUE, f"invalid YAML: {type(exc).__name__}: {exc}")
        return out
    if doc is None:
        ctx.err(None, NO_VALUE, "empty file: expected a pricing sheet mapping")
        return out
    if not isinstance(doc, dict):
        ctx.err(None, type(doc).__name__,
                "not a pricing sheet: the top level must be a mapping with 'provider' "
                "(or 'kind: hardware')")
        return out
    kind = doc.get("kind", "provider")
    if kind not in ("provider", "hardware"):
        ctx.err("kind", kind, "must be 'provider' (the default) or 'hardware'")
        return out
    if kind == "hardware":
        _parse_hardware(ctx, doc, out, sha, dir_index, str(root))
    else:
        _parse_provider(ctx, doc, out, sha, dir_index, str(root))
    return out


def _parse_common(ctx: _Ctx, doc: dict) -> tuple[Any, ...]:
    currency = doc.get("currency", NO_VALUE)
    if currency is NO_VALUE:
        ctx.err("currency", NO_VALUE, f"missing required field 'currency' (must be {CURRENCY})")
    elif currency != CURRENCY:
        ctx.err("currency", currency, f"only {CURRENCY} sheets are supported")
    eff = _date(ctx, doc, "effective_from")
    ret = _date(ctx, doc, "retrieved")
    src = _sources(ctx, doc, "source", "", required=True)
    conf = _text(ctx, doc, "confidence", "")
    note = _text(ctx, doc, "note", "")
    return eff, ret, src, conf, note


def _parse_provider(ctx: _Ctx, doc: dict, out: ParsedSheet, sha: str, dir_index: int,
                    root: str) -> None:
    _unknown_keys(ctx, doc, _PROVIDER_SHEET_KEYS, "")
    provider = doc.get("provider", NO_VALUE)
    if provider is NO_VALUE:
        ctx.err("provider", NO_VALUE, "missing required field 'provider' (e.g. openai)")
        provider = None
    elif not isinstance(provider, str) or not _PROVIDER_RE.match(provider):
        ctx.err("provider", provider,
                "must be a litellm provider name such as openai, anthropic, gemini, azure_ai")
        provider = None
    unit = doc.get("unit", NO_VALUE)
    if unit is NO_VALUE:
        ctx.err("unit", NO_VALUE, f"missing required field 'unit' (must be {TOKEN_UNIT})")
    elif unit != TOKEN_UNIT:
        ctx.err("unit", unit, f"only '{TOKEN_UNIT}' is supported")
    eff, ret, src, conf, note = _parse_common(ctx, doc)

    models = doc.get("models", NO_VALUE)
    rows: list[dict] = []
    if models is NO_VALUE:
        ctx.err("models", NO_VALUE, "missing required field 'models' (a list of model rows)")
    elif not isinstance(models, list) or not models:
        ctx.err("models", models, "must be a non-empty list of model rows")
    else:
        rows = models

    row_fields: list[dict[str, Any]] = []
    for i, row in enumerate(rows):
        where = f"models{_row_label(row, i)}"
        if not isinstance(row, dict):
            ctx.err(where, row, "each model row must be a mapping with id, input, output")
            continue
        n_before = len(ctx.problems)
        _unknown_keys(ctx, row, _MODEL_KEYS, where)
        rid = _text(ctx, row, "id", where, required=True)
        if rid is not None and provider and rid.lower().startswith(provider.lower() + "/"):
            ctx.err(f"{where}.id", rid, f"write the id without the '{provider}/' prefix "
                    "(the provider comes from the sheet)")
        batch_input, batch_output = _batch(ctx, row, where)
        fields = {
            "model_id": rid,
            **{key: _number(ctx, row, key, where, required=key in _REQUIRED_ROW_FIELDS,
                            what=_PRICE_WHAT.get(key, "USD per 1M tokens"))
               for key in ROW_PRICE_FIELDS},
            "batch_input": batch_input,
            "batch_output": batch_output,
            "tiers": _tiers(ctx, row, where),
            "off_peak": _off_peak(ctx, row, where),
            "aliases": _aliases(ctx, row, where),
            "source": _sources(ctx, row, "source", where, required=False),
            "confidence": _text(ctx, row, "confidence", where),
            "status": _text(ctx, row, "status", where),
            "note": _text(ctx, row, "note", where),
            "as_of": _text(ctx, row, "as_of", where),
        }
        if len(ctx.problems) == n_before:
            row_fields.append(fields)

    header_ok = not (eff is None or ret is None or not src or provider is None)
    prices = [
        TokenPrice(
            **{**f, "source": f["source"] or src, "confidence": f["confidence"] or conf},
            provider=provider or "?", sheet_path=ctx.path, sheet_sha256=sha,
            effective_from=eff or _dt.date.min, retrieved=ret or _dt.date.min,
            dir_index=dir_index,
        )
        for f in row_fields
    ]
    _check_duplicates(ctx, prices, "models")
    if not header_ok:
        out.unusable_prices = prices  # still sanity-checked by `check`, never looked up
        return
    out.prices = prices
    out.sheet = Sheet(
        path=ctx.path, sha256=sha, kind="provider", provider=provider, effective_from=eff,
        retrieved=ret, source=src, confidence=conf, note=note, n_rows=len(prices),
        dir_index=dir_index, root=root,
    )


def _parse_hardware(ctx: _Ctx, doc: dict, out: ParsedSheet, sha: str, dir_index: int,
                    root: str) -> None:
    _unknown_keys(ctx, doc, _HARDWARE_SHEET_KEYS, "")
    eff, ret, src, conf, note = _parse_common(ctx, doc)
    machines = doc.get("machines", NO_VALUE)
    rows: list = []
    if machines is NO_VALUE:
        ctx.err("machines", NO_VALUE, "missing required field 'machines' (a list of machines)")
    elif not isinstance(machines, list) or not machines:
        ctx.err("machines", machines, "must be a non-empty list of machine rows")
    else:
        rows = machines
    parsed: list[tuple] = []
    for i, row in enumerate(rows):
        where = f"machines{_row_label(row, i)}"
        if not isinstance(row, dict):
            ctx.err(where, row, "each machine row must be a mapping with id and usd_per_hour")
            continue
        n_before = len(ctx.problems)
        _unknown_keys(ctx, row, _MACHINE_KEYS, where)
        mid = _text(ctx, row, "id", where, required=True)
        rate = _number(ctx, row, "usd_per_hour", where, required=True, what="USD per hour")
        deriv = None
        if row.get("derivation") is not None:
            d = row["derivation"]
            dw = f"{where}.derivation"
            if not isinstance(d, dict):
                ctx.err(dw, d, "must be a mapping of " + ", ".join(sorted(_DERIVATION_KEYS)))
            else:
                _unknown_keys(ctx, d, _DERIVATION_KEYS, dw)
                vals = {k: _number(ctx, d, k, dw, required=True, what="a non-negative number")
                        for k in sorted(_DERIVATION_KEYS)}
                if vals["amortization_years"] == 0:
                    ctx.err(f"{dw}.amortization_years", 0, "must be greater than 0")
                if all(v is not None for v in vals.values()):
                    deriv = vals
        aliases = _aliases(ctx, row, where)
        fields = {k: _text(ctx, row, k, where)
                  for k in ("hardware", "region", "confidence", "status", "note", "as_of")}
        rsrc = _sources(ctx, row, "source", where, required=False)
        if len(ctx.problems) == n_before:
            parsed.append((mid, rate, deriv, aliases, fields, rsrc))
    header_ok = not (eff is None or ret is None or not src)
    rates = [
        HourlyRate(
            id=mid, usd_per_hour=rate, sheet_path=ctx.path, sheet_sha256=sha,
            effective_from=eff or _dt.date.min, retrieved=ret or _dt.date.min,
            source=rsrc or src,
            confidence=fields["confidence"] or conf, hardware=fields["hardware"],
            region=fields["region"], aliases=aliases, status=fields["status"],
            note=fields["note"], as_of=fields["as_of"], derivation=deriv, dir_index=dir_index,
        )
        for mid, rate, deriv, aliases, fields, rsrc in parsed
    ]
    _check_duplicates(ctx, rates, "machines")
    if not header_ok:
        out.unusable_rates = rates
        return
    out.rates = rates
    out.sheet = Sheet(
        path=ctx.path, sha256=sha, kind="hardware", provider=None, effective_from=eff,
        retrieved=ret, source=src, confidence=conf, note=note, n_rows=len(rates),
        dir_index=dir_index, root=root,
    )


# --------------------------------------------------------------------------------------------
# directory scanning and cross-sheet rules
# --------------------------------------------------------------------------------------------


def sheet_files(d: Path) -> list[Path]:
    """Every ``*.yaml``/``*.yml`` file under ``d`` (recursively, hidden paths skipped), sorted.

    A name starting with ``_`` is a file *about* the sheets (``_litellm_reviewed.yaml``), not a
    sheet."""
    if d.is_file():
        return [d]
    files = []
    for p in d.rglob("*"):
        rel = p.relative_to(d).parts
        if any(part.startswith(".") for part in rel) or p.name.startswith("_"):
            continue
        if p.suffix.lower() in SHEET_SUFFIXES and p.is_file():
            files.append(p)
    return sorted(files)


def scan_dirs(dirs: Iterable[str | Path]) -> tuple[list[ParsedSheet], list[Problem]]:
    """Parse every sheet under ``dirs``; problems about the directories themselves come second."""
    parsed: list[ParsedSheet] = []
    dir_problems: list[Problem] = []
    for i, d in enumerate(Path(x) for x in dirs):
        if not d.exists():
            dir_problems.append(Problem(str(d), None, NO_VALUE, "pricing directory not found"))
            continue
        files = sheet_files(d)
        if not files:
            dir_problems.append(
                Problem(str(d), None, NO_VALUE, "no pricing sheets (*.yaml) found in directory"))
            continue
        root = d if d.is_dir() else d.parent
        for f in files:
            parsed.append(parse_sheet_file(f, dir_index=i, root=root))
    return parsed, dir_problems


def overlap_problems(parsed: Sequence[ParsedSheet]) -> list[Problem]:
    """Same model (or machine) priced by two sheets of one provider, same date, same directory."""
    problems: list[Problem] = []
    seen: dict[tuple, str] = {}
    for ps in parsed:
        for pr in ps.prices:
            for key in pr.match_keys():
                k = ("m", pr.dir_index, pr.provider.lower(), pr.effective_from, key)
                other = seen.get(k)
                if other is not None and other != pr.sheet_path:
                    problems.append(Problem(
                        pr.sheet_path, f"models[{pr.model_id}].id", key,
                        f"overlap: '{pr.provider}/{key}' is also priced in {other} with the same "
                        f"effective_from {pr.effective_from.isoformat()}; keep it in one sheet",
                    ))
                else:
                    seen[k] = pr.sheet_path
        for hr in ps.rates:
            for key in hr.match_keys():
                k = ("h", hr.dir_index, hr.effective_from, key)
                other = seen.get(k)
                if other is not None and other != hr.sheet_path:
                    problems.append(Problem(
                        hr.sheet_path, f"machines[{hr.id}].id", key,
                        f"overlap: machine '{key}' is also priced in {other} with the same "
                        f"effective_from {hr.effective_from.isoformat()}; keep it in one sheet",
                    ))
                else:
                    seen[k] = hr.sheet_path
    return problems


#: ``2027-01-01.yaml`` or ``2027-01-01.<label>.yaml``: a second sheet of the same date, so that
#: rows added to a date whose sheet is already published (and pinned by its sha256) go in a new
#: file instead of changing the old one
_DATED_NAME_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?:\.[A-Za-z0-9][A-Za-z0-9_.-]*)?$")


def filename_problems(ps: ParsedSheet) -> list[Problem]:
    """A file named like a date (``YYYY-MM-DD`` or ``YYYY-MM-DD.<label>``) must carry that date
    as its ``effective_from``."""
    if ps.sheet is None:
        return []
    stem = Path(ps.path).stem
    m = _DATED_NAME_RE.match(stem)
    if m and m.group(1) != ps.sheet.effective_from.isoformat():
        return [Problem(ps.path, "effective_from", ps.sheet.effective_from.isoformat(),
                        f"file is named {stem} but effective_from differs; rename the file or fix "
                        "the date")]
    return []


# --------------------------------------------------------------------------------------------
# the price book
# --------------------------------------------------------------------------------------------


def _as_date(on: Any) -> _dt.date:
    if isinstance(on, _dt.datetime):
        return on.date()
    if isinstance(on, _dt.date):
        return on
    if isinstance(on, str) and _DATE_RE.match(on.strip()):
        try:
            return _dt.date.fromisoformat(on.strip())
        except ValueError:
            pass
    raise InputError("must be a date in ISO form YYYY-MM-DD", field="date", value=on)


_Dated = TypeVar("_Dated", TokenPrice, HourlyRate)


class PriceBook:
    """All loaded prices, answering "what did model X cost on date D?"."""

    def __init__(self, sheets: Sequence[Sheet], prices: Sequence[TokenPrice],
                 rates: Sequence[HourlyRate], dirs: Sequence[Path] = ()) -> None:
        self.sheets: list[Sheet] = list(sheets)
        self.prices: list[TokenPrice] = list(prices)
        self.rates: list[HourlyRate] = list(rates)
        self.dirs: list[Path] = list(dirs)
        self._bare: dict[str, list[TokenPrice]] = {}
        self._qual: dict[str, list[TokenPrice]] = {}
        for p in self.prices:
            for k in p.match_keys():
                self._bare.setdefault(k, []).append(p)
                self._qual.setdefault(f"{p.provider.lower()}/{k}", []).append(p)
        self._hw: dict[str, list[HourlyRate]] = {}
        for r in self.rates:
            for k in r.match_keys():
                self._hw.setdefault(k, []).append(r)
        self._by_path = {s.path: s for s in self.sheets}
        self._used: dict[str, Sheet] = {}

    # -- token prices ------------------------------------------------------------------------

    def candidates(self, model_id: str) -> list[TokenPrice]:
        """Every dated row for ``model_id`` (all sheets, all dates), oldest first.

        ``model_id`` may be bare (``gpt-5.4-nano``), provider-qualified (``openai/gpt-5.4-nano``)
        or an alias; matching is case-insensitive.  A bare id that several providers price is
        ambiguous and raises :class:`InputError` (write it as ``provider/id``).  Settings after
        ``?`` (``openai/x?reasoning_effort=low``) name a run of the model, not another price.
        """
        q = model_id.split("?", 1)[0].strip().lower()
        rows = self._qual.get(q)
        if not rows:
            rows = self._bare.get(q, [])
            providers = sorted({r.provider for r in rows})
            if len(providers) > 1:
                raise InputError(
                    f"model id is priced by several providers ({', '.join(providers)}); "
                    "write it as provider/id", field="model", value=model_id)
        return sorted(rows, key=lambda r: (r.effective_from, r.dir_index))

    def history(self, model_id: str) -> list[TokenPrice]:
        """Alias of :meth:`candidates`."""
        return self.candidates(model_id)

    def lookup(self, model_id: str, on: _dt.date) -> TokenPrice | None:
        """The price in effect for ``model_id`` on date ``on``; ``None`` means unpriced."""
        return self._in_effect(self.candidates(model_id), on)

    def is_overridden(self, price: TokenPrice) -> bool:
        """True when a later directory prices the same model at the same effective_from."""
        for r in self._qual.get(f"{price.provider.lower()}/{price.model_id.lower()}", []):
            if r.effective_from == price.effective_from and r.dir_index > price.dir_index:
                return True
        return False

    def models(self) -> list[str]:
        """Provider-qualified ids of every priced model, sorted."""
        return sorted({p.qualified_id for p in self.prices})

    # -- hardware ----------------------------------------------------------------------------

    def hardware_candidates(self, machine_id: str) -> list[HourlyRate]:
        rows = self._hw.get(machine_id.strip().lower(), [])
        return sorted(rows, key=lambda r: (r.effective_from, r.dir_index))

    def hardware(self, machine_id: str, on: _dt.date) -> HourlyRate | None:
        """The hourly rate in effect for ``machine_id`` on ``on``; ``None`` means unpriced."""
        return self._in_effect(self.hardware_candidates(machine_id), on)

    def _in_effect(self, rows: Sequence[_Dated], on: _dt.date) -> _Dated | None:
        """The row of the latest sheet in effect on ``on`` (a later --pricing dir wins a tie)."""
        day = _as_date(on)
        live = [r for r in rows if r.effective_from <= day]
        if not live:
            return None
        best = max(live, key=lambda r: (r.effective_from, r.dir_index))
        self._note_use(best.sheet_path)
        return best

    def machines(self) -> list[str]:
        return sorted({r.id for r in self.rates})

    # -- provenance --------------------------------------------------------------------------

    def _note_use(self, path: str) -> None:
        if path not in self._used and path in self._by_path:
            self._used[path] = self._by_path[path]

    def sheet(self, path: str) -> Sheet | None:
        return self._by_path.get(path)

    @property
    def sheets_used(self) -> list[tuple[str, str]]:
        """``(path, sha256)`` of every sheet a ``lookup``/``hardware`` answer came from so far."""
        return [(s.path, s.sha256) for s in self._used.values()]

    @staticmethod
    def sheet_of(item: TokenPrice | HourlyRate) -> tuple[str, str]:
        """``(path, sha256)`` of the sheet a price came from."""
        return item.sheet_path, item.sheet_sha256

    def __len__(self) -> int:
        return len(self.prices) + len(self.rates)

    def __repr__(self) -> str:
        return (f"PriceBook({len(self.sheets)} sheets, {len(self.prices)} token prices, "
                f"{len(self.rates)} hourly rates)")


def load_pricebook(dirs: Sequence[str | Path]) -> PriceBook:
    """Load every sheet under ``dirs`` (later dirs override earlier ones on equal dates).

    Raises :class:`InputError` (naming file, field and value) on the first hard problem: a
    missing directory, invalid YAML, a missing field, a wrong type, a negative price, a bad
    date, a missing source, a duplicate row or an overlap between two same-date sheets.
    """
    paths = [Path(d) for d in dirs]
    if not paths:
        raise InputError("no pricing directories given")
    parsed, dir_problems = scan_dirs(paths)
    for prob in dir_problems:
        raise prob.to_input_error()
    for ps in parsed:
        for prob in [*ps.problems, *filename_problems(ps)]:
            if prob.is_error:
                raise prob.to_input_error()
    for prob in overlap_problems(parsed):
        raise prob.to_input_error()
    sheets = [ps.sheet for ps in parsed if ps.sheet is not None]
    prices = [p for ps in parsed for p in ps.prices]
    rates = [r for ps in parsed for r in ps.rates]
    return PriceBook(sheets, prices, rates, paths)


def default_pricing_dirs() -> list[Path]:
    """``[<repo>/pricing]`` next to the installed package, else ``[./pricing]``."""
    import slmbench

    repo_dir = Path(slmbench.__file__).resolve().parent.parent / "pricing"
    if repo_dir.is_dir():
        return [repo_dir]
    return [Path.cwd() / "pricing"]
