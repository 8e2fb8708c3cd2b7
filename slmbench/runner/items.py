"""One item through one model: its request, and the scored result row of its completion (the
call itself, with retries, is runner/pair.py's call_item)."""

from __future__ import annotations

from typing import Any

from slmbench.models.base import Completion, Model, Request
from slmbench.scoring import label_matcher
from slmbench.store.manifest import now_iso
from slmbench.tasks import Item, LoadedTask
from slmbench.tasks.fewshot import PromptPlan
from slmbench.tasks.kinds import get_kind


class ItemScorer:
    """Everything per task that is the same for every item, computed once."""

    def __init__(self, task: LoadedTask) -> None:
        self.task = task
        spec = task.spec
        self.kind = get_kind(spec.kind)
        self.matcher = label_matcher(spec.choices) if spec.choices else {}
        # prompt variant (?prompt=, ?k=) → its plan; built on first use, per process
        self._plans: dict[tuple[Any, ...], PromptPlan] = {}
        self.prompt_spec, self.choices, self.schema, self.max_tokens = \
            self.plan(None).parts

    def plan(self, model: Model | None) -> PromptPlan:
        """The prompt variant ``model`` asked for (``?prompt=``, ``?k=``, ``?select=``; None:
        the task's)."""
        settings = getattr(model, "settings", None) or {}  # a plugin's model may have none
        key = (settings.get("prompt"), settings.get("k"), settings.get("select"))
        if not getattr(model, "prompted", True):
            key = (None, 0, None)  # a trained classifier: no examples to choose
        if key not in self._plans:
            self._plans[key] = PromptPlan(self.task, *key)
        return self._plans[key]

    def request(self, item: Item, model: Model | None = None) -> Request:
        plan = self.plan(model)
        _, choices, schema, max_tokens = plan.parts
        return Request(messages=plan.messages(item), text=item.text, choices=choices,
                       json_schema=schema, max_tokens=max_tokens)

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
        row.update(self.kind.blank_row(spec))
        shots = self.plan(model).shot_ids(item)
        if shots is not None:  # the train items its prompt showed as examples
            row["shots"] = list(shots)
        if comp is None:
            return row
        row.update(output=comp.text, tokens_in=comp.tokens_in, tokens_out=comp.tokens_out,
                   token_source=comp.token_source, cached_tokens_in=comp.cached_tokens_in,
                   latency_s=comp.latency_s, confidence=comp.confidence,
                   confidence_source=comp.confidence_source, finish_reason=comp.finish_reason,
                   reasoning_tokens=comp.reasoning_tokens,
                   cache_write_tokens=comp.cache_write_tokens)
        if comp.cpu_s is not None:  # local models: the busy time their pricing uses
            row["cpu_s"] = comp.cpu_s
        if comp.extra:
            row["extra"] = comp.extra
        self.kind.score(self, row, comp, item)
        if row["invalid"] and comp.finish_reason == "length":
            # the output budget ran out before a whole answer: not the model's wrong format
            row["invalid"], row["truncated"] = False, True
        return row

