"""``report --format html``: one self-contained page, checked in a real headless Chromium.

The page is built from the report tests' hand-written run (an intent task of four models, a
routing and an extraction task), so its figures are the leaderboard's. Chromium (Debian's
``chromium``) opens it from a file with no network: the console must stay silent (a page with an
injected error shows the check would see one), the script must have run to its end, the tables,
the plot and its hover texts must be in the DOM, a click on a column must sort it, and a
screenshot must be written. Without chromium those checks are skipped, the static ones are not.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import run_cli
from test_reports import board_run  # noqa: F401 - fixture

from slmbench.reports.leaderboard import load_summaries

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(n)), None)
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")


def chromium(tmp_path: Path, page: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
         "--window-size=1280,1800", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120)


def console_lines(proc: subprocess.CompletedProcess) -> list[str]:
    return [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture
def page(board_run, tmp_path, capsys) -> Path:  # noqa: F811
    out = tmp_path / "report.html"
    code, stdout, _ = run_cli(["report", str(board_run), "--format", "html", "--out", str(out),
                               "--min-accuracy", "0.75", "--confidence", "point"], capsys)
    assert code == 0 and f"wrote {out}" in stdout
    return out


def test_page_is_self_contained_and_complete(page):
    text = page.read_text(encoding="utf-8")
    # nothing is fetched: no src/href, no stylesheet link, no URL but the SVG namespace
    assert not re.search(r"\b(src|href)\s*=", text)
    assert "<link" not in text
    assert set(re.findall(r"https?://[^\s\"'<>]+", text)) == {"http://www.w3.org/2000/svg"}
    # the leaderboard, one plot per task with a CI'd point per placed model, the sections
    assert text.count("<svg") == 3
    assert 'class="sortable"' in text
    for part in ("Recommendation", "intent: ship openai/gpt-5.4-nano: 80.0% accuracy",
                 "Per class", "Most confused", "Per field", "order_id",
                 "Cascade sweep: openai/gpt-5.4-nano → openai/gpt-5.4-mini",
                 "prices as of 2026-11-22", "run <code>board</code>"):
        assert part in text, part
    # the hover text of nano's point: model, accuracy with CI, $/1k, $/correct
    tip = re.search(r'data-tip="(openai/gpt-5\.4-nano\naccuracy 80\.0% \(95% CI [^"]+)"',
                    text)
    assert tip and "$/1k items $" in tip.group(1) and "$/correct $" in tip.group(1)
    # the unpriced model is named under the intent plot, not placed on it
    assert "Not on the cost axis: openai/in-house-router (unpriced)" in text


@needs_chromium
def test_chromium_renders_it_without_console_errors(page, tmp_path):
    proc = chromium(tmp_path, page, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert console_lines(proc) == []
    dom = proc.stdout
    assert 'data-ready="1"' in dom  # the inline script ran to its last line
    assert dom.count("<svg") == 3 and "<table class=\"sortable\" id=\"leaderboard\">" in dom
    shot = tmp_path / "shot.png"
    proc = chromium(tmp_path, page, f"--screenshot={shot}")
    assert proc.returncode == 0 and console_lines(proc) == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000


@needs_chromium
def test_the_console_check_sees_an_error(page, tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(page.read_text().replace("</body>", "<script>noSuchFunction()</script>"
                                            "</body>"))
    lines = console_lines(chromium(tmp_path, bad, "--dump-dom"))
    assert any("noSuchFunction is not defined" in line for line in lines)


@needs_chromium
def test_a_click_sorts_the_leaderboard(page, tmp_path):
    # click "accuracy" (4th column) once: ascending, then record the order the page shows
    probe = ("<script>var t=document.getElementById('leaderboard');"
             "t.querySelectorAll('thead th')[3].click();"
             "document.body.setAttribute('data-order',Array.prototype.map.call(t.tBodies[0]"
             ".rows,function(r){return r.cells[1].textContent+'='+r.cells[3].textContent;})"
             ".join(';'));</script>")
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.read_text().replace("</body>", probe + "</body>"))
    proc = chromium(tmp_path, clicked, "--dump-dom")
    assert console_lines(proc) == []
    order = re.search(r'data-order="([^"]*)"', proc.stdout).group(1).split(";")
    accs = [float(o.split("=")[1].rstrip("%")) for o in order if o.split("=")[1][0].isdigit()]
    assert accs == sorted(accs) and len(accs) >= 6


def test_piped_table_has_every_column(board_run, capsys):  # noqa: F811
    code, out, _ = run_cli(["report", str(board_run)], capsys)  # stdout is not a terminal
    assert code == 0
    assert "hidden" not in out
    header = next(line for line in out.splitlines() if "accuracy" in line and "model" in line)
    for title in ("95% CI", "macro-F1", "p95 s", "items/s", "$/1k items", "correct/$",
                  "Pareto"):
        assert title in header, title


def test_report_warns_when_a_frontier_mixes_sizes_and_datasets(tmp_path, capsys):
    import json

    from test_reports import LABELS, TASKS, make_rows, write_run

    gold = [LABELS[i % 3] for i in range(20)]
    a = write_run(tmp_path / "a", "a", make_rows("intent", "openai/gpt-5.4-nano", gold, gold),
                  {"intent": TASKS["intent"]})
    b = write_run(tmp_path / "b", "b", make_rows("intent", "openai/gpt-5.4-mini", gold[:8],
                                                 gold[:8]), {"intent": TASKS["intent"]})
    for run, fp in ((a, "f" * 64), (b, "e" * 64)):
        m = json.loads((run / "manifest.json").read_text())
        m["tasks"]["intent"]["dataset_fingerprint"] = fp
        (run / "manifest.json").write_text(json.dumps(m))
    code, out, _ = run_cli(["report", str(a), str(b), "--format", "md"], capsys)
    assert code == 0
    assert ("* warning: task intent: the frontier mixes results on different numbers of items "
            "(openai/gpt-5.4-nano (run a): 20, openai/gpt-5.4-mini (run b): 8)") in out
    assert "different dataset (ffffffffffff: run a; eeeeeeeeeeee: run b)" in out
    code, out, err = run_cli(["report", str(a), str(b), "--format", "csv"], capsys)
    assert code == 0 and "warning: task intent" in err and "warning" not in out
    code, out, _ = run_cli(["report", str(a), "--format", "md"], capsys)
    assert "warning: task" not in out  # one run, one size: nothing to warn about


def test_pareto_png_keeps_models_apart(tmp_path):
    """Four runs of one model a few $ and points apart: each gets its own colour and marker,
    no label overlaps another or a marker, the y axis fits the intervals, the legend sits
    outside the axes, and the frontier ends at its last model."""
    from matplotlib.colors import to_hex
    from test_reports import LABELS, TASKS, make_rows, write_run

    from slmbench.reports.plot import pareto_figure, plot_pareto

    gold = [LABELS[i % 3] for i in range(40)]
    runs = []
    for n, (tin, wrong) in enumerate(((1000, 3), (1040, 3), (1080, 2), (1120, 4))):
        pred = [LABELS[(i + 1) % 3] if i < wrong else g for i, g in enumerate(gold)]
        runs.append(write_run(tmp_path / f"r{n}", f"r{n}",
                              make_rows("intent", "openai/gpt-5.4-nano", gold, pred, tin=tin),
                              {"intent": TASKS["intent"]}))
    summaries = load_summaries(runs)
    fig = pareto_figure(summaries)
    (ax,) = fig.axes[:1]
    renderer = fig.canvas.get_renderer()
    labels = [t for t in ax.texts if getattr(t, "slm_point", False)]
    assert len(labels) == 4
    boxes = [t.get_window_extent(renderer) for t in labels]
    assert not any(a.overlaps(b) for i, a in enumerate(boxes) for b in boxes[i + 1:])
    points = [ax.transData.transform(t.xy) for t in labels]
    half = 8 * 0.7 * fig.dpi / 72  # the markers' half width in pixels (a diamond's corner)
    assert not any(b.x0 - half <= x <= b.x1 + half and b.y0 - half <= y <= b.y1 + half
                   for b in boxes for x, y in points)
    # one (colour, marker) per model
    styles = {(to_hex(c.lines[0].get_color()), c.lines[0].get_marker())
              for c in ax.containers}
    assert len(styles) == 4
    # y fitted to the intervals (36/40 .. 38/40 with CIs), not 0-100
    lo_ci = min(s["results"][0]["accuracy_ci"][0] for s in summaries) * 100
    hi_ci = max(s["results"][0]["accuracy_ci"][1] for s in summaries) * 100
    y0, y1 = ax.get_ylim()
    assert y0 <= lo_ci and y1 >= hi_ci and y0 > 50
    # the legend is outside the axes: right of them
    legend = ax.get_legend().get_window_extent(renderer)
    assert legend.x0 >= ax.get_window_extent(renderer).x1
    # the frontier: r0 (cheapest) and r2 (most accurate); it ends at r2's cost
    frontier = next(line for line in ax.get_lines() if line.get_label() == "Pareto frontier")
    costs = {s["run_id"]: s["results"][0]["usd_per_1k_items"] for s in summaries}
    assert max(frontier.get_xdata()) == pytest.approx(costs["r2"])
    assert plot_pareto(summaries, tmp_path / "p.png").stat().st_size > 10_000


def test_piped_cascade_table_keeps_whole_figures(tmp_path, capsys):
    from test_cascade import LARGE, SMALL, TASK, large_rows, small_rows
    from test_reports import write_run

    small = write_run(tmp_path / "s", "small", small_rows(), TASK)
    large = write_run(tmp_path / "l", "large", large_rows(), TASK)
    code, out, _ = run_cli(["cascade", "--small", f"{small}:{SMALL}", "--large",
                            f"{large}:{LARGE}", "--threshold", "0.8"], capsys)
    assert code == 0
    table = out[out.index("┏"):out.index("┘")]
    assert "…" not in table  # 80 assumed columns cut "$0.000912" to "$0.00…"
    assert "gap recovered" in table and "$/1k items" in table
