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
    cpu_s: float | None  # local models: this process's CPU seconds during the call
    shots: list[Any]  # ids of the train items its prompt showed as examples, in order


#: every key a result row may have, the always-present ones first
ROW_FIELDS: tuple[str, ...] = tuple(ResultRow.__annotations__)


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
