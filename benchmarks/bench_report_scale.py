"""Report at scale: ``slmbench report RUN --format md`` on a synthetic 1,000,000-row run.

Makes a tiny real run first (``baseline:tfidf-logreg`` on the bundled banking77-mini task, 20
items) to copy the exact row key set and the manifest, then writes a synthetic run of
``--rows`` rows (default 1,000,000: ``--models`` models x rows/models items of one
classification task, Banking77 texts and labels, ~70 % correct) under ``--workdir`` (/tmp).
``--duplicates N`` appends N retried rows of items already written (a resumed run: the last row
of an item wins) and a torn last line. Then it runs ``slmbench report RUN --format md`` in a
subprocess and prints its peak RSS (``os.wait4`` rusage of that child) and wall time.
Targets: <= 300 MB RSS and <= 30 s.

Side by side in the same run (``--no-row-path`` skips it), the same report with the summary
built from row dicts (``build_summary(columnar=False)``, what slmbench did before the columnar
read): wall, peak RSS, the ratios, and whether both wrote the same markdown.

Every child runs under an address-space cap (``--mem-cap-mb``, default 8000) so that a report
that needs more memory fails with a MemoryError instead of taking a shared machine down; a
capped failure is reported as such (the target is then missed by at least the cap).

``--breakdown`` (on by default) then runs the columnar summary phase by phase in another capped
child (imports; streaming the file into typed columns; dedup and numpy; metrics per pair;
costs per pair) and prints time, peak RSS and current RSS after each phase, and the bytes the
columns hold, to show where the memory goes.

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
                    models: int, texts: list[tuple[str, str]], seed: int = 0,
                    duplicates: int = 0) -> dict[str, Any]:
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
        for k in range(duplicates):  # retries of a resumed run: these rows win
            i = rng.randrange(per_model)
            text, gold = texts[i % len(texts)]
            row = dict(row0)
            row.update(model=names[k % len(names)], item_id=f"synthetic-{i:07d}", input=text,
                       output=gold, answer=gold, gold=gold, correct=True, invalid=False,
                       latency_s=round(rng.uniform(0.005, 0.4), 6))
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        if duplicates:
            fh.write('{"task": "torn')  # what a kill mid-write leaves
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
            "duplicates": duplicates, "bytes": size, "write_s": time.perf_counter() - t0}


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
import json, os, resource, sys, time
def rss_now():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
def mark(phase, t0, **extra):
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"phase": phase, "s": time.perf_counter() - t0, "peak_rss_mb": peak,
                      "rss_mb": rss_now(), **extra}), flush=True)
run_path = sys.argv[1]
t = time.perf_counter()
mark("python", t)
import numpy  # noqa
mark("import numpy", t)
t = time.perf_counter()
import sklearn.metrics  # noqa
mark("import sklearn.metrics", t)
t = time.perf_counter()
from slmbench.pricing.run_costs import RunCoster
from slmbench.store import RunDir
from slmbench.analysis import summary as S
from slmbench.analysis.columns import ColumnReader
from slmbench.store.files import ReadReport, iter_numbered_jsonl
mark("import slmbench.analysis.summary", t)
run = RunDir(run_path)
manifest = run.read_manifest()
reader = ColumnReader(S._columnar_plan(manifest, set()))
t = time.perf_counter()
for _ in reader.take(iter_numbered_jsonl(run.items_path, ReadReport())):
    pass
held = sum(a.buffer_info()[1] * a.itemsize for a in [*reader.cols.values(), reader.hashes,
                                                       reader.lines]) / 2**20
mark("stream items.jsonl into typed columns (array.array)", t, rows=len(reader.hashes),
     held_mb=round(held, 1))
t = time.perf_counter()
cols = reader.finish(run.items_path)
mark("dedup (64-bit key hashes) + numpy columns", t, rows=len(cols),
     held_mb=round(sum(a.nbytes for a in cols.data.values()) / 2**20, 1))
t = time.perf_counter()
per_pair, metrics = [], {}
for pc in cols.by_pair():
    t1 = time.perf_counter()
    metrics[(pc.task, pc.model)] = S.columnar_pair_metrics(manifest["tasks"][pc.task], pc, 0)
    per_pair.append(round(time.perf_counter() - t1, 2))
mark("metrics per pair (sklearn on int codes, bootstrap, calibration)", t, per_pair_s=per_pair)
coster = RunCoster(S.pricing_from_manifest(manifest), manifest.get("started_at"))
t = time.perf_counter()
for pc in cols.by_pair():
    coster.price(pc.model, manifest["models"].get(pc.model, {}), pc,
                 [x for x in manifest["timings"] if x["model"] == pc.model])
mark("costs per pair (hourly: one hourly_cost call per distinct latency)", t)
'''


def report_row_path(run: Path) -> list[str]:
    """``slmbench report RUN --format md`` with the summary built from row dicts."""
    code = ("import sys; import slmbench.analysis.summary as S; real = S.build_summary; "
            "S.build_summary = lambda run, pricing=None, **kw: real(run, pricing, "
            "columnar=False); from slmbench.cli import main; "
            f"sys.argv = ['slmbench', 'report', {str(run)!r}, '--format', 'md']; main()")
    return [sys.executable, "-c", code]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--models", type=int, default=4, help="rows are split over this many models")
    p.add_argument("--duplicates", type=int, default=0,
                   help="append this many retried rows (and a torn line): a resumed run")
    p.add_argument("--data", type=Path, default=DATA_DIR / "test.jsonl",
                   help="texts and labels for the synthetic rows")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/slmbench-report-scale"))
    p.add_argument("--mem-cap-mb", type=int, default=8000)
    p.add_argument("--timeout", type=float, default=900)
    p.add_argument("--no-row-path", action="store_true",
                   help="skip the side-by-side report built from row dicts")
    p.add_argument("--no-breakdown", action="store_true")
    p.add_argument("--keep", action="store_true", help="keep the synthetic run afterwards")
    p.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    p.add_argument("--prepare", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)

    if not args.prepare:
        print(f"# bench_report_scale: slmbench report --format md on {args.rows:,} rows "
              f"({args.models} models, {args.duplicates:,} retried rows); machine: "
              f"{machine()}; slmbench at {git_head()}", flush=True)
    args.workdir.mkdir(parents=True, exist_ok=True)
    run = args.workdir / f"synthetic-{args.rows}"
    if args.prepare:
        row0, manifest0 = template_run(args.workdir)
        print(f"# row keys copied from a real run: {sorted(row0)}", flush=True)
        shutil.rmtree(run, ignore_errors=True)
        info = write_synthetic(run, row0, manifest0, args.rows, args.models,
                               load_texts(args.data), duplicates=args.duplicates)
        print(json.dumps(info))
        return 0
    # The run is written by a child: a child's peak RSS (ru_maxrss) starts at the RSS of the
    # process it was forked from (Linux keeps it across exec), so this process stays small.
    prep = subprocess.run([sys.executable, __file__, "--prepare", *(argv or sys.argv[1:])],
                          capture_output=True, text=True, check=False)
    if prep.returncode != 0:
        print(prep.stdout + prep.stderr)
        return 1
    *notes, last = prep.stdout.strip().splitlines()
    print("\n".join(notes), flush=True)
    info = json.loads(last)
    print(f"# wrote {info['rows']:,} rows (+{info['duplicates']:,} retried), "
          f"{info['bytes'] / 1e6:.0f} MB items.jsonl, {info['labels']} labels, in "
          f"{info['write_s']:.0f} s: {run}", flush=True)

    note = "contention check skipped" if args.no_wait else wait_for_quiet()
    print(f"# before: {note}", flush=True)
    with open("/proc/self/statm") as fh:
        own = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    print(f"# RSS of this process, the floor of every child's peak RSS: {own:.0f} MB",
          flush=True)
    variants = [("columnar (slmbench report)", slmbench_cmd() + ["report", str(run), "--format",
                                                                  "md"], "report.md")]
    if not args.no_row_path:
        variants.append(("row dicts (columnar=False)", report_row_path(run), "report-rows.md"))
    measured = {}
    for name, cmd, out_name in variants:
        md = args.workdir / out_name
        code, wall, rss, err = run_capped(cmd, args.mem_cap_mb, args.timeout, md)
        measured[name] = (code, wall, rss, md)
        status = "ok" if code == 0 else f"FAILED (exit {code})"
        print(f"slmbench report --format md, {info['rows']:,} rows, summary from {name}: "
              f"{status}, wall {wall:.1f} s, peak RSS {rss:.0f} MB (address-space cap "
              f"{args.mem_cap_mb} MB)", flush=True)
        if code != 0:
            print("# stderr tail: " + " | ".join(err.strip().splitlines()[-4:]))
    print(f"# after: {contention_after()}", flush=True)
    code, wall, rss, md = measured[variants[0][0]]
    ok_rss, ok_wall = rss <= TARGET_RSS_MB and code == 0, wall <= TARGET_WALL_S and code == 0
    print(f"target RSS <= {TARGET_RSS_MB} MB: {'MET' if ok_rss else 'NOT MET'} "
          f"({rss / TARGET_RSS_MB:.2f}x the target{'; run failed' if code else ''})")
    print(f"target wall <= {TARGET_WALL_S} s: {'MET' if ok_wall else 'NOT MET'} "
          f"({wall / TARGET_WALL_S:.2f}x the target{'; run failed' if code else ''})")
    if code == 0:
        lines = md.read_text(encoding="utf-8").splitlines()
        print(f"# report: {len(lines)} lines of markdown")
    if len(variants) > 1:
        r_code, r_wall, r_rss, r_md = measured[variants[1][0]]
        if code == 0 and r_code == 0:
            same = md.read_bytes() == r_md.read_bytes()
            print(f"columnar / row dicts: wall {wall / r_wall:.2f}x, peak RSS {rss / r_rss:.3f}x "
                  f"({r_rss / rss:.1f}x less memory); same markdown: {'yes' if same else 'NO'}")

    if not args.no_breakdown:
        script = args.workdir / "breakdown.py"
        script.write_text(BREAKDOWN, encoding="utf-8")
        out = args.workdir / "breakdown.jsonl"
        code, wall, rss, err = run_capped([sys.executable, str(script), str(run)],
                                          args.mem_cap_mb, args.timeout, out)
        for line in out.read_text(encoding="utf-8").splitlines():
            ph = json.loads(line)
            extra = {k: v for k, v in ph.items()
                     if k not in ("phase", "s", "peak_rss_mb", "rss_mb")}
            print(f"breakdown {ph['phase']:<66} {ph['s']:6.1f} s  peak RSS "
                  f"{ph['peak_rss_mb']:5.0f} MB  RSS now {ph['rss_mb']:5.0f} MB "
                  f"{extra if extra else ''}")
        if code != 0:
            print(f"breakdown child exit {code}, peak RSS {rss:.0f} MB: "
                  + " | ".join(err.strip().splitlines()[-3:]))
    if not args.keep:
        shutil.rmtree(run, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
