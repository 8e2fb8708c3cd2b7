"""Provider matrix: slmbench end to end through three providers' wire formats, $ checked by hand.

For provider ∈ {openai, anthropic, gemini} × reasoning ∈ {off, on} × structured ∈ {on, off} ×
task ∈ {classification, routing, extraction} this runs ``run_benchmark`` against the loopback
provider emulators of ``tests/provider_emulators.py`` (litellm's real request / response
transformations; nothing leaves 127.0.0.1), plus one "budget exhausted" cell per provider
(reasoning on, ``max_tokens=32``, classification, the emulator thinking as long as the provider
lets it: the hidden reasoning eats the whole budget, so every row should be truncated, not
invalid), and prints one markdown row per cell. Anthropic refuses ``max_tokens`` <=
``thinking.budget_tokens`` (1024 for ``reasoning_effort=low``), so its ``max_tokens=32`` cell is
refused before the run (exit 2, no call); an extra Anthropic cell with ``max_tokens=1025`` and
``structured=on`` leaves one token after a full thinking budget, which cuts the two-word JSON
answer. Columns:

* items, answered (rows without an error), correct, invalid, truncated, errors and reasoning
  tokens, from slmbench's summary;
* ``wire``: the structured-output form seen on every request of the cell (OpenAI
  ``response_format``, Anthropic ``output_format`` / forced tool, Gemini
  ``generationConfig`` response schema; ``-`` when none was sent), and ``think``: the reasoning
  knob seen on the wire (OpenAI ``reasoning_effort``, Anthropic ``thinking``, Gemini
  ``thinkingConfig``);
* ``tok=wire``: whether every row's token counts (tokens_in incl. cache reads / writes,
  cached_tokens_in, cache_write_tokens, tokens_out incl. reasoning, reasoning_tokens) equal the
  usage the emulator answered for that item, converted to that convention;
* ``slmbench $`` (the summary's ``total_usd``) against ``hand $``: the same rows priced here
  from the sheet row's per-1M figures, without ``slmbench.pricing.cost.token_cost``, and
  whether they agree to 1e-12.

The responder answers the gold label / the gold fields of each item (looked up from the item
text in the last user message) except on every 5th item of a task, where it answers wrong, so
accuracy is 80 % by construction. The emulators report cache reads (and, on Anthropic, cache
writes) so that the cache prices are exercised too.

``openai/gpt-5.1`` (the OpenAI "off" cell: gpt-5-mini cannot take ``reasoning_effort=none``)
has no row in ``pricing/``; unless ``--no-supplement`` is given it is priced from a sheet this
script writes to a temporary ``--pricing`` directory with litellm's bundled map figures for it.

Exit status: 1 when any priced cell's $ figures differ, any cell's tokens differ from the
wire, or a cell is priced on one side only; 0 otherwise.

Run: ``python benchmarks/provider_matrix.py [--limit 10] [--no-supplement]``
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import shlex
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
for _p in (REPO, TESTS):  # provider_emulators imports fakeserver from tests/
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

# before litellm is imported (slmbench imports it on first use): no remote price map, no
# fetch of Anthropic's beta-header table
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS", "True")

from fakeserver import message_text  # noqa: E402
from provider_emulators import (  # noqa: E402
    ANTHROPIC_MODEL,
    GEMINI_MODEL,
    OPENAI_NONE_EFFORT_MODEL,
    OPENAI_REASONING_MODEL,
    AnthropicEmulator,
    GeminiEmulator,
    OpenAIReasoningEmulator,
)

#: dummy keys the emulators accept (litellm refuses to send a request without one)
DUMMY_KEYS = {"OPENAI_API_KEY": "sk-emulator", "ANTHROPIC_API_KEY": "sk-ant-emulator",
              "GEMINI_API_KEY": "gm-emulator"}

TASKS = {
    "classification": REPO / "tasks" / "banking77_mini.yaml",
    "routing": REPO / "tasks" / "support_routing.yaml",
    "extraction": REPO / "tasks" / "order_extraction.yaml",
}
PROVIDERS = ("openai", "anthropic", "gemini")
#: (model, settings) per provider and reasoning state
MODELS: dict[str, dict[str, tuple[str, dict[str, Any]]]] = {
    "openai": {"off": (OPENAI_NONE_EFFORT_MODEL, {"reasoning_effort": "none"}),
               "on": (OPENAI_REASONING_MODEL, {"reasoning_effort": "low"})},
    "anthropic": {"off": (ANTHROPIC_MODEL, {}),
                  "on": (ANTHROPIC_MODEL, {"reasoning_effort": "low"})},
    "gemini": {"off": (GEMINI_MODEL, {"reasoning_effort": "none"}),
               "on": (GEMINI_MODEL, {"reasoning_effort": "low"})},
}
#: the "budget exhausted" cells: reasoning on, this output budget, this task; the emulators
#: behind them think as long as the provider lets them (FULL_THINK, capped by each provider's
#: budget rules)
BUDGET_MAX_TOKENS = 32
BUDGET_TASK = "classification"
FULL_THINK = 1_000_000
#: Anthropic refuses max_tokens <= thinking.budget_tokens (1024 for reasoning_effort=low in
#: litellm), so its max_tokens=32 cell cannot reach the model; this extra cell leaves one token
#: after a full thinking budget, and structured=on makes the answer two words long
ANTHROPIC_BUDGET_MAX_TOKENS = 1025
#: every n-th item of a task gets a wrong answer
WRONG_EVERY = 5
#: what the emulators report per call: hidden reasoning tokens, cache reads, cache writes
REASONING_TOKENS = 40
CACHED_TOKENS = 8
CACHE_WRITE_TOKENS = 4
TOLERANCE = 1e-12


# --------------------------------------------------------------------------- the fake model


@dataclass
class GoldItem:
    task: str  # kind: classification | routing | extraction
    index: int
    item_id: str
    text: str
    gold: Any
    answer: str  # what the responder says


class GoldBook:
    """Prompt text (the last user message) → the item and the answer to give."""

    def __init__(self, task_paths: dict[str, Path]) -> None:
        from slmbench.tasks import build_messages, load_items, load_task

        self.by_prompt: dict[str, GoldItem] = {}
        self.items: dict[str, list[GoldItem]] = {}
        self.choices: dict[str, tuple[str, ...] | None] = {}
        self.fields: dict[str, list[str]] = {}
        for kind, path in task_paths.items():
            task = load_items(load_task(path))
            choices = task.spec.choices
            self.choices[kind] = choices
            self.fields[kind] = [f.name for f in task.spec.fields] if not choices else []
            items = []
            for i, it in enumerate(task.items):
                wrong = i % WRONG_EVERY == WRONG_EVERY - 1
                if choices:
                    answer = next(c for c in choices if c != it.gold) if wrong else it.gold
                else:
                    fields = dict(it.gold)
                    if wrong:
                        fields["quantity"] = int(fields.get("quantity") or 0) + 1
                    answer = json.dumps(fields)
                gi = GoldItem(kind, i, str(it.id), it.text, it.gold, answer)
                prompt = build_messages(task.spec, it.text)[-1]["content"]
                self.by_prompt[" ".join(prompt.split())] = gi
                items.append(gi)
            self.items[kind] = items

    def find(self, prompt: str) -> GoldItem | None:
        return self.by_prompt.get(" ".join((prompt or "").split()))

    def responder(self, prompt: str, body: dict) -> str:
        gi = self.find(prompt)
        return gi.answer if gi is not None else "unknown"


# --------------------------------------------------------------------------- cells


@dataclass(frozen=True)
class Cell:
    provider: str
    reasoning: str  # off | on
    structured: str  # on | off
    tasks: tuple[str, ...]
    max_tokens: int | None = None  # set: a "budget exhausted" cell

    @property
    def model(self) -> str:
        return MODELS[self.provider][self.reasoning][0]

    @property
    def budget(self) -> bool:
        return self.max_tokens is not None

    @property
    def run_id(self) -> str:
        tail = f"-max{self.max_tokens}" if self.budget else ""
        return f"{self.provider}-r{self.reasoning}-s{self.structured}{tail}"

    def model_id(self, api_base: str) -> str:
        settings = {"api_base": api_base, **MODELS[self.provider][self.reasoning][1],
                    "structured": self.structured}
        if self.max_tokens is not None:
            settings["max_tokens"] = self.max_tokens
        query = "&".join(f"{k}={quote(str(v), safe=':/')}" for k, v in settings.items())
        return f"{self.model}?{query}"


def build_cells(tasks: tuple[str, ...] = tuple(TASKS), budget: bool = True) -> list[Cell]:
    cells = [Cell(p, r, s, tasks) for p in PROVIDERS for r in ("off", "on") for s in ("on", "off")]
    if budget:
        cells += [Cell(p, "on", "off", (BUDGET_TASK,), BUDGET_MAX_TOKENS) for p in PROVIDERS]
        cells.insert(-1, Cell("anthropic", "on", "on", (BUDGET_TASK,),
                              ANTHROPIC_BUDGET_MAX_TOKENS))
    return cells


@dataclass
class CellResult:
    """One task of one cell."""

    cell: Cell
    task: str  # kind
    model: str
    n_items: int
    answered: int
    correct: int
    invalid: int
    truncated: int
    errors: int
    reasoning_tokens: int | None
    slm_usd: float | None
    hand_usd: float | None
    failed: str | None
    rows: list[dict[str, Any]]
    requests: list[dict[str, Any]]  # the emulator's records for this task's items
    wire_form: str  # structured form seen on the wire ("-": none; "mixed: ..." when it varies)
    wire_think: str
    price_date: str
    token_mismatches: list[str] = field(default_factory=list)

    @property
    def priced(self) -> bool:
        return self.slm_usd is not None or self.hand_usd is not None

    @property
    def usd_match(self) -> bool:
        if self.slm_usd is None or self.hand_usd is None:
            return self.slm_usd is None and self.hand_usd is None
        return abs(self.slm_usd - self.hand_usd) < TOLERANCE

    @property
    def ok(self) -> bool:
        return self.usd_match and not self.token_mismatches


@dataclass
class Matrix:
    results: list[CellResult]
    litellm_version: str | None
    price_date: str | None
    supplement: dict[str, Any] | None
    seconds: float

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


# --------------------------------------------------------------------------- pricing by hand


def hand_cost(price: Any, tokens_in: int, tokens_out: int, cached: int, writes: int) -> float:
    """USD of one row from the sheet row's per-1M figures (the pricing README's rules): cache
    reads and writes are parts of ``tokens_in``; a missing cache price bills them as input; the
    highest tier whose ``above_input_tokens`` the request exceeds scales the whole request."""
    cached = min(cached, tokens_in)
    writes = min(writes, tokens_in - cached)
    in_price, out_price = price.input, price.output
    read_price = price.cached_input if price.cached_input is not None else in_price
    write_price = price.cache_write_input if price.cache_write_input is not None else in_price
    in_mult = out_mult = 1.0
    tiers = [t for t in price.tiers if tokens_in > t.above_input_tokens]
    if tiers:
        top = max(tiers, key=lambda t: t.above_input_tokens)
        in_mult, out_mult = top.input_multiplier, top.output_multiplier
    fresh = tokens_in - cached - writes
    micro = (fresh * in_price * in_mult + cached * read_price * in_mult
             + writes * write_price * in_mult + tokens_out * out_price * out_mult)
    return micro / 1_000_000


def hand_total(price: Any, rows: list[dict[str, Any]]) -> float | None:
    if price is None or not rows:
        return None
    return math.fsum(hand_cost(price, int(r.get("tokens_in") or 0), int(r.get("tokens_out") or 0),
                               int(r.get("cached_tokens_in") or 0),
                               int(r.get("cache_write_tokens") or 0)) for r in rows)


def write_supplement(folder: Path) -> dict[str, Any] | None:
    """A ``--pricing`` sheet for ``openai/gpt-5.1`` (no bundled sheet prices it) from litellm's
    bundled model map; None when the map has no price for it."""
    from slmbench.models.contract import model_info, model_map

    info = model_info(OPENAI_NONE_EFFORT_MODEL) or {}
    if not info.get("input_cost_per_token") or not info.get("output_cost_per_token"):
        return None
    _, version = model_map()
    per_m = {"input": round(info["input_cost_per_token"] * 1e6, 6),
             "output": round(info["output_cost_per_token"] * 1e6, 6)}
    if info.get("cache_read_input_token_cost"):
        per_m["cached_input"] = round(info["cache_read_input_token_cost"] * 1e6, 6)
    name = OPENAI_NONE_EFFORT_MODEL.split("/", 1)[1]
    sheet = {
        "provider": "openai", "currency": "USD", "unit": "per_1m_tokens",
        "effective_from": "2026-11-22", "retrieved": dt.date.today().isoformat(),
        "source": [f"litellm {version} model_prices_and_context_window_backup.json"],
        "confidence": "litellm's bundled map (written by benchmarks/provider_matrix.py)",
        "models": [{"id": name, **per_m}],
    }
    (folder / "openai").mkdir(parents=True, exist_ok=True)
    import yaml

    (folder / "openai" / "2026-11-22.yaml").write_text(yaml.safe_dump(sheet, sort_keys=False))
    return {"model": OPENAI_NONE_EFFORT_MODEL, "dir": str(folder), **per_m,
            "litellm": version}


# --------------------------------------------------------------------------- the wire


def structured_form(provider: str, body: dict | None) -> tuple[str, Any] | None:
    """(name, schema) of the structured-output request in a provider's native form, or None."""
    if not isinstance(body, dict):
        return None
    if provider == "openai":
        rf = body.get("response_format")
        if isinstance(rf, dict) and rf.get("type") == "json_schema":
            return "response_format", (rf.get("json_schema") or {}).get("schema")
        return ("response_format", None) if rf is not None else None
    if provider == "anthropic":
        fmt = body.get("output_format")
        if isinstance(fmt, dict):
            return "output_format", fmt.get("schema")
        cfg = body.get("output_config")
        if isinstance(cfg, dict) and isinstance(cfg.get("format"), dict):
            return "output_config", cfg["format"].get("schema")
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "tool":
            tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
            return "tool", (tools.get(choice.get("name")) or {}).get("input_schema")
        return None
    gen = body.get("generationConfig") or body.get("generation_config") or {}
    for key in ("responseJsonSchema", "response_json_schema", "responseSchema",
                "response_schema"):
        if key in gen:
            return key, gen[key]
    return None


def reasoning_on_wire(provider: str, body: dict | None) -> str:
    """The reasoning knob a request carried, in words ("-": none)."""
    if not isinstance(body, dict):
        return "?"
    if provider == "openai":
        return f"effort={body['reasoning_effort']}" if "reasoning_effort" in body else "-"
    if provider == "anthropic":
        t = body.get("thinking")
        if not isinstance(t, dict):
            return "-"
        return f"{t.get('type')}:{t['budget_tokens']}" if "budget_tokens" in t else str(
            t.get("type"))
    gen = body.get("generationConfig") or body.get("generation_config") or {}
    think = gen.get("thinkingConfig") or gen.get("thinking_config")
    if not isinstance(think, dict):
        return "-"
    budget = think.get("thinkingBudget", think.get("thinking_budget"))
    level = think.get("thinkingLevel", think.get("thinking_level"))
    return f"budget={budget}" if budget is not None else f"level={level}"


def wire_usage(provider: str, response: dict) -> dict[str, int]:
    """An emulator's usage in the rows' convention: tokens_in includes cache reads and writes,
    tokens_out includes reasoning."""
    if provider == "openai":
        u = response["usage"]
        return {"tokens_in": u["prompt_tokens"], "tokens_out": u["completion_tokens"],
                "cached_tokens_in": u["prompt_tokens_details"]["cached_tokens"],
                "cache_write_tokens": 0,
                "reasoning_tokens": u["completion_tokens_details"]["reasoning_tokens"]}
    if provider == "anthropic":
        u = response["usage"]
        read, write = u.get("cache_read_input_tokens", 0), u.get("cache_creation_input_tokens", 0)
        return {"tokens_in": u["input_tokens"] + read + write, "tokens_out": u["output_tokens"],
                "cached_tokens_in": read, "cache_write_tokens": write,
                "reasoning_tokens": (u.get("output_tokens_details") or {}).get(
                    "thinking_tokens", 0)}
    u = response["usageMetadata"]
    thoughts = u.get("thoughtsTokenCount", 0)
    return {"tokens_in": u["promptTokenCount"],
            "tokens_out": u.get("candidatesTokenCount", 0) + thoughts,
            "cached_tokens_in": u.get("cachedContentTokenCount", 0), "cache_write_tokens": 0,
            "reasoning_tokens": thoughts}


def request_prompt(rec: dict[str, Any]) -> str:
    """The last user message of a recorded request: what the emulator answered to, or, for a
    request it refused before answering, read from the body (messages / Gemini contents)."""
    if rec.get("prompt"):
        return rec["prompt"]
    body = rec.get("body")
    if not isinstance(body, dict):
        return ""
    if isinstance(body.get("messages"), list):
        for m in reversed(body["messages"]):
            if isinstance(m, dict) and m.get("role") == "user":
                return message_text(m)
    for c in reversed(body.get("contents") or []):
        if isinstance(c, dict) and c.get("role", "user") == "user":
            return " ".join(p["text"] for p in c.get("parts") or []
                            if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def token_mismatches(provider: str, rows: list[dict[str, Any]], requests: list[dict[str, Any]],
                     book: GoldBook) -> list[str]:
    """Rows whose token counts differ from the usage the emulator answered for their item (the
    last successful request of that item); a row counts a missing figure as 0."""
    answered: dict[str, dict[str, Any]] = {}
    for rec in requests:
        gi = book.find(request_prompt(rec))
        if gi is not None and rec.get("status") == 200:
            answered[gi.item_id] = rec
    out = []
    for row in rows:
        if row.get("error"):
            continue
        rec = answered.get(str(row["item_id"]))
        if rec is None:
            out.append(f"{row['item_id']}: no answered request on the wire")
            continue
        wire = wire_usage(provider, rec["response"])
        got = {k: int(row.get(k) or 0) for k in wire}
        if got != wire:
            diff = {k: (got[k], wire[k]) for k in wire if got[k] != wire[k]}
            out.append(f"{row['item_id']}: row vs wire {diff}")
    return out


def _one_form(values: list[str]) -> str:
    distinct = sorted(set(values))
    if not distinct:
        return "?"
    return distinct[0] if len(distinct) == 1 else "mixed: " + ", ".join(distinct)


# --------------------------------------------------------------------------- running


@contextlib.contextmanager
def dummy_keys() -> Iterator[None]:
    """The dummy API keys in the environment for the duration (previous values restored)."""
    old = {k: os.environ.get(k) for k in DUMMY_KEYS}
    os.environ.update(DUMMY_KEYS)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def make_emulators(book: GoldBook) -> dict[tuple[str, bool], Any]:
    """(provider, budget cell?) → emulator; the budget cells' emulators think in full."""
    out: dict[tuple[str, bool], Any] = {}
    for full in (False, True):
        think = FULL_THINK if full else REASONING_TOKENS
        out["openai", full] = OpenAIReasoningEmulator(
            book.responder, reasoning_tokens=think, cached_tokens=CACHED_TOKENS)
        out["anthropic", full] = AnthropicEmulator(
            book.responder, reasoning_tokens=think, cached_tokens=CACHED_TOKENS,
            cache_write_tokens=CACHE_WRITE_TOKENS)
        out["gemini", full] = GeminiEmulator(
            book.responder, reasoning_tokens=think, cached_tokens=CACHED_TOKENS)
    return out


def run_cell(cell: Cell, srv: Any, book: GoldBook, results_dir: Path, limit: int,
             pricing: Any) -> list[CellResult]:
    from slmbench.errors import InputError
    from slmbench.pricing.run_costs import load_book
    from slmbench.runner.run import RunOptions, run_benchmark

    start = len(srv.requests)
    try:
        result = run_benchmark([TASKS[t] for t in cell.tasks], [cell.model_id(srv.url)],
                               results_dir=results_dir, run_id=cell.run_id,
                               options=RunOptions(limit=limit, use_cache=False,
                                                  executor="local", pricing=pricing))
    except InputError as exc:  # refused before the first call: no rows, no requests
        return [refused(cell, kind, str(exc), srv.requests[start:]) for kind in cell.tasks]
    requests = srv.requests[start:]
    rows = result.run.rows()
    summary = result.summary
    price_date = dt.date.fromisoformat(summary["pricing"]["price_date"])
    price = load_book(pricing).lookup(cell.model, price_date)
    out = []
    for kind in cell.tasks:
        name = _task_name(kind)
        entry = next((e for e in summary["results"] if e["task"] == name), None)
        task_rows = [r for r in rows if r["task"] == name]
        task_requests = [r for r in requests
                         if (gi := book.find(request_prompt(r))) and gi.task == kind]
        forms = [(structured_form(cell.provider, r["body"]) or ("-", None))[0]
                 for r in task_requests]
        thinks = [reasoning_on_wire(cell.provider, r["body"]) for r in task_requests]
        e = entry or {}
        n = int(e.get("n_items") or 0)
        errors = int(e.get("n_errors") or 0)
        out.append(CellResult(
            cell=cell, task=kind, model=cell.model, n_items=n, answered=n - errors,
            correct=int(e.get("n_correct") or 0), invalid=int(e.get("n_invalid") or 0),
            truncated=int(e.get("truncated") or 0), errors=errors,
            reasoning_tokens=e.get("reasoning_tokens"), slm_usd=e.get("total_usd"),
            hand_usd=hand_total(price, task_rows), failed=e.get("failed") if entry else
            "no summary entry", rows=task_rows, requests=task_requests,
            wire_form=_one_form(forms), wire_think=_one_form(thinks),
            price_date=price_date.isoformat(),
            token_mismatches=token_mismatches(cell.provider, task_rows, task_requests, book)))
    return out


def refused(cell: Cell, kind: str, reason: str, requests: list[dict[str, Any]]) -> CellResult:
    return CellResult(cell=cell, task=kind, model=cell.model, n_items=0, answered=0, correct=0,
                      invalid=0, truncated=0, errors=0, reasoning_tokens=None, slm_usd=None,
                      hand_usd=None, failed=f"refused before the run: {reason}", rows=[],
                      requests=requests, wire_form="-", wire_think="-", price_date="")


_TASK_NAMES: dict[str, str] = {}


def _task_name(kind: str) -> str:
    if kind not in _TASK_NAMES:
        from slmbench.tasks import load_task

        _TASK_NAMES[kind] = load_task(TASKS[kind]).name
    return _TASK_NAMES[kind]


def run_matrix(limit: int = 10, *, cells: list[Cell] | None = None,
               results_dir: Path | None = None, supplement: bool = True) -> Matrix:
    """Run every cell through its provider's emulator; ``results_dir`` None: a temporary one."""
    from slmbench.models.contract import model_map
    from slmbench.pricing.run_costs import PricingOptions

    t0 = time.perf_counter()
    cells = build_cells() if cells is None else cells
    book = GoldBook({k: TASKS[k] for k in TASKS})
    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="provider-matrix-")))
        results_dir = results_dir or tmp / "results"
        extra = write_supplement(tmp / "pricing") if supplement else None
        pricing = PricingOptions(dirs=(Path(extra["dir"]),) if extra else ())
        stack.enter_context(dummy_keys())
        emulators = {p: stack.enter_context(e) for p, e in make_emulators(book).items()}
        results: list[CellResult] = []
        for cell in cells:
            results += run_cell(cell, emulators[cell.provider, cell.budget], book, results_dir,
                                limit, pricing)
        dates = sorted({r.price_date for r in results if r.price_date})
        price_date = ", ".join(dates) if dates else None
    return Matrix(results=results, litellm_version=model_map()[1], price_date=price_date,
                  supplement=extra, seconds=time.perf_counter() - t0)


# --------------------------------------------------------------------------- report


def _usd(v: float | None) -> str:
    return "unpriced" if v is None else f"{v:.10f}"


def table(matrix: Matrix) -> str:
    head = ["provider", "model", "reasoning", "structured", "task", "items", "answered",
            "correct", "invalid", "truncated", "errors", "reasoning tok", "wire", "think",
            "tok=wire", "slmbench $", "hand $", "match"]
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if h in ("items", "answered", "correct", "invalid",
                                             "truncated", "errors", "reasoning tok")
                            else "---" for h in head) + "|"]
    for r in matrix.results:
        c = r.cell
        reasoning = c.reasoning + (f" (max_tokens={c.max_tokens})" if c.budget else "")
        match = ("yes" if r.slm_usd is not None else "n/a (unpriced)") if r.usd_match else "NO"
        lines.append("| " + " | ".join([
            c.provider, r.model.split("/", 1)[1], reasoning, c.structured, r.task,
            str(r.n_items), str(r.answered), str(r.correct), str(r.invalid), str(r.truncated),
            str(r.errors), "-" if r.reasoning_tokens is None else str(r.reasoning_tokens),
            r.wire_form, r.wire_think, "yes" if not r.token_mismatches else "NO",
            _usd(r.slm_usd), _usd(r.hand_usd), match]) + " |")
    return "\n".join(lines)


def notes(matrix: Matrix) -> list[str]:
    out = []
    for r in matrix.results:
        where = f"{r.cell.run_id} · {r.task}"
        if r.failed:
            out.append(f"{where}: failed: {r.failed}")
        for m in r.token_mismatches[:3]:
            out.append(f"{where}: tokens {m}")
        if not r.usd_match:
            out.append(f"{where}: $ slmbench {r.slm_usd!r} vs hand {r.hand_usd!r}")
        errs = sorted({str(row["error"]) for row in r.rows if row.get("error")})
        for e in errs[:2]:
            out.append(f"{where}: row error: {e}")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--limit", type=int, default=10, help="items per task (default 10)")
    ap.add_argument("--no-supplement", action="store_true",
                    help="leave openai/gpt-5.1 unpriced (no sheet in pricing/ has it)")
    ap.add_argument("--no-budget", action="store_true", help="skip the budget-exhausted cells")
    ap.add_argument("--results-dir", type=Path, default=None,
                    help="keep the runs here (default: a temporary directory)")
    args = ap.parse_args(argv)
    from slmbench.models.contract import model_map

    print("# " + shlex.join([sys.executable, *sys.argv]))
    print(f"# litellm {model_map()[1]}, python {sys.version.split()[0]}, "
          f"limit {args.limit} items per task, every {WRONG_EVERY}th item answered wrong")
    matrix = run_matrix(args.limit, cells=build_cells(budget=not args.no_budget),
                        results_dir=args.results_dir, supplement=not args.no_supplement)
    print(f"# price date {matrix.price_date}; emulators report {REASONING_TOKENS} reasoning, "
          f"{CACHED_TOKENS} cache-read (+{CACHE_WRITE_TOKENS} cache-write on Anthropic) "
          "tokens per call")
    if matrix.supplement:
        s = matrix.supplement
        print(f"# {s['model']} has no row in pricing/: priced from a supplementary sheet "
              f"(litellm {s['litellm']} map: input {s['input']}, cached "
              f"{s.get('cached_input')}, output {s['output']} USD per 1M)")
    print()
    print(table(matrix))
    print()
    for line in notes(matrix):
        print(f"* {line}")
    bad = [r for r in matrix.results if not r.ok]
    print(f"\n# {len(matrix.results)} cells in {matrix.seconds:.1f} s; "
          f"{sum(not r.usd_match for r in bad)} $ mismatch(es), "
          f"{sum(bool(r.token_mismatches) for r in bad)} token mismatch(es)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
