"""Prompt rendering.

The fixed part (instruction with the label list, then few-shot turns) always comes first and the
item last, so that backends with a prompt cache (llama.cpp's KV cache, providers' prompt caching)
reuse the shared prefix across items. Templates use ``{name}`` placeholders substituted by a
regex, never ``str.format``: a template must not be able to reach attributes or run code.

A prompt text of a task file may name only the placeholders its place knows
(:data:`PLACEHOLDERS`), and a literal brace is written doubled (``{{``, ``}}``), as in
``str.format``: :func:`check_placeholders` refuses anything else when the task is loaded. A
misspelt placeholder (``{label}`` for ``{labels}``) would otherwise reach the model verbatim and
the model would never see the label list. Some placeholders are filled in two steps (a chain's
``{classes}``, then ``{labels}``): :func:`fill` substitutes some names and keeps the text a
template (values escaped, other placeholders and escapes as written); :func:`render` is the last
step, which also turns ``{{``/``}}`` into single braces.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slmbench.errors import InputError

if TYPE_CHECKING:
    from slmbench.tasks.spec import TaskSpec

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: what a prompt text is made of: an escaped brace, a placeholder, a stray brace
_TOKEN = re.compile(r"\{\{|\}\}|\{([A-Za-z_][A-Za-z0-9_]*)\}|[{}]")

_INSTRUCTION = ("labels", "label_descriptions", "routes", "fields", "fallback")
_EXTRACT = ("fields", "label", "label_field")
#: prompt key of a task file (under ``prompt:``, or under a variant of ``prompts:``) → the
#: placeholders its text may use; ``classes.<label>.instruction`` is an extract instruction
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "template": ("text",),
    "instruction": _INSTRUCTION,
    "extract_instruction": _EXTRACT,
    "single_instruction": ("classes", "labels", "label_descriptions", "fields", "label_field"),
}


def fill(template: str, values: Mapping[str, str]) -> str:
    """Replace the ``{name}`` placeholders of ``values`` and keep the result a template: the
    values' own braces are escaped, other placeholders and ``{{``/``}}`` stay as written
    (:func:`render` finishes it)."""
    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name is None or name not in values:
            return m.group(0)
        return values[name].replace("{", "{{").replace("}", "}}")

    return _TOKEN.sub(sub, template)


def render(template: str, values: Mapping[str, str]) -> str:
    """The text sent: placeholders replaced by ``values`` (inserted as they are), ``{{`` and
    ``}}`` as single braces; anything else (a placeholder without a value, a stray brace in a
    built-in default) as written."""
    def sub(m: re.Match[str]) -> str:
        text, name = m.group(0), m.group(1)
        if text in ("{{", "}}"):
            return text[0]
        if name is not None and name in values:
            return values[name]
        return text

    return _TOKEN.sub(sub, template)


def placeholder_problem(text: str, known: Iterable[str]) -> tuple[str, str] | None:
    """(what is wrong, the offending part) of a prompt text, or None when it is fine."""
    allowed = set(known)
    for m in _TOKEN.finditer(text):
        token, name = m.group(0), m.group(1)
        if token in ("{{", "}}"):
            continue
        if name is None:
            return (f"stray '{token}' at character {m.start() + 1}: write {token * 2} for a "
                    "literal brace"), token
        if name not in allowed:
            shown = ", ".join("{" + k + "}" for k in sorted(allowed))
            return (f"unknown placeholder {token} (known here: {shown}; write {{{{ and }}}} "
                    "for literal braces)"), token
    return None


def check_placeholders(path: Path, data: Mapping[str, Any]) -> None:
    """Refuse a task file whose prompt texts (``prompt``, each ``prompts`` variant,
    ``classes.<label>.instruction``) use an unknown placeholder or an unescaped brace: one
    line naming the file, the prompt and the placeholder."""
    places: list[tuple[str, Mapping[str, Any]]] = []
    if isinstance(data.get("prompt"), Mapping):
        places.append(("prompt", data["prompt"]))
    variants = data.get("prompts")
    if isinstance(variants, Mapping):
        places += [(f"prompts.{name}", p) for name, p in variants.items()
                   if isinstance(p, Mapping)]
    texts = [(f"{where}.{key}", p.get(key), known) for where, p in places
             for key, known in PLACEHOLDERS.items()]
    classes = data.get("classes")
    if isinstance(classes, Mapping):
        texts += [(f"classes.{label}.instruction", c.get("instruction"), _EXTRACT)
                  for label, c in classes.items() if isinstance(c, Mapping)]
    for field, text, known in texts:
        if not isinstance(text, str):
            continue
        problem = placeholder_problem(text, known)
        if problem is not None:
            raise InputError(problem[0], file=path, field=field, value=problem[1])


def instruction_text(spec: TaskSpec) -> str:
    values = {
        "labels": "\n".join(f"- {label}" for label in (spec.labels or ())),
        "routes": "\n".join(
            f"- {r.name}: {r.description}" if r.description else f"- {r.name}" for r in spec.routes
        ),
        "fields": "\n".join(
            f"- {f.name} ({f.type}{', optional' if not f.required else ''})"
            + (f": {f.description}" if f.description else "")
            for f in spec.fields
        ),
        "fallback": spec.fallback or "",
    }
    return render(spec.instruction, values)


def answer_text(spec: TaskSpec, answer: Any) -> str:
    from slmbench.tasks.kinds import get_kind

    return get_kind(spec.kind).answer_text(spec, answer)


def build_messages(spec: TaskSpec, text: str) -> list[dict[str, str]]:
    """Chat messages for one item: system instruction, few-shot turns, then the item."""
    messages = [{"role": "system", "content": instruction_text(spec)}]
    for shot in spec.few_shot:
        messages.append({"role": "user",
                         "content": render(spec.template, {"text": shot["text"]})})
        messages.append({"role": "assistant", "content": answer_text(spec, shot["answer"])})
    messages.append({"role": "user", "content": render(spec.template, {"text": text})})
    return messages
