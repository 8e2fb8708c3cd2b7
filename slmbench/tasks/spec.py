"""Task specifications: the declarative YAML a user writes, validated into plain dataclasses.

Validation happens here, once, so that everything downstream (loading, prompting, scoring) can
trust the spec. Every problem becomes an :class:`~slmbench.errors.InputError` naming the file,
the field and the offending value.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slmbench.errors import InputError

KINDS = ("classification", "routing", "extraction")
FIELD_TYPES = ("string", "integer", "number", "boolean", "list")
DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


@dataclass(frozen=True)
class Route:
    name: str
    description: str = ""
    target: str = ""


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "string"
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """Where the items come from: local files per split, or a hub id."""

    files: dict[str, Path] = field(default_factory=dict)
    hub: str | None = None
    config: str | None = None
    split: str = "test"
    train_split: str | None = None
    columns: dict[str, str] = field(default_factory=dict)
    limit: int | None = None


@dataclass(frozen=True)
class TaskSpec:
    name: str
    kind: str
    path: Path
    dataset: DatasetSpec
    instruction: str
    template: str
    labels: tuple[str, ...] | None = None  # None with labels_from_train: filled at load time
    labels_from_train: bool = False
    routes: tuple[Route, ...] = ()
    fallback: str | None = None
    fields: tuple[FieldSpec, ...] = ()
    few_shot: tuple[dict[str, Any], ...] = ()
    max_tokens: int | None = None
    description: str = ""
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The closed answer set a model must pick from (labels, or route names)."""
        if self.kind == "routing":
            return tuple(r.name for r in self.routes)
        return self.labels

    @property
    def spec_hash(self) -> str:
        """Hash of the spec as written, so a manifest pins exactly what was run."""
        blob = json.dumps(self.raw, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()

    def with_labels(self, labels: tuple[str, ...]) -> TaskSpec:
        data = asdict(self)
        data.update(labels=labels, dataset=self.dataset, routes=self.routes, fields=self.fields)
        data["raw"] = self.raw
        return TaskSpec(**data)


# ----------------------------------------------------------------------------------------------
# validation helpers


class _V:
    """Small validator bound to one file, so every error carries the file name."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, msg: str, fld: str | None = None, value: Any = ...) -> InputError:
        return InputError(msg, file=self.path, field=fld, value=value)

    def get(self, data: dict, key: str, typ: type | tuple, where: str, *, required: bool = False,
            default: Any = None) -> Any:
        fld = f"{where}.{key}" if where else key
        if key not in data or data[key] is None:
            if required:
                raise self.fail("is required", fld)
            return default
        value = data[key]
        if isinstance(value, bool) and typ in (int, float, (int, float)):
            raise self.fail(f"must be {_type_name(typ)}", fld, value)
        if not isinstance(value, typ):
            raise self.fail(f"must be {_type_name(typ)}", fld, value)
        if isinstance(value, str) and required and not value.strip():
            raise self.fail("must not be empty", fld, value)
        return value


def _type_name(typ: type | tuple) -> str:
    names = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
             list: "a list", dict: "a mapping"}
    if isinstance(typ, tuple):
        return " or ".join(names.get(t, t.__name__) for t in typ)
    return names.get(typ, typ.__name__)


KNOWN_KEYS = {
    "name", "kind", "description", "dataset", "prompt", "few_shot", "labels", "routes",
    "fallback", "fields", "max_tokens",
}


def load_task(path: str | Path) -> TaskSpec:
    """Read and validate one task YAML file."""
    path = Path(path)
    if not path.exists():
        raise InputError("task file not found", file=path)
    if path.is_dir():
        raise InputError("is a directory, expected a task YAML file", file=path)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"is not UTF-8 text ({exc.reason} at byte {exc.start})",
                         file=path) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise InputError(f"malformed YAML{where}: {problem}", file=path) from None
    return parse_task(data, path)


def parse_task(data: Any, path: Path) -> TaskSpec:
    """Validate an already-parsed YAML document (split out so fuzz tests can call it)."""
    v = _V(path)
    if not isinstance(data, dict):
        raise v.fail("a task file must be a YAML mapping", None, type(data).__name__)
    unknown = sorted(set(map(str, data)) - KNOWN_KEYS)
    if unknown:
        raise v.fail(f"unknown key (expected one of {', '.join(sorted(KNOWN_KEYS))})",
                     unknown[0], data.get(unknown[0]))
    name = v.get(data, "name", str, "", required=True)
    kind = v.get(data, "kind", str, "", required=True)
    if kind not in KINDS:
        raise v.fail(f"must be one of {', '.join(KINDS)}", "kind", kind)

    dataset = _parse_dataset(v, v.get(data, "dataset", dict, "", required=True), kind)
    prompt = v.get(data, "prompt", dict, "", default={})
    instruction = v.get(prompt, "instruction", str, "prompt", default=None)
    template = v.get(prompt, "template", str, "prompt", default="{text}")
    if "{text}" not in template:
        raise v.fail("must contain the {text} placeholder", "prompt.template", template)

    labels: tuple[str, ...] | None = None
    labels_from_train = False
    routes: tuple[Route, ...] = ()
    fallback = None
    fields: tuple[FieldSpec, ...] = ()

    if kind == "classification":
        raw_labels = data.get("labels")
        if raw_labels == "from_train":
            if not dataset.train_split:
                raise v.fail("'from_train' needs dataset.train_split", "labels", raw_labels)
            labels_from_train = True
        else:
            labels = _parse_str_list(v, raw_labels, "labels")
        if instruction is None:
            instruction = DEFAULT_INSTRUCTIONS["classification"]
    elif kind == "routing":
        routes = _parse_routes(v, data.get("routes"))
        fallback = v.get(data, "fallback", str, "", required=True)
        if fallback not in {r.name for r in routes}:
            raise v.fail("must name one of the routes", "fallback", fallback)
        if instruction is None:
            instruction = DEFAULT_INSTRUCTIONS["routing"]
    else:
        fields = _parse_fields(v, data.get("fields"))
        if instruction is None:
            instruction = DEFAULT_INSTRUCTIONS["extraction"]
    for key in ("labels", "routes", "fallback", "fields"):
        allowed = {"classification": {"labels"}, "routing": {"routes", "fallback"},
                   "extraction": {"fields"}}[kind]
        if key in data and key not in allowed:
            raise v.fail(f"does not apply to kind '{kind}'", key, data[key])

    few_shot = _parse_few_shot(v, data.get("few_shot"), kind)
    max_tokens = v.get(data, "max_tokens", int, "", default=None)
    if max_tokens is not None and max_tokens <= 0:
        raise v.fail("must be a positive integer", "max_tokens", max_tokens)
    return TaskSpec(
        name=name, kind=kind, path=path, dataset=dataset, instruction=instruction,
        template=template, labels=labels, labels_from_train=labels_from_train, routes=routes,
        fallback=fallback, fields=fields, few_shot=few_shot, max_tokens=max_tokens,
        description=v.get(data, "description", str, "", default=""), raw=data,
    )


DEFAULT_INSTRUCTIONS = {
    "classification": (
        "Classify the message into exactly one of these labels:\n{labels}\n"
        "Answer with the label only."
    ),
    "routing": (
        "Route the request to exactly one of these routes:\n{routes}\n"
        "Answer with the route name only."
    ),
    "extraction": (
        "Extract these fields from the text as a JSON object:\n{fields}\n"
        "Use null for a field that is not in the text. Answer with the JSON object only."
    ),
}

DATASET_KEYS = {"files", "path", "hub", "config", "split", "train_split", "columns", "limit"}
COLUMN_ROLES = {
    "classification": ("id", "text", "label"),
    "routing": ("id", "text", "label"),
    "extraction": ("id", "text", "fields"),
}


def _parse_dataset(v: _V, data: dict, kind: str) -> DatasetSpec:
    unknown = sorted(set(map(str, data)) - DATASET_KEYS)
    if unknown:
        raise v.fail(f"unknown key (expected one of {', '.join(sorted(DATASET_KEYS))})",
                     f"dataset.{unknown[0]}", data.get(unknown[0]))
    hub = v.get(data, "hub", str, "dataset")
    config = v.get(data, "config", str, "dataset")
    split = v.get(data, "split", str, "dataset", default="test")
    train_split = v.get(data, "train_split", str, "dataset")
    files: dict[str, Path] = {}
    raw_files = data.get("files")
    if "path" in data:
        if raw_files is not None:
            raise v.fail("give either 'path' or 'files', not both", "dataset.path", data["path"])
        raw_files = {split: v.get(data, "path", str, "dataset", required=True)}
    if raw_files is not None:
        if not isinstance(raw_files, dict) or not raw_files:
            raise v.fail("must map split names to file paths", "dataset.files", raw_files)
        for split_name, rel in raw_files.items():
            if not isinstance(rel, str) or not rel.strip():
                raise v.fail("must be a file path", f"dataset.files.{split_name}", rel)
            file_path = (v.path.parent / rel).resolve()
            if file_path.suffix.lower() not in DATA_FORMATS:
                raise v.fail(f"unsupported file type (use {', '.join(DATA_FORMATS)})",
                             f"dataset.files.{split_name}", rel)
            files[str(split_name)] = file_path
    if hub and files:
        raise v.fail("give either 'hub' or local files, not both", "dataset.hub", hub)
    if not hub and not files:
        raise v.fail("needs 'path', 'files' or 'hub'", "dataset", data)
    if files:
        for s in (split, train_split):
            if s is not None and s not in files:
                raise v.fail(f"split has no file (files given for: {', '.join(files)})",
                             "dataset.split" if s == split else "dataset.train_split", s)
    columns = v.get(data, "columns", dict, "dataset", default={})
    roles = COLUMN_ROLES[kind]
    for role, col in columns.items():
        if role not in roles:
            raise v.fail(f"unknown column role (expected {', '.join(roles)})",
                         f"dataset.columns.{role}", col)
        if not isinstance(col, str) or not col:
            raise v.fail("must be a column name", f"dataset.columns.{role}", col)
    limit = v.get(data, "limit", int, "dataset")
    if limit is not None and limit <= 0:
        raise v.fail("must be a positive integer", "dataset.limit", limit)
    return DatasetSpec(files=files, hub=hub, config=config, split=split, train_split=train_split,
                       columns={r: columns.get(r, r) for r in roles}, limit=limit)


def _parse_str_list(v: _V, value: Any, fld: str) -> tuple[str, ...]:
    if value is None:
        raise v.fail("is required (a list of labels, or 'from_train')", fld)
    if not isinstance(value, list) or not value:
        raise v.fail("must be a non-empty list", fld, value)
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise v.fail("must be a non-empty string", f"{fld}[{i}]", item)
        if item in out:
            raise v.fail("is listed twice", f"{fld}[{i}]", item)
        out.append(item)
    return tuple(out)


def _parse_routes(v: _V, value: Any) -> tuple[Route, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise v.fail("must be a list of at least two routes", "routes", value)
    routes = []
    for i, item in enumerate(value):
        where = f"routes[{i}]"
        if not isinstance(item, dict):
            raise v.fail("must be a mapping with name, description, target", where, item)
        name = v.get(item, "name", str, where, required=True)
        if name in {r.name for r in routes}:
            raise v.fail("is listed twice", f"{where}.name", name)
        routes.append(Route(name=name,
                            description=v.get(item, "description", str, where, default=""),
                            target=v.get(item, "target", str, where, default="")))
    return tuple(routes)


def _parse_fields(v: _V, value: Any) -> tuple[FieldSpec, ...]:
    if not isinstance(value, list) or not value:
        raise v.fail("must be a non-empty list of fields", "fields", value)
    fields = []
    for i, item in enumerate(value):
        where = f"fields[{i}]"
        if isinstance(item, str):
            item = {"name": item}
        if not isinstance(item, dict):
            raise v.fail("must be a mapping with name, type, required", where, item)
        name = v.get(item, "name", str, where, required=True)
        if name in {f.name for f in fields}:
            raise v.fail("is listed twice", f"{where}.name", name)
        typ = v.get(item, "type", str, where, default="string")
        if typ not in FIELD_TYPES:
            raise v.fail(f"must be one of {', '.join(FIELD_TYPES)}", f"{where}.type", typ)
        fields.append(FieldSpec(name=name, type=typ,
                                required=v.get(item, "required", bool, where, default=True),
                                description=v.get(item, "description", str, where, default="")))
    return tuple(fields)


def _parse_few_shot(v: _V, value: Any, kind: str) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise v.fail("must be a list of {text, answer} examples", "few_shot", value)
    out = []
    for i, item in enumerate(value):
        where = f"few_shot[{i}]"
        if not isinstance(item, dict):
            raise v.fail("must be a mapping with text and answer", where, item)
        text = v.get(item, "text", str, where, required=True)
        answer = item.get("answer")
        if answer is None:
            raise v.fail("is required", f"{where}.answer")
        if kind == "extraction" and not isinstance(answer, dict):
            raise v.fail("must be a mapping of field values", f"{where}.answer", answer)
        if kind != "extraction" and not isinstance(answer, str):
            raise v.fail("must be a string", f"{where}.answer", answer)
        out.append({"text": text, "answer": answer})
    return tuple(out)
