"""``slmbench pricing diff``: the sheets in effect on a date against litellm's bundled price map.

Why: the sheets are compiled by hand from dated sources, and litellm's map is the one other
price list most users already have installed.  Where the two disagree, one of them is wrong
or out of date, and a CI job that runs this command (exit 1 on disagreement) notices a
provider's change the day a litellm release records it.  Neither side is taken as the truth:
each disagreement is printed with both figures, and ``pricing/README.md`` explains the ones
that are known.

A disagreement checked by hand is listed, with its reason and both figures, in
``_litellm_reviewed.yaml`` of a pricing directory.  It is still printed, apart, but does not
fail the command, so a CI job fails only on what nobody has looked at yet.  The review holds
the figures themselves: when either side changes, the disagreement is new again.

The map is read as a file (``litellm/model_prices_and_context_window_backup.json`` of the
installed package, found without importing litellm, which takes seconds and is never imported
by ``pricing``) and its version comes from ``importlib.metadata``, so the comparison is offline
and says which map it used.  Prices in the map are USD per token; here they are USD per 1M
tokens, as in the sheets.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata
import importlib.util
import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.pricing.sheets import PriceBook, TokenPrice

MAP_FILE = "model_prices_and_context_window_backup.json"
#: map entries of these modes are language models a sheet could price (embeddings, images,
#: audio and rerankers are not)
TEXT_MODES = frozenset({"chat", "completion", "responses"})
#: the compared fields: (label, TokenPrice attribute, litellm key)
FIELDS: tuple[tuple[str, str, str], ...] = (
    ("input", "input", "input_cost_per_token"),
    ("cached", "cached_input", "cache_read_input_token_cost"),
    ("cache write", "cache_write_input", "cache_creation_input_token_cost"),
    ("output", "output", "output_cost_per_token"),
    ("batch input", "batch_input", "input_cost_per_token_batches"),
    ("batch output", "batch_output", "output_cost_per_token_batches"),
)
_TIER_KEY = re.compile(r"^(input|output)_cost_per_token_above_(\d+)k_tokens$")


def same(a: float | None, b: float | None) -> bool:
    """Equal as prices: the map's per-token floats times 1e6 carry rounding noise."""
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def per_1m(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(float(value) * 1_000_000, 9)
    return None


@dataclass(frozen=True)
class MapPrice:
    """One map entry's prices, USD per 1M tokens, in the sheets' terms."""

    key: str
    provider: str
    model_id: str
    input: float | None
    output: float | None
    cached_input: float | None
    cache_write_input: float | None
    batch_input: float | None
    batch_output: float | None
    #: ``(above_input_tokens, input, output)``, absolute prices, by threshold
    tiers: tuple[tuple[int, float | None, float | None], ...]
    mode: str | None
    deprecation_date: str | None
    source: str | None

    @property
    def priced(self) -> bool:
        return self.input is not None and self.output is not None

    def value(self, attr: str) -> float | None:
        return getattr(self, attr)


def map_price(key: str, entry: dict[str, Any]) -> MapPrice:
    """The sheet-shaped prices of one map entry (``tiered_pricing`` lists, as DashScope's
    entries use, become a base price and tiers)."""
    provider = str(entry.get("litellm_provider") or "")
    model_id = key[len(provider) + 1:] if key.lower().startswith(provider.lower() + "/") else key
    values = {attr: per_1m(entry.get(lkey)) for _, attr, lkey in FIELDS}
    tiers: dict[int, list[float | None]] = {}
    for k, v in entry.items():
        m = _TIER_KEY.match(k)
        if m:
            slot = tiers.setdefault(int(m.group(2)) * 1000, [None, None])
            slot[0 if m.group(1) == "input" else 1] = per_1m(v)
    tiered = entry.get("tiered_pricing")
    if isinstance(tiered, list) and values["input"] is None:
        for t in tiered:
            if not isinstance(t, dict) or not isinstance(t.get("range"), list) or not t["range"]:
                continue
            low = int(t["range"][0])
            inp, out = per_1m(t.get("input_cost_per_token")), per_1m(t.get("output_cost_per_token"))
            if low == 0:
                values["input"], values["output"] = inp, out
                if per_1m(t.get("cache_read_input_token_cost")) is not None:
                    values["cached_input"] = per_1m(t.get("cache_read_input_token_cost"))
            else:
                tiers[low] = [inp, out]
    dep = entry.get("deprecation_date")
    src = entry.get("source")
    return MapPrice(key=key, provider=provider, model_id=model_id,
                    tiers=tuple((k, v[0], v[1]) for k, v in sorted(tiers.items())),
                    mode=entry.get("mode"), deprecation_date=dep if isinstance(dep, str) else None,
                    source=src if isinstance(src, str) else None, **values)


@dataclass
class LitellmMap:
    """litellm's bundled price map, read as a file."""

    path: Path
    version: str | None
    sha256: str
    prices: list[MapPrice]
    _index: dict[str, dict[str, MapPrice]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for p in self.prices:
            self._index.setdefault(p.provider.lower(), {})[p.model_id.lower()] = p

    @property
    def label(self) -> str:
        return f"litellm {self.version or '(version unknown)'} bundled map"

    def providers(self) -> list[str]:
        return sorted(self._index)

    def of_provider(self, provider: str) -> dict[str, MapPrice]:
        """Model id (lower case, without the provider prefix) → entry."""
        return self._index.get(provider.lower(), {})

    def find(self, price: TokenPrice) -> MapPrice | None:
        """The map entry of a sheet row: its id or an alias under the row's provider."""
        entries = self.of_provider(price.provider)
        for key in price.match_keys():
            if key in entries:
                return entries[key]
        return None


def bundled_map_path() -> Path:
    """Where the installed litellm keeps its price map, found without importing litellm."""
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        raise InputError("litellm is not installed, so there is no bundled price map to read; "
                         "pass --litellm-json PATH", field="litellm")
    return Path(next(iter(spec.submodule_search_locations))) / MAP_FILE


def load_litellm_map(path: str | Path | None = None) -> LitellmMap:
    """The installed litellm's map (or the JSON file at ``path``), with its version."""
    p = Path(path) if path is not None else bundled_map_path()
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read the litellm price map: {exc.strerror or exc}",
                         file=p) from None
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise InputError(f"not a litellm price map (invalid JSON: {exc})", file=p) from None
    if not isinstance(doc, dict):
        raise InputError("not a litellm price map (expected a JSON object of models)", file=p)
    version = None
    if path is None:
        try:
            version = importlib.metadata.version("litellm")
        except importlib.metadata.PackageNotFoundError:
            version = None
    prices = [map_price(k, v) for k, v in doc.items()
              if isinstance(v, dict) and k != "sample_spec" and v.get("litellm_provider")]
    return LitellmMap(p, version, hashlib.sha256(data).hexdigest(), prices)


@dataclass(frozen=True)
class FieldDiff:
    what: str
    sheet: float | None
    litellm: float | None

    def __str__(self) -> str:
        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:g}"
        return f"{self.what}: sheet {f(self.sheet)}, litellm {f(self.litellm)}"


@dataclass(frozen=True)
class ModelDiff:
    """One sheet row that the map prices differently."""

    price: TokenPrice
    entry: MapPrice
    diffs: tuple[FieldDiff, ...]


def _sheet_tiers(p: TokenPrice) -> dict[int, tuple[float, float]]:
    return {t.above_input_tokens: (round(p.input * t.input_multiplier, 9),
                                   round(p.output * t.output_multiplier, 9)) for t in p.tiers}


def compare(price: TokenPrice, entry: MapPrice) -> tuple[FieldDiff, ...]:
    """Every field where a sheet row and a map entry disagree (one side missing included)."""
    out = [FieldDiff(label, getattr(price, attr), entry.value(attr))
           for label, attr, _ in FIELDS
           if not same(getattr(price, attr), entry.value(attr))]
    mine = _sheet_tiers(price)
    theirs = {t: (i, o) for t, i, o in entry.tiers}
    for threshold in sorted(set(mine) | set(theirs)):
        a, b = mine.get(threshold, (None, None)), theirs.get(threshold, (None, None))
        for n, side in enumerate(("input", "output")):
            if not same(a[n], b[n]):
                out.append(FieldDiff(f"{side} above {threshold:,} tokens", a[n], b[n]))
    return tuple(out)


REVIEWED_FILE = "_litellm_reviewed.yaml"


@dataclass(frozen=True)
class Review:
    """A disagreement checked by hand: the model, its fields' (sheet, litellm) figures, why."""

    model: str
    fields: dict[str, tuple[float | None, float | None]]
    why: str
    source: str

    def covers(self, diff: ModelDiff) -> bool:
        if diff.price.qualified_id.lower() != self.model.lower():
            return False
        for fd in diff.diffs:
            want = self.fields.get(fd.what)
            if want is None or not (same(want[0], fd.sheet) and same(want[1], fd.litellm)):
                return False
        return True


def _figure(value: Any, where: str, field_name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(
            value) or value < 0:
        raise InputError("must be a price in USD per 1M tokens (a number >= 0) or null",
                         file=where, field=field_name, value=value)
    return float(value)


def load_reviews(dirs: Any) -> list[Review]:
    """The reviewed disagreements of every pricing directory (none where it has no file)."""
    import yaml

    reviews: list[Review] = []
    for d in (Path(x) for x in dirs):
        path = (d if d.is_dir() else d.parent) / REVIEWED_FILE
        if not path.is_file():
            continue
        where = str(path)
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise InputError(f"not valid YAML: {exc}".splitlines()[0], file=where) from None
        entries = doc.get("reviewed") if isinstance(doc, dict) else None
        if not isinstance(entries, list):
            raise InputError("must hold a list 'reviewed' of {model, why, differs}", file=where,
                             field="reviewed", value=entries)
        for i, e in enumerate(entries):
            at = f"reviewed[{i}]"
            if not isinstance(e, dict) or not isinstance(e.get("model"), str) or not str(
                    e.get("why") or "").strip() or not isinstance(e.get("differs"), dict):
                raise InputError("needs model, why (not empty) and differs {field: [sheet, "
                                 "litellm]}", file=where, field=at, value=e)
            fields: dict[str, tuple[float | None, float | None]] = {}
            for name, pair in e["differs"].items():
                if not isinstance(pair, list) or len(pair) != 2:
                    raise InputError("must be [sheet, litellm] (USD per 1M tokens; null = "
                                     "none)", file=where, field=f"{at}.differs.{name}",
                                     value=pair)
                fields[str(name)] = (_figure(pair[0], where, f"{at}.differs.{name}"),
                                     _figure(pair[1], where, f"{at}.differs.{name}"))
            reviews.append(Review(e["model"], fields, " ".join(str(e["why"]).split()), where))
    return reviews


@dataclass
class DiffReport:
    on: _dt.date
    map: LitellmMap
    disagree: list[ModelDiff]
    agree: list[TokenPrice]
    #: sheet rows in effect that the map does not price
    only_sheets: list[TokenPrice]
    #: provider → text-model entries that no sheet row (of any date) prices
    only_litellm: dict[str, list[MapPrice]]
    #: entries left out of ``only_litellm`` because their deprecation date is before ``on``
    retired: dict[str, int]
    sheet_providers: frozenset[str]
    #: disagreements a review covers: (the disagreement, its review)
    reviewed: list[tuple[ModelDiff, Review]] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.disagree else 0


def in_effect(book: PriceBook, on: _dt.date) -> list[TokenPrice]:
    """The row in effect on ``on`` for every model any sheet prices, by provider and id."""
    seen: dict[str, TokenPrice] = {}
    for p in book.prices:
        row = book.lookup(p.qualified_id, on)
        if row is not None:
            seen[row.qualified_id.lower()] = row
    return [seen[k] for k in sorted(seen)]


def diff_pricebook(book: PriceBook, lmap: LitellmMap, on: _dt.date,
                   reviews: Any = ()) -> DiffReport:
    """``reviews`` (:func:`load_reviews`) move the disagreements they cover to ``reviewed``."""
    disagree, agree, only_sheets = [], [], []
    reviewed: list[tuple[ModelDiff, Review]] = []
    for price in in_effect(book, on):
        entry = lmap.find(price)
        if entry is None or not entry.priced:
            only_sheets.append(price)
            continue
        diffs = compare(price, entry)
        if diffs:
            found = ModelDiff(price, entry, diffs)
            review = next((r for r in reviews if r.covers(found)), None)
            if review is None:
                disagree.append(found)
            else:
                reviewed.append((found, review))
        else:
            agree.append(price)
    covered = {(p.provider.lower(), k) for p in book.prices for k in p.match_keys()}
    only_litellm: dict[str, list[MapPrice]] = {}
    retired: dict[str, int] = {}
    for provider in lmap.providers():
        for key, entry in sorted(lmap.of_provider(provider).items()):
            if (provider, key) in covered or not entry.priced or (
                    entry.mode is not None and entry.mode not in TEXT_MODES):
                continue
            if entry.deprecation_date and entry.deprecation_date < on.isoformat():
                retired[provider] = retired.get(provider, 0) + 1
                continue
            only_litellm.setdefault(provider, []).append(entry)
    return DiffReport(on, lmap, disagree, agree, only_sheets, only_litellm, retired,
                      frozenset(p.provider.lower() for p in book.prices), reviewed)


def render(report: DiffReport, *, list_all: bool = False,
           shown: Any = str) -> str:
    """The diff as text; ``list_all`` lists every map-only model instead of counts."""
    m = report.map
    lines = [f"Sheets in effect on {report.on.isoformat()} vs {m.label} "
             f"({shown(str(m.path))}, sha256 {m.sha256[:12]}); USD per 1M tokens.", ""]
    lines.append(f"{len(report.disagree)} model(s) disagree, "
                 + (f"{len(report.reviewed)} disagree as reviewed, " if report.reviewed else "")
                 + f"{len(report.agree)} agree, "
                 f"{len(report.only_sheets)} priced only by the sheets, "
                 f"{sum(map(len, report.only_litellm.values()))} priced only by litellm.")
    if report.disagree:
        lines += ["", "Disagreements:"]
        for d in report.disagree:
            lines.append(f"  {d.price.qualified_id} (litellm {d.entry.key}; "
                         f"{shown(d.price.sheet_path)})")
            lines += [f"    {fd}" for fd in d.diffs]
    if report.reviewed:
        lines += ["", "Reviewed disagreements (each figure as its review records; exit 0 on "
                  "these):"]
        for d, review in report.reviewed:
            lines.append(f"  {d.price.qualified_id}: " + "; ".join(map(str, d.diffs)))
            lines.append(f"    why: {review.why} ({shown(review.source)})")
    if report.only_sheets:
        lines += ["", "In the sheets, not priced by litellm:"]
        lines += [f"  {p.qualified_id} ({shown(p.sheet_path)})" for p in report.only_sheets]
    if report.only_litellm:
        lines += ["", "Priced by litellm, in no sheet (text models; "
                  + ("every one" if list_all else "counts per provider, --all lists them")
                  + "):"]
        ours = [pr for pr in sorted(report.only_litellm) if pr in report.sheet_providers]
        others = [pr for pr in sorted(report.only_litellm) if pr not in report.sheet_providers]
        for provider in ours if not list_all else [*ours, *others]:
            entries = report.only_litellm[provider]
            tag = " (has sheets)" if provider in report.sheet_providers else " (no sheet)"
            lines.append(f"  {provider}{tag}: {len(entries)}")
            if list_all:
                lines += [f"    {e.key}: {_pair(e)}" for e in entries]
        if others and not list_all:
            lines += textwrap.wrap(
                "providers with no sheet: " + ", ".join(
                    f"{pr} {len(report.only_litellm[pr])}" for pr in others),
                width=100, initial_indent="  ", subsequent_indent="    ")
    gone = sum(report.retired.values())
    if gone:
        lines.append(f"  (left out: {gone} map entries past their deprecation date)")
    lines.append("")
    lines.append("exit 1: the sheets and litellm disagree" if report.exit_code
                 else "no disagreement")
    return "\n".join(lines) + "\n"


def _pair(e: MapPrice) -> str:
    return f"{e.input:g} / {e.output:g}" if e.priced else "unpriced"


def rows_for(book: PriceBook, provider: str, on: _dt.date) -> list[TokenPrice]:
    return [p for p in in_effect(book, on) if p.provider.lower() == provider.lower()]


__all__ = ["REVIEWED_FILE", "DiffReport", "FieldDiff", "LitellmMap", "MapPrice", "ModelDiff",
           "Review", "bundled_map_path", "compare", "diff_pricebook", "in_effect",
           "load_litellm_map", "load_reviews", "map_price", "render", "same"]
