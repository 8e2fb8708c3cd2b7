"""Kind multilabel (one new file, slmbench/tasks/kinds/multilabel.py) and the task-kind seam.

Figures are recomputed by hand from hand-made rows; the bundled ticket-tagging task runs for
real on the TF-IDF baseline, on SmolLM2 under its grammar, and on an API model through
litellm to the OpenAI emulator; a third-party kind is found through the entry-point group.
"""

from __future__ import annotations

import json
import warnings
from importlib.metadata import EntryPoint

import jsonschema
import pytest
import yaml
from conftest import BUNDLED_TASKS, run_cli, write_jsonl, write_task
from provider_emulators import OPENAI_REASONING_MODEL, OpenAIReasoningEmulator

from slmbench.analysis import summary as S
from slmbench.errors import InputError
from slmbench.models.base import Completion
from slmbench.reports.leaderboard import render_json, render_markdown
from slmbench.runner.items import ItemScorer
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.scoring import label_matcher, task_metrics
from slmbench.scoring.bootstrap import count_bootstrap_ci
from slmbench.store import open_run
from slmbench.tasks import kinds, load_items, load_task, parse_task
from slmbench.tasks.kinds.multilabel import KIND, parse_labels
from slmbench.tasks.schema import SCHEMA_FILE, builtin_schema_text, task_schema

TASK = BUNDLED_TASKS / "multilabel" / "tickets.yaml"
TAGS = ["billing", "refund", "login", "bug", "shipping", "feature_request"]


# ---------------------------------------------------------------------------------------------
# metrics, by hand


def _row(gold, answer, *, invalid=False, error=None):
    correct = answer is not None and not error and set(answer) == set(gold)
    return {"gold": gold, "answer": None if error else answer, "invalid": invalid,
            "error": error, "correct": correct}


ROWS = [
    _row(["a", "b"], ["a", "b"]),  # exact
    _row(["a"], ["a", "c"]),  # one label too many
    _row(["b", "c"], ["b"]),  # one label missing
    _row(["c"], None, invalid=True),  # invalid: predicts no label
    _row(["a"], None, error="HTTP 500"),  # failed call: predicts no label
    _row(["b"], ["b"]),  # exact
]
LABELS = ["a", "b", "c", "d"]  # d: neither in gold nor predicted


def test_metrics_recomputed_by_hand():
    m = task_metrics("multilabel", ROWS, labels=LABELS, seed=0)
    # cells (item × label) wrong: item 2 (c), 3 (c), 4 (c), 5 (a); 6 items × 4 labels
    assert m["hamming_loss"] == pytest.approx(4 / 24)
    # a: gold 1,2,5, predicted 1,2 → tp 2, fp 0, fn 1; b: gold 1,3,6 = predicted → tp 3;
    # c: gold 3,4, predicted 2 → tp 0, fp 1, fn 2; d: nothing
    per = m["per_label"]
    assert (per["a"]["tp"], per["a"]["fp"], per["a"]["fn"], per["a"]["support"]) == (2, 0, 1, 3)
    assert per["a"]["precision"] == 1.0 and per["a"]["recall"] == pytest.approx(2 / 3)
    assert per["a"]["f1"] == pytest.approx(0.8)
    assert (per["b"]["precision"], per["b"]["recall"], per["b"]["f1"]) == (1.0, 1.0, 1.0)
    assert (per["c"]["tp"], per["c"]["fp"], per["c"]["fn"], per["c"]["f1"]) == (0, 1, 2, 0.0)
    assert per["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0, "tp": 0,
                        "fp": 0, "fn": 0}
    # micro: tp 5, fp 1, fn 3
    assert m["micro_precision"] == pytest.approx(5 / 6)
    assert m["micro_recall"] == pytest.approx(5 / 8)
    assert m["micro_f1"] == pytest.approx(2 * 5 / (2 * 5 + 1 + 3))
    # macro over the labels present in gold or predictions (a, b, c), as for classification
    assert m["macro_f1"] == pytest.approx((0.8 + 1.0 + 0.0) / 3)
    # subset accuracy: items 1 and 6; its CI is the seeded bootstrap of 2 of 6
    assert m["accuracy"] == m["subset_accuracy"] == pytest.approx(2 / 6)
    assert m["accuracy_ci"] == count_bootstrap_ci(2, 6, seed=0)
    assert (m["n_correct_labels"], m["n_gold_labels"]) == (5, 8)
    assert (m["n"], m["n_correct"], m["n_invalid"], m["n_errors"]) == (6, 2, 1, 1)


def test_cost_per_correct_label():
    entry = {"total_usd": 0.5, "n_correct_labels": 5}
    KIND.priced(entry)
    assert entry["usd_per_correct_label"] == pytest.approx(0.1)
    assert entry["correct_labels_per_usd"] == pytest.approx(10.0)
    unpriced = {"total_usd": None, "n_correct_labels": 5}
    KIND.priced(unpriced)
    assert unpriced["usd_per_correct_label"] is None
    assert unpriced["correct_labels_per_usd"] is None


def test_corrupt_stored_rows_are_named():
    info = {"kind": "multilabel", "labels": ["a", "b"]}
    good = [{"item_id": "1", "gold": ["a"], "answer": ["b"]}]
    S.check_rows(SCHEMA_FILE, "t", "m", info, good)
    for bad, field in (({"gold": "a", "answer": None}, "gold"),
                       ({"gold": ["a", "z"], "answer": None}, "gold"),
                       ({"gold": ["a"], "answer": "a"}, "answer")):
        with pytest.raises(InputError) as exc:
            S.check_rows(SCHEMA_FILE, "t", "m", info, [{"item_id": "2", **bad}])
        assert exc.value.field == field


# ---------------------------------------------------------------------------------------------
# answers


MATCHER = label_matcher(("billing", "refund", "feature_request"))


@pytest.mark.parametrize(("text", "labels"), [
    ('{"labels": ["billing", "refund"]}', ["billing", "refund"]),
    ('{ "labels": [ "refund","refund","billing"] }', ["refund", "billing"]),  # a repeat: once
    ('["refund", "billing"]', ["refund", "billing"]),
    ('```json\n["billing"]\n```', ["billing"]),
    ("The tags are: [\"feature request\"]", ["feature_request"]),
    ("billing, Feature-Request", ["billing", "feature_request"]),
    ("Labels: refund; billing", ["refund", "billing"]),
    ("billing\nrefund\n", ["billing", "refund"]),
    ("[billing, refund]", ["billing", "refund"]),
    ("[]", []),  # valid: no label applies
    ('{"labels": []}', []),
])
def test_parser_accepts_json_and_comma_separated(text, labels):
    assert parse_labels(text, MATCHER) == labels


@pytest.mark.parametrize("text", [
    "", "   ", "billing, shipping",  # a label outside the set makes the answer invalid
    '["billing", "shipping"]', '{"labels": ["billing", "shipping"]}',
    '{"labels": "billing"}', '{"tags": ["billing"]}', '["billing", 3]', "none",
])
def test_parser_refuses_what_is_not_a_set_of_labels(text):
    assert parse_labels(text, MATCHER) is None


def test_scored_rows_invalid_and_truncated():
    task = load_items(load_task(TASK))
    scorer = ItemScorer(task)
    item = task.items[0]  # gold: ["shipping"]
    request = scorer.request(item)
    assert request.choices is None and request.json_schema["properties"]["labels"] == {
        "type": "array", "items": {"type": "string", "enum": TAGS}, "maxItems": 6}
    # the longest answer the grammar allows fits: 6 × '"feature_request", ' + the braces
    assert request.max_tokens == 24 + 6 * (len("feature_request") + 4)
    model = type("M", (), {"name": "m"})()
    row = scorer.row(model, item, Completion('{"labels": ["shipping"]}', 0.1), None, 1)
    assert row["answer"] == ["shipping"] and row["correct"] and not row["invalid"]
    row = scorer.row(model, item, Completion("shipping, refund", 0.1), None, 1)
    assert row["answer"] == ["shipping", "refund"] and not row["correct"]
    row = scorer.row(model, item, Completion("parcel", 0.1), None, 1)
    assert row["invalid"] and not row["truncated"] and row["answer"] is None
    cut = Completion('{"labels": ["shipping", "ref', 0.1, finish_reason="length")
    row = scorer.row(model, item, cut, None, 1)
    assert row["truncated"] and not row["invalid"] and not row["correct"]


# ---------------------------------------------------------------------------------------------
# task files


def _task(tmp_path, test_rows, train_rows=None, **extra):
    write_jsonl(tmp_path / "test.jsonl", test_rows)
    files = {"test": "test.jsonl"}
    dataset = {"files": files}
    if train_rows is not None:
        write_jsonl(tmp_path / "train.jsonl", train_rows)
        files["train"] = "train.jsonl"
        dataset["train_split"] = "train"
    return write_task(tmp_path, {"name": "tags", "kind": "multilabel", "dataset": dataset,
                                 "labels": ["a", "b", "c"], **extra})


def test_gold_as_list_json_array_or_comma_separated(tmp_path):
    path = _task(tmp_path, [{"id": "1", "text": "x", "labels": ["a", "b"]},
                            {"id": "2", "text": "y", "labels": '["c"]'},
                            {"id": "3", "text": "z", "labels": "b, a, b"},
                            {"id": "4", "text": "w", "labels": []}])
    task = load_items(load_task(path))
    assert [it.gold for it in task.items] == [["a", "b"], ["c"], ["b", "a"], []]


def test_gold_outside_the_label_set_or_missing_is_refused(tmp_path):
    path = _task(tmp_path, [{"id": "1", "text": "x", "labels": ["a", "z"]}])
    with pytest.raises(InputError, match="not in the label set") as exc:
        load_items(load_task(path))
    assert exc.value.field == "labels" and "'z' (1 in test)" in str(exc.value)
    path = _task(tmp_path, [{"id": "1", "text": "x", "labels": None}])
    with pytest.raises(InputError, match="has no gold labels"):
        load_items(load_task(path))


def test_labels_from_train_and_few_shot(tmp_path):
    path = _task(tmp_path, [{"id": "1", "text": "x", "labels": ["a"]}],
                 [{"id": "t1", "text": "p", "labels": ["b", "a"]},
                  {"id": "t2", "text": "q", "labels": ["c"]}],
                 few_shot=[{"text": "p", "answer": ["a", "b"]}])
    doc = yaml.safe_load(path.read_text())
    doc["labels"] = "from_train"
    path.write_text(yaml.safe_dump(doc))
    task = load_items(load_task(path))
    assert task.spec.labels == ("a", "b", "c")
    messages = ItemScorer(task).request(task.items[0]).messages
    assert messages[2] == {"role": "assistant", "content": '{"labels": ["a", "b"]}'}
    doc["few_shot"] = [{"text": "p", "answer": "a"}]
    with pytest.raises(InputError, match="must be a list of labels"):
        parse_task(doc, path)
    doc["few_shot"] = [{"text": "p", "answer": ["z"]}]
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(InputError, match="few-shot answer is not in the label set"):
        load_items(load_task(path))
    doc = {**doc, "few_shot": [], "routes": [{"name": "a"}, {"name": "b"}]}
    with pytest.raises(InputError, match="does not apply to kind 'multilabel'"):
        parse_task(doc, path)


def test_task_schema_is_generated_from_the_kinds():
    assert SCHEMA_FILE.read_text() == builtin_schema_text()
    schema = json.loads(SCHEMA_FILE.read_text())
    assert schema["properties"]["kind"]["enum"] == list(kinds.BUILTIN_KINDS)
    validator = jsonschema.Draft202012Validator(schema)
    validator.validate(yaml.safe_load(TASK.read_text()))
    wrong = {"name": "t", "kind": "multilabel", "dataset": {"path": "d.jsonl"},
             "labels": ["a"], "few_shot": [{"text": "x", "answer": "a"}]}
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(wrong)


# ---------------------------------------------------------------------------------------------
# end to end


def _by_hand_subset(rows):
    return sum(r["answer"] is not None and set(r["answer"]) == set(r["gold"])
               for r in rows) / len(rows)


def test_tfidf_baseline_one_vs_rest(tmp_path):
    result = run_benchmark([TASK], ["baseline:tfidf-logreg"], results_dir=tmp_path,
                           run_id="r")
    rows = result.run.rows()
    assert len(rows) == 40
    assert all(isinstance(r["answer"], list) and set(r["answer"]) <= set(TAGS)
               and r["answer"] for r in rows)  # every train item has a tag: never empty
    assert all(r["answer"] == json.loads(r["output"]) for r in rows)
    entry = result.summary["results"][0]
    assert entry["accuracy"] == pytest.approx(_by_hand_subset(rows))
    assert entry["accuracy"] == pytest.approx(11 / 40)  # the one-vs-rest baseline here
    assert entry["n_correct_labels"] == sum(len(set(r["answer"]) & set(r["gold"]))
                                            for r in rows)
    assert entry["usd_per_correct_label"] == pytest.approx(
        entry["total_usd"] / entry["n_correct_labels"])
    # confidence: probability of the predicted set, the labels independent
    assert all(0 < r["confidence"] <= 1 for r in rows)
    md = render_markdown(result.summary)
    assert "## ticket-tags (multilabel)" in md and "| shipping |" in md
    assert "$/correct label" in md and "Hamming loss" in md
    details = json.loads(render_json([result.summary]))["details"]["ticket-tags"]
    assert "per_label" in details["r/baseline:tfidf-logreg"]
    # a resumed run calls nothing and summarises the same
    again = run_benchmark([TASK], ["baseline:tfidf-logreg"], results_dir=tmp_path, run_id="r")
    assert again.calls == 0
    assert again.summary["results"][0]["accuracy"] == entry["accuracy"]


def test_smollm2_under_the_grammar_answers_sets_of_known_labels(tmp_path):
    result = run_benchmark([TASK], ["llamacpp:smollm2?n_threads=1"], results_dir=tmp_path,
                           options=RunOptions(limit=4))
    rows = result.run.rows()
    assert len(rows) == 4
    for r in rows:
        assert not r["invalid"] and not r["truncated"] and not r["error"]
        assert isinstance(r["answer"], list) and r["answer"]
        assert set(r["answer"]) <= set(TAGS)
        # the grammar's object, at most one item per label
        assert len(json.loads(r["output"])["labels"]) <= len(TAGS)
    assert result.summary["results"][0]["accuracy"] == pytest.approx(_by_hand_subset(rows))


def test_api_model_gets_the_array_of_enum_schema(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-openai")
    task = load_items(load_task(TASK))
    gold = {it.text: it.gold for it in task.items}
    order = list(gold)

    def respond(prompt, body):
        text = next(t for t in gold if t in prompt)
        labels = gold[text]
        if order.index(text) % 4 == 3:  # every 4th answered with one label too many
            labels = [*labels, next(t for t in TAGS if t not in labels)]
        return json.dumps({"labels": labels})

    with OpenAIReasoningEmulator(respond) as srv:
        code, _, err = run_cli(["run", str(TASK), "-m",
                                f"{OPENAI_REASONING_MODEL}?api_base={srv.url}", "--limit", "8",
                                "--results-dir", str(tmp_path), "--run-id", "r", "-q",
                                "--no-cache", "--executor", "local"], capsys)
    assert code == 0, err
    assert len(srv.requests) == 8
    for req in srv.requests:
        fmt = req["body"]["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        assert fmt["json_schema"]["schema"] == {
            "type": "object",
            "properties": {"labels": {"type": "array",
                                      "items": {"type": "string", "enum": TAGS},
                                      "maxItems": 6}},
            "required": ["labels"], "additionalProperties": False}
        assert not req["constrained"]  # the answers already fit the schema
    rows = open_run(tmp_path / "r").rows()
    assert all(isinstance(r["answer"], list) for r in rows)
    assert sum(r["correct"] for r in rows) == 6  # items 3 and 7 carry one label too many
    entry = open_run(tmp_path / "r").read_summary()["results"][0]
    assert entry["accuracy"] == pytest.approx(6 / 8)
    # every gold label was given, and two labels too many
    assert entry["n_correct_labels"] == sum(len(r["gold"]) for r in rows)
    assert sum(m["fp"] for m in entry["per_label"].values()) == 2


# ---------------------------------------------------------------------------------------------
# third-party kinds


PLUGIN = '''
from slmbench.tasks.kinds.classification import Classification


class Sentiment(Classification):
    """A plugin kind: classification with its own default instruction."""

    name = "sentiment"
    default_instruction = "Is the review positive or negative?\\n{labels}"


KIND = Sentiment()
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """Entry points of the group as an installed distribution would declare them; the real
    discovery (kinds._targets) and loading (EntryPoint.load) run on them."""
    (tmp_path / "slmbench_sentiment_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    points = [
        EntryPoint("sentiment", "slmbench_sentiment_plugin:KIND", kinds.ENTRY_POINT_GROUP),
        EntryPoint("broken", "slmbench_no_such_plugin:KIND", kinds.ENTRY_POINT_GROUP),
    ]
    monkeypatch.setattr(kinds, "entry_points",
                        lambda group: points if group == kinds.ENTRY_POINT_GROUP else [])
    kinds.reset()
    yield points
    kinds.reset()


def test_a_third_party_kind_is_found_through_the_entry_point_group(plugins, tmp_path):
    assert kinds.kind_names()[-2:] == ("sentiment", "broken")
    with pytest.warns(RuntimeWarning, match="'broken'.*could not be loaded.*ModuleNotFound"):
        assert kinds.find_kind("broken") is None
    sentiment = kinds.get_kind("sentiment")
    assert type(sentiment).__module__ == "slmbench_sentiment_plugin"
    train = [{"id": f"t{i}", "text": t, "label": lab} for i, (t, lab) in enumerate(
        [("great food", "pos"), ("lovely staff", "pos"), ("awful service", "neg"),
         ("cold soup", "neg"), ("great staff", "pos"), ("awful food", "neg")])]
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", [{"id": "1", "text": "lovely food", "label": "pos"}])
    path = write_task(tmp_path, {
        "name": "reviews", "kind": "sentiment", "labels": ["pos", "neg"],
        "dataset": {"files": {"test": "test.jsonl", "train": "train.jsonl"},
                    "train_split": "train"}})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the broken plugin warned once, above
        spec = load_task(path)
    assert spec.instruction.startswith("Is the review positive")
    result = run_benchmark([path], ["baseline:tfidf-logreg"], results_dir=tmp_path / "runs")
    entry = result.summary["results"][0]
    assert entry["kind"] == "sentiment" and entry["n_items"] == 1 and entry["n_errors"] == 0
    assert "## reviews (sentiment)" in render_markdown(result.summary)
    assert task_schema()["properties"]["kind"]["enum"][-1] == "sentiment"


def test_a_broken_plugin_listing_warns_and_leaves_the_builtins(monkeypatch):
    def fail(group):
        raise OSError("unreadable metadata")

    monkeypatch.setattr(kinds, "entry_points", fail)
    kinds.reset()
    try:
        with pytest.warns(RuntimeWarning, match="could not be listed.*unreadable metadata"):
            assert kinds.kind_names() == tuple(kinds.BUILTIN_KINDS)
    finally:
        kinds.reset()


def test_an_unknown_kind_in_a_stored_run_is_an_input_error():
    with pytest.raises(InputError, match="unknown task kind") as exc:
        S.metric_kwargs({"kind": "sentiment"})
    assert exc.value.field == "kind"
