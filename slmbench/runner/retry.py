"""Retry policy shared by every backend: capped exponential back-off with full jitter, honouring
a server's Retry-After, and no retry for errors that cannot get better by waiting."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from slmbench.errors import ModelCallError

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 4
    base_s: float = 0.5
    cap_s: float = 30.0

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (attempt counts from 1)."""
        backoff = rng.uniform(0, min(self.cap_s, self.base_s * 2 ** (attempt - 1)))
        if retry_after is not None:
            return min(self.cap_s, max(retry_after, 0.0))
        return backoff


class CongestionSignals(Protocol):
    """What a call loop tells the concurrency window: an :class:`AdaptiveWindow`, or a stand-in
    that forwards the signals to the process that owns the window (runner/process_pool.py)."""

    def on_success(self) -> None: ...

    def on_rate_limited(self) -> None: ...


class AdaptiveWindow:
    """AIMD concurrency for API calls: halve on a 429, grow back by one per window of successes.

    Many requests in flight get their 429 together; only the first halves the window, later ones
    within ``cooldown_s`` are the same congestion event. The window never leaves [1, maximum].
    """

    def __init__(self, maximum: int, cooldown_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.maximum = maximum
        self.size = float(maximum)
        self.cooldown_s = cooldown_s
        self.clock = clock
        self.smallest = maximum
        self.decreases = 0
        self._last_decrease = -1e18
        self._lock = threading.Lock()

    @property
    def current(self) -> int:
        return max(1, int(self.size))

    def on_rate_limited(self) -> None:
        with self._lock:
            now = self.clock()
            if now - self._last_decrease < self.cooldown_s:
                return
            self._last_decrease = now
            self.size = max(1.0, self.size / 2)
            self.decreases += 1
            self.smallest = min(self.smallest, self.current)

    def on_success(self) -> None:
        with self._lock:
            self.size = min(float(self.maximum), self.size + 1.0 / self.size)


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *,
                      sleep: Callable[[float], None] = time.sleep,
                      rng: random.Random | None = None,
                      window: AdaptiveWindow | None = None,
                      ) -> tuple[T | None, str | None, int, bool]:
    """Run ``fn``; returns (result, error_reason, attempts, permanent). Never raises
    ModelCallError."""
    attempt = 0
    while True:
        attempt += 1
        try:
            result = fn()
            if window is not None:
                window.on_success()
            return result, None, attempt, False
        except ModelCallError as exc:
            final = _failed(exc, attempt, policy, window)
            if final is not None:
                return None, final, attempt, exc.permanent
            # made on the first retry only: seeding a Random from urandom costs more than the
            # rest of this function on the success path
            rng = rng or random.Random()
            sleep(policy.delay(attempt, exc.retry_after, rng))


def _failed(exc: ModelCallError, attempt: int, policy: RetryPolicy,
            window: CongestionSignals | None) -> str | None:
    """Shared by both retry loops: signal a 429 to the window, then the row's final error
    reason, or None when the call should be tried again."""
    if window is not None and exc.status == 429:
        window.on_rate_limited()
    if not exc.retryable or attempt >= policy.max_attempts:
        suffix = f" (gave up after {attempt} attempts)" if exc.retryable else ""
        return exc.reason + suffix
    return None


async def acall_with_retries(fn: Callable[[], Awaitable[T]], policy: RetryPolicy, *,
                             sleep: Callable[[float], Awaitable[None]] | None = None,
                             rng: random.Random | None = None,
                             window: CongestionSignals | None = None,
                             ) -> tuple[T | None, str | None, int, bool]:
    """The asyncio sibling of :func:`call_with_retries`: same policy, same window signals, same
    (result, error_reason, attempts); the back-off awaits instead of blocking a thread, so one
    event loop keeps every other call moving while this one waits out a Retry-After."""
    if sleep is None:
        import asyncio

        sleep = asyncio.sleep
    attempt = 0
    while True:
        attempt += 1
        try:
            result = await fn()
            if window is not None:
                window.on_success()
            return result, None, attempt, False
        except ModelCallError as exc:
            final = _failed(exc, attempt, policy, window)
            if final is not None:
                return None, final, attempt, exc.permanent
            rng = rng or random.Random()
            await sleep(policy.delay(attempt, exc.retry_after, rng))
