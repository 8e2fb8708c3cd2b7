"""Cost arithmetic: per-request token cost, hourly compute cost, and run summaries.

Conventions (documented in ``pricing/README.md``):

* Sheet prices are USD per 1M tokens.
* ``tokens_in`` is the request's total input tokens *including* the cache reads ``cached_in``
  and the cache writes ``cache_write_in`` (the OpenAI / litellm ``prompt_tokens`` convention;
  litellm folds Anthropic's ``cache_read_input_tokens`` and ``cache_creation_input_tokens``
  into it).  Cache reads are billed at ``cached_input``; when a row has no ``cached_input``
  they are billed at the normal input price (no discount is known).  Cache writes are billed
  at ``cache_write_input``; when a row has none they are billed at the normal input price
  (no surcharge is known, so the figure may be low: :class:`~slmbench.pricing.run_costs.RunCoster`
  warns when a run has cache writes on such a row).
* Reasoning (thinking) tokens are part of ``tokens_out`` as every provider bills them, as
  output; they need no price of their own.
* A tier applies when the request's ``tokens_in`` is strictly greater than its
  ``above_input_tokens``; the highest such tier wins and its multipliers apply to the whole
  request (all input, cache reads, cache writes and output), as OpenAI bills GPT-5.4 above
  272K.  The multipliers scale whichever base price applies (standard, batch or off-peak).
* ``batch=True`` uses the row's batch prices and raises :class:`InputError` when the sheet has
  none; cache reads and writes keep their ``cached_input`` / ``cache_write_input`` prices (a
  batch discount on them is not verified, so the figure is an upper bound).
* An unpriced item is ``None`` and every dollar figure derived from it is ``None``: never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from slmbench.errors import InputError
from slmbench.pricing.sheets import Tier, TokenPrice

PER_MILLION = 1_000_000.0
DAYS_PER_MONTH = 30


def _count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise ValueError(f"{name} must be a whole number of tokens, got {value!r}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value!r}")
    return value


def applicable_tier(price: TokenPrice, tokens_in: int) -> Tier | None:
    """The highest tier whose ``above_input_tokens`` the request exceeds, if any."""
    best = None
    for t in price.tiers:
        if tokens_in > t.above_input_tokens and (
            best is None or t.above_input_tokens > best.above_input_tokens
        ):
            best = t
    return best


def token_cost(
    price: TokenPrice,
    tokens_in: int,
    tokens_out: int,
    cached_in: int = 0,
    batch: bool = False,
    *,
    cache_write_in: int = 0,
    off_peak: bool = False,
) -> float:
    """USD cost of one request.

    ``tokens_in`` includes both ``cached_in`` (cache reads) and ``cache_write_in`` (tokens the
    provider wrote to its prompt cache), so the three never double-count an input token.  A row
    without ``cache_write_input`` bills cache writes as plain input: no surcharge is known for
    it, so the result may understate what the provider charges.  ``off_peak=True`` uses the
    row's off-peak prices (e.g. DeepSeek's discounted hours), with cache writes at the off-peak
    input price since no off-peak cache-write price is published; combining it with ``batch``
    is not supported.
    """
    tokens_in = _count("tokens_in", tokens_in)
    tokens_out = _count("tokens_out", tokens_out)
    cached_in = _count("cached_in", cached_in)
    cache_write_in = _count("cache_write_in", cache_write_in)
    if cached_in > tokens_in:
        raise ValueError(
            f"cached_in ({cached_in}) cannot exceed tokens_in ({tokens_in}); tokens_in counts "
            "all input tokens including cached ones"
        )
    if cached_in + cache_write_in > tokens_in:
        raise ValueError(
            f"cached_in ({cached_in}) + cache_write_in ({cache_write_in}) cannot exceed "
            f"tokens_in ({tokens_in}); tokens_in counts all input tokens including cache reads "
            "and cache writes"
        )
    if batch and off_peak:
        raise ValueError("batch and off_peak prices cannot be combined")

    in_price, out_price, cached_price = price.input, price.output, price.cached_input
    write_price = price.cache_write_input
    if batch:
        if price.batch_input is None or price.batch_output is None:
            raise InputError(
                f"no batch price for {price.qualified_id} in this sheet; run without batch "
                "pricing or add a 'batch' entry",
                file=price.sheet_path, field=f"models[{price.model_id}].batch", value=None,
            )
        in_price, out_price = price.batch_input, price.batch_output
    elif off_peak:
        if price.off_peak is None:
            raise InputError(
                f"no off-peak price for {price.qualified_id} in this sheet",
                file=price.sheet_path, field=f"models[{price.model_id}].off_peak", value=None,
            )
        in_price, out_price = price.off_peak.input, price.off_peak.output
        cached_price = price.off_peak.cached_input
        write_price = None
    if cached_price is None:
        cached_price = in_price
    if write_price is None:
        write_price = in_price

    in_mult = out_mult = 1.0
    tier = applicable_tier(price, tokens_in)
    if tier is not None:
        in_mult, out_mult = tier.input_multiplier, tier.output_multiplier

    uncached = tokens_in - cached_in - cache_write_in
    usd_micro = (
        uncached * in_price * in_mult
        + cached_in * cached_price * in_mult
        + tokens_out * out_price * out_mult
        + cache_write_in * write_price * in_mult
    )
    return usd_micro / PER_MILLION


def hourly_cost(seconds: float, usd_per_hour: float, concurrency: float = 1.0) -> float:
    """USD for ``seconds`` of a machine at ``usd_per_hour`` shared by ``concurrency`` requests.

    ``seconds / 3600 * usd_per_hour / concurrency``: with 4 requests in flight on one GPU, each
    request carries a quarter of the machine's cost for its wall-clock time.
    """
    for name, v in (("seconds", seconds), ("usd_per_hour", usd_per_hour),
                    ("concurrency", concurrency)):
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise ValueError(f"{name} must be a finite number, got {v!r}")
    if seconds < 0:
        raise ValueError(f"seconds must not be negative, got {seconds!r}")
    if usd_per_hour < 0:
        raise ValueError(f"usd_per_hour must not be negative, got {usd_per_hour!r}")
    if concurrency <= 0:
        raise ValueError(f"concurrency must be greater than 0, got {concurrency!r}")
    return seconds / 3600.0 * usd_per_hour / concurrency


@dataclass(frozen=True)
class CostSummary:
    """Dollar figures for one model on one task.  Every ``usd``/``per_usd`` field is ``None``
    when the run is unpriced (any item cost missing) or when the figure is undefined."""

    n_items: int
    n_priced: int
    n_correct: int
    priced: bool
    total_usd: float | None
    usd_per_item: float | None
    usd_per_1k_items: float | None
    usd_per_1m_items: float | None
    usd_per_correct: float | None
    correct_per_usd: float | None
    volume_per_day: float | None
    usd_per_day: float | None
    usd_per_month: float | None

    @classmethod
    def from_costs(
        cls,
        item_costs: Sequence[float | None],
        n_correct: int,
        volume_per_day: float | None = None,
    ) -> CostSummary:
        costs = list(item_costs)
        n = len(costs)
        if isinstance(n_correct, bool) or not isinstance(n_correct, int):
            raise ValueError(f"n_correct must be an integer, got {n_correct!r}")
        if not 0 <= n_correct <= n:
            raise ValueError(f"n_correct must be between 0 and {n} (items), got {n_correct}")
        if volume_per_day is not None and (
            isinstance(volume_per_day, bool)
            or not isinstance(volume_per_day, (int, float))
            or not math.isfinite(volume_per_day)
            or volume_per_day < 0
        ):
            raise ValueError(f"volume_per_day must be a non-negative number, got "
                             f"{volume_per_day!r}")
        for i, c in enumerate(costs):
            if c is None:
                continue
            if isinstance(c, bool) or not isinstance(c, (int, float)) or not math.isfinite(c) \
                    or c < 0:
                raise ValueError(f"item_costs[{i}] must be a non-negative number or None, "
                                 f"got {c!r}")
        n_priced = sum(c is not None for c in costs)
        priced = n > 0 and n_priced == n
        vol = None if volume_per_day is None else float(volume_per_day)
        if not priced:
            return cls(n, n_priced, n_correct, False, None, None, None, None, None, None, vol,
                       None, None)
        total = math.fsum(float(c) for c in costs)  # type: ignore[arg-type]
        per_item = total / n
        usd_per_day = None if vol is None else per_item * vol
        return cls(
            n_items=n,
            n_priced=n_priced,
            n_correct=n_correct,
            priced=True,
            total_usd=total,
            usd_per_item=per_item,
            usd_per_1k_items=per_item * 1_000,
            usd_per_1m_items=per_item * 1_000_000,
            usd_per_correct=None if n_correct == 0 else total / n_correct,
            correct_per_usd=_correct_per_usd(n_correct, total),
            volume_per_day=vol,
            usd_per_day=usd_per_day,
            usd_per_month=None if usd_per_day is None else usd_per_day * DAYS_PER_MONTH,
        )

    def as_dict(self) -> dict:
        return asdict(self)


def _correct_per_usd(n_correct: int, total: float) -> float | None:
    """Correct answers per dollar; ``None`` when the run is free. A total so small (a
    subnormal dollar amount, or any below ``n_correct`` / 1.8e308) that the ratio overflows to
    infinity counts as free too: no finite figure says how many correct answers a dollar buys,
    and JSON has no infinity."""
    if total == 0:
        return None
    ratio = n_correct / total
    return ratio if math.isfinite(ratio) else None


def summarize_costs(
    item_costs: Sequence[float | None],
    n_correct: int,
    volume_per_day: float | None = None,
) -> dict:
    """Totals and rates for a run.

    Keys: ``n_items, n_priced, n_correct, priced, total_usd, usd_per_item, usd_per_1k_items,
    usd_per_1m_items, usd_per_correct, correct_per_usd, volume_per_day, usd_per_day,
    usd_per_month`` (30-day month).  All dollar figures are ``None`` ("unpriced") if any item
    cost is ``None`` or there are no items; ``usd_per_correct`` is ``None`` with 0 correct,
    ``correct_per_usd`` is ``None`` when the total is 0 (free) or so small that the ratio
    overflows (as free), ``usd_per_day``/``usd_per_month``
    are ``None`` without ``volume_per_day``.
    """
    return CostSummary.from_costs(item_costs, n_correct, volume_per_day).as_dict()
