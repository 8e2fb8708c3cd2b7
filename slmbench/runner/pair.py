"""The ``local`` executor: the calls of one task × model pair made in this process.

:class:`PairRun` is also the base of every executor (runner/executors.py): the attributes
``run_benchmark`` and the manifest's timings read, the registry's hooks with their defaults,
and the local call loops that other executors fall back on for models they do not take.

Two ways to run the calls in parallel, picked per model:

* a model with a native asyncio path (``Model.acomplete``: litellm) runs every call of the pair
  as a task on one event loop, driven from the thread that iterates :meth:`PairRun.rows`: the
  generator runs the loop until at least one call has finished, then yields the finished rows.
  No thread per call, no GIL hand-off per call, no queue between threads; while the caller
  writes a row the loop is paused and answers wait in the socket buffers.
* any other thread-safe model runs in a thread pool of ``concurrency`` threads.

Either way the AIMD window (runner/retry.py) caps the calls in flight; cache lookups, cost
admission and settling go through the pair's accounts (runner/dispatch.py), as in every
executor.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TYPE_CHECKING

from slmbench.models import Model
from slmbench.records import Completion, Request, ResultRow
from slmbench.runner.dispatch import Admitted, PairAccounts
from slmbench.runner.items import ItemScorer
from slmbench.runner.retry import (
    AdaptiveWindow,
    CongestionSignals,
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
)
from slmbench.tasks import Item, LoadedTask

if TYPE_CHECKING:
    from slmbench.runner.executors import ExecutorOptions, Host


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


def call_item(model: Model, scorer: ItemScorer, item: Item, request: Request,
              policy: RetryPolicy, window: CongestionSignals | None = None
              ) -> tuple[ResultRow, Completion | None]:
    """One fresh model call (with retries) → (scored row, completion or None).

    The completion goes back with the row, for the pair's accounts to cache in the process
    that owns the cache (runner/dispatch.py), wherever the call ran.
    """
    comp, error, attempts, permanent = call_with_retries(lambda: model.complete(request),
                                                         policy, window=window)
    return scorer.row(model, item, comp, error, attempts, permanent), comp


async def acall_model(model: Model, scorer: ItemScorer, item: Item, request: Request,
                      policy: RetryPolicy, window: CongestionSignals | None = None
                      ) -> tuple[ResultRow, Completion | None]:
    """:func:`call_item` on the event loop, through ``Model.acomplete``."""
    comp, error, attempts, permanent = await acall_with_retries(
        lambda: model.acomplete(request), policy, window=window)
    return scorer.row(model, item, comp, error, attempts, permanent), comp


# --------------------------------------------------------------------------- pair run


class PairRun:
    """Items of one task × model, called in this process (threads or one event loop).

    What ``run_benchmark`` reads of any executor: ``rows(items)``, ``prepare``, ``stop``,
    ``stop_reason``, ``fresh``, ``latency_sum`` (these three from the accounts), ``wall_s``,
    ``workers`` (calls at once) and ``window`` (its ``smallest`` and ``decreases``).
    """

    def __init__(self, task: LoadedTask, model: Model, scorer: ItemScorer,
                 options: ExecutorOptions, accounts: PairAccounts) -> None:
        self.task = task
        self.model = model
        self.scorer = scorer
        self.options = options
        self.accounts = accounts
        self.workers = (min(options.concurrency, model.parallel or options.concurrency)
                        if model.thread_safe else 1)
        self.window = AdaptiveWindow(self.workers)
        self.wall_s = 0.0

    # -- registry hooks (runner/executors.py); the local executor runs anywhere, anything

    @classmethod
    def available(cls, host: Host) -> str | None:
        """Why this executor cannot run on ``host`` (None: it can)."""
        return None

    @classmethod
    def resolve(cls, options: ExecutorOptions, models: list[Model], host: Host
                ) -> ExecutorOptions | None:
        """The options ``--executor auto`` would run this run with here; None: pass."""
        return None

    @classmethod
    def check(cls, options: ExecutorOptions, models: list[Model]) -> None:
        """Raise InputError for what cannot work, before the run folder is made."""

    @classmethod
    def prestart(cls, options: ExecutorOptions, models: list[Model]) -> bool:
        """Start slow set-up while the tasks load; True when something was started."""
        return False

    # -- the pair's state, kept by its accounts

    @property
    def stop_reason(self) -> str | None:
        return self.accounts.stop_reason

    @property
    def fresh(self) -> int:
        return self.accounts.fresh

    @property
    def latency_sum(self) -> float:
        return self.accounts.latency_sum

    def stop(self, reason: str) -> None:
        self.accounts.stop(reason)

    def prepare(self, task: LoadedTask) -> None:
        """Get the model ready in this process, before the first item (executors whose
        calls run elsewhere leave it to the process that calls)."""
        self.model.prepare(task)

    def rows(self, items: list[Item]) -> Iterator[ResultRow]:
        """Yield rows as items complete; the caller is the single writer."""
        if has_async_path(self.model) and not _loop_running():
            return self._async_rows(items)
        return self._thread_rows(items)

    def _thread_rows(self, items: list[Item]) -> Iterator[ResultRow]:
        started = time.perf_counter()
        model, scorer, policy = self.model, self.scorer, self.options.retry
        accounts = self.accounts
        pending: dict[Future, Admitted] = {}
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="slmbench",
                                  initializer=_own_event_loop) if self.workers > 1 else None
        queue = iter(items)
        try:
            while True:
                # submit until the window is full, answering cache hits on the spot
                limit = self.window.current if pool is not None else 1
                while accounts.stop_reason is None and len(pending) < limit:
                    item = next(queue, None)
                    if item is None:
                        break
                    cached, admitted = accounts.admit(item)
                    if cached is not None:
                        yield cached
                        continue
                    if admitted is None:
                        break
                    args = (model, scorer, item, admitted.request, policy, self.window)
                    if pool is None:
                        yield accounts.settle(admitted, *call_item(*args))
                        continue
                    pending[pool.submit(call_item, *args)] = admitted
                if not pending:
                    break
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for fut in finished:
                    yield accounts.settle(pending.pop(fut), *fut.result())
        finally:
            if pool is not None:
                # on Ctrl-C: queued calls are cancelled, in-flight ones are not waited for
                pool.shutdown(wait=not pending, cancel_futures=True)
            self.wall_s = time.perf_counter() - started

    def _async_rows(self, items: list[Item]) -> Iterator[ResultRow]:
        started = time.perf_counter()
        model, scorer, policy, window = self.model, self.scorer, self.options.retry, self.window
        accounts = self.accounts
        loop = pair_event_loop()
        # call task → its admitted request; finished tasks queue up in `done`
        inflight: dict[asyncio.Task, Admitted] = {}
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
                while accounts.stop_reason is None and len(inflight) < window.current:
                    item = next(queue, None)
                    if item is None:
                        break
                    cached, admitted = accounts.admit(item)
                    if cached is not None:
                        yield cached
                        continue
                    if admitted is None:
                        break
                    task = loop.create_task(acall_model(model, scorer, item, admitted.request,
                                                        policy, window))
                    task.add_done_callback(finished)
                    inflight[task] = admitted
                if not inflight:
                    break
                if not done:
                    waiter[0] = loop.create_future()
                    loop.run_until_complete(waiter[0])
                    waiter[0] = None
                while done:
                    task = done.popleft()
                    yield accounts.settle(inflight.pop(task), *task.result())
        finally:
            waiter[0] = None
            if inflight:  # Ctrl-C or the caller stopped early: calls in flight are dropped
                for task in inflight:
                    task.cancel()
                # a second Ctrl-C here leaves them to the exit clean-up
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(asyncio.gather(*inflight, return_exceptions=True))
            self.wall_s = time.perf_counter() - started


def _loop_running() -> bool:
    """Whether the calling thread is inside a running event loop (then ours cannot run in it,
    and the thread pool path is taken)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
