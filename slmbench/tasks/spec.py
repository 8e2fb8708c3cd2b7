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

KINDS = ("classification", "routing", "extraction", "chain")
FIELD_TYPES = ("string", "integer", "number", "boolean", "list")
DATA_FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}


MODEL_TARGET = "model:"  # a route whose target is ``model:<model id>`` calls that model
DEFAULT_ROUTE_TOKENS_OUT = 256


@dataclass(frozen=True)
class Route:
    name: str
    description: str = ""
    target: str = ""
    #: expected answer length of the downstream model call (``model:`` targets only); what
    #: the route's own cost is estimated with, since the downstream call is not made
    tokens_out: int | None = None

    @property
    def model(self) -> str | None:
        """The model id a ``model:`` target calls, else None (a pipeline, a human queue)."""
        return self.target[len(MODEL_TARGET):].strip() if self.target.startswith(
            MODEL_TARGET) else None


@dataclass(frozen=True)
class FieldSpec:
    name: str
    type: str = "string"
    required: bool = True
    description: str = ""


@dataclass(frozen=True)
class ChainClass:
    """Per-class overrides of a chain task's extraction step (kind ``chain``)."""

    label: str
    fields: tuple[str, ...] | None = None  # names from the task's fields; None: all of them
    instruction: str | None = None  # None: the task's prompt.extract_instruction


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
    # kind chain: key of the class in a single-call answer, per-class overrides, step prompts
    label_field: str = "label"
    classes: tuple[ChainClass, ...] = ()
    extract_instruction: str | None = None
    single_instruction: str | None = None
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

    def class_fields(self, label: str) -> tuple[FieldSpec, ...]:
        """Kind chain: the fields the extraction step pulls out for items of class ``label``."""
        for cls in self.classes:
            if cls.label == label and cls.fields is not None:
                by_name = {f.name: f for f in self.fields}
                return tuple(by_name[name] for name in cls.fields)
        return self.fields

    def class_instruction(self, label: str) -> str:
        """Kind chain: the extraction step's instruction for class ``label`` (unfilled)."""
        for cls in self.classes:
            if cls.label == label and cls.instruction is not None:
                return cls.instruction
        return self.extract_instruction or DEFAULT_EXTRACT_INSTRUCTION

    def with_labels(self, labels: tuple[str, ...]) -> TaskSpec:
        data = asdict(self)
        data.update(labels=labels, dataset=self.dataset, routes=self.routes, fields=self.fields,
                    classes=self.classes)
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
    "fallback", "fields", "max_tokens", "label_field", "classes",
}
# top-level keys that only some kinds take
KIND_KEYS = {"classification": {"labels"}, "routing": {"routes", "fallback"},
             "extraction": {"fields"}, "chain": {"labels", "fields", "label_field", "classes"}}


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
    chain: dict[str, Any] = {}

    if kind in ("classification", "chain"):
        raw_labels = data.get("labels")
        if raw_labels == "from_train":
            if not dataset.train_split:
                raise v.fail("'from_train' needs dataset.train_split", "labels", raw_labels)
            labels_from_train = True
        else:
            labels = _parse_str_list(v, raw_labels, "labels")
        if instruction is None:
            instruction = DEFAULT_INSTRUCTIONS["classification"]
        if kind == "chain":
            fields = _parse_fields(v, data.get("fields"))
            chain = _parse_chain(v, data, prompt, fields, labels)
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
    for key in ("labels", "routes", "fallback", "fields", "label_field", "classes"):
        if key in data and key not in KIND_KEYS[kind]:
            raise v.fail(f"does not apply to kind '{kind}'", key, data[key])
    for key in CHAIN_PROMPT_KEYS:
        if kind != "chain" and key in prompt:
            raise v.fail(f"does not apply to kind '{kind}'", f"prompt.{key}", prompt[key])

    few_shot = _parse_few_shot(v, data.get("few_shot"), kind)
    if kind == "chain":
        _check_chain_shots(v, few_shot, labels, chain["label_field"], fields, chain["classes"])
    max_tokens = v.get(data, "max_tokens", int, "", default=None)
    if max_tokens is not None and max_tokens <= 0:
        raise v.fail("must be a positive integer", "max_tokens", max_tokens)
    return TaskSpec(
        name=name, kind=kind, path=path, dataset=dataset, instruction=instruction,
        template=template, labels=labels, labels_from_train=labels_from_train, routes=routes,
        fallback=fallback, fields=fields, few_shot=few_shot, max_tokens=max_tokens,
        description=v.get(data, "description", str, "", default=""), raw=data, **chain,
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

DEFAULT_EXTRACT_INSTRUCTION = (
    "The text has {label_field} {label}. Extract these fields from it as a JSON object:\n"
    "{fields}\nUse null for a field that is not in the text. Answer with the JSON object only."
)
DEFAULT_SINGLE_INSTRUCTION = (
    "Classify the text into exactly one {label_field} and extract the fields of that "
    "{label_field}. Each {label_field} with its fields:\n{classes}\n"
    "Answer with one JSON object: \"{label_field}\" first, then every field of that "
    "{label_field}, null when it is not in the text. Answer with the JSON object only."
)
CHAIN_PROMPT_KEYS = ("extract_instruction", "single_instruction")
CLASS_KEYS = {"fields", "instruction"}

DATASET_KEYS = {"files", "path", "hub", "config", "split", "train_split", "columns", "limit"}
COLUMN_ROLES = {
    "classification": ("id", "text", "label"),
    "routing": ("id", "text", "label"),
    "extraction": ("id", "text", "fields"),
    "chain": ("id", "text", "label", "fields"),
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


ROUTE_KEYS = ("name", "description", "target", "tokens_out")


def _parse_routes(v: _V, value: Any) -> tuple[Route, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise v.fail("must be a list of at least two routes", "routes", value)
    routes = []
    for i, item in enumerate(value):
        where = f"routes[{i}]"
        if not isinstance(item, dict):
            raise v.fail("must be a mapping with name, description, target", where, item)
        for key in item:
            if key not in ROUTE_KEYS:
                raise v.fail(f"unknown key (expected one of {', '.join(ROUTE_KEYS)})",
                             f"{where}.{key}", key)
        name = v.get(item, "name", str, where, required=True)
        if name in {r.name for r in routes}:
            raise v.fail("is listed twice", f"{where}.name", name)
        target = v.get(item, "target", str, where, default="")
        tokens_out = v.get(item, "tokens_out", int, where)
        if target.startswith(MODEL_TARGET):
            from slmbench.models.registry import parse_model_id

            try:
                parse_model_id(target[len(MODEL_TARGET):])
            except InputError as exc:
                raise v.fail(f"not a model id ({exc.reason})", f"{where}.target",
                             target) from None
            if tokens_out is not None and tokens_out < 1:
                raise v.fail("must be at least 1", f"{where}.tokens_out", tokens_out)
        elif tokens_out is not None:
            raise v.fail(f"only a route whose target is {MODEL_TARGET}<model id> takes "
                         "tokens_out", f"{where}.tokens_out", tokens_out)
        routes.append(Route(name=name,
                            description=v.get(item, "description", str, where, default=""),
                            target=target, tokens_out=tokens_out))
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
        if kind in ("extraction", "chain") and not isinstance(answer, dict):
            raise v.fail("must be a mapping of field values", f"{where}.answer", answer)
        if kind not in ("extraction", "chain") and not isinstance(answer, str):
            raise v.fail("must be a string", f"{where}.answer", answer)
        out.append({"text": text, "answer": answer})
    return tuple(out)


def _parse_chain(v: _V, data: dict, prompt: dict, fields: tuple[FieldSpec, ...],
                 labels: tuple[str, ...] | None) -> dict[str, Any]:
    """The chain-only parts of a task: label_field, per-class overrides and the step prompts."""
    label_field = v.get(data, "label_field", str, "", default="label").strip()
    if not label_field:
        raise v.fail("must not be empty", "label_field", data.get("label_field"))
    if label_field in {f.name for f in fields}:
        raise v.fail("is also a field name; the single-call answer needs it as its own key",
                     "label_field", label_field)
    raw = v.get(data, "classes", dict, "", default={})
    known = {f.name for f in fields}
    classes = []
    for label, item in raw.items():
        where = f"classes.{label}"
        if not isinstance(label, str) or not label.strip():
            raise v.fail("class names must be non-empty strings", "classes", label)
        if labels is not None and label not in labels:
            raise v.fail("is not one of the labels", where, label)
        if not isinstance(item, dict):
            raise v.fail("must be a mapping with fields and/or instruction", where, item)
        unknown = sorted(set(map(str, item)) - CLASS_KEYS)
        if unknown:
            raise v.fail(f"unknown key (expected one of {', '.join(sorted(CLASS_KEYS))})",
                         f"{where}.{unknown[0]}", item.get(unknown[0]))
        names = item.get("fields")
        if names is not None:
            if not isinstance(names, list):
                raise v.fail("must be a list of field names (may be empty)", f"{where}.fields",
                             names)
            for i, name in enumerate(names):
                if not isinstance(name, str) or name not in known:
                    raise v.fail("is not one of the task's fields", f"{where}.fields[{i}]", name)
                if names.index(name) != i:
                    raise v.fail("is listed twice", f"{where}.fields[{i}]", name)
            names = tuple(names)
        classes.append(ChainClass(label=label, fields=names,
                                  instruction=v.get(item, "instruction", str, where)))
    out: dict[str, Any] = {"label_field": label_field, "classes": tuple(classes)}
    for key in CHAIN_PROMPT_KEYS:
        out[key] = v.get(prompt, key, str, "prompt", default=None)
    out["extract_instruction"] = out["extract_instruction"] or DEFAULT_EXTRACT_INSTRUCTION
    out["single_instruction"] = out["single_instruction"] or DEFAULT_SINGLE_INSTRUCTION
    return out


def _check_chain_shots(v: _V, shots: tuple[dict[str, Any], ...], labels: tuple[str, ...] | None,
                       label_field: str, fields: tuple[FieldSpec, ...],
                       classes: tuple[ChainClass, ...]) -> None:
    """A chain few-shot answer is the single-call answer: the class under ``label_field`` plus
    fields of that class (so the same example can teach all three prompts)."""
    per_class = {c.label: set(c.fields) for c in classes if c.fields is not None}
    for i, shot in enumerate(shots):
        where = f"few_shot[{i}].answer"
        label = shot["answer"].get(label_field)
        if not isinstance(label, str) or (labels is not None and label not in labels):
            raise v.fail(f"needs '{label_field}' set to one of the labels",
                         f"{where}.{label_field}", label)
        allowed = per_class.get(label, {f.name for f in fields})
        for key in shot["answer"]:
            if key != label_field and key not in allowed:
                raise v.fail(f"is not a field of class '{label}'", f"{where}.{key}",
                             shot["answer"][key])
