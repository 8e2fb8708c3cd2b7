"""Crash-safe file primitives: append-and-flush rows, atomic JSON, a reader that survives a torn
last line (what SIGKILL mid-write leaves behind).

The reader is the one way rows of ``items.jsonl`` come back (reports, gates, resumes, merges,
the columnar summary), so it also checks each row against the row format
(:func:`slmbench.records.row_problem`): a hand-edited or foreign row with a missing key or a
value of the wrong type stops the read with one line naming the file, the line and the field,
instead of a traceback from whatever reads the value first, or a value silently misread."""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Container, Iterator
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.records import row_problem


def _umask() -> int:
    """The process umask, read without changing it where the system says it (Linux); setting
    it to read it back would race with files other threads create meanwhile."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: every file of a run is created as ``open()`` creates items.jsonl: 0666 less the umask
#: (results hold no secrets); mkstemp alone would make summary.json and manifest.json 0600
FILE_MODE = 0o666 & ~_umask()


def atomic_write_json(path: Path, data: Any) -> None:
    """Write to a temp file in the same folder, fsync, rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        if hasattr(os, "fchmod"):  # POSIX
            os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, ensure_ascii=False, sort_keys=False, default=str)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class JsonlAppender:
    """One writer per file; each row is one ``write`` + ``flush`` so a kill loses at most it."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._repair_torn_tail(path)
        self._fh = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    @staticmethod
    def _repair_torn_tail(path: Path) -> None:
        """Terminate a torn last line so the next row starts on a line of its own."""
        if path.exists() and path.stat().st_size:
            with path.open("rb+") as fh:
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")

    def append(self, row: dict[str, Any]) -> None:
        line = json.dumps(row, ensure_ascii=False, default=str) + "\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if not self._fh.closed:
                self._fh.flush()
                os.fsync(self._fh.fileno())
                self._fh.close()


class ReadReport:
    """The lines a read skipped. A file read twice through one report (a resume reads the rows,
    then the summary reads them again) lists each torn line once."""

    def __init__(self) -> None:
        self.skipped_lines: list[int] = []

    def skip(self, lineno: int) -> None:
        if lineno not in self.skipped_lines:
            self.skipped_lines.append(lineno)


def iter_jsonl(path: Path, report: ReadReport | None = None) -> Iterator[dict[str, Any]]:
    """Stream rows; lines that are not JSON objects (a torn write) are skipped and reported."""
    for _, row in iter_numbered_jsonl(path, report):
        yield row


def iter_numbered_jsonl(path: Path, report: ReadReport | None = None,
                        only: Container[int] | None = None
                        ) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, row) of each row :func:`iter_jsonl` gives; with ``only``, just the rows on
    those lines (the others are not parsed): a second look at a few rows of a large file."""
    with path.open("r", encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, start=1):
            if only is not None and lineno not in only:
                continue
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            if not isinstance(row, dict):
                if report is not None:
                    report.skip(lineno)
                continue
            problem = row_problem(row)
            if problem is not None:
                field, value, must = problem
                raise InputError(f"line {lineno}: {field} {must}", file=path, field=field,
                                 value=value if field in row else ...)
            yield lineno, row
