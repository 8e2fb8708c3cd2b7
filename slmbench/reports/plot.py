"""Accuracy vs $ per 1k items, one subplot per task, from stored results only.

One point per model (and run), the 95 % bootstrap CI as a vertical error bar, the Pareto frontier
as a step line (the best accuracy you can buy for at most that cost), and the models that cannot
be placed (unpriced, free, which a log axis cannot show, or failed: a model that could not run
has no point to place) listed in a box beside the axes.
matplotlib is an optional extra (``pip install "slmbench[plot]"``) and is only imported here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.markdown import failed_cell
from slmbench.reports.leaderboard import leaderboard_entries

FORMATS = ("png", "svg", "pdf")


def _matplotlib():
    try:
        import matplotlib
    except ImportError:
        raise InputError('matplotlib is not installed: pip install "slmbench[plot]"') from None
    return matplotlib


def plot_format(out: str | Path, field: str = "--out") -> str:
    """The image format of a plot path (png, svg, pdf); anything else is an InputError."""
    fmt = Path(out).suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise InputError(f"the plot file must end in {', '.join('.' + f for f in FORMATS)}",
                         field=field, value=str(out))
    return fmt


def log_cost_limits(costs: Sequence[float]) -> tuple[float, float]:
    """x limits of a log $ axis around positive ``costs``: a third below the cheapest, three
    times the dearest, and at least two decades wide so one point is not alone on the axis."""
    lo_x, hi_x = min(costs) / 3, max(costs) * 3
    if hi_x / lo_x < 100:
        mid = math.sqrt(lo_x * hi_x)
        lo_x, hi_x = mid / 10, mid * 10
    return lo_x, hi_x


def usd_axis(ax: Any) -> None:
    """A log x axis of $ per 1k items with dollar tick labels."""
    from matplotlib.ticker import FuncFormatter

    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: f"${v:g}"))
    ax.set_xlabel("$ per 1k items (log scale)")


def _label(row: dict[str, Any], multi: bool) -> str:
    return f"{row['model']} ({row['run_id']})" if multi else row["model"]


def plot_pareto(summaries: Sequence[dict[str, Any]], out: str | Path,
                task: str | None = None) -> Path:
    """Write the accuracy–cost plot of ``summaries`` to ``out`` (.png, .svg or .pdf)."""
    out = Path(out)
    fmt = plot_format(out)
    rows = leaderboard_entries(summaries)
    tasks = sorted({r["task"] for r in rows})
    if task is not None:
        if task not in tasks:
            raise InputError(f"no such task in the runs (known: {', '.join(tasks)})",
                             field="--task", value=task)
        tasks = [task]
    if not tasks:
        raise InputError("the runs hold no results to plot")
    multi = len(summaries) > 1

    matplotlib = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(tasks)
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in SVG
        fig = Figure(figsize=(9.0, 4.6 * n), layout="constrained")
        FigureCanvasAgg(fig)
        axes = fig.subplots(n, 1, squeeze=False)[:, 0]
        for ax, name in zip(axes, tasks, strict=True):
            _task_axes(ax, name, [r for r in rows if r["task"] == name], multi)
        runs = ", ".join(str(s.get("run_id")) for s in summaries)
        dates = sorted({str((s.get("pricing") or {}).get("price_date")) for s in summaries})
        fig.suptitle(f"slmbench · accuracy vs cost · run {runs} · prices as of "
                     f"{', '.join(dates)}", fontsize=10)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=fmt, dpi=150)
    return out


def _task_axes(ax: Any, task: str, rows: list[dict[str, Any]], multi: bool) -> None:
    placed = [r for r in rows if r["priced"] and not r["failed"] and r["accuracy"] is not None
              and (r["usd_per_1k_items"] or 0) > 0]
    left_out = [r for r in rows if r not in placed]
    colors = {"frontier": "tab:blue", "dominated": "tab:gray"}
    usd_axis(ax)
    lo_x = hi_x = 1.0
    if placed:
        lo_x, hi_x = log_cost_limits([r["usd_per_1k_items"] for r in placed])
        ax.set_xlim(lo_x, hi_x)
    for r in placed:
        acc = r["accuracy"] * 100
        lo = r["accuracy_ci_low"] * 100 if r["accuracy_ci_low"] is not None else acc
        hi = r["accuracy_ci_high"] * 100 if r["accuracy_ci_high"] is not None else acc
        color = colors["frontier" if r["pareto"] else "dominated"]
        ax.errorbar([r["usd_per_1k_items"]], [acc],
                    yerr=[[max(acc - lo, 0.0)], [max(hi - acc, 0.0)]],
                    fmt="o" if r["pareto"] else "s", color=color, ecolor=color, capsize=3,
                    markersize=7, alpha=1.0 if r["pareto"] else 0.7, zorder=3)
        # labels point inwards, so the ones near the right edge are not cut off
        right = (math.log(r["usd_per_1k_items"] / lo_x) / math.log(hi_x / lo_x)) > 0.6
        ax.annotate(_label(r, multi), (r["usd_per_1k_items"], acc),
                    xytext=(-7 if right else 7, 5), textcoords="offset points",
                    ha="right" if right else "left", fontsize=8, color=color)
    front = sorted((r for r in placed if r["pareto"]), key=lambda r: r["usd_per_1k_items"])
    if front:
        xs = [r["usd_per_1k_items"] for r in front]
        ys = [r["accuracy"] * 100 for r in front]
        ax.step(xs + [hi_x], ys + [ys[-1]], where="post", color=colors["frontier"],
                linewidth=1.5, alpha=0.8, zorder=2, label="Pareto frontier")
        ax.legend(loc="lower right", fontsize=8)
    ax.set_ylim(-2, 105)
    ax.set_title(task, fontsize=11)
    ax.set_ylabel("accuracy (%) with 95% CI")
    ax.grid(True, which="both", alpha=0.25)
    if left_out:
        lines = []
        for r in left_out:
            if r["failed"]:
                # a provider's error text may hold two $, which matplotlib reads as math
                why = failed_cell(r["failed"], 32).replace("$", r"\$")
                lines.append(f"{_label(r, multi)}\n   {why}")
                continue
            why = ("unpriced" if not r["priced"] else "free ($0)" if r["priced"]
                   and r["accuracy"] is not None else "no accuracy")
            acc = f"{r['accuracy']:.1%}" if r["accuracy"] is not None else "–"
            lines.append(f"{_label(r, multi)}\n   {why}, accuracy {acc}")
        ax.text(1.02, 1.0, "Not on the cost axis:\n" + "\n".join(lines),
                transform=ax.transAxes, va="top", ha="left", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#fff8e1", "edgecolor": "#c9a227"})
