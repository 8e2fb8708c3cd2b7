"""``benchmarks/provider_matrix.py`` on a reduced matrix: slmbench end to end through the
OpenAI / Anthropic / Gemini wire-format emulators, every figure checked.

One run of the matrix (5 items per task, so the 5th item of each task gets the wrong answer)
feeds every test: 0 errors, the expected accuracy, slmbench's $ equal to the $ recomputed by
hand from the sheet and the rows (1e-12), the rows' token counts equal to the emulators' usage,
the structured-output schema in each provider's native form exactly when asked for, the
reasoning knobs on the wire, and truncation (not invalid answers) when reasoning eats the output
budget.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

import pytest  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import provider_matrix as pm  # noqa: E402

LIMIT = 5  # items 0..3 answered right, item 4 wrong
EXPECTED_CORRECT = sum(i % pm.WRONG_EVERY != pm.WRONG_EVERY - 1 for i in range(LIMIT))


@pytest.fixture(scope="module")
def matrix() -> pm.Matrix:
    return pm.run_matrix(LIMIT)


def _is_anthropic_refused_budget(r: pm.CellResult) -> bool:
    """The Anthropic max_tokens=32 cell: the provider refuses max_tokens <= budget_tokens."""
    return r.cell.provider == "anthropic" and r.cell.max_tokens == pm.BUDGET_MAX_TOKENS


def _regular(matrix: pm.Matrix) -> list[pm.CellResult]:
    return [r for r in matrix.results if not r.cell.budget]


def _budget(matrix: pm.Matrix) -> list[pm.CellResult]:
    return [r for r in matrix.results if r.cell.budget and not _is_anthropic_refused_budget(r)]


def _enums(schema: object) -> list[list]:
    """Every ``enum`` list inside a schema (JSON Schema or Gemini's OpenAPI form)."""
    found: list[list] = []
    if isinstance(schema, dict):
        if isinstance(schema.get("enum"), list):
            found.append(schema["enum"])
        for v in schema.values():
            found += _enums(v)
    elif isinstance(schema, list):
        for v in schema:
            found += _enums(v)
    return found


def test_matrix_shape(matrix):
    keys = {(r.cell.provider, r.cell.reasoning, r.cell.structured, r.task)
            for r in _regular(matrix)}
    assert len(keys) == len(_regular(matrix)) == 3 * 2 * 2 * 3
    assert {r.cell.provider for r in _budget(matrix)} == set(pm.PROVIDERS)
    assert {r.model for r in matrix.results} == {
        pm.OPENAI_NONE_EFFORT_MODEL, pm.OPENAI_REASONING_MODEL, pm.ANTHROPIC_MODEL,
        pm.GEMINI_MODEL}
    assert matrix.litellm_version
    assert matrix.ok, pm.notes(matrix)


def test_every_cell_answers_every_item_without_errors(matrix):
    for r in _regular(matrix) + _budget(matrix):
        where = f"{r.cell.run_id} {r.task}"
        assert r.failed is None, where
        assert r.errors == 0, (where, pm.notes(matrix))
        assert r.n_items == r.answered == LIMIT, where
        assert not [row for row in r.rows if row.get("error")], where
        # the emulator answered each item once (pre-flight probe included), all with 200
        assert sorted(rec["status"] for rec in r.requests) == [200] * LIMIT, where


def test_accuracy_is_what_the_responder_gave(matrix):
    for r in _regular(matrix):
        where = f"{r.cell.run_id} {r.task}"
        assert (r.correct, r.invalid, r.truncated) == (EXPECTED_CORRECT, 0, 0), where
        wrong = [row["item_id"] for row in r.rows if not row["correct"]]
        assert len(wrong) == LIMIT - EXPECTED_CORRECT, where


def test_slmbench_dollars_equal_the_hand_computation(matrix):
    for r in matrix.results:
        where = f"{r.cell.run_id} {r.task}"
        if r.failed and r.failed.startswith("refused before the run"):
            assert r.slm_usd is None and r.hand_usd is None, where
            continue
        assert r.slm_usd is not None and r.hand_usd is not None, where  # every cell priced
        assert abs(r.slm_usd - r.hand_usd) < 1e-12, (where, r.slm_usd, r.hand_usd)
        if not _is_anthropic_refused_budget(r):
            assert r.hand_usd > 0, where
    # the cache prices are exercised: every answered row read from the cache, Anthropic's wrote
    for r in _regular(matrix):
        writes = pm.CACHE_WRITE_TOKENS if r.cell.provider == "anthropic" else 0
        assert [(row["cached_tokens_in"], row["cache_write_tokens"] or 0) for row in r.rows] == [
            (pm.CACHED_TOKENS, writes)] * LIMIT, (r.cell.run_id, r.task)


def test_row_tokens_equal_the_usage_on_the_wire(matrix):
    for r in matrix.results:
        assert r.token_mismatches == [], (r.cell.run_id, r.task)
    on = [r for r in _regular(matrix) if r.cell.reasoning == "on"]
    assert on and all(r.reasoning_tokens == LIMIT * pm.REASONING_TOKENS for r in on)


def test_hand_cost_rule_agrees_with_token_cost_on_tiers_and_cache_writes():
    """The hand formula itself, on a sheet row with a long-context tier and a cache-write
    price (here token_cost is the reference, not the thing checked)."""
    from slmbench.pricing.cost import token_cost
    from slmbench.pricing.run_costs import PricingOptions, load_book

    price = load_book(PricingOptions()).lookup("openai/gpt-5.6-luna", "2026-12-02")
    assert price is not None and price.tiers and price.cache_write_input is not None
    for t_in, t_out, cached, writes in [(1000, 50, 100, 10), (300_000, 700, 1000, 2000),
                                        (272_000, 1, 0, 0), (272_001, 1, 272_000, 1)]:
        assert abs(pm.hand_cost(price, t_in, t_out, cached, writes) - token_cost(
            price, t_in, t_out, cached, cache_write_in=writes)) < 1e-12


def test_structured_on_sends_the_schema_in_each_providers_native_form(matrix):
    native = {"openai": {"response_format"}, "anthropic": {"output_format", "tool"},
              "gemini": {"responseJsonSchema", "response_json_schema", "responseSchema",
                         "response_schema"}}
    books = pm.GoldBook(pm.TASKS)
    for r in matrix.results:
        if r.cell.structured != "on" or _is_anthropic_refused_budget(r):
            continue
        where = f"{r.cell.run_id} {r.task}"
        assert r.requests, where
        for rec in r.requests:
            form = pm.structured_form(r.cell.provider, rec["body"])
            assert form is not None and form[0] in native[r.cell.provider], (where, form)
            schema = form[1]
            choices = books.choices[r.task]
            if choices:
                assert [sorted(e) for e in _enums(schema)] == [sorted(choices)], where
            else:
                props = schema.get("properties") or {}
                assert sorted(props) == sorted(books.fields[r.task]), where
        if r.cell.provider == "openai":
            assert all(rec["body"]["response_format"]["json_schema"]["strict"] is True
                       for rec in r.requests), where


def test_structured_off_sends_no_schema(matrix):
    for r in matrix.results:
        if r.cell.structured != "off" or _is_anthropic_refused_budget(r):
            continue
        where = f"{r.cell.run_id} {r.task}"
        assert r.requests, where
        for rec in r.requests:
            body = rec["body"]
            assert pm.structured_form(r.cell.provider, body) is None, where
            assert not {"response_format", "output_format", "output_config", "tools",
                        "tool_choice"} & set(body), where
            gen = body.get("generationConfig") or body.get("generation_config") or {}
            assert not {"responseMimeType", "response_mime_type"} & set(gen), where


def test_reasoning_knobs_on_the_wire(matrix):
    for r in _regular(matrix) + _budget(matrix):
        where = f"{r.cell.run_id} {r.task}"
        on = r.cell.reasoning == "on"
        for rec in r.requests:
            body = rec["body"]
            if r.cell.provider == "openai":
                assert body["model"] == r.model.split("/", 1)[1], where
                assert "max_tokens" not in body and "max_completion_tokens" in body, where
                if on:  # a reasoning GPT-5 rejects temperature other than 1: none is sent
                    assert "temperature" not in body, where
                    assert body["reasoning_effort"] == "low", where
                else:
                    assert body["reasoning_effort"] == "none", where
                    assert body["temperature"] == 0, where
            elif r.cell.provider == "anthropic":
                if on:
                    assert body["thinking"]["type"] == "enabled", where
                    assert body["max_tokens"] > body["thinking"]["budget_tokens"], where
                    assert body.get("temperature", 1) == 1, where
                else:
                    assert "thinking" not in body, where
                    assert body["temperature"] == 0, where
            else:
                gen = body.get("generationConfig") or body.get("generation_config") or {}
                think = gen.get("thinkingConfig") or gen.get("thinking_config") or {}
                budget = think.get("thinkingBudget", think.get("thinking_budget"))
                assert (budget > 0) if on else (budget == 0), (where, think)


def test_budget_exhausted_cells_are_truncated_not_invalid(matrix):
    cells = _budget(matrix)
    assert len(cells) == 3
    for r in cells:
        where = f"{r.cell.run_id} {r.task}"
        assert (r.n_items, r.truncated, r.invalid, r.errors, r.correct) == (
            LIMIT, LIMIT, 0, 0, 0), where
        assert all(row["finish_reason"] == "length" and row["truncated"] for row in r.rows)
        assert r.reasoning_tokens and r.reasoning_tokens > 0, where
        for rec in r.requests:
            body = rec["body"]
            if r.cell.provider == "openai":
                assert body["max_completion_tokens"] == pm.BUDGET_MAX_TOKENS, where
            elif r.cell.provider == "gemini":
                gen = body.get("generationConfig") or body.get("generation_config") or {}
                limit = gen.get("maxOutputTokens", gen.get("max_output_tokens"))
                assert limit == pm.BUDGET_MAX_TOKENS, where
            else:
                assert body["max_tokens"] == pm.ANTHROPIC_BUDGET_MAX_TOKENS, where
    # the reasoning took the whole budget where the provider counts it there
    for r in cells:
        if r.cell.provider in ("openai", "gemini"):
            assert all(row["reasoning_tokens"] == row["tokens_out"] == pm.BUDGET_MAX_TOKENS
                       for row in r.rows), r.cell.run_id


def test_anthropic_thinking_with_a_budget_below_1024_stops_before_the_run_is_spent(matrix):
    """Anthropic refuses ``max_tokens`` <= ``thinking.budget_tokens`` (litellm maps
    reasoning_effort=low to 1024): slmbench refuses the setting before any call."""
    (r,) = [r for r in matrix.results if _is_anthropic_refused_budget(r)]
    assert r.failed and r.failed.startswith("refused before the run")
    assert "more than the thinking budget" in r.failed
    assert r.requests == [] and r.rows == []