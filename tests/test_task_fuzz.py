"""Fuzz the task loader: whatever the YAML says, the only exception is a one-line InputError."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmbench.errors import InputError
from slmbench.tasks import load_items, parse_task
from slmbench.tasks.spec import load_task

scalars = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(
                        ["classification", "routing", "extraction", "from_train", "d.jsonl",
                         "test", "train", "{text}", "a", "b"]))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12)
KEYS = ["name", "kind", "dataset", "prompt", "labels", "routes", "fallback", "fields",
        "few_shot", "max_tokens", "description"]
DATASET_KEYS = ["path", "files", "hub", "split", "train_split", "columns", "limit"]

task_docs = st.one_of(
    values,
    st.fixed_dictionaries({}, optional={k: values for k in KEYS}),
    st.fixed_dictionaries(
        {"name": st.text(min_size=1, max_size=8), "kind": st.sampled_from(
            ["classification", "routing", "extraction"]),
         "dataset": st.fixed_dictionaries({}, optional={k: values for k in DATASET_KEYS})},
        optional={k: values for k in ("labels", "routes", "fallback", "fields", "few_shot",
                                      "prompt")}),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.function_scoped_fixture])
@given(doc=task_docs)
def test_parse_task_raises_only_input_errors(tmp_path: Path, doc):
    (tmp_path / "d.jsonl").write_text('{"id": "1", "text": "x", "label": "a"}\n')
    try:
        spec = parse_task(doc, tmp_path / "t.yaml")
    except InputError as exc:
        assert "\n" not in str(exc)
        return
    try:
        load_items(spec)
    except InputError as exc:
        assert "\n" not in str(exc)


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=st.one_of(st.text(max_size=200), st.binary(max_size=200).map(
    lambda b: b.decode("latin-1"))))
def test_load_task_on_arbitrary_text(tmp_path: Path, text: str):
    path = tmp_path / "t.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        load_task(path)
    except InputError as exc:
        assert "\n" not in str(exc)


def test_valid_roundtrip_survives_yaml_dump(tmp_path: Path):
    doc = {"name": "t", "kind": "classification", "dataset": {"path": "d.jsonl"},
           "labels": ["a", "b"]}
    (tmp_path / "d.jsonl").write_text('{"id": "1", "text": "x", "label": "a"}\n')
    (tmp_path / "t.yaml").write_text(yaml.safe_dump(doc))
    task = load_items(load_task(tmp_path / "t.yaml"))
    assert [it.gold for it in task.items] == ["a"]
