"""Summary per task × model, computed from stored rows and the manifest only.

Because nothing here calls a model, ``report`` and ``reprice`` can rebuild every figure of a
finished run, and a summary can be checked against its rows at any time.

An entry's ``failed`` names why its model could not run (the manifest's ``failures``, or the
most common error when most of its rows are failed calls), because the figures of such a pair
(0 % at $0) would otherwise read as a result; a pair the runner stopped before its first row
is an entry of no rows, so every report still names it. Keys a newer runner writes to rows
(``truncated``, ``reasoning_tokens``, ``cache_write_tokens``) and to the manifest
(``failures``) are read as absent from an older run, which then summarises as before.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slmbench.analysis.columns import (
    CORRECT,
    ERROR,
    INVALID,
    TRUNCATED,
    ColumnarUnsupported,
    Columns,
    PairColumns,
    is_columnar,
    read_columns,
)
from slmbench.errors import InputError
from slmbench.markdown import REASON_CHARS, one_line  # noqa: F401 - REASON_CHARS: re-export
from slmbench.pricing.cost import summarize_costs
from slmbench.pricing.run_costs import PricingOptions, RunCoster
from slmbench.scoring import coded_task_metrics, outcome_counts, task_metrics
from slmbench.scoring.calibration import (
    calibration_metrics,
    calibration_summary,
    check_confidence,
)
from slmbench.store.manifest import now_iso
from slmbench.store.run_dir import RunDir
from slmbench.tasks.kinds import get_kind

# what scoring, timing and costing read from a row (texts stay on disk)
SUMMARY_FIELDS = frozenset({
    "kind", "gold", "answer", "routed", "correct", "invalid", "error", "latency_s",
    "tokens_in", "tokens_out", "token_source", "cached_tokens_in", "confidence",
    "confidence_source", "cached", "steps", "truncated", "reasoning_tokens",
    "cache_write_tokens", "cpu_s", "ts",
})


def failure_reasons(manifest: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(task, model) → reason of the pairs the runner stopped because the model cannot run
    (manifest ``failures``; the last entry of a pair wins, as a resumed run appends)."""
    out: dict[tuple[str, str], str] = {}
    for f in manifest.get("failures") or []:
        if isinstance(f, dict) and isinstance(f.get("task"), str) \
                and isinstance(f.get("model"), str):
            out[(f["task"], f["model"])] = one_line(f.get("reason") or "the model cannot run")
    return out


def common_error(errors: list[Any]) -> str:
    """The most common of these error texts, as one line (ties: the first in text order, so
    both summary paths name the same one)."""
    counts = Counter(one_line(e) for e in errors)
    if not counts:
        return "most calls failed"
    return min(counts.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def mostly_errors(n: int, n_errors: int) -> bool:
    """More than half of a pair's rows are failed calls: the pair counts as failed."""
    return n > 0 and 2 * n_errors > n


def row_failures(manifest: dict[str, Any], rows: list[dict[str, Any]]
                 ) -> dict[tuple[str, str], str]:
    """(task, model) → reason of the failed pairs of a run, as its summary names them, from its
    (deduplicated) row dicts: for readers of rows that build no summary (cascade)."""
    out = {}
    for key, group in group_rows(rows).items():
        errors = [r["error"] for r in group if r.get("error")]
        if mostly_errors(len(group), len(errors)):
            out[key] = common_error(errors)
    out.update(failure_reasons(manifest))
    return out


def failed_pairs(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(task, model, reason) of every failed entry of a summary, in its order: what
    ``slmbench run`` names before it exits 1."""
    return [(e["task"], e["model"], e["failed"]) for e in summary.get("results") or []
            if e.get("failed")]


def _quantile(values: Any, q: float) -> float | None:
    if len(values) == 0:
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


def metric_kwargs(task_info: dict[str, Any]) -> dict[str, Any]:
    """What :func:`task_metrics` needs of a task besides its rows (labels, fields, fallback)."""
    return get_kind(task_info["kind"]).metric_kwargs(task_info)


def allowed_golds(task_info: dict[str, Any]) -> frozenset[str]:
    """The gold values a classification or routing task's rows can hold: its labels (route
    names). Task loading refuses a dataset whose gold answer is anything else (a gold outside
    the label set would silently score as a miss), so a stored row that holds one is corrupt."""
    return get_kind(task_info["kind"]).allowed_golds(task_info)


def _bad_value(check: Callable[[dict[str, Any]], tuple[str, Any, str] | None],
               row: dict[str, Any]) -> tuple[str, Any, str] | None:
    """(field, value, what it must be) of the first value of ``row`` that scoring reads and
    that is not of the shape the runner writes; ``None`` when the row is sound. ``check`` is
    the task kind's check of the gold and the prediction."""
    confidence = row.get("confidence")
    if confidence is not None:
        try:
            check_confidence(confidence)
        except InputError:
            return "confidence", confidence, "must be a number between 0 and 1 or null"
    return check(row)


def check_rows(path: Path, task: str, model: str, task_info: dict[str, Any],
               rows: list[dict[str, Any]]) -> None:
    """Refuse stored rows whose ``gold`` or prediction is not of the shape the runner writes:
    an InputError naming ``items.jsonl``, the field, the item and the value, rather than a
    traceback from deep inside scoring (sklearn, ``None.get``) or a corrupt value silently
    scored as a miss.

    Task loading guarantees the gold: one of the task's labels or routes (classification,
    routing), a mapping of field values (extraction), both (chain); each kind says what its
    rows hold (``TaskKind.row_checker``). A prediction is a label string or ``null``
    (``answer``; ``routed`` of a routing row), or what ``parse_json_object`` gave, a mapping or
    ``null`` (extraction, chain). The first bad row in ``rows``' order (item id order in
    :func:`build_summary`) is named, so the columnar path, which hands such a run to this one,
    reports the same row.
    """
    check = get_kind(task_info["kind"]).row_checker(task_info)
    for row in rows:
        bad = _bad_value(check, row)
        if bad is not None:
            field, value, must = bad
            raise InputError(f"item '{row.get('item_id')}' of {task} · {model}: the stored "
                             f"{field} {must}", file=path, field=field, value=value)


def pair_metrics(task_info: dict[str, Any], rows: list[dict[str, Any]], seed: int
                 ) -> dict[str, Any]:
    # calibration of the stored confidences: ECE, how many rows had one, the reliability bins
    return {**task_metrics(task_info["kind"], rows, seed=seed, **metric_kwargs(task_info)),
            **calibration_metrics(rows)}


def columnar_pair_metrics(task_info: dict[str, Any], cols: PairColumns, seed: int
                          ) -> dict[str, Any]:
    """:func:`pair_metrics` of a classification or routing pair from its columns."""
    import numpy as np

    correct = cols.flag(CORRECT)
    metrics = coded_task_metrics(
        task_info["kind"], cols.col("gold"), cols.col("pred"), cols.strings,
        n_errors=cols.count(ERROR), n_invalid=cols.count(INVALID),
        n_correct=int(np.count_nonzero(correct)), seed=seed, **metric_kwargs(task_info))
    conf = cols.col("confidence")
    has = ~np.isnan(conf)
    return {**metrics, **calibration_summary(conf[has], correct[has], len(cols),
                                             cols.source_names("confidence_source"))}


def pricing_from_manifest(manifest: dict[str, Any]) -> PricingOptions:
    """The pricing choices a run was made with, so a plain re-summary prices it the same way."""
    opts = manifest.get("options", {})
    return PricingOptions(dirs=tuple(Path(d) for d in opts.get("pricing_dirs") or ()),
                          price_date=opts.get("price_date"), hardware=opts.get("hardware"),
                          hourly_usd=opts.get("hourly_usd"),
                          volume_per_day=opts.get("volume_per_day"),
                          price_mode=opts.get("price_mode"))


def _entry(task: str, model: str, info: dict[str, Any], n: int, metrics: dict[str, Any],
           latencies: Any, timings: list[dict[str, Any]], tokens: dict[str, Any],
           token_sources: set[str], n_truncated: int) -> dict[str, Any]:
    """A summary entry of one pair, from its metrics and its (non-null) latencies.

    ``tokens``: the sums of ``tokens_in``, ``tokens_out``, ``reasoning_tokens`` and
    ``cache_write_tokens``. A truncated answer (cut off by the output budget) is counted apart
    from an invalid one: a bigger budget fixes it, a better prompt or model does not."""
    wall = sum(t["wall_s"] for t in timings)
    timed_items = sum(t["items"] for t in timings)
    return {
        "task": task, "model": model, "kind": info["kind"], "n_items": n,
        "n_expected": info.get("n_items"),
        **metrics,
        "truncated": n_truncated,
        "truncated_rate": n_truncated / n if n else None,
        "latency_p50_s": _quantile(latencies, 0.5),
        "latency_p95_s": _quantile(latencies, 0.95),
        # exact sum: the same figure whatever order the rows come in
        "latency_sum_s": math.fsum(latencies if isinstance(latencies, list)
                                   else latencies.tolist()),
        "items_per_s": timed_items / wall if wall > 0 else None,
        "wall_s": wall,
        "tokens_in": tokens["tokens_in"],
        "tokens_out": tokens["tokens_out"],
        "reasoning_tokens": tokens["reasoning_tokens"],
        "cache_write_tokens": tokens["cache_write_tokens"],
        "token_sources": sorted(token_sources),
    }


def _row_tokens(rows: list[dict[str, Any]]) -> dict[str, Any]:
    reasoning = [r["reasoning_tokens"] for r in rows if r.get("reasoning_tokens") is not None]
    return {"tokens_in": sum(r.get("tokens_in") or 0 for r in rows),
            "tokens_out": sum(r.get("tokens_out") or 0 for r in rows),
            "reasoning_tokens": sum(reasoning) if reasoning else None,
            "cache_write_tokens": sum(r.get("cache_write_tokens") or 0 for r in rows)}


def _failed_entry(task: str, model: str, info: dict[str, Any], timings: list[dict[str, Any]],
                  coster: RunCoster) -> dict[str, Any]:
    """The entry of a pair the runner stopped before it stored a row: every report still
    names the model, with no figure to mistake for a result."""
    metrics = {"accuracy": None, "accuracy_ci": None, **outcome_counts(0, 0, 0, 0)}
    entry = _entry(task, model, info, 0, metrics, [], timings,
                   {"tokens_in": 0, "tokens_out": 0, "reasoning_tokens": None,
                    "cache_write_tokens": 0}, set(), 0)
    entry.update(summarize_costs([], 0, coster.options.volume_per_day))
    entry["pricing"] = None
    return entry


def _columnar_plan(manifest: dict[str, Any], row_tasks: set[str]
                   ) -> Callable[[str, str], str | None] | None:
    """Which pairs :mod:`slmbench.analysis.columns` summarises (those of kinds with a columnar
    layout: classification and routing, except ``row_tasks`` and chain pipelines); ``None``
    when the run needs every row as a dict (live cascades read them all)."""
    tasks = manifest.get("tasks")
    if manifest.get("cascades") or not isinstance(tasks, dict):
        return None
    models = manifest.get("models", {})

    def plan(task: str, model: str) -> str | None:
        info = tasks.get(task)
        if info is None:
            return None
        kind = info.get("kind")
        if is_columnar(kind) and task not in row_tasks \
                and models.get(model, {}).get("pricing") != "chain":
            return kind
        return "rows"

    return plan


def _majority_error(entry: dict[str, Any], group: Any) -> str | None:
    """Why a pair most of whose rows are failed calls failed: a model that cannot run scores
    0 % at $0, which must never read as a result. Its error texts are read only then (a
    columnar pair reads them again from the file)."""
    n, n_errors = entry["n_items"], entry.get("n_errors") or 0
    if not mostly_errors(n, n_errors):
        return None
    if isinstance(group, PairColumns):
        return common_error(group.error_texts())
    return common_error([r["error"] for r in group if r.get("error")])


def build_summary(run: RunDir, pricing: PricingOptions | None = None, *,
                  columnar: bool = True) -> dict[str, Any]:
    """The summary of a run from its rows and manifest. ``columnar=False`` summarises every
    pair from row dicts (the reference the columnar path is tested against)."""
    manifest = run.read_manifest()
    seed = int(manifest.get("seed", 0))
    coster = RunCoster(pricing or pricing_from_manifest(manifest), manifest.get("started_at"),
                       machine=manifest.get("machine"))
    if coster.mode.off_peak:  # each row's call time prices it, which the columns do not hold
        columnar = False
    from slmbench.pricing.route_costs import model_routes

    # routes that lead to a model are priced from the item's text (route_costs)
    paths = {name for name, info in manifest.get("tasks", {}).items() if model_routes(info)}
    fields = SUMMARY_FIELDS | {"input"} if paths else SUMMARY_FIELDS
    timings: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for t in manifest.get("timings", []):
        timings[(t["task"], t["model"])].append(t)
    # a million rows as dicts take gigabytes: label tasks are summarised from typed columns
    # read in one streaming pass, the others (and odd rows) from row dicts
    columns: Columns | None = None
    plan = _columnar_plan(manifest, paths) if columnar else None
    if plan is not None:
        skipped = len(run.read_report.skipped_lines)
        try:
            # a gold outside the task's labels sends the run to the row path, which names it
            columns, rows = read_columns(
                run.items_path, run.read_report, plan, fields,
                golds=lambda task: allowed_golds(manifest["tasks"][task]))
        except ColumnarUnsupported:
            del run.read_report.skipped_lines[skipped:]  # the row path reads the file again
    if columns is None:
        rows = run.rows(fields)
    # pairs in (task, model) order whichever way they are read: pricing records its sheets and
    # warnings in the order it meets them
    pairs: list[tuple[tuple[str, str], Any]] = list(group_rows(rows).items())
    if columns is not None:
        pairs += [((cols.task, cols.model), cols) for cols in columns.by_pair()]
    # a pair the runner stopped before its first row is still an entry (of no rows)
    failures = failure_reasons(manifest)
    pairs += [(key, None) for key in sorted(set(failures) - {key for key, _ in pairs})]
    results = []
    for (task, model), group in sorted(pairs, key=lambda pair: pair[0]):
        info = manifest["tasks"].get(task)
        if info is None:
            continue
        model_info = manifest.get("models", {}).get(model, {})
        if group is None:
            entry = _failed_entry(task, model, info, timings[(task, model)], coster)
        elif isinstance(group, PairColumns):
            entry = _entry(task, model, info, len(group),
                           columnar_pair_metrics(info, group, seed), group.latency_values(),
                           timings[(task, model)],
                           {"tokens_in": group.total("tokens_in"),
                            "tokens_out": group.total("tokens_out"),
                            "reasoning_tokens": group.reported_total("reasoning_tokens"),
                            "cache_write_tokens": group.total("cache_write_tokens")},
                           group.source_names("token_source"), group.count(TRUNCATED))
            entry.update(coster.price(model, model_info, group, timings[(task, model)]))
        else:
            check_rows(run.items_path, task, model, info, group)
            entry = _entry(task, model, info, len(group), pair_metrics(info, group, seed),
                           [r["latency_s"] for r in group if r.get("latency_s") is not None],
                           timings[(task, model)], _row_tokens(group),
                           {r.get("token_source") for r in group if r.get("token_source")},
                           sum(bool(r.get("truncated")) for r in group))
            entry.update(coster.price(model, model_info, group, timings[(task, model)]))
            if task in paths:
                from slmbench.pricing.route_costs import route_path_costs

                own = coster.item_costs(model, model_info, group, timings[(task, model)])
                entry.update(route_path_costs(info, group, own, coster))
        entry["failed"] = failures.get((task, model)) or _majority_error(entry, group)
        if group is not None:
            get_kind(info["kind"]).priced(entry)
        results.append(entry)
    cascades: list[dict[str, Any]] = []
    if manifest.get("cascades"):
        from slmbench.analysis.cascade import live_cascade_entries

        cascades = live_cascade_entries(run, rows, coster)
        # a cascade leaning on a model that could not run is no result either
        failed = {(e["task"], e["model"]): e["failed"] for e in results if e["failed"]}
        for c in cascades:
            c["failed"] = next((f"its {role} model {c[role]} could not run: "
                                f"{failed[(c['task'], c[role])]}" for role in ("small", "large")
                                if (c["task"], c[role]) in failed), None)
    return {
        "run_id": run.run_id,
        "generated_at": now_iso(),
        "results": results,
        "cascades": cascades,
        "pricing": coster.provenance(),
        "warnings": coster.warnings,
        "skipped_lines": list(run.read_report.skipped_lines),
    }
