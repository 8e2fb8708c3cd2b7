"""Tests for the dated pricing sheets (pricing/) and the slmbench.pricing library."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slmbench.errors import InputError
from slmbench.pricing import (
    CostSummary,
    PriceBook,
    check_pricing,
    default_pricing_dirs,
    hourly_cost,
    load_pricebook,
    summarize_costs,
    token_cost,
)
from slmbench.pricing.commands import list_sheets, model_rows, run_check, sheet_rows, show_model
from slmbench.pricing.sheets import sheet_files

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "pricing"
COMPILED = dt.date(2026, 11, 22)
AUDITED = dt.date(2026, 12, 2)  # the correction sheets' date (cache writes, luna/terra tiers)
NEWEST = dt.date(2026, 12, 3)  # the newest sheets' retrieved date (missing models, Gemini step)
REL = 1e-12
#: the 2026-11-22 sheets that the 2026-12-02 corrections supersede: results priced from them
#: must stay reproducible, so they are never edited (a correction is a new dated sheet)
FROZEN_SHEETS = {
    "openai/2026-11-22.yaml": "fef35861db3f70981deac37b6149aadee13b27e9f807621e6d0c248310282041",
    "anthropic/2026-11-22.yaml":
        "82521e45149a0c8a486f7b593b8a1df59d3dba50410287d12c26507f104c1b70",
}


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return load_pricebook([SHIPPED])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sheet_yaml(
    *,
    provider: str = "acme",
    effective_from: str = "2026-11-22",
    retrieved: str = "2026-11-22",
    source: str | None = "https://example.com/pricing",
    rows: str = "  - id: m1\n    input: 1.0\n    output: 2.0\n",
) -> str:
    src = f"source: {source}\n" if source is not None else ""
    return (
        f"provider: {provider}\ncurrency: USD\nunit: per_1m_tokens\n"
        f"effective_from: {effective_from}\nretrieved: {retrieved}\n{src}models:\n{rows}"
    )


# --------------------------------------------------------------------------------------------
# shipped sheets
# --------------------------------------------------------------------------------------------


def test_default_pricing_dirs_points_at_repo_sheets():
    assert default_pricing_dirs() == [SHIPPED.resolve()]


def test_shipped_sheets_cover_every_provider(book):
    providers = {s.provider for s in book.sheets if s.kind == "provider"}
    assert providers == {
        "openai", "anthropic", "gemini", "azure_ai", "mistral", "together_ai", "fireworks_ai",
        "deepseek", "groq", "dashscope",
    }
    assert any(s.kind == "hardware" for s in book.sheets)
    for s in book.sheets:
        assert s.source, s.path
        assert len(s.sha256) == 64


def test_every_shipped_sheet_passes_check_with_no_problems():
    problems = check_pricing([SHIPPED], today=NEWEST)
    assert problems == []
    # whenever the suite runs, there must be no *errors* (staleness is only a warning)
    assert [p for p in check_pricing([SHIPPED]) if p.is_error] == []
    text, code = run_check([SHIPPED], today=NEWEST)
    assert code == 0
    assert "0 error(s), 0 warning(s) in 23 sheet(s)" in text


@pytest.mark.parametrize("rel", sorted(FROZEN_SHEETS))
def test_superseded_sheets_are_never_edited(rel):
    assert hashlib.sha256((SHIPPED / rel).read_bytes()).hexdigest() == FROZEN_SHEETS[rel]


@pytest.mark.parametrize(
    ("model", "inp", "out", "cached"),
    [
        ("openai/gpt-5.4-nano", 0.20, 1.25, 0.02),
        ("openai/gpt-5.4-mini", 0.75, 4.50, 0.075),
        ("gpt-4o-mini", 0.15, 0.60, 0.075),
        ("azure_ai/Phi-4-mini-instruct", 0.075, 0.30, None),
        ("anthropic/claude-haiku-4-5", 1.00, 5.00, 0.10),
        ("deepseek/deepseek-flash", 0.30, 1.20, 0.006),
        ("mistral/mistral-small-latest", 0.15, 0.60, 0.015),
    ],
)
def test_corrected_figures_not_seed_article_figures(book, model, inp, out, cached):
    p = book.lookup(model, COMPILED)
    assert p is not None
    assert (p.input, p.output, p.cached_input) == (inp, out, cached)


def test_seed_article_wrong_figures_never_enter_a_sheet(book):
    nano = book.lookup("gpt-5.4-nano", COMPILED)
    mini = book.lookup("gpt-5.4-mini", COMPILED)
    phi = book.lookup("azure_ai/Phi-4-mini-instruct", COMPILED)
    assert (nano.input, nano.output) != (0.05, 0.20)
    assert (mini.input, mini.output) != (0.15, 0.60)
    assert phi.input != 0.10


@pytest.mark.parametrize(
    "model",
    ["dashscope/qwen2.5-7b-instruct", "qwen2.5-72b-instruct", "gpt-4.1-nano", "gpt-3.5-turbo",
     "claude-sonnet-4", "deepseek-chat", "openrouter/openai/gpt-5.4-nano", "gpt-4o-2024-05-13"],
)
def test_left_out_models_are_unpriced(book, model):
    assert book.lookup(model, COMPILED) is None


def test_exact_figure_gpt54_nano_1000_items(book):
    price = book.lookup("openai/gpt-5.4-nano", COMPILED)
    costs = [token_cost(price, 100, 5) for _ in range(1000)]
    summary = summarize_costs(costs, n_correct=800)
    assert summary["total_usd"] == pytest.approx(0.02625, rel=REL)
    assert summary["usd_per_correct"] == pytest.approx(0.0000328125, rel=REL)
    assert summary["usd_per_item"] == pytest.approx(0.00002625, rel=REL)
    assert summary["usd_per_1k_items"] == pytest.approx(0.02625, rel=REL)
    assert summary["usd_per_1m_items"] == pytest.approx(26.25, rel=REL)
    assert summary["correct_per_usd"] == pytest.approx(800 / 0.02625, rel=REL)
    assert summary["priced"] is True


def test_lookup_matches_bare_qualified_alias_any_case(book):
    a = book.lookup("gpt-5.4-nano", COMPILED)
    b = book.lookup("openai/gpt-5.4-nano", COMPILED)
    c = book.lookup("OpenAI/GPT-5.4-Nano-2026-03-17", COMPILED)
    assert a is b is c
    assert a.qualified_id == "openai/gpt-5.4-nano"
    together = book.lookup("together_ai/meta-llama/Llama-3.2-3B-Instruct", COMPILED)
    assert together is not None and together.input == 0.06
    fw = book.lookup("fireworks_ai/accounts/fireworks/models/llama-v3p3-70b-instruct", COMPILED)
    assert fw is not None and fw.batch_input == 0.45
    # a different provider prefix must not match (its price may differ)
    assert book.lookup("azure/gpt-5.4-nano", COMPILED) is None


def test_lookup_accepts_iso_string_and_datetime(book):
    assert book.lookup("gpt-5.4", "2026-12-01") is book.lookup("gpt-5.4", dt.date(2026, 12, 1))
    assert book.lookup("gpt-5.4", dt.datetime(2026, 12, 1, 15, 0)) is not None
    with pytest.raises(InputError):
        book.lookup("gpt-5.4", "22/11/2026")


def test_before_first_effective_date_is_unpriced(book):
    assert book.lookup("gpt-5.4-nano", dt.date(2026, 11, 21)) is None


# --------------------------------------------------------------------------------------------
# the date rule: gemini-3.8-flash price step on 2027-01-01
# --------------------------------------------------------------------------------------------


def test_gemini_step_lookup_by_date(book):
    before = book.lookup("gemini/gemini-3.8-flash", dt.date(2026, 12, 31))
    on_day = book.lookup("gemini/gemini-3.8-flash", dt.date(2027, 1, 1))
    after = book.lookup("gemini/gemini-3.8-flash", dt.date(2027, 1, 2))
    assert (before.input, before.output) == (0.75, 3.75)
    assert before.effective_from == dt.date(2026, 11, 22)
    assert (after.input, after.output) == (1.50, 7.50)
    assert after.effective_from == dt.date(2027, 1, 1)
    assert on_day is after
    assert Path(after.sheet_path).name == "2027-01-01.yaml"
    # a model not in the 2027 sheet keeps its earlier price
    lite = book.lookup("gemini-2.5-flash-lite", dt.date(2027, 6, 1))
    assert lite is not None and lite.effective_from == dt.date(2026, 11, 22)


def test_gemini_step_cost_ratio_is_what_the_rows_imply(book):
    before = book.lookup("gemini-3.8-flash", dt.date(2026, 12, 15))
    after = book.lookup("gemini-3.8-flash", dt.date(2027, 1, 2))
    tin, tout = 1234, 567
    ratio = token_cost(after, tin, tout) / token_cost(before, tin, tout)
    implied = (after.input * tin + after.output * tout) / (
        before.input * tin + before.output * tout)
    assert ratio == pytest.approx(implied, rel=REL)
    assert ratio == pytest.approx(2.0, rel=REL)


def test_gemini_after_step_has_no_unpublished_cached_or_batch_price(book):
    after = book.lookup("gemini-3.8-flash", dt.date(2027, 1, 2))
    assert after.cached_input is None and after.batch_input is None
    # cached tokens fall back to the full input price (upper bound), never to 0
    assert token_cost(after, 1000, 0, cached_in=1000) == pytest.approx(1000 * 1.50 / 1e6, rel=REL)
    with pytest.raises(InputError) as exc:
        token_cost(after, 1000, 10, batch=True)
    assert exc.value.field == "models[gemini-3.8-flash].batch"
    assert exc.value.file == after.sheet_path


# --------------------------------------------------------------------------------------------
# cost arithmetic
# --------------------------------------------------------------------------------------------


def test_long_context_tier_applies_to_whole_request(book):
    p = book.lookup("openai/gpt-5.4", COMPILED)
    at_threshold = token_cost(p, 272_000, 1000)
    assert at_threshold == pytest.approx((272_000 * 2.50 + 1000 * 15.00) / 1e6, rel=REL)
    above = token_cost(p, 272_001, 1000)
    assert above == pytest.approx((272_001 * 5.00 + 1000 * 22.50) / 1e6, rel=REL)
    # cached input is scaled by the input multiplier too ($0.50 above 272K)
    cached = token_cost(p, 300_000, 0, cached_in=100_000)
    assert cached == pytest.approx((200_000 * 5.00 + 100_000 * 0.50) / 1e6, rel=REL)
    # batch prices are scaled as well
    b = token_cost(p, 300_000, 100, batch=True)
    assert b == pytest.approx((300_000 * 1.25 * 2 + 100 * 7.50 * 1.5) / 1e6, rel=REL)


def test_haiku_5_5_long_prompt_tier(book):
    p = book.lookup("claude-haiku-5-5", COMPILED)
    assert token_cost(p, 100_000, 100) == pytest.approx((100_000 * 0.10 + 100 * 0.50) / 1e6,
                                                        rel=REL)
    assert token_cost(p, 100_001, 100) == pytest.approx((100_001 * 0.50 + 100 * 2.50) / 1e6,
                                                        rel=REL)


def test_batch_and_cached_input(book):
    p = book.lookup("gpt-5.4-nano", COMPILED)
    assert token_cost(p, 1000, 100, batch=True) == pytest.approx(
        (1000 * 0.10 + 100 * 0.625) / 1e6, rel=REL)
    assert token_cost(p, 1000, 100, batch=True) == pytest.approx(
        token_cost(p, 1000, 100) / 2, rel=REL)
    assert token_cost(p, 1000, 0, cached_in=800) == pytest.approx(
        (200 * 0.20 + 800 * 0.02) / 1e6, rel=REL)
    with pytest.raises(ValueError):
        token_cost(p, 100, 0, cached_in=101)
    with pytest.raises(ValueError):
        token_cost(p, -1, 0)
    assert token_cost(p, 0, 0) == 0.0


def test_batch_refused_without_batch_price(book):
    phi = book.lookup("azure_ai/Phi-4", COMPILED)
    with pytest.raises(InputError) as exc:
        token_cost(phi, 100, 10, batch=True)
    assert exc.value.field == "models[Phi-4].batch"


def test_deepseek_peak_and_off_peak(book):
    p = book.lookup("deepseek-flash", COMPILED)
    peak = token_cost(p, 1000, 100, cached_in=400)
    off = token_cost(p, 1000, 100, cached_in=400, off_peak=True)
    assert peak == pytest.approx((600 * 0.30 + 400 * 0.006 + 100 * 1.20) / 1e6, rel=REL)
    assert off == pytest.approx(peak / 2, rel=REL)
    with pytest.raises(InputError):
        token_cost(book.lookup("gpt-5.4-nano", COMPILED), 10, 10, off_peak=True)


def test_hourly_cost_math(book):
    assert hourly_cost(3600, 1.006) == pytest.approx(1.006, rel=REL)
    assert hourly_cost(90, 0.8048, concurrency=4) == pytest.approx(90 / 3600 * 0.8048 / 4,
                                                                   rel=REL)
    assert hourly_cost(0, 55.04) == 0.0
    for bad in [(-1, 1.0, 1.0), (1, -1.0, 1.0), (1, 1.0, 0), (float("nan"), 1.0, 1.0)]:
        with pytest.raises(ValueError):
            hourly_cost(*bad)
    g5 = book.hardware("aws-g5.xlarge", COMPILED)
    assert g5.usd_per_hour == 1.006 and g5.region == "us-east-1"
    assert book.hardware("aws-g6.xlarge", COMPILED).usd_per_hour == 0.8048
    assert book.hardware("aws-c7i.large", COMPILED).usd_per_hour == 0.08925
    assert book.hardware("STANDARD_NC40ADS_H100_V5", COMPILED).usd_per_hour == 6.98
    assert book.hardware("aws-g5.xlarge", dt.date(2026, 1, 1)) is None
    assert book.hardware("no-such-machine", COMPILED) is None


def test_owned_rtx4090_derivation(book):
    r = book.hardware("rtx4090-owned-3y", COMPILED)
    d = r.derivation
    expected = d["purchase_usd"] / (d["amortization_years"] * 8760) + d["power_kw"] * d[
        "usd_per_kwh"]
    assert r.usd_per_hour == pytest.approx(expected, rel=0.001)


def test_unpriced_model_gives_none_for_every_dollar_figure(book):
    assert book.lookup("dashscope/qwen2.5-7b-instruct", COMPILED) is None
    s = summarize_costs([None] * 10, n_correct=7, volume_per_day=1000)
    assert s["priced"] is False
    for key in ("total_usd", "usd_per_item", "usd_per_1k_items", "usd_per_1m_items",
                "usd_per_correct", "correct_per_usd", "usd_per_day", "usd_per_month"):
        assert s[key] is None, key
    # one missing item is enough: a partial total would understate the cost
    partial = summarize_costs([0.001, None, 0.002], n_correct=2)
    assert partial["total_usd"] is None and partial["n_priced"] == 2


def test_summary_volume_zero_correct_free_and_empty():
    s = summarize_costs([0.001, 0.003], n_correct=1, volume_per_day=10_000)
    assert s["usd_per_day"] == pytest.approx(0.002 * 10_000, rel=REL)
    assert s["usd_per_month"] == pytest.approx(0.002 * 10_000 * 30, rel=REL)
    assert s["volume_per_day"] == 10_000
    assert summarize_costs([0.001], n_correct=0)["usd_per_correct"] is None
    assert summarize_costs([0.001], n_correct=0)["correct_per_usd"] == 0.0
    free = summarize_costs([0.0, 0.0], n_correct=2)
    assert free["total_usd"] == 0.0 and free["usd_per_correct"] == 0.0
    assert free["correct_per_usd"] is None
    empty = summarize_costs([], n_correct=0)
    assert empty["total_usd"] is None and empty["priced"] is False
    assert summarize_costs([0.001], 1)["usd_per_day"] is None
    with pytest.raises(ValueError):
        summarize_costs([0.001], n_correct=2)
    with pytest.raises(ValueError):
        summarize_costs([-0.001], n_correct=0)
    assert isinstance(CostSummary.from_costs([0.5], 1), CostSummary)


# --------------------------------------------------------------------------------------------
# user directories and provenance
# --------------------------------------------------------------------------------------------


def test_user_dir_overrides_same_date_row(tmp_path):
    user = tmp_path / "mine"
    write(user / "openai" / "2026-11-22.yaml", sheet_yaml(
        provider="openai", rows="  - id: gpt-5.4-nano\n    input: 0.10\n    output: 1.00\n"))
    book = load_pricebook([SHIPPED, user])
    p = book.lookup("openai/gpt-5.4-nano", COMPILED)
    assert (p.input, p.output) == (0.10, 1.00)
    assert p.sheet_path == str(user / "openai" / "2026-11-22.yaml")
    # models the user sheet does not mention still come from the shipped sheet
    assert book.lookup("gpt-5.4-mini", COMPILED).input == 0.75
    # the shipped row is still listed, marked as overridden
    rows = model_rows("gpt-5.4-nano", [SHIPPED, user], on=COMPILED)
    assert [r["overridden"] for r in rows] == [True, False]
    assert [r["in_effect"] for r in rows] == [False, True]
    # order matters: the later directory wins
    shipped_wins = load_pricebook([user, SHIPPED]).lookup("gpt-5.4-nano", COMPILED)
    assert shipped_wins.input == 0.20


def test_user_dir_can_price_unpriced_model_and_later_date_wins(tmp_path):
    user = tmp_path / "mine"
    write(user / "dashscope" / "2026-11-22.yaml", sheet_yaml(
        provider="dashscope",
        rows="  - id: qwen2.5-7b-instruct\n    input: 0.5\n    output: 1.0\n"))
    write(user / "openai" / "2025-01-01.yaml", sheet_yaml(
        provider="openai", effective_from="2025-01-01", retrieved="2025-01-01",
        rows="  - id: gpt-5.4-nano\n    input: 9.0\n    output: 9.0\n"))
    book = load_pricebook([SHIPPED, user])
    assert book.lookup("dashscope/qwen2.5-7b-instruct", COMPILED).input == 0.5
    # an older user row does not beat a newer shipped row, but prices dates before it
    assert book.lookup("gpt-5.4-nano", COMPILED).input == 0.20
    assert book.lookup("gpt-5.4-nano", dt.date(2026, 1, 1)).input == 9.0


def test_sheets_used_reports_path_and_sha256(tmp_path):
    book = load_pricebook([SHIPPED])
    assert book.sheets_used == []
    p = book.lookup("gpt-5.4-nano", COMPILED)
    book.lookup("gpt-5.4-mini", COMPILED)
    book.lookup("dashscope/qwen2.5-7b-instruct", COMPILED)
    book.hardware("aws-g5.xlarge", COMPILED)
    used = book.sheets_used
    assert [Path(path).parent.name for path, _ in used] == ["openai", "hardware"]
    for path, sha in used:
        assert hashlib.sha256(Path(path).read_bytes()).hexdigest() == sha
    assert PriceBook.sheet_of(p) == used[0]
    record = p.to_dict()
    json.dumps(record)
    assert record["sheet_sha256"] == used[0][1] and record["effective_from"] == "2026-11-22"


def test_ambiguous_bare_id_across_providers(tmp_path):
    user = tmp_path / "mine"
    write(user / "azure" / "2026-11-22.yaml", sheet_yaml(
        provider="azure", rows="  - id: gpt-5.4-nano\n    input: 0.22\n    output: 1.375\n"))
    book = load_pricebook([SHIPPED, user])
    with pytest.raises(InputError) as exc:
        book.lookup("gpt-5.4-nano", COMPILED)
    assert "provider/id" in str(exc.value)
    assert book.lookup("azure/gpt-5.4-nano", COMPILED).input == 0.22
    assert book.lookup("openai/gpt-5.4-nano", COMPILED).input == 0.20


def test_missing_or_empty_dir_is_input_error(tmp_path):
    with pytest.raises(InputError) as exc:
        load_pricebook([tmp_path / "nope"])
    assert exc.value.file == str(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError):
        load_pricebook([tmp_path / "empty"])
    with pytest.raises(InputError):
        load_pricebook([])


# --------------------------------------------------------------------------------------------
# planted bad sheets: the loader names file, field and value; check finds them all
# --------------------------------------------------------------------------------------------

ROW = "  - id: m1\n    input: {inp}\n    output: 2.0\n"

BAD_SHEETS = {
    "negative price": (
        sheet_yaml(rows=ROW.format(inp="-0.2")), "models[m1].input", -0.2, "negative"),
    "date 22/11/2026": (
        sheet_yaml(effective_from="22/11/2026"), "effective_from", "22/11/2026", "YYYY-MM-DD"),
    "impossible date string": (
        sheet_yaml(retrieved='"2026-02-30"'), "retrieved", "2026-02-30", "calendar"),
    "date with time": (
        sheet_yaml(retrieved="2026-11-22 10:00:00"), "retrieved",
        dt.datetime(2026, 11, 22, 10, 0), "time"),
    "missing source": (sheet_yaml(source=None), "source", ..., "source"),
    "empty source list": (sheet_yaml(source="[]"), "source", [], "source"),
    "wrong type price": (
        sheet_yaml(rows=ROW.format(inp="cheap")), "models[m1].input", "cheap", "number"),
    "quoted number": (
        sheet_yaml(rows=ROW.format(inp='"0.20"')), "models[m1].input", "0.20", "without quotes"),
    "boolean price": (
        sheet_yaml(rows=ROW.format(inp="true")), "models[m1].input", True, "number"),
    "nan price": (sheet_yaml(rows=ROW.format(inp=".nan")), "models[m1].input", None, "finite"),
    "duplicate row": (
        sheet_yaml(rows=ROW.format(inp="1.0") + ROW.format(inp="1.5")), "models[m1].id", "m1",
        "duplicate"),
    "alias collides with id": (
        sheet_yaml(rows=ROW.format(inp="1.0")
                   + "  - id: m2\n    aliases: [M1]\n    input: 1.0\n    output: 2.0\n"),
        "models[m2].aliases", "m1", "duplicate"),
    "unknown field (typo)": (
        sheet_yaml(rows=ROW.format(inp="1.0") + "    cached_inptu: 0.1\n"),
        "models[m1].cached_inptu", "cached_inptu", "unknown field"),
    "missing output": (
        sheet_yaml(rows="  - id: m1\n    input: 1.0\n"), "models[m1].output", ..., "missing"),
    "batch not a mapping": (
        sheet_yaml(rows=ROW.format(inp="1.0") + "    batch: 0.5\n"), "models[m1].batch", 0.5,
        "mapping"),
    "bad tier": (
        sheet_yaml(rows=ROW.format(inp="1.0") + "    tiers:\n      - name: long\n"
                   "        above_input_tokens: -5\n        input_multiplier: 2\n"
                   "        output_multiplier: 2\n"),
        "models[m1].tiers[0].above_input_tokens", -5, "positive integer"),
    "wrong currency": (
        sheet_yaml().replace("currency: USD", "currency: EUR"), "currency", "EUR", "USD"),
    "wrong unit": (
        sheet_yaml().replace("per_1m_tokens", "per_1k_tokens"), "unit", "per_1k_tokens",
        "per_1m_tokens"),
    "provider prefix in id": (
        sheet_yaml(rows="  - id: acme/m1\n    input: 1.0\n    output: 2.0\n"),
        "models[acme/m1].id", "acme/m1", "prefix"),
    "models empty": (sheet_yaml(rows="").replace("models:\n", "models: []\n"), "models", [],
                     "non-empty"),
    "not YAML": ("provider: acme\nmodels: [unclosed\n  - {{{\n", None, ..., "invalid YAML"),
    "duplicate key": (
        sheet_yaml(rows="  - id: m1\n    input: 1.0\n    input: 2.0\n    output: 2.0\n"),
        None, ..., "duplicate key"),
    "top level is a list": ("- 1\n- 2\n", None, "list", "mapping"),
    "empty file": ("", None, ..., "empty"),
    "unknown kind": ("kind: gpu\n", "kind", "gpu", "hardware"),
}


@pytest.mark.parametrize("case", sorted(BAD_SHEETS))
def test_planted_bad_sheet_names_file_field_value(tmp_path, case):
    text, field, value, words = BAD_SHEETS[case]
    path = write(tmp_path / "acme" / "2026-11-22.yaml", text)
    with pytest.raises(InputError) as exc:
        load_pricebook([tmp_path])
    err = exc.value
    assert err.file == str(path)
    assert err.field == field
    if value is None:  # NaN
        assert err.value != err.value
    elif value is not ...:
        assert err.value == value
    assert words.lower() in str(err).lower()
    assert str(path) in str(err)
    # check_pricing reports the same problem (and does not stop or raise)
    problems = check_pricing([tmp_path], today=COMPILED)
    assert any(p.is_error and p.file == str(path) and p.field == field for p in problems)
    out, code = run_check([tmp_path], today=COMPILED)
    assert code == 1 and str(path) in out


def test_binary_file_is_input_error(tmp_path):
    path = tmp_path / "acme" / "2026-11-22.yaml"
    path.parent.mkdir()
    path.write_bytes(b"\xff\xfe\x00garbage\x80\x81")
    with pytest.raises(InputError) as exc:
        load_pricebook([tmp_path])
    assert exc.value.file == str(path) and "not a YAML text file" in str(exc.value)


def test_overlap_between_two_same_date_sheets(tmp_path):
    a = write(tmp_path / "acme" / "2026-11-22.yaml", sheet_yaml())
    b = write(tmp_path / "acme" / "extra.yaml", sheet_yaml(
        rows="  - id: other\n    aliases: [m1]\n    input: 1.0\n    output: 2.0\n"))
    with pytest.raises(InputError) as exc:
        load_pricebook([tmp_path])
    err = exc.value
    assert err.file == str(b) and str(a) in str(err)
    assert (err.field, err.value) == ("models[other].aliases", "m1") or (
        err.field == "models[other].id" and err.value == "m1")
    assert "overlap" in str(err)
    problems = [p for p in check_pricing([tmp_path], today=COMPILED) if "overlap" in p.message]
    assert len(problems) == 1


def test_same_date_in_different_dirs_is_an_override_not_an_overlap(tmp_path):
    write(tmp_path / "a" / "acme" / "2026-11-22.yaml", sheet_yaml())
    write(tmp_path / "b" / "acme" / "2026-11-22.yaml", sheet_yaml(rows=ROW.format(inp="3.0")))
    dirs = [tmp_path / "a", tmp_path / "b"]
    assert load_pricebook(dirs).lookup("acme/m1", COMPILED).input == 3.0
    assert [p for p in check_pricing(dirs, today=COMPILED) if p.is_error] == []


def test_filename_date_must_match_effective_from(tmp_path):
    path = write(tmp_path / "acme" / "2026-12-01.yaml", sheet_yaml())
    with pytest.raises(InputError) as exc:
        load_pricebook([tmp_path])
    assert exc.value.file == str(path) and exc.value.field == "effective_from"


def test_check_collects_all_problems_in_one_pass(tmp_path):
    write(tmp_path / "acme" / "2026-11-22.yaml", sheet_yaml(
        rows=ROW.format(inp="-1") + "  - id: m2\n    input: cheap\n    output: 1\n"))
    # a broken header does not hide the rows' own problems
    write(tmp_path / "beta" / "2026-11-22.yaml", sheet_yaml(
        provider="beta", source=None, rows=ROW.format(inp="0.0000025") + ROW.format(inp="1")))
    write(tmp_path / "junk.yaml", ": : :\n  - [\n")
    problems = check_pricing([tmp_path], today=COMPILED)
    fields = {(Path(p.file).parent.name, p.field) for p in problems if p.is_error}
    assert ("acme", "models[m1].input") in fields
    assert ("acme", "models[m2].input") in fields
    assert ("beta", "source") in fields
    assert ("beta", "models[m1].input") in fields  # per-token price
    assert ("beta", "models[m1].id") in fields  # duplicate row
    assert any(p.file.endswith("junk.yaml") for p in problems)


SANITY_CASES = {
    "absurdly expensive": (ROW.format(inp="5000"), "models[m1].input", "error"),
    "per-token price pasted": (ROW.format(inp="0.0000025"), "models[m1].input", "error"),
    "output far cheaper than input": (
        "  - id: m1\n    input: 10.0\n    output: 0.05\n", "models[m1].output", "error"),
    "cached above input": (
        ROW.format(inp="1.0") + "    cached_input: 1.5\n", "models[m1].cached_input", "error"),
    "batch above standard": (
        ROW.format(inp="1.0") + "    batch: {input: 2.0, output: 1.0}\n",
        "models[m1].batch.input", "error"),
    "free model": ("  - id: m1\n    input: 0\n    output: 0\n", "models[m1].input", "warning"),
    "tier cheaper": (
        ROW.format(inp="1.0") + "    tiers:\n      - {name: t, above_input_tokens: 10, "
        "input_multiplier: 0.5, output_multiplier: 1}\n",
        "models[m1].tiers[0].input_multiplier", "warning"),
}


@pytest.mark.parametrize("case", sorted(SANITY_CASES))
def test_check_sanity_rules(tmp_path, case):
    rows, field, severity = SANITY_CASES[case]
    path = write(tmp_path / "acme" / "2026-11-22.yaml", sheet_yaml(rows=rows))
    problems = check_pricing([tmp_path], today=COMPILED)
    hits = [p for p in problems if p.field == field and p.file == str(path)]
    assert hits and {p.severity for p in hits} == {severity}, problems
    _, code = run_check([tmp_path], today=COMPILED)
    assert code == (1 if severity == "error" else 0)


def test_check_date_rules(tmp_path):
    write(tmp_path / "acme" / "2026-11-22.yaml", sheet_yaml(retrieved="2026-12-25"))
    write(tmp_path / "beta" / "2029-01-01.yaml", sheet_yaml(
        provider="beta", effective_from="2029-01-01", retrieved="2026-01-01"))
    problems = check_pricing([tmp_path], today=COMPILED)
    msgs = {(Path(p.file).parent.name, p.field, p.severity): p.message for p in problems}
    assert "after today" in msgs[("acme", "retrieved", "error")]
    assert "days before effective_from" in msgs[("beta", "retrieved", "error")]
    assert ("beta", "effective_from", "warning") in msgs


def test_stale_sheet_is_only_a_warning(tmp_path):
    write(tmp_path / "acme" / "2026-01-01.yaml", sheet_yaml(
        effective_from="2026-01-01", retrieved="2026-01-01"))
    problems = check_pricing([tmp_path], today=COMPILED)
    assert [(p.severity, p.field) for p in problems] == [("warning", "retrieved")]
    assert "days ago" in problems[0].message
    text, code = run_check([tmp_path], today=COMPILED)
    assert code == 0 and "1 warning(s)" in text
    # a newer sheet for the same provider clears the warning
    write(tmp_path / "acme" / "2026-11-01.yaml", sheet_yaml(
        effective_from="2026-11-01", retrieved="2026-11-01"))
    assert check_pricing([tmp_path], today=COMPILED) == []


def test_hardware_sheet_problems(tmp_path):
    path = write(tmp_path / "hardware" / "2026-11-22.yaml", (
        "kind: hardware\ncurrency: USD\neffective_from: 2026-11-22\nretrieved: 2026-11-22\n"
        "source: [https://example.com]\nmachines:\n"
        "  - id: box\n    usd_per_hour: 0.5\n    derivation: {purchase_usd: 1599, "
        "amortization_years: 3, power_kw: 0.45, usd_per_kwh: 0.15}\n"
        "  - id: big\n    usd_per_hour: 5000\n"))
    assert load_pricebook([tmp_path]).hardware("box", COMPILED).usd_per_hour == 0.5
    fields = {p.field for p in check_pricing([tmp_path], today=COMPILED) if p.is_error}
    assert fields == {"machines[box].usd_per_hour", "machines[big].usd_per_hour"}
    path.write_text(path.read_text().replace("usd_per_hour: 0.5", "usd_per_hour: cheap"))
    with pytest.raises(InputError) as exc:
        load_pricebook([tmp_path])
    assert (exc.value.field, exc.value.value) == ("machines[box].usd_per_hour", "cheap")


def test_directory_name_mismatch_is_a_warning(tmp_path):
    write(tmp_path / "wrongdir" / "2026-11-22.yaml", sheet_yaml())
    problems = check_pricing([tmp_path], today=COMPILED)
    assert [(p.severity, p.field) for p in problems] == [("warning", "provider")]


# --------------------------------------------------------------------------------------------
# CLI helpers, schema, import cost
# --------------------------------------------------------------------------------------------


def test_list_and_show_commands():
    rows = sheet_rows([SHIPPED], today=COMPILED)
    assert len(rows) == 23
    gem = [r for r in rows if r["provider"] == "gemini"]
    assert [r["state"] for r in gem] == ["in effect", "scheduled", "scheduled"]
    table = list_sheets([SHIPPED], today=COMPILED)
    assert table.row_count == 23
    text = show_model("gemini-3.8-flash", [SHIPPED], on=dt.date(2027, 1, 2))
    assert "in effect" in text and "superseded" in text and "2027-01-01" in text
    assert "unpriced" in show_model("qwen2.5-7b-instruct", [SHIPPED], on=COMPILED)
    rows = model_rows("gemini-3.8-flash", [SHIPPED], on=dt.date(2026, 12, 1))
    assert [r["in_effect"] for r in rows] == [True, False]


def _jsonable(obj):
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, dt.date):
        return obj.isoformat()
    return obj


def test_show_model_has_the_cache_write_price():
    rows = model_rows("claude-opus-4-8", [SHIPPED], on=AUDITED)
    assert [(r["effective_from"], r["cache_write_input"], r["in_effect"]) for r in rows] == [
        ("2026-11-22", None, False), ("2026-12-02", 6.25, True)]
    assert "cache write" in show_model("claude-opus-4-8", [SHIPPED], on=AUDITED)


def test_json_schema_accepts_shipped_sheets_and_rejects_bad_ones():
    jsonschema = pytest.importorskip("jsonschema")
    schema_path = REPO / "slmbench" / "pricing" / "sheet.schema.json"
    schema = json.loads(schema_path.read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for path in sheet_files(SHIPPED):  # every shipped sheet (not _-files about the sheets)
        doc = _jsonable(yaml.safe_load(path.read_text()))
        errors = list(validator.iter_errors(doc))
        assert errors == [], (path, errors[:1])
    for case in ("negative price", "missing source", "wrong type price", "date 22/11/2026"):
        doc = _jsonable(yaml.safe_load(BAD_SHEETS[case][0]))
        assert not validator.is_valid(doc), case


def test_import_is_light():
    # compare with plain `import slmbench` so imports added to the package root do not count
    code = ("import sys, slmbench; before = set(sys.modules); import slmbench.pricing; "
            "new = set(sys.modules) - before; "
            "print(sorted(m for m in ('rich', 'litellm', 'pandas', 'jsonschema', 'numpy') "
            "if m in new))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True)
    assert out.stdout.strip() == "[]"


def _schema():
    return json.loads((REPO / "slmbench" / "pricing" / "sheet.schema.json").read_text())


def test_validator_field_names_come_from_the_schema():
    from slmbench.pricing import sheets

    defs = _schema()["$defs"]
    row = defs["modelRow"]["properties"]
    assert set(row) == sheets._MODEL_KEYS
    assert set(defs["providerSheet"]["properties"]) == sheets._PROVIDER_SHEET_KEYS
    assert set(defs["hardwareSheet"]["properties"]) == sheets._HARDWARE_SHEET_KEYS
    assert set(defs["machineRow"]["properties"]) == sheets._MACHINE_KEYS
    assert set(defs["tier"]["properties"]) == sheets._TIER_KEYS
    assert set(row["batch"]["properties"]) == sheets._BATCH_KEYS
    assert set(row["off_peak"]["properties"]) == sheets._OFF_PEAK_KEYS
    assert "cache_write_input" in sheets.ROW_PRICE_FIELDS
    # every price the schema defines is carried on TokenPrice under its own name
    import dataclasses

    from slmbench.pricing import TokenPrice

    names = {f.name for f in dataclasses.fields(TokenPrice)}
    assert set(sheets.ROW_PRICE_FIELDS) <= names


@pytest.mark.parametrize("key", ["input", "output", "cached_input", "cache_write_input"])
def test_each_row_price_is_checked_alike_by_loader_and_schema(tmp_path, key):
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(_schema())
    base = {"id": "m1", "input": 1.0, "output": 2.0}
    for value, ok in ((0.5, True), (0, True), (-1, False), ("0.5", False), (float("inf"), False),
                      (True, False)):
        row = {**base, key: value}
        doc = {"provider": "acme", "currency": "USD", "unit": "per_1m_tokens",
               "effective_from": "2026-11-22", "retrieved": "2026-11-22",
               "source": "https://example.com", "models": [row]}
        path = write(tmp_path / "acme" / "2026-11-22.yaml", yaml.safe_dump(doc))
        if ok:
            price = load_pricebook([tmp_path]).lookup("acme/m1", COMPILED)
            assert getattr(price, key) == value
        else:
            with pytest.raises(InputError) as exc:
                load_pricebook([tmp_path])
            assert (exc.value.file, exc.value.field) == (str(path), f"models[m1].{key}")
        if value != float("inf"):  # JSON has no infinity; the schema sees only JSON values
            assert validator.is_valid(_jsonable(doc)) is ok, (key, value)


def test_cache_write_price_typo_is_an_error(tmp_path):
    write(tmp_path / "acme" / "2026-11-22.yaml",
          sheet_yaml(rows=ROW.format(inp="1.0") + "    cache_write_inptu: 1.25\n"))
    with pytest.raises(InputError) as exc:
        load_pricebook([tmp_path])
    assert exc.value.field == "models[m1].cache_write_inptu"
    assert "cache_write_input" in str(exc.value)  # the allowed fields are listed


@pytest.mark.parametrize(("value", "severities"), [
    ("0.1", ["warning"]),  # below input: probably the cache-hit price
    ("5000", ["error"]),
    ("0.00000125", ["error", "warning"]),  # a per-token figure, and below input too
])
def test_check_cache_write_price(tmp_path, value, severities):
    path = write(tmp_path / "acme" / "2026-11-22.yaml",
                 sheet_yaml(rows=ROW.format(inp="1.0") + f"    cache_write_input: {value}\n"))
    hits = [p for p in check_pricing([tmp_path], today=COMPILED)
            if p.field == "models[m1].cache_write_input" and p.file == str(path)]
    assert [p.severity for p in hits] == severities
    write(tmp_path / "acme" / "2026-11-22.yaml",
          sheet_yaml(rows=ROW.format(inp="1.0") + "    cache_write_input: 1.25\n"))
    assert check_pricing([tmp_path], today=COMPILED) == []


# --------------------------------------------------------------------------------------------
# the 2026-12-02 corrections (pricing-audit-2026-12-02)
# --------------------------------------------------------------------------------------------

ANTHROPIC_ROWS = ["claude-haiku-4-5", "claude-haiku-5-5", "claude-sonnet-4-5", "claude-sonnet-4-6",
                  "claude-opus-4-5", "claude-opus-4-6", "claude-opus-4-7", "claude-opus-4-8"]


def test_every_anthropic_row_has_the_5_minute_cache_write_price(book):
    rows = {p.model_id for p in book.prices
            if p.provider == "anthropic" and p.effective_from <= AUDITED}
    assert rows == set(ANTHROPIC_ROWS)
    for model in ANTHROPIC_ROWS:
        old = book.lookup(f"anthropic/{model}", COMPILED)
        new = book.lookup(f"anthropic/{model}", AUDITED)
        assert Path(new.sheet_path).name == "2026-12-02.yaml"
        assert old.cache_write_input is None  # the superseded row, as it was
        assert new.cache_write_input == pytest.approx(1.25 * new.input, rel=REL)
        assert "https://platform.claude.com/docs/en/about-claude/pricing" in new.source or \
            "https://platform.claude.com/docs/en/docs/about-claude/pricing" in new.source
        # only the cache-write price changed
        for f in ("input", "output", "cached_input", "batch_input", "batch_output", "tiers",
                  "aliases"):
            assert getattr(new, f) == getattr(old, f), (model, f)


@pytest.mark.parametrize(("model", "inp", "cached", "write_price", "out"), [
    ("gpt-5.6-luna", 0.20, 0.02, 0.25, 1.20),
    ("gpt-5.6-terra", 2.00, 0.20, 2.50, 12.00),
    ("gpt-6-luna", 0.10, 0.01, 0.125, 0.50),
])
def test_openai_luna_terra_corrections(book, model, inp, cached, write_price, out):
    old = book.lookup(model, COMPILED)
    new = book.lookup(model, AUDITED)
    assert (old.input, old.cached_input, old.output, old.tiers) == (inp, cached, out, ())
    assert old.cache_write_input is None
    assert (new.input, new.cached_input, new.cache_write_input, new.output) == (
        inp, cached, write_price, out)
    assert new.cache_write_input == pytest.approx(1.25 * new.input, rel=REL)
    assert [(t.above_input_tokens, t.input_multiplier, t.output_multiplier)
            for t in new.tiers] == [(272_000, 2.0, 1.5)]
    assert (new.batch_input, new.batch_output) == (old.batch_input, old.batch_output)
    # other OpenAI models keep their 2026-11-22 row
    assert Path(book.lookup("gpt-5.4", AUDITED).sheet_path).name == "2026-11-22.yaml"
