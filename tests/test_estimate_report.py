"""Issue 18: the estimate stored with a run is set against what the run cost, in the markdown
and HTML reports, and ``run --max-cost estimate`` takes its cap from that estimate.

A real estimate (tiktoken counts, the dated price sheet) and a real run of gpt-5.4-nano served
by a fake OpenAI-compatible server on 127.0.0.1; the figures the section shows are recomputed
here from ``estimate.json`` and ``summary.json``.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from conftest import BUNDLED_TASKS, cli_in_fresh_process, gold_answerer, run_cli
from fakeserver import FakeOpenAIServer

from slmbench.markdown import format_usd

ROUTING = BUNDLED_TASKS / "support_routing.yaml"
PRICED = "openai/gpt-5.4-nano"
ESTIMATED, RUN = 12, 8  # the run covers fewer items than were estimated: figures scale


@pytest.fixture
def estimated_run(tmp_path, capsys) -> Path:
    """``estimate --run-id r`` of 12 items, then ``run --run-id r --max-cost estimate`` of 8."""
    _, gold = gold_answerer(ROUTING)
    with FakeOpenAIServer(gold) as server:
        model = f"{PRICED}?api_base={server.base_url}"
        code, _, err = run_cli(["estimate", str(ROUTING), "-m", model, "--limit", str(ESTIMATED),
                                "--results-dir", str(tmp_path), "--run-id", "r"], capsys)
        assert code == 0, err
        code, _, err = run_cli(["run", str(ROUTING), "-m", model, "--limit", str(RUN),
                                "--results-dir", str(tmp_path), "--run-id", "r", "--no-cache",
                                "--max-cost", "estimate", "-q"], capsys)
        assert code == 0, err
        assert len(server.calls) == RUN
    return tmp_path / "r"


def _expected_rows(run: Path) -> list[list[str]]:
    """The section's lines, recomputed from the stored estimate and summary."""
    (pair,) = json.loads((run / "estimate.json").read_text())["pairs"]
    (entry,) = json.loads((run / "summary.json").read_text())["results"]
    assert pair["items"] == ESTIMATED and entry["n_items"] == RUN
    scale = RUN / ESTIMATED

    def line(label: str, low, exp, high, actual, show) -> list[str]:
        cells = [show(v) for v in (low, exp, high, actual)]
        ratio = "–" if exp is None else f"{actual / exp:.2f}×"
        inside = "–" if None in (low, high) else ("yes" if low <= actual <= high else "no")
        return ["support-routing", PRICED, label, *cells, ratio, inside]

    def times(*keys: str, by: float) -> list:
        return [None if pair.get(k) is None else pair[k] * by for k in keys]

    def dash(show):
        return lambda v: "–" if v is None else show(v)

    count = dash(lambda v: f"{v:,.0f}")
    return [
        line("$", *times("usd_low", "usd_expected", "usd_high", by=scale), entry["total_usd"],
             format_usd),
        line("input tokens", *times("tokens_in_low", "tokens_in", "tokens_in_high", by=scale),
             entry["tokens_in"], count),
        line("output tokens", *times("out_low", "out_expected", "out_high", by=RUN),
             entry["tokens_out"], count),
        line("wall time (s)", *times("wall_low_s", "wall_s", "wall_high_s", by=scale),
             entry["wall_s"], dash(lambda v: f"{v:.1f} s")),
    ]


def _md_section(text: str) -> list[list[str]]:
    section = text.split("## Estimate vs actual\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for ln in section.splitlines() if ln.startswith("| support-routing")]
    return [[c.strip() for c in ln.strip("|").split("|")] for ln in lines]


def test_markdown_report_sets_the_estimate_against_the_run(estimated_run, capsys):
    code, out, err = run_cli(["report", str(estimated_run), "--format", "md"], capsys)
    assert code == 0, err
    expected = _expected_rows(estimated_run)
    assert _md_section(out) == expected
    # the $ estimate is really scaled: 8 of the 12 estimated items were run
    (pair,) = json.loads((estimated_run / "estimate.json").read_text())["pairs"]
    assert expected[0][4] == format_usd(pair["usd_expected"] * 2 / 3)
    assert "estimated for 12 items, run on 8: the estimate is scaled per item" in out
    assert "tiktoken" in out  # how input tokens were counted


def test_html_report_holds_the_same_figures(estimated_run, tmp_path, capsys):
    page = tmp_path / "r.html"
    code, _, err = run_cli(["report", str(estimated_run), "--format", "html", "--out",
                            str(page)], capsys)
    assert code == 0, err
    text = page.read_text()
    section = text.split("<h2>Estimate vs actual</h2>", 1)[1].split("<tbody>", 1)[1]
    section = section.split("</table>", 1)[0]
    rows = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", tr)]
            for tr in re.findall(r"<tr>(.*?)</tr>", section)]
    assert rows == _expected_rows(estimated_run)


def test_analysis_figures_match_the_stored_files(estimated_run):
    from slmbench.analysis.estimate import estimate_vs_actual

    (row,) = estimate_vs_actual(estimated_run)
    (pair,) = json.loads((estimated_run / "estimate.json").read_text())["pairs"]
    (entry,) = json.loads((estimated_run / "summary.json").read_text())["results"]
    tokens_out = row["figures"]["tokens_out"]
    assert tokens_out["expected"] == pytest.approx(pair["out_expected"] * RUN)
    assert tokens_out["actual"] == entry["tokens_out"]
    assert tokens_out["actual_over_expected"] == pytest.approx(
        entry["tokens_out"] / (pair["out_expected"] * RUN))
    usd = row["figures"]["usd"]
    assert usd["high"] == pytest.approx(pair["usd_high"] * RUN / ESTIMATED)
    assert usd["within_range"] == row["within_range"]


def test_a_run_without_an_estimate_has_no_section(tmp_path, capsys):
    _, gold = gold_answerer(ROUTING)
    with FakeOpenAIServer(gold) as server:
        code, _, err = run_cli(["run", str(ROUTING), "-m", f"{PRICED}?api_base="
                                f"{server.base_url}", "--limit", "3", "--results-dir",
                                str(tmp_path), "--run-id", "plain", "-q"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["report", str(tmp_path / "plain"), "--format", "md"], capsys)
    assert code == 0, err
    assert "# slmbench leaderboard" in out and "Estimate vs actual" not in out


def test_max_cost_estimate_is_the_estimates_high_figure(estimated_run):
    estimate = json.loads((estimated_run / "estimate.json").read_text())
    high = sum(p["usd_high"] for p in estimate["pairs"])
    manifest = json.loads((estimated_run / "manifest.json").read_text())
    assert high > 0 and manifest["options"]["max_cost_usd"] == pytest.approx(high)


@pytest.mark.parametrize("run_id,message", [
    (None, "give --run-id"),
    ("nothing", "no stored estimate for run 'nothing'"),
])
def test_max_cost_estimate_without_an_estimate_is_one_line(tmp_path, capsys, run_id, message):
    _, gold = gold_answerer(ROUTING)
    with FakeOpenAIServer(gold) as server:
        args = ["run", str(ROUTING), "-m", f"{PRICED}?api_base={server.base_url}",
                "--results-dir", str(tmp_path), "--max-cost", "estimate", "-q"]
        code, _, err = run_cli(args + (["--run-id", run_id] if run_id else []), capsys)
        assert server.calls == []
    assert code == 2 and message in err and "--max-cost" in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_max_cost_that_is_neither_usd_nor_estimate_names_both(tmp_path, capsys):
    code, _, err = run_cli(["run", str(ROUTING), "-m", PRICED, "--max-cost", "lots",
                            "--results-dir", str(tmp_path), "-q"], capsys)
    assert code == 2 and "'estimate'" in err and "'lots'" in err
    assert len(err.strip().splitlines()) == 1


def test_reports_with_the_section_never_import_litellm(estimated_run, tmp_path):
    page = tmp_path / "p.html"
    out, litellm_loaded = cli_in_fresh_process(
        ["report", str(estimated_run), "--format", "md"],
        ["report", str(estimated_run), "--format", "html", "--out", str(page)])
    assert "## Estimate vs actual" in out and not litellm_loaded
    assert "<h2>Estimate vs actual</h2>" in page.read_text()
