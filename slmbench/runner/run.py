"""``slmbench run``: tasks × models → result rows → summary, written as the run goes.

Everything that can be wrong with the input (task files, datasets, model ids, GGUF files) is
checked before the first model call, so a typo never costs a half-finished paid run. Rows are
appended as items complete; re-running into the same run id resumes, calling models only for
items that have no row yet (or only an error row).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from slmbench.analysis.summary import build_summary
from slmbench.errors import InputError
from slmbench.machine import usable_cores
from slmbench.models import Model, resolve_model
from slmbench.models.base import PRICING_TOKENS, semantic_settings
from slmbench.pricing.run_costs import PricingOptions, RunCoster
from slmbench.records import Manifest, ResultRow
from slmbench.runner.budget import CostCap, ErrorLimit, RunStopped
from slmbench.runner.cache import ResponseCache
from slmbench.runner.dispatch import (
    DEFAULT_FAIL_FAST,
    FailFast,
    Failures,
    PairAccounts,
    PairCounts,
    drive_pair,
    failure_line,
    timing_entry,
)
from slmbench.runner.executors import (
    AUTO,
    ExecutorOptions,
    Host,
    auto_choice,
    executor_class,
)
from slmbench.runner.items import ItemScorer
from slmbench.runner.live_cascade import CascadeSpec, escalated_ids, manifest_entry
from slmbench.runner.pair import PairRun
from slmbench.runner.progress import Progress, SilentProgress
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.shard import shard_of
from slmbench.store import RunDir, row_key
from slmbench.store.manifest import environment, now_iso
from slmbench.tasks import Item, LoadedTask, load_items, load_task


@dataclass
class RunOptions:
    seed: int = 0
    concurrency: int = 8
    limit: int | None = None
    shard: tuple[int, int] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pricing: PricingOptions = field(default_factory=PricingOptions)
    max_errors: str | None = None
    max_cost_usd: float | None = None
    use_cache: bool = True
    #: who makes the calls: a name in runner/executors.py ("local": this process; "auto":
    #: picked by resolve_executor)
    executor: str = "local"
    workers: int | None = None
    ray_address: str | None = None
    #: run a small → large cascade live: the large model only on the escalated items
    cascade: CascadeSpec | None = None
    #: classify → extract pipelines, each "CLASSIFIER,EXTRACTOR", run as one model each
    chains: tuple[str, ...] = ()
    #: send each remote model its first item alone before the run (runner/dispatch.py)
    preflight: bool = True
    #: identical permanent errors in a row that stop a task × model (0: never)
    fail_fast: int = DEFAULT_FAIL_FAST


@dataclass
class RunResult:
    run: RunDir
    summary: dict[str, Any]
    calls: int  # model calls made in this invocation (0 when everything was already stored)
    #: one line per model that could not run (pre-flight or fail-fast), and per dropped setting
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def new_run_id() -> str:
    return datetime.now().strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def task_description(task: LoadedTask) -> dict[str, Any]:
    """What the manifest records per task; enough to rescore rows without the YAML."""
    spec = task.spec
    info: dict[str, Any] = {
        "name": spec.name, "kind": spec.kind, "path": str(spec.path), "spec_hash": spec.spec_hash,
        "dataset_fingerprint": task.fingerprint, "n_items": len(task.items),
        "n_train": len(task.train), "split": spec.dataset.split,
    }
    from slmbench.tasks.kinds import get_kind

    info.update(get_kind(spec.kind).describe(spec))  # labels, routes, fields…: the kind's own
    return info


def load_tasks(paths: list[Path], limit: int | None = None,
               shard: tuple[int, int] | None = None) -> list[LoadedTask]:
    tasks = []
    seen: dict[str, Path] = {}
    for path in paths:
        task = load_items(load_task(path))
        if task.spec.name in seen:
            raise InputError(f"task name already used by {seen[task.spec.name]}", file=path,
                             field="name", value=task.spec.name)
        seen[task.spec.name] = path
        items = task.items[:limit] if limit is not None else task.items
        if shard is not None:
            items = tuple(it for it in items if shard_of(it.id, shard[1]) == shard[0])
        if items is not task.items:
            task = LoadedTask(spec=task.spec, items=tuple(items), train=task.train,
                              fingerprint=task.fingerprint)
        tasks.append(task)
    return tasks


# what the escalation rule reads from the small model's stored rows
CASCADE_FIELDS = frozenset({"confidence", "invalid", "error"})


def run_benchmark(task_paths: list[Path], model_ids: list[str], *, results_dir: Path,
                  run_id: str | None = None, options: RunOptions | None = None,
                  progress: Progress | None = None) -> RunResult:
    """Run every task × model, append rows as they finish, then write the summary.

    Raises :class:`RunStopped` (after writing the summary) when ``max_errors`` or ``max_cost``
    ended the run early, and re-raises ``KeyboardInterrupt`` likewise: rows are never lost.
    """
    options = options or RunOptions()
    progress = progress or SilentProgress()
    if not task_paths:
        raise InputError("no task files given", field="TASKS")
    model_ids = list(model_ids)
    cascade = options.cascade
    if cascade is not None:
        # the small model runs on every item; the large one only on escalated items, unless it
        # was also asked for with --model (then it runs on every item and the cascade reuses it)
        cascade_large_only = cascade.large not in model_ids
        model_ids += [m for m in (cascade.small, cascade.large) if m not in model_ids]
    if not model_ids and not options.chains:
        raise InputError("no models given", field="--model")
    if len(set(model_ids)) != len(model_ids):
        dup = next(m for m in model_ids if model_ids.count(m) > 1)
        raise InputError("model given twice", field="--model", value=dup)
    if options.concurrency < 1:
        raise InputError("must be at least 1", field="--concurrency", value=options.concurrency)
    errors = ErrorLimit(options.max_errors)
    cap = CostCap(options.max_cost_usd)
    models = [resolve_model(m) for m in model_ids]
    models += _chain_models(options, Path(results_dir))
    # a model without its key makes no call: it must not start worker processes either
    not_ready = {m.name: reason for m in models if m.remote and (reason := m.not_ready())}
    options = resolve_executor(options, [m for m in models if m.name not in not_ready])
    executor = executor_class(options.executor)
    # e.g. worker processes importing litellm while the tasks load
    prestarted = executor.prestart(ExecutorOptions.of(options),
                                   [m for m in models if m.name not in not_ready])
    tasks = load_tasks(task_paths, options.limit, options.shard)
    if prestarted:  # this process mostly waits on the workers from here
        _import_in_background(SUMMARY_MODULES)
    partial: Model | None = None  # the cascade's large model, called on escalated items only
    if cascade is not None:
        small_model = models[model_ids.index(cascade.small)]
        large_model = models[model_ids.index(cascade.large)]
        if cascade_large_only:
            partial = large_model
    executor.check(ExecutorOptions.of(options), models)  # e.g. Ray: cluster reachable
    coster = RunCoster(options.pricing, None)  # bad sheets, dates, --hardware fail here
    if cap.cap is not None:
        for model in models:
            if model.pricing == PRICING_TOKENS and coster.book.lookup(model.name,
                                                                      coster.on) is None:
                raise InputError("--max-cost needs a price for every API model; this one is "
                                 "unpriced", field="--model", value=model.name)

    run = RunDir(Path(results_dir) / (run_id or new_run_id()))
    manifest = _start_manifest(run, tasks, models, options)
    if cascade is not None:
        entry = manifest_entry(cascade, small_model.name, large_model.name)
        manifest.setdefault("cascades", [])
        if entry not in manifest["cascades"]:
            manifest["cascades"].append(entry)
    run.write_manifest(manifest)
    done = {row_key(r) for r in run.rows() if not r.get("error")}
    failures = Failures.of(manifest, (m.name for m in models))
    warnings = [w for m in models for w in m.warnings()]  # the CLI prints them once
    cache = ResponseCache(Path(results_dir) / ".cache" / "responses.sqlite3") \
        if options.use_cache else None
    appender = run.appender()
    counts = PairCounts()
    # (task, model) → the pre-flight probe's row: the item's row, counted toward its limits
    probes: dict[tuple[str, str], ResultRow] = {}
    interrupted: BaseException | None = None

    def pair_items(task: LoadedTask, model: Model) -> tuple[tuple[Item, ...], list[Item]]:
        """The pair's items, and those of them that have no row yet."""
        items = task.items
        if model is partial:
            up = escalated_ids(run.rows(CASCADE_FIELDS), task.spec.name, small_model.name,
                               cascade)
            items = tuple(it for it in items if str(it.id) in up)
        return items, [it for it in items if (task.spec.name, model.name, it.id) not in done]

    def fail(model: Model, reason: str, names: list[str]) -> None:
        for name in names:
            failures.add(name, model.name, reason)
        line = failure_line(model.name, reason, names)
        progress.note(line)
        failures.lines.append(line)

    try:
        for model in models:  # pre-flight: the key (no call), then the first item alone
            if not model.remote or model is partial:
                continue
            names = [t.spec.name for t in tasks if model.supports(t.spec.kind)]
            reason = not_ready.get(model.name)
            if reason is not None:
                fail(model, reason, names)
                continue
            if not options.preflight:
                continue
            first = next(((t, todo[0]) for t in tasks if model.supports(t.spec.kind)
                          for todo in [pair_items(t, model)[1]] if todo), None)
            if first is None:
                continue
            task, item = first
            pair = make_pair_run(task, model, ItemScorer(task), options, cache, cap, coster)
            pair.prepare(task)
            probe = FailFast(1)
            for row in pair.rows([item]):
                appender.append(row)
                counts.add(row)
                probes[(task.spec.name, model.name)] = row
                probe.record(row)
            if probe.reason is not None:
                fail(model, probe.reason, names)
        for task in tasks:
            scorer = ItemScorer(task)
            for model in models:
                if not model.supports(task.spec.kind):
                    progress.note(f"{model.name} does not do {task.spec.kind}: skipped on "
                                  f"{task.spec.name}")
                    continue
                if failures.failed(task.spec.name, model.name):
                    continue
                items, todo = pair_items(task, model)
                probe_row = probes.get((task.spec.name, model.name))
                if probe_row is not None:
                    todo = [it for it in todo if it.id != probe_row["item_id"]]
                progress.start(task.spec.name, model.name, len(items), len(items) - len(todo))
                errors.reset()
                fail_fast = FailFast(options.fail_fast)
                pair = make_pair_run(task, model, scorer, options, cache, cap, coster)
                if probe_row is not None:
                    fail_fast.record(probe_row)
                    limit = errors.record(probe_row)
                    if limit:  # the probe alone reached --max-errors
                        todo = []
                        pair.stop(limit)
                if todo:
                    pair.prepare(task)
                try:
                    reason = drive_pair(pair, todo, appender.append, counts, progress, errors,
                                        fail_fast)
                finally:
                    progress.finish()
                    if pair.fresh:
                        manifest["timings"].append(timing_entry(task, model, pair))
                        run.write_manifest(manifest)
                if reason is not None:
                    fail(model, reason, [task.spec.name])
                elif pair.stop_reason:
                    raise RunStopped(f"stopped {task.spec.name} · {model.name}: "
                                     f"{pair.stop_reason}")
    except (KeyboardInterrupt, RunStopped) as exc:
        interrupted = exc
    finally:
        appender.close()
        if cache is not None:
            cache.close()
        for model in models:
            model.close()
        manifest["finished_at"] = now_iso()
        manifest["failures"] = failures.entries
        if interrupted is not None:
            manifest["stopped"] = str(interrupted) or "interrupted (Ctrl-C)"
        run.write_manifest(manifest)
    counts_dict = {"calls": counts.calls, "rows": counts.rows, "cached": counts.cached}
    summary = build_summary(run)
    summary["this_invocation"] = {**counts_dict, "spend": cap.status()}
    run.write_summary(summary)
    manifest["pricing"] = summary["pricing"]
    run.write_manifest(manifest)
    if interrupted is not None:
        interrupted.run = run  # type: ignore[attr-defined]
        interrupted.counts = counts_dict  # type: ignore[attr-defined]
        interrupted.spend = cap.status()  # type: ignore[attr-defined]
        raise interrupted
    return RunResult(run=run, summary=summary, calls=counts.calls, failures=failures.lines,
                     warnings=warnings)


def _chain_models(options: RunOptions, results_dir: Path) -> list[Model]:
    """The ``--chain`` pipelines; each step goes through the response cache on its own."""
    from slmbench.models.chain import resolve_chain

    cache_path = results_dir / ".cache" / "responses.sqlite3" if options.use_cache else None
    chains = [resolve_chain(text, cache_path) for text in options.chains]
    names = [c.name for c in chains]
    for text, chain in zip(options.chains, chains, strict=True):
        if names.count(chain.name) > 1:
            raise InputError("chain given twice", field="--chain", value=text)
        if options.max_cost_usd is not None and any(
                m.pricing == PRICING_TOKENS for m in (chain.classifier, chain.extractor)):
            raise InputError("--max-cost does not cover API steps of a chain yet; drop one",
                             field="--chain", value=text)
    return chains


#: what build_summary imports (sklearn's metrics: ~0.8 s); see _import_in_background
SUMMARY_MODULES = ("sklearn.metrics",)
#: told to the executors (runner/executors.Host): worker processes need fd passing
POSIX = os.name == "posix"


def resolve_executor(options: RunOptions, models: list[Model]) -> RunOptions:
    """The executor this run uses, by name (runner/executors.py), and where a bad
    ``--executor`` or ``--workers`` is refused, before anything loads.

    ``auto`` (the CLI's default) asks each executor whether it wants this run on this machine
    (the built-in ``processes`` does when an API model is in the run and more than one core
    is usable, POSIX only), else ``local``.
    """
    if options.workers is not None and options.workers < 1:
        raise InputError("must be at least 1", field="--workers", value=options.workers)
    host = Host(cores=usable_cores(), posix=POSIX)
    if options.executor == AUTO:
        name, chosen = auto_choice(ExecutorOptions.of(options), models, host)
        return replace(options, executor=name, workers=chosen.workers)
    why = executor_class(options.executor).available(host)  # unknown: says which there are
    if why is not None:
        raise InputError(why, field="--executor", value=options.executor)
    return options


def _import_in_background(names: tuple[str, ...]) -> None:
    """Import ``names`` in a thread while worker processes make the calls, so the summary at
    the end does not wait for them: the parent is mostly idle then (it writes rows at ~0.3 ms
    each). Started after the tasks are loaded, so that the two threads never import the same
    libraries at once (numpy, pandas): only the import system's per-module locks would then
    stand between them, and it breaks circular waits by raising."""
    import importlib
    import threading

    def work() -> None:
        for name in names:
            with contextlib.suppress(Exception):  # the summary imports it again and reports
                importlib.import_module(name)

    threading.Thread(target=work, name="slmbench-imports").start()


def make_pair_run(task: LoadedTask, model: Model, scorer: ItemScorer, options: RunOptions,
                  cache: ResponseCache | None, cap: CostCap, coster: RunCoster) -> PairRun:
    """The executor seam: the chosen executor makes the pair's calls and yields its rows; the
    accounts (cache, cost cap, counters) and the writer stay the same whichever it is."""
    accounts = PairAccounts(model, scorer, cache, cap, coster)
    return executor_class(options.executor)(task, model, scorer, ExecutorOptions.of(options),
                                            accounts)


def _start_manifest(run: RunDir, tasks: list[LoadedTask], models: list[Model],
                    options: RunOptions) -> Manifest:
    if run.manifest_path.exists():  # a resume continues each model as it was stored
        stored = run.read_manifest().get("models", {})
        for m in models:
            if m.name in stored:
                m.resume_from(stored[m.name].get("settings") or {})
    fresh: Manifest = {
        "run_id": run.run_id, "started_at": now_iso(), "finished_at": None,
        "seed": options.seed, "environment": environment(),
        "tasks": {t.spec.name: task_description(t) for t in tasks},
        "models": {m.name: m.describe() for m in models},
        "options": {"concurrency": options.concurrency, "limit": options.limit,
                    "shard": list(options.shard) if options.shard else None,
                    "max_errors": options.max_errors, "max_cost_usd": options.max_cost_usd,
                    "cache": options.use_cache, "chains": list(options.chains),
                    "executor": options.executor, "workers": options.workers,
                    "ray_address": options.ray_address,
                    "retry": vars(options.retry),
                    "pricing_dirs": [str(d) for d in options.pricing.dirs],
                    "price_date": options.pricing.price_date,
                    "hardware": options.pricing.hardware,
                    "hourly_usd": options.pricing.hourly_usd,
                    "volume_per_day": options.pricing.volume_per_day},
        "timings": [],
    }
    if not run.manifest_path.exists():
        return fresh
    old = run.read_manifest()
    old_shard = old.get("options", {}).get("shard")
    if old_shard != fresh["options"]["shard"]:
        raise InputError("this run holds another shard; use a new run id", field="--shard",
                         value="/".join(map(str, fresh["options"]["shard"] or [])) or None)
    for name, info in fresh["tasks"].items():
        prev = old.get("tasks", {}).get(name)
        if prev and (prev.get("spec_hash"), prev.get("dataset_fingerprint")) != (
                info["spec_hash"], info["dataset_fingerprint"]):
            raise InputError("task spec or data changed since this run started; use a new "
                             "run id", file=run.manifest_path, field=f"tasks.{name}",
                             value=info["path"])
    for name, info in fresh["models"].items():
        prev = old.get("models", {}).get(name)
        # a faster setting (n_threads, instances, timeout...) may change between invocations
        if prev and semantic_settings(prev.get("settings") or {}) != semantic_settings(
                info["settings"]):
            raise InputError("model settings changed since this run started; use a new run id",
                             file=run.manifest_path, field=f"models.{name}", value=name)
    merged = dict(old)
    merged["tasks"] = {**old.get("tasks", {}), **fresh["tasks"]}
    merged["models"] = {**old.get("models", {}), **fresh["models"]}
    merged["environment"] = fresh["environment"]
    merged["options"] = fresh["options"]
    merged["finished_at"] = None
    merged.setdefault("timings", [])
    merged.setdefault("resumed_at", []).append(now_iso())
    return merged
