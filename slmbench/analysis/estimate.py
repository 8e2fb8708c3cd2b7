"""Before the run: items, tokens, dollars and time per task × model, without calling a model.

A paid run should not be the way to learn what it costs. Input tokens are counted exactly where
the provider's tokenizer is at hand (tiktoken for OpenAI, the GGUF's own vocabulary for
llama.cpp), with litellm's counter otherwise, and each row names its method: an OpenAI name
served by one's own server (``api_base``) is counted with tiktoken but billed by whatever that
server counts, so its input range is widened by :data:`FOREIGN_TOKENIZER_SPREAD`. Output tokens
are a range, because the answer is not known: from the shortest answer the labels or schema
allow, through the gold answers' own length (expected), up to the output budget a request may
use (a reasoning model's hidden reserve included). Local models are timed on a few items (a
warm-up, not a run), because their cost is wall time on an hourly rate.

``--pilot N`` (runner/pilot.py) replaces the guesses by N measured items per model and gives a
95 % interval of the full-run figure. The estimate is stored as ``estimate.json`` in the run
folder so that :func:`estimate_vs_actual` can set it against what the run cost.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.models.base import PRICING_TOKENS, Model, Request
from slmbench.pricing import token_cost
from slmbench.pricing.run_costs import PricingOptions, RunCoster
from slmbench.tasks import Item, LoadedTask, build_messages
from slmbench.tasks.kinds import get_kind

ESTIMATE_FILE = "estimate.json"
#: an OpenAI-compatible server of one's own bills by its own tokenizer, not tiktoken's
FOREIGN_TOKENIZER_SPREAD = 0.35
#: per-call latency of an API model before a pilot has measured one (named as assumed)
ASSUMED_API_LATENCY_S = 1.0
#: local warm-up: items timed after the first (which fills the prompt cache)
WARMUP_ITEMS = 4
Z95 = 1.96


@dataclass
class PairEstimate:
    task: str
    model: str
    items: int
    method: str  # how input tokens were counted (or "pilot")
    tokens_in: int | None = None  # total over the items
    tokens_in_low: int | None = None
    tokens_in_high: int | None = None
    out_low: float | None = None  # per item
    out_expected: float | None = None
    out_high: float | None = None
    usd_low: float | None = None
    usd_expected: float | None = None
    usd_high: float | None = None
    wall_s: float | None = None
    wall_low_s: float | None = None
    wall_high_s: float | None = None
    basis: str = "tokens"  # tokens | hourly | pilot
    notes: list[str] = field(default_factory=list)


# -- token counting ---------------------------------------------------------------------------

Counter = Callable[[list[dict[str, str]]], int]


def _text_counter(model: Model) -> tuple[Callable[[str], int], Counter, str, bool]:
    """(text → tokens, messages → tokens, method, exact) for ``model``."""
    contract = getattr(model, "contract", None)
    if contract is not None:
        from slmbench.models.tokens import count_messages, count_tiktoken

        name = getattr(model, "litellm_id", model.name)
        own_server = bool(model.settings.get("api_base"))
        if contract.provider in ("openai", "azure") or own_server:
            enc = _openai_encoding(name)
            method = f"tiktoken {enc}"
            if own_server:
                method += " (api_base server: its own tokenizer bills)"
            return (lambda t: count_tiktoken(t, enc), lambda m: count_messages(m, enc), method,
                    not own_server)
        from slmbench.models.litellm_api import import_litellm

        litellm = import_litellm()

        def count_text(text: str) -> int:
            return int(litellm.token_counter(model=name, text=text))

        return (count_text, lambda m: int(litellm.token_counter(model=name, messages=m)),
                "litellm token_counter", False)
    path = getattr(model, "path", None)
    if path is not None and str(path).endswith(".gguf"):
        return _gguf_counter(Path(path))
    from slmbench.models.tokens import count_messages, count_tiktoken

    return (count_tiktoken, count_messages, "none (not token-priced)", False)


def _openai_encoding(name: str) -> str:
    base = name.split("/", 1)[-1]
    try:
        import tiktoken

        return tiktoken.encoding_name_for_model(base)
    except Exception:  # a model tiktoken does not map (gpt-5.x): the current encoding
        return "o200k_base"


def _gguf_counter(path: Path) -> tuple[Callable[[str], int], Counter, str, bool]:
    """The GGUF's own tokenizer and chat template, loaded without weights (vocab_only)."""
    from llama_cpp import Llama, llama_chat_format

    llm = _quietly(lambda: Llama(model_path=str(path), vocab_only=True, verbose=False))
    template = llm.metadata.get("tokenizer.chat_template")
    formatter = None
    if template:
        eos = llm._model.token_get_text(llm.token_eos())
        bos = llm._model.token_get_text(llm.token_bos())
        formatter = llama_chat_format.Jinja2ChatFormatter(
            template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)

    def count_text(text: str) -> int:
        return len(llm.tokenize(text.encode("utf-8"), add_bos=False, special=False))

    def count_messages(messages: list[dict[str, str]]) -> int:
        if formatter is None:
            return sum(count_text(m["content"]) for m in messages)
        prompt = formatter(messages=messages).prompt
        return len(llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True))

    return count_text, count_messages, "gguf tokenizer", True


def _quietly(fn: Callable[[], Any]) -> Any:
    """Call ``fn`` with file descriptor 2 closed off: llama.cpp's C code warns about the
    context of a vocab-only load, which has none, on stderr whatever ``verbose`` says."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
            return fn()
    finally:
        os.dup2(saved, 2)
        os.close(saved)


# -- answers ----------------------------------------------------------------------------------

def answer_texts(task: LoadedTask, model: Model) -> tuple[list[str], list[str]]:
    """(the gold answer of each item as the model would write it, the shortest allowed
    answers): what the expected and the low output lengths are counted from."""
    _, choices, schema, _ = get_kind(task.spec.kind).request_parts(task)
    wrap = bool(getattr(model, "structured_output", False)) and getattr(
        model, "contract", None) is not None and choices

    def shown(answer: Any) -> str:
        if wrap:
            return json.dumps({"answer": answer}, ensure_ascii=False)
        return answer if isinstance(answer, str) else json.dumps(answer, ensure_ascii=False)

    golds = [shown(it.gold) for it in task.items]
    if choices:
        return golds, [shown(c) for c in choices]
    if schema is not None and schema.get("type") == "object":
        empty = {name: None for name in schema.get("properties", {})}
        return golds, [json.dumps(empty)]
    return golds, golds


def output_budget(task: LoadedTask, model: Model) -> int:
    """What one request may spend on output, as sent (reasoning reserve included)."""
    parts = get_kind(task.spec.kind).request_parts(task)
    return int(model.output_budget(Request(messages=[], text="", choices=parts.choices,
                                           json_schema=parts.json_schema,
                                           max_tokens=parts.max_tokens)))


def reasoning_expected(model: Model) -> int:
    """Hidden reasoning tokens expected per item: half the reserve (unknowable before a
    call; ``--pilot`` measures it)."""
    contract = getattr(model, "contract", None)
    if contract is None or not contract.reasoning_active:
        return 0
    from slmbench.models.contract import REASONING_RESERVE

    return REASONING_RESERVE.get(contract.effort or "default", 4096) // 2


# -- the estimate -----------------------------------------------------------------------------

def estimate_pair(task: LoadedTask, model: Model, coster: RunCoster, *, concurrency: int = 8,
                  timer: Callable[[LoadedTask, Model], list[dict]] | None = None,
                  messages: Callable[[Item], list[dict[str, str]]] | None = None
                  ) -> PairEstimate:
    """One task × model, calling no model (``timer``: a local model's warm-up rows;
    ``messages``: what the run sends for an item, the model's prompt variant and retrieved
    examples included -- default the task's own prompt)."""
    n = len(task.items)
    est = PairEstimate(task=task.spec.name, model=model.name, items=n, method="")
    if messages is None:
        spec = get_kind(task.spec.kind).request_parts(task).prompt_spec

        def messages(item: Item) -> list[dict[str, str]]:
            return build_messages(spec, item.text)
    if model.pricing != PRICING_TOKENS:
        return _hourly_estimate(est, task, model, coster, timer, messages)
    count_text, count_messages, method, exact = _text_counter(model)
    est.method = method
    ins = [count_messages(messages(it)) for it in task.items]
    est.tokens_in = sum(ins)
    spread = 0.0 if exact else FOREIGN_TOKENIZER_SPREAD
    est.tokens_in_low = int(est.tokens_in * (1 - spread))
    est.tokens_in_high = math.ceil(est.tokens_in * (1 + spread))
    golds, shortest = answer_texts(task, model)
    gold_out = [count_text(g) for g in golds]
    budget = output_budget(task, model)
    reasoning = reasoning_expected(model)
    est.out_low = float(min(count_text(s) for s in shortest))
    est.out_expected = min(float(budget), statistics.fmean(gold_out) + reasoning) if n else 0.0
    est.out_high = float(budget)
    if reasoning:
        est.notes.append(f"reasoning: {reasoning} hidden tokens per item expected (half the "
                         "reserve); --pilot measures them")
    price = coster.book.lookup(model.name, coster.on)
    if price is None:
        est.notes.append(f"unpriced: no sheet row in effect on {coster.on}")
    else:
        def usd(scale: float, out: float) -> float:
            # an expected output of 6.45 tokens costs 6.45 tokens' worth: interpolate between
            # the whole counts (prices are linear within a tier)
            low, frac = math.floor(out), out - math.floor(out)
            return sum((1 - frac) * token_cost(price, round(t * scale), low)
                       + frac * token_cost(price, round(t * scale), low + 1) for t in ins)

        est.usd_low = usd(1 - spread, est.out_low)
        est.usd_expected = usd(1.0, est.out_expected)
        est.usd_high = usd(1 + spread, est.out_high)
    per_call = ASSUMED_API_LATENCY_S
    waves = math.ceil(n / max(1, min(concurrency, model.parallel or concurrency)))
    est.wall_s = waves * per_call
    est.notes.append(f"wall time assumes {per_call:g} s per call at concurrency {concurrency}")
    return est


def _hourly_estimate(est: PairEstimate, task: LoadedTask, model: Model, coster: RunCoster,
                     timer: Callable[[LoadedTask, Model], list[dict]] | None,
                     messages: Callable[[Item], list[dict[str, str]]]) -> PairEstimate:
    est.basis = "hourly"
    path = getattr(model, "path", None)
    est.method = "none (priced by the hour)"
    if path is not None and str(path).endswith(".gguf"):
        _, count_messages, est.method, _ = _gguf_counter(Path(path))
        est.tokens_in = sum(count_messages(messages(it)) for it in task.items)
        est.tokens_in_low = est.tokens_in_high = est.tokens_in
    if timer is None:
        est.notes.append("no warm-up: time and $ unknown")
        return est
    timed = timer(task, model)
    if len(timed) < 2 or not est.items:
        est.notes.append("warm-up too short: time and $ unknown")
        return est
    # the first item carries the one-off set-up (prompt cache, label trie): counted once
    lat = [float(r.get("latency_s") or 0.0) for r in timed]
    parallel = max(1, model.parallel or 1)
    rest = est.items - 1
    est.wall_s, est.wall_low_s, est.wall_high_s = (
        lat[0] + rest * v / parallel for v in (statistics.fmean(lat[1:]), min(lat[1:]),
                                              max(lat[1:])))
    est.notes.append(f"time from a warm-up: first item {lat[0]:.2f} s, then {len(lat) - 1} "
                     f"item(s) of {min(lat[1:]):.2f}–{max(lat[1:]):.2f} s")
    costs = priced_rows(coster, model, timed)
    if costs is None:
        est.notes.append("unpriced: no hourly rate (give --hardware or --hourly)")
        return est
    est.usd_low, est.usd_expected, est.usd_high = (
        costs[0] + rest * v for v in (min(costs[1:]), statistics.fmean(costs[1:]),
                                      max(costs[1:])))
    return est


def priced_rows(coster: RunCoster, model: Model, rows: list[dict]) -> list[float] | None:
    """USD of each measured row, priced exactly as a run's rows of ``model`` are (the same
    coster, the model's manifest record; calls one after another: concurrency 1)."""
    latency = sum(float(r.get("latency_s") or 0.0) for r in rows)
    timings = [{"latency_sum_s": latency, "wall_s": latency}]
    costs = coster.item_costs(model.name, model.describe(), rows, timings)
    costs = list(costs)
    return None if any(c is None for c in costs) else [float(c) for c in costs]


def pilot_estimate(task: LoadedTask, model: Model, coster: RunCoster, measured: list[dict],
                   *, concurrency: int = 8) -> PairEstimate:
    """The full-run figures from ``measured`` pilot rows (``tokens_in``, ``tokens_out``,
    ``latency_s``, what else the backend measured): mean × items, with a 95 % interval of the
    mean (finite-population corrected: a pilot of every item has no sampling error)."""
    n, k = len(task.items), len(measured)
    est = PairEstimate(task=task.spec.name, model=model.name, items=n, method="pilot",
                       basis="pilot")
    est.notes.append(f"pilot of {k} item(s)")
    if not k:
        return est
    fpc = math.sqrt((n - k) / (n - 1)) if n > 1 else 0.0

    def interval(values: list[float]) -> tuple[float, float, float]:
        mean = statistics.fmean(values)
        half = Z95 * statistics.stdev(values) / math.sqrt(k) * fpc if k > 1 else 0.0
        return max(0.0, mean - half) * n, mean * n, (mean + half) * n

    t_in = [float(m.get("tokens_in") or 0) for m in measured]
    t_out = [float(m.get("tokens_out") or 0) for m in measured]
    lat = [float(m.get("latency_s") or 0.0) for m in measured]
    lo, mid, hi = interval(t_in)
    est.tokens_in, est.tokens_in_low, est.tokens_in_high = round(mid), int(lo), math.ceil(hi)
    o_lo, o_mid, o_hi = interval(t_out)
    est.out_low, est.out_expected, est.out_high = o_lo / n, o_mid / n, o_hi / n
    parallel = max(1, min(concurrency, model.parallel or concurrency)) \
        if model.thread_safe else 1
    w_lo, w_mid, w_hi = interval(lat)
    est.wall_s, est.wall_low_s, est.wall_high_s = w_mid / parallel, w_lo / parallel, \
        w_hi / parallel
    costs = priced_rows(coster, model, measured)
    if costs is None:
        est.notes.append(f"unpriced on {coster.on}")
        return est
    est.usd_low, est.usd_expected, est.usd_high = interval(costs)
    return est


# -- output -----------------------------------------------------------------------------------

def render(estimates: list[PairEstimate]) -> str:
    """A markdown table (readable in a terminal and pasteable), then each row's notes."""
    from slmbench.markdown import md_table

    def num(v: float | None, fmt: str = "{:,.0f}") -> str:
        return "—" if v is None else fmt.format(v)

    def usd(v: float | None) -> str:
        return "—" if v is None else f"${v:.4g}"

    def secs(v: float | None) -> str:
        if v is None:
            return "—"
        return f"{v:.0f} s" if v < 120 else f"{v / 60:.1f} min"

    rows = []
    for e in estimates:
        t_in = num(e.tokens_in)
        if e.tokens_in is not None and e.tokens_in_low != e.tokens_in_high:
            t_in += f" ({num(e.tokens_in_low)}–{num(e.tokens_in_high)})"
        out = "—" if e.out_expected is None else (
            f"{num(e.out_low, '{:.3g}')} / {num(e.out_expected, '{:.3g}')} / "
            f"{num(e.out_high, '{:.4g}')}")
        rows.append([e.task, e.model, e.items, e.method, t_in, out, usd(e.usd_low),
                     usd(e.usd_expected), usd(e.usd_high), secs(e.wall_s)])
    table = md_table(["task", "model", "items", "input tokens counted by", "input tokens",
                      "output/item low / exp / high", "$ low", "$ expected", "$ high",
                      "wall time"], rows, ["l", "l", "r", "l", "r", "r", "r", "r", "r", "r"])
    notes = [f"- {e.model} on {e.task}: {note}" for e in estimates for note in e.notes]
    total = [e.usd_expected for e in estimates]
    line = ""
    if total and all(v is not None for v in total):
        low = sum(e.usd_low or 0 for e in estimates)
        high = sum(e.usd_high or 0 for e in estimates)
        line = (f"\nTotal expected ${sum(total):.4g} (low ${low:.4g}, high ${high:.4g}); "
                "`run --max-cost` can be set from the high figure.\n")
    return table + line + ("\n" + "\n".join(notes) + "\n" if notes else "")


def to_json(estimates: list[PairEstimate], coster: RunCoster, options: dict[str, Any]
            ) -> dict[str, Any]:
    from slmbench.store.manifest import now_iso

    return {"created_at": now_iso(), "options": options, **coster.provenance(),
            "pairs": [asdict(e) for e in estimates]}


def save(run_dir: Path, data: dict[str, Any]) -> Path:
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / ESTIMATE_FILE
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


#: the figures set against the run: (key, what the report calls it)
COMPARED = (("usd", "$"), ("tokens_in", "input tokens"), ("tokens_out", "output tokens"),
            ("wall_s", "wall time (s)"))


def load_estimate(run_dir: str | Path) -> dict[str, Any] | None:
    """The run folder's stored estimate, or None when it has none."""
    path = Path(run_dir) / ESTIMATE_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", file=path) from None
    if not isinstance(data, dict) or not isinstance(data.get("pairs", []), list):
        raise InputError("must hold a JSON object with a 'pairs' list", file=path)
    return data


def estimate_vs_actual(run_dir: str | Path, summary: dict[str, Any] | None = None
                       ) -> list[dict[str, Any]]:
    """Per task × model of a run with a stored estimate: expected, low, high and actual USD,
    actual ÷ expected, and whether the actual lies in the range. Estimated and run item counts
    may differ (the estimate of a whole split, a run with --sample): the estimate is scaled
    per item. Empty when the run has no ``estimate.json``.

    ``summary``: the run's summary as a report shows it (rebuilt from rows, perhaps
    repriced); the stored ``summary.json`` otherwise. ``figures`` holds the same comparison
    for each of :data:`COMPARED` ($, input and output tokens, wall time), so that a report can
    show where a wrong estimate went wrong."""
    run_dir = Path(run_dir)
    est = load_estimate(run_dir)
    summary_path = run_dir / "summary.json"
    if est is None or (summary is None and not summary_path.exists()):
        return []
    if summary is None:
        summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return compare(est, summary)


def compare(est: dict[str, Any], summary: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`estimate_vs_actual` of a loaded estimate and summary (pairs the run lacks, or
    that failed, are left out: they have no actual)."""
    actual = {(e.get("task"), e.get("model")): e for e in summary.get("results") or []}
    out = []
    for pair in est.get("pairs") or []:
        entry = actual.get((pair["task"], pair["model"]))
        if entry is None or entry.get("failed"):
            continue
        n_act = entry.get("n_items") or entry.get("n") or 0
        scale = n_act / pair["items"] if pair.get("items") else 1.0
        spent = entry.get("total_usd")
        row = {"task": pair["task"], "model": pair["model"], "items_estimated": pair["items"],
               "items_run": n_act, "method": pair.get("method"), "basis": pair.get("basis"),
               "run_id": summary.get("run_id"), "usd_actual": spent}
        for key in ("usd_low", "usd_expected", "usd_high"):
            row[key] = None if pair.get(key) is None else pair[key] * scale
        exp, lo, hi = row["usd_expected"], row["usd_low"], row["usd_high"]
        row["actual_over_expected"] = spent / exp if spent is not None and exp else None
        row["within_range"] = (lo <= spent <= hi) if None not in (spent, lo, hi) else None
        # input tokens and time are totals of the estimated items, output tokens per item
        ranges = {
            "usd": (lo, exp, hi, spent),
            "tokens_in": (*_times(scale, pair, "tokens_in_low", "tokens_in", "tokens_in_high"),
                          entry.get("tokens_in")),
            "tokens_out": (*_times(n_act, pair, "out_low", "out_expected", "out_high"),
                           entry.get("tokens_out")),
            "wall_s": (*_times(scale, pair, "wall_low_s", "wall_s", "wall_high_s"),
                       entry.get("wall_s")),
        }
        row["figures"] = {key: _versus(*ranges[key]) for key, _ in COMPARED}
        out.append(row)
    return out


def _times(factor: float, pair: dict[str, Any], *keys: str) -> tuple[float | None, ...]:
    return tuple(None if pair.get(k) is None else float(pair[k]) * factor for k in keys)


def _versus(low: float | None, expected: float | None, high: float | None,
            actual: float | None) -> dict[str, Any]:
    ratio = actual / expected if actual is not None and expected else None
    within = (low <= actual <= high) if None not in (low, actual, high) else None
    return {"low": low, "expected": expected, "high": high, "actual": actual,
            "actual_over_expected": ratio, "within_range": within}


def high_usd(run_dir: str | Path) -> float:
    """``run --max-cost estimate``: the stored estimate's total high $ (the figure the
    estimate's own output offers as a cap). One clear line when the run has no estimate or
    the estimate priced nothing."""
    path = Path(run_dir) / ESTIMATE_FILE
    est = load_estimate(run_dir)
    if est is None:
        raise InputError(f"no stored estimate for run '{Path(run_dir).name}' ({path} not "
                         "found); write one with `slmbench estimate ... --run-id "
                         f"{Path(run_dir).name}` or give a USD amount",
                         field="--max-cost", value="estimate")
    highs = [p.get("usd_high") for p in est.get("pairs") or [] if isinstance(p, dict)]
    priced = [float(h) for h in highs if h is not None]
    if not priced or not sum(priced) > 0:
        raise InputError(f"the stored estimate ({path}) prices no task × model, so it gives "
                         "no cap; give a USD amount", field="--max-cost", value="estimate")
    return sum(priced)


def pricing_options(pricing: Any, price_date: str | None, hardware: str | None,
                    hourly: float | None) -> PricingOptions:
    return PricingOptions(dirs=tuple(pricing or ()), price_date=price_date, hardware=hardware,
                          hourly_usd=hourly)
