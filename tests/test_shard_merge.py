"""--shard K/N and merge: shards are disjoint, cover everything, and merge back to the whole."""

from __future__ import annotations

import json

import pytest
from conftest import BUNDLED_TASKS, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer

from slmbench.analysis.merge import merge_runs
from slmbench.errors import InputError
from slmbench.runner.run import RunOptions, load_tasks, run_benchmark
from slmbench.runner.shard import parse_shard, shard_of
from slmbench.store import open_run

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
SAME = ("accuracy", "accuracy_ci", "macro_f1", "weighted_f1", "per_class", "confusion",
        "fallback_rate", "accuracy_fallback_as_miss", "n_correct", "n_items", "tokens_in",
        "tokens_out", "invalid_rate", "n_errors")


def test_shards_are_disjoint_cover_everything_and_ignore_order():
    whole = {it.id for it in load_tasks([ROUTING])[0].items}
    parts = [{it.id for it in load_tasks([ROUTING], shard=(k, 3))[0].items} for k in (1, 2, 3)]
    assert set().union(*parts) == whole
    assert sum(map(len, parts)) == len(whole)
    assert all(parts)
    assert {shard_of(i, 3) for i in parts[1]} == {2}
    assert parse_shard("3/8") == (3, 8)
    for bad in ("0/3", "4/3", "a/b", "3"):
        with pytest.raises(InputError):
            parse_shard(bad)


def test_merge_of_three_shards_equals_the_whole_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    _, answer = gold_answerer(ROUTING, wrong_every=3)
    with FakeOpenAIServer(answer) as server:
        models = [f"openai/gpt-5.4-nano?api_base={server.base_url}", "baseline:tfidf-logreg"]
        opts = {"use_cache": False, "pricing": __import__(
            "slmbench.pricing.run_costs", fromlist=["PricingOptions"]).PricingOptions(
                price_date="2026-11-22")}
        whole = run_benchmark([ROUTING], models, results_dir=tmp_path, run_id="whole",
                              options=RunOptions(**opts))
        for k in (1, 2, 3):
            code, _, err = run_cli(["run", str(ROUTING), *sum((["-m", m] for m in models), []),
                                    "--results-dir", str(tmp_path), "--run-id", f"s{k}",
                                    "--shard", f"{k}/3", "--no-cache", "--price-date",
                                    "2026-11-22", "-q"], capsys)
            assert code == 0, err
    code, out, err = run_cli(["merge", str(tmp_path / "s1"), str(tmp_path / "s2"),
                              str(tmp_path / "s3"), "--out", str(tmp_path / "merged")], capsys)
    assert code == 0, err
    merged = open_run(tmp_path / "merged")
    answers = {(r["model"], r["item_id"]): r["answer"] for r in merged.rows()}
    assert answers == {(r["model"], r["item_id"]): r["answer"] for r in whole.run.rows()}
    a = {e["model"]: e for e in merged.read_summary()["results"]}
    b = {e["model"]: e for e in whole.summary["results"]}
    for model in a:
        for key in SAME:
            assert a[model][key] == b[model][key], (model, key)
    api = next(m for m in a if m.startswith("openai/"))
    assert a[api]["total_usd"] == pytest.approx(b[api]["total_usd"], rel=1e-12)
    manifest = merged.read_manifest()
    assert [m["shard"] for m in manifest["merged_from"]] == [[1, 3], [2, 3], [3, 3]]
    assert manifest["tasks"]["support-routing"]["n_items"] == 40

    # refusals: a missing shard, the same shard twice, overlapping rows
    code, _, err = run_cli(["merge", str(tmp_path / "s1"), str(tmp_path / "s3"), "--out",
                            str(tmp_path / "m2")], capsys)
    assert code == 2 and "missing shard(s) 2/3" in err
    with pytest.raises(InputError, match="shard given twice"):
        merge_runs([tmp_path / "s1", tmp_path / "s1", tmp_path / "s2"], tmp_path / "m3")
    with pytest.raises(InputError, match="is in both"):
        merge_runs([tmp_path / "whole", tmp_path / "s1"], tmp_path / "m4")


def test_merge_refuses_runs_of_different_tasks(tmp_path):
    for name, task in (("a", ROUTING), ("b", BUNDLED_TASKS / "banking77_mini.yaml")):
        run_benchmark([task], ["baseline:tfidf-logreg"], results_dir=tmp_path, run_id=name,
                      options=RunOptions(limit=4))
    with pytest.raises(InputError, match="different tasks"):
        merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "m")
    assert not (tmp_path / "m").exists()
    lines = (tmp_path / "a" / "items.jsonl").read_text().splitlines()
    assert all(json.loads(x)["task"] == "support-routing" for x in lines)
