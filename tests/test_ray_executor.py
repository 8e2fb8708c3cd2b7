"""--executor ray: the same rows and figures as one process, a shared concurrency limit,
shards that merge to the whole, and no row lost when a worker is killed.

One local Ray instance (``ray.init(num_cpus=2)``) serves the whole module. Tests that need Ray
skip when it is not installed (CI installs it with the ``dev`` extra and runs them).
"""

from __future__ import annotations

import os
import sys
from collections import Counter

import pytest
from conftest import BUNDLED_TASKS, free_port, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer

from slmbench.errors import InputError
from slmbench.models import resolve_model
from slmbench.pricing.run_costs import PricingOptions
from slmbench.runner import ray_executor
from slmbench.runner import run as run_module
from slmbench.runner.budget import RunStopped
from slmbench.runner.progress import SilentProgress
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.store import open_run

TASKS = sorted(BUNDLED_TASKS.glob("*.yaml"))
BANKING = BUNDLED_TASKS / "banking77_mini.yaml"
ROUTING = BUNDLED_TASKS / "support_routing.yaml"
LOCAL_MODELS = ["baseline:tfidf-logreg", "llamacpp:smollm2"]
# The one-process reference runs llama.cpp on one thread, as each of the two Ray workers does
# (their CPU share): two busy-waiting threads on this shared 2-core machine can take 5x longer.
# The model's name, and so the rows' keys, do not depend on n_threads.
ONE_THREAD = ["baseline:tfidf-logreg", "llamacpp:smollm2?n_threads=1"]
PRICED = PricingOptions(price_date="2026-11-22")
SAME = ("accuracy", "accuracy_ci", "macro_f1", "weighted_f1", "per_class", "confusion",
        "fallback_rate", "accuracy_fallback_as_miss", "n_correct", "n_items", "tokens_in",
        "tokens_out", "invalid_rate", "n_errors", "micro_f1", "json_valid_rate")
ROW_FIELDS = ("answer", "correct", "invalid", "gold", "output", "error", "tokens_in",
              "tokens_out")


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    yield ray
    ray.shutdown()


@pytest.fixture
def pairs(monkeypatch):
    """Every pair run that run_benchmark makes, to look at how the work was spread."""
    made = []
    real = run_module.make_pair_run

    def capture(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(run_module, "make_pair_run", capture)
    return made


def by_item(run):
    return {(r["task"], r["model"], r["item_id"]): r for r in run.rows()}


def assert_same_rows(a, b):
    assert a.keys() == b.keys()
    for key in a:
        for field in ROW_FIELDS:
            assert a[key][field] == b[key][field], (key, field)
        if a[key]["confidence"] is None:
            assert b[key]["confidence"] is None, key
        else:  # summation order may differ between processes in the last bits
            assert b[key]["confidence"] == pytest.approx(a[key]["confidence"], rel=1e-6), key


def assert_same_metrics(a, b):
    ea = {(e["task"], e["model"]): e for e in a["results"]}
    eb = {(e["task"], e["model"]): e for e in b["results"]}
    assert ea.keys() == eb.keys()
    for key in ea:
        for metric in SAME:
            assert ea[key].get(metric) == eb[key].get(metric), (key, metric)


def test_ray_executor_without_ray_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as if not installed
    code, _, err = run_cli(["run", str(ROUTING), "-m", "baseline:tfidf-logreg", "--executor",
                            "ray", "--results-dir", str(tmp_path), "-q"], capsys)
    assert code == 2
    assert err.strip().splitlines() == [err.strip()]
    assert 'pip install "slmbench[ray]"' in err and "--executor" in err
    assert list(tmp_path.iterdir()) == []  # refused before a run folder was made
    code, _, err = run_cli(["run", str(ROUTING), "-m", "baseline:tfidf-logreg", "--executor",
                            "ray", "--workers", "0", "--results-dir", str(tmp_path), "-q"],
                           capsys)
    assert code == 2 and "--workers" in err


def test_worker_plan_shares_concurrency_cpus_and_gpus():
    plan_workers, Cluster = ray_executor.plan_workers, ray_executor.Cluster
    api = resolve_model("openai/gpt-5.4-nano")
    plan = plan_workers(api, RunOptions(concurrency=8, workers=3), Cluster(4.0, node_cpus=4.0))
    assert plan.slots == (3, 3, 2) and plan.n_threads is None and plan.num_gpus == 0
    # never more API workers than concurrency slots: the sum stays the limit
    assert plan_workers(api, RunOptions(concurrency=2, workers=5),
                        Cluster(8.0, node_cpus=8.0)).slots == (1, 1)
    assert plan_workers(api, RunOptions(concurrency=8), Cluster(3.0, node_cpus=3.0)
                        ).slots == (3, 3, 2)  # default: one per CPU
    cpu = resolve_model("llamacpp:smollm2")
    plan = plan_workers(cpu, RunOptions(workers=1), Cluster(8.0, node_cpus=4.0))
    assert plan.slots == (1,) and plan.num_cpus == 4.0 and plan.n_threads == 4  # largest node
    plan = plan_workers(cpu, RunOptions(workers=3), Cluster(2.0, node_cpus=2.0))
    assert plan.num_cpus == pytest.approx(0.6666) and plan.n_threads == 1
    plan = plan_workers(cpu, RunOptions(), Cluster(16.0, node_cpus=8.0))
    assert plan.slots == (1,) * 16 and plan.n_threads == 1  # default: one per CPU
    gpu = resolve_model("llamacpp:smollm2?n_gpu_layers=-1")
    shares = {(gpus, n): plan_workers(gpu, RunOptions(workers=n),
                                      Cluster(8.0, gpus, node_cpus=8.0)).num_gpus
              for gpus, n in ((1.0, 2), (4.0, 2), (2.0, 3), (1.0, 1))}
    assert shares == {(1.0, 2): 0.5, (4.0, 2): 1.0, (2.0, 3): 0.5, (1.0, 1): 1.0}
    assert plan_workers(gpu, RunOptions(), Cluster(8.0, 2.0, node_cpus=8.0)).slots == (1, 1)
    with pytest.raises(InputError, match="no GPU"):
        plan_workers(gpu, RunOptions(workers=2), Cluster(8.0, node_cpus=8.0))


def test_cluster_window_sums_the_actor_windows():
    window = ray_executor.ClusterWindow([3, 3, 2])
    assert (window.current, window.smallest, window.decreases) == (8, 8, 0)
    window.update(0, 1, 2)  # actor 0 halved twice
    window.update(1, 3, 0)
    assert (window.current, window.smallest, window.decreases) == (6, 6, 2)
    window.update(0, 3, 1)  # a new actor for worker 0 counts from 0 again
    assert (window.current, window.smallest, window.decreases) == (8, 6, 3)


def test_an_unreachable_ray_address_is_refused_at_once(tmp_path):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{free_port()}"
    with pytest.raises(InputError, match="no Ray cluster answers") as exc:
        run_benchmark([ROUTING], ["baseline:tfidf-logreg"], results_dir=tmp_path,
                      options=RunOptions(executor="ray", ray_address=address))
    assert exc.value.field == "--ray-address"
    assert list(tmp_path.iterdir()) == []


def test_two_ray_workers_give_the_rows_and_metrics_of_one_process(ray, tmp_path, pairs):
    opts = {"limit": 4, "use_cache": False, "pricing": PRICED}
    local = run_benchmark(TASKS, ONE_THREAD, results_dir=tmp_path, run_id="local",
                          options=RunOptions(**opts))
    remote = run_benchmark(TASKS, LOCAL_MODELS, results_dir=tmp_path, run_id="ray",
                           options=RunOptions(**opts, executor="ray", workers=2))
    assert_same_rows(by_item(local.run), by_item(remote.run))
    assert_same_metrics(local.summary, remote.summary)
    assert len(by_item(remote.run)) == 4 * 5  # 3 tasks × 2 models, the baseline cannot extract
    ray_pairs = [p for p in pairs if isinstance(p, ray_executor.RayPairRun)]
    assert len(ray_pairs) == 5
    for pair in ray_pairs:  # both workers answered, once per item, nothing sent twice
        assert sorted(pair.rows_by_actor) == [0, 1] and pair.rows_by_actor.total() == 4
        assert pair.redispatched == 0 and pair.deaths == []
    manifest = remote.run.read_manifest()
    assert manifest["options"]["executor"] == "ray" and manifest["options"]["workers"] == 2
    assert {(t["task"], t["model"]) for t in manifest["timings"]} == {
        (e["task"], e["model"]) for e in remote.summary["results"]}
    llama = next(p for p in ray_pairs if p.model.name == "llamacpp:smollm2")
    assert llama.plan.n_threads == 1 and llama.plan.num_cpus == 1.0  # a CPU each


@pytest.fixture(scope="module")
def api():
    """The fake server answering the routing task's gold label (wrong on every 3rd item),
    with a fixed delay so that requests in flight can be counted from arrival times."""
    _, answer = gold_answerer(ROUTING, wrong_every=3)
    with FakeOpenAIServer(answer, delay_s=0.1) as server:
        yield server


def most_in_flight(server, delay):
    """Most requests that arrived within one delay: a slot sends again only after its answer,
    which takes at least ``delay``, so this is at most the number of slots in use."""
    arrivals = sorted(c["_t"] for c in server.calls)
    return max(sum(1 for t in arrivals if start <= t < start + delay) for start in arrivals)


def test_api_model_on_ray_shares_one_concurrency_limit_and_the_cache(ray, api, tmp_path,
                                                                     pairs):
    model = f"openai/gpt-5.4-nano?api_base={api.base_url}"
    local = run_benchmark([ROUTING], [model], results_dir=tmp_path, run_id="local",
                          options=RunOptions(concurrency=4, use_cache=False, pricing=PRICED))
    api.reset()
    remote = run_benchmark([ROUTING], [model], results_dir=tmp_path, run_id="ray",
                           options=RunOptions(concurrency=4, executor="ray", workers=2,
                                              pricing=PRICED))
    assert_same_rows(by_item(local.run), by_item(remote.run))
    assert_same_metrics(local.summary, remote.summary)
    a, b = local.summary["results"][0], remote.summary["results"][0]
    assert a["accuracy"] == pytest.approx(27 / 40)  # gold except every 3rd item
    assert b["total_usd"] == pytest.approx(a["total_usd"], rel=1e-12)
    assert len(api.calls) == 40
    # 2 workers × 2 slots: the cluster never had more than --concurrency 4 requests out,
    # and more than one worker's share was out at once
    assert 3 <= most_in_flight(api, 0.1) <= 4
    pair = pairs[-1]
    assert pair.plan.slots == (2, 2) and pair.workers == 4
    assert sorted(pair.rows_by_actor) == [0, 1]

    # the driver stored the workers' answers in its cache: a new run calls nothing
    api.reset()
    again = run_benchmark([ROUTING], [model], results_dir=tmp_path, run_id="ray-again",
                          options=RunOptions(concurrency=4, executor="ray", workers=2,
                                             pricing=PRICED))
    assert api.calls == [] and again.calls == 0
    assert all(r["cached"] for r in again.run.rows())
    assert pairs[-1].actors == []  # a fully cached pair starts no actor
    assert_same_rows(by_item(remote.run), by_item(again.run))


def test_ray_shards_merge_to_the_whole_run(ray, api, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    models = [f"openai/gpt-5.4-nano?api_base={api.base_url}"]  # the baseline: test above
    whole = run_benchmark([ROUTING], models, results_dir=tmp_path, run_id="whole",
                          options=RunOptions(use_cache=False, pricing=PRICED))
    for k in (1, 2, 3):
        code, _, err = run_cli(["run", str(ROUTING), *sum((["-m", m] for m in models), []),
                                "--results-dir", str(tmp_path), "--run-id", f"s{k}",
                                "--shard", f"{k}/3", "--no-cache", "--price-date",
                                "2026-11-22", "--executor", "ray", "--workers", "2", "-q"],
                               capsys)
        assert code == 0, err
        assert open_run(tmp_path / f"s{k}").read_manifest()["options"]["executor"] == "ray"
    code, _, err = run_cli(["merge", *(str(tmp_path / f"s{k}") for k in (1, 2, 3)), "--out",
                            str(tmp_path / "merged")], capsys)
    assert code == 0, err
    merged = open_run(tmp_path / "merged")
    assert_same_rows(by_item(whole.run), by_item(merged))
    assert_same_metrics(whole.summary, merged.read_summary())
    assert merged.read_summary()["results"][0]["total_usd"] == pytest.approx(
        whole.summary["results"][0]["total_usd"], rel=1e-12)
    assert len(by_item(merged)) == 40


class KillAfter(SilentProgress):
    """Kills actors of the pair being run once ``after`` rows have been written."""

    def __init__(self, ray, pairs, after, workers):
        self.ray, self.pairs, self.after, self.workers = ray, pairs, after, workers
        self.seen = 0
        self.killed = []

    def advance(self, n: int = 1) -> None:
        self.seen += n
        if self.seen == self.after:
            for i in self.workers:
                self.killed.append(self.pairs[-1].actors[i])
                self.ray.kill(self.killed[-1])


def test_a_killed_worker_loses_no_row_and_the_run_completes(ray, tmp_path, pairs):
    opts = {"limit": 16, "use_cache": False, "pricing": PRICED}
    local = run_benchmark([BANKING], ["llamacpp:smollm2?n_threads=1"], results_dir=tmp_path,
                          run_id="local", options=RunOptions(**opts))
    progress = KillAfter(ray, pairs, after=3, workers=[0])
    remote = run_benchmark([BANKING], ["llamacpp:smollm2"], results_dir=tmp_path, run_id="ray",
                           options=RunOptions(**opts, executor="ray", workers=2),
                           progress=progress)
    rows = list(remote.run.rows())
    assert len(rows) == 16 and len({r["item_id"] for r in rows}) == 16  # none lost, none twice
    assert not any(r["error"] for r in rows)
    assert_same_rows(by_item(local.run), by_item(remote.run))
    pair = pairs[-1]
    assert progress.killed and pair.actors[0] is not progress.killed[0]  # worker 0 replaced
    assert pair.redispatched >= 1
    assert any("worker 0 died and was replaced" in d for d in pair.deaths)
    assert pair.fresh == 16 and pair.rows_by_actor.total() == 16


def test_when_every_worker_dies_the_run_stops_and_a_rerun_resumes(ray, tmp_path, pairs,
                                                                  monkeypatch):
    monkeypatch.setattr(ray_executor, "REPLACEMENTS", 0)
    opts = RunOptions(limit=16, use_cache=False, executor="ray", workers=2, pricing=PRICED)
    progress = KillAfter(ray, pairs, after=2, workers=[0, 1])
    with pytest.raises(RunStopped, match="every Ray worker died") as exc:
        run_benchmark([BANKING], ["llamacpp:smollm2"], results_dir=tmp_path, run_id="r",
                      options=opts, progress=progress)
    first = [r["item_id"] for r in open_run(tmp_path / "r").rows()]
    assert 2 <= len(first) < 16 and len(set(first)) == len(first)  # finished rows kept
    assert "run again to resume" in str(exc.value)
    assert pairs[-1].redispatched >= 1

    resumed = run_benchmark([BANKING], ["llamacpp:smollm2"], results_dir=tmp_path, run_id="r",
                            options=opts)
    ids = Counter(r["item_id"] for r in resumed.run.rows())
    assert len(ids) == 16 and set(ids.values()) == {1}
    assert pairs[-1].fresh == 16 - len(first)  # only the missing items were run
    assert resumed.summary["results"][0]["n_items"] == 16
