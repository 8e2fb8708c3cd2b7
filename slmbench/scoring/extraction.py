"""Extraction metrics over (field, value) pairs.

Value normalisation, applied to gold and predicted values alike: strings are case-folded,
whitespace-collapsed and stripped of surrounding punctuation; numbers compare as numbers
("3" == 3 == 3.0); booleans accept true/false/yes/no; null, "" and [] mean *absent*; a list
contributes one pair per distinct element. Micro precision/recall/F1 count pairs over all items;
per-field figures count the pairs of that field; exact match needs every field to agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from slmbench.scoring.bootstrap import bootstrap_ci


def normalize_value(value: Any, typ: str = "string") -> frozenset[str]:
    """The set of normalised atoms a value stands for (empty set = absent)."""
    if value is None:
        return frozenset()
    if isinstance(value, (list, tuple, set)):
        out: set[str] = set()
        for v in value:
            out |= normalize_value(v, "string" if typ == "list" else typ)
        return frozenset(out)
    if isinstance(value, dict):
        return frozenset({repr(sorted(value.items()))})
    if isinstance(value, bool):
        return frozenset({"true" if value else "false"})
    if isinstance(value, (int, float)):
        return frozenset({_num(value)})
    text = re.sub(r"\s+", " ", str(value).casefold()).strip().strip(" .,;:!?\"'`")
    if not text:
        return frozenset()
    if typ in ("integer", "number"):
        try:
            return frozenset({_num(float(text.replace(",", "")))})
        except ValueError:
            return frozenset({text})
    if typ == "boolean" and text in ("yes", "no", "true", "false"):
        return frozenset({"true" if text in ("yes", "true") else "false"})
    return frozenset({text})


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def record_pairs(record: dict[str, Any] | None, fields: Sequence[Any]) -> set[tuple[str, str]]:
    if not record:
        return set()
    return {(f.name, atom) for f in fields for atom in normalize_value(record.get(f.name), f.type)}


def exact_match(pred: dict[str, Any] | None, gold: dict[str, Any], fields: Sequence[Any]) -> bool:
    if pred is None:
        return False
    return all(
        normalize_value(pred.get(f.name), f.type) == normalize_value(gold.get(f.name), f.type)
        for f in fields)


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f = 2 * p * r / (p + r) if p + r else 0.0
    return {"precision": p, "recall": r, "f1": f, "tp": tp, "fp": fp, "fn": fn}


def extraction_metrics(gold: Sequence[dict[str, Any]], pred: Sequence[dict[str, Any] | None],
                       fields: Sequence[Any], *, seed: int = 0) -> dict[str, Any]:
    n = len(gold)
    totals = {f.name: [0, 0, 0] for f in fields}
    exact = []
    for g, p in zip(gold, pred, strict=True):
        gp, pp = record_pairs(g, fields), record_pairs(p, fields)
        for name, _ in pp & gp:
            totals[name][0] += 1
        for name, _ in pp - gp:
            totals[name][1] += 1
        for name, _ in gp - pp:
            totals[name][2] += 1
        exact.append(exact_match(p, g, fields))
    micro = _prf(*(sum(t[i] for t in totals.values()) for i in range(3)))
    per_field = {name: _prf(*t) for name, t in totals.items()}
    return {
        "n": n,
        "accuracy": sum(exact) / n if n else None,  # exact-match rate over whole records
        "accuracy_ci": bootstrap_ci(exact, seed=seed),
        "exact_match": sum(exact) / n if n else None,
        "json_valid_rate": sum(p is not None for p in pred) / n if n else None,
        "micro_precision": micro["precision"], "micro_recall": micro["recall"],
        "micro_f1": micro["f1"],
        "macro_f1": (sum(v["f1"] for v in per_field.values()) / len(per_field)
                     if per_field else None),
        "per_field": per_field,
    }
