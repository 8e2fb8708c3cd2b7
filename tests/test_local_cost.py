"""Local cost that holds still: the machine that ran, busy-time pricing, setup cost, the gate's
noise check, price modes, self-hosted servers by the hour and the break-even table."""

from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
from conftest import run_cli

from slmbench.analysis.gate import Thresholds, gate_runs, mann_whitney_greater
from slmbench.analysis.summary import build_summary
from slmbench.errors import InputError
from slmbench.machine import MachineSpec, describe_machine, ran_on
from slmbench.paths import REPO_ROOT
from slmbench.pricing.cost import token_cost
from slmbench.pricing.run_costs import (
    PricingOptions,
    RunCoster,
    is_off_peak,
    off_peak_windows,
)
from slmbench.store import open_run

TASK = REPO_ROOT / "tasks" / "banking77_mini.yaml"
C7I_LARGE = 0.08925  # pricing/hardware: aws-c7i.large, 2 vCPU


@pytest.fixture(scope="module")
def tfidf_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real run of the TF-IDF baseline on the bundled Banking77 sample."""
    from slmbench.runner.run import run_benchmark

    out = tmp_path_factory.mktemp("runs")
    result = run_benchmark([TASK], ["baseline:tfidf-logreg"], results_dir=out, run_id="base")
    return Path(result.run.path)


def _copy(run: Path, dest: Path, edit_rows=None, edit_manifest=None) -> Path:
    shutil.copytree(run, dest)
    if edit_rows is not None:
        rows = [json.loads(line) for line in (dest / "items.jsonl").read_text().splitlines()]
        rows = edit_rows(rows)
        (dest / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    if edit_manifest is not None:
        m = json.loads((dest / "manifest.json").read_text())
        edit_manifest(m)
        (dest / "manifest.json").write_text(json.dumps(m))
    (dest / "summary.json").unlink(missing_ok=True)
    return dest


def _rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]


# -- the machine that ran -----------------------------------------------------------------


def test_describe_machine_records_cores_memory_and_gpus():
    info = describe_machine(llama=True)
    assert info["usable_cores"] >= 1 and info["host_cores"] >= info["usable_cores"]
    assert info["gpu_count"] == len(info["gpus"])
    assert info["memory_gib"] is None or info["memory_gib"] > 0
    assert info["llama_gpu_offload"] in (True, False, None)


def test_machine_spec_reads_hardware_rows():
    assert MachineSpec.from_text("2 vCPU, 4 GiB (CPU-only baseline)") == MachineSpec(2, 0, None,
                                                                                      False)
    l4 = MachineSpec.from_text("1x NVIDIA L4 24 GB, 4 vCPU, 16 GiB")
    assert (l4.vcpus, l4.gpu_count, l4.gpu_model) == (4, 1, "L4")
    assert MachineSpec.from_text("2 vCPU Graviton3, 8 GiB (CPU only, arm64)").arm
    ran = {"arch": "x86_64", "usable_cores": 8, "gpus": ["NVIDIA A100-SXM4-80GB"]}
    assert MachineSpec.from_text("1x NVIDIA A100 80 GB PCIe").matches(ran)
    assert not MachineSpec.from_text("1x NVIDIA A10 24 GB").matches(ran)  # A10 is not A100
    assert not MachineSpec.from_text("2 vCPU, 4 GiB").matches({**ran, "gpus": []})
    assert MachineSpec.from_text("8 vCPU").matches({**ran, "gpus": []})
    assert ran_on({**ran, "gpus": []}) == "8 usable cores, no GPU"


def test_run_records_machine_cpu_time_and_setup(tfidf_run: Path):
    manifest = json.loads((tfidf_run / "manifest.json").read_text())
    assert manifest["machine"]["usable_cores"] == describe_machine()["usable_cores"]
    (timing,) = manifest["timings"]
    assert timing["setup_s"] > 0 and timing["setup_cpu_s"] > 0
    rows = _rows(tfidf_run)
    assert all(r["cpu_s"] >= 0 for r in rows)


def test_busy_basis_prices_cpu_seconds_per_vcpu(tfidf_run: Path, tmp_path: Path):
    # on a 2-core record the default machine matches: no warning, busy basis
    run = _copy(tfidf_run, tmp_path / "r", edit_manifest=lambda m: m["machine"].update(
        usable_cores=2, gpus=[], gpu_count=0, arch="x86_64"))
    summary = build_summary(open_run(run))
    (entry,) = summary["results"]
    assert entry["pricing"]["time_basis"] == "busy"
    assert entry["pricing"]["hardware"] == "aws-c7i.large"
    rows = _rows(run)
    overlap = max(1.0, entry["pricing"]["concurrency"])
    expected = math.fsum(r["cpu_s"] / 2 / 3600 * C7I_LARGE / overlap for r in rows)
    assert entry["total_usd"] == pytest.approx(expected, rel=1e-9)
    assert summary["warnings"] == []
    timing = json.loads((run / "manifest.json").read_text())["timings"][0]
    assert entry["setup_usd"] == pytest.approx(timing["setup_cpu_s"] / 2 / 3600 * C7I_LARGE)


def test_rows_without_cpu_time_price_on_wall_time_as_before(tfidf_run: Path, tmp_path: Path):
    def old(rows):
        for r in rows:
            r.pop("cpu_s")
        return rows

    run = _copy(tfidf_run, tmp_path / "old", edit_rows=old,
                edit_manifest=lambda m: m.pop("machine"))
    (entry,) = build_summary(open_run(run))["results"]
    assert entry["pricing"]["time_basis"] == "wall"
    conc = entry["pricing"]["concurrency"]
    expected = math.fsum(r["latency_s"] / 3600 * C7I_LARGE / conc for r in _rows(run))
    assert entry["total_usd"] == pytest.approx(expected, rel=1e-9)


def test_core_count_mismatch_warns_in_one_line(tfidf_run: Path, tmp_path: Path):
    run = _copy(tfidf_run, tmp_path / "big", edit_manifest=lambda m: m["machine"].update(
        usable_cores=16, gpus=[], gpu_count=0, arch="x86_64"))
    summary = build_summary(open_run(run))
    assert summary["warnings"] == [
        "local cost assumes aws-c7i.large (2 vCPU, 4 GiB (CPU-only baseline)), not the machine "
        "that ran (16 usable cores, no GPU): no hardware sheet machine matches it; give "
        "--hardware or --hourly for the machine you pay for"]
    # 4 usable cores: the sheet's 4-vCPU machine is the one that ran
    run4 = _copy(tfidf_run, tmp_path / "four", edit_manifest=lambda m: m["machine"].update(
        usable_cores=4, gpus=[], gpu_count=0, arch="x86_64"))
    summary4 = build_summary(open_run(run4))
    assert summary4["warnings"] == []
    assert summary4["results"][0]["pricing"]["hardware"] == "aws-c7i.xlarge"
    # busy basis: the same CPU seconds cost the same per vCPU whichever size is assumed
    assert summary4["results"][0]["total_usd"] == pytest.approx(
        summary["results"][0]["total_usd"] * (0.1785 / 4) / (C7I_LARGE / 2), rel=1e-9)


def test_gpu_run_matches_a_gpu_row_or_stays_unpriced(tfidf_run: Path, tmp_path: Path):
    def gpu(m):
        m["machine"].update(usable_cores=4, gpus=["NVIDIA L4"], gpu_count=1, arch="x86_64")
        m["models"]["baseline:tfidf-logreg"]["capabilities"]["gpu_offload"] = True

    (entry,) = build_summary(open_run(_copy(tfidf_run, tmp_path / "l4",
                                            edit_manifest=gpu)))["results"]
    assert entry["pricing"]["hardware"] == "aws-g6.xlarge"
    assert entry["pricing"]["time_basis"] == "wall"  # CPU time says nothing of a GPU's

    def b200(m):
        gpu(m)
        m["machine"]["gpus"] = ["NVIDIA B200"]

    summary = build_summary(open_run(_copy(tfidf_run, tmp_path / "b200", edit_manifest=b200)))
    assert summary["results"][0]["usd_per_1k_items"] is None
    assert any("no hardware sheet machine matches the machine that ran (4 usable cores, 1× "
               "NVIDIA B200)" in w for w in summary["warnings"])


def test_h200_run_is_priced_on_a_rented_single_gpu_row(tfidf_run: Path, tmp_path: Path):
    """pricing/hardware/2026-12-03.yaml adds rented single-GPU rows: an H200 run, unpriced
    before, now takes the H200 pod's rate, and a GH200 (another chip) is not taken for it."""
    def gpu(name):
        def edit(m):
            m["machine"].update(usable_cores=4, gpus=[name], gpu_count=1, arch="x86_64")
            m["models"]["baseline:tfidf-logreg"]["capabilities"]["gpu_offload"] = True
        return edit

    (l4,) = build_summary(open_run(_copy(tfidf_run, tmp_path / "l4",
                                         edit_manifest=gpu("NVIDIA L4"))))["results"]
    (h200,) = build_summary(open_run(_copy(tfidf_run, tmp_path / "h200",
                                           edit_manifest=gpu("NVIDIA H200"))))["results"]
    assert h200["pricing"]["hardware"] == "runpod-h200-pod"
    assert h200["pricing"]["usd_per_hour"] == 4.59
    # the same wall time on both machines: the dollars differ by the hourly rates alone
    assert h200["total_usd"] == pytest.approx(l4["total_usd"] * 4.59 / 0.8048, rel=1e-9)
    assert MachineSpec.from_text("1x NVIDIA GH200 96 GB, 64 vCPU (arm64 Grace CPU)").matches(
        {"arch": "x86_64", "gpus": ["NVIDIA H200"]}) is False


def test_setup_cost_amortised_at_volume(tfidf_run: Path):
    summary = build_summary(open_run(tfidf_run), PricingOptions(volume_per_day=1000.0))
    (entry,) = summary["results"]
    assert entry["setup_usd_per_1k_items_amortised"] == pytest.approx(
        entry["setup_usd"] / (1000 * 30) * 1000)


# -- the gate's noise check ----------------------------------------------------------------


def test_mann_whitney_matches_scipy():
    from scipy.stats import mannwhitneyu

    rng = random.Random(7)
    x = [rng.random() + 0.1 for _ in range(40)] + [0.5] * 4
    y = [rng.random() for _ in range(35)] + [0.5] * 3
    u, p = mann_whitney_greater(x, y)
    ref = mannwhitneyu(x, y, alternative="greater", method="asymptotic")
    assert u == ref.statistic and p == pytest.approx(ref.pvalue, rel=1e-9)


def _scaled(factor, jitter: float, seed: int, outliers: int = 0):
    """Rows whose CPU time is the baseline's × ``factor`` × a seeded jitter; ``outliers``
    rows take 40× (a descheduled call)."""
    def edit(rows):
        rng = random.Random(seed)
        for i, r in enumerate(rows):
            scale = factor * (1 + rng.uniform(-jitter, jitter)) * (40 if i < outliers else 1)
            r["cpu_s"] *= scale
            r["latency_s"] *= scale * 15  # a loaded machine: wall time balloons
        return rows
    return edit


def _measured(rows):
    """Seeded CPU and wall times in place of this machine's measurement: the test's figures
    must not hang on how fast (or how coarse a clock) the machine that runs it has."""
    rng = random.Random(0)
    for r in rows:
        r["cpu_s"] = 0.002 * (1 + rng.uniform(-0.3, 0.3))
        r["latency_s"] = r["cpu_s"] * 1.1
    return rows


def test_gate_passes_noise_and_fails_a_real_slowdown(tfidf_run: Path, tmp_path: Path):
    tfidf_run = _copy(tfidf_run, tmp_path / "base", edit_rows=_measured)
    noisy = _copy(tfidf_run, tmp_path / "noisy", edit_rows=_scaled(1.0, 0.2, 1, outliers=3))
    check = next(c for c in gate_runs(noisy, tfidf_run).checks if c.name == "cost")
    assert check.figures["increase"] > 0.10  # the $ did move beyond the limit...
    assert check.status == "pass" and "measurement noise" in check.message
    assert check.figures["time_field"] == "cpu_s" and check.figures["p_value"] >= 0.05

    slow = _copy(tfidf_run, tmp_path / "slow", edit_rows=_scaled(2.0, 0.2, 2))
    check = next(c for c in gate_runs(slow, tfidf_run).checks if c.name == "cost")
    assert check.status == "fail"
    assert check.figures["median_increase"] > 0.5 and check.figures["p_value"] < 1e-6


def test_gate_compares_dollars_when_the_rate_changed(tfidf_run: Path, tmp_path: Path):
    dear = _copy(tfidf_run, tmp_path / "dear", edit_manifest=lambda m: m["options"].update(
        hourly_usd=10.0))
    check = next(c for c in gate_runs(dear, tfidf_run, Thresholds()).checks if c.name == "cost")
    assert check.status == "fail" and "p_value" not in check.figures


# -- price modes ---------------------------------------------------------------------------


def _token_rows(ts: list[str]) -> list[dict]:
    return [{"tokens_in": 1000 + i, "tokens_out": 50, "cached_tokens_in": 0, "correct": True,
             "latency_s": 0.1, "ts": t} for i, t in enumerate(ts)]


def test_off_peak_aware_prices_each_row_by_its_call_time():
    coster = RunCoster(PricingOptions(price_mode="off-peak-aware"), "2026-12-01")
    rows = _token_rows(["2026-12-01T02:00:00+00:00", "2026-12-01T12:00:00+00:00"])
    costs = coster.item_costs("deepseek/deepseek-flash", {"pricing": "tokens"}, rows, [])
    price = coster.book.lookup("deepseek/deepseek-flash", coster.on)
    assert costs == [token_cost(price, 1000, 50),  # 02:00 UTC is peak
                     token_cost(price, 1001, 50, off_peak=True)]
    standard = RunCoster(PricingOptions(), "2026-12-01").item_costs(
        "deepseek/deepseek-flash", {"pricing": "tokens"}, rows, [])
    assert standard[1] > costs[1]


def test_off_peak_windows_parse_peak_and_off_peak_texts():
    peak = off_peak_windows("peak is 01:00-04:00 and 06:00-10:00 UTC; every other hour is "
                            "off-peak")
    assert not is_off_peak("2026-12-01T09:59:00Z", peak)
    assert is_off_peak("2026-12-01T10:00:00Z", peak)
    night = off_peak_windows("16:30-00:30 UTC")
    assert is_off_peak("2026-12-01T23:00:00+00:00", night)
    assert not is_off_peak("2026-12-01T12:00:00+00:00", night)
    assert off_peak_windows("nights") is None


def test_batch_mode_adds_the_batch_api_figure():
    coster = RunCoster(PricingOptions(price_mode="batch"), "2026-12-01")
    book_price = next(p for p in coster.book.prices if p.has_batch)
    model = book_price.qualified_id
    rows = _token_rows(["2026-12-01T02:00:00+00:00"] * 4)
    entry = coster.price(model, {"pricing": "tokens"}, rows, [])
    price = coster.book.lookup(model, coster.on)
    expected = math.fsum(token_cost(price, r["tokens_in"], 50, batch=True) for r in rows)
    assert entry["usd_per_1k_items_batch"] == pytest.approx(expected / 4 * 1000)
    assert entry["usd_per_1k_items_batch"] < entry["usd_per_1k_items"]


def test_unknown_price_mode_is_one_line_exit_2(tfidf_run: Path, capsys):
    with pytest.raises(InputError):
        RunCoster(PricingOptions(price_mode="cheap"), None)
    code, _out, err = run_cli(["report", str(tfidf_run), "--price-mode", "cheap"], capsys)
    assert code == 2 and "--price-mode" in err and "cheap" in err
    assert len(err.strip().splitlines()) == 1


# -- self-hosted servers by the hour --------------------------------------------------------


def test_self_hosted_server_priced_by_the_hour_only_when_asked():
    info = {"pricing": "tokens", "settings": {"api_base": "http://127.0.0.1:8080/v1"}}
    rows = _token_rows(["2026-12-01T12:00:00+00:00"] * 2)
    timings = [{"wall_s": 0.2, "latency_sum_s": 0.2}]
    plain = RunCoster(PricingOptions(), "2026-12-01")
    assert plain.item_costs("openai/my-server", info, rows, timings) == [None, None]
    assert plain.warnings == ["openai/my-server is unpriced: no pricing sheet row in effect on "
                              "2026-12-01"]
    hourly = RunCoster(PricingOptions(hourly_usd=3.6), "2026-12-01")
    costs = hourly.item_costs("openai/my-server", info, rows, timings)
    assert costs == pytest.approx([0.1 / 3600 * 3.6] * 2)
    assert any("priced by the hour" in w for w in hourly.warnings)
    hourly_model = {"pricing": "hourly", "remote": True, "settings": info["settings"]}
    entry = RunCoster(PricingOptions(hourly_usd=3.6), "2026-12-01").price(
        "openai/my-server", hourly_model, rows, timings)
    assert entry["pricing"]["time_basis"] == "wall"
    assert entry["total_usd"] == pytest.approx(0.2 / 3600 * 3.6)


def test_pricing_hourly_setting_prices_a_self_hosted_server(tmp_path: Path):
    from conftest import gold_answerer
    from fakeserver import FakeOpenAIServer

    from slmbench.analysis.reprice import reprice_run
    from slmbench.runner.run import RunOptions, run_benchmark

    task = REPO_ROOT / "tasks" / "support_routing.yaml"
    _, answer = gold_answerer(task)
    with FakeOpenAIServer(answer) as server:
        model = f"openai/my-vllm?api_base={server.base_url}&pricing=hourly"
        result = run_benchmark([task], [model], results_dir=tmp_path, run_id="srv",
                               options=RunOptions(limit=6, pricing=PricingOptions(
                                   hourly_usd=3.6)))
    (entry,) = result.summary["results"]
    manifest = json.loads((result.run.path / "manifest.json").read_text())
    (name, info), = manifest["models"].items()
    assert name == "openai/my-vllm" and info["pricing"] == "hourly"
    assert "pricing" not in info["settings"]  # no answer changes: cache keys stay
    (timing,) = manifest["timings"]
    assert entry["pricing"]["time_basis"] == "wall"
    conc = timing["latency_sum_s"] / timing["wall_s"]
    lat = sum(r["latency_s"] for r in result.run.rows())
    assert entry["total_usd"] == pytest.approx(lat / conc / 3600 * 3.6)
    # reprice without a rate: unpriced, and it says why
    again = reprice_run(result.run.path, PricingOptions(hourly_usd=None, hardware=None))
    assert again["results"][0]["usd_per_1k_items"] is not None  # the run's --hourly is kept
    with pytest.raises(InputError, match="api_base"):
        run_benchmark([task], ["openai/x?pricing=hourly"], results_dir=tmp_path, run_id="bad")


def test_break_even_and_setup_sections(tfidf_run: Path):
    from slmbench.analysis.breakeven import break_even, task_comparisons
    from slmbench.reports.leaderboard import render_markdown

    local = {"model": "l", "usd_per_day": 24 * 0.1, "capacity_per_day": 10 * 86_400}
    c = break_even(local, {"model": "a", "usd_per_item": 1e-5}, 2e6)
    assert c["items_per_day"] == pytest.approx(2.4 / 1e-5)
    assert c["machines"] == math.ceil(2e6 / 864_000)
    assert c["local_usd_per_month"] == pytest.approx(3 * 2.4 * 30)
    assert c["api_usd_per_month"] == pytest.approx(1e-5 * 2e6 * 30)
    # a machine dearer per item than the API even when fully busy never breaks even
    assert break_even(local, {"model": "a", "usd_per_item": 1e-7}, 10)["items_per_day"] is None

    summary = build_summary(open_run(tfidf_run), PricingOptions(volume_per_day=1e5))
    (entry,) = summary["results"]
    p = entry["pricing"]
    api = {**entry, "model": "openai/x", "pricing": {"basis": "tokens"}, "usd_per_item": 1e-5}
    ((lo, comp),) = task_comparisons([entry, api], 1e5)
    assert lo["items_per_s"] == pytest.approx(entry["n_items"] / p["machine_s"])
    assert comp["items_per_day"] == pytest.approx(p["usd_per_hour"] * 24 / 1e-5)
    md = render_markdown(summary)
    assert "## Setup cost (one-off)" in md and "baseline:tfidf-logreg" in md
