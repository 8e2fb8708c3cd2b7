"""Turn a :class:`TaskSpec` into items, through Hugging Face ``datasets``.

Loading goes through ``datasets`` so that local JSONL/CSV/Parquet files and hub ids behave the
same; everything after this module sees plain :class:`Item` objects. Gold answers are checked
against the label set here, because a gold label outside it would silently score as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.tasks.spec import DATA_FORMATS, TaskSpec


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    gold: Any  # str label / route name; a dict of field values for extraction; for chain
    # {"label": str, "fields": dict of the class's field values}; other kinds: their own


@dataclass(frozen=True)
class LoadedTask:
    spec: TaskSpec
    items: tuple[Item, ...]
    train: tuple[Item, ...]
    fingerprint: str  # sha256 over the data files (or the hub dataset's fingerprint) + columns


def load_items(spec: TaskSpec, errors: list[InputError] | None = None) -> LoadedTask:
    """Load the eval split (and the train split, if any) and validate every row.

    With ``errors`` (a list), a bad row is appended to it and skipped instead of raised, so
    that ``slmbench validate`` names every bad row of a file at once."""
    from slmbench.tasks.kinds import get_kind

    kind = get_kind(spec.kind)
    ds = spec.dataset
    every = _load_split(spec, ds.split, errors)
    items = every[: ds.limit] if ds.limit is not None else every
    train = _load_split(spec, ds.train_split, errors) if ds.train_split else []
    if spec.labels_from_train:
        source = [*train, *every] if spec.labels_from_data else train
        labels = tuple(sorted({str(lab) for it in source for lab in kind.gold_labels(it.gold)}))
        if not labels:
            raise InputError("train split has no labels", file=spec.path, field="labels",
                             value="from_data" if spec.labels_from_data else "from_train")
        spec = spec.with_labels(labels)
    choices = spec.choices
    if choices is not None:
        allowed = set(choices)
        unseen = _unseen(kind, allowed, ((ds.split, items), (ds.train_split, train)))
        if unseen and spec.unseen_gold == "count_wrong" and all(
                s == ds.split for found in unseen.values() for s in found):
            spec = replace(spec, unseen_labels=tuple(sorted(unseen)))
        elif unseen:
            split_name = next(iter(next(iter(unseen.values()))))
            listed = "; ".join(f"'{lab}' ({', '.join(f'{n} in {s}' for s, n in found.items())})"
                               for lab, found in sorted(unseen.items()))
            fix = ("add them to labels or use labels: from_data (train plus test), or "
                   "unseen_gold: count_wrong (scored as wrong)") if \
                spec.unseen_gold != "count_wrong" else \
                "unseen_gold: count_wrong covers the eval split only, not train"
            raise InputError(f"{len(unseen)} gold answer(s) not in the {kind.choice_noun}: "
                             f"{listed}; {fix}", file=_split_file(spec, split_name),
                             field=ds.columns[kind.gold_role])
        for i, shot in enumerate(spec.few_shot):
            for answer in kind.shot_labels(spec, shot["answer"]):
                if answer not in allowed:
                    raise InputError("few-shot answer is not in the label set", file=spec.path,
                                     field=f"few_shot[{i}].answer", value=answer)
        kind.check_labels(spec, allowed)
    return LoadedTask(spec=spec, items=tuple(items), train=tuple(train),
                      fingerprint=_fingerprint(spec))


def sample_items(items: tuple[Item, ...] | list[Item], n: int, seed: int = 0,
                 key: Any = None) -> tuple[Item, ...]:
    """``n`` items drawn without replacement, stratified by gold, in their file order.

    ``--limit`` takes the head of the file, which on a file sorted by label covers a handful of
    classes; a proportional draw per class keeps the class mix of the whole split, and every
    class with an item gets at least one while ``n`` allows (largest remainder). ``key`` maps
    an item to its stratum (default: its gold as text; one stratum for dict golds).
    """
    import random

    if n < 1:
        raise InputError("must be at least 1", field="--sample", value=n)
    items = tuple(items)
    if n >= len(items):
        return items
    key = key or _stratum
    groups: dict[str, list[int]] = {}
    for i, it in enumerate(items):
        groups.setdefault(key(it), []).append(i)
    rng = random.Random(seed)
    names = sorted(groups)
    exact = {g: n * len(groups[g]) / len(items) for g in names}
    quota = {g: int(exact[g]) for g in names}
    # classes too rare for a whole share first (so every class appears while n allows), then
    # the largest remainders; ties broken by the seed, not by the label's spelling
    order = sorted(names, key=lambda g: (quota[g] > 0, -(exact[g] - quota[g]), rng.random()))
    for g in order[: n - sum(quota.values())]:
        quota[g] += 1
    chosen: list[int] = []
    for g in names:
        idx = list(groups[g])
        rng.shuffle(idx)
        chosen += idx[: quota[g]]
    return tuple(items[i] for i in sorted(chosen))


def _stratum(item: Item) -> str:
    gold = item.gold
    if isinstance(gold, str):
        return gold
    if isinstance(gold, (list, tuple)):
        return json.dumps(sorted(map(str, gold)))
    return ""


def validate_files(paths: list[Path]) -> tuple[list[str], list[InputError]]:
    """``slmbench validate``: an ``ok`` line per good file, and every error found (all bad
    rows of a file, every unseen label in one line; a broken spec is one error)."""
    from slmbench.tasks.spec import load_task

    lines: list[str] = []
    errors: list[InputError] = []
    names: dict[str, Path] = {}
    for path in paths:
        found: list[InputError] = []
        try:
            spec = load_task(path)
            task = load_items(spec, found)
        except InputError as exc:
            errors += [*found, exc]
            continue
        if task.spec.name in names:
            found.append(InputError(f"task name already used by {names[task.spec.name]}",
                                    file=path, field="name", value=task.spec.name))
        names.setdefault(task.spec.name, Path(path))
        if found:
            errors += found
            continue
        lines.append(f"ok  {task.spec.path}: {task.spec.kind}, {len(task.items)} items, "
                     f"{len(task.train)} train")
    return lines, errors


def _unseen(kind: Any, allowed: set[str], splits: Any) -> dict[str, dict[str, int]]:
    """Every gold label outside ``allowed``: label → split → item count (all of them, so
    one message lists every offending label, not the first)."""
    found: dict[str, dict[str, int]] = {}
    for split_name, rows in splits:
        for it in rows:
            for label in kind.gold_labels(it.gold):
                if label not in allowed:
                    per = found.setdefault(str(label), {})
                    per[split_name] = per.get(split_name, 0) + 1
    return found


def _split_file(spec: TaskSpec, split: str | None) -> str:
    if split and split in spec.dataset.files:
        return str(spec.dataset.files[split])
    return spec.dataset.hub or str(spec.path)


def _load_split(spec: TaskSpec, split: str, errors: list[InputError] | None = None
                ) -> list[Item]:
    from slmbench.tasks.kinds import get_kind

    kind = get_kind(spec.kind)
    ds = spec.dataset
    where = _split_file(spec, split)
    if ds.files:
        path = ds.files[split]
        if not path.exists():
            raise InputError("dataset file not found", file=spec.path,
                             field=f"dataset.files.{split}", value=str(path))
        if path.stat().st_size == 0:
            raise InputError("dataset file is empty", file=path)
        _precheck_text_file(path)
    rows = _read_with_datasets(spec, split)
    if not rows:
        raise InputError(f"split '{split}' has no rows", file=where)
    cols = ds.columns
    first = rows[0]
    for role in kind.columns:
        if role != "id" and cols[role] not in first:
            if role in kind.optional_columns:
                continue  # e.g. extraction gold may be spread over one column per field
            raise InputError(f"column for '{role}' not found (columns: {', '.join(first)})",
                             file=where, field=f"dataset.columns.{role}", value=cols[role])
    items: list[Item] = []
    seen: set[str] = set()
    for i, row in enumerate(rows):
        try:
            item_id = row.get(cols["id"]) if cols["id"] in row else None
            item_id = f"{split}-{i}" if item_id is None else str(item_id)
            if item_id in seen:
                raise InputError("duplicate item id", file=where, field=cols["id"],
                                 value=item_id)
            seen.add(item_id)
            text = row.get(cols["text"])
            if not isinstance(text, str) or not text.strip():
                raise InputError(f"item '{item_id}' has no text", file=where,
                                 field=cols["text"], value=text)
            gold = kind.gold(spec, row, item_id, where)
        except InputError as exc:
            if errors is None:
                raise
            errors.append(exc)  # validate: every bad row of the file, not the first
            continue
        if spec.label_map:
            gold = _renamed(gold, spec.label_map)
        items.append(Item(id=item_id, text=text, gold=gold))
    return items


def _renamed(gold: Any, label_map: dict[str, str]) -> Any:
    """``label_map`` applied to a gold label, or to each label of a list gold."""
    if isinstance(gold, str):
        return label_map.get(gold, gold)
    if isinstance(gold, (list, tuple)):
        return type(gold)(label_map.get(g, g) if isinstance(g, str) else g for g in gold)
    return gold


def _precheck_text_file(path: Path) -> None:
    """Catch the two commonest broken files with a precise message before ``datasets`` does."""
    if path.suffix.lower() == ".parquet":
        return
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError(f"line {lineno} is not UTF-8 (re-save the file as UTF-8)",
                                 file=path) from None
            if path.suffix.lower() == ".jsonl" and line.strip():
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(f"line {lineno} is not JSON ({exc.msg})", file=path,
                                     value=line.strip()[:60]) from None
                if not isinstance(obj, dict):
                    raise InputError(f"line {lineno} is not a JSON object", file=path,
                                     value=obj)


def _read_with_datasets(spec: TaskSpec, split: str) -> list[dict]:
    ds = spec.dataset
    if ds.files:
        path = ds.files[split]
        return _load_quietly(DATA_FORMATS[path.suffix.lower()], path, split,
                             _split_file(spec, split))
    return _load_quietly(None, None, split, _split_file(spec, split), hub=(ds.hub, ds.config))


def _load_quietly(builder: str | None, path: Path | None, split: str, where: str,
                  hub: tuple[str | None, str | None] | None = None) -> list[dict]:
    """Rows of one split through ``datasets``, with its logging and progress bars off; a
    failure becomes one line with the underlying reason (a ragged CSV's "Expected 2 fields in
    line 3, saw 3" is the *cause* of datasets' generic "An error occurred while generating the
    dataset", and was only visible as a stray log line)."""
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import logging

    import datasets  # heavy: imported only when a task is actually loaded

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    for name in ("datasets", "datasets.builder", "datasets.packaged_modules"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    try:
        if path is not None and builder is not None:
            data = datasets.load_dataset(builder, data_files={split: str(path)}, split=split)
        else:
            data = datasets.load_dataset(hub[0], hub[1], split=split)
    except InputError:
        raise
    except Exception as exc:  # datasets raises many types; the user needs the file and reason
        raise InputError(f"could not load split '{split}': {_root_reason(exc)[:200]}",
                         file=where) from None
    return [{k: _plain(v) for k, v in row.items()} for row in data.to_list()]


def _root_reason(exc: BaseException) -> str:
    """The first line of the innermost explicit cause (what actually went wrong)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__


def _plain(value: Any) -> Any:
    """Undo Arrow's type inference where it changes what the file says.

    Arrow reads "2026-12-20" in a JSON file as a timestamp; gold values must stay the text the
    user wrote, so dates go back to ISO strings (date only when the time is midnight).
    """
    import datetime as dt

    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0) and value.tzinfo is None:
            return value.date().isoformat()
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _fingerprint(spec: TaskSpec) -> str:
    h = hashlib.sha256()
    ds = spec.dataset
    if ds.files:
        for split in sorted(ds.files):
            h.update(split.encode())
            h.update(hashlib.sha256(ds.files[split].read_bytes()).digest())
    else:
        h.update(f"{ds.hub}|{ds.config}".encode())
    h.update(json.dumps(ds.columns, sort_keys=True).encode())
    h.update(f"{ds.split}|{ds.train_split}|{ds.limit}".encode())
    return h.hexdigest()
