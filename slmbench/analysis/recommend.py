"""Which option to ship: the cheapest model or two-model cascade that meets an accuracy floor.

A leaderboard leaves the user to read a cost–accuracy table with intervals and decide; this
module makes the decision from the same stored rows, and says what it costs and what it gives
up, so the answer can be read in one sentence or acted on in CI.

Options, per task: every model of the runs that could run on it, and every ordered pair of
them as a cascade (small → large), simulated exactly as ``slmbench cascade`` does
(:func:`slmbench.analysis.cascade.simulate`, with each row costed as its run prices it) at the
thresholds of a sweep of the small model's confidences, plus the "invalid only" fallback. A
cascade row that escalates no item or every item is one of its two models with extra cost, so it
is left out. Two models are only paired when their runs hold the same items with the same gold
(else the pair is named in ``notes``).

Accuracy is compared with the floor by the lower bound of its 95 % CI by default (the seeded
bootstrap the leaderboard uses, :func:`~slmbench.scoring.bootstrap.count_bootstrap_ci`, with
the run's seed, so a single model's interval is the leaderboard's), or by the point estimate.
The decision is the cheapest priced option that meets the floor (ties: more accurate, then a
single model before a cascade); the runner-up is the cheapest meeting option built from other
models (a different model, or a different pair), so that it is an alternative and not the same
cascade at a neighbouring threshold. What the decision gives up is measured against the most
accurate option: accuracy points, and the classes (gold labels) whose recall is lower — the
recall column of the per-class table, counted from the same rows.

$ per month is $ per item × items per day × 30 (the 30-day month of the pricing module).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from slmbench.errors import InputError

CONFIDENCE_MODES = ("lower-bound", "point")
DEFAULT_VOLUME_PER_DAY = 1_000_000.0
DAYS_PER_MONTH = 30
SHOW_CLASSES = 5
VOLUME_UNITS = {"day": 1.0, "d": 1.0, "month": 1 / DAYS_PER_MONTH, "mo": 1 / DAYS_PER_MONTH,
                "hour": 24.0, "h": 24.0}


# ---------------------------------------------------------------------------------------------
# inputs


def parse_volume(text: str | float | None) -> float | None:
    """'1e6/day', '30000000/month', '5000/hour' or a bare number (per day) → items per day."""
    if text is None:
        return None
    raw = str(text).strip().lower().replace(",", "").replace("_", "")
    m = re.fullmatch(r"(\d+(?:\.\d*)?(?:e\+?\d+)?|\.\d+(?:e\+?\d+)?)\s*(?:/\s*([a-z]+))?", raw)
    if not m or (m.group(2) and m.group(2) not in VOLUME_UNITS):
        raise InputError("expected items per day such as 1e6/day (or /month, /hour)",
                         field="--volume", value=text)
    value = float(m.group(1)) * VOLUME_UNITS[m.group(2) or "day"]
    if value <= 0:
        raise InputError("the volume must be above 0", field="--volume", value=text)
    return value


def check_confidence_mode(mode: str) -> str:
    if mode not in CONFIDENCE_MODES:
        raise InputError(f"must be one of {', '.join(CONFIDENCE_MODES)}", field="--confidence",
                         value=mode)
    return mode


# ---------------------------------------------------------------------------------------------
# options


@dataclass
class Option:
    """One thing the user could ship: a model, or a cascade of two at a threshold."""

    name: str
    models: tuple[str, ...]              # (model,) or (small, large), as displayed
    threshold: float | None              # cascades; None for a model and "invalid only"
    strategy: str                        # model | threshold | invalid only
    n_items: int
    n_correct: int
    accuracy: float
    ci_low: float
    ci_high: float
    priced: bool
    usd_per_1k_items: float | None
    usd_per_correct: float | None
    escalated_share: float | None
    recall: dict[str, float] = field(default_factory=dict)   # gold label → recall
    support: dict[str, int] = field(default_factory=dict)

    @property
    def is_cascade(self) -> bool:
        return len(self.models) == 2

    @property
    def family(self) -> tuple[str, ...]:
        return self.models

    def measure(self, mode: str) -> float:
        return self.ci_low if mode == "lower-bound" else self.accuracy

    def usd_per_month(self, volume_per_day: float) -> float | None:
        if self.usd_per_1k_items is None:
            return None
        return self.usd_per_1k_items / 1000 * volume_per_day * DAYS_PER_MONTH

    def as_dict(self, volume_per_day: float) -> dict[str, Any]:
        return {"name": self.name, "kind": "cascade" if self.is_cascade else "model",
                "models": list(self.models), "threshold": self.threshold,
                "strategy": self.strategy, "n_items": self.n_items,
                "n_correct": self.n_correct, "accuracy": self.accuracy,
                "accuracy_ci": [self.ci_low, self.ci_high], "priced": self.priced,
                "usd_per_1k_items": self.usd_per_1k_items,
                "usd_per_correct": self.usd_per_correct,
                "usd_per_month": self.usd_per_month(volume_per_day),
                "escalated_share": self.escalated_share}


@dataclass
class ClassLoss:
    label: str
    support: int
    recall_best: float
    recall: float


@dataclass
class Recommendation:
    """The decision for one task (module docstring); ``decision`` is None when no priced option
    meets the floor, and ``closest`` then names the one nearest to it."""

    task: str
    kind: str
    floor: float
    confidence: str
    volume_per_day: float
    options: list[Option]
    decision: Option | None
    runner_up: Option | None
    best: Option | None
    closest: Option | None
    class_losses: list[ClassLoss]
    unpriced_meeting: list[Option]
    notes: list[str]
    warnings: list[str] = field(default_factory=list)  # the runs' pricing warnings

    @property
    def meets(self) -> list[Option]:
        """Priced options that meet the floor, cheapest first (the ranking)."""
        return sorted((o for o in self.options if o.priced and self._ok(o)), key=_cost_order)

    def _ok(self, option: Option) -> bool:
        return option.measure(self.confidence) >= self.floor - 1e-12

    @property
    def savings_per_1k(self) -> float | None:
        if self.decision is None or self.runner_up is None:
            return None
        return (self.runner_up.usd_per_1k_items or 0.0) - (self.decision.usd_per_1k_items or 0.0)

    @property
    def savings_per_month(self) -> float | None:
        per_1k = self.savings_per_1k
        return None if per_1k is None else per_1k / 1000 * self.volume_per_day * DAYS_PER_MONTH

    @property
    def points_given_up(self) -> float | None:
        if self.decision is None or self.best is None:
            return None
        return (self.best.accuracy - self.decision.accuracy) * 100 + 0.0

    def as_dict(self) -> dict[str, Any]:
        v = self.volume_per_day

        def opt(o: Option | None) -> dict[str, Any] | None:
            return None if o is None else o.as_dict(v)

        return {
            "task": self.task, "kind": self.kind, "min_accuracy": self.floor,
            "confidence": self.confidence, "volume_per_day": v, "met": self.decision is not None,
            "decision": opt(self.decision), "runner_up": opt(self.runner_up),
            "savings_usd_per_1k_items": self.savings_per_1k,
            "savings_usd_per_month": self.savings_per_month,
            "most_accurate": opt(self.best),
            "gives_up": None if self.decision is None else {
                "accuracy_points": self.points_given_up,
                "classes_worse": [{"label": c.label, "support": c.support,
                                   "recall_most_accurate": c.recall_best,
                                   "recall": c.recall} for c in self.class_losses]},
            "closest": opt(self.closest),
            "ranking": [o.as_dict(v) for o in self.meets],
            "unpriced_meeting": [o.name for o in self.unpriced_meeting],
            "n_options": len(self.options),
            "notes": list(self.notes), "warnings": list(self.warnings),
        }


def _cost_order(o: Option) -> tuple:
    return (o.usd_per_1k_items if o.usd_per_1k_items is not None else float("inf"),
            -o.accuracy, o.is_cascade, o.name)


def _recall(ids: Sequence[str], gold: dict[str, Any], correct: dict[str, bool]
            ) -> tuple[dict[str, float], dict[str, int]]:
    support: dict[str, int] = {}
    hits: dict[str, int] = {}
    for i in ids:
        g = gold.get(i)
        if not isinstance(g, str):  # extraction gold is a mapping: no classes
            continue
        support[g] = support.get(g, 0) + 1
        hits[g] = hits.get(g, 0) + bool(correct[i])
    return {g: hits[g] / n for g, n in support.items()}, support


def _option(name: str, models: tuple[str, ...], strategy: str, threshold: float | None,
            ids: Sequence[str], gold: dict[str, Any], correct: dict[str, bool],
            row: dict[str, Any], seed: int) -> Option:
    from slmbench.scoring.bootstrap import count_bootstrap_ci

    n, k = len(ids), int(row["n_correct"])
    ci = count_bootstrap_ci(k, n, seed=seed) or [0.0, 0.0]
    recall, support = _recall(ids, gold, correct)
    priced = bool(row["priced"]) and row["usd_per_1k_items"] is not None
    return Option(name=name, models=models, threshold=threshold, strategy=strategy,
                  n_items=n, n_correct=k, accuracy=k / n if n else 0.0, ci_low=ci[0],
                  ci_high=ci[1], priced=priced,
                  usd_per_1k_items=row["usd_per_1k_items"] if priced else None,
                  usd_per_correct=row["usd_per_correct"] if priced else None,
                  escalated_share=row.get("escalated_share") if len(models) == 2 else None,
                  recall=recall, support=support)


def _rows(run: Any) -> list[dict[str, Any]]:
    """The run's rows, read once however many tasks and models ask for them."""
    cached = getattr(run, "_recommend_rows", None)
    if cached is None:
        cached = run.rows()
        run._recommend_rows = cached
    return cached


@dataclass
class _Candidate:
    run: Any
    model: str
    label: str
    seed: int


def _candidates(runs: Sequence[Any], task: str, notes: list[str]) -> list[_Candidate]:
    from slmbench.analysis.summary import row_failures

    out: list[_Candidate] = []
    seen: dict[str, int] = {}
    for run in runs:
        manifest = run.read_manifest()
        rows = _rows(run)
        failures = row_failures(manifest, rows)
        models = sorted({r["model"] for r in rows if r["task"] == task})
        for m in models:
            if (task, m) in failures:
                notes.append(f"left out {m} (run {run.run_id}): it could not run "
                             f"({failures[(task, m)]})")
                continue
            out.append(_Candidate(run, m, m, int(manifest.get("seed", 0))))
            seen[m] = seen.get(m, 0) + 1
    for c in out:  # a model in two runs is told apart by its run
        if seen[c.model] > 1:
            c.label = f"{c.model} ({c.run.run_id})"
    return out


def _tasks(runs: Sequence[Any]) -> list[str]:
    names: set[str] = set()
    for run in runs:
        names |= {r["task"] for r in _rows(run)}
    return sorted(names)


def options_for(runs: Sequence[Any], task: str, notes: list[str] | None = None,
                warnings: list[str] | None = None) -> tuple[str, list[Option]]:
    """(kind, every option of ``task``) from opened runs (module docstring); what the pairing
    left out goes to ``notes``, the runs' pricing warnings to ``warnings``."""
    from slmbench.analysis import cascade as ca
    from slmbench.scoring.escalation import escalates

    notes = notes if notes is not None else []
    warnings = warnings if warnings is not None else []
    cands = _candidates(runs, task, notes)
    sides: dict[int, Any] = {}
    for n, c in enumerate(cands):
        rows = [r for r in _rows(c.run) if r["task"] == task and r["model"] == c.model]
        sides[n] = ca._side("small", c.run, c.model, task, rows)
        warnings.extend(w for w in sides[n].warnings if w not in warnings)
    kind = next((s.kind for s in sides.values()), "?")
    options: list[Option] = []
    for n, c in enumerate(cands):
        side = sides[n]
        ids = sorted(side.rows)
        gold = {i: side.rows[i].get("gold") for i in ids}
        correct = {i: bool(side.rows[i].get("correct")) for i in ids}
        inp = ca.CascadeInput(task=task, kind=side.kind, small=side, large=side, ids=ids)
        row = ca.simulate(inp, [])[0]  # "small only": the model alone, costed as a cascade is
        options.append(_option(c.label, (c.label,), "model", None, ids, gold, correct, row,
                               c.seed))
    for a, small_c in enumerate(cands):
        for b, large_c in enumerate(cands):
            if a == b:
                continue
            small, large = sides[a], sides[b]
            if set(small.rows) != set(large.rows) or any(
                    small.rows[i].get("gold") != large.rows[i].get("gold") for i in small.rows):
                if a < b:
                    notes.append(f"no cascade of {small_c.label} and {large_c.label}: they "
                                 f"were not scored on the same items ({len(small.rows)} and "
                                 f"{len(large.rows)} items)")
                continue
            ids = sorted(small.rows)
            inp = ca.CascadeInput(task=task, kind=small.kind, small=small, large=large, ids=ids)
            thresholds = ca.sweep_thresholds(r.get("confidence") for r in small.rows.values())
            rows = ca.simulate(inp, thresholds)
            gold = {i: small.rows[i].get("gold") for i in ids}
            seen: set[tuple[int, int, float | None]] = set()
            for row in rows[2:]:
                n_esc = row["n_escalated"]
                if n_esc in (0, len(ids)):
                    continue
                # thresholds between two confidences escalate the same items: keep the lowest
                key = (n_esc, row["n_correct"], row["total_usd"])
                if key in seen:
                    continue
                seen.add(key)
                t = row["threshold"]
                # the items simulate() escalated for this row, for the per-class recall
                up = {i: escalates(small.rows[i], t) for i in ids}
                correct = {i: bool((large if up[i] else small).rows[i].get("correct"))
                           for i in ids}
                where = "invalid only" if t is None else f"@ {t:g}"
                name = f"cascade({small_c.label} → {large_c.label} {where})"
                options.append(_option(name, (small_c.label, large_c.label), row["strategy"],
                                       t, ids, gold, correct, row, small_c.seed))
    return kind, options


def recommend(runs: Iterable[Any], floor: float, *, task: str | None = None,
              confidence: str = "lower-bound", volume_per_day: float | None = None
              ) -> list[Recommendation]:
    """One recommendation per task of ``runs`` (run folders or RunDirs), or for ``task``."""
    from slmbench.store import RunDir, open_run

    check_confidence_mode(confidence)
    opened = [r if isinstance(r, RunDir) else open_run(r) for r in runs]
    if not opened:
        raise InputError("no run given")
    names = _tasks(opened)
    if task is not None:
        if task not in names:
            raise InputError(f"no such task in the runs (known: {', '.join(names) or 'none'})",
                             field="--task", value=task)
        names = [task]
    if not names:
        raise InputError("the runs hold no result rows", file=opened[0].path)
    if volume_per_day is None:
        volume_per_day = next((float(v) for r in opened if (v := (r.read_manifest().get(
            "options") or {}).get("volume_per_day"))), DEFAULT_VOLUME_PER_DAY)
    out = []
    for t in names:
        notes: list[str] = []
        warnings: list[str] = []
        kind, options = options_for(opened, t, notes, warnings)
        rec = decide(t, kind, options, floor, confidence, volume_per_day, notes)
        rec.warnings = warnings
        out.append(rec)
    return out


def decide(task: str, kind: str, options: list[Option], floor: float, confidence: str,
           volume_per_day: float, notes: list[str] | None = None) -> Recommendation:
    """Pick the decision, runner-up and what it gives up from ``options`` (module docstring)."""
    notes = notes or []
    ok = [o for o in options if o.measure(confidence) >= floor - 1e-12]
    priced_ok = sorted((o for o in ok if o.priced), key=_cost_order)
    decision = priced_ok[0] if priced_ok else None
    runner_up = next((o for o in priced_ok[1:] if decision and o.family != decision.family),
                     None)
    best = max(options, key=lambda o: (o.accuracy, -(o.usd_per_1k_items or 0.0), not
                                       o.is_cascade), default=None)
    closest = None
    if decision is None and options:
        closest = max(options, key=lambda o: (o.measure(confidence), o.accuracy,
                                              -(o.usd_per_1k_items or 0.0)))
    losses: list[ClassLoss] = []
    if decision is not None and best is not None and best is not decision:
        for label, r_best in best.recall.items():
            mine = decision.recall.get(label)
            if mine is not None and mine < r_best - 1e-12:
                losses.append(ClassLoss(label, best.support.get(label, 0), r_best, mine))
        losses.sort(key=lambda c: (c.recall - c.recall_best, -c.support, c.label))
    return Recommendation(task=task, kind=kind, floor=floor, confidence=confidence,
                          volume_per_day=volume_per_day, options=options, decision=decision,
                          runner_up=runner_up, best=best, closest=closest, class_losses=losses,
                          unpriced_meeting=[o for o in ok if not o.priced], notes=notes)


def frontier(options: Sequence[Option], confidence: str = "lower-bound") -> list[Option]:
    """The options no other priced option beats on both cost and accuracy (by ``confidence``),
    cheapest first: the cheapest option for every floor, which is what the report's ranking
    shows without a floor given."""
    priced = sorted((o for o in options if o.priced), key=_cost_order)
    out: list[Option] = []
    best = -1.0
    for o in priced:
        if o.measure(confidence) > best + 1e-12:
            out.append(o)
            best = o.measure(confidence)
    return out

