"""Chain metrics (kind ``chain``): the class, the fields, and both at once.

A chain answer is ``{"label": class or None, "fields": {field: value} or None}`` and its gold is
``{"label": class, "fields": {field: value}}``, whether the answer came from a classify →
extract pipeline or from one model doing both in one call, so both are scored by the same code:

* **intent**: accuracy, macro/weighted F1, the per-class table and the confusion matrix of the
  class (:func:`classification_metrics`); an invalid or failed answer is a wrong class.
* **fields**: micro precision/recall/F1 over (field, value) pairs, over every field of the task,
  and per field (:func:`extraction_metrics`, same value normalisation). A field right under the
  wrong class still counts as a right pair: this figure measures extraction alone.
* **end to end**: exact match, the class right AND every field equal. This is the chain's
  ``accuracy`` (what $ per correct answer divides by), because a pipeline that routes right and
  extracts wrong, or the reverse, has not done the job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slmbench.records import INVALID
from slmbench.scoring.bootstrap import bootstrap_ci
from slmbench.scoring.classification import classification_metrics
from slmbench.scoring.extraction import exact_match, extraction_metrics
from slmbench.scoring.parsing import parse_json_object, parse_label


def parse_chain_answer(text: str, label_field: str, field_names: Sequence[str],
                       matcher: dict[str, str]) -> dict[str, Any] | None:
    """The answer of a single call: one JSON object holding the class under ``label_field``
    and the fields. None when there is no JSON object; ``label`` None when the class names no
    label (the fields are still kept, and scored)."""
    obj = parse_json_object(text)
    if obj is None:
        return None
    raw = obj.get(label_field)
    label = parse_label(raw, matcher) if isinstance(raw, str) else None
    names = set(field_names)
    return {"label": label, "fields": {k: v for k, v in obj.items() if k in names}}


def chain_correct(answer: dict[str, Any] | None, gold: dict[str, Any],
                  fields: Sequence[Any]) -> bool:
    """End-to-end exact match: the class is right and every field equals the gold value."""
    if not answer or answer.get("label") != gold["label"] or answer.get("fields") is None:
        return False
    return exact_match(answer["fields"], gold["fields"], fields)


def chain_metrics(gold: Sequence[dict[str, Any]], pred: Sequence[dict[str, Any] | None],
                  labels: Sequence[str], fields: Sequence[Any], *, seed: int = 0
                  ) -> dict[str, Any]:
    """Intent, field and end-to-end figures; ``pred`` holds None for a failed call."""
    n = len(gold)
    gold_labels = [g["label"] for g in gold]
    pred_labels = [(p or {}).get("label") or INVALID for p in pred]
    intent = classification_metrics(gold_labels, pred_labels, labels, seed=seed)
    extraction = extraction_metrics([g["fields"] for g in gold],
                                    [(p or {}).get("fields") for p in pred], fields, seed=seed)
    exact = [chain_correct(p, g, fields) for g, p in zip(gold, pred, strict=True)]
    return {
        "n": n,
        "accuracy": sum(exact) / n if n else None,
        "accuracy_ci": bootstrap_ci(exact, seed=seed),
        "exact_match": sum(exact) / n if n else None,
        # the leaderboard's macro-F1 column: of the class, as for classification
        "macro_f1": intent["macro_f1"],
        "intent_accuracy": intent["accuracy"], "intent_accuracy_ci": intent["accuracy_ci"],
        "intent_macro_f1": intent["macro_f1"], "intent_weighted_f1": intent["weighted_f1"],
        "per_class": intent["per_class"], "confusion": intent["confusion"],
        "field_micro_precision": extraction["micro_precision"],
        "field_micro_recall": extraction["micro_recall"],
        "field_micro_f1": extraction["micro_f1"], "field_macro_f1": extraction["macro_f1"],
        "per_field": extraction["per_field"], "json_valid_rate": extraction["json_valid_rate"],
    }
