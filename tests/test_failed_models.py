"""A model that cannot run is never shown as a result (issue "Providers").

One hand-written run holds, on one classification task of 8 items: a good model, a model whose
every call failed (a parameter the provider refuses), a model the runner stopped before it
stored a row (no API key: named only in the manifest's ``failures``), a model stopped after its
pre-flight probe (one error row, named in ``failures``) and a model some of whose answers were
cut off by the output budget. Every figure below is computed by hand from those rows.
"""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest
from conftest import SUMMARY_LABELS, run_cli, summary_manifest, write_stored_run

from slmbench.analysis import summary as S
from slmbench.reports.leaderboard import (
    leaderboard_entries,
    render_csv,
    render_json,
    render_markdown,
    render_terminal,
    render_text,
)
from slmbench.store import RunDir

LABELS = SUMMARY_LABELS
GOOD, BROKEN, NO_KEY, PROBED, CUT = ("openai/gpt-5.4-nano", "openai/gpt-5.4-mini",
                                      "anthropic/claude-haiku-4-5", "openai/gpt-5-mini",
                                      "openai/gpt-5.4")
BAD_PARAM = ("litellm.BadRequestError: OpenAIException - Unsupported parameter: 'max_tokens' is "
             "not supported with this model.\n  Use 'max_completion_tokens' instead.")
BAD_PARAM_LINE = " ".join(BAD_PARAM.split())
NO_KEY_REASON = "missing API key: ANTHROPIC_API_KEY is not set"
PROBE_REASON = "pre-flight probe: HTTP 400 temperature [0.0] is not supported"
AT = "2026-11-22T10:00:01+00:00"
# USD per 1M tokens (input, output) in pricing/openai/2026-11-22.yaml
PRICES = {GOOD: (0.20, 1.25), CUT: (2.50, 15.00)}


def row(i: int, model: str, **over: Any) -> dict[str, Any]:
    """A row as the runner writes it now (with finish_reason, truncated, reasoning and cache
    tokens): right, 1000 tokens in and 100 out."""
    gold = LABELS[i % 3]
    base = {"task": "cls", "kind": "classification", "model": model, "item_id": f"i{i}",
            "input": f"text {i}", "output": gold, "answer": gold, "gold": gold,
            "correct": True, "invalid": False, "error": None, "attempts": 1,
            "tokens_in": 1000, "tokens_out": 100, "token_source": "provider",
            "cached_tokens_in": None, "latency_s": 0.1 * (i + 1), "confidence": None,
            "confidence_source": None, "cached": False, "finish_reason": "stop",
            "truncated": False, "reasoning_tokens": None, "cache_write_tokens": None}
    return {**base, **over}


def error_row(i: int, model: str, error: str) -> dict[str, Any]:
    return row(i, model, output=None, answer=None, correct=False, error=error, tokens_in=None,
               tokens_out=None, token_source=None, latency_s=None, finish_reason=None)


def good_rows() -> list[dict[str, Any]]:
    """6 right, item 6 wrong, item 7 invalid."""
    rows = [row(i, GOOD) for i in range(8)]
    rows[6].update(answer=LABELS[0] if rows[6]["gold"] != LABELS[0] else LABELS[1],
                   correct=False)
    rows[7].update(answer=None, output="no idea", invalid=True, correct=False)
    return rows


def cut_rows() -> list[dict[str, Any]]:
    """Items 0-2 cut off at the 512-token budget (hidden reasoning used it up), 3-7 right;
    item 0 wrote 800 input tokens to the provider's cache."""
    rows = []
    for i in range(8):
        if i < 3:
            rows.append(row(i, CUT, output="", answer=None, correct=False, finish_reason="length",
                            truncated=True, tokens_out=512, reasoning_tokens=512,
                            cache_write_tokens=800 if i == 0 else None))
        else:
            rows.append(row(i, CUT, tokens_out=60, reasoning_tokens=40))
    return rows


def manifest(run_id: str, failures: list[dict] | None = None) -> dict:
    models = {m: {"pricing": "tokens"} for m in (GOOD, BROKEN, NO_KEY, PROBED, CUT)}
    out = summary_manifest(run_id, models, n_items=8, timings=[
        {"task": "cls", "model": m, "items": 8, "wall_s": 2.0, "latency_sum_s": 3.6}
        for m in (GOOD, CUT)])
    if failures is not None:
        out["failures"] = failures
    return out


FAILURES = [{"task": "cls", "model": NO_KEY, "reason": NO_KEY_REASON, "at": AT},
            {"task": "cls", "model": PROBED, "reason": PROBE_REASON, "at": AT}]


def all_rows() -> list[dict[str, Any]]:
    broken = [error_row(i, BROKEN, BAD_PARAM if i < 6 else "HTTP 429 rate limited")
              for i in range(8)]
    return [*good_rows(), *broken, error_row(0, PROBED, "HTTP 400"), *cut_rows()]


@pytest.fixture
def run(tmp_path: Path) -> Path:
    return write_stored_run(tmp_path / "fails", manifest("fails", FAILURES), all_rows())


def summaries(path: Path) -> dict:
    """The summary, the same on the columnar and the row path."""
    col = S.build_summary(RunDir(path))
    rows = S.build_summary(RunDir(path), columnar=False)
    for s in (col, rows):
        s.pop("generated_at")
    assert col == rows
    json.dumps(col, allow_nan=False)
    return col


# ---------------------------------------------------------------------------------------------
# summary


def test_summary_figures(run):
    summary = summaries(run)
    by = {e["model"]: e for e in summary["results"]}
    assert list(by) == sorted(by)  # entries in (task, model) order, the row-less one included
    good, broken, no_key, probed, cut = (by[m] for m in (GOOD, BROKEN, NO_KEY, PROBED, CUT))

    assert good["failed"] is None and cut["failed"] is None
    assert (good["n_items"], good["n_correct"], good["n_invalid"], good["n_errors"]) == (8, 6, 1, 0)
    assert (good["truncated"], good["truncated_rate"]) == (0, 0.0)
    assert good["reasoning_tokens"] is None and good["cache_write_tokens"] == 0
    pin, pout = PRICES[GOOD]
    total = 8 * (1000 * pin + 100 * pout) / 1e6
    assert good["total_usd"] == pytest.approx(total)
    assert good["usd_per_correct"] == pytest.approx(total / 6)

    # truncated is its own count: not invalid, not correct
    assert (cut["n_items"], cut["n_correct"], cut["n_invalid"]) == (8, 5, 0)
    assert (cut["truncated"], cut["truncated_rate"]) == (3, 3 / 8)
    assert cut["accuracy"] == 5 / 8
    assert cut["reasoning_tokens"] == 3 * 512 + 5 * 40
    assert cut["cache_write_tokens"] == 800
    assert cut["tokens_out"] == 3 * 512 + 5 * 60  # reasoning is part of tokens_out

    # every call failed: the most common error, on one line
    assert (broken["n_items"], broken["n_errors"], broken["n_correct"]) == (8, 8, 0)
    assert broken["failed"] == BAD_PARAM_LINE
    assert "\n" not in broken["failed"]

    # named in failures: the manifest's reason, with or without rows
    assert probed["failed"] == PROBE_REASON and probed["n_items"] == 1
    assert no_key["failed"] == NO_KEY_REASON
    assert no_key["n_items"] == 0 and no_key["n_correct"] == 0 and no_key["n_errors"] == 0
    for key in ("accuracy", "accuracy_ci", "invalid_rate", "truncated_rate", "latency_p50_s",
                "items_per_s", "total_usd", "usd_per_1k_items", "usd_per_correct",
                "correct_per_usd", "reasoning_tokens"):
        assert no_key[key] is None, key
    assert no_key["priced"] is False

    assert S.failed_pairs(summary) == [("cls", NO_KEY, NO_KEY_REASON),
                                       ("cls", PROBED, PROBE_REASON),
                                       ("cls", BROKEN, BAD_PARAM_LINE)]


def test_majority_of_errors_is_failed_half_is_not(tmp_path):
    half = [error_row(i, GOOD, "HTTP 500") if i < 4 else row(i, GOOD) for i in range(8)]
    most = [error_row(i, GOOD, "HTTP 500") if i < 5 else row(i, GOOD) for i in range(8)]
    for name, rows, failed in (("half", half, None), ("most", most, "HTTP 500")):
        path = write_stored_run(tmp_path / name, manifest(name), rows)
        (entry,) = summaries(path)["results"]
        assert entry["failed"] == failed, name
    # a tie between two texts names the first in text order, on both paths
    tie = [error_row(i, GOOD, "b: timeout" if i % 2 else "a: refused") for i in range(6)]
    path = write_stored_run(tmp_path / "tie", manifest("tie"), tie)
    assert summaries(path)["results"][0]["failed"] == "a: refused"


def test_a_failure_reason_is_one_line_and_bounded():
    assert S.one_line("a\n  b\tc ") == "a b c"
    long = S.one_line("x" * 1000)
    assert len(long) == S.REASON_CHARS and long.endswith("…")
    assert S.failure_reasons({"failures": [
        {"task": "t", "model": "m", "reason": "first"}, {"task": "t", "model": "m",
                                                         "reason": "second\nline"},
        {"task": "t"}, "junk"]}) == {("t", "m"): "second line"}
    assert S.failed_pairs({"results": [{"task": "t", "model": "m", "failed": None}]}) == []
    assert S.failed_pairs({}) == []


def test_an_old_run_summarises_as_before(tmp_path):
    """Rows and manifest without the new keys: every figure as the same rows with the new keys
    at their neutral values, and the new keys say nothing was cut off or failed."""
    old_rows = []
    for r in good_rows():
        r = dict(r)
        for key in ("finish_reason", "truncated", "reasoning_tokens", "cache_write_tokens"):
            del r[key]
        old_rows.append(r)
    old = manifest("old")
    assert "failures" not in old
    old_sum = summaries(write_stored_run(tmp_path / "old", old, old_rows))
    new_sum = summaries(write_stored_run(tmp_path / "new", manifest("new", []), good_rows()))
    (entry,) = old_sum["results"]
    assert entry == new_sum["results"][0]
    assert {k: entry[k] for k in ("truncated", "truncated_rate", "reasoning_tokens",
                                  "cache_write_tokens", "failed")} == {
        "truncated": 0, "truncated_rate": 0.0, "reasoning_tokens": None,
        "cache_write_tokens": 0, "failed": None}
    old_sum["run_id"] = new_sum["run_id"]
    assert render_text([old_sum]) == render_text([new_sum])


# ---------------------------------------------------------------------------------------------
# leaderboard


def _cells(text: str, model: str) -> dict[str, str]:
    """Header → cell of a model's line in a wide terminal table."""
    head = next(x for x in text.splitlines() if "truncated" in x and "┃" in x)
    line = next(x for x in text.splitlines() if x.count("│") > 2 and x.split("│")[2].strip()
                == model)
    return dict(zip([c.strip() for c in head.split("┃")], [c.strip() for c in line.split("│")],
                    strict=True))


def test_terminal_table(run):
    summary = summaries(run)
    text = render_text([summary])
    lines = [x for x in text.splitlines() if "│" in x]
    # sorted by $/correct: the good model, the truncating one, then the three failed last (by
    # name: none of their figures means anything)
    order = [next(m for m in (GOOD, BROKEN, NO_KEY, PROBED, CUT) if m in x) for x in lines]
    assert order == [GOOD, CUT, NO_KEY, PROBED, BROKEN]
    broken = _cells(text, BROKEN)
    # the reason, cut to 40 characters, in the accuracy cell; the $ cells just say failed
    assert broken["accuracy"] == "failed (litellm.BadRequestError: OpenAIExceptio…)"
    assert broken["$/1k items"] == broken["$/correct"] == broken["correct/$"] == "failed"
    assert broken["Pareto"] == "" and broken["errors"] == "8" and broken["95% CI"] == "–"
    no_key = _cells(text, NO_KEY)
    assert no_key["accuracy"] == "failed (missing API key: ANTHROPIC_API_KEY is n…)"
    assert no_key["n"] == "0" and no_key["errors"] == "0"
    assert _cells(text, PROBED)["accuracy"] == "failed (pre-flight probe: HTTP 400 temperature…)"
    assert _cells(text, CUT)["truncated"] == "3" and _cells(text, CUT)["invalid"] == "0.0%"
    assert _cells(text, GOOD)["truncated"] == "0" and _cells(text, GOOD)["Pareto"] == "★"
    # the full reasons, under the table (the brackets of a reason are no rich markup)
    assert f"failed: cls × {BROKEN} could not run: {BAD_PARAM_LINE}" in text
    assert f"failed: cls × {NO_KEY} could not run: {NO_KEY_REASON}" in text
    assert f"failed: cls × {PROBED} could not run: {PROBE_REASON}" in text


@pytest.mark.parametrize("sort", ["usd_per_correct", "-usd_per_correct", "accuracy",
                                  "-accuracy", "model", "-model", "n_errors", "truncated",
                                  "latency_p50_s", "-correct_per_usd"])
def test_failed_rows_sort_last_and_are_never_on_the_frontier(run, sort):
    rows = leaderboard_entries([summaries(run)], sort)
    assert [r["model"] for r in rows][-3:] == [NO_KEY, PROBED, BROKEN]
    assert [r["pareto"] for r in rows[-3:]] == [False, False, False]
    assert all(r["accuracy"] is None and r["usd_per_1k_items"] is None for r in rows[-3:])


def test_a_failed_model_with_cheap_right_answers_does_not_take_the_frontier(tmp_path):
    """Before, 5 failed calls of 8 (no tokens: $0) and 3 right answers put a model on the
    frontier and pushed the good one off it."""
    cheap = [error_row(i, CUT, "HTTP 401 invalid api key") if i < 5 else row(i, CUT, tokens_in=1)
             for i in range(8)]
    path = write_stored_run(tmp_path / "r", manifest("r"), [*good_rows(), *cheap])
    rows = leaderboard_entries([summaries(path)])
    assert [(r["model"], r["pareto"], r["failed"]) for r in rows] == [
        (GOOD, True, None), (CUT, False, "HTTP 401 invalid api key")]


@pytest.mark.parametrize("width", [80, 60])
def test_narrow_terminal_keeps_errors_truncated_and_failed(run, width):
    from rich.console import Console

    buf = io.StringIO()
    console = Console(file=buf, width=width, color_system=None, force_terminal=False)
    render_terminal(summaries(run), console)
    lines = buf.getvalue().splitlines()
    assert max(len(x) for x in lines) <= width
    assert lines[0].strip() == "slmbench · run fails · task cls"  # one task: in the title
    # whole titles, on one line, the frame left out to make room
    assert lines[1].split() == ["model", "accuracy", "truncated", "errors", "$/correct", "★"]
    body = lines[3:lines.index(next(x for x in lines if x.startswith("★ =")))]
    cells = [x.split() for x in body]
    assert sum(c[1:] == ["62.5%", "3", "0", "$0.00951"] for c in cells) == 1  # CUT
    assert sum(c[1:4] == ["failed", "0", "8"] for c in cells if len(c) >= 4) == 1  # BROKEN
    assert sum("failed" in c for c in cells) == 3
    text = " ".join(" ".join(lines).split())
    assert "columns hidden in this narrow terminal" in text
    assert f"failed: cls × {NO_KEY} could not run: {NO_KEY_REASON}" in text


def test_markdown(run):
    md = render_markdown(summaries(run))
    from test_reports import _tables

    board = _tables(md)[0]
    head = board["head"]
    assert head[head.index("invalid") + 1] == "truncated"
    rows = {r[1]: dict(zip(head, r, strict=True)) for r in board["rows"]}
    assert [r[1] for r in board["rows"]][-3:] == [NO_KEY, PROBED, BROKEN]
    assert rows[BROKEN]["accuracy"] == "failed (litellm.BadRequestError: OpenAIExceptio…)"
    # markdown rows do not fold: each $ cell holds the reason too
    assert rows[BROKEN]["$/correct"] == rows[BROKEN]["$/1k items"] == rows[BROKEN]["accuracy"]
    assert rows[BROKEN]["Pareto"] == "" and rows[GOOD]["Pareto"] == "★"
    assert rows[CUT]["truncated"] == "3"
    assert f"* failed: cls × {BROKEN} could not run: {BAD_PARAM_LINE}" in md
    assert (f"Failed: the model could not run ({NO_KEY_REASON}); 0 of 0 items are errors"
            in md)


def test_csv_and_json_keep_numbers_numeric(run):
    summary = summaries(run)
    rows = {r["model"]: r for r in csv.DictReader(io.StringIO(render_csv([summary])))}
    assert rows[BROKEN]["failed"] == BAD_PARAM_LINE
    assert rows[BROKEN]["accuracy"] == "" and rows[BROKEN]["usd_per_correct"] == ""
    assert rows[BROKEN]["pareto"] == "False" and rows[BROKEN]["n_errors"] == "8"
    assert rows[CUT]["truncated"] == "3" and float(rows[CUT]["truncated_rate"]) == 3 / 8
    assert rows[GOOD]["failed"] == "" and float(rows[GOOD]["accuracy"]) == 6 / 8
    doc = json.loads(render_json([summary]))
    by = {r["model"]: r for r in doc["rows"]}
    assert by[NO_KEY]["failed"] == NO_KEY_REASON and by[NO_KEY]["accuracy"] is None
    assert by[GOOD]["failed"] is None and by[CUT]["truncated"] == 3


def test_report_cli_and_plot(run, tmp_path, capsys):
    code, out, err = run_cli(["report", str(run), "--format", "md"], capsys)
    assert code == 0, err
    assert "failed (missing API key" in out
    svg = tmp_path / "p.svg"
    code, _, err = run_cli(["plot", str(run), "--out", str(svg)], capsys)
    assert code == 0, err
    text = svg.read_text()
    assert "Not on the cost axis" in text
    assert "failed (litellm.BadRequestError" in text and NO_KEY in text


# ---------------------------------------------------------------------------------------------
# gate


def test_gate_fails_when_a_baseline_model_failed_now(tmp_path, capsys):
    base_rows = [*good_rows(), *(row(i, BROKEN) for i in range(8))]
    base = write_stored_run(tmp_path / "base", manifest("base"), base_rows)
    cur = write_stored_run(tmp_path / "cur", manifest("cur", FAILURES), all_rows())
    code, out, err = run_cli(["gate", str(cur), "--baseline", str(base)], capsys)
    assert code == 1, (out, err)
    lines = out.splitlines()
    failed = [x for x in lines if x.startswith("FAIL")]
    assert failed == [f"FAIL  failed        cls × {BROKEN}: the model could not run in the "
                      f"current run ({BAD_PARAM_LINE}); the baseline scored 100.0% on 8 items"]
    # no accuracy comparison of 0 % for it, and the good model is still checked
    assert not any("accuracy" in x and BROKEN in x for x in lines)
    assert any(x.startswith("PASS") and "accuracy" in x and GOOD in x for x in lines)
    # the pairs the baseline did not have are notes, not failures
    assert any(x.startswith("note") and NO_KEY in x and "failed" in x for x in lines)
    assert "gate: FAILED" in lines[-1]


def test_gate_fails_a_model_that_could_not_run_in_either_run(tmp_path):
    from slmbench.analysis.gate import gate_runs

    base = write_stored_run(tmp_path / "base", manifest("base", FAILURES), all_rows())
    cur = write_stored_run(tmp_path / "cur", manifest("cur", FAILURES), all_rows())
    result = gate_runs(cur, base)
    assert not result.passed
    assert [(c.model, c.status) for c in result.checks if c.name == "failed"] == [
        (NO_KEY, "fail"), (PROBED, "fail"), (BROKEN, "fail")]
    check = next(c for c in result.failures if c.model == NO_KEY)
    assert check.message == (f"the model could not run in the current run ({NO_KEY_REASON}); "
                             "it could not run in the baseline either")
    assert {c.model for c in result.checks if c.status == "pass"} == {GOOD, CUT}


def test_gate_skips_a_pair_that_failed_in_the_baseline(tmp_path, capsys):
    base = write_stored_run(tmp_path / "base", manifest("base", FAILURES), all_rows())
    cur_rows = [*good_rows(), *(row(i, BROKEN) for i in range(8)),
                *(row(i, NO_KEY) for i in range(8))]
    cur = write_stored_run(tmp_path / "cur", manifest("cur"), cur_rows)
    code, out, err = run_cli(["gate", str(cur), "--baseline", str(base)], capsys)
    assert code == 0, (out, err)
    skipped = [x for x in out.splitlines() if x.startswith("SKIP") and "failed" in x]
    assert {x.split(" × ")[1].split(":")[0] for x in skipped} == {BROKEN, NO_KEY}


# ---------------------------------------------------------------------------------------------
# cascade


def test_cascade_refuses_a_failed_model_and_skips_it_when_picking(tmp_path, capsys):
    from slmbench.analysis.cascade import load_cascade
    from slmbench.errors import InputError

    run = write_stored_run(tmp_path / "r", manifest("r", FAILURES), all_rows())
    with pytest.raises(InputError, match=f"{BROKEN} could not run in this run .*max_tokens"):
        load_cascade(run, GOOD, run, BROKEN)
    code, _, err = run_cli(["cascade", "--small", f"{run}:{PROBED}", "--large",
                            f"{run}:{GOOD}"], capsys)
    assert code == 2 and PROBE_REASON in err and len(err.strip().splitlines()) == 1
    # a run of one good and one failed model: RUN alone picks the good one, naming the other
    two = write_stored_run(tmp_path / "two", manifest("two"), [
        *good_rows(), *(error_row(i, BROKEN, BAD_PARAM) for i in range(8))])
    big = write_stored_run(tmp_path / "big", manifest("big"), cut_rows())
    inp = load_cascade(two, None, big, None)
    assert inp.small.model == GOOD
    assert any(BROKEN in w and "skipped" in w for w in inp.small.warnings)


def test_live_cascade_of_a_failed_model_is_failed(tmp_path):
    man = manifest("live")
    man["cascades"] = [{"small": GOOD, "large": BROKEN, "threshold": 0.9,
                        "escalate_invalid": True}]
    rows = [*(dict(r, confidence=0.5) for r in good_rows()),
            *(error_row(i, BROKEN, BAD_PARAM) for i in range(8))]
    summary = S.build_summary(RunDir(write_stored_run(tmp_path / "live", man, rows)))
    (casc,) = summary["cascades"]
    assert casc["failed"] == f"its large model {BROKEN} could not run: {BAD_PARAM_LINE}"
    rows = leaderboard_entries([summary])
    assert [r["model"] for r in rows][0] == GOOD
    assert all(r["failed"] for r in rows[1:]) and not any(r["pareto"] for r in rows[1:])


def test_helpers_do_not_mutate(run):
    summary = summaries(run)
    before = copy.deepcopy(summary)
    render_text([summary])
    render_markdown(summary)
    S.failed_pairs(summary)
    assert summary == before
