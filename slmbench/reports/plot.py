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


# a colour and a marker per model, in the order models first appear (colour-blind safe set);
# the HTML page draws the same pairs
PALETTE = ["#0072b2", "#e69f00", "#009e73", "#d55e00", "#cc79a7", "#56b4e9", "#999933",
           "#882255", "#44aa99", "#332288"]
MARKERS = ["circle", "square", "diamond", "triangle", "triangle-down", "cross"]
MARKER_SIZE = 8  # points
MPL_MARKERS = {"circle": "o", "square": "s", "diamond": "D", "triangle": "^",
               "triangle-down": "v", "cross": "P"}


def style_of(models: Sequence[str]) -> dict[str, tuple[str, str]]:
    """(colour, marker name) per model: a model keeps its pair in every task of a figure, and
    two models of one figure never share both."""
    out: dict[str, tuple[str, str]] = {}
    for m in models:
        if m not in out:
            n = len(out)
            out[m] = (PALETTE[n % len(PALETTE)],
                      MARKERS[(n // len(PALETTE) + n) % len(MARKERS)])
    return out


def y_limits(lows: Sequence[float], highs: Sequence[float]) -> tuple[float, float]:
    """An accuracy axis (in %) fitted to the intervals, with room above and below, at least
    10 points tall, within -2–102 (a point at 100 % stays off the frame): a fixed 0–100 axis
    squeezes models a few points apart into one blot."""
    lo, hi = min(lows), max(highs)
    pad = max((hi - lo) * 0.08, 2.0)
    lo, hi = lo - pad, hi + pad
    if hi - lo < 10:
        mid = (lo + hi) / 2
        lo, hi = mid - 5, mid + 5
    if lo < -2:
        lo, hi = -2.0, hi + (-2 - lo)
    if hi > 102:
        lo, hi = max(-2.0, lo - (hi - 102)), 102.0
    return lo, hi


def _label(row: dict[str, Any], multi: bool) -> str:
    return f"{row['model']} ({row['run_id']})" if multi else row["model"]


def pareto_figure(summaries: Sequence[dict[str, Any]], task: str | None = None) -> Any:
    """The matplotlib Figure of :func:`plot_pareto` (tests read its axes)."""
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

    _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    styles = style_of([_label(r, multi) for r in rows])
    n = len(tasks)
    fig = Figure(figsize=(11.0, 4.8 * n), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    for ax, name in zip(axes, tasks, strict=True):
        _task_axes(ax, name, [r for r in rows if r["task"] == name], multi, styles)
    runs = ", ".join(str(s.get("run_id")) for s in summaries)
    dates = sorted({str((s.get("pricing") or {}).get("price_date")) for s in summaries})
    fig.suptitle(f"slmbench · accuracy vs cost · run {runs} · prices as of "
                 f"{', '.join(dates)}", fontsize=10)
    fig.canvas.draw()  # lay out, then move labels off each other where they collide
    fig.set_layout_engine("none")  # keep that layout: the labels were placed in it
    for ax in axes:
        separate_labels(ax, fig)
    return fig


def plot_pareto(summaries: Sequence[dict[str, Any]], out: str | Path,
                task: str | None = None) -> Path:
    """Write the accuracy–cost plot of ``summaries`` to ``out`` (.png, .svg or .pdf)."""
    out = Path(out)
    fmt = plot_format(out)
    matplotlib = _matplotlib()
    with matplotlib.rc_context({"svg.fonttype": "none"}):  # text stays text in SVG
        fig = pareto_figure(summaries, task)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=fmt, dpi=150)
    return out


def point_labels(ax: Any) -> list[Any]:
    return [t for t in ax.texts if getattr(t, "slm_point", False)]


def separate_labels(ax: Any, fig: Any, gap_px: float = 2.0) -> None:
    """Shift the point labels of ``ax`` down until no two overlap and none covers a marker."""
    renderer = fig.canvas.get_renderer()
    labels = sorted(point_labels(ax), key=lambda t: -t.xy[1])
    markers = [ax.transData.transform(t.xy) for t in labels]
    placed: list[Any] = []
    px_per_pt = fig.dpi / 72
    # a marker's half width in pixels (a diamond's corner reaches 0.7 of its size) and a gap
    half = MARKER_SIZE * 0.75 * px_per_pt + gap_px
    for t in labels:
        for _ in range(80):
            box = t.get_window_extent(renderer)
            hit = next((b for b in placed if box.overlaps(b)), None)
            covers = any(box.x0 - half <= mx <= box.x1 + half
                         and box.y0 - half <= my <= box.y1 + half for mx, my in markers)
            if hit is None and not covers:
                break
            step = ((box.y1 - hit.y0 + gap_px) if hit is not None else 4 * px_per_pt)
            dx, dy = t.xyann
            t.xyann = (dx, dy - step / px_per_pt)
        placed.append(t.get_window_extent(renderer))


def _task_axes(ax: Any, task: str, rows: list[dict[str, Any]], multi: bool,
               styles: dict[str, tuple[str, str]]) -> None:
    placed = [r for r in rows if r["priced"] and not r["failed"] and r["accuracy"] is not None
              and (r["usd_per_1k_items"] or 0) > 0]
    left_out = [r for r in rows if r not in placed]
    usd_axis(ax)
    lo_x = hi_x = 1.0
    if placed:
        lo_x, hi_x = log_cost_limits([r["usd_per_1k_items"] for r in placed])
        ax.set_xlim(lo_x, hi_x)
        lows = [100 * (r["accuracy_ci_low"] if r["accuracy_ci_low"] is not None
                       else r["accuracy"]) for r in placed]
        highs = [100 * (r["accuracy_ci_high"] if r["accuracy_ci_high"] is not None
                        else r["accuracy"]) for r in placed]
        ax.set_ylim(*y_limits(lows, highs))
    else:
        ax.set_ylim(0, 100)
    front = sorted((r for r in placed if r["pareto"]), key=lambda r: r["usd_per_1k_items"])
    if front:
        # the frontier steps from model to model and stops at the last one: past it there is
        # nothing more to buy
        ax.step([r["usd_per_1k_items"] for r in front],
                [r["accuracy"] * 100 for r in front], where="post", color="tab:blue",
                linewidth=1.5, alpha=0.45, zorder=2, label="Pareto frontier")
    for r in placed:
        acc = r["accuracy"] * 100
        lo = r["accuracy_ci_low"] * 100 if r["accuracy_ci_low"] is not None else acc
        hi = r["accuracy_ci_high"] * 100 if r["accuracy_ci_high"] is not None else acc
        color, marker = styles[_label(r, multi)]
        ax.errorbar([r["usd_per_1k_items"]], [acc],
                    yerr=[[max(acc - lo, 0.0)], [max(hi - acc, 0.0)]],
                    fmt=MPL_MARKERS[marker], color=color, ecolor=color, capsize=3,
                    markersize=MARKER_SIZE, markeredgecolor="black" if r["pareto"] else color,
                    zorder=3, label=_label(r, multi) + (" ★" if r["pareto"] else ""))
        # labels point inwards, so the ones near the right edge are not cut off
        right = (math.log(r["usd_per_1k_items"] / lo_x) / math.log(hi_x / lo_x)) > 0.6
        text = ax.annotate(_label(r, multi), (r["usd_per_1k_items"], acc),
                           xytext=(-9 if right else 9, 0), textcoords="offset points",
                           ha="right" if right else "left", va="center", fontsize=8,
                           color=color)
        text.slm_point = True
    if placed:
        # outside the axes, so it never covers a point
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, borderaxespad=0,
                  title="★ = on the frontier", title_fontsize=8)
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
        ax.text(1.01, 0.0, "Not on the cost axis:\n" + "\n".join(lines),
                transform=ax.transAxes, va="bottom", ha="left", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#fff8e1", "edgecolor": "#c9a227"})
