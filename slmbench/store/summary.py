"""Summary per task × model, computed from stored rows and the manifest only.

Because nothing here calls a model, ``report`` and ``reprice`` can rebuild every figure of a
finished run, and a summary can be checked against its rows at any time.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from slmbench.pricing.run_costs import PricingOptions, RunCoster
from slmbench.scoring import task_metrics
from slmbench.scoring.calibration import calibration_metrics
from slmbench.store.manifest import now_iso
from slmbench.store.run_dir import RunDir
from slmbench.tasks.spec import FieldSpec

# what scoring, timing and costing read from a row (texts stay on disk)
SUMMARY_FIELDS = frozenset({
    "kind", "gold", "answer", "routed", "correct", "invalid", "error", "latency_s",
    "tokens_in", "tokens_out", "token_source", "cached_tokens_in", "confidence",
    "confidence_source", "cached",
})


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    import numpy as np

    return float(np.quantile(np.asarray(values, dtype=float), q))


def group_rows(rows: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    groups: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["task"], row["model"])].append(row)
    for group in groups.values():
        group.sort(key=lambda r: str(r["item_id"]))
    return groups


def pair_metrics(task_info: dict[str, Any], rows: list[dict[str, Any]], seed: int
                 ) -> dict[str, Any]:
    kind = task_info["kind"]
    if kind == "classification":
        kwargs: dict[str, Any] = {"labels": task_info.get("labels", [])}
    elif kind == "routing":
        kwargs = {"labels": [r["name"] for r in task_info.get("routes", [])],
                  "fallback": task_info.get("fallback")}
    else:
        kwargs = {"fields": [FieldSpec(name=f["name"], type=f.get("type", "string"))
                             for f in task_info.get("fields", [])]}
    # calibration of the stored confidences: ECE, how many rows had one, the reliability bins
    return {**task_metrics(kind, rows, seed=seed, **kwargs), **calibration_metrics(rows)}


def pricing_from_manifest(manifest: dict[str, Any]) -> PricingOptions:
    """The pricing choices a run was made with, so a plain re-summary prices it the same way."""
    opts = manifest.get("options", {})
    return PricingOptions(dirs=tuple(Path(d) for d in opts.get("pricing_dirs") or ()),
                          price_date=opts.get("price_date"), hardware=opts.get("hardware"),
                          hourly_usd=opts.get("hourly_usd"),
                          volume_per_day=opts.get("volume_per_day"))


def build_summary(run: RunDir, pricing: PricingOptions | None = None) -> dict[str, Any]:
    manifest = run.read_manifest()
    seed = int(manifest.get("seed", 0))
    coster = RunCoster(pricing or pricing_from_manifest(manifest), manifest.get("started_at"))
    rows = run.rows(SUMMARY_FIELDS)
    timings: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in manifest.get("timings", []):
        timings[(t["task"], t["model"])].append(t)
    results = []
    for (task, model), group in sorted(group_rows(rows).items()):
        info = manifest["tasks"].get(task)
        if info is None:
            continue
        metrics = pair_metrics(info, group, seed)
        latencies = [r["latency_s"] for r in group if r.get("latency_s") is not None]
        wall = sum(t["wall_s"] for t in timings[(task, model)])
        timed_items = sum(t["items"] for t in timings[(task, model)])
        entry = {
            "task": task, "model": model, "kind": info["kind"], "n_items": len(group),
            "n_expected": info.get("n_items"),
            **metrics,
            "latency_p50_s": _quantile(latencies, 0.5),
            "latency_p95_s": _quantile(latencies, 0.95),
            "latency_sum_s": sum(latencies),
            "items_per_s": timed_items / wall if wall > 0 else None,
            "wall_s": wall,
            "tokens_in": sum(r.get("tokens_in") or 0 for r in group),
            "tokens_out": sum(r.get("tokens_out") or 0 for r in group),
            "token_sources": sorted({r.get("token_source") for r in group
                                     if r.get("token_source")}),
        }
        entry.update(coster.price(model, manifest.get("models", {}).get(model, {}), group,
                                  timings[(task, model)]))
        results.append(entry)
    return {
        "run_id": run.run_id,
        "generated_at": now_iso(),
        "results": results,
        "pricing": coster.provenance(),
        "warnings": coster.warnings,
        "skipped_lines": list(run.read_report.skipped_lines),
    }
