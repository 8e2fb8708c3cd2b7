"""Issue 16 items 1, 2 and 9: a model's identity (two endpoints of one name), the ``--max-cost``
cap (invalid values, resumes, overshoot with every executor) and a bare ``--resume RUN``.

All model traffic goes to fake OpenAI-compatible servers on 127.0.0.1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer, count_prompt_tokens
from provider_emulators import OpenAIReasoningEmulator

from slmbench.pricing.run_costs import PricingOptions, RunCoster
from slmbench.runner.budget import CostCap, RunStopped
from slmbench.runner.dispatch import row_cost
from slmbench.runner.process_pool import shutdown_pools
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.store import open_run

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
PRICED = "openai/gpt-5.4-nano"
FAST_RETRY = RetryPolicy(max_attempts=2, base_s=0.01, cap_s=0.05)
#: how many times the request's own estimate the overbilling server reports (issue 16)
OVERBILL = 19


@pytest.fixture(autouse=True)
def _no_pools():
    yield
    shutdown_pools()


class OverbillingServer(FakeOpenAIServer):
    """Reports usage far above what the request could cost: prompt tokens worth about
    ``OVERBILL`` times the cap's estimate (prompt + the full output budget), e.g. a provider
    that counts a hidden system prompt. The answers themselves are the gold ones."""

    def _completion(self, body: dict, text, seq: int) -> dict:
        out = super()._completion(body, text, seq)
        budget = int(body.get("max_completion_tokens") or body.get("max_tokens") or 1)
        # input priced at 0.2, output at 1.25 $/M for gpt-5.4-nano: 7 input tokens ~ 1 output
        prompt = OVERBILL * (count_prompt_tokens(body.get("messages")) + 7 * budget)
        done = out["usage"]["completion_tokens"]
        out["usage"] = {"prompt_tokens": prompt, "completion_tokens": done,
                        "total_tokens": prompt + done}
        return out


def _price():
    coster = RunCoster(PricingOptions(), None)
    return coster.book.lookup(PRICED, coster.on)


def _spend(run_path: Path) -> tuple[float, float, int]:
    """(total spend of the run's fresh rows, largest one row's cost, fresh rows)."""
    price = _price()
    costs = [row_cost(price, r) for r in open_run(run_path).rows() if not r["cached"]]
    return sum(costs), max(costs), len(costs)


# --------------------------------------------------------------------------- item 1


def test_one_name_on_two_endpoints_is_refused_unless_named(tmp_path, capsys):
    _, gold = gold_answerer(ROUTING)
    with FakeOpenAIServer(gold) as a, FakeOpenAIServer(lambda b: "billing") as b:
        code, out, err = run_cli(["run", str(ROUTING), "-m", f"openai/fake?api_base={a.base_url}",
                                  "-m", f"openai/fake?api_base={b.base_url}", "--limit", "6",
                                  "--results-dir", str(tmp_path), "-q"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "two models are both named openai/fake" in err and "name=" in err
        assert a.calls == [] and b.calls == []
        code, out, err = run_cli(["run", str(ROUTING), "--run-id", "two", "--limit", "6",
                                  "-m", f"openai/fake?api_base={a.base_url}&name=box-a",
                                  "-m", f"openai/fake?api_base={b.base_url}&name=box-b",
                                  "--executor", "local", "--results-dir", str(tmp_path), "-q"],
                                 capsys)
        assert code == 0, err
        assert len(a.calls) == 6 and len(b.calls) == 6
    summary = open_run(tmp_path / "two").read_summary()
    acc = {e["model"]: e["accuracy"] for e in summary["results"]}
    assert acc["openai/fake?name=box-a"] == 1.0
    assert acc["openai/fake?name=box-b"] < 1.0  # b always answers "billing"
    manifest = open_run(tmp_path / "two").read_manifest()
    assert manifest["models"]["openai/fake?name=box-b"]["settings"]["name"] == "box-b"


def test_the_cache_never_answers_one_endpoint_with_anothers_response(tmp_path):
    _, gold = gold_answerer(ROUTING)
    with FakeOpenAIServer(gold) as a, FakeOpenAIServer(lambda b: "billing") as b:
        for run_id, server in (("a", a), ("b", b)):
            run_benchmark([ROUTING], [f"openai/fake?api_base={server.base_url}&temperature=0"],
                          results_dir=tmp_path, run_id=run_id,
                          options=RunOptions(limit=5, retry=FAST_RETRY))
        assert len(a.calls) == 5 and len(b.calls) == 5
    rows_b = open_run(tmp_path / "b").rows()
    assert not any(r["cached"] for r in rows_b)
    assert {r["output"] for r in rows_b} == {"billing"}


def test_a_bad_name_label_is_one_line(tmp_path, capsys):
    code, _, err = run_cli(["run", str(ROUTING), "-m", "openai/fake?name=a/b",
                            "--results-dir", str(tmp_path), "-q"], capsys)
    assert code == 2 and "name=" in err and len(err.strip().splitlines()) == 1


# --------------------------------------------------------------------------- item 2


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "0"])
def test_max_cost_must_be_positive_and_finite(tmp_path, capsys, value):
    with FakeOpenAIServer() as server:
        code, _, err = run_cli(["run", str(ROUTING), "-m",
                                f"{PRICED}?api_base={server.base_url}", "--max-cost", value,
                                "--results-dir", str(tmp_path), "-q"], capsys)
        assert server.calls == []
    assert code == 2 and "--max-cost" in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_the_stop_message_never_shows_a_negative_remainder():
    cap = CostCap(0.01)
    assert cap.admit(0.002)
    cap.settle(0.002, 0.0124)
    assert "over by $0.002400" in cap.status() and "$-" not in cap.status()
    assert not cap.admit(0.0001)


@pytest.mark.parametrize("executor,workers", [("local", None), ("processes", 2)])
def test_overshoot_is_bounded_by_the_requests_in_flight(tmp_path, executor, workers):
    """The server bills ~19x each request's estimate: the cap can only be passed by the
    requests in flight at the last admission (at most --concurrency of them)."""
    concurrency = 4
    _, gold = gold_answerer(ROUTING)
    with OverbillingServer(gold) as server:
        row_cost_usd = _one_row_cost(server, tmp_path)
        cap = 6 * row_cost_usd
        with pytest.raises(RunStopped, match="max-cost"):
            run_benchmark([ROUTING], [f"{PRICED}?api_base={server.base_url}"],
                          results_dir=tmp_path, run_id=executor,
                          options=RunOptions(concurrency=concurrency, max_cost_usd=cap,
                                             executor=executor, workers=workers,
                                             use_cache=False, retry=FAST_RETRY))
        calls = len(server.calls)
    spent, biggest, rows = _spend(tmp_path / executor)
    assert rows == calls and calls < 40
    assert spent <= cap + concurrency * biggest + 1e-12, (spent / biggest, cap / biggest)


def _one_row_cost(server: FakeOpenAIServer, tmp_path: Path) -> float:
    """One overbilled request's cost, checked to be far above its estimate."""
    result = run_benchmark([ROUTING], [f"{PRICED}?api_base={server.base_url}"],
                           results_dir=tmp_path, run_id="probe",
                           options=RunOptions(limit=1, use_cache=False, executor="local"))
    row = result.run.rows()[0]
    cost = row_cost(_price(), row)
    estimate = row_cost(_price(), {"tokens_in": 105, "tokens_out": 32})
    assert cost > 10 * estimate
    server.reset()
    return cost


def test_the_cap_covers_the_run_across_resumes(tmp_path, capsys):
    """A resumed run starts from what its stored rows cost: a bare --resume (which restores
    --max-cost from the manifest) makes no call once the cap was reached."""
    _, gold = gold_answerer(ROUTING)
    with OverbillingServer(gold) as server:
        cap = 6 * _one_row_cost(server, tmp_path)
        code, _, err = run_cli(["run", str(ROUTING), "-m", f"{PRICED}?api_base={server.base_url}",
                                "--max-cost", repr(cap), "--concurrency", "2", "--no-cache",
                                "--executor", "local", "--run-id", "r",
                                "--results-dir", str(tmp_path), "-q"], capsys)
        assert code == 1 and "--max-cost reached" in err and "continue with --resume" in err
        first = len(server.calls)
        code, _, err = run_cli(["run", "--resume", str(tmp_path / "r"), "-q"], capsys)
        assert code == 1 and "--max-cost reached" in err, err
        assert "before this invocation" in err
        resumed = len(server.calls) - first
    spent, biggest, _ = _spend(tmp_path / "r")
    assert resumed == 0
    assert spent <= cap + 2 * biggest + 1e-12


# --------------------------------------------------------------------------- fail-fast


def test_fail_fast_with_worker_processes_stops_at_the_calls_in_flight(tmp_path, capsys):
    """Workers hold items ahead of their free slots; once the pair stops they drop them, so
    the calls after the limit are at most the window (--concurrency)."""
    with OpenAIReasoningEmulator() as srv:
        code, _, err = run_cli(["run", str(ROUTING), "-m",
                                f"openai/gtp-5-nano?api_base={srv.url}", "--limit", "30",
                                "--no-preflight", "--fail-fast", "3", "--concurrency", "2",
                                "--executor", "processes", "--workers", "2",
                                "--results-dir", str(tmp_path), "--run-id", "ff", "-q"], capsys)
        calls = len(srv.requests)
    assert code == 1 and "cannot run" in err
    assert 3 <= calls <= 3 + 2, calls
    assert len(open_run(tmp_path / "ff").rows()) == calls


# --------------------------------------------------------------------------- item 9


def test_a_bare_resume_continues_the_runs_own_tasks_models_and_options(tmp_path, capsys):
    _, gold = gold_answerer(ROUTING)
    with FakeOpenAIServer(gold) as server:
        model = f"openai/fake?api_base={server.base_url}&name=mine"
        code, _, err = run_cli(["run", str(ROUTING), "-m", model, "--limit", "4",
                                "--max-errors", "7", "--fail-fast", "2", "--concurrency", "3",
                                "--no-cache", "--executor", "local", "--run-id", "r",
                                "--results-dir", str(tmp_path), "-q"], capsys)
        assert code == 0, err
        # Ctrl-C lost the last two rows: drop them as a resume would find the folder
        items = tmp_path / "r" / "items.jsonl"
        lines = items.read_text().splitlines()
        items.write_text("\n".join(lines[:2]) + "\n")
        server.reset()
        code, out, err = run_cli(["run", "--resume", str(tmp_path / "r"), "-q"], capsys)
        assert code == 0, err
        assert len(server.calls) == 2  # --no-cache was restored too
    manifest = open_run(tmp_path / "r").read_manifest()
    assert set(manifest["tasks"]) == {"support-routing"}  # not the bundled demo suite
    assert set(manifest["models"]) == {"openai/fake?name=mine"}
    opts = manifest["options"]
    assert (opts["limit"], opts["max_errors"], opts["fail_fast"], opts["concurrency"],
            opts["cache"]) == (4, "7", 2, 3, False)
    rows = open_run(tmp_path / "r").rows()
    assert sorted(r["item_id"] for r in rows) == sorted({r["item_id"] for r in rows})
    assert len(rows) == 4


def test_a_resume_refuses_tasks_or_models_the_run_does_not_hold(tmp_path, capsys):
    _, gold = gold_answerer(ROUTING)
    with FakeOpenAIServer(gold) as server:
        model = f"openai/fake?api_base={server.base_url}"
        code, _, err = run_cli(["run", str(ROUTING), "-m", model, "--limit", "2",
                                "--executor", "local", "--run-id", "r",
                                "--results-dir", str(tmp_path), "-q"], capsys)
        assert code == 0, err
        server.reset()
        other = BUNDLED_TASKS / "banking77_mini.yaml"
        code, _, err = run_cli(["run", str(other), "--resume", str(tmp_path / "r"), "-q"],
                               capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "is not in run r" in err and "support-routing" in err
        code, _, err = run_cli(["run", "--resume", str(tmp_path / "r"), "-m",
                                f"openai/other?api_base={server.base_url}", "-q"], capsys)
        assert code == 2 and len(err.strip().splitlines()) == 1, err
        assert "model openai/other is not in run r" in err
        assert server.calls == []
    assert json.loads((tmp_path / "r" / "manifest.json").read_text())["tasks"].keys() == {
        "support-routing"}
