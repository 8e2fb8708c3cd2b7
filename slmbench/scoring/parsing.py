"""Turning raw model output into an answer, or declaring it invalid.

Label normalisation (documented in the README): case-folded, surrounding whitespace, quotes,
backticks and punctuation stripped, underscores / hyphens / runs of spaces treated alike, and a
leading ``Label:``/``Answer:`` prefix dropped. An output that then matches no label exactly is
*invalid*: counted wrong, and counted separately. Extraction output must be a JSON object,
optionally inside a fenced code block; anything else is invalid.
"""

from __future__ import annotations

import json
import re
from typing import Any

_PREFIX = re.compile(r"^(label|answer|intent|route|category|class)\s*[:=-]\s*", re.I)
_STRIP = " \t\r\n\"'`.,;:!?()[]{}<>*"
_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.S)


def _key(text: str) -> str:
    text = text.strip().strip(_STRIP)
    text = _PREFIX.sub("", text).strip(_STRIP)
    return re.sub(r"[\s_\-]+", " ", text.casefold()).strip()


def label_matcher(choices: tuple[str, ...]) -> dict[str, str]:
    """Normalised form → canonical label (built once per task)."""
    return {_key(c): c for c in choices}


def parse_label(output: str, matcher: dict[str, str]) -> str | None:
    """The canonical label the output names, or None when it is invalid."""
    if not output or not output.strip():
        return None
    key = _key(output)
    if key in matcher:
        return matcher[key]
    first_line = output.strip().splitlines()[0]
    key = _key(first_line)
    return matcher.get(key)


def parse_json_object(output: str) -> dict[str, Any] | None:
    """A JSON object from the output (bare or in a fenced block), or None when invalid."""
    if not output:
        return None
    candidates = [m.group(1) for m in _FENCE.finditer(output)] + [output]
    for text in candidates:
        text = text.strip()
        try:
            value = json.loads(text)
        except (json.JSONDecodeError, ValueError):
            start, end = text.find("{"), text.rfind("}")
            if start == -1 or end <= start:
                continue
            try:
                value = json.loads(text[start:end + 1])
            except (json.JSONDecodeError, ValueError):
                continue
        if isinstance(value, dict):
            return value
    return None
