"""Metric values checked against figures computed by hand."""

from __future__ import annotations

import pytest

from slmbench.scoring import (
    INVALID,
    classification_metrics,
    extraction_metrics,
    label_matcher,
    most_confused,
    parse_json_object,
    parse_label,
    routing_metrics,
)
from slmbench.scoring.bootstrap import bootstrap_ci
from slmbench.tasks.spec import FieldSpec


def test_classification_metrics_match_hand_computed_confusion_matrix():
    # gold a a a b b c ; pred a a b b INVALID a
    gold = ["a", "a", "a", "b", "b", "c"]
    pred = ["a", "a", "b", "b", INVALID, "a"]
    m = classification_metrics(gold, pred, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(3 / 6)
    # a: tp=2 fp=1 fn=1 -> p=2/3 r=2/3 f=2/3 ; b: tp=1 fp=1 fn=1 -> 1/2 ; c: 0
    assert m["per_class"]["a"] == pytest.approx(
        {"precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3})
    assert m["per_class"]["b"]["f1"] == pytest.approx(0.5)
    assert m["per_class"]["c"]["f1"] == 0.0
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.5 + 0.0) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 2 / 3 + 2 * 0.5 + 0) / 6)
    assert m["confusion"]["matrix"] == [[2, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert most_confused(m["confusion"], top=2) == [("a", "b", 1), ("c", "a", 1)]


def test_bootstrap_ci_is_seeded_and_brackets_the_mean():
    correct = [True] * 70 + [False] * 30
    lo, hi = bootstrap_ci(correct, seed=1)
    assert lo < 0.7 < hi
    assert 0.58 < lo < 0.65 and 0.75 < hi < 0.82
    assert bootstrap_ci(correct, seed=1) == [lo, hi]
    assert bootstrap_ci([True] * 10) == [1.0, 1.0]


def test_routing_metrics_count_fallback():
    gold = ["cards", "pay", "human", "pay"]
    routed = ["cards", "human", "human", "pay"]
    m = routing_metrics(gold, routed, ["cards", "pay", "human"], "human")
    assert m["accuracy"] == 0.75
    assert m["fallback_rate"] == 0.5
    assert m["accuracy_fallback_as_miss"] == 0.5


@pytest.mark.parametrize("raw, expected", [
    ("card_arrival", "card_arrival"),
    ("  Card-Arrival.\n", "card_arrival"),
    ('"card arrival"', "card_arrival"),
    ("Intent: CARD_ARRIVAL", "card_arrival"),
    ("`pin_blocked`", "pin_blocked"),
    ("pin_blocked\nbecause the user said so", "pin_blocked"),
    ("card", None),
    ("", None),
    ("the card has arrived", None),
])
def test_label_normalisation(raw, expected):
    matcher = label_matcher(("card_arrival", "pin_blocked"))
    assert parse_label(raw, matcher) == expected


@pytest.mark.parametrize("raw, expected", [
    ('{"a": 1}', {"a": 1}),
    ('Sure!\n```json\n{"a": "x"}\n```', {"a": "x"}),
    ('prefix {"a": 2} suffix', {"a": 2}),
    ("[1, 2]", None),
    ("{not json", None),
    ("", None),
])
def test_json_parsing(raw, expected):
    assert parse_json_object(raw) == expected


def test_extraction_metrics_over_field_value_pairs():
    fields = [FieldSpec("city"), FieldSpec("qty", "integer"), FieldSpec("tags", "list")]
    gold = [{"city": "Lisbon", "qty": 3, "tags": ["a", "b"]},
            {"city": "Porto", "qty": 1, "tags": None}]
    pred = [{"city": " lisbon. ", "qty": "3", "tags": ["A", "c"]},  # city+qty+a right, c wrong
            None]  # invalid JSON
    m = extraction_metrics(gold, pred, fields)
    # item1: pred pairs city,qty,a,c ; gold city,qty,a,b -> tp 3 fp 1 fn 1
    # item2: gold city,qty -> fn 2
    assert m["micro_precision"] == pytest.approx(3 / 4)
    assert m["micro_recall"] == pytest.approx(3 / 6)
    assert m["micro_f1"] == pytest.approx(2 * 0.75 * 0.5 / 1.25)
    assert m["per_field"]["tags"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "tp": 1, "fp": 1, "fn": 1})
    assert m["exact_match"] == 0.0
    assert m["json_valid_rate"] == 0.5


def test_binomial_bootstrap_matches_the_index_bootstrap_distribution():
    """The O(1)-memory bootstrap draws from the same distribution as resampling indices."""
    import numpy as np

    correct = [True] * 37 + [False] * 13
    rng = np.random.default_rng(123)
    values = np.asarray(correct, dtype=float)
    classic = values[rng.integers(0, 50, size=(20000, 50))].mean(axis=1)
    lo, hi = bootstrap_ci(correct, seed=5, n_resamples=20000)
    assert lo == pytest.approx(np.quantile(classic, 0.025), abs=0.021)
    assert hi == pytest.approx(np.quantile(classic, 0.975), abs=0.021)
    big = bootstrap_ci([True, False, True, True] * 250_000)  # a million items, no big matrix
    assert big[0] < 0.75 < big[1] and big[1] - big[0] < 0.002


def test_templates_substitute_names_only():
    """A template cannot reach attributes, indexes or code: only {name} is replaced."""
    from slmbench.tasks.prompts import fill

    hostile = "{text} {text.__class__} {text[0]} {labels!r} {__import__} {0}"
    out = fill(hostile, {"text": "hi", "labels": "a"})
    assert out == "hi {text.__class__} {text[0]} {labels!r} {__import__} {0}"
