"""Before the run (issue 18): ``init`` writes a task from a data file, ``--sample`` draws a
stratified seeded subset, ``estimate`` counts tokens and prices a run without calling an API
model, ``--pilot`` measures a few items, and the stored estimate is set against the actual."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import BUNDLED_TASKS, run_cli

from slmbench.tasks import Item, load_items, load_task
from slmbench.tasks.loading import sample_items

BANKING_MINI = BUNDLED_TASKS / "banking77_mini.yaml"


def _csv(path: Path, rows: list[dict]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def _rows(counts: dict[str, int]) -> list[dict]:
    return [{"utterance": f"message {lab} {i} about {lab}", "intent": lab}
            for lab, n in counts.items() for i in range(n)]


# -- init -------------------------------------------------------------------------------------

def test_init_proposes_columns_splits_and_validates(tmp_path, capsys):
    data = _csv(tmp_path / "intents.csv", _rows({"card": 10, "refund": 10, "atm": 5}))
    out = tmp_path / "task" / "intents.yaml"
    code, stdout, err = run_cli(["init", str(data), "--kind", "classification", "--out",
                                 str(out)], capsys)
    assert code == 0, err
    doc = yaml.safe_load(out.read_text())
    assert doc["labels"] == ["atm", "card", "refund"]
    assert doc["dataset"]["columns"] == {"text": "utterance", "label": "intent"}
    assert "{labels}" in doc["prompt"]["instruction"]
    task = load_items(load_task(out))
    # stratified 80/20: every label in both halves, in its share
    assert Counter(it.gold for it in task.items) == {"card": 2, "refund": 2, "atm": 1}
    assert Counter(it.gold for it in task.train) == {"card": 8, "refund": 8, "atm": 4}
    assert f"slmbench validate {out}" in stdout and f"slmbench run {out}" in stdout
    code, stdout, _ = run_cli(["validate", str(out)], capsys)
    assert code == 0 and stdout.startswith("ok")


def test_init_never_overwrites_a_file_unless_forced(tmp_path, capsys):
    data = _csv(tmp_path / "intents.csv", _rows({"card": 10, "refund": 10, "atm": 5}))
    out = tmp_path / "task" / "intents.yaml"
    args = ["init", str(data), "--kind", "classification", "--out", str(out)]
    assert run_cli(args, capsys)[0] == 0
    out.write_text(out.read_text() + "# my edit\n")
    code, _, err = run_cli(args, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{out}" in err and "would overwrite an existing file" in err
    assert out.read_text().endswith("# my edit\n")  # untouched
    assert run_cli([*args, "--force"], capsys)[0] == 0
    assert "# my edit" not in out.read_text()


def test_init_split_is_seeded(tmp_path):
    from slmbench.tasks.init import init_task

    data = _csv(tmp_path / "d.csv", _rows({"a": 6, "b": 6}))
    one = init_task(data, "classification", out=tmp_path / "x" / "t.yaml", seed=1)
    two = init_task(data, "classification", out=tmp_path / "y" / "t.yaml", seed=1)
    other = init_task(data, "classification", out=tmp_path / "z" / "t.yaml", seed=2)
    ids = [[it.text for it in load_items(load_task(r.task_path)).items]
           for r in (one, two, other)]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize("counts, args, message", [
    ({"only": 5}, [], "only one label (only): a classifier needs at least two"),
    ({"a": 5, "b": 1, "c": 1}, [], "2 label(s) have fewer than 2 items (a stratified split "
                                   "needs 2): b, c"),
    ({"a": 5, "b": 5}, ["--text", "missing"],
     "field '--text', value 'missing': column not found (columns: utterance, intent)"),
])
def test_init_refuses_bad_data_in_one_line(tmp_path, capsys, counts, args, message):
    data = _csv(tmp_path / "d.csv", _rows(counts))
    code, out, err = run_cli(["init", str(data), "--kind", "classification", *args], capsys)
    assert code == 2
    assert err.count("\n") == 1 and message in err, err
    assert not (tmp_path / "d.task.yaml").exists()


def test_init_without_text_column(tmp_path, capsys):
    data = _csv(tmp_path / "n.csv", [{"x": i, "y": i % 2} for i in range(10)])
    code, _, err = run_cli(["init", str(data), "--kind", "classification"], capsys)
    assert code == 2 and "no text column" in err


def test_init_extraction_declares_fields(tmp_path):
    from slmbench.tasks.init import init_task

    rows = [{"text": f"order {i} of {i + 1} mugs", "item": "mug", "qty": i + 1}
            for i in range(8)]
    data = tmp_path / "orders.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    res = init_task(data, "extraction")
    doc = yaml.safe_load(res.task_path.read_text())
    assert doc["fields"] == [{"name": "item", "type": "string"},
                             {"name": "qty", "type": "integer"}]
    assert res.n_train + res.n_test == 8


# -- --sample ---------------------------------------------------------------------------------

def test_sample_is_stratified_seeded_and_in_file_order():
    items = tuple(Item(id=str(i), text=f"t{i}", gold=f"L{i // 20}") for i in range(100))
    picked = sample_items(items, 10, seed=3)
    assert Counter(it.gold for it in picked) == {f"L{k}": 2 for k in range(5)}
    assert [int(it.id) for it in picked] == sorted(int(it.id) for it in picked)
    assert picked == sample_items(items, 10, seed=3)
    assert picked != sample_items(items, 10, seed=4)
    # fewer items than classes: each drawn item is a different class
    assert len({it.gold for it in sample_items(items, 3, seed=0)}) == 3
    assert sample_items(items, 500) == items


def test_run_sample_covers_the_classes_limit_misses(tmp_path, capsys):
    code, _, err = run_cli(["run", str(BANKING_MINI), "-m", "baseline:tfidf-logreg",
                            "--sample", "12", "--results-dir", str(tmp_path), "--run-id", "s",
                            "--quiet"], capsys)
    assert code == 0, err
    rows = [json.loads(line) for line in (tmp_path / "s" / "items.jsonl").open()]
    task = load_items(load_task(BANKING_MINI))
    assert len(rows) == 12
    assert len({r["gold"] for r in rows}) > len({it.gold for it in task.items[:12]})
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    assert manifest["options"]["sample"] == 12


# -- estimate ---------------------------------------------------------------------------------

def test_estimate_counts_openai_tokens_exactly_and_prices_the_range(tmp_path):
    from slmbench.analysis.estimate import render
    from slmbench.models.tokens import count_messages, count_tiktoken
    from slmbench.pricing import default_pricing_dirs, load_pricebook, token_cost
    from slmbench.runner.pilot import estimate_runs
    from slmbench.tasks import build_messages

    model = "openai/gpt-4o-mini"
    (est,), data = estimate_runs([BANKING_MINI], [model], limit=10, price_date="2026-11-22")
    task = load_items(load_task(BANKING_MINI))
    ins = [count_messages(build_messages(task.spec, it.text)) for it in task.items[:10]]
    assert est.items == 10 and est.method == "tiktoken o200k_base"
    assert est.tokens_in == est.tokens_in_low == est.tokens_in_high == sum(ins)
    assert est.out_low == min(count_tiktoken(json.dumps({"answer": lab}))
                              for lab in task.spec.labels)
    assert est.out_expected == pytest.approx(sum(
        count_tiktoken(json.dumps({"answer": it.gold})) for it in task.items[:10]) / 10)
    assert est.out_high == 32
    import datetime as dt

    price = load_pricebook(default_pricing_dirs()).lookup(model, dt.date(2026, 11, 22))
    assert est.usd_low == pytest.approx(sum(token_cost(price, t, est.out_low) for t in ins))
    assert est.usd_high == pytest.approx(sum(token_cost(price, t, 32) for t in ins))
    # a fractional expected output is priced as what it is, not rounded to whole tokens
    assert est.usd_expected == pytest.approx(sum(
        token_cost(price, t, 0) + est.out_expected * price.output / 1e6 for t in ins))
    assert est.usd_low < est.usd_expected < est.usd_high
    assert data["pairs"][0]["usd_expected"] == est.usd_expected
    assert "tiktoken o200k_base" in render([est])


def test_estimate_of_own_server_widens_input_range(tmp_path):
    from slmbench.runner.pilot import estimate_runs

    (est,), _ = estimate_runs([BANKING_MINI], [
        "openai/gpt-4o-mini?api_base=http://127.0.0.1:9/v1&structured=off"], limit=5)
    assert "api_base" in est.method
    assert est.tokens_in_low < est.tokens_in < est.tokens_in_high
    assert est.usd_low < est.usd_expected < est.usd_high


def test_estimate_gguf_tokens_match_what_the_model_reports():
    from slmbench.models import resolve_model
    from slmbench.runner.items import ItemScorer
    from slmbench.runner.pilot import estimate_runs

    (est,), _ = estimate_runs([BANKING_MINI], ["llamacpp:smollm2"], limit=2, warmup=False)
    assert est.method == "gguf tokenizer" and est.basis == "hourly"
    task = load_items(load_task(BANKING_MINI))
    model = resolve_model("llamacpp:smollm2")
    scorer = ItemScorer(task)
    try:
        reported = sum(model.complete(scorer.request(it)).tokens_in for it in task.items[:2])
    finally:
        model.close()
    assert est.tokens_in == reported
    assert est.usd_expected is None  # no warm-up: no time, no $


def test_estimate_stored_with_the_run_and_set_against_actual(tmp_path, capsys):
    from slmbench.analysis.estimate import estimate_vs_actual

    args = [str(BANKING_MINI), "-m", "baseline:tfidf-logreg", "--results-dir", str(tmp_path),
            "--run-id", "r1"]
    code, out, err = run_cli(["estimate", *args], capsys)
    assert code == 0, err
    assert "baseline:tfidf-logreg" in out and "time from a warm-up" in out
    stored = json.loads((tmp_path / "r1" / "estimate.json").read_text())
    assert stored["pairs"][0]["items"] == 50 and stored["price_date"]
    code, _, err = run_cli(["run", *args, "--quiet"], capsys)
    assert code == 0, err
    assert (tmp_path / "r1" / "estimate.json").exists()  # the run keeps it
    (row,) = estimate_vs_actual(tmp_path / "r1")
    summary = json.loads((tmp_path / "r1" / "summary.json").read_text())
    actual = summary["results"][0]["total_usd"]
    assert row["usd_actual"] == actual
    assert row["actual_over_expected"] == pytest.approx(actual / row["usd_expected"])
    assert row["within_range"] == (row["usd_low"] <= actual <= row["usd_high"])


def test_dry_run_calls_no_model_and_writes_no_run(tmp_path, capsys):
    code, out, err = run_cli(["run", str(BANKING_MINI), "-m",
                              "openai/gpt-4o-mini?api_base=http://127.0.0.1:9/v1",
                              "--dry-run", "--results-dir", str(tmp_path), "--limit", "3"],
                             capsys)
    assert code == 0, err  # port 9 answers nothing: a call would have failed
    assert "| banking77-mini | openai/gpt-4o-mini | 3 |" in out
    assert not any(tmp_path.iterdir())


def test_pilot_measures_tokens_with_an_interval(tmp_path):
    from slmbench.runner.pilot import estimate_runs

    (est,), _ = estimate_runs([BANKING_MINI], ["llamacpp:smollm2"], pilot=4, limit=20)
    assert est.basis == "pilot" and est.items == 20
    assert est.tokens_in_low <= est.tokens_in <= est.tokens_in_high
    assert est.usd_low <= est.usd_expected <= est.usd_high
    assert est.wall_low_s <= est.wall_s <= est.wall_high_s
    with pytest.raises(Exception, match="at least 2"):
        estimate_runs([BANKING_MINI], ["llamacpp:smollm2"], pilot=1)


def test_estimate_and_pilot_count_the_variant_the_run_sends(tmp_path):
    """?k=4 sends four retrieved examples per item: the estimate counts them (it once priced
    the task's bare prompt for every variant), exactly as many tokens as the run reports."""
    from slmbench.runner.pilot import estimate_runs
    from slmbench.runner.run import RunOptions, run_benchmark

    (plain, shots), _ = estimate_runs([BANKING_MINI], ["llamacpp:smollm2",
                                                       "llamacpp:smollm2?k=4"],
                                      limit=3, warmup=False)
    assert shots.model == "llamacpp:smollm2?k=4"
    result = run_benchmark([BANKING_MINI], ["llamacpp:smollm2?k=4&n_threads=2"],
                           results_dir=tmp_path, run_id="k4",
                           options=RunOptions(limit=3, use_cache=False))
    rows = result.run.rows()
    assert len(rows) == 3 and all(len(r["shots"]) == 4 for r in rows)
    assert shots.tokens_in == sum(r["tokens_in"] for r in rows)
    assert shots.tokens_in > plain.tokens_in + 3 * 4 * 5  # four examples of 5+ tokens each
    (api_plain, api_shots), _ = estimate_runs([BANKING_MINI], [
        "openai/gpt-4o-mini", "openai/gpt-4o-mini?k=4"], limit=3)
    assert api_shots.tokens_in > api_plain.tokens_in and api_shots.usd_high > api_plain.usd_high
    (pilot,), _ = estimate_runs([BANKING_MINI], ["llamacpp:smollm2?k=4"], pilot=3, limit=3)
    assert pilot.tokens_in == shots.tokens_in  # the pilot sends the variant too
