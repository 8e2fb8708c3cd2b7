"""Provider-contract emulators: loopback HTTP servers that speak three providers' wire formats.

Each emulator is a small standard-library server (``ThreadingHTTPServer`` on 127.0.0.1, port 0)
that validates requests the way the real API does and answers in the real response shape, so a
test can send requests through litellm's real provider transformations with ``api_base=srv.url``:

* :class:`OpenAIReasoningEmulator` -- OpenAI Chat Completions, GPT-5 family reasoning models.
* :class:`AnthropicEmulator` -- Anthropic Messages API, extended thinking, prompt caching.
* :class:`GeminiEmulator` -- Gemini ``generateContent``, thinking budgets / levels.

Common interface::

    with OpenAIReasoningEmulator(responder=lambda prompt, body: "farewell") as srv:
        litellm.completion(model="openai/gpt-5-mini", api_base=srv.url, api_key="sk-test", ...)
        srv.requests[-1]["body"]          # the JSON litellm sent

``srv.requests`` holds one dict per HTTP request, in arrival order: ``path`` (no query),
``query`` (dict, ``key`` values masked), ``headers`` (lower-cased names; the values of API-key
headers -- ``authorization``, ``x-api-key``, ``x-goog-api-key``, ``api-key`` -- are ``"***"``),
``body`` (the parsed JSON, or None), ``status`` and ``response`` (what the emulator answered),
``prompt`` (text of the last user message), ``answer`` (the responder's raw text) and
``constrained`` (True when the answer was rewritten to fit a JSON schema / enum).

``responder(prompt_text, body) -> str`` gives the visible answer; the default returns the
first word of the prompt (``"ok"`` if it has none).

Deterministic token rule (recompute by hand with the helpers from ``fakeserver``)
    prompt tokens      = ``count_prompt_tokens(messages)``, i.e. per message
                         ``len(text.split()) + 3``; a system prompt (Anthropic ``system``,
                         Gemini ``systemInstruction``) counts as one more message.  Tool
                         definitions and schemas are not counted.
    visible tokens     = ``count_completion_tokens(text)`` (whitespace words)
    reasoning tokens   = ``reasoning_tokens`` per call while reasoning is on (an int, or a
                         mapping effort/level -> int), capped by the provider's budget rules.
    ``cached_tokens``  = prompt tokens reported as cache reads (capped at the prompt size);
    ``cache_write_tokens`` (Anthropic) = prompt tokens reported as cache writes.

Answers cut by a token limit keep their first N whitespace words.  Streaming is not emulated
(``stream: true`` gets a 400).  Only text content is understood.

Sources (read while writing this module)
    OpenAI     https://platform.openai.com/docs/api-reference/chat
               https://platform.openai.com/docs/guides/reasoning
               https://platform.openai.com/docs/guides/structured-outputs#supported-schemas
               https://platform.openai.com/docs/guides/error-codes
    Anthropic  https://docs.anthropic.com/en/api/messages
               https://docs.anthropic.com/en/api/errors
               https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
               https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
               https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs
    Gemini     https://ai.google.dev/api/generate-content
               https://ai.google.dev/gemini-api/docs/thinking
               https://ai.google.dev/gemini-api/docs/structured-output
               https://ai.google.dev/gemini-api/docs/troubleshooting (error codes)
    litellm 1.110.2 (installed copy): llms/openai/chat/gpt_reasoning_transformation.py (the
               gpt-5 config; this version has no gpt_5_transformation.py),
               llms/anthropic/chat/transformation.py, llms/anthropic/common_utils.py,
               main.py (``_complete_anthropic``: ``ensure_api_route(api_base, "v1/messages")``),
               llms/vertex_ai/vertex_llm_base.py (``_check_custom_proxy``: Gemini URL is
               ``{api_base}/models/{model}:generateContent`` with an ``x-goog-api-key`` header),
               llms/vertex_ai/gemini/transformation.py and vertex_and_google_ai_studio_gemini.py.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import itertools
import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

try:  # pytest puts tests/ on sys.path
    from fakeserver import (
        TrackedHandler,
        count_completion_tokens,
        count_prompt_tokens,
        message_text,
    )
except ImportError:  # pragma: no cover - imported as tests.provider_emulators
    from tests.fakeserver import (
        TrackedHandler,
        count_completion_tokens,
        count_prompt_tokens,
        message_text,
    )

__all__ = [
    "ANTHROPIC_MODEL",
    "GEMINI_MODEL",
    "OPENAI_NONE_EFFORT_MODEL",
    "OPENAI_REASONING_MODEL",
    "AnthropicEmulator",
    "AnthropicModel",
    "GeminiEmulator",
    "GeminiModel",
    "OpenAIModel",
    "OpenAIReasoningEmulator",
    "Responder",
    "anthropic_schema_error",
    "default_responder",
    "fit_to_schema",
    "openai_strict_schema_error",
]

Responder = Callable[[str, dict], str]

#: litellm model names the emulators serve and litellm's bundled price map
#: (``model_prices_and_context_window_backup.json``) marks ``supports_reasoning``:
#: gpt-5-mini (efforts minimal..high, default medium; ``none`` refused), gpt-5.1 (``none``
#: allowed and the default), claude-haiku-4-5 (native structured outputs -> ``output_format``;
#: litellm switches to a forced ``json_tool_call`` tool for an open-object schema),
#: gemini-2.5-flash (thinking budget 0..24576, dynamic by default).
OPENAI_REASONING_MODEL = "openai/gpt-5-mini"
OPENAI_NONE_EFFORT_MODEL = "openai/gpt-5.1"
ANTHROPIC_MODEL = "anthropic/claude-haiku-4-5"
GEMINI_MODEL = "gemini/gemini-2.5-flash"
_KEY_HEADERS = ("authorization", "x-api-key", "x-goog-api-key", "api-key")


def default_responder(prompt: str, body: dict) -> str:
    """First word of the prompt (letters, digits, ``_``, ``'`` and ``-``), or ``"ok"``."""
    m = re.search(r"[A-Za-z0-9][\w'-]*", prompt or "")
    return m.group(0) if m else "ok"


def _cut_words(text: str, n: int) -> str:
    return " ".join(text.split()[: max(0, n)])


def _digest(*parts: object) -> str:
    return hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).hexdigest()


def _effort_tokens(setting: int | Mapping[str, int], effort: str) -> int:
    if isinstance(setting, Mapping):
        return int(setting.get(effort, setting.get("default", 0)))
    return int(setting)


class _Reject(Exception):
    """Raised inside a handler: answer ``status`` with the JSON ``payload``."""

    def __init__(self, status: int, payload: dict) -> None:
        super().__init__(status)
        self.status = status
        self.payload = payload


# --------------------------------------------------------------------------- JSON schema fitting


def _resolve_ref(root: Any, ref: str) -> Any:
    if ref == "#":
        return root
    node = root
    for part in ref.lstrip("#/").split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return {}
        node = node[part]
    return node


def _closest(options: list, value: Any) -> Any:
    """The enum member the value is closest to (exact, case-folded, contained, most similar)."""
    if not options:
        return value
    if value in options:
        return value
    text = value if isinstance(value, str) else json.dumps(value)
    folded = {str(o).strip().casefold(): o for o in options}
    key = text.strip().casefold()
    if key in folded:
        return folded[key]
    norm = re.sub(r"[\W_]+", " ", key).strip()
    for k, o in folded.items():
        if re.sub(r"[\W_]+", " ", k).strip() == norm:
            return o
    hits = []
    for k, o in folded.items():
        m = re.search(r"(?<!\w)" + re.escape(k) + r"(?!\w)", key) if k else None
        if m:
            hits.append((m.start(), -len(k), o))
    if hits:
        return min(hits, key=lambda h: (h[0], h[1]))[2]
    best = difflib.get_close_matches(key, list(folded), n=1, cutoff=0.0)
    return folded[best[0]] if best else options[0]


def _parse_json(value: Any) -> Any:
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return json.loads(value)
    return value


def _types(schema: dict) -> list[str]:
    t = schema.get("type")
    if isinstance(t, list):
        return [str(x).lower() for x in t]
    if isinstance(t, str):
        return [t.lower()]
    if "properties" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    return []


def fit_to_schema(schema: Any, value: Any, root: Any = None, _depth: int = 0) -> Any:
    """Coerce ``value`` (the responder's text, or JSON parsed from it) to fit ``schema``.

    Objects get every declared property (each filled from the same-named key of a dict value,
    else from the whole value); enums take the member closest to the value; numbers and
    booleans are parsed from the text; ``$ref``/``anyOf``/type lists are followed.  Works on
    JSON Schema and on Gemini's OpenAPI-style ``responseSchema`` (upper-case types,
    ``nullable``, ``propertyOrdering``).
    """
    root = schema if root is None else root
    if not isinstance(schema, dict) or _depth > 32:
        return value
    if isinstance(schema.get("$ref"), str):
        return fit_to_schema(_resolve_ref(root, schema["$ref"]), value, root, _depth + 1)
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return _closest(schema["enum"], value)
    for key in ("anyOf", "oneOf"):
        branches = [b for b in schema.get(key) or [] if isinstance(b, dict)]
        if branches:
            if value is None and any(_types(b) == ["null"] for b in branches):
                return None
            non_null = [b for b in branches if _types(b) != ["null"]] or branches
            return fit_to_schema(non_null[0], value, root, _depth + 1)
    if value is None and ("null" in _types(schema) or schema.get("nullable") is True):
        return None
    types = [t for t in _types(schema) if t != "null"] or _types(schema) or ["string"]
    t = types[0]
    if t == "object":
        src = value if isinstance(value, dict) else None
        props = schema.get("properties") or {}
        order = list(schema.get("propertyOrdering") or []) + [
            k for k in props if k not in (schema.get("propertyOrdering") or [])
        ]
        out = {}
        for k in order:
            if k in props:
                sub = src.get(k, "") if src is not None else value
                out[k] = fit_to_schema(props[k], sub, root, _depth + 1)
        return out
    if t == "array":
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        seq = value if isinstance(value, list) else [value]
        n = max(len(seq), int(schema.get("minItems") or 0))
        seq = (seq * n)[:n] if seq else []
        if isinstance(schema.get("maxItems"), int):
            seq = seq[: schema["maxItems"]]
        return [fit_to_schema(items, v, root, _depth + 1) for v in seq]
    if t in ("integer", "number"):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            num: float = value
        else:
            m = re.search(r"-?\d+(?:\.\d+)?", value if isinstance(value, str) else "")
            num = float(m.group(0)) if m else 0
        return int(num) if t == "integer" else float(num)
    if t == "boolean":
        if isinstance(value, bool):
            return value
        return str(value).strip().casefold() in ("true", "yes", "1", "y")
    if t == "null":
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (dict, list)) else str(value)


def _constrain(schema: Any, text: str) -> tuple[str, bool, Any]:
    """(JSON text, was-constrained, object) for an answer that must fit ``schema``."""
    parsed = _parse_json(text)
    fitted = fit_to_schema(schema, parsed)
    constrained = not (isinstance(parsed, (dict, list)) and parsed == fitted)
    return json.dumps(fitted), constrained, fitted


# --------------------------------------------------------------------------- HTTP plumbing


class _Handler(TrackedHandler):
    server: _Server  # type: ignore[assignment]

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802 - stdlib naming
        self._serve("POST")

    def _serve(self, method: str) -> None:
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = 0
        raw = self.rfile.read(n) if n > 0 else b""
        status, payload = self.server.owner._dispatch(method, self.path, self.headers, raw)
        data = json.dumps(payload).encode()
        head = [
            f"HTTP/1.1 {status} {self.responses.get(status, ('Unknown',))[0]}",
            "Content-Type: application/json; charset=utf-8",
            f"Content-Length: {len(data)}",
        ]
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: _Emulator


class _Emulator:
    """Lifecycle, request recording and dispatch shared by the three emulators."""

    #: appended to ``http://127.0.0.1:<port>`` to form :attr:`url`
    url_path = ""

    def __init__(
        self,
        responder: Responder | None,
        *,
        reasoning_tokens: int | Mapping[str, int],
        cached_tokens: int,
        api_key: str | None,
        port: int,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.reasoning_tokens = reasoning_tokens
        self.cached_tokens = int(cached_tokens)
        self.api_key = api_key
        self.requests: list[dict] = []
        self._port = port
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self.host = "127.0.0.1"
        self.port = 0

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> _Emulator:
        if self._httpd is None:
            httpd = _Server(("127.0.0.1", self._port), _Handler)
            httpd.owner = self
            self._httpd = httpd
            self.port = httpd.server_address[1]
            self._thread = threading.Thread(
                target=httpd.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"{type(self).__name__}:{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for c in conns:  # wake keep-alive handlers waiting for a next request on this socket
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def _track(self, conn: socket.socket, add: bool) -> None:
        with self._lock:
            if add:
                self._conns.add(conn)
            else:
                self._conns.discard(conn)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The ``api_base`` to give litellm."""
        return f"http://{self.host}:{self.port}{self.url_path}"

    @property
    def last(self) -> dict:
        """The most recent recorded request."""
        with self._lock:
            return self.requests[-1]

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- dispatch ------------------------------------------------------------------------
    def _dispatch(self, method: str, target: str, headers: Any, raw: bytes) -> tuple[int, dict]:
        split = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(split.query).items()}
        hdrs = {k.lower(): v for k, v in headers.items()}
        try:
            body = json.loads(raw) if raw else None
            bad_json = False
        except ValueError:
            body, bad_json = None, True
        rec: dict[str, Any] = {
            "path": split.path,
            "query": {k: ("***" if k == "key" else v) for k, v in query.items()},
            "headers": {k: ("***" if k in _KEY_HEADERS else v) for k, v in hdrs.items()},
            "body": body,
            "method": method,
            "prompt": "",
            "answer": None,
            "constrained": False,
            "status": None,
            "response": None,
            "_t": time.monotonic(),
        }
        with self._lock:
            self.requests.append(rec)
        try:
            if bad_json:
                raise self._malformed()
            status, payload = 200, self._handle(rec, method, split.path, query, hdrs, body)
        except _Reject as r:
            status, payload = r.status, r.payload
        except Exception as e:  # a bug here or in the responder: a 500, with its message
            status, payload = 500, self._server_error(f"{type(e).__name__}: {e}")
        rec["status"], rec["response"] = status, payload
        return status, payload

    def _next_id(self) -> int:
        return next(self._ids)

    def _answer(self, rec: dict, prompt: str, body: dict) -> str:
        rec["prompt"] = prompt
        text = self.responder(prompt, body)
        text = "" if text is None else str(text)
        rec["answer"] = text
        return text

    # -- provider hooks ------------------------------------------------------------------
    def _handle(self, rec: dict, method: str, path: str, query: dict, headers: dict,
                body: Any) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _malformed(self) -> _Reject:  # pragma: no cover - abstract
        raise NotImplementedError

    def _server_error(self, message: str) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError


# =========================================================================== OpenAI


@dataclass(frozen=True)
class OpenAIModel:
    """What the emulator knows about one model: its effort levels and the default one."""

    efforts: tuple[str, ...]
    default_effort: str


_GPT5 = OpenAIModel(("minimal", "low", "medium", "high"), "medium")
_GPT51 = OpenAIModel(("none", "low", "medium", "high"), "none")
_GPT52 = OpenAIModel(("none", "low", "medium", "high", "xhigh"), "none")

#: gpt-5 / -mini / -nano: minimal..high, default medium (``none`` is refused); gpt-5.1 and
#: later: ``none`` allowed and the default (OpenAI reasoning guide; litellm's map agrees:
#: ``supports_none_reasoning_effort`` / ``default_reasoning_effort``).
OPENAI_MODELS: dict[str, OpenAIModel] = {
    "gpt-5": _GPT5,
    "gpt-5-2025-08-07": _GPT5,
    "gpt-5-mini": _GPT5,
    "gpt-5-mini-2025-08-07": _GPT5,
    "gpt-5-nano": _GPT5,
    "gpt-5-nano-2025-08-07": _GPT5,
    "gpt-5.1": _GPT51,
    "gpt-5.1-2025-11-13": _GPT51,
    "gpt-5.2": _GPT52,
    "gpt-5.2-2025-12-11": _GPT52,
}

#: Chat Completions request fields (API reference, "Create chat completion"); anything else
#: gets OpenAI's "Unrecognized request argument supplied" 400.
OPENAI_FIELDS = frozenset({
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
    "n", "parallel_tool_calls", "prediction", "presence_penalty", "prompt_cache_key",
    "prompt_cache_retention", "reasoning_effort", "response_format", "safety_identifier",
    "seed", "service_tier", "stop", "store", "stream", "stream_options", "temperature",
    "tool_choice", "tools", "top_logprobs", "top_p", "user", "verbosity", "web_search_options",
})  # fmt: skip

#: Structured Outputs, strict mode: keywords the API refuses ("Some type-specific keywords are
#: not yet supported" / composition keywords), and the string formats it supports.
OPENAI_STRICT_UNSUPPORTED = (
    "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains",
    "uniqueItems", "oneOf",
)  # fmt: skip
OPENAI_STRICT_FORMATS = frozenset({
    "date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid",
})  # fmt: skip
_JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


def _openai_error(message: str, etype: str = "invalid_request_error", param: str | None = None,
                  code: str | None = None) -> dict:
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def openai_strict_schema_error(schema: Any) -> str | None:
    """First reason OpenAI's strict mode refuses ``schema`` (message text as the API words it,
    e.g. ``In context=('properties', 'x'), 'additionalProperties' is required to be supplied
    and to be false.``), or None when it is accepted."""
    if not isinstance(schema, dict) or schema.get("type") != "object" or "anyOf" in schema:
        got = schema.get("type") if isinstance(schema, dict) else type(schema).__name__
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{got}\"'."
    return _strict_walk(schema, (), 0)


def _strict_walk(node: Any, ctx: tuple, depth: int) -> str | None:
    if not isinstance(node, dict):
        return f"In context={ctx!r}, schema must be a JSON Schema object."
    if depth > 10:
        return f"In context={ctx!r}, schema exceeds the maximum nesting depth of 10."
    for kw in OPENAI_STRICT_UNSUPPORTED:
        if kw in node:
            return f"In context={ctx!r}, '{kw}' is not permitted."
    if "$ref" in node:
        return None if isinstance(node["$ref"], str) and node["$ref"].startswith("#") else (
            f"In context={ctx!r}, reference {node['$ref']!r} can't be resolved.")
    types = node.get("type")
    tlist = types if isinstance(types, list) else [types] if types is not None else []
    if not tlist and "anyOf" not in node and "enum" not in node and "const" not in node:
        return f"In context={ctx!r}, schema must have a 'type' key."
    for t in tlist:
        if t not in _JSON_TYPES:
            return f"In context={ctx!r}, '{t}' is not a valid type."
    fmt = node.get("format")
    if fmt is not None and fmt not in OPENAI_STRICT_FORMATS:
        return f"In context={ctx!r}, '{fmt}' is not a supported format."
    if "object" in tlist:
        props = node.get("properties")
        if node.get("additionalProperties") is not False:
            return (f"In context={ctx!r}, 'additionalProperties' is required to be supplied "
                    "and to be false.")
        props = props if isinstance(props, dict) else {}
        required = node.get("required")
        if not isinstance(required, list):
            required = []
        missing = [k for k in props if k not in required]
        if missing or ("required" not in node and props):
            return (f"In context={ctx!r}, 'required' is required to be supplied and to be an "
                    f"array including every key in properties. Missing '{missing[0]}'.")
        extra = [k for k in required if k not in props]
        if extra:
            return f"In context={ctx!r}, 'required' has extra key(s) not in properties: {extra}."
        for k, sub in props.items():
            err = _strict_walk(sub, (*ctx, "properties", k), depth + 1)
            if err:
                return err
    if "array" in tlist and isinstance(node.get("items"), dict):
        err = _strict_walk(node["items"], (*ctx, "items"), depth + 1)
        if err:
            return err
    for i, branch in enumerate(node.get("anyOf") or []):
        err = _strict_walk(branch, (*ctx, "anyOf", i), depth + 1)
        if err:
            return err
    for key in ("$defs", "definitions"):
        for name, sub in (node.get(key) or {}).items():
            err = _strict_walk(sub, (*ctx, key, name), depth + 1)
            if err:
                return err
    return None


class OpenAIReasoningEmulator(_Emulator):
    """OpenAI Chat Completions (``POST {url}/chat/completions``) for GPT-5 family models.

    ``url`` is ``http://127.0.0.1:<port>/v1`` (the ``api_base`` for ``openai/<model>``).

    Contract (OpenAI API reference, reasoning guide, structured-outputs guide):

    * ``Authorization: Bearer <key>`` is required: missing -> 401 (``"You didn't provide an API
      key..."``); a key other than ``api_key`` (when one is set) -> 401 ``invalid_api_key``.
    * unknown ``model`` -> 404 ``model_not_found``; unknown request field -> 400
      ``"Unrecognized request argument supplied: <name>"``; ``stream`` -> 400 (not emulated).
    * ``reasoning_effort`` must be one of the model's levels (default when absent: the model's
      ``default_effort``, ``"medium"`` for gpt-5/-mini/-nano, ``"none"`` for gpt-5.1+), else
      400 ``unsupported_value``.
    * ``max_tokens`` is refused on every reasoning model (400 ``unsupported_parameter``: "Use
      'max_completion_tokens' instead.").
    * while the effective effort is not ``"none"``: ``temperature`` other than 1 -> 400
      ``unsupported_value`` (``"Unsupported value: 'temperature' does not support 0 with this
      model. Only the default (1) value is supported."``); ``top_p``, ``logprobs``,
      ``top_logprobs``, ``presence_penalty``, ``frequency_penalty``, ``logit_bias``, ``stop`` ->
      400 ``unsupported_parameter`` (``"Unsupported parameter: 'top_p' is not supported with
      this model."``).  With effort ``"none"`` they are accepted and ``logprobs: true`` returns
      ``choices[0].logprobs.content`` (one entry per answer word, ``top_logprobs`` of them).
    * ``max_completion_tokens`` bounds reasoning + visible tokens: reasoning that reaches it
      gives ``content: ""``, ``finish_reason: "length"`` and ``completion_tokens ==
      reasoning_tokens == budget``; an answer that does not fit is cut, ``"length"``.
    * ``response_format`` ``json_schema`` with ``strict: true`` is validated with the strict-mode
      rules (root object; every object ``additionalProperties: false`` and all properties
      ``required``; no ``allOf``/``not``/``oneOf``/``patternProperties``/...), else 400 with
      ``param: "response_format"``; the answer is then made to fit the schema
      (:func:`fit_to_schema`; ``requests[i]["constrained"]`` tells whether it had to be).
      ``json_object`` needs the word "json" in the messages (400 otherwise) and wraps a
      non-JSON answer as ``{"answer": ...}``.
    * usage: ``prompt_tokens`` (includes ``prompt_tokens_details.cached_tokens``),
      ``completion_tokens`` (includes ``completion_tokens_details.reasoning_tokens``).

    Constructor: ``responder``, ``reasoning_tokens`` (int, or ``{effort: int}`` with an
    optional ``"default"`` key; default 40),
    ``cached_tokens`` (0), ``api_key`` (None: any non-empty key), ``models`` (name ->
    :class:`OpenAIModel`, default :data:`OPENAI_MODELS`), ``logprob`` (-0.05), ``port`` (0).
    """

    url_path = "/v1"

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        reasoning_tokens: int | Mapping[str, int] = 40,
        cached_tokens: int = 0,
        api_key: str | None = None,
        models: Mapping[str, OpenAIModel] | None = None,
        logprob: float = -0.05,
        port: int = 0,
    ) -> None:
        super().__init__(responder, reasoning_tokens=reasoning_tokens,
                         cached_tokens=cached_tokens, api_key=api_key, port=port)
        self.models = dict(OPENAI_MODELS if models is None else models)
        self.logprob = float(logprob)

    def _malformed(self) -> _Reject:
        return _Reject(400, _openai_error(
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"))

    def _server_error(self, message: str) -> dict:
        return _openai_error(f"The server had an error while processing your request: {message}",
                             "server_error")

    def _handle(self, rec, method, path, query, headers, body):
        p = path.rstrip("/")
        if method == "GET" and p.endswith("/models"):
            self._auth(headers)
            return {"object": "list", "data": [
                {"id": m, "object": "model", "created": 0, "owned_by": "system"}
                for m in self.models]}
        if method != "POST" or not p.endswith("/chat/completions"):
            raise _Reject(404, _openai_error(f"Invalid URL ({method} {path})"))
        self._auth(headers)
        if not isinstance(body, dict):
            raise self._malformed()
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _Reject(400, _openai_error(
                "you must provide a model parameter", param=None))
        for k in body:
            if k not in OPENAI_FIELDS:
                raise _Reject(400, _openai_error(f"Unrecognized request argument supplied: {k}"))
        if model not in self.models:
            raise _Reject(404, _openai_error(
                f"The model `{model}` does not exist or you do not have access to it.",
                param=None, code="model_not_found"))
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Reject(400, _openai_error(
                "Invalid 'messages': empty array. Expected an array with minimum length 1, but "
                "got an empty array instead.", param="messages", code="empty_array"))
        if body.get("stream"):
            raise _Reject(400, _openai_error(
                "stream=true is not emulated by OpenAIReasoningEmulator", param="stream"))
        spec = self.models[model]
        effort = body.get("reasoning_effort")
        effort = spec.default_effort if effort is None else effort
        if effort not in spec.efforts:
            allowed = ", ".join(f"'{e}'" for e in spec.efforts[:-1])
            raise _Reject(400, _openai_error(
                f"Unsupported value: 'reasoning_effort' does not support {effort!r} with this "
                f"model. Supported values are: {allowed}, and '{spec.efforts[-1]}'.",
                param="reasoning_effort", code="unsupported_value"))
        if body.get("max_tokens") is not None:
            raise _Reject(400, _openai_error(
                "Unsupported parameter: 'max_tokens' is not supported with this model. Use "
                "'max_completion_tokens' instead.", param="max_tokens",
                code="unsupported_parameter"))
        reasoning = effort != "none"
        if reasoning:
            temp = body.get("temperature")
            if temp is not None and temp != 1:
                raise _Reject(400, _openai_error(
                    f"Unsupported value: 'temperature' does not support {temp} with this model. "
                    "Only the default (1) value is supported.", param="temperature",
                    code="unsupported_value"))
            for k in ("top_p", "logprobs", "top_logprobs", "presence_penalty",
                      "frequency_penalty", "logit_bias", "stop"):
                if body.get(k) is not None:
                    raise _Reject(400, _openai_error(
                        f"Unsupported parameter: '{k}' is not supported with this model.",
                        param=k, code="unsupported_parameter"))
        top = body.get("top_logprobs")
        if top is not None and body.get("logprobs") is not True:
            raise _Reject(400, _openai_error(
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                "'top_logprobs' is given.", param="top_logprobs", code="invalid_value"))
        if top is not None and (not isinstance(top, int) or not 0 <= top <= 20):
            raise _Reject(400, _openai_error(
                f"Invalid 'top_logprobs': integer between 0 and 20 expected, got {top!r}.",
                param="top_logprobs", code="invalid_value"))
        budget = body.get("max_completion_tokens")
        if budget is not None and (not isinstance(budget, int) or budget < 1):
            raise _Reject(400, _openai_error(
                f"Invalid 'max_completion_tokens': integer below minimum value. Expected a value "
                f">= 1, but got {budget!r} instead.", param="max_completion_tokens",
                code="integer_below_min_value"))
        schema = self._response_schema(body, messages)

        prompt = ""
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                prompt = message_text(m)
                break
        text = self._answer(rec, prompt, body)
        if schema is not None:
            text, rec["constrained"], _ = _constrain(schema, text)
        elif (body.get("response_format") or {}).get("type") == "json_object":
            parsed = _parse_json(text)
            if not isinstance(parsed, dict):
                text, rec["constrained"] = json.dumps({"answer": text}), True

        used = _effort_tokens(self.reasoning_tokens, effort) if reasoning else 0
        visible = count_completion_tokens(text)
        finish = "stop"
        if budget is not None and used >= budget:
            used, text, visible, finish = budget, "", 0, "length"
        elif budget is not None and used + visible > budget:
            text = _cut_words(text, budget - used)
            visible, finish = count_completion_tokens(text), "length"
        pt = count_prompt_tokens(messages)
        cached = min(self.cached_tokens, pt)
        logprobs = None
        if body.get("logprobs") is True:
            logprobs = {"content": self._logprobs(text, top or 0), "refusal": None}
        seq = self._next_id()
        return {
            "id": f"chatcmpl-emu{seq:06d}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None,
                            "annotations": []},
                "logprobs": logprobs,
                "finish_reason": finish,
            }],
            "usage": {
                "prompt_tokens": pt,
                "completion_tokens": used + visible,
                "total_tokens": pt + used + visible,
                "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": used, "audio_tokens": 0,
                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
            },
            "service_tier": "default",
            "system_fingerprint": None,
        }

    def _auth(self, headers: dict) -> None:
        auth = headers.get("authorization", "")
        if not auth.lower().startswith("bearer ") or not auth[7:].strip():
            raise _Reject(401, _openai_error(
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys."))
        key = auth[7:].strip()
        if self.api_key is not None and key != self.api_key:
            shown = key[:3] + "*" * max(0, len(key) - 7) + key[-4:] if len(key) > 7 else "***"
            raise _Reject(401, _openai_error(
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.", code="invalid_api_key"))

    def _response_schema(self, body: dict, messages: list) -> Any:
        rf = body.get("response_format")
        if rf is None:
            return None
        if not isinstance(rf, dict) or rf.get("type") not in ("text", "json_object",
                                                               "json_schema"):
            raise _Reject(400, _openai_error(
                "Invalid value for 'response_format.type': expected one of 'text', "
                "'json_object' or 'json_schema'.", param="response_format.type",
                code="invalid_value"))
        if rf["type"] == "json_object":
            if not any("json" in message_text(m).lower() for m in messages):
                raise _Reject(400, _openai_error(
                    "'messages' must contain the word 'json' in some form, to use "
                    "'response_format' of type 'json_object'.", param="messages"))
            return None
        if rf["type"] != "json_schema":
            return None
        js = rf.get("json_schema")
        if not isinstance(js, dict) or not isinstance(js.get("name"), str):
            raise _Reject(400, _openai_error(
                "Missing required parameter: 'response_format.json_schema.name'.",
                param="response_format.json_schema.name", code="missing_required_parameter"))
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", js["name"]):
            raise _Reject(400, _openai_error(
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                param="response_format.json_schema.name", code="invalid_value"))
        schema = js.get("schema", {})
        if js.get("strict") is True:
            err = openai_strict_schema_error(schema)
            if err:
                raise _Reject(400, _openai_error(
                    f"Invalid schema for response_format '{js['name']}': {err}",
                    param="response_format"))
        return schema

    def _logprobs(self, text: str, top: int) -> list[dict]:
        out = []
        for w in text.split():
            b = list(w.encode("utf-8"))
            tops = [{"token": w, "logprob": self.logprob, "bytes": b}]
            tops += [{"token": f"{w}~{i}", "logprob": self.logprob - 2.0 - i,
                      "bytes": list(f"{w}~{i}".encode())} for i in range(1, top)]
            out.append({"token": w, "logprob": self.logprob, "bytes": b,
                        "top_logprobs": tops[:top]})
        return out


# =========================================================================== Anthropic


@dataclass(frozen=True)
class AnthropicModel:
    """``max_output``: the model's output cap; ``adaptive``: accepts ``thinking.type:
    "adaptive"``; ``exclusive_sampling``: refuses ``temperature`` together with ``top_p``."""

    max_output: int = 64000
    adaptive: bool = False
    exclusive_sampling: bool = True


_HAIKU45 = AnthropicModel(64000)
_SONNET45 = AnthropicModel(64000)
ANTHROPIC_MODELS: dict[str, AnthropicModel] = {
    "claude-haiku-4-5": _HAIKU45,
    "claude-haiku-4-5-20251001": _HAIKU45,
    "claude-sonnet-4-5": _SONNET45,
    "claude-sonnet-4-5-20250929": _SONNET45,
    "claude-opus-4-5": AnthropicModel(64000),
    "claude-opus-4-5-20251101": AnthropicModel(64000),
    "claude-opus-4-1": AnthropicModel(32000),
    "claude-opus-4-1-20250805": AnthropicModel(32000),
    "claude-sonnet-4-6": AnthropicModel(128000, adaptive=True),
    "claude-opus-4-6": AnthropicModel(128000, adaptive=True),
}

#: Messages API request fields (API reference, "Create a Message"; ``output_format`` is the
#: structured-outputs beta field, ``output_config`` its GA home).  Anything else gets
#: ``"<name>: Extra inputs are not permitted"``.
ANTHROPIC_FIELDS = frozenset({
    "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
    "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
    "container", "mcp_servers", "context_management", "output_config", "output_format",
    "inference_geo", "cache_control",
})  # fmt: skip

#: keywords Anthropic's structured outputs refuse (per the API's own 400 text quoted in
#: litellm's ``filter_anthropic_output_schema``: "For 'array' type, property 'uniqueItems' is
#: not supported").
ANTHROPIC_SCHEMA_UNSUPPORTED = (
    "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength",
    "maxLength", "maxItems", "uniqueItems", "contains", "minContains", "maxContains",
    "prefixItems", "minProperties", "maxProperties", "patternProperties", "propertyNames",
    "dependentRequired", "dependentSchemas", "unevaluatedProperties", "if", "then", "else",
    "not",
)  # fmt: skip


def _anthropic_error(status: int, etype: str, message: str) -> _Reject:
    return _Reject(status, {"type": "error", "error": {"type": etype, "message": message},
                            "request_id": f"req_emu_{_digest(etype, message)}"})


def anthropic_schema_error(schema: Any, where: str = "output_format.schema") -> str | None:
    """First reason Anthropic's structured outputs refuse ``schema``, or None."""
    def walk(node: Any) -> str | None:
        if not isinstance(node, dict):
            return None
        if "oneOf" in node:
            return f"{where}: Schema type 'oneOf' is not supported"
        types = node.get("type")
        tname = types if isinstance(types, str) else "object" if "properties" in node else "any"
        for kw in ANTHROPIC_SCHEMA_UNSUPPORTED:
            if kw in node:
                return f"{where}: For '{tname}' type, property '{kw}' is not supported"
        if node.get("minItems") not in (None, 0, 1):
            return f"{where}: For 'array' type, property 'minItems' only supports 0 or 1"
        is_object = types == "object" or (isinstance(types, list) and "object" in types)
        if is_object and node.get("additionalProperties") is not False:
            return (f"{where}: For 'object' type, 'additionalProperties' must be explicitly "
                    "set to false")
        children = list((node.get("properties") or {}).values())
        children += list((node.get("$defs") or {}).values())
        children += [node["items"]] if isinstance(node.get("items"), dict) else []
        children += list(node.get("anyOf") or []) + list(node.get("allOf") or [])
        for child in children:
            err = walk(child)
            if err:
                return err
        return None

    return walk(schema)


class AnthropicEmulator(_Emulator):
    """Anthropic Messages API (``POST {url}/v1/messages``).

    ``url`` is ``http://127.0.0.1:<port>`` -- litellm appends ``/v1/messages`` to an
    ``api_base`` that does not already end with it (``ensure_api_route`` in ``main.py``).

    Contract (Messages API reference, errors page, extended-thinking and prompt-caching guides):

    * ``x-api-key`` (or ``Authorization: Bearer``) is required: missing -> 401
      ``authentication_error`` "x-api-key header is required"; wrong (when ``api_key`` is set)
      -> 401 "invalid x-api-key".  ``anthropic-version`` missing -> 400 ``invalid_request_error``
      "anthropic-version: header is required".  Errors are ``{"type": "error", "error":
      {"type", "message"}, "request_id"}``.
    * unknown body field (e.g. ``logprobs``) -> 400 "<field>: Extra inputs are not permitted";
      ``model``/``max_tokens``/``messages`` required ("max_tokens: Field required"); unknown
      model -> 404 ``not_found_error`` "model: <name>"; ``stream`` -> 400 (not emulated).
    * ``temperature`` together with ``top_p`` -> 400 on models with ``exclusive_sampling``
      (Claude 4.5: "`temperature` and `top_p` cannot both be specified for this model.").
    * ``thinking: {"type": "enabled", "budget_tokens": N}``: N >= 1024 and N < max_tokens;
      ``temperature`` only 1, ``top_k`` unset, ``top_p`` in [0.95, 1]; no forced tool_choice.
      The response then starts with a ``{"type": "thinking", "thinking", "signature"}`` block
      (a short summary) and ``min(reasoning_tokens, N)`` thinking tokens are billed inside
      ``output_tokens`` (and, when ``report_thinking_tokens``, in
      ``usage.output_tokens_details.thinking_tokens``).  ``"adaptive"`` only on adaptive
      models; ``"disabled"`` is accepted.
    * ``max_tokens`` bounds thinking + text: a text that does not fit is cut and
      ``stop_reason`` is ``"max_tokens"`` (else ``"end_turn"``).
    * structured output: ``output_format`` (beta, needs an ``anthropic-beta:
      structured-outputs-...`` header) or ``output_config.format`` ``{"type": "json_schema",
      "schema"}`` -> the text block is JSON fitting the schema; a forced tool
      (``tool_choice: {"type": "tool", "name"}``) -> a ``tool_use`` block whose ``input`` fits
      the tool's ``input_schema`` and ``stop_reason: "tool_use"``.
    * usage: ``input_tokens`` excludes cache reads/writes; ``cache_read_input_tokens`` =
      ``cached_tokens``, ``cache_creation_input_tokens`` = ``cache_write_tokens`` (both capped
      so that the three add up to the prompt size), ``cache_creation`` split (all 5-minute).

    Constructor: ``responder``, ``reasoning_tokens`` (int, or ``{"enabled"|"adaptive"|
    "default": int}``; default 40), ``cached_tokens`` (0), ``cache_write_tokens`` (0),
    ``api_key`` (None: any non-empty key), ``models`` (name -> :class:`AnthropicModel`),
    ``report_thinking_tokens`` (True), ``port`` (0).
    """

    url_path = ""

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        reasoning_tokens: int | Mapping[str, int] = 40,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        api_key: str | None = None,
        models: Mapping[str, AnthropicModel] | None = None,
        report_thinking_tokens: bool = True,
        port: int = 0,
    ) -> None:
        super().__init__(responder, reasoning_tokens=reasoning_tokens,
                         cached_tokens=cached_tokens, api_key=api_key, port=port)
        self.cache_write_tokens = int(cache_write_tokens)
        self.models = dict(ANTHROPIC_MODELS if models is None else models)
        self.report_thinking_tokens = report_thinking_tokens

    def _malformed(self) -> _Reject:
        return _anthropic_error(400, "invalid_request_error", "There was an issue with the "
                                "format or content of your request: body is not valid JSON")

    def _server_error(self, message: str) -> dict:
        return {"type": "error", "error": {"type": "api_error", "message": message}}

    def _handle(self, rec, method, path, query, headers, body):
        if method != "POST" or not path.rstrip("/").endswith("/v1/messages"):
            raise _anthropic_error(404, "not_found_error", "Not Found")
        key = headers.get("x-api-key")
        if key is None and headers.get("authorization", "").lower().startswith("bearer "):
            key = headers["authorization"][7:].strip()
        if not key:
            raise _anthropic_error(401, "authentication_error", "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            raise _anthropic_error(401, "authentication_error", "invalid x-api-key")
        if not headers.get("anthropic-version"):
            raise _anthropic_error(400, "invalid_request_error",
                                   "anthropic-version: header is required")
        if not isinstance(body, dict):
            raise self._malformed()
        for k in body:
            if k not in ANTHROPIC_FIELDS:
                raise _anthropic_error(400, "invalid_request_error",
                                       f"{k}: Extra inputs are not permitted")
        for k in ("model", "max_tokens", "messages"):
            if k not in body:
                raise _anthropic_error(400, "invalid_request_error", f"{k}: Field required")
        model, max_tokens, messages = body["model"], body["max_tokens"], body["messages"]
        if model not in self.models:
            raise _anthropic_error(404, "not_found_error", f"model: {model}")
        spec = self.models[model]
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise _anthropic_error(400, "invalid_request_error",
                                   "max_tokens: Input should be greater than or equal to 1")
        if max_tokens > spec.max_output:
            raise _anthropic_error(
                400, "invalid_request_error",
                f"max_tokens: {max_tokens} > {spec.max_output}, which is the maximum allowed "
                f"number of output tokens for {model}")
        if not isinstance(messages, list) or not messages:
            raise _anthropic_error(400, "invalid_request_error",
                                   "messages: at least one message is required")
        if body.get("stream"):
            raise _anthropic_error(400, "invalid_request_error",
                                   "stream: streaming is not emulated by AnthropicEmulator")
        temp, top_p, top_k = body.get("temperature"), body.get("top_p"), body.get("top_k")
        if spec.exclusive_sampling and temp is not None and top_p is not None:
            raise _anthropic_error(400, "invalid_request_error", "`temperature` and `top_p` "
                                   "cannot both be specified for this model. Please use only one.")
        thinking_kind = self._check_thinking(body, spec, max_tokens, temp, top_p, top_k)

        schema, tool = self._structured(body, headers)
        prompt = ""
        for m in reversed(messages):
            if isinstance(m, dict) and m.get("role") == "user":
                prompt = message_text(m)
                break
        text = self._answer(rec, prompt, body)
        tool_input = None
        if tool is not None:
            text, rec["constrained"], tool_input = _constrain(tool.get("input_schema", {}), text)
        elif schema is not None:
            text, rec["constrained"], _ = _constrain(schema, text)

        thinking_used = 0
        if thinking_kind is not None:
            thinking_used = _effort_tokens(self.reasoning_tokens, thinking_kind)
            budget = body["thinking"].get("budget_tokens")
            if isinstance(budget, int):
                thinking_used = min(thinking_used, budget)
            thinking_used = min(thinking_used, max_tokens)
        room = max_tokens - thinking_used
        visible = count_completion_tokens(text)
        stop_reason = "tool_use" if tool is not None else "end_turn"
        if visible > room:
            text, stop_reason = _cut_words(text, room), "max_tokens"
            visible = count_completion_tokens(text)

        seq = self._next_id()
        content: list[dict] = []
        if thinking_kind is not None:
            content.append({
                "type": "thinking",
                "thinking": f"Thinking about the request ({thinking_used} tokens).",
                "signature": f"emu-sig-{_digest('thinking', seq, prompt)}",
            })
        if tool is not None and stop_reason == "tool_use":
            content.append({"type": "tool_use", "id": f"toolu_emu{seq:06d}",
                            "name": tool["name"], "input": tool_input})
        elif text:
            content.append({"type": "text", "text": text})

        system = body.get("system")
        convo = list(messages)
        if isinstance(system, (str, list)) and system:
            convo.insert(0, {"role": "system", "content": system})
        total_in = count_prompt_tokens(convo)
        read = min(self.cached_tokens, total_in)
        write = min(self.cache_write_tokens, total_in - read)
        usage: dict[str, Any] = {
            "input_tokens": total_in - read - write,
            "cache_creation_input_tokens": write,
            "cache_read_input_tokens": read,
            "cache_creation": {"ephemeral_5m_input_tokens": write,
                               "ephemeral_1h_input_tokens": 0},
            "output_tokens": thinking_used + visible,
            "service_tier": "standard",
        }
        if thinking_kind is not None and self.report_thinking_tokens:
            usage["output_tokens_details"] = {"thinking_tokens": thinking_used}
        return {
            "id": f"msg_emu{seq:06d}",
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }

    def _check_thinking(self, body: dict, spec: AnthropicModel, max_tokens: int,
                        temp: Any, top_p: Any, top_k: Any) -> str | None:
        thinking = body.get("thinking")
        if thinking is None:
            return None
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled",
                                                                          "adaptive"):
            raise _anthropic_error(400, "invalid_request_error", "thinking: Input tag does not "
                                   "match any of the expected tags: 'enabled', 'disabled', "
                                   "'adaptive'")
        kind = thinking["type"]
        if kind == "disabled":
            return None
        if kind == "adaptive" and not spec.adaptive:
            raise _anthropic_error(400, "invalid_request_error",
                                   "thinking.type: 'adaptive' is not supported for this model. "
                                   "Use 'enabled' with budget_tokens.")
        if kind == "enabled":
            budget = thinking.get("budget_tokens")
            if not isinstance(budget, int):
                raise _anthropic_error(400, "invalid_request_error",
                                       "thinking.enabled.budget_tokens: Field required")
            if budget < 1024:
                raise _anthropic_error(400, "invalid_request_error", "thinking.enabled."
                                       "budget_tokens: Input should be greater than or equal to "
                                       "1024")
            if max_tokens <= budget:
                raise _anthropic_error(
                    400, "invalid_request_error",
                    "`max_tokens` must be greater than `thinking.budget_tokens`. Please consult "
                    "our documentation at https://docs.claude.com/en/docs/build-with-claude/"
                    "extended-thinking#max-tokens-and-context-window-size")
        if temp is not None and temp != 1:
            raise _anthropic_error(
                400, "invalid_request_error",
                "`temperature` may only be set to 1 when thinking is enabled. Please consult our "
                "documentation at https://docs.claude.com/en/docs/build-with-claude/"
                "extended-thinking#feature-compatibility")
        if top_k is not None:
            raise _anthropic_error(400, "invalid_request_error",
                                   "`top_k` must be unset when thinking is enabled.")
        if top_p is not None and not 0.95 <= top_p <= 1:
            raise _anthropic_error(400, "invalid_request_error", "`top_p` must be unset or "
                                   "between 0.95 and 1 when thinking is enabled.")
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in ("any", "tool"):
            raise _anthropic_error(400, "invalid_request_error", "Thinking may not be enabled "
                                   "when tool_choice forces tool use.")
        return kind

    def _structured(self, body: dict, headers: dict) -> tuple[Any, dict | None]:
        """(schema for a JSON text answer, or None; forced tool, or None)."""
        fmt = None
        if "output_format" in body:
            if "structured-outputs" not in headers.get("anthropic-beta", ""):
                raise _anthropic_error(400, "invalid_request_error",
                                       "output_format: Extra inputs are not permitted")
            fmt, where = body["output_format"], "output_format"
        cfg = body.get("output_config")
        if isinstance(cfg, dict) and cfg.get("format") is not None:
            fmt, where = cfg["format"], "output_config.format"
        schema = None
        if fmt is not None:
            if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(
                    fmt.get("schema"), dict):
                raise _anthropic_error(400, "invalid_request_error", f"{where}: expected "
                                       "{'type': 'json_schema', 'schema': {...}}")
            err = anthropic_schema_error(fmt["schema"], f"{where}.schema")
            if err:
                raise _anthropic_error(400, "invalid_request_error", err)
            schema = fmt["schema"]
        tool = None
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") == "tool":
            tools = {t.get("name"): t for t in body.get("tools") or [] if isinstance(t, dict)}
            if choice.get("name") not in tools:
                raise _anthropic_error(400, "invalid_request_error",
                                       f"tool_choice: tool '{choice.get('name')}' not found in "
                                       "tools")
            tool = tools[choice["name"]]
        return schema, tool


# =========================================================================== Gemini


@dataclass(frozen=True)
class GeminiModel:
    """Thinking rules of one Gemini model.

    ``budget_range``: accepted ``thinkingBudget`` values (besides -1 = dynamic, and 0 when
    ``can_disable``); ``default_thinking``: ``"dynamic"`` or ``"off"`` when no config is
    given; ``levels``: accepted ``thinkingLevel`` values (empty: the model has none)."""

    budget_range: tuple[int, int] = (0, 24576)
    can_disable: bool = True
    default_thinking: str = "dynamic"
    levels: tuple[str, ...] = ()
    max_output: int = 65536


#: thinking guide, "Set budgets" table: 2.5 Pro 128..32768 (cannot disable), 2.5 Flash
#: 0..24576, 2.5 Flash-Lite 512..24576 (no thinking by default); Gemini 3: ``thinkingLevel``.
GEMINI_MODELS: dict[str, GeminiModel] = {
    "gemini-2.5-flash": GeminiModel((1, 24576)),
    "gemini-2.5-pro": GeminiModel((128, 32768), can_disable=False),
    "gemini-2.5-flash-lite": GeminiModel((512, 24576), default_thinking="off"),
    "gemini-3-flash-preview": GeminiModel(
        (1, 24576), levels=("minimal", "low", "medium", "high")),
    "gemini-3-pro-preview": GeminiModel((128, 32768), can_disable=False, levels=("low", "high")),
}

_GEMINI_TOP_FIELDS = frozenset({
    "contents", "tools", "toolConfig", "safetySettings", "systemInstruction",
    "generationConfig", "cachedContent", "serviceTier", "labels",
})  # fmt: skip
_GEMINI_GEN_FIELDS = frozenset({
    "stopSequences", "responseMimeType", "responseSchema", "responseJsonSchema",
    "responseModalities", "candidateCount", "maxOutputTokens", "temperature", "topP", "topK",
    "seed", "presencePenalty", "frequencyPenalty", "responseLogprobs", "logprobs",
    "enableEnhancedCivicAnswers", "speechConfig", "thinkingConfig", "imageConfig",
    "mediaResolution", "responseFormat",
})  # fmt: skip
_GEMINI_THINK_FIELDS = frozenset({"thinkingBudget", "thinkingLevel", "includeThoughts"})


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _camel_keys(d: Mapping, where: str, known: frozenset) -> dict:
    """Proto-JSON parsing accepts ``snake_case`` and ``lowerCamelCase`` names; unknown names
    are a 400 (``Unknown name "x" at 'where': Cannot find field.``)."""
    out = {}
    for k, v in d.items():
        ck = _camel(k) if k not in known else k
        if ck not in known:
            raise _gemini_error(400, "INVALID_ARGUMENT",
                                f"Invalid JSON payload received. Unknown name \"{k}\""
                                f"{f' at {where!r}' if where else ''}: Cannot find field.")
        out[ck] = v
    return out


def _gemini_error(code: int, status: str, message: str, details: list | None = None) -> _Reject:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return _Reject(code, {"error": err})


def _gemini_text(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    parts = content.get("parts")
    if not isinstance(parts, list):
        return ""
    return " ".join(p["text"] for p in parts if isinstance(p, dict) and isinstance(
        p.get("text"), str) and not p.get("thought"))


class GeminiEmulator(_Emulator):
    """Gemini API ``POST {url}/models/{model}:generateContent``.

    ``url`` is ``http://127.0.0.1:<port>/v1beta``; with an ``api_base`` litellm posts to
    ``{api_base}/models/{model}:generateContent`` and sends the key as ``x-goog-api-key``
    (``?key=`` is accepted too).  Snake-case field names (which litellm sends inside
    ``generationConfig``: ``max_output_tokens``, ``response_mime_type``,
    ``response_json_schema``) are accepted as the proto-JSON parser does.

    Contract (generate-content reference, thinking and structured-output guides, error codes):

    * no API key -> 403 ``PERMISSION_DENIED`` ("Method doesn't allow unregistered callers...");
      a wrong key (when ``api_key`` is set) -> 400 ``INVALID_ARGUMENT`` "API key not valid.
      Please pass a valid API key." with an ``ErrorInfo`` detail ``API_KEY_INVALID``.  Errors are
      ``{"error": {"code", "message", "status"}}``.
    * unknown model -> 404 ``NOT_FOUND``; unknown field -> 400 ``INVALID_ARGUMENT`` ("Invalid
      JSON payload received. Unknown name ..."); ``streamGenerateContent`` -> 400 (not emulated).
    * ``generationConfig.thinkingConfig``: ``thinkingBudget`` (-1 dynamic, 0 off where the
      model allows it, else within the model's range) or ``thinkingLevel`` (Gemini 3 only), not
      both.  Thinking uses ``reasoning_tokens`` (capped by a positive budget).  Thought tokens
      count against ``maxOutputTokens``: when they reach it the candidate has no text
      (``content: {"role": "model"}``) and ``finishReason: "MAX_TOKENS"``; a text that does not
      fit is cut, ``"MAX_TOKENS"``; else ``"STOP"``.  ``includeThoughts: true`` adds a
      ``{"text", "thought": true}`` summary part before the answer.
    * ``responseMimeType: "application/json"`` with ``responseSchema`` (OpenAPI subset) or
      ``responseJsonSchema`` (JSON Schema; not both) -> JSON fitting the schema;
      ``"text/x.enum"`` + an enum schema -> the bare enum member.
    * usage: ``promptTokenCount`` (includes ``cachedContentTokenCount``),
      ``candidatesTokenCount`` (visible only), ``thoughtsTokenCount``, ``totalTokenCount`` =
      prompt + candidates + thoughts; zero-valued optional counts are omitted as the API does.
    * ``responseLogprobs: true`` -> ``logprobsResult.chosenCandidates`` per answer word and
      ``avgLogprobs``.

    Constructor: ``responder``, ``reasoning_tokens`` (int, or a mapping keyed by ``"dynamic"``
    (no budget / -1), ``"budget"`` (an explicit positive budget, which also caps it), a
    ``thinkingLevel`` or ``"default"``; default 40), ``cached_tokens`` (0), ``api_key`` (None:
    any non-empty key), ``models`` (name -> :class:`GeminiModel`), ``logprob`` (-0.05),
    ``port`` (0).
    """

    url_path = "/v1beta"

    def __init__(
        self,
        responder: Responder | None = None,
        *,
        reasoning_tokens: int | Mapping[str, int] = 40,
        cached_tokens: int = 0,
        api_key: str | None = None,
        models: Mapping[str, GeminiModel] | None = None,
        logprob: float = -0.05,
        port: int = 0,
    ) -> None:
        super().__init__(responder, reasoning_tokens=reasoning_tokens,
                         cached_tokens=cached_tokens, api_key=api_key, port=port)
        self.models = dict(GEMINI_MODELS if models is None else models)
        self.logprob = float(logprob)

    def _malformed(self) -> _Reject:
        return _gemini_error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")

    def _server_error(self, message: str) -> dict:
        return {"error": {"code": 500, "message": message, "status": "INTERNAL"}}

    def _handle(self, rec, method, path, query, headers, body):
        m = re.search(r"/models/([^/:]+):([A-Za-z]+)$", path)
        if method != "POST" or m is None:
            raise _gemini_error(404, "NOT_FOUND", f"Method not found: {method} {path}")
        model, action = m.group(1), m.group(2)
        key = headers.get("x-goog-api-key") or query.get("key")
        if not key:
            raise _gemini_error(
                403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers (callers "
                "without established identity). Please use API Key or other form of API "
                "consumer identity to call this API.")
        if self.api_key is not None and key != self.api_key:
            raise _gemini_error(400, "INVALID_ARGUMENT",
                                "API key not valid. Please pass a valid API key.", [{
                                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                                    "reason": "API_KEY_INVALID",
                                    "domain": "googleapis.com",
                                    "metadata": {"service": "generativelanguage.googleapis.com"},
                                }])
        version = path.split("/models/")[0].rsplit("/", 1)[-1] or "v1beta"
        if model not in self.models or action not in ("generateContent",
                                                      "streamGenerateContent"):
            raise _gemini_error(
                404, "NOT_FOUND", f"models/{model} is not found for API version {version}, or "
                f"is not supported for {action}. Call ListModels to see the list of available "
                "models and their supported methods.")
        if action == "streamGenerateContent":
            raise _gemini_error(400, "INVALID_ARGUMENT",
                                "streamGenerateContent is not emulated by GeminiEmulator")
        if not isinstance(body, dict):
            raise self._malformed()
        spec = self.models[model]
        req = _camel_keys(body, "", _GEMINI_TOP_FIELDS)
        gen = req.get("generationConfig") or {}
        if not isinstance(gen, dict):
            raise _gemini_error(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config'")
        gen = _camel_keys(gen, "generation_config", _GEMINI_GEN_FIELDS)
        think = gen.get("thinkingConfig") or {}
        think = _camel_keys(think, "generation_config.thinking_config", _GEMINI_THINK_FIELDS)
        contents = req.get("contents")
        if not isinstance(contents, list) or not contents:
            raise _gemini_error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.contents: "
                                "contents is not specified")
        thinking_key = self._thinking(spec, think)
        schema, enum_mode = self._schema(gen)
        max_out = gen.get("maxOutputTokens")
        if max_out is not None and (not isinstance(max_out, int) or max_out < 1):
            raise _gemini_error(400, "INVALID_ARGUMENT", "* GenerateContentRequest."
                                "generation_config.max_output_tokens: must be positive")

        prompt = ""
        for c in reversed(contents):
            if isinstance(c, dict) and c.get("role", "user") == "user":
                prompt = _gemini_text(c)
                break
        text = self._answer(rec, prompt, body)
        if schema is not None:
            if enum_mode:
                choice = fit_to_schema(schema, text)
                rec["constrained"] = choice != text
                text = str(choice)
            else:
                text, rec["constrained"], _ = _constrain(schema, text)

        thoughts = 0
        if thinking_key is not None:
            thoughts = _effort_tokens(self.reasoning_tokens, thinking_key)
            budget = think.get("thinkingBudget")
            if isinstance(budget, int) and budget > 0:
                thoughts = min(thoughts, budget)
        finish = "STOP"
        visible = count_completion_tokens(text)
        if max_out is not None and thoughts >= max_out:
            thoughts, text, visible, finish = max_out, "", 0, "MAX_TOKENS"
        elif max_out is not None and thoughts + visible > max_out:
            text = _cut_words(text, max_out - thoughts)
            visible, finish = count_completion_tokens(text), "MAX_TOKENS"

        parts: list[dict] = []
        if thinking_key is not None and think.get("includeThoughts") and thoughts:
            parts.append({"text": f"**Thinking** about the request ({thoughts} tokens).",
                          "thought": True})
        if text:
            parts.append({"text": text})
        candidate: dict[str, Any] = {
            "content": {"parts": parts, "role": "model"} if parts else {"role": "model"},
            "finishReason": finish,
            "index": 0,
        }
        if gen.get("responseLogprobs") is True:
            chosen = [{"token": w, "logProbability": self.logprob} for w in text.split()]
            candidate["avgLogprobs"] = self.logprob if chosen else 0.0
            candidate["logprobsResult"] = {
                "topCandidates": [{"candidates": [c]} for c in chosen],
                "chosenCandidates": chosen,
            }
        convo = [{"content": _gemini_text(c)} for c in contents]
        system = req.get("systemInstruction")
        if system:
            convo.insert(0, {"content": _gemini_text(system) if isinstance(system, dict)
                             else str(system)})
        pt = count_prompt_tokens(convo)
        cached = min(self.cached_tokens, pt)
        usage: dict[str, Any] = {"promptTokenCount": pt}
        if visible:
            usage["candidatesTokenCount"] = visible
        usage["totalTokenCount"] = pt + visible + thoughts
        if cached:
            usage["cachedContentTokenCount"] = cached
        usage["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": pt}]
        if cached:
            usage["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": cached}]
        if thoughts:
            usage["thoughtsTokenCount"] = thoughts
        seq = self._next_id()
        return {
            "candidates": [candidate],
            "usageMetadata": usage,
            "modelVersion": model,
            "responseId": f"emu{seq:06d}{_digest(model, seq)[:8]}",
        }

    def _thinking(self, spec: GeminiModel, think: dict) -> str | None:
        """The reasoning_tokens key for this request ("dynamic", a level, or "budget"), or None
        when the model does not think."""
        budget, level = think.get("thinkingBudget"), think.get("thinkingLevel")
        if budget is not None and level is not None:
            raise _gemini_error(400, "INVALID_ARGUMENT", "You can only set one of thinking "
                                "budget and thinking level.")
        if level is not None:
            lv = str(level).lower()
            if not spec.levels:
                raise _gemini_error(400, "INVALID_ARGUMENT",
                                    "Thinking level is not supported for this model.")
            if lv not in spec.levels:
                raise _gemini_error(400, "INVALID_ARGUMENT", f"Invalid thinking level "
                                    f"'{level}'. Supported levels: {', '.join(spec.levels)}.")
            return lv
        if budget is None:
            return None if spec.default_thinking == "off" else "dynamic"
        if not isinstance(budget, int):
            raise _gemini_error(400, "INVALID_ARGUMENT", "Invalid value at 'generation_config."
                                f"thinking_config.thinking_budget' (TYPE_INT32), {budget!r}")
        if budget == -1:
            return "dynamic"
        if budget == 0:
            if not spec.can_disable:
                raise _gemini_error(400, "INVALID_ARGUMENT", "Budget 0 is invalid. This model "
                                    "only works in thinking mode.")
            return None
        lo, hi = spec.budget_range
        if not lo <= budget <= hi:
            raise _gemini_error(400, "INVALID_ARGUMENT", f"The thinking budget {budget} is "
                                f"invalid. Please choose a value between {lo} and {hi}.")
        return "budget"

    def _schema(self, gen: dict) -> tuple[Any, bool]:
        mime = gen.get("responseMimeType")
        s1, s2 = gen.get("responseSchema"), gen.get("responseJsonSchema")
        if s1 is not None and s2 is not None:
            raise _gemini_error(400, "INVALID_ARGUMENT", "responseSchema and responseJsonSchema "
                                "cannot both be set.")
        schema = s2 if s2 is not None else _normalize_openapi(s1) if s1 is not None else None
        if schema is None:
            return None, False
        if mime not in ("application/json", "text/x.enum"):
            raise _gemini_error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.generation_"
                                "config.response_mime_type: response_schema (or "
                                "response_json_schema) requires response_mime_type "
                                "'application/json' or 'text/x.enum'")
        if mime == "text/x.enum" and not isinstance(schema.get("enum"), list):
            raise _gemini_error(400, "INVALID_ARGUMENT", "* GenerateContentRequest.generation_"
                                "config.response_schema: text/x.enum requires an enum schema")
        return schema, mime == "text/x.enum"


def _normalize_openapi(schema: Any) -> Any:
    """Gemini ``responseSchema`` (OpenAPI subset, ``STRING``/``OBJECT`` types, snake-case field
    names allowed) -> a plain JSON-schema-ish dict for :func:`fit_to_schema`."""
    if isinstance(schema, list):
        return [_normalize_openapi(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        ck = _camel(k)
        if ck == "properties" and isinstance(v, dict):
            out[ck] = {name: _normalize_openapi(sub) for name, sub in v.items()}
        elif ck == "type" and isinstance(v, str):
            out[ck] = v.lower()
        elif ck in ("items", "anyOf"):
            out[ck] = _normalize_openapi(v)
        else:
            out[ck] = copy.deepcopy(v)
    return out

