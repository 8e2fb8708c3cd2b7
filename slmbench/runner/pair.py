"""One task × model pair run in this process: cache lookups, cost admission, parallel calls.

This is the default executor. Other executors (Ray, worker processes) produce rows for a pair
with the same attributes, so ``run_benchmark`` stays the single writer whatever runs the calls.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from slmbench.models import Model
from slmbench.models.base import PRICING_TOKENS
from slmbench.pricing.run_costs import RunCoster
from slmbench.runner.budget import CostCap
from slmbench.runner.cache import ResponseCache, cache_key
from slmbench.runner.items import ItemScorer, call_model
from slmbench.runner.retry import AdaptiveWindow
from slmbench.tasks import Item

if TYPE_CHECKING:
    from slmbench.runner.run import RunOptions


def _own_event_loop() -> None:
    """Give a worker thread its own asyncio loop: litellm otherwise spins one up per call to
    run its logging hooks (measured: -12 % client CPU per call, benchmarks/bench_api.py)."""
    import asyncio

    asyncio.set_event_loop(asyncio.new_event_loop())


class PairRun:
    """Items of one task × model: cache lookups, cost admission, (parallel) calls."""

    def __init__(self, model: Model, scorer: ItemScorer, options: RunOptions,
                 cache: ResponseCache | None, cap: CostCap, coster: RunCoster) -> None:
        self.model = model
        self.scorer = scorer
        self.options = options
        self.cache = cache if model.cacheable else None
        self.cap = cap
        self.price = (coster.book.lookup(model.name, coster.on)
                      if model.pricing == PRICING_TOKENS and cap.cap is not None else None)
        self.workers = options.concurrency if model.thread_safe else 1
        self.window = AdaptiveWindow(self.workers)
        self.stop_reason: str | None = None
        self.fresh = 0
        self.latency_sum = 0.0
        self.wall_s = 0.0

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def _estimate(self, request: Any) -> float:
        if self.price is None:
            return 0.0
        from slmbench.models.tokens import count_messages
        from slmbench.pricing.cost import token_cost

        return token_cost(self.price, count_messages(request.messages), request.max_tokens)

    def _actual(self, row: dict[str, Any]) -> float:
        if self.price is None:
            return 0.0
        from slmbench.pricing.cost import token_cost

        return token_cost(self.price, int(row["tokens_in"] or 0), int(row["tokens_out"] or 0))

    def rows(self, items: list[Item]) -> Iterator[dict[str, Any]]:
        """Yield rows as items complete; the caller is the single writer."""
        started = time.perf_counter()
        model, scorer, policy = self.model, self.scorer, self.options.retry
        pending: dict[Future, float] = {}
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="slmbench",
                                  initializer=_own_event_loop) if self.workers > 1 else None
        queue = iter(items)
        try:
            while True:
                # submit until the window is full, answering cache hits on the spot
                limit = self.window.current if pool is not None else 1
                while self.stop_reason is None and len(pending) < limit:
                    item = next(queue, None)
                    if item is None:
                        break
                    request = scorer.request(item)
                    key = cache_key(model, request) if self.cache is not None else None
                    hit = self.cache.get(key) if key is not None else None
                    if hit is not None:
                        row = scorer.row(model, item, hit, None, 0)
                        row["cached"] = True
                        yield row
                        continue
                    estimate = self._estimate(request)
                    if not self.cap.admit(estimate):
                        self.stop(f"--max-cost reached ({self.cap.status()})")
                        break
                    args = (model, scorer, item, request, policy, self.cache, key, self.window)
                    if pool is None:
                        row = call_model(*args)
                        yield self._settle(row, estimate)
                        continue
                    pending[pool.submit(call_model, *args)] = estimate
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield self._settle(fut.result(), pending.pop(fut))
        finally:
            if pool is not None:
                # on Ctrl-C: queued calls are cancelled, in-flight ones are not waited for
                pool.shutdown(wait=not pending, cancel_futures=True)
            self.wall_s = time.perf_counter() - started

    def _settle(self, row: dict[str, Any], estimate: float) -> dict[str, Any]:
        self.cap.settle(estimate, self._actual(row))
        self.fresh += 1
        self.latency_sum += row["latency_s"] or 0.0
        return row
