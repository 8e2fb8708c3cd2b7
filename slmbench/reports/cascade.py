"""A cascade's figures as a table, header lines, CSV and a plot.

The figures themselves (the simulation, the threshold pick) are computed from stored rows in
:mod:`slmbench.analysis.cascade`; this module only writes them out, so the numbers in the
terminal, the CSV and the plot are one set of rows.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from slmbench.analysis.cascade import FIELDS, CascadeInput, Pick
from slmbench.errors import InputError
from slmbench.markdown import format_usd


def _cells(row: dict[str, Any]) -> list[str]:
    def usd(key: str) -> str:
        return "unpriced" if not row["priced"] else format_usd(row[key])

    gap = row["gap_recovered"]
    return [row["strategy"], "–" if row["threshold"] is None else f"{row['threshold']:g}",
            f"{row['escalated_share']:.1%}", f"{row['accuracy']:.1%}",
            "–" if gap is None else f"{gap:.1%}", usd("total_usd"), usd("usd_per_1k_items"),
            usd("usd_per_correct")]


HEAD = ["strategy", "threshold", "escalated", "accuracy", "gap recovered", "$ total",
        "$/1k items", "$/correct"]


def describe(inp: CascadeInput, escalate_invalid: bool) -> list[str]:
    """Header lines: the task, both sides with their accuracy, cost and calibration."""
    from slmbench.scoring.calibration import calibration_metrics

    lines = [f"cascade on task {inp.task} ({inp.kind}), {len(inp.ids)} items"]
    for side in (inp.small, inp.large):
        rows = list(side.rows.values())
        acc = sum(bool(r.get("correct")) for r in rows) / len(rows)
        cal = calibration_metrics(rows)
        cost = (format_usd(math.fsum(side.costs.values()) / len(rows) * 1000) + " per 1k items"
                if side.priced else "unpriced")
        conf = (f"confidence on {cal['n_confidence']} of {len(rows)} items"
                + (f" ({', '.join(cal['confidence_sources'])}), ECE {cal['ece']:.3f}"
                   if cal["ece"] is not None else ""))
        lines.append(f"{side.role}: {side.label} — accuracy {acc:.1%}, {cost} (prices as of "
                     f"{side.price_date}), {conf}")
    lines.append("escalated: confidence below the threshold or null"
                 + (", invalid answers and failed calls" if escalate_invalid else ""))
    if not any(r.get("confidence") is not None for r in inp.small.rows.values()):
        lines.append("note: the small model stored no confidence, so every threshold "
                     "escalates every item; only 'invalid only' is a real cascade")
    return lines


def render_terminal(rows: Sequence[dict[str, Any]], console: Any = None,
                    pick: Pick | None = None, title: str = "cascade") -> None:
    from rich.console import Console
    from rich.table import Table

    from slmbench.reports.leaderboard import _stdout_console

    console = console or _stdout_console(Console)  # piped: whole columns, not 80 wide
    table = Table(title=title)
    for i, h in enumerate(HEAD):
        table.add_column(h, justify="left" if i == 0 else "right")
    for row in rows:
        chosen = pick is not None and pick.row is row
        table.add_row(*_cells(row), style="bold green" if chosen else None)
    console.print(table)


def render_text(rows: Sequence[dict[str, Any]], pick: Pick | None = None, width: int = 200
                ) -> str:
    from rich.console import Console

    buf = io.StringIO()
    render_terminal(rows, Console(file=buf, width=width, color_system=None,
                                  force_terminal=False), pick)
    return buf.getvalue()


def write_csv(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    path = Path(path)
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if row[k] is None else row[k] for k in FIELDS})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def plot_cascade(rows: Sequence[dict[str, Any]], out: str | Path, inp: CascadeInput,
                 pick: Pick | None = None) -> Path:
    """Accuracy against $ per 1k items: the threshold sweep as a line, the two single models
    and the invalid-only fallback as labelled points (needs matplotlib)."""
    from slmbench.reports.plot import _matplotlib, log_cost_limits, plot_format, usd_axis

    out = Path(out)
    fmt = plot_format(out, "--plot")
    placed = [r for r in rows if r["priced"] and (r["usd_per_1k_items"] or 0) > 0]
    if not any(r["strategy"] == "threshold" for r in placed):
        raise InputError("the cascade's $ figures are unpriced (or $0), so it cannot be drawn "
                         "on a cost axis; the table still holds its accuracy", field="--plot",
                         value=str(out))
    matplotlib = _matplotlib()
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig = Figure(figsize=(9.0, 5.2), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.subplots()
        usd_axis(ax)
        lo_x, hi_x = log_cost_limits([r["usd_per_1k_items"] for r in placed])
        ax.set_xlim(lo_x, hi_x)
        # thresholds with the same outcome are one point, labelled with the lowest of them
        sweep: list[dict[str, Any]] = []
        for r in sorted((r for r in placed if r["strategy"] == "threshold"),
                        key=lambda r: r["threshold"]):
            if not sweep or (r["n_escalated"], r["n_correct"]) != (sweep[-1]["n_escalated"],
                                                                   sweep[-1]["n_correct"]):
                sweep.append(r)
        ax.plot([r["usd_per_1k_items"] for r in sweep], [r["accuracy"] * 100 for r in sweep],
                "o-", color="tab:blue", markersize=4, linewidth=1.2, alpha=0.85, zorder=2,
                label="cascade, one point per threshold")
        step = max(1, math.ceil(len(sweep) / 8))
        for k, r in enumerate(sweep):
            if k % step == 0:  # the last point sits at the large model's marker anyway
                ax.annotate(f"t={r['threshold']:.2f}", (r["usd_per_1k_items"],
                                                        r["accuracy"] * 100),
                            xytext=(4, -11 if k // step % 2 == 0 else 6),
                            textcoords="offset points", fontsize=7, color="tab:blue")
        marks = {"small only": ("s", "tab:orange", f"small: {inp.small.model}"),
                 "large only": ("D", "tab:red", f"large: {inp.large.model}"),
                 "invalid only": ("^", "tab:gray", "escalate invalid answers only")}
        for r in placed:
            if r["strategy"] in marks:
                marker, color, label = marks[r["strategy"]]
                ax.plot([r["usd_per_1k_items"]], [r["accuracy"] * 100], marker, color=color,
                        markersize=8, zorder=3, label=label)
        if pick is not None and pick.row is not None and pick.row in placed:
            r = pick.row
            ax.plot([r["usd_per_1k_items"]], [r["accuracy"] * 100], "o", markersize=14,
                    markerfacecolor="none", markeredgecolor="tab:green", markeredgewidth=2,
                    zorder=4, label=f"picked: t={r['threshold']:g}")
            ax.axhline(pick.target * 100, color="tab:green", linestyle=":", linewidth=1,
                       label=f"target {pick.target:.1%}")
        ax.set_ylim(-2, 105)
        ax.set_ylabel("accuracy (%)")
        ax.grid(True, which="both", alpha=0.25)
        ax.legend(loc="lower right", fontsize=8)
        left_out = [r for r in rows if r not in placed]
        if left_out:
            ax.text(1.02, 1.0, "Not on the cost axis:\n" + "\n".join(
                f"{r['strategy']}" + (f" t={r['threshold']:g}" if r["threshold"] is not None
                                      else "")
                + (" (unpriced)" if not r["priced"] else " ($0)") for r in left_out),
                transform=ax.transAxes, va="top", ha="left", fontsize=8,
                bbox={"boxstyle": "round", "facecolor": "#fff8e1", "edgecolor": "#c9a227"})
        fig.suptitle(f"slmbench · cascade {inp.small.model} → {inp.large.model} · task "
                     f"{inp.task} · prices as of {inp.small.price_date}", fontsize=10)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format=fmt, dpi=150)
    return out
