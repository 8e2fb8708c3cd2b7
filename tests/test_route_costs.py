"""Routing: when a route (typically the fallback) leads to a model, its downstream call's cost is
part of the router's cost per item and per correct answer."""

from __future__ import annotations

import pytest
import yaml
from conftest import BUNDLED_TASKS, run_cli

from slmbench.models.tokens import count_tiktoken
from slmbench.pricing.run_costs import PricingOptions
from slmbench.runner.run import RunOptions, run_benchmark

LARGE, LARGE_PRICE = "openai/gpt-5.4-mini", (0.75, 4.50)  # pricing/openai/2026-11-22.yaml


def routing_task(tmp_path, target: str, tokens_out: int | None = 300, **extra):
    spec = yaml.safe_load((BUNDLED_TASKS / "support_routing.yaml").read_text())
    for name, path in spec["dataset"]["files"].items():
        spec["dataset"]["files"][name] = str(BUNDLED_TASKS / path)
    human = next(r for r in spec["routes"] if r["name"] == "human_agent")
    human["target"] = target
    if tokens_out is not None:
        human["tokens_out"] = tokens_out
    human.update(extra)
    path = tmp_path / "routing.yaml"
    path.write_text(yaml.safe_dump(spec), encoding="utf-8")
    return path


def test_fallback_model_route_is_priced_per_routed_item(tmp_path, capsys):
    task = routing_task(tmp_path, f"model:{LARGE}", 300)
    result = run_benchmark([task], ["baseline:tfidf-logreg"], results_dir=tmp_path,
                           run_id="r", options=RunOptions(pricing=PricingOptions(
                               price_date="2026-11-22")))
    entry = result.summary["results"][0]
    rows = result.run.rows()
    routed = [r for r in rows if r["routed"] == "human_agent"]
    assert 0 < len(routed) < len(rows)
    path_usd = sum((count_tiktoken(r["input"]) * LARGE_PRICE[0] + 300 * LARGE_PRICE[1]) / 1e6
                   for r in routed)
    paths = entry["route_paths"]
    assert set(paths) == {"human_agent"}
    assert paths["human_agent"]["items"] == len(routed)
    assert paths["human_agent"]["usd"] == pytest.approx(path_usd, rel=1e-12)
    assert entry["fallback_path_usd"] == pytest.approx(path_usd, rel=1e-12)
    total = entry["total_usd"] + path_usd
    assert entry["total_usd_with_paths"] == pytest.approx(total, rel=1e-9)
    assert entry["usd_per_1k_items_with_paths"] == pytest.approx(total / len(rows) * 1000,
                                                                 rel=1e-9)
    assert entry["usd_per_correct_with_paths"] == pytest.approx(total / entry["n_correct"],
                                                                rel=1e-9)
    # the downstream calls dominate: an SLM router is only as cheap as what it falls back to
    assert path_usd > 10 * entry["total_usd"]

    code, md, _ = run_cli(["report", str(result.run.path), "--format", "md"], capsys)
    assert code == 0
    assert "$/1k items incl. routes" in md and f"300 tokens (`human_agent` → `{LARGE}`)" in md


def test_unpriced_route_model_makes_the_with_paths_figures_unpriced(tmp_path):
    task = routing_task(tmp_path, "model:openai/no-such-model-xyz", None)
    result = run_benchmark([task], ["baseline:tfidf-logreg"], results_dir=tmp_path,
                           run_id="r", options=RunOptions())
    entry = result.summary["results"][0]
    assert entry["route_paths"]["human_agent"]["tokens_out"] == 256  # the default
    assert entry["route_paths"]["human_agent"]["usd"] is None
    assert entry["usd_per_1k_items_with_paths"] is None
    assert entry["usd_per_1k_items"] is not None  # the router's own cost still stands
    assert any("route human_agent" in w and "unpriced" in w
               for w in result.summary["warnings"])


def test_routes_without_a_model_target_add_nothing(tmp_path):
    task = BUNDLED_TASKS / "support_routing.yaml"
    result = run_benchmark([task], ["baseline:tfidf-logreg"], results_dir=tmp_path,
                           options=RunOptions(limit=5))
    assert "route_paths" not in result.summary["results"][0]


@pytest.mark.parametrize("target,tokens_out,extra,field,value", [
    ("human:queue", 300, {}, "routes[3].tokens_out", "300"),
    ("model:nosuchprefix", None, {}, "routes[3].target", "model:nosuchprefix"),
    (f"model:{LARGE}", 0, {}, "routes[3].tokens_out", "0"),
    (f"model:{LARGE}", None, {"token_out": 5}, "routes[3].token_out", "token_out"),
])
def test_bad_route_targets_are_one_line_errors(tmp_path, capsys, target, tokens_out, extra,
                                               field, value):
    task = routing_task(tmp_path, target, tokens_out, **extra)
    code, _, err = run_cli(["validate", str(task)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert str(task) in err and field in err and value in err
