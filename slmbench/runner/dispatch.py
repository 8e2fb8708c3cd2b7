"""One task × model pair driven to its end, whichever executor makes the calls.

An executor (``local``, ``processes``, ``ray``, a plugin: runner/executors.py) owns only how
calls are made: threads, an event loop, worker processes, actors, and their concurrency. What
a request and its row owe the run is written here once, whichever executor runs:

* :class:`PairAccounts`, before a call and after it: the response cache is read (a hit is
  answered without a call), the request is admitted against ``--max-cost`` at its estimate,
  and when its row comes back the completion goes to the cache, the cost cap is settled with
  the row's real tokens and the pair's counters (fresh rows, latency sum) move. Cache and cost
  cap stay in this process: executors whose calls run elsewhere ship the completion back.
* :func:`drive_pair`, the one consumer of a pair's rows: each is appended to items.jsonl,
  counted, checked against ``--max-errors`` and against fail-fast, and the pair's timing goes
  in the manifest. The pre-flight probe is a pair of one item run the same way.

**Pre-flight.** A model behind a paid API can be unable to answer any item: no key in the
environment, a parameter the model rejects, a model name the provider does not serve. Without
a check the run pays (or waits) for every item and shows 0 %. So before the first task, each
remote model is checked for its key (no call), then sent its first pending item alone. That
probe is a real item, its row is kept, so it costs nothing extra; when it fails with a
permanent error the model is stopped on every task, with one line giving the provider's
reason, and the other models go on.

**Fail fast.** During a run, ``fail_fast`` identical permanent errors in a row stop the pair
the same way (a parameter rejected for some prompts only, a key revoked mid-run). Transient
errors (429, 5xx, timeouts) never count: they are the retry policy's business.

A stopped pair is recorded in the manifest's ``failures`` so that every report shows it as
failed, never as a 0 % result; a resume that runs the model again clears it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from slmbench.models import Model
from slmbench.models.base import PRICING_TOKENS
from slmbench.records import Completion, Manifest, Request, ResultRow
from slmbench.runner.budget import CostCap, ErrorLimit
from slmbench.runner.cache import cache_key
from slmbench.store.manifest import now_iso
from slmbench.tasks import Item, LoadedTask

if TYPE_CHECKING:
    from slmbench.pricing.run_costs import RunCoster
    from slmbench.runner.cache import ResponseCache
    from slmbench.runner.items import ItemScorer

#: identical permanent errors in a row that stop a task × model
DEFAULT_FAIL_FAST = 5


@dataclass(slots=True)
class Admitted:
    """A request the pair may send, reserved against ``--max-cost`` at ``estimate``; it is
    settled (:meth:`PairAccounts.settle`) or released (:meth:`PairAccounts.release`) once."""

    item: Item
    request: Request
    key: str | None  # its response-cache key (None: the model's answers are not cached)
    estimate: float


class PairAccounts:
    """Cache, cost cap and counters of one task × model, whatever executor makes its calls.

    Every executor calls :meth:`admit` for each item before sending it and :meth:`settle` for
    each fresh row it yields, so that caching and ``--max-cost`` cannot differ between them.
    ``stop_reason`` is the pair's: a refused admission sets it, and so do the row limits
    (through the pair run's ``stop``); an executor sends nothing more once it is set.
    """

    def __init__(self, model: Model, scorer: ItemScorer, cache: ResponseCache | None,
                 cap: CostCap, coster: RunCoster) -> None:
        self.model = model
        self.scorer = scorer
        self.cache = cache if model.cacheable else None
        self.cap = cap
        # priced only when a cap needs it: the estimate costs a token count per request
        self.price = (coster.book.lookup(model.name, coster.on)
                      if model.pricing == PRICING_TOKENS and cap.cap is not None else None)
        self.stop_reason: str | None = None
        self.fresh = 0
        self.latency_sum = 0.0

    def stop(self, reason: str) -> None:
        if self.stop_reason is None:
            self.stop_reason = reason

    def admit(self, item: Item) -> tuple[ResultRow | None, Admitted | None]:
        """``(row, None)``: the cache answered, yield the row; ``(None, admitted)``: send it;
        ``(None, None)``: ``--max-cost`` refused it, and the pair is stopped."""
        request = self.scorer.request(item, self.model)
        key = cache_key(self.model, request) if self.cache is not None else None
        hit = self.cache.get(key) if key is not None else None
        if hit is not None:
            row = self.scorer.row(self.model, item, hit, None, 0)
            self.scorer.name_shots(self.model, item, row)
            row["cached"] = True
            return row, None
        estimate = self._estimate(request)
        if not self.cap.admit(estimate):
            self.stop(f"--max-cost reached ({self.cap.status()})")
            return None, None
        return None, Admitted(item, request, key, estimate)

    def settle(self, admitted: Admitted, row: ResultRow, completion: Completion | None
               ) -> ResultRow:
        """The fresh row of ``admitted`` came back (``completion``: its answer, None on an
        error or when the executor did not ship it because nothing caches it)."""
        # an answer the row refused (usage out of range) is not replayed from the cache
        if (completion is not None and admitted.key is not None and self.cache is not None
                and not row.get("error")):
            self.cache.put(admitted.key, completion)
        self.cap.settle(admitted.estimate, self._actual(row))
        # the examples were chosen here, where the request was built: a worker process holds
        # the task without its train split, so its row cannot name them
        self.scorer.name_shots(self.model, admitted.item, row)
        self.fresh += 1
        self.latency_sum += row["latency_s"] or 0.0
        return row

    def release(self, admitted: Admitted, *, maybe_paid: bool) -> None:
        """``admitted`` will bring no row (its worker is gone): its reservation is freed, or,
        when the call may have been made and paid for, spent at its estimate (an upper bound).
        A re-dispatched item is admitted again."""
        self.cap.settle(admitted.estimate, admitted.estimate if maybe_paid else 0.0)

    def _estimate(self, request: Request) -> float:
        if self.price is None:
            return 0.0
        from slmbench.models.tokens import count_messages
        from slmbench.pricing.cost import token_cost

        return token_cost(self.price, count_messages(request.messages),
                          self.model.output_budget(request))

    def _actual(self, row: ResultRow) -> float:
        return 0.0 if self.price is None else row_cost(self.price, row)


def row_cost(price: Any, row: ResultRow) -> float:
    """What the summary will bill for one row: cache reads and writes at their own prices."""
    from slmbench.pricing.cost import token_cost

    tokens_in = int(row.get("tokens_in") or 0)
    cached = min(int(row.get("cached_tokens_in") or 0), tokens_in)
    writes = min(int(row.get("cache_write_tokens") or 0), tokens_in - cached)
    return token_cost(price, tokens_in, int(row.get("tokens_out") or 0), cached_in=cached,
                      cache_write_in=writes)


def stored_spend(rows: Iterable[ResultRow], models: dict[str, Any], coster: RunCoster
                 ) -> float:
    """What the calls behind a run's stored rows cost (``--max-cost`` covers the run across
    resumes): each fresh row of a token-priced model at its sheet price; a cached row made no
    call. ``models`` is the manifest's record of each model."""
    prices: dict[str, Any] = {}
    total = 0.0
    for row in rows:
        name = row.get("model")
        if row.get("cached") or not isinstance(name, str):
            continue
        if name not in prices:
            info = models.get(name) if isinstance(models, dict) else None
            pricing = (info or {}).get("pricing") if isinstance(info, dict) else None
            prices[name] = (coster.book.lookup(name, coster.on)
                            if pricing == PRICING_TOKENS else None)
        if prices[name] is not None:
            total += row_cost(prices[name], row)
    return total


class FailFast:
    """Counts identical permanent errors in a row; any other row resets the count."""

    def __init__(self, limit: int = DEFAULT_FAIL_FAST) -> None:
        self.limit = limit
        self.reason: str | None = None
        self.count = 0

    def record(self, row: ResultRow) -> str | None:
        error = row.get("error")
        if not error or not row.get("error_permanent"):
            self.reason, self.count = None, 0
            return None
        if error == self.reason:
            self.count += 1
        else:
            self.reason, self.count = error, 1
        return error if self.limit and self.count >= self.limit else None


@dataclass
class Failures:
    """The manifest's ``failures``: task × model pairs stopped because the model cannot run."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, manifest: Manifest, running: Iterable[str]) -> Failures:
        """The stored failures, less those of models this invocation runs again."""
        again = set(running)
        kept = [f for f in manifest.get("failures") or []
                if isinstance(f, dict) and f.get("model") not in again]
        manifest["failures"] = kept
        return cls(kept)

    def add(self, task: str, model: str, reason: str) -> None:
        self.entries.append({"task": task, "model": model, "reason": reason, "at": now_iso()})

    def failed(self, task: str, model: str) -> bool:
        return any(f["task"] == task and f["model"] == model for f in self.entries)

    def model_failed(self, model: str) -> str | None:
        return next((f["reason"] for f in self.entries if f["model"] == model), None)


@dataclass
class PairCounts:
    calls: int = 0
    rows: int = 0
    cached: int = 0

    def add(self, row: ResultRow) -> None:
        self.rows += 1
        self.calls += row["attempts"]
        self.cached += bool(row["cached"])


def drive_pair(pair: Any, items: list[Item], append: Callable[[ResultRow], None],
               counts: PairCounts, progress: Any, errors: ErrorLimit,
               fail_fast: FailFast) -> str | None:
    """Run ``items`` through ``pair`` (an executor's pair run), writing each row as it comes;
    returns the fail-fast reason when the pair was stopped because the model cannot run.
    ``--max-errors`` and ``--max-cost`` stop the pair through ``pair.stop_reason``."""
    failed: str | None = None
    for row in pair.rows(items):
        append(row)
        counts.add(row)
        progress.advance()
        reason = fail_fast.record(row)
        if reason is not None and failed is None:
            failed = reason
            pair.stop(f"the model cannot run: {reason}")
            continue
        reason = errors.record(row)
        if reason:
            pair.stop(reason)
    return failed


def timing_entry(task: LoadedTask, model: Model, pair: Any) -> dict[str, Any]:
    entry = {"task": task.spec.name, "model": model.name, "items": pair.fresh,
             "wall_s": pair.wall_s, "latency_sum_s": pair.latency_sum,
             "workers": pair.workers, "window_min": pair.window.smallest,
             "window_decreases": pair.window.decreases, "at": now_iso(),
             # one-off work before the items (a baseline's training), priced as setup
             **{k: getattr(model, k) for k in ("setup_s", "setup_cpu_s")
                if getattr(model, k, None) is not None}}
    plan = pair.scorer.plan(model)
    if plan.retrieval_s:
        # choosing few-shot examples (vectorising train split and items) is work this variant
        # needs in production too: stored apart and priced with the setup
        entry["retrieval_s"], entry["retrieval_cpu_s"] = plan.retrieval_s, plan.retrieval_cpu_s
        entry["setup_s"] = entry.get("setup_s", 0.0) + plan.retrieval_s
        entry["setup_cpu_s"] = entry.get("setup_cpu_s", 0.0) + plan.retrieval_cpu_s
    return entry


def failure_line(model: str, reason: str, tasks: Iterable[str] = ()) -> str:
    """One line a user acts on: the model, the provider's reason, and what to change."""
    names = sorted(set(tasks))
    where = f" on {', '.join(names)}" if names else ""
    return f"{model} cannot run{where}: {reason}{_hint(reason)}"


def _hint(reason: str) -> str:
    low = reason.lower()
    if "missing api key" in low:
        return ""
    if "temperature" in low:
        return " (set reasoning_effort=none where the model allows it, or drop temperature)"
    if "logprobs" in low:
        return " (drop logprobs=true)"
    if "reasoning_effort" in low:
        return " (change or drop reasoning_effort)"
    if "max_tokens" in low or "max_completion_tokens" in low:
        return " (change max_tokens)"
    if "response_format" in low or "json_schema" in low or "schema" in low:
        return " (set structured=off)"
    if any(s in low for s in ("401", "403", "authentication", "permission", "api key")):
        return " (check the API key in the environment)"
    if "404" in low or "not found" in low or "does not exist" in low:
        return " (check the model name)"
    return ""
