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
from slmbench.tasks.fewshot import FewShotConfig, parse_few_shot_config, parse_prompts
from slmbench.tasks.kinds import KINDS

__all__ = ["KINDS", "ChainClass", "DatasetSpec", "FieldSpec", "Route", "TaskSpec", "load_task",
           "parse_task"]

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
    #: ``labels: from_data``: the label set of train and eval split together
    labels_from_data: bool = False
    #: ``unseen_gold``: ``error`` (a gold label outside the set is refused) or ``count_wrong``
    unseen_gold: str = "error"
    #: ``label_map``: gold values renamed as they are read (old → new)
    label_map: dict[str, str] = field(default_factory=dict)
    #: eval-split gold labels outside the label set, kept under ``unseen_gold: count_wrong``
    unseen_labels: tuple[str, ...] = ()
    routes: tuple[Route, ...] = ()
    fallback: str | None = None
    fields: tuple[FieldSpec, ...] = ()
    few_shot: tuple[dict[str, Any], ...] = ()
    #: ``few_shot`` given as a mapping: examples retrieved from the train split per item
    few_shot_from: FewShotConfig | None = None
    #: named prompt variants (``?prompt=NAME``): each the ``prompt`` mapping it stands for
    prompts: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    #: label → one-line description (``labels: [{name, description}]``)
    label_descriptions: dict[str, str] = field(default_factory=dict)
    max_tokens: int | None = None
    description: str = ""
    # kind chain: key of the class in a single-call answer, per-class overrides, step prompts
    label_field: str = "label"
    classes: tuple[ChainClass, ...] = ()
    extract_instruction: str | None = None
    single_instruction: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: what a plugin kind parsed from keys of its own (``TaskKind.parse``)
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def choices(self) -> tuple[str, ...] | None:
        """The closed answer set a model must pick from (labels, or route names)."""
        from slmbench.tasks.kinds import get_kind

        return get_kind(self.kind).choices(self)

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
        data["raw"], data["extra"] = self.raw, self.extra
        data["few_shot_from"] = self.few_shot_from
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


COMMON_KEYS = ("name", "kind", "description", "dataset", "prompt", "prompts", "few_shot",
               "max_tokens", "unseen_gold", "label_map")
UNSEEN_GOLD = ("error", "count_wrong")


def kind_keys() -> tuple[list[str], list[str]]:
    """The top-level and ``prompt`` keys that only some kinds take, in registry order."""
    from slmbench.tasks.kinds import loaded_kinds

    keys: list[str] = []
    prompt_keys: list[str] = []
    for kind in loaded_kinds():
        keys += [k for k in kind.keys if k not in keys]
        prompt_keys += [k for k in kind.prompt_keys if k not in prompt_keys]
    return keys, prompt_keys


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
    from slmbench.tasks.kinds import find_kind, kind_names

    v = _V(path)
    if not isinstance(data, dict):
        raise v.fail("a task file must be a YAML mapping", None, type(data).__name__)
    own_keys, own_prompt_keys = kind_keys()
    known = {*COMMON_KEYS, *own_keys}
    unknown = sorted(set(map(str, data)) - known)
    if unknown:
        raise v.fail(f"unknown key (expected one of {', '.join(sorted(known))})",
                     unknown[0], data.get(unknown[0]))
    name = v.get(data, "name", str, "", required=True)
    kind_name = v.get(data, "kind", str, "", required=True)
    kind = find_kind(kind_name)
    if kind is None:
        raise v.fail(f"must be one of {', '.join(kind_names())}", "kind", kind_name)

    dataset = _parse_dataset(v, v.get(data, "dataset", dict, "", required=True), kind_name)
    prompt = v.get(data, "prompt", dict, "", default={})
    instruction = v.get(prompt, "instruction", str, "prompt", default=None)
    template = v.get(prompt, "template", str, "prompt", default="{text}")
    if "{text}" not in template:
        raise v.fail("must contain the {text} placeholder", "prompt.template", template)

    labels_from_data = data.get("labels") == "from_data"
    parsed = kind.parse(v, {**data, "labels": "from_train"}, prompt,
                        dataset.train_split or dataset.split) if labels_from_data and \
        "labels" in kind.keys else kind.parse(v, data, prompt, dataset.train_split)
    authoring = _parse_authoring(v, data)
    if instruction is None:
        instruction = kind.default_instruction
    for key in own_keys:
        if key in data and key not in kind.keys:
            raise v.fail(f"does not apply to kind '{kind_name}'", key, data[key])
    for key in own_prompt_keys:
        if key in prompt and key not in kind.prompt_keys:
            raise v.fail(f"does not apply to kind '{kind_name}'", f"prompt.{key}", prompt[key])
    from slmbench.tasks.prompts import check_placeholders  # prompts.py renders a TaskSpec

    check_placeholders(path, data)

    few_shot_from = None
    if isinstance(data.get("few_shot"), dict):  # retrieved from the train split
        few_shot_from = parse_few_shot_config(v, data["few_shot"], kind, dataset.train_split)
        few_shot: tuple[dict[str, Any], ...] = ()
    else:
        few_shot = _parse_few_shot(v, data.get("few_shot"), kind)
    kind.check_shots(v, parsed, few_shot)
    max_tokens = v.get(data, "max_tokens", int, "", default=None)
    if max_tokens is not None and max_tokens <= 0:
        raise v.fail("must be a positive integer", "max_tokens", max_tokens)
    own = {k: parsed.pop(k) for k in list(parsed) if k not in _SPEC_FIELDS}
    return TaskSpec(
        name=name, kind=kind_name, path=path, dataset=dataset, instruction=instruction,
        template=template, few_shot=few_shot, max_tokens=max_tokens,
        description=v.get(data, "description", str, "", default=""), raw=data, extra=own,
        few_shot_from=few_shot_from, prompts=parse_prompts(v, data.get("prompts"), data),
        labels_from_data=labels_from_data, **authoring, **parsed,
    )


def _parse_authoring(v: _V, data: dict[str, Any]) -> dict[str, Any]:
    """``unseen_gold`` and ``label_map``: data quirks fixed in the YAML instead of a
    conversion script."""
    unseen = v.get(data, "unseen_gold", str, "", default="error")
    if unseen not in UNSEEN_GOLD:
        raise v.fail(f"must be one of {', '.join(UNSEEN_GOLD)}", "unseen_gold", unseen)
    label_map = v.get(data, "label_map", dict, "", default={})
    for old, new in label_map.items():
        if not isinstance(new, (str, int)) or isinstance(new, bool) or not str(new).strip():
            raise v.fail("must map a gold value to a non-empty label", f"label_map.{old}", new)
    return {"unseen_gold": unseen, "label_map": {str(k): str(w) for k, w in label_map.items()}}


_SPEC_FIELDS = frozenset(TaskSpec.__dataclass_fields__)

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

DATASET_KEYS = {"files", "path", "hub", "config", "split", "train_split", "columns", "limit"}


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
    from slmbench.tasks.kinds import get_kind

    columns = v.get(data, "columns", dict, "dataset", default={})
    roles = get_kind(kind).columns
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


def _parse_few_shot(v: _V, value: Any, kind: Any) -> tuple[dict[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise v.fail("must be a list of {text, answer} examples, or {from: train, k: N}",
                     "few_shot", value)
    out = []
    for i, item in enumerate(value):
        where = f"few_shot[{i}]"
        if not isinstance(item, dict):
            raise v.fail("must be a mapping with text and answer", where, item)
        text = v.get(item, "text", str, where, required=True)
        answer = item.get("answer")
        if answer is None:
            raise v.fail("is required", f"{where}.answer")
        kind.check_shot_answer(v, answer, f"{where}.answer")
        out.append({"text": text, "answer": answer})
    return tuple(out)
