"""The sheets kept honest against litellm's bundled map: ``pricing diff``, ``pricing import``,
staleness warnings, and the 2026-12-03 sheet fixes (Gemini's January step, missing models)."""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slmbench.pricing import check_pricing, load_pricebook, token_cost
from slmbench.pricing.commands import run_diff, run_import, show_model
from slmbench.pricing.diff import bundled_map_path, diff_pricebook, load_litellm_map
from slmbench.pricing.staleness import end_dates, staleness, staleness_warning

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "pricing"
FIXED = dt.date(2026, 12, 3)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def sheet(provider: str = "acme", rows: str = "  - id: m1\n    input: 1.0\n    output: 2.0\n",
          effective_from: str = "2026-11-22", retrieved: str = "2026-11-22") -> str:
    return (f"provider: {provider}\ncurrency: USD\nunit: per_1m_tokens\n"
            f"effective_from: {effective_from}\nretrieved: {retrieved}\n"
            f"source: https://example.com/pricing\nmodels:\n{rows}")


def litellm_json(tmp_path: Path, entries: dict) -> Path:
    return write(tmp_path / "map.json", json.dumps({"sample_spec": {"x": 1}, **entries}))


@pytest.fixture(scope="module")
def book():
    return load_pricebook([SHIPPED])


# --------------------------------------------------------------------------------------------
# the sheet fixes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gemini-3.6-flash", "gemini-3.7-flash"])
def test_gemini_intro_price_ends_on_new_year(book, model):
    dec = book.lookup(f"gemini/{model}", dt.date(2026, 12, 31))
    jan = book.lookup(f"gemini/{model}", dt.date(2027, 1, 2))
    assert (dec.input, dec.cached_input, dec.output) == (0.75, 0.075, 3.75)
    assert (jan.input, jan.cached_input, jan.output) == (1.50, 0.15, 7.50)
    assert jan.effective_from == dt.date(2027, 1, 1)
    # 1M input + 1M output tokens cost twice as much from January
    assert token_cost(jan, 1_000_000, 1_000_000) == pytest.approx(
        2 * token_cost(dec, 1_000_000, 1_000_000), rel=1e-12)


def test_pricing_show_marks_the_january_row_in_effect():
    text = show_model("gemini-3.7-flash", [SHIPPED], on="2027-01-02")
    in_effect = [line for line in text.splitlines() if "in effect" in line]
    assert len(in_effect) == 1 and "2027-01-01" in in_effect[0] and "1.5" in in_effect[0]


def test_the_published_2027_sheet_is_unchanged_and_the_gemini_38_row_still_steps(book):
    data = (SHIPPED / "gemini" / "2027-01-01.yaml").read_bytes()
    # what it held before the 2026-12-03 additions: only gemini-3.8-flash
    assert [m["id"] for m in yaml.safe_load(data)["models"]] == ["gemini-3.8-flash"]
    out = subprocess.run(["git", "log", "--format=%H", "--", "pricing/gemini/2027-01-01.yaml"],
                         cwd=REPO, capture_output=True, text=True, check=False)
    if out.returncode == 0 and out.stdout.strip():
        first = out.stdout.split()[-1]
        blob = subprocess.run(["git", "show", f"{first}:pricing/gemini/2027-01-01.yaml"],
                              cwd=REPO, capture_output=True, check=True).stdout
        assert hashlib.sha256(blob).hexdigest() == hashlib.sha256(data).hexdigest()
    assert book.lookup("gemini-3.8-flash", dt.date(2027, 1, 2)).input == 1.50


@pytest.mark.parametrize(
    ("model", "inp", "out"),
    [("openai/gpt-5.5", 5.0, 30.0), ("openai/gpt-5.1", 1.25, 10.0),
     ("openai/gpt-5.6-sol", 5.0, 30.0), ("openai/gpt-6-sol", 2.0, 10.0),
     ("openai/gpt-6.1-sol", 2.0, 10.0), ("openai/gpt-6.1-terra", 1.0, 5.0),
     ("anthropic/claude-sonnet-5", 2.0, 10.0), ("anthropic/claude-sonnet-5-5", 2.0, 10.0),
     ("anthropic/claude-opus-5", 5.0, 25.0), ("anthropic/claude-opus-5-5", 4.0, 20.0),
     ("fireworks_ai/gpt-oss-20b", 0.07, 0.30), ("fireworks_ai/gpt-oss-120b", 0.15, 0.60),
     ("groq/openai/gpt-oss-20b", 0.075, 0.30), ("groq/openai/gpt-oss-120b", 0.15, 0.60),
     ("together_ai/openai/gpt-oss-120b", 0.15, 0.60), ("azure_ai/gpt-oss-120b", 0.15, 0.60),
     ("dashscope/qwen-flash", 0.05, 0.40), ("dashscope/qwen3.8-flash", 0.15, 0.47),
     ("dashscope/qwen-plus", 0.40, 1.20), ("together_ai/Qwen/Qwen3.8-Flash", 0.15, 0.47),
     ("mistral/mistral-medium-latest", 1.50, 7.50), ("mistral/mistral-small-latest", 0.15, 0.60),
     ("azure_ai/Llama-3.3-70B-Instruct", 0.71, 0.71), ("azure_ai/mistral-small-2503", 0.10, 0.30)],
)
def test_missing_models_are_priced_now(book, model, inp, out):
    p = book.lookup(model, FIXED)
    assert p is not None and (p.input, p.output) == (inp, out)
    assert p.source and p.confidence


def test_new_models_were_unpriced_the_day_before(book):
    assert book.lookup("openai/gpt-5.5", dt.date(2026, 12, 2)) is None
    assert book.lookup("groq/openai/gpt-oss-20b", dt.date(2026, 12, 2)) is None
    # the list price of gpt-5.6-sol applies from the day after its promotion ended
    assert book.lookup("openai/gpt-5.6-sol", dt.date(2026, 11, 21)) is None
    assert book.lookup("openai/gpt-5.6-sol", dt.date(2026, 11, 22)).input == 5.0


def test_long_context_tier_of_gpt55_doubles_input_and_1_5x_output(book):
    p = book.lookup("openai/gpt-5.5", FIXED)
    assert token_cost(p, 272_000, 1000) == pytest.approx((272_000 * 5 + 1000 * 30) / 1e6)
    assert token_cost(p, 272_001, 1000) == pytest.approx((272_001 * 10 + 1000 * 45) / 1e6)


def test_all_sheets_pass_check_on_the_fix_date():
    assert check_pricing([SHIPPED], today=FIXED) == []


def test_a_dated_label_file_must_carry_its_date(tmp_path):
    write(tmp_path / "acme" / "2027-01-01.extra.yaml", sheet(effective_from="2027-02-01"))
    msgs = [p.message for p in check_pricing([tmp_path], today=FIXED) if p.is_error]
    assert any("named 2027-01-01.extra but effective_from differs" in m for m in msgs)


# --------------------------------------------------------------------------------------------
# pricing diff
# --------------------------------------------------------------------------------------------


def test_diff_reads_the_installed_map_without_importing_litellm():
    code = ("import sys, datetime\n"
            "from slmbench.pricing.diff import load_litellm_map\n"
            "m = load_litellm_map()\n"
            "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
            "print(m.version, len(m.prices))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out[0] == importlib.metadata.version("litellm")
    assert int(out[1]) > 1000
    assert bundled_map_path().name == "model_prices_and_context_window_backup.json"


def test_diff_finds_every_kind_of_disagreement(tmp_path):
    rows = ("  - id: same\n    input: 1.0\n    output: 2.0\n"
            "  - id: pricier\n    input: 1.5\n    cached_input: 0.1\n    output: 2.0\n"
            "    batch: {input: 0.75, output: 1.0}\n"
            "    tiers:\n      - {name: long, above_input_tokens: 200000, input_multiplier: 2.0,"
            " output_multiplier: 1.5}\n"
            "  - id: only-mine\n    input: 1.0\n    output: 1.0\n")
    write(tmp_path / "s" / "acme" / "2026-11-22.yaml", sheet(rows=rows))
    lmap = load_litellm_map(litellm_json(tmp_path, {
        "acme/same": {"litellm_provider": "acme", "mode": "chat",
                      "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},
        "acme/pricier": {"litellm_provider": "acme", "mode": "chat",
                         "input_cost_per_token": 1.2e-6, "output_cost_per_token": 2e-6,
                         "input_cost_per_token_batches": 0.6e-6,
                         "output_cost_per_token_batches": 1e-6,
                         "input_cost_per_token_above_200k_tokens": 3e-6,
                         "output_cost_per_token_above_200k_tokens": 4e-6},
        "acme/only-theirs": {"litellm_provider": "acme", "mode": "chat",
                             "input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7},
        "acme/gone": {"litellm_provider": "acme", "mode": "chat", "deprecation_date": "2026-01-01",
                      "input_cost_per_token": 1e-7, "output_cost_per_token": 1e-7},
        "acme/embed": {"litellm_provider": "acme", "mode": "embedding",
                       "input_cost_per_token": 1e-7, "output_cost_per_token": 0},
    }))
    report = diff_pricebook(load_pricebook([tmp_path / "s"]), lmap, FIXED)
    assert [p.model_id for p in report.agree] == ["same"]
    assert [p.model_id for p in report.only_sheets] == ["only-mine"]
    assert [e.model_id for e in report.only_litellm["acme"]] == ["only-theirs"]
    assert report.retired == {"acme": 1}
    (d,) = report.disagree
    got = {f.what: (f.sheet, f.litellm) for f in d.diffs}
    assert got == {"input": (1.5, 1.2), "cached": (0.1, None), "batch input": (0.75, 0.6),
                   "output above 200,000 tokens": (3.0, 4.0)}
    assert report.exit_code == 1


def test_diff_exit_code_zero_when_sheets_and_map_agree(tmp_path):
    write(tmp_path / "s" / "acme" / "2026-11-22.yaml", sheet())
    path = litellm_json(tmp_path, {"acme/m1": {"litellm_provider": "acme", "mode": "chat",
                                               "input_cost_per_token": 1e-6,
                                               "output_cost_per_token": 2e-6}})
    text, code = run_diff([tmp_path / "s"], "2026-12-03", litellm_json=path)
    assert code == 0 and "0 model(s) disagree, 1 agree" in text


def test_diff_of_the_shipped_sheets_names_the_known_disagreements():
    text, code = run_diff([SHIPPED], "2026-12-03")
    # every known disagreement is reviewed in pricing/_litellm_reviewed.yaml: shown, exit 0
    assert code == 0, text
    assert "0 model(s) disagree, 10 disagree as reviewed" in text
    assert "openai/gpt-5.6-sol: input: sheet 5, litellm 4" in text
    assert "why: litellm still has the promotional price" in text
    assert f"litellm {importlib.metadata.version('litellm')} bundled map" in text
    # from January the Gemini step is a disagreement litellm cannot see (reviewed too)
    jan, code = run_diff([SHIPPED], "2027-01-02")
    assert code == 0
    assert "gemini/gemini-3.7-flash: input: sheet 1.5, litellm 0.75" in jan


def _copy_sheets(tmp_path: Path, reviews: str | None) -> Path:
    import shutil

    mine = tmp_path / "pricing"
    shutil.copytree(SHIPPED, mine)
    if reviews is None:
        (mine / "_litellm_reviewed.yaml").unlink()
    else:
        (mine / "_litellm_reviewed.yaml").write_text(reviews)
    return mine


def test_without_reviews_every_disagreement_fails_the_diff(tmp_path):
    text, code = run_diff([_copy_sheets(tmp_path, None)], "2026-12-03")
    assert code == 1
    assert "10 model(s) disagree, 62 agree" in text
    assert "    input: sheet 5, litellm 4" in text


def test_a_review_covers_only_the_figures_it_records(tmp_path):
    # the review of gpt-5.6-sol records an older litellm input price: the disagreement is new
    shipped = (SHIPPED / "_litellm_reviewed.yaml").read_text()
    changed = shipped.replace("      input: [5, 4]\n", "      input: [5, 3.5]\n", 1)
    assert changed != shipped
    text, code = run_diff([_copy_sheets(tmp_path, changed)], "2026-12-03")
    assert code == 1
    assert "1 model(s) disagree, 9 disagree as reviewed" in text
    assert "  openai/gpt-5.6-sol (litellm gpt-5.6-sol;" in text


@pytest.mark.parametrize(("reviews", "field"), [
    ("reviewed: {}", "reviewed"),
    ("reviewed:\n  - model: openai/x\n    differs: {input: [1, 2]}\n", "reviewed[0]"),
    ("reviewed:\n  - {model: openai/x, why: w, differs: {input: [1]}}\n",
     "reviewed[0].differs.input"),
    ("reviewed:\n  - {model: openai/x, why: w, differs: {input: [-1, 2]}}\n",
     "reviewed[0].differs.input"),
])
def test_a_bad_review_file_is_one_line(tmp_path, reviews, field):
    mine = _copy_sheets(tmp_path, reviews)
    proc = subprocess.run([sys.executable, "-m", "slmbench", "pricing", "diff", "--on",
                           "2026-12-03", "--pricing", str(mine)],
                          capture_output=True, text=True, cwd=REPO)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "_litellm_reviewed.yaml" in lines[0]
    assert f"field '{field}'" in lines[0]


def test_the_review_file_is_not_read_as_a_sheet():
    from slmbench.pricing.sheets import sheet_files

    files = sheet_files(SHIPPED)
    assert files and all(not f.name.startswith("_") for f in files)
    assert (SHIPPED / "_litellm_reviewed.yaml").is_file()


def test_diff_cli_lists_with_all(tmp_path):
    cmd = [sys.executable, "-m", "slmbench", "pricing", "diff", "--on", "2026-12-03"]
    short = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    full = subprocess.run([*cmd, "--all"], capture_output=True, text=True, cwd=REPO)
    assert short.returncode == 0 and full.returncode == 0
    assert "groq (has sheets): " in short.stdout
    assert "    groq/qwen/qwen3.8-27b: 0.8 / 4" in full.stdout
    assert "groq/qwen/qwen3.8-27b" not in short.stdout


# --------------------------------------------------------------------------------------------
# pricing import
# --------------------------------------------------------------------------------------------


def test_import_drafts_a_sheet_that_loads_and_passes_check(tmp_path):
    out = tmp_path / "mine" / "groq" / "2026-12-03.yaml"
    text = run_import("groq", [SHIPPED], out=out,
                      on="2026-12-03", include_existing=False, today=FIXED)
    # every gpt-oss row is already priced by the groq sheet: left out, shown as equal
    assert "= groq/openai/gpt-oss-20b same as pricing/groq/2026-12-03.yaml" in text
    doc = yaml.safe_load(out.read_text())
    ids = [m["id"] for m in doc["models"]]
    assert "openai/gpt-oss-20b" not in ids and "qwen/qwen3.8-27b" in ids
    assert doc["confidence"] == "litellm only"
    assert doc["source"][0] == f"litellm {importlib.metadata.version('litellm')} bundled map"
    assert all(m["confidence"] == "litellm only" for m in doc["models"])
    header = out.read_text().split("provider:")[0]
    assert "Confirm by hand" in header and "qwen/qwen3.8-27b: input/output" in header
    assert "openai/gpt-oss-20b" in header  # listed as left out
    assert check_pricing([tmp_path / "mine"], today=FIXED) == []
    qwen = load_pricebook([SHIPPED, tmp_path / "mine"]).lookup("groq/qwen/qwen3.8-27b", FIXED)
    assert (qwen.input, qwen.output) == (0.8, 4.0)


def test_import_never_overwrites_and_shows_replaced_reviewed_rows(tmp_path):
    mine = tmp_path / "mine"
    write(mine / "acme" / "2026-11-22.yaml", sheet(rows=(
        "  - id: m1\n    input: 1.0\n    output: 2.0\n    confidence: official (read)\n")))
    path = litellm_json(tmp_path, {"acme/m1": {"litellm_provider": "acme", "mode": "chat",
                                               "input_cost_per_token": 1.5e-6,
                                               "output_cost_per_token": 2e-6}})
    out = mine / "acme" / "2026-12-03.yaml"
    with pytest.raises(Exception, match="nothing to import"):
        run_import("acme", [mine], out=out, on="2026-12-03", litellm_json=path, today=FIXED)
    assert not out.exists()
    text = run_import("acme", [mine], out=out, on="2026-12-03", litellm_json=path,
                      include_existing=True, today=FIXED)
    assert "~ acme/m1 differs from" in text and "input: sheet 1, litellm 1.5" in text
    assert "REPLACES that row from 2026-12-03" in text
    before = out.read_bytes()
    r = subprocess.run([sys.executable, "-m", "slmbench", "pricing", "import", "acme",
                        "--from-litellm", "--out", str(out), "--pricing", str(mine),
                        "--litellm-json", str(path), "--include-existing"],
                       capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "refusing to overwrite" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert out.read_bytes() == before


# --------------------------------------------------------------------------------------------
# staleness
# --------------------------------------------------------------------------------------------


def test_end_dates_found_in_free_text_status():
    assert end_dates("deprecated; shutdown 2026-12-11") == [("shutdown", dt.date(2026, 12, 11))]
    assert end_dates("retired 2026-11-30 (kept so that ...)") == [
        ("retired", dt.date(2026, 11, 30))]
    assert end_dates("deprecation_date 2027-01-31 (litellm)") == [
        ("deprecation_date", dt.date(2027, 1, 31))]
    assert end_dates("GA 2026-05-19") == [] and end_dates(None) == []


def test_staleness_of_shipped_rows(book):
    gpt5 = book.lookup("openai/gpt-5", dt.date(2026, 12, 20))
    s = staleness("openai/gpt-5", gpt5, dt.date(2026, 12, 20))
    assert len(s.reasons) == 1 and "shutdown 2026-12-11" in s.reasons[0]
    assert staleness_warning("openai/gpt-5", gpt5, dt.date(2026, 12, 10)) is None
    old = book.lookup("gpt-5.4-nano", dt.date(2027, 3, 1))  # retrieved 2026-11-22: 99 days
    w = staleness_warning("openai/gpt-5.4-nano", old, dt.date(2027, 3, 1))
    assert w is not None and "retrieved 99 days before" in w
    assert "pricing/openai/2026-11-22.yaml" in w


def test_reprice_warns_once_per_stale_model_and_the_report_footer_says_so(tmp_path):
    from slmbench.pricing.run_costs import PricingOptions, RunCoster

    coster = RunCoster(PricingOptions(price_date="2026-12-20"), None)
    rows = [{"tokens_in": 100, "tokens_out": 10, "correct": True}] * 3
    for _ in range(2):  # two tasks
        coster.price("openai/gpt-5", {}, rows, [])
        coster.price("openai/gpt-5.4-nano", {}, rows, [])
    stale = [w for w in coster.warnings if "may not hold" in w]
    assert len(stale) == 1 and stale[0].startswith("openai/gpt-5: ")
    from slmbench.reports.leaderboard import render_markdown

    md = render_markdown({"run_id": "r", "results": [], "pricing": coster.provenance(),
                          "warnings": coster.warnings})
    assert f"  * warning: {stale[0]}" in md
