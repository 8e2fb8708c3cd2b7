"""``slmbench estimate`` / ``run --dry-run``: load the tasks and models, time local models on a
short warm-up, optionally run a pilot, and print (and store) :mod:`slmbench.analysis.estimate`.

The warm-up and the pilot are the only calls made; they live here, above the analysis layer,
because they call models the way the runner does (one request per item, built by the task's
kind). A pilot calls paid APIs for N items per model, so it is only done when asked for.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from slmbench.analysis.estimate import (
    WARMUP_ITEMS,
    PairEstimate,
    estimate_pair,
    pilot_estimate,
    pricing_options,
    render,
    save,
    to_json,
)
from slmbench.errors import InputError
from slmbench.models import Model, resolve_model
from slmbench.pricing.run_costs import RunCoster
from slmbench.runner.items import ItemScorer
from slmbench.runner.retry import RetryPolicy, call_with_retries
from slmbench.tasks import LoadedTask
from slmbench.tasks.loading import sample_items


def measured_rows(task: LoadedTask, model: Model, n: int, seed: int = 0, *,
                  strict: bool = True) -> list[dict[str, Any]]:
    """Run ``n`` items drawn stratified by gold and keep what pricing reads of a row (tokens,
    latency, and what else the backend measured). ``strict``: a failed call stops (a pilot
    whose calls fail estimates nothing); else it is left out (a warm-up)."""
    items = sample_items(task.items, n, seed)
    scorer = ItemScorer(task)
    model.prepare(task)
    rows = []
    policy = RetryPolicy()  # as the run retries: a slow first call must not end the pilot
    for item in items:
        start = time.perf_counter()
        request = scorer.request(item, model)  # its prompt variant and examples, as in the run
        comp, error, _, _ = call_with_retries(lambda r=request: model.complete(r), policy)
        if comp is None:
            if strict:
                raise InputError(f"pilot call failed: {error}", field="--model",
                                 value=model.name)
            continue
        row = {k: v for k, v in vars(comp).items() if k not in ("text", "extra")}
        row["latency_s"] = comp.latency_s or (time.perf_counter() - start)
        rows.append(row)
    return rows


def warmup_rows(task: LoadedTask, model: Model, n: int = WARMUP_ITEMS,
                seed: int = 0) -> list[dict[str, Any]]:
    """A first item (which also fills the prompt cache and builds the label trie: a one-off)
    and ``n`` more: what a local model's time and cost are extrapolated from."""
    return measured_rows(task, model, n + 1, seed, strict=False)


def estimate_runs(task_paths: list[Path], model_ids: list[str], *, limit: int | None = None,
                  sample: int | None = None, seed: int = 0, concurrency: int = 8,
                  pilot: int | None = None, warmup: bool = True, pricing: Any = None,
                  price_date: str | None = None, hardware: str | None = None,
                  hourly: float | None = None) -> tuple[list[PairEstimate], dict[str, Any]]:
    """Every task × model's estimate, and the JSON that ``estimate.json`` stores."""
    from slmbench.runner.run import check_prompt_variant, load_tasks

    if not model_ids:
        raise InputError("no models given", field="--model")
    if pilot is not None and pilot < 2:
        raise InputError("must be at least 2 (an interval needs two items)", field="--pilot",
                         value=pilot)
    coster = RunCoster(pricing_options(pricing, price_date, hardware, hourly), None)
    models = [resolve_model(m) for m in model_ids]
    tasks = load_tasks(task_paths, limit, None, sample, seed)
    estimates = []
    try:
        for task in tasks:
            scorer = ItemScorer(task)
            for model in models:
                if not model.supports(task.spec.kind):
                    continue
                check_prompt_variant(task, model)
                if pilot is not None:
                    rows = measured_rows(task, model, pilot, seed)
                    estimates.append(pilot_estimate(task, model, coster, rows,
                                                    concurrency=concurrency))
                    continue
                timer = (lambda t, m: warmup_rows(t, m, seed=seed)) \
                    if warmup and not model.remote else None
                estimates.append(estimate_pair(
                    task, model, coster, concurrency=concurrency, timer=timer,
                    messages=lambda item, m=model, s=scorer: s.request(item, m).messages))
    finally:
        for model in models:
            model.close()
    options = {"limit": limit, "sample": sample, "seed": seed, "concurrency": concurrency,
               "pilot": pilot, "tasks": [str(p) for p in task_paths], "models": model_ids}
    return estimates, to_json(estimates, coster, options)


def estimate_command(task_paths: list[Path], model_ids: list[str], *,
                     save_to: Path | None = None, **kwargs: Any) -> None:
    """Print the estimate; store it as ``estimate.json`` in ``save_to`` (a run folder)."""
    import typer

    estimates, data = estimate_runs(task_paths, model_ids, **kwargs)
    typer.echo(render(estimates), nl=False)
    if save_to is not None:
        typer.echo(f"estimate: {save(save_to, data)}")
