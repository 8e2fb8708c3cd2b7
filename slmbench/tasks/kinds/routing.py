"""Kind ``routing``: pick one route for each request; an answer that names no route goes to
the fallback route, as it would in production.

A route may lead to a model (``target: model:<id>``): the summary then adds that downstream
call's estimated cost per routed item (:mod:`slmbench.pricing.route_costs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from slmbench.errors import InputError
from slmbench.records import ERROR
from slmbench.tasks.kinds.base import TaskKind
from slmbench.tasks.spec import MODEL_TARGET, Route

ROUTE_KEYS = ("name", "description", "target", "tokens_out")


class Routing(TaskKind):
    name = "routing"
    keys = ("routes", "fallback")
    key_schemas = {
        "routes": {
            "type": "array", "minItems": 2,
            "items": {"type": "object", "required": ["name"], "additionalProperties": False,
                      "properties": {
                          "name": {"type": "string"}, "description": {"type": "string"},
                          "target": {"type": "string", "description": (
                              "Where the route leads; 'model:<model id>' makes the route's "
                              "downstream call part of the cost.")},
                          "tokens_out": {"type": "integer", "minimum": 1, "description": (
                              "Only with a model: target: expected answer length of the "
                              "downstream call (default 256).")}}},
        },
        "fallback": {"type": "string", "description": (
            "Route taken when the answer is not a valid route; must be one of routes.")},
    }
    required_keys = ("routes", "fallback")
    choice_noun = "routes"
    choice_noun_plural = "routes"
    prediction_field = "routed"
    default_instruction = (
        "Route the request to exactly one of these routes:\n{routes}\n"
        "Answer with the route name only."
    )
    columnar = True
    trains_classifier = True

    def parse(self, v: Any, data: dict[str, Any], prompt: dict[str, Any],
              train_split: str | None) -> dict[str, Any]:
        routes = _parse_routes(v, data.get("routes"))
        fallback = v.get(data, "fallback", str, "", required=True)
        if fallback not in {r.name for r in routes}:
            raise v.fail("must name one of the routes", "fallback", fallback)
        return {"routes": routes, "fallback": fallback}

    def choices(self, spec: Any) -> tuple[str, ...] | None:
        return tuple(r.name for r in spec.routes)

    def blank_row(self, spec: Any) -> dict[str, Any]:
        return {"routed": None}

    def score(self, scorer: Any, row: dict[str, Any], comp: Any, item: Any) -> None:
        super().score(scorer, row, comp, item)
        row["routed"] = row["answer"] if row["answer"] is not None else scorer.task.spec.fallback
        row["correct"] = row["routed"] == item.gold

    def describe(self, spec: Any) -> dict[str, Any]:
        return {"routes": [{"name": r.name, "description": r.description, "target": r.target,
                            **({"tokens_out": r.tokens_out} if r.tokens_out else {})}
                           for r in spec.routes],
                "fallback": spec.fallback}

    def metric_kwargs(self, task_info: dict[str, Any]) -> dict[str, Any]:
        return {"labels": [r["name"] for r in task_info.get("routes", [])],
                "fallback": task_info.get("fallback")}

    def predicted_label(self, row: dict[str, Any]) -> str:
        """A routing row's prediction is the route taken: its fallback when the answer was
        invalid."""
        if row.get("error"):
            return ERROR
        return row.get("routed") or ERROR

    def metrics(self, rows: Sequence[dict[str, Any]], *, seed: int = 0,
                **kwargs: Any) -> dict[str, Any]:
        from slmbench.scoring import routing_metrics

        return routing_metrics([r["gold"] for r in rows],
                               [self.predicted_label(r) for r in rows],
                               kwargs.get("labels", ()), kwargs.get("fallback") or "",
                               seed=seed)

    def coded_metrics(self, gold: Any, pred: Any, strings: Sequence[str], *, seed: int = 0,
                      **kwargs: Any) -> dict[str, Any]:
        import numpy as np

        from slmbench.scoring import fallback_figures

        out = super().coded_metrics(gold, pred, strings, seed=seed, **kwargs)
        fallback = kwargs.get("fallback") or ""
        fb = next((i for i, s in enumerate(strings) if s == fallback), -1)
        is_fb = pred == fb
        out.update(fallback_figures(len(gold), int(np.count_nonzero(is_fb)),
                                    int(np.count_nonzero((gold == pred) & ~is_fb))))
        return out

    def report_table(self, rows: list[dict[str, Any]], multi: bool) -> list[str]:
        """Fallback rate and accuracy with the fallback counted as a miss; with model routes,
        what they cost."""
        import math

        from slmbench.markdown import cell as _cell
        from slmbench.markdown import failed_cell, fmt, md_cell, md_table
        from slmbench.markdown import format_usd as _usd

        paths = any("route_paths" in r["entry"] for r in rows)
        head = (["run"] if multi else []) + ["model", "fallback rate",
                                             "accuracy (fallback = miss)", "accuracy"]
        if paths:
            head += ["$ of model routes", "$/1k items incl. routes", "$/correct incl. routes"]

        def path_cells(r: dict[str, Any]) -> list[str]:
            entry = r["entry"]
            if not paths:
                return []
            if r["failed"]:
                return [failed_cell(r["failed"])] * 3
            usd = [p["usd"] for p in (entry.get("route_paths") or {}).values()]
            spent = None if not usd or None in usd else math.fsum(usd)
            return ["unpriced" if spent is None else _usd(spent),
                    fmt("usd_per_1k_items", entry.get("usd_per_1k_items_with_paths")),
                    fmt("usd_per_correct", entry.get("usd_per_correct_with_paths"))]

        parts = [md_table(head, [
            ([r["run_id"]] if multi else []) + [
                r["model"], fmt("fallback_rate", r["entry"].get("fallback_rate")),
                fmt("accuracy_fallback_as_miss", r["entry"].get("accuracy_fallback_as_miss")),
                _cell("accuracy", r)] + path_cells(r) for r in rows],
            ["l"] * (1 + multi) + ["r"] * (3 + 3 * paths))]
        if paths:
            routes = next(r["entry"]["route_paths"] for r in rows if "route_paths" in r["entry"])
            parts.append("Routes that lead to a model are priced per routed item as that "
                         "model's call on the item's text and an answer of "
                         + ", ".join(f"{p['tokens_out']} tokens (`{md_cell(name)}` → "
                                     f"`{md_cell(p['model'])}`)" for name, p in routes.items())
                         + "; an estimate, the downstream call is not made.\n")
        return parts


def _parse_routes(v: Any, value: Any) -> tuple[Route, ...]:
    if not isinstance(value, list) or len(value) < 2:
        raise v.fail("must be a list of at least two routes", "routes", value)
    routes: list[Route] = []
    for i, item in enumerate(value):
        where = f"routes[{i}]"
        if not isinstance(item, dict):
            raise v.fail("must be a mapping with name, description, target", where, item)
        for key in item:
            if key not in ROUTE_KEYS:
                raise v.fail(f"unknown key (expected one of {', '.join(ROUTE_KEYS)})",
                             f"{where}.{key}", key)
        name = v.get(item, "name", str, where, required=True)
        if name in {r.name for r in routes}:
            raise v.fail("is listed twice", f"{where}.name", name)
        target = v.get(item, "target", str, where, default="")
        tokens_out = v.get(item, "tokens_out", int, where)
        if target.startswith(MODEL_TARGET):
            from slmbench.models.registry import parse_model_id

            try:
                parse_model_id(target[len(MODEL_TARGET):])
            except InputError as exc:
                raise v.fail(f"not a model id ({exc.reason})", f"{where}.target",
                             target) from None
            if tokens_out is not None and tokens_out < 1:
                raise v.fail("must be at least 1", f"{where}.tokens_out", tokens_out)
        elif tokens_out is not None:
            raise v.fail(f"only a route whose target is {MODEL_TARGET}<model id> takes "
                         "tokens_out", f"{where}.tokens_out", tokens_out)
        routes.append(Route(name=name,
                            description=v.get(item, "description", str, where, default=""),
                            target=target, tokens_out=tokens_out))
    return tuple(routes)


KIND = Routing()
