"""Columnar, streaming read of ``items.jsonl``: what a summary of a task of a kind with a
columnar layout (classification, routing: ``TaskKind.columnar``) needs, a few typed values per
row instead of the row.

:meth:`RunDir.rows` keeps every row as a dict: about 2.4 GB for a million rows, while the
summary of a label task reads only a handful of scalars from each. This module streams the
file once and keeps, per row (63 bytes, ``array.array`` while reading, numpy after):

=====================================  =======  ==========================================
column                                 type     value
=====================================  =======  ==========================================
``pair``                               int16    code of (task, model)
``gold``, ``pred``                     int32    codes of the gold string and of what the row
                                                predicted (the kind's ``predicted_label``), one
                                                vocabulary, so equal codes are equal strings
``flags``                              uint8    ``correct``, ``invalid``, ``error``,
                                                ``cached``, ``truncated`` bits
                                                (:data:`CORRECT`, ...)
``latency``                            float64  ``latency_s``, NaN for ``null``
``cpu``                                float64  ``cpu_s``, NaN for ``null`` or absent
``confidence``                         float64  the checked ``confidence``, NaN for ``null``
``tokens_in``, ``tokens_out``,         int32    -1 for ``null`` (a count of 2**31 or more
``cached_tokens_in``,                           is not held: row path)
``reasoning_tokens``,
``cache_write_tokens``
``token_source``, ``confidence_source`` int16   codes of the source strings, -1 for none
``line``                               uint32   the row's line in ``items.jsonl``
=====================================  =======  ==========================================

and, while reading, a 64-bit hash of the row key (task, model, item id) (8 bytes more). Rows
are deduplicated exactly as :meth:`RunDir.rows` does (the last row of a key wins): numpy finds
the hashes that occur more than once, and only the rows with such a hash are read again (by
line number) to compare their exact keys, so a hash collision never merges two items. Torn
lines are skipped and reported by the same reader (:mod:`slmbench.store.files`). The line
number stays after the read because an error text is too varied to intern in a column: the
few pairs whose rows are mostly failed calls read their error texts again by line
(:meth:`PairColumns.error_texts`), which is what names the reason a model could not run.

The figures are computed by the same scoring and costing functions as the row path (they take
int-coded arrays and :class:`~slmbench.pricing.run_costs.CostColumns`), and must equal it
(tests/test_columnar_summary.py). A row these columns cannot hold exactly (a label that is not
a string, a confidence outside [0, 1], a token count that is not a whole number, a negative
latency, ...) raises :class:`ColumnarUnsupported`: :func:`~slmbench.analysis.summary.build_summary`
then summarises the run from row dicts, which gives that path's figures or its error. So does a
gold that is not one of the task's labels (``golds``): a corrupt row, which the row path names
in an InputError (:func:`~slmbench.analysis.summary.check_rows`).
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable, Container, Iterable, Iterator
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.pricing.run_costs import CostColumns
from slmbench.scoring.calibration import check_confidence
from slmbench.store.files import ReadReport, iter_numbered_jsonl
from slmbench.store.run_dir import latest_rows, row_key
from slmbench.tasks.kinds import find_kind


def is_columnar(kind: Any) -> bool:
    """Whether the rows of a task of this kind fit these columns (one label string of gold and
    prediction per row)."""
    found = find_kind(kind)
    return found is not None and found.columnar


CORRECT, INVALID, ERROR, CACHED, TRUNCATED = 1, 2, 4, 8, 16  # bits of the ``flags`` column

TOKENS = ("tokens_in", "tokens_out", "cached_tokens_in")
_MAX_TOKENS = 2**31  # per row, so that the counts fit int32 and their int64 sums cannot overflow
_MAX_LATENCY = 2.0**53

# column → array.array type code (numpy dtype of the same width)
LAYOUT = {"pair": "h", "gold": "i", "pred": "i", "flags": "B", "latency": "d", "cpu": "d",
          "confidence": "d", "tokens_in": "i", "tokens_out": "i", "cached_tokens_in": "i",
          "reasoning_tokens": "i", "cache_write_tokens": "i", "token_source": "h",
          "confidence_source": "h"}
_DTYPES = {"i": "int32", "B": "uint8", "d": "float64", "q": "int64", "h": "int16", "I": "uint32"}
_MAX_PAIRS = 2**15 - 1

_ROWS, _SKIP = -1, -2  # pair codes of pairs summarised from row dicts, and of unknown tasks

# 64 bits of a row key (task, model, str(item id)): Python's own hash, the same for equal keys
# within one process, which is all deduplication needs (tests replace it to force collisions)
_key_hash: Callable[[tuple[str, str, str]], int] = hash


class ColumnarUnsupported(Exception):
    """A row the columns cannot hold exactly: the run is summarised from row dicts instead."""


class _Any:
    """Holds every value: the gold values of a pair when :class:`ColumnReader` checks none."""

    def __contains__(self, value: object) -> bool:
        return True


_ANY = _Any()


class PairColumns(CostColumns):
    """The deduplicated rows of one task × model, column by column (numpy, file order)."""

    def __init__(self, columns: Columns, code: int, index: Any) -> None:
        self.task, self.model, self.kind = columns.pairs[code]
        self.strings = columns.strings
        self.sources = columns.sources
        self.path = columns.path
        self._data = columns.data
        self._index = index  # row positions in the run's columns; None: all of them

    def __len__(self) -> int:
        return len(self._data["pair"]) if self._index is None else len(self._index)

    def col(self, name: str) -> Any:
        values = self._data[name]
        return values if self._index is None else values[self._index]

    def flag(self, bit: int) -> Any:
        """Bool array: the rows with that :data:`CORRECT` / ... bit."""
        return (self.col("flags") & bit) != 0

    def count(self, bit: int) -> int:
        import numpy as np

        return int(np.count_nonzero(self.col("flags") & bit))

    def latency_values(self) -> Any:
        """The latencies that are not ``null``."""
        import numpy as np

        lat = self.col("latency")
        return lat[~np.isnan(lat)]

    def total(self, name: str) -> int:
        """Sum of a token column, ``null`` counting 0."""
        import numpy as np

        return int(np.maximum(self.col(name), 0).sum(dtype=np.int64))

    def reported_total(self, name: str) -> int | None:
        """Sum of a token column over the rows that report it; ``None`` when none does (an
        old run, or a provider that does not say), which a 0 would misstate."""
        import numpy as np

        values = self.col(name)
        has = values >= 0
        return int(values[has].sum(dtype=np.int64)) if has.any() else None

    def error_texts(self) -> list[Any]:
        """The ``error`` values of the rows with the :data:`ERROR` bit, read again from
        ``items.jsonl`` by line (file order)."""
        import numpy as np

        lines = self.col("line")[self.flag(ERROR)]
        if self.path is None or not len(lines):
            return []
        wanted = set(np.unique(lines).tolist())
        found = {n: row.get("error") for n, row in iter_numbered_jsonl(self.path, ReadReport(),
                                                                       only=wanted)}
        return [found[n] for n in lines.tolist() if n in found]

    def source_names(self, name: str) -> set[str]:
        """The distinct ``token_source`` / ``confidence_source`` strings of these rows."""
        import numpy as np

        codes = self.col(name)
        return {self.sources[c] for c in np.unique(codes[codes >= 0]).tolist()}

    # CostColumns
    def tokens(self) -> tuple[Any, Any, Any]:
        import numpy as np

        return tuple(np.maximum(self.col(name), 0) for name in TOKENS)

    def cache_write_tokens(self) -> Any:
        import numpy as np

        return np.maximum(self.col("cache_write_tokens"), 0)

    def latencies(self) -> Any:
        import numpy as np

        lat = self.col("latency")
        return np.where(np.isnan(lat), 0.0, lat)

    def cpu_seconds(self) -> Any:
        return self.col("cpu")

    def n_correct(self) -> int:
        return self.count(CORRECT)


class Columns:
    """A run's deduplicated columnar rows (:data:`LAYOUT`) and their vocabularies."""

    def __init__(self, data: dict[str, Any], pairs: list[tuple[str, str, str]],
                 strings: list[str], sources: list[str], path: Path | None = None) -> None:
        self.data = data
        self.pairs = pairs  # code → (task, model, kind)
        self.strings = strings  # code → gold / predicted string
        self.sources = sources  # code → token or confidence source
        self.path = path  # the file read: error texts are read again from it

    def __len__(self) -> int:
        return len(self.data["pair"])

    def by_pair(self) -> Iterator[PairColumns]:
        import numpy as np

        if len(self.pairs) == 1:
            yield PairColumns(self, 0, None)
            return
        pair = self.data["pair"]
        order = np.argsort(pair, kind="stable")  # file order within each pair
        ends = np.cumsum(np.bincount(pair, minlength=len(self.pairs))).tolist()
        start = 0
        for code, end in enumerate(ends):
            if end > start:
                yield PairColumns(self, code, order[start:end])
            start = end


class _Vocab:
    def __init__(self, limit: int) -> None:
        self.codes: dict[str, int] = {}
        self.strings: list[str] = []
        self.limit = limit

    def add(self, value: str) -> int:
        if len(self.strings) >= self.limit:
            raise ColumnarUnsupported("too many distinct strings for the column's type")
        self.codes[value] = code = len(self.strings)
        self.strings.append(value)
        return code


class ColumnReader:
    """Turns a stream of (line number, row) into :class:`Columns`.

    ``plan(task, model)`` says what to do with a pair's rows: a kind for which
    :func:`is_columnar` holds keeps them as columns, ``"rows"`` passes them on (from
    :meth:`take`) for the row path, ``None`` drops them (a task the manifest does not know).
    ``golds(task)``, when given, is the set of gold values a columnar task's rows may hold: a
    row with any other gold raises :class:`ColumnarUnsupported`.
    """

    def __init__(self, plan: Callable[[str, str], str | None],
                 golds: Callable[[str], Container[str]] | None = None) -> None:
        self.plan = plan
        self.golds = golds
        self.allowed: list[Container[str]] = []  # pair code → gold values its rows may hold
        self.predict: list[Callable[[dict[str, Any]], str]] = []  # pair code → its prediction
        self.pair_codes: dict[tuple[str, str], int] = {}
        self.pairs: list[tuple[str, str, str]] = []
        self.labels = _Vocab(2**31 - 1)
        self.sources = _Vocab(2**15 - 1)
        self.cols = {name: array(code) for name, code in LAYOUT.items()}
        self.hashes = array("q")
        self.lines = array("I")

    def take(self, numbered: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        """Keep the rows of columnar pairs; yield the rows of the others."""
        try:
            yield from self._take(numbered)
        except OverflowError:  # a line number, or a vocabulary, past its column's type
            raise ColumnarUnsupported("a value too large for its column") from None

    def _take(self, numbered: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[dict[str, Any]]:
        nan = math.nan
        key_hash = _key_hash
        pair_codes, allowed, predict = self.pair_codes, self.allowed, self.predict
        labels, label_codes = self.labels, self.labels.codes
        source_code = self._source_code
        count = _count
        c = self.cols
        add_hash, add_line = self.hashes.append, self.lines.append
        add_pair, add_gold, add_pred = c["pair"].append, c["gold"].append, c["pred"].append
        add_flags, add_lat, add_conf = c["flags"].append, c["latency"].append, \
            c["confidence"].append
        add_tin, add_tout, add_tcached = (c["tokens_in"].append, c["tokens_out"].append,
                                          c["cached_tokens_in"].append)
        add_tsrc, add_csrc = c["token_source"].append, c["confidence_source"].append
        add_cpu = c["cpu"].append
        add_reason, add_cwrite = c["reasoning_tokens"].append, c["cache_write_tokens"].append
        for lineno, row in numbered:
            task, model = row.get("task"), row.get("model")
            if type(task) is not str or type(model) is not str or "item_id" not in row:
                raise ColumnarUnsupported("a row without a string task and model, or without "
                                          "an item_id")
            code = pair_codes.get((task, model))
            if code is None:
                code = self._new_pair(task, model)
            if code < 0:
                if code == _ROWS:
                    yield row
                continue
            gold = row.get("gold")
            pred = predict[code](row)
            if type(gold) is not str or type(pred) is not str:
                raise ColumnarUnsupported("a gold or predicted label that is not a string")
            if gold not in allowed[code]:
                raise ColumnarUnsupported("a gold that is not one of the task's labels")
            add_hash(key_hash((task, model, str(row["item_id"]))))
            add_line(lineno)
            add_pair(code)
            g = label_codes.get(gold)
            add_gold(labels.add(gold) if g is None else g)
            p = label_codes.get(pred)
            add_pred(labels.add(pred) if p is None else p)
            add_flags((CORRECT if row.get("correct") else 0) | (INVALID if row.get("invalid")
                                                                else 0)
                      | (ERROR if row.get("error") else 0) | (CACHED if row.get("cached") else 0)
                      | (TRUNCATED if row.get("truncated") else 0))
            lat = row.get("latency_s")
            if lat is None:
                lat = nan
            elif type(lat) is not float or not 0.0 <= lat < _MAX_LATENCY:
                lat = _latency(lat)
            add_lat(lat)
            cpu = row.get("cpu_s")
            add_cpu(nan if cpu is None else cpu if type(cpu) is float and 0.0 <= cpu < _MAX_LATENCY
                    else _latency(cpu))
            conf = row.get("confidence")
            if conf is None:
                add_conf(nan)
                add_csrc(-1)
            else:
                add_conf(conf if type(conf) is float and 0.0 < conf <= 1.0 else _confidence(conf))
                add_csrc(source_code(row.get("confidence_source")))
            add_tsrc(source_code(row.get("token_source")))
            add_tin(count(row.get("tokens_in")))
            add_tout(count(row.get("tokens_out")))
            add_tcached(count(row.get("cached_tokens_in")))
            add_reason(count(row.get("reasoning_tokens")))
            add_cwrite(count(row.get("cache_write_tokens")))

    def _new_pair(self, task: str, model: str) -> int:
        kind = self.plan(task, model)
        if is_columnar(kind):
            if len(self.pairs) >= _MAX_PAIRS:
                raise ColumnarUnsupported("more task × model pairs than the pair column holds")
            code = len(self.pairs)
            self.pairs.append((task, model, kind))
            self.predict.append(find_kind(kind).predicted_label)
            self.allowed.append(_ANY if self.golds is None else self.golds(task))
        else:
            code = _SKIP if kind is None else _ROWS
        self.pair_codes[(task, model)] = code
        return code

    def _source_code(self, value: Any) -> int:
        if not value:  # the row path keeps only truthy sources
            return -1
        if type(value) is not str:
            raise ColumnarUnsupported("a token or confidence source that is not a string")
        code = self.sources.codes.get(value)
        return self.sources.add(value) if code is None else code

    def finish(self, path: Path) -> Columns:
        """The deduplicated columns (``path``: the file read, to re-read rows whose key hash
        is shared)."""
        import numpy as np

        hashes = np.frombuffer(self.hashes, dtype=np.int64) if self.hashes else \
            np.zeros(0, np.int64)
        keep = _latest(path, hashes, self.lines)
        del hashes
        self.cols["line"] = self.lines
        self.hashes, self.lines = array("q"), array("I")
        data = {}
        for name in list(self.cols):
            values = self.cols.pop(name)  # one column at a time: the copy is one column
            arr = (np.frombuffer(values, dtype=_DTYPES[values.typecode]) if values
                   else np.zeros(0, dtype=_DTYPES[values.typecode]))
            data[name] = arr if keep is None else arr[keep]
            del values, arr
        return Columns(data, self.pairs, self.labels.strings, self.sources.strings, path)


def _count(value: Any) -> int:
    """A token count as stored in its column: -1 for ``null``."""
    if value is None:
        return -1
    if type(value) is not int or not 0 <= value < _MAX_TOKENS:
        raise ColumnarUnsupported(f"a token count that is not a whole number: {value!r}")
    return value


def _latency(value: Any) -> float:
    if type(value) is int and 0 <= value < _MAX_LATENCY:
        return float(value)
    raise ColumnarUnsupported(f"a latency that is not a non-negative number: {value!r}")


def _confidence(value: Any) -> float:
    try:
        return check_confidence(value)  # type: ignore[return-value]  # not None here
    except InputError:
        raise ColumnarUnsupported("a confidence outside [0, 1]") from None


def _latest(path: Path, hashes: Any, lines: array) -> Any:
    """Which rows to keep (bool mask; ``None``: all): the last row of each row key.

    Rows whose key hash is unique are unique. Only the rows of a shared hash, usually the
    retries of a resumed run, are read again from ``path`` by line number, and grouped by
    their exact key: a collision of two different keys keeps both.
    """
    import numpy as np

    n = len(hashes)
    if n < 2:
        return None
    ranked = np.sort(hashes)
    if not (ranked[1:] == ranked[:-1]).any():  # the usual case: nothing to resolve
        return None
    del ranked
    order = np.argsort(hashes, kind="stable")
    ranked = hashes[order]
    same = ranked[1:] == ranked[:-1]
    del ranked
    shared = np.zeros(n, dtype=bool)
    shared[1:] = same
    shared[:-1] |= same
    rows = np.sort(order[shared])
    del order, shared, same
    line_of = np.frombuffer(lines, dtype=np.uint32)[rows]
    keys = list(_keys_at(path, line_of))
    latest: dict[tuple[str, str, str], int] = {}
    for i, key in zip(rows.tolist(), keys, strict=True):
        latest[key] = i
    keep = np.ones(n, dtype=bool)
    keep[rows] = False
    keep[np.fromiter(latest.values(), dtype=np.int64, count=len(latest))] = True
    return keep


def _keys_at(path: Path, lines: Any) -> Iterator[tuple[str, str, str]]:
    """Row keys of the rows on those (ascending) lines, read again."""
    wanted = lines.tolist()
    found = 0
    for (lineno, row), expected in zip(iter_numbered_jsonl(path, ReadReport(), only=set(wanted)),
                                       wanted, strict=False):
        if lineno != expected:
            break
        found += 1
        yield row_key(row)
    if found != len(wanted):
        raise ColumnarUnsupported(f"{path} changed while it was read")


def read_columns(items: Path, report: ReadReport, plan: Callable[[str, str], str | None],
                 fields: frozenset[str], *,
                 golds: Callable[[str], Container[str]] | None = None
                 ) -> tuple[Columns, list[dict[str, Any]]]:
    """One pass over ``items``: the columns of the pairs ``plan`` keeps as columns, and the
    deduplicated row dicts (``fields`` only, as :meth:`RunDir.rows`) of the ``"rows"`` pairs.
    Skipped lines go to ``report``; ``golds`` as :class:`ColumnReader`."""
    reader = ColumnReader(plan, golds)
    rows = (latest_rows(reader.take(iter_numbered_jsonl(items, report)), fields)
            if items.exists() else [])
    return reader.finish(items), rows
