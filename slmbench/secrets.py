"""Keeping secrets out of results, logs and error messages.

API keys only ever come from the environment. Anything slmbench writes or prints that may
contain text from a provider (error messages above all) goes through :func:`redact`, which
replaces the value of every secret-looking environment variable and common key shapes.
"""

from __future__ import annotations

import os
import re

_SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL)", re.I)
_KEY_SHAPES = re.compile(r"\b(sk|pk|rk|key|api|AIza)[-_A-Za-z0-9]{16,}\b")
_BEARER = re.compile(r"(Bearer\s+)[^\s'\"]+", re.I)


def secret_values() -> list[str]:
    values = [v for k, v in os.environ.items() if _SECRET_NAME.search(k) and len(v) >= 8]
    return sorted(set(values), key=len, reverse=True)


def redact(text: str) -> str:
    for value in secret_values():
        text = text.replace(value, "***")
    text = _BEARER.sub(r"\1***", text)
    return _KEY_SHAPES.sub("***", text)
