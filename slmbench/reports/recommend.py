"""A recommendation written out: sentences for a terminal, a markdown section, JSON for CI.

The decision itself is made in :mod:`slmbench.analysis.recommend`; here it becomes the few
sentences a user acts on (what to ship and what it costs a month, what the runner-up would cost,
what is given up), so the terminal, the markdown report and the HTML page say the same thing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from slmbench.analysis.recommend import Option, Recommendation, frontier
from slmbench.markdown import format_usd, md_cell, md_table

SHOW_RANKING = 8
SHOW_CLASSES = 5


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _ci(o: Option) -> str:
    return f"95% CI {_pct(o.ci_low)}–{_pct(o.ci_high)}"


def _by(rec: Recommendation) -> str:
    return ("by the lower bound of its 95% CI" if rec.confidence == "lower-bound"
            else "by its point accuracy")


def _volume(v: float) -> str:
    return f"{v:,.0f} items/day"


def decision_lines(rec: Recommendation) -> list[str]:
    """The decision, runner-up and what is given up, one sentence each."""
    v = rec.volume_per_day
    head = f"{rec.task}: "
    if rec.decision is None:
        line = (f"{head}no option reaches {_pct(rec.floor)} {_by(rec)} "
                f"({len(rec.options)} options searched)")
        c = rec.closest
        if c is not None:
            line += (f"; the closest is {c.name}: {_pct(c.accuracy)} ({_ci(c)}), "
                     + (f"{format_usd(c.usd_per_1k_items)} per 1k items" if c.priced
                        else "unpriced"))
        out = [line + "."]
        if rec.unpriced_meeting:
            out.append(f"{len(rec.unpriced_meeting)} unpriced option(s) meet the floor but "
                       "cannot be costed: " + ", ".join(o.name for o in rec.unpriced_meeting))
        return out
    d = rec.decision
    out = [f"{head}ship {d.name}: {_pct(d.accuracy)} accuracy ({_ci(d)}, floor "
           f"{_pct(rec.floor)} {_by(rec)}), {format_usd(d.usd_per_1k_items)} per 1k items, "
           f"{format_usd(d.usd_per_month(v))} per month at {_volume(v)}."]
    r = rec.runner_up
    if r is not None:
        save = rec.savings_per_1k or 0.0
        share = save / r.usd_per_1k_items if r.usd_per_1k_items else None
        out.append(f"Runner-up: {r.name}: {_pct(r.accuracy)} ({_ci(r)}), "
                   f"{format_usd(r.usd_per_1k_items)} per 1k items; the decision saves "
                   f"{format_usd(save)} per 1k items, {format_usd(rec.savings_per_month)} per "
                   "month" + (f" ({share:.0%})" if share is not None else "") + ".")
    else:
        out.append("Runner-up: none — no option built from other models meets the floor.")
    b = rec.best
    if b is None or b is d or rec.points_given_up is None or rec.points_given_up <= 1e-9:
        out.append("Gives up: nothing in accuracy — it is the most accurate option.")
    else:
        text = (f"Gives up against the most accurate option ({b.name}, {_pct(b.accuracy)}, "
                f"{format_usd(b.usd_per_1k_items)} per 1k items): "
                f"{rec.points_given_up:.1f} accuracy points")
        losses = rec.class_losses
        if losses:
            shown = ", ".join(f"{c.label} ({_pct(c.recall_best)} → {_pct(c.recall)} recall, "
                              f"{c.support} items)" for c in losses[:SHOW_CLASSES])
            more = f" and {len(losses) - SHOW_CLASSES} more" if len(losses) > SHOW_CLASSES else ""
            text += f"; {len(losses)} classes get worse: {shown}{more}"
        out.append(text + ".")
    if rec.unpriced_meeting:
        out.append(f"Not ranked (unpriced): {', '.join(o.name for o in rec.unpriced_meeting)}.")
    return out


def _ranking_rows(options: Sequence[Option], rec: Recommendation, marks: bool = True
                  ) -> list[list[str]]:
    v = rec.volume_per_day
    rows = []
    for o in options:
        mark = ("" if not marks else "decision" if o is rec.decision
                else "runner-up" if o is rec.runner_up else "")
        rows.append([o.name, _pct(o.accuracy), f"{_pct(o.ci_low)}–{_pct(o.ci_high)}",
                     format_usd(o.usd_per_1k_items), format_usd(o.usd_per_month(v)),
                     format_usd(o.usd_per_correct), mark])
    return rows


RANKING_HEAD = ["option", "accuracy", "95% CI", "$/1k items", "$/month", "$/correct", ""]


def render_lines(recs: Sequence[Recommendation]) -> list[str]:
    """Terminal output: per task the sentences, then the ranking of the options that meet the
    floor (cheapest first)."""
    out: list[str] = []
    for rec in recs:
        out.extend(decision_lines(rec))
        meets = rec.meets
        if meets:
            out.append(f"Options meeting the floor, cheapest first ({len(meets)} of "
                       f"{len(rec.options)}):")
            rows = _ranking_rows(meets[:SHOW_RANKING], rec)
            widths = [max(len(h), *(len(r[i]) for r in rows))
                      for i, h in enumerate(RANKING_HEAD)]
            for r in [RANKING_HEAD, *rows]:
                out.append("  " + "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                                            for i, (c, w) in enumerate(zip(r, widths,
                                                                           strict=True))
                                            ).rstrip())
        for note in [*rec.notes, *rec.warnings]:
            out.append(f"note: {note}")
        out.append("")
    return out[:-1] if out and out[-1] == "" else out


def render_json(recs: Sequence[Recommendation]) -> str:
    return json.dumps({"recommendations": [r.as_dict() for r in recs]}, indent=2) + "\n"


def markdown_section(recs: Sequence[Recommendation], floor_given: bool = True) -> list[str]:
    """The ``## Recommendation`` section of the markdown report: with a floor, the decision
    sentences and the options meeting it; without one, the cheapest option for every floor
    (the frontier of accuracy's lower bound against cost)."""
    parts = ["## Recommendation\n"]
    for rec in recs:
        if floor_given:
            parts.append(f"### {md_cell(rec.task)}: floor {_pct(rec.floor)}\n")
            parts.append("\n".join(f"* {md_cell(line)}" for line in decision_lines(rec)) + "\n")
            shown = rec.meets[:SHOW_RANKING]
        else:
            parts.append(f"### {md_cell(rec.task)}\n")
            shown = frontier(rec.options, rec.confidence)
            parts.append("The cheapest option for each accuracy floor (by the lower bound of "
                         f"the 95% CI), from {len(rec.options)} models and cascades; $/month "
                         f"at {_volume(rec.volume_per_day)}. `slmbench recommend RUN "
                         "--min-accuracy X` names the decision.\n")
        if shown:
            parts.append(md_table(RANKING_HEAD, _ranking_rows(shown, rec, floor_given),
                                  ["l", "r", "r", "r", "r", "r", "l"]))
        parts.extend(f"* note: {md_cell(n)}\n" for n in rec.notes)
    return parts


def option_dicts(options: Sequence[Option], volume_per_day: float) -> list[dict[str, Any]]:
    return [o.as_dict(volume_per_day) for o in options]
