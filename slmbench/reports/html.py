"""``report --format html``: one self-contained page a CI artifact can be opened as.

Reviewers open a report from a CI artifact, often with no server and no network, so the page
holds everything it shows: plain HTML, a style sheet and a little JavaScript inline (column
sorting, the plot's hover box), the Pareto plot drawn as inline SVG from the same leaderboard
rows as every other report, and no external reference of any kind (no CDN, font or image URL).
Without JavaScript the page still reads: the tables are in the leaderboard's order and every
point of the plot carries an SVG ``<title>`` that browsers show on hover.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from slmbench.markdown import FRONTIER_MARK, cell, fmt, format_usd
from slmbench.reports.leaderboard import (
    COLUMNS,
    failure_lines,
    leaderboard_entries,
    resolve_sort,
)

LABEL_CHAR_PX = 6.3  # width of a label character at 11px (labels are placed by estimate)
NUMERIC = {"n_items", "accuracy", "accuracy_ci", "macro_f1", "invalid_rate", "truncated",
           "n_errors", "latency_p50_s", "latency_p95_s", "items_per_s", "usd_per_1k_items",
           "usd_per_correct", "correct_per_usd", "pareto"}

STYLE = """
body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0;color:#1b1f24;
background:#fff}
main{max-width:1500px;margin:0 auto;padding:16px 24px 40px}
h1{font-size:22px;margin:8px 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid
#d0d7de;padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
.sub{color:#57606a;margin:0 0 12px}
table{border-collapse:collapse;margin:6px 0 12px;font-variant-numeric:tabular-nums}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right;white-space:nowrap}
th{background:#f6f8fa;font-weight:600}td.l,th.l{text-align:left}
.wrap{overflow-x:auto;max-width:100%}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[data-dir=asc]::after{content:' \\25B2';font-size:10px}
table.sortable th[data-dir=desc]::after{content:' \\25BC';font-size:10px}
#leaderboard{font-size:12.5px}
tr.front td:first-child,tr.front td.model{font-weight:600}
.decision{background:#eef6ee;border:1px solid #8fbf8f;border-radius:6px;padding:10px 14px;
margin:8px 0}.decision p{margin:4px 0}.none{background:#fff4e5;border-color:#e0a050}
.warn{color:#9a6700}.fail{color:#cf222e}
svg{background:#fff;border:1px solid #d0d7de;border-radius:6px;max-width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#1b1f24}svg .axis{stroke:#57606a}
svg .grid{stroke:#eaeef2}svg .pt{cursor:pointer}svg .pt:hover .mk{stroke:#000;stroke-width:2}
#tip{position:fixed;display:none;pointer-events:none;background:#1b1f24;color:#fff;
padding:6px 9px;border-radius:4px;font-size:12px;white-space:pre;z-index:9}
details{margin:4px 0 10px}summary{cursor:pointer;font-weight:600}
footer{margin-top:32px;color:#57606a;font-size:12px;border-top:1px solid #d0d7de}
footer code{font-size:11px}
"""

SCRIPT = """
(function(){
function key(td){var v=td.getAttribute('data-v');if(v===null)v=td.textContent;
 if(v===''||v==='-'||v==='\\u2013')return null;var n=Number(v);return isNaN(n)?v.toLowerCase():n;}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('thead th').forEach(function(th,i){th.addEventListener('click',function(){
  var asc=th.getAttribute('data-dir')!=='asc';
  t.querySelectorAll('thead th').forEach(function(o){o.removeAttribute('data-dir');});
  th.setAttribute('data-dir',asc?'asc':'desc');
  var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows);
  rows.sort(function(a,b){var x=key(a.cells[i]),y=key(b.cells[i]);
   if(x===null&&y===null)return 0;if(x===null)return 1;if(y===null)return -1;
   var c=(typeof x==='number'&&typeof y==='number')?x-y:String(x).localeCompare(String(y));
   return asc?c:-c;});
  rows.forEach(function(r){body.appendChild(r);});});});});
var tip=document.getElementById('tip');
document.querySelectorAll('svg .pt').forEach(function(p){
 p.addEventListener('mousemove',function(e){tip.textContent=p.getAttribute('data-tip');
  tip.style.display='block';tip.style.left=(e.clientX+14)+'px';tip.style.top=(e.clientY+10)+'px';});
 p.addEventListener('mouseleave',function(){tip.style.display='none';});});
document.body.setAttribute('data-ready','1');
})();
"""


def _e(text: Any) -> str:
    return html.escape("" if text is None else str(text), quote=True)


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (int, float)) and math.isfinite(value):
        return repr(float(value))
    return ""


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], *, left: int = 1,
           sortable: bool = False, values: Sequence[Sequence[Any]] | None = None,
           row_class: Sequence[str] | None = None, table_id: str | None = None) -> str:
    """A table; ``values`` gives the raw figure each cell sorts by (``data-v``)."""
    cls = (' class="sortable"' if sortable else "") + (f' id="{table_id}"' if table_id else "")
    out = [f'<div class="wrap"><table{cls}><thead><tr>']
    out += [f'<th class="{"l" if i < left else ""}">{_e(h)}</th>' for i, h in enumerate(head)]
    out.append("</tr></thead><tbody>")
    for n, row in enumerate(rows):
        rc = f' class="{row_class[n]}"' if row_class and row_class[n] else ""
        out.append(f"<tr{rc}>")
        for i, c in enumerate(row):
            v = values[n][i] if values is not None else None
            dv = f' data-v="{_e(v)}"' if v is not None else ""
            out.append(f'<td class="{"l" if i < left else ""}"{dv}>{_e(c)}</td>')
        out.append("</tr>")
    out.append("</tbody></table></div>")
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# plot


def _marker(shape: str, x: float, y: float, color: str, r: float = 5.5) -> str:
    if shape == "circle":
        return f'<circle class="mk" cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}"/>'
    if shape == "square":
        return (f'<rect class="mk" x="{x - r:.1f}" y="{y - r:.1f}" width="{2 * r}" '
                f'height="{2 * r}" fill="{color}"/>')
    pts = {"diamond": [(0, -1.3), (1.1, 0), (0, 1.3), (-1.1, 0)],
           "triangle": [(0, -1.3), (1.2, 0.9), (-1.2, 0.9)],
           "triangle-down": [(0, 1.3), (1.2, -0.9), (-1.2, -0.9)],
           "cross": [(-.4, -1.2), (.4, -1.2), (.4, -.4), (1.2, -.4), (1.2, .4), (.4, .4),
                     (.4, 1.2), (-.4, 1.2), (-.4, .4), (-1.2, .4), (-1.2, -.4), (-.4, -.4)]
           }[shape]
    d = " ".join(f"{x + a * r:.1f},{y + b * r:.1f}" for a, b in pts)
    return f'<polygon class="mk" points="{d}" fill="{color}"/>'


def svg_plot(task: str, rows: list[dict[str, Any]], styles: dict[str, tuple[str, str]],
             multi: bool) -> str:
    """The task's accuracy (with 95% CI) against log $ per 1k items, frontier as a step line
    that ends at its last model; models that cannot be placed are listed under it."""
    from slmbench.reports.plot import log_cost_limits, y_limits

    placed = [r for r in rows if r["priced"] and not r["failed"] and r["accuracy"] is not None
              and (r["usd_per_1k_items"] or 0) > 0]
    left_out = [r for r in rows if r not in placed]
    if not placed:
        return ('<p class="warn">No model of this task can be placed on a cost axis: '
                + _e("; ".join(_name(r, multi) for r in left_out)) + ".</p>")
    W, H, L, R, T, B = 760, 380, 64, 20, 16, 46
    pw, ph = W - L - R, H - T - B
    lo_x, hi_x = log_cost_limits([r["usd_per_1k_items"] for r in placed])
    lows = [100 * (r["accuracy_ci_low"] if r["accuracy_ci_low"] is not None else r["accuracy"])
            for r in placed]
    highs = [100 * (r["accuracy_ci_high"] if r["accuracy_ci_high"] is not None
                    else r["accuracy"]) for r in placed]
    lo_y, hi_y = y_limits(lows, highs)

    def sx(v: float) -> float:
        return L + pw * (math.log10(v) - math.log10(lo_x)) / (math.log10(hi_x) - math.log10(lo_x))

    def sy(v: float) -> float:
        return T + ph * (1 - (v - lo_y) / (hi_y - lo_y))

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
           f'height="{H}" role="img" aria-label="accuracy against cost, {_e(task)}">']
    # grid and ticks: decades (and 2, 5 within them when few decades) on x, round steps on y
    decades = range(math.floor(math.log10(lo_x)), math.ceil(math.log10(hi_x)) + 1)
    subs = (1, 2, 5) if len(decades) <= 4 else (1,)
    for d in decades:
        for s in subs:
            v = s * 10 ** d
            if lo_x <= v <= hi_x:
                x = sx(v)
                out.append(f'<line class="grid" x1="{x:.1f}" y1="{T}" x2="{x:.1f}" '
                           f'y2="{T + ph}"/><text x="{x:.1f}" y="{T + ph + 15}" '
                           f'text-anchor="middle">{_e(format_usd(v))}</text>')
    step = next(s for s in (1, 2, 5, 10, 20, 25) if (hi_y - lo_y) / s <= 8)
    v = math.ceil(lo_y / step) * step
    while v <= hi_y + 1e-9:
        y = sy(v)
        out.append(f'<line class="grid" x1="{L}" y1="{y:.1f}" x2="{L + pw}" y2="{y:.1f}"/>'
                   f'<text x="{L - 6}" y="{y + 4:.1f}" text-anchor="end">{v:g}%</text>')
        v += step
    out.append(f'<rect class="axis" x="{L}" y="{T}" width="{pw}" height="{ph}" fill="none"/>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 8}" text-anchor="middle">$ per 1k items (log '
               'scale)</text><text transform="rotate(-90)" x="' + f"{-(T + ph / 2):.1f}"
               + '" y="16" text-anchor="middle">accuracy (%) with 95% CI</text>')
    front = sorted((r for r in placed if r["pareto"]), key=lambda r: r["usd_per_1k_items"])
    if front:
        pts = []
        for i, r in enumerate(front):
            x, y = sx(r["usd_per_1k_items"]), sy(100 * r["accuracy"])
            if i:
                pts.append(f"{x:.1f},{sy(100 * front[i - 1]['accuracy']):.1f}")
            pts.append(f"{x:.1f},{y:.1f}")
        out.append(f'<polyline points="{" ".join(pts)}" fill="none" stroke="#0072b2" '
                   'stroke-width="1.5" stroke-opacity="0.55"/>')
    texts: list[tuple[float, float, bool, str, str]] = []
    for r, lo, hi in zip(placed, lows, highs, strict=True):
        color, shape = styles[r["model"]]
        x, y = sx(r["usd_per_1k_items"]), sy(100 * r["accuracy"])
        tip = (f"{_name(r, multi)}\naccuracy {fmt('accuracy', r['accuracy'])} (95% CI "
               f"{fmt('accuracy', r['accuracy_ci_low'])}–{fmt('accuracy', r['accuracy_ci_high'])})"
               f"\n$/1k items {format_usd(r['usd_per_1k_items'])}\n$/correct "
               f"{format_usd(r['usd_per_correct'])}"
               + (f"\n{FRONTIER_MARK} Pareto frontier" if r["pareto"] else ""))
        out.append(f'<g class="pt" data-tip="{_e(tip)}"><title>{_e(tip)}</title>'
                   f'<line x1="{x:.1f}" y1="{sy(lo):.1f}" x2="{x:.1f}" y2="{sy(hi):.1f}" '
                   f'stroke="{color}" stroke-width="1.5"/>'
                   f'<line x1="{x - 4:.1f}" y1="{sy(lo):.1f}" x2="{x + 4:.1f}" y2="{sy(lo):.1f}" '
                   f'stroke="{color}"/><line x1="{x - 4:.1f}" y1="{sy(hi):.1f}" '
                   f'x2="{x + 4:.1f}" y2="{sy(hi):.1f}" stroke="{color}"/>'
                   + _marker(shape, x, y, color) + "</g>")
        texts.append((x, y, x > L + pw * 0.62, color, _name(r, multi)))
    # labels go right of their point (left near the right edge), centred on it, then move
    # down until they overlap no other label and no marker (text width estimated per char)
    boxes: list[tuple[float, float, float, float]] = []
    marks = [(x, y) for x, y, *_ in texts]
    for x, y, right, color, name in sorted(texts, key=lambda t: t[1]):
        width = LABEL_CHAR_PX * len(name)
        x0 = x - 9 - width if right else x + 9
        top = y - 7
        for _ in range(40):
            box = (x0, top, x0 + width, top + 13)
            if not any(_overlap(box, b) for b in boxes) and not any(
                    _overlap(box, (mx - 7, my - 7, mx + 7, my + 7)) for mx, my in marks):
                break
            top += 6
        boxes.append(box)
        out.append(f'<text class="lbl" x="{x0:.1f}" y="{top + 10:.1f}" fill="{color}">'
                   f'{_e(name)}</text>')
    out.append("</svg>")
    if left_out:
        def why(r: dict[str, Any]) -> str:
            return "failed" if r["failed"] else "unpriced" if not r["priced"] else "free ($0)"

        out.append('<p class="warn">Not on the cost axis: ' + _e("; ".join(
            f"{_name(r, multi)} ({why(r)})" for r in left_out)) + ".</p>")
    return "".join(out)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]
             ) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _name(row: dict[str, Any], multi: bool) -> str:
    return f"{row['model']} ({row['run_id']})" if multi else str(row["model"])


# ---------------------------------------------------------------------------------------------
# sections


def _leaderboard(rows: list[dict[str, Any]], multi: bool) -> str:
    cols = [("run", "run_id"), *COLUMNS] if multi else list(COLUMNS)
    texts, values = [], []
    for r in rows:
        texts.append([cell(k, r) for _, k in cols])
        vals = []
        for _, k in cols:
            if k == "accuracy_ci":
                vals.append(_num(r["accuracy_ci_low"]))
            elif k in NUMERIC:
                vals.append(_num(r.get(k)) if not (r["failed"] and k in (
                    "accuracy", "usd_per_1k_items", "usd_per_correct", "correct_per_usd"))
                            else "")
            else:
                vals.append(str(r.get(k) or ""))
        values.append(vals)
    left = 3 if multi else 2
    return _table([t for t, _ in cols], texts, left=left, sortable=True, values=values,
                  row_class=["front" if r["pareto"] else "" for r in rows],
                  table_id="leaderboard")


def _model_details(entry: dict[str, Any]) -> str:
    from slmbench.scoring.classification import most_confused

    parts = []
    per_class = entry.get("per_class") or {}
    if per_class:
        rows = [[lab, fmt("precision", m.get("precision")), fmt("recall", m.get("recall")),
                 fmt("f1", m.get("f1")), m.get("support")] for lab, m in per_class.items()
                if m.get("support", 0) or m.get("precision")]
        vals = [[lab, _num(m.get("precision")), _num(m.get("recall")), _num(m.get("f1")),
                 _num(m.get("support"))] for lab, m in per_class.items()
                if m.get("support", 0) or m.get("precision")]
        parts.append("<h4>Per class</h4>" + _table(
            ["label", "precision", "recall", "F1", "support"], rows, sortable=True, values=vals))
    if entry.get("confusion"):
        pairs = most_confused(entry["confusion"])
        if pairs:
            parts.append("<h4>Most confused</h4>" + _table(
                ["gold", "predicted", "items"], [list(p) for p in pairs], left=2))
    per_field = entry.get("per_field") or {}
    if per_field:
        parts.append("<h4>Per field</h4>" + _table(
            ["field", "precision", "recall", "F1", "tp", "fp", "fn"],
            [[f, fmt("precision", m.get("precision")), fmt("recall", m.get("recall")),
              fmt("f1", m.get("f1")), m.get("tp"), m.get("fp"), m.get("fn")]
             for f, m in per_field.items()], sortable=True))
    return "".join(parts) or "<p>No per-class or per-field figures.</p>"


def _recommendation(recs: Sequence[Any], task: str, floor_given: bool) -> str:
    from slmbench.analysis.recommend import frontier
    from slmbench.reports.recommend import RANKING_HEAD, _ranking_rows, decision_lines

    rec = next((r for r in recs if r.task == task), None)
    if rec is None:
        return ""
    out = []
    if floor_given:
        cls = "decision" if rec.decision is not None else "decision none"
        out.append(f'<div class="{cls}">' + "".join(f"<p>{_e(line)}</p>"
                                                   for line in decision_lines(rec)) + "</div>")
        shown = rec.meets[:8]
    else:
        shown = frontier(rec.options, rec.confidence)
        out.append(f"<p>The cheapest option for each accuracy floor (by the lower bound of the "
                   f"95% CI), from {len(rec.options)} models and cascades; $/month at "
                   f"{rec.volume_per_day:,.0f} items/day. <code>slmbench recommend RUN "
                   "--min-accuracy X</code> (or <code>report --min-accuracy X</code>) names the "
                   "decision.</p>")
    if shown:
        out.append(_table(RANKING_HEAD, _ranking_rows(shown, rec, floor_given), sortable=True))
    out.extend(f'<p class="warn">note: {_e(n)}</p>' for n in rec.notes)
    return "".join(out)


def _cascade_sweep(recs: Sequence[Any], task: str) -> str:
    """The sweep of one pair: the decision's when it is a cascade, else cheapest → most
    accurate priced model (one row per distinct set of escalated items)."""
    rec = next((r for r in recs if r.task == task), None)
    if rec is None:
        return ""
    singles = [o for o in rec.options if not o.is_cascade and o.priced]
    if rec.decision is not None and rec.decision.is_cascade:
        pair = rec.decision.models
    elif len(singles) >= 2:
        cheap = min(singles, key=lambda o: o.usd_per_1k_items or 0.0)
        best = max(singles, key=lambda o: (o.accuracy, -(o.usd_per_1k_items or 0.0)))
        if cheap is best:
            return ""
        pair = (cheap.name, best.name)
    else:
        return ""
    rows = sorted((o for o in rec.options if o.models == pair),
                  key=lambda o: (o.threshold is not None, o.threshold or 0.0))
    ends = {o.name: o for o in singles}
    shown = [o for o in (ends.get(pair[0]), *rows, ends.get(pair[1])) if o is not None]
    if not rows:
        return ""
    table = _table(["option", "escalated", "accuracy", "95% CI", "$/1k items", "$/correct"],
                   [[o.name, fmt("accuracy", o.escalated_share) if o.is_cascade
                     else ("0.0%" if o.name == pair[0] else "100.0%"),
                     fmt("accuracy", o.accuracy),
                     f"{fmt('accuracy', o.ci_low)}–{fmt('accuracy', o.ci_high)}",
                     format_usd(o.usd_per_1k_items), format_usd(o.usd_per_correct)]
                    for o in shown])
    return (f"<h3>Cascade sweep: {_e(pair[0])} → {_e(pair[1])}</h3><p>Simulated from the "
            "stored rows: items whose small-model confidence is below the threshold (or with "
            "none, or an invalid answer) go to the large model.</p>" + table)


def _estimate_vs_actual(rows: Sequence[dict[str, Any]], multi: bool) -> str:
    """The stored estimate against the run, the markdown report's table (reports/estimate)."""
    if not rows:
        return ""
    from slmbench.reports import estimate as er

    return ("<h2>Estimate vs actual</h2>" + _table(er.HEAD, er.table_rows(rows, multi), left=3)
            + f"<p>{_e(er.EXPLAIN.replace('`', ''))}</p><ul>"
            + "".join(f"<li>{_e(n)}</li>" for n in er.notes(rows)) + "</ul>")


def _calibration(summaries: Sequence[dict[str, Any]], multi: bool) -> str:
    """ECE per model, calibrated variants beside the plain model (reports/calibration)."""
    from slmbench.reports import calibration

    rows = calibration.table_rows(summaries, multi)
    if not rows:
        return ""
    return ("<h2>Confidence calibration</h2>" + _table(calibration.HEAD, rows, left=3)
            + f"<p>{_e(calibration.EXPLAIN.replace('`', ''))}</p>")


def _footer(summaries: Sequence[dict[str, Any]], manifests: Sequence[dict[str, Any]]) -> str:
    out = ["<footer><p>Generated from stored results only (no model was called).</p><ul>"]
    for n, s in enumerate(summaries):
        m = manifests[n] if n < len(manifests) else {}
        pricing = s.get("pricing") or {}
        sheets = ", ".join(f"<code>{_e(sh.get('path'))}</code> (sha256 "
                           f"<code>{_e(sh.get('sha256'))}</code>)"
                           for sh in pricing.get("sheets", [])) or "none"
        env = m.get("environment") or {}
        pkgs = ", ".join(f"{_e(k)} {_e(v)}" for k, v in (env.get("packages") or {}).items())
        out.append(f"<li>run <code>{_e(s.get('run_id'))}</code>, started "
                   f"{_e(m.get('started_at', '–'))}; prices as of "
                   f"{_e(pricing.get('price_date'))}; sheets: {sheets}"
                   + (f"; python {_e(env.get('python'))}" if env.get("python") else "")
                   + (f"; git {_e(env.get('git_sha'))}" if env.get("git_sha") else "")
                   + (f"; versions: {pkgs}" if pkgs else "") + "</li>")
        out.extend(f'<li class="warn">warning: {_e(w)}</li>' for w in s.get("warnings", []))
    out.append("</ul></footer>")
    return "".join(out)


def render_html(summaries: Sequence[dict[str, Any]], *, sort: str | None = None,
                manifests: Sequence[dict[str, Any]] = (), recommendations: Sequence[Any] = (),
                floor_given: bool = False, warnings: Sequence[str] = (),
                estimates: Sequence[dict[str, Any]] = ()) -> str:
    """The whole page (module docstring). ``manifests``: the runs' manifests, in the order of
    ``summaries``, for the provenance footer; ``recommendations``: from
    :func:`slmbench.analysis.recommend.recommend`; ``warnings``: printed under the title;
    ``estimates``: from :func:`slmbench.reports.estimate.comparisons`."""
    rows = leaderboard_entries(summaries, sort)
    multi = len(summaries) > 1
    from slmbench.reports.plot import style_of

    styles = style_of([r["model"] for r in rows])
    runs = ", ".join(str(s.get("run_id")) for s in summaries)
    dates = sorted({str((s.get("pricing") or {}).get("price_date")) for s in summaries})
    body = [f"<h1>slmbench report</h1><p class=\"sub\">run {_e(runs)} · prices as of "
            f"{_e(', '.join(dates))} · sorted by {_e(resolve_sort(sort)[0])} (click a column "
            "to sort)</p>"]
    body.extend(f'<p class="warn">warning: {_e(w)}</p>' for w in warnings)
    tasks: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        tasks.setdefault(r["task"], []).append(r)
    if recommendations:
        body.append("<h2>Recommendation</h2>")
        for task in tasks:
            part = _recommendation(recommendations, task, floor_given)
            if part:
                body.append(f"<h3>{_e(task)}</h3>{part}")
    body.append("<h2>Leaderboard</h2>" + _leaderboard(rows, multi)
                + f"<p>{FRONTIER_MARK} = on the task's accuracy–cost Pareto frontier. 95% CI: "
                "seeded percentile bootstrap. $/correct = total cost ÷ correct answers.</p>")
    body.extend(f'<p class="fail">{_e(line)}</p>' for line in failure_lines(rows, multi))
    for task, group in tasks.items():
        kind = group[0]["kind"] or "?"
        body.append(f"<h2>{_e(task)} ({_e(kind)})</h2>")
        body.append(svg_plot(task, group, styles, multi))
        body.append(_cascade_sweep(recommendations, task))
        for n, r in enumerate(group):
            name = _name(r, multi)
            if r["failed"]:
                body.append(f'<details><summary>{_e(name)}</summary><p class="fail">failed: '
                            f'{_e(r["failed"])}</p></details>')
                continue
            body.append(f"<details{' open' if n == 0 else ''}><summary>{_e(name)} · accuracy "
                        f"{_e(fmt('accuracy', r['accuracy']))}</summary>"
                        f"{_model_details(r['entry'])}</details>")
    body.append(_estimate_vs_actual(estimates, multi))
    body.append(_calibration(summaries, multi))
    body.append(_footer(summaries, manifests))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>slmbench report · {_e(runs)}</title><style>{STYLE}</style></head>"
            f"<body><main>{''.join(body)}</main><div id=\"tip\"></div>"
            f"<script>{SCRIPT}</script></body></html>\n")
