"""Kind ``extraction``: pull declared fields out of the text as one JSON object.

The request carries a JSON schema of the fields (a grammar on llama.cpp, structured output on
APIs); string fields are bounded by the longest gold value of the train split, so a small
model cannot write one string until its output budget runs out. Scoring compares normalised
(field, value) pairs (:mod:`slmbench.scoring.extraction`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slmbench.errors import InputError
from slmbench.tasks.kinds.base import FIELDS_SCHEMA, RequestParts, TaskKind
from slmbench.tasks.spec import FIELD_TYPES, FieldSpec

_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number",
               "boolean": "boolean"}
#: a string field's bound: this many times its longest value in the train split
STRING_BOUND_FACTOR = 2
MIN_STRING_BOUND = 16


class Extraction(TaskKind):
    name = "extraction"
    keys = ("fields", "extra_gold_fields")
    key_schemas = {"fields": FIELDS_SCHEMA, "extra_gold_fields": {
        "enum": ["error", "ignore"], "default": "error", "description": (
            "Gold keys the task does not declare: an error, or ignored (keep a few of a "
            "dataset's slots without rewriting it).")}}
    required_keys = ("fields",)
    shot_answer_schema = {"type": "object"}
    columns = ("id", "text", "fields")
    optional_columns = ("fields",)  # gold may be spread over one column per field
    gold_role = "fields"
    default_instruction = (
        "Extract these fields from the text as a JSON object:\n{fields}\n"
        "Use null for a field that is not in the text. Answer with the JSON object only."
    )
    default_max_tokens = 256

    def parse(self, v: Any, data: dict[str, Any], prompt: dict[str, Any],
              train_split: str | None) -> dict[str, Any]:
        extra = v.get(data, "extra_gold_fields", str, "", default="error")
        if extra not in ("error", "ignore"):
            raise v.fail("must be error or ignore", "extra_gold_fields", extra)
        return {"fields": parse_fields(v, data.get("fields")), "extra_gold_fields": extra}

    def check_shot_answer(self, v: Any, answer: Any, where: str) -> None:
        if not isinstance(answer, dict):
            raise v.fail("must be a mapping of field values", where, answer)

    def choices(self, spec: Any) -> tuple[str, ...] | None:
        return None

    def gold(self, spec: Any, row: dict[str, Any], item_id: str, where: str) -> Any:
        cols = spec.dataset.columns
        gold = row.get(cols["fields"]) if cols["fields"] in row else {
            f.name: row.get(f.name) for f in spec.fields
        }
        if isinstance(gold, str):
            try:
                gold = json.loads(gold)
            except json.JSONDecodeError:
                raise InputError(f"item '{item_id}' gold fields are not JSON", file=where,
                                 field=cols["fields"], value=gold) from None
        if not isinstance(gold, dict):
            raise InputError(f"item '{item_id}' gold fields must be a mapping", file=where,
                             field=cols["fields"], value=gold)
        unknown = set(gold) - {f.name for f in spec.fields}
        if unknown and spec.extra.get("extra_gold_fields") != "ignore":
            name = sorted(unknown)[0]
            raise InputError(f"item '{item_id}' has a gold field the task does not declare",
                             file=where, field=f"{cols['fields']}.{name}", value=gold[name])
        from slmbench.scoring.extraction import normalize_value

        for f in spec.fields:  # two values can never equal one string: the item could not score
            value = gold.get(f.name)
            if (f.type != "list" and isinstance(value, list)
                    and len(normalize_value(value, f.type)) > 1):
                raise InputError(f"item '{item_id}' has {len(value)} values as gold of field "
                                 f"'{f.name}', declared type: {f.type} (declare type: list)",
                                 file=where, field=f"{cols['fields']}.{f.name}", value=gold[f.name])
        return {f.name: gold.get(f.name) for f in spec.fields}

    def gold_labels(self, gold: Any) -> tuple[Any, ...]:
        return ()

    def shot_labels(self, spec: Any, answer: Any) -> tuple[Any, ...]:
        return ()

    def answer_text(self, spec: Any, answer: Any) -> str:
        return json.dumps(answer, ensure_ascii=False)

    def request_parts(self, task: Any) -> RequestParts:
        spec = task.spec
        return RequestParts(spec, None, json_schema(task),
                            spec.max_tokens or self.default_max_tokens)

    def score(self, scorer: Any, row: dict[str, Any], comp: Any, item: Any) -> None:
        from slmbench.scoring import exact_match, parse_json_object

        answer = parse_json_object(comp.text)
        row["answer"] = answer
        row["invalid"] = answer is None
        row["correct"] = exact_match(answer, item.gold, scorer.task.spec.fields)

    def describe(self, spec: Any) -> dict[str, Any]:
        return {"fields": [{"name": f.name, "type": f.type, "required": f.required}
                           for f in spec.fields]}

    def metric_kwargs(self, task_info: dict[str, Any]) -> dict[str, Any]:
        return {"fields": stored_fields(task_info)}

    def metrics(self, rows: Sequence[dict[str, Any]], *, seed: int = 0,
                **kwargs: Any) -> dict[str, Any]:
        from slmbench.scoring.extraction import extraction_metrics

        pred = [None if r.get("error") else r.get("answer") for r in rows]
        return extraction_metrics([r["gold"] for r in rows], pred, kwargs.get("fields", ()),
                                  seed=seed)

    def row_checker(self, task_info: dict[str, Any]) -> Any:
        def check(row: dict[str, Any]) -> Any:
            gold = row.get("gold")
            # what scoring reads as the prediction: nothing of a failed call
            answer = None if row.get("error") else row.get("answer")
            if not isinstance(gold, dict):
                return "gold", gold, "must be a mapping of field values"
            if answer is not None and not isinstance(answer, dict):
                return "answer", answer, "must be a mapping of field values or null"
            return None

        return check

    def report_details(self, entry: dict[str, Any]) -> list[str]:
        from slmbench.markdown import fmt, md_table, reliability_part

        fields = entry.get("per_field") or {}
        return [
            f"JSON-valid {fmt('json_valid_rate', entry.get('json_valid_rate'))}, "
            f"exact match {fmt('accuracy', entry.get('exact_match'))}, micro "
            f"P/R/F1 {fmt('f1', entry.get('micro_precision'))} / "
            f"{fmt('f1', entry.get('micro_recall'))} / "
            f"{fmt('f1', entry.get('micro_f1'))}\n",
            md_table(["field", "precision", "recall", "F1", "tp", "fp", "fn"],
                     [[name_, fmt("precision", m.get("precision")),
                       fmt("recall", m.get("recall")), fmt("f1", m.get("f1")), m.get("tp"),
                       m.get("fp"), m.get("fn")] for name_, m in fields.items()],
                     ["l"] + ["r"] * 6),
            *reliability_part(entry),
        ]


def stored_fields(task_info: dict[str, Any]) -> list[FieldSpec]:
    """The fields of a task as its manifest entry records them."""
    return [FieldSpec(name=f["name"], type=f.get("type", "string"))
            for f in task_info.get("fields", [])]


def parse_fields(v: Any, value: Any) -> tuple[FieldSpec, ...]:
    """``fields``: each a name, or a mapping with name, type, required, description."""
    if not isinstance(value, list) or not value:
        raise v.fail("must be a non-empty list of fields", "fields", value)
    fields: list[FieldSpec] = []
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


def json_schema(task: Any) -> dict[str, Any]:
    """The JSON schema an extraction answer must follow (used for grammar-constrained decoding)."""
    props = field_props(task.spec.fields, string_bounds(task))
    return {"type": "object", "properties": props, "required": [f.name for f in task.spec.fields],
            "additionalProperties": False}


def string_bounds(task: Any) -> dict[str, int]:
    """``maxLength`` per string field, from the longest gold value in the train split.

    A grammar with unbounded strings lets a small model write one string until the output
    budget runs out (the answer is then cut off, not merely wrong); a bound twice the longest
    value seen in training leaves room for every plausible answer. No train split, no bound.
    API providers get the schema without it (strict structured output takes no length).
    """
    longest: dict[str, int] = {}
    for item in task.train:
        gold = item.gold.get("fields", item.gold) if isinstance(item.gold, dict) else None
        if not isinstance(gold, dict):
            continue
        for name, value in gold.items():
            values = value if isinstance(value, list) else [value]
            for v in values:
                if isinstance(v, str):
                    longest[name] = max(longest.get(name, 0), len(v))
    return {name: max(MIN_STRING_BOUND, STRING_BOUND_FACTOR * n) for name, n in longest.items()}


def field_props(fields: Any, bounds: dict[str, int] | None = None) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for f in fields:
        text: dict[str, Any] = {"type": "string"}
        if bounds and f.name in bounds:
            text["maxLength"] = bounds[f.name]
        if f.type == "list":
            props[f.name] = {"anyOf": [{"type": "array", "items": text}, {"type": "null"}]}
        elif f.type == "string":
            props[f.name] = {"anyOf": [text, {"type": "null"}]}
        else:
            props[f.name] = {"anyOf": [{"type": _JSON_TYPES[f.type]}, {"type": "null"}]}
    return props


KIND = Extraction()
