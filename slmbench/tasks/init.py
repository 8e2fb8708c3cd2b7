"""``slmbench init DATA --kind ...``: a task YAML written from a data file, so that the first
run does not start with hand-writing YAML.

The file is read through ``datasets`` (as every task is), the text and label columns are
proposed from their names and contents unless given, and the label set, the prompt listing it
and, when the file has no split of its own, a stratified seeded train/test split come from the
data. The YAML is then validated by the same loader ``slmbench validate`` uses, so what init
writes is known to load. Data that cannot make a task (no text column, one label, a label with
fewer than two items, which a stratified split cannot place in both halves) is refused with one
line naming the file and the column.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from slmbench.errors import InputError
from slmbench.tasks.spec import DATA_FORMATS

INIT_KINDS = ("classification", "routing", "extraction")
TEXT_NAMES = ("text", "sentence", "utterance", "query", "question", "message", "input",
              "content", "prompt", "document")
LABEL_NAMES = ("label", "intent", "category", "class", "target", "route", "labels", "topic")
ID_NAMES = ("id", "item_id", "uid", "guid")
TEST_SHARE = 0.2


@dataclass(frozen=True)
class InitResult:
    task_path: Path
    text: str
    label: str | None
    n_train: int
    n_test: int
    labels: tuple[str, ...]
    next_commands: tuple[str, ...]


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Every row of a CSV/JSONL/Parquet file, through ``datasets`` (quiet)."""
    builder = DATA_FORMATS.get(path.suffix.lower())
    if builder is None:
        raise InputError(f"unsupported file type (use {', '.join(DATA_FORMATS)})",
                         file=path)
    if not path.exists():
        raise InputError("data file not found", file=path)
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    from slmbench.tasks.loading import _load_quietly

    return _load_quietly(builder, path, "train", str(path))


def propose_columns(rows: list[dict[str, Any]], text: str | None, label: str | None,
                    kind: str, where: Path) -> tuple[str, str | None, str | None]:
    """(text, label, id) columns: the given ones (checked), else proposed by name, then by
    content (the longest strings are the text; a few repeated values are the label)."""
    columns = list(rows[0])

    def check(col: str, option: str) -> str:
        if col not in columns:
            raise InputError(f"column not found (columns: {', '.join(columns)})", file=where,
                             field=option, value=col)
        return col

    def by_name(names: tuple[str, ...], exclude: set[str]) -> str | None:
        lower = {c.lower(): c for c in columns if c not in exclude}
        return next((lower[n] for n in names if n in lower), None)

    id_col = by_name(ID_NAMES, set())
    if text is not None:
        text_col = check(text, "--text")
    else:
        text_col = by_name(TEXT_NAMES, {id_col} if id_col else set())
        if text_col is None:
            strings = [c for c in columns if c != id_col
                       and all(isinstance(r.get(c), str) for r in rows[:200])]
            if not strings:
                raise InputError("no text column: no column holds strings (give --text)",
                                 file=where, field="--text")
            text_col = max(strings, key=lambda c: sum(len(r[c]) for r in rows[:200]))
    if kind == "extraction":
        return text_col, None, id_col
    if label is not None:
        return text_col, check(label, "--label"), id_col
    label_col = by_name(LABEL_NAMES, {text_col, id_col} - {None})
    if label_col is None:
        candidates = [c for c in columns if c not in (text_col, id_col)]
        scored = [(len({str(r.get(c)) for r in rows}), c) for c in candidates]
        scored = [(n, c) for n, c in scored if 1 < n <= max(2, len(rows) // 2)]
        if not scored:
            raise InputError("no label column found (give --label)", file=where,
                             field="--label")
        label_col = min(scored)[1]
    return text_col, label_col, id_col


def check_labels(counts: Counter, where: Path, label_col: str) -> None:
    """One label, or labels too rare to appear in both train and test, make no task."""
    if len(counts) < 2:
        raise InputError(f"only one label ({next(iter(counts), 'none')}): a classifier needs "
                         "at least two", file=where, field=label_col)
    rare = sorted(lab for lab, n in counts.items() if n < 2)
    if rare:
        raise InputError(f"{len(rare)} label(s) have fewer than 2 items (a stratified split "
                         f"needs 2): {', '.join(rare)}", file=where, field=label_col)


def stratified_split(rows: list[dict[str, Any]], key: str | None, seed: int,
                     test_share: float = TEST_SHARE) -> tuple[list[dict], list[dict]]:
    """Seeded train/test split keeping each label's share (every label in both halves)."""
    import random

    rng = random.Random(seed)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(str(row.get(key)) if key else "", []).append(i)
    test: set[int] = set()
    for name in sorted(groups):
        idx = groups[name]
        rng.shuffle(idx)
        k = max(1, round(len(idx) * test_share)) if len(idx) > 1 else 0
        test.update(idx[:min(k, len(idx) - 1)] if len(idx) > 1 else [])
    return ([r for i, r in enumerate(rows) if i not in test],
            [r for i, r in enumerate(rows) if i in test])


def _field_type(values: list[Any]) -> str:
    seen = [v for v in values if v is not None]
    if seen and all(isinstance(v, bool) for v in seen):
        return "boolean"
    if seen and all(isinstance(v, int) and not isinstance(v, bool) for v in seen):
        return "integer"
    if seen and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in seen):
        return "number"
    if any(isinstance(v, list) for v in seen):
        return "list"
    return "string"


def init_task(data: str | Path, kind: str, *, text: str | None = None,
              label: str | None = None, out: str | Path | None = None,
              seed: int = 0, force: bool = False) -> InitResult:
    """Write a task YAML (and, for a file without split, its train/test files) for ``data``,
    validate it, and say what to run next. A file already there is a user's (perhaps an
    edited task): it is replaced only with ``force``."""
    data = Path(data)
    if kind not in INIT_KINDS:
        raise InputError(f"must be one of {', '.join(INIT_KINDS)}", field="--kind", value=kind)
    rows = read_rows(data)
    if not rows:
        raise InputError("the file has no rows", file=data)
    text_col, label_col, id_col = propose_columns(rows, text, label, kind, data)
    empty = sum(1 for r in rows if not isinstance(r.get(text_col), str)
                or not r[text_col].strip())
    if empty == len(rows):
        raise InputError("no text column: every value is empty or not text", file=data,
                         field=text_col)
    name = data.stem.replace(" ", "-").replace("_", "-")
    out_path = Path(out) if out is not None else data.with_name(f"{name}.task.yaml")
    out_dir = out_path.parent
    labels: tuple[str, ...] = ()
    if label_col is not None:
        for r in rows:
            if r.get(label_col) is None or not str(r.get(label_col)).strip():
                raise InputError("a row has no label", file=data, field=label_col,
                                 value=r.get(id_col) if id_col else None)
        counts = Counter(str(r[label_col]) for r in rows)
        check_labels(counts, data, label_col)
        labels = tuple(sorted(counts))
    split_col = next((c for c in rows[0] if c.lower() == "split"), None)
    if split_col is not None and {"train", "test"} <= {str(r[split_col]) for r in rows}:
        train = [r for r in rows if str(r[split_col]) == "train"]
        test = [r for r in rows if str(r[split_col]) == "test"]
    else:
        train, test = stratified_split(rows, label_col, seed)
    targets = [out_path, *(out_dir / f"{name}_{split}.jsonl" for split in ("train", "test"))]
    there = [str(t) for t in targets if t.exists()]
    if there and not force:
        raise InputError("would overwrite an existing file (give --force to replace it, or "
                         "--out for another task file)", file=there[0],
                         value=", ".join(there[1:]) or None)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for split, part in (("train", train), ("test", test)):
        path = out_dir / f"{name}_{split}.jsonl"
        with path.open("w", encoding="utf-8") as fh:
            for r in part:
                fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        files[split] = os.path.relpath(path, out_dir)
    columns: dict[str, str] = {"text": text_col}
    if id_col:
        columns["id"] = id_col
    doc: dict[str, Any] = {"name": name, "kind": kind,
                           "description": f"Written by slmbench init from {data.name}."}
    dataset: dict[str, Any] = {"files": files, "split": "test", "train_split": "train",
                               "columns": columns}
    doc["dataset"] = dataset
    if kind == "classification":
        columns["label"] = label_col or "label"
        doc["labels"] = list(labels)
        doc["prompt"] = {"instruction": "Classify the text into exactly one of these labels:\n"
                         "{labels}\nAnswer with the label only.",
                         "template": "Text: {text}"}
    elif kind == "routing":
        columns["label"] = label_col or "label"
        doc["routes"] = [{"name": lab, "description": "", "target": lab} for lab in labels]
        doc["fallback"] = Counter(str(r[label_col]) for r in rows).most_common(1)[0][0]
        doc["prompt"] = {"template": "Request: {text}"}
    else:
        skip = {text_col, id_col, split_col}
        doc["fields"] = [{"name": c, "type": _field_type([r.get(c) for r in rows[:500]])}
                         for c in rows[0] if c not in skip]
        if not doc["fields"]:
            raise InputError("no field columns besides the text: nothing to extract",
                             file=data)
        doc["prompt"] = {"template": "Text: {text}"}
    out_path.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True),
                        encoding="utf-8")
    from slmbench.tasks.loading import load_items
    from slmbench.tasks.spec import load_task

    loaded = load_items(load_task(out_path))  # what `slmbench validate` checks
    return InitResult(task_path=out_path, text=text_col, label=label_col,
                      n_train=len(loaded.train), n_test=len(loaded.items), labels=labels,
                      next_commands=(f"slmbench validate {out_path}",
                                     f"slmbench run {out_path} -m baseline:tfidf-logreg "
                                     "-m llamacpp:smollm2"))


def init_command(data: Path, kind: str, text: str | None, label: str | None,
                 out: Path | None, seed: int, force: bool = False) -> None:
    """What ``slmbench init`` prints."""
    import typer

    res = init_task(data, kind, text=text, label=label, out=out, seed=seed, force=force)
    label_text = f", label column '{res.label}' ({len(res.labels)} labels)" if res.label else ""
    typer.echo(f"wrote {res.task_path}: text column '{res.text}'{label_text}, "
               f"{res.n_train} train / {res.n_test} test items")
    typer.echo("next:")
    for cmd in res.next_commands:
        typer.echo(f"  {cmd}")
