"""``slmbench run``: tasks × models → result rows → summary, written as the run goes.

Everything that can be wrong with the input (task files, datasets, model ids, GGUF files) is
checked before the first model call, so a typo never costs a half-finished paid run. Rows are
appended as items complete; re-running into the same run id resumes, calling models only for
items that have no row yet (or only an error row).
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.models import Model, resolve_model
from slmbench.pricing.run_costs import PricingOptions, RunCoster
from slmbench.runner.items import ItemScorer, run_item
from slmbench.runner.progress import Progress, SilentProgress
from slmbench.runner.retry import RetryPolicy
from slmbench.store import RunDir, row_key
from slmbench.store.manifest import environment, now_iso
from slmbench.store.summary import build_summary
from slmbench.tasks import LoadedTask, load_items, load_task


@dataclass
class RunOptions:
    seed: int = 0
    concurrency: int = 8
    limit: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    pricing: PricingOptions = field(default_factory=PricingOptions)


@dataclass
class RunResult:
    run: RunDir
    summary: dict[str, Any]
    calls: int  # model calls made in this invocation (0 when everything was already stored)


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
    if spec.kind == "classification":
        info["labels"] = list(spec.labels or ())
    elif spec.kind == "routing":
        info["routes"] = [{"name": r.name, "description": r.description, "target": r.target}
                          for r in spec.routes]
        info["fallback"] = spec.fallback
    else:
        info["fields"] = [{"name": f.name, "type": f.type, "required": f.required}
                          for f in spec.fields]
    return info


def load_tasks(paths: list[Path], limit: int | None = None) -> list[LoadedTask]:
    tasks = []
    seen: dict[str, Path] = {}
    for path in paths:
        task = load_items(load_task(path))
        if task.spec.name in seen:
            raise InputError(f"task name already used by {seen[task.spec.name]}", file=path,
                             field="name", value=task.spec.name)
        seen[task.spec.name] = path
        if limit is not None:
            task = LoadedTask(spec=task.spec, items=task.items[:limit], train=task.train,
                              fingerprint=task.fingerprint)
        tasks.append(task)
    return tasks


def run_benchmark(task_paths: list[Path], model_ids: list[str], *, results_dir: Path,
                  run_id: str | None = None, options: RunOptions | None = None,
                  progress: Progress | None = None) -> RunResult:
    options = options or RunOptions()
    progress = progress or SilentProgress()
    if not task_paths:
        raise InputError("no task files given", field="TASKS")
    if not model_ids:
        raise InputError("no models given", field="--model")
    if len(set(model_ids)) != len(model_ids):
        dup = next(m for m in model_ids if model_ids.count(m) > 1)
        raise InputError("model given twice", field="--model", value=dup)
    if options.concurrency < 1:
        raise InputError("must be at least 1", field="--concurrency", value=options.concurrency)
    tasks = load_tasks(task_paths, options.limit)
    models = [resolve_model(m) for m in model_ids]
    RunCoster(options.pricing, None)  # bad sheets, dates or --hardware fail before any call

    run = RunDir(Path(results_dir) / (run_id or new_run_id()))
    manifest = _start_manifest(run, tasks, models, options)
    run.write_manifest(manifest)
    done = {row_key(r) for r in run.rows() if not r.get("error")}
    appender = run.appender()
    calls = 0
    try:
        for task in tasks:
            scorer = ItemScorer(task)
            for model in models:
                if not model.supports(task.spec.kind):
                    progress.note(f"{model.name} does not do {task.spec.kind}: skipped on "
                                  f"{task.spec.name}")
                    continue
                todo = [it for it in task.items
                        if (task.spec.name, model.name, it.id) not in done]
                progress.start(task.spec.name, model.name, len(task.items),
                               len(task.items) - len(todo))
                if todo:
                    model.prepare(task)
                started = time.perf_counter()
                latency_sum = 0.0
                workers = options.concurrency if model.thread_safe else 1
                for row in _execute(model, scorer, todo, options.retry, workers):
                    appender.append(row)
                    latency_sum += row["latency_s"] or 0.0
                    calls += row["attempts"]
                    progress.advance()
                progress.finish()
                if todo:
                    manifest["timings"].append({
                        "task": task.spec.name, "model": model.name, "items": len(todo),
                        "wall_s": time.perf_counter() - started, "latency_sum_s": latency_sum,
                        "workers": workers, "at": now_iso()})
                    run.write_manifest(manifest)
    finally:
        appender.close()
        for model in models:
            model.close()
        manifest["finished_at"] = now_iso()
        run.write_manifest(manifest)
    summary = build_summary(run)
    run.write_summary(summary)
    manifest["pricing"] = summary["pricing"]
    run.write_manifest(manifest)
    return RunResult(run=run, summary=summary, calls=calls)


def _execute(model: Model, scorer: ItemScorer, items: list, policy: RetryPolicy, workers: int):
    """Yield rows as items complete; the caller is the single writer."""
    if workers <= 1:
        for item in items:
            yield run_item(model, scorer, item, policy)
        return
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slmbench") as pool:
        pending: set[Future] = set()
        queue = iter(items)
        for item in queue:
            pending.add(pool.submit(run_item, model, scorer, item, policy))
            if len(pending) >= workers * 2:
                break
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                yield fut.result()
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(pool.submit(run_item, model, scorer, nxt, policy))


def _start_manifest(run: RunDir, tasks: list[LoadedTask], models: list[Model],
                    options: RunOptions) -> dict[str, Any]:
    fresh = {
        "run_id": run.run_id, "started_at": now_iso(), "finished_at": None,
        "seed": options.seed, "environment": environment(),
        "tasks": {t.spec.name: task_description(t) for t in tasks},
        "models": {m.name: m.describe() for m in models},
        "options": {"concurrency": options.concurrency, "limit": options.limit,
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
    for name, info in fresh["tasks"].items():
        prev = old.get("tasks", {}).get(name)
        if prev and (prev.get("spec_hash"), prev.get("dataset_fingerprint")) != (
                info["spec_hash"], info["dataset_fingerprint"]):
            raise InputError("task spec or data changed since this run started; use a new "
                             "run id", file=run.manifest_path, field=f"tasks.{name}",
                             value=info["path"])
    for name, info in fresh["models"].items():
        prev = old.get("models", {}).get(name)
        if prev and prev.get("settings") != info["settings"]:
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
