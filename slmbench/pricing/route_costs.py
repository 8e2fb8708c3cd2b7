"""Cost of the paths a router sends items down, where a path is itself a model.

A routing task's routes lead somewhere: a pipeline, a human queue, or a model
(``target: model:<model id>``, typically the large model a small router falls back to). A
router that sends more items down a paid model's route is dearer than its own per-item cost
says, so the summary adds, per item routed to a model route, that downstream call's cost: the
item's text as its input (tiktoken count, the tokenizer litellm bundles) and the route's
``tokens_out`` (default 256) as its answer, priced from the sheets on the run's price date.
The downstream call is not made; the figure is an estimate and is labelled as one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slmbench.pricing.cost import token_cost
from slmbench.tasks.spec import DEFAULT_ROUTE_TOKENS_OUT, MODEL_TARGET


def model_routes(task_info: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """route name → {"model", "tokens_out"} for the routes of a task that lead to a model."""
    out = {}
    for r in task_info.get("routes") or []:
        target = r.get("target") or ""
        if target.startswith(MODEL_TARGET):
            out[r["name"]] = {"model": target[len(MODEL_TARGET):].strip(),
                              "tokens_out": int(r.get("tokens_out")
                                                or DEFAULT_ROUTE_TOKENS_OUT)}
    return out


def route_path_costs(task_info: dict[str, Any], rows: Sequence[dict[str, Any]],
                     router_costs: Sequence[float | None], coster: Any) -> dict[str, Any]:
    """Summary fields: the router's cost plus its model routes' estimated downstream cost.

    ``rows`` need ``routed``, ``input`` and ``correct``; ``router_costs`` are the router's own
    per-row costs. Empty when no route of the task leads to a model.
    """
    from slmbench.models.registry import parse_model_id
    from slmbench.models.tokens import count_tiktoken
    from slmbench.pricing.cost import summarize_costs

    routes = model_routes(task_info)
    if not routes:
        return {}
    prices: dict[str, Any] = {}
    for name, info in routes.items():
        base = info["model"].partition("?")[0]
        parse_model_id(base)
        prices[name] = coster.book.lookup(base, coster.on)
        if prices[name] is None:
            coster.warn(f"route {name} ({info['model']}) is unpriced: no pricing sheet row in "
                         f"effect on {coster.on}, so the routes' cost is unknown")
    per_route = {name: {"model": info["model"], "tokens_out": info["tokens_out"], "items": 0,
                        "usd": 0.0 if prices[name] is not None else None}
                 for name, info in routes.items()}
    totals: list[float | None] = []
    for row, own in zip(rows, router_costs, strict=True):
        route = row.get("routed")
        extra = 0.0
        if route in routes:
            stats = per_route[route]
            stats["items"] += 1
            price = prices[route]
            if price is None:
                extra = None
            else:
                extra = token_cost(price, count_tiktoken(str(row.get("input") or "")),
                                   routes[route]["tokens_out"])
                stats["usd"] += extra
        totals.append(None if own is None or extra is None else own + extra)
    money = summarize_costs(totals, sum(bool(r.get("correct")) for r in rows))
    fallback = task_info.get("fallback")
    return {
        "route_paths": per_route,
        "fallback_path_usd": per_route[fallback]["usd"] if fallback in per_route else None,
        "usd_per_1k_items_with_paths": money["usd_per_1k_items"],
        "usd_per_correct_with_paths": money["usd_per_correct"],
        "total_usd_with_paths": money["total_usd"],
    }
