"""``slmbench merge``: shard runs → one run whose rows, summary and manifest match an unsharded
run of the same items.

Shards must agree on everything that changes a figure — task spec and data fingerprint, model
settings, pricing options, seed — and must not overlap. Missing shards and duplicated items are
reported by id, never silently joined.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from slmbench.analysis.summary import build_summary
from slmbench.errors import InputError
from slmbench.models.base import semantic_settings
from slmbench.store.files import JsonlAppender
from slmbench.store.manifest import now_iso
from slmbench.store.run_dir import RunDir, open_run, row_key

PRICING_OPTIONS = ("pricing_dirs", "price_date", "hardware", "hourly_usd", "volume_per_day")


def _first_ids(ids: list[str], n: int = 3) -> str:
    return ", ".join(ids[:n]) + (f" (+{len(ids) - n} more)" if len(ids) > n else "")


def merge_runs(paths: list[str | Path], out: str | Path) -> RunDir:
    if len(paths) < 2:
        raise InputError("give at least two runs to merge", field="RUNS", value=len(paths))
    runs = [open_run(p) for p in paths]
    target = RunDir(out)
    if target.exists():
        raise InputError("merge output already exists", field="--out", value=str(target.path))
    manifests = [r.read_manifest() for r in runs]
    base = manifests[0]
    for run, m in zip(runs[1:], manifests[1:], strict=True):
        _same(base, m, runs[0], run)
    shards = [tuple(m.get("options", {}).get("shard") or ()) for m in manifests]
    if all(shards):
        counts = {n for _, n in shards}
        if len(counts) != 1:
            raise InputError("shards split the data differently", field="options.shard",
                             value=sorted(shards))
        n = counts.pop()
        dup = [k for k, c in Counter(k for k, _ in shards).items() if c > 1]
        if dup:
            raise InputError("shard given twice", field="RUNS", value=f"{dup[0]}/{n}")
        missing = sorted(set(range(1, n + 1)) - {k for k, _ in shards})
        if missing:
            raise InputError(f"missing shard(s) {', '.join(f'{k}/{n}' for k in missing)}",
                             field="RUNS", value=[str(r.path) for r in runs])
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    origin: dict[tuple[str, str, str], str] = {}
    for run in runs:
        for row in run.rows():
            key = row_key(row)
            if key in rows:
                raise InputError(f"item '{key[2]}' of {key[0]} · {key[1]} is in both "
                                 f"{origin[key]} and {run.run_id}", field="RUNS",
                                 value=key[2])
            rows[key] = row
            origin[key] = run.run_id
    expected = {name: sum(m["tasks"][name].get("n_items", 0) for m in manifests)
                for name in base["tasks"]}
    # a live cascade's large model answers the escalated items only; whether it answered all
    # of them is the cascade's own check (its summary entry's n_missing)
    partial = {c["large"] for c in base.get("cascades") or []}
    for (task, model), n_rows in Counter((k[0], k[1]) for k in rows).items():
        if n_rows != expected.get(task) and model not in partial:
            raise InputError(f"{task} · {model} has {n_rows} rows, the shards hold "
                             f"{expected.get(task)} items (a shard did not finish; resume it)",
                             field="RUNS", value=task)
    manifest = dict(base)
    manifest["run_id"] = target.run_id
    manifest["started_at"] = min(m["started_at"] for m in manifests)
    manifest["finished_at"] = max(m.get("finished_at") or "" for m in manifests) or None
    manifest["tasks"] = {name: {**info, "n_items": expected[name]}
                         for name, info in base["tasks"].items()}
    manifest["options"] = {**base.get("options", {}), "shard": None}
    manifest["timings"] = [t for m in manifests for t in m.get("timings", [])]
    manifest["merged_from"] = [{"run_id": r.run_id, "path": str(r.path),
                                "shard": m.get("options", {}).get("shard")}
                               for r, m in zip(runs, manifests, strict=True)]
    manifest["merged_at"] = now_iso()
    target.path.mkdir(parents=True)
    target.write_manifest(manifest)
    appender = JsonlAppender(target.items_path)
    for key in sorted(rows):
        appender.append(rows[key])
    appender.close()
    summary = build_summary(target)
    target.write_summary(summary)
    manifest["pricing"] = summary["pricing"]
    target.write_manifest(manifest)
    return target


def _same(a: dict[str, Any], b: dict[str, Any], ra: RunDir, rb: RunDir) -> None:
    where = f"{ra.run_id} vs {rb.run_id}"
    if set(a["tasks"]) != set(b["tasks"]):
        raise InputError(f"runs hold different tasks ({where})", field="tasks",
                         value=sorted(set(a["tasks"]) ^ set(b["tasks"])))
    for name, info in a["tasks"].items():
        other = b["tasks"][name]
        for key in ("spec_hash", "dataset_fingerprint"):
            if info.get(key) != other.get(key):
                raise InputError(f"task '{name}' differs between runs ({where})",
                                 field=f"tasks.{name}.{key}", value=other.get(key))
    if set(a["models"]) != set(b["models"]):
        raise InputError(f"runs hold different models ({where})", field="models",
                         value=sorted(set(a["models"]) ^ set(b["models"])))
    for name, info in a["models"].items():  # speed settings (n_threads...) may differ
        if semantic_settings(info.get("settings") or {}) != semantic_settings(
                b["models"][name].get("settings") or {}):
            raise InputError(f"model settings differ ({where})", field=f"models.{name}",
                             value=b["models"][name].get("settings"))
    oa, ob = a.get("options", {}), b.get("options", {})
    for key in PRICING_OPTIONS:
        if oa.get(key) != ob.get(key):
            raise InputError(f"pricing options differ ({where})", field=f"options.{key}",
                             value=ob.get(key))
    if a.get("seed") != b.get("seed"):
        raise InputError(f"seeds differ ({where})", field="seed", value=b.get("seed"))
    if (a.get("cascades") or []) != (b.get("cascades") or []):
        raise InputError(f"live cascades differ ({where})", field="cascades",
                         value=b.get("cascades"))
