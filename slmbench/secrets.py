"""Keeping secrets out of results, logs and error messages.

API keys only ever come from the environment, so a key is known by the variable that holds it:
any variable named like a secret (``OPENAI_API_KEY``, every provider variable of
``models/contract.py`` ``KEY_VARIABLES``, ``HF_TOKEN``, ...). Its value can still come back in
text slmbench did not write: a provider's error message, or a server that echoes the request's
``Authorization`` header inside an ordinary answer. So everything that may hold such text goes
through one of two functions before it is written or printed:

* :func:`scrub` replaces the exact values of those variables, and (on error lines) the value
  of a ``name=value`` pair whose name looks like a key (``apikey=...``, ``token=...``). It
  changes nothing else, so it is safe on error lines that name the user's files and, values
  only (``named=False``), on model output that is scored afterwards: the runner scrubs each
  completion once, before it becomes a row or a cache entry (``runner/items.py``).
* :func:`redact` also blanks what merely looks like a key (``sk-...``, ``Bearer ...``): for
  provider error text, where a key that is in no variable of this process may still appear.
"""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)", re.I)
#: values shorter than this are too likely to be ordinary words to replace everywhere
MIN_SECRET_LENGTH = 8
_KEY_SHAPES = re.compile(r"\b(sk|pk|rk|key|api|AIza)[-_A-Za-z0-9]{16,}\b")
_BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+", re.I)
#: ``apikey=...``, ``api-key: ...``, ``"token": "..."``: a value given under a key-like name
_NAMED_VALUE = re.compile(
    r"""(?P<name>\b[\w-]*(?:api[_-]?key|apikey|access[_-]?key|secret|token|password|passwd)"""
    r"""["']?\s*[=:]\s*["']?)(?P<value>[^\s&"',;}]+)""", re.I)

_cache: tuple[tuple[str, ...], re.Pattern[str] | None] = ((), None)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable (or setting) of this name holds a secret."""
    return bool(_SECRET_NAME.search(name))


def secret_values() -> list[str]:
    values = [v for k, v in os.environ.items()
              if len(v) >= MIN_SECRET_LENGTH and _SECRET_NAME.search(k)]
    return sorted(set(values), key=len, reverse=True)


def _values_pattern() -> re.Pattern[str] | None:
    """One alternation of the current secret values (rebuilt only when they change): a row's
    output is scrubbed in one regex pass, however many variables there are."""
    global _cache
    values = tuple(secret_values())
    if values != _cache[0]:
        _cache = (values, re.compile("|".join(map(re.escape, values))) if values else None)
    return _cache[1]


def scrub(text: str, *, named: bool = True) -> str:
    """``text`` without the values of secret variables and, with ``named``, of key-like
    ``name=value`` pairs (not for model output, where ``"password": ...`` may be the answer)."""
    if not text:
        return text
    pattern = _values_pattern()
    if pattern is not None:
        text = pattern.sub("***", text)
    if not named or _NAMED_VALUE.search(text) is None:
        return text
    return _NAMED_VALUE.sub(lambda m: f"{m['name']}***", text)


def redact(text: str) -> str:
    """:func:`scrub`, and blank anything shaped like a key or a bearer token."""
    text = scrub(text)
    text = _BEARER.sub(r"\1***", text)
    return _KEY_SHAPES.sub("***", text)
