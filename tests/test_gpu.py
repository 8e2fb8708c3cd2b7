"""GPU offload of local GGUF models (``n_gpu_layers``). Skipped unless llama-cpp-python was built
with a GPU backend and a GPU is present: CI has none, the lent GPU machine runs it.

Offloading changes where the matrix products run, not what the model is, so the constrained
answers must be the same as on the CPU and the confidences within floating-point noise.
"""

from __future__ import annotations

import pytest

from slmbench.paths import bundled_dir
from slmbench.runner.run import RunOptions, run_benchmark

llama_cpp = pytest.importorskip("llama_cpp")


def _gpu_offload_available() -> bool:
    try:
        if not llama_cpp.llama_supports_gpu_offload():
            return False
    except AttributeError:
        return False
    import shutil
    import subprocess

    smi = shutil.which("nvidia-smi")
    if smi is None:
        return True  # a Metal/ROCm build: the backend itself said it can offload
    return subprocess.run([smi, "-L"], capture_output=True, timeout=30).returncode == 0


pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not _gpu_offload_available(),
                                                  reason="no GPU offload in this build/machine")]

N_ITEMS = 30


def _rows(tmp_path, model_id: str) -> dict[str, dict]:
    task = bundled_dir("tasks") / "banking77_mini.yaml"
    result = run_benchmark([task], [model_id], results_dir=tmp_path,
                           options=RunOptions(limit=N_ITEMS, use_cache=False))
    return {r["item_id"]: r for r in result.run.rows()}, result


def test_gpu_offload_gives_the_cpu_answers(tmp_path):
    cpu, _ = _rows(tmp_path / "cpu", "llamacpp:smollm2")
    gpu, result = _rows(tmp_path / "gpu", "llamacpp:smollm2?n_gpu_layers=-1")
    assert len(cpu) == len(gpu) == N_ITEMS
    info = result.run.read_manifest()["models"]["llamacpp:smollm2"]
    assert info["capabilities"]["gpu_offload"] is True and info["settings"]["n_gpu_layers"] == -1
    same = sum(cpu[i]["answer"] == gpu[i]["answer"] for i in cpu)
    # kernels differ in rounding; a near-tie may flip, a systematic difference may not
    assert same >= N_ITEMS - 1, f"only {same}/{N_ITEMS} answers agree"
    close = [abs(cpu[i]["confidence"] - gpu[i]["confidence"]) for i in cpu
             if cpu[i]["answer"] == gpu[i]["answer"]]
    assert max(close) < 0.02
    assert all(r["error"] is None for r in gpu.values())
