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

* Hourly figures say their *time basis*. ``busy``: the CPU seconds the process spent on each
  row (``cpu_s``) ÷ the priced machine's vCPUs, i.e. the time a dedicated machine of that size
  would be busy with the model. It holds still on a shared machine, where wall time grows with
  the neighbours' load. ``wall``: the old measure, used where CPU time says nothing about the
  cost (GPU offload, a self-hosted server reached over HTTP) or was not recorded (older rows).
* The machine: ``--hardware`` or ``--hourly``; otherwise the hardware sheet's machine that
  matches the manifest's ``machine`` record (usable cores, GPUs, architecture), else
  :data:`DEFAULT_CPU_HARDWARE` with one warning that the cost assumes a machine other than the
  one that ran.
* Price modes (:data:`PRICE_MODES`): ``standard``; ``batch`` also prices each token-priced pair
  at the sheet's Batch API prices (``usd_per_1k_items_batch``); ``off-peak-aware`` prices each
  row at the off-peak rate when its call time (``ts``) falls in the sheet's off-peak hours.
* A baseline's training (``setup_s`` in the manifest's model record) is a one-off setup cost
  (``setup_usd``), reported beside the per-item cost and amortised over a month at ``--volume``.

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
class PriceMode:
    """How token prices are applied: ``batch`` adds the Batch API figure beside the standard
    one, ``off_peak`` prices each row by its call time."""

    name: str
    batch: bool = False
    off_peak: bool = False
    help: str = ""


PRICE_MODES: dict[str, PriceMode] = {m.name: m for m in (
    PriceMode("standard", help="list prices"),
    PriceMode("batch", batch=True,
              help="also the Batch API figure, where the sheet has batch prices"),
    PriceMode("off-peak-aware", off_peak=True,
              help="off-peak prices for rows whose call time falls in off-peak hours"),
)}


def price_mode(name: str | None) -> PriceMode:
    """The mode called ``name`` (``None``: standard); an InputError names the known ones."""
    mode = PRICE_MODES.get(name or "standard")
    if mode is None:
        raise InputError(f"unknown price mode (known: {', '.join(PRICE_MODES)})",
                         field="--price-mode", value=name)
    return mode


@dataclass(frozen=True)
class PricingOptions:
    dirs: tuple[Path, ...] = ()
    price_date: str | None = None
    hardware: str | None = None
    hourly_usd: float | None = None
    volume_per_day: float | None = None
    price_mode: str | None = None  # a PRICE_MODES name; None: standard


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

    def cpu_seconds(self) -> Any:
        """``cpu_s`` (float64; NaN where the row has none: not measured, or a failed call).

        All NaN unless a subclass overrides it, so a store whose columns predate the field
        prices on wall time, as rows from before the field existed do."""
        import numpy as np

        return np.full(len(self), np.nan)

    def timestamps(self) -> list[Any] | None:
        """Each row's ``ts`` (its call time), or ``None`` when these columns do not hold it:
        the caller then prices from row dicts."""
        return None

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

    def cpu_seconds(self) -> Any:
        import numpy as np

        return np.fromiter((np.nan if r.get("cpu_s") is None else float(r["cpu_s"])
                            for r in self.rows), dtype=np.float64, count=len(self.rows))

    def timestamps(self) -> list[Any] | None:
        return [r.get("ts") for r in self.rows]

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


_RANGE = r"(\d{1,2}):(\d{2})\s*[-–]\s*(\d{1,2}):(\d{2})"


def off_peak_windows(hours_utc: str | None) -> tuple[bool, list[tuple[int, int]]] | None:
    """A sheet's ``hours_utc`` text as (the ranges are peak hours?, [(start, end) minutes of
    the UTC day]): "peak is 01:00-04:00 and 06:00-10:00 UTC; every other hour is off-peak"
    lists peak hours, "16:30-00:30" off-peak ones. ``None``: no time range in the text."""
    import re

    if not hours_utc:
        return None
    ranges = [(int(a) * 60 + int(b), int(c) * 60 + int(d))
              for a, b, c, d in re.findall(_RANGE, hours_utc)]
    if not ranges:
        return None
    return bool(re.match(r"\s*peak\b", hours_utc, re.IGNORECASE)), ranges


def is_off_peak(ts: Any, windows: tuple[bool, list[tuple[int, int]]]) -> bool:
    """Whether a row's call time (``ts``, ISO 8601) falls in off-peak hours; a row without a
    readable time is billed at peak (the upper bound)."""
    try:
        when = dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00"))
    except ValueError:
        return False
    if when.tzinfo is not None:
        when = when.astimezone(dt.timezone.utc)
    minute = when.hour * 60 + when.minute
    inside = any(start <= minute < end if start <= end else minute >= start or minute < end
                 for start, end in windows[1])
    return not inside if windows[0] else inside


class RunCoster:
    """Prices every task × model of one run; collects warnings and the sheets used."""

    def __init__(self, options: PricingOptions, run_started: str | None,
                 machine: dict[str, Any] | None = None) -> None:
        """``machine``: the manifest's record of the machine that ran (``None``: a run stored
        before it was recorded, priced on :data:`DEFAULT_CPU_HARDWARE` without a warning, as
        it was)."""
        self.options = options
        self.mode = price_mode(options.price_mode)
        self.on = parse_price_date(options.price_date, run_started)
        self.book = load_book(options)
        self.machine = machine if isinstance(machine, dict) else None
        self._matched: list[str] | None = None
        self._beside: dict[str, Any] = {}
        self.warnings: list[str] = []
        if options.hourly_usd is not None and options.hourly_usd < 0:
            raise InputError("must not be negative", field="--hourly", value=options.hourly_usd)
        if options.hardware and self.book.hardware(options.hardware, self.on) is None:
            known = ", ".join(self.book.machines())
            raise InputError(f"no hourly rate for this machine on {self.on} (known: {known})",
                             field="--hardware", value=options.hardware)

    def provenance(self) -> dict[str, Any]:
        return {"price_date": self.on.isoformat(), "price_mode": self.mode.name,
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
            if costs is None and self._prices_server_by_hour(model, model_info):
                costs, basis = self._hourly(model, model_info, cols, timings)
        # figures beside the per-item cost, which :meth:`price` adds to the summary entry
        self._beside = {k: basis.pop(k) for k in ("batch_costs", "setup") if k in basis}
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
        beside, self._beside = self._beside, {}
        batch = beside.get("batch_costs")
        if self.mode.batch:
            out["usd_per_1k_items_batch"] = (None if batch is None or not len(batch) else
                                             float(batch.sum()) / len(batch) * 1000)
        out.update(beside.get("setup") or {})
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
        columns = self._token_columns(model, price, cols)
        off_peak = self._off_peak_flags(model, price, cols)
        costs = per_distinct(lambda t_in, t_out, cached, writes, off: token_cost(
            price, t_in, t_out, cached_in=cached, cache_write_in=writes, off_peak=bool(off)),
            [*columns, off_peak])
        extra: dict[str, Any] = {"price_mode": self.mode.name}
        if self.mode.off_peak:
            extra["off_peak_rows"] = int(off_peak.sum())
        if self.mode.batch and price.has_batch:
            extra["batch_costs"] = per_distinct(lambda t_in, t_out, cached, writes: token_cost(
                price, t_in, t_out, cached_in=cached, cache_write_in=writes, batch=True),
                columns)
        return costs, {**extra, "basis": "tokens", "priced": True,
                       "model_id": price.qualified_id,
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

    def _off_peak_flags(self, model: str, price: TokenPrice, cols: CostColumns) -> Any:
        """Per row, 1 where ``off-peak-aware`` pricing bills it at the off-peak rate: its call
        time (``ts``) falls outside the peak hours of the sheet row's ``hours_utc``."""
        import numpy as np

        n = len(cols)
        if not self.mode.off_peak or price.off_peak is None:
            return np.zeros(n, dtype=np.int64)
        windows = off_peak_windows(price.off_peak.hours_utc)
        stamps = cols.timestamps()
        if windows is None or stamps is None:
            self._warn(f"{model}: off-peak hours not known "
                       f"({price.off_peak.hours_utc or 'no hours_utc'}); priced at peak")
            return np.zeros(n, dtype=np.int64)
        return np.fromiter((is_off_peak(ts, windows) for ts in stamps), dtype=np.int64, count=n)

    def _prices_server_by_hour(self, model: str, model_info: dict[str, Any]) -> bool:
        """An unpriced token model at the user's own ``api_base`` while ``--hourly`` or
        ``--hardware`` is given: priced by the hour of that server with a warning, not left
        unpriced without a word (``reprice --hourly`` on a run made without ``pricing=hourly``).
        """
        settings = model_info.get("settings") or {}
        if not settings.get("api_base"):
            return False
        if self.options.hourly_usd is None and self.options.hardware is None:
            return False  # unpriced, which its own warning says
        self._warn(f"{model}: no token price for a self-hosted server (api_base): priced by the "
                   "hour of its machine (--hourly/--hardware), as pricing=hourly would")
        return True

    def _machine_ids(self) -> list[str]:
        """The hardware sheet's machines that match the machine that ran (the default first
        when it is one of them)."""
        if self._matched is None:
            from slmbench.machine import MachineSpec

            found = []
            for mid in self.book.machines():
                rate = self.book.hardware(mid, self.on)
                if rate is not None and self.machine is not None \
                        and MachineSpec.from_text(rate.hardware).matches(self.machine):
                    found.append(mid)
            self._matched = sorted(found, key=lambda m: (m != DEFAULT_CPU_HARDWARE, m))
        return self._matched

    def _assumed_machine(self, model: str, gpu: bool) -> str | None:
        """The machine a local model is priced on when no ``--hardware``/``--hourly`` says:
        the sheet's match for the machine that ran; else, on a CPU, the default with one
        warning; ``None`` (unpriced, warned) for a GPU run nothing matches."""
        from slmbench.machine import ran_on

        if self.machine is None:  # stored before the machine was recorded: as it was priced
            if gpu:
                self._warn(f"{model} is unpriced: it offloads to a GPU; give --hardware or "
                           "--hourly")
                return None
            return DEFAULT_CPU_HARDWARE
        found = self._machine_ids()
        if found:
            return found[0]
        if gpu:
            self._warn(f"{model} is unpriced: it offloads to a GPU and no hardware sheet machine "
                       f"matches the machine that ran ({ran_on(self.machine)}); give --hardware "
                       "or --hourly")
            return None
        rate = self.book.hardware(DEFAULT_CPU_HARDWARE, self.on)
        what = f" ({rate.hardware})" if rate is not None and rate.hardware else ""
        self._warn(f"local cost assumes {DEFAULT_CPU_HARDWARE}{what}, not the machine that ran "
                   f"({ran_on(self.machine)}): no hardware sheet machine matches it; give "
                   "--hardware or --hourly for the machine you pay for")
        return DEFAULT_CPU_HARDWARE

    def _hourly(self, model: str, model_info: dict[str, Any], cols: CostColumns,
                timings: Sequence[dict[str, Any]]) -> tuple[Any, dict[str, Any]]:
        import numpy as np

        from slmbench.machine import MachineSpec, ran_on

        gpu = offloads_to_gpu(model_info)
        # a server the user runs (pricing=hourly at an api_base): its machine is not this one
        server = bool((model_info.get("settings") or {}).get("api_base"))
        if server and self.options.hourly_usd is None and self.options.hardware is None:
            self._warn(f"{model} is unpriced: pricing=hourly prices its server by the hour of "
                       "the server's machine; give --hourly or --hardware")
            return None, {"basis": "hourly", "priced": False}
        rate_info: dict[str, Any]
        if self.options.hourly_usd is not None:
            usd_per_hour = float(self.options.hourly_usd)
            # a rate given directly is the rate of the machine that ran
            vcpus = (self.machine or {}).get("usable_cores")
            rate_info = {"hardware": "--hourly", "usd_per_hour": usd_per_hour,
                         "machine": (ran_on(self.machine) if self.machine and not server
                                     else None)}
        else:
            machine = self.options.hardware or self._assumed_machine(model, gpu)
            if machine is None:
                return None, {"basis": "hourly", "priced": False}
            rate = self.book.hardware(machine, self.on)
            if rate is None:
                self._warn(f"{model} is unpriced: no hourly rate for {machine} on {self.on}")
                return None, {"basis": "hourly", "priced": False}
            usd_per_hour = rate.usd_per_hour
            vcpus = MachineSpec.from_text(rate.hardware).vcpus
            rate_info = {"hardware": rate.id, "usd_per_hour": usd_per_hour,
                         "machine": rate.hardware,
                         "effective_from": rate.effective_from.isoformat(),
                         "sheet": shown_path(rate.sheet_path),
                         "sheet_sha256": rate.sheet_sha256}
        if self.machine is not None and not server:
            rate_info["ran_on"] = ran_on(self.machine)
        latency_sum = sum(t.get("latency_sum_s", 0.0) for t in timings)
        wall = sum(t.get("wall_s", 0.0) for t in timings)
        concurrency = latency_sum / wall if wall > 0 and latency_sum > 0 else 1.0
        latencies = cols.latencies()
        cpu = cols.cpu_seconds()
        called = latencies > 0
        # busy time where every call's CPU time is known and CPU time is what the machine
        # spends (not a GPU's, not a remote server's)
        busy = (not gpu and bool(vcpus) and not server
                and bool(called.any()) and not bool(np.isnan(cpu[called]).any()))
        overlap = max(1.0, concurrency)  # overlapping calls each count the process's CPU
        if busy:
            seconds = np.where(np.isnan(cpu), 0.0, cpu) / float(vcpus)
            costs = per_distinct(lambda sec: hourly_cost(sec, usd_per_hour, overlap), [seconds])
            machine_s = float(seconds.sum()) / overlap
        else:
            costs = per_distinct(lambda sec: hourly_cost(sec, usd_per_hour, concurrency),
                                 [latencies])
            machine_s = float(latencies.sum()) / concurrency
        basis = {"basis": "hourly", "priced": True, "concurrency": concurrency,
                 "time_basis": "busy" if busy else "wall", "vcpus": vcpus,
                 "machine_s": machine_s, **rate_info}
        setup = self._setup(timings, usd_per_hour, vcpus if busy else None)
        if setup:
            basis["setup"] = setup
        return costs, basis

    def _setup(self, timings: Sequence[dict[str, Any]], usd_per_hour: float,
               vcpus: int | None) -> dict[str, Any]:
        """One-off setup (a baseline's training), from the timings' ``setup_s`` /
        ``setup_cpu_s``, priced on the same machine and time basis as the items; with
        ``--volume``, amortised over one 30-day month of that volume (a model retrained each
        month), the horizon of the monthly projection."""
        from slmbench.pricing.cost import DAYS_PER_MONTH

        walls = [t["setup_s"] for t in timings if t.get("setup_s") is not None]
        if not walls:
            return {}
        cpus = [t.get("setup_cpu_s") for t in timings if t.get("setup_s") is not None]
        busy = bool(vcpus) and all(c is not None for c in cpus)
        seconds = sum(cpus) / vcpus if busy else sum(walls)  # type: ignore[operator]
        usd = hourly_cost(seconds, usd_per_hour)
        out: dict[str, Any] = {"setup_s": sum(walls), "setup_usd": usd}
        volume = self.options.volume_per_day
        if volume:
            out["setup_usd_per_1k_items_amortised"] = usd / (volume * DAYS_PER_MONTH) * 1000
        return out

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


_BASIS_WORDS = {"busy": "busy time (CPU seconds ÷ the machine's vCPUs)", "wall": "wall time"}


def local_pricing_note(summary: dict[str, Any], *, recorded_only: bool = False) -> str:
    """How a summary's hourly-priced models were priced, in a few words for a report footer:
    "local models priced per hour of aws-c7i.large (2 vCPU, 4 GiB) on busy time (…); ran on
    2 usable cores, no GPU"; empty when none was. ``recorded_only``: empty too for a run
    stored before the machine that ran was recorded (its report reads as it did)."""
    seen: dict[tuple[str, str], None] = {}
    ran: dict[str, None] = {}
    for e in summary.get("results") or []:
        p = e.get("pricing") or {}
        if p.get("basis") == "hourly" and p.get("priced"):
            what = str(p.get("hardware"))
            if p.get("machine"):
                what += f" ({p['machine']})"
            seen[(what, _BASIS_WORDS.get(p.get("time_basis", "wall"), "wall time"))] = None
            if p.get("ran_on"):
                ran[p["ran_on"]] = None
    if not seen or (recorded_only and not ran):
        return ""
    return ("local models priced per hour of "
            + "; ".join(f"{what} on {basis}" for what, basis in seen)
            + (f"; ran on {', '.join(ran)}" if ran else ""))
