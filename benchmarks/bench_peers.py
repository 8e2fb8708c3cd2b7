"""API path: slmbench vs peer eval tools, every tool a whole command against one fixed-delay server.

The question (issue "Speed"): on a fast local OpenAI-compatible server (50 ms per answer,
concurrency 32), is ``slmbench run`` faster than the tools a user would otherwise pick? Each tool
runs as a **child process**, the way a user runs it, on the same N classification items
(default 2,000 Banking77 test items, 77 labels), the same chat messages (system instruction with
the 77 labels + ``Customer message: {text}``), temperature 0, max 32 tokens, concurrency 32, no
response cache, against the same server:

  slmbench   ``slmbench run TASK -m "openai/fake?api_base=..." --concurrency 32 --no-cache -q``
  litellm    a bare ``litellm.acompletion`` loop + ``asyncio.Semaphore(32)`` (this script, in a
             child), the floor reference: what the call layer slmbench uses costs by itself
  promptfoo  ``promptfoo eval`` (npm), provider ``openai:chat:fake`` with ``apiBaseUrl``,
             ``-j 32 --no-cache``, an ``equals`` assertion per test, ``-o out.json``
  inspect    ``inspect eval`` (inspect_ai), model ``openai-api/fake/fake`` (``FAKE_BASE_URL``),
             ``--max-connections 32``, ``exact()`` scorer, ``--display none``
  lm-eval    ``lm_eval --model local-chat-completions`` (``num_concurrent=32``) on a custom
             ``generate_until`` task over the same items (``--include_path``),
             ``--apply_chat_template --system_instruction ...``, ``exact_match``

The server (``tests/fakeserver.py``'s ``FakeOpenAIServer``, 50 ms fixed delay) runs in its own
process, started once by this script, so its CPU is never counted as client CPU. It answers each
request with the gold label of its item, so every tool's own score must come out 1.0: a check
that each tool really sent, parsed and scored every item. It also counts requests per command.

Per command: wall time of the whole command (start-up included: a user pays it), items/s, client
CPU seconds per call (user+sys of the child and its descendants from ``os.wait4``), and
where the tool reports its own timing (slmbench manifest ``timings``, the bare loop, promptfoo's
``durationMs``, inspect's ``started_at``/``completed_at``, lm-eval's
``total_evaluation_time_seconds``), items/s excluding start-up. Then the ratios slmbench/peer
(items/s: > 1 means slmbench is faster; CPU/call: < 1 means slmbench is cheaper).

Before timing, every tool does one warm-up command on ``--warm-n`` items (page cache, compiled
bytecode, HF datasets cache); a tool whose warm-up fails is skipped with its reason. Tools then
run interleaved: round 1 in order, round 2 reversed, ...; medians reported. In every round each
tool also runs a small command on ``--warm-n`` items right before its N-item command: its wall
time is about the tool's fixed cost (start-up, set-up, teardown), and
(CPU(N) - CPU(warm-n)) / (N - warm-n) is the "marginal" client CPU per call, without start-up.

Peers are NOT project dependencies; install them outside the repository (see
benchmarks/README.md)::

    python -m venv /work/peers-venv && /work/peers-venv/bin/pip install inspect-ai lm-eval openai
    npm install --prefix /work/peers-npm promptfoo

    python benchmarks/bench_peers.py                       # 2,000 items, 2 rounds
    python benchmarks/bench_peers.py --n 200 --rounds 1 --tools slmbench,litellm   # quick
    python benchmarks/bench_peers.py --peers-venv DIR --peers-npm DIR   # or env
        # SLMBENCH_PEERS_VENV / SLMBENCH_PEERS_NPM

A peer that is not installed at those paths is skipped with a line saying so. Only loopback
addresses are used; API keys are dummies in the children's environment. Not run by the test
suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from _common import DATA_DIR, add_repo_to_path, contention_after, machine, wait_for_quiet

ROOT = add_repo_to_path()

DUMMY_KEY = "sk-dummy-for-loopback"
MODEL = "fake"
MAX_TOKENS = 32
TOOLS = ("slmbench", "litellm", "promptfoo", "inspect", "lmeval")
TOOL_NAMES = {"slmbench": "slmbench run (CLI)", "litellm": "bare litellm.acompletion loop",
              "promptfoo": "promptfoo eval", "inspect": "inspect eval (inspect_ai)",
              "lmeval": "lm_eval local-chat-completions"}
BUNDLED = ROOT / "tasks" / "data" / "banking77_mini_test.jsonl"


# --------------------------------------------------------------------------- items


def load_source_items(data: Path | None, n: int) -> tuple[list[dict[str, str]], list[str], str]:
    """N items {id, text, label}, all labels of the source, and a note on where they came from.

    The shared Banking77 test split (3,080 items) is subsampled with an even stride, so that
    every label shows up; without it, the bundled 50-item mini set is repeated with fresh ids
    (the texts then repeat: no tool here deduplicates requests with its cache off).
    """
    path = data or DATA_DIR / "test.jsonl"
    note = str(path)
    if not path.is_file():
        note = f"{BUNDLED} ({path} not found)"
        path = BUNDLED
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()]
    labels = sorted({str(r["label"]) for r in rows})
    if n <= len(rows):
        step = len(rows) / n
        picked = [rows[int(k * step)] for k in range(n)]
        items = [{"id": str(r["id"]), "text": str(r["text"]), "label": str(r["label"])}
                 for r in picked]
    else:
        items = [{"id": f"r{k // len(rows)}-{rows[k % len(rows)]['id']}",
                  "text": str(rows[k % len(rows)]["text"]),
                  "label": str(rows[k % len(rows)]["label"])} for k in range(n)]
        note += f" (repeated to {n} items with new ids)"
    return items, labels, note


def write_inputs(work: Path, items: list[dict[str, str]], labels: list[str]) -> dict[str, Any]:
    """The slmbench task, and the messages slmbench builds, which every other tool then sends."""
    from slmbench.tasks import build_messages, load_items, load_task

    data = work / "items.jsonl"
    data.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")
    task = work / "bench_peers.yaml"
    task.write_text(
        "name: bench-peers\nkind: classification\n"
        f"dataset:\n  files:\n    test: {json.dumps(str(data))}\n  split: test\n"
        "  columns: {id: id, text: text, label: label}\n"
        f"labels: {json.dumps(labels)}\n"
        f"max_tokens: {MAX_TOKENS}\n"
        "prompt:\n  instruction: |\n"
        "    You are a banking support assistant. Classify the customer message into exactly one\n"
        "    of these intents:\n    {labels}\n    Answer with the intent name only.\n"
        "  template: \"Customer message: {text}\"\n", encoding="utf-8")
    loaded = load_items(load_task(task))
    messages = [build_messages(loaded.spec, it.text) for it in loaded.items]
    system = messages[0][0]["content"]
    user_prefix = "Customer message: "
    for m, it in zip(messages, items, strict=True):
        if len(m) != 2 or m[0]["content"] != system or m[1]["content"] != user_prefix + it["text"]:
            raise SystemExit(f"unexpected slmbench messages for {it['id']}: {m!r}")
    msg_path = work / "messages.jsonl"
    msg_path.write_text("".join(json.dumps({"id": it["id"], "label": it["label"], "messages": m})
                                + "\n" for it, m in zip(items, messages, strict=True)),
                        encoding="utf-8")
    return {"data": data, "task": task, "messages": msg_path, "system": system,
            "user_prefix": user_prefix}


# --------------------------------------------------------------------------- server process


def serve_main(args: argparse.Namespace) -> int:
    """Child mode: FakeOpenAIServer answering each item's gold label; stdin ``stats`` -> JSON."""
    from tests.fakeserver import FakeOpenAIServer, last_user_message

    gold: dict[str, str] = {}
    for line in Path(args.messages).read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        gold.setdefault(rec["messages"][-1]["content"], rec["label"])

    def answer(body: dict) -> str:
        return gold.get(last_user_message(body), "unknown")

    server = FakeOpenAIServer(answer, delay_s=args.delay, logprobs=False).start()
    print(server.base_url, flush=True)
    last_cpu = time.process_time()
    for line in sys.stdin:
        if line.strip() == "stats":
            calls, server.calls[:] = list(server.calls), []
            times = [c["_t"] for c in calls if "_t" in c]
            # first request received .. last request received + the fixed delay: the request
            # phase of the command on the server's clock, the same definition for every tool
            span = (max(times) - min(times) + args.delay) if times else 0.0
            cpu, last_cpu = time.process_time() - last_cpu, time.process_time()
            print(json.dumps({"calls": len(calls), "span_s": span, "cpu_s": cpu}), flush=True)
    server.stop()
    return 0


class ServerProcess:
    """The fake server in a separate process (its CPU is not client CPU), and its counters."""

    def __init__(self, messages: Path, delay: float) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--_serve", "--messages",
             str(messages), "--delay", str(delay)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.base = (self.proc.stdout.readline() if self.proc.stdout else "").strip()
        if not self.base.startswith("http://127.0.0.1:"):
            self.close()
            raise SystemExit(f"fake server did not start: {self.base!r}")

    def stats(self) -> dict[str, float]:
        """Requests, request-phase span and server CPU seconds since the last call."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("stats\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self.proc.stdin:
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------- bare litellm loop


def bare_loop_main(args: argparse.Namespace) -> int:
    """Child mode: bare litellm.acompletion + Semaphore, the call slmbench makes, nothing else."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    recs = [json.loads(line) for line in
            Path(args.messages).read_text(encoding="utf-8").splitlines()][:args.n]
    kw = {"model": f"openai/{MODEL}", "temperature": 0.0, "max_tokens": MAX_TOKENS,
          "timeout": 60.0, "num_retries": 0, "api_base": args.base,
          "api_key": os.environ.get("OPENAI_API_KEY") or DUMMY_KEY}

    async def main() -> tuple[float, int, int]:
        sem = asyncio.Semaphore(args.concurrency)
        ok = errors = 0

        async def one(rec: dict) -> None:
            nonlocal ok, errors
            async with sem:
                try:
                    resp = await litellm.acompletion(messages=rec["messages"], **kw)
                except Exception:  # counted, not fatal
                    errors += 1
                    return
                ok += (resp.choices[0].message.content or "").strip() == rec["label"]

        t0 = time.perf_counter()
        await asyncio.gather(*(one(r) for r in recs))
        return time.perf_counter() - t0, ok, errors

    loop_s, ok, errors = asyncio.run(main())
    print(json.dumps({"loop_s": loop_s, "correct": ok, "errors": errors, "n": len(recs)}),
          flush=True)
    return 0


# --------------------------------------------------------------------------- tools


@dataclass
class Tool:
    """One tool: how to run it on n items, and how to read its own results back."""

    key: str
    argv: Any  # (out_dir: Path, n: int) -> list[str]
    parse: Any  # (out_dir: Path, log: str) -> dict (own_s, correct, n_scored)
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    version: str = ""


def _peer_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _version(argv: list[str], env: dict[str, str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"? ({exc})"
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "?"


def make_slmbench(inp: dict[str, Any], base: str, conc: int) -> Tool:
    exe = Path(sys.executable).with_name("slmbench")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "slmbench"]

    def argv(out: Path, n: int) -> list[str]:
        return [*cmd, "run", str(inp["task"]), "-m", f"openai/{MODEL}?api_base={base}",
                "--concurrency", str(conc), "--no-cache", "-q", "--limit", str(n),
                "--results-dir", str(out / "results"), "--run-id", "run"]

    def parse(out: Path, log: str) -> dict[str, Any]:
        res: dict[str, Any] = {}
        manifests = glob.glob(str(out / "results" / "**" / "manifest.json"), recursive=True)
        if manifests:
            man = json.loads(Path(manifests[0]).read_text())
            res["own_s"] = sum(t["wall_s"] for t in man.get("timings", []))
        rows = glob.glob(str(out / "results" / "**" / "*.jsonl"), recursive=True)
        correct = scored = 0
        for p in rows:
            for line in Path(p).read_text(encoding="utf-8").splitlines():
                with contextlib.suppress(ValueError):
                    row = json.loads(line)
                    if isinstance(row, dict) and "correct" in row:
                        scored += 1
                        correct += bool(row["correct"])
        if scored:
            res["correct"], res["n_scored"] = correct, scored
        return res

    return Tool("slmbench", argv, parse, version=_slmbench_version())


def _slmbench_version() -> str:
    try:
        rev = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "slmbench"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return f"{rev}{' + uncommitted changes under slmbench/' if dirty else ''}"


def make_litellm(inp: dict[str, Any], base: str, conc: int) -> Tool:
    def argv(out: Path, n: int) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--_bare-loop", "--messages",
                str(inp["messages"]), "--base", base, "--n", str(n), "--concurrency", str(conc)]

    def parse(out: Path, log: str) -> dict[str, Any]:
        for line in reversed(log.splitlines()):
            if line.startswith("{"):
                rec = json.loads(line)
                return {"own_s": rec["loop_s"], "correct": rec["correct"], "n_scored": rec["n"]}
        return {}

    from importlib.metadata import version
    return Tool("litellm", argv, parse, version=f"litellm {version('litellm')}")


def make_promptfoo(inp: dict[str, Any], base: str, conc: int, npm: Path, work: Path
                   ) -> Tool | str:
    exe = npm / "node_modules" / ".bin" / "promptfoo"
    if not exe.exists():
        return f"not installed: {exe} missing (npm install --prefix {npm} promptfoo)"
    home = work / "promptfoo-home"
    home.mkdir(exist_ok=True)
    env = {"PROMPTFOO_CONFIG_DIR": str(home), "PROMPTFOO_DISABLE_TELEMETRY": "1",
           "PROMPTFOO_DISABLE_UPDATE": "1", "PROMPTFOO_CACHE_ENABLED": "false",
           "PROMPTFOO_DISABLE_REMOTE_GENERATION": "true", "PROMPTFOO_SELF_HOSTED": "1",
           "NODE_NO_WARNINGS": "1"}
    pdir = work / "promptfoo"
    pdir.mkdir(exist_ok=True)
    # a JS prompt function: returns the same two messages as slmbench, whatever the text holds
    (pdir / "prompt.js").write_text(
        f"const SYSTEM = {json.dumps(inp['system'])};\n"
        "module.exports = function ({ vars }) {\n"
        "  return [{ role: 'system', content: SYSTEM },\n"
        f"          {{ role: 'user', content: {json.dumps(inp['user_prefix'])} + vars.text }}];\n"
        "};\n", encoding="utf-8")
    items = [json.loads(line) for line in inp["data"].read_text(encoding="utf-8").splitlines()]
    config = {
        "description": "bench_peers",
        "prompts": ["file://prompt.js"],
        "providers": [{"id": f"openai:chat:{MODEL}",
                       "config": {"apiBaseUrl": base, "apiKey": DUMMY_KEY, "temperature": 0,
                                  "max_tokens": MAX_TOKENS}}],
        "tests": [{"vars": {"text": it["text"], "label": it["label"]},
                   "assert": [{"type": "equals", "value": "{{label}}"}]} for it in items],
        "evaluateOptions": {"maxConcurrency": conc, "cache": False},
    }
    (pdir / "promptfooconfig.yaml").write_text(json.dumps(config), encoding="utf-8")

    def argv(out: Path, n: int) -> list[str]:
        return [str(exe), "eval", "-c", str(pdir / "promptfooconfig.yaml"), "--no-cache",
                "-j", str(conc), "--filter-first-n", str(n), "--no-table", "--no-progress-bar",
                "--no-share", "-o", str(out / "out.json")]

    def parse(out: Path, log: str) -> dict[str, Any]:
        p = out / "out.json"
        if not p.is_file():
            return {}
        doc = json.loads(p.read_text(encoding="utf-8"))
        results = doc.get("results", {})
        stats = results.get("stats", {})
        res: dict[str, Any] = {}
        dur = stats.get("durationMs")
        if isinstance(dur, (int, float)) and dur > 0:
            res["own_s"] = dur / 1000
        rows = results.get("results") or []
        if rows:
            res["correct"] = sum(bool(r.get("success")) for r in rows)
            res["n_scored"] = len(rows)
        elif "successes" in stats:
            res["correct"] = stats["successes"]
            res["n_scored"] = stats.get("successes", 0) + stats.get("failures", 0) + \
                stats.get("errors", 0)
        return res

    full_env = {**os.environ, **env}
    return Tool("promptfoo", argv, parse, env=env, cwd=pdir,
                version=f"promptfoo {_version([str(exe), '--version'], full_env)}, "
                        f"node {_version(['node', '--version'], full_env)}")


def make_inspect(inp: dict[str, Any], base: str, conc: int, venv: Path, work: Path
                 ) -> Tool | str:
    exe = venv / "bin" / "inspect"
    if not exe.exists():
        return f"not installed: {exe} missing (pip install inspect-ai into {venv})"
    idir = work / "inspect"
    idir.mkdir(exist_ok=True)
    (idir / "bench_task.py").write_text(
        '"""bench_peers: the same items and messages as slmbench, exact-match scored."""\n'
        "import json\n\n"
        "from inspect_ai import Task, task\n"
        "from inspect_ai.dataset import MemoryDataset, Sample\n"
        "from inspect_ai.model import ChatMessageSystem, ChatMessageUser\n"
        "from inspect_ai.scorer import exact\n"
        "from inspect_ai.solver import generate\n\n\n"
        "@task\n"
        "def bench_peers():\n"
        "    samples = []\n"
        f"    with open({json.dumps(str(inp['messages']))}, encoding='utf-8') as fh:\n"
        "        for line in fh:\n"
        "            rec = json.loads(line)\n"
        "            sysm, user = rec['messages']\n"
        "            samples.append(Sample(id=rec['id'], target=rec['label'], input=[\n"
        "                ChatMessageSystem(content=sysm['content']),\n"
        "                ChatMessageUser(content=user['content'])]))\n"
        "    return Task(dataset=MemoryDataset(samples), solver=generate(), scorer=exact())\n",
        encoding="utf-8")
    env = {"FAKE_API_KEY": DUMMY_KEY, "FAKE_BASE_URL": base, "INSPECT_DISPLAY": "none",
           "INSPECT_LOG_DIR": str(work / "inspect-logs")}

    def argv(out: Path, n: int) -> list[str]:
        # a relative task file (cwd is idir): inspect globs it, and pathlib refuses absolute globs
        return [str(exe), "eval", "bench_task.py",
                "--model", f"openai-api/fake/{MODEL}",
                "--max-connections", str(conc), "--limit", str(n), "--temperature", "0",
                "--max-tokens", str(MAX_TOKENS), "--display", "none", "--log-format", "json",
                "--log-dir", str(out / "logs")]

    def parse(out: Path, log: str) -> dict[str, Any]:
        logs = sorted(glob.glob(str(out / "logs" / "*.json")))
        if not logs:
            return {}
        doc = json.loads(Path(logs[-1]).read_text(encoding="utf-8"))
        res: dict[str, Any] = {}
        st = doc.get("stats", {})
        with contextlib.suppress(KeyError, ValueError, TypeError):
            from datetime import datetime
            res["own_s"] = (datetime.fromisoformat(st["completed_at"])
                            - datetime.fromisoformat(st["started_at"])).total_seconds()
        samples = doc.get("samples") or []
        if samples:
            def ok(s: dict) -> bool:
                return any(v.get("value") in ("C", 1, 1.0, True)
                           for v in (s.get("scores") or {}).values())
            res["correct"], res["n_scored"] = sum(ok(s) for s in samples), len(samples)
        res["status"] = doc.get("status")
        return res

    return Tool("inspect", argv, parse, env=env, cwd=idir,
                version=f"inspect_ai {_version([str(_peer_python(venv)), '-c', 'import inspect_ai; print(inspect_ai.__version__)'], dict(os.environ))}")  # noqa: E501


def make_lmeval(inp: dict[str, Any], base: str, conc: int, venv: Path, work: Path
                ) -> Tool | str:
    exe = venv / "bin" / "lm_eval"
    if not exe.exists():
        return f"not installed: {exe} missing (pip install lm-eval into {venv})"
    ldir = work / "lmeval"
    ldir.mkdir(exist_ok=True)
    (ldir / "bench_peers.yaml").write_text(
        "task: bench_peers\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {json.dumps(str(inp['data']))}\n"
        "test_split: test\n"
        "output_type: generate_until\n"
        f"doc_to_text: {json.dumps(inp['user_prefix'] + '{{text}}')}\n"
        "doc_to_target: \"{{label}}\"\n"
        f"generation_kwargs:\n  until: []\n  max_gen_toks: {MAX_TOKENS}\n  do_sample: false\n"
        "  temperature: 0.0\n"
        "metric_list:\n  - metric: exact_match\n    aggregation: mean\n    higher_is_better: true\n"
        "    ignore_case: false\n    ignore_punctuation: false\n"
        "metadata:\n  version: 1.0\n", encoding="utf-8")
    env = {"HF_HOME": str(work / "hf-home"), "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "OPENAI_API_KEY": DUMMY_KEY}

    def argv(out: Path, n: int) -> list[str]:
        margs = (f"model={MODEL},base_url={base}/chat/completions,num_concurrent={conc},"
                 "max_retries=1,tokenized_requests=False,tokenizer_backend=None")
        return [str(exe), "--model", "local-chat-completions", "--model_args", margs,
                "--tasks", "bench_peers", "--include_path", str(ldir), "--apply_chat_template",
                "--system_instruction", inp["system"], "--limit", str(n), "--batch_size", "1",
                "--output_path", str(out / "lmeval-out")]

    def parse(out: Path, log: str) -> dict[str, Any]:
        files = sorted(glob.glob(str(out / "lmeval-out" / "**" / "results_*.json"),
                                 recursive=True))
        if not files:
            return {}
        doc = json.loads(Path(files[-1]).read_text(encoding="utf-8"))
        res: dict[str, Any] = {}
        with contextlib.suppress(KeyError, ValueError, TypeError):
            res["own_s"] = float(doc["total_evaluation_time_seconds"])
        with contextlib.suppress(KeyError, TypeError):
            r = doc["results"]["bench_peers"]
            em = next(v for k, v in r.items() if k.startswith("exact_match,"))
            n_s = doc["n-samples"]["bench_peers"]["effective"]
            res["correct"], res["n_scored"] = round(em * n_s), n_s
        return res

    return Tool("lmeval", argv, parse, env=env, cwd=ldir,
                version=f"lm_eval {_version([str(_peer_python(venv)), '-c', 'import lm_eval; print(lm_eval.__version__)'], dict(os.environ))}")  # noqa: E501


# --------------------------------------------------------------------------- running


@dataclass
class Result:
    tool: str
    n: int
    rc: int
    wall_s: float
    cpu_s: float
    calls: int
    span_s: float
    server_cpu_s: float
    own: dict[str, Any]
    log_tail: str

    @property
    def ok(self) -> bool:
        return self.rc == 0 and self.calls >= self.n


def base_env() -> dict[str, str]:
    """Children's environment: dummy keys, loopback never proxied, no colour/telemetry."""
    env = dict(os.environ)
    for k in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
              "all_proxy"):
        env.pop(k, None)
    env.update({"OPENAI_API_KEY": DUMMY_KEY, "NO_PROXY": "127.0.0.1,localhost",
                "no_proxy": "127.0.0.1,localhost", "NO_COLOR": "1", "TERM": "dumb",
                "LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONWARNINGS": "ignore",
                "DO_NOT_TRACK": "1"})
    return env


def run_tool(tool: Tool, n: int, out: Path, server: ServerProcess, timeout: float) -> Result:
    """One whole command; CPU from os.wait4 (the child and the children it reaped).

    (No peak RSS: wait4's ru_maxrss of a forked child starts from the parent's high-water
    mark, so after this script has parsed a large log every child would inherit it.)
    """
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "log.txt"
    env = {**base_env(), **tool.env}
    server.stats()  # reset the request counter
    t0 = time.perf_counter()
    with log_path.open("wb") as log:
        proc = subprocess.Popen(tool.argv(out, n), env=env, cwd=tool.cwd or out,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)

        def kill() -> None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)

        timer = threading.Timer(timeout, kill)
        timer.start()
        try:
            _, status, ru = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    st = server.stats()
    text = log_path.read_text(encoding="utf-8", errors="replace")
    try:
        own = tool.parse(out, text)
    except Exception as exc:  # a tool's output format changed: report, do not crash the run
        own = {"parse_error": f"{type(exc).__name__}: {exc}"}
    return Result(tool.key, n, proc.returncode, wall, ru.ru_utime + ru.ru_stime,
                  int(st["calls"]), float(st["span_s"]),
                  float(st["cpu_s"]), own,
                  "\n".join(text.strip().splitlines()[-6:]))


def load1() -> float:
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0.0


def wait_for_low_load(max_load: float, max_wait_s: float = 600.0, poll_s: float = 15.0) -> str:
    """Wait until the 1-min load average is below ``max_load`` (other people's CPU hogs that
    are not slmbench/pytest/llama by name, e.g. a benchmark script or ray workers)."""
    start = time.monotonic()
    while load1() >= max_load:
        if time.monotonic() - start >= max_wait_s:
            return f"LOAD STILL {load1():.2f} >= {max_load} after {max_wait_s:.0f} s"
        print(f"# waiting for 1-min load < {max_load} (now {load1():.2f}) ...", flush=True)
        time.sleep(poll_s)
    return f"1-min load {load1():.2f} < {max_load} (waited {time.monotonic() - start:.0f} s)"


def loadavg() -> str:
    """1/5-min load average: catches CPU hogs that wait_for_quiet's name filter does not."""
    try:
        one, five = Path("/proc/loadavg").read_text().split()[:2]
    except (OSError, ValueError):
        return "load ?"
    return f"load average {one} (1 min), {five} (5 min) on {os.cpu_count()} cores"


def describe(r: Result) -> str:
    own = ""
    if r.own.get("own_s"):
        own = f", own timing {r.own['own_s']:.2f} s = {r.n / r.own['own_s']:.1f} items/s"
    score = ""
    if "n_scored" in r.own:
        score = f", correct {r.own['correct']}/{r.own['n_scored']}"
    phase = f", request phase {r.n / r.span_s:.1f} items/s" if r.span_s > 0 else ""
    return (f"{r.n / r.wall_s:7.1f} items/s (wall {r.wall_s:6.2f} s{phase}{own}), "
            f"{r.cpu_s / r.n * 1000:6.2f} ms client CPU/call, "
            f"server saw {r.calls} calls{score}, rc {r.rc}")


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="items per command")
    p.add_argument("--n-for", action="append", default=[], metavar="TOOL=N",
                   help="fewer items for a slow tool (say so in the report), e.g. inspect=1000")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--delay", type=float, default=0.05, help="server answer delay (s)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--warm-n", type=int, default=64, help="items of the warm-up command")
    p.add_argument("--tools", default=",".join(TOOLS), help=f"subset of {','.join(TOOLS)}")
    p.add_argument("--data", type=Path, help="items JSONL {id,text,label} (default: shared "
                   "Banking77 test split, else the bundled mini set repeated)")
    p.add_argument("--peers-venv", type=Path,
                   default=Path(os.environ.get("SLMBENCH_PEERS_VENV", "/work/peers-venv")))
    p.add_argument("--peers-npm", type=Path,
                   default=Path(os.environ.get("SLMBENCH_PEERS_NPM", "/work/peers-npm")))
    p.add_argument("--timeout", type=float, default=300, help="per command (s)")
    p.add_argument("--keep", type=Path, help="keep configs, logs and outputs in this folder")
    p.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    p.add_argument("--max-load", type=float, default=1.0,
                   help="before the warm-up, wait (at most 10 min) until the 1-min load average "
                        "is below this; 0 = do not wait")
    p.add_argument("--json", type=Path, help="write the raw figures here")
    p.add_argument("--_serve", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--_bare-loop", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--messages", help=argparse.SUPPRESS)
    p.add_argument("--base", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._serve:
        return serve_main(args)
    if args._bare_loop:
        return bare_loop_main(args)

    wanted = [t.strip() for t in args.tools.split(",") if t.strip()]
    bad = [t for t in wanted if t not in TOOLS]
    if bad:
        p.error(f"unknown tools {bad}; known: {', '.join(TOOLS)}")
    n_for = {t: args.n for t in wanted}
    for spec in args.n_for:
        tool, _, num = spec.partition("=")
        if tool not in n_for or not num.isdigit():
            p.error(f"--n-for wants TOOL=N with TOOL in {wanted}, got {spec!r}")
        n_for[tool] = min(int(num), args.n)

    tmp = None
    if args.keep:
        work = args.keep.resolve()
        work.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="bench-peers-")
        work = Path(tmp.name)
    try:
        return run_all(args, wanted, n_for, work)
    finally:
        if tmp is not None:
            tmp.cleanup()


def run_all(args: argparse.Namespace, wanted: list[str], n_for: dict[str, int],
            work: Path) -> int:
    items, labels, source = load_source_items(args.data, args.n)
    inp = write_inputs(work, items, labels)
    print(f"# bench_peers: {args.n} items ({len(labels)} labels) from {source}; concurrency "
          f"{args.concurrency}; server delay {args.delay * 1000:.0f} ms, separate process "
          f"(bound {args.concurrency / args.delay:.0f} items/s); machine: {machine()}",
          flush=True)
    out: dict[str, Any] = {"machine": machine(), "source": source,
                           "args": {k: str(v) for k, v in vars(args).items()}, "skipped": {},
                           "runs": []}
    server = ServerProcess(inp["messages"], args.delay)
    try:
        tools: dict[str, Tool] = {}
        for key in wanted:
            made: Tool | str
            if key == "slmbench":
                made = make_slmbench(inp, server.base, args.concurrency)
            elif key == "litellm":
                made = make_litellm(inp, server.base, args.concurrency)
            elif key == "promptfoo":
                made = make_promptfoo(inp, server.base, args.concurrency, args.peers_npm, work)
            elif key == "inspect":
                made = make_inspect(inp, server.base, args.concurrency, args.peers_venv, work)
            else:
                made = make_lmeval(inp, server.base, args.concurrency, args.peers_venv, work)
            if isinstance(made, str):
                print(f"# SKIP {key}: {made}", flush=True)
                out["skipped"][key] = made
            else:
                tools[key] = made
                print(f"# {key}: {made.version}", flush=True)

        if args.max_load > 0 and not args.no_wait:
            note = wait_for_low_load(args.max_load)
            print(f"# load: {note}", flush=True)
            out["load_wait"] = note
        # warm-up: page cache, bytecode, dataset caches; a tool that fails here is skipped
        warm: dict[str, Result] = {}
        for key, tool in list(tools.items()):
            r = run_tool(tool, args.warm_n, work / "warm" / key, server, args.timeout)
            scored_ok = r.own.get("correct", r.n) == r.n
            if not r.ok or not scored_ok:
                why = (f"warm-up on {args.warm_n} items failed: rc {r.rc}, server saw "
                       f"{r.calls} calls, own result {r.own}; log tail: {r.log_tail!r}")
                print(f"# SKIP {key}: {why}", flush=True)
                out["skipped"][key] = why
                tools.pop(key)
                continue
            warm[key] = r
            print(f"# warm-up {key:<9} {describe(r)}", flush=True)

        note = "contention check skipped" if args.no_wait else wait_for_quiet()
        print(f"# before: {note}; {loadavg()}", flush=True)
        out["before"] = f"{note}; {loadavg()}"
        runs: dict[str, list[Result]] = {k: [] for k in tools}
        small: dict[str, list[Result]] = {k: [] for k in tools}
        order = list(tools)
        for rnd in range(args.rounds):
            for key in (order if rnd % 2 == 0 else order[::-1]):
                sr = run_tool(tools[key], args.warm_n, work / f"round{rnd + 1}" / f"{key}-small",
                              server, args.timeout)
                small[key].append(sr)
                print(f"#   round {rnd + 1} {key:<9} {describe(sr)}", flush=True)
                r = run_tool(tools[key], n_for[key], work / f"round{rnd + 1}" / key, server,
                             args.timeout)
                runs[key].append(r)
                print(f"#   round {rnd + 1} {key:<9} {describe(r)}", flush=True)
                if not r.ok:
                    print(f"#   ^ FAILED or incomplete; log tail: {r.log_tail!r}", flush=True)
                out["runs"].append({"round": rnd + 1, **{k: v for k, v in vars(r).items()
                                                         if k != "log_tail"}})
        after = f"{contention_after()}; {loadavg()}"
        print(f"# after: {after}", flush=True)
        out["after"] = after
    finally:
        server.close()

    summary = summarize(runs, small, tools)
    out["summary"] = summary
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


def summarize(runs: dict[str, list[Result]], small: dict[str, list[Result]],
              tools: dict[str, Tool]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for key, rs in runs.items():
        good = [r for r in rs if r.ok]
        if not good:
            print(f"{key:<9} {TOOL_NAMES[key]:<32} no successful run")
            continue
        n = good[0].n
        ips = statistics.median(n / r.wall_s for r in good)
        cpu = statistics.median(r.cpu_s / n for r in good)
        owns = [n / r.own["own_s"] for r in good if r.own.get("own_s")]
        own_ips = statistics.median(owns) if owns else None
        pairs = [(r, sr) for r, sr in zip(rs, small.get(key, []), strict=False)
                 if r.ok and sr.ok and r.n > sr.n]
        marginal = fixed = None
        if pairs:
            marginal = statistics.median((r.cpu_s - sr.cpu_s) / (r.n - sr.n) for r, sr in pairs)
            fixed = statistics.median(sr.wall_s for _, sr in pairs)
        srv = statistics.median(r.server_cpu_s / r.calls for r in good)
        phase = statistics.median(n / r.span_s for r in good)
        summary[key] = {"name": TOOL_NAMES[key], "version": tools[key].version, "n": n,
                        "runs": len(good), "items_per_s": ips, "cpu_ms_per_call": cpu * 1e3,
                        "request_phase_items_per_s": phase, "own_items_per_s": own_ips,
                        "marginal_cpu_ms_per_call": marginal * 1e3 if marginal else None,
                        "small_command_wall_s": fixed,
                        "wall_s": statistics.median(r.wall_s for r in good),
                        "server_cpu_ms_per_call": srv * 1e3}
        own_txt = f"{own_ips:7.1f}" if own_ips else "      -"
        marg_txt = f"{marginal * 1000:6.2f}" if marginal else "     -"
        fixed_txt = f"{fixed:5.2f} s" if fixed else "-"
        print(f"{key:<9} {TOOL_NAMES[key]:<32} n={n:<5} {ips:7.1f} items/s (whole command), "
              f"{phase:7.1f} items/s (request phase, server clock), "
              f"{own_txt} items/s (tool's own timing), {cpu * 1000:6.2f} ms client CPU/call "
              f"(marginal {marg_txt} ms), command on {pairs[0][1].n if pairs else '-'} items "
              f"{fixed_txt} "
              f"[{len(good)}/{len(rs)} runs ok]", flush=True)
    s = summary.get("slmbench")
    if s:
        for key, v in summary.items():
            if key == "slmbench":
                continue
            line = (f"ratio slmbench/{key}: items/s {s['items_per_s'] / v['items_per_s']:.2f}x"
                    f" ({'slmbench faster' if s['items_per_s'] > v['items_per_s'] else 'slmbench slower'})"  # noqa: E501
                    f", client CPU/call {s['cpu_ms_per_call'] / v['cpu_ms_per_call']:.2f}")
            line += (f", request-phase items/s {s['request_phase_items_per_s'] / v['request_phase_items_per_s']:.2f}x")  # noqa: E501
            if min(s["marginal_cpu_ms_per_call"] or 0, v["marginal_cpu_ms_per_call"] or 0) > 0:
                line += (f", marginal CPU/call "
                         f"{s['marginal_cpu_ms_per_call'] / v['marginal_cpu_ms_per_call']:.2f}")
            if s["own_items_per_s"] and v["own_items_per_s"]:
                line += (f", own-timing items/s "
                         f"{s['own_items_per_s'] / v['own_items_per_s']:.2f}x")
            if v["n"] != s["n"]:
                line += f" (peer ran {v['n']} items, slmbench {s['n']})"
            print(line, flush=True)
            v["ratio_items_per_s"] = s["items_per_s"] / v["items_per_s"]
            v["ratio_cpu"] = s["cpu_ms_per_call"] / v["cpu_ms_per_call"]
        peers = [k for k in summary if k not in ("slmbench", "litellm")]
        if peers:
            for what, fld in (("whole command", "items_per_s"),
                              ("request phase", "request_phase_items_per_s")):
                slower = [k for k in peers if s[fld] <= summary[k][fld]]
                verdict = "YES" if not slower else f"NO (not faster than {', '.join(slower)})"
                print(f"slmbench faster than every peer measured ({', '.join(peers)}), {what}: "
                      f"{verdict}", flush=True)
    return summary


if __name__ == "__main__":
    raise SystemExit(main())
