"""API path: slmbench's runner vs bare litellm loops, against a fixed-delay fake server.

Compares, on N chat calls (default 2,000) at concurrency 32 against ``tests/fakeserver.py``
(fixed 50 ms answer delay, run in a SUBPROCESS so its CPU is not counted as client CPU):

  (a) async     bare ``litellm.acompletion`` loop, asyncio + Semaphore(32)
  (b) threaded  bare ``litellm.completion`` in a ThreadPoolExecutor(32)
  (c) slmbench  ``run_benchmark`` end to end on a generated 2,000-item classification task,
                model ``openai/fake?api_base=...``, ``RunOptions(concurrency=32)``: task loaded,
                rows written, summary built
  (d) slmbench  the same with ``use_cache=False`` (no SQLite response cache), when the installed
                slmbench has that option

All variants send the same messages (built by slmbench for the task) with the same call
arguments slmbench uses. Printed per variant: items/s and client CPU seconds per call
(``time.process_time()`` delta of this process, all threads, measured until litellm's
background logging work has drained). Then the ratio slmbench / best bare loop (target: overhead
<= 10 %, i.e. ratio >= 0.9). Variants alternate over ``--rounds`` rounds; medians are reported.
Imports and a warm-up are done before timing (litellm's import alone takes seconds).

``--flags`` then measures per-call client CPU of litellm.completion (by default sequential calls
in one worker thread against a zero-delay server, which is far less noisy than the 32-thread loop;
``--flags-mode threaded`` uses loop (b)) with litellm switches on, side by side with the defaults
(``turn_off_message_logging``, ``disable_end_user_cost_tracking``,
``disable_token_counter``, ``logging``, empty callback lists, the ``no-log`` call kwarg, custom
zero prices, a model name litellm's cost map knows, a per-thread asyncio event loop, and, as a
diagnostic monkeypatch, no success handler at all), and ``--profile FILE`` writes a pyinstrument
(and cProfile) profile of the per-call path of (b), in a worker thread, with litellm's logging
thread pool made synchronous so that its work is attributed too, plus a per-phase table.

    python benchmarks/bench_api.py                          # 2,000 items, 2 rounds
    python benchmarks/bench_api.py --n 200 --rounds 1       # quick check
    python benchmarks/bench_api.py --flags --profile /tmp/litellm_profile.txt

Not run by the test suite (pytest only collects tests/).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # before litellm is imported anywhere

from _common import add_repo_to_path, contention_after, machine, wait_for_quiet  # noqa: E402

ROOT = add_repo_to_path()

from slmbench.models.litellm_api import import_litellm  # noqa: E402
from slmbench.runner.run import RunOptions, run_benchmark  # noqa: E402
from slmbench.tasks import build_messages, load_items, load_task  # noqa: E402

LABELS = ("ok", "other")
MODEL = "openai/fake"


# --------------------------------------------------------------------------- server


@contextmanager
def fake_server(delay: float, answer: str = "ok"):
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "tests" / "fakeserver.py"), "--port", "0",
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


# --------------------------------------------------------------------------- task


def write_task(folder: Path, n: int) -> Path:
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


def call_kwargs(base: str) -> dict[str, Any]:
    # exactly what slmbench.models.litellm_api.LiteLLMModel.complete sends
    return {"model": MODEL, "temperature": 0.0, "max_tokens": 32, "timeout": 60.0,
            "num_retries": 0, "api_base": base,
            "api_key": os.environ.get("OPENAI_API_KEY") or "sk-no-key-needed-for-local-server"}


def run_async(litellm: Any, messages: list, base: str, concurrency: int,
              extra: dict | None = None) -> tuple[float, float, int]:
    kw = {**call_kwargs(base), **(extra or {})}

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
    wall, ok = asyncio.run(main())
    cpu = settle_cpu() - c0
    if errors:
        print(f"# warning: {len(errors)} failed calls in an async loop, first: {errors[0]}",
              flush=True)
    return wall, cpu, ok


def run_threaded(litellm: Any, messages: list, base: str, concurrency: int,
                 extra: dict | None = None, initializer=None) -> tuple[float, float, int]:
    kw = {**call_kwargs(base), **(extra or {})}

    errors: list[str] = []

    def one(m) -> bool:
        try:
            return litellm.completion(messages=m, **kw).choices[0].message.content == "ok"
        except Exception as exc:  # counted and reported, not fatal
            errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
            return False

    c0 = time.process_time()
    t0 = time.perf_counter()
    with ThreadPoolExecutor(concurrency, initializer=initializer) as pool:
        ok = sum(pool.map(one, messages))
    if errors:
        print(f"# warning: {len(errors)} failed calls in a threaded loop, first: {errors[0]}",
              flush=True)
    wall = time.perf_counter() - t0
    cpu = settle_cpu() - c0
    return wall, cpu, ok


def run_slmbench(task_path: Path, base: str, concurrency: int, results: Path,
                 **options: Any) -> tuple[float, float, int, float]:
    c0 = time.process_time()
    t0 = time.perf_counter()
    res = run_benchmark([task_path], [f"{MODEL}?api_base={base}"], results_dir=results,
                        options=RunOptions(concurrency=concurrency, **options))
    wall = time.perf_counter() - t0
    cpu = settle_cpu() - c0
    entry = res.summary["results"][0]
    if entry["n_items"] != entry.get("n_expected") or entry.get("n_errors"):
        print(f"# warning: slmbench run had {entry['n_items']} rows, "
              f"errors {entry.get('n_errors')}", flush=True)
    manifest = json.loads((res.run.path / "manifest.json").read_text())
    loop_wall = sum(t["wall_s"] for t in manifest.get("timings", []))
    return wall, cpu, res.calls, loop_wall


# --------------------------------------------------------------------------- flags


def flag_configs(litellm: Any) -> list[tuple[str, dict[str, Any], dict[str, Any], str]]:
    """(name, litellm attributes to set, extra call kwargs, mode); only switches this litellm has.

    mode: "" plain; "thread-loop" gives every worker thread its own asyncio event loop (litellm's
    ServiceLogging then reuses it instead of ``asyncio.run`` per call); "drop-success" replaces
    litellm.utils.executor so the background success handler never runs (diagnostic only).
    """
    configs: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
        ("defaults", {}, {}, "")]
    candidates = [
        ("turn_off_message_logging=True", {"turn_off_message_logging": True}),
        ("disable_end_user_cost_tracking=True", {"disable_end_user_cost_tracking": True}),
        ("disable_token_counter=True", {"disable_token_counter": True}),
        ("logging=False", {"logging": False}),
        ("callbacks/success_callback=[]", {"callbacks": [], "success_callback": [],
                                          "_async_success_callback": []}),
    ]
    all_attrs: dict[str, Any] = {}
    for name, attrs in candidates:
        if all(hasattr(litellm, k) for k in attrs):
            configs.append((name, attrs, {}, ""))
            all_attrs.update(attrs)
    configs.append(('call kwarg "no-log"=True', {}, {"no-log": True}, ""))
    configs.append(("call kwargs input/output_cost_per_token=0", {},
                    {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0}, ""))
    configs.append(("all switches above", all_attrs, {"no-log": True}, ""))
    configs.append(("model name in litellm's cost map (openai/gpt-4o-mini)", {},
                    {"model": "openai/gpt-4o-mini"}, ""))
    configs.append(("per-thread event loop (initializer)", {}, {}, "thread-loop"))
    configs.append(("[monkeypatch] success handler dropped", {}, {}, "drop-success"))
    return configs


@contextmanager
def litellm_settings(litellm: Any, attrs: dict[str, Any]):
    old = {k: getattr(litellm, k) for k in attrs}
    try:
        for k, v in attrs.items():
            setattr(litellm, k, v)
        yield
    finally:
        for k, v in old.items():
            setattr(litellm, k, v)


class _InlineExecutor:
    """Stands in for litellm.utils.executor: runs the success handler in the calling thread."""

    def submit(self, fn, *args, **kwargs):
        fn(*args, **kwargs)


class _DropExecutor:
    """Stands in for litellm.utils.executor: drops the success handler (diagnostic only)."""

    def submit(self, fn, *args, **kwargs):
        return None


@contextmanager
def patched_executor(replacement: Any):
    import litellm.utils as lu

    old = lu.executor
    lu.executor = replacement
    try:
        yield
    finally:
        lu.executor = old


def thread_event_loop() -> None:
    asyncio.set_event_loop(asyncio.new_event_loop())


def run_sequential(litellm: Any, messages: list, base: str, extra: dict | None = None,
                   initializer=None) -> tuple[float, float, int]:
    """The same calls one after another in one worker thread: per-call CPU without GIL
    contention between 32 threads, so that a switch's effect stands out of the noise."""
    with ThreadPoolExecutor(1, initializer=initializer) as pool:
        return pool.submit(run_threaded_inline, litellm, messages, base, extra).result()


def run_threaded_inline(litellm: Any, messages: list, base: str, extra: dict | None
                        ) -> tuple[float, float, int]:
    kw = {**call_kwargs(base), **(extra or {})}
    ok = 0
    c0 = time.process_time()
    t0 = time.perf_counter()
    for m in messages:
        try:
            ok += litellm.completion(messages=m, **kw).choices[0].message.content == "ok"
        except Exception as exc:  # counted, not fatal
            print(f"# warning: failed call: {type(exc).__name__}: {str(exc)[:100]}", flush=True)
    wall = time.perf_counter() - t0
    return wall, settle_cpu() - c0, ok


def measure_flags(litellm: Any, messages: list, base: str, concurrency: int, rounds: int,
                  mode: str = "sequential") -> list[tuple[str, float, float]]:
    configs = flag_configs(litellm)
    per: dict[str, list[float]] = {c[0]: [] for c in configs}
    ips: dict[str, list[float]] = {c[0]: [] for c in configs}
    for r in range(rounds):
        order = configs if r % 2 == 0 else list(reversed(configs))
        for name, attrs, extra, cmode in order:
            init = thread_event_loop if cmode == "thread-loop" else None

            def go(extra=extra, init=init):
                if mode == "sequential":
                    return run_sequential(litellm, messages, base, extra, initializer=init)
                return run_threaded(litellm, messages, base, concurrency, extra,
                                    initializer=init)

            with litellm_settings(litellm, attrs):
                if cmode == "drop-success":
                    with patched_executor(_DropExecutor()):
                        wall, cpu, _ = go()
                else:
                    wall, cpu, _ = go()
            per[name].append(cpu / len(messages))
            ips[name].append(len(messages) / wall)
            print(f"#   flags round {r + 1} {name}: {cpu / len(messages) * 1000:.2f} ms CPU/call",
                  flush=True)
    return [(c[0], statistics.median(per[c[0]]), statistics.median(ips[c[0]]),
             min(per[c[0]]), max(per[c[0]])) for c in configs]


# --------------------------------------------------------------------------- profile


PHASES = [  # (label, function name, file path fragment); first match on a path wins
    ("success handler (normally litellm's logging thread): payload + cost", "submit",
     "bench_api.py"),
    ("hot-path cost calc: update_response_metadata -> response_cost_calculator",
     "update_response_metadata", "response_metadata.py"),
    ("ServiceLogging.service_success_hook (asyncio.run per call in a thread)",
     "service_success_hook", "_service_logger.py"),
    ("openai SDK: request transform (maybe_transform of messages)", "maybe_transform",
     "_transform.py"),
    ("openai SDK: build request", "_build_request", "_base_client.py"),
    ("HTTP send/receive (httpx, httpcore, h11, socket)", "send", "httpx/_client.py"),
    ("response parsing: openai construct", "parse", "_legacy_response.py"),
    ("response parsing: litellm convert_to_model_response_object",
     "convert_to_model_response_object", "convert_dict_to_response.py"),
    ("litellm pre-call: get_optional_params", "get_optional_params", "litellm/utils.py"),
    ("litellm pre-call: responses_api_bridge_check (model info lookup)",
     "responses_api_bridge_check", "litellm/main.py"),
    ("litellm pre-call: function_setup (Logging object)", "function_setup", "litellm/utils.py"),
    ("litellm pre-call: get_llm_provider", "get_llm_provider", "get_llm_provider_logic.py"),
]


def phase_breakdown(prof: Any) -> list[tuple[str, float]]:
    """Seconds per phase over the profiled calls, plus the remainder ("other litellm")."""
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
    out = sorted(totals.items(), key=lambda kv: -kv[1])
    out.append(("everything else (litellm wrapper/main.completion glue, ...)",
                total - sum(totals.values())))
    out.append(("TOTAL (wall under the profiler)", total))
    return out


def profile_threaded_path(litellm: Any, messages: list, base: str, out: Path) -> str:
    """Profile in a worker thread, as in (b): a thread has no event loop, which changes
    litellm's per-call path (ServiceLogging then runs ``asyncio.run`` per call)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(_profile_calls, litellm, messages, base, out).result()


def _profile_calls(litellm: Any, messages: list, base: str, out: Path) -> str:
    """Sequential litellm.completion calls, logging executor inline, under pyinstrument."""
    import cProfile
    import io
    import pstats

    kw = call_kwargs(base)
    lines: list[str] = []
    with patched_executor(_InlineExecutor()):
        for m in messages[:20]:  # warm
            litellm.completion(messages=m, **kw)
        try:
            from pyinstrument import Profiler
        except ImportError:
            Profiler = None  # noqa: N806
        if Profiler is not None:
            prof = Profiler(interval=0.0005)
            c0 = time.process_time()
            prof.start()
            for m in messages:
                litellm.completion(messages=m, **kw)
            prof.stop()
            cpu = (time.process_time() - c0) / len(messages)
            lines.append(f"# pyinstrument, {len(messages)} sequential litellm.completion calls "
                         f"in a worker thread (fake server, delay 0), logging executor inline; "
                         f"{cpu * 1000:.2f} ms CPU/call under the profiler\n")
            lines.append("## per-call CPU by phase (inclusive time of the first matching frame)\n")
            for label, secs in phase_breakdown(prof):
                lines.append(f"{label:<78} {secs / len(messages) * 1000:6.3f} ms/call\n")
            lines.append("## flat, self time\n")
            flat = prof.output_text(unicode=False, color=False, flat=True, flat_time="self")
            lines.append("\n".join(flat.splitlines()[:60]) + "\n")
            lines.append("## call tree\n")
            lines.append(prof.output_text(
                unicode=False, color=False, show_all=False,
                processor_options={"show_regex": r".*(litellm|openai|httpx|httpcore|h11|"
                                                 r"asyncio).*",
                                   "filter_threshold": 0.01}))
        pr = cProfile.Profile()
        pr.enable()
        for m in messages:
            litellm.completion(messages=m, **kw)
        pr.disable()
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("cumulative").print_stats(70)
    lines.append("\n## cProfile, cumulative (same calls)\n" + buf.getvalue())
    buf = io.StringIO()
    pstats.Stats(pr, stream=buf).sort_stats("tottime").print_stats(40)
    lines.append("\n## cProfile, self time\n" + buf.getvalue())
    out.write_text("".join(lines), encoding="utf-8")
    return str(out)


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=2000, help="calls per variant")
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--delay", type=float, default=0.05, help="fake server answer delay (s)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--variants", default="abcd",
                   help="a async, b threads, c slmbench, d slmbench without response cache")
    p.add_argument("--flags", action="store_true", help="also measure litellm switches on (b)")
    p.add_argument("--flags-mode", choices=("sequential", "threaded"), default="sequential",
                   help="sequential: calls one by one in one worker thread against a zero-delay "
                        "server (low noise); threaded: loop (b) at --concurrency")
    p.add_argument("--flags-n", type=int, default=300, help="calls per configuration and round")
    p.add_argument("--flags-rounds", type=int, default=8)
    p.add_argument("--profile", type=Path, help="write a profile of (b)'s per-call path here")
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
    with tempfile.TemporaryDirectory(prefix="slmbench-bench-api-") as tmp:
        tmpdir = Path(tmp)
        task_path = write_task(tmpdir, args.n)
        task = load_items(load_task(task_path))
        messages = [build_messages(task.spec, it.text) for it in task.items]
        with fake_server(args.delay) as (base, _proc):
            # warm-up: first-call setup of litellm (client cache, lazy imports), sync and async
            run_threaded(litellm, messages[:64], base, args.concurrency)
            run_async(litellm, messages[:64], base, args.concurrency)
            (tmpdir / "warm").mkdir()
            warm_task = write_task(tmpdir / "warm", 64)
            run_slmbench(warm_task, base, args.concurrency, tmpdir / "warm-results")

            note = "contention check skipped" if args.no_wait else wait_for_quiet()
            print(f"# before: {note}", flush=True)
            out["before"] = note
            names = {"a": "bare litellm async (Semaphore)", "b": "bare litellm threads",
                     "c": "slmbench run_benchmark e2e",
                     "d": "slmbench e2e, use_cache=False"}
            if "use_cache" not in {f.name for f in dataclasses.fields(RunOptions)}:
                names.pop("d")
            variants = [v for v in args.variants if v in names]
            rec: dict[str, dict[str, list[float]]] = {
                v: {"ips": [], "cpu": [], "loop_ips": []} for v in variants}
            for r in range(args.rounds):
                order = variants if r % 2 == 0 else list(reversed(variants))
                for v in order:
                    if v == "a":
                        wall, cpu, ok = run_async(litellm, messages, base, args.concurrency)
                    elif v == "b":
                        wall, cpu, ok = run_threaded(litellm, messages, base, args.concurrency)
                    else:
                        extra = {"use_cache": False} if v == "d" else {}
                        wall, cpu, ok, loop = run_slmbench(task_path, base, args.concurrency,
                                                           tmpdir / f"results-{v}-{r}", **extra)
                        rec[v]["loop_ips"].append(args.n / loop)
                    rec[v]["ips"].append(args.n / wall)
                    rec[v]["cpu"].append(cpu / args.n)
                    print(f"#   round {r + 1} ({v}) {names[v]}: {args.n / wall:7.1f} items/s, "
                          f"{cpu / args.n * 1000:.2f} ms CPU/call", flush=True)
            after = contention_after()
            print(f"# after: {after}", flush=True)
            out["after"] = after
            ideal = args.concurrency / args.delay
            summary: dict[str, Any] = {}
            for v in variants:
                ips = statistics.median(rec[v]["ips"])
                cpu = statistics.median(rec[v]["cpu"])
                summary[v] = {"name": names[v], "items_per_s": ips, "cpu_ms_per_call": cpu * 1e3}
                extra = ""
                if rec[v]["loop_ips"]:
                    loop_ips = statistics.median(rec[v]["loop_ips"])
                    summary[v]["call_loop_items_per_s"] = loop_ips
                    extra = f"  (call loop alone, manifest timings: {loop_ips:.1f} items/s)"
                print(f"({v}) {names[v]:<32} {ips:7.1f} items/s  {cpu * 1000:6.2f} ms client "
                      f"CPU/call  ({ips / ideal:.0%} of the {ideal:.0f} items/s delay bound)"
                      f"{extra}")
            bare = [v for v in ("a", "b") if v in summary]
            if "d" in summary and "c" in summary:
                print(f"ratio slmbench use_cache=False / default items/s: "
                      f"{summary['d']['items_per_s'] / summary['c']['items_per_s']:.3f}; "
                      f"CPU/call {summary['d']['cpu_ms_per_call']:.2f} vs "
                      f"{summary['c']['cpu_ms_per_call']:.2f} ms")
            if "c" in summary and bare:
                best = max(bare, key=lambda v: summary[v]["items_per_s"])
                ratio = summary["c"]["items_per_s"] / summary[best]["items_per_s"]
                print(f"ratio slmbench/best bare ({best}) items/s: {ratio:.3f}  (target >= 0.9: "
                      f"{'MET' if ratio >= 0.9 else 'NOT MET'}; overhead {1 / ratio - 1:+.1%})")
                if "call_loop_items_per_s" in summary["c"]:
                    loop_ratio = summary["c"]["call_loop_items_per_s"] / \
                        summary[best]["items_per_s"]
                    print(f"ratio slmbench call loop only/best bare ({best}) items/s: "
                          f"{loop_ratio:.3f}")
                cpu_ratio = summary["c"]["cpu_ms_per_call"] / summary[best]["cpu_ms_per_call"]
                print(f"ratio slmbench/best bare ({best}) client CPU per call: {cpu_ratio:.2f}")
            out["results"] = summary

        if args.flags:
            fmsgs = messages[:args.flags_n]
            sequential = args.flags_mode == "sequential"
            with fake_server(0.0 if sequential else args.delay) as (fbase, _proc):
                run_sequential(litellm, fmsgs[:50], fbase)  # warm
                note = "contention check skipped" if args.no_wait else wait_for_quiet()
                how = ("sequential calls in one worker thread, zero-delay server" if sequential
                       else f"threaded loop (b) at concurrency {args.concurrency}")
                print(f"# flags ({how}; {len(fmsgs)} calls x {args.flags_rounds} rounds, "
                      f"configurations interleaved, medians); before: {note}", flush=True)
                rows = measure_flags(litellm, fmsgs, fbase, args.concurrency, args.flags_rounds,
                                     args.flags_mode)
                print(f"# flags after: {contention_after()}", flush=True)
            base_cpu = rows[0][1]
            out["flags"] = []
            for name, cpu, ips, lo, hi in rows:
                print(f"flags {name:<56} {cpu * 1000:5.2f} ms CPU/call ({cpu / base_cpu - 1:+6.1%}"
                      f" vs defaults; rounds {lo * 1000:.2f}-{hi * 1000:.2f})  {ips:6.1f} calls/s")
                out["flags"].append({"config": name, "cpu_ms_per_call": cpu * 1e3,
                                     "min_ms": lo * 1e3, "max_ms": hi * 1e3, "calls_per_s": ips,
                                     "mode": args.flags_mode})
        if args.profile:
            with fake_server(0.0) as (base0, _proc):
                path = profile_threaded_path(litellm, messages[:args.profile_n], base0,
                                             args.profile)
            print(f"# profile of the per-call path written to {path}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return 0


def _dist_version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


if __name__ == "__main__":
    raise SystemExit(main())
