"""The ``slmbench`` command line: a thin Typer layer over library functions.

Nothing heavy is imported at module level: ``slmbench --help`` must stay instant. Every
command turns :class:`~slmbench.errors.InputError` into one line on stderr and exit code 2.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from slmbench.cli_reports import number_option
from slmbench.errors import InputError, SlmbenchError
from slmbench.secrets import scrub

app = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None,
                  help="Which model gives the most correct answers per dollar on your task?")


def _print_version(value: bool) -> None:
    if value:
        from slmbench import __version__

        typer.echo(f"slmbench {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: Annotated[bool, typer.Option(
        "--version", callback=_print_version, is_eager=True,
        help="Print the version and exit.")] = False) -> None:
    """Which model gives the most correct answers per dollar on your task?"""

DEFAULT_MODELS = ["llamacpp:smollm2", "baseline:tfidf-logreg"]


@app.command()
def run(
    ctx: typer.Context,
    tasks: Annotated[list[Path] | None, typer.Argument(
        help="Task YAML files (default: the bundled example suite in tasks/).")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Model id, repeatable: llamacpp:<file.gguf|smollm2>, "
        "baseline:tfidf-logreg, or a litellm id (openai/gpt-5.4-nano). Settings go after '?', "
        "e.g. 'openai/x?api_base=http://127.0.0.1:8080/v1'.")] = None,
    results_dir: Annotated[Path, typer.Option(help="Folder holding run folders.")] = Path(
        "results"),
    run_id: Annotated[str | None, typer.Option(
        help="Run folder name; re-using one resumes it.")] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Resume this run folder: only items without a row are sent to models.")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N items per task.")] = None,
    sample: Annotated[int | None, typer.Option(
        help="N items per task drawn at random (seeded by --seed), stratified by gold answer; "
        "after --limit.")] = None,
    dry_run: Annotated[bool, typer.Option(
        "--dry-run", help="Estimate items, tokens, $ and time per task × model (as "
        "`slmbench estimate`); no model is called and nothing runs.")] = False,
    shard: Annotated[str | None, typer.Option(
        help="Run shard K of N (K/N) of the items, by a stable hash of the item id.")] = None,
    concurrency: Annotated[int, typer.Option(help="Parallel requests for API models.")] = 8,
    executor: Annotated[str, typer.Option(
        help="Who makes the calls: auto (processes when an API model runs on a machine with "
        "more than one core, else local), local (this process), processes (API calls in "
        "worker processes sharing one --concurrency window), ray (actors on a Ray cluster; "
        'pip install "slmbench[ray]"), or the name of an executor plugin '
        "(entry points 'slmbench.executors').")] = "auto",
    workers: Annotated[int | None, typer.Option(
        help="Worker processes of --executor processes (default: one per core; auto: at most "
        "4), or Ray workers (default: one per CPU of the cluster, one per GPU for "
        "GPU-offloaded models). API models share --concurrency.")] = None,
    ray_address: Annotated[str | None, typer.Option(
        help="Ray cluster to join with --executor ray: 'auto' (the one started on this machine) "
        "or host:port; default: RAY_ADDRESS, else a new local Ray instance.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for bootstrap CIs and model sampling.")] = 0,
    pricing: Annotated[list[Path] | None, typer.Option(
        "--pricing", help="Extra pricing sheet folder (negotiated prices); repeatable.")] = None,
    price_date: Annotated[str | None, typer.Option(
        help="Price on this date (YYYY-MM-DD) instead of the run date.")] = None,
    hardware: Annotated[str | None, typer.Option(
        help="Machine from the hardware sheet that prices local models, e.g. aws-g5.xlarge.")
    ] = None,
    hourly: Annotated[float | None, typer.Option(
        help="USD per hour for local models (overrides --hardware).",
        callback=number_option(0))] = None,
    volume: Annotated[float | None, typer.Option(
        help="Items per day, for projected $ per day and month.",
        callback=number_option(0))] = None,
    price_mode: Annotated[str | None, typer.Option(
        help="standard | batch (adds $/1k on the Batch API) | off-peak-aware (off-peak "
        "prices by each call's time).")] = None,
    max_errors: Annotated[str | None, typer.Option(
        help="Stop a task × model after N errors, or above a share like 5%.")] = None,
    max_cost: Annotated[str | None, typer.Option(
        help="Stop issuing API requests before the estimated spend passes this many USD; "
        "'estimate': the high $ of the estimate stored for --run-id (`slmbench estimate "
        "--run-id`).")] = None,
    cache: Annotated[bool, typer.Option(
        help="Reuse stored responses for identical requests (results/.cache).")] = True,
    cascade: Annotated[str | None, typer.Option(
        metavar="SMALL,LARGE", help="Run a cascade live: SMALL answers every item, LARGE only "
        "those SMALL escalates (confidence below --threshold, or invalid).")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="Confidence threshold of --cascade (default 0.85).")] = None,
    escalate_invalid: Annotated[bool, typer.Option(
        "--escalate-invalid/--no-escalate-invalid",
        help="With --cascade: also escalate invalid answers and failed calls.")] = True,
    chain: Annotated[list[str] | None, typer.Option(
        "--chain", metavar="CLASSIFIER,EXTRACTOR", help="Chain tasks: run a classify → extract "
        "pipeline as one model, named chain(CLASSIFIER > EXTRACTOR); repeatable.")] = None,
    preflight: Annotated[bool, typer.Option(
        "--preflight/--no-preflight", help="Send each API model its first item alone before "
        "the run, and stop a model that cannot run (bad key, rejected parameter) there. API "
        "keys are checked either way.")] = True,
    fail_fast: Annotated[int, typer.Option(
        help="Stop a task × model after this many identical permanent errors in a row "
        "(0: never).")] = 5,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")] = False,
) -> None:
    """Run tasks × models, store rows/summary/manifest, print the leaderboard."""
    from slmbench.paths import bundled_tasks
    from slmbench.pricing.run_costs import PricingOptions
    from slmbench.reports.leaderboard import render_terminal
    from slmbench.runner.progress import SilentProgress
    from slmbench.runner.run import RunOptions, run_benchmark

    if run_id is not None:
        check_run_id(run_id)
    # a bare --resume RUN continues that run: its tasks, models and options (runner/run.py)
    task_paths = list(tasks or ([] if resume is not None and not dry_run else bundled_tasks()))
    resume_given: frozenset[str] | None = None
    if dry_run:
        from slmbench.runner.pilot import estimate_command

        estimate_command(task_paths, list(model or DEFAULT_MODELS), limit=limit, sample=sample,
                         seed=seed, concurrency=concurrency, pricing=pricing,
                         price_date=price_date, hardware=hardware, hourly=hourly,
                         save_to=(results_dir / run_id) if run_id else None)
        return
    if resume is not None:
        if run_id is not None and run_id != resume.name:
            raise InputError("give --resume or --run-id, not both", field="--run-id",
                             value=run_id)
        if not (resume / "manifest.json").exists():
            raise InputError("not a run folder (no manifest.json)", field="--resume",
                             value=str(resume))
        results_dir, run_id = resume.parent, resume.name
        resume_given = _given_options(ctx)
    if limit is not None and limit < 1:
        raise InputError("must be at least 1", field="--limit", value=limit)
    if fail_fast < 0:
        raise InputError("must be 0 (never) or more", field="--fail-fast", value=fail_fast)
    from slmbench.runner.budget import RunStopped, resolve_max_cost
    from slmbench.runner.live_cascade import parse_cascade
    from slmbench.runner.shard import parse_shard

    if threshold is not None and cascade is None:
        raise InputError("--threshold needs --cascade SMALL,LARGE", field="--threshold",
                         value=threshold)
    cascade_spec = (parse_cascade(cascade, threshold, escalate_invalid)
                    if cascade is not None else None)
    models = list(model) if model else ([] if cascade_spec or chain or resume is not None
                                        else list(DEFAULT_MODELS))
    cap_usd = resolve_max_cost(max_cost, results_dir, run_id)

    progress = SilentProgress()
    if not quiet:
        from slmbench.ui import RichProgress

        progress = RichProgress()
    try:
        result = run_benchmark(
            task_paths, models, results_dir=results_dir, run_id=run_id,
            options=RunOptions(seed=seed, concurrency=concurrency, limit=limit, sample=sample,
                               shard=parse_shard(shard),
                               executor=executor, workers=workers, ray_address=ray_address,
                               max_errors=max_errors, use_cache=cache,
                               max_cost_usd=cap_usd,
                               cascade=cascade_spec, chains=tuple(chain or ()),
                               preflight=preflight, fail_fast=fail_fast,
                               pricing=PricingOptions(
                                   dirs=tuple(pricing or ()), price_date=price_date,
                                   hardware=hardware, hourly_usd=hourly, volume_per_day=volume,
                                   price_mode=price_mode)),
            progress=progress, resume_given=resume_given)
    except RunStopped as exc:
        _close(progress)
        typer.echo(f"{exc}; {_kept(exc)}", err=True)
        raise typer.Exit(1) from None
    except KeyboardInterrupt as exc:
        _close(progress)
        typer.echo(f"interrupted: {_kept(exc)}", err=True)
        ray_executor = sys.modules.get("slmbench.runner.ray_executor")
        if ray_executor is not None:  # os._exit below skips Ray's atexit clean-up
            ray_executor.shutdown_if_started()
        sys.stderr.flush()
        sys.stdout.flush()
        os._exit(130)  # do not wait for in-flight HTTP calls; every row is already on disk
    except BaseException:
        _close(progress)
        raise
    _close(progress)
    render_terminal(result.summary)
    for line in [*result.warnings, *truncation_warnings(result.summary)]:
        typer.echo(f"warning: {line}", err=True)
    typer.echo(f"results: {result.run.path}")
    from slmbench.analysis.summary import failed_pairs

    failed = failed_pairs(result.summary)
    if failed:  # the summary names every pair the run stopped (manifest failures) too
        for line in result.failures:
            typer.echo(line, err=True)
        models = sorted({m for _, m, _ in failed})
        typer.echo(f"failed: {len(models)} model(s) could not run ({', '.join(models)}); "
                   "they are marked failed in every report", err=True)
        raise typer.Exit(1)


def truncation_warnings(summary: dict) -> list[str]:
    """One line per task × model whose answers ran out of output budget."""
    lines = []
    for e in summary.get("results") or []:
        n = e.get("truncated") or 0
        if n and not e.get("failed"):
            lines.append(f"{e['model']} on {e['task']}: {n} answer(s) cut off by the output "
                         "budget (finish_reason length); raise max_tokens (?max_tokens=N) or "
                         "lower reasoning_effort")
    return lines


def _close(progress: object) -> None:
    if hasattr(progress, "close"):
        progress.close()


def _given_options(ctx: typer.Context) -> frozenset[str]:
    """The options of this command the user typed (not defaults): a resume keeps the rest."""
    sources = {name: ctx.get_parameter_source(name) for name in ctx.params}
    return frozenset(name for name, source in sources.items()
                     if source is not None and source.name != "DEFAULT")


def _kept(exc: BaseException) -> str:
    run = getattr(exc, "run", None)
    counts = getattr(exc, "counts", {})
    if run is None:
        return "no rows written"
    return (f"{counts.get('rows', 0)} rows written this time ({getattr(exc, 'spend', '')}); "
            f"all results kept in {run.path}; continue with --resume {run.path}")


@app.command()
def reprice(
    run_path: Annotated[Path, typer.Argument(metavar="RUN", help="Run folder.")],
    price_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    pricing: Annotated[list[Path] | None, typer.Option("--pricing")] = None,
    hardware: Annotated[str | None, typer.Option()] = None,
    hourly: Annotated[float | None, typer.Option(callback=number_option(0))] = None,
    volume: Annotated[float | None, typer.Option(callback=number_option(0))] = None,
    price_mode: Annotated[str | None, typer.Option(
        help="standard | batch | off-peak-aware (default: as the run was priced)")] = None,
) -> None:
    """Price a stored run again with other sheets or another date; no model is called."""
    from slmbench.analysis.reprice import reprice_run
    from slmbench.pricing.run_costs import PricingOptions
    from slmbench.reports.leaderboard import render_terminal

    summary = reprice_run(run_path, PricingOptions(
        dirs=tuple(pricing or ()), price_date=price_date, hardware=hardware, hourly_usd=hourly,
        volume_per_day=volume, price_mode=price_mode))
    render_terminal(summary)


pricing_app = typer.Typer(help="Pricing sheets: list, show a model, check, diff against "
                          "litellm, import from litellm.")
app.add_typer(pricing_app, name="pricing")


def _pricing_dirs(extra: list[Path] | None) -> list[Path]:
    from slmbench.pricing import default_pricing_dirs

    return [*default_pricing_dirs(), *(extra or [])]


@pricing_app.command("list")
def pricing_list(pricing: Annotated[list[Path] | None, typer.Option("--pricing")] = None
                 ) -> None:
    """Every sheet: provider, effective date, retrieved date, rows, source."""
    from rich.console import Console

    from slmbench.pricing.commands import list_sheets

    Console().print(list_sheets(_pricing_dirs(pricing)))


@pricing_app.command("show")
def pricing_show(model: str, pricing: Annotated[list[Path] | None, typer.Option(
        "--pricing")] = None, on: Annotated[str | None, typer.Option(
        help="YYYY-MM-DD")] = None) -> None:
    """Every dated price of one model, and which one is in effect."""
    from slmbench.pricing.commands import show_model

    typer.echo(show_model(model, _pricing_dirs(pricing), on=on))


@pricing_app.command("check")
def pricing_check(pricing: Annotated[list[Path] | None, typer.Option("--pricing")] = None
                  ) -> None:
    """Validate every sheet; exit 1 on any error."""
    from slmbench.pricing.commands import run_check

    text, code = run_check(_pricing_dirs(pricing))
    typer.echo(text)
    raise typer.Exit(code)


@pricing_app.command("diff")
def pricing_diff(
    on: Annotated[str | None, typer.Option(help="Sheets in effect on YYYY-MM-DD (default: "
                                           "today).")] = None,
    all_models: Annotated[bool, typer.Option(
        "--all", help="List every model litellm prices that no sheet has (default: counts).")
    ] = False,
    pricing: Annotated[list[Path] | None, typer.Option("--pricing")] = None,
    litellm_json: Annotated[Path | None, typer.Option(
        help="A litellm price map JSON to compare with instead of the installed one.")] = None,
) -> None:
    """Sheets in effect vs the installed litellm's bundled price map (offline); exit 1 on any
    disagreement."""
    from slmbench.pricing.commands import run_diff

    text, code = run_diff(_pricing_dirs(pricing), on, all_models, litellm_json)
    typer.echo(text, nl=False)
    raise typer.Exit(code)


@pricing_app.command("import")
def pricing_import(
    provider: Annotated[str, typer.Argument(help="litellm provider name, e.g. groq.")],
    from_litellm: Annotated[bool, typer.Option(
        "--from-litellm", help="Draft the sheet from litellm's bundled price map.")] = False,
    out: Annotated[Path | None, typer.Option(
        help="Sheet to write (default: pricing/<provider>/<date>.yaml); never overwritten.")
    ] = None,
    on: Annotated[str | None, typer.Option(
        help="effective_from of the new sheet, YYYY-MM-DD (default: today).")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Only these models (repeatable).")] = None,
    include_existing: Annotated[bool, typer.Option(
        help="Also draft models a sheet already prices (their rows are replaced from --on).")
    ] = False,
    pricing: Annotated[list[Path] | None, typer.Option("--pricing")] = None,
    litellm_json: Annotated[Path | None, typer.Option(
        help="A litellm price map JSON to read instead of the installed one.")] = None,
) -> None:
    """Write a new dated sheet of PROVIDER from litellm's map (confidence: litellm only),
    showing how it differs from the sheets in effect."""
    from slmbench.pricing.commands import run_import

    if not from_litellm:
        raise InputError("the only source to import from is litellm's map: add --from-litellm",
                         field="--from-litellm")
    typer.echo(run_import(provider, _pricing_dirs(pricing), out=out, on=on, models=model or (),
                          include_existing=include_existing, litellm_json=litellm_json),
               nl=False)


@app.command()
def merge(
    runs: Annotated[list[Path], typer.Argument(help="Shard run folders.")],
    out: Annotated[Path, typer.Option(help="Folder of the merged run.")],
) -> None:
    """Merge shard runs (--shard K/N) into one run; refuses mismatched or overlapping shards."""
    from slmbench.analysis.merge import merge_runs
    from slmbench.reports.leaderboard import render_terminal

    merged = merge_runs(runs, out)
    render_terminal(merged.read_summary())
    typer.echo(f"merged: {merged.path}")


@app.command()
def estimate(
    tasks: Annotated[list[Path] | None, typer.Argument(
        help="Task YAML files (default: the bundled example suite in tasks/).")] = None,
    model: Annotated[list[str] | None, typer.Option(
        "--model", "-m", help="Model id, repeatable (as for run).")] = None,
    limit: Annotated[int | None, typer.Option(help="Only the first N items per task.")] = None,
    sample: Annotated[int | None, typer.Option(
        help="N items per task, seeded and stratified by gold (as for run).")] = None,
    pilot: Annotated[int | None, typer.Option(
        help="Run N sampled items per model first and estimate from their measured tokens "
        "and latency, with a 95% interval (calls the models).")] = None,
    concurrency: Annotated[int, typer.Option(help="Parallel requests for API models.")] = 8,
    seed: Annotated[int, typer.Option(help="Seed of --sample and --pilot.")] = 0,
    warmup: Annotated[bool, typer.Option(
        "--warmup/--no-warmup", help="Time local models on a few items.")] = True,
    pricing: Annotated[list[Path] | None, typer.Option("--pricing")] = None,
    price_date: Annotated[str | None, typer.Option(help="YYYY-MM-DD")] = None,
    hardware: Annotated[str | None, typer.Option()] = None,
    hourly: Annotated[float | None, typer.Option(callback=number_option(0))] = None,
    results_dir: Annotated[Path, typer.Option(help="Folder holding run folders.")] = Path(
        "results"),
    run_id: Annotated[str | None, typer.Option(
        help="Store the estimate as estimate.json in this run folder; a run with the same "
        "--run-id then keeps it, and reports set it against the actual cost.")] = None,
) -> None:
    """Items, input tokens, output range, $ low/expected/high and wall time per task × model,
    before the run; calls no API model (local models are timed on a short warm-up)."""
    from slmbench.paths import bundled_tasks
    from slmbench.runner.pilot import estimate_command

    if run_id is not None:
        check_run_id(run_id)
    estimate_command(list(tasks or bundled_tasks()), list(model or DEFAULT_MODELS),
                     limit=limit, sample=sample, seed=seed, concurrency=concurrency,
                     pilot=pilot, warmup=warmup, pricing=pricing, price_date=price_date,
                     hardware=hardware, hourly=hourly,
                     save_to=(results_dir / run_id) if run_id else None)


@app.command()
def init(
    data: Annotated[Path, typer.Argument(help="A .csv, .jsonl or .parquet file.")],
    kind: Annotated[str, typer.Option(help="classification, routing or extraction.")] = (
        "classification"),
    text: Annotated[str | None, typer.Option(help="Text column (default: proposed).")] = None,
    label: Annotated[str | None, typer.Option(help="Label column (default: proposed).")] = None,
    out: Annotated[Path | None, typer.Option(
        help="Task YAML to write (default: <data>.task.yaml next to the data).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the train/test split.")] = 0,
    force: Annotated[bool, typer.Option(
        help="Replace a task file or split files already there.")] = False,
) -> None:
    """Write a task YAML from a data file: columns, labels, split and prompt; then validate."""
    from slmbench.tasks.init import init_command

    init_command(data, kind, text, label, out, seed, force)


@app.command("validate")
def validate(tasks: Annotated[list[Path], typer.Argument(help="Task YAML files.")]) -> None:
    """Check task files and their datasets without calling any model; every error of a file
    is listed (one line each), not only the first."""
    from slmbench.tasks.loading import validate_files

    lines, errors = validate_files(tasks)
    for line in lines:
        typer.echo(line)
    for exc in errors[:VALIDATE_SHOWN]:
        typer.echo(f"error: {scrub(str(exc))}", err=True)
    if len(errors) > VALIDATE_SHOWN:
        typer.echo(f"error: … and {len(errors) - VALIDATE_SHOWN} more", err=True)
    if errors:
        raise typer.Exit(2)


VALIDATE_SHOWN = 50


@app.command("schema")
def schema() -> None:
    """Print the JSON Schema of the task YAML format (with the installed task kind plugins)."""
    from slmbench.tasks.schema import schema_text

    typer.echo(schema_text(), nl=False)


from slmbench import cli_reports; cli_reports.register(app)  # noqa: E402, E702, I001
from slmbench.store.run_dir import check_run_id  # noqa: E402


def main() -> None:
    click_error = _click_error_class()
    try:
        # without standalone mode click returns (not raises) the code of typer.Exit
        code = app(prog_name="slmbench", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except InputError as exc:
        typer.echo(f"error: {scrub(str(exc))}", err=True)
        sys.exit(2)
    except SlmbenchError as exc:
        typer.echo(f"error: {scrub(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted: rows written so far are kept; re-run with --resume", err=True)
        sys.exit(130)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.echo("aborted", err=True)
        sys.exit(130)
    except click_error as exc:  # a usage error: an unknown option or command, a missing value
        typer.echo(f"error: {scrub(_usage_line(exc))}", err=True)
        sys.exit(2)


def _click_error_class() -> type[Exception]:
    """The base class of the command-line errors that typer raises: those of its own copy of
    click (``typer._click``, typer >= 0.2x), which ``import click`` does not catch."""
    return next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def _usage_line(exc: Exception) -> str:
    """The error on one line, with the command whose ``--help`` lists what it takes."""
    text = " ".join(str(exc.format_message()).split())  # type: ignore[attr-defined]
    ctx = getattr(exc, "ctx", None)
    path = getattr(ctx, "command_path", None)
    return f"{text} (see '{path} --help')" if path else text


if __name__ == "__main__":
    main()
