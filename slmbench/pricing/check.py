"""``slmbench pricing check``: find every problem in the pricing sheets, without stopping.

Besides the schema errors the loader refuses (bad YAML, missing/unknown field, wrong type,
negative price, bad date, missing source, duplicate row, same-date overlap), these sanity rules
apply.  Thresholds are deliberately loose: they catch unit mistakes, not unusual prices.

errors
  * a token price above ``MAX_TOKEN_PRICE`` ($1000 per 1M tokens);
  * a non-zero token price below ``MIN_TOKEN_PRICE`` ($0.0001 per 1M): looks like a per-token
    figure pasted into a per-1M sheet;
  * output price below 1/100 of the input price (output is never that much cheaper);
  * ``cached_input`` above ``input``; batch input/output above the standard price; off-peak
    above peak (discounts must not cost more);
  * a tier multiplier above ``MAX_MULTIPLIER`` (100);
  * an hourly rate above ``MAX_USD_PER_HOUR`` ($1000/h);
  * a ``derivation`` (amortized hardware) that does not reproduce ``usd_per_hour`` within 1 %;
  * ``retrieved`` after today (figures cannot come from the future);
  * ``retrieved`` more than ``MAX_SCHEDULE_DAYS`` (366) before ``effective_from``: nobody
    announces prices that far ahead, so one of the dates is probably a typo;
  * a file named ``YYYY-MM-DD.yaml`` whose ``effective_from`` is a different date.

warnings
  * input and output both 0 (the model would look free; leave it out to keep it unpriced);
  * output price 0 while input is not (fine for embeddings, odd for chat models);
  * ``cache_write_input`` below ``input``: providers charge cache writes at or above the input
    price, so a lower figure is most likely the cache-hit price in the wrong field;
  * a tier multiplier below 1 (a cheaper long-context tier is unusual);
  * an hourly rate of 0;
  * ``effective_from`` more than 2 years after today;
  * the newest sheet of a provider (or of the hardware sheets) was retrieved more than
    ``STALE_DAYS`` (90) days ago: re-check the provider's page;
  * a sheet stored in a directory whose name differs from its provider.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Sequence
from pathlib import Path

from slmbench.pricing.sheets import (
    NO_VALUE,
    ParsedSheet,
    Problem,
    filename_problems,
    overlap_problems,
    scan_dirs,
)

MAX_TOKEN_PRICE = 1000.0
MIN_TOKEN_PRICE = 0.0001
MIN_OUTPUT_TO_INPUT = 0.01
MAX_MULTIPLIER = 100.0
MAX_USD_PER_HOUR = 1000.0
MAX_SCHEDULE_DAYS = 366
FUTURE_WARN_DAYS = 730
STALE_DAYS = 90
HOURS_PER_YEAR = 8760.0

__all__ = ["Problem", "check_pricing", "STALE_DAYS"]


def _price_rules(ps: ParsedSheet) -> list[Problem]:
    out: list[Problem] = []
    f = ps.path
    for p in [*ps.prices, *ps.unusable_prices]:
        w = f"models[{p.model_id}]"
        named = [("input", p.input), ("output", p.output), ("cached_input", p.cached_input),
                 ("cache_write_input", p.cache_write_input),
                 ("batch.input", p.batch_input), ("batch.output", p.batch_output)]
        if p.off_peak is not None:
            named += [("off_peak.input", p.off_peak.input), ("off_peak.output", p.off_peak.output),
                      ("off_peak.cached_input", p.off_peak.cached_input)]
        for name, v in named:
            if v is None:
                continue
            if v > MAX_TOKEN_PRICE:
                out.append(Problem(f, f"{w}.{name}", v, f"absurd price: above ${MAX_TOKEN_PRICE:g} "
                                   "per 1M tokens (is the unit per_1m_tokens?)"))
            elif 0 < v < MIN_TOKEN_PRICE:
                out.append(Problem(f, f"{w}.{name}", v, f"absurd price: below ${MIN_TOKEN_PRICE:g} "
                                   "per 1M tokens; this looks like a per-token price (multiply "
                                   "by 1,000,000)"))
        if p.output == 0 and p.input == 0:
            out.append(Problem(f, f"{w}.input", 0.0,
                               "input and output prices are both 0: the model will look free "
                               "(leave the row out to keep it unpriced)", "warning"))
        elif p.output == 0 and p.input > 0:
            out.append(Problem(f, f"{w}.output", p.output,
                               "output price is 0 while input is not", "warning"))
        elif p.output < p.input * MIN_OUTPUT_TO_INPUT:
            out.append(Problem(f, f"{w}.output", p.output,
                               f"output is cheaper than 1/100 of input ({p.input:g}); probably a "
                               "unit or column mix-up"))
        if p.cached_input is not None and p.cached_input > p.input:
            out.append(Problem(f, f"{w}.cached_input", p.cached_input,
                               f"cached input costs more than uncached input ({p.input:g})"))
        if p.cache_write_input is not None and p.cache_write_input < p.input:
            out.append(Problem(f, f"{w}.cache_write_input", p.cache_write_input,
                               f"cache writes cost less than uncached input ({p.input:g}); is "
                               "this the cache-hit price (cached_input)?", "warning"))
        if p.batch_input is not None and p.batch_input > p.input:
            out.append(Problem(f, f"{w}.batch.input", p.batch_input,
                               f"batch input costs more than standard input ({p.input:g})"))
        if p.batch_output is not None and p.batch_output > p.output:
            out.append(Problem(f, f"{w}.batch.output", p.batch_output,
                               f"batch output costs more than standard output ({p.output:g})"))
        if p.off_peak is not None:
            for name, off, peak in (("input", p.off_peak.input, p.input),
                                    ("output", p.off_peak.output, p.output),
                                    ("cached_input", p.off_peak.cached_input, p.cached_input)):
                if off is not None and peak is not None and off > peak:
                    out.append(Problem(f, f"{w}.off_peak.{name}", off,
                                       f"off-peak price is above the peak price ({peak:g})"))
        for i, t in enumerate(p.tiers):
            for name, m in (("input_multiplier", t.input_multiplier),
                            ("output_multiplier", t.output_multiplier)):
                if m > MAX_MULTIPLIER:
                    out.append(Problem(f, f"{w}.tiers[{i}].{name}", m,
                                       f"absurd multiplier (above {MAX_MULTIPLIER:g})"))
                elif m < 1:
                    out.append(Problem(f, f"{w}.tiers[{i}].{name}", m,
                                       "tier multiplier below 1 makes long requests cheaper",
                                       "warning"))
    for r in [*ps.rates, *ps.unusable_rates]:
        w = f"machines[{r.id}]"
        if r.usd_per_hour > MAX_USD_PER_HOUR:
            out.append(Problem(f, f"{w}.usd_per_hour", r.usd_per_hour,
                               f"absurd hourly rate (above ${MAX_USD_PER_HOUR:g}/h)"))
        elif r.usd_per_hour == 0:
            out.append(Problem(f, f"{w}.usd_per_hour", 0, "hourly rate is 0", "warning"))
        d = r.derivation
        if d is not None and d["amortization_years"] > 0:
            expected = (d["purchase_usd"] / (d["amortization_years"] * HOURS_PER_YEAR)
                        + d["power_kw"] * d["usd_per_kwh"])
            if abs(expected - r.usd_per_hour) > 0.01 * max(expected, 1e-12):
                out.append(Problem(
                    f, f"{w}.usd_per_hour", r.usd_per_hour,
                    f"does not match its derivation: purchase_usd / (amortization_years x 8760) "
                    f"+ power_kw x usd_per_kwh = {expected:.6g}"))
    return out


def _date_rules(ps: ParsedSheet, today: _dt.date) -> list[Problem]:
    s = ps.sheet
    if s is None:
        return []
    out: list[Problem] = []
    if s.retrieved > today:
        out.append(Problem(ps.path, "retrieved", s.retrieved.isoformat(),
                           f"retrieved date is after today ({today.isoformat()})"))
    if (s.effective_from - s.retrieved).days > MAX_SCHEDULE_DAYS:
        out.append(Problem(ps.path, "retrieved", s.retrieved.isoformat(),
                           f"retrieved more than {MAX_SCHEDULE_DAYS} days before effective_from "
                           f"{s.effective_from.isoformat()}; one of the dates is probably wrong"))
    if (s.effective_from - today).days > FUTURE_WARN_DAYS:
        out.append(Problem(ps.path, "effective_from", s.effective_from.isoformat(),
                           "effective_from is more than 2 years in the future", "warning"))
    expected_dir = s.provider if s.kind == "provider" else "hardware"
    parent = Path(ps.path).parent
    if s.root and parent != Path(s.root) and expected_dir and parent.name != expected_dir:
        out.append(Problem(ps.path, "provider" if s.kind == "provider" else "kind",
                           expected_dir,
                           f"sheet is stored in directory '{parent.name}'; expected "
                           f"'{expected_dir}/'", "warning"))
    return out


def _stale_rules(parsed: Sequence[ParsedSheet], today: _dt.date) -> list[Problem]:
    newest: dict[str, ParsedSheet] = {}
    for ps in parsed:
        s = ps.sheet
        if s is None:
            continue
        group = (s.provider or "").lower() if s.kind == "provider" else "<hardware>"
        cur = newest.get(group)
        if cur is None or cur.sheet is None or (s.retrieved, s.effective_from) > (
            cur.sheet.retrieved, cur.sheet.effective_from
        ):
            newest[group] = ps
    out = []
    for ps in newest.values():
        assert ps.sheet is not None
        age = (today - ps.sheet.retrieved).days
        if age > STALE_DAYS:
            out.append(Problem(ps.path, "retrieved", ps.sheet.retrieved.isoformat(),
                               f"newest sheet for this provider was retrieved {age} days ago "
                               f"(more than {STALE_DAYS}); re-check the official prices",
                               "warning"))
    return out


def check_pricing(dirs: Sequence[str | Path], today: _dt.date | None = None) -> list[Problem]:
    """Every problem in the sheets under ``dirs`` (errors and warnings); never raises for bad
    sheets.  ``today`` defaults to the local date."""
    today = today or _dt.date.today()
    paths = [Path(d) for d in dirs]
    if not paths:
        return [Problem("<none>", None, NO_VALUE, "no pricing directories given")]
    parsed, problems = scan_dirs(paths)
    for ps in parsed:
        problems.extend(ps.problems)
        problems.extend(filename_problems(ps))
        problems.extend(_price_rules(ps))
        problems.extend(_date_rules(ps, today))
    problems.extend(overlap_problems(parsed))
    problems.extend(_stale_rules(parsed, today))
    return problems


def count_sheets(dirs: Sequence[str | Path]) -> int:
    parsed, _ = scan_dirs([Path(d) for d in dirs])
    return len(parsed)
