"""The records that cross module boundaries, named once.

A request goes to a backend, a completion comes back, the runner turns it into a result row
(one line of ``items.jsonl``) and the run's manifest says how the rows were made. Rows and
manifests are stored as JSON and read back by code that never saw the writer (reports, merges,
repricing, a later slmbench), so their keys are a file format: the TypedDicts below are that
format's one list of names, and a reader that goes through them is checked against it.

Rows and manifests stay plain dicts at run time (a TypedDict costs nothing per row, and a
stored file from an older slmbench lacks keys added since: readers use ``.get`` for those).
This module imports nothing heavy: every process, worker processes included, loads it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypedDict

# What a row predicted when its answer was invalid or its call failed: strings no label can
# equal. Task kinds (which turn a row into its label) and scoring (which counts those labels)
# both need them, and task kinds sit above scoring, so they are defined here.
INVALID = "<invalid>"
ERROR = "<error>"


@dataclass(frozen=True)
class Request:
    messages: list[dict[str, str]]
    text: str
    choices: tuple[str, ...] | None = None
    json_schema: dict[str, Any] | None = None
    max_tokens: int = 64


@dataclass
class Completion:
    text: str
    latency_s: float
    tokens_in: int | None = None
    tokens_out: int | None = None
    token_source: str = "none"  # provider | gguf | tiktoken | none
    cached_tokens_in: int | None = None
    confidence: float | None = None
    confidence_source: str | None = None  # label-logprob | token-logprob | classifier-proba
    extra: dict[str, Any] = field(default_factory=dict)
    #: why generation stopped: "stop", "length" (the output budget ran out), "content_filter"…
    finish_reason: str | None = None
    #: hidden reasoning tokens, a part of ``tokens_out`` (billed as output by every provider)
    reasoning_tokens: int | None = None
    #: input tokens written to the provider's prompt cache, a part of ``tokens_in``
    cache_write_tokens: int | None = None
    #: CPU seconds this process spent on the call (llama.cpp's threads included): the busy time
    #: local pricing uses, steadier than wall time on a shared machine; ``None``: not measured
    cpu_s: float | None = None


class _RowRequired(TypedDict):
    task: str
    kind: str
    model: str
    item_id: Any  # as the dataset gives it: str or int
    input: str
    output: str | None
    answer: Any  # a label, a fields object, a chain's {"label", "fields"}; None: no answer
    gold: Any
    correct: bool
    invalid: bool
    error: str | None
    attempts: int  # calls made for this row (0: answered from the response cache)
    tokens_in: int | None
    tokens_out: int | None
    token_source: str | None
    cached_tokens_in: int | None  # part of tokens_in read from the provider's prompt cache
    latency_s: float | None
    confidence: float | None
    confidence_source: str | None
    cached: bool  # answered from slmbench's response cache
    ts: str
    finish_reason: str | None
    reasoning_tokens: int | None  # part of tokens_out
    cache_write_tokens: int | None  # part of tokens_in
    truncated: bool  # the output budget ran out before a whole answer


class ResultRow(_RowRequired, total=False):
    """One line of ``items.jsonl``. Rows stored before a key was added lack it (``.get``)."""

    error_permanent: bool  # only on an error that cannot get better by retrying
    routed: str | None  # routing tasks: the route taken (the fallback for no answer)
    extra: dict[str, Any]  # backend details worth keeping, when there are any
    steps: list[dict[str, Any]]  # a classify → extract pipeline: one entry per step run
    shots: list[Any]  # ids of the train items its prompt showed as examples, in order
    cpu_s: float | None  # local models: this process's CPU seconds during the call


#: every key a result row may have, the always-present ones first
ROW_FIELDS: tuple[str, ...] = tuple(ResultRow.__annotations__)

#: the token counts of a row (and of a :class:`Completion`), each a whole number >= 0 or None
TOKEN_FIELDS = ("tokens_in", "tokens_out", "cached_tokens_in", "reasoning_tokens",
                "cache_write_tokens")
#: the most tokens one call may report when its model's context window is unknown: ten times
#: the largest windows on sale. A count past it (or past ten times a known window) is a
#: provider's fault, not a bill: it would price one item at thousands of dollars
MAX_CALL_TOKENS = 100_000_000


def usage_problem(usage: Any, ceiling: int = MAX_CALL_TOKENS) -> str | None:
    """``"tokens_in=-5"``: the first token count of ``usage`` (a Completion or a row) that is
    not a whole number in [0, ceiling]; None when every count is one or absent."""
    get = usage.get if isinstance(usage, dict) else lambda name: getattr(usage, name, None)
    for name in TOKEN_FIELDS:
        value = get(name)
        if value is not None and (type(value) is not int or not 0 <= value <= ceiling):
            return f"{name}={value!r}"
    return None


def _count(v: Any) -> bool:
    # a whole float (12.0) is a count a JSON writer of another language may give: the summary
    # adds it as it is
    return (type(v) is int or (type(v) is float and v.is_integer())) and \
        0 <= v <= MAX_CALL_TOKENS


def _seconds(v: Any) -> bool:
    return type(v) in (int, float) and 0 <= v < float("inf")


#: what each stored row field must hold when present (``None`` allowed where the runner writes
#: it), and how a reader is told: rows read back by report, gate, resume and merge are checked
#: against it, so a hand-edited row is one clear line instead of a traceback or a silent miss
_ROW_CHECKS: dict[str, tuple[Any, bool, str]] = {
    "task": (lambda v: type(v) is str, False, "a task name (string)"),
    "model": (lambda v: type(v) is str, False, "a model name (string)"),
    "item_id": (lambda v: type(v) in (str, int), False, "an item id (string or integer)"),
    "kind": (lambda v: type(v) is str, False, "a task kind (string)"),
    "correct": (lambda v: type(v) is bool, False, "true or false"),
    "invalid": (lambda v: type(v) is bool, False, "true or false"),
    "cached": (lambda v: type(v) is bool, False, "true or false"),
    "truncated": (lambda v: type(v) is bool, False, "true or false"),
    "error_permanent": (lambda v: type(v) is bool, False, "true or false"),
    "error": (lambda v: type(v) is str, True, "an error text or null"),
    "attempts": (lambda v: type(v) is int and v >= 0, True, "a whole number >= 0"),
    **{name: (_count, True, f"a whole number of tokens from 0 to {MAX_CALL_TOKENS:,} or null")
       for name in TOKEN_FIELDS},
    "latency_s": (_seconds, True, "a number of seconds >= 0 or null"),
    "cpu_s": (_seconds, True, "a number of seconds >= 0 or null"),
    "token_source": (lambda v: type(v) is str, True, "a string or null"),
    "confidence_source": (lambda v: type(v) is str, True, "a string or null"),
    "finish_reason": (lambda v: type(v) is str, True, "a string or null"),
}
#: the keys every stored row has, from the first slmbench on: a row is found by them
ROW_KEY_FIELDS = ("task", "model", "item_id")


def row_problem(row: dict[str, Any]) -> tuple[str, Any, str] | None:
    """(field, value, what it must be) of the first field of a stored row that is missing
    (a key field) or of the wrong type or range; None for a sound row. Fields the readers look
    at deeper (gold, answer, confidence) are checked by the summary, per task kind."""
    if _sound(row):  # every row of a large run is read through here: the usual case first
        return None
    for name in ROW_KEY_FIELDS:
        if name not in row:
            return name, None, "is missing (every row has task, model and item_id)"
    for name, (ok, nullable, must) in _ROW_CHECKS.items():
        if name in row:
            value = row[name]
            if value is None and nullable:
                continue
            if not ok(value):
                return name, value, f"must be {must}"
    return None


def _sound(row: dict[str, Any]) -> bool:
    """:data:`_ROW_CHECKS` of a row as the runner writes it, in one expression (a row it
    rejects is looked at field by field)."""
    get = row.get
    cpu = get("cpu_s")
    error, attempts, latency = get("error"), get("attempts", 0), get("latency_s")
    tin, tout, cached = get("tokens_in"), get("tokens_out"), get("cached_tokens_in")
    reasoning, written = get("reasoning_tokens"), get("cache_write_tokens")
    return (type(get("task")) is str and type(get("model")) is str
            and type(get("item_id")) in (str, int) and type(get("kind", "")) is str
            and type(get("correct", False)) is bool and type(get("invalid", False)) is bool
            and type(get("cached", False)) is bool and type(get("truncated", False)) is bool
            and (error is None or type(error) is str) and type(attempts) is int
            and attempts >= 0 and (latency is None or (type(latency) is float
                                                       and 0.0 <= latency < _INF))
            and (tin is None or (type(tin) is int and 0 <= tin <= MAX_CALL_TOKENS))
            and (tout is None or (type(tout) is int and 0 <= tout <= MAX_CALL_TOKENS))
            and (cached is None or (type(cached) is int and 0 <= cached <= MAX_CALL_TOKENS))
            and (reasoning is None or (type(reasoning) is int
                                       and 0 <= reasoning <= MAX_CALL_TOKENS))
            and (written is None or (type(written) is int and 0 <= written <= MAX_CALL_TOKENS))
            and type(get("error_permanent", False)) is bool
            and (cpu is None or (type(cpu) is float and 0.0 <= cpu < _INF))
            and _text_or_none(get("token_source")) and _text_or_none(get("confidence_source"))
            and _text_or_none(get("finish_reason")))


def _text_or_none(value: Any) -> bool:
    return value is None or type(value) is str


_INF = float("inf")


class _ManifestRequired(TypedDict):
    run_id: str
    started_at: str
    finished_at: str | None  # None while the run is going (or was killed)
    seed: int
    environment: dict[str, Any]
    tasks: dict[str, dict[str, Any]]  # task name → runner.run.task_description
    models: dict[str, dict[str, Any]]  # model name → Model.describe(), capabilities included
    options: dict[str, Any]
    timings: list[dict[str, Any]]  # one per task × model and invocation (dispatch.timing_entry)


class Manifest(_ManifestRequired, total=False):
    """``manifest.json`` of a run folder, as ``runner.run`` writes it; the optional keys come
    with resumes, cascades, stops, merges and repricing."""

    failures: list[dict[str, Any]]  # task × model pairs stopped because the model cannot run
    resumed_at: list[str]
    cascades: list[dict[str, Any]]
    stopped: str  # why an invocation ended early (--max-errors, --max-cost, Ctrl-C)
    pricing: dict[str, Any]  # the price date and sheets of the last summary
    merged_from: list[dict[str, Any]]
    merged_at: str
    repriced: list[dict[str, Any]]
    machine: dict[str, Any]  # the machine that ran (slmbench.machine.describe_machine)
