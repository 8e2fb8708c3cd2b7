"""Calibration (ECE, reliability table) and the offline small → large cascade simulation.

Runs are written by hand (rows + manifest), so every figure is recomputed here from the rows;
the end-to-end test stores a TF-IDF baseline run and an API run through the fake server.
"""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer
from test_reports import _tables, make_rows, write_run

from slmbench.analysis.cascade import pick_threshold, simulate_cascade, sweep_thresholds
from slmbench.errors import InputError
from slmbench.reports.leaderboard import load_summaries
from slmbench.scoring.calibration import (
    bin_index,
    calibration_metrics,
    expected_calibration_error,
    reliability_table,
)

SMALL, LARGE = "openai/gpt-5.4-nano", "openai/gpt-5.4-mini"
PRICES = {SMALL: (0.20, 1.25), LARGE: (0.75, 4.50)}  # pricing/openai/2026-11-22.yaml
TASK = {"t": {"kind": "classification", "labels": ["a", "b"]}}
IDS = [f"i{i:02d}" for i in range(10)]

# the small model: (confidence, correct); item 7 is a failed call, item 8 an invalid answer
# given with a high confidence, item 9 has no confidence (no logprobs)
SMALL_ITEMS = [(0.95, True), (0.90, True), (0.85, False), (0.80, True), (0.70, False),
               (0.60, True), (0.55, False), (None, False), (0.97, False), (None, True)]
LARGE_WRONG = {3, 6}


def small_rows(model: str = SMALL) -> list[dict]:
    pred = ["a" if ok else "b" for _, ok in SMALL_ITEMS]
    pred[8] = None  # invalid
    rows = make_rows("t", model, ["a"] * 10, pred, errors=(7,), ids=IDS)
    for i, r in enumerate(rows):
        r["confidence"] = SMALL_ITEMS[i][0]
        r["confidence_source"] = None if r["confidence"] is None else "token-logprob"
        if i != 7:
            r["tokens_in"], r["tokens_out"] = 1000 + 10 * i, 10
    return rows


def large_rows(model: str = LARGE, ids: list[str] = IDS) -> list[dict]:
    pred = ["b" if i in LARGE_WRONG else "a" for i in range(len(ids))]
    rows = make_rows("t", model, ["a"] * len(ids), pred, ids=ids)
    for i, r in enumerate(rows):
        r["tokens_in"], r["tokens_out"] = 2000, 50 + i
        r["confidence"] = 0.9
    return rows


def cost(model: str, row: dict) -> float:
    pin, pout = PRICES[model]
    return (row["tokens_in"] * pin + row["tokens_out"] * pout) / 1e6


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    return (write_run(tmp_path / "s", "small", small_rows(), TASK),
            write_run(tmp_path / "l", "large", large_rows(), TASK))


def by_threshold(rows: list[dict]) -> dict[float, dict]:
    return {r["threshold"]: r for r in rows if r["strategy"] == "threshold"}


def expected(escalated: set[int]) -> dict:
    """The cascade figures computed directly from the fixture's rows."""
    s, lg = small_rows(), large_rows()
    correct = sum(bool((lg if i in escalated else s)[i]["correct"]) for i in range(10))
    total = sum(cost(SMALL, r) for r in s) + sum(cost(LARGE, lg[i]) for i in escalated)
    return {"n_escalated": len(escalated), "escalated_share": len(escalated) / 10,
            "n_correct": correct, "accuracy": correct / 10, "total_usd": total,
            "usd_per_1k_items": total / 10 * 1000, "usd_per_correct": total / correct}


def check(row: dict, want: dict) -> None:
    for key, value in want.items():
        assert row[key] == pytest.approx(value, rel=1e-12), key


# ---------------------------------------------------------------------------------------------
# cascade figures against a direct computation


def test_cascade_figures_equal_direct_computation(pair):
    small, large = pair
    rows = simulate_cascade(small, SMALL, large, LARGE, thresholds=[0.5, 0.8, 0.9])
    assert [r["strategy"] for r in rows] == ["small only", "large only", "invalid only",
                                             "threshold", "threshold", "threshold"]
    t = by_threshold(rows)
    # escalated: no confidence (7, 9), invalid or failed (7, 8), confidence below t
    check(t[0.5], expected({7, 8, 9}))              # 4 kept right + 3 large right = 7
    check(t[0.8], expected({4, 5, 6, 7, 8, 9}))     # 3 + 5 = 8
    check(t[0.9], expected({2, 3, 4, 5, 6, 7, 8, 9}))  # 2 + 6 = 8
    assert (t[0.5]["accuracy"], t[0.8]["accuracy"], t[0.9]["accuracy"]) == (0.7, 0.8, 0.8)
    # small only 5/10, large only 8/10: the gap is 3 items
    small_only, large_only, invalid_only = rows[:3]
    check(small_only, expected(set()))
    assert small_only["accuracy"] == 0.5 and large_only["accuracy"] == 0.8
    assert large_only["total_usd"] == pytest.approx(sum(cost(LARGE, r) for r in large_rows()))
    assert large_only["escalated_share"] == 1.0
    assert t[0.5]["gap_recovered"] == pytest.approx(2 / 3)
    assert t[0.8]["gap_recovered"] == 1.0 and t[0.9]["gap_recovered"] == 1.0
    assert (small_only["gap_recovered"], large_only["gap_recovered"]) == (0.0, 1.0)
    # the validation fallback escalates the failed call and the invalid answer only
    check(invalid_only, expected({7, 8}))
    assert invalid_only["threshold"] is None and invalid_only["accuracy"] == 0.7
    # the small-only and large-only $ are exactly their summaries' $
    s_sum, l_sum = load_summaries([small, large])
    assert small_only["total_usd"] == pytest.approx(s_sum["results"][0]["total_usd"])
    assert large_only["total_usd"] == pytest.approx(l_sum["results"][0]["total_usd"])


def test_no_escalate_invalid_keeps_the_confident_invalid_answer(pair):
    small, large = pair
    rows = simulate_cascade(small, SMALL, large, LARGE, thresholds=[0.5],
                            escalate_invalid=False)
    # item 8 (invalid, confidence 0.97) stays with the small model; 7 and 9 have no confidence
    check(by_threshold(rows)[0.5], expected({7, 9}))
    assert by_threshold(rows)[0.5]["accuracy"] == 0.6
    assert rows[2]["n_escalated"] == 2  # the invalid-only row is the same either way


def test_sweep_thresholds_and_target_picking(pair):
    small, large = pair
    confs = [c for c, _ in SMALL_ITEMS]
    ts = sweep_thresholds(confs)
    assert ts[0] == 0.0 and ts[-1] == 1.0 and 0.05 in ts and 0.97 in ts and 0.55 in ts
    assert len(ts) == 21 + 1  # 0.97 is the only confidence not on the 0.05 grid
    assert sweep_thresholds([i / 997 for i in range(997)]) == sweep_thresholds([])  # many
    rows = simulate_cascade(small, SMALL, large, LARGE)  # "sweep"
    assert sorted(by_threshold(rows)) == ts
    # 80 %: escalating {4..9} is the cheapest set that reaches it (0.7 < t <= 0.8); ties on
    # cost go to the lower threshold
    pick = pick_threshold(rows, target_accuracy=0.8)
    assert pick.row["threshold"] == 0.75 and pick.row["accuracy"] == 0.8
    reaching = [r for r in by_threshold(rows).values() if r["accuracy"] >= 0.8]
    assert pick.row["total_usd"] == min(r["total_usd"] for r in reaching)
    check(pick.row, expected({4, 5, 6, 7, 8, 9}))
    assert "t = 0.75" in pick.message and "80.0%" in pick.message
    # 85 % of the large model's 80 % = 68 %: 7/10 is enough, so no threshold needs to escalate
    # more than the forced items
    share = pick_threshold(rows, target_share_of_large=0.85)
    assert share.target == pytest.approx(0.68) and share.row["threshold"] == 0.0
    check(share.row, expected({7, 8, 9}))
    missed = pick_threshold(rows, target_accuracy=0.95)
    assert missed.row is None and "no threshold reaches" in missed.message
    with pytest.raises(InputError):
        pick_threshold(rows)


def test_cli_sweep_prints_the_table_the_pick_and_writes_csv_and_plot(pair, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    small, large = pair
    out, png = tmp_path / "sweep.csv", tmp_path / "cascade.png"
    code, text, err = run_cli(["cascade", "--small", f"{small}:{SMALL}", "--large",
                               f"{large}:{LARGE}", "--sweep", "--target-accuracy", "80%",
                               "--out", str(out), "--plot", str(png)], capsys)
    assert code == 0, err
    assert "cascade on task t (classification), 10 items" in text
    assert "cheapest threshold reaching accuracy 80.0%: t = 0.75" in text
    assert "invalid only" in text and "gap recovered" in text
    with out.open() as f:
        table = list(csv.DictReader(f))
    assert len(table) == 3 + 22
    row = next(r for r in table if r["threshold"] == "0.8")
    assert float(row["total_usd"]) == pytest.approx(expected({4, 5, 6, 7, 8, 9})["total_usd"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    # a single threshold (default 0.85) and the bare-run form (one model per run)
    code, text, err = run_cli(["cascade", "--small", str(small), "--large", str(large)], capsys)
    assert code == 0, err
    line = next(x for x in text.splitlines() if x.lstrip("│| ").startswith("threshold"))
    assert "0.85" in line and "70.0%" in line  # escalates {3,4,5,6,7,8,9}: 2 + 5 = 7


def test_missing_items_stop_with_one_line_naming_them(tmp_path, capsys):
    small = write_run(tmp_path / "s", "small", small_rows(), TASK)
    large = write_run(tmp_path / "l", "large", large_rows(ids=IDS[:8]), TASK)
    code, _, err = run_cli(["cascade", "--small", f"{small}:{SMALL}", "--large",
                            f"{large}:{LARGE}", "--sweep"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "2 missing from the large run (i08, i09)" in err
    with pytest.raises(InputError, match="missing from the large run"):
        simulate_cascade(small, SMALL, large, LARGE)


def test_bad_input_is_one_line(pair, tmp_path, capsys):
    small, large = pair
    cases = [
        (["--small", f"{small}:{SMALL}", "--large", f"{large}:nope"], "no such model"),
        (["--small", "not/a/run:x", "--large", f"{large}:{LARGE}"], "--small"),
        (["--small", f"{small}:{SMALL}", "--large", f"{large}:{LARGE}", "--threshold", "1.5"],
         "--threshold"),
        (["--small", f"{small}:{SMALL}", "--large", f"{large}:{LARGE}", "--threshold", "0.5",
          "--sweep"], "not both"),
        (["--small", f"{small}:{SMALL}", "--large", f"{large}:{LARGE}", "--task", "zzz"],
         "--task"),
        (["--small", f"{small}:{SMALL}", "--large", f"{large}:{LARGE}", "--plot", "c.gif"],
         "--plot"),
        (["--small", f"{small}:{SMALL}", "--large", f"{large}:{LARGE}", "--target-accuracy",
          "1.2"], "--target-accuracy"),
    ]
    for args, needle in cases:
        code, _, err = run_cli(["cascade", *args], capsys)
        assert code == 2 and needle in err and len(err.strip().splitlines()) == 1, (args, err)
    # gold answers that differ: not the same dataset
    other = large_rows()
    other[4]["gold"] = "b"
    diff = write_run(tmp_path / "d", "diff", other, TASK)
    code, _, err = run_cli(["cascade", "--small", f"{small}:{SMALL}", "--large",
                            f"{diff}:{LARGE}"], capsys)
    assert code == 2 and "gold" in err and "i04" in err


def test_unpriced_large_model_keeps_accuracy_and_says_unpriced(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    unpriced = "openai/in-house-router"
    small = write_run(tmp_path / "s", "small", small_rows(), TASK)
    large = write_run(tmp_path / "l", "large", large_rows(unpriced), TASK)
    rows = simulate_cascade(small, SMALL, large, unpriced, thresholds=[0.8])
    t = by_threshold(rows)[0.8]
    assert t["accuracy"] == 0.8 and t["n_escalated"] == 6  # accuracy figures stand
    assert not t["priced"] and t["total_usd"] is None and t["usd_per_correct"] is None
    assert not rows[1]["priced"] and not rows[2]["priced"]
    assert rows[0]["priced"] and rows[0]["total_usd"] > 0  # the small model alone is priced
    pick = pick_threshold(rows, target_accuracy=0.8)
    assert pick.row is t and "unpriced" in pick.message
    code, text, err = run_cli(["cascade", "--small", f"{small}:{SMALL}", "--large",
                               f"{large}:{unpriced}", "--threshold", "0.8"], capsys)
    assert code == 0, err
    line = next(x for x in text.splitlines() if "80.0%" in x and "0.8" in x)
    assert line.count("unpriced") == 3
    assert f"warning: {unpriced} is unpriced" in text
    code, _, err = run_cli(["cascade", "--small", f"{small}:{SMALL}", "--large",
                            f"{large}:{unpriced}", "--sweep", "--plot",
                            str(tmp_path / "c.png")], capsys)
    assert code == 2 and "unpriced" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# calibration


CAL = [(0.95, True), (0.85, False), (0.82, True), (0.35, False), (0.31, True)]


def test_ece_and_reliability_table_against_hand_computed_values():
    conf, ok = [c for c, _ in CAL], [k for _, k in CAL]
    # bins [0.9,1]: 0.95 right; [0.8,0.9): 0.85 wrong, 0.82 right; [0.3,0.4): 0.35 wrong,
    # 0.31 right. ECE = 1/5·|1 − 0.95| + 2/5·|0.5 − 0.835| + 2/5·|0.5 − 0.33|
    #                 = 0.01 + 0.134 + 0.068 = 0.212
    assert expected_calibration_error(conf, ok) == pytest.approx(0.212)
    table = reliability_table(conf, ok)
    assert len(table) == 10 and sum(b["count"] for b in table) == 5
    full = [(b["lo"], b["hi"], b["count"], b["mean_confidence"], b["accuracy"])
            for b in table if b["count"]]
    assert full == [(0.3, 0.4, 2, pytest.approx(0.33), 0.5),
                    (0.8, 0.9, 2, pytest.approx(0.835), 0.5),
                    (0.9, 1.0, 1, pytest.approx(0.95), 1.0)]
    # 2 bins: [0,0.5): 0.35, 0.31 (mean 0.33, acc 0.5); [0.5,1]: mean 0.8733, acc 2/3
    assert expected_calibration_error(conf, ok, bins=2) == pytest.approx(
        2 / 5 * 0.17 + 3 / 5 * abs(2 / 3 - (0.95 + 0.85 + 0.82) / 3))
    assert (bin_index(0.0), bin_index(0.1), bin_index(0.999), bin_index(1.0)) == (0, 1, 9, 9)
    assert expected_calibration_error([], []) is None
    # rows without a confidence are counted, not imputed
    rows = [{"item_id": str(i), "confidence": c, "correct": k} for i, (c, k) in enumerate(CAL)]
    rows.append({"item_id": "x", "confidence": None, "correct": False})
    m = calibration_metrics(rows)
    assert (m["n_confidence"], m["n_no_confidence"]) == (5, 1)
    assert m["ece"] == pytest.approx(0.212) and len(m["reliability"]) == 3
    with pytest.raises(InputError, match="confidence"):
        calibration_metrics([{"item_id": "y", "confidence": 1.5, "correct": True}])


def test_summary_and_markdown_carry_ece_and_the_reliability_table(tmp_path, capsys):
    rows = make_rows("t", SMALL, ["a"] * 6, ["a" if k else "b" for _, k in CAL] + ["b"],
                     ids=[f"c{i}" for i in range(6)])
    for r, (c, _) in zip(rows, [*CAL, (None, False)], strict=True):
        r["confidence"], r["confidence_source"] = c, "token-logprob" if c is not None else None
    run = write_run(tmp_path, "cal", rows, TASK)
    entry = load_summaries([run])[0]["results"][0]
    assert entry["ece"] == pytest.approx(0.212) and entry["n_confidence"] == 5
    assert entry["n_no_confidence"] == 1
    code, md, err = run_cli(["report", str(run), "--format", "md"], capsys)
    assert code == 0, err
    assert "ECE 0.212 over the 5 items with a confidence (token-logprob); 1 without one" in md
    table = next(t for t in _tables(md) if t["head"][0] == "confidence")
    assert table["head"] == ["confidence", "items", "mean confidence", "accuracy"]
    assert table["rows"] == [["0.30–0.40", "2", "0.330", "50.0%"],
                             ["0.80–0.90", "2", "0.835", "50.0%"],
                             ["0.90–1.00", "1", "0.950", "100.0%"]]
    code, out, _ = run_cli(["report", str(run), "--format", "json"], capsys)
    detail = json.loads(out)["details"]["t"][f"cal/{SMALL}"]
    assert detail["ece"] == pytest.approx(0.212) and detail["n_confidence"] == 5


# ---------------------------------------------------------------------------------------------
# end to end: a TF-IDF run and an API run (fake server), then the cascade from the stored runs


def test_end_to_end_tfidf_to_api_cascade(tmp_path, capsys, monkeypatch):
    from slmbench.pricing.run_costs import PricingOptions
    from slmbench.runner.run import RunOptions, run_benchmark

    # the default machine is the sheet's match for the machine that ran: pin a 2-core one
    monkeypatch.setattr("slmbench.machine.usable_cores", lambda: 2)
    monkeypatch.setattr("slmbench.machine.gpus", lambda timeout_s=5.0: [])
    path = BUNDLED_TASKS / "support_routing.yaml"
    small = run_benchmark([path], ["baseline:tfidf-logreg"], results_dir=tmp_path,
                          run_id="small", options=RunOptions(pricing=PricingOptions(
                              price_date="2026-11-22")))
    _, answer = gold_answerer(path, wrong_every=8)  # right on 7 of every 8 items
    with FakeOpenAIServer(answer) as server:
        large = run_benchmark(
            [path], [f"{LARGE}?api_base={server.base_url}&logprobs=true"],
            results_dir=tmp_path, run_id="large", options=RunOptions(
                concurrency=4, pricing=PricingOptions(price_date="2026-11-22")))
    s_rows = {r["item_id"]: r for r in small.run.rows()}
    l_rows = {r["item_id"]: r for r in large.run.rows()}
    assert len(s_rows) == len(l_rows) == 40 and set(s_rows) == set(l_rows)
    assert all(r["confidence_source"] == "classifier-proba" for r in s_rows.values())
    assert all(r["confidence"] == pytest.approx(math.exp(-0.05)) for r in l_rows.values())
    assert sum(r["correct"] for r in l_rows.values()) == 35

    # per-row costs recomputed from the rows: busy time (CPU seconds / the 2 vCPUs of
    # aws-c7i.large) × $0.08925/h, over the calls' overlap, and tokens × $0.75 / $4.50 per 1M
    timing = json.loads((small.run.path / "manifest.json").read_text())["timings"][0]
    conc = sum(r["latency_s"] for r in s_rows.values()) / timing["wall_s"]
    s_entry = small.summary["results"][0]
    assert s_entry["pricing"]["time_basis"] == "busy" and s_entry["pricing"]["vcpus"] == 2
    s_cost = {i: r["cpu_s"] / 2 * 0.08925 / 3600 / max(1.0, conc) for i, r in s_rows.items()}
    l_cost = {i: (r["tokens_in"] * 0.75 + r["tokens_out"] * 4.50) / 1e6
              for i, r in l_rows.items()}
    assert sum(s_cost.values()) == pytest.approx(s_entry["total_usd"])

    model = f"{LARGE}?api_base=http://elsewhere/v1&logprobs=true"  # settings are ignored
    rows = simulate_cascade(small.run.path, "baseline:tfidf-logreg", large.run.path, model)
    t = by_threshold(rows)
    n_small = sum(r["correct"] for r in s_rows.values())
    for threshold in (0.3, 0.5, 0.7, 0.9):
        up = {i for i, r in s_rows.items() if r["confidence"] is None
              or r["confidence"] < threshold or r["invalid"] or r["error"]}
        n_correct = sum((l_rows if i in up else s_rows)[i]["correct"] for i in s_rows)
        total = sum(s_cost.values()) + sum(l_cost[i] for i in up)
        row = t[threshold]
        assert row["n_escalated"] == len(up) and row["accuracy"] == n_correct / 40
        assert row["total_usd"] == pytest.approx(total, rel=1e-9)
        assert row["usd_per_1k_items"] == pytest.approx(total / 40 * 1000, rel=1e-9)
        assert row["usd_per_correct"] == pytest.approx(total / n_correct, rel=1e-9)
        if n_small != 35:
            assert row["gap_recovered"] == pytest.approx((n_correct - n_small) / (35 - n_small))
    assert rows[0]["accuracy"] == n_small / 40 and rows[1]["accuracy"] == 35 / 40
    assert rows[1]["total_usd"] == pytest.approx(large.summary["results"][0]["total_usd"])
    # the calibration of both models is in their summaries
    assert s_entry["n_confidence"] == 40 and s_entry["ece"] is not None
    # and the CLI on the two stored runs
    monkeypatch.setenv("COLUMNS", "200")
    code, text, err = run_cli(["cascade", "--small", f"{small.run.path}:baseline:tfidf-logreg",
                               "--large", f"{large.run.path}:{LARGE}", "--sweep",
                               "--target-share-of-large", "0.95"], capsys)
    assert code == 0, err
    pick = pick_threshold(rows, target_share_of_large=0.95)
    assert pick.message in text


def test_cascade_help_imports_nothing_heavy():
    heavy = ("pandas", "sklearn", "matplotlib", "litellm", "llama_cpp", "datasets")
    code = ("import sys\nfrom slmbench.cli import main\n"
            "sys.argv=['slmbench','cascade','--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {heavy!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "Usage" in out and "--target-share-of-large" in out
    assert out.strip().splitlines()[-1] == "[]", out
