"""Reliability figure: N items (default 10,000) at 5 % injected faults of mixed kinds.

Compares nothing: it checks the invariant that every item ends up either scored or recorded as
an error — 0 lost, 0 duplicated — through the real runner, litellm and HTTP, against the
fault-injecting server of the tests (127.0.0.1 only). Prints one line per figure.

    python benchmarks/bench_faults.py [--items 10000] [--rate 0.05] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

KINDS = ["429", "429-no-retry-after", "500", "503", "timeout", "drop", "empty", "truncated",
         "garbage", "wrong-type"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    from fakeserver import FakeOpenAIServer, FaultPlan

    from slmbench.runner.retry import RetryPolicy
    from slmbench.runner.run import RunOptions, run_benchmark

    work = Path(tempfile.mkdtemp(prefix="slmbench-faults-"))
    labels = ["alpha", "beta", "gamma", "delta"]
    with (work / "d.jsonl").open("w") as fh:
        for i in range(args.items):
            fh.write(json.dumps({"id": f"i{i:06d}", "text": f"item {i} about {labels[i % 4]}",
                                 "label": labels[i % 4]}) + "\n")
    (work / "t.yaml").write_text("name: faults\nkind: classification\n"
                                 "dataset: {path: d.jsonl}\nlabels: [alpha, beta, gamma, delta]\n")

    def answer(body: dict) -> str:
        return body["messages"][-1]["content"].rsplit(" ", 1)[-1]

    plan = FaultPlan(rate=args.rate, kinds=KINDS, seed=args.seed, retry_after_s=0.05,
                     timeout_s=1.0)
    start = time.perf_counter()
    with FakeOpenAIServer(answer, faults=plan) as server:
        run_benchmark([work / "t.yaml"], [f"openai/fake?api_base={server.base_url}&timeout=0.5"],
                      results_dir=work / "results", run_id="faults",
                      options=RunOptions(concurrency=args.concurrency, use_cache=False,
                                         retry=RetryPolicy(max_attempts=4, base_s=0.05,
                                                           cap_s=0.5)))
        faults = server.fault_counts
        requests = len(server.calls)
    wall = time.perf_counter() - start
    lines = (work / "results" / "faults" / "items.jsonl").read_text().splitlines()
    rows = [json.loads(x) for x in lines]
    ids = collections.Counter(r["item_id"] for r in rows)
    expected = {f"i{i:06d}" for i in range(args.items)}
    lost = len(expected - set(ids))
    duplicated = sum(n - 1 for n in ids.values() if n > 1)
    errors = sum(bool(r["error"]) for r in rows)
    scored = sum(not r["error"] for r in rows)
    retried = sum(r["attempts"] > 1 for r in rows)
    print(f"items: {args.items}  requests: {requests}  injected faults: {sum(faults.values())} "
          f"({sum(faults.values()) / max(requests, 1):.1%} of requests)")
    print(f"faults by kind: {dict(sorted(faults.items()))}")
    print(f"scored: {scored}  recorded as errors: {errors}  retried items: {retried}")
    print(f"lost: {lost}  duplicated: {duplicated}  (both must be 0)")
    print(f"wall: {wall:.1f} s  ({args.items / wall:.0f} items/s at concurrency "
          f"{args.concurrency})")
    sys.exit(0 if lost == 0 and duplicated == 0 and scored + errors == args.items else 1)


if __name__ == "__main__":
    main()
