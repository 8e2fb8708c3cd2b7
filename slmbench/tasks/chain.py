"""Chain tasks (kind ``chain``): what each participant of classify → extract is asked.

One YAML describes the whole pipeline. This module derives from it ordinary tasks, so that the
steps reuse the classification and extraction machinery unchanged (prompts with the fixed part
first, constrained decoding, parsing):

* the **classification step** sees a classification task: the same items and train split with
  the class as gold, and ``prompt.instruction`` (placeholder ``{labels}``);
* the **extraction step** sees, per class, an extraction task with that class's fields and its
  instruction (``classes.<label>.instruction``, else ``prompt.extract_instruction``; placeholders
  ``{fields}``, ``{label}``, ``{label_field}``);
* a **plain model** (the single-call contender) sees ``prompt.single_instruction`` (placeholders
  ``{classes}``, ``{labels}``, ``{fields}``, ``{label_field}``) and answers
  ``{"<label_field>": class, field: value, ...}`` in one JSON object.

Few-shot examples are written once, as single-call answers; each derived task takes its part:
the class for the classifier, that class's fields for its extractor.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from slmbench.tasks.loading import Item, LoadedTask
from slmbench.tasks.prompts import fill
from slmbench.tasks.spec import FieldSpec, TaskSpec

# what a derived single-kind spec must not inherit from the chain spec
_CHAIN_ONLY = {"classes": (), "extract_instruction": None, "single_instruction": None}


def classify_task(task: LoadedTask) -> LoadedTask:
    """The classification step's task: gold is the class; max_tokens stays the label default."""
    spec = task.spec
    shots = tuple({"text": s["text"], "answer": s["answer"][spec.label_field]}
                  for s in spec.few_shot)
    derived = dataclasses.replace(spec, kind="classification", fields=(), few_shot=shots,
                                  max_tokens=None, **_CHAIN_ONLY)
    return LoadedTask(spec=derived, items=_relabel(task.items), train=_relabel(task.train),
                      fingerprint=task.fingerprint)


def extract_tasks(task: LoadedTask) -> dict[str, LoadedTask]:
    """Per class, the extraction step's task: that class's fields, instruction and examples,
    and the items of that class (gold: their fields)."""
    spec = task.spec
    out = {}
    for label in spec.labels or ():
        fields = spec.class_fields(label)
        instruction = fill(spec.class_instruction(label),
                           {"label": label, "label_field": spec.label_field})
        shots = tuple({"text": s["text"], "answer": _field_values(s["answer"], fields)}
                      for s in spec.few_shot if s["answer"][spec.label_field] == label)
        derived = dataclasses.replace(spec, kind="extraction", labels=None,
                                      labels_from_train=False, fields=fields,
                                      instruction=instruction, few_shot=shots, **_CHAIN_ONLY)

        def mine(items: tuple[Item, ...], label: str = label) -> tuple[Item, ...]:
            return tuple(Item(it.id, it.text, it.gold["fields"]) for it in items
                         if it.gold["label"] == label)

        out[label] = LoadedTask(spec=derived, items=mine(task.items), train=mine(task.train),
                                fingerprint=task.fingerprint)
    return out


def single_call_spec(spec: TaskSpec) -> TaskSpec:
    """The chain spec with the single-call instruction and examples, for ``build_messages``
    (which then fills ``{labels}`` and ``{fields}``)."""
    instruction = fill(spec.single_instruction or "",
                       {"classes": classes_text(spec), "label_field": spec.label_field})
    shots = tuple({"text": s["text"], "answer": single_answer(spec, s["answer"])}
                  for s in spec.few_shot)
    return dataclasses.replace(spec, instruction=instruction, few_shot=shots)


def single_answer(spec: TaskSpec, answer: dict[str, Any]) -> dict[str, Any]:
    """A single-call answer in the shape the JSON schema asks for: the class first, then
    every field of that class (null where absent)."""
    label = answer[spec.label_field]
    return {spec.label_field: label, **_field_values(answer, spec.class_fields(label))}


def classes_text(spec: TaskSpec) -> str:
    """``{classes}``: one line per class with the fields it extracts."""
    lines = []
    for label in spec.labels or ():
        names = [_field_name(f) for f in spec.class_fields(label)]
        lines.append(f"- {label}: {', '.join(names) if names else '(no fields)'}")
    return "\n".join(lines)


def _field_name(f: FieldSpec) -> str:
    extra = [f.type] if f.type != "string" else []
    if f.description:
        extra.append(f.description)
    return f"{f.name} ({'; '.join(extra)})" if extra else f.name


def _field_values(answer: dict[str, Any], fields: tuple[FieldSpec, ...]) -> dict[str, Any]:
    return {f.name: answer.get(f.name) for f in fields}


def _relabel(items: tuple[Item, ...]) -> tuple[Item, ...]:
    return tuple(Item(it.id, it.text, it.gold["label"]) for it in items)
