"""A CI gate: compare a run with a baseline run, task × model by task × model.

Checks per shared pair:

* **accuracy**: the drop in accuracy on the items both runs scored, in percentage points. It is
  a regression only when it exceeds ``max_accuracy_drop_pp`` *and* McNemar's paired test on
  those items is significant at ``alpha`` — a drop that could be noise does not fail a build.
  McNemar uses the discordant pairs (b = right in the baseline and wrong now, c = the reverse):
  exact two-sided binomial test (p = min(1, 2·Σ_{k≤min(b,c)} C(b+c,k)/2^(b+c))) when b+c < 25,
  otherwise the chi-square statistic with continuity correction, (max(|b−c|−1, 0))²/(b+c),
  on 1 degree of freedom (p = erfc(√(χ²/2))).
* **min-accuracy** (optional): current accuracy over all its items ≥ the floor.
* **cost**: relative increase of $ per 1k items ≤ ``max_cost_increase`` (skipped, with a note,
  when either side is unpriced). A local model priced by the hour on the same rate in both
  runs has a cost made of measured time, which the neighbours on a shared machine move: its
  increase fails only when the per-item time it is priced on (``cpu_s`` on the busy basis,
  else ``latency_s``) also rose beyond the limit at the median *and* a one-sided Mann–Whitney
  U test on those per-item times says the current run is slower at ``alpha`` (normal
  approximation with tie correction and continuity correction). A rise either test leaves
  within noise passes, with its figures.
* **failed**: a pair of both runs whose model could not run in the current run (its summary
  entry's ``failed`` reason) fails the gate on this one check, which names it, instead of an
  accuracy comparison with its 0 %; so it does when it could not run in the baseline either,
  since a gate that passes would vouch for a model that answers nothing. A pair that failed
  only in the baseline is skipped: there is nothing to regress from.

Items scored in only one of the two runs are reported (count and a few ids), never joined.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slmbench.errors import InputError

EXACT_BELOW = 25
SHOW_IDS = 3


# ---------------------------------------------------------------------------------------------
# statistics


def mcnemar_exact_p(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value: binomial test of b successes in b+c at p=1/2."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, k) for k in range(min(b, c) + 1))
    return min(1.0, 2 * tail / 2**n)


def mcnemar_chi2(b: int, c: int) -> tuple[float, float]:
    """(statistic, p) of McNemar's chi-square test with continuity correction, 1 df."""
    n = b + c
    if n == 0:
        return 0.0, 1.0
    stat = max(abs(b - c) - 1, 0) ** 2 / n
    return stat, math.erfc(math.sqrt(stat / 2))


def mcnemar(b: int, c: int) -> tuple[str, float]:
    """(method, two-sided p): exact when b+c < 25, else chi-square with continuity correction."""
    if b + c < EXACT_BELOW:
        return "exact", mcnemar_exact_p(b, c)
    return "chi2", mcnemar_chi2(b, c)[1]


# ---------------------------------------------------------------------------------------------
# thresholds


def parse_percent(text: str | float, field_: str) -> float:
    """'10%', '10' or 10 → 0.10 (a fraction); anything else is an InputError."""
    raw = str(text).strip()
    m = re.fullmatch(r"\+?(\d+(?:\.\d*)?|\.\d+)\s*%?", raw)
    if not m:
        raise InputError("expected a percentage such as 10%", field=field_, value=text)
    return float(m.group(1)) / 100


def parse_pp(text: str | float, field_: str) -> float:
    """'1.0', '1pp' → 1.0 percentage points."""
    raw = str(text).strip().lower()
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(pp)?", raw)
    if not m:
        raise InputError("expected percentage points such as 1.0", field=field_, value=text)
    return float(m.group(1))


def parse_fraction(text: str | float, field_: str) -> float:
    """'0.85' or '85%' → 0.85, within [0, 1]."""
    raw = str(text).strip()
    m = re.fullmatch(r"(\d+(?:\.\d*)?|\.\d+)\s*(%?)", raw)
    if not m:
        raise InputError("expected an accuracy such as 0.85 or 85%", field=field_, value=text)
    value = float(m.group(1)) / (100 if m.group(2) else 1)
    if not 0 <= value <= 1:
        raise InputError("must be between 0 and 1 (or 0% and 100%)", field=field_, value=text)
    return value


def parse_alpha(text: str | float) -> float:
    try:
        value = float(str(text).strip())
    except ValueError:
        raise InputError("expected a significance level such as 0.05", field="--alpha",
                         value=text) from None
    if not 0 < value < 1:
        raise InputError("must be between 0 and 1", field="--alpha", value=text)
    return value


@dataclass(frozen=True)
class Thresholds:
    max_accuracy_drop_pp: float = 1.0
    max_cost_increase: float = 0.10  # a fraction: 0.10 = +10 %
    min_accuracy: float | None = None
    alpha: float = 0.05

    @classmethod
    def parse(cls, max_accuracy_drop: str | float = "1.0", max_cost_increase: str | float = "10%",
              min_accuracy: str | float | None = None, alpha: str | float = "0.05"
              ) -> Thresholds:
        return cls(parse_pp(max_accuracy_drop, "--max-accuracy-drop"),
                   parse_percent(max_cost_increase, "--max-cost-increase"),
                   None if min_accuracy is None else parse_fraction(min_accuracy,
                                                                    "--min-accuracy"),
                   parse_alpha(alpha))


# ---------------------------------------------------------------------------------------------
# checks


@dataclass
class Check:
    name: str           # accuracy | min-accuracy | cost | failed
    task: str
    model: str
    status: str         # pass | fail | skip
    message: str
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "fail"


@dataclass
class GateResult:
    current: str
    baseline: str
    thresholds: Thresholds
    checks: list[Check]
    notes: list[str]

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    @property
    def passed(self) -> bool:
        return not self.failures


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{x:.1%}"


def _usd(x: float) -> str:
    return f"${x:.4g}"


def _ids(ids: Sequence[str]) -> str:
    shown = ", ".join(ids[:SHOW_IDS])
    return shown + (", …" if len(ids) > SHOW_IDS else "")


def _accuracy_check(task: str, model: str, cur_rows: dict[str, dict], base_rows: dict[str, dict],
                    th: Thresholds, notes: list[str]) -> Check:
    shared = sorted(set(cur_rows) & set(base_rows))
    only_cur = sorted(set(cur_rows) - set(base_rows))
    only_base = sorted(set(base_rows) - set(cur_rows))
    if only_cur or only_base:
        notes.append(f"{task} × {model}: items not in both runs are left out of the paired "
                     f"comparison: {len(only_cur)} only in current"
                     + (f" ({_ids(only_cur)})" if only_cur else "")
                     + f", {len(only_base)} only in baseline"
                     + (f" ({_ids(only_base)})" if only_base else ""))
    if not shared:
        raise InputError(f"{task} × {model}: the two runs share no item, so they cannot be "
                         "compared", field="--baseline")
    b = sum(bool(base_rows[i].get("correct")) and not cur_rows[i].get("correct") for i in shared)
    c = sum(not base_rows[i].get("correct") and bool(cur_rows[i].get("correct")) for i in shared)
    n = len(shared)
    acc_base = sum(bool(base_rows[i].get("correct")) for i in shared) / n
    acc_cur = sum(bool(cur_rows[i].get("correct")) for i in shared) / n
    drop_pp = round((b - c) / n * 100, 9)  # = (acc_base - acc_cur) in points, exactly
    method, p = mcnemar(b, c)
    too_big = drop_pp > th.max_accuracy_drop_pp
    significant = p < th.alpha
    figures = {"baseline_accuracy": acc_base, "current_accuracy": acc_cur, "drop_pp": drop_pp,
               "limit_pp": th.max_accuracy_drop_pp, "shared_items": n, "b": b, "c": c,
               "test": f"mcnemar-{method}", "p_value": p, "alpha": th.alpha,
               "only_in_current": len(only_cur), "only_in_baseline": len(only_base)}
    head = (f"{_pct(acc_base)} → {_pct(acc_cur)} on {n} shared items, drop {drop_pp:+.1f} pp "
            f"(limit {th.max_accuracy_drop_pp:g} pp); McNemar {method} b={b} c={c} "
            f"p={p:.3g} (alpha {th.alpha:g})")
    if too_big and significant:
        return Check("accuracy", task, model, "fail",
                     head + " — drop exceeds the limit and is significant", figures)
    why = ("within the limit" if not too_big else "exceeds the limit but is not significant "
           "(could be noise)")
    return Check("accuracy", task, model, "pass", f"{head} — {why}", figures)


def mann_whitney_greater(x: Sequence[float], y: Sequence[float]) -> tuple[float, float]:
    """(U of ``x``, one-sided p that ``x`` tends to be larger than ``y``): normal approximation
    with tie and continuity corrections; p = 1 when either sample is empty or all are tied."""
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        return 0.0, 1.0
    values = sorted([(v, 0) for v in x] + [(v, 1) for v in y])
    n = n1 + n2
    rank_x = 0.0
    ties = 0.0
    i = 0
    while i < n:
        j = i
        while j + 1 < n and values[j + 1][0] == values[i][0]:
            j += 1
        rank = (i + j) / 2 + 1  # mean rank of the tie group
        rank_x += rank * sum(1 for k in range(i, j + 1) if values[k][1] == 0)
        t = j - i + 1
        ties += t**3 - t
        i = j + 1
    u = rank_x - n1 * (n1 + 1) / 2
    var = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1))) if n > 1 else 0.0
    if var <= 0:
        return u, 1.0
    z = (u - n1 * n2 / 2 - 0.5) / math.sqrt(var)
    return u, 0.5 * math.erfc(z / math.sqrt(2))


def _median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _time_noise(cur: dict[str, Any], base: dict[str, Any], cur_rows: dict[str, dict],
                base_rows: dict[str, dict], th: Thresholds) -> dict[str, Any] | None:
    """The per-item time comparison of a pair priced by the hour on the same rate in both
    runs (``None`` otherwise: then its $ moved for another reason than timing)."""
    cp, bp = cur.get("pricing") or {}, base.get("pricing") or {}
    if cp.get("basis") != "hourly" or bp.get("basis") != "hourly" \
            or cp.get("usd_per_hour") != bp.get("usd_per_hour") \
            or cp.get("vcpus") != bp.get("vcpus"):
        return None
    key = "cpu_s" if cp.get("time_basis") == bp.get("time_basis") == "busy" else "latency_s"

    def times(rows: dict[str, dict]) -> list[float]:
        return [float(r[key]) for r in rows.values()
                if r.get(key) is not None and not r.get("cached") and not r.get("error")]

    now, then = times(cur_rows), times(base_rows)
    if not now or not then:
        return None
    m_now, m_then = _median(now), _median(then)
    rise = (m_now - m_then) / m_then if m_then > 0 else (0.0 if m_now == 0 else math.inf)
    _, p = mann_whitney_greater(now, then)
    return {"time_field": key, "baseline_median_s": m_then, "current_median_s": m_now,
            "median_increase": rise, "test": "mann-whitney-greater", "p_value": p,
            "alpha": th.alpha, "n_current": len(now), "n_baseline": len(then),
            "slower": rise > th.max_cost_increase + 1e-12 and p < th.alpha}


def _cost_check(task: str, model: str, cur: dict[str, Any], base: dict[str, Any],
                th: Thresholds, cur_rows: dict[str, dict] | None = None,
                base_rows: dict[str, dict] | None = None) -> Check:
    def priced(e: dict[str, Any]) -> bool:
        return bool(e.get("priced", True)) and e.get("usd_per_1k_items") is not None

    if not priced(cur) or not priced(base):
        side = " and ".join(s for s, e in (("current", cur), ("baseline", base))
                            if not priced(e))
        return Check("cost", task, model, "skip",
                     f"not compared: {side} unpriced", {"limit": th.max_cost_increase})
    c, b = float(cur["usd_per_1k_items"]), float(base["usd_per_1k_items"])
    increase = (c - b) / b if b > 0 else (0.0 if c == 0 else math.inf)
    figures = {"baseline_usd_per_1k_items": b, "current_usd_per_1k_items": c,
               "increase": increase, "limit": th.max_cost_increase}
    rel = "+∞" if math.isinf(increase) else f"{increase:+.1%}"
    text = (f"{_usd(b)} → {_usd(c)} per 1k items ({rel}, limit "
            f"+{th.max_cost_increase:.1%})")
    noise = (_time_noise(cur, base, cur_rows or {}, base_rows or {}, th)
             if increase > th.max_cost_increase + 1e-12 else None)
    if noise is not None:
        figures.update(noise)
        what = "busy (CPU) time" if noise["time_field"] == "cpu_s" else "latency"
        rise = ("+∞" if math.isinf(noise["median_increase"])
                else f"{noise['median_increase']:+.1%}")
        text += (f"; median per-item {what} {noise['baseline_median_s']:.3g} s → "
                 f"{noise['current_median_s']:.3g} s ({rise}), Mann–Whitney one-sided "
                 f"p={noise['p_value']:.3g} (alpha {th.alpha:g})")
        if not noise["slower"]:
            return Check("cost", task, model, "pass",
                         text + " — the per-item time did not rise significantly beyond the "
                         "limit: measurement noise", figures)
    if increase > th.max_cost_increase + 1e-12:
        return Check("cost", task, model, "fail", text + " — cost rose beyond the limit",
                     figures)
    return Check("cost", task, model, "pass", text, figures)


def _min_accuracy_check(task: str, model: str, cur: dict[str, Any], th: Thresholds) -> Check:
    acc = cur.get("accuracy")
    ci = cur.get("accuracy_ci") or [None, None]
    figures = {"current_accuracy": acc, "min_accuracy": th.min_accuracy,
               "n_items": cur.get("n_items"), "ci_low": ci[0], "ci_high": ci[1]}
    text = (f"{_pct(acc)} (95% CI {_pct(ci[0])}–{_pct(ci[1])}) on {cur.get('n_items')} items, "
            f"floor {_pct(th.min_accuracy)}")
    if acc is None or acc < (th.min_accuracy or 0.0):
        return Check("min-accuracy", task, model, "fail", text + " — below the floor", figures)
    return Check("min-accuracy", task, model, "pass", text, figures)


def _failed_check(task: str, model: str, cur: dict[str, Any], base: dict[str, Any]
                  ) -> Check | None:
    """The check of a pair whose model could not run on either side; ``None`` when it ran on
    both."""
    if cur.get("failed"):
        then = ("it could not run in the baseline either" if base.get("failed") else
                f"the baseline scored {_pct(base.get('accuracy'))} on {base.get('n_items')} "
                "items")
        return Check("failed", task, model, "fail",
                     f"the model could not run in the current run ({cur['failed']}); {then}",
                     {"reason": cur["failed"], "baseline_failed": base.get("failed"),
                      "baseline_accuracy": None if base.get("failed") else base.get("accuracy")})
    if base.get("failed"):
        return Check("failed", task, model, "skip",
                     f"not compared: the model could not run in the baseline run "
                     f"({base['failed']})", {"reason": base["failed"]})
    return None


def _by_item(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, dict]]:
    out: dict[tuple[str, str], dict[str, dict]] = {}
    for r in rows:
        out.setdefault((r["task"], r["model"]), {})[str(r["item_id"])] = r
    return out


def parse_pairs(texts: Sequence[str]) -> list[tuple[str, str]]:
    """``NEW=BASE`` → (new model id, baseline model id); model ids hold no '='."""
    out = []
    for text in texts:
        new, sep, base = str(text).partition("=")
        if not sep or not new.strip() or not base.strip() or "=" in base:
            raise InputError("expected NEW=BASE, two model ids", field="--pair", value=text)
        out.append((new.strip(), base.strip()))
    return out


def _paired(pairs: Sequence[tuple[str, str]], cur: dict[tuple[str, str], Any],
            base: dict[tuple[str, str], Any], cur_path: Path, base_path: Path
            ) -> tuple[dict[tuple[str, str], Any], dict[tuple[str, str], Any]]:
    """``--pair NEW=BASE``: current's NEW and baseline's BASE under one name, ``NEW vs BASE``,
    so that every check compares two model ids on the same items; other pairs are left out."""
    for (new, old), (entries, model, path) in ((p, s) for p in pairs for s in (
            (cur, p[0], cur_path), (base, p[1], base_path))):
        known = sorted({m for _, m in entries})
        if model not in known:
            raise InputError(f"no such model in the run (models: {', '.join(known)})",
                             file=path, field="--pair", value=f"{new}={old}")
    names = {p: p[0] if p[0] == p[1] else f"{p[0]} vs {p[1]}" for p in pairs}
    return ({(t, names[p]): v for (t, m), v in cur.items() for p in pairs if m == p[0]},
            {(t, names[p]): v for (t, m), v in base.items() for p in pairs if m == p[1]})


def gate_runs(current: str | Path, baseline: str | Path, thresholds: Thresholds | None = None,
              pairs: Sequence[tuple[str, str]] = ()) -> GateResult:
    """Compare the stored run ``current`` with ``baseline``; nothing calls a model.
    ``pairs``: (current model, baseline model) to compare instead of equal model ids."""
    from slmbench.analysis.summary import build_summary
    from slmbench.store import open_run

    th = thresholds or Thresholds()
    cur_run, base_run = open_run(current), open_run(baseline)
    cur_sum, base_sum = build_summary(cur_run), build_summary(base_run)
    cur_entries = {(e["task"], e["model"]): e for e in cur_sum["results"]}
    base_entries = {(e["task"], e["model"]): e for e in base_sum["results"]}
    if pairs:
        cur_entries, base_entries = _paired(pairs, cur_entries, base_entries, cur_run.path,
                                            base_run.path)
    shared = sorted(set(cur_entries) & set(base_entries))
    if not shared:
        def names(keys: Any) -> str:
            return ", ".join(f"{t} × {m}" for t, m in sorted(keys)) or "nothing"

        raise InputError(f"no task × model pair in common with the current run (current: "
                         f"{names(cur_entries)}; baseline: {names(base_entries)})",
                         file=base_run.path, field="--baseline")
    notes: list[str] = []
    for side, keys in (("current", set(cur_entries) - set(base_entries)),
                       ("baseline", set(base_entries) - set(cur_entries))):
        entries = cur_entries if side == "current" else base_entries
        for t, m in sorted(keys):
            reason = entries[(t, m)].get("failed")
            notes.append(f"{t} × {m}: only in the {side} run, not compared"
                         + (f" (it failed: {reason})" if reason else ""))
    cur_tasks = cur_run.read_manifest().get("tasks", {})
    base_tasks = base_run.read_manifest().get("tasks", {})
    for t in sorted({t for t, _ in shared}):
        for key, what in (("dataset_fingerprint", "dataset"), ("spec_hash", "task spec")):
            a, b = cur_tasks.get(t, {}).get(key), base_tasks.get(t, {}).get(key)
            if a and b and a != b:
                notes.append(f"{t}: the {what} differs between the runs ({key} {b[:12]} → "
                             f"{a[:12]})")
    cur_rows, base_rows = _by_item(cur_run.rows()), _by_item(base_run.rows())
    if pairs:
        cur_rows, base_rows = _paired(pairs, cur_rows, base_rows, cur_run.path, base_run.path)
    checks: list[Check] = []
    for task, model in shared:
        failed = _failed_check(task, model, cur_entries[(task, model)],
                               base_entries[(task, model)])
        if failed is not None:
            checks.append(failed)
            continue
        checks.append(_accuracy_check(task, model, cur_rows.get((task, model), {}),
                                      base_rows.get((task, model), {}), th, notes))
        if th.min_accuracy is not None:
            checks.append(_min_accuracy_check(task, model, cur_entries[(task, model)], th))
        checks.append(_cost_check(task, model, cur_entries[(task, model)],
                                  base_entries[(task, model)], th,
                                  cur_rows.get((task, model), {}),
                                  base_rows.get((task, model), {})))
    return GateResult(str(cur_run.path), str(base_run.path), th, checks, notes)
