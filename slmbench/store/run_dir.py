"""A run directory: ``items.jsonl`` (rows), ``summary.json`` (metrics), ``manifest.json`` (how).

Rows are the source of truth; summary and manifest can always be rebuilt from rows plus the
manifest's task descriptions, which is how ``report`` and ``reprice`` work without any model.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.store.files import JsonlAppender, ReadReport, atomic_write_json, iter_jsonl

ITEMS = "items.jsonl"
SUMMARY = "summary.json"
MANIFEST = "manifest.json"


KEY_FIELDS = frozenset({"task", "model", "item_id"})


def row_key(row: dict[str, Any]) -> tuple[str, str, str]:
    return (row["task"], row["model"], str(row["item_id"]))


def latest_rows(rows: Iterable[dict[str, Any]], fields: frozenset[str] | None = None
                ) -> list[dict[str, Any]]:
    """:meth:`RunDir.rows` of a stream of rows: the last row of each key, ``fields`` only."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for row in rows:
        if fields is not None:
            row = {k: v for k, v in row.items() if k in fields or k in KEY_FIELDS}
        latest[row_key(row)] = row
    return list(latest.values())


def check_run_id(run_id: str, option: str = "--run-id") -> str:
    """A run id names one folder inside the results folder: nothing that leaves it (a path
    separator, ``..``) or names the results folder itself (empty, ``.``)."""
    seps = {"/", "\\", *(s for s in (os.sep, os.altsep) if s)}
    if not run_id.strip() or run_id.strip() in (".", "..") or ".." in run_id \
            or any(sep in run_id for sep in seps) or "\0" in run_id:
        raise InputError("a run id is one folder name: not empty, no '/', '\\' or '..'",
                         field=option, value=run_id)
    return run_id


class RunDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.read_report = ReadReport()

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def items_path(self) -> Path:
        return self.path / ITEMS

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def exists(self) -> bool:
        return self.items_path.exists() or self.manifest_path.exists()

    def appender(self) -> JsonlAppender:
        return JsonlAppender(self.items_path)

    def iter_rows(self) -> Iterator[dict[str, Any]]:
        if not self.items_path.exists():
            return iter(())
        return iter_jsonl(self.items_path, self.read_report)

    def rows(self, fields: frozenset[str] | None = None) -> list[dict[str, Any]]:
        """Rows deduplicated by (task, model, item): a later row (a retry on resume) wins.

        ``fields`` keeps only those keys (plus the row key): summaries of a million rows do not
        need the input and output texts, which are most of a row's memory.
        """
        return latest_rows(self.iter_rows(), fields)

    def read_manifest(self) -> dict[str, Any]:
        return _read_json(self.manifest_path)

    def read_summary(self) -> dict[str, Any]:
        return _read_json(self.summary_path)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.manifest_path, manifest)

    def write_summary(self, summary: dict[str, Any]) -> None:
        atomic_write_json(self.summary_path, summary)


def open_run(path: str | Path) -> RunDir:
    """A stored run for reading; a clear error when the folder is not one."""
    run = RunDir(path)
    if not run.path.is_dir():
        raise InputError("run directory not found", file=run.path)
    if not run.manifest_path.exists():
        raise InputError(f"not a slmbench run (no {MANIFEST})", file=run.path)
    return run


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("file not found", file=path) from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"not valid JSON ({exc})", file=path) from None
    if not isinstance(data, dict):
        raise InputError("must hold a JSON object", file=path)
    return data
