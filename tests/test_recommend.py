"""``slmbench recommend``: the cheapest model or cascade meeting a floor, from stored rows.

Runs are written by hand (the cascade tests' small/large rows, the report tests' 20-item intent
runs), so every figure the recommendation prints is recomputed here from the rows: the cascade
costs by the cascade module's own direct computation, the CI by the leaderboard's bootstrap.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import cli_in_fresh_process, run_cli
from test_cascade import IDS, LARGE, SMALL, TASK, expected, large_rows, small_rows
from test_reports import PRICES, TASKS, UNPRICED, intent_data, make_rows, write_run

from slmbench.analysis.recommend import parse_volume, recommend
from slmbench.errors import InputError
from slmbench.markdown import format_usd
from slmbench.reports.leaderboard import load_summaries
from slmbench.scoring.bootstrap import count_bootstrap_ci

NANO, MINI, GPT5 = "openai/gpt-5.4-nano", "openai/gpt-5.4-mini", "openai/gpt-5-mini"


@pytest.fixture
def pair_runs(tmp_path: Path) -> tuple[Path, Path]:
    return (write_run(tmp_path / "s", "small", small_rows(), TASK),
            write_run(tmp_path / "l", "large", large_rows(), TASK))


@pytest.fixture
def intent_run(tmp_path: Path) -> Path:
    rows = []
    for model, (gold, pred, errors) in intent_data().items():
        rows += make_rows("intent", model, gold, pred, errors=errors)
    return write_run(tmp_path, "board", rows, {"intent": TASKS["intent"]})


def item_cost(model: str, tin: int = 1000, tout: int = 100) -> float:
    pin, pout = PRICES[model]
    return (tin * pin + tout * pout) / 1e6


def test_cheapest_cascade_meeting_the_floor_is_the_decision(pair_runs):
    (rec,) = recommend(pair_runs, 0.8, confidence="point", volume_per_day=2e6)
    # small alone is right on 5 of 10, large alone on 8; escalating the items below 0.75
    # (4, 5, 6 by confidence; 7, 8, 9: failed, invalid, no confidence) gets 8 of 10 for less
    # than the large model on every item
    d = rec.decision
    want = expected({4, 5, 6, 7, 8, 9})
    assert d.models == (SMALL, LARGE) and d.threshold == 0.75
    assert d.n_correct == 8 and d.accuracy == 0.8
    assert d.usd_per_1k_items == pytest.approx(want["usd_per_1k_items"], rel=1e-12)
    assert d.usd_per_month(2e6) == pytest.approx(want["usd_per_1k_items"] / 1000 * 2e6 * 30)
    assert [d.ci_low, d.ci_high] == count_bootstrap_ci(8, 10, seed=0)
    # the runner-up is another family: the large model alone
    large_alone = expected(set(range(10)))["total_usd"] - expected(set())["total_usd"]
    assert rec.runner_up.models == (LARGE,)
    assert rec.runner_up.usd_per_1k_items == pytest.approx(large_alone / 10 * 1000)
    assert rec.savings_per_1k == pytest.approx(large_alone / 10 * 1000
                                               - want["usd_per_1k_items"])
    assert rec.points_given_up == 0.0  # 8/10 is the best any option gets
    # every option that meets the floor costs at least the decision
    assert all(o.usd_per_1k_items >= d.usd_per_1k_items for o in rec.meets)
    assert rec.meets[0] is d


def test_lower_bound_floor_names_the_closest_and_exits_1(pair_runs, capsys):
    (rec,) = recommend(pair_runs, 0.8)  # lower bound of 8/10 is far below 0.8
    assert rec.decision is None
    best_low = count_bootstrap_ci(8, 10, seed=0)[0]
    assert rec.closest.ci_low == best_low and rec.closest.n_correct == 8
    code, out, err = run_cli(["recommend", *map(str, pair_runs), "--min-accuracy", "80%"],
                             capsys)
    assert code == 1
    assert "no option reaches 80.0% by the lower bound of its 95% CI" in out
    assert f"the closest is {rec.closest.name}: 80.0%" in out


def test_gives_up_classes_and_json(intent_run, capsys):
    code, out, _ = run_cli(["recommend", str(intent_run), "--min-accuracy", "0.85",
                            "--confidence", "point", "--volume", "3e7/month", "--json"], capsys)
    assert code == 0
    (rec,) = json.loads(out)["recommendations"]
    # nano 16/20, gpt-5-mini 14/20, mini 18/20; the unpriced model (19/20) cannot be ranked
    assert rec["decision"]["name"] == MINI and rec["decision"]["accuracy"] == 0.9
    per_1k = item_cost(MINI) * 1000
    assert rec["decision"]["usd_per_1k_items"] == pytest.approx(per_1k)
    assert rec["volume_per_day"] == pytest.approx(1e6)
    assert rec["decision"]["usd_per_month"] == pytest.approx(per_1k / 1000 * 1e6 * 30)
    assert rec["runner_up"] is None and rec["savings_usd_per_month"] is None
    assert rec["most_accurate"]["name"] == UNPRICED
    assert rec["gives_up"]["accuracy_points"] == pytest.approx(5.0)
    # mini misses items 0 and 1 (billing|refund, card), the unpriced model only item 0
    assert rec["gives_up"]["classes_worse"] == [
        {"label": "card", "support": 7, "recall_most_accurate": 1.0, "recall": 6 / 7}]
    assert UNPRICED in rec["unpriced_meeting"]


def test_runner_up_and_savings_in_words(intent_run, capsys):
    code, out, _ = run_cli(["recommend", str(intent_run), "--min-accuracy", "0.75",
                            "--confidence", "point"], capsys)
    assert code == 0
    lines = out.splitlines()
    # nano (16/20, item 1 a failed call without tokens) is the cheapest at 80 %
    nano_1k = item_cost(NANO) * 19 / 20 * 1000
    assert lines[0].startswith(f"intent: ship {NANO}: 80.0% accuracy")
    assert f"{format_usd(nano_1k)} per 1k items" in lines[0]
    assert (f"{format_usd(nano_1k / 1000 * 1e6 * 30)} per month at 1,000,000 items/day"
            in lines[0])
    # the runner-up is the nano → gpt-5-mini fallback on the invalid answer and the failed
    # call (the cheapest large model): it answers both wrong, so 80 % for 2 calls more
    extra = item_cost(GPT5) * 2 / 20 * 1000
    assert lines[1].startswith(f"Runner-up: cascade({NANO} → {GPT5} invalid only): 80.0%")
    assert f"the decision saves {format_usd(extra)} per 1k items" in lines[1]
    assert lines[2].startswith("Gives up against the most accurate option "
                               f"({UNPRICED}, 95.0%")
    assert "15.0 accuracy points" in lines[2]


def test_report_markdown_has_the_ranking(intent_run, capsys):
    code, out, _ = run_cli(["report", str(intent_run), "--format", "md"], capsys)
    assert code == 0
    section = out.split("## Recommendation", 1)[1]
    # no floor: the cheapest option for each floor by the CI's lower bound, cheapest first
    rows = [line for line in section.splitlines() if line.startswith(f"| {NANO}")
            or line.startswith(f"| {MINI}")]
    assert [r.split(" | ")[0][2:] for r in rows] == [NANO, MINI]
    code, out, _ = run_cli(["report", str(intent_run), "--format", "md", "--min-accuracy",
                            "0.85", "--confidence", "point"], capsys)
    assert code == 0 and f"intent: ship {MINI}: 90.0% accuracy" in out
    assert "per month at 1,000,000 items/day" in out
    # the report's --volume is the volume the decision is priced at
    code, out, _ = run_cli(["report", str(intent_run), "--format", "md", "--min-accuracy",
                            "0.85", "--confidence", "point", "--volume", "2000"], capsys)
    assert code == 0 and "per month at 2,000 items/day" in out
    assert "per month at 1,000,000 items/day" not in out


@pytest.mark.parametrize("text,value", [("1e6/day", 1e6), ("3e7/month", 1e6),
                                        ("5000/hour", 120000.0), ("2,000", 2000.0)])
def test_volume(text, value):
    assert parse_volume(text) == pytest.approx(value)


@pytest.mark.parametrize("args,field", [
    (["--min-accuracy", "1.5"], "--min-accuracy"),
    (["--min-accuracy", "0.9", "--volume", "lots"], "--volume"),
    (["--min-accuracy", "0.9", "--confidence", "upper"], "--confidence"),
    (["--min-accuracy", "0.9", "--task", "nope"], "--task"),
])
def test_bad_input_is_one_line(intent_run, capsys, args, field):
    code, out, err = run_cli(["recommend", str(intent_run), *args], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and f"field '{field}'" in err


def test_runs_of_other_items_are_not_paired(tmp_path):
    small = write_run(tmp_path / "s", "small", small_rows(), TASK)
    large = write_run(tmp_path / "l", "large", large_rows(ids=[f"x{i}" for i in range(10)]),
                      TASK)
    (rec,) = recommend([small, large], 0.5, confidence="point")
    assert {o.name for o in rec.options} == {SMALL, LARGE}
    assert f"no cascade of {SMALL} and {LARGE}: they were not scored on the same items (10 and " \
        "10 items)" in rec.notes
    with pytest.raises(InputError):
        recommend([], 0.5)
    assert load_summaries([small])  # the runs stay readable
    assert IDS[0] == "i00"


def test_recommend_never_imports_litellm(intent_run):
    out, litellm_loaded = cli_in_fresh_process(
        ["recommend", str(intent_run), "--min-accuracy", "0.75", "--confidence", "point"])
    assert "ship openai/gpt-5.4-nano" in out and not litellm_loaded


# ---------------------------------------------------------------------------------------------
# gate --pair: two different model ids on the same items


def test_gate_pair_compares_two_models_on_the_same_items(intent_run, capsys):
    args = ["gate", str(intent_run), "--pair", f"{GPT5}={MINI}"]
    code, out, _ = run_cli(args, capsys)
    # gpt-5-mini misses items 0-5, mini 0-1: b = 4 (mini right, gpt-5-mini wrong), c = 0;
    # exact McNemar p = 2 / 2^4 = 0.125: a 20-point drop that 20 items cannot call significant
    line = next(x for x in out.splitlines() if x.startswith("PASS  accuracy"))
    assert f"intent × {GPT5} vs {MINI}: 90.0% → 70.0% on 20 shared items, drop +20.0 pp" in line
    assert "b=4 c=0 p=0.125" in line
    assert code == 0 and "gate: passed: 2 of 2 checks hold" in out
    # the cost check compares the two models' own prices: 450 vs 1200 $ per 1M items
    assert f"{GPT5} vs {MINI}: $1.2 → $0.45 per 1k items (-62.5%" in out
    code, out, _ = run_cli([*args, "--alpha", "0.2"], capsys)
    assert code == 1 and "FAIL  accuracy" in out
    # the reverse pair is an improvement
    code, out, _ = run_cli(["gate", str(intent_run), "--baseline", str(intent_run), "--pair",
                            f"{MINI}={GPT5}", "--alpha", "0.2"], capsys)
    assert code == 1 and "drop -20.0 pp" in out and "cost rose beyond the limit" in out


@pytest.mark.parametrize("pair,what", [("nope", "expected NEW=BASE"),
                                       (f"{GPT5}=openai/other", "no such model in the run")])
def test_gate_pair_bad_input(intent_run, capsys, pair, what):
    code, out, err = run_cli(["gate", str(intent_run), "--pair", pair], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "field '--pair'" in err and what in err
    code, out, err = run_cli(["gate", str(intent_run)], capsys)
    assert code == 2 and "field '--baseline'" in err


def test_gate_pair_of_model_ids_holding_equals_signs(tmp_path, capsys):
    gold = ["a"] * 10
    word, full = "baseline:tfidf-logreg?features=word", "baseline:tfidf-logreg"
    rows = (make_rows("t", word, gold, ["a"] * 7 + ["b"] * 3)
            + make_rows("t", full, gold, ["a"] * 9 + ["b"]))
    run = write_run(tmp_path, "eq", rows, TASK)
    code, out, _ = run_cli(["gate", str(run), "--pair", f"{word}={full}"], capsys)
    assert f"t × {word} vs {full}: 90.0% → 70.0% on 10 shared items" in out
    assert code == 0  # b=2 c=0: p = 0.5
    code, _, err = run_cli(["gate", str(run), "--pair", f"{word}=x=y"], capsys)
    assert code == 2 and "field '--pair'" in err and f"current: {full}, {word}" in err
