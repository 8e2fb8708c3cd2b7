"""The CI gate: planted regressions fail (exit 1), noise passes (0), bad input is exit 2."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest
from conftest import run_cli
from test_reports import make_rows, write_run

from slmbench.analysis.gate import (
    Thresholds,
    gate_runs,
    mcnemar,
    mcnemar_chi2,
    mcnemar_exact_p,
    parse_percent,
)
from slmbench.errors import InputError

TASK = {"t": {"kind": "classification", "labels": ["a", "b"]}}
NANO = "openai/gpt-5.4-nano"


def run_with(folder, run_id, n, right, *, model=NANO, task="t", tin=1000, ids=None):
    """``n`` items whose gold is 'a'; the model is right exactly on the indices in ``right``."""
    gold = ["a"] * n
    pred = ["a" if i in right else "b" for i in range(n)]
    rows = make_rows(task, model, gold, pred, tin=tin, ids=ids)
    tasks = {task: {"kind": "classification", "labels": ["a", "b"]}}
    return write_run(folder, run_id, rows, tasks)


# ---------------------------------------------------------------------------------------------
# McNemar, against values computed by hand


def test_mcnemar_exact_matches_hand_computed_values():
    # b=10, c=2: 2 * (C(12,0) + C(12,1) + C(12,2)) / 2^12 = 2 * 79 / 4096
    assert mcnemar_exact_p(10, 2) == pytest.approx(158 / 4096) == pytest.approx(0.0385742, 1e-5)
    assert mcnemar_exact_p(2, 10) == mcnemar_exact_p(10, 2)
    assert mcnemar_exact_p(2, 0) == pytest.approx(0.5)           # 2 * 1/4
    assert mcnemar_exact_p(5, 0) == pytest.approx(2 / 32)        # 0.0625
    assert mcnemar_exact_p(6, 0) == pytest.approx(2 / 64)        # 0.03125
    assert mcnemar_exact_p(0, 0) == 1.0
    assert mcnemar_exact_p(3, 3) == 1.0                           # capped at 1
    assert mcnemar(10, 2) == ("exact", pytest.approx(0.0385742, 1e-5))


def test_mcnemar_chi_square_with_continuity_correction():
    # b=30, c=0: (30-1)^2/30 = 28.0333; p = erfc(sqrt(28.0333/2)) = 1.1924e-07
    stat, p = mcnemar_chi2(30, 0)
    assert stat == pytest.approx(841 / 30)
    assert p == pytest.approx(1.1924366854e-07, rel=1e-6)
    # b=20, c=5: (15-1)^2/25 = 7.84; chi2(1) tail = 0.0051103
    assert mcnemar_chi2(20, 5) == (pytest.approx(7.84), pytest.approx(0.00511026, rel=1e-5))
    assert mcnemar_chi2(13, 13)[1] == 1.0
    # the method switches at b + c = 25
    assert mcnemar(12, 12)[0] == "exact" and mcnemar(13, 12)[0] == "chi2"
    assert mcnemar(20, 5) == ("chi2", pytest.approx(0.00511026, rel=1e-5))


def test_mcnemar_agrees_with_scipy_where_available():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(10, 2), (7, 1), (0, 9), (11, 12), (4, 4)]:
        assert mcnemar_exact_p(b, c) == pytest.approx(stats.binomtest(b, b + c).pvalue)
    for b, c in [(30, 0), (20, 5), (40, 22), (100, 80)]:
        stat = (abs(b - c) - 1) ** 2 / (b + c)
        assert mcnemar_chi2(b, c)[1] == pytest.approx(stats.chi2.sf(stat, 1))


# ---------------------------------------------------------------------------------------------
# the gate end to end


def test_planted_significant_drop_fails_with_figures_and_junit(tmp_path, capsys):
    # 200 items: baseline right on 180 (90 %), current on 150 (75 %); all 30 discordant pairs
    # go one way (b=30, c=0)
    base = run_with(tmp_path / "b", "base", 200, set(range(180)))
    cur = run_with(tmp_path / "c", "cur", 200, set(range(150)))
    junit = tmp_path / "gate.xml"
    code, out, err = run_cli(["gate", str(cur), "--baseline", str(base), "--junit", str(junit)],
                             capsys)
    assert code == 1, (out, err)
    line = next(x for x in out.splitlines() if x.startswith("FAIL") and "accuracy" in x)
    assert "90.0% → 75.0%" in line and "drop +15.0 pp" in line and "b=30 c=0" in line
    assert "p=1.19e-07" in line and "chi2" in line
    assert "gate: FAILED" in out
    root = ET.parse(junit).getroot()
    cases = root.iter("testcase")
    acc = next(c for c in cases if c.get("classname") == "slmbench.gate.accuracy")
    failure = acc.find("failure")
    assert failure is not None and "drop +15.0 pp" in failure.get("message")
    assert "drop_pp = 15.0" in failure.text and "p_value = 1.19" in failure.text
    suite = root.find("testsuite")
    assert suite.get("failures") == "1" and suite.get("tests") == "2"
    cost = next(c for c in root.iter("testcase") if c.get("classname") == "slmbench.gate.cost")
    assert cost.find("failure") is None


def test_drop_within_noise_passes(tmp_path, capsys):
    # 50 items, 2 flip from right to wrong: a 4 pp drop, above the 1 pp limit, but p = 0.5
    base = run_with(tmp_path / "b", "base", 50, set(range(45)))
    cur = run_with(tmp_path / "c", "cur", 50, set(range(43)))
    code, out, err = run_cli(["gate", str(cur), "--baseline", str(base)], capsys)
    assert code == 0, (out, err)
    line = next(x for x in out.splitlines() if x.startswith("PASS") and "accuracy" in x)
    assert "drop +4.0 pp" in line and "p=0.5" in line and "not significant" in line


def test_significant_drop_within_the_limit_passes(tmp_path, capsys):
    base = run_with(tmp_path / "b", "base", 200, set(range(180)))
    cur = run_with(tmp_path / "c", "cur", 200, set(range(150)))
    code, out, _ = run_cli(["gate", str(cur), "--baseline", str(base),
                            "--max-accuracy-drop", "20"], capsys)
    assert code == 0 and "within the limit" in out


def test_cost_increase_fails_and_unpriced_is_skipped(tmp_path, capsys):
    base = run_with(tmp_path / "b", "base", 40, set(range(36)))
    dearer = run_with(tmp_path / "c", "cur", 40, set(range(36)), tin=2000)
    code, out, _ = run_cli(["gate", str(dearer), "--baseline", str(base)], capsys)
    # $/1k items: 40 * (1000*0.20 + 100*1.25)/1e6 -> (2000*0.20 + 100*1.25): +61.5 %
    expected = (2000 * 0.20 + 125) / (1000 * 0.20 + 125) - 1
    line = next(x for x in out.splitlines() if x.startswith("FAIL") and " cost " in x)
    assert f"{expected:+.1%}" in line and "limit +10.0%" in line
    assert code == 1
    code, out, _ = run_cli(["gate", str(dearer), "--baseline", str(base),
                            "--max-cost-increase", "70%"], capsys)
    assert code == 0
    ub = run_with(tmp_path / "ub", "base", 40, set(range(36)), model="openai/in-house")
    uc = run_with(tmp_path / "uc", "cur", 40, set(range(36)), model="openai/in-house", tin=9)
    code, out, _ = run_cli(["gate", str(uc), "--baseline", str(ub)], capsys)
    assert code == 0
    assert any(x.startswith("SKIP") and "unpriced" in x for x in out.splitlines())


def test_items_in_only_one_run_are_reported_not_joined(tmp_path, capsys):
    ids = [f"q{i:02d}" for i in range(30)]
    base = run_with(tmp_path / "b", "base", 28, set(range(28)), ids=ids[:28])
    cur = run_with(tmp_path / "c", "cur", 26, set(range(26)), ids=ids[4:30])
    code, out, _ = run_cli(["gate", str(cur), "--baseline", str(base)], capsys)
    assert code == 0
    note = next(x for x in out.splitlines() if x.startswith("note") and "only in current" in x)
    assert "2 only in current (q28, q29)" in note
    assert "4 only in baseline (q00, q01, q02, …)" in note
    assert "on 24 shared items" in out


def test_min_accuracy_floor(tmp_path, capsys):
    base = run_with(tmp_path / "b", "base", 20, set(range(18)))
    cur = run_with(tmp_path / "c", "cur", 20, set(range(18)))
    code, out, _ = run_cli(["gate", str(cur), "--baseline", str(base), "--min-accuracy", "0.95"],
                           capsys)
    assert code == 1
    assert any(x.startswith("FAIL") and "min-accuracy" in x and "90.0%" in x and "95.0%" in x
               for x in out.splitlines())
    code, _, _ = run_cli(["gate", str(cur), "--baseline", str(base), "--min-accuracy", "85%"],
                         capsys)
    assert code == 0


def test_baseline_with_other_tasks_is_bad_input(tmp_path, capsys):
    base = run_with(tmp_path / "b", "base", 20, set(range(18)), task="other-task")
    cur = run_with(tmp_path / "c", "cur", 20, set(range(18)))
    code, out, err = run_cli(["gate", str(cur), "--baseline", str(base)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "no task × model pair in common" in err and "other-task" in err


@pytest.mark.parametrize("option,value", [("--max-cost-increase", "ten"),
                                          ("--max-accuracy-drop", "a lot"),
                                          ("--alpha", "2"), ("--min-accuracy", "1.5")])
def test_unparseable_threshold_is_bad_input(tmp_path, capsys, option, value):
    base = run_with(tmp_path / "b", "base", 10, set(range(9)))
    code, _, err = run_cli(["gate", str(base), "--baseline", str(base), option, value], capsys)
    assert code == 2 and option in err and value in err and len(err.strip().splitlines()) == 1


def test_thresholds_parse():
    assert parse_percent("10%", "x") == pytest.approx(0.10)
    assert parse_percent("2.5", "x") == pytest.approx(0.025)
    th = Thresholds.parse("1.5pp", "25%", "0.9", "0.01")
    assert th == Thresholds(1.5, 0.25, 0.9, 0.01)
    with pytest.raises(InputError):
        parse_percent("-5%", "x")


def test_gate_library_result(tmp_path):
    base = run_with(tmp_path / "b", "base", 200, set(range(180)))
    cur = run_with(tmp_path / "c", "cur", 200, set(range(150)))
    result = gate_runs(cur, base)
    assert not result.passed
    acc = next(c for c in result.checks if c.name == "accuracy")
    assert (acc.figures["b"], acc.figures["c"]) == (30, 0)
    assert acc.figures["drop_pp"] == pytest.approx(15.0)
    assert math.isclose(acc.figures["p_value"], 1.1924366854e-07, rel_tol=1e-6)


def test_example_workflow_uses_real_options():
    import inspect
    import re

    import yaml
    from conftest import REPO

    from slmbench.cli_reports import gate, report

    flow = yaml.safe_load((REPO / "examples" / "github-actions-gate.yml").read_text())
    assert "pull_request" in flow[True]  # YAML 1.1 reads the key `on` as True
    steps = flow["jobs"]["gate"]["steps"]
    script = "\n".join(s.get("run", "") for s in steps).replace("\\\n", " ")
    assert any(s.get("uses", "").startswith("actions/upload-artifact") for s in steps)
    assert "GITHUB_STEP_SUMMARY" in script
    for name, func in (("gate", gate), ("report", report)):
        line = next(x for x in script.splitlines() if f"slmbench {name} " in x)
        known = {"--" + p.replace("_", "-") for p in inspect.signature(func).parameters}
        known |= {"--format"}
        used = set(re.findall(r"(--[a-z-]+)", line))
        assert used and used <= known, used - known
