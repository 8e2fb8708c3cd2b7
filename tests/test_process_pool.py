"""``executor="processes"``: API calls in worker processes, rows written by the parent alone.

Same rows and metrics as the one-process path; one concurrency window across all workers,
also under a 429 storm; the cache and the cost cap in the parent; no row lost or duplicated
when a worker dies, on Ctrl-C, or when the parent is killed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, REPO, gold_answerer, interruptible, run_cli, wait_rows
from fakeserver import FakeOpenAIServer, FaultPlan

from slmbench.errors import InputError
from slmbench.models import resolve_model
from slmbench.runner import process_pool
from slmbench.runner import run as run_module
from slmbench.runner.budget import RunStopped
from slmbench.runner.retry import AdaptiveWindow, RetryPolicy
from slmbench.runner.run import RunOptions, resolve_executor, run_benchmark
from slmbench.store import open_run

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
FAST_RETRY = RetryPolicy(max_attempts=3, base_s=0.01, cap_s=0.05)
COMPARED = ("output", "answer", "routed", "correct", "invalid", "error", "attempts", "tokens_in",
            "tokens_out", "token_source", "confidence", "confidence_source", "cached")


def _run(server: FakeOpenAIServer, tmp_path: Path, run_id: str, *, model: str = "openai/fake",
         settings: str = "", progress=None, **opts):
    opts.setdefault("retry", FAST_RETRY)
    opts.setdefault("concurrency", 8)
    opts.setdefault("executor", "processes")
    opts.setdefault("workers", 2)
    return run_benchmark([ROUTING], [f"{model}?api_base={server.base_url}{settings}"],
                         results_dir=tmp_path, run_id=run_id, options=RunOptions(**opts),
                         progress=progress)


def _max_overlap(server: FakeOpenAIServer) -> int:
    """Most requests the server held at once. Each is held from its arrival for the server's
    fixed delay, and the client keeps its slot at least that long, so this never exceeds the
    client's calls in flight."""
    events = sorted([(c["_t"], 1) for c in server.calls]
                    + [(c["_t"] + server.delay_s, -1) for c in server.calls],
                    key=lambda e: (e[0], e[1]))
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return peak


def _stored_ids(run_dir: Path) -> list[str]:
    path = run_dir / "items.jsonl"
    return [json.loads(line)["item_id"] for line in path.read_text().splitlines()
            if line.strip().endswith("}")]


def test_same_rows_and_metrics_as_one_process(tmp_path):
    _, answer = gold_answerer(ROUTING, wrong_every=3)
    with FakeOpenAIServer(answer, answer_logprob=lambda b: -0.1) as server:
        one = _run(server, tmp_path, "one", settings="&logprobs=true", executor="local",
                   use_cache=False)
        many = _run(server, tmp_path, "many", settings="&logprobs=true", use_cache=False)
    a = {r["item_id"]: r for r in one.run.rows()}
    b = {r["item_id"]: r for r in many.run.rows()}
    assert len(a) == len(b) == 40
    for item_id, row in a.items():
        assert {k: row[k] for k in COMPARED} == {k: b[item_id][k] for k in COMPARED}
    assert sum(not r["correct"] for r in b.values()) == 13
    for key in ("accuracy", "macro_f1", "fallback_rate", "n_correct", "tokens_in", "tokens_out",
                "n_errors"):
        assert one.summary["results"][0][key] == many.summary["results"][0][key], key
    assert len(process_pool.worker_pids()) == 2  # the pool outlives the pair, for the next one


def test_a_429_storm_respects_one_window_for_all_workers(tmp_path):
    """Concurrency 6 over 2 workers: never more than 6 requests at the server (a window per
    worker would allow 12), and the 429s halve the shared window."""
    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=2, kinds=["429"], share=0.6, retry_after_s=0.05)
    with FakeOpenAIServer(answer, delay_s=0.05, faults=plan) as server:
        result = _run(server, tmp_path, "storm", concurrency=6, use_cache=False,
                      retry=RetryPolicy(max_attempts=4, base_s=0.01, cap_s=0.1))
        peak = _max_overlap(server)
        faults = sum(server.fault_counts.values())
    rows = result.run.rows()
    assert len(rows) == 40 and all(r["error"] is None and r["correct"] for r in rows)
    assert faults >= 20
    assert 4 <= peak <= 6
    timing = result.run.read_manifest()["timings"][0]
    assert timing["window_decreases"] >= 1 and timing["window_min"] <= 3


def test_a_window_smaller_than_the_pool_hands_its_credit_to_the_worker_with_items(tmp_path):
    """Concurrency 2 over 2 workers, 429s halve it to 1: one worker loses its credit while it
    still holds items; the parent must move the credit to it once the other worker is idle,
    or those items would wait forever. Never more than 2 requests at the server."""
    import faulthandler

    _, answer = gold_answerer(ROUTING)
    plan = FaultPlan.first_attempts(n=3, kinds=["429"], share=0.5, retry_after_s=0.02)
    faulthandler.dump_traceback_later(120, exit=True)  # a hang fails CI instead of stalling it
    try:
        with FakeOpenAIServer(answer, delay_s=0.02, faults=plan) as server:
            result = _run(server, tmp_path, "small", concurrency=2, use_cache=False,
                          retry=RetryPolicy(max_attempts=5, base_s=0.01, cap_s=0.05))
            peak = _max_overlap(server)
    finally:
        faulthandler.cancel_dump_traceback_later()
    rows = result.run.rows()
    assert len(rows) == 40 and all(r["error"] is None and r["correct"] for r in rows)
    assert peak <= 2
    assert result.run.read_manifest()["timings"][0]["window_min"] == 1


class _Pool:
    def __init__(self, *inflight: set[int]) -> None:
        self.alive = [process_pool._Worker(i, None, None, inflight=set(s))  # type: ignore[arg-type]
                      for i, s in enumerate(inflight)]


class _Parent:
    """What ``ProcessPairRun._share_window`` uses of its pair run: the window and _send."""

    def __init__(self, size: int) -> None:
        self.window = AdaptiveWindow(8)
        self.window.size = float(size)
        self.sent: list[tuple[int, int]] = []

    def _send(self, pool, worker, message, pair_id, inflight) -> bool:
        self.sent.append((worker.index, message[2]))
        return True

    def share(self, pool: _Pool, size: int | None = None) -> list[int]:
        if size is not None:
            self.window.size = float(size)
        self.sent.clear()
        process_pool.ProcessPairRun._share_window(self, pool, 1, {})  # type: ignore[arg-type]
        return [w.credit for w in pool.alive]


def test_credits_sum_to_the_window_and_follow_the_items():
    parent, pool = _Parent(2), _Pool(set(), set())
    assert parent.share(pool) == [1, 1] and parent.sent == [(0, 1), (1, 1)]
    assert parent.share(pool) == [1, 1] and parent.sent == []  # nothing changed: nothing sent
    pool.alive[0].inflight, pool.alive[1].inflight = {1, 2, 3}, {4}
    assert parent.share(pool, 1) == [1, 0]  # a cut takes from the worker with fewer items
    assert parent.sent == [(1, 0)]
    # worker 0 drained, worker 1 holds items and no credit: worker 0's idle slot moves over
    pool.alive[0].inflight, pool.alive[1].inflight = set(), {4, 5}
    assert parent.share(pool) == [0, 1] and sorted(parent.sent) == [(0, 0), (1, 1)]
    # ...but never a slot a call is using: that would exceed the window
    pool.alive[0].inflight, pool.alive[1].inflight = {6}, {4, 5}
    parent.share(pool)
    pool.alive[0].credit, pool.alive[1].credit = 1, 0
    assert parent.share(pool) == [1, 0]
    # growth goes to the worker with the least credit, a tie to the one holding more items;
    # a cut takes from the most, a tie from the one holding fewer
    assert parent.share(pool, 5) == [2, 3]
    assert parent.share(pool, 2) == [1, 1]
    assert parent.share(pool, 1) == [0, 1]  # worker 0's call keeps running; it starts no more


def test_cache_and_cost_cap_stay_in_the_parent(tmp_path):
    _, answer = gold_answerer(ROUTING)
    with FakeOpenAIServer(answer) as server:
        first = _run(server, tmp_path, "first", settings="&temperature=0", limit=10)
        second = _run(server, tmp_path, "second", settings="&temperature=0", limit=10)
        assert len(server.calls) == 10
    assert second.calls == 0 and all(r["cached"] for r in second.run.rows())
    assert {r["item_id"]: r["output"] for r in first.run.rows()} == \
        {r["item_id"]: r["output"] for r in second.run.rows()}
    with FakeOpenAIServer(answer) as server:
        with pytest.raises(RunStopped, match="max-cost"):
            _run(server, tmp_path, "cap", model="openai/gpt-5.4-nano", concurrency=2,
                 max_cost_usd=0.0003)
        calls = len(server.calls)
    entry = open_run(tmp_path / "cap").read_summary()["results"][0]
    assert 0 < calls < 40 and entry["n_items"] == calls and entry["total_usd"] <= 0.0003


class _KillWorkers:
    """Progress hook: SIGKILL ``how_many`` worker processes once ``after`` rows are written."""

    def __init__(self, after: int, how_many: int = 1) -> None:
        self.after = after
        self.how_many = how_many
        self.rows = 0
        self.killed: list[int] = []

    def start(self, task, model, total, done):
        pass

    def advance(self, n=1):
        self.rows += n
        if self.rows == self.after and not self.killed:
            self.killed = process_pool.worker_pids()[:self.how_many]
            for pid in self.killed:
                os.kill(pid, signal.SIGKILL)

    def finish(self):
        pass

    def note(self, message):
        pass


def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(tmp_path):
    _, answer = gold_answerer(ROUTING, wrong_every=4)
    hook = _KillWorkers(after=8)
    with FakeOpenAIServer(answer, delay_s=0.05) as server:
        result = _run(server, tmp_path, "killed", use_cache=False, progress=hook)
    assert len(hook.killed) == 1 and hook.killed[0] not in process_pool.worker_pids()
    ids = _stored_ids(result.run.path)
    assert len(ids) == 40 and len(set(ids)) == 40
    assert all(r["error"] is None for r in result.run.rows())
    assert result.summary["results"][0]["n_correct"] == 30


def test_all_workers_killed_stops_the_pair_and_a_resume_completes_it(tmp_path):
    _, answer = gold_answerer(ROUTING)
    hook = _KillWorkers(after=6, how_many=2)
    with FakeOpenAIServer(answer, delay_s=0.05) as server:
        with pytest.raises(RunStopped, match="worker processes exited"):
            _run(server, tmp_path, "dead", use_cache=False, progress=hook)
        stored = _stored_ids(tmp_path / "dead")
        assert 6 <= len(stored) < 40 and len(set(stored)) == len(stored)
        assert open_run(tmp_path / "dead").read_summary()["results"][0]["n_items"] == \
            len(stored)
        result = _run(server, tmp_path, "dead", use_cache=False)  # a fresh pool
    ids = _stored_ids(result.run.path)
    assert len(ids) == 40 and len(set(ids)) == 40
    assert all(r["error"] is None and r["correct"] for r in result.run.rows())


def _start_cli_like(server: FakeOpenAIServer, tmp_path: Path, run_id: str) -> subprocess.Popen:
    """run_benchmark with the processes executor in a child, in its own session (as a shell
    runs a foreground job); exits 130 on Ctrl-C like the CLI."""
    code = (
        "import sys\n"
        "from slmbench.runner.run import RunOptions, run_benchmark\n"
        "try:\n"
        f"    run_benchmark([{str(ROUTING)!r}], [{f'openai/fake?api_base={server.base_url}'!r}],"
        f" results_dir={str(tmp_path)!r}, run_id={run_id!r}, options=RunOptions("
        "executor='processes', workers=2, concurrency=4, use_cache=False))\n"
        "except KeyboardInterrupt:\n"
        "    sys.exit(130)\n")
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, env=env,
                            preexec_fn=interruptible,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _workers_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid and "worker_entry" in cmdline:
            found.append(int(entry.name))
    return found


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


@pytest.mark.parametrize("how", ["ctrl-c", "sigkill"])
def test_interrupted_parent_then_resume_gives_every_row_once(tmp_path, how):
    _, answer = gold_answerer(ROUTING, wrong_every=4)
    with FakeOpenAIServer(answer, delay_s=0.1) as server:
        proc = _start_cli_like(server, tmp_path, how)
        items = tmp_path / how / "items.jsonl"
        wait_rows(items, 6, proc)
        workers = _workers_of(proc.pid)
        assert len(workers) == 2
        os.killpg(proc.pid, signal.SIGINT if how == "ctrl-c" else signal.SIGKILL)
        _, err = proc.communicate(timeout=30)
        assert proc.returncode == (130 if how == "ctrl-c" else -signal.SIGKILL), err
        deadline = time.time() + 15
        while time.time() < deadline and not all(_gone(p) for p in workers):
            time.sleep(0.1)
        assert all(_gone(p) for p in workers)  # no orphaned worker keeps calling
        before = set(_stored_ids(tmp_path / how))
        assert len(before) == len(_stored_ids(tmp_path / how)) and len(before) < 40
        server.reset()
        result = _run(server, tmp_path, how, concurrency=4, use_cache=False,
                      executor="local")
        resent = {c["_prompt"].removeprefix("Request: ") for c in server.calls}
    ids = _stored_ids(result.run.path)
    assert len(ids) == 40 and len(set(ids)) == 40
    texts = {r["item_id"]: r["input"] for r in result.run.rows()}
    assert not resent & {texts[i] for i in before}  # stored items are never asked again
    assert result.summary["results"][0]["n_correct"] == 30
    if how == "ctrl-c":
        manifest = open_run(tmp_path / how).read_manifest()
        assert manifest.get("resumed_at")


# ---------------------------------------------------------------------------------------------
# executor "auto" (the CLI's default), and what the parent does not do when workers call


def test_auto_picks_worker_processes_for_api_models_on_more_than_one_core(monkeypatch):
    api, baseline = resolve_model("openai/fake?api_base=http://127.0.0.1:9"), \
        resolve_model("baseline:tfidf-logreg")
    for cores, models, executor, workers in [
            (2, [api], "processes", 2), (16, [baseline, api], "processes", 4),
            (1, [api], "local", None), (8, [baseline], "local", None)]:
        monkeypatch.setattr(run_module, "usable_cores", lambda c=cores: c)
        got = resolve_executor(RunOptions(executor="auto"), models)
        assert (got.executor, got.workers) == (executor, workers), (cores, models)
    monkeypatch.setattr(run_module, "usable_cores", lambda: 16)
    assert resolve_executor(RunOptions(executor="auto", workers=3), [api]).workers == 3
    assert resolve_executor(RunOptions(executor="local"), [api]).executor == "local"
    with pytest.raises(InputError, match="--executor.*'threads'"):
        resolve_executor(RunOptions(executor="threads"), [api])
    with pytest.raises(InputError, match="--workers.*0"):
        resolve_executor(RunOptions(executor="auto", workers=0), [api])
    monkeypatch.setattr(run_module, "POSIX", False)  # Windows: no fd passing to children
    assert resolve_executor(RunOptions(executor="auto"), [api]).executor == "local"
    with pytest.raises(InputError, match="POSIX"):
        resolve_executor(RunOptions(executor="processes"), [api])


def test_cli_default_runs_api_calls_in_workers_and_records_it(tmp_path, capsys):
    _, answer = gold_answerer(ROUTING, wrong_every=5)
    with FakeOpenAIServer(answer) as server:
        code, _, err = run_cli(["run", str(ROUTING), "-m", f"openai/fake?api_base="
                                f"{server.base_url}", "--results-dir", str(tmp_path),
                                "--run-id", "auto", "--no-cache", "-q"], capsys)
        assert code == 0, err
        assert len(server.calls) == 40
    manifest = open_run(tmp_path / "auto").read_manifest()
    cores = run_module.usable_cores()
    multi = cores > 1
    assert manifest["options"]["executor"] == ("processes" if multi else "local")
    assert manifest["options"]["workers"] == (min(cores, 4) if multi else None)
    assert open_run(tmp_path / "auto").read_summary()["results"][0]["n_correct"] == 32


def test_with_worker_processes_the_parent_never_imports_litellm(tmp_path):
    """The workers import litellm (~2 s each) while the parent loads the tasks; a parent that
    imported it too would pay it once more, on the critical path."""
    _, answer = gold_answerer(ROUTING, wrong_every=4)
    with FakeOpenAIServer(answer) as server:
        model = f"openai/fake?api_base={server.base_url}"
        code = (
            "import json, sys\n"
            "from slmbench.runner.run import RunOptions, run_benchmark\n"
            f"r = run_benchmark([{str(ROUTING)!r}], [{model!r}],"
            f" results_dir={str(tmp_path)!r}, run_id='p', options=RunOptions("
            "executor='processes', workers=2, concurrency=4, use_cache=False))\n"
            "print(json.dumps([r.summary['results'][0]['n_correct'], 'litellm' in sys.modules,"
            " 'sklearn.metrics' in sys.modules]))\n")
        env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONPATH": str(REPO)}
        proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, timeout=120,
                              capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert len(server.calls) == 40
    assert json.loads(proc.stdout.splitlines()[-1]) == [30, False, True]
