"""Self-hosted vs API: at which daily volume a local model on a dedicated machine becomes
cheaper than an API model, and what each costs a month at the user's ``--volume``.

An API bills per item, so its monthly $ grows with the volume. A dedicated machine bills per
hour whether it is busy or not, and answers at most as many items a day as its measured
throughput allows, so its monthly $ is a step: whole machines. Its throughput is the one its
price was measured on (:mod:`slmbench.pricing.run_costs`: busy time on the priced machine, or
wall time), so the two figures stay consistent with the leaderboard's $ per item.

Computed from summary entries only: ``report`` draws it for stored runs without a model call.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from slmbench.markdown import format_usd, md_cell, md_table
from slmbench.pricing.cost import DAYS_PER_MONTH

SECONDS_PER_DAY = 86_400


def _local(entry: dict[str, Any]) -> dict[str, Any] | None:
    """Daily cost and capacity of one dedicated machine running this local model."""
    p = entry.get("pricing") or {}
    if entry.get("failed") or p.get("basis") != "hourly" or not p.get("priced") \
            or not entry.get("n_items") or not p.get("machine_s"):
        return None
    per_s = entry["n_items"] / p["machine_s"]
    return {"model": entry["model"], "machine": p.get("hardware"),
            "basis": p.get("time_basis", "wall"), "items_per_s": per_s,
            "capacity_per_day": per_s * SECONDS_PER_DAY,
            "usd_per_day": p["usd_per_hour"] * 24, "setup_usd": entry.get("setup_usd")}


def _api(entry: dict[str, Any]) -> dict[str, Any] | None:
    p = entry.get("pricing") or {}
    if entry.get("failed") or p.get("basis") != "tokens" or entry.get("usd_per_item") is None:
        return None
    return {"model": entry["model"], "usd_per_item": entry["usd_per_item"]}


def break_even(local: dict[str, Any], api: dict[str, Any], volume: float) -> dict[str, Any]:
    """The comparison of one local model with one API model at ``volume`` items a day.

    ``items_per_day``: the volume from which the local model is cheaper, i.e. where one
    machine-day costs what the API charges for that many items; ``None`` when even a fully
    busy machine costs more per item than the API (it never gets cheaper). ``machines``: how
    many dedicated machines ``volume`` needs."""
    full_load = local["usd_per_day"] / local["capacity_per_day"]  # $ per item, machine busy
    cheaper_from = (None if api["usd_per_item"] <= 0 or full_load >= api["usd_per_item"]
                    else local["usd_per_day"] / api["usd_per_item"])
    machines = max(1, math.ceil(volume / local["capacity_per_day"]))
    return {"local": local["model"], "api": api["model"], "items_per_day": cheaper_from,
            "machines": machines,
            "local_usd_per_month": machines * local["usd_per_day"] * DAYS_PER_MONTH,
            "api_usd_per_month": api["usd_per_item"] * volume * DAYS_PER_MONTH}


def task_comparisons(entries: Sequence[dict[str, Any]], volume: float
                     ) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(local figures, comparison) for every local × API model pair of one task's entries."""
    locals_ = [x for x in map(_local, entries) if x]
    apis = [x for x in map(_api, entries) if x]
    return [(lo, break_even(lo, api, volume)) for lo in locals_ for api in apis]


def _count(value: float | None) -> str:
    return "never" if value is None else f"{value:,.0f}"


def markdown_section(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """``## Self-hosted vs API`` per task, at each run's ``--volume`` (nothing without one, or
    when a task has no local model or no API model that is priced)."""
    parts: list[str] = []
    for s in summaries:
        volume = next((e.get("volume_per_day") for e in s.get("results") or []
                       if e.get("volume_per_day")), None)
        if not volume:
            continue
        tasks: dict[str, list[dict[str, Any]]] = {}
        for e in s.get("results") or []:
            tasks.setdefault(e["task"], []).append(e)
        for task, entries in sorted(tasks.items()):
            rows = task_comparisons(entries, volume)
            if not rows:
                continue
            parts.append(f"## Self-hosted vs API: {md_cell(task)} at {volume:,.0f} items/day\n")
            parts.append(md_table(
                ["local model", "machine", "items/s (basis)", "setup (one-off)", "API model",
                 "local cheaper from (items/day)", "machines at volume", "local $/month",
                 "API $/month"],
                [[lo["model"], lo["machine"], f"{lo['items_per_s']:,.1f} ({lo['basis']})",
                  format_usd(lo["setup_usd"]), c["api"], _count(c["items_per_day"]),
                  c["machines"], format_usd(c["local_usd_per_month"]),
                  format_usd(c["api_usd_per_month"])] for lo, c in rows],
                ["l", "l", "r", "r", "l", "r", "r", "r", "r"]))
            parts.append("A dedicated machine is paid around the clock (24 h × its hourly "
                         "rate) and answers at most its measured items/s; the API is paid per "
                         "item. 'never': even fully busy, the machine costs more per item than "
                         f"the API. Months are {DAYS_PER_MONTH} days.\n")
    return parts


def setup_section(summaries: Sequence[dict[str, Any]]) -> list[str]:
    """``## Setup cost (one-off)``: each model's training before its items (a baseline's fit),
    priced on the same machine and time basis as its items, beside its per-item cost, and
    amortised over a month at ``--volume``; nothing when no entry had a setup."""
    rows = []
    for s in summaries:
        for e in s.get("results") or []:
            if e.get("setup_usd") is None or e.get("failed"):
                continue
            amortised = e.get("setup_usd_per_1k_items_amortised")
            rows.append([e["task"], e["model"], f"{e.get('setup_s') or 0:.2f}",
                         format_usd(e["setup_usd"]), format_usd(e.get("usd_per_1k_items")),
                         "–" if amortised is None else format_usd(amortised)])
    if not rows:
        return []
    return ["## Setup cost (one-off)\n",
            md_table(["task", "model", "setup s", "setup $", "$/1k items",
                      f"setup $/1k items over {DAYS_PER_MONTH} days at --volume"], rows,
                     ["l", "l", "r", "r", "r", "r"])]
