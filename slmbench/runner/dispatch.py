"""One task × model pair driven to its end, whichever executor makes the calls.

Every executor (``local``, ``processes``, ``ray``) yields scored rows for a pair; this module is
the one consumer of those rows, so that what happens to a row is written once: it is appended
to items.jsonl, counted, checked against ``--max-errors`` and against fail-fast, and the pair's
timing goes in the manifest. The pre-flight probe is a pair of one item run the same way.

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
from typing import Any

from slmbench.models import Model
from slmbench.runner.budget import ErrorLimit
from slmbench.store.manifest import now_iso
from slmbench.tasks import Item, LoadedTask

#: identical permanent errors in a row that stop a task × model
DEFAULT_FAIL_FAST = 5


class FailFast:
    """Counts identical permanent errors in a row; any other row resets the count."""

    def __init__(self, limit: int = DEFAULT_FAIL_FAST) -> None:
        self.limit = limit
        self.reason: str | None = None
        self.count = 0

    def record(self, row: dict[str, Any]) -> str | None:
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
    def of(cls, manifest: dict[str, Any], running: Iterable[str]) -> Failures:
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


def drive_pair(pair: Any, items: list[Item], append: Callable[[dict[str, Any]], None],
               counts: PairCounts, progress: Any, errors: ErrorLimit,
               fail_fast: FailFast) -> str | None:
    """Run ``items`` through ``pair`` (an executor's pair run), writing each row as it comes;
    returns the fail-fast reason when the pair was stopped because the model cannot run.
    ``--max-errors`` and ``--max-cost`` stop the pair through ``pair.stop_reason``."""
    failed: str | None = None
    for row in pair.rows(items):
        append(row)
        counts.rows += 1
        counts.calls += row["attempts"]
        counts.cached += bool(row["cached"])
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
    return {"task": task.spec.name, "model": model.name, "items": pair.fresh,
            "wall_s": pair.wall_s, "latency_sum_s": pair.latency_sum,
            "workers": pair.workers, "window_min": pair.window.smallest,
            "window_decreases": pair.window.decreases, "at": now_iso()}


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
