"""Edge cases of a summary built from stored rows, on both paths of ``build_summary`` (the
columnar read of label tasks and the row dicts): corrupt gold values, and costs so small that
correct answers per dollar overflow.

Task loading refuses a dataset whose gold answer is not one of the task's labels (routes), or
whose extraction gold is not a mapping (tests/test_bad_input.py), so a stored row that holds one
is corrupt: the summary names it in one InputError (items.jsonl, field, item, value) instead of
crashing inside sklearn or on ``None.get``.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import SUMMARY_LABELS, SUMMARY_ROUTES, run_cli, summary_manifest, write_stored_run

from slmbench.analysis import summary as S
from slmbench.errors import InputError
from slmbench.pricing.cost import hourly_cost, summarize_costs
from slmbench.pricing.run_costs import PricingOptions
from slmbench.reports.leaderboard import fmt, render_markdown, render_text
from slmbench.scoring import classification_metrics
from slmbench.store import RunDir

LABELS, ROUTES = SUMMARY_LABELS, SUMMARY_ROUTES
MODELS = {"openai/gpt-5.4": {"pricing": "tokens"}, "local:hourly": {"pricing": "hourly"}}
MANIFEST = summary_manifest("edges", MODELS, n_items=4)


def row(i: int, task: str = "cls", model: str = "openai/gpt-5.4", **over: Any) -> dict:
    gold: Any = {"cls": LABELS, "route": ROUTES}.get(task, LABELS)[i % 3]
    base = {"task": task, "model": model, "item_id": f"i{i}", "gold": gold, "answer": gold,
            "correct": True, "invalid": False, "error": None, "latency_s": 0.5,
            "confidence": None, "tokens_in": 100, "tokens_out": 3, "token_source": "provider",
            "cached": False}
    if task == "route":
        base["routed"] = gold
    if task == "ext":
        base.update(gold={"amount": str(i)}, answer={"amount": str(i)})
    return {**base, **over}


def write_run(tmp_path: Path, rows: list[dict], name: str = "r") -> Path:
    return write_stored_run(tmp_path / name, MANIFEST, rows)


def both_raise(run: Path) -> InputError:
    """The InputError of both summary paths, which must be the same."""
    errors = []
    for columnar in (True, False):
        with pytest.raises(InputError) as exc:
            S.build_summary(RunDir(run), columnar=columnar)
        errors.append(exc.value)
    col, rows = errors
    assert (str(col), col.file, col.field, col.value) == \
        (str(rows), rows.file, rows.field, rows.value)
    assert "\n" not in str(col)
    return col


def both_summaries(run: Path, pricing: PricingOptions | None = None) -> dict:
    col = S.build_summary(RunDir(run), pricing)
    rows = S.build_summary(RunDir(run), pricing, columnar=False)
    for s in (col, rows):
        s.pop("generated_at")
        json.dumps(s, allow_nan=False)  # no inf / nan in a summary
    assert col == rows
    return col


# ---------------------------------------------------------------------------------------------
# 1. a classification / routing pair whose gold is not one of the task's labels


def test_pair_without_any_gold_label_is_a_clear_input_error(tmp_path):
    run = write_run(tmp_path, [row(0, gold="other"), row(1, gold="zzz", answer="pay")])
    err = both_raise(run)
    items = run / "items.jsonl"
    assert str(err) == (f"{items}, field 'gold', value 'other': item 'i0' of cls · "
                        "openai/gpt-5.4: the stored gold is not one of the task's labels")
    assert (err.file, err.field, err.value) == (str(items), "gold", "other")


def test_routing_gold_outside_the_routes_names_the_first_item_in_id_order(tmp_path):
    # the columnar read meets i7 first (file order); both paths name i2, the row path's first
    rows = [row(7, "route", gold="refunds"), *(row(i, "route") for i in (0, 1, 3)),
            row(2, "route", gold=None), row(5, "route")]
    err = both_raise(write_run(tmp_path, rows))
    assert str(err).endswith("value None: item 'i2' of route · openai/gpt-5.4: the stored "
                             "gold is not one of the task's routes")
    assert (err.field, err.value) == ("gold", None)


def test_a_confidence_outside_0_1_names_items_jsonl_and_the_item(tmp_path):
    run = write_run(tmp_path, [row(0), row(1, confidence=1.5), row(2, confidence="high")])
    err = both_raise(run)
    assert str(err) == (f"{run / 'items.jsonl'}, field 'confidence', value 1.5: item 'i1' of "
                        "cls · openai/gpt-5.4: the stored confidence must be a number between "
                        "0 and 1 or null")


def test_report_on_such_a_run_is_one_line_and_exit_2(tmp_path, capsys):
    run = write_run(tmp_path, [row(0, gold="other"), row(1, gold="zzz")])
    code, _, err = run_cli(["report", str(run)], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "items.jsonl" in err and "field 'gold'" in err and "'other'" in err


def test_classification_metrics_without_any_gold_label_are_defined():
    """Called directly (not through a stored run), the scoring gives figures, not sklearn's
    'At least one label specified must be in y_true': every item a miss, F1 0 over the labels."""
    out = classification_metrics(["other", "zzz", "zzz"], ["card", "zzz", "<invalid>"], LABELS)
    assert out["accuracy"] == pytest.approx(1 / 3)  # "zzz" == "zzz": the string matches
    assert out["macro_f1"] == 0.0 and out["weighted_f1"] == 0.0
    assert out["per_class"]["card"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0,
                                        "support": 0}
    assert out["confusion"]["matrix"] == [[0, 0, 0]] * 3
    none = classification_metrics(["other"], ["<invalid>"], LABELS)  # no label anywhere
    assert (none["accuracy"], none["macro_f1"], none["weighted_f1"]) == (0.0, 0.0, 0.0)


def test_confusion_matrix_equals_sklearns():
    from sklearn.metrics import confusion_matrix

    rng = np.random.default_rng(5)
    labels = [f"l{k}" for k in range(6)]
    gold = [labels[k] for k in rng.integers(0, 6, 500)]
    pred = [labels[k] if k < 6 else "<invalid>" for k in rng.integers(0, 8, 500)]
    out = classification_metrics(gold, pred, labels)
    assert out["confusion"]["matrix"] == confusion_matrix(gold, pred, labels=labels).tolist()


# ---------------------------------------------------------------------------------------------
# 2. subnormal costs


def test_costs_so_small_that_correct_per_usd_overflows_count_as_free():
    tiny = summarize_costs([5e-324], 1)  # the smallest subnormal
    assert tiny["priced"] and tiny["total_usd"] == 5e-324
    assert tiny["usd_per_correct"] == 5e-324 and tiny["correct_per_usd"] is None
    # a normal but tiny total overflows too: 2 / 1e-308 > 1.8e308
    assert summarize_costs([1e-308, 0.0], 2)["correct_per_usd"] is None
    assert summarize_costs([1e-300], 1)["correct_per_usd"] == pytest.approx(1e300)
    assert summarize_costs([5e-324], 0)["correct_per_usd"] == 0.0
    assert summarize_costs([0.0, 0.0], 2)["correct_per_usd"] is None  # free


def test_subnormal_hourly_costs_give_a_finite_summary_and_no_inf_in_reports(tmp_path):
    lats = [1e-310, 3e-310, 0.0]
    rows = [row(i, model="local:hourly", latency_s=lat, correct=i < 2)
            for i, lat in enumerate(lats)]
    pricing = PricingOptions(hourly_usd=1.0)
    summary = both_summaries(write_run(tmp_path, rows), pricing)
    (entry,) = summary["results"]
    total = math.fsum(hourly_cost(lat, 1.0) for lat in lats)
    assert 0.0 < total < 2.2250738585072014e-308  # subnormal
    assert entry["priced"] and entry["total_usd"] == total and entry["n_correct"] == 2
    assert entry["usd_per_correct"] == total / 2
    assert entry["correct_per_usd"] is None  # was inf
    text = render_text([summary])
    head = next(x for x in text.splitlines() if "correct/$" in x)
    line = next(x for x in text.splitlines() if "local:hourly" in x)
    cells = dict(zip([c.strip() for c in head.split("┃")], [c.strip() for c in line.split("│")],
                     strict=True))
    assert cells["correct/$"] == "–" and cells["$/correct"] == f"${total / 2:.3g}"
    assert not re.search(r"\binf\b", text) and not re.search(r"\binf\b", render_markdown(summary))
    assert fmt("correct_per_usd", math.inf, {"priced": True}) == "–"  # an old summary.json


# ---------------------------------------------------------------------------------------------
# 3. an extraction row whose gold is null


def test_extraction_gold_null_is_a_clear_input_error(tmp_path):
    run = write_run(tmp_path, [row(0, "ext"), row(1, "ext", gold=None), row(2, "ext")])
    err = both_raise(run)
    items = run / "items.jsonl"
    assert str(err) == (f"{items}, field 'gold', value None: item 'i1' of ext · "
                        "openai/gpt-5.4: the stored gold must be a mapping of field values")
    assert (err.file, err.field, err.value) == (str(items), "gold", None)


def test_extraction_answer_that_is_not_a_mapping_is_a_clear_input_error(tmp_path):
    run = write_run(tmp_path, [row(0, "ext", answer=5), row(1, "ext", answer=None)])
    err = both_raise(run)
    assert str(err).endswith("field 'answer', value 5: item 'i0' of ext · openai/gpt-5.4: the "
                             "stored answer must be a mapping of field values or null")


def test_valid_rows_of_every_kind_still_summarise(tmp_path):
    rows = [*(row(i) for i in range(4)), *(row(i, "route") for i in range(4)),
            *(row(i, "ext") for i in range(3)), row(3, "ext", answer=None, correct=False)]
    summary = both_summaries(write_run(tmp_path, rows), PricingOptions(price_date="2026-11-22"))
    acc = {e["task"]: e["accuracy"] for e in summary["results"]}
    assert acc == {"cls": 1.0, "route": 1.0, "ext": 0.75}


def test_a_prediction_that_is_not_a_label_string_is_a_clear_input_error(tmp_path):
    """A list answer used to crash in scoring (unhashable); a failed call's answer is not read
    by scoring, so it is not checked either."""
    run = write_run(tmp_path, [row(0, answer=["card"]), row(1, answer=None, correct=False),
                               row(2, answer=7, error="boom", correct=False)])
    err = both_raise(run)
    assert str(err).endswith("field 'answer', value ['card']: item 'i0' of cls · "
                             "openai/gpt-5.4: the stored answer must be a string or null")
    ok = write_run(tmp_path, [row(0), row(1, answer=[7], error="boom", correct=False),
                              row(0, "route", routed=None, correct=False),
                              row(1, "route", routed=[0], error="boom", correct=False)], "ok")
    summary = both_summaries(ok, PricingOptions(price_date="2026-11-22"))
    assert [(e["task"], e["n_errors"], e["accuracy"]) for e in summary["results"]] == \
        [("cls", 1, 0.5), ("route", 1, 0.0)]
