"""Prompt rendering.

The fixed part (instruction with the label list, then few-shot turns) always comes first and the
item last, so that backends with a prompt cache (llama.cpp's KV cache, providers' prompt caching)
reuse the shared prefix across items. Templates use ``{name}`` placeholders substituted by a
regex, never ``str.format``: a template must not be able to reach attributes or run code.
"""

from __future__ import annotations

import re
from typing import Any

from slmbench.tasks.spec import TaskSpec

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ``{name}`` placeholders with known values; unknown ones are left as written."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


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
    return fill(spec.instruction, values)


def answer_text(spec: TaskSpec, answer: Any) -> str:
    from slmbench.tasks.kinds import get_kind

    return get_kind(spec.kind).answer_text(spec, answer)


def build_messages(spec: TaskSpec, text: str) -> list[dict[str, str]]:
    """Chat messages for one item: system instruction, few-shot turns, then the item."""
    messages = [{"role": "system", "content": instruction_text(spec)}]
    for shot in spec.few_shot:
        messages.append({"role": "user", "content": fill(spec.template, {"text": shot["text"]})})
        messages.append({"role": "assistant", "content": answer_text(spec, shot["answer"])})
    messages.append({"role": "user", "content": fill(spec.template, {"text": text})})
    return messages
