"""``run --cascade SMALL,LARGE --threshold t``: the large model is only called on escalated
items, and the live figures equal the offline simulation on the same items.

Both models are API models over loopback (two fake servers, so each one's calls are counted),
priced from the bundled OpenAI sheet, so every $ figure is recomputed here from tokens.
"""

from __future__ import annotations

import json

import pytest
from conftest import BUNDLED_TASKS, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer

from slmbench.analysis.cascade import simulate_cascade
from slmbench.pricing.run_costs import PricingOptions
from slmbench.runner.live_cascade import CascadeSpec
from slmbench.runner.run import RunOptions, run_benchmark

SMALL, LARGE = "openai/gpt-5.4-nano", "openai/gpt-5.4-mini"
PRICES = {SMALL: (0.20, 1.25), LARGE: (0.75, 4.50)}  # pricing/openai/2026-11-22.yaml
TASK = BUNDLED_TASKS / "support_routing.yaml"
ON = PricingOptions(price_date="2026-11-22")


def _usd(model: str, row: dict) -> float:
    p_in, p_out = PRICES[model]
    return (row["tokens_in"] * p_in + row["tokens_out"] * p_out) / 1e6


@pytest.fixture
def servers():
    """small: right on 2 of 3 items, a varying confidence, an unknown label on every 7th;
    large: right on 7 of 8 items."""
    task, small_gold = gold_answerer(TASK, wrong_every=3)
    _, large_answer = gold_answerer(TASK, wrong_every=8)
    order = {}

    def small_answer(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        k = order.setdefault(prompt, len(order))
        return "no_such_route" if k % 7 == 6 else small_gold(body)

    def small_logprob(body: dict) -> float:
        k = order.setdefault(body["messages"][-1]["content"], len(order))
        return -0.04 * (k % 10)  # confidence exp(-0.04 k): 1.0 down to 0.70

    small = FakeOpenAIServer(small_answer, answer_logprob=small_logprob).start()
    large = FakeOpenAIServer(large_answer).start()
    yield task, small, large
    small.stop()
    large.stop()


def test_live_cascade_calls_large_only_on_escalated_items_and_matches_simulation(
        tmp_path, servers):
    task, small_srv, large_srv = servers
    small_id = f"{SMALL}?api_base={small_srv.base_url}&logprobs=true"
    large_id = f"{LARGE}?api_base={large_srv.base_url}"
    t = 0.85
    live = run_benchmark([TASK], [], results_dir=tmp_path, run_id="live", options=RunOptions(
        concurrency=4, pricing=ON, cascade=CascadeSpec(small_id, large_id, t)))
    rows = live.run.rows()
    s_rows = {r["item_id"]: r for r in rows if r["model"] == small_id.partition("?")[0]}
    l_rows = {r["item_id"]: r for r in rows if r["model"] == large_id.partition("?")[0]}
    assert len(s_rows) == len(task.items) == 40

    # escalation computed by hand: confidence below t, none, or an invalid answer
    up = {i for i, r in s_rows.items()
          if r["confidence"] is None or r["confidence"] < t or r["invalid"]}
    assert 0 < len(up) < 40 and any(s_rows[i]["invalid"] for i in up)
    assert set(l_rows) == up
    assert len(large_srv.calls) == len(up)  # the large model never saw another item
    assert len(small_srv.calls) == 40

    entry = live.summary["cascades"][0]
    n_correct = sum((l_rows if i in up else s_rows)[i]["correct"] for i in s_rows)
    total = sum(_usd(SMALL, r) for r in s_rows.values()) + sum(_usd(LARGE, r)
                                                               for r in l_rows.values())
    assert entry["complete"] and entry["n_missing"] == 0
    assert entry["n_escalated"] == len(up) and entry["escalated_share"] == len(up) / 40
    assert entry["accuracy"] == n_correct / 40
    assert entry["total_usd"] == pytest.approx(total, rel=1e-12)
    assert entry["usd_per_correct"] == pytest.approx(total / n_correct, rel=1e-12)

    # the same cascade simulated offline from a full large-model run on every item
    full = run_benchmark([TASK], [large_id], results_dir=tmp_path, run_id="full",
                         options=RunOptions(concurrency=4, pricing=ON, use_cache=False))
    assert len(full.run.rows()) == 40
    sim = next(r for r in simulate_cascade(live.run.path, small_id.partition("?")[0],
                                           full.run.path, None, thresholds=[t])
               if r["strategy"] == "threshold")
    for key in ("n_items", "n_escalated", "escalated_share", "n_correct", "accuracy"):
        assert entry[key] == sim[key], key
    for key in ("total_usd", "usd_per_1k_items", "usd_per_correct", "correct_per_usd"):
        assert entry[key] == pytest.approx(sim[key], rel=1e-12), key


def test_cli_cascade_prints_the_cascade_row_and_resume_calls_nothing(tmp_path, servers,
                                                                     capsys):
    _, small_srv, large_srv = servers
    cascade = (f"{SMALL}?api_base={small_srv.base_url}&logprobs=true,"
               f"{LARGE}?api_base={large_srv.base_url}")
    args = ["run", str(TASK), "--cascade", cascade, "--threshold", "0.9", "--results-dir",
            str(tmp_path), "--run-id", "c", "-q", "--price-date", "2026-11-22"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "cascade(" in out
    summary = json.loads((tmp_path / "c" / "summary.json").read_text())
    entry = summary["cascades"][0]
    assert entry["threshold"] == 0.9 and entry["small"] == SMALL and entry["large"] == LARGE
    n_large = len(large_srv.calls)
    assert n_large == entry["n_escalated"]

    # a re-run of the finished cascade calls neither model again
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    assert len(large_srv.calls) == n_large and len(small_srv.calls) == 40

    code, md, _ = run_cli(["report", str(tmp_path / "c"), "--format", "md"], capsys)
    assert code == 0 and "Run live:" in md and f"the {n_large} (" in md


@pytest.mark.parametrize("args,field,value", [
    (["--threshold", "0.5"], "--threshold", "0.5"),
    (["--cascade", "a/b"], "--cascade", "a/b"),
    (["--cascade", f"{SMALL},{SMALL}"], "--cascade", SMALL),
    (["--cascade", f"{SMALL},{LARGE}", "--threshold", "1.5"], "--threshold", "1.5"),
])
def test_bad_cascade_options_are_one_line_errors(tmp_path, capsys, args, field, value):
    code, out, err = run_cli(["run", str(TASK), "--results-dir", str(tmp_path), "-q", *args],
                             capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and field in err and value in err
    assert not any(tmp_path.iterdir())  # nothing was written


def test_readme_cascade_of_two_baselines_runs_live(tmp_path, capsys):
    """The README example: word-only TF-IDF escalating to word+char TF-IDF, both local."""
    small, large = "baseline:tfidf-logreg?features=word", "baseline:tfidf-logreg"
    code, _, err = run_cli(["run", str(BUNDLED_TASKS / "banking77_mini.yaml"), "--cascade",
                            f"{small},{large}", "--threshold", "0.55", "--results-dir",
                            str(tmp_path), "--run-id", "b", "-q"], capsys)
    assert code == 0, err
    summary = json.loads((tmp_path / "b" / "summary.json").read_text())
    models = {e["model"]: e for e in summary["results"]}
    assert set(models) == {small, large}
    # both are priced per hour of wall time, each by its own measured concurrency
    assert all(e["pricing"]["basis"] == "hourly" for e in models.values())
    n_up = models[large]["n_items"]
    entry = summary["cascades"][0]
    assert entry["n_escalated"] == n_up and entry["n_items"] == models[small]["n_items"] == 50
    assert entry["total_usd"] == pytest.approx(models[small]["total_usd"]
                                               + models[large]["total_usd"], rel=1e-9)
    # the word-only model is a model of its own, with its setting in the manifest
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["models"][small]["settings"]["features"] == "word"
    assert manifest["models"][large]["settings"]["features"] == "word+char"


def test_sharded_live_cascade_merges_into_the_whole(tmp_path, servers):
    """--shard and --cascade compose: the merged shards give the unsharded cascade's figures."""
    from slmbench.analysis.merge import merge_runs

    _, small_srv, large_srv = servers
    spec = CascadeSpec(f"{SMALL}?api_base={small_srv.base_url}&logprobs=true",
                       f"{LARGE}?api_base={large_srv.base_url}", 0.9)
    whole = run_benchmark([TASK], [], results_dir=tmp_path, run_id="whole",
                          options=RunOptions(pricing=ON, cascade=spec))
    for k in (1, 2):
        run_benchmark([TASK], [], results_dir=tmp_path, run_id=f"s{k}",
                      options=RunOptions(pricing=ON, cascade=spec, shard=(k, 2)))
    merged = merge_runs([tmp_path / "s1", tmp_path / "s2"], tmp_path / "merged")
    a, b = whole.summary["cascades"][0], merged.read_summary()["cascades"][0]
    for key in ("n_items", "n_escalated", "n_correct", "accuracy"):
        assert a[key] == b[key], key
    assert a["total_usd"] == pytest.approx(b["total_usd"], rel=1e-12)


def test_stopped_cascade_is_incomplete_until_a_resume_fills_it_in(tmp_path, servers):
    """Escalated items without a large-model row (a run stopped early) make the cascade
    incomplete: no accuracy or $ is claimed for it, and a resume calls the large model for
    the missing items only."""
    from slmbench.analysis.summary import build_summary
    from slmbench.store import RunDir

    _, small_srv, large_srv = servers
    spec = CascadeSpec(f"{SMALL}?api_base={small_srv.base_url}&logprobs=true",
                       f"{LARGE}?api_base={large_srv.base_url}", 0.9)
    live = run_benchmark([TASK], [], results_dir=tmp_path, run_id="c",
                         options=RunOptions(pricing=ON, cascade=spec, use_cache=False))
    before = live.summary["cascades"][0]
    items = live.run.path / "items.jsonl"
    lines = items.read_text().splitlines()
    large_lines = [ln for ln in lines if json.loads(ln)["model"] == LARGE]
    assert len(large_lines) == before["n_escalated"] >= 2
    # as if the run had stopped before the last two large-model answers
    items.write_text("\n".join(ln for ln in lines if ln not in large_lines[-2:]) + "\n")
    entry = build_summary(RunDir(live.run.path))["cascades"][0]
    assert entry["complete"] is False and entry["n_missing"] == 2
    assert entry["accuracy"] is None and entry["priced"] is False

    calls = len(large_srv.calls)
    again = run_benchmark([TASK], [], results_dir=tmp_path, run_id="c",
                          options=RunOptions(pricing=ON, cascade=spec, use_cache=False))
    assert len(large_srv.calls) == calls + 2
    after = again.summary["cascades"][0]
    assert after["complete"] and after["n_escalated"] == before["n_escalated"]
    assert after["accuracy"] == before["accuracy"]
    assert after["total_usd"] == pytest.approx(before["total_usd"], rel=1e-12)
