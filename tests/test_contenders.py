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
    row = scorer.row(model, item, None, "x", 1)
    scorer.name_shots(model, item, row)
    assert "shots" not in row
    # the task's own k=4 does name them; a trained classifier gets none whatever the task says
    task_k = resolve_model("openai/fake?api_base=http://127.0.0.1:9/v1")
    scorer.name_shots(task_k, item, row)
    assert len(row.pop("shots")) == 4
    baseline = resolve_model("baseline:tfidf-logreg")
    scorer.name_shots(baseline, item, row)
    assert "shots" not in row


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
    # the reports show each calibrated variant's ECE beside the plain model's (before/after)
    from slmbench.reports.calibration import table_rows, uncalibrated_name
    from slmbench.reports.html import render_html
    from slmbench.reports.leaderboard import render_markdown

    assert uncalibrated_name("baseline:x?C=5&calibrate=isotonic") == "baseline:x?C=5"
    assert uncalibrated_name("baseline:x?C=5") is None
    rows = {r[1]: r for r in table_rows([result.summary])}
    plain = f"{entries[models[0]]['ece']:.3f}"
    assert rows[models[0]][4:6] == [plain, "–"]
    for m in models[1:]:
        assert rows[m][4:6] == [f"{entries[m]['ece']:.3f}", plain]
        assert rows[m][3] == f"{entries[m]['n_confidence']:,} of {entries[m]['n']:,}"
    md = render_markdown(result.summary)
    assert "## Confidence calibration" in md
    assert f"| {models[1]} | classifier-proba |" in md
    assert "<h2>Confidence calibration</h2>" in render_html([result.summary])
    with pytest.raises(InputError, match="calibrate must be one of"):
        resolve_model("baseline:tfidf-logreg?calibrate=platt")


def test_temperature_scaling_keeps_every_answer_and_fits_the_train_folds(tmp_path):
    """calibrate=temperature rescales the logits by one number: the answers (and so accuracy
    and cost) are the plain model's, only the confidences move; T minimises the train split's
    cross-validated log-loss."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    from slmbench.tasks.kinds.calibration import temperature_scaled

    models = ["baseline:tfidf-logreg", "baseline:tfidf-logreg?calibrate=temperature"]
    result = run_benchmark([BANKING], models, results_dir=tmp_path, run_id="temp")
    rows = {m: {r["item_id"]: r for r in result.run.rows() if r["model"] == m} for m in models}
    plain, scaled = rows[models[0]], rows[models[1]]
    assert len(plain) == len(scaled) == 50
    assert all(scaled[i]["answer"] == plain[i]["answer"] for i in plain)
    assert any(abs(scaled[i]["confidence"] - plain[i]["confidence"]) > 1e-3 for i in plain)
    entries = _entries(result.summary, "banking77-mini")
    assert entries[models[1]]["accuracy"] == entries[models[0]]["accuracy"]
    # on a toy problem: T is where the cross-validated log-loss is lowest
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(c, 1.0, size=(40, 2)) for c in ((0, 0), (1.5, 0), (0, 1.5))])
    y = np.repeat(["a", "b", "c"], 40)
    model = temperature_scaled(LogisticRegression(C=100.0), 4).fit(x, y)
    logits = cross_val_predict(LogisticRegression(C=100.0), x, y, method="decision_function",
                               cv=StratifiedKFold(4, shuffle=True, random_state=0))
    gold = np.searchsorted(model.classes_, y)

    def nll(t: float) -> float:
        z = logits / t
        z = z - z.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return float(-np.log(p[np.arange(len(y)), gold]).mean())

    t = model.temperature_
    assert t != pytest.approx(1.0, abs=0.05)
    assert nll(t) <= min(nll(t * 0.9), nll(t * 1.1), nll(1.0))
    proba = model.predict_proba(x)
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (model.predict(x) == model.clf_.predict(x)).all()


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


# -- retrieval by embeddings ------------------------------------------------------------------
def _llama_unit_vectors(texts: list[str]):
    """SmolLM2 mean-pooled embeddings straight from llama-cpp-python, unit length: the
    reference the retrieval is checked against (no slmbench code in between)."""
    import numpy as np
    from llama_cpp import Llama

    from slmbench.models.llamacpp import embedded_model_path

    llm = Llama(model_path=str(embedded_model_path("smollm2")), embedding=True,
                pooling_type=1, n_ctx=512, n_batch=512, n_ubatch=512, n_threads=2,
                verbose=False)
    try:
        vectors = np.asarray(llm.embed(texts, truncate=True), dtype=np.float64)
    finally:
        llm.close()
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_similar_by_embed_picks_the_true_nearest_by_embedding_cosine(tmp_path, monkeypatch):
    import numpy as np

    from slmbench.models.baselines.embed_logreg import EmbeddingVectors

    monkeypatch.setenv("SLMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    texts = ["my card was declined at the shop", "how do I reset my password",
             "the payment did not go through", "I want to close my account",
             "where is my new card", "exchange rate for euros", "cancel my subscription",
             "my transfer is still pending"]
    train = [Item(f"t{i}", t, f"l{i % 3}") for i, t in enumerate(texts)]
    queries = ["why was my card refused", "transfer not arrived yet", "shut down my account"]
    selector = SimilarSelector(train, 0, EmbeddingVectors.for_retrieval("smollm2"))
    reference = _llama_unit_vectors(texts + queries)
    for j, query in enumerate(queries):
        cosine = reference[:len(texts)] @ reference[len(texts) + j]
        truth = [int(i) for i in np.argsort(-cosine, kind="stable")[:3]][::-1]
        assert selector.pick(query, 3) == truth
        assert np.allclose(selector.scores(query), cosine, atol=1e-4)
    # embeddings are not TF-IDF: on these paraphrases the two disagree somewhere
    tfidf = SimilarSelector(train, 0)
    assert any(tfidf.pick(q, 3) != selector.pick(q, 3) for q in queries)
    # train and query texts went through the embedding cache: a second selector embeds none
    again = EmbeddingVectors.for_retrieval("smollm2")
    SimilarSelector(train, 0, again).prefetch(queries)
    assert again.owner.train_computed == 0 and again.owner._embedder is None


def test_by_embed_is_its_own_variant_with_stored_shots_and_priced_retrieval(tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    path = _variant_task(tmp_path, {"from": "train", "k": 3})
    task, answer = _gold_by_item_text(path)
    with FakeOpenAIServer(answer) as server:
        base = f"openai/fake?api_base={server.base_url}"
        tfidf, embed = resolve_model(base), resolve_model(base + "&by=embed")
        assert embed.name == "openai/fake?by=embed"
        scorer = ItemScorer(task)
        assert cache_key(tfidf, scorer.request(task.items[0], tfidf)) != \
            cache_key(embed, scorer.request(task.items[0], embed))
        result = run_benchmark([path], [base, base + "&by=embed"], results_dir=tmp_path,
                               run_id="emb", options=RunOptions(limit=6, use_cache=False))
        assert len(server.calls) == 12
        sent = [call["messages"] for call in server.calls]
    rows = [r for r in result.run.rows() if r["model"] == "openai/fake?by=embed"]
    assert len(rows) == 6 and all(len(r["shots"]) == 3 for r in rows)
    # the stored ids are the embedding-nearest train items, and reproduce the prompt
    from slmbench.models.baselines.embed_logreg import EmbeddingVectors

    selector = SimilarSelector(task.train, 0, EmbeddingVectors.for_retrieval("smollm2"))
    plan = PromptPlan(task)
    for row in rows:
        assert row["shots"] == [task.train[i].id for i in selector.pick(row["input"], 3)]
        assert plan.messages_for(row["input"], row["shots"]) in sent  # byte for byte
    tfidf_rows = {r["item_id"]: r["shots"] for r in result.run.rows()
                  if r["model"] == "openai/fake"}
    assert any(tfidf_rows[r["item_id"]] != r["shots"] for r in rows)
    # choosing the examples (embedding train split and items) is stored and priced as setup
    timing = next(t for t in result.run.read_manifest()["timings"]
                  if t["model"] == "openai/fake?by=embed")
    assert timing["retrieval_s"] > 0 and timing["setup_s"] >= timing["retrieval_s"]


def test_by_embed_settings_are_checked_before_any_call(tmp_path, monkeypatch):
    monkeypatch.setenv("SLMBENCH_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(InputError, match="by must be one of"):
        resolve_model("llamacpp:smollm2?k=2&by=bm25")
    spec = load_task(_variant_task(tmp_path)).raw
    cases = [({"from": "train", "k": 2, "select": "random", "by": "embed"}, "few_shot.by"),
             ({"from": "train", "k": 2, "embed_model": "x.gguf"}, "few_shot.embed_model"),
             ({"from": "train", "k": 2, "by": "cosine"}, "few_shot.by")]
    for i, (few_shot, field) in enumerate(cases):
        with pytest.raises(InputError) as exc:
            load_task(write_task(tmp_path, spec | {"few_shot": few_shot}, f"b{i}.yaml"))
        assert exc.value.field == field
    # a missing GGUF (relative to the task file) and by= without examples: 0 calls
    missing = write_task(tmp_path, spec | {"few_shot": {
        "from": "train", "k": 2, "by": "embed", "embed_model": "models/none.gguf"}}, "m.yaml")
    assert load_task(missing).few_shot_from.embed_model == str(tmp_path / "models/none.gguf")
    with FakeOpenAIServer(lambda body: "x") as server:
        base = f"openai/fake?api_base={server.base_url}"
        with pytest.raises(InputError, match="GGUF file not found") as exc:
            run_benchmark([missing], [base], results_dir=tmp_path, run_id="m")
        assert exc.value.field == "few_shot.embed_model"
        with pytest.raises(InputError, match="by= picks retrieved examples"):
            run_benchmark([_variant_task(tmp_path)], [base + "&by=embed"],
                          results_dir=tmp_path, run_id="n")
        with pytest.raises(InputError, match="for select=similar"):
            run_benchmark([_variant_task(tmp_path)], [base + "&k=2&select=random&by=embed"],
                          results_dir=tmp_path, run_id="o")
        assert server.calls == []


def test_rows_name_their_examples_whatever_the_executor(tmp_path):
    """Worker processes get the task without its train split: the parent, which chose the
    examples and built the request, names them in the row (they were missing there)."""
    path = _variant_task(tmp_path, {"from": "train", "k": 2})
    task, answer = _gold_by_item_text(path)
    with FakeOpenAIServer(answer) as server:
        model = f"openai/fake?api_base={server.base_url}"
        shots = {}
        for executor in ("local", "processes"):
            result = run_benchmark([path], [model], results_dir=tmp_path, run_id=executor,
                                   options=RunOptions(limit=6, use_cache=False,
                                                      executor=executor, workers=2))
            rows = result.run.rows()
            assert len(rows) == 6 and all(r["correct"] for r in rows)
            shots[executor] = {r["item_id"]: r["shots"] for r in rows}
        sent = [call["messages"] for call in server.calls]
    assert shots["processes"] == shots["local"]
    plan = PromptPlan(task)
    by_text = {it.id: it.text for it in task.items}
    for item_id, ids in shots["processes"].items():
        assert len(ids) == 2
        assert sent.count(plan.messages_for(by_text[item_id], ids)) == 2  # once per executor
