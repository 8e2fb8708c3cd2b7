"""Errors a user can act on.

Every problem caused by the user's input (task YAML, dataset, model id, pricing sheet, CLI
option) is raised as :class:`InputError`, which the CLI prints as exactly one line and turns into
exit code 2.
Keeping the location (file, field, value) as structured attributes lets tests assert on them and
keeps the message format in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SlmbenchError(Exception):
    """Base class for every error slmbench raises on purpose."""


class InputError(SlmbenchError):
    """Bad user input: printed as one line naming file, field and value; exit code 2."""

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        field: str | None = None,
        value: Any = ...,
    ) -> None:
        self.file = str(file) if file is not None else None
        self.field = field
        self.value = value
        self.reason = message
        parts = []
        if self.file:
            parts.append(self.file)
        if field:
            parts.append(f"field '{field}'")
        if value is not ...:
            parts.append(f"value {_short(value)}")
        where = ", ".join(parts)
        text = f"{where}: {message}" if where else message
        # one line, always: user data (a YAML key, a file name) may hold line breaks
        super().__init__(text.replace("\r", "\\r").replace("\n", "\\n"))


class ModelCallError(SlmbenchError):
    """A model call failed; ``retryable`` tells the runner whether trying again can help."""

    def __init__(self, reason: str, *, retryable: bool = False, retry_after: float | None = None,
                 status: int | None = None, permanent: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        #: the same call will fail for every item (a missing key, a parameter the model rejects,
        #: an unknown model): what the pre-flight probe and fail-fast stop a model on
        self.permanent = permanent and not retryable
        self.retry_after = retry_after
        self.status = status  # HTTP status when there was one (429 drives adaptive concurrency)
