"""Reports from stored results only: leaderboard figures, Pareto frontier, markdown, plot.

Every run here is written by hand (rows + manifest, like a finished run on disk), so each figure
can be recomputed independently in the test and no model is ever called.
"""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import run_cli

from slmbench.errors import InputError
from slmbench.reports import leaderboard_frame
from slmbench.reports.leaderboard import leaderboard_entries, load_summaries, pareto_flags

# USD per 1M tokens (input, output) in pricing/openai/2026-11-22.yaml
PRICES = {"openai/gpt-5.4-nano": (0.20, 1.25), "openai/gpt-5.4-mini": (0.75, 4.50),
          "openai/gpt-5-mini": (0.25, 2.00)}
UNPRICED = "openai/in-house-router"
LABELS = ["billing|refund", "card", "other"]
ROUTES = [{"name": "cards", "description": "cards", "target": "pipeline:cards"},
          {"name": "payments", "description": "payments", "target": "pipeline:payments"},
          {"name": "human", "description": "anything else", "target": "human:queue"}]
FIELDS = [{"name": "order_id", "type": "string", "required": True},
          {"name": "quantity", "type": "integer", "required": True}]


def make_rows(task: str, model: str, gold: list, pred: list, *, kind: str = "classification",
              errors: tuple[int, ...] = (), tin: int = 1000, tout: int = 100,
              fallback: str | None = None, ids: list[str] | None = None) -> list[dict]:
    """Stored rows as the runner writes them. ``pred`` None = invalid answer; errors: no tokens."""
    rows = []
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        err = i in errors
        row = {"task": task, "kind": kind, "model": model,
               "item_id": ids[i] if ids else f"{task}-{i:03d}", "input": f"text {i}",
               "output": None if err else json.dumps(p) if isinstance(p, dict) else (p or "??"),
               "answer": None if err else p, "gold": g, "invalid": p is None and not err,
               "error": "HTTP 500" if err else None, "attempts": 1,
               "tokens_in": 0 if err else tin, "tokens_out": 0 if err else tout,
               "token_source": "provider", "cached_tokens_in": None,
               "latency_s": round(0.05 * (i + 1) + 0.01 * len(model), 6), "confidence": None}
        if kind == "routing":
            row["routed"] = None if err else (p if p is not None else fallback)
            row["correct"] = not err and row["routed"] == g
        elif kind == "extraction":
            row["correct"] = not err and p is not None and p == g
        else:
            row["correct"] = not err and p == g
        rows.append(row)
    return rows


def write_run(folder: Path, run_id: str, rows: list[dict], tasks: dict[str, dict],
              wall: float | None = None, started: str = "2026-11-22T10:00:00+00:00") -> Path:
    """A run folder: items.jsonl + manifest.json (tasks, token-priced models, timings)."""
    run = folder / run_id
    run.mkdir(parents=True)
    (run / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = sorted({(r["task"], r["model"]) for r in rows})
    timings = []
    for task, model in pairs:
        group = [r for r in rows if (r["task"], r["model"]) == (task, model)]
        lat = sum(r["latency_s"] for r in group)
        timings.append({"task": task, "model": model, "items": len(group),
                        "wall_s": wall if wall is not None else lat, "latency_sum_s": lat,
                        "workers": 1, "at": started})
    manifest = {"run_id": run_id, "started_at": started, "seed": 0,
                "tasks": {name: {"name": name, "n_items": None, **info}
                          for name, info in tasks.items()},
                "models": {m: {"name": m, "pricing": "tokens", "settings": {}}
                           for _, m in pairs},
                "options": {}, "timings": timings}
    (run / "manifest.json").write_text(json.dumps(manifest))
    return run


def intent_data() -> dict[str, tuple[list, list, tuple]]:
    """20 items; per model: gold, predictions, error indices (known right/wrong patterns)."""
    gold = [LABELS[i % 3] for i in range(20)]

    def wrong(i: int) -> str:
        return LABELS[(i + 1) % 3]

    def preds(n_wrong: int) -> list:
        return [wrong(i) if i < n_wrong else g for i, g in enumerate(gold)]

    nano = preds(4)
    nano[0] = None  # one invalid answer; item 1 is a failed call
    return {
        "openai/gpt-5.4-nano": (gold, nano, (1,)),      # 16/20, cheapest: frontier
        "openai/gpt-5.4-mini": (gold, preds(2), ()),     # 18/20, dearer: frontier
        "openai/gpt-5-mini": (gold, preds(6), ()),       # 14/20, dearer than nano: dominated
        UNPRICED: (gold, preds(1), ()),                  # 19/20 but unpriced
    }


TASKS = {
    "intent": {"kind": "classification", "labels": LABELS},
    "route": {"kind": "routing", "routes": ROUTES, "fallback": "human"},
    "orders": {"kind": "extraction", "fields": FIELDS},
}


@pytest.fixture
def board_run(tmp_path: Path) -> Path:
    rows = []
    for model, (gold, pred, errors) in intent_data().items():
        rows += make_rows("intent", model, gold, pred, errors=errors)
    rgold = ["cards", "payments", "human", "cards", "payments", "cards", "payments", "human",
             "cards", "payments"]
    rpred = ["cards", "payments", "human", None, "payments", "payments", None, "human",
             "cards", "payments"]  # None: not a route, goes to the fallback
    rows += make_rows("route", "openai/gpt-5.4-nano", rgold, rpred, kind="routing",
                      fallback="human")
    rows += make_rows("route", UNPRICED, rgold, rgold, kind="routing", fallback="human")
    ogold = [{"order_id": f"A-{i}", "quantity": i + 1} for i in range(5)]
    opred = [dict(g) for g in ogold]
    opred[1]["quantity"] = 9
    opred[3] = None
    rows += make_rows("orders", "openai/gpt-5.4-nano", ogold, opred, kind="extraction")
    return write_run(tmp_path, "board", rows, TASKS)


# ---------------------------------------------------------------------------------------------
# independent figures


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), by hand."""
    xs = sorted(values)
    pos = (len(xs) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def macro_f1(gold: list, pred: list, labels: list[str]) -> float:
    present = [lab for lab in labels if lab in gold or lab in pred]
    f1s = []
    for lab in present:
        tp = sum(g == lab and p == lab for g, p in zip(gold, pred, strict=True))
        fp = sum(g != lab and p == lab for g, p in zip(gold, pred, strict=True))
        fn = sum(g == lab and p != lab for g, p in zip(gold, pred, strict=True))
        prec = tp / (tp + fp) if tp + fp else 0.0
        rec = tp / (tp + fn) if tp + fn else 0.0
        f1s.append(2 * prec * rec / (prec + rec) if prec + rec else 0.0)
    return sum(f1s) / len(f1s)


def bootstrap(correct: list[bool], seed: int = 0) -> tuple[float, float]:
    import numpy as np

    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), size=(2000, len(correct)))
    means = np.asarray(correct, dtype=float)[idx].mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def test_leaderboard_figures_equal_independent_computation(board_run):
    frame = leaderboard_frame([board_run])
    rows = [json.loads(x) for x in (board_run / "items.jsonl").read_text().splitlines()]
    intent = frame[frame.task == "intent"].set_index("model")
    assert sorted(intent.index) == sorted(intent_data())
    for model, (gold, pred, errors) in intent_data().items():
        mine = [r for r in rows if r["task"] == "intent" and r["model"] == model]
        got = intent.loc[model]
        n_correct = sum(p == g and i not in errors
                        for i, (g, p) in enumerate(zip(gold, pred, strict=True)))
        assert got.n_items == 20 and got.n_correct == n_correct
        assert got.accuracy == pytest.approx(n_correct / 20)
        assert (got.accuracy_ci_low, got.accuracy_ci_high) == pytest.approx(
            bootstrap([r["correct"] for r in sorted(mine, key=lambda r: r["item_id"])]))
        scored = ["<error>" if i in errors else "<invalid>" if p is None else p
                  for i, p in enumerate(pred)]
        assert got.macro_f1 == pytest.approx(macro_f1(gold, scored, LABELS))
        assert got.invalid_rate == pytest.approx(sum(p is None for p in pred) / 20)
        assert got.n_errors == len(errors)
        lat = [r["latency_s"] for r in mine]
        assert got.latency_p50_s == pytest.approx(quantile(lat, 0.5))
        assert got.latency_p95_s == pytest.approx(quantile(lat, 0.95))
        assert got.items_per_s == pytest.approx(20 / sum(lat))
        if model == UNPRICED:
            assert not got.priced and not got.pareto
            assert math.isnan(got.usd_per_1k_items) and math.isnan(got.usd_per_correct)
            continue
        pin, pout = PRICES[model]
        billed = 20 - len(errors)  # failed calls carry no tokens
        total = billed * (1000 * pin + 100 * pout) / 1e6
        assert got.priced
        assert got.total_usd == pytest.approx(total)
        assert got.usd_per_1k_items == pytest.approx(total / 20 * 1000)
        assert got.usd_per_correct == pytest.approx(total / n_correct)
        assert got.correct_per_usd == pytest.approx(n_correct / total)


def test_frontier_marks_exactly_the_non_dominated_rows(board_run, capsys):
    frame = leaderboard_frame([board_run])
    intent = frame[frame.task == "intent"].set_index("model")
    assert set(intent.index[intent.pareto]) == {"openai/gpt-5.4-nano", "openai/gpt-5.4-mini"}
    # the dominated one really is: nano is more accurate and cheaper
    assert intent.loc["openai/gpt-5-mini"].usd_per_1k_items > \
        intent.loc["openai/gpt-5.4-nano"].usd_per_1k_items
    assert intent.loc["openai/gpt-5-mini"].accuracy < intent.loc["openai/gpt-5.4-nano"].accuracy
    # the unpriced row is the most accurate, is never on the frontier, and says so
    assert intent.loc[UNPRICED].accuracy == intent.accuracy.max()
    code, md, err = run_cli(["report", str(board_run), "--format", "md"], capsys)
    assert code == 0, err
    line = next(x for x in md.splitlines() if x.startswith(f"| intent | {UNPRICED} |"))
    assert line.count("unpriced") == 3 and "★" not in line
    marked = {x.split(" | ")[1] for x in md.splitlines()
              if x.startswith("| intent |") and x.rstrip().endswith("★ |")}
    assert marked == {"openai/gpt-5.4-nano", "openai/gpt-5.4-mini"}


def test_pareto_flags_on_hand_made_points():
    # (accuracy, $/1k): dominated points, equal points (neither dominates the other), an
    # unpriced point, and one as accurate as the best priced one but dearer
    points = [(0.8, 1.0), (0.9, 2.0), (0.7, 1.5), (0.9, 2.0), (0.95, None), (0.8, 1.0),
              (0.85, 5.0), (0.9, 4.0)]
    assert pareto_flags(points) == [True, True, False, True, False, True, False, False]
    assert pareto_flags([(None, 1.0)]) == [False]


def test_default_sort_is_usd_per_correct_with_unpriced_last(board_run, capsys):
    rows = [r for r in leaderboard_entries(load_summaries([board_run])) if r["task"] == "intent"]
    assert [r["model"] for r in rows][-1] == UNPRICED
    priced = [r["usd_per_correct"] for r in rows[:-1]]
    assert priced == sorted(priced)
    by_acc = [r for r in leaderboard_entries(load_summaries([board_run]), "accuracy")
              if r["task"] == "intent"]
    assert [r["model"] for r in by_acc][0] == UNPRICED
    assert [r["accuracy"] for r in by_acc] == sorted((r["accuracy"] for r in by_acc),
                                                     reverse=True)
    code, _, err = run_cli(["report", str(board_run), "--sort", "vibes"], capsys)
    assert code == 2 and "--sort" in err and "vibes" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# markdown


def _tables(md: str) -> list[dict]:
    """Tables as markdown-it parses them: head cells and body rows (cell texts)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable("table").parse(md)
    tables, cur, row, in_head = [], None, None, False
    for i, tok in enumerate(tokens):
        if tok.type == "table_open":
            cur = {"head": [], "rows": []}
        elif tok.type == "thead_open":
            in_head = True
        elif tok.type == "thead_close":
            in_head = False
        elif tok.type == "tr_open":
            row = []
        elif tok.type in ("th_open", "td_open"):
            row.append(tokens[i + 1].content)
        elif tok.type == "tr_close":
            (cur["head"].extend(row) if in_head else cur["rows"].append(row))
        elif tok.type == "table_close":
            tables.append(cur)
    return tables


def test_markdown_parses_as_github_tables(board_run, capsys):
    code, md, err = run_cli(["report", str(board_run), "--format", "md"], capsys)
    assert code == 0, err
    tables = _tables(md)
    board = tables[0]
    assert board["head"][:4] == ["task", "model", "n", "accuracy"]
    assert board["head"][-1] == "Pareto" and len(board["head"]) == 16
    assert len(board["rows"]) == 4 + 2 + 1  # intent × 4, route × 2, orders × 1
    for t in tables:
        assert all(len(r) == len(t["head"]) for r in t["rows"]), t
    # per-class tables: a label holding a pipe is one cell, escaped in the source
    per_class = [t for t in tables if t["head"] == ["label", "precision", "recall", "F1",
                                                    "support"]]
    assert len(per_class) == 4 + 2
    assert any(r[0] == "billing|refund" for t in per_class for r in t["rows"])
    assert "billing\\|refund" in md
    # most confused pairs come from the confusion matrix of the stored rows
    confused = [t for t in tables if t["head"] == ["gold", "predicted", "count"]]
    assert confused and confused[0]["rows"]
    # routing: fallback rate and accuracy with fallback as a miss
    routing = next(t for t in tables if "fallback rate" in t["head"])
    nano = next(r for r in routing["rows"] if r[0] == "openai/gpt-5.4-nano")
    # 4 of 10 routed to the fallback (2 answered it, 2 were not routes); 7 right, 5 of them
    # not on the fallback
    assert nano[1:] == ["40.0%", "50.0%", "70.0%"]
    # extraction: per-field P/R/F1
    fields = next(t for t in tables if t["head"][0] == "field")
    qty = next(r for r in fields["rows"] if r[0] == "quantity")
    # gold quantities 1..5; predictions: item 1 says 9, item 3 is no JSON -> tp 3, fp 1, fn 2
    assert qty[1:] == ["0.750", "0.600", "0.667", "3", "1", "2"]
    # footer: price date, sheet provenance, run id
    summary_pricing = load_summaries([board_run])[0]["pricing"]
    sheet = next(s for s in summary_pricing["sheets"] if s["path"].endswith(
        "openai/2026-11-22.yaml"))
    assert "prices as of 2026-11-22" in md
    assert f"sha256 {sheet['sha256'][:12]}" in md and "openai/2026-11-22.yaml" in md
    assert "run `board`" in md


def test_multiple_runs_add_a_run_column(board_run, tmp_path, capsys):
    gold, pred, errors = intent_data()["openai/gpt-5.4-mini"]
    other = write_run(tmp_path / "b", "second",
                      make_rows("intent", "openai/gpt-5.4-mini", gold, gold), TASKS)
    code, md, err = run_cli(["report", str(board_run), str(other), "--format", "md"], capsys)
    assert code == 0, err
    board = _tables(md)[0]
    assert board["head"][0] == "run" and len(board["head"]) == 17
    assert {r[0] for r in board["rows"]} == {"board", "second"}
    assert len(board["rows"]) == 8
    # the perfect second run of gpt-5.4-mini now dominates the first run's gpt-5.4-mini
    intent = {(r[0], r[2]): r[-1] for r in board["rows"] if r[1] == "intent"}
    assert intent[("second", "openai/gpt-5.4-mini")] == "★"
    assert intent[("board", "openai/gpt-5.4-mini")] == ""
    frame = leaderboard_frame([board_run, other])
    assert set(frame.run_id) == {"board", "second"}


def test_report_csv_json_and_table_files(board_run, tmp_path, capsys):
    code, out, err = run_cli(["report", str(board_run), "--format", "csv"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    frame = leaderboard_frame([board_run])
    assert [r["model"] for r in rows] == list(frame.model)
    for r, (_, f) in zip(rows, frame.iterrows(), strict=True):
        assert float(r["accuracy"]) == pytest.approx(f.accuracy)
        if f.priced:
            assert float(r["usd_per_correct"]) == pytest.approx(f.usd_per_correct)
        else:
            assert r["usd_per_correct"] == "" and r["priced"] == "False"
    code, out, err = run_cli(["report", str(board_run), "--format", "json"], capsys)
    doc = json.loads(out)
    assert doc["runs"] == ["board"] and len(doc["rows"]) == 7
    assert doc["details"]["intent"]["board/openai/gpt-5.4-nano"]["most_confused"]
    target = tmp_path / "out" / "board.txt"
    code, _, err = run_cli(["report", str(board_run), "--out", str(target)], capsys)
    assert code == 0, err
    assert "openai/gpt-5.4-nano" in target.read_text()
    code, _, err = run_cli(["report", str(board_run), "--format", "xml"], capsys)
    assert code == 2 and "--format" in err


def test_report_md_embeds_the_plot(board_run, tmp_path, capsys):
    md = tmp_path / "site" / "leaderboard.md"
    code, _, err = run_cli(["report", str(board_run), "--format", "md", "--out", str(md),
                            "--plot", "pareto.png"], capsys)
    assert code == 0, err
    assert (md.parent / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "![accuracy vs $ per 1k items](pareto.png)" in md.read_text()
    code, _, err = run_cli(["report", str(board_run), "--format", "csv", "--plot", "p.png"],
                           capsys)
    assert code == 2 and "--plot" in err


def test_report_rejects_a_folder_that_is_no_run(tmp_path, capsys):
    code, _, err = run_cli(["report", str(tmp_path)], capsys)
    assert code == 2 and "not a slmbench run" in err and len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# plot


def test_plot_writes_png_and_svg(board_run, tmp_path, capsys):
    png, svg = tmp_path / "pareto.png", tmp_path / "pareto.svg"
    code, out, err = run_cli(["plot", str(board_run), "--out", str(png)], capsys)
    assert code == 0, err
    assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, out, err = run_cli(["plot", str(board_run), "--out", str(svg), "--task", "intent"],
                             capsys)
    assert code == 0, err
    text = svg.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    # text stays text: the frontier legend, the models, and the unpriced box
    assert "Pareto frontier" in text and "openai/gpt-5.4-nano" in text
    assert "Not on the cost axis" in text and UNPRICED in text
    assert ">intent<" in text and ">orders<" not in text  # only --task intent


def test_plot_bad_input_is_one_line(board_run, tmp_path, capsys, monkeypatch):
    code, _, err = run_cli(["plot", str(board_run), "--out", str(tmp_path / "p.gif")], capsys)
    assert code == 2 and "--out" in err
    code, _, err = run_cli(["plot", str(board_run), "--out", str(tmp_path / "p.png"),
                            "--task", "nope"], capsys)
    assert code == 2 and "--task" in err and "intent" in err
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if the extra were not installed
    from slmbench.reports.plot import plot_pareto

    with pytest.raises(InputError, match=r'pip install "slmbench\[plot\]"'):
        plot_pareto(load_summaries([board_run]), tmp_path / "p.png")
    code, _, err = run_cli(["plot", str(board_run), "--out", str(tmp_path / "p.png")], capsys)
    assert code == 2 and 'pip install "slmbench[plot]"' in err
    assert len(err.strip().splitlines()) == 1


def test_report_commands_help_imports_nothing_heavy():
    heavy = ("pandas", "sklearn", "matplotlib", "litellm", "llama_cpp", "datasets")
    for cmd in ("report", "plot", "gate"):
        code = ("import sys\nfrom slmbench.cli import main\n"
                f"sys.argv=['slmbench',{cmd!r},'--help']\n"
                "try:\n    main()\nexcept SystemExit:\n    pass\n"
                f"print([m for m in {heavy!r} if m in sys.modules])")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout
        assert "Usage" in out and out.strip().splitlines()[-1] == "[]", out
