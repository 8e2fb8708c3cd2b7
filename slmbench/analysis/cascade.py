"""Offline cascade simulation: a small model answers, the large one only when it is unsure.

Both models' answers to every item are already stored, so a cascade can be simulated exactly,
from rows only and without calling a model: at a confidence threshold t, an item is
*escalated* when the small model's stored confidence is below t, or it has none (``null``: no
logprobs, a failed call), or — with ``escalate_invalid`` — its answer was invalid or the call
failed. An escalated item takes the large model's answer, every other item keeps the small
model's.

Per strategy (one row each):

* ``escalated``: share of items answered by the large model.
* ``accuracy``: share of items whose kept answer is correct.
* ``total_usd``: the small model on every item plus the large model on the escalated items,
  each row costed as its own run's summary prices it (:meth:`RunCoster.item_costs`, the run's
  manifest pricing options and price date); ``usd_per_1k_items`` and ``usd_per_correct``
  ($ per accurate inference) follow. The $ figures need both models priced; otherwise they are
  ``None`` ("unpriced") and the accuracy figures stand.
* ``gap_recovered``: (acc_cascade − acc_small) / (acc_large − acc_small), the share of the
  small → large accuracy gap the cascade recovers; ``None`` when the gap is 0.

Strategies: ``small only`` and ``large only`` (the two single models), ``invalid only`` (a
validation fallback without any threshold: escalate exactly the invalid answers and failed
calls) and ``threshold`` rows, one per t.

A model that could not run on the task (named in the manifest's ``failures``, or most of its
rows failed calls: :func:`~slmbench.analysis.summary.row_failures`) is refused as either side,
naming the reason, since its "answers" are errors and any figure of the cascade would be too;
when ``RUN`` alone is given, the run's failed models are skipped (with a warning naming them)
and the one model left is taken.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.markdown import format_usd

SWEEP = tuple(round(i * 0.05, 2) for i in range(21))  # 0.0, 0.05, ..., 1.0
FEW_CONFIDENCES = 50  # a sweep adds every distinct confidence when there are at most this many
DEFAULT_THRESHOLD = 0.85
SHOW_IDS = 5
STRATEGIES = ("small only", "large only", "invalid only", "threshold")
# the keys of one outcome row, in this order wherever a row is written out (CSV columns)
FIELDS = ["strategy", "threshold", "n_items", "n_escalated", "escalated_share",
          "n_correct", "accuracy", "gap_recovered", "priced", "total_usd",
          "usd_per_1k_items", "usd_per_correct", "correct_per_usd"]


# ---------------------------------------------------------------------------------------------
# inputs


@dataclass
class Side:
    """One model's stored rows of one task, with each row's cost as its run's summary has it."""

    role: str                      # small | large
    run_path: Path
    run_id: str
    model: str
    task: str
    kind: str
    rows: dict[str, dict[str, Any]]
    costs: dict[str, float | None]
    pricing: dict[str, Any]
    price_date: str
    warnings: list[str] = field(default_factory=list)

    @property
    def priced(self) -> bool:
        return bool(self.costs) and all(c is not None for c in self.costs.values())

    @property
    def label(self) -> str:
        return f"{self.run_path}:{self.model}"


@dataclass
class CascadeInput:
    task: str
    kind: str
    small: Side
    large: Side
    ids: list[str]


def parse_run_model(text: str, field_: str) -> tuple[Path, str | None]:
    """``RUN:MODEL`` → (run folder, model id). Model ids hold ':' too (``baseline:tfidf-logreg``),
    so the run is the shortest prefix before a ':' that is a folder; a bare ``RUN`` folder is
    accepted when its run holds a single model."""
    raw = str(text).strip()
    for i, ch in enumerate(raw):
        if ch == ":" and i > 0 and Path(raw[:i]).is_dir():
            return Path(raw[:i]), raw[i + 1:].strip() or None
    if raw and Path(raw).is_dir():
        return Path(raw), None
    raise InputError("expected RUN:MODEL with RUN a run folder, e.g. "
                     "results/abc:openai/gpt-5.4-mini", field=field_, value=text)


def _first(ids: Sequence[str]) -> str:
    return ", ".join(ids[:SHOW_IDS]) + (", …" if len(ids) > SHOW_IDS else "")


def _match_model(models: Iterable[str], wanted: str | None, run_path: Path, field_: str,
                 failed: dict[str, str] | None = None) -> str:
    """The model ``wanted`` names; ``failed`` (model → reason: it could not run on any task it
    has rows of) are skipped when none is named, and refused when one is."""
    failed = failed or {}
    known = sorted(set(models))
    if wanted is not None and wanted not in known and wanted in failed:
        raise _cannot_run(wanted, failed[wanted], run_path, field_)
    if not known:
        raise InputError("the run holds no result rows", file=run_path, field=field_)
    if wanted is None:
        usable = [m for m in known if m not in failed]
        if len(usable) == 1:
            return usable[0]
        if not usable:
            raise _cannot_run(known[0], failed[known[0]], run_path, field_)
        raise InputError(f"the run holds several models, name one as RUN:MODEL (models: "
                         f"{', '.join(usable)})", file=run_path, field=field_)
    if wanted in known:
        return wanted
    # a model id given with its settings (…?api_base=…) matches the stored name without them
    same = [m for m in known if m.partition("?")[0] == wanted.partition("?")[0]]
    if len(same) == 1:
        return same[0]
    raise InputError(f"no such model in the run (models: {', '.join(known)})", file=run_path,
                     field=field_, value=wanted)


def _cannot_run(model: str, reason: str, run_path: Path, field_: str) -> InputError:
    return InputError(f"{model} could not run in this run ({reason}): a cascade cannot use "
                      "it", file=run_path, field=field_)


@dataclass
class _Opened:
    run: Any
    model: str
    rows: list[dict[str, Any]]
    failures: dict[tuple[str, str], str]  # (task, model) → reason, every pair of the run
    skipped: list[str]  # warnings: the failed models passed over when none was named


def _open(spec: Any, model: str | None, field_: str) -> _Opened:
    """The run, the model and its rows for a run folder/RunDir and an optional model id."""
    from slmbench.analysis.summary import row_failures
    from slmbench.store import RunDir, open_run

    run = spec if isinstance(spec, RunDir) else open_run(spec)
    rows = run.rows()
    failures = row_failures(run.read_manifest(), rows)
    tasks_of: dict[str, set[str]] = {}
    for r in rows:
        tasks_of.setdefault(r["model"], set()).add(r["task"])
    for task, m in failures:
        tasks_of.setdefault(m, set()).add(task)
    # a model counts as failed here when it failed on every task it was run on
    failed = {m: next(failures[(t, m)] for t in sorted(tasks))
              for m, tasks in tasks_of.items() if all((t, m) in failures for t in tasks)}
    name = _match_model({r["model"] for r in rows}, model, run.path, field_, failed)
    skipped = ([f"skipped {m}: it could not run in {run.path} ({why})"
                for m, why in sorted(failed.items()) if m != name] if model is None else [])
    return _Opened(run, name, [r for r in rows if r["model"] == name], failures, skipped)


def _side(role: str, run: Any, model: str, task: str, rows: list[dict[str, Any]],
          coster: Any = None) -> Side:
    from slmbench.analysis.summary import group_rows, pricing_from_manifest
    from slmbench.pricing.run_costs import RunCoster
    from slmbench.scoring.calibration import check_confidence

    manifest = run.read_manifest()
    if coster is None:
        coster = RunCoster(pricing_from_manifest(manifest), manifest.get("started_at"))
    group = group_rows(rows)[(task, model)]
    timings = [t for t in manifest.get("timings", [])
               if t.get("task") == task and t.get("model") == model]
    costs, basis = coster.item_costs_and_basis(model, manifest.get("models", {}).get(model, {}),
                                               group, timings)
    for r in group:
        check_confidence(r.get("confidence"), f"{run.path}: {role} item {r['item_id']}")
    kind = (manifest.get("tasks", {}).get(task) or {}).get("kind") or group[0].get("kind") or "?"
    return Side(role=role, run_path=run.path, run_id=run.run_id, model=model, task=task,
                kind=kind, rows={str(r["item_id"]): r for r in group},
                costs={str(r["item_id"]): c for r, c in zip(group, costs, strict=True)},
                pricing=basis, price_date=coster.on.isoformat(), warnings=list(coster.warnings))


def load_cascade(small_run: Any, small_model: str | None, large_run: Any,
                 large_model: str | None, task: str | None = None) -> CascadeInput:
    """Both sides of a cascade from stored runs; InputError unless they cover the same items."""
    s, lg = _open(small_run, small_model, "--small"), _open(large_run, large_model, "--large")
    s_run, s_model, s_rows = s.run, s.model, s.rows
    l_run, l_model, l_rows = lg.run, lg.model, lg.rows
    s_tasks, l_tasks = {r["task"] for r in s_rows}, {r["task"] for r in l_rows}
    shared = sorted(s_tasks & l_tasks)
    if task is not None:
        if task not in shared:
            raise InputError(f"the task must hold rows of both models (small: "
                             f"{', '.join(sorted(s_tasks))}; large: "
                             f"{', '.join(sorted(l_tasks))})", field="--task", value=task)
    elif len(shared) == 1:
        task = shared[0]
    elif not shared:
        raise InputError(f"the two models share no task (small: {', '.join(sorted(s_tasks))}; "
                         f"large: {', '.join(sorted(l_tasks))})", field="--large")
    else:
        raise InputError(f"the runs share several tasks, pick one with --task "
                         f"({', '.join(shared)})", field="--task")
    for opened, field_ in ((s, "--small"), (lg, "--large")):
        reason = opened.failures.get((task, opened.model))
        if reason is not None:
            raise _cannot_run(opened.model, reason, opened.run.path, field_)
    small = _side("small", s_run, s_model, task, [r for r in s_rows if r["task"] == task])
    large = _side("large", l_run, l_model, task, [r for r in l_rows if r["task"] == task])
    small.warnings += s.skipped
    large.warnings += lg.skipped
    only_small = sorted(set(small.rows) - set(large.rows))
    only_large = sorted(set(large.rows) - set(small.rows))
    if only_small or only_large:
        parts = []
        if only_small:
            parts.append(f"{len(only_small)} missing from the large run ({_first(only_small)})")
        if only_large:
            parts.append(f"{len(only_large)} missing from the small run ({_first(only_large)})")
        raise InputError(f"task {task}: the two runs do not cover the same items: "
                         + "; ".join(parts) + " — a cascade needs both answers for every item",
                         field="--large")
    ids = sorted(small.rows)
    differ = [i for i in ids if small.rows[i].get("gold") != large.rows[i].get("gold")]
    if differ:
        raise InputError(f"task {task}: the runs disagree on the gold answer of {len(differ)} "
                         f"items ({_first(differ)}), so they are not the same dataset",
                         field="--large")
    return CascadeInput(task=task, kind=small.kind, small=small, large=large, ids=ids)


# ---------------------------------------------------------------------------------------------
# simulation


def sweep_thresholds(confidences: Iterable[float | None], few: int = FEW_CONFIDENCES
                     ) -> list[float]:
    """0.0, 0.05, …, 1.0, plus every distinct confidence when there are at most ``few``: a
    threshold equal to a confidence is where that item stops being escalated."""
    distinct = {float(c) for c in confidences if c is not None}
    points = set(SWEEP) | (distinct if len(distinct) <= few else set())
    return sorted(points)


def check_threshold(value: Any, field_: str = "--threshold") -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value) or not 0 <= value <= 1:
        raise InputError("a threshold is a confidence between 0 and 1", field=field_,
                         value=value)
    return float(value)


def _outcome(inp: CascadeInput, strategy: str, threshold: float | None,
             escalate: dict[str, bool], *, small_cost: bool = True) -> dict[str, Any]:
    from slmbench.pricing.cost import summarize_costs

    n = len(inp.ids)
    costs: list[float | None] = []
    n_correct = 0
    for i in inp.ids:
        up = escalate[i]
        n_correct += bool((inp.large if up else inp.small).rows[i].get("correct"))
        sc = inp.small.costs[i] if small_cost else 0.0
        lc = inp.large.costs[i] if up else 0.0
        costs.append(None if sc is None or lc is None else sc + lc)
    priced = inp.small.priced and inp.large.priced
    if strategy == "small only":
        priced = inp.small.priced
    elif strategy == "large only":
        priced = inp.large.priced
    money = summarize_costs(costs if priced else [None] * n, n_correct)
    n_esc = sum(escalate.values())
    return {
        "strategy": strategy, "threshold": threshold, "n_items": n, "n_escalated": n_esc,
        "escalated_share": n_esc / n if n else None, "n_correct": n_correct,
        "accuracy": n_correct / n if n else None, "gap_recovered": None,
        "priced": money["priced"], "total_usd": money["total_usd"],
        "usd_per_1k_items": money["usd_per_1k_items"],
        "usd_per_correct": money["usd_per_correct"], "correct_per_usd": money["correct_per_usd"],
    }


def simulate(inp: CascadeInput, thresholds: Iterable[float] = (DEFAULT_THRESHOLD,),
             escalate_invalid: bool = True) -> list[dict[str, Any]]:
    """Rows: small only, large only, invalid only, then one per threshold (ascending)."""
    from slmbench.scoring.escalation import escalates

    ts = sorted({check_threshold(t) for t in thresholds})
    small = inp.small.rows
    out = [
        _outcome(inp, "small only", None, dict.fromkeys(inp.ids, False)),
        _outcome(inp, "large only", None, dict.fromkeys(inp.ids, True), small_cost=False),
        _outcome(inp, "invalid only", None, {i: escalates(small[i], None) for i in inp.ids}),
    ]
    for t in ts:
        out.append(_outcome(inp, "threshold", t, {
            i: escalates(small[i], t, escalate_invalid) for i in inp.ids}))
    n_small, n_large = out[0]["n_correct"], out[1]["n_correct"]
    for row in out:
        if n_large != n_small:
            # + 0.0 turns the -0.0 of a negative gap into 0.0
            row["gap_recovered"] = (row["n_correct"] - n_small) / (n_large - n_small) + 0.0
    return out


def simulate_cascade(small_run: Any, small_model: str | None, large_run: Any,
                     large_model: str | None, task: str | None = None,
                     thresholds: Iterable[float] | str = "sweep",
                     escalate_invalid: bool = True) -> list[dict[str, Any]]:
    """Simulate a small → large cascade from two stored runs (folders or RunDirs).

    ``thresholds``: confidences, or ``"sweep"`` for :func:`sweep_thresholds` of the small
    model's confidences. Returns the rows of :func:`simulate` (module docstring).
    """
    inp = load_cascade(small_run, small_model, large_run, large_model, task)
    if isinstance(thresholds, str):
        if thresholds != "sweep":
            raise InputError("thresholds are numbers or 'sweep'", field="thresholds",
                             value=thresholds)
        thresholds = sweep_thresholds(r.get("confidence") for r in inp.small.rows.values())
    return simulate(inp, thresholds, escalate_invalid)


def live_cascade_entries(run: Any, rows: Sequence[dict[str, Any]], coster: Any = None
                         ) -> list[dict[str, Any]]:
    """Figures of the cascades a run made live (``run --cascade``, recorded in its manifest),
    one per cascade × task, from its stored rows: the large model's rows cover the escalated
    items only, so there is no "large only" row and no gap recovered, but the threshold row is
    computed exactly as :func:`simulate` computes it. An escalated item without a large-model
    row (a run stopped early) is counted in ``n_missing`` and the entry is not ``complete``.
    """
    from slmbench.scoring.escalation import escalates

    out: list[dict[str, Any]] = []
    specs = run.read_manifest().get("cascades") or []
    for spec in specs:
        small_m, large_m = spec["small"], spec["large"]
        t, esc_invalid = float(spec["threshold"]), bool(spec.get("escalate_invalid", True))
        tasks = sorted({r["task"] for r in rows if r["model"] == small_m})
        for task in tasks:
            s_rows = [r for r in rows if r["task"] == task and r["model"] == small_m]
            l_rows = [r for r in rows if r["task"] == task and r["model"] == large_m]
            small = _side("small", run, small_m, task, s_rows, coster)
            ids = sorted(small.rows)
            escalate = {i: escalates(small.rows[i], t, esc_invalid) for i in ids}
            large = (_side("large", run, large_m, task, l_rows, coster) if l_rows else
                     Side(role="large", run_path=run.path, run_id=run.run_id, model=large_m,
                          task=task, kind=small.kind, rows={}, costs={}, pricing={},
                          price_date=small.price_date))
            missing = [i for i in ids if escalate[i] and i not in large.rows]
            entry: dict[str, Any] = {
                "task": task, "kind": small.kind, "small": small_m, "large": large_m,
                "model": f"cascade({small_m} → {large_m} @ {t:g})", "threshold": t,
                "escalate_invalid": esc_invalid, "n_missing": len(missing),
                "complete": not missing,
            }
            if missing:
                entry.update({"n_items": len(ids), "accuracy": None, "priced": False})
            else:
                inp = CascadeInput(task=task, kind=small.kind, small=small, large=large,
                                   ids=ids)
                row = _outcome(inp, "threshold", t, escalate)
                if not large.rows:  # nothing escalated: the large side costs nothing
                    row.update(_outcome(inp, "small only", t, escalate))
                    row["strategy"] = "threshold"
                entry.update({k: row[k] for k in FIELDS if k not in ("strategy",)})
                entry["gap_recovered"] = None
                entry["price_date"] = small.price_date
            out.append(entry)
    return out


# ---------------------------------------------------------------------------------------------
# target


@dataclass
class Pick:
    target: float
    row: dict[str, Any] | None
    message: str


def pick_threshold(rows: Sequence[dict[str, Any]], target_accuracy: float | None = None,
                   target_share_of_large: float | None = None) -> Pick:
    """The cheapest threshold row whose accuracy reaches the target (ties: fewer escalations,
    then the lower threshold). Unpriced: the one with the fewest escalations.

    ``target_accuracy`` is absolute; ``target_share_of_large`` is a share of the large model's
    accuracy (0.95 = 95 % of it). Exactly one must be given.
    """
    if (target_accuracy is None) == (target_share_of_large is None):
        raise InputError("give one of --target-accuracy and --target-share-of-large",
                         field="--target-accuracy")
    large = next(r for r in rows if r["strategy"] == "large only")
    if target_accuracy is not None:
        target = target_accuracy
        what = f"accuracy {target:.1%}"
    else:
        target = (target_share_of_large or 0.0) * (large["accuracy"] or 0.0)
        what = (f"{target_share_of_large:.0%} of the large model's accuracy "
                f"({large['accuracy']:.1%}) = {target:.1%}")
    candidates = [r for r in rows if r["strategy"] == "threshold"]
    reached = [r for r in candidates if (r["accuracy"] or 0.0) >= target - 1e-12]
    if not reached:
        best = max(candidates, key=lambda r: (r["accuracy"] or 0.0, -r["n_escalated"]),
                   default=None)
        tail = (f"; the best is t = {best['threshold']:g} with {best['accuracy']:.1%}"
                if best else "")
        return Pick(target, None, f"no threshold reaches {what}{tail}")
    priced = all(r["priced"] for r in reached)
    if priced:
        row = min(reached, key=lambda r: (r["total_usd"], r["n_escalated"], r["threshold"]))
    else:
        row = min(reached, key=lambda r: (r["n_escalated"], r["threshold"]))
    text = (f"cheapest threshold reaching {what}: t = {row['threshold']:g} — accuracy "
            f"{row['accuracy']:.1%}, {row['escalated_share']:.1%} escalated")
    if priced:
        text += f", {format_usd(row['usd_per_1k_items'])} per 1k items"
        if large["priced"] and large["usd_per_1k_items"]:
            text += (f" ({row['usd_per_1k_items'] / large['usd_per_1k_items']:.1%} of the "
                     "large model alone)")
    else:
        text += " (unpriced: picked by the fewest escalations)"
    return Pick(target, row, text)


def warnings(inp: CascadeInput) -> list[str]:
    """Both sides' warnings once each: the two runs are often one run, whose pricing warnings
    would otherwise print twice."""
    out: list[str] = []
    for w in inp.small.warnings + inp.large.warnings:
        if w not in out:
            out.append(w)
    return out
