"""One task × model pair run in this process: cache lookups, cost admission, parallel calls.

This is the default executor. Other executors (Ray, worker processes) produce rows for a pair
with the same attributes, so ``run_benchmark`` stays the single writer whatever runs the calls.

Two ways to run the calls in parallel, picked per model:

* a model with a native asyncio path (``Model.acomplete``: litellm) runs every call of the pair
  as a task on one event loop, driven from the thread that iterates :meth:`PairRun.rows`: the
  generator runs the loop until at least one call has finished, then yields the finished rows.
  No thread per call, no GIL hand-off per call, no queue between threads; while the caller
  writes a row the loop is paused and answers wait in the socket buffers.
* any other thread-safe model runs in a thread pool of ``concurrency`` threads.

Either way the AIMD window (runner/retry.py) caps the calls in flight, the response cache is
read before a call and written after a success, and the cost cap admits each request before it
is sent and settles it with the real tokens when its row comes back.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any

from slmbench.models import Model
from slmbench.models.base import PRICING_TOKENS, Request
from slmbench.pricing.run_costs import RunCoster
from slmbench.runner.budget import CostCap
from slmbench.runner.cache import ResponseCache, cache_key
from slmbench.runner.items import ItemScorer, call_model
from slmbench.runner.retry import AdaptiveWindow, CongestionSignals, RetryPolicy, acall_with_retries
from slmbench.tasks import Item, LoadedTask

if TYPE_CHECKING:
    from slmbench.runner.run import RunOptions


def _own_event_loop() -> None:
    """Give a worker thread its own asyncio loop: litellm otherwise spins one up per call to
    run its logging hooks (measured: -12 % client CPU per call, benchmarks/bench_api.py)."""
    asyncio.set_event_loop(asyncio.new_event_loop())


def has_async_path(model: Model) -> bool:
    return getattr(model, "acomplete", None) is not None


# --------------------------------------------------------------------------- event loop

_loops = threading.local()
_all_loops: list[asyncio.AbstractEventLoop] = []
_loops_lock = threading.Lock()


def pair_event_loop() -> asyncio.AbstractEventLoop:
    """This thread's event loop for async pair runs, kept for the life of the process.

    Kept, not made per pair: litellm caches its HTTP sessions, and a session is bound to the
    loop it was made on; a loop per pair would leave the next pair with sessions of a closed
    loop (and re-pay connection set-up). Closed at exit, tasks cancelled first: an unclosed
    loop with litellm's logging task still pending crashes CPython's final garbage collection.
    """
    loop = getattr(_loops, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _loops.loop = loop
        with _loops_lock:
            if not _all_loops:
                import atexit

                atexit.register(_close_loops)
            _all_loops.append(loop)
    return loop


def _close_loops() -> None:
    with _loops_lock:
        loops, _all_loops[:] = list(_all_loops), []
    for loop in loops:
        if loop.is_closed() or loop.is_running():
            continue
        close_event_loop(loop)


def close_event_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on ``loop`` (litellm's logging worker), close litellm's HTTP
    sessions on it, then close it; never raises (it runs at exit)."""
    try:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        import sys

        if "litellm" in sys.modules:
            from litellm.llms.custom_httpx.async_client_cleanup import (
                close_litellm_async_clients,
            )

            loop.run_until_complete(close_litellm_async_clients())
        loop.run_until_complete(loop.shutdown_asyncgens())
    except BaseException:  # noqa: S110 - best effort at exit
        pass
    finally:
        with contextlib.suppress(BaseException):  # best effort at exit
            loop.close()


async def acall_model(model: Model, scorer: ItemScorer, item: Item, request: Request,
                      policy: RetryPolicy, window: CongestionSignals | None = None
                      ) -> tuple[dict[str, Any], Any]:
    """One fresh model call on the event loop (with retries) → (scored row, completion or None).

    The asyncio sibling of ``runner.items.call_model``; the caller writes the cache, so that
    the cache stays in the process that owns it (see runner/process_pool.py).
    """
    comp, error, attempts, permanent = await acall_with_retries(
        lambda: model.acomplete(request), policy, window=window)
    return scorer.row(model, item, comp, error, attempts, permanent), comp


# --------------------------------------------------------------------------- pair run


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
        self.workers = (min(options.concurrency, model.parallel or options.concurrency)
                        if model.thread_safe else 1)
        self.window = AdaptiveWindow(self.workers)
        self.stop_reason: str | None = None
        self.fresh = 0
        self.latency_sum = 0.0
        self.wall_s = 0.0

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def prepare(self, task: LoadedTask) -> None:
        """Get the model ready in this process, before the first item (executors whose
        calls run elsewhere leave it to the process that calls)."""
        self.model.prepare(task)

    def _estimate(self, request: Any) -> float:
        if self.price is None:
            return 0.0
        from slmbench.models.tokens import count_messages
        from slmbench.pricing.cost import token_cost

        return token_cost(self.price, count_messages(request.messages),
                          self.model.output_budget(request))

    def _actual(self, row: dict[str, Any]) -> float:
        if self.price is None:
            return 0.0
        from slmbench.pricing.cost import token_cost

        tokens_in = int(row["tokens_in"] or 0)
        cached = min(int(row.get("cached_tokens_in") or 0), tokens_in)
        writes = min(int(row.get("cache_write_tokens") or 0), tokens_in - cached)
        # what the summary will bill: cache reads and writes at their own prices
        return token_cost(self.price, tokens_in, int(row["tokens_out"] or 0), cached_in=cached,
                          cache_write_in=writes)

    def rows(self, items: list[Item]) -> Iterator[dict[str, Any]]:
        """Yield rows as items complete; the caller is the single writer."""
        if has_async_path(self.model) and not _loop_running():
            return self._async_rows(items)
        return self._thread_rows(items)

    def _admit(self, item: Item) -> tuple[dict[str, Any] | None, Request, str | None, float]:
        """Cache lookup and cost admission for one item: (cached row or None, request, cache
        key, cost estimate); a refused admission stops the pair (estimate -1)."""
        request = self.scorer.request(item)
        key = cache_key(self.model, request) if self.cache is not None else None
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            row = self.scorer.row(self.model, item, hit, None, 0)
            row["cached"] = True
            return row, request, key, 0.0
        estimate = self._estimate(request)
        if not self.cap.admit(estimate):
            self.stop(f"--max-cost reached ({self.cap.status()})")
            return None, request, key, -1.0
        return None, request, key, estimate

    def _thread_rows(self, items: list[Item]) -> Iterator[dict[str, Any]]:
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
                    cached, request, key, estimate = self._admit(item)
                    if cached is not None:
                        yield cached
                        continue
                    if estimate < 0:
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

    def _async_rows(self, items: list[Item]) -> Iterator[dict[str, Any]]:
        started = time.perf_counter()
        model, scorer, policy, window = self.model, self.scorer, self.options.retry, self.window
        loop = pair_event_loop()
        # call task → (cost estimate, cache key); finished tasks queue up in `done`
        inflight: dict[asyncio.Task, tuple[float, str | None]] = {}
        done: deque[asyncio.Task] = deque()
        waiter: list[asyncio.Future | None] = [None]

        def finished(task: asyncio.Task) -> None:
            done.append(task)
            fut = waiter[0]
            if fut is not None and not fut.done():
                fut.set_result(None)

        queue = iter(items)
        try:
            while True:
                while self.stop_reason is None and len(inflight) < window.current:
                    item = next(queue, None)
                    if item is None:
                        break
                    cached, request, key, estimate = self._admit(item)
                    if cached is not None:
                        yield cached
                        continue
                    if estimate < 0:
                        break
                    task = loop.create_task(acall_model(model, scorer, item, request, policy,
                                                        window))
                    task.add_done_callback(finished)
                    inflight[task] = (estimate, key)
                if not inflight:
                    break
                if not done:
                    waiter[0] = loop.create_future()
                    loop.run_until_complete(waiter[0])
                    waiter[0] = None
                while done:
                    task = done.popleft()
                    estimate, key = inflight.pop(task)
                    row, comp = task.result()
                    if comp is not None and self.cache is not None and key is not None:
                        self.cache.put(key, comp)
                    yield self._settle(row, estimate)
        finally:
            waiter[0] = None
            if inflight:  # Ctrl-C or the caller stopped early: calls in flight are dropped
                for task in inflight:
                    task.cancel()
                # a second Ctrl-C here leaves them to the exit clean-up
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(asyncio.gather(*inflight, return_exceptions=True))
            self.wall_s = time.perf_counter() - started

    def _settle(self, row: dict[str, Any], estimate: float) -> dict[str, Any]:
        self.cap.settle(estimate, self._actual(row))
        self.fresh += 1
        self.latency_sum += row["latency_s"] or 0.0
        return row


def _loop_running() -> bool:
    """Whether the calling thread is inside a running event loop (then ours cannot run in it,
    and the thread pool path is taken)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
