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
from dataclasses import dataclass, field, fields, replace
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
    stored_spend,
    timing_entry,
)
from slmbench.runner.executors import (
    AUTO,
    ExecutorOptions,
    Host,
    auto_choice,
    executor_class,
)
from slmbench.runner.items import ItemScorer, retrieval_vectors
from slmbench.runner.live_cascade import CascadeSpec, escalated_ids, manifest_entry
from slmbench.runner.pair import PairRun
from slmbench.runner.progress import Progress, SilentProgress, report_timing
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.shard import shard_of
from slmbench.store import RunDir, row_key
from slmbench.store.manifest import environment, now_iso
from slmbench.store.run_dir import check_run_id
from slmbench.tasks import Item, LoadedTask, load_items, load_task
from slmbench.tasks.fewshot import check_prompt_settings, effective_config
from slmbench.tasks.loading import sample_items


@dataclass
class RunOptions:
    seed: int = 0
    concurrency: int = 8
    limit: int | None = None
    #: N items per task drawn seeded and stratified by gold (tasks.loading.sample_items)
    sample: int | None = None
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
               shard: tuple[int, int] | None = None, sample: int | None = None,
               seed: int = 0) -> list[LoadedTask]:
    tasks = []
    seen: dict[str, Path] = {}
    for path in paths:
        task = load_items(load_task(path))
        if task.spec.name in seen:
            raise InputError(f"task name already used by {seen[task.spec.name]}", file=path,
                             field="name", value=task.spec.name)
        seen[task.spec.name] = path
        items = task.items[:limit] if limit is not None else task.items
        if sample is not None:
            items = sample_items(items, sample, seed)
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
                  progress: Progress | None = None,
                  resume_given: frozenset[str] | None = None) -> RunResult:
    """Run every task × model, append rows as they finish, then write the summary.

    ``resume_given`` (``--resume RUN``: the command-line options the user set, by their CLI
    names) continues the stored run ``run_id`` as it was started: no tasks or models means
    the manifest's, and every option not given is the manifest's (:func:`restore_invocation`).

    Raises :class:`RunStopped` (after writing the summary) when ``max_errors`` or ``max_cost``
    ended the run early, and re-raises ``KeyboardInterrupt`` likewise: rows are never lost.
    """
    if run_id is not None:  # a library caller's id may not leave results_dir either
        check_run_id(run_id)
    options = options or RunOptions()
    progress = progress or SilentProgress()
    restored: Restored | None = None
    if resume_given is not None and run_id is not None:
        restored = restore_invocation(RunDir(Path(results_dir) / run_id), task_paths,
                                      model_ids, options, resume_given)
        task_paths, model_ids, options = restored.task_paths, restored.model_ids, \
            restored.options
    if not task_paths:
        raise InputError("no task files given", field="TASKS")
    model_ids = list(model_ids)
    given_ids = list(model_ids)  # before the cascade's: a resume tells them apart
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
    _check_distinct_names(models)
    if restored is not None:
        restored.check_models(models)
    # a model without its key makes no call: it must not start worker processes either
    not_ready = {m.name: reason for m in models if m.remote and (reason := m.not_ready())}
    options = resolve_executor(options, [m for m in models if m.name not in not_ready])
    executor = executor_class(options.executor)
    # e.g. worker processes importing litellm while the tasks load
    prestarted = executor.prestart(ExecutorOptions.of(options),
                                   [m for m in models if m.name not in not_ready])
    tasks = load_tasks(task_paths, options.limit, options.shard, options.sample, options.seed)
    if restored is not None:
        restored.check_tasks(tasks)
    if prestarted:  # this process mostly waits on the workers from here
        _import_in_background(SUMMARY_MODULES)
    partial: Model | None = None  # the cascade's large model, called on escalated items only
    if cascade is not None:
        small_model = models[model_ids.index(cascade.small)]
        large_model = models[model_ids.index(cascade.large)]
        if cascade_large_only:
            partial = large_model
    executor.check(ExecutorOptions.of(options), models)  # e.g. Ray: cluster reachable
    for task in tasks:  # ?prompt= names a prompt of every task the model does, ?k= a train split
        for model in models:
            if model.supports(task.spec.kind):
                check_prompt_variant(task, model)
    coster = RunCoster(options.pricing, None)  # bad sheets, dates, --hardware fail here
    if cap.cap is not None:
        for model in models:
            if model.pricing == PRICING_TOKENS and coster.book.lookup(model.name,
                                                                      coster.on) is None:
                raise InputError("--max-cost needs a price for every API model; this one is "
                                 "unpriced", field="--model", value=model.name)

    run = RunDir(Path(results_dir) / (run_id or new_run_id()))
    manifest = _start_manifest(run, tasks, models, options, given_ids)
    if cascade is not None:
        entry = manifest_entry(cascade, small_model.name, large_model.name)
        manifest.setdefault("cascades", [])
        if entry not in manifest["cascades"]:
            manifest["cascades"].append(entry)
    run.write_manifest(manifest)
    stored_rows = run.rows()
    done = {row_key(r) for r in stored_rows if not r.get("error")}
    if cap.cap is not None:  # the cap is on the run: a resume starts from what it spent
        cap.seed(stored_spend(stored_rows, manifest.get("models") or {}, coster))
    del stored_rows
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
                    if pair.fresh:
                        manifest["timings"].append(timing_entry(task, model, pair))
                        run.write_manifest(manifest)
                        report_timing(progress, pair.fresh, pair.wall_s)
                    progress.finish()
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


def check_prompt_variant(task: LoadedTask, model: Model) -> None:
    """``?prompt=``/``?k=``/``?select=``/``?by=`` fit the task, and ``by: embed`` names a
    model that exists (not loaded here): checked before any call, by a run and an estimate."""
    settings = model.settings
    check_prompt_settings(task, settings, model.name)
    config = effective_config(task.spec, settings.get("k"), settings.get("select"),
                              settings.get("by"))
    if config is not None and config.needs_vectors and model.prompted:
        retrieval_vectors(config)


def _check_distinct_names(models: list[Model]) -> None:
    """Rows, cache entries and the leaderboard know a model by its name: two models of one
    name (one id served by two endpoints, two GGUF files of one file name) would be merged
    into one row set, so they are refused before the run unless labelled with ``name=``."""
    seen: dict[str, Model] = {}
    for model in models:
        other = seen.setdefault(model.name, model)
        if other is not model:
            given = model.model_id or model.name
            raise InputError(
                f"two models are both named {model.name} (also {other.model_id or other.name})"
                f"; label each with name=, e.g. '{given}{'&' if '?' in given else '?'}"
                "name=b'", field="--model", value=given)


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


def _machine(models: list[Model]) -> dict[str, Any]:
    """The machine record of the manifest; llama.cpp's offload support only when a llama.cpp
    model is in the run (asking loads its shared library)."""
    from slmbench.machine import describe_machine
    from slmbench.models.llamacpp import LlamaCppModel

    return describe_machine(llama=any(isinstance(m, LlamaCppModel) for m in models))


def _start_manifest(run: RunDir, tasks: list[LoadedTask], models: list[Model],
                    options: RunOptions, model_ids: list[str]) -> Manifest:
    if run.manifest_path.exists():  # a resume continues each model as it was stored
        stored = run.read_manifest().get("models", {})
        for m in models:
            if m.name in stored:
                m.resume_from(stored[m.name].get("settings") or {})
    fresh: Manifest = {
        "run_id": run.run_id, "started_at": now_iso(), "finished_at": None,
        "seed": options.seed, "environment": environment(),
        # local models are priced by the hour of a machine: say which one ran them
        "machine": _machine(models),
        "tasks": {t.spec.name: task_description(t) for t in tasks},
        "models": {m.name: m.describe() for m in models},
        "options": {"concurrency": options.concurrency, "limit": options.limit,
                    "sample": options.sample,
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
                    "volume_per_day": options.pricing.volume_per_day,
                    "price_mode": options.pricing.price_mode,
                    "fail_fast": options.fail_fast, "preflight": options.preflight,
                    "cascade": _cascade_option(options.cascade, model_ids)},
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
    merged["machine"] = fresh["machine"]
    merged["options"] = fresh["options"]
    merged["finished_at"] = None
    merged.setdefault("timings", [])
    merged.setdefault("resumed_at", []).append(now_iso())
    return merged


def _cascade_option(spec: CascadeSpec | None, given_ids: list[str]) -> dict[str, Any] | None:
    """The live cascade as given (model ids), for a bare ``--resume`` to run it again; its
    large model called on escalated items only unless it was also given with ``--model``."""
    if spec is None:
        return None
    return {"small": spec.small, "large": spec.large, "threshold": spec.threshold,
            "escalate_invalid": spec.escalate_invalid,
            "large_only": spec.large not in given_ids}


#: manifest option → (its command-line option, its RunOptions field); ``pricing.`` fields are
#: PricingOptions'. What ``--resume RUN`` takes from the manifest unless given again.
RESTORED_OPTIONS: dict[str, tuple[str, str]] = {
    "concurrency": ("concurrency", "concurrency"), "limit": ("limit", "limit"),
    "sample": ("sample", "sample"), "shard": ("shard", "shard"),
    "max_errors": ("max_errors", "max_errors"), "max_cost_usd": ("max_cost", "max_cost_usd"),
    "cache": ("cache", "use_cache"), "chains": ("chain", "chains"),
    "executor": ("executor", "executor"), "workers": ("workers", "workers"),
    "ray_address": ("ray_address", "ray_address"), "fail_fast": ("fail_fast", "fail_fast"),
    "preflight": ("preflight", "preflight"), "pricing_dirs": ("pricing", "pricing.dirs"),
    "price_date": ("price_date", "pricing.price_date"),
    "hardware": ("hardware", "pricing.hardware"), "hourly_usd": ("hourly", "pricing.hourly_usd"),
    "volume_per_day": ("volume", "pricing.volume_per_day"),
    "price_mode": ("price_mode", "pricing.price_mode"),
}
#: command-line options that make up ``--cascade``
CASCADE_OPTIONS = frozenset({"cascade", "threshold", "escalate_invalid"})


@dataclass
class Restored:
    """What ``--resume RUN`` runs: the stored run's tasks, models and options, less what the
    user gave again; given tasks and models must be the run's own."""

    run: RunDir
    task_paths: list[Path]
    model_ids: list[str]
    options: RunOptions
    task_names: set[str]
    model_names: set[str]

    def check_tasks(self, tasks: list[LoadedTask]) -> None:
        for task in tasks:
            if task.spec.name not in self.task_names:
                raise InputError(
                    f"task {task.spec.name} is not in run {self.run.run_id} (it holds "
                    f"{', '.join(sorted(self.task_names))}); resume with no task files to "
                    "continue it, or add a task with --run-id", field="TASKS",
                    value=str(task.spec.path))

    def check_models(self, models: list[Model]) -> None:
        for model in models:
            if model.name not in self.model_names:
                raise InputError(
                    f"model {model.name} is not in run {self.run.run_id} (it holds "
                    f"{', '.join(sorted(self.model_names))}); resume with no --model to "
                    "continue it, or add a model with --run-id", field="--model",
                    value=model.model_id or model.name)


def restore_invocation(run: RunDir, task_paths: list[Path], model_ids: list[str],
                       options: RunOptions, given: frozenset[str]) -> Restored:
    """``--resume RUN``: after Ctrl-C the CLI says "continue with --resume RUN", and that
    line alone must continue the same run, not the default suite into the user's folder.
    No task files: the manifest's; no ``--model``: the manifest's (by the ids they were
    given as); each option not in ``given`` (CLI names): the manifest's."""
    manifest = run.read_manifest()
    where = run.manifest_path
    stored = manifest.get("options") if isinstance(manifest.get("options"), dict) else {}
    tasks = manifest.get("tasks") if isinstance(manifest.get("tasks"), dict) else {}
    models = manifest.get("models") if isinstance(manifest.get("models"), dict) else {}
    changes: dict[str, Any] = {}
    pricing: dict[str, Any] = {}
    pricing_fields = {f.name for f in fields(PricingOptions)}
    for key, (flag, target) in RESTORED_OPTIONS.items():
        if flag in given or key not in stored:
            continue
        value = stored[key]
        if target == "shard":
            value = tuple(value) if value else None
        elif target == "chains":
            value = tuple(value or ())
        elif target == "pricing.dirs":
            value = tuple(Path(d) for d in value or ())
        if target.startswith("pricing."):
            if target[8:] in pricing_fields:
                pricing[target[8:]] = value
        else:
            changes[target] = value
    if "seed" not in given and isinstance(manifest.get("seed"), int):
        changes["seed"] = manifest["seed"]
    cascade_opt = stored.get("cascade")
    if not (given & CASCADE_OPTIONS) and isinstance(cascade_opt, dict):
        changes["cascade"] = CascadeSpec(cascade_opt["small"], cascade_opt["large"],
                                         cascade_opt["threshold"],
                                         cascade_opt["escalate_invalid"])
    options = replace(options, **changes, pricing=replace(options.pricing, **pricing))
    task_paths, model_ids = list(task_paths), list(model_ids)
    if not task_paths:
        for name, info in tasks.items():
            path = Path(str((info or {}).get("path") or ""))
            if not path.is_file():
                raise InputError("this run's task file is gone; give the task files",
                                 file=where, field=f"tasks.{name}.path", value=str(path))
            task_paths.append(path)
    if not model_ids:
        large_only = (options.cascade.large if isinstance(cascade_opt, dict)
                      and cascade_opt.get("large_only") and options.cascade else None)
        if manifest.get("cascades") and options.cascade is None:
            raise InputError("this run holds a live cascade stored before resumes restored "
                             "it; give the models and --cascade again", file=where,
                             field="cascades")
        for name, info in models.items():
            model_id = info.get("model_id") if isinstance(info, dict) else None
            if model_id == large_only or (isinstance(info, dict)
                                          and info.get("backend") == "chain"):
                continue
            if not isinstance(model_id, str):
                raise InputError("this run's manifest does not say how model ids were given "
                                 "(stored before resumes restored them); give the models with "
                                 "--model", file=where, field=f"models.{name}", value=name)
            model_ids.append(model_id)
    return Restored(run, task_paths, model_ids, options, set(tasks), set(models))

