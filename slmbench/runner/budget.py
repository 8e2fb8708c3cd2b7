"""Stopping rules: ``--max-errors`` and ``--max-cost``.

The cost cap is checked *before* each request: spend so far (from finished rows' real tokens)
plus the estimate of every request in flight plus this one's (prompt tokens counted with
tiktoken, the full ``max_tokens`` as output: an upper bound) must stay under the cap. It
covers token-priced (API) models; local models cost wall time, which the cap does not meter.

The cap is on the run, not on one invocation: a resume starts from the spend of the rows
already stored (:meth:`CostCap.seed`), so stopping and resuming never buys a second budget.

**How far it can overshoot.** A request is admitted only while spend + reservations + its
estimate fit under the cap, so the cap can be passed only by requests whose real cost exceeds
their estimate (a provider billing more tokens than asked for, hidden reasoning tokens). After
the last admission nothing new is sent, hence the final spend is at most the cap plus
``actual - estimate`` summed over the requests in flight at that last admission: at most
``--concurrency`` requests, with every executor (the processes executor sends no item ahead of
a worker's free slots while a cap is set, so its admitted requests are its calls in flight).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from pathlib import Path
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


def parse_max_cost(value: float | str | None) -> float | None:
    """``--max-cost``: a positive, finite number of USD (nan and inf would disable the cap)."""
    if value is None:
        return None
    try:
        cap = float(value)
    except (TypeError, ValueError):
        cap = math.nan
    if not math.isfinite(cap) or cap <= 0:
        raise InputError(f"must be a positive, finite amount in USD or '{FROM_ESTIMATE}'",
                         field="--max-cost", value=value)
    return cap


#: ``--max-cost estimate``: the cap is the high $ of the estimate stored with the run
FROM_ESTIMATE = "estimate"


def resolve_max_cost(value: str | float | None, results_dir: Path, run_id: str | None
                     ) -> float | None:
    """``--max-cost`` of ``run``: USD, or :data:`FROM_ESTIMATE`, read from the estimate that
    ``slmbench estimate --run-id`` stored in the run folder, so that the cap a user checked
    before the run is the one the run keeps (the manifest records the figure, not the word)."""
    if isinstance(value, str) and value.strip().lower() == FROM_ESTIMATE:
        if run_id is None:
            raise InputError("'estimate' takes the cap from the estimate stored for the run: "
                             "give --run-id (or --resume)", field="--max-cost", value=value)
        from slmbench.analysis.estimate import high_usd

        return parse_max_cost(high_usd(Path(results_dir) / run_id))
    return parse_max_cost(value)


class CostCap:
    """The run's spend against ``--max-cost`` (see the module docstring for its bound)."""

    def __init__(self, cap_usd: float | None) -> None:
        self.cap = parse_max_cost(cap_usd)
        self.spent = 0.0
        self.reserved = 0.0
        #: spend of the rows stored before this invocation (a resume), part of ``spent``
        self.before = 0.0
        self._lock = threading.Lock()

    def seed(self, spent_before: float) -> None:
        """Count what the run's stored rows already cost: the cap covers every invocation."""
        with self._lock:
            self.before = spent_before
            self.spent += spent_before

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
        earlier = (f" (${self.before:.6f} of it before this invocation)"
                   if self.before else "")
        if self.cap is None:
            return f"spent ${self.spent:.6f}{earlier}"
        left = self.cap - self.spent
        rest = f"${left:.6f} remains" if left >= 0 else f"over by ${-left:.6f}"
        return f"spent ${self.spent:.6f}{earlier} of --max-cost ${self.cap:g}; {rest}"
