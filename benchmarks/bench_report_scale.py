"""Report at scale: ``slmbench report RUN --format md`` on a synthetic 1,000,000-row run.

Makes a tiny real run first (``baseline:tfidf-logreg`` on the bundled banking77-mini task, 20
items) to copy the exact row key set and the manifest, then writes a synthetic run of
``--rows`` rows (default 1,000,000: ``--models`` models x rows/models items of one
classification task, Banking77 texts and labels, ~70 % correct) under ``--workdir`` (/tmp).
Then it runs ``slmbench report RUN --format md`` in a subprocess and prints its peak RSS
(``os.wait4`` rusage of that child) and wall time. Targets: <= 300 MB RSS and <= 30 s.

The child runs under an address-space cap (``--mem-cap-mb``, default 8000) so that a report
that needs more memory fails with a MemoryError instead of taking a shared machine down; a
capped failure is reported as such (the target is then missed by at least the cap).

``--breakdown`` (on by default) then runs the same code path phase by phase in another capped
child (``RunDir.rows()``, ``group_rows``, per-pair metrics without and with the bootstrap CI,
and, for comparison, a compact column-wise read of the same file) and prints time and peak RSS
after each phase, to show which part of slmbench is responsible.

    python benchmarks/bench_report_scale.py
    python benchmarks/bench_report_scale.py --rows 100000      # quick check

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import DATA_DIR, add_repo_to_path, contention_after, machine, wait_for_quiet

ROOT = add_repo_to_path()

TARGET_RSS_MB = 300
TARGET_WALL_S = 30


def slmbench_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "slmbench"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "slmbench"]


def git_head() -> str:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                             capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        out = ""
    return out or "unknown commit"


# --------------------------------------------------------------------------- data


def template_run(workdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """A real (small) run: one row and the manifest, to copy shapes from."""
    from slmbench.runner.run import RunOptions, run_benchmark

    results = workdir / "template"
    shutil.rmtree(results, ignore_errors=True)
    res = run_benchmark([ROOT / "tasks" / "banking77_mini.yaml"], ["baseline:tfidf-logreg"],
                        results_dir=results, run_id="template", options=RunOptions(limit=20))
    with (res.run.path / "items.jsonl").open(encoding="utf-8") as fh:
        row = json.loads(fh.readline())
    manifest = json.loads((res.run.path / "manifest.json").read_text(encoding="utf-8"))
    return row, manifest


def load_texts(path: Path, limit: int = 10000) -> list[tuple[str, str]]:
    out = []
    if path.exists():
        with path.open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    r = json.loads(line)
                    out.append((r["text"], r["label"]))
                if len(out) >= limit:
                    break
    return out or [(f"message {i}", f"label_{i % 10}") for i in range(100)]


def write_synthetic(run: Path, row0: dict[str, Any], manifest0: dict[str, Any], rows: int,
                    models: int, texts: list[tuple[str, str]], seed: int = 0) -> dict[str, Any]:
    rng = random.Random(seed)
    task_name = row0["task"]
    labels = sorted({label for _, label in texts})
    base_model = row0["model"]
    names = [base_model] + [f"{base_model}-synthetic-{k}" for k in range(1, models)]
    per_model = rows // models
    run.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    with (run / "items.jsonl").open("w", encoding="utf-8") as fh:
        for name in names:
            lat_sum = 0.0
            for i in range(per_model):
                text, gold = texts[i % len(texts)]
                correct = rng.random() < 0.7
                answer = gold if correct else labels[rng.randrange(len(labels))]
                correct = answer == gold
                lat = rng.uniform(0.005, 0.4)
                lat_sum += lat
                row = dict(row0)
                row.update(model=name, item_id=f"synthetic-{i:07d}", input=text, output=answer,
                           answer=answer, gold=gold, correct=correct, invalid=False,
                           latency_s=round(lat, 6))
                if "confidence" in row0:
                    row["confidence"] = round(rng.random(), 6)
                if "tokens_in" in row0 and row0.get("tokens_in") is not None:
                    row["tokens_in"] = len(text.split()) + 40
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    manifest = json.loads(json.dumps(manifest0))
    manifest["run_id"] = run.name
    task = manifest["tasks"][task_name]
    task["n_items"] = per_model
    task["labels"] = labels
    model_info = manifest["models"][base_model]
    manifest["models"] = {n: {**model_info, "name": n} for n in names}
    manifest["timings"] = [{"task": task_name, "model": n, "items": per_model,
                            "wall_s": per_model * 0.01, "latency_sum_s": per_model * 0.2,
                            "workers": 1, "at": manifest.get("finished_at")} for n in names]
    (run / "manifest.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    size = (run / "items.jsonl").stat().st_size
    return {"rows": per_model * models, "models": models, "labels": len(labels),
            "bytes": size, "write_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- measuring


def run_capped(cmd: list[str], cap_mb: int, timeout_s: float, stdout: Path
               ) -> tuple[int, float, float, str]:
    """(returncode, wall s, peak RSS MB, stderr tail) of one child under an address-space cap."""
    def limit() -> None:
        cap = cap_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    with stdout.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.PIPE, preexec_fn=limit,
                                env=env)
        deadline = t0 + timeout_s
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                proc.kill()
                pid, status, usage = os.wait4(proc.pid, 0)
                break
            time.sleep(0.05)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    code = os.waitstatus_to_exitcode(status)
    return code, wall, usage.ru_maxrss / 1024, err[-1500:]


BREAKDOWN = r'''
import json, resource, sys, time
def mark(phase, t0, **extra):
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"phase": phase, "s": time.perf_counter() - t0, "peak_rss_mb": rss,
                      **extra}), flush=True)
run_path, mode = sys.argv[1], sys.argv[2]
t = time.perf_counter()
import numpy, sklearn.metrics  # noqa
from slmbench.store import RunDir
from slmbench.store import summary as S
from slmbench.scoring import classification as C
mark("imports (numpy, sklearn, slmbench.store)", t)
if mode == "compact":
    from slmbench.store.files import iter_jsonl
    t = time.perf_counter()
    cols = {}
    for r in iter_jsonl(RunDir(run_path).items_path):
        c = cols.setdefault((r["task"], r["model"]), ([], [], [], []))
        c[0].append(r["gold"]); c[1].append(r.get("answer")); c[2].append(bool(r["correct"]))
        c[3].append(r.get("latency_s"))
    mark("compact read: 4 columns per pair kept (not slmbench)", t, pairs=len(cols))
    sys.exit(0)
run = RunDir(run_path)
manifest = run.read_manifest()
fields = getattr(S, "SUMMARY_FIELDS", None)  # newer slmbench keeps only the fields it reads
t = time.perf_counter()
rows = run.rows(fields) if fields is not None else run.rows()
mark("RunDir.rows(" + ("SUMMARY_FIELDS" if fields is not None else "") + "): all rows as dicts",
     t, rows=len(rows), keys_per_row=len(rows[0]))
t = time.perf_counter()
groups = S.group_rows(rows)
mark("group_rows (+ sort by item id)", t, groups=len(groups))
real_ci = C.bootstrap_ci
C.bootstrap_ci = lambda correct, **kw: None
t = time.perf_counter()
per_pair = []
for (task, model), g in groups.items():
    t1 = time.perf_counter()
    S.pair_metrics(manifest["tasks"][task], g, 0)
    per_pair.append(round(time.perf_counter() - t1, 2))
mark("pair_metrics without bootstrap CI (sklearn metrics, confusion)", t, per_pair_s=per_pair)
C.bootstrap_ci = real_ci
g = next(iter(groups.values()))
correct = [bool(r["correct"]) for r in g]
del rows, groups
t = time.perf_counter()
try:
    real_ci(correct, seed=0)
    mark(f"bootstrap_ci on one pair (n={len(correct)}, 2000 resamples)", t)
except MemoryError:
    mark(f"bootstrap_ci on one pair (n={len(correct)}): MemoryError under the cap", t)
'''


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--models", type=int, default=4, help="rows are split over this many models")
    p.add_argument("--data", type=Path, default=DATA_DIR / "test.jsonl",
                   help="texts and labels for the synthetic rows")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/slmbench-report-scale"))
    p.add_argument("--mem-cap-mb", type=int, default=8000)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the synthetic run afterwards")
    p.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    args = p.parse_args(argv)

    print(f"# bench_report_scale: slmbench report --format md on {args.rows:,} rows "
          f"({args.models} models); machine: {machine()}; slmbench at {git_head()}", flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    row0, manifest0 = template_run(args.workdir)
    print(f"# row keys copied from a real run: {sorted(row0)}", flush=True)
    run = args.workdir / f"synthetic-{args.rows}"
    shutil.rmtree(run, ignore_errors=True)
    info = write_synthetic(run, row0, manifest0, args.rows, args.models, load_texts(args.data))
    print(f"# wrote {info['rows']:,} rows, {info['bytes'] / 1e6:.0f} MB items.jsonl, "
          f"{info['labels']} labels, in {info['write_s']:.0f} s: {run}", flush=True)

    note = "contention check skipped" if args.no_wait else wait_for_quiet()
    print(f"# before: {note}", flush=True)
    md = args.workdir / "report.md"
    code, wall, rss, err = run_capped(slmbench_cmd() + ["report", str(run), "--format", "md"],
                                      args.mem_cap_mb, args.timeout, md)
    print(f"# after: {contention_after()}", flush=True)
    status = "ok" if code == 0 else f"FAILED (exit {code})"
    print(f"slmbench report --format md, {info['rows']:,} rows: {status}, wall {wall:.1f} s, "
          f"peak RSS {rss:.0f} MB (address-space cap {args.mem_cap_mb} MB)")
    if code != 0:
        print("# stderr tail: " + " | ".join(err.strip().splitlines()[-4:]))
    ok_rss, ok_wall = rss <= TARGET_RSS_MB and code == 0, wall <= TARGET_WALL_S and code == 0
    print(f"target RSS <= {TARGET_RSS_MB} MB: {'MET' if ok_rss else 'NOT MET'} "
          f"({rss / TARGET_RSS_MB:.1f}x the target{'; run failed' if code else ''})")
    print(f"target wall <= {TARGET_WALL_S} s: {'MET' if ok_wall else 'NOT MET'} "
          f"({wall / TARGET_WALL_S:.1f}x the target{'; run failed' if code else ''})")
    per_pair = info["rows"] // info["models"]
    from slmbench.scoring import bootstrap

    if "size=(n_resamples" in Path(bootstrap.__file__).read_text(encoding="utf-8"):
        print(f"# note: this slmbench's bootstrap_ci materialises an index matrix and its "
              f"gather (2 x 2000 x n x 8 bytes) = {2 * 2000 * per_pair * 8 / 2**30:.1f} GiB "
              f"for one pair of n={per_pair:,} rows")
    if code == 0:
        lines = md.read_text(encoding="utf-8").splitlines()
        print(f"# report: {len(lines)} lines of markdown")

    if not args.no_breakdown:
        script = args.workdir / "breakdown.py"
        script.write_text(BREAKDOWN, encoding="utf-8")
        for mode in ("slmbench", "compact"):
            out = args.workdir / f"breakdown-{mode}.jsonl"
            code, wall, rss, err = run_capped([sys.executable, str(script), str(run), mode],
                                              args.mem_cap_mb, args.timeout, out)
            for line in out.read_text(encoding="utf-8").splitlines():
                ph = json.loads(line)
                extra = {k: v for k, v in ph.items() if k not in ("phase", "s", "peak_rss_mb")}
                print(f"breakdown {ph['phase']:<66} {ph['s']:7.1f} s  peak RSS "
                      f"{ph['peak_rss_mb']:6.0f} MB {extra if extra else ''}")
            if code != 0:
                print(f"breakdown ({mode}) child exit {code}, peak RSS {rss:.0f} MB: "
                      + " | ".join(err.strip().splitlines()[-3:]))
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
