"""End to end on the real bundled SmolLM2 GGUF through llama-cpp-python (CPU)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS

from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.store import open_run


def _macro_f1_by_hand(gold: list[str], pred: list[str]) -> float:
    labels = sorted(set(gold) | {p for p in pred if p in set(gold) | set(pred)})
    f1s = []
    for lab in labels:
        tp = sum(g == p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(p == lab and g != lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


@pytest.fixture(scope="module")
def cls_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("results")
    result = run_benchmark([BUNDLED_TASKS / "banking77_mini.yaml"],
                           ["llamacpp:smollm2", "baseline:tfidf-logreg"],
                           results_dir=out, run_id="r1", options=RunOptions(limit=12))
    return result.run.path


def test_rows_are_complete_and_consistent(cls_run):
    run = open_run(cls_run)
    rows = [r for r in run.rows() if r["model"] == "llamacpp:smollm2"]
    labels = set(run.read_manifest()["tasks"]["banking77-mini"]["labels"])
    assert len(rows) == 12 and len({r["item_id"] for r in rows}) == 12
    for r in rows:
        assert r["error"] is None
        assert r["answer"] in labels  # constrained decoding can only produce a label
        assert r["invalid"] is False
        assert r["correct"] == (r["answer"] == r["gold"])
        assert r["token_source"] == "gguf" and r["tokens_in"] > 50 and r["tokens_out"] >= 1
        assert 0.0 < r["confidence"] <= 1.0 and r["confidence_source"] == "label-logprob"
        assert r["latency_s"] > 0


def test_fixed_prefix_is_not_re_evaluated(cls_run):
    rows = [json.loads(line) for line in (cls_run / "items.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["model"] == "llamacpp:smollm2"]
    first, rest = rows[0], rows[1:]
    assert first["extra"]["prompt_tokens_evaluated"] == first["tokens_in"]
    # later items evaluate only their own tail: the instruction (label list) is cached
    assert all(r["extra"]["prompt_tokens_evaluated"] < r["tokens_in"] / 2 for r in rest)


def test_summary_matches_independent_computation(cls_run):
    run = open_run(cls_run)
    summary = json.loads((cls_run / "summary.json").read_text())
    for entry in summary["results"]:
        rows = [r for r in run.rows() if r["model"] == entry["model"]]
        gold = [r["gold"] for r in rows]
        pred = [r["answer"] for r in rows]
        assert entry["n_items"] == 12
        n_right = sum(g == p for g, p in zip(gold, pred, strict=True))
        assert entry["accuracy"] == pytest.approx(n_right / 12)
        assert entry["macro_f1"] == pytest.approx(_macro_f1_by_hand(gold, pred))
        lo, hi = entry["accuracy_ci"]
        assert lo <= entry["accuracy"] <= hi
        assert entry["tokens_in"] == sum(r["tokens_in"] or 0 for r in rows)


def test_baseline_beats_the_pipe_cleaner(cls_run):
    summary = json.loads((cls_run / "summary.json").read_text())
    acc = {e["model"]: e["accuracy"] for e in summary["results"]}
    assert acc["baseline:tfidf-logreg"] >= 0.9
    assert acc["baseline:tfidf-logreg"] > acc["llamacpp:smollm2"]


def test_greedy_runs_are_reproducible(cls_run, tmp_path):
    again = run_benchmark([BUNDLED_TASKS / "banking77_mini.yaml"], ["llamacpp:smollm2"],
                          results_dir=tmp_path, run_id="r2", options=RunOptions(limit=6))
    first = {r["item_id"]: (r["answer"], r["confidence"]) for r in open_run(cls_run).rows()
             if r["model"] == "llamacpp:smollm2"}
    for r in again.run.rows():
        assert (r["answer"], pytest.approx(r["confidence"], rel=1e-4)) == first[r["item_id"]]


def test_free_decoding_and_json_grammar(tmp_path):
    result = run_benchmark(
        [BUNDLED_TASKS / "support_routing.yaml", BUNDLED_TASKS / "order_extraction.yaml"],
        ["llamacpp:smollm2?decoding=free"], results_dir=tmp_path, run_id="free",
        options=RunOptions(limit=4))
    rows = result.run.rows()
    routing = [r for r in rows if r["task"] == "support-routing"]
    assert len(routing) == 4
    for r in routing:
        assert r["confidence"] is None  # free generation gives no label probability
        assert r["routed"] == (r["answer"] if r["answer"] is not None else "human_agent")
        # no answer: invalid, or truncated when the output budget ran out (issue 15)
        assert (r["invalid"] or r["truncated"]) == (r["answer"] is None)
        assert not (r["invalid"] and r["truncated"])
        assert r["truncated"] == (r["answer"] is None and r["finish_reason"] == "length")
    extraction = [r for r in rows if r["task"] == "order-extraction"]
    assert len(extraction) == 4
    by_task = {e["task"]: e for e in result.summary["results"]}
    assert by_task["order-extraction"]["n_items"] == 4
    assert "fallback_rate" in by_task["support-routing"]


def test_json_grammar_gives_valid_json(tmp_path):
    result = run_benchmark([BUNDLED_TASKS / "order_extraction.yaml"], ["llamacpp:smollm2"],
                           results_dir=tmp_path, run_id="ex", options=RunOptions(limit=3))
    entry = result.summary["results"][0]
    assert entry["json_valid_rate"] == 1.0
    for r in result.run.rows():
        assert set(r["answer"]) == {"order_id", "product", "quantity", "city", "delivery_date"}


def test_two_instances_answer_in_parallel_with_the_same_answers(cls_run, tmp_path):
    """instances=2: two contexts over the same weights, two items at once, and every answer
    and confidence equal to the one-context run's."""
    one = {r["item_id"]: r for r in open_run(cls_run).rows() if r["model"] == "llamacpp:smollm2"}
    result = run_benchmark([BUNDLED_TASKS / "banking77_mini.yaml"],
                           ["llamacpp:smollm2?instances=2"], results_dir=tmp_path,
                           options=RunOptions(limit=12, use_cache=False))
    two = {r["item_id"]: r for r in result.run.rows()}
    assert two.keys() == one.keys()
    for item_id, row in two.items():
        assert (row["answer"], row["tokens_in"], row["tokens_out"]) == \
            (one[item_id]["answer"], one[item_id]["tokens_in"], one[item_id]["tokens_out"])
        assert row["confidence"] == pytest.approx(one[item_id]["confidence"], abs=1e-6)
    timing = result.run.read_manifest()["timings"][0]
    assert timing["workers"] == 2
    assert timing["latency_sum_s"] > timing["wall_s"]  # calls overlapped in time


def test_instances_is_checked(tmp_path):
    from slmbench.errors import InputError
    from slmbench.models import resolve_model
    from slmbench.runner.ray_executor import check_executor

    for bad in ("0", "two", "1.5"):
        with pytest.raises(InputError, match="instances"):
            resolve_model(f"llamacpp:smollm2?instances={bad}")
    with pytest.raises(InputError, match="--workers instead"):
        check_executor(RunOptions(executor="ray"), [resolve_model("llamacpp:smollm2?instances=2")])
    # a speed setting: the cached answers of a one-context run serve a two-context run
    from slmbench.models.base import Request
    from slmbench.runner.cache import cache_key

    request = Request(messages=[{"role": "user", "content": "x"}], text="x", choices=("a", "b"))
    assert cache_key(resolve_model("llamacpp:smollm2?instances=2"), request) == \
        cache_key(resolve_model("llamacpp:smollm2"), request)


def test_json_grammar_bounds_each_string_field_by_the_train_split(tmp_path):
    """A grammar with unbounded strings lets a small model write one string until the output
    budget runs out; each string field is bounded at twice its longest train value."""
    from conftest import write_jsonl, write_task

    from slmbench.runner.items import ItemScorer
    from slmbench.tasks import load_items, load_task

    train = [{"id": f"t{i}", "text": f"note {i}", "fields": {"who": w, "tags": t}}
             for i, (w, t) in enumerate([("Ann", ["a"]), ("Bartholomew", ["urgent", "vip"]),
                                         ("Cy", None)])]
    test = [{"id": f"x{i}", "text": f"Call {name} about the invoice, tag it urgent.",
             "fields": {"who": name, "tags": ["urgent"]}}
            for i, name in enumerate(["Ann", "Bo", "Cy", "Dee"])]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    path = write_task(tmp_path, {
        "name": "bounded", "kind": "extraction",
        "dataset": {"files": {"test": "test.jsonl", "train": "train.jsonl"},
                    "train_split": "train"},
        "fields": [{"name": "who", "type": "string"}, {"name": "tags", "type": "list"}]})
    schema = ItemScorer(load_items(load_task(path))).schema
    who = schema["properties"]["who"]["anyOf"][0]
    tags = schema["properties"]["tags"]["anyOf"][0]["items"]
    assert who == {"type": "string", "maxLength": 2 * len("Bartholomew")}
    assert tags == {"type": "string", "maxLength": 16}  # 2 x "urgent" is below the floor
    result = run_benchmark([path], ["llamacpp:smollm2"], results_dir=tmp_path, run_id="b",
                           options=RunOptions())
    for row in result.run.rows():
        answer = row["answer"] or {}
        assert len(answer.get("who") or "") <= 22, row
        assert all(len(t) <= 16 for t in answer.get("tags") or []), row
