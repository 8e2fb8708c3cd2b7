"""Property tests: the sheet loader only ever raises InputError, and cost math is sane."""

from __future__ import annotations

import copy
import datetime as dt
import math
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmbench.errors import InputError
from slmbench.pricing import (
    PriceBook,
    TokenPrice,
    check_pricing,
    load_pricebook,
    summarize_costs,
    token_cost,
)
from slmbench.pricing.sheets import Tier, filename_problems, parse_sheet_file

SETTINGS = settings(max_examples=150, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

KEYS = [
    "provider", "currency", "unit", "effective_from", "retrieved", "source", "confidence",
    "models", "kind", "machines", "id", "aliases", "input", "cached_input", "cache_write_input",
    "output", "batch",
    "tiers", "name", "above_input_tokens", "input_multiplier", "output_multiplier", "off_peak",
    "usd_per_hour", "derivation", "purchase_usd", "note", "status", "as_of",
]

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["USD", "per_1m_tokens", "hardware", "openai", "2026-11-22", "22/11/2026",
                     "cheap", "-1", "0.2", ""]),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2999, 12, 31)),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2999, 1, 1)),
)
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8), st.integers(-3, 3))
documents = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=6),
    ),
    max_leaves=30,
)

VALID = {
    "provider": "acme",
    "currency": "USD",
    "unit": "per_1m_tokens",
    "effective_from": dt.date(2026, 11, 22),
    "retrieved": dt.date(2026, 11, 22),
    "source": ["https://example.com"],
    "models": [
        {"id": "m1", "aliases": ["m1-2026"], "input": 1.0, "cached_input": 0.1,
         "cache_write_input": 1.25, "output": 2.0,
         "batch": {"input": 0.5, "output": 1.0},
         "tiers": [{"name": "long", "above_input_tokens": 1000, "input_multiplier": 2.0,
                    "output_multiplier": 1.5}],
         "off_peak": {"input": 0.5, "output": 1.0}},
        {"id": "m2", "input": 0.2, "output": 0.4},
    ],
}


def _load_text(text: str | bytes) -> PriceBook | None:
    """Write one sheet and load it: must return a PriceBook or raise InputError only."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "acme" / "sheet.yaml"
        path.parent.mkdir()
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass")
        problems = check_pricing([tmp], today=dt.date(2026, 11, 22))  # must never raise
        assert all(p.severity in ("error", "warning") for p in problems)
        parsed = parse_sheet_file(path)
        schema_errors = [p for p in [*parsed.problems, *filename_problems(parsed)] if p.is_error]
        try:
            book = load_pricebook([tmp])
        except InputError as exc:
            assert exc.file == str(path)
            # the loader refuses exactly the sheets that have schema errors
            assert schema_errors
            assert (exc.field, exc.reason) == (schema_errors[0].field, schema_errors[0].message)
            return None
        assert schema_errors == []
        for price in book.prices:
            for v in (price.input, price.output, price.cached_input, price.cache_write_input,
                      price.batch_input, price.batch_output):
                assert v is None or (math.isfinite(v) and v >= 0)
        return book


def _dump(doc) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False)


@SETTINGS
@given(documents)
def test_random_documents_raise_only_input_error(doc):
    _load_text(_dump(doc))


@SETTINGS
@given(st.dictionaries(st.sampled_from(KEYS), documents, max_size=8))
def test_random_top_level_mappings_raise_only_input_error(doc):
    _load_text(_dump(doc))


@SETTINGS
@given(st.text(max_size=200))
def test_random_text_raises_only_input_error(text):
    _load_text(text)


@SETTINGS
@given(st.binary(max_size=200))
def test_random_bytes_raise_only_input_error(data):
    _load_text(data)


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, (*prefix, i))


ALL_PATHS = [p for p in _paths(VALID) if p]


@SETTINGS
@given(st.sampled_from(ALL_PATHS), scalars | documents, st.booleans())
def test_mutated_valid_sheet_raises_only_input_error(path, value, delete):
    doc = copy.deepcopy(VALID)
    parent = doc
    for step in path[:-1]:
        parent = parent[step]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    _load_text(_dump(doc))


def test_valid_fuzz_base_loads():
    book = _load_text(_dump(VALID))
    assert book is not None and book.lookup("acme/m1-2026", dt.date(2026, 11, 22)).input == 1.0


def test_yaml_edge_cases():
    for text in ["[" * 5000, "a: &x [*x]\n", "!!python/object:os.system {}\n",
                 "effective_from: 2026-13-45\n", "? [a, b]\n: c\n", "\x00", "---\n---\n",
                 "a: 1\na: 2\n", "models: !!binary aGVsbG8=\n"]:
        _load_text(text)


# --------------------------------------------------------------------------------------------
# cost properties
# --------------------------------------------------------------------------------------------

prices = st.floats(min_value=0, max_value=1000, allow_nan=False)


@st.composite
def token_prices(draw):
    inp = draw(prices)
    tiers = ()
    if draw(st.booleans()):
        tiers = (Tier("long", draw(st.integers(1, 10**6)), draw(st.floats(1, 10)),
                      draw(st.floats(1, 10))),)
    return TokenPrice(
        model_id="m", provider="p", input=inp, output=draw(prices),
        cached_input=draw(st.none() | st.floats(0, inp) if inp else st.none()),
        batch_input=None, batch_output=None, tiers=tiers, sheet_path="x", sheet_sha256="0" * 64,
        effective_from=dt.date(2026, 1, 1), retrieved=dt.date(2026, 1, 1), source=("s",),
        confidence=None, cache_write_input=draw(st.none() | prices),
    )


@settings(max_examples=300, deadline=None)
@given(token_prices(), st.integers(0, 10**7), st.integers(0, 10**6), st.data())
def test_token_cost_non_negative_and_bounded(price, tin, tout, data):
    cached = data.draw(st.integers(0, tin))
    cost = token_cost(price, tin, tout, cached_in=cached)
    assert cost >= 0 and math.isfinite(cost)
    mult_in = max((t.input_multiplier for t in price.tiers if tin > t.above_input_tokens),
                  default=1.0)
    mult_out = max((t.output_multiplier for t in price.tiers if tin > t.above_input_tokens),
                   default=1.0)
    upper = (tin * price.input * mult_in + tout * price.output * mult_out) / 1e6
    assert cost <= upper * (1 + 1e-9) + 1e-12
    # caching never makes a request more expensive than the uncached request
    assert cost <= token_cost(price, tin, tout) * (1 + 1e-9) + 1e-12


@settings(max_examples=300, deadline=None)
@given(token_prices(), st.integers(0, 10**7), st.integers(0, 10**6), st.data())
def test_cache_writes_cost_the_write_price_instead_of_the_input_price(price, tin, tout, data):
    cached = data.draw(st.integers(0, tin))
    writes = data.draw(st.integers(0, tin - cached))
    cost = token_cost(price, tin, tout, cached_in=cached, cache_write_in=writes)
    assert cost >= 0 and math.isfinite(cost)
    without = token_cost(price, tin, tout, cached_in=cached)
    mult_in = max((t.input_multiplier for t in price.tiers if tin > t.above_input_tokens),
                  default=1.0)
    write_price = price.input if price.cache_write_input is None else price.cache_write_input
    # the writes move from the input price to the write price; nothing else changes (the
    # tolerance scales with the terms, which may cancel when writes are cheaper than input)
    scale = without + writes * max(write_price, price.input) * mult_in / 1e6
    assert cost == pytest.approx(
        without + writes * (write_price - price.input) * mult_in / 1e6, rel=1e-9,
        abs=1e-9 * scale + 1e-15)
    if price.cache_write_input is None:
        assert cost == pytest.approx(without, rel=1e-12, abs=0)
    # writes never count twice: at most every input token at the dearest input-side price
    dearest = max(price.input, write_price)
    out_mult = max((t.output_multiplier for t in price.tiers if tin > t.above_input_tokens),
                   default=1.0)
    assert cost <= (tin * dearest * mult_in + tout * price.output * out_mult) / 1e6 * (
        1 + 1e-9) + 1e-12


@settings(max_examples=200, deadline=None)
@given(token_prices(), st.integers(0, 10**6), st.data())
def test_cache_parts_beyond_tokens_in_are_refused(price, tin, data):
    cached = data.draw(st.integers(0, tin))
    writes = data.draw(st.integers(tin - cached + 1, tin - cached + 10**6))
    with pytest.raises(ValueError, match="cannot exceed tokens_in"):
        token_cost(price, tin, 0, cached_in=cached, cache_write_in=writes)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.none() | st.floats(0, 1e3), min_size=1, max_size=50), st.data())
def test_summary_unpriced_is_all_none_never_zero(costs, data):
    n_correct = data.draw(st.integers(0, len(costs)))
    s = summarize_costs(costs, n_correct, volume_per_day=data.draw(st.none() | st.floats(0, 1e6)))
    money = ("total_usd", "usd_per_item", "usd_per_1k_items", "usd_per_1m_items",
             "usd_per_correct", "correct_per_usd", "usd_per_day", "usd_per_month")
    if any(c is None for c in costs):
        assert all(s[k] is None for k in money)
    else:
        assert s["total_usd"] == math.fsum(costs)
        if n_correct:
            assert s["usd_per_correct"] * n_correct == pytest.approx(s["total_usd"], rel=1e-9,
                                                                     abs=1e-12)
