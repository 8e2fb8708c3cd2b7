"""Paid API paths on first contact, through litellm's real provider transformations to loopback
emulators of each provider's wire format (tests/provider_emulators.py).

Each test is one of the ways a new user met a wrong answer before (issue 15): a GPT-5 model
whose reasoning is on by default, Claude with logprobs, a missing Gemini key, reasoning that
eats the output budget, and a model that cannot run at all.
"""

from __future__ import annotations

import json
import os
import time

import pytest
from conftest import BUNDLED_TASKS, run_cli
from provider_emulators import (
    ANTHROPIC_MODEL,
    GEMINI_MODEL,
    OPENAI_REASONING_MODEL,
    AnthropicEmulator,
    GeminiEmulator,
    OpenAIReasoningEmulator,
)

from slmbench.store import open_run
from slmbench.tasks import load_items, load_task

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
EXTRACTION = BUNDLED_TASKS / "order_extraction.yaml"


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    monkeypatch.setenv("GEMINI_API_KEY", "g-test")
    monkeypatch.setenv("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")
    monkeypatch.setenv("COLUMNS", "200")


def gold_responder(task_path, wrong_every: int = 0):
    """Answers each item's gold (wrong on every n-th), found by the item text in the prompt."""
    task = load_items(load_task(task_path))
    gold = {it.text: it.gold for it in task.items}
    order = {text: i for i, text in enumerate(gold)}
    choices = task.spec.choices

    def respond(prompt: str, body: dict) -> str:
        text = next(t for t in gold if t in prompt)
        right = gold[text]
        if isinstance(right, dict):
            return json.dumps(right)
        if wrong_every and order[text] % wrong_every == wrong_every - 1:
            return next(c for c in choices if c != right)
        return right

    return respond


def _run(args, capsys, tmp_path, run_id="r"):
    return run_cli(["run", *map(str, args), "--results-dir", str(tmp_path), "--run-id", run_id,
                    "-q", "--no-cache", "--executor", "local"], capsys)


def _rows(tmp_path, run_id="r"):
    return open_run(tmp_path / run_id).rows()


def test_gpt5_reasoning_model_runs_with_only_what_it_accepts(tmp_path, capsys):
    """Before: every item failed (UnsupportedParamsError: temperature=0.0 while reasoning is
    active). Now temperature is dropped (and recorded), the budget leaves room for reasoning,
    and the hidden tokens are recorded and priced as output."""
    with OpenAIReasoningEmulator(gold_responder(ROUTING, 4), reasoning_tokens=40) as srv:
        code, out, err = _run([ROUTING, "-m", f"{OPENAI_REASONING_MODEL}?api_base={srv.url}",
                               "--limit", "8"], capsys, tmp_path)
    assert code == 0, err
    bodies = [r["body"] for r in srv.requests]
    assert len(bodies) == 8
    for body in bodies:
        assert "temperature" not in body and "logprobs" not in body
        # the task's 32 answer tokens + the reserve for effort medium (litellm's default here)
        assert body["max_completion_tokens"] == 32 + 4096
        schema = body["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["answer"]["enum"] == list(
            load_task(ROUTING).choices)
    rows = _rows(tmp_path)
    assert [r["reasoning_tokens"] for r in rows] == [40] * 8
    assert all(r["finish_reason"] == "stop" and not r["truncated"] for r in rows)
    assert sum(r["correct"] for r in rows) == 6  # items 3 and 7 answered wrong
    manifest = open_run(tmp_path / "r").read_manifest()
    contract = manifest["models"][OPENAI_REASONING_MODEL]["contract"]
    assert contract["effort"] == "medium" and contract["temperature"] is None
    assert "reasoning is active" in contract["dropped"]["temperature"]
    # reasoning tokens are inside tokens_out and billed as output: $ by hand from the sheet
    entry = open_run(tmp_path / "r").read_summary()["results"][0]
    tokens_in = sum(r["tokens_in"] for r in rows)
    tokens_out = sum(r["tokens_out"] for r in rows)
    # visible: '{"answer": "cards"}', two whitespace words in the emulator's token rule
    assert tokens_out == sum(r["reasoning_tokens"] + 2 for r in rows)
    from slmbench.pricing.run_costs import PricingOptions, load_book

    row = load_book(PricingOptions()).lookup("openai/gpt-5-mini", _run_date(manifest))
    by_hand = (tokens_in * row.input + tokens_out * row.output) / 1e6
    assert entry["total_usd"] == pytest.approx(by_hand, rel=1e-12)


def _run_date(manifest):
    import datetime as dt

    return dt.date.fromisoformat(manifest["started_at"][:10])


def test_claude_logprobs_degrade_to_null_confidence_with_one_warning(tmp_path, capsys):
    """Before: every item failed (anthropic does not support parameters: ['logprobs'])."""
    with AnthropicEmulator(gold_responder(ROUTING)) as srv:
        code, out, err = _run([ROUTING, "-m", f"{ANTHROPIC_MODEL}?api_base={srv.url}"
                               "&logprobs=true", "--limit", "5"], capsys, tmp_path)
    assert code == 0, err
    assert len(srv.requests) == 5
    assert all("logprobs" not in r["body"] and "top_logprobs" not in r["body"]
               for r in srv.requests)
    rows = _rows(tmp_path)
    assert all(r["confidence"] is None and r["error"] is None for r in rows)
    assert sum(r["correct"] for r in rows) == 5
    warnings = [line for line in err.splitlines() if "logprobs dropped" in line]
    assert len(warnings) == 1 and "anthropic returns no token logprobs" in warnings[0]


def test_missing_gemini_key_is_one_line_no_call_and_the_others_go_on(tmp_path, capsys,
                                                                     monkeypatch):
    """Before: 4 attempts per item for the whole dataset, then 0 %, $0, ★ and exit 0."""
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    started = time.perf_counter()
    with GeminiEmulator(gold_responder(ROUTING)) as srv:
        code, out, err = _run([ROUTING, "-m", f"{GEMINI_MODEL}?api_base={srv.url}",
                               "-m", "baseline:tfidf-logreg", "--limit", "10"], capsys, tmp_path)
    seconds = time.perf_counter() - started
    assert code == 1
    assert srv.requests == []  # never sent, never retried
    lines = err.strip().splitlines()
    assert any(line.startswith(f"{GEMINI_MODEL} cannot run on support-routing: missing API key: "
                               "set GEMINI_API_KEY") for line in lines), err
    assert lines[-1].startswith("failed: 1 model(s) could not run (gemini/gemini-2.5-flash)")
    rows = _rows(tmp_path)
    assert {r["model"] for r in rows} == {"baseline:tfidf-logreg"} and len(rows) == 10
    # the leaderboard says failed, never 0 % or ★
    gemini = [line for line in out.splitlines() if GEMINI_MODEL in line]
    assert gemini and all("failed" in line and "★" not in line and "0.0%" not in line
                          for line in gemini)
    assert seconds < 30  # dominated by the TF-IDF training and the summary, not the model


def test_reasoning_that_eats_the_budget_is_truncated_not_invalid(tmp_path, capsys):
    """Before: an empty answer with finish_reason length was counted as invalid."""
    with OpenAIReasoningEmulator(gold_responder(ROUTING), reasoning_tokens=40) as srv:
        code, out, err = _run([ROUTING, "-m", f"{OPENAI_REASONING_MODEL}?api_base={srv.url}"
                               "&max_tokens=32", "--limit", "6"], capsys, tmp_path)
    assert [r["body"]["max_completion_tokens"] for r in srv.requests] == [32] * 6
    rows = _rows(tmp_path)
    assert all(r["truncated"] and not r["invalid"] and r["answer"] is None for r in rows)
    # a routing answer that never came goes to the fallback route, as it would in production
    assert all(r["routed"] == "human_agent" and r["correct"] == (r["gold"] == "human_agent")
               for r in rows)
    assert all(r["finish_reason"] == "length" and r["reasoning_tokens"] == 32 for r in rows)
    entry = open_run(tmp_path / "r").read_summary()["results"][0]
    assert entry["truncated"] == 6 and entry["truncated_rate"] == 1.0
    warnings = [line for line in err.splitlines() if "cut off by the output budget" in line]
    assert len(warnings) == 1 and "raise max_tokens" in warnings[0]
    assert code == 0  # the model ran; its answers were cut off (shown, and warned about)


def test_preflight_stops_a_model_the_provider_rejects_after_one_call(tmp_path, capsys):
    """A model name the provider does not serve: one probe call, one line, exit 1; the other
    model answers every item."""
    with OpenAIReasoningEmulator(gold_responder(ROUTING)) as srv:
        started = time.perf_counter()
        code, out, err = _run([ROUTING, "-m", f"openai/gtp-5-nano?api_base={srv.url}",
                               "-m", f"{OPENAI_REASONING_MODEL}?api_base={srv.url}",
                               "--limit", "10"], capsys, tmp_path)
        seconds = time.perf_counter() - started
    typo = [r for r in srv.requests if r["body"]["model"] == "gtp-5-nano"]
    assert len(typo) == 1 and typo[0]["status"] == 404
    assert code == 1
    line = next(x for x in err.splitlines() if x.startswith("openai/gtp-5-nano cannot run"))
    assert "404" in line and "(check the model name)" in line
    rows = _rows(tmp_path)
    assert sum(r["model"] == OPENAI_REASONING_MODEL for r in rows) == 10
    manifest = open_run(tmp_path / "r").read_manifest()
    assert [(f["task"], f["model"]) for f in manifest["failures"]] == [
        ("support-routing", "openai/gtp-5-nano")]
    assert seconds < 20


def test_fail_fast_stops_after_n_identical_permanent_errors(tmp_path, capsys):
    """--no-preflight: the pair stops after --fail-fast identical permanent errors."""
    with OpenAIReasoningEmulator(gold_responder(ROUTING)) as srv:
        code, out, err = _run([ROUTING, "-m", f"openai/gtp-5-nano?api_base={srv.url}",
                               "--limit", "20", "--no-preflight", "--fail-fast", "3",
                               "--concurrency", "1"],
                              capsys, tmp_path)
    assert code == 1
    assert len(srv.requests) == 3  # calls in flight when it stops still finish: here none
    rows = _rows(tmp_path)
    assert len(rows) == 3 and all(r["error_permanent"] and r["attempts"] == 1 for r in rows)


def test_settings_a_model_cannot_take_are_refused_before_any_call(tmp_path, capsys):
    with OpenAIReasoningEmulator() as srv:
        for setting, needle in (("temperature=0", "temperature is rejected while reasoning"),
                                ("reasoning_effort=none", "does not take reasoning_effort=none"),
                                ("reasoning_effort=loud", "unknown reasoning_effort"),
                                ("structured=maybe", "structured is one of"),
                                ("max_tokens=0", "at least 1")):
            code, out, err = _run([ROUTING, "-m", f"{OPENAI_REASONING_MODEL}?api_base={srv.url}"
                                   f"&{setting}"], capsys, tmp_path, run_id=setting[:5])
            assert code == 2, (setting, err)
            assert len(err.strip().splitlines()) == 1 and needle in err, (setting, err)
            assert "Traceback" not in err
    assert srv.requests == []
    with AnthropicEmulator() as srv:
        code, out, err = _run([ROUTING, "-m", f"{ANTHROPIC_MODEL}?api_base={srv.url}"
                               "&reasoning_effort=low&max_tokens=32"], capsys, tmp_path, "a")
    assert code == 2 and "more than the thinking budget of reasoning_effort=low (1024" in err
    assert srv.requests == []


def test_anthropic_cache_writes_and_thinking_priced_as_billed(tmp_path, capsys):
    """Thinking is output; cache reads and writes are parts of tokens_in priced at their own
    sheet prices: the summary's $ equals the sheet arithmetic done here by hand."""
    with AnthropicEmulator(gold_responder(ROUTING), reasoning_tokens=1100, cached_tokens=20,
                           cache_write_tokens=10) as srv:
        code, out, err = _run([ROUTING, "-m", f"{ANTHROPIC_MODEL}?api_base={srv.url}"
                               "&reasoning_effort=low", "--limit", "4"], capsys, tmp_path)
    assert code == 0, err
    for r in srv.requests:
        assert r["body"]["thinking"]["type"] == "enabled"
        assert r["body"]["thinking"]["budget_tokens"] < r["body"]["max_tokens"]
        assert "temperature" not in r["body"]
    rows = _rows(tmp_path)
    assert all(r["cache_write_tokens"] == 10 and r["cached_tokens_in"] == 20 for r in rows)
    assert all(r["reasoning_tokens"] and r["tokens_out"] > r["reasoning_tokens"] for r in rows)
    manifest = open_run(tmp_path / "r").read_manifest()
    from slmbench.pricing.run_costs import PricingOptions, load_book

    p = load_book(PricingOptions()).lookup(ANTHROPIC_MODEL, _run_date(manifest))
    assert p.cache_write_input is not None and p.cached_input is not None
    by_hand = sum(((r["tokens_in"] - 30) * p.input + 20 * p.cached_input
                   + 10 * p.cache_write_input + r["tokens_out"] * p.output) / 1e6 for r in rows)
    entry = open_run(tmp_path / "r").read_summary()["results"][0]
    assert entry["total_usd"] == pytest.approx(by_hand, rel=1e-12)


def test_extraction_schema_goes_to_the_api_as_strict_structured_output(tmp_path, capsys):
    with OpenAIReasoningEmulator(gold_responder(EXTRACTION)) as srv:
        code, out, err = _run([EXTRACTION, "-m", f"{OPENAI_REASONING_MODEL}?api_base={srv.url}"
                               "&reasoning_effort=low", "--limit", "5"], capsys, tmp_path)
    assert code == 0, err
    fmt = srv.requests[0]["body"]["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    schema = fmt["json_schema"]["schema"]
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == set(schema["properties"])
    assert "maxLength" not in json.dumps(schema)
    assert srv.requests[0]["body"]["reasoning_effort"] == "low"
    assert all(r["status"] == 200 for r in srv.requests)
    assert sum(r["correct"] for r in _rows(tmp_path)) == 5


def test_structured_off_sends_no_response_format(tmp_path, capsys):
    with GeminiEmulator(gold_responder(ROUTING)) as srv:
        code, out, err = _run([ROUTING, "-m", f"{GEMINI_MODEL}?api_base={srv.url}"
                               "&structured=off&reasoning_effort=none", "--limit", "3"],
                              capsys, tmp_path)
    assert code == 0, err
    for r in srv.requests:
        config = r["body"]["generationConfig"]
        assert not any("schema" in k.lower() or "mime" in k.lower() for k in config)
        assert config["thinkingConfig"]["thinkingBudget"] == 0
        assert config["temperature"] == 0.0


def test_no_secret_in_results_and_the_key_variable_is_named_not_its_value(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-canary-4b1d9e")
    with AnthropicEmulator(gold_responder(ROUTING), api_key="other-key") as srv:
        code, out, err = _run([ROUTING, "-m", f"{ANTHROPIC_MODEL}?api_base={srv.url}",
                               "--limit", "5"], capsys, tmp_path)
    assert code == 1 and len(srv.requests) == 1  # 401 on the probe: a permanent error
    assert "(check the API key in the environment)" in err
    texts = [out, err] + [p.read_text() for p in (tmp_path / "r").rglob("*") if p.is_file()]
    assert not any("canary" in t for t in texts)
    assert os.environ["ANTHROPIC_API_KEY"] == "sk-ant-canary-4b1d9e"


def test_a_reasoning_effort_sweep_is_one_row_per_effort_each_priced(tmp_path, capsys):
    efforts = {"low": 30, "high": 90}
    with OpenAIReasoningEmulator(gold_responder(ROUTING), reasoning_tokens=efforts) as srv:
        code, out, err = _run([ROUTING, *[a for e in efforts for a in (
            "-m", f"{OPENAI_REASONING_MODEL}?api_base={srv.url}&reasoning_effort={e}")],
            "--limit", "4"], capsys, tmp_path)
    assert code == 0, err
    assert sorted(r["body"]["reasoning_effort"] for r in srv.requests) == ["high"] * 4 + [
        "low"] * 4
    entries = {e["model"]: e for e in open_run(tmp_path / "r").read_summary()["results"]}
    low = entries[f"{OPENAI_REASONING_MODEL}?reasoning_effort=low"]
    high = entries[f"{OPENAI_REASONING_MODEL}?reasoning_effort=high"]
    assert low["n_items"] == high["n_items"] == 4
    assert (low["reasoning_tokens"], high["reasoning_tokens"]) == (4 * 30, 4 * 90)
    # same answers, same prompt: the difference in $ is 4 x 60 reasoning tokens at the output
    # price of the sheet row
    from slmbench.pricing.run_costs import PricingOptions, load_book

    manifest = open_run(tmp_path / "r").read_manifest()
    price = load_book(PricingOptions()).lookup(OPENAI_REASONING_MODEL, _run_date(manifest))
    assert high["total_usd"] - low["total_usd"] == pytest.approx(4 * 60 * price.output / 1e6,
                                                                 rel=1e-9)


def test_progress_bars_start_after_the_probe(tmp_path, capsys):
    """Without -q the probe ran before any bar existed (KeyError in the progress display)."""
    with OpenAIReasoningEmulator(gold_responder(ROUTING)) as srv:
        code, out, err = run_cli(["run", str(ROUTING), "-m",
                                  f"{OPENAI_REASONING_MODEL}?api_base={srv.url}", "--limit", "4",
                                  "--results-dir", str(tmp_path), "--run-id", "r",
                                  "--executor", "local", "--no-cache"], capsys)
    assert code == 0, err
    assert "Traceback" not in err and len(srv.requests) == 4
    assert len(_rows(tmp_path)) == 4
