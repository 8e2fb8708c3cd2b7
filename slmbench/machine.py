"""What this machine lets a run use, and what the machine that ran was; shared by the executors,
the local model backends, the manifest and the pricing of local models.

Local models are priced by the hour of a machine. A figure priced on a 2-vCPU machine while
llama.cpp kept 16 cores busy is about 8× too low, so the manifest records the machine that ran
(:func:`describe_machine`) and pricing compares it with the machine it assumes
(:class:`MachineSpec`, read from a hardware sheet row). Stdlib only: this module is imported by
every process, worker processes included, and nothing here may fail on a machine without a GPU,
without ``nvidia-smi`` or without ``/proc``.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from dataclasses import dataclass
from typing import Any


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS tells (a container's or
    ``taskset``'s limit), else every core of the machine. Threads or processes beyond it only
    wait on each other, and llama.cpp's threads busy-wait while they do."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def cpu_model() -> str | None:
    """The CPU's marketing name (``/proc/cpuinfo``'s ``model name``), else what ``platform``
    knows; ``None`` when neither says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Hardware", "cpu model") and value.strip():
                    return value.strip()
    except OSError:
        pass
    return platform.processor() or None


def memory_gib() -> float | None:
    """Physical memory of the machine in GiB (``MemTotal``, else ``sysconf``)."""
    try:
        with open("/proc/meminfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (AttributeError, ValueError, OSError):
        return None


def gpus(timeout_s: float = 5.0) -> list[str]:
    """Names of the NVIDIA GPUs ``nvidia-smi`` lists; empty without one (or without the tool,
    or when it fails: a run never stops for want of this record)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        out = subprocess.run([exe, "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=timeout_s, check=False)
    except (OSError, subprocess.SubprocessError):
        return []
    if out.returncode != 0:
        return []
    return [line.strip() for line in out.stdout.splitlines() if line.strip()]


def llama_gpu_offload() -> bool | None:
    """Whether the installed llama.cpp build can offload layers to a GPU; ``None`` when
    llama-cpp-python is not installed. Imported lazily: it loads a shared library."""
    try:
        import llama_cpp
    except Exception:  # noqa: BLE001 - absent or broken build: nothing to record
        return None
    try:
        return bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:  # noqa: BLE001
        return None


def describe_machine(*, llama: bool = False) -> dict[str, Any]:
    """The machine that ran, for the manifest: CPU model, host and usable cores, memory, GPU
    names and count, and (``llama=True``, when a llama.cpp model is in the run) whether the
    llama.cpp build offloads to a GPU."""
    names = gpus()
    info: dict[str, Any] = {
        "cpu_model": cpu_model(), "arch": platform.machine() or None,
        "host_cores": os.cpu_count(), "usable_cores": usable_cores(),
        "memory_gib": memory_gib(), "gpu_count": len(names), "gpus": names,
    }
    if llama:
        info["llama_gpu_offload"] = llama_gpu_offload()
    return info


_VCPU = re.compile(r"(\d+)\s*v?CPUs?\b", re.IGNORECASE)
_GPU = re.compile(r"(\d+)\s*[x×]\s*(?:NVIDIA\s+)?(?:GeForce\s+)?(?:RTX\s+)?"
                  r"([A-Za-z]*\d+[A-Za-z0-9]*)", re.IGNORECASE)


@dataclass(frozen=True)
class MachineSpec:
    """What a hardware sheet row's ``hardware`` text says of its machine: vCPUs (``None``: not
    stated), GPU count and model (e.g. ``"L4"``, ``"H100"``) and whether it is arm64. Read from
    the row's text ("2 vCPU, 4 GiB", "1x NVIDIA L4 24 GB, 4 vCPU"), the one place the sheets
    state it."""

    vcpus: int | None
    gpu_count: int
    gpu_model: str | None
    arm: bool

    @classmethod
    def from_text(cls, text: str | None) -> MachineSpec:
        text = text or ""
        vcpu = _VCPU.search(text)
        gpu = _GPU.search(text)
        return cls(vcpus=int(vcpu.group(1)) if vcpu else None,
                   gpu_count=int(gpu.group(1)) if gpu else 0,
                   gpu_model=gpu.group(2).upper() if gpu else None,
                   arm=bool(re.search(r"arm64|graviton|aarch64", text, re.IGNORECASE)))

    def matches(self, ran: dict[str, Any]) -> bool:
        """Whether this is the machine a manifest's ``machine`` record describes: the same
        CPU architecture and GPU count; then, without a GPU, the same usable cores (as vCPUs),
        with GPUs, the same GPU model (what a GPU run's cost follows)."""
        arm = str(ran.get("arch") or "").lower() in ("aarch64", "arm64")
        names = ran.get("gpus") or []
        if self.arm != arm or self.gpu_count != len(names):
            return False
        if not names:
            return self.vcpus == ran.get("usable_cores")
        return all(self.gpu_model and re.search(rf"\b{re.escape(self.gpu_model)}\b",
                                                str(n).upper()) for n in names)


def ran_on(ran: dict[str, Any]) -> str:
    """A machine record in a few words: "16 usable cores, no GPU", "8 usable cores, 1× NVIDIA
    H200"."""
    names = ran.get("gpus") or []
    gpu = f"{len(names)}× {names[0]}" if names else "no GPU"
    return f"{ran.get('usable_cores')} usable cores, {gpu}"
