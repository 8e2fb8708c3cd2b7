"""Local llama.cpp path: naive vs slmbench vs a hand-written llama-cpp-python reference.

Compares, on the same N Banking77 test items (stratified, deterministic sample), with the
embedded SmolLM2-135M GGUF and the same 77-label prompt (built by slmbench's task machinery):

  (a) naive      KV cache reset before every item (``llm.reset()``), whole prompt evaluated,
                 free generation (``create_chat_completion``, temperature 0, stop on newline,
                 max_tokens 24), output parsed with ``slmbench.scoring.parse_label``
  (b) slmbench   ``resolve_model("llamacpp:smollm2").complete(request)``: KV prefix reuse +
                 label-trie constrained decoding (requests from ``ItemScorer(task).request``)
  (c) reference  hand-written llama-cpp-python: same chat prompt tokens, ``create_completion``
                 with prefix reuse (llama-cpp-python keeps the common prefix in the KV cache)
                 and a ``LlamaGrammar`` that only allows the 77 labels
  (d) free       slmbench with ``decoding=free`` (prefix reuse only, free generation)
  (e) instances  slmbench with ``instances=<n_threads>&n_threads=1``: one one-thread context
                 per core over the same weights, the chunk's items answered in parallel

The variants run interleaved in chunks (each keeps its own Llama instance and KV cache), so a
change in machine load hits all of them alike; model loading is not timed. Printed per
variant: items/s, accuracy, prompt tokens/s (logical prompt tokens handled per second, and
tokens actually evaluated per second), generated tokens/s; then the ratios (b)/(a)
(target >= 5x, accuracy not lower), (b)/(c) (target >= 0.8) and (e)/(b) (parallel contexts).

    python benchmarks/bench_local.py                 # 300 items, CPU
    python benchmarks/bench_local.py --n 20          # quick check
    python benchmarks/bench_local.py --n-gpu-layers -1   # GPU box

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import (
    DATA_DIR,
    add_repo_to_path,
    contention_after,
    heavy_processes,
    machine,
    wait_for_quiet,
)

add_repo_to_path()

from slmbench.models import resolve_model  # noqa: E402
from slmbench.models.llamacpp import embedded_model_path  # noqa: E402
from slmbench.runner.items import ItemScorer  # noqa: E402
from slmbench.scoring import parse_label  # noqa: E402
from slmbench.tasks import load_items, load_task  # noqa: E402

INSTRUCTION = """\
You are a banking support assistant. Classify the customer message into exactly one of
these intents:
{labels}
Answer with the intent name only.
"""

VARIANTS = {
    "a": "naive (reset + free gen)",
    "b": "slmbench constrained",
    "c": "hand-written grammar",
    "d": "slmbench decoding=free",
    "e": "slmbench instances=cores",
}


@dataclass
class Stats:
    seconds: float = 0.0
    items: int = 0
    correct: int = 0
    invalid: int = 0
    prompt_tokens: int = 0      # logical prompt length, summed over items
    evaluated_tokens: int = 0   # prompt tokens actually run through the model
    generated_tokens: int = 0
    answers: dict[str, str | None] = field(default_factory=dict)


def stratified_sample(path: Path, n: int) -> list[dict[str, Any]]:
    """Round-robin over labels (sorted), items by id: deterministic and class-balanced."""
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                by_label[row["label"]].append(row)
    queues = [sorted(rows, key=lambda r: r["id"]) for _, rows in sorted(by_label.items())]
    out: list[dict[str, Any]] = []
    depth = 0
    while len(out) < n and any(depth < len(q) for q in queues):
        for q in queues:
            if depth < len(q) and len(out) < n:
                out.append(q[depth])
        depth += 1
    return out


def build_task(test: Path, train: Path, n: int, workdir: Path):
    rows = stratified_sample(test, n)
    sample = workdir / "test_sample.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    yaml = workdir / "banking77_bench.yaml"
    indented = "".join("    " + line + "\n" for line in INSTRUCTION.splitlines())
    yaml.write_text(
        "name: banking77-bench\n"
        "kind: classification\n"
        "dataset:\n"
        "  files:\n"
        f"    test: {json.dumps(str(sample))}\n"
        f"    train: {json.dumps(str(train.resolve()))}\n"
        "  split: test\n"
        "  train_split: train\n"
        "  columns: {id: id, text: text, label: label}\n"
        "labels: from_train\n"
        "prompt:\n"
        "  instruction: |\n" + indented +
        '  template: "Customer message: {text}"\n', encoding="utf-8")
    return load_items(load_task(yaml))


def common_prefix(llm: Any, tokens: list[int]) -> int:
    n = min(llm.n_tokens, len(tokens))
    i = 0
    ids = llm.input_ids
    while i < n and ids[i] == tokens[i]:
        i += 1
    return i


def gbnf_labels(labels: tuple[str, ...]) -> str:
    def lit(s: str) -> str:
        return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "root ::= " + " | ".join(lit(label) for label in labels) + "\n"


class Runner:
    """One variant: its own model instance, called item by item."""

    def __init__(self, key: str, task, scorer: ItemScorer, args) -> None:
        self.key = key
        self.scorer = scorer
        self.args = args
        self.stats = Stats()
        settings = f"n_gpu_layers={args.n_gpu_layers}&n_threads={args.n_threads}" \
                   f"&n_ctx={args.n_ctx}"
        t0 = time.perf_counter()
        if key == "e":  # one one-thread context per core, items answered in parallel
            settings = (f"n_gpu_layers={args.n_gpu_layers}&n_threads=1&n_ctx={args.n_ctx}"
                        f"&instances={args.n_threads}")
        if key in ("b", "d", "e"):
            model_id = "llamacpp:smollm2?" + settings + ("&decoding=free" if key == "d" else "")
            self.model = resolve_model(model_id)
            self.model.prepare(task)
            self.llm = self.model._llm  # only read, for token accounting
        else:
            from llama_cpp import Llama, LlamaGrammar, llama_chat_format

            from slmbench.models.llamacpp import model_params, use_extra_bufts

            # loaded as slmbench loads it (no AMX weight buffers, which crash in decode)
            with model_params(use_extra_bufts("auto")):
                self.llm = Llama(model_path=str(embedded_model_path("smollm2")),
                                 n_ctx=args.n_ctx, n_gpu_layers=args.n_gpu_layers,
                                 n_threads=args.n_threads, n_batch=512, seed=0, verbose=False,
                                 logits_all=False)
            if key == "c":
                template = self.llm.metadata["tokenizer.chat_template"]
                eos = self.llm._model.token_get_text(self.llm.token_eos())
                bos = self.llm._model.token_get_text(self.llm.token_bos())
                self.formatter = llama_chat_format.Jinja2ChatFormatter(
                    template=template, eos_token=eos, bos_token=bos, add_generation_prompt=True)
                self.grammar = LlamaGrammar.from_string(gbnf_labels(task.spec.choices),
                                                        verbose=False)
        self.load_s = time.perf_counter() - t0

    def run(self, item) -> None:
        request = self.scorer.request(item)
        s = self.stats
        t0 = time.perf_counter()
        if self.key == "a":
            llm = self.llm
            llm.reset()
            out = llm.create_chat_completion(messages=request.messages, temperature=0.0,
                                             max_tokens=24, stop=["\n"], seed=0)
            text = out["choices"][0]["message"].get("content") or ""
            p_tok, g_tok = out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]
            evaluated = p_tok
        elif self.key == "c":
            llm = self.llm
            prompt = self.formatter(messages=request.messages).prompt
            tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
            common = common_prefix(llm, tokens)
            out = llm.create_completion(tokens, max_tokens=24, temperature=0.0,
                                        grammar=self.grammar, seed=0)
            text = out["choices"][0]["text"]
            p_tok, g_tok = out["usage"]["prompt_tokens"], out["usage"]["completion_tokens"]
            evaluated = len(tokens) - min(common, len(tokens) - 1)
        else:
            before_ids = None
            if self.key == "d":
                before_ids = (self.llm.n_tokens, self.llm.input_ids[:self.llm.n_tokens].copy())
            comp = self.model.complete(request)
            text = comp.text
            p_tok, g_tok = comp.tokens_in or 0, comp.tokens_out or 0
            evaluated = comp.extra.get("prompt_tokens_evaluated")
            if evaluated is None and before_ids is not None:
                # decoding=free: llama-cpp-python's own prefix reuse; recompute what it kept
                tokens = list(self.llm.input_ids[:p_tok])
                n, old = before_ids
                common = 0
                while common < min(n, p_tok) and old[common] == tokens[common]:
                    common += 1
                evaluated = p_tok - min(common, p_tok - 1)
        s.seconds += time.perf_counter() - t0
        self._count(item, text, p_tok, g_tok, evaluated)

    def run_chunk(self, chunk: list) -> None:
        """The chunk's items; (e) answers them from one thread per context, timed as a whole
        (its seconds are wall time, not the sum of the overlapping calls)."""
        if self.key != "e":
            for item in chunk:
                self.run(item)
            return
        from concurrent.futures import ThreadPoolExecutor

        t0 = time.perf_counter()
        with ThreadPoolExecutor(self.model.parallel) as pool:
            comps = list(pool.map(lambda it: self.model.complete(self.scorer.request(it)),
                                  chunk))
        self.stats.seconds += time.perf_counter() - t0
        for item, comp in zip(chunk, comps, strict=True):
            self._count(item, comp.text, comp.tokens_in or 0, comp.tokens_out or 0,
                        comp.extra.get("prompt_tokens_evaluated"))

    def _count(self, item, text: str, p_tok: int, g_tok: int, evaluated: int | None) -> None:
        s = self.stats
        answer = parse_label(text, self.scorer.matcher)
        s.items += 1
        s.correct += int(answer == item.gold)
        s.invalid += int(answer is None)
        s.prompt_tokens += p_tok
        s.evaluated_tokens += evaluated or 0
        s.generated_tokens += g_tok
        s.answers[item.id] = answer

    def close(self) -> None:
        if self.key in ("b", "d", "e"):
            self.model.close()
        else:
            self.llm.close()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=DATA_DIR / "test.jsonl",
                   help="test split (JSONL: id, text, label)")
    p.add_argument("--train", type=Path, default=DATA_DIR / "train.jsonl",
                   help="train split, for the label set (labels: from_train)")
    p.add_argument("--n", type=int, default=300, help="items (stratified sample)")
    p.add_argument("--variants", default="abcde", help="which of a,b,c,d,e to run")
    p.add_argument("--chunk", type=int, default=25, help="items per variant before rotating")
    p.add_argument("--n-gpu-layers", type=int, default=0)
    p.add_argument("--n-threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--n-ctx", type=int, default=4096)
    p.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    variants = [v for v in args.variants if v in VARIANTS]

    print(f"# bench_local: {VARIANTS} on {args.n} Banking77 items; machine: {machine()}; "
          f"n_threads={args.n_threads} n_gpu_layers={args.n_gpu_layers}", flush=True)
    with tempfile.TemporaryDirectory(prefix="slmbench-bench-local-") as tmp:
        task = build_task(args.data, args.train, args.n, Path(tmp))
    scorer = ItemScorer(task)
    items = list(task.items)
    print(f"# task: {len(items)} items, {len(task.spec.choices)} labels, "
          f"{len(set(i.gold for i in items))} distinct gold labels", flush=True)

    runners = {v: Runner(v, task, scorer, args) for v in variants}
    for v, r in runners.items():
        print(f"# load ({v}) {VARIANTS[v]}: {r.load_s:.2f} s (not timed below)", flush=True)
    note = "contention check skipped" if args.no_wait else wait_for_quiet()
    print(f"# before: {note}", flush=True)

    wall0 = time.perf_counter()
    chunk_s: list[dict[str, float]] = []  # per chunk: seconds per variant on the same items
    for c, start in enumerate(range(0, len(items), args.chunk)):
        chunk = items[start:start + args.chunk]
        order = variants[c % len(variants):] + variants[:c % len(variants)]
        chunk_s.append({})
        for v in order:
            before = runners[v].stats.seconds
            runners[v].run_chunk(chunk)
            chunk_s[-1][v] = runners[v].stats.seconds - before
        done = start + len(chunk)
        print(f"# {done}/{len(items)} items per variant, {time.perf_counter() - wall0:.0f} s "
              f"(this chunk: {', '.join(f'{v} {t:.1f} s' for v, t in chunk_s[-1].items())}; "
              f"heavy others: {len(heavy_processes())})", file=sys.stderr, flush=True)
    after = contention_after()
    print(f"# after: {after}", flush=True)
    for r in runners.values():
        r.close()

    results: dict[str, dict[str, Any]] = {}
    for v, r in runners.items():
        s = r.stats
        res = {
            "variant": VARIANTS[v], "items": s.items, "seconds": s.seconds,
            "items_per_s": s.items / s.seconds, "accuracy": s.correct / s.items,
            "invalid": s.invalid, "prompt_tok_per_s": s.prompt_tokens / s.seconds,
            "evaluated_tok_per_s": s.evaluated_tokens / s.seconds,
            "evaluated_per_item": s.evaluated_tokens / s.items,
            "prompt_per_item": s.prompt_tokens / s.items,
            "gen_tok_per_s": s.generated_tokens / s.seconds,
            "gen_per_item": s.generated_tokens / s.items,
        }
        results[v] = res
        print(f"({v}) {VARIANTS[v]:<26} {res['items_per_s']:7.2f} items/s  "
              f"acc {res['accuracy']:.3f} ({s.correct}/{s.items}, invalid {s.invalid})  "
              f"prompt {res['prompt_tok_per_s']:8.0f} tok/s "
              f"(evaluated {res['evaluated_tok_per_s']:6.0f} tok/s, "
              f"{res['evaluated_per_item']:.0f}/{res['prompt_per_item']:.0f} per item)  "
              f"gen {res['gen_tok_per_s']:6.1f} tok/s ({res['gen_per_item']:.1f}/item)")
    def chunk_ratio(num: str, den: str) -> str:
        """Median over chunks of the speed ratio: robust to load changes between chunks."""
        ratios = [c[den] / c[num] for c in chunk_s if c.get(num) and c.get(den)]
        return f"median over {len(ratios)} chunks {statistics.median(ratios):.2f}" \
            if ratios else "n/a"

    if "b" in results and "a" in results:
        ratio = results["b"]["items_per_s"] / results["a"]["items_per_s"]
        acc_ok = results["b"]["accuracy"] >= results["a"]["accuracy"]
        print(f"ratio (b)/(a) slmbench/naive items/s: {ratio:.2f}x  (target >= 5x: "
              f"{'MET' if ratio >= 5 else 'NOT MET'}; accuracy {results['b']['accuracy']:.3f} "
              f"vs {results['a']['accuracy']:.3f}: {'not lower' if acc_ok else 'LOWER'}; "
              f"{chunk_ratio('b', 'a')})")
    def agree(v: str, w: str) -> int:
        return sum(runners[v].stats.answers[k] == runners[w].stats.answers[k]
                   for k in runners[v].stats.answers)

    if "b" in results and "e" in results:
        ratio = results["e"]["items_per_s"] / results["b"]["items_per_s"]
        print(f"ratio (e) {args.n_threads} one-thread contexts / (b) one {args.n_threads}-thread "
              f"context: {ratio:.2f}x items/s; same answer on {agree('b', 'e')}/{len(items)} "
              f"items ({chunk_ratio('e', 'b')})")
    if "b" in results and "c" in results:
        ratio = results["b"]["items_per_s"] / results["c"]["items_per_s"]
        print(f"ratio (b)/(c) slmbench/hand-written items/s: {ratio:.2f}  (target >= 0.8: "
              f"{'MET' if ratio >= 0.8 else 'NOT MET'}; same answer on {agree('b', 'c')}/"
              f"{len(items)}; "
              f"{chunk_ratio('b', 'c')})")
    if "d" in results and "a" in results:
        ratio = results["d"]["items_per_s"] / results["a"]["items_per_s"]
        print(f"ratio (d)/(a) slmbench-free/naive items/s: {ratio:.2f}x ({chunk_ratio('d', 'a')})")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine(), "before": note, "after": after,
                                         "args": {k: str(v) for k, v in vars(args).items()},
                                         "results": results, "chunks": chunk_s}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
