"""AIMD concurrency: halve on 429 (once per congestion event), grow back slowly."""

from __future__ import annotations

from conftest import BUNDLED_TASKS, gold_answerer
from fakeserver import FakeOpenAIServer, FaultPlan

from slmbench.runner.retry import AdaptiveWindow, RetryPolicy
from slmbench.runner.run import RunOptions, run_benchmark


def test_window_halves_once_per_event_and_grows_back_additively():
    now = [0.0]
    w = AdaptiveWindow(16, cooldown_s=1.0, clock=lambda: now[0])
    w.on_rate_limited()
    w.on_rate_limited()  # same congestion event: ignored
    assert w.current == 8 and w.decreases == 1
    now[0] = 2.0
    w.on_rate_limited()
    assert w.current == 4
    for _ in range(4):  # a window's worth of successes adds about one slot (1/size each)
        w.on_success()
    assert 4.9 < w.size < 5.0
    w.on_success()
    assert w.current == 5
    for _ in range(1000):
        w.on_success()
    assert w.current == 16 and w.smallest == 4
    for _ in range(10):
        now[0] += 2
        w.on_rate_limited()
    assert w.current == 1


def test_429s_shrink_the_window_and_every_item_still_succeeds(tmp_path):
    task = BUNDLED_TASKS / "support_routing.yaml"
    _, answer = gold_answerer(task)
    plan = FaultPlan.first_attempts(n=1, kinds=["429"], share=0.5, retry_after_s=0.02)
    with FakeOpenAIServer(answer, delay_s=0.02, faults=plan) as server:
        result = run_benchmark([task], [f"openai/fake?api_base={server.base_url}"],
                               results_dir=tmp_path, run_id="aimd",
                               options=RunOptions(concurrency=16, use_cache=False,
                                                  retry=RetryPolicy(max_attempts=3)))
    timing = result.run.read_manifest()["timings"][0]
    assert timing["window_decreases"] >= 1 and timing["window_min"] <= 8
    rows = result.run.rows()
    assert len(rows) == 40 and all(r["error"] is None for r in rows)
    assert sum(r["attempts"] == 2 for r in rows) >= 10
