"""Ray executor: 1 vs 2 Ray workers, side by side with the in-process executor, in one run.

Two paths, each over the same items with ``run_benchmark`` end to end (rows written, summary
built), on one local Ray instance (``ray.init(num_cpus=CPUs)``) started once:

  local path  ``llamacpp:smollm2`` on N Banking77 items (stratified sample of
              /work/shared/datasets/banking77 when it is there, else the bundled 50-item
              task), the bundled banking77-mini prompt (77 labels):
              (a) ``--executor local`` (one process, llama.cpp on all cores),
              (b) ``--executor ray --workers 1`` (one actor, all cores),
              (c) ``--executor ray --workers 2`` (two actors, one core each),
              (d) = (b) with ``n_threads=1`` and (e) = (a) with ``n_threads=1``: c/d is
              scale-out alone (the same one-thread worker, once vs twice), free of
              llama.cpp's busy-waiting threads, which a shared machine punishes
  API path    ``openai/fake`` against ``tests/fakeserver.py`` in a SUBPROCESS (fixed delay,
              default 50 ms), N generated items, ``--concurrency 32``: (a) local, (b) ray with
              1 worker (32 slots), (c) ray with 2 workers (16 + 16 slots)

Variants alternate over ``--rounds`` rounds (order reversed every other round); medians are
reported. Per variant: items/s over the pair's own wall time (after the actors have loaded
their models: what pricing uses) and the end-to-end wall time of the whole call (Ray actor
start-up and model loading included). Then the ratios, one summary line per figure.

    python benchmarks/bench_ray.py                       # 200 local items, 1,000 API items
    python benchmarks/bench_ray.py --local-n 50 --api-n 300 --rounds 1   # quick check

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

import yaml  # noqa: E402
from _common import (  # noqa: E402
    DATA_DIR,
    add_repo_to_path,
    contention_after,
    fake_server,
    machine,
    wait_for_quiet,
)

ROOT = add_repo_to_path()

from slmbench.runner import run as run_module  # noqa: E402
from slmbench.runner.run import RunOptions, run_benchmark  # noqa: E402

# key → (executor, workers, model setting added to the id)
VARIANTS = {"a": ("local", None, ""), "b": ("ray", 1, ""), "c": ("ray", 2, ""),
            "d": ("ray", 1, "n_threads=1"), "e": ("local", None, "n_threads=1")}
NAMES = {"a": "local executor (1 process, 2 threads)", "b": "ray, 1 worker (2 threads)",
         "c": "ray, 2 workers (1 thread each)", "d": "ray, 1 worker, n_threads=1",
         "e": "local executor, n_threads=1"}
API_NAMES = {"a": "local executor (1 process)", "b": "ray, 1 worker (all slots)",
             "c": "ray, 2 workers (half the slots each)"}
LOCAL_VARIANTS = ("a", "b", "c", "d", "e")
API_VARIANTS = ("a", "b", "c")


# --------------------------------------------------------------------------- tasks


def banking_task(n: int, workdir: Path) -> tuple[Path, str]:
    """The bundled banking77-mini prompt on a stratified sample of n shared test items."""
    bundled = ROOT / "tasks" / "banking77_mini.yaml"
    test = DATA_DIR / "test.jsonl"
    if not test.exists():
        return bundled, "bundled banking77-mini (50 items; shared data not found)"
    by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in test.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            by_label[row["label"]].append(row)
    queues = [sorted(rows, key=lambda r: r["id"]) for _, rows in sorted(by_label.items())]
    rows: list[dict[str, Any]] = []
    depth = 0
    while len(rows) < n and any(depth < len(q) for q in queues):
        rows += [q[depth] for q in queues if depth < len(q)][: n - len(rows)]
        depth += 1
    sample = workdir / "banking_sample.jsonl"
    sample.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    spec = yaml.safe_load(bundled.read_text(encoding="utf-8"))
    spec["name"] = "banking77-ray-bench"
    files = spec["dataset"]["files"]
    files["test"] = str(sample)
    files["train"] = str(DATA_DIR / "train.jsonl")  # labels: from_train, all 77 of them
    path = workdir / "banking_bench.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path, f"{len(rows)} Banking77 test items (stratified), bundled prompt, 77 labels"


def api_task(n: int, workdir: Path) -> Path:
    data = workdir / "api_items.jsonl"
    labels = ("ok", "other")
    data.write_text("".join(json.dumps({
        "id": f"item-{i:05d}", "label": labels[i % 2],
        "text": f"Customer message number {i}: where is my card? It was ordered {i % 17} days "
                "ago."}) + "\n" for i in range(n)), encoding="utf-8")
    path = workdir / "api_bench.yaml"
    path.write_text(yaml.safe_dump({
        "name": "api-ray-bench", "kind": "classification",
        "dataset": {"files": {"test": str(data)}, "split": "test",
                    "columns": {"id": "id", "text": "text", "label": "label"}},
        "labels": list(labels),
        "prompt": {"instruction": "Classify the message into one of:\n{labels}\n"
                                  "Answer with the label only.\n",
                   "template": "Message: {text}"}}, sort_keys=False), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- measuring


def measure(task: Path, model: str, key: str, workdir: Path, concurrency: int
            ) -> dict[str, Any]:
    """One run_benchmark of one variant: items/s over the pair's wall time, end-to-end s."""
    executor, workers, setting = VARIANTS[key]
    if setting:
        model += ("&" if "?" in model else "?") + setting
    made: list[Any] = []
    real = run_module.make_pair_run

    def capture(*args: Any, **kwargs: Any) -> Any:
        made.append(real(*args, **kwargs))
        return made[-1]

    run_module.make_pair_run = capture
    out = workdir / "results"
    try:
        start = time.perf_counter()
        result = run_benchmark([task], [model], results_dir=out, run_id=f"{key}-{time.time_ns()}",
                               options=RunOptions(concurrency=concurrency, use_cache=False,
                                                  executor=executor, workers=workers))
        total = time.perf_counter() - start
    finally:
        run_module.make_pair_run = real
    pair = made[-1]
    entry = result.summary["results"][0]
    shutil.rmtree(out, ignore_errors=True)
    return {"items": pair.fresh, "wall_s": pair.wall_s, "items_s": pair.fresh / pair.wall_s,
            "total_s": total, "accuracy": entry["accuracy"], "errors": entry["n_errors"],
            "workers": pair.workers}


def compare(title: str, task: Path, model: str, workdir: Path, rounds: int,
            concurrency: int, variants: tuple[str, ...], names: dict[str, str]
            ) -> dict[str, dict[str, float]]:
    runs: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in range(rounds):
        order = list(variants) if r % 2 == 0 else list(reversed(variants))
        for key in order:
            runs[key].append(measure(task, model, key, workdir, concurrency))
            m = runs[key][-1]
            print(f"  round {r + 1} {key}: {m['items_s']:8.1f} items/s over {m['wall_s']:.2f} s, "
                  f"end to end {m['total_s']:.2f} s", flush=True)
    med = {k: {f: statistics.median(m[f] for m in v) for f in ("items_s", "wall_s", "total_s")}
           for k, v in runs.items()}
    print(f"\n{title}")
    print("| variant | items/s (pair wall) | pair wall s | end-to-end s | accuracy | errors |")
    print("|---|---:|---:|---:|---:|---:|")
    for key in variants:
        last = runs[key][-1]
        print(f"| ({key}) {names[key]} | {med[key]['items_s']:.1f} | {med[key]['wall_s']:.2f} | "
              f"{med[key]['total_s']:.2f} | {last['accuracy']:.3f} | {last['errors']} |")
    return med


def ratios(label: str, med: dict[str, dict[str, float]]) -> dict[str, float]:
    out = {
        "ray2/ray1 items/s": med["c"]["items_s"] / med["b"]["items_s"],
        "ray2/local items/s": med["c"]["items_s"] / med["a"]["items_s"],
        "ray1/local items/s": med["b"]["items_s"] / med["a"]["items_s"],
        "ray2/ray1 end-to-end speed-up": med["b"]["total_s"] / med["c"]["total_s"],
        "ray2/local end-to-end speed-up": med["a"]["total_s"] / med["c"]["total_s"],
    }
    if "d" in med:  # the same one-thread worker, once vs twice: scale-out alone
        out["ray2/ray1 items/s, 1 thread per worker"] = med["c"]["items_s"] / med["d"]["items_s"]
        out["ray1/local items/s, 1 thread"] = med["d"]["items_s"] / med["e"]["items_s"]
    for name, value in out.items():
        print(f"SUMMARY {label}: {name} = {value:.2f}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--local-n", type=int, default=200)
    p.add_argument("--api-n", type=int, default=1000)
    p.add_argument("--delay", type=float, default=0.05)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--skip", choices=("local", "api"), action="append", default=[])
    p.add_argument("--no-wait", action="store_true")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.no_wait:
        os.environ["SLMBENCH_BENCH_NO_WAIT"] = "1"

    import ray

    note = wait_for_quiet()
    cpus = os.cpu_count() or 1
    start = time.perf_counter()
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False,
             logging_level="WARNING")
    print(f"# {machine()}; Ray {ray.__version__} local instance, num_cpus={cpus} "
          f"(started in {time.perf_counter() - start:.1f} s)")
    print(f"# before: {note}")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if "local" not in args.skip:
            task, what = banking_task(args.local_n, workdir)
            print(f"\n## local path: llamacpp:smollm2, {what}")
            med = compare("local path (llamacpp:smollm2)", task, "llamacpp:smollm2", workdir,
                          args.rounds, args.concurrency, LOCAL_VARIANTS, NAMES)
            figures["local"] = {"medians": med, "ratios": ratios("local", med)}
        if "api" not in args.skip:
            task = api_task(args.api_n, workdir)
            with fake_server(args.delay) as (base, _proc):
                bound = args.concurrency / args.delay
                print(f"\n## API path: {args.api_n} items, concurrency {args.concurrency}, "
                      f"server delay {args.delay * 1000:.0f} ms (bound {bound:.0f} items/s)")
                med = compare("API path (openai/fake over the fake server)", task,
                              f"openai/fake?api_base={base}", workdir, args.rounds,
                              args.concurrency, API_VARIANTS, API_NAMES)
            figures["api"] = {"medians": med, "ratios": ratios("api", med)}
    print(f"# after: {contention_after()}")
    ray.shutdown()
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
