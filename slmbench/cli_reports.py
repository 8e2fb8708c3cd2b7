"""``slmbench report``, ``plot``, ``gate`` and ``cascade``: built from stored results only.

Registered on the main app by :func:`register`. Nothing heavy is imported at module level, so
``slmbench --help`` stays instant; bad input is raised as :class:`~slmbench.errors.InputError`
(one line, exit 2) and a gate regression exits 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from slmbench.errors import InputError


def number_option(minimum: float | None = None, maximum: float | None = None, *,
                  above: bool = False) -> Callable[..., Any]:
    """An option callback holding a number option to a finite value in range as the command
    line is parsed: click takes ``nan``, ``inf`` and any sign for a float, and a bad value
    otherwise surfaced after the model calls, as a traceback. ``above``: the minimum itself
    is not allowed."""
    if minimum is not None and maximum is not None:
        must = f"a finite number from {minimum:g} to {maximum:g}"
    elif minimum is not None:
        must = f"a finite number {'above' if above else 'of at least'} {minimum:g}"
    else:
        must = "a finite number"

    def check(param: typer.CallbackParam, value: Any) -> Any:
        for v in value if isinstance(value, list | tuple) else (value,):
            if v is None:
                continue
            if not (math.isfinite(v) and (minimum is None or v > minimum
                                          or (v == minimum and not above))
                    and (maximum is None or v <= maximum)):
                name = max(param.opts, key=len) if param.opts else str(param.name)
                raise InputError(f"must be {must}", field=name, value=v)
        return value

    return check


REPORT_FORMATS = ("md", "html", "csv", "json", "table")


def report(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Run folders.")],
    fmt: Annotated[str, typer.Option(
        "--format", help="md | html (one self-contained page) | csv | json | table")] = "table",
    out: Annotated[Path | None, typer.Option(help="Write to this file.")] = None,
    sort: Annotated[str | None, typer.Option(
        help="Sort within each task: usd_per_correct (default), usd_per_1k_items, "
        "correct_per_usd, accuracy, macro_f1, latency_p50_s, latency_p95_s, items_per_s, "
        "invalid_rate, truncated, n_errors, model; '-' in front reverses; a model that could "
        "not run sorts last whatever the key.")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="With --format md: also write the Pareto plot (.png/.svg) next to the markdown "
        "and embed it.")] = None,
    min_accuracy: Annotated[str | None, typer.Option(
        help="With --format md or html: the recommendation section names the cheapest option "
        "meeting this floor (default: the cheapest option for every floor).")] = None,
    confidence: Annotated[str, typer.Option(
        help="The recommendation's floor is met by the CI's lower-bound (default) or the "
        "point accuracy.")] = "lower-bound",
    price_mode: Annotated[str | None, typer.Option(
        help="standard | batch | off-peak-aware: re-price the rows this way (not stored; "
        "`reprice` stores).")] = None,
    volume: Annotated[float | None, typer.Option(
        help="Items per day: monthly $ and, in markdown, the self-hosted vs API break-even.",
        callback=number_option(0))] = None,
) -> None:
    """Leaderboard of stored runs (no model is called)."""
    from slmbench.reports import leaderboard as lb

    if fmt not in REPORT_FORMATS:
        raise InputError(f"must be one of {', '.join(REPORT_FORMATS)}", field="--format",
                         value=fmt)
    if plot is not None and fmt != "md":
        raise InputError("--plot goes with --format md", field="--plot", value=str(plot))
    lb.resolve_sort(sort)  # a bad key fails before any work
    floor = _floor(min_accuracy, confidence)
    summaries = lb.load_summaries(runs)
    if price_mode is not None or volume is not None:
        from slmbench.analysis.reprice import repriced_summaries

        summaries = repriced_summaries(runs, price_mode=price_mode, volume_per_day=volume)
    manifests = _manifests(runs)
    warnings = lb.frontier_warnings(summaries, manifests)
    if fmt == "table" and out is None:
        lb.render_terminal(summaries, sort=sort)
        for w in warnings:
            typer.echo(f"warning: {w}")
        return
    link = None
    if plot is not None:
        from slmbench.reports.plot import plot_pareto

        if plot.is_absolute():
            raise InputError("give a path relative to the markdown file", field="--plot",
                             value=str(plot))
        plot_pareto(summaries, (out.parent if out else Path(".")) / plot)
        link = plot.as_posix()
    if fmt == "md":
        text = lb.render_markdown(summaries, sort=sort, plot=link,
                                  recommendation=_recommendation_md(runs, floor, confidence,
                                                                    volume),
                                  warnings=warnings, estimates=_estimates(runs, summaries))
    elif fmt == "html":
        from slmbench.reports.html import render_html

        text = render_html(summaries, sort=sort, manifests=manifests,
                           recommendations=_recommendations(runs, floor, confidence,
                                                            volume),
                           floor_given=floor is not None, warnings=warnings,
                           estimates=_estimates(runs, summaries))
    elif fmt == "csv":
        text = lb.render_csv(summaries, sort=sort)
    elif fmt == "json":
        text = lb.render_json(summaries, sort=sort)
    else:
        text = lb.render_text(summaries, sort=sort)
    if fmt not in ("md", "html"):  # the other formats are data: the warnings go to stderr
        for w in warnings:
            typer.echo(f"warning: {w}", err=True)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {out}" + (f" and {out.parent / plot}" if plot else ""))
    else:
        typer.echo(text, nl=False)


def _manifests(runs: list[Path]) -> list[dict]:
    """The runs' manifests (provenance, dataset fingerprints); a summary passed in place of a
    run folder has none."""
    from slmbench.store import open_run

    return [open_run(r).read_manifest() if isinstance(r, (str, Path)) else {} for r in runs]


def _estimates(runs: list[Path], summaries: list[dict]) -> list[dict]:
    """The runs' stored estimates against the summaries shown ("Estimate vs actual")."""
    from slmbench.reports.estimate import comparisons

    return comparisons(runs, summaries)


def _floor(min_accuracy: str | None, confidence: str) -> float | None:
    from slmbench.analysis.gate import parse_fraction
    from slmbench.analysis.recommend import check_confidence_mode

    check_confidence_mode(confidence)
    return None if min_accuracy is None else parse_fraction(min_accuracy, "--min-accuracy")


def _recommendations(runs: list[Path], floor: float | None, confidence: str,
                     volume: float | None = None) -> list:
    from slmbench.analysis.recommend import recommend

    return recommend(runs, floor or 0.0, confidence=confidence, volume_per_day=volume)


def _recommendation_md(runs: list[Path], floor: float | None, confidence: str,
                       volume: float | None = None) -> list[str]:
    from slmbench.reports.recommend import markdown_section

    return markdown_section(_recommendations(runs, floor, confidence, volume),
                            floor_given=floor is not None)


def plot(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Run folders.")],
    out: Annotated[Path, typer.Option(help="Image file: .png, .svg or .pdf.")],
    task: Annotated[str | None, typer.Option(help="Only this task (default: one subplot "
                                             "per task).")] = None,
) -> None:
    """Accuracy vs $ per 1k items with 95% CIs and the Pareto frontier (needs matplotlib)."""
    from slmbench.reports.leaderboard import load_summaries
    from slmbench.reports.plot import FORMATS, plot_pareto

    if out.suffix.lower().lstrip(".") not in FORMATS:
        raise InputError(f"the plot file must end in {', '.join('.' + f for f in FORMATS)}",
                         field="--out", value=str(out))
    path = plot_pareto(load_summaries(runs), out, task=task)
    typer.echo(f"wrote {path}")


def gate(
    current: Annotated[Path, typer.Argument(metavar="CURRENT", help="The run to check.")],
    baseline: Annotated[Path | None, typer.Option(
        help="The run to compare against (with --pair, CURRENT itself by default).")] = None,
    pair: Annotated[list[str] | None, typer.Option(
        metavar="NEW=BASE", help="Compare CURRENT's model NEW with the baseline's model BASE "
        "on the same items (e.g. a new model against the one it replaces); repeatable. Only "
        "the pairs named are compared.")] = None,
    max_accuracy_drop: Annotated[str, typer.Option(
        help="Largest tolerated accuracy drop, in percentage points.")] = "1.0",
    max_cost_increase: Annotated[str, typer.Option(
        help="Largest tolerated rise of $ per 1k items, e.g. 10%.")] = "10%",
    min_accuracy: Annotated[str | None, typer.Option(
        help="Accuracy floor for the current run, e.g. 0.85 or 85%.")] = None,
    alpha: Annotated[str, typer.Option(
        help="Significance level of McNemar's test on the shared items.")] = "0.05",
    junit: Annotated[Path | None, typer.Option(help="Write a JUnit XML report here.")] = None,
) -> None:
    """Fail (exit 1) when CURRENT regresses against --baseline, or a model the baseline scored
    could not run in CURRENT; exit 2 on bad input."""
    from slmbench.analysis.gate import Thresholds, gate_runs
    from slmbench.reports.gate import gate_lines, write_junit

    thresholds = Thresholds.parse(max_accuracy_drop, max_cost_increase, min_accuracy, alpha)
    if baseline is None and not pair:
        raise InputError("give the run to compare against (or --pair NEW=BASE to compare two "
                         "models of one run)", field="--baseline")
    pairs = _resolve_pairs(pair or [], current, baseline or current)
    result = gate_runs(current, baseline or current, thresholds, pairs)
    for line in gate_lines(result):
        typer.echo(line)
    if junit is not None:
        write_junit(result, junit)
        typer.echo(f"junit: {junit}")
    if not result.passed:
        # not typer.Exit(1): cli.main runs the app with standalone_mode=False, where click
        # returns an Exit's code instead of exiting, and main does not pass it on
        raise typer.Exit(1)


def _resolve_pairs(texts: list[str], current: Path, baseline: Path) -> list[tuple[str, str]]:
    """``NEW=BASE`` → (NEW, BASE). Model ids hold '=' too (``?features=word``), so the split
    is the '=' that leaves a model of CURRENT on the left and one of the baseline on the
    right; with a single '=' it is that one (the gate names an unknown model)."""
    from slmbench.analysis.gate import parse_pairs
    from slmbench.store import open_run

    cur = set(open_run(current).read_manifest().get("models") or {})
    base = set(open_run(baseline).read_manifest().get("models") or {})
    out = []
    for text in texts:
        raw = str(text).strip()
        cuts = [(raw[:i].strip(), raw[i + 1:].strip()) for i, ch in enumerate(raw) if ch == "="]
        known = [c for c in cuts if c[0] in cur and c[1] in base]
        if len(known) == 1:
            out.append(known[0])
        elif raw.count("=") == 1:
            out.extend(parse_pairs([raw]))
        else:
            raise InputError(f"expected NEW=BASE with NEW a model of the current run and BASE "
                             f"one of the baseline (current: {', '.join(sorted(cur))}; "
                             f"baseline: {', '.join(sorted(base))})", field="--pair",
                             value=text)
    return out


def cascade(
    small: Annotated[str, typer.Option(
        metavar="RUN:MODEL", help="The small model: run folder and model id, e.g. "
        "results/a:baseline:tfidf-logreg (just RUN when the run holds one model).")],
    large: Annotated[str, typer.Option(
        metavar="RUN:MODEL", help="The large model it escalates to (same form).")],
    task: Annotated[str | None, typer.Option(
        help="The task (needed when the runs share several).")] = None,
    threshold: Annotated[list[float] | None, typer.Option(
        help="Escalate items whose small-model confidence is below this (default 0.85); "
        "repeatable for several rows.")] = None,
    sweep: Annotated[bool, typer.Option(
        "--sweep", help="Thresholds 0.0 to 1.0 in steps of 0.05, plus every distinct "
        "confidence when there are few.")] = False,
    target_accuracy: Annotated[str | None, typer.Option(
        help="Pick the cheapest threshold reaching this accuracy, e.g. 0.9 or 90%.")] = None,
    target_share_of_large: Annotated[str | None, typer.Option(
        help="Pick the cheapest threshold reaching this share of the large model's "
        "accuracy, e.g. 0.95.")] = None,
    escalate_invalid: Annotated[bool, typer.Option(
        "--escalate-invalid/--no-escalate-invalid",
        help="Also escalate invalid answers and failed calls, whatever their confidence.")
    ] = True,
    out: Annotated[Path | None, typer.Option(help="Write every row as CSV here.")] = None,
    plot: Annotated[Path | None, typer.Option(
        help="Accuracy vs $ per 1k items of the sweep and both models (.png/.svg/.pdf; "
        "needs matplotlib).")] = None,
) -> None:
    """Simulate a small → large cascade from two stored runs (no model is called)."""
    from slmbench.analysis import cascade as ca
    from slmbench.analysis.gate import parse_fraction
    from slmbench.reports import cascade as cc

    if threshold and sweep:
        raise InputError("give --threshold or --sweep, not both", field="--threshold",
                         value=threshold[0])
    if target_accuracy is not None and target_share_of_large is not None:
        raise InputError("give --target-accuracy or --target-share-of-large, not both",
                         field="--target-share-of-large", value=target_share_of_large)
    acc_target = (None if target_accuracy is None
                  else parse_fraction(target_accuracy, "--target-accuracy"))
    share_target = (None if target_share_of_large is None
                    else parse_fraction(target_share_of_large, "--target-share-of-large"))
    for t in threshold or ():
        ca.check_threshold(t)
    if plot is not None:
        from slmbench.reports.plot import plot_format

        plot_format(plot, "--plot")
    s_run, s_model = ca.parse_run_model(small, "--small")
    l_run, l_model = ca.parse_run_model(large, "--large")
    inp = ca.load_cascade(s_run, s_model, l_run, l_model, task)
    if plot is not None and not (inp.small.priced and inp.large.priced):
        unpriced = [s.model for s in (inp.small, inp.large) if not s.priced]
        raise InputError(f"cannot draw the cascade on a cost axis: {', '.join(unpriced)} "
                         "unpriced (run without --plot for the accuracy figures)",
                         field="--plot", value=str(plot))
    thresholds = (ca.sweep_thresholds(r.get("confidence") for r in inp.small.rows.values())
                  if sweep else list(threshold or [ca.DEFAULT_THRESHOLD]))
    rows = ca.simulate(inp, thresholds, escalate_invalid)
    pick = (ca.pick_threshold(rows, acc_target, share_target)
            if acc_target is not None or share_target is not None else None)
    for line in cc.describe(inp, escalate_invalid):
        typer.echo(line)
    cc.render_terminal(rows, pick=pick, title=f"cascade {inp.small.model} → {inp.large.model}")
    typer.echo("gap recovered = (accuracy − small accuracy) ÷ (large accuracy − small "
               "accuracy); $ = small on every item + large on escalated items")
    if pick is not None:
        typer.echo(pick.message)
    for warning in ca.warnings(inp):
        typer.echo(f"warning: {warning}")
    if out is not None:
        typer.echo(f"wrote {cc.write_csv(rows, out)}")
    if plot is not None:
        typer.echo(f"wrote {cc.plot_cascade(rows, plot, inp, pick)}")


def recommend(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN", help="Run folders.")],
    min_accuracy: Annotated[str, typer.Option(
        help="Accuracy floor, e.g. 0.90 or 90%.")],
    task: Annotated[str | None, typer.Option(
        help="Only this task (default: each task of the runs).")] = None,
    volume: Annotated[str | None, typer.Option(
        help="Items per day for the $/month figures, e.g. 1e6/day, 3e7/month (default: the "
        "run's --volume, else 1e6/day).")] = None,
    confidence: Annotated[str, typer.Option(
        help="lower-bound: the floor must be met by the lower bound of the 95% CI; point: by "
        "the accuracy itself.")] = "lower-bound",
    as_json: Annotated[bool, typer.Option("--json", help="JSON for CI.")] = False,
) -> None:
    """The cheapest model or two-model cascade meeting an accuracy floor, from stored rows (no
    model is called); exit 1 when no option meets it."""
    from slmbench.analysis.gate import parse_fraction
    from slmbench.analysis.recommend import check_confidence_mode, parse_volume
    from slmbench.analysis.recommend import recommend as decide
    from slmbench.reports import recommend as rr

    floor = parse_fraction(min_accuracy, "--min-accuracy")
    check_confidence_mode(confidence)
    recs = decide(runs, floor, task=task, confidence=confidence,
                  volume_per_day=parse_volume(volume))
    if as_json:
        typer.echo(rr.render_json(recs), nl=False)
    else:
        for line in rr.render_lines(recs):
            typer.echo(line)
    if any(r.decision is None for r in recs):
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add ``report``, ``plot``, ``gate``, ``cascade`` and ``recommend`` to the main app."""
    app.command("report")(report)
    app.command("plot")(plot)
    app.command("gate")(gate)
    app.command("cascade")(cascade)
    app.command("recommend")(recommend)
