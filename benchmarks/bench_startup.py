"""CLI start-up: ``slmbench --help`` wall time vs ``python -c pass``.

Both commands run ``--runs`` times (default 15), interleaved (python, slmbench, python, ...),
after one untimed warm-up each; the medians are printed in ms with their ratio and difference.
Target: ``slmbench --help`` <= 0.3 s. ``--importtime`` also prints the slowest imports of
``slmbench --help`` (``python -X importtime``), to show what a regression would come from.

    python benchmarks/bench_startup.py
    python benchmarks/bench_startup.py --runs 31 --importtime

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import contention_after, machine, wait_for_quiet

TARGET_S = 0.3


def slmbench_cmd() -> list[str]:
    exe = Path(sys.executable).parent / "slmbench"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("slmbench")
    return [found] if found else [sys.executable, "-m", "slmbench"]


def timed(cmd: list[str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}): "
                         f"{proc.stderr.decode(errors='replace')[-500:]}")
    return elapsed


def import_profile(cmd: list[str], top: int) -> list[tuple[float, str]]:
    """(cumulative ms, module) of the slowest top-level imports of ``cmd``."""
    script = cmd[0]
    if Path(script).name == "slmbench" and Path(script).exists():
        argv = [sys.executable, "-X", "importtime", script, "--help"]
    else:
        argv = [sys.executable, "-X", "importtime", "-m", "slmbench", "--help"]
    err = subprocess.run(argv, capture_output=True, text=True, check=False).stderr
    rows = []
    for line in err.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        parts = line.split("|")
        if len(parts) != 3:
            continue
        name = parts[2][1:]  # one space after the bar; nesting adds two spaces per level
        if name.startswith(" "):
            continue  # not a top-level import
        rows.append((int(parts[1]) / 1000, name.strip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=15)
    p.add_argument("--importtime", action="store_true")
    p.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    args = p.parse_args(argv)

    base = [sys.executable, "-c", "pass"]
    cli = slmbench_cmd() + ["--help"]
    print(f"# bench_startup: '{' '.join(cli)}' vs '{' '.join(base)}', {args.runs} runs each, "
          f"interleaved; machine: {machine()}", flush=True)
    timed(base)
    timed(cli)  # warm-up: page cache, .pyc
    note = "contention check skipped" if args.no_wait else wait_for_quiet()
    print(f"# before: {note}", flush=True)
    py_t, cli_t = [], []
    for _ in range(args.runs):
        py_t.append(timed(base))
        cli_t.append(timed(cli))
    print(f"# after: {contention_after()}", flush=True)
    py_ms, cli_ms = statistics.median(py_t) * 1000, statistics.median(cli_t) * 1000
    print(f"python -c pass      median {py_ms:7.1f} ms  (min {min(py_t) * 1000:.1f}, "
          f"max {max(py_t) * 1000:.1f})")
    print(f"slmbench --help     median {cli_ms:7.1f} ms  (min {min(cli_t) * 1000:.1f}, "
          f"max {max(cli_t) * 1000:.1f})")
    print(f"ratio slmbench --help / python -c pass: {cli_ms / py_ms:.1f}x  "
          f"(+{cli_ms - py_ms:.0f} ms over the bare interpreter)")
    print(f"target slmbench --help <= {TARGET_S * 1000:.0f} ms: "
          f"{'MET' if cli_ms <= TARGET_S * 1000 else 'NOT MET'} ({cli_ms:.0f} ms)")
    if args.importtime:
        for ms, name in import_profile(slmbench_cmd(), 12):
            print(f"import {name:<28} {ms:7.1f} ms cumulative")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
