"""Turn a :class:`TaskSpec` into items, through Hugging Face ``datasets``.

Loading goes through ``datasets`` so that local JSONL/CSV/Parquet files and hub ids behave the
same; everything after this module sees plain :class:`Item` objects. Gold answers are checked
against the label set here, because a gold label outside it would silently score as a miss.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
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


def load_items(spec: TaskSpec) -> LoadedTask:
    """Load the eval split (and the train split, if any) and validate every row."""
    from slmbench.tasks.kinds import get_kind

    kind = get_kind(spec.kind)
    ds = spec.dataset
    items = _load_split(spec, ds.split)
    if ds.limit is not None:
        items = items[: ds.limit]
    train = _load_split(spec, ds.train_split) if ds.train_split else []
    if spec.labels_from_train:
        labels = tuple(sorted({str(lab) for it in train for lab in kind.gold_labels(it.gold)}))
        if not labels:
            raise InputError("train split has no labels", file=spec.path, field="labels",
                             value="from_train")
        spec = spec.with_labels(labels)
    choices = spec.choices
    if choices is not None:
        allowed = set(choices)
        for split_name, rows in ((ds.split, items), (ds.train_split, train)):
            for it in rows:
                for label in kind.gold_labels(it.gold):
                    if label not in allowed:
                        raise InputError(
                            f"gold answer of item '{it.id}' in split '{split_name}' is not in "
                            f"the {kind.choice_noun}", file=_split_file(spec, split_name),
                            field=ds.columns[kind.gold_role], value=label)
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


def _split_file(spec: TaskSpec, split: str | None) -> str:
    if split and split in spec.dataset.files:
        return str(spec.dataset.files[split])
    return spec.dataset.hub or str(spec.path)


def _load_split(spec: TaskSpec, split: str) -> list[Item]:
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
        item_id = row.get(cols["id"]) if cols["id"] in row else None
        item_id = f"{split}-{i}" if item_id is None else str(item_id)
        if item_id in seen:
            raise InputError("duplicate item id", file=where, field=cols["id"], value=item_id)
        seen.add(item_id)
        text = row.get(cols["text"])
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"item '{item_id}' has no text", file=where, field=cols["text"],
                             value=text)
        items.append(Item(id=item_id, text=text, gold=kind.gold(spec, row, item_id, where)))
    return items


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
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    import datasets  # heavy: imported only when a task is actually loaded

    datasets.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    ds = spec.dataset
    try:
        if ds.files:
            path = ds.files[split]
            builder = DATA_FORMATS[path.suffix.lower()]
            data = datasets.load_dataset(builder, data_files={split: str(path)}, split=split)
        else:
            data = datasets.load_dataset(ds.hub, ds.config, split=split)
    except InputError:
        raise
    except Exception as exc:  # datasets raises many types; the user needs the file and reason
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"could not load split '{split}': {reason[:200]}",
                         file=_split_file(spec, split)) from None
    return [{k: _plain(v) for k, v in row.items()} for row in data.to_list()]


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
