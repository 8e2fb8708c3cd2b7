"""API path: slmbench's runner vs bare litellm loops, against a fixed-delay fake server.

Compares, on N chat calls (default 2,000) at concurrency 32 against ``tests/fakeserver.py``
(fixed 50 ms answer delay, run in a SUBPROCESS so its CPU is not counted as client CPU):

  (a) async      bare ``litellm.acompletion`` loop, asyncio + Semaphore(32), litellm defaults
  (b) threads    bare ``litellm.completion`` in a ThreadPoolExecutor(32), litellm defaults
  (c) slmbench   ``run_benchmark`` end to end, local executor (one process: the asyncio path):
                 generated N-item classification task, model ``openai/fake?api_base=...``,
                 ``RunOptions(concurrency=32)``: task loaded, cache looked up and written, rows
                 scored and written, summary built
  (d) slmbench   the same with ``executor="processes", workers=2`` (--workers): calls in worker
                 processes, rows written by this process
  (e) async+sw   loop (a) with the litellm switches slmbench turns on (see --flags), to tell
                 what the switches give from what slmbench's runner costs
  (f) raw        the same POSTs with aiohttp alone (no litellm, no parsing beyond reading the
                 body): the ceiling of this setup (server + delay + concurrency), to read the
                 other figures against

The bare loops (a, b) run with litellm's defaults: the switch environment variable removed and
a model name litellm's cost map does not have and slmbench never registered. All variants send
the same messages (built by slmbench for the task) with the call arguments slmbench uses.

Printed per variant: items/s and client CPU per call: ``time.process_time()`` of this process
(all threads, until litellm's background logging has drained) plus, for (d), the CPU the worker
processes spent (``/proc/<pid>/stat``). Then each variant's items/s over (a)'s, against the two
targets: (c)/(a) >= 0.9 (slmbench's overhead on one core <= 10 %) and (d)/(a) >= 1.6 (more than
one core's worth). Variants alternate over ``--rounds`` rounds (order reversed every other
round); medians are reported. Imports, the worker pool's start and a warm-up are done before
timing (litellm's import alone takes seconds).

``--flags`` then measures per-call client CPU of ``litellm.acompletion`` (calls awaited one after
another on one event loop against a zero-delay server: far less noisy than the 32-wide loop)
with each litellm switch on, side by side with the defaults, configurations interleaved, each
with its own model name (so that one's cost-map entry cannot help another). ``--profile FILE``
writes a pyinstrument profile of the same per-call path with a per-phase table, under the
defaults and under slmbench's switches.

    python benchmarks/bench_api.py                          # 2,000 items, 2 rounds
    python benchmarks/bench_api.py --n 200 --rounds 1       # quick check
    python benchmarks/bench_api.py --flags --profile /tmp/litellm_profile.txt

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before litellm is imported anywhere

from _common import (  # noqa: E402
    add_repo_to_path,
    contention_after,
    fake_server,
    machine,
    wait_for_quiet,
)

ROOT = add_repo_to_path()

from slmbench.models.litellm_api import (  # noqa: E402
    LITELLM_ENV_DEFAULTS,
    import_litellm,
    register_cost_entry,
)
from slmbench.runner import process_pool  # noqa: E402
from slmbench.runner.pair import pair_event_loop  # noqa: E402
from slmbench.runner.run import RunOptions, run_benchmark  # noqa: E402
from slmbench.tasks import build_messages, load_items, load_task  # noqa: E402

LABELS = ("ok", "other")
MODEL = "openai/fake"          # what slmbench runs (registered in litellm's cost map by it)
BARE_MODEL = "openai/bare"     # the bare loops: unknown to litellm, never registered
SWITCHED_MODEL = "openai/bare-switched"  # (e): registered the way slmbench does
SWITCH_ENV = "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"

NAMES = {"a": "bare litellm async (Semaphore)", "b": "bare litellm threads",
         "c": "slmbench local (asyncio)", "d": "slmbench processes",
         "e": "bare async + slmbench switches", "f": "raw aiohttp POSTs (ceiling)"}


# --------------------------------------------------------------------------- server


# --------------------------------------------------------------------------- task


def write_task(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "items.jsonl"
    with data.open("w", encoding="utf-8") as fh:
        for i in range(n):
            fh.write(json.dumps({"id": f"item-{i:05d}", "label": LABELS[i % 2],
                                 "text": f"Customer message number {i}: where is my card? "
                                         f"It was ordered {i % 17} days ago."}) + "\n")
    yaml = folder / "api_bench.yaml"
    yaml.write_text(
        "name: api-bench\nkind: classification\n"
        f"dataset:\n  files:\n    test: {json.dumps(str(data))}\n  split: test\n"
        "  columns: {id: id, text: text, label: label}\n"
        f"labels: [{', '.join(LABELS)}]\n"
        "prompt:\n  instruction: |\n    Classify the message into one of:\n    {labels}\n"
        "    Answer with the label only.\n  template: \"Message: {text}\"\n", encoding="utf-8")
    return yaml


# --------------------------------------------------------------------------- timing helpers


def settle_cpu(max_s: float = 5.0) -> float:
    """process_time() once background threads (litellm's logging pool) have gone idle."""
    deadline = time.monotonic() + max_s
    last = time.process_time()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = time.process_time()
        if now - last < 0.003:
            return now
        last = now
    return time.process_time()


def proc_cpu(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def settle_proc_cpu(pids: list[int], max_s: float = 5.0) -> float:
    deadline = time.monotonic() + max_s
    last = proc_cpu(pids)
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = proc_cpu(pids)
        if now - last < 0.005:
            return now
        last = now
    return proc_cpu(pids)


def machine_busy_s() -> float:
    """CPU seconds all processes of the machine have used so far (/proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class Others:
    """CPU that processes other than this benchmark's (this process, its worker processes,
    the fake server) used while a variant ran, in cores: the contention _common's
    process-name check cannot see (another engineer's scripts, Ray workers, ...)."""

    def __init__(self, server_pid: int) -> None:
        self.server_pid = server_pid

    def own(self) -> float:
        return time.process_time() + proc_cpu([self.server_pid, *process_pool.worker_pids()])

    def start(self) -> None:
        self.t0, self.busy0, self.own0 = time.perf_counter(), machine_busy_s(), self.own()

    def cores(self) -> float:
        wall = time.perf_counter() - self.t0
        others = (machine_busy_s() - self.busy0) - (self.own() - self.own0)
        return max(0.0, others / wall) if wall > 0 else 0.0


def wait_for_idle_cores(server_pid: int, limit: float = 0.2, max_wait_s: float = 600.0
                        ) -> str:
    """Wait (up to max_wait_s) until other processes use less than ``limit`` cores over 5 s."""
    start = time.monotonic()
    probe = Others(server_pid)
    while True:
        probe.start()
        time.sleep(5.0)
        used = probe.cores()
        waited = time.monotonic() - start
        if used < limit:
            return f"other processes used {used:.2f} cores over 5 s (waited {waited:.0f} s)"
        if waited >= max_wait_s:
            return (f"MEASURED UNDER CONTENTION: other processes still used {used:.2f} cores "
                    f"after {waited:.0f} s")
        print(f"# waiting for idle cores: other processes use {used:.2f} cores", flush=True)


@contextmanager
def switch_env(on: bool):
    """slmbench's litellm environment switch on (its default) or off (litellm's default)."""
    old = os.environ.get(SWITCH_ENV)
    if on:
        os.environ[SWITCH_ENV] = LITELLM_ENV_DEFAULTS[SWITCH_ENV]
    else:
        os.environ.pop(SWITCH_ENV, None)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(SWITCH_ENV, None)
        else:
            os.environ[SWITCH_ENV] = old


def call_kwargs(base: str, model: str = BARE_MODEL) -> dict[str, Any]:
    # exactly what slmbench.models.litellm_api.LiteLLMModel sends
    return {"model": model, "temperature": 0.0, "max_tokens": 32, "timeout": 60.0,
            "num_retries": 0, "api_base": base,
            "api_key": os.environ.get("OPENAI_API_KEY") or "sk-no-key-needed-for-local-server"}


def bench_loop() -> asyncio.AbstractEventLoop:
    """The event loop slmbench's own async pair runs use, for the bare loops too: litellm's
    HTTP sessions and its logging worker are bound to one loop, and moving them between
    loops costs (and warns)."""
    return pair_event_loop()


def run_async(litellm: Any, messages: list, base: str, concurrency: int,
              model: str = BARE_MODEL, extra: dict | None = None) -> tuple[float, float, int]:
    kw = {**call_kwargs(base, model), **(extra or {})}
    errors: list[str] = []

    async def main() -> tuple[float, int]:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        sem = asyncio.Semaphore(concurrency)
        ok = 0

        async def one(m):
            nonlocal ok
            async with sem:
                try:
                    resp = await litellm.acompletion(messages=m, **kw)
                except Exception as exc:  # counted and reported, not fatal
                    errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
                    return
                ok += resp.choices[0].message.content == "ok"

        t0 = time.perf_counter()
        await asyncio.gather(*(one(m) for m in messages))
        wall = time.perf_counter() - t0
        await GLOBAL_LOGGING_WORKER.flush()  # count the async logging work as client CPU
        return wall, ok

    c0 = time.process_time()
    wall, ok = bench_loop().run_until_complete(main())
    cpu = settle_cpu() - c0
    if errors:
        print(f"# warning: {len(errors)} failed calls in an async loop, first: {errors[0]}",
              flush=True)
    return wall, cpu, ok


def run_raw(messages: list, base: str, concurrency: int) -> tuple[float, float, int]:
    """The same chat requests posted with aiohttp alone: what the server allows a client
    that spends next to no CPU per call."""
    import aiohttp

    bodies = [json.dumps({"model": BARE_MODEL.split("/", 1)[1], "messages": m,
                          "temperature": 0.0, "max_tokens": 32}).encode() for m in messages]
    url = base.rstrip("/") + "/chat/completions"
    headers = {"Content-Type": "application/json", "Authorization": "Bearer sk-none"}

    async def main() -> tuple[float, int]:
        sem = asyncio.Semaphore(concurrency)
        ok = 0
        async with aiohttp.ClientSession() as session:
            async def one(body: bytes) -> None:
                nonlocal ok
                async with sem, session.post(url, data=body, headers=headers) as resp:
                    ok += resp.status == 200 and bool(await resp.read())

            t0 = time.perf_counter()
            await asyncio.gather(*(one(b) for b in bodies))
            return time.perf_counter() - t0, ok

    c0 = time.process_time()
    wall, ok = bench_loop().run_until_complete(main())
    return wall, settle_cpu() - c0, ok


def run_threaded(litellm: Any, messages: list, base: str, concurrency: int,
                 model: str = BARE_MODEL) -> tuple[float, float, int]:
    kw = call_kwargs(base, model)
    errors: list[str] = []

    def one(m) -> bool:
        try:
            return litellm.completion(messages=m, **kw).choices[0].message.content == "ok"
        except Exception as exc:  # counted and reported, not fatal
            errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            return False

    c0 = time.process_time()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        ok = sum(pool.map(one, messages))
    wall = time.perf_counter() - t0
    cpu = settle_cpu() - c0
    if errors:
        print(f"# warning: {len(errors)} failed calls in a threaded loop, first: {errors[0]}",
              flush=True)
    return wall, cpu, ok


@dataclass
class SlmbenchRun:
    wall: float
    cpu: float          # this process + worker processes
    worker_cpu: float
    calls: int
    loop_wall: float    # the pair's call loop alone (manifest timings)


def run_slmbench(task_path: Path, base: str, concurrency: int, results: Path,
                 warm: bool = False, **options: Any) -> SlmbenchRun:
    pids = process_pool.worker_pids()
    w0 = proc_cpu(pids)
    c0 = time.process_time()
    t0 = time.perf_counter()
    res = run_benchmark([task_path], [f"{MODEL}?api_base={base}"], results_dir=results,
                        options=RunOptions(concurrency=concurrency, **options))
    wall = time.perf_counter() - t0
    cpu = settle_cpu() - c0
    new = [p for p in process_pool.worker_pids() if p not in pids]
    if new and not warm:  # a pool started inside a timed run (the warm-up starts it)
        print(f"# warning: worker pool started during a timed run: {new}", flush=True)
    worker_cpu = settle_proc_cpu(pids) - w0 if pids else 0.0
    entry = res.summary["results"][0]
    if entry["n_items"] != entry.get("n_expected") or entry.get("n_errors"):
        print(f"# warning: slmbench run had {entry['n_items']} rows, "
              f"errors {entry.get('n_errors')}", flush=True)
    manifest = json.loads((res.run.path / "manifest.json").read_text())
    loop_wall = sum(t["wall_s"] for t in manifest.get("timings", []))
    return SlmbenchRun(wall, cpu + worker_cpu, worker_cpu, res.calls, loop_wall)


# --------------------------------------------------------------------------- flags


@dataclass
class Switch:
    name: str
    attrs: dict[str, Any] = field(default_factory=dict)     # litellm module attributes
    kwargs: dict[str, Any] = field(default_factory=dict)    # extra call kwargs
    env: bool = False          # slmbench's environment switch (litellm's own HTTP handler)
    register: float | None = None  # cost-map entry for the model at this price per token
    model: str | None = None   # a model name instead of the per-switch unknown one
    patch: bool = False        # [diagnostic] no response metadata, no async success log


def switches(litellm: Any) -> list[Switch]:
    """Every switch this litellm has, one at a time, then slmbench's choice, then a floor."""
    out = [Switch("defaults (litellm's, model not in its cost map)"),
           Switch(f"{SWITCH_ENV}=true (litellm HTTP handler, no openai SDK)", env=True),
           Switch("cost-map entry, zero prices (register_cost_entry)", register=0.0),
           Switch("cost-map entry, non-zero prices", register=1e-9),
           Switch("model in litellm's cost map (openai/gpt-4o-mini)",
                  model="openai/gpt-4o-mini")]
    for name, attrs in [
            ("turn_off_message_logging=True", {"turn_off_message_logging": True}),
            ("disable_token_counter=True", {"disable_token_counter": True}),
            ("disable_end_user_cost_tracking=True", {"disable_end_user_cost_tracking": True}),
            ("callbacks/success_callback=[]", {"callbacks": [], "success_callback": [],
                                               "_async_success_callback": []}),
            ("disable_aiohttp_transport=True (httpx)", {"disable_aiohttp_transport": True})]:
        if all(hasattr(litellm, k) for k in attrs):
            out.append(Switch(name, attrs=attrs))
    out.append(Switch('call kwarg "no-log"=True', kwargs={"no-log": True}))
    out.append(Switch("slmbench's switches (HTTP handler + zero-price entry)", env=True,
                      register=0.0))
    import litellm.utils as lu

    if hasattr(lu, "update_response_metadata") and hasattr(lu, "_schedule_async_success_"
                                                                "logging"):
        out.append(Switch("[monkeypatch, diagnostic] slmbench's + no response metadata/cost "
                          "+ no async success log", env=True, register=0.0, patch=True))
    return out


@contextmanager
def applied(litellm: Any, sw: Switch):
    import litellm.utils as lu

    old = {k: getattr(litellm, k) for k in sw.attrs}
    saved = (lu.update_response_metadata, getattr(lu, "_schedule_async_success_logging", None))
    try:
        for k, v in sw.attrs.items():
            setattr(litellm, k, v)
        if sw.patch:
            lu.update_response_metadata = lambda **kw: None
            lu._schedule_async_success_logging = lambda **kw: None
        with switch_env(sw.env):
            yield
    finally:
        for k, v in old.items():
            setattr(litellm, k, v)
        lu.update_response_metadata = saved[0]
        if saved[1] is not None:
            lu._schedule_async_success_logging = saved[1]


def register(litellm: Any, name: str, price: float) -> None:
    if price == 0.0:
        register_cost_entry(litellm, name)
        return
    litellm.register_model({name: {
        "input_cost_per_token": price, "output_cost_per_token": price,
        "cache_read_input_token_cost": 0.0, "cache_creation_input_token_cost": 0.0,
        "litellm_provider": "openai", "mode": "chat"}})


def run_sequential_async(litellm: Any, messages: list, base: str, model: str,
                         extra: dict[str, Any], settle: bool = True) -> tuple[float, float]:
    """The calls one after another on one event loop: per-call CPU without 32 calls
    interleaving, so that a switch's effect stands out of the noise."""
    kw = {**call_kwargs(base, model), **extra}

    async def main() -> None:
        from litellm.litellm_core_utils.logging_worker import GLOBAL_LOGGING_WORKER

        for m in messages:
            await litellm.acompletion(messages=m, **kw)
        await GLOBAL_LOGGING_WORKER.flush()

    c0 = time.process_time()
    t0 = time.perf_counter()
    bench_loop().run_until_complete(main())
    wall = time.perf_counter() - t0
    return wall, (settle_cpu() if settle else time.process_time()) - c0


def measure_flags(litellm: Any, messages: list, base: str, rounds: int
                  ) -> list[tuple[str, float, float, float, float]]:
    configs = switches(litellm)
    models = {sw.name: sw.model or f"openai/flags-{i}" for i, sw in enumerate(configs)}
    for sw in configs:
        if sw.register is not None:
            register(litellm, models[sw.name], sw.register)
    per: dict[str, list[float]] = {sw.name: [] for sw in configs}
    ips: dict[str, list[float]] = {sw.name: [] for sw in configs}
    for r in range(rounds):
        order = configs if r % 2 == 0 else list(reversed(configs))
        for sw in order:
            with applied(litellm, sw):
                run_sequential_async(litellm, messages[:10], base, models[sw.name], sw.kwargs)
                wall, cpu = run_sequential_async(litellm, messages, base, models[sw.name],
                                                 sw.kwargs)
            per[sw.name].append(cpu / len(messages))
            ips[sw.name].append(len(messages) / wall)
            print(f"#   flags round {r + 1} {sw.name}: {cpu / len(messages) * 1000:.2f} ms "
                  f"CPU/call", flush=True)
    return [(sw.name, statistics.median(per[sw.name]), statistics.median(ips[sw.name]),
             min(per[sw.name]), max(per[sw.name])) for sw in configs]


# --------------------------------------------------------------------------- profile


PHASES = [  # (label, function name, file path fragment); first match on a path wins
    ("response metadata: update_response_metadata (litellm's cost of the response)",
     "update_response_metadata", "response_metadata.py"),
    ("async success handler (logging worker: standard payload, cost again)",
     "async_success_handler", "litellm_logging.py"),
    ("openai SDK: request transform (async_maybe_transform of the body)",
     "async_maybe_transform", "_transform.py"),
    ("openai SDK: build request", "_build_request", "_base_client.py"),
    ("openai SDK: response parse", "parse", "_legacy_response.py"),
    ("HTTP via openai SDK (httpx client + litellm's aiohttp transport)", "send",
     "httpx/_client.py"),
    ("HTTP via litellm's handler (httpx/aiohttp)", "post", "http_handler.py"),
    ("litellm request transform (provider config)", "transform_request",
     "transformation.py"),
    ("litellm response transform (provider config)", "transform_response",
     "transformation.py"),
    ("litellm: convert_to_model_response_object", "convert_to_model_response_object",
     "convert_dict_to_response.py"),
    ("litellm pre-call: get_optional_params", "get_optional_params", "litellm/utils.py"),
    ("litellm pre-call: function_setup (Logging object)", "function_setup", "litellm/utils.py"),
    ("litellm pre-call: get_llm_provider", "get_llm_provider", "get_llm_provider_logic.py"),
]


def phase_breakdown(prof: Any) -> list[tuple[str, float]]:
    """Seconds per phase over the profiled calls, plus the remainder."""
    root = prof.last_session.root_frame()
    totals = {label: 0.0 for label, _, _ in PHASES}

    def walk(frame: Any) -> None:
        for label, func, path in PHASES:
            if frame.function == func and path in (frame.file_path or ""):
                totals[label] += frame.time
                return
        for child in frame.children:
            walk(child)

    walk(root)
    total = root.time
    out = sorted(((k, v) for k, v in totals.items() if v > 0), key=lambda kv: -kv[1])
    out.append(("everything else (litellm wrapper glue, event loop, ...)",
                total - sum(totals.values())))
    out.append(("TOTAL (wall under the profiler)", total))
    return out


def profile_async_path(litellm: Any, messages: list, base: str, out: Path) -> str:
    from pyinstrument import Profiler

    lines: list[str] = []
    for label, env in (("litellm defaults", False), ("slmbench's switches", True)):
        model = "openai/profile-switched" if env else "openai/profile-defaults"
        if env:
            register(litellm, model, 0.0)
        with switch_env(env):
            run_sequential_async(litellm, messages[:20], base, model, {})  # warm
            prof = Profiler(interval=0.0005, async_mode="disabled")
            c0 = time.process_time()
            prof.start()
            run_sequential_async(litellm, messages, base, model, {}, settle=False)
            prof.stop()
        cpu = (time.process_time() - c0) / len(messages)
        lines.append(f"# {label}: pyinstrument, {len(messages)} sequential litellm.acompletion "
                     f"calls on one event loop (fake server, delay 0); {cpu * 1000:.2f} ms "
                     f"CPU/call under the profiler\n")
        lines.append("## per-call time by phase (inclusive time of the first matching frame)\n")
        for name, secs in phase_breakdown(prof):
            lines.append(f"{name:<80} {secs / len(messages) * 1000:6.3f} ms/call\n")
        lines.append("## call tree\n")
        lines.append(prof.output_text(
            unicode=False, color=False, show_all=False,
            processor_options={"show_regex": r".*(litellm|openai|httpx|aiohttp|asyncio).*",
                               "filter_threshold": 0.01}))
        lines.append("\n")
    out.write_text("".join(lines), encoding="utf-8")
    return str(out)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="calls per variant")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--delay", type=float, default=0.05, help="fake server answer delay (s)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--workers", type=int, default=2, help="worker processes of (d)")
    p.add_argument("--variants", default="abcdef", help="".join(
        f"{k} {v}; " for k, v in NAMES.items()))
    p.add_argument("--flags", action="store_true", help="measure litellm switches one by one")
    p.add_argument("--flags-n", type=int, default=300, help="calls per configuration and round")
    p.add_argument("--flags-rounds", type=int, default=6)
    p.add_argument("--profile", type=Path, help="write a profile of the per-call path here")
    p.add_argument("--profile-n", type=int, default=300)
    p.add_argument("--no-wait", action="store_true", help="skip waiting for a quiet machine")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)

    print(f"# bench_api: {args.n} calls/variant, concurrency {args.concurrency}, fake server "
          f"delay {args.delay * 1000:.0f} ms (subprocess); machine: {machine()}", flush=True)
    litellm = import_litellm()  # slmbench's own setup: no remote cost map, telemetry off
    print(f"# litellm {getattr(litellm, 'version', None) or _dist_version('litellm')}",
          flush=True)
    out: dict[str, Any] = {"machine": machine(), "args": {k: str(v) for k, v in
                                                         vars(args).items()}}
    register_cost_entry(litellm, SWITCHED_MODEL)
    try:
        with tempfile.TemporaryDirectory(prefix="slmbench-bench-api-") as tmp:
            tmpdir = Path(tmp)
            task_path = write_task(tmpdir / "task", args.n)
            task = load_items(load_task(task_path))
            messages = [build_messages(task.spec, it.text) for it in task.items]
            variants = [v for v in args.variants if v in NAMES]
            with fake_server(args.delay) as (base, proc):
                measure(args, litellm, base, proc.pid, messages, task_path, tmpdir, variants,
                        out)
            want = max(args.flags_n if args.flags else 0, args.profile_n if args.profile else 0)
            if want > len(messages):  # the switch measurements need no task of --n items
                extra = load_items(load_task(write_task(tmpdir / "more", want)))
                messages = [build_messages(extra.spec, it.text) for it in extra.items]
            if args.flags:
                flags(args, litellm, messages, out)
            if args.profile:
                with fake_server(0.0) as (base0, _proc):
                    path = profile_async_path(litellm, messages[:args.profile_n], base0,
                                              args.profile)
                print(f"# profile of the per-call path written to {path}", flush=True)
    finally:
        process_pool.shutdown_pools()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def measure(args: argparse.Namespace, litellm: Any, base: str, server_pid: int,
            messages: list, task_path: Path, tmpdir: Path, variants: list[str],
            out: dict[str, Any]) -> None:
    # warm-up: first-call set-up of litellm (sessions, lazy imports) on every path, and the
    # worker pool's start (litellm's import in each worker)
    warm_task = write_task(tmpdir / "warm", 64)
    with switch_env(False):
        run_threaded(litellm, messages[:64], base, args.concurrency)
        run_async(litellm, messages[:64], base, args.concurrency)
    if "f" in variants:
        run_raw(messages[:64], base, args.concurrency)
    with switch_env(True):
        run_async(litellm, messages[:64], base, args.concurrency, SWITCHED_MODEL)
        run_slmbench(warm_task, base, args.concurrency, tmpdir / "warm-c", warm=True)
        if "d" in variants:
            run_slmbench(warm_task, base, args.concurrency, tmpdir / "warm-d", warm=True,
                         executor="processes", workers=args.workers)

    note = "contention check skipped" if args.no_wait else wait_for_quiet()
    if not args.no_wait:
        note += "; " + wait_for_idle_cores(server_pid)
    print(f"# before: {note}", flush=True)
    out["before"] = note
    others = Others(server_pid)
    rec: dict[str, dict[str, list[float]]] = {
        v: {"ips": [], "cpu": [], "loop_ips": [], "worker_cpu": [], "others": []}
        for v in variants}
    n = len(messages)
    for r in range(args.rounds):
        order = variants if r % 2 == 0 else list(reversed(variants))
        for v in order:
            extra = ""
            others.start()
            if v == "f":
                wall, cpu, _ = run_raw(messages, base, args.concurrency)
            elif v in "abe":
                with switch_env(v == "e"):
                    fn = run_threaded if v == "b" else run_async
                    model = SWITCHED_MODEL if v == "e" else BARE_MODEL
                    wall, cpu, _ = fn(litellm, messages, base, args.concurrency, model)
            else:
                opts = ({"executor": "processes", "workers": args.workers} if v == "d" else {})
                with switch_env(True):
                    res = run_slmbench(task_path, base, args.concurrency,
                                       tmpdir / f"results-{v}-{r}", **opts)
                wall, cpu = res.wall, res.cpu
                rec[v]["loop_ips"].append(n / res.loop_wall)
                rec[v]["worker_cpu"].append(res.worker_cpu / n)
                if v == "d":
                    extra = (f" (workers {res.worker_cpu / n * 1000:.2f}, this process "
                             f"{(res.cpu - res.worker_cpu) / n * 1000:.2f})")
            busy = others.cores()
            rec[v]["ips"].append(n / wall)
            rec[v]["cpu"].append(cpu / n)
            rec[v]["others"].append(busy)
            print(f"#   round {r + 1} ({v}) {NAMES[v]}: {n / wall:7.1f} items/s, "
                  f"{cpu / n * 1000:.2f} ms CPU/call{extra}; other processes used "
                  f"{busy:.2f} cores meanwhile", flush=True)
    after = contention_after()
    print(f"# after: {after}", flush=True)
    out["after"] = after
    ideal = args.concurrency / args.delay
    summary: dict[str, Any] = {}
    for v in variants:
        ips = statistics.median(rec[v]["ips"])
        cpu = statistics.median(rec[v]["cpu"])
        summary[v] = {"name": NAMES[v], "items_per_s": ips, "cpu_ms_per_call": cpu * 1e3,
                      "rounds_items_per_s": rec[v]["ips"],
                      "others_cores": rec[v]["others"]}
        extra = ""
        if rec[v]["loop_ips"]:
            loop_ips = statistics.median(rec[v]["loop_ips"])
            summary[v]["call_loop_items_per_s"] = loop_ips
            extra = f"  (call loop alone: {loop_ips:.1f} items/s)"
        if v == "d":
            wcpu = statistics.median(rec[v]["worker_cpu"])
            summary[v]["worker_cpu_ms_per_call"] = wcpu * 1e3
            extra += f"  (of which workers {wcpu * 1000:.2f} ms)"
        print(f"({v}) {NAMES[v]:<32} {ips:7.1f} items/s  {cpu * 1000:6.2f} ms client "
              f"CPU/call  ({ips / ideal:.0%} of the {ideal:.0f} items/s delay bound){extra}")
    if "a" in summary:
        bare = summary["a"]["items_per_s"]
        targets = {"c": 0.9, "d": 1.6}
        if "f" in summary:
            print(f"ceiling of this setup (f) / (a): "
                  f"{summary['f']['items_per_s'] / bare:.3f}: no client can exceed it")
        for v in variants:
            if v == "a":
                continue
            ratio = summary[v]["items_per_s"] / bare
            summary[v]["ratio_vs_a"] = ratio
            goal = ""
            if v in targets:
                goal = (f"  (target >= {targets[v]}: "
                        f"{'MET' if ratio >= targets[v] else 'NOT MET'})")
            print(f"ratio ({v}) {NAMES[v]} / (a) bare async items/s: {ratio:.3f}{goal}")
        if "c" in summary:
            cpu_ratio = summary["c"]["cpu_ms_per_call"] / summary["a"]["cpu_ms_per_call"]
            print(f"ratio (c)/(a) client CPU per call: {cpu_ratio:.2f}")
    out["results"] = summary


def flags(args: argparse.Namespace, litellm: Any, messages: list, out: dict[str, Any]) -> None:
    fmsgs = messages[:args.flags_n]
    with fake_server(0.0) as (fbase, fproc):
        with switch_env(False):
            run_sequential_async(litellm, fmsgs[:30], fbase, BARE_MODEL, {})  # warm
        note = "contention check skipped" if args.no_wait else (
            wait_for_quiet() + "; " + wait_for_idle_cores(fproc.pid))
        print(f"# flags (sequential litellm.acompletion on one event loop, zero-delay server; "
              f"{len(fmsgs)} calls x {args.flags_rounds} rounds, configurations interleaved, "
              f"medians); before: {note}", flush=True)
        rows = measure_flags(litellm, fmsgs, fbase, args.flags_rounds)
        print(f"# flags after: {contention_after()}", flush=True)
    base_cpu = rows[0][1]
    out["flags"] = []
    for name, cpu, ips, lo, hi in rows:
        print(f"flags {name:<78} {cpu * 1000:5.2f} ms CPU/call ({cpu / base_cpu - 1:+6.1%} vs "
              f"defaults; rounds {lo * 1000:.2f}-{hi * 1000:.2f})  {ips:6.1f} calls/s")
        out["flags"].append({"config": name, "cpu_ms_per_call": cpu * 1e3, "min_ms": lo * 1e3,
                             "max_ms": hi * 1e3, "calls_per_s": ips})


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    raise SystemExit(main())
