"""``--executor processes``: API calls on every core, rows written by this process alone.

On one core the client is the limit of a fast API benchmark: litellm spends ~2 ms of CPU per
call, so one process tops out near 500 calls/s whatever the server can do. Here N worker
processes each run an asyncio loop of ``Model.acomplete`` calls (litellm.acompletion) over the
items this process feeds them; each worker scores its answers and streams the rows back, and
``run_benchmark`` (the caller of :meth:`ProcessPairRun.rows`) stays the single writer.

Who does what
-------------
* This process (the parent) admits each item through the pair's accounts (runner/dispatch.py:
  request, cache hit answered on the spot, cost cap), picks a worker, and on the way back
  settles the row through the same accounts (cache write, real cost) and yields it. The cache,
  the cost cap and the writer never leave it.
* A worker makes the calls, with the same retry policy and Retry-After handling as the
  in-process path (``acall_with_retries``), and scores the answer.

One concurrency window for all workers
--------------------------------------
The AIMD window (runner/retry.py) lives in the parent and is split into *credits*, one share
per live worker, summing to the window: a worker runs at most its credit of calls at once, so
the calls in flight across the pool never exceed the window, exactly as in one process, and
items sleeping in a retry back-off keep their slot, as in-process. The parent also sends each
worker a few items beyond its credit (a backlog): when a call ends, the worker starts the next
one at once instead of waiting a round trip for the parent to send it, which at 32 calls in
flight cost ~5 ms of each slot's ~60 (bench_api.py (d): 516 -> 552 items/s, +7 %). A worker
reports each 429 at once (a small message of its own, not with the row, which may come much
later after back-off); the parent halves the window and sends the smaller credits, and a worker
whose calls in flight exceed its new credit starts nothing until they drain below it (calls
already sent cannot be recalled, in-process either). Successes come with the rows and grow the
window, and with it the credits. Rejected alternatives: a multiprocessing semaphore shared by
the workers (AIMD has to resize it, which a semaphore cannot do atomically, and a worker that
dies holding permits leaks them); a fixed share per worker with its own AIMD window (each share
halves on its own worker's 429s only, so a storm that hits one worker leaves the others sending
at full rate); the parent sending each item only when a slot frees (the round trip above).

Transport and lifetime
----------------------
Workers are kept for the life of this process (one pool per worker count): starting one costs
seconds of CPU (litellm's import and its first call), which each pair must not pay again. They
are plain ``python -c`` children in sessions of their own, not multiprocessing processes: no
re-import of the caller's ``__main__``, and a terminal's Ctrl-C reaches only the parent, which
decides. Each worker talks to the parent over a socketpair with length-prefixed pickles; the
parent batches the items of one dispatch round per worker, a worker batches the rows that
finish in one loop iteration. When the parent dies, the workers read EOF and exit.

Failure semantics (no row lost or duplicated)
---------------------------------------------
Every item is dispatched once and yields at most one row, and only rows the parent yields are
written. Ctrl-C or any exception in the parent: the pool is shut down, calls in flight are
dropped unwritten, and a resume runs those items again. A worker that dies mid-run: its items
in flight go to the surviving workers; with none left the pair stops (``RunStopped``) with its
rows so far written.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pickle
import selectors
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from slmbench.machine import usable_cores
from slmbench.models import Model
from slmbench.runner.items import ItemScorer
from slmbench.runner.pair import PairRun, has_async_path
from slmbench.tasks import Item, LoadedTask

if TYPE_CHECKING:
    import asyncio

    from slmbench.records import ResultRow
    from slmbench.runner.dispatch import Admitted, PairAccounts
    from slmbench.runner.executors import ExecutorOptions, Host
    from slmbench.runner.retry import RetryPolicy

    #: seq → (its admitted request, index of the worker it was sent to)
    Inflight = dict[int, tuple[Admitted, int]]

_HEADER = struct.Struct("!I")
_RECV_BYTES = 1 << 20
_READY_MAX = 256  # cache hits answered before the next round of yields (bounded memory)
_BACKLOG_MIN = 2  # items a worker holds beyond its credit, so that a freed slot never waits
#: most worker processes ``--executor auto`` starts: API calls stop gaining from more well
#: before this
AUTO_MAX_WORKERS = 4


def _room(worker: _Worker, ahead: bool = True) -> int:
    """Items the parent may still send ``worker``: its credit plus a small backlog (none when
    ``ahead`` is False: under ``--max-cost`` an admitted item must be a call in flight, see
    ProcessPairRun._process_rows)."""
    if not worker.alive or worker.credit <= 0:
        return 0
    backlog = max(_BACKLOG_MIN, worker.credit // 4) if ahead else 0
    return worker.credit + backlog - len(worker.inflight)


def _frame(message: Any) -> bytes:
    blob = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(blob)) + blob


# --------------------------------------------------------------------------- parent side


@dataclass
class _Worker:
    index: int
    process: subprocess.Popen
    sock: socket.socket
    buffer: bytearray = field(default_factory=bytearray)
    inflight: set[int] = field(default_factory=set)  # seqs of the current pair, sent to it
    credit: int = 0  # calls it may have running at once (its share of the window)
    alive: bool = True

    def send(self, message: Any) -> None:
        self.sock.sendall(_frame(message))

    def messages(self) -> Iterator[Any]:
        """Complete messages in the buffer (after a recv)."""
        buf = self.buffer
        pos = 0
        while len(buf) - pos >= _HEADER.size:
            (size,) = _HEADER.unpack_from(buf, pos)
            end = pos + _HEADER.size + size
            if len(buf) < end:
                break
            yield pickle.loads(buf[pos + _HEADER.size:end])
            pos = end
        del buf[:pos]


# The worker ignores SIGINT before anything else is imported, and imports the parent's
# slmbench: its folder goes first on sys.path unless already there (a site-packages folder is,
# and must not be moved ahead of the standard library).
_BOOT = ("import signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
         "sys.argv[2] in sys.path or sys.path.insert(0, sys.argv[2]); "
         "from slmbench.runner.process_pool import worker_entry; "
         "worker_entry(int(sys.argv[1]), int(sys.argv[3]))")


class WorkerPool:
    """N worker processes and their sockets; one pair at a time uses it.

    Workers are plain ``python -c`` children (not multiprocessing): nothing of the parent's
    ``__main__`` is re-imported in them, and each sits in a session of its own, so a terminal's
    Ctrl-C reaches only the parent, which decides what happens to the calls in flight.
    """

    def __init__(self, n: int) -> None:
        import slmbench

        root = str(Path(slmbench.__file__).resolve().parent.parent)
        self.n = n
        self.workers: list[_Worker] = []
        self.selector = selectors.DefaultSelector()
        self.busy = False
        self.pair_ids = 0
        try:
            for i in range(n):
                parent_sock, child_sock = socket.socketpair()
                try:
                    # stdout stays clean for the parent's output (a report piped to a file)
                    proc = subprocess.Popen(
                        [sys.executable, "-c", _BOOT, str(child_sock.fileno()), root,
                         str(os.getpid())],
                        pass_fds=(child_sock.fileno(),), stdin=subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, start_new_session=True)
                finally:
                    child_sock.close()
                worker = _Worker(i, proc, parent_sock)
                self.workers.append(worker)
                self.selector.register(parent_sock, selectors.EVENT_READ, worker)
        except BaseException:
            self.close()
            raise

    @property
    def alive(self) -> list[_Worker]:
        return [w for w in self.workers if w.alive]

    def healthy(self) -> bool:
        """Every worker still there (one may have been killed between two pairs)."""
        return all(w.alive and w.process.poll() is None for w in self.workers)

    def pids(self) -> list[int]:
        return [w.process.pid for w in self.workers if w.alive]

    def mark_dead(self, worker: _Worker) -> None:
        if not worker.alive:
            return
        worker.alive = False
        with contextlib.suppress(KeyError, ValueError):
            self.selector.unregister(worker.sock)
        worker.sock.close()

    def close(self, timeout: float = 2.0) -> None:
        """EOF to every worker (they exit), then make sure they did."""
        for worker in self.workers:
            self.mark_dead(worker)
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            try:
                worker.process.wait(max(0.01, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.process.kill()
                with contextlib.suppress(subprocess.TimeoutExpired):
                    worker.process.wait(1.0)
        self.selector.close()


_pools: dict[int, WorkerPool] = {}
_pools_lock = threading.Lock()


def _acquire_pool(n: int) -> WorkerPool:
    with _pools_lock:
        pool = _pools.get(n)
        if pool is not None and (pool.busy or not pool.healthy()):
            if not pool.busy:
                pool.close()
            pool = None
        if pool is None:
            if not _pools:
                import atexit

                atexit.register(shutdown_pools)
            pool = WorkerPool(n)
            _pools[n] = pool
        pool.busy = True
        return pool


def prestart_pool(n: int, models: list[Model]) -> bool:
    """Start the pool of ``n`` workers now, each importing what ``models`` will need
    (:meth:`Model.preload`) while this process loads the tasks: on 2 cores litellm's import in
    the workers then overlaps the parent's dataset loading instead of following it. False
    when no model would run in the workers (nothing started)."""
    preload = [m for m in models if goes_to_workers(m)]
    if not preload:
        return False
    pool = _acquire_pool(n)
    healthy = True
    try:
        for worker in pool.alive:
            for model in preload:
                try:
                    worker.send(("preload", 0, model))
                except OSError:
                    pool.mark_dead(worker)
                    healthy = False
    finally:
        _release_pool(pool, healthy)
    return True


def worker_count(options: ExecutorOptions) -> int:
    return max(1, options.workers or usable_cores())


def goes_to_workers(model: Model) -> bool:
    """Whether ``--executor processes`` calls this model in the workers (API models) rather
    than in this process (local models: their cost is the model, not the client)."""
    return model.thread_safe and has_async_path(model)


def _release_pool(pool: WorkerPool, healthy: bool) -> None:
    with _pools_lock:
        pool.busy = False
        if healthy and pool.healthy():
            return
        if _pools.get(pool.n) is pool:
            del _pools[pool.n]
    pool.close()


def shutdown_pools() -> None:
    """Stop every worker process (at exit; tests call it too)."""
    with _pools_lock:
        pools = list(_pools.values())
        _pools.clear()
    for pool in pools:
        pool.close()


def worker_pids() -> list[int]:
    """Pids of the live worker processes of every pool (for tests and diagnostics)."""
    with _pools_lock:
        return [pid for pool in _pools.values() for pid in pool.pids()]


class ProcessPairRun(PairRun):
    """A pair run whose calls are made by worker processes; see the module docstring.

    Models without an asyncio path (local models) or not safe to call in parallel run in this
    process as with the local executor: their cost is the model, not the client.
    """

    def __init__(self, task: LoadedTask, model: Model, scorer: ItemScorer,
                 options: ExecutorOptions, accounts: PairAccounts) -> None:
        super().__init__(task, model, scorer, options, accounts)
        self.processes = worker_count(options)

    @classmethod
    def available(cls, host: Host) -> str | None:
        # a worker inherits its socket by fd (subprocess pass_fds)
        return None if host.posix else "needs a POSIX system (Linux, macOS); use local or ray"

    @classmethod
    def resolve(cls, options: ExecutorOptions, models: list[Model], host: Host
                ) -> ExecutorOptions | None:
        """Taken for auto when an API model is in the run and this process may use more than
        one core: against a fast server one process's client CPU is the limit, and against a
        slow API the workers cost only their start-up, which runs beside the task loading."""
        if host.cores > 1 and any(goes_to_workers(m) for m in models):
            return replace(options, workers=options.workers or min(host.cores,
                                                                   AUTO_MAX_WORKERS))
        return None

    @classmethod
    def prestart(cls, options: ExecutorOptions, models: list[Model]) -> bool:
        return prestart_pool(worker_count(options), models)

    def prepare(self, task: LoadedTask) -> None:
        if not goes_to_workers(self.model):  # the workers prepare their own copy
            super().prepare(task)

    def rows(self, items: list[Item]) -> Iterator[ResultRow]:
        if not goes_to_workers(self.model):
            return super().rows(items)
        return self._process_rows(items)

    def _process_rows(self, items: list[Item]) -> Iterator[ResultRow]:
        """Each round: refill the window (cache hits are answered on the spot), send the
        workers their batches, then yield the rows that are ready, then wait for more. The
        workers start the new calls while this process writes rows.

        Stopping bounds: what is called after a stop must be the calls in flight, at most the
        window, as in-process, not also the backlog the workers hold ahead of their free
        slots (they start it before this process has read the rows that stop the pair).
        Under ``--max-cost`` no item is sent ahead of a free slot at all: the cap admits at
        estimate, and only the requests in flight may overrun it (runner/budget.py). From
        a permanent error on (the start of what fail-fast counts) until a row without one,
        the workers hand back the items they have not started (a worker on its own
        permanent error at once, the others on a ``halt``; the items are admitted again
        later) and get none ahead; and once the pair stops (``--max-errors``, fail-fast)
        they drop what they hold, unpaid."""
        started = time.perf_counter()
        pool = _acquire_pool(self.processes)
        pool.pair_ids += 1
        pair_id = pool.pair_ids
        healthy = False
        task = self.scorer.task
        slim = LoadedTask(spec=task.spec, items=(), train=(), fingerprint=task.fingerprint)
        accounts = self.accounts
        setup = ("setup", pair_id, self.model, slim, self.options.retry,
                 accounts.cache is not None)
        inflight: Inflight = {}
        ready: list[ResultRow] = []
        seqs = itertools.count()
        queue = iter(items)
        handed_back: deque[Item] = deque()  # items a halt returned unstarted: admitted again
        exhausted = False
        window = self.window
        ahead = accounts.price is None  # a backlog only where no cost cap meters the pair
        # no backlog until a row without a permanent error: a model that cannot run from
        # its first call (a bad key, a rejected parameter) then never has more items out
        # than the window, and fail-fast stops it at the calls in flight
        wary = True
        backlogged = False  # a worker may hold items it has not started

        def room(worker: _Worker) -> int:
            return _room(worker, ahead and not wary)

        try:
            for worker in pool.alive:
                worker.inflight.clear()
                worker.credit = 0
                self._send(pool, worker, setup, pair_id, inflight)
            if not pool.alive:
                self.stop(f"the {pool.n} worker processes could not be reached")
            while True:
                # the rows received go to the writer first: a row that stops the pair
                # (fail-fast, --max-errors) must do so before its freed slot is refilled
                rows, ready = ready, []
                yield from rows
                self._share_window(pool, pair_id, inflight)
                batches: dict[int, list[tuple[int, Item, Any]]] = {}
                while (accounts.stop_reason is None and not exhausted
                       and len(ready) < _READY_MAX):
                    worker = max(pool.alive, key=room, default=None)
                    if worker is None or room(worker) <= 0:
                        break
                    item = handed_back.popleft() if handed_back else next(queue, None)
                    if item is None:
                        exhausted = True
                        break
                    cached, admitted = accounts.admit(item)
                    if cached is not None:
                        ready.append(cached)
                        continue
                    if admitted is None:
                        break
                    seq = next(seqs)
                    worker.inflight.add(seq)
                    inflight[seq] = (admitted, worker.index)
                    batches.setdefault(worker.index, []).append((seq, item, admitted.request))
                    backlogged = backlogged or (ahead and not wary)
                self._send_batches(pool, pair_id, batches, inflight)
                rows, ready = ready, []
                yield from rows
                if backlogged and inflight and (wary or accounts.stop_reason is not None):
                    backlogged = False  # what is not started yet comes back (see dropped)
                    for worker in pool.alive:
                        self._send(pool, worker, ("halt", pair_id), pair_id, inflight)
                if not inflight:
                    if exhausted or accounts.stop_reason is not None:
                        break
                    continue  # only cache hits so far: admit more
                for message in self._receive(pool, pair_id, inflight):
                    if message[0] == "rl":
                        window.on_rate_limited()
                        continue
                    if message[0] == "dropped":  # after a halt: never started, never paid
                        for seq in message[2]:
                            entry = inflight.pop(seq, None)
                            if entry is not None:
                                pool.workers[entry[1]].inflight.discard(seq)
                                accounts.release(entry[0], maybe_paid=False)
                                handed_back.append(entry[0].item)
                                exhausted = False
                        continue
                    for _, seq, row, comp in message[2]:
                        entry = inflight.pop(seq, None)
                        if entry is None:
                            continue  # a row already received (a re-dispatched item)
                        admitted, index = entry
                        pool.workers[index].inflight.discard(seq)
                        if row["error"] is None:
                            window.on_success()
                        wary = bool(row["error"] and row.get("error_permanent"))
                        ready.append(accounts.settle(admitted, row, comp))
                if not pool.alive and inflight:
                    self.stop(f"all {pool.n} worker processes exited; "
                              f"{len(inflight)} items in flight were not answered")
                    for admitted, _ in inflight.values():
                        accounts.release(admitted, maybe_paid=False)
                    inflight.clear()
            healthy = not inflight
        finally:
            if healthy:
                for worker in pool.alive:
                    self._send(pool, worker, ("end", pair_id), pair_id, inflight)
            _release_pool(pool, healthy)
            self.wall_s = time.perf_counter() - started

    def _send(self, pool: WorkerPool, worker: _Worker, message: Any, pair_id: int,
              inflight: Inflight) -> bool:
        """Send one message; a worker that is gone has its items sent to the others."""
        try:
            if not worker.alive:
                raise OSError("worker gone")
            worker.send(message)
            return True
        except OSError:
            self._lost(pool, worker, pair_id, inflight)
            return False

    def _send_batches(self, pool: WorkerPool, pair_id: int,
                      batches: dict[int, list[tuple[int, Item, Any]]],
                      inflight: Inflight) -> None:
        """Send each worker its batch (a worker found gone hands its items on, see _lost)."""
        for index, batch in batches.items():
            self._send(pool, pool.workers[index], ("items", pair_id, batch), pair_id, inflight)

    def _share_window(self, pool: WorkerPool, pair_id: int,
                      inflight: Inflight) -> None:
        """Make the live workers' credits sum to the window, and send the ones that changed.

        Changed one credit at a time, never by a fresh even split: growth only adds (to the
        worker with the least), a decrease only takes (from the one with the most), so no
        worker's credit moves down and up within one change. A worker holding items with no
        credit (window below the worker count, or its credit taken) gets one from a worker
        with a slot nothing is using, so no item waits on a credit that no call will free.
        """
        while True:
            alive = pool.alive
            if not alive:
                return
            before = {w.index: w.credit for w in alive}
            target = self.window.current
            total = sum(before.values())
            while total < target:
                min(alive, key=lambda w: (w.credit, -len(w.inflight))).credit += 1
                total += 1
            while total > target:
                max(alive, key=lambda w: (w.credit, -len(w.inflight))).credit -= 1
                total -= 1
            for needy in (w for w in alive if w.credit == 0 and w.inflight):
                donor = next((w for w in alive if len(w.inflight) < w.credit), None)
                if donor is not None:
                    donor.credit -= 1
                    needy.credit += 1
            for worker in alive:
                if worker.credit != before[worker.index] and not self._send(
                        pool, worker, ("credit", pair_id, worker.credit), pair_id, inflight):
                    break  # a worker gone: share the window among the others
            else:
                return

    def _receive(self, pool: WorkerPool, pair_id: int,
                 inflight: Inflight) -> list[Any]:
        """Block until at least one worker has sent something; return its messages for this
        pair. A worker that hung up has its items in flight re-dispatched."""
        out: list[Any] = []
        while not out and pool.alive:
            for key, _ in pool.selector.select():
                worker: _Worker = key.data
                try:
                    data = worker.sock.recv(_RECV_BYTES)
                except OSError:
                    data = b""
                if not data:
                    self._lost(pool, worker, pair_id, inflight)
                    continue
                worker.buffer += data
                for message in worker.messages():
                    if message[0] == "error":
                        raise RuntimeError(f"worker process {worker.index} failed:\n"
                                           f"{message[2]}")
                    if message[1] == pair_id:
                        out.append(message)
        return out

    def _lost(self, pool: WorkerPool, worker: _Worker, pair_id: int,
              inflight: Inflight) -> None:
        pool.mark_dead(worker)
        orphans = sorted(worker.inflight)
        worker.inflight.clear()
        if not pool.alive or not orphans:
            return
        batches: dict[int, list[tuple[int, Item, Any]]] = {}
        for seq in orphans:
            other = min(pool.alive, key=lambda w: len(w.inflight))
            other.inflight.add(seq)
            admitted, _ = inflight[seq]
            inflight[seq] = (admitted, other.index)
            batches.setdefault(other.index, []).append((seq, admitted.item, admitted.request))
        self._send_batches(pool, pair_id, batches, inflight)


# --------------------------------------------------------------------------- worker side


def worker_entry(fd: int, parent: int | None = None) -> None:
    """Entry point of a worker process: serve pairs until the parent hangs up."""
    import asyncio
    import warnings

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if parent is not None:
        _die_with(parent)
    # calls cancelled when the parent stops (Ctrl-C) can leave a request coroutine litellm
    # built but never awaited; Python would warn about each on the user's terminal
    warnings.filterwarnings("ignore", message="coroutine .* was never awaited",
                            category=RuntimeWarning)
    sock = socket.socket(fileno=fd)
    asyncio.run(_serve(sock))


def _die_with(parent: int) -> None:
    """Have the kernel SIGKILL this worker when the parent dies (Linux PR_SET_PDEATHSIG).

    A parent killed with SIGKILL cannot tell its workers; they would notice the closed socket
    only on their next read, and a call finishing first would start the next one from the
    backlog: requests to the server from a run that no longer exists, which a resume then
    sends again. Elsewhere the workers still stop at the closed socket.
    """
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux
        return
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(0)


class _Signals:
    """The worker's stand-in for the parent's AdaptiveWindow: 429s go to the parent at once,
    successes travel with the rows."""

    def __init__(self, outbox: _Outbox, pair_id: int) -> None:
        self.outbox = outbox
        self.pair_id = pair_id

    def on_success(self) -> None:
        pass

    def on_rate_limited(self) -> None:
        self.outbox.send(("rl", self.pair_id))


class _Outbox:
    """Rows finished in one loop iteration leave in one message."""

    def __init__(self, writer: asyncio.StreamWriter, loop: asyncio.AbstractEventLoop) -> None:
        self.writer = writer
        self.loop = loop
        self.rows: dict[int, list[tuple[int, int, ResultRow, Any]]] = {}
        self.scheduled = False

    def send(self, message: Any) -> None:
        if not self.writer.is_closing():
            self.writer.write(_frame(message))

    def row(self, pair_id: int, seq: int, row: ResultRow, comp: Any) -> None:
        self.rows.setdefault(pair_id, []).append((pair_id, seq, row, comp))
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        rows, self.rows = self.rows, {}
        for pair_id, batch in rows.items():
            self.send(("rows", pair_id, batch))


@dataclass
class _PairContext:
    model: Model
    scorer: ItemScorer
    policy: RetryPolicy
    send_completion: bool
    signals: _Signals
    tasks: set[asyncio.Task] = field(default_factory=set)
    backlog: deque[tuple[int, Item, Any]] = field(default_factory=deque)  # sent, not started
    credit: int = 0  # calls this worker may have running at once (from the parent)


async def _serve(sock: socket.socket) -> None:
    import asyncio

    from slmbench.runner.pair import acall_model

    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(sock=sock)
    outbox = _Outbox(writer, loop)
    pairs: dict[int, _PairContext] = {}
    models: dict[tuple[str, str, str], Model] = {}

    def start(pair_id: int, ctx: _PairContext) -> None:
        """Start backlog items while the pair's calls running are fewer than its credit."""
        while len(ctx.tasks) < ctx.credit and ctx.backlog:
            seq, item, request = ctx.backlog.popleft()
            task = loop.create_task(one(pair_id, ctx, seq, item, request))
            ctx.tasks.add(task)

    def hand_back(pair_id: int, ctx: _PairContext) -> None:
        """Return the items not started to the parent (which admits them again or, once the
        pair is stopped, drops them)."""
        dropped = [seq for seq, _, _ in ctx.backlog]
        ctx.backlog.clear()
        outbox.send(("dropped", pair_id, dropped))

    async def one(pair_id: int, ctx: _PairContext, seq: int, item: Item, request: Any) -> None:
        row = None
        try:
            row, comp = await acall_model(ctx.model, ctx.scorer, item, request, ctx.policy,
                                          ctx.signals)
        except asyncio.CancelledError:
            raise
        except BaseException:
            outbox.send(("error", pair_id, traceback.format_exc()))
            return
        finally:
            ctx.tasks.discard(asyncio.current_task())
            if row is not None and row["error"] and row.get("error_permanent") and ctx.backlog:
                # what fail-fast counts: the parent may stop the pair on this row, so the
                # backlog goes back to it rather than becoming calls the stop cannot recall
                hand_back(pair_id, ctx)
            if pairs.get(pair_id) is ctx:
                start(pair_id, ctx)  # the freed slot takes the next item, no round trip
        outbox.row(pair_id, seq, row, comp if ctx.send_completion else None)

    try:
        while True:
            try:
                head = await reader.readexactly(_HEADER.size)
                (size,) = _HEADER.unpack(head)
                message = pickle.loads(await reader.readexactly(size))
            except (asyncio.IncompleteReadError, ConnectionError):
                break  # the parent hung up: done
            kind = message[0]
            if kind in ("items", "credit"):
                ctx = pairs.get(message[1])
                if ctx is None:
                    continue
                if kind == "items":
                    ctx.backlog.extend(message[2])
                else:
                    ctx.credit = message[2]
                start(message[1], ctx)
            elif kind == "halt":  # the pair stopped: what has not started never will
                ctx = pairs.get(message[1])
                if ctx is not None:
                    hand_back(message[1], ctx)
            elif kind == "preload":  # imports ahead of the first pair; errors show at setup
                with contextlib.suppress(Exception):
                    message[2].preload()
            elif kind == "setup":
                _, pair_id, model, task, policy, send_completion = message
                try:
                    mkey = (type(model).__qualname__, model.name, repr(sorted(
                        model.settings.items(), key=lambda kv: kv[0])))
                    model = models.setdefault(mkey, model)
                    model.prepare(task)
                    tune = getattr(model, "tune_event_loop", None)
                    if tune is not None:  # a backend's settings for a loop that never pauses
                        tune(loop)
                    scorer = ItemScorer(task)
                except BaseException:
                    outbox.send(("error", pair_id, traceback.format_exc()))
                    continue
                pairs[pair_id] = _PairContext(model, scorer, policy, send_completion,
                                              _Signals(outbox, pair_id))
            elif kind == "end":
                ctx = pairs.pop(message[1], None)
                if ctx is not None:
                    ctx.backlog.clear()
                    for task in list(ctx.tasks):
                        task.cancel()
    finally:
        for ctx in pairs.values():
            ctx.backlog.clear()  # a cancelled call must not start the next one
        tasks = [t for ctx in pairs.values() for t in ctx.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        try:
            from litellm.llms.custom_httpx.async_client_cleanup import (
                close_litellm_async_clients,
            )

            await close_litellm_async_clients()
        except Exception:  # noqa: S110 - best effort on the way out
            pass
        writer.close()
