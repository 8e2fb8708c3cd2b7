"""Disk response cache: a re-run of the same (model, settings, prompt) costs nothing.

Keyed by the model name, its settings (minus those that cannot change an answer: timeouts,
threads, batch size), the endpoint it was sent to, the slmbench version and the full request.
A hit returns the original completion — latency and tokens included — so the row is priced as
the original call, and the row says ``cached: true``. SQLite (stdlib) gives atomic writes that
survive a SIGKILL.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from dataclasses import asdict
from pathlib import Path

from slmbench import __version__
from slmbench.models.base import Completion, Model, Request, semantic_settings


def cache_key(model: Model, request: Request) -> str:
    """The endpoint (``api_base``) is part of the key although it is a speed setting for a
    resume: two servers may serve different models under one name, and a cache must never
    answer one endpoint with another's response."""
    settings = semantic_settings(model.settings)
    key = {
        "v": __version__, "model": model.name, "settings": settings,
        "messages": request.messages, "text": request.text, "choices": request.choices,
        "schema": request.json_schema, "max_tokens": request.max_tokens,
    }
    endpoint = model.settings.get("api_base")
    if endpoint:  # absent otherwise: the keys of models without one stay as they were
        key["endpoint"] = str(endpoint).rstrip("/")
    blob = json.dumps(key, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class ResponseCache:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        # WAL + NORMAL survives a killed process (only power loss can drop the last commits),
        # and skips an fsync per response
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses "
                         "(key TEXT PRIMARY KEY, completion TEXT NOT NULL)")
        self._db.commit()
        self.hits = 0

    def get(self, key: str) -> Completion | None:
        with self._lock:
            row = self._db.execute("SELECT completion FROM responses WHERE key = ?",
                                   (key,)).fetchone()
        if row is None:
            return None
        self.hits += 1
        return Completion(**json.loads(row[0]))

    def put(self, key: str, completion: Completion) -> None:
        data = json.dumps(asdict(completion), default=str)
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses (key, completion) VALUES (?, ?)",
                             (key, data))
            self._db.commit()

    def close(self) -> None:
        with self._lock:
            self._db.close()
