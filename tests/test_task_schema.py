"""The shipped JSON Schema agrees with the Python validator on bundled and broken tasks."""

from __future__ import annotations

import json
from importlib import resources

import jsonschema
import pytest
import yaml
from conftest import BUNDLED_TASKS

from slmbench.errors import InputError
from slmbench.tasks import parse_task

SCHEMA = json.loads(resources.files("slmbench.tasks").joinpath("task.schema.json").read_text())


@pytest.mark.parametrize("path", sorted(BUNDLED_TASKS.glob("*.yaml")), ids=lambda p: p.name)
def test_bundled_tasks_follow_the_schema(path):
    doc = yaml.safe_load(path.read_text())
    jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    parse_task(doc, path)


BROKEN = [
    {"name": "t", "kind": "ranking", "dataset": {"path": "d.jsonl"}, "labels": ["a"]},
    {"name": "t", "kind": "classification", "dataset": {"path": "d.jsonl"}},
    {"name": "t", "kind": "routing", "dataset": {"path": "d.jsonl"}, "routes": [{"name": "a"}],
     "fallback": "a"},
    {"name": "t", "kind": "extraction", "dataset": {"path": "d.jsonl"},
     "fields": [{"name": "x", "type": "date"}]},
    {"name": "t", "kind": "classification", "dataset": {"path": "d.jsonl"}, "labels": ["a"],
     "prompt": {"template": "no placeholder"}},
    {"name": "t", "kind": "classification", "dataset": {"path": "d.jsonl", "limit": 0},
     "labels": ["a"]},
    {"name": "t", "kind": "classification", "dataset": {"path": "d.jsonl"}, "labels": ["a"],
     "colour": "blue"},
]


@pytest.mark.parametrize("doc", BROKEN)
def test_schema_and_validator_both_reject(tmp_path, doc):
    (tmp_path / "d.jsonl").write_text('{"id": "1", "text": "x", "label": "a"}\n')
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(doc)
    with pytest.raises(InputError):
        parse_task(doc, tmp_path / "t.yaml")
