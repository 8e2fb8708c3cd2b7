"""Progress reporting seam: the runner reports, the CLI renders (rich), tests can record.

The items/s a progress bar shows must be the figure the summary will give, or a user sees two
speeds for one run and trusts neither. The summary divides the items called in a pair by the
pair's wall time, measured by the executor from its first call to its last answer (model
loading and cached answers count for nothing and take no time there); a bar only sees rows
arrive, so while the pair runs it shows :class:`RateMeter`'s running figure, and when the pair
ends the runner hands it the pair's own count and wall time (:meth:`Progress.timed`), the
summary's figure exactly.
"""

from __future__ import annotations

import time
from typing import Any, Protocol


class Progress(Protocol):
    def start(self, task: str, model: str, total: int, done: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...
    def note(self, message: str) -> None: ...
    def timed(self, items: int, wall_s: float) -> None: ...


class SilentProgress:
    def start(self, task: str, model: str, total: int, done: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def timed(self, items: int, wall_s: float) -> None:
        pass


def items_per_s(items: int, wall_s: float) -> float | None:
    """The summary's items/s of a pair (``analysis.summary``: timed items ÷ wall time)."""
    return items / wall_s if wall_s > 0 else None


class RateMeter:
    """Items/s since the bar started, as a whole-pair average (rich's own speed is a moving
    window from the first row on, which a slow first call or a burst of cached rows pulls
    away from the summary's figure); :meth:`settle` replaces it with the pair's exact one."""

    def __init__(self, clock: Any = time.perf_counter) -> None:
        self._clock = clock
        self._t0 = clock()
        self._n = 0
        self.final: float | None = None

    def advance(self, n: int = 1) -> None:
        self._n += n

    def rate(self) -> float | None:
        if self.final is not None:
            return self.final
        elapsed = self._clock() - self._t0
        return self._n / elapsed if elapsed > 0 and self._n else None

    def settle(self, items: int, wall_s: float) -> float | None:
        self.final = items_per_s(items, wall_s)
        return self.final


def report_timing(progress: Any, items: int, wall_s: float) -> None:
    """Hand a pair's count and wall time to ``progress`` (one written before
    :meth:`Progress.timed` existed has no such method and is left alone)."""
    timed = getattr(progress, "timed", None)
    if timed is not None:
        timed(items, wall_s)
