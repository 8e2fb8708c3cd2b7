"""Executors by name, accounting written once, capabilities on the model interface.

* A third-party executor found through the ``slmbench.executors`` entry points is used by
  ``--executor NAME``; a broken plugin warns and leaves the built-ins working.
* Whatever executor makes the calls, each fresh row is admitted once, settled against the
  cost cap once and (when it is an answer) written to the response cache once, in this
  process.
* A plugin model that declares no capability is described by the defaults, visibly, and
  priced accordingly; a run stored before capabilities were recorded prices as it did.
"""

from __future__ import annotations

import importlib.metadata
import json
import warnings
from dataclasses import replace
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from conftest import BUNDLED_TASKS, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer, FaultPlan

from slmbench.models import Completion, Model, Request
from slmbench.models import registry as model_registry
from slmbench.models.base import PRICING_HOURLY
from slmbench.pricing.run_costs import DEFAULT_CPU_HARDWARE, PricingOptions, RunCoster
from slmbench.records import ROW_FIELDS, ResultRow
from slmbench.runner import executors
from slmbench.runner import run as run_module
from slmbench.runner.budget import CostCap
from slmbench.runner.cache import ResponseCache
from slmbench.runner.executors import ExecutorOptions
from slmbench.runner.pair import PairRun
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.run import RunOptions, resolve_executor, run_benchmark

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
FAST_RETRY = RetryPolicy(max_attempts=2, base_s=0.01, cap_s=0.02)
GROUP = executors.ENTRY_POINT_GROUP


# --------------------------------------------------------------------------- plugins


class RecordingExecutor(PairRun):
    """A third-party executor: the local loops, remembering every pair it ran."""

    made: list[RecordingExecutor] = []

    def rows(self, items):
        RecordingExecutor.made.append(self)
        return super().rows(items)


class GreedyExecutor(PairRun):
    """A plugin that asks for every run under ``--executor auto``."""

    @classmethod
    def resolve(cls, options, models, host):
        return replace(options, workers=7)


def plugins(monkeypatch, *entries: tuple[str, str], broken_listing: bool = False) -> None:
    """Make entry-point discovery find ``entries`` (name, "module:Class") as executors."""
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        if kwargs.get("group") != GROUP:
            return real(**kwargs)
        if broken_listing:
            raise RuntimeError("a damaged distribution")
        return [EntryPoint(name=n, value=v, group=GROUP) for n, v in entries]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)


def test_a_plugin_executor_is_used_by_its_name(tmp_path, capsys, monkeypatch):
    plugins(monkeypatch, ("recording", f"{__name__}:RecordingExecutor"))
    RecordingExecutor.made.clear()
    code, _, err = run_cli(["run", str(ROUTING), "-m", "baseline:tfidf-logreg", "--executor",
                            "recording", "--limit", "6", "--results-dir", str(tmp_path),
                            "--run-id", "r", "-q"], capsys)
    assert code == 0, err
    assert len(RecordingExecutor.made) == 1
    pair = RecordingExecutor.made[0]
    assert isinstance(pair.options, ExecutorOptions)  # the narrow options, not RunOptions
    assert pair.fresh == 6
    manifest = json.loads((tmp_path / "r" / "manifest.json").read_text())
    assert manifest["options"]["executor"] == "recording"
    assert "recording" in executors.executor_names()


def test_a_broken_plugin_never_breaks_the_builtins(tmp_path, capsys, monkeypatch):
    plugins(monkeypatch, ("broken", "no_such_module_for_slmbench:Executor"),
            ("alien", "builtins:dict"),  # not a pair run
            ("local", f"{__name__}:RecordingExecutor"))  # a built-in's name: ignored
    with pytest.warns(UserWarning, match="name 'local' is taken"):
        assert executors.executors()["local"] == executors.BUILTIN_EXECUTORS["local"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, _, err = run_cli(["run", str(ROUTING), "-m", "baseline:tfidf-logreg",
                                "--executor", "broken", "--limit", "2", "--results-dir",
                                str(tmp_path), "-q"], capsys)
        assert code == 2 and "cannot be loaded" in err and "--executor" in err
        code, _, err = run_cli(["run", str(ROUTING), "-m", "baseline:tfidf-logreg",
                                "--executor", "alien", "--results-dir", str(tmp_path), "-q"],
                               capsys)
        assert code == 2 and "not a subclass" in err
        assert list(tmp_path.iterdir()) == []  # refused before a run folder was made
        code, _, err = run_cli(["run", str(ROUTING), "-m", "baseline:tfidf-logreg",
                                "--executor", "auto", "--limit", "2", "--results-dir",
                                str(tmp_path), "-q"], capsys)
        assert code == 0, err
    plugins(monkeypatch, broken_listing=True)
    with pytest.warns(UserWarning, match="could not be listed"):
        assert executors.executors() == executors.BUILTIN_EXECUTORS


def test_auto_asks_the_builtins_first_then_the_plugins(monkeypatch):
    from slmbench.models import resolve_model

    plugins(monkeypatch, ("greedy", f"{__name__}:GreedyExecutor"))
    api = resolve_model("openai/fake?api_base=http://127.0.0.1:9")
    baseline = resolve_model("baseline:tfidf-logreg")
    monkeypatch.setattr(run_module, "usable_cores", lambda: 2)
    got = resolve_executor(RunOptions(executor="auto"), [api])
    assert (got.executor, got.workers) == ("processes", 2)  # a built-in takes it first
    got = resolve_executor(RunOptions(executor="auto"), [baseline])
    assert (got.executor, got.workers) == ("greedy", 7)  # processes passed: the plugin's


# --------------------------------------------------------------------------- accounting


class Plain(Model):
    """A plugin backend that declares nothing but what it must: thread-safe, no asyncio path,
    priced by the hour, cached. It answers the first route."""

    pricing = PRICING_HOURLY
    thread_safe = True

    def complete(self, request: Request) -> Completion:
        return Completion(text=request.choices[0] if request.choices else "{}",
                          latency_s=0.001, tokens_in=10, tokens_out=1, token_source="none")


def make_plain(rest: str, settings: dict[str, Any]) -> Plain:
    return Plain(f"plain:{rest}", settings)


@pytest.fixture
def ledger(monkeypatch):
    """Every cache write, cost admission and settle this process makes."""
    seen: dict[str, list[Any]] = {"put": [], "admit": [], "settle": []}
    put, admit, settle = ResponseCache.put, CostCap.admit, CostCap.settle

    def count_put(self, key, completion):
        seen["put"].append(key)
        return put(self, key, completion)

    def count_admit(self, estimate):
        ok = admit(self, estimate)
        if ok:
            seen["admit"].append(estimate)
        return ok

    def count_settle(self, estimate, actual):
        seen["settle"].append((estimate, actual))
        return settle(self, estimate, actual)

    monkeypatch.setattr(ResponseCache, "put", count_put)
    monkeypatch.setattr(CostCap, "admit", count_admit)
    monkeypatch.setattr(CostCap, "settle", count_settle)
    return seen


def _fresh(rows: list[ResultRow]) -> list[ResultRow]:
    return [r for r in rows if not r["cached"]]


@pytest.mark.parametrize("executor", ["local", "processes"])
def test_cache_write_and_cost_settle_happen_once_per_fresh_row(tmp_path, ledger, executor):
    """An API model (asyncio loop in-process, worker processes with ``processes``) with some
    items failing, priced and capped; then the same run again, answered from the cache."""
    _, answer = gold_answerer(ROUTING)
    # the same endpoint both times (the cache never answers one endpoint with another's
    # response); its faults stop before the second run
    failing = {"on": True}
    faults = FaultPlan.always(
        "500", predicate=lambda prompt: failing["on"] and len(prompt) % 4 == 0)
    options = RunOptions(executor=executor, workers=2, concurrency=4, retry=FAST_RETRY,
                         max_cost_usd=1.0, pricing=PricingOptions(price_date="2026-11-22"))
    with FakeOpenAIServer(answer, faults=faults) as server:
        model = f"openai/gpt-5.4-nano?api_base={server.base_url}"
        first = run_benchmark([ROUTING], [model], results_dir=tmp_path, run_id="first",
                              options=options)
        rows = first.run.rows()
        fresh = _fresh(rows)
        answered = [r for r in fresh if r["error"] is None]
        assert len(fresh) == len(rows) == 40 and 0 < len(answered) < 40
        assert len(ledger["put"]) == len(answered) == len(set(ledger["put"]))
        assert len(ledger["settle"]) == len(ledger["admit"]) == len(fresh)
        assert sorted(e for e, _ in ledger["settle"]) == sorted(ledger["admit"])
        # billed at the real tokens: an answer costs something, an error row nothing
        assert sum(actual > 0 for _, actual in ledger["settle"]) == len(answered)
        for seen in ledger.values():
            seen.clear()
        failing["on"] = False
        before = len(server.calls)
        again = run_benchmark([ROUTING], [model], results_dir=tmp_path, run_id="again",
                              options=options)
        calls = len(server.calls) - before
    assert calls == 40 - len(answered)  # the failed items only; answers came from the cache
    assert sum(r["cached"] for r in again.run.rows()) == len(answered)
    assert len(ledger["put"]) == calls and len(ledger["settle"]) == calls


@pytest.mark.parametrize("executor", ["local", "processes"])
def test_a_model_without_an_asyncio_path_is_accounted_the_same(tmp_path, monkeypatch, ledger,
                                                               executor):
    """The thread-pool loop (the processes executor keeps such a model in this process)."""
    monkeypatch.setitem(model_registry.BUILTIN_BACKENDS, "plain", f"{__name__}:make_plain")
    options = RunOptions(executor=executor, workers=2, concurrency=4, limit=12)
    first = run_benchmark([ROUTING], ["plain:x"], results_dir=tmp_path, run_id="a",
                          options=options)
    assert len(_fresh(first.run.rows())) == 12
    assert len(ledger["put"]) == len(ledger["settle"]) == len(ledger["admit"]) == 12
    for seen in ledger.values():
        seen.clear()
    again = run_benchmark([ROUTING], ["plain:x"], results_dir=tmp_path, run_id="b",
                          options=options)
    assert all(r["cached"] for r in again.run.rows()) and again.calls == 0
    assert ledger == {"put": [], "admit": [], "settle": []}


def test_stored_rows_have_the_record_fields(tmp_path, monkeypatch):
    monkeypatch.setitem(model_registry.BUILTIN_BACKENDS, "plain", f"{__name__}:make_plain")
    result = run_benchmark([ROUTING], ["plain:x"], results_dir=tmp_path,
                           options=RunOptions(limit=3, use_cache=False))
    required = ResultRow.__required_keys__
    for row in result.run.rows():
        assert required <= row.keys() <= set(ROW_FIELDS)


# --------------------------------------------------------------------------- capabilities


def test_a_plugin_model_is_described_and_priced_by_the_default_capabilities(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setitem(model_registry.BUILTIN_BACKENDS, "plain", f"{__name__}:make_plain")
    result = run_benchmark([ROUTING], ["plain:x"], results_dir=tmp_path,
                           options=RunOptions(limit=3, use_cache=False))
    info = result.run.read_manifest()["models"]["plain:x"]
    assert info["capabilities"] == {"pricing": "hourly", "gpu_offload": False,
                                    "logprobs": False, "structured_output": False,
                                    "async": False}
    entry = result.summary["results"][0]
    assert entry["pricing"]["priced"] and entry["pricing"]["hardware"] == DEFAULT_CPU_HARDWARE


def test_gpu_offload_is_read_from_capabilities_and_old_manifests_price_as_before():
    from slmbench.models import resolve_model

    assert resolve_model("llamacpp:smollm2?n_gpu_layers=-1").describe()["capabilities"][
        "gpu_offload"] is True
    cpu = resolve_model("llamacpp:smollm2").describe()
    assert cpu["capabilities"]["gpu_offload"] is False and "gpu_offload" not in cpu
    rows = [{"latency_s": 0.5, "correct": True}, {"latency_s": 1.5, "correct": False}]
    timings = [{"wall_s": 2.0, "latency_sum_s": 2.0}]

    def price(info: dict[str, Any]) -> dict[str, Any]:
        coster = RunCoster(PricingOptions(price_date="2026-11-22"), None)
        return coster.price("m", {"pricing": "hourly", **info}, rows, timings)

    cpu_priced = price({})  # a run from before either key: a CPU, as always
    assert cpu_priced["pricing"]["hardware"] == DEFAULT_CPU_HARDWARE
    assert price({"gpu_offload": False}) == cpu_priced  # stored before capabilities
    assert price({"capabilities": {"gpu_offload": False}}) == cpu_priced
    for info in ({"gpu_offload": True}, {"capabilities": {"gpu_offload": True}},
                 # capabilities win over the old key when both are there
                 {"gpu_offload": False, "capabilities": {"gpu_offload": True}}):
        assert price(info)["pricing"] == {"basis": "hourly", "priced": False}, info
    assert price({"gpu_offload": True, "capabilities": {"gpu_offload": False}}) == cpu_priced
