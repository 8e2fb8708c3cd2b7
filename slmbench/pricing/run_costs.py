"""Costs of stored result rows: the join of a run's rows with dated pricing sheets.

* Token-priced models (APIs): each row's tokens × the sheet row in effect on the price date
  (the run's start date unless ``--price-date`` says otherwise). ``cached_tokens_in`` (cache
  reads) and ``cache_write_tokens`` (cache writes) are parts of ``tokens_in``; a row written
  before the runner recorded one of them, or with ``null``, counts 0 there, which prices it
  exactly as before. ``reasoning_tokens`` are part of ``tokens_out`` and priced with it, so
  costing does not read them.
* Hourly-priced models (llama.cpp in process, baselines): each row's measured latency × the
  hourly rate ÷ the concurrency actually achieved for that task × model (sum of latencies ÷
  wall time), so the total is the machine's wall time × its rate. Without ``--hardware`` or
  ``--hourly``, CPU runs are priced on :data:`DEFAULT_CPU_HARDWARE`; GPU-offloaded runs stay
  unpriced rather than being priced as a CPU.

An unpriced model gets ``None`` in every $ figure (never $0) and a warning naming it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.pricing.cost import hourly_cost, summarize_costs, token_cost
from slmbench.pricing.sheets import PriceBook, TokenPrice, default_pricing_dirs, load_pricebook
from slmbench.pricing.staleness import staleness_warning
from slmbench.records import ResultRow

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


def offloads_to_gpu(model_info: dict[str, Any]) -> bool:
    """Whether a manifest's model record says the model ran on a GPU: its ``capabilities``
    (``Model.gpu_offload``), or for a run stored before capabilities were recorded, the
    llama.cpp backend's own ``gpu_offload`` key, so that an old run prices as it did."""
    capabilities = model_info.get("capabilities")
    if isinstance(capabilities, dict) and "gpu_offload" in capabilities:
        return bool(capabilities["gpu_offload"])
    return bool(model_info.get("gpu_offload"))


class CostColumns:
    """What costing reads of one task × model's rows, column by column (numpy arrays in row
    order): a columnar summary (:mod:`slmbench.analysis.columns`) hands these over instead of a
    million row dicts; :class:`RowCostColumns` builds them from row dicts."""

    def __len__(self) -> int:
        raise NotImplementedError

    def tokens(self) -> tuple[Any, Any, Any]:
        """``tokens_in``, ``tokens_out`` and ``cached_tokens_in`` (int arrays; 0 for ``null``)."""
        raise NotImplementedError

    def cache_write_tokens(self) -> Any:
        """``cache_write_tokens`` (int array; 0 for ``null`` or a row without the key).

        Not part of :meth:`tokens`, and all zeros unless a subclass overrides it, so that a
        store whose columns predate the field keeps working: its rows are priced as rows
        without cache writes, as rows from before the field existed are.
        """
        import numpy as np

        return np.zeros(len(self), dtype=np.int64)

    def latencies(self) -> Any:
        """``latency_s`` (float64; 0.0 where ``null``)."""
        raise NotImplementedError

    def n_correct(self) -> int:
        raise NotImplementedError


class RowCostColumns(CostColumns):
    def __init__(self, rows: Sequence[ResultRow]) -> None:
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def tokens(self) -> tuple[Any, Any, Any]:
        import numpy as np

        return tuple(np.fromiter((int(r.get(k) or 0) for r in self.rows), dtype=np.int64,
                                 count=len(self.rows))
                     for k in ("tokens_in", "tokens_out", "cached_tokens_in"))

    def cache_write_tokens(self) -> Any:
        import numpy as np

        return np.fromiter((int(r.get("cache_write_tokens") or 0) for r in self.rows),
                           dtype=np.int64, count=len(self.rows))

    def latencies(self) -> Any:
        import numpy as np

        return np.fromiter((float(r.get("latency_s") or 0.0) for r in self.rows),
                           dtype=np.float64, count=len(self.rows))

    def n_correct(self) -> int:
        return sum(bool(r.get("correct")) for r in self.rows)


def per_distinct(fn: Callable[..., float], columns: Sequence[Any], chunk: int = 1 << 16) -> Any:
    """``fn(*values)`` of every row of the equal-length arrays ``columns``, as a float64 array,
    with ``fn`` called once per distinct combination of values in each chunk of rows: the
    exact scalar formula (``token_cost``, ``hourly_cost``), without a call and a float object
    per row of a million-row run (whose rows repeat few token counts)."""
    import numpy as np

    n = len(columns[0])
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, chunk):
        part = [c[start:start + chunk] for c in columns]
        if len(part) == 1:
            uniq, inverse = np.unique(part[0], return_inverse=True)
            combos = [(v,) for v in uniq.tolist()]
        else:
            uniq, inverse = np.unique(np.stack(part, axis=1), axis=0, return_inverse=True)
            combos = uniq.tolist()
        values = np.fromiter((fn(*c) for c in combos), dtype=np.float64, count=len(combos))
        out[start:start + chunk] = values[inverse.reshape(-1)]
    return out


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
                             rows: Sequence[ResultRow] | CostColumns,
                             timings: Sequence[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
        """USD of each row (in ``rows``' order) and how they were priced (``pricing`` of a
        summary entry). Unpriced: every cost is ``None``. Row dicts give a list; the
        :class:`CostColumns` of a columnar summary give a float64 array (when priced).

        ``rows`` and ``timings`` must be *all* the rows and timings of one task × model of a
        run: hourly prices divide by the concurrency measured over that whole group.
        """
        if model_info.get("pricing") == "chain" and not isinstance(rows, CostColumns):
            return self._chain(model_info, rows, timings)
        cols = rows if isinstance(rows, CostColumns) else RowCostColumns(rows)
        if model_info.get("pricing", "tokens") == "hourly":
            costs, basis = self._hourly(model, model_info, cols, timings)
        else:
            costs, basis = self._tokens(model, cols)
        if costs is not None:
            return (costs if cols is rows else costs.tolist()), basis
        return [None] * len(cols), basis

    def item_costs(self, model: str, model_info: dict[str, Any],
                   rows: Sequence[ResultRow] | CostColumns,
                   timings: Sequence[dict[str, Any]]) -> Any:
        """USD of each row, priced exactly as :meth:`price` prices the group (None: unpriced)."""
        return self.item_costs_and_basis(model, model_info, rows, timings)[0]

    def price(self, model: str, model_info: dict[str, Any],
              rows: Sequence[ResultRow] | CostColumns,
              timings: Sequence[dict[str, Any]]) -> dict[str, Any]:
        costs, source = self.item_costs_and_basis(model, model_info, rows, timings)
        n_correct = (rows.n_correct() if isinstance(rows, CostColumns)
                     else sum(bool(r.get("correct")) for r in rows))
        out = summarize_costs(costs if isinstance(costs, list) else costs.tolist(), n_correct,
                              self.options.volume_per_day)
        out["pricing"] = source
        return out

    def _tokens(self, model: str, cols: CostColumns) -> tuple[Any, dict[str, Any]]:
        price = self.book.lookup(model, self.on)
        if price is None:
            self._warn(f"{model} is unpriced: no pricing sheet row in effect on {self.on}")
            return None, {"basis": "tokens", "priced": False}
        stale = staleness_warning(model, price, self.on)  # an old figure, a shut-down model
        if stale:
            self._warn(stale)
        costs = per_distinct(lambda t_in, t_out, cached, writes: token_cost(
            price, t_in, t_out, cached_in=cached, cache_write_in=writes),
            self._token_columns(model, price, cols))
        return costs, {"basis": "tokens", "priced": True, "model_id": price.qualified_id,
                       "input_per_1m": price.input, "output_per_1m": price.output,
                       "cached_input_per_1m": price.cached_input,
                       "cache_write_input_per_1m": price.cache_write_input,
                       "effective_from": price.effective_from.isoformat(),
                       "retrieved": price.retrieved.isoformat(),
                       "sheet": shown_path(price.sheet_path),
                       "sheet_sha256": price.sheet_sha256}

    def _token_columns(self, model: str, price: TokenPrice, cols: CostColumns) -> list[Any]:
        """``tokens_in, tokens_out, cached, writes`` with the cache parts clipped to fit in
        ``tokens_in``, as :func:`token_cost` requires.

        Stored rows are not refused for an inconsistent count: cache reads above ``tokens_in``
        have always been clipped silently. Cache writes above what is left are clipped too, but
        with a warning, because the likely cause is a ``tokens_in`` recorded without its cache
        tokens (Anthropic's raw ``input_tokens``), which makes the cost too low. A sheet row
        without a cache-write price bills writes as input; the warning says the figure may be
        low.
        """
        import numpy as np

        t_in, t_out, cached = cols.tokens()
        cached = np.minimum(cached, t_in)
        room = t_in - cached
        writes = cols.cache_write_tokens()
        over = int(np.count_nonzero(writes > room))
        if over:
            self._warn(f"{model}: {over} row(s) report more cache-read + cache-write tokens than "
                       "tokens_in, which must include them (litellm's prompt_tokens); the "
                       "excess cache writes are not priced")
            writes = np.minimum(writes, room)
        if price.cache_write_input is None:
            n_writes = int(writes.sum(dtype=np.int64))
            if n_writes:
                self._warn(f"{model}: {n_writes:,} cache-write tokens are billed at the input "
                           f"price: its sheet row has no cache_write_input "
                           f"({shown_path(price.sheet_path)}), so any cache-write surcharge is "
                           "not counted")
        return [t_in, t_out, cached, writes]

    def _hourly(self, model: str, model_info: dict[str, Any], cols: CostColumns,
                timings: Sequence[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
        rate_info: dict[str, Any]
        if self.options.hourly_usd is not None:
            usd_per_hour = float(self.options.hourly_usd)
            rate_info = {"hardware": "--hourly", "usd_per_hour": usd_per_hour}
        else:
            machine = self.options.hardware
            if machine is None and offloads_to_gpu(model_info):
                self._warn(f"{model} is unpriced: it offloads to a GPU; give --hardware or "
                           "--hourly")
                return None, {"basis": "hourly", "priced": False}
            machine = machine or DEFAULT_CPU_HARDWARE
            rate = self.book.hardware(machine, self.on)
            if rate is None:
                self._warn(f"{model} is unpriced: no hourly rate for {machine} on {self.on}")
                return None, {"basis": "hourly", "priced": False}
            usd_per_hour = rate.usd_per_hour
            rate_info = {"hardware": rate.id, "usd_per_hour": usd_per_hour,
                         "effective_from": rate.effective_from.isoformat(),
                         "sheet": shown_path(rate.sheet_path),
                         "sheet_sha256": rate.sheet_sha256}
        latency_sum = sum(t.get("latency_sum_s", 0.0) for t in timings)
        wall = sum(t.get("wall_s", 0.0) for t in timings)
        concurrency = latency_sum / wall if wall > 0 and latency_sum > 0 else 1.0
        costs = per_distinct(lambda seconds: hourly_cost(seconds, usd_per_hour, concurrency),
                             [cols.latencies()])
        return costs, {"basis": "hourly", "priced": True, "concurrency": concurrency, **rate_info}

    def warn(self, message: str) -> None:
        """Record a pricing warning once (shown under the leaderboard and in the summary)."""
        self._warn(message)

    def _chain(self, model_info: dict[str, Any], rows: Sequence[ResultRow],
               timings: Sequence[dict[str, Any]]) -> tuple[list[float | None], dict[str, Any]]:
        """A classify → extract pipeline: the sum over its steps (each row's ``steps``), each
        priced with that step model's own basis. Hourly steps divide by the concurrency the
        pipeline achieved, measured on the steps actually run (cached steps keep their original
        latency, as cached rows do); a step that was skipped costs nothing. One unpriced step
        leaves the whole pipeline unpriced."""
        fresh = sum(s.get("latency_s") or 0.0 for r in rows for s in r.get("steps") or []
                    if not s.get("cached"))
        step_timings = [{"wall_s": sum(t.get("wall_s", 0.0) for t in timings),
                         "latency_sum_s": fresh}]
        totals: list[float] = [0.0] * len(rows)
        parts = []
        for i, info in enumerate(model_info.get("steps") or []):
            at = [j for j, r in enumerate(rows) if len(r.get("steps") or []) > i]
            costs, basis = self.item_costs_and_basis(
                info.get("name", f"step {i + 1}"), info, [rows[j]["steps"][i] for j in at],
                step_timings)
            for j, cost in zip(at, costs, strict=True):
                totals[j] += cost or 0.0
            parts.append({"model": info.get("name"), "items": len(at),
                          "total_usd": sum(c or 0.0 for c in costs) if basis["priced"] else None,
                          **basis})
        priced = bool(parts) and all(p["priced"] for p in parts)
        basis = {"basis": "chain", "priced": priced, "steps": parts}
        return (list(totals) if priced else [None] * len(rows)), basis

    def _warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)
