"""Chain tasks: classify → extract pipelines against one model doing both in one call.

Everything runs for real: the TF-IDF baseline and SmolLM2 in process, and API models through
litellm over loopback HTTP to the fake server. Figures are recomputed here from the stored rows
with code of this file (not slmbench's scoring), and costs from the per-step pricing.
"""

from __future__ import annotations

import json
import math
import re
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml
from conftest import BUNDLED_TASKS, run_cli, write_jsonl, write_task
from fakeserver import FakeOpenAIServer, count_completion_tokens, count_prompt_tokens
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmbench.errors import InputError
from slmbench.pricing.run_costs import PricingOptions
from slmbench.reports.leaderboard import leaderboard_entries, render_markdown
from slmbench.runner.items import ItemScorer
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.scoring import parse_json_object
from slmbench.scoring.chain import chain_metrics
from slmbench.tasks import FieldSpec, load_items, load_task, parse_task
from slmbench.tasks.chain import classify_task, extract_tasks, single_call_spec

SCHEMA = json.loads(resources.files("slmbench.tasks").joinpath("task.schema.json").read_text())
EXAMPLE = BUNDLED_TASKS / "examples" / "assistant_chain.yaml"
FIELDS = {"set_alarm": ["time", "day"], "get_weather": ["city", "day"],
          "play_music": ["artist", "genre"], "small_talk": []}
# one llama.cpp thread: on a shared machine two threads that busy-wait on each other crawl
# (benchmarks/snips_chain.py); the model keeps its name, llamacpp:smollm2
SMOL = "llamacpp:smollm2?n_threads=1"
PIPELINE = f"baseline:tfidf-logreg,{SMOL}"
PIPELINE_NAME = "chain(baseline:tfidf-logreg > llamacpp:smollm2)"
NANO, MINI = "openai/gpt-5.4-nano", "openai/gpt-5.4-mini"  # $0.20/$1.25 and $0.75/$4.50 per 1M
PRICE = {NANO: (0.20, 1.25), MINI: (0.75, 4.50)}


# ---------------------------------------------------------------------------------------------
# figures by hand, from stored rows


def _norm(value) -> set[str]:
    values = value if isinstance(value, list) else [value]
    out = set()
    for v in values:
        if v is None:
            continue
        text = re.sub(r"\s+", " ", str(v).casefold()).strip().strip(" .,;:!?\"'`")
        if text:
            out.add(text)
    return out


def _pairs(fields: dict | None) -> set[tuple[str, str]]:
    names = {n for ns in FIELDS.values() for n in ns}
    return {(k, v) for k, val in (fields or {}).items() if k in names for v in _norm(val)}


def _by_hand(rows: list[dict]) -> dict[str, float]:
    n = len(rows)
    tp = fp = fn = 0
    exact = intent = 0
    for r in rows:
        ans = r["answer"] or {}
        gold_pairs, pred_pairs = _pairs(r["gold"]["fields"]), _pairs(ans.get("fields"))
        tp += len(gold_pairs & pred_pairs)
        fp += len(pred_pairs - gold_pairs)
        fn += len(gold_pairs - pred_pairs)
        right_label = ans.get("label") == r["gold"]["label"]
        intent += right_label
        exact += right_label and ans.get("fields") is not None and gold_pairs == pred_pairs
    p = tp / (tp + fp) if tp + fp else 0.0
    rec = tp / (tp + fn) if tp + fn else 0.0
    return {"intent_accuracy": intent / n, "accuracy": exact / n,
            "field_micro_f1": 2 * p * rec / (p + rec) if p + rec else 0.0}


# ---------------------------------------------------------------------------------------------
# the task format


def test_bundled_chain_examples_follow_the_schema():
    paths = sorted((BUNDLED_TASKS / "examples").glob("*.yaml"))
    assert {p.name for p in paths} >= {"assistant_chain.yaml", "snips_chain.yaml"}
    for path in paths:
        doc = yaml.safe_load(path.read_text())
        jsonschema.Draft202012Validator(SCHEMA).validate(doc)
        spec = parse_task(doc, path)
        assert spec.kind == "chain" and spec.label_field == "intent"


def _chain_doc(**extra) -> dict:
    doc = {"name": "t", "kind": "chain", "dataset": {"path": "d.jsonl"}, "labels": ["a", "b"],
           "fields": [{"name": "x"}, {"name": "y"}]}
    doc.update(extra)
    return doc


BROKEN = [
    _chain_doc(fields=None),                                        # chain needs fields
    _chain_doc(labels=None),                                        # and labels
    _chain_doc(classes={"a": {"fields": ["x"], "colour": "red"}}),  # unknown key
    _chain_doc(classes={"a": {"fields": ["x", "x"]}}),              # a field twice
    _chain_doc(label_field=""),
    {"name": "t", "kind": "classification", "dataset": {"path": "d.jsonl"}, "labels": ["a"],
     "classes": {"a": {"fields": []}}},                             # classes: chain only
    {"name": "t", "kind": "extraction", "dataset": {"path": "d.jsonl"},
     "fields": [{"name": "x"}], "label_field": "kind"},             # label_field: chain only
    {"name": "t", "kind": "extraction", "dataset": {"path": "d.jsonl"},
     "fields": [{"name": "x"}], "prompt": {"single_instruction": "hi"}},
    {"name": "t", "kind": "routing", "dataset": {"path": "d.jsonl"},
     "routes": [{"name": "a"}, {"name": "b"}], "fallback": "a", "labels": ["a"]},
]


@pytest.mark.parametrize("doc", BROKEN)
def test_schema_and_validator_both_reject_broken_chain_tasks(tmp_path, doc):
    (tmp_path / "d.jsonl").write_text('{"id": "1", "text": "x", "label": "a", "fields": {}}\n')
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    with pytest.raises(InputError):
        parse_task(doc, tmp_path / "t.yaml")


# cross references: the validator's alone (a JSON Schema cannot check them)
@pytest.mark.parametrize("extra, field", [
    ({"classes": {"a": {"fields": ["z"]}}}, "classes.a.fields[0]"),  # not one of the fields
    ({"classes": {"c": {"fields": ["x"]}}}, "classes.c"),            # not one of the labels
    ({"label_field": "x"}, "label_field"),                  # clashes with a field name
    ({"few_shot": [{"text": "q", "answer": {"label": "c"}}]}, "few_shot[0].answer.label"),
    ({"few_shot": [{"text": "q", "answer": {"label": "a", "y": 1}}],
      "classes": {"a": {"fields": ["x"]}}}, "few_shot[0].answer.y"),  # not a field of class a
])
def test_validator_names_the_field(tmp_path, extra, field):
    with pytest.raises(InputError) as err:
        parse_task(_chain_doc(**extra), tmp_path / "t.yaml")
    assert err.value.field == field


def _tiny(tmp_path: Path, rows: list[dict], **extra) -> Path:
    write_jsonl(tmp_path / "d.jsonl", rows)
    write_jsonl(tmp_path / "train.jsonl", rows)
    doc = {"name": "tiny-chain", "kind": "chain",
           "dataset": {"files": {"test": "d.jsonl", "train": "train.jsonl"},
                       "train_split": "train"},
           "labels": "from_train", "fields": [{"name": "x"}, {"name": "y", "type": "integer"}],
           "classes": {"a": {"fields": ["x"]}}}
    doc.update(extra)
    return write_task(tmp_path, doc)


def test_gold_keeps_the_fields_of_its_class(tmp_path):
    task = load_items(load_task(_tiny(tmp_path, [
        {"id": "1", "text": "one", "label": "a", "fields": {"x": "p"}},
        {"id": "2", "text": "two", "label": "b", "fields": {"x": "q", "y": 3}}])))
    assert task.spec.labels == ("a", "b")
    assert [it.gold for it in task.items] == [
        {"label": "a", "fields": {"x": "p"}}, {"label": "b", "fields": {"x": "q", "y": 3}}]


def test_gold_value_outside_its_class_is_refused(tmp_path):
    with pytest.raises(InputError) as err:
        load_items(load_task(_tiny(tmp_path, [
            {"id": "1", "text": "one", "label": "a", "fields": {"x": "p", "y": 2}},
            {"id": "2", "text": "two", "label": "b", "fields": {}}])))
    assert err.value.field == "fields.y" and "class 'a'" in str(err.value)


def test_class_override_for_an_unknown_label_is_refused_at_load(tmp_path):
    path = _tiny(tmp_path, [{"id": "1", "text": "one", "label": "a", "fields": {}},
                            {"id": "2", "text": "two", "label": "b", "fields": {}}],
                 classes={"c": {"fields": []}})
    with pytest.raises(InputError) as err:
        load_items(load_task(path))
    assert err.value.field == "classes.c"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(extra=st.fixed_dictionaries({}, optional={
    k: st.recursive(st.one_of(st.none(), st.booleans(), st.integers(-2, 2),
                              st.sampled_from(["a", "b", "x", "y", "from_train", "{text}"])),
                    lambda inner: st.one_of(st.lists(inner, max_size=3),
                                            st.dictionaries(st.sampled_from(
                                                ["a", "b", "x", "fields", "instruction",
                                                 "label", "text", "answer"]), inner,
                                                max_size=3)), max_leaves=8)
    for k in ("labels", "fields", "classes", "label_field", "few_shot", "prompt")}))
def test_chain_parsing_raises_only_input_errors(tmp_path, extra):
    (tmp_path / "d.jsonl").write_text(
        '{"id": "1", "text": "x", "label": "a", "fields": {"x": "v"}}\n')
    try:
        load_items(parse_task(_chain_doc(**extra), tmp_path / "t.yaml"))
    except InputError as exc:
        assert "\n" not in str(exc)


# ---------------------------------------------------------------------------------------------
# what each participant is asked


def test_each_step_sees_its_own_prompt():
    task = load_items(load_task(EXAMPLE))
    item = next(it for it in task.items if it.gold["label"] == "get_weather")
    classify = ItemScorer(classify_task(task)).request(item)
    assert classify.choices == ("set_alarm", "get_weather", "play_music", "small_talk")
    assert classify.messages[-2] == {"role": "assistant", "content": "play_music"}  # the shot
    assert classify_task(task).train[0].gold in classify.choices  # the baseline trains on it
    extract = extract_tasks(task)
    assert {k: [f.name for f in t.spec.fields] for k, t in extract.items()} == FIELDS
    weather = ItemScorer(extract["get_weather"]).request(item)
    assert weather.messages[0]["content"].startswith("The text has intent get_weather.")
    assert "- city (string)" in weather.messages[0]["content"]
    assert "artist" not in weather.messages[0]["content"]
    assert len(weather.messages) == 2  # the only example is a play_music one
    assert list(weather.json_schema["properties"]) == ["city", "day"]
    music = ItemScorer(extract["play_music"]).request(item)
    assert json.loads(music.messages[2]["content"]) == {"artist": "bob marley",
                                                        "genre": "reggae"}
    single = ItemScorer(task).request(item)
    assert single.choices is None and single.max_tokens == 256
    assert "- get_weather: city, day" in single.messages[0]["content"]
    assert "- small_talk: (no fields)" in single.messages[0]["content"]
    assert json.loads(single.messages[2]["content"]) == {
        "intent": "play_music", "artist": "bob marley", "genre": "reggae"}
    variants = single.json_schema["oneOf"]
    assert [v["properties"]["intent"]["const"] for v in variants] == list(FIELDS)
    assert [list(v["properties"])[1:] for v in variants] == list(FIELDS.values())
    assert single_call_spec(task.spec).instruction != task.spec.instruction


def test_chain_metrics_on_hand_made_answers():
    fields = [FieldSpec("x"), FieldSpec("y", type="integer")]
    gold = [{"label": "a", "fields": {"x": "Paris"}}, {"label": "a", "fields": {"x": "Rome"}},
            {"label": "b", "fields": {"x": "Oslo", "y": 3}}, {"label": "b", "fields": {"y": 1}}]
    pred = [{"label": "a", "fields": {"x": "paris."}},          # exact (normalised)
            {"label": "b", "fields": {"x": "Rome", "y": 2}},    # wrong class, x right, y extra
            {"label": "b", "fields": {"x": "Oslo", "y": "4"}},  # y wrong
            None]                                               # failed call
    m = chain_metrics(gold, pred, ["a", "b"], fields)
    assert m["accuracy"] == m["exact_match"] == 0.25
    assert m["intent_accuracy"] == 0.5
    # pairs: tp = paris, rome, oslo = 3; fp = y=2, y=4 = 2; fn = y=3, y=1 = 2
    assert m["field_micro_precision"] == pytest.approx(3 / 5)
    assert m["field_micro_recall"] == pytest.approx(3 / 5)
    assert m["field_micro_f1"] == pytest.approx(3 / 5)
    assert m["per_field"]["x"]["f1"] == 1.0 and m["per_field"]["y"]["tp"] == 0
    assert m["confusion"]["matrix"] == [[1, 1], [0, 1]]  # the failed call is in no column
    assert m["json_valid_rate"] == 0.75


# ---------------------------------------------------------------------------------------------
# local: TF-IDF → SmolLM2 against SmolLM2 alone


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("chain-results")
    result = run_benchmark([EXAMPLE], [SMOL], results_dir=out, run_id="local",
                           options=RunOptions(limit=8, chains=(PIPELINE,),
                                              pricing=PricingOptions(hourly_usd=1.0)))
    return result


def test_local_pipeline_rows(local_run):
    task = load_items(load_task(EXAMPLE))
    rows = [r for r in local_run.run.rows() if r["model"] == PIPELINE_NAME]
    assert len(rows) == 8 and all(r["error"] is None for r in rows)
    # step 1 is the TF-IDF baseline as it answers the classification task on its own
    from slmbench.models import resolve_model

    baseline = resolve_model("baseline:tfidf-logreg")
    baseline.prepare(classify_task(task))
    items = {it.id: it for it in task.items}
    complete = 0
    for r in rows:
        first = r["steps"][0]
        assert first["model"] == "baseline:tfidf-logreg"
        assert first["answer"] == baseline.complete(
            ItemScorer(classify_task(task)).request(items[r["item_id"]])).text
        assert r["answer"]["label"] == first["answer"]
        wanted = FIELDS[first["answer"]]
        if not wanted:  # nothing to extract: no second step
            assert len(r["steps"]) == 1 and r["answer"]["fields"] == {}
            continue
        second = r["steps"][1]
        assert second["model"] == "llamacpp:smollm2" and second["token_source"] == "gguf"
        # the extraction grammar of the predicted class: exactly its fields (unless the
        # answer ran out of tokens, which makes it invalid)
        parsed = parse_json_object(second["output"])
        assert r["answer"]["fields"] == parsed and r["invalid"] == (parsed is None)
        assert parsed is None or list(parsed) == wanted
        complete += parsed is not None
        assert r["latency_s"] == pytest.approx(first["latency_s"] + second["latency_s"])
        assert r["tokens_in"] == second["tokens_in"] and r["confidence"] is None
    assert any(len(r["steps"]) == 2 for r in rows) and any(len(r["steps"]) == 1 for r in rows)
    assert complete >= 1


def test_local_figures_and_costs_from_stored_rows(local_run):
    summary = local_run.summary
    manifest = local_run.run.read_manifest()
    rows = local_run.run.rows()
    entries = {e["model"]: e for e in summary["results"]}
    assert set(entries) == {PIPELINE_NAME, "llamacpp:smollm2"}
    for model, entry in entries.items():
        mine = [r for r in rows if r["model"] == model]
        for key, value in _by_hand(mine).items():
            assert entry[key] == pytest.approx(value), (model, key)
        assert entry["n_correct"] == sum(r["correct"] for r in mine)
        timing = [t for t in manifest["timings"] if t["model"] == model]
        wall = sum(t["wall_s"] for t in timing)
        if model == PIPELINE_NAME:
            # each step priced on its own basis (both hourly here), over the steps' concurrency
            steps = [s for r in mine for s in r["steps"]]
            conc = sum(s["latency_s"] for s in steps if not s["cached"]) / wall
            total = sum(s["latency_s"] for s in steps) / 3600 / conc
            by_step = entry["pricing"]["steps"]
            assert [s["model"] for s in by_step] == ["baseline:tfidf-logreg", "llamacpp:smollm2"]
            assert all(s["basis"] == "hourly" and s["usd_per_hour"] == 1.0 for s in by_step)
            assert math.fsum(s["total_usd"] for s in by_step) == pytest.approx(
                entry["total_usd"])
            assert manifest["models"][model]["steps"][1]["settings"]["n_threads"] == 1
            assert entry["total_usd"] == pytest.approx(wall / 3600, rel=1e-6)  # machine time
        else:
            # a local model's rows carry their CPU time: priced on the machine's busy time
            pricing = entry["pricing"]
            assert pricing["time_basis"] == "busy" and pricing["vcpus"] >= 1
            conc = sum(r["latency_s"] for r in mine) / wall
            total = (math.fsum(r["cpu_s"] for r in mine) / pricing["vcpus"] / 3600
                     / max(1.0, conc))
        assert entry["total_usd"] == pytest.approx(total, rel=1e-9)
    board = leaderboard_entries([summary])
    assert {r["model"] for r in board if r["task"] == "assistant-chain"} == set(entries)
    md = render_markdown(summary)
    assert "| model | intent accuracy |" in md and "Pipeline steps (cost = their sum)" in md


def test_resuming_a_chain_run_calls_nothing(local_run):
    again = run_benchmark([EXAMPLE], [SMOL], results_dir=local_run.run.path.parent,
                          run_id="local", options=RunOptions(
                              limit=8, chains=(PIPELINE,), pricing=PricingOptions(hourly_usd=1.0)))
    assert again.calls == 0
    assert again.summary["results"][0]["total_usd"] == local_run.summary["results"][0][
        "total_usd"]


# ---------------------------------------------------------------------------------------------
# API steps: each priced from its own sheet row; the steps' cache makes a re-run free


def _fake_answers():
    task = load_items(load_task(EXAMPLE))
    gold = {it.text: it.gold for it in task.items}
    order = {it.text: i for i, it in enumerate(task.items)}
    labels = list(FIELDS)

    def answer(body: dict) -> str:
        system = body["messages"][0]["content"]
        text = body["messages"][-1]["content"].removeprefix("Request: ")
        g = gold[text]
        if system.startswith("Classify the request"):  # step 1: wrong on every 3rd item
            return labels[(labels.index(g["label"]) + 1) % 4] if order[text] % 3 == 2 \
                else g["label"]
        if system.startswith("The text has intent"):  # step 2: the gold fields asked for
            if order[text] == 1:
                return "sorry, no JSON here"
            label = system.split()[4].rstrip(".")
            return json.dumps({f: (g["fields"].get(f) or [None])[0] for f in FIELDS[label]})
        return json.dumps({"intent": g["label"],  # a single call that is always right
                           **{f: v[0] for f, v in g["fields"].items() if v}})

    return task, answer


def test_api_chain_is_priced_per_step_and_cached_per_step(tmp_path, capsys):
    task, answer = _fake_answers()
    with FakeOpenAIServer(answer) as server:
        nano, mini = (f"{m}?api_base={server.base_url}" for m in (NANO, MINI))
        args = ["run", str(EXAMPLE), "--chain", f"{nano},{mini}", "-m", mini,
                "--price-date", "2026-11-22", "--results-dir", str(tmp_path), "-q"]
        code, out, err = run_cli([*args, "--run-id", "api"], capsys)
        assert code == 0, err
        calls = list(server.calls)
        code, _, err = run_cli([*args, "--run-id", "again"], capsys)
        assert code == 0, err
        assert len(server.calls) == len(calls)  # every step answered from the cache
    first = json.loads((tmp_path / "api" / "summary.json").read_text())
    second = json.loads((tmp_path / "again" / "summary.json").read_text())
    entries = {e["model"]: e for e in first["results"]}
    chain = entries[f"chain({NANO} > {MINI})"]
    single = entries[MINI]
    rows = [json.loads(line) for line in (tmp_path / "api" / "items.jsonl").open()]
    chain_rows = [r for r in rows if r["model"] == chain["model"]]
    n = len(task.items)
    # the figures the fake answers were built to give
    wrong_class = {it.id for i, it in enumerate(task.items) if i % 3 == 2}
    no_json = task.items[1].id
    right = [it for it in task.items if it.id not in wrong_class and it.id != no_json]
    assert chain["intent_accuracy"] == pytest.approx((n - len(wrong_class)) / n)
    assert chain["accuracy"] == pytest.approx(len(right) / n)
    assert single["accuracy"] == single["intent_accuracy"] == 1.0
    assert chain["n_invalid"] == 1 and chain["json_valid_rate"] == pytest.approx((n - 1) / n)
    for key, value in _by_hand(chain_rows).items():
        assert chain[key] == pytest.approx(value)
    # tokens: the server's documented usage rule on the requests it received
    assert sum(count_prompt_tokens(c["messages"]) for c in calls) == sum(
        s["tokens_in"] for r in rows for s in r.get("steps", [r]))
    # cost: each step's tokens × its own model's price
    total = 0.0
    for r in chain_rows:
        for s in r["steps"]:
            price_in, price_out = PRICE[s["model"]]
            assert s["tokens_out"] == count_completion_tokens(s["output"])
            total += (s["tokens_in"] * price_in + s["tokens_out"] * price_out) / 1e6
    assert chain["total_usd"] == pytest.approx(total, rel=1e-12)
    assert [s["model"] for s in chain["pricing"]["steps"]] == [NANO, MINI]
    assert chain["pricing"]["steps"][1]["input_per_1m"] == 0.75
    assert chain["usd_per_correct"] == pytest.approx(total / len(right))
    single_rows = [r for r in rows if r["model"] == MINI]
    assert single["total_usd"] == pytest.approx(sum(
        (r["tokens_in"] * 0.75 + r["tokens_out"] * 4.50) / 1e6 for r in single_rows))
    # the cached re-run: same answers, same cost (priced as the original calls)
    again = {e["model"]: e for e in second["results"]}
    assert again[chain["model"]]["total_usd"] == pytest.approx(chain["total_usd"])
    assert again[chain["model"]]["accuracy"] == chain["accuracy"]
    again_rows = [json.loads(line) for line in (tmp_path / "again" / "items.jsonl").open()]
    assert all(r["cached"] for r in again_rows)


@pytest.mark.parametrize("extra, field", [
    (["--chain", "baseline:tfidf-logreg"], "--chain"),                # one model is no chain
    (["--chain", "llamacpp:smollm2,baseline:tfidf-logreg"], "--chain"),  # cannot extract
    (["--chain", "nope:x,llamacpp:smollm2"], "--model"),
    (["--chain", "openai/gpt-5.4-nano,llamacpp:smollm2", "--max-cost", "1"], "--chain"),
])
def test_bad_chains_fail_before_any_call(tmp_path, capsys, extra, field):
    code, _, err = run_cli(["run", str(EXAMPLE), *extra, "--results-dir", str(tmp_path), "-q"],
                           capsys)
    assert code == 2 and err.count("\n") == 1 and field in err
    assert not list(tmp_path.iterdir())
