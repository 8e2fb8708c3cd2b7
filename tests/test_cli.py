"""The CLI as users meet it: fast --help, a full run with a leaderboard, report, resume."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import BUNDLED_TASKS, run_cli

HEAVY = ("litellm", "llama_cpp", "sklearn", "pandas", "datasets")


def test_help_imports_nothing_heavy():
    code = ("import sys\nfrom slmbench.cli import main\nsys.argv=['slmbench','--help']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "Usage" in out
    assert out.strip().splitlines()[-1] == "[]"


def test_run_report_and_resume(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "250")
    args = ["run", str(BUNDLED_TASKS / "banking77_mini.yaml"),
            str(BUNDLED_TASKS / "support_routing.yaml"), "-m", "baseline:tfidf-logreg",
            "--results-dir", str(tmp_path), "--run-id", "cli", "--limit", "10", "-q"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    assert "banking77-mini" in out and "support-routing" in out and "baseline:tfidf-logreg" in out
    run = tmp_path / "cli"
    rows = [json.loads(x) for x in (run / "items.jsonl").read_text().splitlines()]
    assert len(rows) == 20
    summary = json.loads((run / "summary.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["environment"]["packages"]["scikit-learn"]
    assert set(manifest["tasks"]) == {"banking77-mini", "support-routing"}
    assert all(len(t["dataset_fingerprint"]) == 64 for t in manifest["tasks"].values())

    # the markdown report is rebuilt from rows and agrees with the stored summary
    code, md, err = run_cli(["report", str(run), "--format", "md"], capsys)
    assert code == 0, err
    for entry in summary["results"]:
        assert f"| {entry['task']} | {entry['model']} | {entry['n_items']} | " \
               f"{entry['accuracy']:.1%} |" in md

    # resuming a finished run calls no model and leaves the rows alone
    from slmbench.runner.run import run_benchmark

    again = run_benchmark([BUNDLED_TASKS / "banking77_mini.yaml",
                           BUNDLED_TASKS / "support_routing.yaml"], ["baseline:tfidf-logreg"],
                          results_dir=tmp_path, run_id="cli",
                          options=__import__("slmbench.runner.run", fromlist=["RunOptions"])
                          .RunOptions(limit=10))
    assert again.calls == 0
    assert len((run / "items.jsonl").read_text().splitlines()) == 20
    assert [e["accuracy"] for e in again.summary["results"]] == \
        [e["accuracy"] for e in summary["results"]]


def test_resume_fills_only_missing_items(tmp_path, capsys):
    base = ["run", str(BUNDLED_TASKS / "banking77_mini.yaml"), "-m", "baseline:tfidf-logreg",
            "--results-dir", str(tmp_path), "--run-id", "part", "-q"]
    assert run_cli([*base, "--limit", "5"], capsys)[0] == 0
    items = tmp_path / "part" / "items.jsonl"
    # a bare resume continues the run as it was started: its --limit 5 included
    assert run_cli(["run", "--resume", str(tmp_path / "part"), "-q"], capsys)[0] == 0
    assert len(items.read_text().splitlines()) == 5
    # an option given on the resume wins: a larger --limit fills only the missing items
    code, out, err = run_cli(["run", str(BUNDLED_TASKS / "banking77_mini.yaml"),
                              "-m", "baseline:tfidf-logreg", "--resume", str(tmp_path / "part"),
                              "--limit", "50", "-q"], capsys)
    assert code == 0, err
    rows = [json.loads(x) for x in items.read_text().splitlines()]
    assert len(rows) == 50 and len({r["item_id"] for r in rows}) == 50


def test_resume_refuses_a_changed_task(tmp_path, capsys, cls_task):
    base = ["run", str(cls_task), "-m", "baseline:tfidf-logreg", "--results-dir", str(tmp_path),
            "--run-id", "x", "-q"]
    assert run_cli(base, capsys)[0] == 0
    cls_task.write_text(cls_task.read_text().replace("tiny-cls", "tiny-cls") + "\n# edited\n"
                        "description: changed\n")
    code, _, err = run_cli(base, capsys)
    assert code == 2 and "changed since this run started" in err


def test_resume_allows_a_speed_setting_and_refuses_an_answer_setting(tmp_path, capsys):
    """timeout / n_threads / instances only change how fast a model answers: a resume may
    change them; temperature changes the answers: refused (and named)."""
    from fakeserver import FakeOpenAIServer

    task = str(BUNDLED_TASKS / "banking77_mini.yaml")
    with FakeOpenAIServer(lambda body: "card_arrival") as server:
        model = f"openai/fake?api_base={server.base_url}"
        base = ["run", task, "--results-dir", str(tmp_path), "--run-id", "r", "-q",
                "--executor", "local"]
        assert run_cli([*base, "-m", f"{model}&timeout=30", "--limit", "5"], capsys)[0] == 0
        code, _, err = run_cli([*base, "-m", f"{model}&timeout=90", "--limit", "8"], capsys)
        assert code == 0, err
        assert len(server.calls) == 8  # 5, then only the 3 missing items
        code, _, err = run_cli([*base, "-m", f"{model}&temperature=0.7", "--limit", "8"],
                               capsys)
        assert len(server.calls) == 8
    assert code == 2 and "model settings changed" in err and "'openai/fake'" in err
    from slmbench.models.base import semantic_settings

    chain = {"steps": [{"model": "llamacpp:x", "settings": {"n_threads": 1, "seed": 0}}]}
    assert semantic_settings(chain) == {"steps": [{"model": "llamacpp:x", "settings": {"seed": 0}}]}


def test_torn_last_line_is_skipped_and_reported(tmp_path, capsys):
    args = ["run", str(BUNDLED_TASKS / "banking77_mini.yaml"), "-m", "baseline:tfidf-logreg",
            "--results-dir", str(tmp_path), "--run-id", "torn", "--limit", "4", "-q"]
    assert run_cli(args, capsys)[0] == 0
    items = tmp_path / "torn" / "items.jsonl"
    lines = items.read_text().splitlines()
    items.write_text("\n".join(lines[:3]) + "\n" + lines[3][:25])  # a kill mid-write
    from slmbench.analysis.summary import build_summary
    from slmbench.store import open_run

    summary = build_summary(open_run(tmp_path / "torn"))
    assert summary["skipped_lines"] == [4]
    assert summary["results"][0]["n_items"] == 3
    # resuming re-does exactly the torn item
    assert run_cli(args, capsys)[0] == 0
    rows = open_run(tmp_path / "torn").rows()
    assert len(rows) == 4
