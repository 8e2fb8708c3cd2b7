"""Retry policy shared by every backend: capped exponential back-off with full jitter, honouring
a server's Retry-After, and no retry for errors that cannot get better by waiting."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

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


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *,
                      sleep: Callable[[float], None] = time.sleep,
                      rng: random.Random | None = None) -> tuple[T | None, str | None, int]:
    """Run ``fn``; returns (result, error_reason, attempts). Never raises ModelCallError."""
    rng = rng or random.Random()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn(), None, attempt
        except ModelCallError as exc:
            if not exc.retryable or attempt >= policy.max_attempts:
                suffix = f" (gave up after {attempt} attempts)" if exc.retryable else ""
                return None, exc.reason + suffix, attempt
            sleep(policy.delay(attempt, exc.retry_after, rng))
