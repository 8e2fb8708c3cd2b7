"""Chains on SNIPS: classify → extract pipelines against one model doing both in one call.

    python benchmarks/snips_chain.py [--limit N] [--n-threads T] [--results-dir results]
                                     [--run-id ID]

Runs ``tasks/examples/snips_chain.yaml`` (SNIPS test split from ../shared/datasets/snips, 700
items, 7 intents, 39 slot fields) with, in one run and so in one leaderboard:

* ``chain(baseline:tfidf-logreg > llamacpp:smollm2)``: TF-IDF intent, SmolLM2 slot extraction
  with the predicted intent's fields (JSON-schema grammar);
* ``chain(llamacpp:smollm2 > llamacpp:smollm2)``: SmolLM2 for both steps (label-trie intent);
* ``llamacpp:smollm2``: one call, one JSON object (grammar: one alternative per intent).

and prints intent accuracy, field micro-F1, end-to-end exact match, $ per 1k items and $ per
correct answer (local models priced on the default CPU machine, ``aws-c7i.large``, by measured
wall time). A stopped run resumes with the same ``--run-id``. Not a speed benchmark: the $
figures move with machine load, which the header reports.

``--n-threads 1`` gives every SmolLM2 ``n_threads=1``. On a shared machine this is the setting
that survives other people's work: llama.cpp's threads busy-wait on each other, and with more
runnable processes than cores two threads crawl (measured here under a load of ~5 on 2 cores:
1.3 tokens/s with 2 threads against 70 tokens/s with 1).
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import add_repo_to_path, contention_after, machine, wait_for_quiet

CLASSIFIER, LLM = "baseline:tfidf-logreg", "llamacpp:smollm2"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="first N test items (default all)")
    ap.add_argument("--results-dir", default="results")
    ap.add_argument("--run-id", default=None)
    ap.add_argument("--n-threads", type=int, default=None, help="n_threads of every SmolLM2")
    ap.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    args = ap.parse_args()
    root = add_repo_to_path()
    from slmbench.reports.leaderboard import leaderboard_entries, render_markdown
    from slmbench.runner.run import RunOptions, new_run_id, run_benchmark

    task = root / "tasks" / "examples" / "snips_chain.yaml"
    llm = LLM + (f"?n_threads={args.n_threads}" if args.n_threads else "")
    chains = (f"{CLASSIFIER},{llm}", f"{llm},{llm}")
    note = "contention check skipped" if args.no_wait else wait_for_quiet()
    print(f"# {machine()}; {note}")
    started = time.perf_counter()
    result = run_benchmark([task], [llm], results_dir=root / args.results_dir,
                           run_id=args.run_id or f"snips-chain-{new_run_id()}",
                           options=RunOptions(limit=args.limit, chains=chains))
    print(f"# {time.perf_counter() - started:.0f} s; {contention_after()}; "
          f"run {result.run.path}")
    print("| model | n | intent accuracy | field micro-F1 | exact match | $/1k items | "
          "$/correct |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in leaderboard_entries([result.summary]):
        e = row["entry"]
        usd = (f"${row['usd_per_1k_items']:.3g}" if row["usd_per_1k_items"] is not None
               else "unpriced")
        per = f"${row['usd_per_correct']:.3g}" if row["usd_per_correct"] is not None else "–"
        print(f"| {row['model']} | {row['n_items']} | {e['intent_accuracy']:.1%} | "
              f"{e['field_micro_f1']:.3f} | {row['accuracy']:.1%} | {usd} | {per} |")
    (result.run.path / "leaderboard.md").write_text(render_markdown(result.summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
