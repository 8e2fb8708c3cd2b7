"""Kind ``chain``: classify, then extract the fields of the predicted class.

The gold is ``{"label": class, "fields": that class's field values}``. A plain model answers
both in one JSON object, constrained on llama.cpp to one object per class; a
``classify → extract`` pipeline (:mod:`slmbench.models.chain`) answers through its steps,
each of which sees an ordinary classification or extraction task
(:mod:`slmbench.tasks.chain`). Both are scored by :mod:`slmbench.scoring.chain`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slmbench.errors import InputError
from slmbench.tasks.kinds.base import (
    FIELDS_SCHEMA,
    LABELS_SCHEMA,
    RequestParts,
    TaskKind,
    parse_labels,
)
from slmbench.tasks.kinds.classification import KIND as CLASSIFICATION
from slmbench.tasks.kinds.extraction import KIND as EXTRACTION
from slmbench.tasks.kinds.extraction import (
    field_props,
    parse_fields,
    stored_fields,
    string_bounds,
)
from slmbench.tasks.spec import (
    DEFAULT_EXTRACT_INSTRUCTION,
    DEFAULT_SINGLE_INSTRUCTION,
    ChainClass,
    FieldSpec,
)

CLASS_KEYS = {"fields", "instruction"}


class Chain(TaskKind):
    name = "chain"
    keys = ("labels", "fields", "label_field", "classes")
    prompt_keys = ("extract_instruction", "single_instruction")
    key_schemas = {
        "labels": LABELS_SCHEMA,
        "fields": FIELDS_SCHEMA,
        "label_field": {"type": "string", "minLength": 1, "description": (
            "kind chain: the key of the class in a single-call JSON answer (default 'label'); "
            "must not be a field name.")},
        "classes": {
            "type": "object",
            "description": ("kind chain: per class (a label), the fields its extraction step "
                            "pulls out (names from fields; default all) and its own "
                            "instruction."),
            "additionalProperties": {
                "type": "object", "additionalProperties": False,
                "properties": {"fields": {"type": "array", "items": {"type": "string"},
                                          "uniqueItems": True},
                               "instruction": {"type": "string"}},
            },
        },
        "extract_instruction": {"type": "string", "description": (
            "kind chain: the extraction step's instruction for every class without its own; "
            "placeholders {fields} (that class's), {label}, {label_field}.")},
        "single_instruction": {"type": "string", "description": (
            "kind chain: the instruction a single model gets to classify and extract in one "
            "call; placeholders {classes}, {labels}, {fields}, {label_field}.")},
    }
    required_keys = ("labels", "fields")
    shot_answer_schema = {"type": "object"}
    columns = ("id", "text", "label", "fields")
    optional_columns = ("fields",)
    default_instruction = CLASSIFICATION.default_instruction
    default_max_tokens = 256

    def parse(self, v: Any, data: dict[str, Any], prompt: dict[str, Any],
              train_split: str | None) -> dict[str, Any]:
        out = parse_labels(v, data, train_split)
        out["fields"] = fields = parse_fields(v, data.get("fields"))
        out.update(_parse_chain(v, data, prompt, fields, out["labels"]))
        return out

    def check_shot_answer(self, v: Any, answer: Any, where: str) -> None:
        if not isinstance(answer, dict):
            raise v.fail("must be a mapping of field values", where, answer)

    def check_shots(self, v: Any, fields: dict[str, Any],
                    shots: tuple[dict[str, Any], ...]) -> None:
        _check_chain_shots(v, shots, fields["labels"], fields["label_field"], fields["fields"],
                           fields["classes"])

    def gold(self, spec: Any, row: dict[str, Any], item_id: str, where: str) -> Any:
        """The label (as for classification) and that class's field values (as for
        extraction). A gold value in a field the class does not extract could never be
        right."""
        label = CLASSIFICATION.gold(spec, row, item_id, where)
        fields = EXTRACTION.gold(spec, row, item_id, where)
        own = spec.class_fields(label)
        names = {f.name for f in own}
        for name, value in fields.items():
            if name not in names and value not in (None, "", []):
                raise InputError(
                    f"item '{item_id}' has a value for field '{name}', which class '{label}' "
                    f"does not extract (add it to classes.{label}.fields)", file=where,
                    field=f"{spec.dataset.columns['fields']}.{name}", value=value)
        return {"label": label, "fields": {f.name: fields.get(f.name) for f in own}}

    def gold_labels(self, gold: Any) -> tuple[Any, ...]:
        return (gold["label"],)

    def shot_labels(self, spec: Any, answer: Any) -> tuple[Any, ...]:
        return (answer.get(spec.label_field),)

    def check_labels(self, spec: Any, allowed: set[str]) -> None:
        for cls in spec.classes:
            if cls.label not in allowed:
                raise InputError("is not one of the labels", file=spec.path,
                                 field=f"classes.{cls.label}", value=cls.label)

    def answer_text(self, spec: Any, answer: Any) -> str:
        return json.dumps(answer, ensure_ascii=False)

    def request_parts(self, task: Any) -> RequestParts:
        """A plain model answers class and fields in one JSON object."""
        from slmbench.tasks.chain import single_call_spec

        spec = task.spec
        return RequestParts(single_call_spec(spec), None, chain_json_schema(task),
                            spec.max_tokens or self.default_max_tokens)

    def score(self, scorer: Any, row: dict[str, Any], comp: Any, item: Any) -> None:
        """A pipeline's answer comes from its steps (``extra["steps"]``, lifted to the row's
        ``steps``); a single call's from its one JSON object."""
        from slmbench.scoring.chain import chain_correct, parse_chain_answer

        spec = scorer.task.spec
        extra = dict(row.get("extra") or {})
        steps = extra.pop("steps", None)
        if steps is not None:
            row["steps"] = steps
            row["cached"] = bool(steps) and all(s.get("cached") for s in steps)
            answer: dict[str, Any] | None = {
                "label": steps[0].get("answer"),
                "fields": steps[1].get("answer") if len(steps) > 1 else (
                    {} if steps[0].get("answer") is not None else None)}
            if extra:
                row["extra"] = extra
            else:
                row.pop("extra", None)
        else:
            answer = parse_chain_answer(comp.text, spec.label_field,
                                        [f.name for f in spec.fields], scorer.matcher)
        row["answer"] = answer
        row["invalid"] = answer is None or answer["label"] is None or answer["fields"] is None
        row["correct"] = chain_correct(answer, item.gold, spec.fields)

    def describe(self, spec: Any) -> dict[str, Any]:
        return {**EXTRACTION.describe(spec),
                "labels": list(spec.labels or ()), "label_field": spec.label_field,
                "classes": {label: [f.name for f in spec.class_fields(label)]
                            for label in spec.labels or ()}}

    def metric_kwargs(self, task_info: dict[str, Any]) -> dict[str, Any]:
        """The class's label set, and every field any class extracts."""
        return {"labels": task_info.get("labels", []), "fields": stored_fields(task_info)}

    def metrics(self, rows: Sequence[dict[str, Any]], *, seed: int = 0,
                **kwargs: Any) -> dict[str, Any]:
        from slmbench.scoring.chain import chain_metrics

        return chain_metrics([r["gold"] for r in rows],
                             [None if r.get("error") else r.get("answer") for r in rows],
                             kwargs.get("labels", ()), kwargs.get("fields", ()), seed=seed)

    def row_checker(self, task_info: dict[str, Any]) -> Any:
        labels = self.allowed_golds(task_info)

        def check(row: dict[str, Any]) -> Any:
            gold = row.get("gold")
            answer = None if row.get("error") else row.get("answer")
            if not (isinstance(gold, dict) and isinstance(gold.get("label"), str)
                    and gold["label"] in labels and isinstance(gold.get("fields"), dict)):
                return "gold", gold, ('must be {"label": one of the task\'s labels, "fields": '
                                      'a mapping of field values}')
            if answer is not None and not (
                    isinstance(answer, dict)
                    and (answer.get("label") is None or isinstance(answer.get("label"), str))
                    and (answer.get("fields") is None or isinstance(answer["fields"], dict))):
                return "answer", answer, ('must be null or {"label": a string or null, '
                                          '"fields": a mapping or null}')
            return None

        return check

    def report_table(self, rows: list[dict[str, Any]], multi: bool) -> list[str]:
        """Pipelines and single calls side by side on the three figures that matter."""
        from slmbench.markdown import cell as _cell
        from slmbench.markdown import fmt, md_table

        head = (["run"] if multi else []) + [
            "model", "intent accuracy", "intent macro-F1", "field P / R / F1", "exact match",
            "$/1k items", "$/correct"]
        body = []
        for r in rows:
            e = r["entry"]
            body.append(([r["run_id"]] if multi else []) + [
                r["model"], fmt("accuracy", e.get("intent_accuracy")),
                fmt("f1", e.get("intent_macro_f1")),
                " / ".join(fmt("f1", e.get(f"field_micro_{k}"))
                           for k in ("precision", "recall", "f1")),
                _cell("accuracy", r), _cell("usd_per_1k_items", r),
                _cell("usd_per_correct", r)])
        return [md_table(head, body, ["l"] * (1 + multi) + ["r"] * 6)
                + "\nExact match = the intent right and every field equal (the accuracy); "
                "field F1 counts (field, value) pairs whatever the intent.\n"]

    def report_model(self, entry: dict[str, Any]) -> list[str]:
        """Its steps' costs (pipelines) and the per-field table, then the class's tables."""
        from slmbench.markdown import fmt, md_cell, md_table
        from slmbench.markdown import format_usd as _usd

        parts = []
        pricing = entry.get("pricing") or {}
        if pricing.get("basis") == "chain":
            steps = [f"{i}. `{md_cell(st.get('model'))}` on {st.get('items')} items, "
                     + ("unpriced" if st.get("total_usd") is None else _usd(st["total_usd"]))
                     + f" ({st.get('basis')})"
                     for i, st in enumerate(pricing.get("steps") or [], 1)]
            parts.append("Pipeline steps (cost = their sum): " + "; ".join(steps) + ".\n")
        fields = entry.get("per_field") or {}
        parts.append(md_table(
            ["field", "precision", "recall", "F1", "tp", "fp", "fn"],
            [[name_, fmt("precision", m.get("precision")), fmt("recall", m.get("recall")),
              fmt("f1", m.get("f1")), m.get("tp"), m.get("fp"), m.get("fn")]
             for name_, m in fields.items() if m.get("tp") or m.get("fp") or m.get("fn")],
            ["l"] + ["r"] * 6))
        return parts + super().report_model(entry)


def chain_json_schema(task: Any) -> dict[str, Any]:
    """A single-call chain answer: one alternative per class, the class (a constant) first and
    then exactly that class's fields, so constrained decoding picks the class, then fills in
    its fields."""
    spec = task.spec
    variants = []
    for label in spec.labels or ():
        props = {spec.label_field: {"const": label},
                 **field_props(spec.class_fields(label), string_bounds(task))}
        variants.append({"type": "object", "properties": props, "required": list(props),
                         "additionalProperties": False})
    return {"oneOf": variants}


def _parse_chain(v: Any, data: dict, prompt: dict, fields: tuple[FieldSpec, ...],
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
    for key in Chain.prompt_keys:
        out[key] = v.get(prompt, key, str, "prompt", default=None)
    out["extract_instruction"] = out["extract_instruction"] or DEFAULT_EXTRACT_INSTRUCTION
    out["single_instruction"] = out["single_instruction"] or DEFAULT_SINGLE_INSTRUCTION
    return out


def _check_chain_shots(v: Any, shots: tuple[dict[str, Any], ...],
                       labels: tuple[str, ...] | None, label_field: str,
                       fields: tuple[FieldSpec, ...], classes: tuple[ChainClass, ...]) -> None:
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


KIND = Chain()
