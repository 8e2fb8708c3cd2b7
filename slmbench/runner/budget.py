"""Stopping rules: ``--max-errors`` and ``--max-cost``.

The cost cap is checked *before* each request: spend so far (from finished rows' real tokens)
plus the estimate of every request in flight plus this one's (prompt tokens counted with
tiktoken, the full ``max_tokens`` as output: an upper bound) must stay under the cap. It
covers token-priced (API) models; local models cost wall time, which the cap does not meter.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING

from slmbench.errors import InputError, SlmbenchError
from slmbench.markdown import one_line

if TYPE_CHECKING:
    from slmbench.records import ResultRow


class RunStopped(SlmbenchError):
    """A stopping rule ended the run early; rows written so far are kept."""


def parse_max_errors(value: str | None) -> tuple[int | None, float | None]:
    """``"25"`` → (25, None); ``"5%"`` → (None, 0.05); None → no limit."""
    if value is None:
        return None, None
    text = str(value).strip()
    try:
        if text.endswith("%"):
            share = float(text[:-1]) / 100
            if not 0 < share <= 1:
                raise ValueError
            return None, share
        count = int(text)
        if count < 1:
            raise ValueError
        return count, None
    except ValueError:
        raise InputError("must be a positive count (e.g. 25) or a share (e.g. 5%)",
                         field="--max-errors", value=value) from None


class ErrorLimit:
    """``--max-errors``; its stop message names the most common error reason, so that a run
    stopped by a dead endpoint says so ("connection refused by 127.0.0.1:8080")."""

    MIN_ITEMS_FOR_SHARE = 20  # a share needs some items before it means anything

    def __init__(self, value: str | None) -> None:
        self.count, self.share = parse_max_errors(value)
        self.errors = 0
        self.seen = 0
        self.reasons: Counter[str] = Counter()

    def reset(self) -> None:
        self.errors = self.seen = 0
        self.reasons.clear()

    def record(self, row: ResultRow) -> str | None:
        """A reason to stop, or None."""
        self.seen += 1
        error = row.get("error")
        if error:
            self.errors += 1
            self.reasons[str(error)] += 1
        if self.count is not None and self.errors >= self.count:
            return f"{self.errors} errors reached --max-errors {self.count}{self._commonest()}"
        if (self.share is not None and self.seen >= self.MIN_ITEMS_FOR_SHARE
                and self.errors / self.seen > self.share):
            return (f"{self.errors} errors in {self.seen} items is more than --max-errors "
                    f"{self.share:.0%}{self._commonest()}")
        return None

    def _commonest(self) -> str:
        if not self.reasons:
            return ""
        reason, n = self.reasons.most_common(1)[0]
        share = "all" if n == self.errors else f"{n} of them"
        return f"; most common ({share}): {one_line(reason, 200)}"


class CostCap:
    def __init__(self, cap_usd: float | None) -> None:
        if cap_usd is not None and cap_usd <= 0:
            raise InputError("must be a positive amount in USD", field="--max-cost",
                             value=cap_usd)
        self.cap = cap_usd
        self.spent = 0.0
        self.reserved = 0.0
        self._lock = threading.Lock()

    def admit(self, estimate: float) -> bool:
        if self.cap is None:
            return True
        with self._lock:
            if self.spent + self.reserved + estimate > self.cap:
                return False
            self.reserved += estimate
            return True

    def settle(self, estimate: float, actual: float) -> None:
        with self._lock:
            self.reserved -= estimate
            self.spent += actual

    def status(self) -> str:
        if self.cap is None:
            return f"spent ${self.spent:.6f}"
        return (f"spent ${self.spent:.6f} of --max-cost ${self.cap:g}; "
                f"${self.cap - self.spent:.6f} remains")
