"""One item through one model: request → completion (with retries) → scored result row."""

from __future__ import annotations

from typing import Any

from slmbench.models.base import Completion, Model, Request
from slmbench.runner.cache import ResponseCache
from slmbench.runner.retry import AdaptiveWindow, RetryPolicy, call_with_retries
from slmbench.scoring import exact_match, label_matcher, parse_json_object, parse_label
from slmbench.store.manifest import now_iso
from slmbench.tasks import Item, LoadedTask, build_messages

DEFAULT_MAX_TOKENS = {"classification": 32, "routing": 32, "extraction": 256, "chain": 256}
_JSON_TYPES = {"string": "string", "integer": "integer", "number": "number",
               "boolean": "boolean"}


def json_schema(task: LoadedTask) -> dict[str, Any]:
    """The JSON schema an extraction answer must follow (used for grammar-constrained decoding)."""
    props = _field_props(task.spec.fields, string_bounds(task))
    return {"type": "object", "properties": props, "required": [f.name for f in task.spec.fields],
            "additionalProperties": False}


#: a string field's bound: this many times its longest value in the train split
STRING_BOUND_FACTOR = 2
MIN_STRING_BOUND = 16


def string_bounds(task: LoadedTask) -> dict[str, int]:
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


def _field_props(fields: Any, bounds: dict[str, int] | None = None) -> dict[str, Any]:
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


def chain_json_schema(task: LoadedTask) -> dict[str, Any]:
    """A single-call chain answer: one alternative per class, the class (a constant) first and
    then exactly that class's fields, so constrained decoding picks the class, then fills in
    its fields."""
    spec = task.spec
    variants = []
    for label in spec.labels or ():
        props = {spec.label_field: {"const": label},
                 **_field_props(spec.class_fields(label), string_bounds(task))}
        variants.append({"type": "object", "properties": props, "required": list(props),
                         "additionalProperties": False})
    return {"oneOf": variants}


class ItemScorer:
    """Everything per task that is the same for every item, computed once."""

    def __init__(self, task: LoadedTask) -> None:
        self.task = task
        spec = task.spec
        self.matcher = label_matcher(spec.choices) if spec.choices else {}
        self.schema = json_schema(task) if spec.kind == "extraction" else None
        self.max_tokens = spec.max_tokens or DEFAULT_MAX_TOKENS[spec.kind]
        self.prompt_spec = spec
        self.choices = spec.choices
        if spec.kind == "chain":  # a plain model answers class and fields in one JSON object
            from slmbench.tasks.chain import single_call_spec

            self.prompt_spec = single_call_spec(spec)
            self.schema = chain_json_schema(task)
            self.choices = None

    def request(self, item: Item) -> Request:
        return Request(messages=build_messages(self.prompt_spec, item.text), text=item.text,
                       choices=self.choices, json_schema=self.schema,
                       max_tokens=self.max_tokens)

    def row(self, model: Model, item: Item, comp: Completion | None, error: str | None,
            attempts: int, permanent: bool = False) -> dict[str, Any]:
        spec = self.task.spec
        row: dict[str, Any] = {
            "task": spec.name, "kind": spec.kind, "model": model.name, "item_id": item.id,
            "input": item.text, "output": None, "answer": None, "gold": item.gold,
            "correct": False, "invalid": False, "error": error, "attempts": attempts,
            "tokens_in": None, "tokens_out": None, "token_source": None, "cached_tokens_in": None,
            "latency_s": None, "confidence": None, "confidence_source": None, "cached": False,
            "ts": now_iso(), "finish_reason": None, "reasoning_tokens": None,
            "cache_write_tokens": None, "truncated": False,
        }
        if error is not None and permanent:
            row["error_permanent"] = True
        if spec.kind == "routing":
            row["routed"] = None
        if comp is None:
            return row
        row.update(output=comp.text, tokens_in=comp.tokens_in, tokens_out=comp.tokens_out,
                   token_source=comp.token_source, cached_tokens_in=comp.cached_tokens_in,
                   latency_s=comp.latency_s, confidence=comp.confidence,
                   confidence_source=comp.confidence_source, finish_reason=comp.finish_reason,
                   reasoning_tokens=comp.reasoning_tokens,
                   cache_write_tokens=comp.cache_write_tokens)
        if comp.extra:
            row["extra"] = comp.extra
        if spec.kind == "chain":
            self._chain_answer(row, comp, item)
        elif spec.kind == "extraction":
            answer = parse_json_object(comp.text)
            row["answer"] = answer
            row["invalid"] = answer is None
            row["correct"] = exact_match(answer, item.gold, spec.fields)
        else:
            answer = parse_label(comp.text, self.matcher)
            row["answer"] = answer
            row["invalid"] = answer is None
            if spec.kind == "routing":
                row["routed"] = answer if answer is not None else spec.fallback
                row["correct"] = row["routed"] == item.gold
            else:
                row["correct"] = answer == item.gold
        if row["invalid"] and comp.finish_reason == "length":
            # the output budget ran out before a whole answer: not the model's wrong format
            row["invalid"], row["truncated"] = False, True
        return row


    def _chain_answer(self, row: dict[str, Any], comp: Completion, item: Item) -> None:
        """A pipeline's answer comes from its steps (``extra["steps"]``, lifted to the row's
        ``steps``); a single call's from its one JSON object."""
        from slmbench.scoring.chain import chain_correct, parse_chain_answer

        spec = self.task.spec
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
                                        [f.name for f in spec.fields], self.matcher)
        row["answer"] = answer
        row["invalid"] = answer is None or answer["label"] is None or answer["fields"] is None
        row["correct"] = chain_correct(answer, item.gold, spec.fields)


def call_model(model: Model, scorer: ItemScorer, item: Item, request: Request,
               policy: RetryPolicy, cache: ResponseCache | None, key: str | None,
               window: AdaptiveWindow | None = None) -> dict[str, Any]:
    """One fresh model call (with retries) → scored row; successful answers go to the cache."""
    comp, error, attempts, permanent = call_with_retries(lambda: model.complete(request), policy,
                                                         window=window)
    if comp is not None and cache is not None and key is not None:
        cache.put(key, comp)
    return scorer.row(model, item, comp, error, attempts, permanent)
