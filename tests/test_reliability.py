"""Faults, crashes and stopping rules: every item is scored or recorded as an error, none lost.

All model traffic goes to the fault-injecting server in tests/fakeserver.py on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, REPO, gold_answerer, interruptible, run_cli, wait_rows
from fakeserver import FakeOpenAIServer, FaultPlan

from slmbench.runner.budget import RunStopped
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.store import open_run

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
FAST_RETRY = RetryPolicy(max_attempts=3, base_s=0.01, cap_s=0.05)


def _run(server: FakeOpenAIServer, tmp_path: Path, run_id: str, settings: str = "", **opts):
    opts.setdefault("retry", FAST_RETRY)
    opts.setdefault("concurrency", 4)
    return run_benchmark([ROUTING], [f"openai/fake?api_base={server.base_url}{settings}"],
                         results_dir=tmp_path, run_id=run_id, options=RunOptions(**opts))


@pytest.mark.parametrize("kind", ["429", "429-no-retry-after", "500", "503", "timeout", "drop",
                                  "empty", "truncated", "wrong-type"])
def test_transient_faults_are_retried_then_scored(tmp_path, kind):
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=1, kinds=[kind], share=1.0, retry_after_s=0.05,
                                    timeout_s=1.5)
    with FakeOpenAIServer(answer, faults=plan) as server:
        result = _run(server, tmp_path, kind, "&timeout=0.5", limit=6)
        counts = server.prompt_counts()
    rows = result.run.rows()
    assert len(rows) == 6
    for r in rows:
        assert r["error"] is None and r["attempts"] == 2 and r["correct"] is True
    assert all(n == 2 for n in counts.values()) and len(counts) == 6


def test_garbage_content_is_an_invalid_answer_not_an_error(tmp_path):
    with FakeOpenAIServer(lambda b: "x", faults=FaultPlan.always("garbage")) as server:
        result = _run(server, tmp_path, "garbage", limit=5)
    rows = result.run.rows()
    assert all(r["error"] is None and r["invalid"] and r["attempts"] == 1 for r in rows)
    assert all(r["routed"] == "human_agent" for r in rows)  # invalid → the fallback route
    assert result.summary["results"][0]["invalid_rate"] == 1.0


def test_persistent_faults_give_up_after_the_bound(tmp_path):
    with FakeOpenAIServer(lambda b: "x", faults=FaultPlan.always("503")) as server:
        result = _run(server, tmp_path, "down", limit=4)
        assert len(server.calls) == 4 * 3
    for r in result.run.rows():
        assert r["attempts"] == 3
        assert r["error"].startswith("ServiceUnavailableError 503")
        assert "gave up after 3 attempts" in r["error"]
    assert result.summary["results"][0]["n_errors"] == 4


def test_permanent_errors_are_not_retried(tmp_path):
    with FakeOpenAIServer(lambda b: "x") as server:
        model = f"openai/fake?api_base={server.base_url.replace('/v1', '/nope')}"
        result = run_benchmark([ROUTING], [model], results_dir=tmp_path, run_id="404",
                               options=RunOptions(limit=3, retry=FAST_RETRY))
        assert len(server.calls) == 0  # the 404 comes before the chat handler
    for r in result.run.rows():
        assert r["attempts"] == 1 and "404" in r["error"]


def test_mixed_faults_lose_and_duplicate_nothing(tmp_path):
    """The 10,000-item version of this figure is benchmarks/bench_faults.py."""
    task_dir = tmp_path / "task"
    task_dir.mkdir()
    rows = [{"id": f"i{i}", "text": f"request number {i}", "label": ["a", "b"][i % 2]}
            for i in range(400)]
    (task_dir / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (task_dir / "t.yaml").write_text("name: mixed\nkind: classification\n"
                                     "dataset: {path: d.jsonl}\nlabels: [a, b]\n")
    kinds = ["429", "429-no-retry-after", "500", "503", "drop", "empty", "truncated",
             "garbage", "wrong-type"]
    plan = FaultPlan(rate=0.05, kinds=kinds, seed=7, retry_after_s=0.01)
    with FakeOpenAIServer(lambda b: "a", faults=plan) as server:
        result = run_benchmark([task_dir / "t.yaml"],
                               [f"openai/fake?api_base={server.base_url}"],
                               results_dir=tmp_path, run_id="mixed",
                               options=RunOptions(concurrency=8, retry=RetryPolicy(
                                   max_attempts=2, base_s=0.01, cap_s=0.02)))
        faults = sum(server.fault_counts.values())
    lines = (result.run.path / "items.jsonl").read_text().splitlines()
    ids = [json.loads(x)["item_id"] for x in lines]
    assert len(ids) == 400 and len(set(ids)) == 400  # 0 lost, 0 duplicated
    assert 5 <= faults <= 45
    stored = result.run.rows()
    errors = [r for r in stored if r["error"]]
    scored = [r for r in stored if not r["error"]]
    assert len(errors) + len(scored) == 400
    assert result.summary["results"][0]["n_errors"] == len(errors)


def test_max_errors_stops_a_failing_run_and_keeps_rows(tmp_path, capsys):
    with FakeOpenAIServer(lambda b: "x", faults=FaultPlan.always("500")) as server:
        with pytest.raises(RunStopped, match="3 errors reached --max-errors 3"):
            _run(server, tmp_path, "stop", concurrency=1, max_errors="3",
                 retry=RetryPolicy(max_attempts=1))
        assert len(server.calls) == 3
    run = open_run(tmp_path / "stop")
    assert len(run.rows()) == 3
    assert run.read_summary()["results"][0]["n_errors"] == 3
    assert "max-errors" in run.read_manifest()["stopped"]
    code, _, err = run_cli(["run", str(ROUTING), "-m", "openai/x?api_base=http://127.0.0.1:9/v1",
                            "--max-errors", "lots", "-q"], capsys)
    assert code == 2 and "--max-errors" in err and "'lots'" in err


def test_response_cache_makes_a_rerun_free(tmp_path):
    _, answer = gold_answerer(ROUTING, wrong_every=3)
    with FakeOpenAIServer(answer, delay_s=0.01) as server:
        first = _run(server, tmp_path, "first", "&temperature=0", limit=10)
        calls_after_first = len(server.calls)
        second = _run(server, tmp_path, "second", "&temperature=0", limit=10)
        assert len(server.calls) == calls_after_first == 10
    assert second.calls == 0
    one = {r["item_id"]: r for r in first.run.rows()}
    for r in second.run.rows():
        assert r["cached"] is True and r["attempts"] == 0
        for key in ("output", "tokens_in", "tokens_out", "latency_s", "correct"):
            assert r[key] == one[r["item_id"]][key]
    assert second.summary["results"][0]["accuracy"] == first.summary["results"][0]["accuracy"]
    # --no-cache calls the model again
    with FakeOpenAIServer(answer) as server:
        _run(server, tmp_path, "third", "&temperature=0", limit=10, use_cache=False)
        assert len(server.calls) == 10


def test_max_cost_stops_before_the_cap(tmp_path):
    _, answer = gold_answerer(ROUTING)
    with FakeOpenAIServer(answer) as server:
        model = f"openai/gpt-5.4-nano?api_base={server.base_url}"
        with pytest.raises(RunStopped, match="max-cost") as info:
            run_benchmark([ROUTING], [model], results_dir=tmp_path, run_id="cap",
                          options=RunOptions(concurrency=2, max_cost_usd=0.0003))
        calls = len(server.calls)
    summary = open_run(tmp_path / "cap").read_summary()
    entry = summary["results"][0]
    assert 0 < calls < 40 and entry["n_items"] == calls
    assert entry["total_usd"] <= 0.0003
    assert "of --max-cost $0.0003" in info.value.spend and "remains" in info.value.spend


def test_canary_key_never_leaves_the_environment(tmp_path, monkeypatch, capsys):
    canary = "sk-canary-7f3a9c0e55d2b1a4c6e8f0a2b4d6e8f0"
    monkeypatch.setenv("OPENAI_API_KEY", canary)
    monkeypatch.setenv("COLUMNS", "250")
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan(rate=0.3, kinds=["500", "429", "truncated"], seed=1, retry_after_s=0.01)
    with FakeOpenAIServer(answer, faults=plan) as server:
        code, out, err = run_cli(["run", str(ROUTING), "-m",
                                  f"openai/fake?api_base={server.base_url}",
                                  "-m", f"openai/bad?api_base={server.base_url}/missing",
                                  "--results-dir", str(tmp_path), "--run-id", "c", "-q",
                                  "--limit", "8"], capsys)
    # the model behind a missing route cannot run: named on stderr, exit 1 (issue 15)
    assert code == 1, err
    assert "openai/bad cannot run" in err and err.strip().splitlines()[-1].startswith("failed:")
    assert any(json.loads(line)["error"] for line in
               (tmp_path / "c" / "items.jsonl").read_text().splitlines())
    rcode, md, rerr = run_cli(["report", str(tmp_path / "c"), "--format", "md"], capsys)
    assert rcode == 0, rerr
    stored = [p.read_text(errors="replace") for p in (tmp_path / "c").rglob("*") if p.is_file()]
    texts = [out, err, md, rerr, *stored]
    assert not any(canary in t for t in texts)
    assert not any(canary[:20] in t for t in texts)


def _subprocess_run(server: FakeOpenAIServer, tmp_path: Path, run_id: str, extra=()):
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "slmbench", "run", str(ROUTING), "-m",
           f"openai/fake?api_base={server.base_url}", "--results-dir", str(tmp_path),
           "--run-id", run_id, "-q", "--concurrency", "1", "--no-cache", *extra]
    return subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=interruptible)


def test_sigkill_mid_run_then_resume_repeats_no_stored_item(tmp_path):
    _, answer = gold_answerer(ROUTING, wrong_every=4)
    with FakeOpenAIServer(answer, delay_s=0.05) as server:
        proc = _subprocess_run(server, tmp_path, "killed")
        items = tmp_path / "killed" / "items.jsonl"
        wait_rows(items, 12, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        stored_before = {json.loads(x)["input"] for x in items.read_text().splitlines()
                         if x.strip().endswith("}")}
        calls_before = len(server.calls)
        result = run_benchmark([ROUTING], [f"openai/fake?api_base={server.base_url}"],
                               results_dir=tmp_path, run_id="killed",
                               options=RunOptions(use_cache=False))
        counts = server.prompt_counts()
        reference = run_benchmark([ROUTING], [f"openai/fake?api_base={server.base_url}"],
                                  results_dir=tmp_path, run_id="whole",
                                  options=RunOptions(use_cache=False))
    rows = result.run.rows()
    assert len(rows) == 40 and len({r["item_id"] for r in rows}) == 40
    # items stored before the kill are never sent again; at most the one in flight is repeated
    for prompt, n in counts.items():
        text = prompt.removeprefix("Request: ")
        if text in stored_before:
            assert n == 1  # sent before the kill, never again on resume
    assert len(server.calls) - 40 - calls_before <= 40 - len(stored_before)
    a = result.summary["results"][0]
    b = reference.summary["results"][0]
    for key in ("accuracy", "macro_f1", "fallback_rate", "n_correct", "tokens_in", "tokens_out"):
        assert a[key] == b[key], key


def test_ctrl_c_stops_cleanly_with_one_line(tmp_path):
    with FakeOpenAIServer(lambda b: "cards", delay_s=0.05) as server:
        proc = _subprocess_run(server, tmp_path, "int", ["--concurrency", "4"])
        items = tmp_path / "int" / "items.jsonl"
        wait_rows(items, 5, proc)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("interrupted:") and "--resume" in lines[0]
    run = open_run(tmp_path / "int")
    assert run.summary_path.exists()
    assert 5 <= len(run.rows()) < 40
    assert run.read_manifest()["stopped"]


def test_max_cost_with_an_unpriced_api_model_is_refused_before_any_call(tmp_path, capsys):
    with FakeOpenAIServer(lambda b: "cards") as server:
        code, _, err = run_cli(["run", str(ROUTING), "-m",
                                f"openai/in-house?api_base={server.base_url}",
                                "--max-cost", "1", "--results-dir", str(tmp_path), "-q"], capsys)
        assert len(server.calls) == 0
    assert code == 2 and "--max-cost needs a price" in err and "'openai/in-house'" in err
    assert not any(tmp_path.iterdir())
