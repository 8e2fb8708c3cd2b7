"""The Ray executor: one task × model pair spread over the actors of a Ray cluster.

``slmbench run ... --executor ray [--ray-address auto] [--workers N]``. The driver (this
process) stays the single writer: it admits items through the pair's accounts
(runner/dispatch.py: cache hits answered on the spot, ``--max-cost``), sends the rest in small
batches to actors, and settles and yields the scored rows as batches come back, so
``run_benchmark`` appends them exactly as it does for the in-process
:class:`~slmbench.runner.pair.PairRun` and resume works unchanged.

Design choices, and why:

* **One actor per worker, one model per actor.** An actor rebuilds the model from its id
  (:func:`~slmbench.models.resolve_model`) and calls ``prepare(task)`` once, so llama.cpp loads
  its weights once per actor (per task × model pair: actors are started for a pair and killed
  at its end, which keeps at most one model per worker in memory). The task is shipped to the
  actors as an object (``ray.put``), so nodes need slmbench but not the task's data files;
  a GGUF given by path must exist at that path on every node.
* **Resources.** Each actor asks for an equal share of the cluster's CPUs (capped at the
  largest node), and a llama.cpp model whose ``n_threads`` is unset runs that many threads.
  A model that offloads to a GPU (``n_gpu_layers != 0``) gets ``num_gpus`` = 1 when there are
  at least as many GPUs as workers, else 1/k with k = ceil(workers / GPUs), so the actors
  always fit on the GPUs there are.
* **Concurrency limit of API models: a per-worker share, not a shared limiter actor.**
  ``--concurrency`` is split between the actors (8 over 3 workers: 3 + 3 + 2); each actor
  runs at most its share of calls at once and keeps its own AIMD
  :class:`~slmbench.runner.retry.AdaptiveWindow` over that share, so the cluster as a whole
  never has more than ``--concurrency`` requests in flight, exactly like one process. A
  provider's account-wide limit returns 429s to every actor that sends, so every share halves
  and the sum backs off as the one-process window does; a limit per client address (one node
  throttled, the others not) halves only the shares that hit it, which is what should
  happen. A shared limiter actor would give one global window, but at the price of two more
  round trips per call and of permits that a killed actor would hold forever; the driver
  cannot be the limiter either without sending items one by one (a batch holds its slots
  until its slowest item ends) or hearing of 429s only when a batch returns. The shares need
  none of that, and work still goes where there is room: the driver sends each batch to the
  actor with the least work queued. (There are never more API workers than
  ``--concurrency``: each needs at least one slot.)
* **Small batches, re-dispatch on loss.** Items go out in batches of at most
  :data:`BATCH_ITEMS` (fewer near the end, so the tail is spread over all actors), with one
  batch queued behind each running one so that an actor never waits for the driver. When an
  actor dies (node lost, process killed, ``ray.kill``), its unfinished batches are put back
  at the front of the queue and sent to live actors, and the driver starts a new actor for
  that worker (at most :data:`REPLACEMENTS` times per worker and pair; Ray's own
  ``max_restarts`` is not used, as it would need the task kept in the object store for the
  actor's life and warns about it). Rows already yielded are on disk; a lost batch's rows
  never reached the driver, so nothing is written twice. A lost batch's calls may have been
  paid for: they count against ``--max-cost`` at their estimate (an upper bound). If every
  worker is gone for good, the pair stops with a reason (``RunStopped``, exit 1) and a re-run
  with the same run id resumes.
* **Cache on the driver.** The SQLite response cache lives on the driver's disk, which actors
  on other machines cannot reach: the driver answers hits before dispatching, and actors send
  back the completions of fresh calls for the driver's accounts to store.
* ``wall_s`` starts once the actors have loaded their models, as the in-process run's does
  after ``prepare``: local-model pricing (wall time × hourly rate) then compares like with
  like. It prices the run at the rate of *one* machine: for a cluster, give the cluster's
  rate with ``--hourly``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slmbench.errors import InputError
from slmbench.models import Model
from slmbench.models.base import PRICING_TOKENS
from slmbench.runner.dispatch import Admitted
from slmbench.runner.items import ItemScorer
from slmbench.runner.pair import PairRun, call_item
from slmbench.tasks import Item, LoadedTask

if TYPE_CHECKING:
    from slmbench.records import Completion, Request, ResultRow
    from slmbench.runner.dispatch import PairAccounts
    from slmbench.runner.executors import ExecutorOptions
    from slmbench.runner.retry import RetryPolicy

INSTALL_HINT = 'the Ray executor needs Ray: pip install "slmbench[ray]"'
#: items per batch sent to an actor: small, so rows stream back and a lost actor loses little
BATCH_ITEMS = 4
#: times the driver starts a new actor for a worker whose actor died (per worker and pair)
REPLACEMENTS = 2
#: a dead-looking actor that has not answered a probe within this time is given up on
PROBE_TIMEOUT_S = 300.0
_WAIT_TICK_S = 5.0
#: per process: the remote actor class, and whether this process started the Ray instance
_REMOTE: dict[str, Any] = {}


def import_ray() -> Any:
    """``ray``, or one line saying how to install it (InputError, exit 2)."""
    # Ray's usage statistics would be sent to the internet; never from slmbench
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise InputError(INSTALL_HINT, field="--executor", value="ray") from None
    return ray


def connect(address: str | None) -> Any:
    """Join the cluster at ``address`` ("auto": the one ``ray start`` made on this machine;
    None: ``RAY_ADDRESS`` or a new local instance). A Ray already initialised in this process
    (a notebook, the tests) is used as it is."""
    ray = import_ray()
    _probe(address)
    if not ray.is_initialized():
        try:
            _REMOTE["started_here"] = True  # before: Ctrl-C may come while it starts
            ray.init(address=address, include_dashboard=False, logging_level=logging.WARNING)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise InputError(f"cannot reach a Ray cluster: {first}", field="--ray-address",
                             value=address) from None
    return ray


def _probe(address: str | None) -> None:
    """Fail fast on a host:port where nothing listens: ``ray.init`` would retry for minutes."""
    if address in (None, "auto", "local"):
        return
    host, _, port = str(address).split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        return  # Ray says what is wrong with it
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=5).close()
    except OSError as exc:
        raise InputError(f"no Ray cluster answers there ({exc.strerror or exc})",
                         field="--ray-address", value=address) from None


def shutdown_if_started() -> None:
    """Stop the local Ray instance this process started, if it did. The CLI calls it on Ctrl-C
    before ``os._exit``, which skips Ray's own atexit clean-up (Ray's agent processes would
    outlive the run)."""
    if _REMOTE.get("started_here"):
        import ray

        with contextlib.suppress(Exception):
            ray.shutdown()
        _REMOTE.clear()


def check_executor(options: ExecutorOptions, models: Sequence[Model]) -> None:
    """What can be wrong with ``--executor ray`` (Ray missing, cluster unreachable, a GPU model
    and no GPU, a local model with instances), checked before the run folder is made or a model
    called (a bad ``--workers``: ``run.resolve_executor``, earlier)."""
    for model in models:
        if model.pricing != PRICING_TOKENS and model.parallel not in (None, 1):
            raise InputError("the Ray executor runs one instance of a local model per worker; "
                             "give --workers instead of instances", field="--model",
                             value=getattr(model, "model_id", None) or model.name)
    cluster = Cluster.of(connect(options.ray_address))
    for model in models:
        if not getattr(model, "model_id", None):
            raise InputError("the Ray executor rebuilds a model from its id on each worker; "
                             "this one was not made by resolve_model", field="--model",
                             value=model.name)
        plan_workers(model, options, cluster)  # e.g. a GPU model, no GPU


@dataclass(frozen=True)
class Cluster:
    """What the plan needs to know about the cluster."""

    cpus: float
    gpus: float = 0.0
    node_cpus: float = 0.0  # CPUs of the largest live node

    @classmethod
    def of(cls, ray: Any) -> Cluster:
        resources = ray.cluster_resources()
        alive = [n for n in ray.nodes() if n.get("Alive")]
        return cls(cpus=float(resources.get("CPU", 0.0)), gpus=float(resources.get("GPU", 0.0)),
                   node_cpus=max((float(n.get("Resources", {}).get("CPU", 0.0)) for n in alive),
                                 default=0.0))


@dataclass(frozen=True)
class WorkerPlan:
    """How one pair is spread: one actor per entry of ``slots`` (its concurrent calls)."""

    slots: tuple[int, ...]
    num_cpus: float
    num_gpus: float
    n_threads: int | None  # for in-process models whose thread count is unset


def plan_workers(model: Model, options: ExecutorOptions, cluster: Cluster) -> WorkerPlan:
    """Actors, their concurrency share and their resource requests (see the module doc).

    Default ``--workers``: one per cluster CPU (API models: at most ``--concurrency``;
    GPU-offloaded models: one per GPU). For llama.cpp on CPU that means one thread per worker:
    single-threaded workers need no thread synchronisation, and llama.cpp's threads busy-wait
    on each other, which a machine running anything else punishes (benchmarks/bench_ray.py on
    a shared 2-core machine: SmolLM2 at 10.6 items/s on 2 one-thread workers, 3.7 in one
    process on both cores, 1.5 on one 2-thread worker). The weights are memory-mapped, so
    workers on one node share them; each has its own KV cache and buffers (``--workers``
    fewer, for a big model on a small node).
    """
    cpus, gpus = cluster.cpus, cluster.gpus
    gpu = bool(model.gpu_offload)
    if gpu and gpus <= 0:
        raise InputError("this model offloads to a GPU (n_gpu_layers != 0) but the Ray cluster "
                         "has no GPU", field="--model", value=getattr(model, "model_id", None)
                         or model.name)
    if model.thread_safe:
        n = min(options.workers or max(1, int(cpus)), options.concurrency)
        base, extra = divmod(options.concurrency, n)
        slots = tuple(base + (i < extra) for i in range(n))
    else:
        n = options.workers or max(1, int(gpus if gpu else cpus))
        slots = (1,) * n
    share = min(cluster.node_cpus or cpus, cpus / n)
    num_cpus = float(math.floor(share)) if share >= 1 else math.floor(share * 1e4) / 1e4
    num_gpus = 0.0
    if gpu:
        num_gpus = 1.0 if n <= gpus else math.floor(1e4 / math.ceil(n / gpus)) / 1e4
    return WorkerPlan(slots=slots, num_cpus=num_cpus, num_gpus=num_gpus,
                      n_threads=None if model.thread_safe else max(1, int(share)))


class ClusterWindow:
    """The concurrency window of all actors together, as the driver sees it: the sum of the
    actors' AdaptiveWindows, reported with every finished batch. It has the attributes the
    manifest's timings read from a PairRun's window."""

    def __init__(self, slots: Sequence[int]) -> None:
        self.maximum = sum(slots)
        self.smallest = self.maximum
        self.decreases = 0
        self._current = dict(enumerate(slots))
        self._decreases = dict.fromkeys(range(len(slots)), 0)

    @property
    def current(self) -> int:
        return sum(self._current.values())

    def update(self, actor: int, current: int, decreases: int) -> None:
        before = self._decreases.get(actor, 0)
        # a restarted actor counts its decreases from 0 again
        self.decreases += decreases - before if decreases >= before else decreases
        self._decreases[actor] = decreases
        self._current[actor] = current
        self.smallest = min(self.smallest, self.current)


class _Worker:
    """One Ray actor: a model loaded once, answering batches of items.

    Runs ``slots`` batches at once in Ray's threads (``max_concurrency``), each batch item by
    item, gated by an AdaptiveWindow over the slots: at most ``slots`` calls in flight.
    """

    def __init__(self, model_id: str, task: LoadedTask, policy: RetryPolicy, slots: int,
                 n_threads: int | None) -> None:
        from slmbench.models import resolve_model
        from slmbench.runner.retry import AdaptiveWindow

        self.model = resolve_model(model_id)
        if n_threads is not None and self.model.settings.get("n_threads", 0) is None:
            self.model.settings["n_threads"] = n_threads  # this actor's CPU share
        self.model.prepare(task)
        self.scorer = ItemScorer(task)
        self.policy = policy
        self.window = AdaptiveWindow(slots)
        self._gate = threading.Condition()
        self._active = 0
        self._local = threading.local()

    def ready(self) -> dict[str, Any]:
        return {"host": socket.gethostname(), "pid": os.getpid()}

    def run(self, batch: list[tuple[Item, Request]], collect: bool
            ) -> tuple[list[tuple[ResultRow, Completion | None]], tuple[int, int]]:
        """Rows of a batch, each with its completion when ``collect`` (the driver caches it),
        and this actor's window (size, cuts)."""
        if self.model.thread_safe and not getattr(self._local, "loop", False):
            from slmbench.runner.pair import _own_event_loop

            _own_event_loop()
            self._local.loop = True
        out = []
        for item, request in batch:
            with self._gate:
                self._gate.wait_for(lambda: self._active < self.window.current)
                self._active += 1
            try:
                row, comp = call_item(self.model, self.scorer, item, request, self.policy,
                                      self.window)
                out.append((row, comp if collect else None))
            finally:
                with self._gate:
                    self._active -= 1
                    self._gate.notify_all()
        return out, (self.window.current, self.window.decreases)


def _remote_worker(ray: Any) -> Any:
    if "worker" not in _REMOTE:
        _REMOTE["worker"] = ray.remote(_Worker)
    return _REMOTE["worker"]


def _cause(exc: BaseException) -> str:
    """One line out of a Ray error: the underlying exception's message where there is one."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in reversed(lines):
        if "Error:" in line and not line.startswith(("File ", "ray.")):
            return line[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


Batch = list[Admitted]


class RayPairRun(PairRun):
    """Items of one task × model answered by Ray actors; rows yielded to the single writer.

    Offers what ``run_benchmark`` uses from :class:`PairRun`: ``rows(items)``, ``stop``,
    ``stop_reason``, ``fresh``, ``wall_s``, ``latency_sum``, ``workers`` (concurrent calls
    over the cluster) and ``window``. ``actors`` (the current actor of each worker),
    ``rows_by_actor``, ``redispatched`` (items sent again after their actor died) and
    ``deaths`` (what happened to which worker) say how the work was spread.
    """

    def __init__(self, task: LoadedTask, model: Model, scorer: ItemScorer,
                 options: ExecutorOptions, accounts: PairAccounts) -> None:
        super().__init__(task, model, scorer, options, accounts)
        self.ray = connect(options.ray_address)
        self.plan = plan_workers(model, options, Cluster.of(self.ray))
        self.workers = sum(self.plan.slots)
        self.window = ClusterWindow(self.plan.slots)  # type: ignore[assignment]
        self.actors: list[Any] = []
        self.rows_by_actor: Counter[int] = Counter()
        self.redispatched = 0
        self.deaths: list[str] = []
        self._replaced: Counter[int] = Counter()
        self._task_ref: Any = None
        self._tag = uuid.uuid4().hex[:8]

    @classmethod
    def check(cls, options: ExecutorOptions, models: list[Model]) -> None:
        check_executor(options, models)

    def prepare(self, task: LoadedTask) -> None:
        """Nothing here: each actor loads its own copy of the model."""

    def _spawn(self, i: int) -> Any:
        """Start the actor of worker ``i`` (again); it loads the model in the background."""
        plan = self.plan
        if self._task_ref is None:
            self._task_ref = self.ray.put(self.task)
        actor = _remote_worker(self.ray).options(
            name=f"slmbench-{self._tag}-{i}-{self._replaced[i]}", num_cpus=plan.num_cpus,
            num_gpus=plan.num_gpus, max_concurrency=plan.slots[i], max_restarts=0,
            scheduling_strategy="SPREAD",
        ).remote(self.model.model_id, self._task_ref, self.options.retry, plan.slots[i],
                 plan.n_threads)
        if i < len(self.actors):
            self.actors[i] = actor
        else:
            self.actors.append(actor)
        return actor

    def _start_actors(self) -> dict[int, Any]:
        """Start every worker and wait until their models are loaded; the live ones by index.
        A worker that cannot load the model is not replaced: it would fail the same way."""
        for i in range(len(self.plan.slots)):
            self._spawn(i)
        alive = {}
        for i, actor in enumerate(self.actors):
            try:
                self.ray.get(actor.ready.remote())
                alive[i] = actor
            except self.ray.exceptions.RayError as exc:
                self.deaths.append(f"worker {i} did not start: {_cause(exc)}")
        return alive

    def rows(self, items: list[Item]) -> Iterator[ResultRow]:
        """Yield rows as batches complete; the caller is the single writer. Actors start at
        the first item that the cache does not answer (a fully cached pair starts none)."""
        ray = self.ray
        accounts = self.accounts
        lost_errors = (ray.exceptions.RayActorError, ray.exceptions.ObjectLostError)
        slots = dict(enumerate(self.plan.slots))
        alive: dict[int, Any] | None = None        # None: actors not started yet
        load = dict.fromkeys(slots, 0)             # batches sent, not yet back
        inflight: dict[Any, tuple[int, Batch]] = {}
        probes: dict[Any, tuple[int, float]] = {}  # ready() of a worker that lost a batch
        queue: deque[Item] = deque(items)
        started = time.perf_counter()
        # under --max-cost an admitted request must be a call in flight (runner/budget.py):
        # batches of one, none queued behind a running one
        capped = accounts.price is not None
        ahead = 0 if capped else 1

        def pick() -> int | None:
            """The live, unprobed actor with the most room, if any has room."""
            busy = {i for i, _ in probes.values()}
            free = [i for i in (alive or {}) if i not in busy and load[i] < slots[i] + ahead]
            return min(free, key=lambda i: load[i] / slots[i]) if free else None

        try:
            while True:
                # send batches while some live actor has room; answer cache hits on the spot
                while accounts.stop_reason is None and queue:
                    target = pick() if alive is not None else None
                    if alive is not None and target is None:
                        break
                    busy = {i for i, _ in probes.values()}
                    room = sum(slots[i] for i in (alive or slots) if i not in busy)
                    size = 1 if capped else max(1, min(BATCH_ITEMS,
                                                       math.ceil(len(queue) / max(room, 1))))
                    batch: Batch = []
                    while queue and len(batch) < size:
                        cached, admitted = accounts.admit(queue.popleft())
                        if cached is not None:
                            yield cached
                            continue
                        if admitted is None:  # --max-cost refused it and stopped the pair
                            break
                        batch.append(admitted)
                    if not batch:
                        continue
                    if alive is None:
                        alive = self._start_actors()
                        started = time.perf_counter()
                        target = pick()
                    if target is None:  # no actor started: give the batch back
                        for admitted in reversed(batch):
                            accounts.release(admitted, maybe_paid=False)
                            queue.appendleft(admitted.item)
                        break
                    ref = alive[target].run.remote([(a.item, a.request) for a in batch],
                                                   accounts.cache is not None)
                    inflight[ref] = (target, batch)
                    load[target] += 1
                if not inflight and (not queue or accounts.stop_reason is not None):
                    break
                if not inflight and not probes:
                    self.stop(f"every Ray worker died; {len(queue)} items not run (run again "
                              f"to resume): {'; '.join(self.deaths[-2:])}")
                    break
                done, _ = ray.wait([*inflight, *probes], num_returns=1, timeout=_WAIT_TICK_S)
                for ref in done:
                    if ref in probes:
                        i, _since = probes.pop(ref)
                        try:
                            ray.get(ref)  # it answers: use it again
                        except lost_errors as exc:
                            self._dead(i, exc, alive, probes)  # type: ignore[arg-type]
                        continue
                    i, batch = inflight.pop(ref)
                    load[i] -= 1
                    try:
                        answers, state = ray.get(ref)
                    except lost_errors:
                        self._lost(batch, queue)
                        if alive and i in alive and i not in {j for j, _ in probes.values()}:
                            probes[alive[i].ready.remote()] = (i, time.monotonic())
                        continue
                    self.window.update(i, *state)  # type: ignore[attr-defined]
                    for (row, comp), admitted in zip(answers, batch, strict=True):
                        self.rows_by_actor[i] += 1
                        yield accounts.settle(admitted, row, comp)
                now = time.monotonic()
                for ref, (i, since) in list(probes.items()):
                    if now - since > PROBE_TIMEOUT_S:
                        probes.pop(ref)
                        self._dead(i, TimeoutError(f"no answer in {PROBE_TIMEOUT_S:.0f} s"),
                                   alive, probes)  # type: ignore[arg-type]
        finally:
            self.wall_s = time.perf_counter() - started if alive is not None else 0.0
            for actor in self.actors:
                with contextlib.suppress(Exception):  # already gone is fine
                    ray.kill(actor, no_restart=True)

    def _dead(self, i: int, exc: BaseException, alive: dict[int, Any],
              probes: dict[Any, tuple[int, float]]) -> None:
        """Worker ``i``'s actor is gone: start a new one while its budget lasts."""
        with contextlib.suppress(Exception):
            self.ray.kill(self.actors[i], no_restart=True)
        if self._replaced[i] >= REPLACEMENTS:
            alive.pop(i, None)
            self.deaths.append(f"worker {i} died: {_cause(exc)}")
            return
        self._replaced[i] += 1
        self.deaths.append(f"worker {i} died and was replaced: {_cause(exc)}")
        alive[i] = self._spawn(i)
        probes[alive[i].ready.remote()] = (i, time.monotonic())

    def _lost(self, batch: Batch, queue: deque[Item]) -> None:
        """A batch whose actor died: its items go back to the front of the queue. Its calls
        may have been made and paid for, so they count at their estimate (an upper bound)."""
        for admitted in reversed(batch):
            self.accounts.release(admitted, maybe_paid=True)
            queue.appendleft(admitted.item)
        self.redispatched += len(batch)
