"""A run stored by the code of commit aae7708 (tests/fixtures/run-aae7708, see its README) still
reports, gates and resumes with the current code, through the CLI only.

The fixture holds the run's items.jsonl, manifest.json and summary.json, plus what that code
printed for ``report --format md`` and ``--format json``. The current report may add what it
adds by design (a truncated column; truncated, truncated_rate and failed figures); every column,
line and figure the old report had must come back unchanged, floats exactly.
"""

from __future__ import annotations

import collections
import json
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import REPO, run_cli
from fakeserver import FakeOpenAIServer

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "run-aae7708"
TASKS = [str(REPO / "tasks" / name)
         for name in ("banking77_mini.yaml", "support_routing.yaml", "order_extraction.yaml")]
LIMIT = 6
API_MODELS = {"openai/fake": "fake", "openai/gpt-4o-mini": "gpt-4o-mini"}  # name -> wire model
STORED = ("items.jsonl", "manifest.json", "summary.json")
# what the current code adds to the old report, by design
NEW_MD_COLUMNS = {"truncated"}
# sections added since; the old ones must not change
NEW_MD_SECTIONS = {"## Recommendation", "## Confidence calibration"}
NEW_JSON_ROW_FIGURES = {"truncated": 0, "truncated_rate": 0.0, "failed": None}


@pytest.fixture
def stored_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the fixture run (the test may change it), read from another folder."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    run = tmp_path / "results" / "run-aae7708"
    run.mkdir(parents=True)
    for name in STORED:
        shutil.copyfile(FIXTURE / name, run / name)
    return run


def read_rows(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]


def report_json(run: Path, capsys: pytest.CaptureFixture) -> dict:
    code, out, err = run_cli(["report", str(run), "--format", "json"], capsys)
    assert code == 0, err
    return json.loads(out)


def rows_by_pair(report: dict) -> dict[tuple[str, str], dict]:
    return {(r["task"], r["model"]): r for r in report["rows"]}


# --------------------------------------------------------------------------- report


def without_new_sections(text: str) -> str:
    """The markdown less the level-2 sections the old report did not have."""
    kept, skipping = [], False
    for line in text.splitlines():
        if line.startswith("## ") or line.strip() == "---":  # a section ends at the footer
            skipping = line.strip() in NEW_MD_SECTIONS
        if not skipping:
            kept.append(line)
    return "\n".join(kept)


def md_blocks(text: str) -> list[str | list[list[str]]]:
    """Markdown as a list of blocks: a table (its lines split into cells) or one other line."""
    blocks: list[str | list[list[str]]] = []
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if blocks and isinstance(blocks[-1], list):
                blocks[-1].append(cells)
            else:
                blocks.append([cells])
        else:
            blocks.append(line)
    return blocks


def assert_contains(old: object, new: object, where: str = "") -> None:
    """Every key the old JSON had is in the new one with an equal value (same type, exact)."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        for key, value in old.items():
            assert key in new, f"{where}/{key} is gone"
            assert_contains(value, new[key], f"{where}/{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(old, new, strict=True)):
            assert_contains(a, b, f"{where}[{i}]")
    else:
        assert type(new) is type(old) and new == old, f"{where}: {old!r} -> {new!r}"


def test_markdown_report_matches_the_old_one(stored_run: Path,
                                             capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["report", str(stored_run), "--format", "md"], capsys)
    assert code == 0, err
    old = md_blocks((FIXTURE / "expected_report.md").read_text(encoding="utf-8"))
    assert all(section in out for section in NEW_MD_SECTIONS)
    new = md_blocks(without_new_sections(out))
    assert len(new) == len(old)
    tables = 0
    for before, after in zip(old, new, strict=True):
        if isinstance(before, str):
            assert after == before  # headings, legends, per-task lines, the run's pricing line
            continue
        assert isinstance(after, list) and len(after) == len(before), before[0]
        header, new_header = before[0], after[0]
        assert set(new_header) - set(header) <= NEW_MD_COLUMNS, new_header
        at = [new_header.index(column) for column in header]  # KeyError: a column is gone
        assert [new_header[i] for i in at] == header  # same order
        for old_line, new_line in zip(before[1:], after[1:], strict=True):
            assert [new_line[i] for i in at] == old_line, (header, old_line, new_line)
            added = [cell for column, cell in zip(new_header, new_line, strict=True)
                     if column in NEW_MD_COLUMNS]
            assert all(cell in ("0", "---:") for cell in added), new_line  # nothing truncated
        tables += 1
    assert tables >= 8  # leaderboard, per-label, confusion, calibration, extraction, routing
    leaderboard = [b for b in new if isinstance(b, list)][0]
    assert len(leaderboard) == 2 + 8  # 8 task x model pairs


def test_json_report_has_every_old_figure(stored_run: Path,
                                          capsys: pytest.CaptureFixture) -> None:
    old = json.loads((FIXTURE / "expected_report.json").read_text(encoding="utf-8"))
    new = report_json(stored_run, capsys)
    assert_contains(old, new)
    for row in new["rows"]:
        for key, value in NEW_JSON_ROW_FIGURES.items():
            assert row.get(key, value) == value, (row["task"], row["model"], key)
    # the figures the fixture was made to have (make_fixture.py): wrong and failed items
    pairs = rows_by_pair(new)
    assert len(pairs) == 8
    assert pairs["banking77-mini", "openai/gpt-4o-mini"]["n_correct"] == 3
    assert pairs["support-routing", "openai/fake"]["n_correct"] == 4
    assert pairs["order-extraction", "openai/gpt-4o-mini"]["n_correct"] == 4
    for (_task, model), row in pairs.items():
        assert row["n_items"] == LIMIT
        assert row["n_errors"] == (model in API_MODELS)
        assert row["priced"] is (model != "openai/fake")


# --------------------------------------------------------------------------- gate


def test_gate_passes_against_itself_and_fails_on_wrong_rows(
        stored_run: Path, capsys: pytest.CaptureFixture) -> None:
    code, out, err = run_cli(["gate", str(stored_run), "--baseline", str(stored_run)], capsys)
    assert code == 0, out + err
    assert "gate: passed: 16 of 16 checks hold" in out  # 8 accuracy, 8 cost (3 unpriced skip)
    assert "FAIL" not in out

    worse = stored_run.parent / "run-worse"
    shutil.copytree(stored_run, worse)
    rows = read_rows(worse)
    changed = 0
    for row in rows:  # every answer of the baseline on banking77-mini made wrong
        if row["task"] == "banking77-mini" and row["model"] == "baseline:tfidf-logreg":
            wrong = "exchange_rate" if row["gold"] != "exchange_rate" else "age_limit"
            row.update(output=wrong, answer=wrong, correct=False)
            changed += 1
    assert changed == LIMIT
    (worse / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    code, out, err = run_cli(["gate", str(worse), "--baseline", str(stored_run)], capsys)
    assert code == 1, out + err
    failed = [line for line in out.splitlines() if line.startswith("FAIL")]
    assert len(failed) == 1, out
    assert "banking77-mini × baseline:tfidf-logreg: 100.0% → 0.0% on 6 shared items" in failed[0]
    assert "b=6 c=0" in failed[0]
    # the other way round nothing got worse
    code, out, err = run_cli(["gate", str(stored_run), "--baseline", str(worse)], capsys)
    assert code == 0, out + err


# --------------------------------------------------------------------------- resume


def gold_server(stored_rows: list[dict]) -> FakeOpenAIServer:
    """Answers the gold of the stored error rows' items (found by their text in the prompt)."""
    gold = {r["input"]: r["gold"] for r in stored_rows if r["error"]}

    def answer(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        found = [g for text, g in gold.items() if text in prompt]
        if len(found) != 1:
            return "not an item that had an error row"
        return json.dumps(found[0]) if isinstance(found[0], dict) else found[0]

    return FakeOpenAIServer(answer).start()


def sheet_price(model: str) -> tuple[float, float]:
    """(input, output) USD per token of ``model`` in the OpenAI sheet the run was priced with."""
    manifest = json.loads((FIXTURE / "manifest.json").read_text())
    path = next(s["path"] for s in manifest["pricing"]["sheets"] if "openai" in s["path"])
    sheet = yaml.safe_load((REPO / path).read_text())
    row = next(m for m in sheet["models"] if m["id"] == model)
    return row["input"] / 1e6, row["output"] / 1e6


@pytest.mark.parametrize("settings", [
    # settings added since (structured, reasoning_effort, max_tokens) resume as they were:
    # no structured output, the task's budget
    "as stored",
    # the same run with those three keys at the current defaults in the manifest: shows that
    # everything else of the resume reads the old run (rows, timings, pricing) as it should
    "with the current default settings",
])
def test_resume_calls_only_the_items_with_error_rows(
        stored_run: Path, capsys: pytest.CaptureFixture, settings: str) -> None:
    if settings != "as stored":
        manifest = json.loads((stored_run / "manifest.json").read_text())
        for name in API_MODELS:
            manifest["models"][name]["settings"].update(
                reasoning_effort=None, max_tokens=None, structured="auto")
        (stored_run / "manifest.json").write_text(json.dumps(manifest))
    old_text = (stored_run / "items.jsonl").read_text()
    old_rows = read_rows(stored_run)
    before = rows_by_pair(report_json(stored_run, capsys))
    errors = collections.Counter((r["task"], r["model"]) for r in old_rows if r["error"])
    assert sorted(errors.values()) == [1] * 6  # one per task x API model

    server = gold_server(old_rows)
    try:
        # api_base is a speed setting: a resume may point the model at another server
        models = ["baseline:tfidf-logreg",
                  *(f"{name}?api_base={server.base_url}" for name in API_MODELS)]
        code, out, err = run_cli(
            ["run", *TASKS, *(a for m in models for a in ("-m", m)), "--resume", str(stored_run),
             "--limit", str(LIMIT), "--executor", "local", "--no-cache", "-q"], capsys)
    finally:
        server.stop()
    assert code == 0, out + err

    # one request per error row, nothing else
    error_items = {(API_MODELS[r["model"]], r["input"]) for r in old_rows if r["error"]}
    requested = collections.Counter(
        (call["model"], next(text for _, text in error_items if text in call["_prompt"]))
        for call in server.calls)
    assert requested == collections.Counter(error_items)
    if settings == "as stored":
        assert not any("response_format" in call for call in server.calls)
        assert all(call["max_tokens"] in (32, 256) for call in server.calls)

    # the stored rows are kept as they were; the resume appended one row per error row
    text = (stored_run / "items.jsonl").read_text()
    assert text.startswith(old_text)
    new_rows = read_rows(stored_run)[len(old_rows):]
    assert collections.Counter((r["task"], r["model"]) for r in new_rows) == errors
    assert all(r["error"] is None and r["correct"] for r in new_rows)

    manifest = json.loads((stored_run / "manifest.json").read_text())
    assert not manifest.get("failures")
    assert len(manifest["resumed_at"]) == 1
    assert all(manifest["models"][name]["settings"]["api_base"] == server.base_url
               for name in API_MODELS)

    after = rows_by_pair(report_json(stored_run, capsys))
    assert after.keys() == before.keys()
    price_in, price_out = sheet_price("gpt-4o-mini")
    for pair, row in after.items():
        old = before[pair]
        if pair[1] not in API_MODELS:  # no error rows: nothing of it changed
            assert row == old
            continue
        assert row["n_errors"] == 0 and row["n_items"] == LIMIT
        assert row["n_correct"] == old["n_correct"] + 1
        assert row["accuracy"] == (old["n_correct"] + 1) / LIMIT
        assert row["n_invalid"] == old["n_invalid"] == 0
        if pair[1] == "openai/fake":
            assert row["priced"] is False and row["total_usd"] is None
            continue
        added = next(r for r in new_rows if (r["task"], r["model"]) == pair)
        assert added["tokens_in"] > 0 and added["tokens_out"] > 0
        cost = added["tokens_in"] * price_in + added["tokens_out"] * price_out
        assert row["total_usd"] == pytest.approx(old["total_usd"] + cost, rel=1e-12)
        assert row["usd_per_1k_items"] == pytest.approx(row["total_usd"] / LIMIT * 1000,
                                                        rel=1e-12)
