"""Costs joined to stored rows: API tokens × dated sheets, local wall time × hourly rate."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer, count_completion_tokens, count_prompt_tokens

from slmbench.analysis.reprice import reprice_run
from slmbench.pricing.run_costs import PricingOptions
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.tasks import build_messages


def test_api_run_is_priced_from_the_sheet_in_effect(tmp_path):
    task, answer = gold_answerer(BUNDLED_TASKS / "support_routing.yaml", wrong_every=2)
    with FakeOpenAIServer(answer) as server:
        model = f"openai/gpt-5.4-nano?api_base={server.base_url}"
        result = run_benchmark([BUNDLED_TASKS / "support_routing.yaml"], [model],
                               results_dir=tmp_path, run_id="nano", options=RunOptions(
                                   concurrency=4, pricing=PricingOptions(
                                       price_date="2026-11-22", volume_per_day=10_000)))
    entry = result.summary["results"][0]
    rows = result.run.rows()
    assert len(rows) == 40 and entry["n_correct"] == 20
    # recompute the tokens independently from the server's documented usage rule
    items = {it.id: it for it in task.items}
    tin = sum(count_prompt_tokens(build_messages(task.spec, items[r["item_id"]].text))
              for r in rows)
    tout = sum(count_completion_tokens(r["output"]) for r in rows)
    assert entry["tokens_in"] == tin and entry["tokens_out"] == tout
    total = tin * 0.20 / 1e6 + tout * 1.25 / 1e6
    assert entry["total_usd"] == pytest.approx(total, rel=1e-12)
    assert entry["usd_per_1k_items"] == pytest.approx(total / 40 * 1000)
    assert entry["usd_per_correct"] == pytest.approx(total / 20)
    assert entry["correct_per_usd"] == pytest.approx(20 / total)
    assert entry["usd_per_day"] == pytest.approx(total / 40 * 10_000)
    assert entry["usd_per_month"] == pytest.approx(total / 40 * 10_000 * 30)
    assert entry["pricing"]["input_per_1m"] == 0.20 and entry["pricing"]["output_per_1m"] == 1.25
    manifest = json.loads((result.run.path / "manifest.json").read_text())
    sheets = manifest["pricing"]["sheets"]
    assert manifest["pricing"]["price_date"] == "2026-11-22"
    assert any(s["path"].endswith("openai/2026-11-22.yaml") and len(s["sha256"]) == 64
               for s in sheets)


def test_unpriced_model_says_so_and_others_keep_their_figures(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    _, answer = gold_answerer(BUNDLED_TASKS / "support_routing.yaml", wrong_every=2)
    with FakeOpenAIServer(answer) as server:
        code, out, err = run_cli(
            ["run", str(BUNDLED_TASKS / "support_routing.yaml"),
             "-m", f"openai/in-house-router?api_base={server.base_url}",
             "-m", "baseline:tfidf-logreg", "--results-dir", str(tmp_path), "--run-id", "u",
             "-q"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "u" / "summary.json").read_text())
    by_model = {e["model"]: e for e in summary["results"]}
    unpriced = by_model["openai/in-house-router"]
    assert unpriced["accuracy"] == 0.5
    for key in ("total_usd", "usd_per_item", "usd_per_1k_items", "usd_per_correct",
                "correct_per_usd"):
        assert unpriced[key] is None  # never $0
    assert any("openai/in-house-router is unpriced" in w for w in summary["warnings"])
    assert "warning: openai/in-house-router is unpriced" in out
    line = next(x for x in out.splitlines() if "in-house-router" in x)
    assert line.count("unpriced") == 3
    priced = by_model["baseline:tfidf-logreg"]
    assert priced["total_usd"] > 0
    assert priced["usd_per_correct"] == pytest.approx(priced["total_usd"] / priced["n_correct"])


def test_local_model_priced_by_busy_time_and_hourly_rate(tmp_path):
    result = run_benchmark([BUNDLED_TASKS / "banking77_mini.yaml"], ["llamacpp:smollm2"],
                           results_dir=tmp_path, run_id="local", options=RunOptions(
                               limit=8, pricing=PricingOptions(hourly_usd=1.006)))
    entry = result.summary["results"][0]
    manifest = json.loads((result.run.path / "manifest.json").read_text())
    timing = manifest["timings"][0]
    rows = result.run.rows()
    concurrency = sum(r["latency_s"] for r in rows) / timing["wall_s"]
    # --hourly is the rate of the machine that ran: its CPU seconds over its usable cores
    cores = manifest["machine"]["usable_cores"]
    expected = sum(r["cpu_s"] / cores * 1.006 / 3600 / max(1.0, concurrency) for r in rows)
    assert entry["total_usd"] == pytest.approx(expected)
    assert entry["usd_per_1m_items"] == pytest.approx(expected / 8 * 1e6)
    assert entry["pricing"]["basis"] == "hourly" and entry["pricing"]["usd_per_hour"] == 1.006
    assert entry["pricing"]["time_basis"] == "busy" and entry["pricing"]["vcpus"] == cores
    # rows of an older slmbench hold no CPU time: the machine's wall time, as before
    for r in rows:
        r.pop("cpu_s")
    (result.run.path / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    entry = reprice_run(result.run.path, PricingOptions(hourly_usd=1.006))["results"][0]
    assert entry["pricing"]["time_basis"] == "wall"
    assert entry["total_usd"] == pytest.approx(timing["wall_s"] * 1.006 / 3600)


def test_default_cpu_rate_and_hardware_sheet(tmp_path, monkeypatch):
    # the default machine is the sheet's match for the machine that ran: pin a 2-core one
    monkeypatch.setattr("slmbench.machine.usable_cores", lambda: 2)
    monkeypatch.setattr("slmbench.machine.gpus", lambda timeout_s=5.0: [])
    result = run_benchmark([BUNDLED_TASKS / "banking77_mini.yaml"], ["baseline:tfidf-logreg"],
                           results_dir=tmp_path, run_id="cpu",
                           options=RunOptions(limit=5))
    entry = result.summary["results"][0]
    assert entry["pricing"]["hardware"] == "aws-c7i.large"
    assert entry["pricing"]["usd_per_hour"] == pytest.approx(0.08925)
    g5 = reprice_run(result.run.path, PricingOptions(hardware="aws-g5.xlarge"))["results"][0]
    # busy time: the CPU seconds over each machine's vCPUs (g5.xlarge 4, c7i.large 2)
    assert entry["pricing"]["time_basis"] == g5["pricing"]["time_basis"] == "busy"
    assert g5["total_usd"] == pytest.approx(entry["total_usd"] * (1.006 / 4) / (0.08925 / 2))


def _write_stored_run(folder: Path, model: str, n: int = 10) -> Path:
    """A stored run written by hand: what reports and reprice must handle without a model."""
    run = folder / "stored"
    run.mkdir(parents=True)
    rows = [{"task": "t", "kind": "classification", "model": model, "item_id": str(i),
             "input": "x", "output": "a", "answer": "a", "gold": "a" if i < 8 else "b",
             "correct": i < 8, "invalid": False, "error": None, "attempts": 1,
             "tokens_in": 1000, "tokens_out": 100, "token_source": "provider",
             "cached_tokens_in": None, "latency_s": 0.5, "confidence": None} for i in range(n)]
    (run / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    manifest = {"run_id": "stored", "started_at": "2026-11-22T10:00:00+00:00", "seed": 0,
                "tasks": {"t": {"name": "t", "kind": "classification", "labels": ["a", "b"],
                                "n_items": n}},
                "models": {model: {"name": model, "pricing": "tokens", "settings": {}}},
                "options": {}, "timings": []}
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def test_reprice_across_the_gemini_price_step(tmp_path, capsys):
    run = _write_stored_run(tmp_path, "gemini/gemini-3.8-flash")
    before = reprice_run(run, PricingOptions(price_date="2026-12-31"))["results"][0]
    after = reprice_run(run, PricingOptions(price_date="2027-01-02"))["results"][0]
    old_in, old_out = before["pricing"]["input_per_1m"], before["pricing"]["output_per_1m"]
    assert (after["pricing"]["input_per_1m"], after["pricing"]["output_per_1m"]) == (1.50, 7.50)
    expected_ratio = (1000 * 1.50 + 100 * 7.50) / (1000 * old_in + 100 * old_out)
    assert after["total_usd"] / before["total_usd"] == pytest.approx(expected_ratio)
    assert after["usd_per_correct"] == pytest.approx(after["total_usd"] / 8)
    manifest = json.loads((run / "manifest.json").read_text())
    assert [r["price_date"] for r in manifest["repriced"]] == ["2026-12-31", "2027-01-02"]
    # the CLI does the same, and rejects a malformed date with one line
    code, _, err = run_cli(["reprice", str(run), "--price-date", "02/01/2027"], capsys)
    assert code == 2 and "--price-date" in err and "02/01/2027" in err


def test_user_pricing_dir_overrides_a_price(tmp_path):
    run = _write_stored_run(tmp_path, "openai/gpt-5.4-nano")
    mine = tmp_path / "negotiated" / "openai"
    mine.mkdir(parents=True)
    shutil.copy(BUNDLED_TASKS.parent / "pricing" / "openai" / "2026-11-22.yaml",
                mine / "2026-11-22.yaml")
    text = (mine / "2026-11-22.yaml").read_text()
    assert "input: 0.20" in text
    (mine / "2026-11-22.yaml").write_text(text.replace("input: 0.20", "input: 0.10", 1))
    list_ = reprice_run(run, PricingOptions(price_date="2026-11-22"))["results"][0]
    deal = reprice_run(run, PricingOptions(price_date="2026-11-22",
                                           dirs=(tmp_path / "negotiated",)))["results"][0]
    assert list_["total_usd"] == pytest.approx(10 * (1000 * 0.20 + 100 * 1.25) / 1e6)
    assert deal["total_usd"] == pytest.approx(10 * (1000 * 0.10 + 100 * 1.25) / 1e6)
