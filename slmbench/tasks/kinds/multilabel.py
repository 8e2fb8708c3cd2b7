"""Kind ``multilabel``: every label that applies to an item, from a closed label set (ticket
tagging: one ticket can be about billing *and* a bug).

* **Task**: ``labels`` (a list, or ``from_train``); the gold column (role ``labels``) holds a
  list of labels, or a string: a JSON array or comma-separated labels (CSV files hold no
  lists). An empty list or string is an item to which no label applies; a missing value is an
  error, as is a gold label outside the set.
* **Request**: no closed answer set but a JSON schema, ``{"labels": [label, ...]}`` with the
  labels as the items' ``enum`` and at most as many items as there are labels: llama.cpp
  decodes it under a grammar that allows only labels of the set, API models get it as strict
  structured output. Without the item bound a small model repeats one label until its output
  budget runs out (a cut-off answer); with it, a repeat counts once. The output budget fits
  the longest answer the grammar allows, counted in bytes, so no tokenizer can cut a complete
  answer short.
* **Answer**: ``{"labels": [...]}``, a bare JSON array, or comma-separated (also ``;`` or one
  per line) label names, each normalised as a classification label is. Duplicates count once.
  A name that matches no label makes the whole answer **invalid** (counted wrong, and counted
  separately), as an unknown label does in classification: dropping it would score an answer
  the model did not give. An empty list is a valid answer: no label applies.
* **Correct** (what $ per correct answer divides by): the predicted set equals the gold set
  (*subset accuracy*, with a 95 % seeded bootstrap CI).
* **Metrics** (scikit-learn, ``average=`` explicit, over label indicator matrices; an invalid
  answer or a failed call predicts no label): per-label precision / recall / F1 / support and
  tp / fp / fn; micro P/R/F1; macro F1 over the labels present in gold or predictions (as for
  classification); Hamming loss (the share of wrong item × label cells). With the run's cost:
  ``usd_per_correct_label``, total $ ÷ correctly assigned labels (true positives), next to the
  subset-correct ``usd_per_correct``.
* **TF-IDF baseline**: one logistic regression per label (one-vs-rest); a label is assigned
  when its probability reaches :data:`BASELINE_THRESHOLD`. When none does, the most probable
  label is assigned if every train item has at least one label. Its confidence is the
  probability of the whole predicted set, the labels taken as independent.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from slmbench.errors import InputError
from slmbench.tasks.kinds.base import RequestParts, TaskKind

#: the TF-IDF baseline assigns a label whose one-vs-rest probability reaches this
BASELINE_THRESHOLD = 0.5

_SPLIT = re.compile(r"[,;\n]")
_LIST_PREFIX = re.compile(r"^\s*(labels?|tags?|answer|categories)\s*[:=-]\s*", re.I)
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


class Multilabel(TaskKind):
    name = "multilabel"
    shot_answer_schema = {"type": "array", "items": {"type": "string", "minLength": 1}}
    columns = ("id", "text", "labels")
    gold_role = "labels"
    default_instruction = (
        "Tag the message with every label that applies, from these labels:\n{labels}\n"
        'Answer with a JSON object {"labels": [...]} that lists the labels that apply.'
    )
    trains_classifier = True
    detail_keys = ("per_label", "subset_accuracy", "hamming_loss", "n_correct_labels",
                   "usd_per_correct_label", "correct_labels_per_usd")

    # -- spec and data --------------------------------------------------------------------
    def check_shot_answer(self, v: Any, answer: Any, where: str) -> None:
        if not isinstance(answer, list) or not all(
                isinstance(a, str) and a.strip() for a in answer):
            raise v.fail("must be a list of labels", where, answer)

    def gold(self, spec: Any, row: dict[str, Any], item_id: str, where: str) -> list[str]:
        column = spec.dataset.columns[self.gold_role]
        value = row.get(column)
        labels = _gold_list(value)
        if labels is None:
            raise InputError(f"item '{item_id}' has no gold labels (a list, a JSON array or "
                             "comma-separated labels)", file=where, field=column, value=value)
        return labels

    def gold_labels(self, gold: Any) -> tuple[Any, ...]:
        return tuple(gold)

    def shot_labels(self, spec: Any, answer: Any) -> tuple[Any, ...]:
        return tuple(answer)

    def answer_text(self, spec: Any, answer: Any) -> str:
        return json.dumps({"labels": list(answer)}, ensure_ascii=False)

    # -- requests and rows ----------------------------------------------------------------
    def request_parts(self, task: Any) -> RequestParts:
        spec = task.spec
        labels = list(spec.labels or ())
        schema = {"type": "object",
                  "properties": {"labels": {"type": "array",
                                            "items": {"type": "string", "enum": labels},
                                            "maxItems": len(labels)}},
                  "required": ["labels"], "additionalProperties": False}
        # the longest answer the grammar allows, in bytes (a token is at least one byte
        # whatever the tokenizer): the longest label at every place, quoted, with a comma and
        # a space after it, inside '{ "labels": [ ', ' ] }'
        longest = max((len(lab.encode()) for lab in labels), default=0)
        budget = 24 + len(labels) * (longest + 4)
        return RequestParts(spec, None, schema, spec.max_tokens or budget)

    def score(self, scorer: Any, row: dict[str, Any], comp: Any, item: Any) -> None:
        answer = parse_labels(comp.text, scorer.matcher)
        row["answer"] = answer
        row["invalid"] = answer is None
        row["correct"] = answer is not None and set(answer) == set(item.gold)

    # -- summaries ------------------------------------------------------------------------
    def metrics(self, rows: Sequence[dict[str, Any]], *, seed: int = 0,
                **kwargs: Any) -> dict[str, Any]:
        return multilabel_metrics([r["gold"] for r in rows],
                                  [None if r.get("error") else r.get("answer") for r in rows],
                                  kwargs.get("labels", ()), seed=seed)

    def row_checker(self, task_info: dict[str, Any]) -> Any:
        labels = self.allowed_golds(task_info)

        def check(row: dict[str, Any]) -> Any:
            gold = row.get("gold")
            if not isinstance(gold, list) or not all(
                    isinstance(g, str) and g in labels for g in gold):
                return "gold", gold, "must be a list of the task's labels"
            answer = None if row.get("error") else row.get("answer")
            if answer is not None and not (isinstance(answer, list) and all(
                    isinstance(a, str) for a in answer)):
                return "answer", answer, "must be a list of labels or null"
            return None

        return check

    def priced(self, entry: dict[str, Any]) -> None:
        total, correct = entry.get("total_usd"), entry.get("n_correct_labels")
        entry["usd_per_correct_label"] = (total / correct if total is not None and correct
                                          else None)
        entry["correct_labels_per_usd"] = (correct / total if total and correct is not None
                                           else None)

    # -- baseline -------------------------------------------------------------------------
    def fit_classifier(self, task: Any, features: Any, settings: dict[str, Any]) -> Any:
        import numpy as np
        from sklearn.linear_model import LogisticRegression
        from sklearn.multiclass import OneVsRestClassifier
        from sklearn.pipeline import make_pipeline

        labels = list(task.spec.labels or ())
        golds = [it.gold for it in task.train]
        y = _indicators(golds, labels)
        seen = y.any(axis=0)
        if len(golds) < 2 or not seen.any():
            raise InputError("train split needs at least two items and one label",
                             file=task.spec.path, field="dataset.train_split",
                             value=task.spec.dataset.train_split)
        clf = OneVsRestClassifier(LogisticRegression(
            C=settings["C"], max_iter=settings["max_iter"], random_state=settings["seed"]))
        pipeline = make_pipeline(features, clf).fit([it.text for it in task.train], y)
        at_least_one = all(golds)

        def predict(text: str) -> tuple[str, float]:
            proba = np.asarray(pipeline.predict_proba([text])[0], dtype=float)
            chosen = proba >= BASELINE_THRESHOLD
            if at_least_one and not chosen.any():
                chosen[int(proba.argmax())] = True
            confidence = float(np.prod(np.where(chosen, proba, 1.0 - proba)))
            answer = [lab for lab, on in zip(labels, chosen.tolist(), strict=True) if on]
            return json.dumps(answer, ensure_ascii=False), confidence

        return predict

    # -- report ---------------------------------------------------------------------------
    def report_table(self, rows: list[dict[str, Any]], multi: bool) -> list[str]:
        from slmbench.markdown import cell as _cell
        from slmbench.markdown import failed_cell, fmt, md_table

        head = (["run"] if multi else []) + [
            "model", "subset accuracy", "micro-F1", "macro-F1", "Hamming loss", "$/correct",
            "$/correct label"]
        body = []
        for r in rows:
            e = r["entry"]
            per_label = (failed_cell(r["failed"]) if r["failed"] else "unpriced"
                         if not r["priced"] else fmt("usd_per_correct",
                                                     e.get("usd_per_correct_label")))
            body.append(([r["run_id"]] if multi else []) + [
                r["model"], _cell("accuracy", r), fmt("f1", e.get("micro_f1")),
                fmt("f1", e.get("macro_f1")), fmt("f1", e.get("hamming_loss")),
                _cell("usd_per_correct", r), per_label])
        return [md_table(head, body, ["l"] * (1 + multi) + ["r"] * 6)
                + "\nSubset accuracy = the predicted label set equals the gold set (the "
                "accuracy; $/correct divides by it); $/correct label = total $ ÷ labels "
                "assigned right; Hamming loss = share of wrong item × label cells.\n"]

    def report_details(self, entry: dict[str, Any]) -> list[str]:
        from slmbench.markdown import fmt, md_table, reliability_part

        per_label = entry.get("per_label") or {}
        return [md_table(
            ["label", "precision", "recall", "F1", "support", "tp", "fp", "fn"],
            [[label, fmt("precision", m.get("precision")), fmt("recall", m.get("recall")),
              fmt("f1", m.get("f1")), m.get("support"), m.get("tp"), m.get("fp"), m.get("fn")]
             for label, m in per_label.items() if m.get("support") or m.get("fp")],
            ["l"] + ["r"] * 7), *reliability_part(entry)]


def parse_labels(output: str, matcher: dict[str, str]) -> list[str] | None:
    """The labels an answer names, each once, in the order named; None when it is invalid (no
    answer, a JSON value that is no list of strings, or a name that matches no label)."""
    from slmbench.scoring.parsing import parse_json_object, parse_label

    if not output or not output.strip():
        return None
    obj = parse_json_object(output)
    if obj is not None:
        names: Any = obj.get("labels")
    else:
        names = _json_array(output)
        if names is None:
            text = _LIST_PREFIX.sub("", output.strip()).strip().strip("[]")
            names = [p for p in _SPLIT.split(text) if p.strip()]
            if not names:
                return None
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return None
    out: list[str] = []
    for name in names:
        label = parse_label(name, matcher)
        if label is None:
            return None
        if label not in out:
            out.append(label)
    return out


def _json_array(text: str) -> list[Any] | None:
    """A JSON array from the text (bare, in a fenced block, or between its first ``[`` and
    last ``]``), or None."""
    for candidate in [m.group(1) for m in _FENCE.finditer(text)] + [text]:
        candidate = candidate.strip()
        start, end = candidate.find("["), candidate.rfind("]")
        for piece in (candidate, candidate[start:end + 1] if 0 <= start < end else ""):
            try:
                value = json.loads(piece)
            except ValueError:
                continue
            if isinstance(value, list):
                return value
    return None


def _gold_list(value: Any) -> list[str] | None:
    """A gold value as a list of label strings (each once); None when it is none."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return None
        else:
            value = [p.strip() for p in text.split(",") if p.strip()]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        return None
    out: list[str] = []
    for v in value:
        if v.strip() not in out:
            out.append(v.strip())
    return out


def _indicators(sets: Sequence[Sequence[str] | None], labels: Sequence[str]) -> Any:
    """The items × labels 0/1 matrix (a None set, or a name outside ``labels``: no label)."""
    import numpy as np

    index = {lab: i for i, lab in enumerate(labels)}
    out = np.zeros((len(sets), len(labels)), dtype=np.int64)
    for i, names in enumerate(sets):
        for name in names or ():
            j = index.get(name)
            if j is not None:
                out[i, j] = 1
    return out


def multilabel_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str] | None],
                       labels: Sequence[str], *, seed: int = 0) -> dict[str, Any]:
    """Subset accuracy (+ CI), Hamming loss, micro / macro F1 and per-label figures; ``pred``
    holds None for an invalid answer or a failed call (it predicts no label)."""
    from sklearn.metrics import f1_score, hamming_loss, precision_recall_fscore_support

    from slmbench.scoring.bootstrap import bootstrap_ci

    labels = list(labels)
    n = len(gold)
    if n == 0 or not labels:
        return {"n": n, "accuracy": None, "accuracy_ci": None, "subset_accuracy": None,
                "hamming_loss": None, "micro_precision": None, "micro_recall": None,
                "micro_f1": None, "macro_f1": None, "per_label": {}, "n_correct_labels": 0,
                "n_gold_labels": 0}
    y_true, y_pred = _indicators(gold, labels), _indicators(pred, labels)
    exact = [p is not None and set(p) == set(g) for g, p in zip(gold, pred, strict=True)]
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, average=None, zero_division=0)
    tp = (y_true & y_pred).sum(axis=0)
    fp = ((1 - y_true) & y_pred).sum(axis=0)
    fn = (y_true & (1 - y_pred)).sum(axis=0)
    micro_p, micro_r, micro_f, _ = precision_recall_fscore_support(
        y_true, y_pred, average="micro", zero_division=0)
    # macro over the labels that occur in gold or predictions, as for classification
    present = [j for j in range(len(labels)) if y_true[:, j].any() or y_pred[:, j].any()]
    return {
        "n": n,
        "accuracy": sum(exact) / n,
        "accuracy_ci": bootstrap_ci(exact, seed=seed),
        "subset_accuracy": sum(exact) / n,
        "hamming_loss": float(hamming_loss(y_true, y_pred)),
        "micro_precision": float(micro_p), "micro_recall": float(micro_r),
        "micro_f1": float(micro_f),
        "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro",
                                   zero_division=0)) if present else 0.0,
        "per_label": {lab: {"precision": float(p[j]), "recall": float(r[j]),
                            "f1": float(f[j]), "support": int(s[j]), "tp": int(tp[j]),
                            "fp": int(fp[j]), "fn": int(fn[j])}
                      for j, lab in enumerate(labels)},
        "n_correct_labels": int(tp.sum()),
        "n_gold_labels": int(y_true.sum()),
    }


KIND = Multilabel()
