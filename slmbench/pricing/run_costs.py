"""Costs of stored result rows: the join of a run's rows with dated pricing sheets.

* Token-priced models (APIs): each row's tokens × the sheet row in effect on the price date
  (the run's start date unless ``--price-date`` says otherwise).
* Hourly-priced models (llama.cpp in process, baselines): each row's measured latency × the
  hourly rate ÷ the concurrency actually achieved for that task × model (sum of latencies ÷
  wall time), so the total is the machine's wall time × its rate. Without ``--hardware`` or
  ``--hourly``, CPU runs are priced on :data:`DEFAULT_CPU_HARDWARE`; GPU-offloaded runs stay
  unpriced rather than being priced as a CPU.

An unpriced model gets ``None`` in every $ figure (never $0) and a warning naming it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.pricing.cost import hourly_cost, summarize_costs, token_cost
from slmbench.pricing.sheets import PriceBook, default_pricing_dirs, load_pricebook

DEFAULT_CPU_HARDWARE = "aws-c7i.large"
STALE_AFTER_DAYS = 90


@dataclass(frozen=True)
class PricingOptions:
    dirs: tuple[Path, ...] = ()
    price_date: str | None = None
    hardware: str | None = None
    hourly_usd: float | None = None
    volume_per_day: float | None = None


def shown_path(path: str) -> str:
    """Bundled sheets as ``pricing/...`` (the same on every machine); the user's as given."""
    from slmbench.paths import REPO_ROOT

    try:
        return str(Path(path).resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def parse_price_date(value: str | None, fallback: str | None = None) -> dt.date:
    text = value or (fallback or dt.date.today().isoformat())[:10]
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise InputError("dates are YYYY-MM-DD", field="--price-date", value=value) from None


def load_book(options: PricingOptions) -> PriceBook:
    """Bundled sheets first, then the user's ``--pricing`` dirs (which override them)."""
    dirs = [*default_pricing_dirs(), *options.dirs]
    for d in options.dirs:
        if not Path(d).is_dir():
            raise InputError("pricing directory not found", field="--pricing", value=str(d))
    return load_pricebook(dirs)


class RunCoster:
    """Prices every task × model of one run; collects warnings and the sheets used."""

    def __init__(self, options: PricingOptions, run_started: str | None) -> None:
        self.options = options
        self.on = parse_price_date(options.price_date, run_started)
        self.book = load_book(options)
        self.warnings: list[str] = []
        if options.hourly_usd is not None and options.hourly_usd < 0:
            raise InputError("must not be negative", field="--hourly", value=options.hourly_usd)
        if options.hardware and self.book.hardware(options.hardware, self.on) is None:
            known = ", ".join(self.book.machines())
            raise InputError(f"no hourly rate for this machine on {self.on} (known: {known})",
                             field="--hardware", value=options.hardware)

    def provenance(self) -> dict[str, Any]:
        return {"price_date": self.on.isoformat(),
                "sheets": [{"path": shown_path(p), "sha256": s}
                           for p, s in self.book.sheets_used]}

    def item_costs_and_basis(self, model: str, model_info: dict[str, Any],
                             rows: Sequence[dict[str, Any]], timings: Sequence[dict[str, Any]]
                             ) -> tuple[list[float | None], dict[str, Any]]:
        """USD of each row (in ``rows``' order) and how they were priced (``pricing`` of a
        summary entry). Unpriced: every cost is ``None``.

        ``rows`` and ``timings`` must be *all* the rows and timings of one task × model of a
        run: hourly prices divide by the concurrency measured over that whole group.
        """
        if model_info.get("pricing", "tokens") == "hourly":
            return self._hourly(model, model_info, rows, timings)
        return self._tokens(model, rows)

    def item_costs(self, model: str, model_info: dict[str, Any], rows: Sequence[dict[str, Any]],
                   timings: Sequence[dict[str, Any]]) -> list[float | None]:
        """USD of each row, priced exactly as :meth:`price` prices the group (None: unpriced)."""
        return self.item_costs_and_basis(model, model_info, rows, timings)[0]

    def price(self, model: str, model_info: dict[str, Any], rows: Sequence[dict[str, Any]],
              timings: Sequence[dict[str, Any]]) -> dict[str, Any]:
        costs, source = self.item_costs_and_basis(model, model_info, rows, timings)
        out = summarize_costs(costs, sum(bool(r.get("correct")) for r in rows),
                              self.options.volume_per_day)
        out["pricing"] = source
        return out

    def _tokens(self, model: str, rows: Sequence[dict[str, Any]]
                ) -> tuple[list[float | None], dict[str, Any]]:
        price = self.book.lookup(model, self.on)
        if price is None:
            self._warn(f"{model} is unpriced: no pricing sheet row in effect on {self.on}")
            return [None] * len(rows), {"basis": "tokens", "priced": False}
        age = (self.on - price.retrieved).days
        if age > STALE_AFTER_DAYS:
            self._warn(f"{model}: its price sheet was retrieved {age} days before {self.on} "
                       f"({price.sheet_path})")
        costs: list[float | None] = [
            token_cost(price, int(r.get("tokens_in") or 0), int(r.get("tokens_out") or 0),
                       cached_in=min(int(r.get("cached_tokens_in") or 0),
                                     int(r.get("tokens_in") or 0)))
            for r in rows
        ]
        return costs, {"basis": "tokens", "priced": True, "model_id": price.qualified_id,
                       "input_per_1m": price.input, "output_per_1m": price.output,
                       "cached_input_per_1m": price.cached_input,
                       "effective_from": price.effective_from.isoformat(),
                       "retrieved": price.retrieved.isoformat(),
                       "sheet": shown_path(price.sheet_path),
                       "sheet_sha256": price.sheet_sha256}

    def _hourly(self, model: str, model_info: dict[str, Any], rows: Sequence[dict[str, Any]],
                timings: Sequence[dict[str, Any]]) -> tuple[list[float | None], dict[str, Any]]:
        rate_info: dict[str, Any]
        if self.options.hourly_usd is not None:
            usd_per_hour = float(self.options.hourly_usd)
            rate_info = {"hardware": "--hourly", "usd_per_hour": usd_per_hour}
        else:
            machine = self.options.hardware
            if machine is None and model_info.get("gpu_offload"):
                self._warn(f"{model} is unpriced: it offloads to a GPU; give --hardware or "
                           "--hourly")
                return [None] * len(rows), {"basis": "hourly", "priced": False}
            machine = machine or DEFAULT_CPU_HARDWARE
            rate = self.book.hardware(machine, self.on)
            if rate is None:
                self._warn(f"{model} is unpriced: no hourly rate for {machine} on {self.on}")
                return [None] * len(rows), {"basis": "hourly", "priced": False}
            usd_per_hour = rate.usd_per_hour
            rate_info = {"hardware": rate.id, "usd_per_hour": usd_per_hour,
                         "effective_from": rate.effective_from.isoformat(),
                         "sheet": shown_path(rate.sheet_path),
                         "sheet_sha256": rate.sheet_sha256}
        latency_sum = sum(t.get("latency_sum_s", 0.0) for t in timings)
        wall = sum(t.get("wall_s", 0.0) for t in timings)
        concurrency = latency_sum / wall if wall > 0 and latency_sum > 0 else 1.0
        costs: list[float | None] = [
            hourly_cost(float(r.get("latency_s") or 0.0), usd_per_hour, concurrency)
            for r in rows
        ]
        return costs, {"basis": "hourly", "priced": True, "concurrency": concurrency, **rate_info}

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
