"""Authoring friction found on held-out data (issue 18): one-line fixes in the YAML instead of
a conversion script, and errors that name every offending value at once."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli, write_jsonl, write_task

from slmbench.errors import InputError
from slmbench.tasks import load_items, load_task


def _cls(folder: Path, labels: object, **extra: object) -> Path:
    """Train has a and b; test also has c (2 items) and d (1 item): ATIS's situation."""
    write_jsonl(folder / "train.jsonl", [{"id": f"tr{i}", "text": f"train {i}",
                                          "label": "ab"[i % 2]} for i in range(6)])
    write_jsonl(folder / "test.jsonl", [
        {"id": "t0", "text": "x0", "label": "a"}, {"id": "t1", "text": "x1", "label": "c"},
        {"id": "t2", "text": "x2", "label": "d"}, {"id": "t3", "text": "x3", "label": "c"},
        {"id": "t4", "text": "x4", "label": "b"}])
    spec = {"name": "atis-like", "kind": "classification",
            "dataset": {"files": {"train": "train.jsonl", "test": "test.jsonl"},
                        "split": "test", "train_split": "train"},
            "labels": labels, **extra}
    return write_task(folder, spec)


def test_from_train_lists_every_unseen_label_in_one_line(tmp_path):
    with pytest.raises(InputError) as exc:
        load_items(load_task(_cls(tmp_path, "from_train")))
    msg = str(exc.value)
    assert "\n" not in msg
    assert "2 gold answer(s) not in the label set" in msg
    assert "'c' (2 in test); 'd' (1 in test)" in msg
    assert "labels: from_data" in msg and "unseen_gold: count_wrong" in msg


def test_labels_from_data_takes_train_and_test(tmp_path):
    task = load_items(load_task(_cls(tmp_path, "from_data")))
    assert task.spec.labels == ("a", "b", "c", "d")
    assert len(task.items) == 5


def test_unseen_gold_count_wrong_scores_them_wrong(tmp_path):
    from slmbench.runner.run import run_benchmark

    path = _cls(tmp_path, "from_train", unseen_gold="count_wrong")
    task = load_items(load_task(path))
    assert task.spec.labels == ("a", "b")
    assert task.spec.unseen_labels == ("c", "d")
    result = run_benchmark([path], ["baseline:tfidf-logreg"], results_dir=tmp_path / "r")
    (entry,) = result.summary["results"]
    assert entry["n_items"] == 5
    rows = list(result.run.rows())
    unseen = [r for r in rows if r["gold"] in ("c", "d")]
    assert len(unseen) == 3 and not any(r["correct"] for r in unseen)
    seen_right = sum(bool(r["correct"]) for r in rows if r["gold"] in ("a", "b"))
    assert entry["accuracy"] == pytest.approx(seen_right / 5)
    assert entry["per_class"]["c"]["support"] == 2


def test_label_map_renames_gold_values(tmp_path):
    path = _cls(tmp_path, ["a", "b", "gamma"], label_map={"c": "gamma", "d": "gamma"})
    task = load_items(load_task(path))
    assert [it.gold for it in task.items] == ["a", "gamma", "gamma", "gamma", "b"]


def test_bad_authoring_values_are_one_line(tmp_path):
    with pytest.raises(InputError, match="unseen_gold.*must be one of error, count_wrong"):
        load_task(_cls(tmp_path, "from_train", unseen_gold="skip"))


def _extraction(folder: Path, rows: list[dict], **extra: object) -> Path:
    write_jsonl(folder / "test.jsonl", rows)
    spec = {"name": "slots", "kind": "extraction", "dataset": {"path": "test.jsonl"},
            "fields": [{"name": "city"}, {"name": "stops", "type": "list"}], **extra}
    return write_task(folder, spec)


SLOT_ROWS = [{"id": "1", "text": "to Boston via Denver",
              "fields": {"city": "Boston", "stops": ["Denver"], "airline": "UA"}}]


def test_extra_gold_fields_ignore_keeps_declared_slots(tmp_path):
    with pytest.raises(InputError, match="gold field the task does not declare"):
        load_items(load_task(_extraction(tmp_path, SLOT_ROWS)))
    task = load_items(load_task(_extraction(tmp_path, SLOT_ROWS, extra_gold_fields="ignore")))
    assert task.items[0].gold == {"city": "Boston", "stops": ["Denver"]}


def test_list_gold_under_string_field_is_refused(tmp_path):
    rows = [{"id": "1", "text": "to Boston or Austin", "fields": {"city": ["Boston", "Austin"],
                                                                 "stops": []}}]
    with pytest.raises(InputError) as exc:
        load_items(load_task(_extraction(tmp_path, rows)))
    assert "2 values as gold of field 'city', declared type: string (declare type: list)" \
        in str(exc.value)


def test_one_value_list_gold_under_string_field_still_scores(tmp_path):
    rows = [{"id": "1", "text": "wake me at 7 am", "fields": {"city": ["7 am"], "stops": []}}]
    items = load_items(load_task(_extraction(tmp_path, rows)))
    assert [item.gold["city"] for item in items.items] == [["7 am"]]


def test_validate_reports_every_bad_row(tmp_path, capsys):
    write_jsonl(tmp_path / "test.jsonl", [
        {"id": "1", "text": "", "label": "a"}, {"id": "2", "text": "ok", "label": "b"},
        {"id": "3", "text": "fine", "label": None}, {"id": "4", "text": " ", "label": "a"}])
    path = write_task(tmp_path, {"name": "t", "kind": "classification",
                                 "dataset": {"path": "test.jsonl"}, "labels": ["a", "b"]})
    code, out, err = run_cli(["validate", str(path)], capsys)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert "item '1' has no text" in lines[0]
    assert "item '3' has no gold label" in lines[1]
    assert "item '4' has no text" in lines[2]


def test_ragged_csv_names_the_real_reason_and_logs_nothing(tmp_path):
    (tmp_path / "data.csv").write_text("text,label\nhello,a\nbad,row,extra\nok,b\n")
    path = write_task(tmp_path, {"name": "r", "kind": "classification",
                                 "dataset": {"path": "data.csv"}, "labels": ["a", "b"]})
    proc = subprocess.run([sys.executable, "-m", "slmbench", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1, proc.stderr  # one line: no stray datasets log line
    assert "Expected 2 fields in line 3, saw 3" in proc.stderr
