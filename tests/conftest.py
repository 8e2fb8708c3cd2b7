"""Shared fixtures: small task files written per test, the CLI entry point, the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent

# Fuzz tests draw the same examples on every run (a CI failure is reproducible); set
# SLMBENCH_FUZZ=explore to let hypothesis search new inputs.
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("repeatable", derandomize=True, database=None)
_hypothesis_settings.register_profile("explore")
_hypothesis_settings.load_profile(
    "explore" if os.environ.get("SLMBENCH_FUZZ") == "explore" else "repeatable")
BUNDLED_TASKS = REPO / "tasks"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_task(folder: Path, spec: dict, name: str = "task.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture
def cls_task(tmp_path: Path) -> Path:
    """A tiny 3-label classification task with a train split."""
    texts = {
        "greeting": ["hello there", "hi friend", "good morning", "hey how are you"],
        "farewell": ["goodbye now", "see you later", "bye bye", "farewell my friend"],
        "thanks": ["thank you so much", "many thanks", "thanks a lot", "cheers thanks"],
    }
    train, test = [], []
    for label, items in texts.items():
        for i, t in enumerate(items):
            (test if i == 0 else train).append({"id": f"{label}-{i}", "text": t, "label": label})
    write_jsonl(tmp_path / "train.jsonl", train)
    write_jsonl(tmp_path / "test.jsonl", test)
    return write_task(tmp_path, {
        "name": "tiny-cls", "kind": "classification",
        "dataset": {"files": {"test": "test.jsonl", "train": "train.jsonl"},
                    "train_split": "train"},
        "labels": ["greeting", "farewell", "thanks"],
    })


def run_cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str, str]:
    """Run ``slmbench`` in process through its real entry point; returns (code, out, err)."""
    from slmbench.cli import main

    old = sys.argv
    sys.argv = ["slmbench", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = old
    out, err = capsys.readouterr()
    return code, out, err


def cli_in_fresh_process(*argvs: list[str]) -> tuple[str, bool]:
    """Run ``slmbench`` with each argv in turn in one new interpreter, the way a user's shell
    would start it; returns (stdout, whether litellm was imported): the commands that must
    stay light (report, gate, recommend) are checked on what a user's process really loads."""
    code = ("import sys\nfrom slmbench.cli import main\n"
            f"for argv in {[list(a) for a in argvs]!r}:\n"
            "    sys.argv = ['slmbench', *argv]\n"
            "    try:\n        main()\n    except SystemExit:\n        pass\n"
            "print('litellm loaded' if 'litellm' in sys.modules else 'no litellm')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120).stdout
    return out, out.strip().endswith("litellm loaded")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server():
    """A real ``python -m llama_cpp.server`` serving the bundled SmolLM2 on 127.0.0.1."""
    import subprocess
    import time
    import urllib.request

    from slmbench.models.llamacpp import embedded_model_path

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(Path(__file__).with_name("llama_server_main.py")), "--model",
         str(embedded_model_path("smollm2")),
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--logits_all", "true",
         "--n_threads", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 60
    while True:
        try:
            urllib.request.urlopen(base + "/models", timeout=1).read()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                pytest.fail("llama_cpp.server did not start")
            time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def gold_answerer(task_path: Path, wrong_every: int | None = None):
    """A fake model for a label task: answers the gold label (wrong on every n-th item)."""
    from slmbench.tasks import build_messages, load_items, load_task

    task = load_items(load_task(task_path))
    gold = {build_messages(task.spec, it.text)[-1]["content"]: it.gold for it in task.items}
    order = {text: i for i, text in enumerate(gold)}
    choices = task.spec.choices

    def answer(body: dict) -> str:
        prompt = body["messages"][-1]["content"]
        right = gold[prompt]
        if wrong_every and order[prompt] % wrong_every == wrong_every - 1:
            return next(c for c in choices if c != right)
        return right

    return task, answer


# a stored run's manifest with one task of each scored kind, for summary tests that write rows
SUMMARY_LABELS = ["card", "pay", "top_up"]
SUMMARY_ROUTES = ["cards", "payments", "human_agent"]


def summary_manifest(run_id: str, models: dict[str, dict], n_items: int,
                     timings: list[dict] | None = None) -> dict:
    return {
        "run_id": run_id, "started_at": "2026-11-22T10:00:00+00:00", "seed": 3, "options": {},
        "tasks": {
            "cls": {"name": "cls", "kind": "classification", "labels": SUMMARY_LABELS,
                    "n_items": n_items},
            "route": {"name": "route", "kind": "routing", "n_items": n_items,
                      "fallback": "human_agent",
                      "routes": [{"name": r, "target": f"pipeline:{r}"} for r in SUMMARY_ROUTES]},
            "ext": {"name": "ext", "kind": "extraction", "n_items": n_items,
                    "fields": [{"name": "amount", "type": "string"}]},
        },
        "models": {name: {"name": name, "settings": {}, **info} for name, info in models.items()},
        "timings": timings or [],
    }


def write_stored_run(folder: Path, manifest: dict, rows: list[dict]) -> Path:
    """A run folder holding ``manifest`` and ``rows`` as a run would have stored them."""
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "items.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def interruptible() -> None:
    """``preexec_fn`` of a child that a test stops with Ctrl-C (SIGINT): a shell or CI runner
    that started pytest in the background (``nohup``, ``&``) passes SIGINT down as ignored, and
    Python then never raises KeyboardInterrupt; a terminal user's Ctrl-C always arrives."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_rows(path: Path, n: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until a run in a child process has stored ``n`` rows (before a test stops it)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= n:
            return
        if proc.poll() is not None:
            pytest.fail(f"run ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    pytest.fail("rows did not appear")
