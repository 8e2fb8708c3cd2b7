"""What this machine lets a run use; shared by the executors and the local model backends."""

from __future__ import annotations

import os


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS tells (a container's or
    ``taskset``'s limit), else every core of the machine. Threads or processes beyond it only
    wait on each other, and llama.cpp's threads busy-wait while they do."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)
