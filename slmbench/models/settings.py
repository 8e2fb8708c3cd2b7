"""Model settings checked against the backend's own table before any model is loaded or called.

A setting given after ``?`` in a model id reaches the backend as whatever
:func:`slmbench.models.registry.parse_model_id` made of the text (a bool, an int, a float or the
string itself). Sent as it is, a wrong value fails on every item, and only after the calls were
made (each retried), or fails deep inside llama.cpp with a message that does not name the
setting. So each backend declares its settings once, as a table of :class:`Setting` (type,
range, choices, whether ``None`` means "the default"), and :func:`check_settings` holds every
given value to it in one place: one line naming the model, the setting, its value and what it
must be. Values are checked, never converted: a value that passes is stored exactly as given,
so the cache keys and resume comparisons of earlier runs stay the same.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from slmbench.errors import InputError

#: the kinds a setting can be
INT, FLOAT, BOOL, STR, URL = "int", "float", "bool", "str", "url"
_SECRET_NAME = re.compile(r"key|token|secret|passw|auth|cred", re.IGNORECASE)
#: a value another check owns (one that needs more than the value, e.g. litellm's model map)
ANY = "any"


@dataclass(frozen=True)
class Setting:
    """What one backend setting may hold."""

    kind: str
    default: Any = None
    minimum: float | None = None
    maximum: float | None = None
    #: the minimum itself is not allowed (a timeout of 0 s)
    exclusive_minimum: bool = False
    #: allowed values (checked before ``kind``: ``auto`` next to true/false)
    choices: tuple[Any, ...] = ()

    def describe(self) -> str:
        """What the value must be, as the error line says it."""
        if self.choices:
            shown = [_shown(c) for c in self.choices]
            return "one of " + ", ".join(shown)
        if self.kind == BOOL:
            return "true or false"
        if self.kind == URL:
            return "an http:// or https:// URL with a host, e.g. http://127.0.0.1:8080/v1"
        if self.kind == STR:
            return "a text"
        noun = "a whole number" if self.kind == INT else "a finite number"
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return f"{noun} from {_num(low)} to {_num(high)}"
        if low is not None:
            return f"{noun} {'above' if self.exclusive_minimum else 'of at least'} {_num(low)}"
        if high is not None:
            return f"{noun} of at most {_num(high)}"
        return noun


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def defaults(table: Mapping[str, Setting]) -> dict[str, Any]:
    """The table's defaults: the settings a model gets when none is given."""
    return {key: s.default for key, s in table.items()}


def check_settings(backend: str, name: str, table: Mapping[str, Setting],
                   settings: Mapping[str, Any]) -> None:
    """Raise :class:`InputError` on the first given setting the table does not know or whose
    value it does not allow; ``name`` is the model as the error line shows it."""
    for key, value in settings.items():
        spec = table.get(key)
        if spec is None:
            # a misspelt key setting (apikey=...) holds a secret: its value is not shown
            shown = "..." if _SECRET_NAME.search(key) else _shown(value)
            raise InputError(f"unknown {backend} setting '{key}' (known: {', '.join(table)})",
                             field="--model", value=f"{name}?{key}={shown}")
        if not _allowed(spec, value):
            raise InputError(f"{backend} setting '{key}' must be {spec.describe()}",
                             field="--model", value=f"{name}?{key}={_shown(value)}")


def _allowed(spec: Setting, value: Any) -> bool:
    if value is None:  # only the default can be None (the id's text never parses to it)
        return spec.default is None
    if spec.kind == ANY:
        return True
    if spec.choices:
        return any(type(value) is type(c) and value == c for c in spec.choices)
    if spec.kind == BOOL:
        return isinstance(value, bool)
    if spec.kind == STR:
        return isinstance(value, str) and bool(value.strip())
    if spec.kind == URL:
        return isinstance(value, str) and is_http_url(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if spec.kind == INT and not isinstance(value, int):
        return False
    if not math.isfinite(value):
        return False
    if spec.minimum is not None and (value < spec.minimum or (
            spec.exclusive_minimum and value == spec.minimum)):
        return False
    return spec.maximum is None or value <= spec.maximum


def is_http_url(text: str) -> bool:
    """``http(s)://host[:port][/path]``: what an OpenAI-compatible ``api_base`` looks like."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port  # raises on a port that is not a number in range
    except ValueError:
        return False
    del port
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in text.strip()
