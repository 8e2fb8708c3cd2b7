"""The asyncio path of API models: litellm.acompletion on one event loop, faults included.

Every call goes over loopback HTTP to the fault-injecting server in tests/fakeserver.py. The
other reliability tests (test_reliability.py, test_adaptive_concurrency.py, test_costs.py) run
through this path too, since litellm models have ``acomplete``; these check what is specific to
it: that it is the path taken, Retry-After waits that do not block other calls, timeouts, and
identical rows to the thread path.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, gold_answerer
from fakeserver import FakeOpenAIServer, FaultPlan

from slmbench.models.litellm_api import LiteLLMModel
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.run import RunOptions, run_benchmark

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
COMPARED = ("output", "answer", "routed", "correct", "invalid", "error", "attempts", "tokens_in",
            "tokens_out", "token_source", "confidence", "confidence_source", "cached")


def _run(server: FakeOpenAIServer, tmp_path: Path, run_id: str, settings: str = "", **opts):
    opts.setdefault("retry", RetryPolicy(max_attempts=3, base_s=0.01, cap_s=0.05))
    opts.setdefault("concurrency", 8)
    opts.setdefault("use_cache", False)
    return run_benchmark([ROUTING], [f"openai/fake?api_base={server.base_url}{settings}"],
                         results_dir=tmp_path, run_id=run_id, options=RunOptions(**opts))


def _attempt_times(server: FakeOpenAIServer) -> dict[str, list[float]]:
    times: dict[str, list[float]] = defaultdict(list)
    for call in server.calls:
        times[call["_prompt"]].append(call["_t"])
    return times


def test_litellm_calls_take_the_async_path(tmp_path, monkeypatch):
    def no_threads(self, request):
        raise AssertionError("the thread path was used")

    monkeypatch.setattr(LiteLLMModel, "complete", no_threads)
    _, answer = gold_answerer(ROUTING)
    with FakeOpenAIServer(answer, delay_s=0.01) as server:
        result = _run(server, tmp_path, "async", limit=12)
    rows = result.run.rows()
    assert len(rows) == 12 and all(r["correct"] and r["error"] is None for r in rows)


def test_async_rows_equal_thread_rows(tmp_path, monkeypatch):
    _, answer = gold_answerer(ROUTING, wrong_every=3)
    with FakeOpenAIServer(answer, answer_logprob=lambda b: -0.2) as server:
        fast = _run(server, tmp_path, "async", "&logprobs=true")
        monkeypatch.setattr(LiteLLMModel, "acomplete", None)  # the thread pool path
        slow = _run(server, tmp_path, "threads", "&logprobs=true")
    a = {r["item_id"]: r for r in fast.run.rows()}
    b = {r["item_id"]: r for r in slow.run.rows()}
    assert len(a) == len(b) == 40
    for item_id, row in a.items():
        assert {k: row[k] for k in COMPARED} == {k: b[item_id][k] for k in COMPARED}
    assert all(r["confidence_source"] == "token-logprob" for r in a.values())
    assert sum(not r["correct"] for r in a.values()) == 13  # every third answer is wrong
    for key in ("accuracy", "macro_f1", "n_correct", "tokens_in", "tokens_out"):
        assert fast.summary["results"][0][key] == slow.summary["results"][0][key], key


def test_retry_after_is_honoured_without_blocking_other_calls(tmp_path):
    """Half the prompts get a 429 with Retry-After: 0.6 s on their first attempt. Each waits
    at least 0.6 s before its retry, and the other half is answered meanwhile."""
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=1, kinds=["429"], share=0.5, retry_after_s=0.6)
    with FakeOpenAIServer(answer, faults=plan) as server:
        started = time.monotonic()
        result = _run(server, tmp_path, "ra", retry=RetryPolicy(max_attempts=3, base_s=0.01,
                                                               cap_s=5.0))
        wall = time.monotonic() - started
        times = _attempt_times(server)
        hit = {p for p in times if plan.is_targeted(p)}
    rows = result.run.rows()
    assert len(rows) == 40 and all(r["error"] is None and r["correct"] for r in rows)
    assert 10 <= len(hit) <= 30
    for prompt, ts in times.items():
        if prompt in hit:
            assert len(ts) == 2 and ts[1] - ts[0] >= 0.6 - 0.02
        else:
            assert len(ts) == 1
    # the waits overlap on the one loop instead of queueing behind each other
    assert wall < 0.6 * len(hit) / 2
    assert {r["attempts"] for r in rows} == {1, 2}


def test_429_without_retry_after_uses_our_backoff(tmp_path):
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=1, kinds=["429-no-retry-after"], share=1.0)
    with FakeOpenAIServer(answer, faults=plan) as server:
        result = _run(server, tmp_path, "no-ra", limit=8)
        times = _attempt_times(server)
    assert all(r["error"] is None and r["attempts"] == 2 for r in result.run.rows())
    assert all(len(ts) == 2 and ts[1] - ts[0] < 0.5 for ts in times.values())


def test_server_errors_are_retried_then_given_up_with_the_providers_message(tmp_path):
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=1, kinds=["500"], share=1.0)
    with FakeOpenAIServer(answer, faults=plan) as server:
        once = _run(server, tmp_path, "500", limit=6)
    assert all(r["error"] is None and r["attempts"] == 2 for r in once.run.rows())
    with FakeOpenAIServer(answer, faults=FaultPlan.always("503")) as server:
        down = _run(server, tmp_path, "503", limit=4)
        assert len(server.calls) == 4 * 3
    for r in down.run.rows():
        assert r["attempts"] == 3 and r["correct"] is False
        assert r["error"].startswith("ServiceUnavailableError 503: injected 503 by Fake")
        assert r["error"].endswith("(gave up after 3 attempts)")


def test_timeouts_are_enforced_on_the_loop(tmp_path):
    """The server stalls 3 s on every first attempt; with timeout=0.3 each call gives up
    after 0.3 s and its retry succeeds, all within about one timeout of wall time."""
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=1, kinds=["timeout"], share=1.0, timeout_s=3.0)
    with FakeOpenAIServer(answer, faults=plan) as server:
        started = time.monotonic()
        result = _run(server, tmp_path, "timeout", "&timeout=0.3", limit=8)
        wall = time.monotonic() - started
    rows = result.run.rows()
    assert len(rows) == 8 and all(r["error"] is None and r["attempts"] == 2 for r in rows)
    assert wall < 2.5  # not 3 s per stalled call, and the 8 stalls overlap


@pytest.mark.parametrize("kind", ["drop", "empty", "truncated", "wrong-type"])
def test_broken_responses_are_retried(tmp_path, kind):
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=1, kinds=[kind], share=1.0)
    with FakeOpenAIServer(answer, faults=plan) as server:
        result = _run(server, tmp_path, kind, limit=6)
    rows = result.run.rows()
    assert len(rows) == 6
    assert all(r["error"] is None and r["attempts"] == 2 and r["correct"] for r in rows)


def test_garbage_is_an_invalid_answer_and_a_429_storm_shrinks_the_window(tmp_path):
    with FakeOpenAIServer(lambda b: "x", faults=FaultPlan.always("garbage")) as server:
        garbage = _run(server, tmp_path, "garbage", limit=5)
    assert all(r["error"] is None and r["invalid"] and r["attempts"] == 1
               for r in garbage.run.rows())
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=1, kinds=["429"], share=1.0, retry_after_s=0.05)
    with FakeOpenAIServer(answer, delay_s=0.02, faults=plan) as server:
        storm = _run(server, tmp_path, "storm", concurrency=16)
    timing = storm.run.read_manifest()["timings"][0]
    assert timing["window_decreases"] >= 1 and timing["window_min"] <= 8
    assert all(r["error"] is None for r in storm.run.rows())
