"""A small, fast, fault-injecting OpenAI-compatible HTTP server for tests and benchmarks.

Standard library only, so it can be imported from ``tests/`` (pytest puts that folder on
``sys.path``) and from ``benchmarks/`` scripts (``sys.path.insert(0, "tests")`` or
``from tests.fakeserver import ...`` when the repository root is on ``sys.path``), and run
standalone::

    python tests/fakeserver.py --port 8123 --delay 0.05 --fault-rate 0.05

It binds only to 127.0.0.1.

Endpoints
---------
``POST /v1/chat/completions`` (also ``/chat/completions``)
    Non-streaming chat completion.  ``answer(request_body) -> str`` gives the assistant
    content (default ``"ok"``).  The model name is echoed back.  ``"stream": true`` requests
    are **rejected with 400** (``invalid_request_error``); streaming is not emulated.
``GET /v1/models`` (also ``/models``)
    ``{"object": "list", "data": [{"id": ..., "object": "model", ...}]}``.

Usage-token rule (deterministic, recompute with :func:`count_prompt_tokens` /
:func:`count_completion_tokens`)
    ``prompt_tokens     = sum(len(text(m).split()) + 3 for m in messages)``
    ``completion_tokens = len(answer.split())``
    ``total_tokens      = prompt_tokens + completion_tokens``
    where ``text(m)`` is the message ``content`` if it is a string, the ``"text"`` parts
    joined by spaces if it is a list of parts, and ``""`` otherwise (None, missing).

Logprobs
    When the request has ``"logprobs": true`` and the server was built with
    ``logprobs=True``, ``choices[0].logprobs.content`` holds one entry per
    whitespace-separated word of the answer:
    ``{"token": word, "logprob": lp, "bytes": list(word.encode()), "top_logprobs": []}``.
    ``lp`` comes from ``answer_logprob(request_body)`` (default ``-0.05``); it may return a
    float (same value for every token) or a sequence with one float per token.  If the request
    asks ``top_logprobs >= 1``, ``top_logprobs`` holds just the chosen token
    (``{"token", "logprob", "bytes"}``).  Otherwise ``choices[0].logprobs`` is ``null``.

Faults (see :class:`FaultPlan`)
    ``"429"``                 429 + ``Retry-After: <plan.retry_after_s>`` + OpenAI error JSON
    ``"429-no-retry-after"``  429 without any Retry-After header
    ``"500"`` / ``"503"``     that status + OpenAI error JSON
    ``"timeout"``             no response for ``plan.timeout_s`` seconds, then the socket is
                              closed without a response (a client with a shorter timeout times
                              out; :meth:`FakeOpenAIServer.stop` wakes the sleeper at once)
    ``"drop"``                the socket is closed without any response bytes
    ``"empty"``               200, ``Content-Type: application/json``, ``Content-Length: 0``
    ``"truncated"``           200 JSON whose body is a completion cut in half (Content-Length
                              matches the cut body, so the client reads it and fails to parse)
    ``"garbage"``             200, a valid completion whose content is random nonsense words
    ``"wrong-type"``          200 JSON; alternates per occurrence: 1st, 3rd, ... have
                              ``choices[0].message.content`` = ``42`` (a number); 2nd, 4th, ...
                              have ``choices`` as a dict instead of a list
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import hashlib
import json
import socket
import sys
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = [
    "DEFAULT_FAULT_KINDS",
    "FAULT_KINDS",
    "FakeOpenAIServer",
    "FaultPlan",
    "count_completion_tokens",
    "count_prompt_tokens",
    "last_user_message",
    "message_text",
]

FAULT_KINDS: tuple[str, ...] = (
    "429",
    "429-no-retry-after",
    "500",
    "503",
    "timeout",
    "drop",
    "empty",
    "truncated",
    "garbage",
    "wrong-type",
)
#: kinds used when a plan is built without ``kinds``: everything but the slow ``"timeout"``.
DEFAULT_FAULT_KINDS: tuple[str, ...] = tuple(k for k in FAULT_KINDS if k != "timeout")

_GARBAGE_WORDS = (
    "purple", "quantum", "banana", "lorem", "ipsum", "zebra", "carburetor", "nebula",
    "waffle", "gizmo", "tundra", "oblong", "kazoo", "marmalade", "spline", "vortex",
)  # fmt: skip


# --------------------------------------------------------------------------- helpers


def message_text(message: Any) -> str:
    """Text of one chat message: string content, or ``"text"`` parts joined by spaces."""
    if not isinstance(message, dict):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def last_user_message(body: Any) -> str:
    """Text of the last ``role == "user"`` message of a request body ("" if none)."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if isinstance(messages, list):
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                return message_text(m)
    return ""


def count_prompt_tokens(messages: Any) -> int:
    """``sum(len(message_text(m).split()) + 3 for m in messages)``."""
    if not isinstance(messages, list):
        return 0
    return sum(len(message_text(m).split()) + 3 for m in messages)


def count_completion_tokens(text: str) -> int:
    """``len(text.split())``."""
    return len(text.split()) if isinstance(text, str) else 0


def _unit(*parts: object) -> float:
    """Stable (process-independent) hash of ``parts`` mapped to [0, 1)."""
    h = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(h, "big") / 2.0**64


# --------------------------------------------------------------------------- fault plan


class FaultPlan:
    """Decides, per chat-completion request, whether to inject a fault and which kind.

    Three modes:

    * ``FaultPlan(rate=0.05, kinds=[...], seed=0)``: request number *i* (0-based, in arrival
      order at the server) is faulted iff ``hash(seed, i) < rate``; its kind is also picked by
      hash.  Deterministic given seed and request order (same seed => same sequence).
    * ``FaultPlan.first_attempts(n=1, kinds=[...], share=0.05, seed=0)``: prompts (last user
      message) with ``hash(seed, prompt) < share`` fail on their first ``n`` attempts, then
      succeed; other prompts never fail.
    * ``FaultPlan.always(kind, predicate=None)``: every request whose last user message
      satisfies ``predicate(prompt: str) -> bool`` (all requests if None) gets ``kind``.

    ``retry_after_s`` is the Retry-After value sent with ``"429"``; ``timeout_s`` is how long
    a ``"timeout"`` fault stalls before closing the socket.  The plan is stateful (request
    index, attempts per prompt); use one plan per server, or call :meth:`reset`.
    """

    def __init__(
        self,
        rate: float = 0.0,
        kinds: Sequence[str] | None = None,
        seed: int = 0,
        *,
        retry_after_s: float = 1.0,
        timeout_s: float = 30.0,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"rate must be within [0, 1], got {rate!r}")
        self.kinds: tuple[str, ...] = self._check_kinds(kinds)
        self.rate = float(rate)
        self.seed = seed
        self.retry_after_s = float(retry_after_s)
        self.timeout_s = float(timeout_s)
        self._mode = "rate"
        self._n = 0
        self._share = 0.0
        self._predicate: Callable[[str], bool] | None = None
        self._lock = threading.Lock()
        self._index = 0
        self._attempts: collections.Counter[str] = collections.Counter()

    @staticmethod
    def _check_kinds(kinds: Sequence[str] | str | None) -> tuple[str, ...]:
        if kinds is None:
            return DEFAULT_FAULT_KINDS
        if isinstance(kinds, str):
            kinds = [kinds]
        out = tuple(str(k) for k in kinds)
        if not out:
            raise ValueError("kinds must not be empty")
        bad = [k for k in out if k not in FAULT_KINDS]
        if bad:
            raise ValueError(f"unknown fault kind(s) {bad}; known: {list(FAULT_KINDS)}")
        return out

    @classmethod
    def first_attempts(
        cls,
        n: int = 1,
        kinds: Sequence[str] | None = None,
        share: float = 0.05,
        seed: int = 0,
        *,
        retry_after_s: float = 1.0,
        timeout_s: float = 30.0,
    ) -> FaultPlan:
        """A stable-hash subset (``share``) of prompts fails its first ``n`` attempts."""
        if n < 0:
            raise ValueError("n must be >= 0")
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"share must be within [0, 1], got {share!r}")
        plan = cls(0.0, kinds, seed, retry_after_s=retry_after_s, timeout_s=timeout_s)
        plan._mode = "first"
        plan._n = int(n)
        plan._share = float(share)
        return plan

    @classmethod
    def always(
        cls,
        kind: str,
        predicate: Callable[[str], bool] | None = None,
        *,
        retry_after_s: float = 1.0,
        timeout_s: float = 30.0,
    ) -> FaultPlan:
        """Fault ``kind`` on every request whose last user message matches ``predicate``."""
        plan = cls(1.0, [kind], 0, retry_after_s=retry_after_s, timeout_s=timeout_s)
        plan._mode = "always"
        plan._predicate = predicate
        return plan

    def reset(self) -> None:
        """Forget the request index and per-prompt attempt counts."""
        with self._lock:
            self._index = 0
            self._attempts.clear()

    def is_targeted(self, prompt: str) -> bool:
        """first_attempts mode: whether ``prompt`` is in the failing subset."""
        return _unit("first", self.seed, prompt) < self._share

    def decide(self, body: dict) -> str | None:
        """Fault kind for this request (advancing the plan's state), or None."""
        if self._mode == "rate":
            with self._lock:
                i = self._index
                self._index += 1
            if self.rate <= 0.0 or _unit("rate", self.seed, i) >= self.rate:
                return None
            return self.kinds[int(_unit("kind", self.seed, i) * len(self.kinds))]
        prompt = last_user_message(body)
        if self._mode == "always":
            if self._predicate is None or self._predicate(prompt):
                return self.kinds[0]
            return None
        # first_attempts
        if not self.is_targeted(prompt):
            return None
        with self._lock:
            attempt = self._attempts[prompt]
            self._attempts[prompt] = attempt + 1
        if attempt >= self._n:
            return None
        k = int(_unit("kind", self.seed, prompt) * len(self.kinds))
        return self.kinds[(k + attempt) % len(self.kinds)]

    def __repr__(self) -> str:
        return (
            f"FaultPlan(mode={self._mode!r}, rate={self.rate}, share={self._share}, "
            f"n={self._n}, kinds={list(self.kinds)}, seed={self.seed})"
        )


# --------------------------------------------------------------------------- HTTP server


_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def _error_body(status: int, message: str, etype: str, code: str | None = None) -> bytes:
    err = {"error": {"message": message, "type": etype, "param": None, "code": code}}
    return json.dumps(err).encode()


class TrackedHandler(BaseHTTPRequestHandler):
    """A keep-alive handler whose server's ``owner`` tracks open connections, so that stopping
    the server can close them (also the base of the provider emulators' handler)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def setup(self) -> None:
        super().setup()
        self.server.owner._track(self.connection, True)  # type: ignore[attr-defined]

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass


class _Handler(TrackedHandler):
    server: _Server  # type: ignore[assignment]

    def _send(
        self,
        status: int,
        body: bytes,
        headers: Sequence[tuple[str, str]] = (),
        content_type: str = "application/json",
    ) -> None:
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}"]
        lines.append(f"Content-Type: {content_type}")
        lines.append(f"Content-Length: {len(body)}")
        lines.extend(f"{k}: {v}" for k, v in headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.wfile.write(head + body)  # one write: no Nagle/delayed-ACK stalls

    def _abort(self) -> None:
        """Close the connection without sending anything."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes | None:
        length = self.headers.get("Content-Length")
        if length is None:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                return self._read_chunked()
            return b""
        try:
            n = int(length)
        except ValueError:
            return None
        return self.rfile.read(n) if n > 0 else b""

    def _read_chunked(self) -> bytes:
        out = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(out)
            out.append(self.rfile.read(size))
            self.rfile.readline()

    # -- routes ---------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        path = self.path.split("?", 1)[0].rstrip("/")
        if path in ("/v1/models", "/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fakeserver"}
                for m in self.server.owner.models
            ]
            self._send(200, json.dumps({"object": "list", "data": data}).encode())
        elif path in ("", "/health", "/v1/health"):
            self._send(200, b'{"status": "ok"}')
        else:
            self._send(404, _error_body(404, f"no route {path}", "invalid_request_error"))

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        raw = self._read_body()
        path = self.path.split("?", 1)[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._send(404, _error_body(404, f"no route {path}", "invalid_request_error"))
            return
        if raw is None:
            self.close_connection = True
            self._send(400, _error_body(400, "bad Content-Length", "invalid_request_error"))
            return
        self.server.owner._handle_chat(self, raw)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024
    owner: FakeOpenAIServer


class FakeOpenAIServer:
    """OpenAI-compatible fake server on 127.0.0.1 (see the module docstring).

    ``calls`` holds one dict per ``POST .../chat/completions`` request, in arrival order: a
    shallow copy of the request JSON plus ``"_t"`` (``time.monotonic()`` at receipt),
    ``"_fault"`` (the fault kind applied, or None) and ``"_prompt"`` (last user message).  A
    body that is not a JSON object is recorded as ``{"_raw": <text>, "_t", "_fault": None,
    "_prompt": ""}`` and answered with 400.
    """

    def __init__(
        self,
        answer: Callable[[dict], str] | None = None,
        *,
        delay_s: float = 0.0,
        faults: FaultPlan | None = None,
        logprobs: bool = True,
        usage: bool = True,
        answer_logprob: Callable[[dict], float | Sequence[float]] | None = None,
        models: Sequence[str] = ("fake",),
        port: int = 0,
    ) -> None:
        self.answer = answer
        self.delay_s = float(delay_s)
        self.faults = faults
        self.logprobs = logprobs
        self.usage = usage
        self.answer_logprob = answer_logprob
        self.models = tuple(models)
        self.calls: list[dict] = []
        self._port = port
        self._lock = threading.Lock()
        self._fault_counts: collections.Counter[str] = collections.Counter()
        self._seq = 0
        self._stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> FakeOpenAIServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _Server(("127.0.0.1", self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.host, self.port = host, port
        self.base_url = f"http://{host}:{port}/v1"
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeOpenAIServer:{port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping in delay/timeout
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:  # unblock keep-alive handlers waiting for the next request
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Start (if needed) and block until KeyboardInterrupt, then stop."""
        self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # -- introspection --------------------------------------------------------------------
    @property
    def fault_counts(self) -> collections.Counter[str]:
        """Faults injected so far, per kind (a copy)."""
        with self._lock:
            return collections.Counter(self._fault_counts)

    def prompt_counts(self) -> collections.Counter[str]:
        """How many times each distinct last user message was requested (faulted or not)."""
        with self._lock:
            return collections.Counter(c.get("_prompt", "") for c in self.calls)

    def reset(self) -> None:
        """Clear calls and fault counts (and the fault plan's state)."""
        with self._lock:
            self.calls.clear()
            self._fault_counts.clear()
        if self.faults is not None:
            self.faults.reset()

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    # -- chat completions -----------------------------------------------------------------
    def _handle_chat(self, h: _Handler, raw: bytes) -> None:
        t = time.monotonic()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        if not isinstance(body, dict):
            rec = {"_raw": raw.decode("utf-8", "replace"), "_t": t, "_fault": None, "_prompt": ""}
            with self._lock:
                self.calls.append(rec)
            h._send(400, _error_body(400, "body is not a JSON object", "invalid_request_error"))
            return

        prompt = last_user_message(body)
        streaming = bool(body.get("stream"))
        # stream=true is rejected before the fault plan sees (and counts) the request
        fault = self.faults.decide(body) if self.faults is not None and not streaming else None
        rec = dict(body)
        rec["_t"], rec["_fault"], rec["_prompt"] = t, fault, prompt
        with self._lock:
            seq = self._seq
            self._seq += 1
            self.calls.append(rec)
            variant = 0
            if fault is not None:
                variant = self._fault_counts[fault]
                self._fault_counts[fault] += 1

        if streaming:
            h._send(
                400,
                _error_body(
                    400,
                    "stream=true is not supported by FakeOpenAIServer",
                    "invalid_request_error",
                    "stream_not_supported",
                ),
            )
            return

        if self.delay_s > 0 and self._stopping.wait(self.delay_s):
            h._abort()
            return

        if fault is not None and self._send_fault(h, fault, body, seq, variant):
            return

        try:
            text = self.answer(body) if self.answer is not None else "ok"
            text = "" if text is None else str(text)
            payload = self._completion(body, text, seq)
        except Exception as e:  # surface callback bugs as a 500 with the message
            msg = f"answer callback failed: {type(e).__name__}: {e}"
            h._send(500, _error_body(500, msg, "server_error"))
            return
        h._send(200, json.dumps(payload).encode())

    def _completion(self, body: dict, text: Any, seq: int) -> dict:
        model = body.get("model") or (self.models[0] if self.models else "fake")
        logprobs = None
        if self.logprobs and body.get("logprobs") is True and isinstance(text, str):
            logprobs = {"content": self._logprobs(body, text), "refusal": None}
        out: dict[str, Any] = {
            "id": f"chatcmpl-fake-{seq}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "system_fingerprint": "fp_fakeserver",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text, "refusal": None},
                    "logprobs": logprobs,
                    "finish_reason": "stop",
                }
            ],
        }
        if self.usage:
            pt = count_prompt_tokens(body.get("messages"))
            ct = count_completion_tokens(text) if isinstance(text, str) else 1
            out["usage"] = {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct}
        return out

    def _logprobs(self, body: dict, text: str) -> list[dict]:
        words = text.split()
        lp: Any = self.answer_logprob(body) if self.answer_logprob is not None else -0.05
        if isinstance(lp, (int, float)):
            values = [float(lp)] * len(words)
        else:
            values = [float(v) for v in lp]
            if len(values) < len(words):  # pad with the last value (or the default)
                values += [values[-1] if values else -0.05] * (len(words) - len(values))
        top = body.get("top_logprobs")
        want_top = isinstance(top, int) and not isinstance(top, bool) and top >= 1
        out = []
        for w, v in zip(words, values, strict=False):
            b = list(w.encode("utf-8"))
            tops = [{"token": w, "logprob": v, "bytes": b}] if want_top else []
            out.append({"token": w, "logprob": v, "bytes": b, "top_logprobs": tops})
        return out

    def _send_fault(self, h: _Handler, fault: str, body: dict, seq: int, variant: int) -> bool:
        """Emit ``fault``; return False if a normal answer should follow (never, today)."""
        plan = self.faults
        assert plan is not None
        if fault in ("429", "429-no-retry-after"):
            headers: list[tuple[str, str]] = []
            if fault == "429":
                ra = plan.retry_after_s
                headers.append(("Retry-After", str(int(ra)) if ra == int(ra) else f"{ra:g}"))
            msg = "Rate limit reached (injected by FakeOpenAIServer)"
            h._send(
                429, _error_body(429, msg, "rate_limit_exceeded", "rate_limit_exceeded"), headers
            )
        elif fault in ("500", "503"):
            status = int(fault)
            msg = f"injected {status} by FakeOpenAIServer"
            h._send(status, _error_body(status, msg, "server_error"))
        elif fault == "timeout":
            self._stopping.wait(plan.timeout_s)
            h._abort()
        elif fault == "drop":
            h._abort()
        elif fault == "empty":
            h._send(200, b"")
        elif fault == "truncated":
            full = json.dumps(self._completion(body, self._safe_answer(body), seq)).encode()
            h._send(200, full[: max(1, len(full) // 2)])
        elif fault == "garbage":
            words = [
                _GARBAGE_WORDS[int(_unit("garbage", seq, j) * len(_GARBAGE_WORDS))]
                for j in range(3 + int(_unit("garbage-len", seq) * 6))
            ]
            h._send(200, json.dumps(self._completion(body, " ".join(words), seq)).encode())
        elif fault == "wrong-type":
            payload = self._completion(body, 42, seq)
            if variant % 2 == 1:
                payload["choices"] = {"0": payload["choices"][0]}
            h._send(200, json.dumps(payload).encode())
        else:  # pragma: no cover - kinds are validated by FaultPlan
            return False
        return True

    def _safe_answer(self, body: dict) -> str:
        try:
            text = self.answer(body) if self.answer is not None else "ok"
        except Exception:
            text = "ok"
        return "" if text is None else str(text)


# --------------------------------------------------------------------------- CLI


def _main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Fault-injecting fake OpenAI server (127.0.0.1).")
    p.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    p.add_argument("--delay", type=float, default=0.0, help="seconds to wait per answer")
    p.add_argument("--answer", default="ok", help="fixed assistant answer")
    p.add_argument("--fault-rate", type=float, default=0.0, help="share of faulted requests")
    p.add_argument(
        "--fault-kinds",
        default=",".join(DEFAULT_FAULT_KINDS),
        help=f"comma-separated kinds from {','.join(FAULT_KINDS)}",
    )
    p.add_argument(
        "--first-attempts",
        type=int,
        default=0,
        metavar="N",
        help="instead of --fault-rate: a --share of prompts fail their first N tries",
    )
    p.add_argument("--share", type=float, default=0.05, help="prompt share for --first-attempts")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--retry-after", type=float, default=1.0, help="Retry-After seconds (429)")
    p.add_argument("--timeout-s", type=float, default=30.0, help="stall of a 'timeout' fault")
    p.add_argument("--no-logprobs", action="store_true")
    p.add_argument("--no-usage", action="store_true")
    a = p.parse_args(argv)

    kinds = [k.strip() for k in a.fault_kinds.split(",") if k.strip()]
    plan: FaultPlan | None = None
    common = {"retry_after_s": a.retry_after, "timeout_s": a.timeout_s}
    if a.first_attempts > 0:
        plan = FaultPlan.first_attempts(a.first_attempts, kinds, a.share, a.seed, **common)
    elif a.fault_rate > 0:
        plan = FaultPlan(a.fault_rate, kinds, a.seed, **common)

    fixed = a.answer
    server = FakeOpenAIServer(
        lambda _body: fixed,
        delay_s=a.delay,
        faults=plan,
        logprobs=not a.no_logprobs,
        usage=not a.no_usage,
        port=a.port,
    ).start()
    print(server.base_url, flush=True)
    print(f"faults: {plan!r}; Ctrl-C to stop", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    finally:
        print(
            f"served {len(server.calls)} chat requests; faults {dict(server.fault_counts)}",
            file=sys.stderr,
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())
