"""One item through one model: its request, and the scored result row of its completion (the
call itself, with retries, is runner/pair.py's call_item).

:meth:`ItemScorer.row` is the one place where a completion becomes a row, whichever executor
made the call and whether it came from the response cache, so what a provider sends back is
checked here, before anything is scored, stored or cached (the cache stores the same
completion object, after this):

* secrets: the values of key variables are scrubbed from the output and the error
  (a server may echo the request's ``Authorization`` header in its answer);
* usage: a token count that is negative, not a whole number, or beyond ten times the model's
  context window (:data:`~slmbench.records.MAX_CALL_TOKENS` when it is unknown) makes the row
  an error row, "provider reported tokens_in=-5", instead of a negative or a $1M price
  that every later report and resume would choke on.
"""

from __future__ import annotations

from typing import Any

from slmbench.models.base import Completion, Model, Request
from slmbench.records import MAX_CALL_TOKENS, usage_problem
from slmbench.scoring import label_matcher
from slmbench.secrets import scrub
from slmbench.store.manifest import now_iso
from slmbench.tasks import Item, LoadedTask
from slmbench.tasks.fewshot import PROMPT_SETTINGS, FewShotConfig, PromptPlan, Vectors
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
        """The prompt variant ``model`` asked for (``?prompt=``, ``?k=``, ``?select=``,
        ``?by=``; None: the task's)."""
        settings = getattr(model, "settings", None) or {}  # a plugin's model may have none
        key = tuple(settings.get(k) for k in PROMPT_SETTINGS)
        if not getattr(model, "prompted", True):
            key = (None, 0, None, None)  # a trained classifier: no examples to choose
        if key not in self._plans:
            self._plans[key] = PromptPlan(self.task, *key, vectors=retrieval_vectors)
        return self._plans[key]

    def request(self, item: Item, model: Model | None = None) -> Request:
        plan = self.plan(model)
        _, choices, schema, max_tokens = plan.parts
        return Request(messages=plan.messages(item), text=item.text, choices=choices,
                       json_schema=schema, max_tokens=max_tokens)

    def name_shots(self, model: Model, item: Item, row: dict[str, Any]) -> None:
        """The train items the prompt of ``item`` showed as examples, in prompt order, as the
        row's ``shots``. Called where the request was built (the run's own process, see
        dispatch.PairAccounts): a worker or Ray actor answers without choosing examples."""
        shots = self.plan(model).shot_ids(item)
        if shots is not None:
            row["shots"] = list(shots)

    def row(self, model: Model, item: Item, comp: Completion | None, error: str | None,
            attempts: int, permanent: bool = False) -> dict[str, Any]:
        spec = self.task.spec
        if error is not None:
            error = scrub(error)
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
        if comp is None:
            return row
        comp.text = scrub(comp.text, named=False)  # the cache stores this same object
        bad = usage_problem(comp, usage_ceiling(model))
        if bad is not None:
            row.update(output=comp.text, latency_s=comp.latency_s,
                       error=f"provider reported {bad}")
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


def usage_ceiling(model: Model) -> int:
    """The most tokens one call of ``model`` can sensibly report: ten times its context window
    where the backend knows it, else :data:`~slmbench.records.MAX_CALL_TOKENS`."""
    window = getattr(model, "context_window", None)
    if type(window) is int and window > 0:
        return min(10 * window, MAX_CALL_TOKENS)
    return MAX_CALL_TOKENS


def retrieval_vectors(config: FewShotConfig) -> Vectors:
    """The vectors of ``few_shot.by`` for ``select: similar`` other than TF-IDF: those of the
    embed baseline (its model and its on-disk embedding cache)."""
    from slmbench.models.baselines.embed_logreg import EmbeddingVectors

    return EmbeddingVectors.for_retrieval(config.embed_model)
