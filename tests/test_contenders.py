"""Contenders: retrieved few-shot examples, prompt variants, embed-logreg and calibration.

Real components throughout: litellm over loopback HTTP to the fake OpenAI server (which
records every request it got), llama.cpp embeddings of the bundled SmolLM2, scikit-learn.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, write_jsonl, write_task
from fakeserver import FakeOpenAIServer

from slmbench.errors import InputError
from slmbench.models import resolve_model
from slmbench.runner.cache import cache_key
from slmbench.runner.items import ItemScorer
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.tasks import load_items, load_task
from slmbench.tasks.fewshot import PromptPlan, SimilarSelector
from slmbench.tasks.loading import Item

BANKING = BUNDLED_TASKS / "banking77_mini.yaml"


def _variant_task(folder: Path, few_shot: dict | None = None) -> Path:
    """The bundled Banking77 subset with two prompt variants and described labels."""
    spec = load_task(BANKING).raw
    data = {**spec, "dataset": {**spec["dataset"], "files": {
        split: str((BANKING.parent / rel).resolve())
        for split, rel in spec["dataset"]["files"].items()}}}
    labels = load_items(load_task(BANKING)).spec.labels
    data["labels"] = [{"name": lab, "description": f"about {lab.replace('_', ' ')}"}
                      if i % 2 == 0 else lab for i, lab in enumerate(labels)]
    data["prompts"] = {
        "terse": "Intent of the message? One of:\n{labels}",
        "described": {"instruction": "Pick the intent:\n{label_descriptions}\nName only.",
                      "template": "Message: {text}"},
    }
    if few_shot is not None:
        data["few_shot"] = few_shot
    return write_task(folder, data, "variants.yaml")


def _entries(summary: dict, task: str) -> dict[str, dict]:
    return {e["model"]: e for e in summary["results"] if e["task"] == task}


def _gold_by_item_text(task_path: Path):
    task = load_items(load_task(task_path))
    gold = {it.text: it.gold for it in task.items}

    def answer(body: dict) -> str:
        last = body["messages"][-1]["content"]
        return next(g for text, g in gold.items() if last.endswith(text))

    return task, answer


# -- retrieval -------------------------------------------------------------------------------
def test_similar_picks_the_true_nearest_items_nearest_last():
    train = [Item("a", "apple banana", "fruit"), Item("b", "dog cat", "pet"),
             Item("c", "apple cherry", "fruit"), Item("d", "car truck", "car"),
             Item("e", "dog mouse", "pet"), Item("f", "banana bread recipe", "food")]
    selector = SimilarSelector(train, seed=0)
    # shares "apple", "banana" and the bigram "apple banana" with a; "apple" with c;
    # "banana" with f; nothing with b, d, e
    picked = [train[i].id for i in selector.pick("apple banana smoothie", 3)]
    assert picked[-1] == "a"  # the nearest sits next to the item
    assert set(picked) == {"a", "c", "f"}
    scores = selector.scores("apple banana smoothie")
    by_score = sorted(range(len(train)), key=lambda i: -scores[i])[:3]
    assert [train[i].id for i in by_score[::-1]] == picked
    assert [train[i].id for i in selector.pick("dog cat", 1)] == ["b"]
    # an item scored on its own split never gets itself as an example
    assert "b" not in [train[i].id for i in selector.pick("dog cat", 2, exclude="b")]


def test_random_and_stratified_blocks_are_seeded_and_shared():
    train = tuple(Item(f"t{i}", f"text {i}", lab) for i, lab in
                  enumerate(["x"] * 6 + ["y"] * 3 + ["z"] * 1))
    from slmbench.tasks.fewshot import RandomSelector, StratifiedSelector

    one = RandomSelector(train, seed=3).pick("anything", 4)
    assert one == RandomSelector(train, seed=3).pick("something else", 4)  # one block per task
    assert len(set(one)) == 4
    strat = [train[i].gold for i in StratifiedSelector(train, seed=0).pick("q", 4)]
    assert sorted(strat[:3]) == ["x", "y", "z"] and len(strat) == 4  # every label first


# -- requests and rows ------------------------------------------------------------------------
def test_stored_example_ids_reproduce_the_prompt_exactly(tmp_path):
    path = _variant_task(tmp_path, {"from": "train", "k": 4, "select": "similar"})
    task, answer = _gold_by_item_text(path)
    with FakeOpenAIServer(answer) as server:
        result = run_benchmark([path], [f"openai/fake?api_base={server.base_url}"],
                               results_dir=tmp_path, run_id="shots",
                               options=RunOptions(limit=12, use_cache=False))
        sent = {call["messages"][-1]["content"]: call["messages"] for call in server.calls}
    rows = result.run.rows()
    assert len(rows) == 12 and all(r["correct"] for r in rows)
    plan = PromptPlan(task)
    system = None
    for row in rows:
        assert len(row["shots"]) == 4
        messages = plan.messages_for(row["input"], row["shots"])
        assert sent[messages[-1]["content"]] == messages  # byte for byte what was sent
        # instruction first and the same for every item, then 4 example turns, then the item
        assert len(messages) == 1 + 2 * 4 + 1
        system = system or messages[0]
        assert messages[0] == system
        train = {it.id: it for it in task.train}
        assert [m["content"] for m in messages[2:-1:2]] == [train[i].gold for i in row["shots"]]
    # the retrieved examples are the nearest train items by TF-IDF cosine
    row = rows[0]
    selector = SimilarSelector(task.train, 0)
    assert row["shots"] == [task.train[i].id for i in selector.pick(row["input"], 4)]


def test_k_zero_is_the_task_prompt_as_before(tmp_path):
    path = _variant_task(tmp_path, {"from": "train", "k": 4})
    task = load_items(load_task(path))
    scorer = ItemScorer(task)
    model = resolve_model("openai/fake?api_base=http://127.0.0.1:9/v1&k=0")
    assert model.name == "openai/fake?k=0"
    from slmbench.tasks import build_messages

    item = task.items[0]
    assert scorer.request(item, model).messages == build_messages(task.spec, item.text)
    assert "shots" not in scorer.row(model, item, None, "x", 1)
    # a trained classifier gets no examples whatever the task says
    baseline = resolve_model("baseline:tfidf-logreg")
    assert "shots" not in scorer.row(baseline, item, None, "x", 1)


def test_variants_get_distinct_names_cache_keys_and_rows(tmp_path):
    path = _variant_task(tmp_path)
    task, answer = _gold_by_item_text(path)
    base = "openai/fake?api_base={}"
    ids = ["", "&prompt=terse", "&prompt=described", "&k=2", "&k=0", "&prompt=described&k=2",
           "&k=2&select=random"]
    with FakeOpenAIServer(answer) as server:
        models = [base.format(server.base_url) + s for s in ids]
        resolved = [resolve_model(m) for m in models]
        names = [m.name for m in resolved]
        assert names == ["openai/fake", "openai/fake?prompt=terse", "openai/fake?prompt=described",
                         "openai/fake?k=2", "openai/fake?k=0",
                         "openai/fake?prompt=described&k=2", "openai/fake?k=2&select=random"]
        scorer = ItemScorer(task)
        keys = {cache_key(m, scorer.request(task.items[0], m)) for m in resolved}
        assert len(keys) == len(models)
        described = scorer.request(task.items[0], resolved[2]).messages
        assert "- " + task.spec.labels[0] + ": about " in described[0]["content"]
        assert described[-1]["content"].startswith("Message: ")
        first = run_benchmark([path], models, results_dir=tmp_path, run_id="a",
                              options=RunOptions(limit=5))
        calls = len(server.calls)
        assert calls == 5 * len(models)
        # a second run is answered from the response cache, each variant from its own entry
        second = run_benchmark([path], models, results_dir=tmp_path, run_id="b",
                               options=RunOptions(limit=5))
        assert len(server.calls) == calls
        # and a resume of the first calls nothing either
        run_benchmark([path], models, results_dir=tmp_path, run_id="a",
                      options=RunOptions(limit=5))
        assert len(server.calls) == calls
    rows = second.run.rows()
    assert all(r["cached"] for r in rows)
    by_model = {(r["model"], r["item_id"]): r for r in first.run.rows()}
    for r in rows:
        assert r["output"] == by_model[(r["model"], r["item_id"])]["output"]
    assert sorted(_entries(first.summary, task.spec.name)) == sorted(names)


def test_bad_prompt_settings_are_one_line_before_any_call(tmp_path, cls_task):
    path = _variant_task(tmp_path)
    with pytest.raises(InputError, match="has no prompt 'nope'") as exc:
        run_benchmark([path], ["openai/fake?api_base=http://127.0.0.1:9/v1&prompt=nope"],
                      results_dir=tmp_path, run_id="bad")
    assert exc.value.value == "nope"
    with pytest.raises(InputError, match="takes no prompt"):
        resolve_model("baseline:tfidf-logreg?k=2")
    with pytest.raises(InputError, match="k must be a whole number"):
        resolve_model("llamacpp:smollm2?k=-1")
    with pytest.raises(InputError, match="select must be one of"):
        resolve_model("llamacpp:smollm2?k=2&select=nearest")
    no_train = write_task(tmp_path, {
        "name": "t", "kind": "classification", "labels": ["a", "b"],
        "dataset": {"path": str(write_jsonl(tmp_path / "x.jsonl", [
            {"id": 1, "text": "x", "label": "a"}]))},
        "few_shot": {"from": "train", "k": 2}}, "nt.yaml")
    with pytest.raises(InputError, match="need dataset.train_split") as exc:
        load_task(no_train)
    assert exc.value.field == "few_shot"
    bad_variant = _variant_task(tmp_path)
    data = load_task(bad_variant).raw | {"prompts": {"x": {"template": "no text here"}}}
    with pytest.raises(InputError, match="must contain the {text}") as exc:
        load_task(write_task(tmp_path, data, "bv.yaml"))
    assert exc.value.field == "prompts.x.template"


# -- embed-logreg and calibration -------------------------------------------------------------
def test_embed_logreg_reuses_its_train_embedding_cache(tmp_path, monkeypatch, cls_task):
    monkeypatch.setenv("SLMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    task = load_items(load_task(cls_task))
    n_train = len({it.text for it in task.train})
    first = resolve_model("baseline:embed-logreg?n_threads=1")
    first.prepare(task)
    assert (first.train_computed, first.train_cached) == (n_train, 0)
    answers = [first.complete(ItemScorer(task).request(it)) for it in task.items]
    first.close()
    second = resolve_model("baseline:embed-logreg?n_threads=1")
    second.prepare(task)
    assert (second.train_computed, second.train_cached) == (0, n_train)
    again = [second.complete(ItemScorer(task).request(it)) for it in task.items]
    second.close()
    assert [a.text for a in answers] == [a.text for a in again]
    assert all(0 < a.confidence <= 1 and a.confidence_source == "classifier-proba"
               for a in again)
    # another pooling is another cache
    last = resolve_model("baseline:embed-logreg?pooling=last&n_threads=1")
    assert last.name == "baseline:embed-logreg?pooling=last"
    last.prepare(task)
    assert last.train_computed == n_train
    last.close()


def test_embed_logreg_runs_and_is_priced_per_hour(tmp_path, monkeypatch, cls_task):
    monkeypatch.setenv("SLMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    result = run_benchmark([cls_task], ["baseline:embed-logreg?n_threads=2"],
                           results_dir=tmp_path, run_id="emb")
    entry = _entries(result.summary, "tiny-cls")["baseline:embed-logreg"]
    assert entry["n"] == 3 and entry["pricing"]["basis"] == "hourly"
    assert entry["total_usd"] > 0
    rows = result.run.rows()
    assert all(r["confidence_source"] == "classifier-proba" and 0 < r["confidence"] <= 1
               for r in rows)
    assert not any("shots" in r for r in rows)
    # priced like the TF-IDF baseline: busy time per item, the train split's embedding as setup
    assert all(r["cpu_s"] is not None and r["cpu_s"] >= 0 for r in rows)
    timing = next(t for t in result.run.read_manifest()["timings"]
                  if t["model"] == "baseline:embed-logreg")
    assert timing["setup_s"] > 0 and timing["setup_cpu_s"] > 0


def test_calibration_changes_confidences_and_reports_ece(tmp_path):
    models = ["baseline:tfidf-logreg", "baseline:tfidf-logreg?calibrate=isotonic",
              "baseline:tfidf-logreg?calibrate=sigmoid"]
    result = run_benchmark([BANKING], models, results_dir=tmp_path, run_id="cal")
    entries = _entries(result.summary, "banking77-mini")
    assert sorted(entries) == sorted(models)
    conf = {m: [r["confidence"] for r in result.run.rows() if r["model"] == m] for m in models}
    assert conf[models[0]] != conf[models[1]] != conf[models[2]]
    for m in models:
        assert entries[m]["ece"] is not None and 0 <= entries[m]["ece"] <= 1
        assert not any(math.isnan(c) for c in conf[m])
    with pytest.raises(InputError, match="calibrate must be one of"):
        resolve_model("baseline:tfidf-logreg?calibrate=platt")


def test_calibration_needs_two_train_items_per_label(tmp_path, cls_task):
    rows = [{"id": "g", "text": "hello", "label": "greeting"},
            {"id": "f1", "text": "bye", "label": "farewell"},
            {"id": "f2", "text": "see you", "label": "farewell"}]
    write_jsonl(cls_task.parent / "train.jsonl", rows)
    task = load_items(load_task(cls_task))
    model = resolve_model("baseline:tfidf-logreg?calibrate=sigmoid")
    with pytest.raises(InputError, match="at least 2 train items of every label") as exc:
        model.prepare(task)
    assert exc.value.value == "greeting"
