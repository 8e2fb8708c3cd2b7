"""The JSON Schema of a task file, generated from the task kinds.

The keys every task has are described here; everything that depends on the kind (which kinds
exist, their keys with their schemas, which keys they require, their column roles, the type of
a few-shot answer) comes from the :class:`~slmbench.tasks.kinds.TaskKind` objects the Python
validator (:mod:`slmbench.tasks.spec`) uses, so a new kind, a plugin's included, appears in
``slmbench schema`` without an edit here. ``slmbench/tasks/task.schema.json`` is this schema for
the built-in kinds, for editors that read a file; a test keeps it equal to the generated one.

    python -m slmbench.tasks.schema --write   # after adding or changing a built-in kind
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("task.schema.json")


def task_schema(kinds: list[Any] | None = None) -> dict[str, Any]:
    """The task JSON Schema for ``kinds`` (default: every kind that loads)."""
    from slmbench.tasks.fewshot import FEW_SHOT_SCHEMA, PROMPTS_SCHEMA
    from slmbench.tasks.kinds import loaded_kinds

    kinds = loaded_kinds() if kinds is None else kinds
    own: dict[str, Any] = {}  # kind key → its schema (the first kind to declare it)
    own_prompt: dict[str, Any] = {}
    roles: list[str] = []
    for kind in kinds:
        for key in kind.keys:
            own.setdefault(key, kind.key_schemas.get(key, {}))
        for key in kind.prompt_keys:
            own_prompt.setdefault(key, kind.key_schemas.get(key, {}))
        roles += [r for r in kind.columns if r not in roles]
    role_kinds = {r: [k.name for k in kinds if r in k.columns] for r in roles}
    role_text = ", ".join(
        r if len(ks) == len(kinds) else f"{r} ({'/'.join(ks)})" for r, ks in role_kinds.items())
    rules = []
    for kind in kinds:
        then: dict[str, Any] = {
            "properties": {
                **{key: False for key in own if key not in kind.keys},
                "few_shot": {"items": {"properties": {"answer": kind.shot_answer_schema}}},
                "dataset": {"properties": {"columns": {"properties": {
                    r: False for r in roles if r not in kind.columns}}}},
            }}
        foreign_prompt = [key for key in own_prompt if key not in kind.prompt_keys]
        if foreign_prompt:
            then["properties"]["prompt"] = {"properties": {key: False
                                                           for key in foreign_prompt}}
        if kind.required_keys:
            then["required"] = list(kind.required_keys)
        rules.append({"if": {"required": ["kind"],
                             "properties": {"kind": {"const": kind.name}}}, "then": then})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://slmbench.dev/schema/task.schema.json",
        "title": "slmbench task",
        "description": (
            "A benchmark task: a dataset, a prompt, and per kind the label set, routes or "
            "fields. Generated from the task kinds (slmbench.tasks.kinds) that slmbench.tasks."
            "spec validates with; `slmbench schema` prints it with installed plugins."),
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "kind", "dataset"],
        "properties": {
            "name": {"type": "string", "minLength": 1,
                     "description": "Unique task name; appears in results."},
            "kind": {"enum": [k.name for k in kinds]},
            "description": {"type": "string"},
            "dataset": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "path": {"type": "string", "description": (
                        "One local file (.jsonl/.json/.csv/.parquet) for `split`, relative to "
                        "the YAML file.")},
                    "files": {"type": "object", "additionalProperties": {"type": "string"},
                              "minProperties": 1, "description": "Split name → local file."},
                    "hub": {"type": "string", "description": (
                        "A Hugging Face hub dataset id (loaded through `datasets`).")},
                    "config": {"type": "string"},
                    "split": {"type": "string", "default": "test"},
                    "train_split": {"type": "string", "description": (
                        "Split used to train baselines and, with labels: from_train, to take "
                        "the label set (labels: from_data takes it from train and test).")},
                    "columns": {
                        "type": "object",
                        "description": f"Role → column name. Roles: {role_text}.",
                        "properties": {r: {"type": "string"} for r in roles},
                        "additionalProperties": False,
                    },
                    "limit": {"type": "integer", "minimum": 1},
                },
                "oneOf": [{"required": ["path"]}, {"required": ["files"]},
                          {"required": ["hub"]}],
            },
            "prompt": {
                "type": "object",
                "additionalProperties": False,
                "properties": {
                    "instruction": {"type": "string", "description": (
                        "Fixed system instruction; placeholders {labels}, "
                        "{label_descriptions}, {routes}, {fields}, {fallback}.")},
                    "template": {"type": "string", "pattern": "\\{text\\}", "description": (
                        "User message for one item; must contain {text}.")},
                    **own_prompt,
                },
            },
            "few_shot": {"oneOf": [
                {"type": "array", "description": "Fixed examples, the same for every item.",
                 "items": {"type": "object", "required": ["text", "answer"],
                           "additionalProperties": False,
                           "properties": {"text": {"type": "string"}, "answer": {}}}},
                FEW_SHOT_SCHEMA,
            ]},
            "prompts": PROMPTS_SCHEMA,
            "max_tokens": {"type": "integer", "minimum": 1},
            "unseen_gold": {"enum": ["error", "count_wrong"], "default": "error",
                            "description": (
                                "Gold labels of the eval split outside the label set: an error "
                                "listing every one, or kept and scored as wrong.")},
            "label_map": {"type": "object", "additionalProperties": {"type": "string"},
                          "description": "Gold values renamed as they are read: old → new."},
            **own,
        },
        "allOf": rules,
    }


def schema_text(kinds: list[Any] | None = None) -> str:
    return json.dumps(task_schema(kinds), indent=2, ensure_ascii=False) + "\n"


def builtin_schema_text() -> str:
    """The schema of the built-in kinds only: what ``task.schema.json`` holds."""
    from slmbench.tasks.kinds import BUILTIN_KINDS, get_kind

    return schema_text([get_kind(name) for name in BUILTIN_KINDS])


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        SCHEMA_FILE.write_text(builtin_schema_text(), encoding="utf-8")
    else:
        sys.stdout.write(schema_text())
