"""The columnar summary (slmbench/analysis/columns.py) equals the summary built from row dicts.

``build_summary`` summarises classification and routing pairs from typed columns read in one
streaming pass; ``build_summary(columnar=False)`` builds every pair from row dicts, the path
the columns replace. Both must give the same summary JSON: same keys in the same order, same
types, same values (floats equal or within 1e-12 relative), on real runs (the TF-IDF baseline,
API models on the fake server with errors, invalid answers, missing confidences, a resumed
run's retried rows, torn lines) and on random rows (hypothesis), also when every key hash
collides.
"""

from __future__ import annotations

import json
import math
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    BUNDLED_TASKS,
    SUMMARY_LABELS,
    SUMMARY_ROUTES,
    free_port,
    summary_manifest,
    write_stored_run,
)
from fakeserver import FakeOpenAIServer, FaultPlan
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from slmbench.analysis import columns as C
from slmbench.analysis import summary as S
from slmbench.errors import InputError
from slmbench.pricing.run_costs import PricingOptions
from slmbench.runner.retry import RetryPolicy
from slmbench.runner.run import RunOptions, run_benchmark
from slmbench.store import RunDir
from slmbench.tasks import build_messages, load_items, load_task

CLS, ROUTING = BUNDLED_TASKS / "banking77_mini.yaml", BUNDLED_TASKS / "support_routing.yaml"
FAST_RETRY = RetryPolicy(max_attempts=2, base_s=0.01, cap_s=0.02)


# ---------------------------------------------------------------------------------------------
# helpers


def assert_same(a: Any, b: Any, path: str = "summary") -> None:
    """Same keys (in the same order), same types, equal values; floats within 1e-12."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), (path, list(a), list(b))
        for k in a:
            assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == b or math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0) or (
            math.isnan(a) and math.isnan(b)), (path, a, b)
    else:
        assert type(a) is type(b) and a == b, (path, a, b)


@contextmanager
def spy_columns():
    """Records, per build_summary, the pairs the columnar read kept (or "fallback")."""
    seen: list[Any] = []
    real_read = S.read_columns

    def read(*args: Any, **kwargs: Any) -> Any:
        try:
            cols, rows = real_read(*args, **kwargs)
        except C.ColumnarUnsupported:
            seen.append("fallback")
            raise
        seen.append(sorted((t, m) for t, m, _ in cols.pairs))
        return cols, rows

    S.read_columns = read
    try:
        yield seen
    finally:
        S.read_columns = real_read


def both(path: Path, pricing: PricingOptions | None = None) -> tuple[dict, dict, Any]:
    """(columnar summary, row-dict summary, what the columnar read kept) of a stored run."""
    with spy_columns() as seen:
        col = S.build_summary(RunDir(path), pricing)
    row = S.build_summary(RunDir(path), pricing, columnar=False)
    for s in (col, row):
        s.pop("generated_at")
    json.dumps(col, allow_nan=False)  # plain JSON types only (no numpy scalars)
    return col, row, seen[0] if seen else None


def append_lines(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join(lines))


def stored_rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in (path / "items.jsonl").read_text().splitlines()
            if x.startswith("{") and x.endswith("}")]


# ---------------------------------------------------------------------------------------------
# real runs


def test_baseline_run_then_retried_rows_and_torn_lines(tmp_path):
    result = run_benchmark([CLS, ROUTING], ["baseline:tfidf-logreg",
                                            "baseline:tfidf-logreg?features=word"],
                           results_dir=tmp_path, run_id="b",
                           options=RunOptions(limit=25, use_cache=False))
    path = result.run.path
    col, row, kept = both(path)
    assert len(kept) == 4 and len(col["results"]) == 4
    assert_same(col, row)
    stored = json.loads((path / "summary.json").read_text())  # what the run itself wrote
    stored.pop("generated_at")
    stored.pop("this_invocation")  # what the run added: calls made, wall time
    assert_same(stored, col)

    # a resumed run appends retries (the last row of an item wins) after a torn line
    rows = stored_rows(path)
    cls_rows = [r for r in rows if r["task"] == "banking77-mini"
                and r["model"] == "baseline:tfidf-logreg"]
    labels = json.loads((path / "manifest.json").read_text())["tasks"]["banking77-mini"]["labels"]
    retried = []
    for r in cls_rows[:6]:  # now wrong, without a confidence, with provider tokens
        wrong = next(lab for lab in labels if lab != r["gold"])
        retried.append({**r, "answer": wrong, "output": wrong, "correct": False,
                        "confidence": None, "tokens_in": 40, "token_source": "provider"})
    for r in cls_rows[6:8]:  # now failed calls
        retried.append({**r, "answer": None, "correct": False, "error": "boom",
                        "latency_s": None, "confidence": None})
    retried[0]["item_id"] = str(retried[0]["item_id"])  # the key is str(item_id)
    n_lines = len((path / "items.jsonl").read_text().splitlines())
    append_lines(path / "items.jsonl", ['{"task": "banking77-mini", "mod\n', "[1, 2]\n", "\n"]
                 + [json.dumps(r) + "\n" for r in retried] + ['{"task": "support-ro'])
    col, row, kept = both(path)
    assert_same(col, row)
    assert col["skipped_lines"] == [n_lines + 1, n_lines + 2, n_lines + 4 + len(retried)]
    entry = next(e for e in col["results"]
                 if e["task"] == "banking77-mini" and e["model"] == "baseline:tfidf-logreg")
    assert entry["n_items"] == 25 and entry["n_errors"] == 2
    assert entry["n_correct"] == sum(r["correct"] for r in cls_rows[8:])
    assert entry["n_confidence"] == 25 - 8 and entry["token_sources"] == ["none", "provider"]


def _answerer(paths: list[Path], *, wrong_every: int, invalid_every: int):
    """A fake model for label tasks: gold, a wrong label every n-th item, an unparseable
    answer every m-th, and a per-item logprob (so confidences vary)."""
    gold, order, choices = {}, {}, {}
    for p in paths:
        task = load_items(load_task(p))
        for it in task.items:
            prompt = build_messages(task.spec, it.text)[-1]["content"]
            gold[prompt], order[prompt] = it.gold, len(order)
            choices[prompt] = task.spec.choices

    def answer(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        i = order[prompt]
        if i % invalid_every == invalid_every - 1:
            return "no idea, sorry"
        if i % wrong_every == wrong_every - 1:
            return next(c for c in choices[prompt] if c != gold[prompt])
        return gold[prompt]

    def logprob(body: dict) -> float:
        return -0.01 * (order[body["messages"][-1]["content"]] % 37)

    return answer, logprob


def test_api_runs_with_errors_invalid_answers_and_a_resume(tmp_path):
    answer, logprob = _answerer([CLS, ROUTING], wrong_every=3, invalid_every=7)
    failing = FaultPlan.always("500", predicate=lambda prompt: len(prompt) % 5 == 0)
    opts = {"concurrency": 4, "retry": FAST_RETRY, "use_cache": False, "limit": 20,
            "pricing": PricingOptions(price_date="2026-11-22")}
    port = free_port()  # the resumed run's server on the same address: same model settings
    with FakeOpenAIServer(answer, faults=failing, answer_logprob=logprob, port=port) as server:
        models = [f"openai/gpt-5.4-nano?api_base={server.base_url}&logprobs=true",
                  f"openai/in-house-router?api_base={server.base_url}"]  # unpriced, no logprobs
        first = run_benchmark([CLS, ROUTING], models, results_dir=tmp_path, run_id="api",
                              options=RunOptions(**opts))
    path = first.run.path
    col, row, kept = both(path)
    assert len(kept) == 4
    assert_same(col, row)
    errors = sum(e["n_errors"] for e in col["results"])
    assert errors > 0 and sum(e["n_invalid"] for e in col["results"]) > 0
    nano = [e for e in col["results"] if e["model"].startswith("openai/gpt-5.4-nano")]
    assert all(e["priced"] and e["n_confidence"] == e["n_items"] - e["n_errors"] for e in nano)
    assert all(e["n_no_confidence"] == e["n_items"] for e in col["results"] if e not in nano)
    assert any("in-house-router is unpriced" in w for w in col["warnings"])

    # resume with a healthy server: the failed items are called again, their new rows win
    with FakeOpenAIServer(answer, answer_logprob=logprob, port=port):
        again = run_benchmark([CLS, ROUTING], models, results_dir=tmp_path, run_id="api",
                              options=RunOptions(**opts))
    assert again.calls == errors
    assert len(stored_rows(path)) == 80 + errors
    col, row, kept = both(path)
    assert_same(col, row)
    assert [e["n_errors"] for e in col["results"]] == [0, 0, 0, 0]
    assert [e["n_items"] for e in col["results"]] == [20, 20, 20, 20]
    # reprice goes through the same path
    col, row, _ = both(path, PricingOptions(price_date="2026-11-22", volume_per_day=5000))
    assert_same(col, row)


# ---------------------------------------------------------------------------------------------
# random rows


LABELS, ROUTES = SUMMARY_LABELS, SUMMARY_ROUTES
MODELS = {"local:hourly": {"pricing": "hourly"}, "openai/gpt-5.4": {"pricing": "tokens"},
          "openai/unknown-model": {"pricing": "tokens"}}
MANIFEST = summary_manifest(
    "fuzz", MODELS, n_items=8,
    timings=[{"task": t, "model": m, "items": 8, "wall_s": 2.5, "latency_sum_s": 5.0}
             for t in ("cls", "route", "ext") for m in MODELS])

strings = st.sampled_from([*LABELS, *ROUTES, "other", "", "<invalid>"])
tokens = st.none() | st.integers(0, 3000) | st.sampled_from([272_000, 300_000])


@st.composite
def a_row(draw: Any) -> dict[str, Any]:
    task = draw(st.sampled_from(["cls", "cls", "route", "route", "ext", "not-in-manifest"]))
    row: dict[str, Any] = {
        "task": task, "kind": "x", "model": draw(st.sampled_from(list(MODELS))),
        "item_id": draw(st.sampled_from(["a", "b", "c", "d", "3", 3, "e", "f"])),
        "input": "text",
        # a gold outside the task's labels (routes) is a corrupt row: the summary is an
        # InputError naming it, so most golds are labels (and the figures get tested)
        "gold": ({"amount": draw(strings)} if task == "ext" else draw(
            st.sampled_from(ROUTES if task == "route" else LABELS) if draw(st.integers(0, 29))
            else strings)),
        "correct": draw(st.booleans()), "invalid": draw(st.booleans()),
        "error": draw(st.none() | st.just("boom") | st.just("") | st.sampled_from(
            ["HTTP 400: unsupported\n  parameter 'max_tokens'", "HTTP 400: unsupported parameter"
             " 'max_tokens'", "missing OPENAI_API_KEY"])),
        "latency_s": draw(st.none() | st.floats(0, 5, allow_nan=False)),
        "confidence": draw(st.none() | st.floats(0, 1) | st.sampled_from([0.0, 1.0, 0.1])),
        "confidence_source": draw(st.none() | st.sampled_from(["token-logprob", "label-logprob"])),
        "tokens_in": draw(tokens), "tokens_out": draw(tokens),
        "cached_tokens_in": draw(tokens), "token_source": draw(st.sampled_from(
            [None, "provider", "tiktoken"])),
        "cached": draw(st.booleans()),
    }
    # the fields a newer runner writes; an older run's rows lack them
    if draw(st.booleans()):
        row.update(truncated=draw(st.booleans()), reasoning_tokens=draw(tokens),
                   cache_write_tokens=draw(tokens),
                   finish_reason=draw(st.sampled_from([None, "stop", "length"])))
    row["answer"] = ({"amount": draw(strings)} if task == "ext"
                     else draw(st.none() | strings))
    if task == "route":
        row["routed"] = draw(st.none() | strings)
    if draw(st.integers(0, 30)) == 0:  # now and then a value the columns do not hold
        field, value = draw(st.sampled_from([
            ("confidence", 1), ("tokens_in", 12.0), ("latency_s", 2), ("answer", 5),
            ("confidence", 1.5), ("tokens_out", True), ("latency_s", -1.0), ("gold", None),
            ("reasoning_tokens", 2.5), ("cache_write_tokens", -3),
            ("gold", ["card"]), ("answer", ["card"]), ("routed", 7)]))
        row[field] = value
    return row


JUNK = ['{"task": "cls", "mo', "[1, 2]", "", "  ", '"just a string"']  # torn or not a row
LINES = st.lists(st.one_of(a_row(), st.sampled_from(JUNK)), min_size=6, max_size=50)


def _text(lines: list[Any], copies: int) -> str:
    """The lines, ``copies`` times over with other item ids (bigger pairs, same duplicates)."""
    out = []
    for k in range(copies):
        for line in lines:
            if isinstance(line, str):
                out.append(line)
            else:
                out.append(json.dumps(
                    {**line, "item_id": f"{line['item_id']}.{k}"} if k else line))
    return "".join(x + "\n" for x in out)


def _summary(run: Path, columnar: bool) -> tuple[str, Any]:
    """("ok", summary) or ("raised", (exception type, message))."""
    try:
        summary = S.build_summary(RunDir(run), columnar=columnar)
    except InputError as exc:  # anything else is a crash, which the test reports
        return "raised", (type(exc), str(exc))
    summary.pop("generated_at")
    json.dumps(summary)  # plain JSON types only (no numpy scalars)
    return "ok", summary


# pairs the runner stopped (manifest ``failures``): with rows, without, of an unknown task
FAILURES = st.sampled_from([[], [{"task": "cls", "model": "openai/gpt-5.4", "reason": "HTTP 400",
                                  "at": "2026-11-22T10:00:01+00:00"}],
                            [{"task": "route", "model": "openai/never-ran", "reason": "no key",
                              "at": "2026-11-22T10:00:01+00:00"},
                             {"task": "gone", "model": "local:hourly", "reason": "x", "at": ""}]])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(lines=LINES, copies=st.integers(1, 40), collide=st.sampled_from([None, "all", "half"]),
       torn_tail=st.booleans(), failures=FAILURES)
def test_random_rows_give_the_same_summary(lines, copies, collide, torn_tail, failures):
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "fuzz"
        run.mkdir()
        (run / "manifest.json").write_text(json.dumps({**MANIFEST, "failures": failures}))
        text = _text(lines, copies) + ('{"task": "cls"' if torn_tail else "")
        (run / "items.jsonl").write_text(text)
        real_hash = C._key_hash
        if collide:  # every key, or half of them, on one hash: the exact keys must decide
            C._key_hash = (lambda key: 7) if collide == "all" else (
                lambda key: ord(key[2][:1] or "x") % 2)
        try:
            col = _summary(run, columnar=True)
        finally:
            C._key_hash = real_hash
        row = _summary(run, columnar=False)
        assert col[0] == row[0], (col, row)
        if col[0] == "raised":
            assert col[1] == row[1]
        else:
            assert_same(col[1], row[1])


# ---------------------------------------------------------------------------------------------
# what the columns hold, and when they step aside


def _write(tmp_path: Path, rows: list[dict], name: str = "r") -> Path:
    return write_stored_run(tmp_path / name, MANIFEST, rows)


def _row(i: int, **over: Any) -> dict[str, Any]:
    base = {"task": "cls", "model": "openai/gpt-5.4", "item_id": f"i{i}", "gold": LABELS[i % 3],
            "answer": LABELS[i % 2], "correct": i % 3 == i % 2, "invalid": False, "error": None,
            "latency_s": 0.01 * i, "confidence": 0.5, "confidence_source": "token-logprob",
            "tokens_in": 100 + i, "tokens_out": 3, "cached_tokens_in": None,
            "token_source": "provider", "cached": False}
    return {**base, **over}


def test_columns_hold_55_bytes_a_row_and_the_last_row_of_each_item(tmp_path):
    rows = [_row(i) for i in range(50)] + [_row(i, answer=LABELS[i % 3], correct=True)
                                           for i in range(10)]
    run = _write(tmp_path, rows)
    plan = S._columnar_plan(MANIFEST, set())
    from slmbench.store.files import ReadReport

    cols, other = C.read_columns(run / "items.jsonl", ReadReport(), plan, S.SUMMARY_FIELDS)
    assert other == [] and len(cols) == 50
    assert sum(a.nbytes for a in cols.data.values()) == 63 * 50
    (pair,) = cols.by_pair()
    assert pair.n_correct() == sum(r["correct"] for r in rows[10:50]) + 10
    assert pair.total("tokens_in") == sum(100 + i for i in range(50))
    col, row, kept = both(run)
    assert kept == [("cls", "openai/gpt-5.4")]
    assert_same(col, row)


def test_odd_values_send_the_run_to_the_row_path(tmp_path):
    run = _write(tmp_path, [_row(0), _row(1, tokens_in=12.0), _row(2)])
    col, row, kept = both(run)
    assert kept == "fallback"
    assert_same(col, row)
    assert col["results"][0]["tokens_in"] == 100 + 12.0 + 102  # the row path's own float sum
    bad = _write(tmp_path, [_row(0), _row(1, confidence=1.5)], "bad")
    for columnar in (True, False):
        with pytest.raises(InputError, match="items.jsonl.*item 'i1'"):
            S.build_summary(RunDir(bad), columnar=columnar)


def test_new_row_fields_and_failed_pairs_on_both_paths(tmp_path):
    """Truncated answers, reasoning and cache-write tokens, and a pair most of whose rows are
    failed calls: the columns hold them (no fallback) and give the row path's figures, the
    failure reason read again by line after deduplication (a retried row replaces an error)."""
    bad = "openai/gpt-5.4"
    long_error = "litellm.BadRequestError: HTTP 400\n  unsupported parameter 'max_tokens'"
    rows = [_row(i, truncated=i % 4 == 0, correct=False if i % 4 == 0 else i % 3 == i % 2,
                 reasoning_tokens=10 * i if i % 2 else None, cache_write_tokens=i or None)
            for i in range(8)]
    def failed_call(i: int, error: str) -> dict[str, Any]:
        return _row(i, model="local:hourly", error=error, answer=None, correct=False,
                    latency_s=None, tokens_in=None, tokens_out=None)

    rows += [failed_call(i, "timeout" if i < 3 else long_error) for i in range(8)]
    # retries: i3 and i4 failed again, on a timeout, and i5 succeeded; counted over every row
    # the two texts would tie (5 each), over the latest rows "timeout" leads 5 to 2
    rows += [failed_call(3, "timeout"), failed_call(4, "timeout"),
             _row(5, model="local:hourly", error=None)]
    run = _write(tmp_path, rows)
    col, row, kept = both(run)
    assert kept == [("cls", "local:hourly"), ("cls", bad)]
    assert_same(col, row)
    hourly, gpt = col["results"]
    assert (gpt["truncated"], gpt["truncated_rate"]) == (2, 0.25)
    assert gpt["reasoning_tokens"] == 10 * (1 + 3 + 5 + 7)
    assert gpt["cache_write_tokens"] == sum(range(8)) and gpt["failed"] is None
    assert hourly["n_errors"] == 7 and hourly["reasoning_tokens"] is None
    assert hourly["failed"] == "timeout"
    assert S.common_error([long_error] * 2 + ["timeout"]) == ("litellm.BadRequestError: HTTP 400 "
                                                             "unsupported parameter 'max_tokens'")
