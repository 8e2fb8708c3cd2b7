"""Cache writes and reasoning tokens in the cost of stored rows, recomputed by hand.

Result rows carry ``cache_write_tokens`` (input the provider wrote to its prompt cache) and
``reasoning_tokens`` (hidden thinking): the first is a part of ``tokens_in`` billed at the
sheet row's ``cache_write_input``, the second a part of ``tokens_out`` billed as output. Every
figure below is written out from the sheet prices, so a change in the arithmetic or in a sheet
shows up here as a wrong dollar amount, not only as a changed code path.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from slmbench.pricing import load_pricebook, token_cost
from slmbench.pricing.run_costs import CostColumns, PricingOptions, RowCostColumns, RunCoster

REPO = Path(__file__).resolve().parent.parent
AUDITED = "2026-12-02"  # the sheets with cache-write prices and the luna/terra tiers
REL = 1e-12


@pytest.fixture(scope="module")
def book():
    return load_pricebook([REPO / "pricing"])


def coster(price_date: str = AUDITED) -> RunCoster:
    return RunCoster(PricingOptions(price_date=price_date), None)


def row(tin, tout, cached=None, writes=None, reasoning=None, **extra):
    r = {"tokens_in": tin, "tokens_out": tout, "cached_tokens_in": cached,
         "cache_write_tokens": writes, "reasoning_tokens": reasoning, "correct": True}
    r.update(extra)
    return r


def old_row(tin, tout, cached=None):
    """A row as stored before the runner recorded cache writes and reasoning tokens."""
    return {"tokens_in": tin, "tokens_out": tout, "cached_tokens_in": cached, "correct": False}


# --------------------------------------------------------------------------------------------
# Anthropic: input, cache reads, cache writes, output with thinking
# --------------------------------------------------------------------------------------------


def test_anthropic_row_with_reads_writes_and_thinking():
    c = coster()
    rows = [
        # 12,000 input = 1,000 plain + 8,000 read from the cache + 3,000 written to it;
        # 900 output of which 600 thinking (billed as output, so no term of its own)
        row(12_000, 900, cached=8_000, writes=3_000, reasoning=600),
        # a first call: the whole prompt is written to the cache
        row(2_000, 300, cached=0, writes=2_000, reasoning=0),
    ]
    out = c.price("anthropic/claude-opus-4-8", {}, rows, [])
    # claude-opus-4-8: input $5.00, cache read $0.50, 5-minute cache write $6.25, output $25.00
    first = (1_000 * 5.00 + 8_000 * 0.50 + 3_000 * 6.25 + 900 * 25.00) / 1e6
    second = (2_000 * 6.25 + 300 * 25.00) / 1e6
    assert first == pytest.approx(0.05025, rel=REL) and second == pytest.approx(0.02, rel=REL)
    assert c.item_costs("anthropic/claude-opus-4-8", {}, rows, []) == pytest.approx(
        [first, second], rel=REL)
    assert out["total_usd"] == pytest.approx(0.07025, rel=REL)
    assert out["pricing"]["cache_write_input_per_1m"] == 6.25
    assert out["pricing"]["cached_input_per_1m"] == 0.50
    assert out["pricing"]["sheet"].endswith("anthropic/2026-12-02.yaml")
    assert c.warnings == []
    # the reasoning count changes nothing: it is inside tokens_out already
    same = [dict(r, reasoning_tokens=None) for r in rows]
    assert c.item_costs("anthropic/claude-opus-4-8", {}, same, []) == \
        c.item_costs("anthropic/claude-opus-4-8", {}, rows, [])


def test_anthropic_long_prompt_tier_scales_cache_writes(book):
    p = book.lookup("anthropic/claude-haiku-5-5", dt.date(2026, 12, 2))
    # above 100K every price is 5x: input $0.50, read $0.05, write $0.625, output $2.50
    cost = token_cost(p, 150_000, 1_000, cached_in=100_000, cache_write_in=40_000)
    assert cost == pytest.approx((10_000 * 0.50 + 100_000 * 0.05 + 40_000 * 0.625
                                  + 1_000 * 2.50) / 1e6, rel=REL)
    assert cost == pytest.approx(0.0375, rel=REL)
    below = token_cost(p, 100_000, 1_000, cached_in=50_000, cache_write_in=40_000)
    assert below == pytest.approx((10_000 * 0.10 + 50_000 * 0.01 + 40_000 * 0.125
                                   + 1_000 * 0.50) / 1e6, rel=REL)


def test_cache_writes_in_batch_keep_their_price(book):
    p = book.lookup("anthropic/claude-opus-4-8", dt.date(2026, 12, 2))
    cost = token_cost(p, 10_000, 100, cached_in=4_000, batch=True, cache_write_in=5_000)
    assert cost == pytest.approx((1_000 * 2.50 + 4_000 * 0.50 + 5_000 * 6.25 + 100 * 12.50)
                                 / 1e6, rel=REL)


# --------------------------------------------------------------------------------------------
# OpenAI gpt-5.6-luna / gpt-6-luna: the 272K long-context tier
# --------------------------------------------------------------------------------------------


def test_luna_below_and_above_272k():
    c = coster()
    at = row(272_000, 4_000, cached=200_000, writes=50_000, reasoning=3_000)
    above = row(272_001, 4_000, cached=200_000, writes=50_000, reasoning=3_000)
    costs = c.item_costs("openai/gpt-5.6-luna", {}, [at, above], [])
    # 272,000 is not above the threshold: input $0.20, read $0.02, write $0.25, output $1.20
    assert costs[0] == pytest.approx((22_000 * 0.20 + 200_000 * 0.02 + 50_000 * 0.25
                                      + 4_000 * 1.20) / 1e6, rel=REL)
    assert costs[0] == pytest.approx(0.0257, rel=REL)
    # one more token: the whole request at 2x input (write too) and 1.5x output
    assert costs[1] == pytest.approx((22_001 * 0.40 + 200_000 * 0.04 + 50_000 * 0.50
                                      + 4_000 * 1.80) / 1e6, rel=REL)
    assert costs[1] == pytest.approx(0.0490004, rel=REL)
    basis = c.item_costs_and_basis("openai/gpt-5.6-luna", {}, [at], [])[1]
    assert basis["cache_write_input_per_1m"] == 0.25
    assert basis["sheet"].endswith("openai/2026-12-02.yaml")


def test_gpt6_luna_above_272k_and_the_superseded_row(book):
    new = book.lookup("openai/gpt-6-luna", dt.date(2026, 12, 2))
    assert token_cost(new, 300_000, 1_000, cache_write_in=100_000) == pytest.approx(
        (200_000 * 0.20 + 100_000 * 0.25 + 1_000 * 0.75) / 1e6, rel=REL)
    # priced on a date before the correction, the 2026-11-22 row applies as it always did:
    # no tier, cache writes at the input price
    old = book.lookup("openai/gpt-6-luna", dt.date(2026, 11, 30))
    assert token_cost(old, 300_000, 1_000, cache_write_in=100_000) == pytest.approx(
        (300_000 * 0.10 + 1_000 * 0.50) / 1e6, rel=REL)


# --------------------------------------------------------------------------------------------
# a sheet row without a cache-write price
# --------------------------------------------------------------------------------------------


def test_row_without_cache_write_price_bills_writes_as_input_and_warns():
    c = coster()
    rows = [row(10_000, 500, cached=2_000, writes=3_000)]
    (cost,) = c.item_costs("openai/gpt-5.4-nano", {}, rows, [])
    # gpt-5.4-nano has no cache_write_input: the 3,000 written tokens cost the $0.20 input price
    assert cost == pytest.approx((5_000 * 0.20 + 2_000 * 0.02 + 3_000 * 0.20 + 500 * 1.25)
                                 / 1e6, rel=REL)
    assert cost == pytest.approx(0.002265, rel=REL)
    assert c.item_costs_and_basis("openai/gpt-5.4-nano", {}, rows, [])[1][
        "cache_write_input_per_1m"] is None
    assert len(c.warnings) == 1
    assert "3,000 cache-write tokens" in c.warnings[0]
    assert "no cache_write_input" in c.warnings[0]
    assert "openai/2026-11-22.yaml" in c.warnings[0]


def test_off_peak_bills_cache_writes_at_the_off_peak_input_price(book):
    p = book.lookup("deepseek/deepseek-flash", dt.date(2026, 12, 2))
    cost = token_cost(p, 1_000, 100, cached_in=400, off_peak=True, cache_write_in=300)
    assert cost == pytest.approx((300 * 0.15 + 400 * 0.003 + 300 * 0.15 + 100 * 0.60) / 1e6,
                                 rel=REL)


# --------------------------------------------------------------------------------------------
# rows stored before the new fields: priced exactly as before
# --------------------------------------------------------------------------------------------


def _as_before(price, tin, tout, cached):
    """The cost formula as it stood before cache writes, operation for operation."""
    cached = min(cached, tin)
    cached_price = price.input if price.cached_input is None else price.cached_input
    in_mult = out_mult = 1.0
    tiers = [t for t in price.tiers if tin > t.above_input_tokens]
    if tiers:
        top = max(tiers, key=lambda t: t.above_input_tokens)
        in_mult, out_mult = top.input_multiplier, top.output_multiplier
    return ((tin - cached) * price.input * in_mult + cached * cached_price * in_mult
            + tout * price.output * out_mult) / 1e6


@pytest.mark.parametrize("model", ["openai/gpt-5.4-nano", "openai/gpt-5.4",
                                   "anthropic/claude-opus-4-8", "openai/gpt-5.6-luna",
                                   "anthropic/claude-haiku-5-5"])
def test_old_rows_without_the_new_keys_cost_what_they_did(book, model):
    c = coster()
    price = book.lookup(model, dt.date(2026, 12, 2))
    counts = [(100, 5, None), (1_234, 56, 1_000), (272_001, 10, 0), (150_000, 7, 90_000),
              (0, 0, None), (50, 3, 80)]  # the last: cache reads above tokens_in are clipped
    rows = [old_row(*t) for t in counts]
    expected = [_as_before(price, tin, tout, cached or 0) for tin, tout, cached in counts]
    assert c.item_costs(model, {}, rows, []) == expected  # exactly, not approximately
    # ``null`` in the new fields is the same as no field
    nulls = [dict(r, cache_write_tokens=None, reasoning_tokens=None) for r in rows]
    assert c.item_costs(model, {}, nulls, []) == expected
    assert c.warnings == []


# --------------------------------------------------------------------------------------------
# token_cost's arguments
# --------------------------------------------------------------------------------------------


def test_cache_parts_must_fit_in_tokens_in(book):
    p = book.lookup("anthropic/claude-opus-4-8", dt.date(2026, 12, 2))
    assert token_cost(p, 100, 0, cached_in=60, cache_write_in=40) == pytest.approx(
        (60 * 0.50 + 40 * 6.25) / 1e6, rel=REL)
    with pytest.raises(ValueError, match=r"cached_in \(60\) \+ cache_write_in \(41\) cannot "
                                         r"exceed tokens_in \(100\)"):
        token_cost(p, 100, 0, cached_in=60, cache_write_in=41)
    with pytest.raises(ValueError, match="cache_write_in must not be negative"):
        token_cost(p, 100, 0, cache_write_in=-1)
    with pytest.raises(ValueError, match="cache_write_in must be a whole number"):
        token_cost(p, 100, 0, cache_write_in=1.5)
    assert token_cost(p, 100, 0, cache_write_in=100.0) == token_cost(p, 100, 0,
                                                                     cache_write_in=100)


def test_stored_writes_beyond_tokens_in_are_clipped_with_a_warning():
    c = coster()
    # 800 read + 500 written > 1,000 input: tokens_in was recorded without its cache tokens
    (cost,) = c.item_costs("anthropic/claude-opus-4-8", {}, [row(1_000, 10, 800, 500)], [])
    assert cost == pytest.approx((800 * 0.50 + 200 * 6.25 + 10 * 25.00) / 1e6, rel=REL)
    assert len(c.warnings) == 1 and "more cache-read + cache-write tokens" in c.warnings[0]


# --------------------------------------------------------------------------------------------
# the columnar path (CostColumns) and chains
# --------------------------------------------------------------------------------------------


class _Columns(CostColumns):
    """Columns as a columnar store hands them over: int32 arrays, ``null`` as 0."""

    def __init__(self, rows, with_writes: bool) -> None:
        self._rows = RowCostColumns(rows)
        self._with_writes = with_writes

    def __len__(self) -> int:
        return len(self._rows)

    def tokens(self):
        return tuple(a.astype(np.int32) for a in self._rows.tokens())

    def latencies(self):
        return self._rows.latencies()

    def n_correct(self) -> int:
        return self._rows.n_correct()


class _WithWrites(_Columns):
    def cache_write_tokens(self):
        return self._rows.cache_write_tokens().astype(np.int32)


def test_columnar_costs_equal_the_row_path():
    rows = [row(12_000, 900, 8_000, 3_000, 600), row(272_001, 5, 0, 272_001),
            old_row(100, 5), row(10, 1, None, None)]
    for model in ("anthropic/claude-opus-4-8", "openai/gpt-5.6-luna"):
        by_rows = coster().price(model, {}, rows, [])
        by_cols = coster().price(model, {}, _WithWrites(rows, True), [])
        assert by_cols == by_rows
        costs = coster().item_costs(model, {}, _WithWrites(rows, True), [])
        assert isinstance(costs, np.ndarray)
        assert costs.tolist() == coster().item_costs(model, {}, rows, [])


def test_columns_without_the_cache_write_column_count_no_writes():
    rows = [row(12_000, 900, 8_000, 3_000, 600), old_row(100, 5, 20)]
    no_writes = [dict(r, cache_write_tokens=None) for r in rows]
    model = "anthropic/claude-opus-4-8"
    assert coster().item_costs(model, {}, _Columns(rows, False), []).tolist() == \
        coster().item_costs(model, {}, no_writes, [])


def test_chain_steps_carry_their_own_cache_writes():
    c = coster()
    info = {"pricing": "chain", "steps": [{"name": "anthropic/claude-opus-4-8"},
                                          {"name": "openai/gpt-5.6-luna"}]}
    rows = [{"correct": True, "steps": [row(1_000, 10, 0, 1_000), row(500, 20, 100, 400)]}]
    (cost,) = c.item_costs("chain", info, rows, [])
    assert cost == pytest.approx((1_000 * 6.25 + 10 * 25.00) / 1e6
                                 + (100 * 0.02 + 400 * 0.25 + 20 * 1.20) / 1e6, rel=REL)


def test_price_records_carry_the_cache_write_price(book):
    p = book.lookup("anthropic/claude-opus-4-8", dt.date(2026, 12, 2))
    assert p.to_dict()["cache_write_input"] == 6.25
    assert book.lookup("openai/gpt-5.4-nano", dt.date(2026, 12, 2)).to_dict()[
        "cache_write_input"] is None
