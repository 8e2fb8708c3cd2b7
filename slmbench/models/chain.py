"""A classify → extract pipeline that the runner treats as one model (``--chain A,B``).

Step 1 (any model that classifies) picks the class; step 2 (any model that extracts) gets the
extraction prompt of that class (:mod:`slmbench.tasks.chain`). The pipeline is a thin
:class:`Model`: the runner's retries, resume, budget and summary work unchanged, and its rows
look like any model's, plus ``steps`` (per step: model, output, answer, tokens, latency,
confidence, token source, cached).

* **Cost** is the sum over steps, each step priced as that model alone would be (its token
  sheet, or its hourly rate): :meth:`RunCoster.item_costs_and_basis` reads ``steps`` from the
  manifest entry written by :meth:`ChainModel.describe`.
* **Latency** and tokens are sums over the steps.
* **Confidence** is ``null``: step 1's confidence is about the class only, not the whole answer.
* **Cache**: the pipeline itself is not cached (its request is the single-call prompt, not what
  the steps see); each step's request goes through the response cache on its own, so a re-run
  is free exactly where a step's prompt is unchanged.

A class whose ``fields`` list is empty needs no extraction: step 2 is skipped for it. When step
1 answers no valid class, step 2 is skipped too and the answer is invalid.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.models.base import Completion, Model, Request

PRICING_CHAIN = "chain"


def chain_name(classifier: str, extractor: str) -> str:
    return f"chain({classifier} > {extractor})"


def split_chain_id(text: str) -> tuple[str, str]:
    """``CLASSIFIER,EXTRACTOR`` → the two model ids."""
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 2 or not all(parts):
        raise InputError("a chain is two model ids, CLASSIFIER,EXTRACTOR", field="--chain",
                         value=text)
    return parts[0], parts[1]


def resolve_chain(text: str, cache_path: Path | None = None) -> ChainModel:
    """Build the pipeline for ``CLASSIFIER,EXTRACTOR``; bad ids fail here, before any call."""
    from slmbench.models.registry import resolve_model

    first, second = split_chain_id(text)
    classifier, extractor = resolve_model(first), resolve_model(second)
    if not classifier.supports("classification"):
        raise InputError("this model cannot classify (step 1 of a chain)", field="--chain",
                         value=first)
    if not extractor.supports("extraction"):
        raise InputError("this model cannot extract fields (step 2 of a chain)",
                         field="--chain", value=second)
    return ChainModel(classifier, extractor, cache_path)


class ChainModel(Model):
    pricing = PRICING_CHAIN
    cacheable = False  # the steps are cached one by one (see the module docstring)

    def __init__(self, classifier: Model, extractor: Model, cache_path: Path | None = None
                 ) -> None:
        super().__init__(chain_name(classifier.name, extractor.name), {
            "steps": [{"model": m.name, "settings": dict(m.settings)}
                      for m in (classifier, extractor)]})
        self.classifier = classifier
        self.extractor = extractor
        self.thread_safe = classifier.thread_safe and extractor.thread_safe
        # each step is priced on its own record (describe()["steps"]); this one says where
        # the pipeline as a whole runs
        self.gpu_offload = classifier.gpu_offload or extractor.gpu_offload
        self.cache_path = cache_path
        self._cache: Any = None
        self._classify: Any = None  # ItemScorer of the classification step
        self._extract: dict[str, Any] = {}  # class → ItemScorer of its extraction step
        self._label_field = "label"

    def supports(self, kind: str) -> bool:
        return kind == "chain"

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["backend"] = "chain"
        info["steps"] = [self.classifier.describe(), self.extractor.describe()]
        return info

    def prepare(self, task: Any) -> None:
        from slmbench.runner.cache import ResponseCache
        from slmbench.runner.items import ItemScorer
        from slmbench.tasks.chain import classify_task, extract_tasks

        classify = classify_task(task)
        extract = extract_tasks(task)
        self._classify = ItemScorer(classify)
        self._extract = {label: ItemScorer(t) for label, t in extract.items()}
        self._label_field = task.spec.label_field
        if self.cache_path is not None and self._cache is None and (
                self.classifier.cacheable or self.extractor.cacheable):
            self._cache = ResponseCache(self.cache_path)
        self.classifier.prepare(classify)
        if extract:
            # one preparation per task (loading weights, say); every class's prompt is a request
            self.extractor.prepare(next(iter(extract.values())))

    def complete(self, request: Request) -> Completion:
        from slmbench.scoring import parse_json_object, parse_label
        from slmbench.tasks.loading import Item

        item = Item(id="", text=request.text, gold=None)
        first = self._step(self.classifier, self._classify.request(item))
        label = parse_label(first[0].text, self._classify.matcher)
        steps = [_step_record(self.classifier, *first, label)]
        fields: dict[str, Any] | None = None
        if label is not None:
            scorer = self._extract[label]
            if scorer.task.spec.fields:
                second = self._step(self.extractor, scorer.request(item))
                fields = parse_json_object(second[0].text)
                steps.append(_step_record(self.extractor, *second, fields))
            else:
                fields = {}
        output = {self._label_field: label, **(fields or {})}
        tokens_in = [s["tokens_in"] for s in steps if s["tokens_in"] is not None]
        tokens_out = [s["tokens_out"] for s in steps if s["tokens_out"] is not None]
        sources = sorted({s["token_source"] or "none" for s in steps})
        return Completion(
            text=json.dumps(output, ensure_ascii=False),
            latency_s=sum(s["latency_s"] or 0.0 for s in steps),
            tokens_in=sum(tokens_in) if tokens_in else None,
            tokens_out=sum(tokens_out) if tokens_out else None,
            token_source=sources[0] if len(sources) == 1 else "+".join(sources),
            extra={"steps": steps})

    def _step(self, model: Model, request: Request) -> tuple[Completion, bool]:
        """One step's completion, from the response cache when the step model allows it."""
        from slmbench.runner.cache import cache_key

        key = cache_key(model, request) if self._cache is not None and model.cacheable \
            else None
        if key is not None:
            hit = self._cache.get(key)
            if hit is not None:
                return hit, True
        comp = model.complete(request)
        if key is not None:
            self._cache.put(key, comp)
        return comp, False

    def close(self) -> None:
        for model in (self.classifier, self.extractor):
            model.close()
        if self._cache is not None:
            self._cache.close()
            self._cache = None


def _step_record(model: Model, comp: Completion, cached: bool, answer: Any) -> dict[str, Any]:
    return {"model": model.name, "output": comp.text, "answer": answer,
            "tokens_in": comp.tokens_in, "tokens_out": comp.tokens_out,
            "token_source": comp.token_source, "cached_tokens_in": comp.cached_tokens_in,
            "cache_write_tokens": comp.cache_write_tokens,
            "reasoning_tokens": comp.reasoning_tokens, "finish_reason": comp.finish_reason,
            "latency_s": comp.latency_s, "confidence": comp.confidence,
            "confidence_source": comp.confidence_source, "cached": cached}
