"""Sentence embeddings of a GGUF model through llama.cpp + logistic regression.

The seeds claim a purpose-built classifier beats prompted LLMs at a fraction of the cost; TF-IDF
is one such classifier, and an embedding model's vectors are the other common one. This
baseline embeds each text with any embedding-capable GGUF (``?model=path.gguf``, default the
embedded SmolLM2), pools its token vectors (``pooling=mean|cls|last``), and trains the task
kind's classifier on them (``C``, ``calibrate`` as for TF-IDF). Its confidence is the
classifier's probability of the chosen class.

Embedding the train split is the slow part (thousands of model passes) and gives the same
vectors every time, so they are cached on disk (``$SLMBENCH_CACHE_DIR``, default
``~/.cache/slmbench``, under ``embeddings/``), keyed by the GGUF file's sha256, the pooling and
the text: a second run, or another task over the same texts, computes none of them. Test
items are embedded at answer time, as in production: that is what the hourly price measures.

The same vectors serve few-shot retrieval (``few_shot: {select: similar, by: embed}``):
:class:`EmbeddingVectors` finds the train items nearest to each item for a prompted model.

``?st=/path/or/name`` embeds with ``sentence-transformers`` instead (an optional extra, never
needed by tests); its vectors are cached the same way, keyed by the model's name and path.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from slmbench.errors import InputError
from slmbench.models.base import PRICING_HOURLY, Completion, Model, Request
from slmbench.models.baselines._settings import (
    check_baseline_settings,
    check_calibration,
    timed_prediction,
)

DEFAULT_SETTINGS: dict[str, Any] = {"model": "smollm2", "pooling": "mean", "C": 100.0,
                                     "max_iter": 2000, "seed": 0}
#: settings taken only when given (a run stored without them resumes unchanged)
OPTIONAL_SETTINGS = ("st", "calibrate", "n_threads")
POOLING = {"mean": 1, "cls": 2, "last": 3}  # llama.cpp's LLAMA_POOLING_TYPE_*
N_CTX = 512  # texts are truncated to this many tokens
BATCH = 32  # texts per llama.cpp embed call while training


def create(settings: dict[str, Any]) -> EmbedLogReg:
    check_baseline_settings("embed-logreg", settings, DEFAULT_SETTINGS, OPTIONAL_SETTINGS)
    merged = {**DEFAULT_SETTINGS, **settings}
    if merged["pooling"] not in POOLING:
        raise InputError(f"pooling must be one of {', '.join(POOLING)}", field="--model",
                         value=f"pooling={merged['pooling']}")
    if isinstance(merged["C"], bool) or not isinstance(merged["C"], int | float) \
            or not merged["C"] > 0:
        raise InputError("C must be a number above 0", field="--model", value=f"C={merged['C']}")
    n_threads = settings.get("n_threads")
    if n_threads is not None and (type(n_threads) is not int or n_threads < 1):
        raise InputError("n_threads must be a whole number >= 1", field="--model",
                         value=f"n_threads={n_threads}")
    if "st" in settings:
        if not isinstance(settings["st"], str) or not settings["st"].strip():
            raise InputError("st must name a sentence-transformers model or folder",
                             field="--model", value=f"st={settings['st']}")
        path = None
    else:
        path = gguf_path(str(merged["model"]))
    changed = sorted((k, v) for k, v in settings.items()
                     if k != "n_threads" and DEFAULT_SETTINGS.get(k) != v)
    name = "baseline:embed-logreg" + ("?" + "&".join(f"{k}={v}" for k, v in changed)
                                      if changed else "")
    return EmbedLogReg(name, merged, path)


def gguf_path(model: str) -> Path:
    from slmbench.models.llamacpp import EMBEDDED, embedded_model_path

    if model in EMBEDDED:
        path = embedded_model_path(model)
        if path is None:
            raise InputError(f"embedded model needs the package '{EMBEDDED[model][0]}'",
                             field="--model", value=f"model={model}")
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise InputError("GGUF file not found", field="--model", value=f"model={model}")
    with path.open("rb") as fh:
        if fh.read(4) != b"GGUF":
            raise InputError("not a GGUF file (bad magic bytes)", field="--model",
                             value=f"model={model}")
    return path


def cache_dir() -> Path:
    root = os.environ.get("SLMBENCH_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "slmbench"


def file_sha256(path: Path, index: Path) -> str:
    """The file's sha256, remembered by (path, size, mtime) so a run does not re-read a
    multi-gigabyte GGUF to find its cache."""
    stat = path.stat()
    stamp = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    known: dict[str, str] = {}
    if index.is_file():
        try:
            known = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            known = {}
    if stamp in known:
        return known[stamp]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    known[stamp] = digest.hexdigest()
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = index.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(known), encoding="utf-8")
    tmp.replace(index)
    return known[stamp]


class EmbeddingCache:
    """text → vector for one embedding model (SQLite: atomic writes, safe to kill)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._db = sqlite3.connect(str(path), timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (key TEXT PRIMARY KEY, "
                         "vector BLOB NOT NULL)")
        self._db.commit()

    @staticmethod
    def key(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def get_many(self, texts: Sequence[str]) -> dict[str, bytes]:
        keys = list({self.key(t) for t in texts})
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):
            part = keys[start:start + 500]
            marks = ",".join("?" * len(part))
            for k, blob in self._db.execute(
                    f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part):  # noqa: S608
                found[k] = blob
        return found

    def put_many(self, pairs: Sequence[tuple[str, bytes]]) -> None:
        self._db.executemany("INSERT OR REPLACE INTO vectors (key, vector) VALUES (?, ?)",
                             [(self.key(t), blob) for t, blob in pairs])
        self._db.commit()

    def close(self) -> None:
        self._db.close()


class EmbedLogReg(Model):
    pricing = PRICING_HOURLY
    cacheable = False  # answers depend on the train split
    prompted = False

    def __init__(self, name: str, settings: dict[str, Any], path: Path | None) -> None:
        super().__init__(name, settings)
        self.path = path
        self._embedder: Any = None  # list of texts → 2-D float32 array
        self._predict: Callable[[str], tuple[str, float]] | None = None
        #: train texts embedded by the model in the last prepare(), and read from the cache
        self.train_computed = 0
        self.train_cached = 0
        self.train_seconds = 0.0

    def supports(self, kind: str) -> bool:
        from slmbench.tasks.kinds import find_kind

        found = find_kind(kind)
        return found is not None and found.trains_classifier

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        if self.path is not None:
            info["gguf"] = self.path.name
            info["gguf_bytes"] = self.path.stat().st_size
        return info

    # -- embedding ------------------------------------------------------------------------
    def _load(self) -> Callable[[Sequence[str]], Any]:
        if self._embedder is not None:
            return self._embedder
        import numpy as np

        if "st" in self.settings:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise InputError("st= needs sentence-transformers (pip install "
                                 "'slmbench[st]')", field="--model",
                                 value=f"st={self.settings['st']}") from None
            st = SentenceTransformer(self.settings["st"])

            def embed_st(texts: Sequence[str]) -> Any:
                return np.asarray(st.encode(list(texts)), dtype=np.float32)

            self._embedder = embed_st
            return embed_st

        from llama_cpp import Llama

        from slmbench.machine import usable_cores
        from slmbench.models.llamacpp import model_params, use_extra_bufts

        threads = self.settings.get("n_threads") or usable_cores()
        try:
            # llama.cpp notes on stderr that the GGUF has no pooling of its own: asked for
            with model_params(use_extra_bufts("auto")), _quiet_stderr():
                llm = Llama(model_path=str(self.path), embedding=True,
                            pooling_type=POOLING[self.settings["pooling"]], n_ctx=N_CTX,
                            n_batch=N_CTX, n_ubatch=N_CTX, n_threads=threads,
                            n_threads_batch=threads, verbose=False)
        except Exception as exc:
            raise InputError(f"llama.cpp could not load the model for embeddings: {exc}",
                             field="--model", value=str(self.path)) from None
        self._llm = llm

        def embed_gguf(texts: Sequence[str]) -> Any:
            return np.asarray(llm.embed(list(texts), truncate=True), dtype=np.float32)

        self._embedder = embed_gguf
        return embed_gguf

    def _cache(self) -> EmbeddingCache:
        root = cache_dir() / "embeddings"
        if "st" in self.settings:
            ident = "st-" + hashlib.sha256(str(self.settings["st"]).encode()).hexdigest()[:16]
        else:
            ident = file_sha256(self.path, root / "file-hashes.json")[:32]
        return EmbeddingCache(root / f"{ident}-{self.settings['pooling']}.sqlite3")

    def embed_train(self, texts: Sequence[str]) -> Any:
        """Vectors of the train texts: from the cache, the rest computed (and cached)."""
        import numpy as np

        cache = self._cache()
        try:
            found = cache.get_many(texts)
            missing = list(dict.fromkeys(t for t in texts if cache.key(t) not in found))
            embed = self._load() if missing else None
            for start in range(0, len(missing), BATCH):
                part = missing[start:start + BATCH]
                vectors = embed(part)
                blobs = [(t, v.astype(np.float32).tobytes())
                         for t, v in zip(part, vectors, strict=True)]
                cache.put_many(blobs)
                found.update((cache.key(t), b) for t, b in blobs)
        finally:
            cache.close()
        self.train_computed = len(missing)
        self.train_cached = len(set(texts)) - len(missing)
        return np.stack([np.frombuffer(found[EmbeddingCache.key(t)], dtype=np.float32)
                         for t in texts])

    # -- model ----------------------------------------------------------------------------
    def prepare(self, task: Any) -> None:
        from slmbench.tasks.kinds import get_kind

        if not task.train:
            raise InputError("baseline:embed-logreg needs a train split (dataset.train_split)",
                             file=task.spec.path, field="dataset.train_split", value=None)
        check_calibration(task, self.settings)
        start, cpu = time.perf_counter(), time.process_time()
        features = _EmbeddingFeatures(self)
        self._predict = get_kind(task.spec.kind).fit_classifier(task, features, self.settings)
        self._load()  # loaded here, not in the first item's latency
        # one-off setup (embedding the train split, fitting), stored in the pair's timing and
        # priced apart from the items, as for the TF-IDF baseline
        self.train_seconds = self.setup_s = time.perf_counter() - start
        self.setup_cpu_s = time.process_time() - cpu

    def complete(self, request: Request) -> Completion:
        return timed_prediction(self._predict, request.text)

    def close(self) -> None:
        llm = getattr(self, "_llm", None)
        if llm is not None:
            llm.close()
        self._llm = self._embedder = None


class EmbeddingVectors:
    """A GGUF model's sentence embeddings as few-shot retrieval vectors (tasks.fewshot's
    ``Vectors``): every text, train or item, goes through the embedding cache, so a second
    run or another model's variant embeds nothing again."""

    def __init__(self, owner: EmbedLogReg) -> None:
        self.owner = owner
        self.matrix: Any = None

    @classmethod
    def for_retrieval(cls, model: str) -> EmbeddingVectors:
        """Checks ``model`` (a GGUF path or an embedded model's name) without loading it."""
        try:
            owner = create({"model": model})
        except InputError as exc:
            raise InputError(f"few_shot.embed_model: {exc.reason}", field="few_shot.embed_model",
                             value=model) from None
        return cls(owner)

    def _unit(self, texts: Sequence[str]) -> Any:
        import numpy as np

        vectors = self.owner.embed_train(list(texts)).astype(np.float64)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms > 0, norms, 1.0)

    def fit(self, texts: Sequence[str]) -> None:
        self.matrix = self._unit(texts)

    def transform(self, texts: Sequence[str]) -> list[Any]:
        return list(self._unit(texts))

    def scores(self, query: Any) -> Any:
        return self.matrix @ query


def _quiet_stderr() -> Any:
    try:
        from llama_cpp._utils import suppress_stdout_stderr
    except ImportError:  # another llama-cpp-python: its notes stay visible
        import contextlib

        return contextlib.nullcontext()
    return suppress_stdout_stderr(disable=False)


class _EmbeddingFeatures:
    """A scikit-learn transformer: texts → vectors; fitting (the train split) goes through
    the disk cache, transforming (items being answered) calls the model."""

    def __init__(self, owner: EmbedLogReg) -> None:
        self.owner = owner

    def fit(self, texts: Sequence[str], y: Any = None) -> _EmbeddingFeatures:
        return self

    def fit_transform(self, texts: Sequence[str], y: Any = None) -> Any:
        return self.owner.embed_train(list(texts))

    def transform(self, texts: Sequence[str]) -> Any:
        return self.owner._load()(list(texts))

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"owner": self.owner}

    def set_params(self, **params: Any) -> _EmbeddingFeatures:
        self.owner = params.get("owner", self.owner)
        return self
