"""Shared helpers for the benchmark scripts (not a benchmark itself).

* :func:`wait_for_quiet` — the machine these figures come from has 2 cores shared with other
  engineers; llama.cpp threads busy-wait, so two heavy processes at once ruin every timing.
  Before a timed measurement we poll ``ps`` until no other slmbench / pytest / llama process
  runs (or give up after ``max_wait_s`` and say that the figures were taken under contention).
* :func:`repo_root` — the repository root, put on ``sys.path`` so ``tests.fakeserver`` imports.
* :func:`fake_server` — ``tests/fakeserver.py`` in a process of its own, for the API benchmarks.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

HEAVY = re.compile(r"slmbench|pytest|llama")
DATA_DIR = Path("/work/shared/datasets/banking77")


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def add_repo_to_path() -> Path:
    root = repo_root()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return root


def _own_pids() -> set[int]:
    """This process, its parents (the shell that started it) and its children."""
    pids = {os.getpid(), os.getppid()}
    try:
        out = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return pids
    children: dict[int, list[int]] = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2:
            children.setdefault(int(parts[1]), []).append(int(parts[0]))
    todo = [os.getpid()]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            if child not in pids:
                pids.add(child)
                todo.append(child)
    return pids


def heavy_processes() -> list[str]:
    """Other processes matching slmbench|pytest|llama (ours excluded), as ps lines."""
    try:
        out = subprocess.run(["ps", "-eo", "pid=,pcpu=,args="], capture_output=True, text=True,
                             check=False).stdout
    except OSError:
        return []
    mine = _own_pids()
    found = []
    for line in out.splitlines():
        parts = line.strip().split(None, 2)
        if len(parts) < 3 or not parts[0].isdigit() or int(parts[0]) in mine:
            continue
        if HEAVY.search(parts[2]) and "grep" not in parts[2]:
            found.append(f"pid {parts[0]} cpu {parts[1]}%: {parts[2][:100]}")
    return found


def wait_for_quiet(max_wait_s: float = 600.0, poll_s: float = 20.0, *,
                   log=print) -> str:
    """Block until no other heavy process runs; return a note for the report."""
    if os.environ.get("SLMBENCH_BENCH_NO_WAIT"):
        busy = heavy_processes()
        return "contention check skipped" + (f" (busy: {len(busy)} heavy)" if busy else "")
    start = time.monotonic()
    while True:
        busy = heavy_processes()
        if not busy:
            waited = time.monotonic() - start
            return f"quiet machine (waited {waited:.0f} s)"
        if time.monotonic() - start >= max_wait_s:
            note = (f"MEASURED UNDER CONTENTION: {len(busy)} other heavy process(es) still "
                    f"running after {max_wait_s:.0f} s: " + "; ".join(busy[:3]))
            log(note)
            return note
        log(f"waiting for a quiet machine ({len(busy)} heavy: {busy[0][:80]}) ...")
        time.sleep(poll_s)


def contention_after() -> str:
    busy = heavy_processes()
    return "none seen after the measurement" if not busy else (
        f"{len(busy)} heavy process(es) seen after the measurement: " + "; ".join(busy[:3]))


def machine() -> str:
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({cpu}), Python {sys.version.split()[0]}"


@contextmanager
def fake_server(delay: float, answer: str = "ok"):
    """tests/fakeserver.py in its own process (its CPU is not the client's): (base URL,
    process)."""
    proc = subprocess.Popen(
        [sys.executable, str(repo_root() / "tests" / "fakeserver.py"), "--port", "0",
         "--delay", str(delay), "--answer", answer],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = proc.stdout.readline().strip()
        if not base.startswith("http"):
            raise RuntimeError(f"fake server did not start: {base!r}")
        yield base, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
