"""API models through litellm: OpenAI, Anthropic, Gemini, Azure AI, and any OpenAI-compatible
server (llama.cpp server, vLLM, Ollama) via ``api_base``.

litellm is imported on first use only (it takes seconds), with its remote price map disabled:
prices come from slmbench's dated sheets, never from a fetch at run time. litellm's own retries
are off; the runner owns retry policy so that it is the same for every backend.

Confidence: when ``logprobs=true`` is set and the provider returns token logprobs, the
confidence is exp(sum of the answer's token logprobs), the model's probability of the whole
answer it gave. Otherwise it is null.
"""

from __future__ import annotations

import os
import re
import time
import warnings
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slmbench.errors import InputError, ModelCallError
from slmbench.models.base import PRICING_HOURLY, PRICING_TOKENS, Completion, Model, Request
from slmbench.models.contract import missing_key, model_info, resolve_contract
from slmbench.models.settings import ANY, BOOL, FLOAT, INT, URL, Setting, check_settings, defaults
from slmbench.secrets import redact

#: every setting a litellm model takes, checked before the model is built (models/settings.py);
#: reasoning_effort and structured are checked by the contract, against litellm's model map
SETTINGS: dict[str, Setting] = {
    "api_base": Setting(URL),
    "temperature": Setting(FLOAT, 0.0, minimum=0, maximum=2),
    "timeout": Setting(FLOAT, 60.0, minimum=0, exclusive_minimum=True),
    "logprobs": Setting(BOOL, False),
    "seed": Setting(INT, None, minimum=0, maximum=2**63 - 1),
    "reasoning_effort": Setting(ANY),
    "max_tokens": Setting(INT, None, minimum=1),
    "structured": Setting(ANY, "auto"),
}
DEFAULT_SETTINGS: dict[str, Any] = defaults(SETTINGS)

#: settings that name the model in results (``openai/x?reasoning_effort=low``), so that one
#: model run at several efforts or budgets gives several rows
NAMED_SETTINGS = ("reasoning_effort", "max_tokens", "structured")

#: what each of those meant before it existed (runs stored by slmbench before 2026-12-02)
LEGACY_SETTINGS = {"structured": "off", "reasoning_effort": None, "max_tokens": None}

_RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504, 529}


def create(rest: str, settings: dict[str, Any]) -> LiteLLMModel:
    settings, pricing = hourly_pricing(rest, settings)
    provider, slash, model = rest.partition("/")
    if slash and not model.strip():
        raise InputError(f"no model name after '{provider}/' (e.g. {provider}/my-model)",
                         field="--model", value=rest)
    check_settings("litellm", rest, SETTINGS, settings)
    model = LiteLLMModel(rest, {**DEFAULT_SETTINGS, **settings}, explicit=set(settings))
    model.pricing = pricing
    return model


def hourly_pricing(rest: str, settings: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """``pricing=hourly``: a server the user runs (``api_base``) priced by the hour of its
    machine (``--hourly``/``--hardware``), like a local model, instead of per token. Taken out
    of the settings: it changes no answer, so cache keys and resumes stay as they were; the
    manifest records it as the model's ``pricing``."""
    if "pricing" not in settings:
        return settings, PRICING_TOKENS
    rest_settings = {k: v for k, v in settings.items() if k != "pricing"}
    value = settings["pricing"]
    if value not in (PRICING_TOKENS, PRICING_HOURLY):
        raise InputError(f"{rest}: pricing must be {PRICING_TOKENS} or {PRICING_HOURLY}",
                         field="--model", value=f"pricing={value}")
    if value == PRICING_HOURLY and not rest_settings.get("api_base"):
        raise InputError(f"{rest}: pricing=hourly is for a server you run yourself; give its "
                         "api_base", field="--model", value="pricing=hourly")
    return rest_settings, value


#: Environment defaults set before litellm is imported; an explicit value in the environment
#: wins. LITELLM_LOCAL_MODEL_COST_MAP: no remote price map fetch. EXPERIMENTAL_OPENAI_BASE_LLM_
#: HTTP_HANDLER: OpenAI and OpenAI-compatible providers go through litellm's own HTTP handler
#: instead of the openai SDK, whose per-call request transform and client machinery cost about a
#: third of litellm's client CPU per call (benchmarks/bench_api.py --flags; answers, token usage,
#: logprobs and error classes are the same: tests/test_reliability.py and test_async_api.py run
#: through it). Set it to "false" to go back to the SDK.
LITELLM_ENV_DEFAULTS: dict[str, str] = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    # Anthropic's beta-header table from litellm's bundled copy, not fetched from GitHub
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS": "True",
    "EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER": "true",
}


def import_litellm() -> Any:
    for key, value in LITELLM_ENV_DEFAULTS.items():
        os.environ.setdefault(key, value)
    import litellm

    litellm.suppress_debug_info = True
    litellm.telemetry = False
    # a provider returning the wrong type makes pydantic warn on stderr; we report it per row
    warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
    # litellm's Gemini types, built on first use: a note for litellm's authors, not for users
    warnings.filterwarnings("ignore", message=".*using the `ReadOnly` qualifier")
    return litellm


# modules litellm imports during its first chat call (its tokenizer, the proxy's types): ~0.4 s
# of CPU that would otherwise land in the first rows' latency
_FIRST_CALL_MODULES = ("litellm.litellm_core_utils.default_encoding", "litellm.proxy._types")


def _warm_up() -> None:
    import importlib

    for name in _FIRST_CALL_MODULES:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: S112 - a warm-up only; another litellm may not have it
            continue


def register_cost_entry(litellm: Any, name: str) -> bool:
    """Give litellm a cost-map entry for a model it does not know (a model served locally).

    litellm prices every response for its own logging, whatever the caller does with it; for a
    model missing from its map that means a search through provider/region/generalisation
    fallbacks and a failed-pricing diagnostic on every call (about 0.4 ms of client CPU, more
    than the HTTP exchange). slmbench never reads litellm's price (rows are priced from the dated
    sheets), so the entry only has to exist: zero prices, which is what litellm computed for
    such a model anyway. Returns whether an entry was added.
    """
    try:
        litellm.get_model_info(model=name)
        return False
    except Exception:
        pass
    provider = name.split("/", 1)[0]
    entry = {"input_cost_per_token": 0.0, "output_cost_per_token": 0.0,
             "cache_read_input_token_cost": 0.0, "cache_creation_input_token_cost": 0.0,
             "litellm_provider": provider, "mode": "chat"}
    try:
        litellm.register_model({name: entry})
    except Exception:  # an optimisation only: never fail a run over it
        return False
    return True


class LiteLLMModel(Model):
    pricing = PRICING_TOKENS
    thread_safe = True
    remote = True

    def __init__(self, name: str, settings: dict[str, Any],
                 explicit: set[str] | None = None) -> None:
        given = explicit or set()
        # a sweep over these is one model several times: each is its own row and point
        shown = [f"{k}={settings[k]}" for k in NAMED_SETTINGS if k in given]
        super().__init__(name + ("?" + "&".join(shown) if shown else ""), settings)
        self.litellm_id = name
        self._litellm: Any = None
        self._explicit = given
        self._legacy: set[str] = set()  # settings a resumed run had not heard of
        self._resolve()

    def _resolve(self) -> None:
        self.contract = resolve_contract(self.litellm_id, self.settings, self._explicit)
        # what is sent (the contract drops what the provider would reject)
        self.logprobs = self.contract.logprobs
        self.structured_output = self.contract.structured
        info = model_info(self.litellm_id) or {}
        window = info.get("max_input_tokens") or info.get("max_tokens")
        self.context_window = window if type(window) is int and window > 0 else None

    def resume_from(self, stored: dict[str, Any]) -> None:
        """A run stored before ``structured``, ``reasoning_effort`` and ``max_tokens`` existed
        sent no structured output and the task's budget: resume it that way (and record the
        settings as they were stored, so that the resume is not refused as a change)."""
        legacy = {k: v for k, v in LEGACY_SETTINGS.items()
                  if k not in stored and k not in self._explicit}
        if legacy:
            self.settings.update(legacy)
            self._legacy = set(legacy)
            self._resolve()

    def output_budget(self, request: Request) -> int:
        return self.contract.output_budget(request.max_tokens)

    def not_ready(self) -> str | None:
        var = missing_key(self.contract)
        if var is None:
            return None
        return f"missing API key: set {var} in the environment"

    def warnings(self) -> list[str]:
        return [f"{self.name}: {key} dropped: {why}" for key, why in self.contract.dropped.items()
                if key != "temperature"]

    def __getstate__(self) -> dict[str, Any]:
        # worker processes (runner/process_pool.py) get the model by pickle: not the module
        return {**self.__dict__, "_litellm": None}

    def prepare(self, task: Any) -> None:
        if self._litellm is None:
            self._litellm = import_litellm()
            register_cost_entry(self._litellm, self.litellm_id)
            _warm_up()

    def preload(self) -> None:
        self.prepare(None)  # nothing of it depends on the task

    def _call_kwargs(self, request: Request) -> dict[str, Any]:
        s, c = self.settings, self.contract
        kwargs: dict[str, Any] = {
            "model": self.litellm_id, "messages": request.messages,
            "max_tokens": c.output_budget(request.max_tokens), "timeout": s["timeout"],
            "num_retries": 0,
        }
        if c.temperature is not None:
            kwargs["temperature"] = c.temperature
        if c.send_effort is not None:
            kwargs["reasoning_effort"] = c.send_effort
        if s["api_base"]:
            kwargs["api_base"] = s["api_base"]
            if self.litellm_id.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                kwargs["api_key"] = "sk-no-key-needed-for-local-server"
        if s["seed"] is not None:
            kwargs["seed"] = s["seed"]
        if c.logprobs:
            # some OpenAI-compatible servers (llama.cpp's) only return logprobs with top_logprobs
            kwargs["logprobs"] = True
            kwargs["top_logprobs"] = 1
        if c.structured:
            fmt = response_format(request)
            if fmt is not None:
                kwargs["response_format"] = fmt
        return kwargs

    def _check_ready(self) -> None:
        reason = self.not_ready()
        if reason is not None:  # never retried, never sent
            raise ModelCallError(reason, retryable=False, permanent=True)

    def complete(self, request: Request) -> Completion:
        if self._litellm is None:
            self.prepare(None)
        self._check_ready()
        kwargs = self._call_kwargs(request)
        start = time.perf_counter()
        try:
            resp = self._litellm.completion(**kwargs)
        except Exception as exc:
            raise _call_error(exc, self.settings.get("api_base")) from None
        latency = time.perf_counter() - start
        return _to_completion(resp, latency, request, self.contract.structured)

    async def acomplete(self, request: Request) -> Completion:  # type: ignore[override]
        """:meth:`complete` on ``litellm.acompletion``: the same request, errors and parsing."""
        if self._litellm is None:
            self.prepare(None)
        self._check_ready()
        kwargs = self._call_kwargs(request)
        start = time.perf_counter()
        try:
            resp = await self._litellm.acompletion(**kwargs)
        except Exception as exc:  # CancelledError is a BaseException: it goes through
            raise _call_error(exc, self.settings.get("api_base")) from None
        latency = time.perf_counter() - start
        return _to_completion(resp, latency, request, self.contract.structured)

    def tune_event_loop(self, loop: Any) -> None:
        """Called by a worker process (runner/process_pool.py) on the loop that runs its calls
        for as long as it lives: litellm's request set-up then runs inline on it, see
        :class:`_InlineSetupExecutor`."""
        if self._litellm is None:
            self.prepare(None)
        install_inline_setup(loop, self._litellm)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        flag = os.environ.get("EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER",
                              LITELLM_ENV_DEFAULTS["EXPERIMENTAL_OPENAI_BASE_LLM_HTTP_HANDLER"])
        info["openai_http"] = ("litellm base HTTP handler" if flag.strip().lower() in
                               ("true", "1", "yes") else "openai SDK")
        info["contract"] = self.contract.describe()
        info["settings"] = {k: v for k, v in self.settings.items() if k not in self._legacy}
        return info


class _InlineSetupExecutor(ThreadPoolExecutor):
    """An event loop's default executor that runs litellm's request set-up inline.

    ``litellm.acompletion`` runs its synchronous ``completion()`` (which only builds the
    request and returns the coroutine that sends it) through ``loop.run_in_executor``: a thread
    hop per call. On a loop that runs without pause with 16 to 32 calls in flight, the loop's
    thread and the executor's threads then take turns on the GIL, a turn lasting up to the 5 ms
    switch interval, which shows up as latency, hence as fewer calls per second at a fixed
    concurrency: ``benchmarks/bench_api.py`` (d) measured 451 → 516 items/s (+14 %) with it.
    Not used on the in-process loop that ``PairRun`` pauses while the caller writes rows: there
    the set-up threads use those pauses, and running it inline measured 15 % slower. Anything
    else submitted to the default executor (DNS look-ups, file reads) still runs in threads.
    """

    def __init__(self, inline: frozenset[Any]) -> None:
        super().__init__(thread_name_prefix="slmbench-loop")
        self._inline = inline

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future:
        # litellm submits functools.partial(context.run, functools.partial(completion, ...))
        inner = fn.args[0] if not args and not kwargs and getattr(fn, "args", None) else None
        if getattr(inner, "func", None) not in self._inline:
            return super().submit(fn, *args, **kwargs)
        future: Future = Future()
        try:
            future.set_result(fn())
        except Exception as exc:  # delivered to the awaiting call, as from a thread
            future.set_exception(exc)
        return future


_inline_loops: weakref.WeakSet[Any] = weakref.WeakSet()


def install_inline_setup(loop: Any, litellm: Any) -> None:
    """Give ``loop`` the inline set-up executor (once per loop)."""
    import sys

    if loop in _inline_loops:
        return
    _inline_loops.add(loop)
    main = sys.modules.get("litellm.main")
    targets = frozenset(f for f in (getattr(litellm, "completion", None),
                                    getattr(main, "completion", None)) if f is not None)
    if targets:
        loop.set_default_executor(_InlineSetupExecutor(targets))


def _retry_after(exc: Exception) -> float | None:
    """Seconds from a Retry-After header, wherever litellm kept the response headers."""
    response = getattr(exc, "response", None)
    for headers in (getattr(exc, "litellm_response_headers", None), getattr(exc, "headers", None),
                    getattr(response, "headers", None)):
        if not headers:
            continue
        try:
            raw = headers.get("retry-after") or headers.get("Retry-After")
        except AttributeError:
            continue
        if raw is None:
            continue
        try:
            return max(0.0, float(raw))
        except (TypeError, ValueError):
            return None  # an HTTP date: fall back to our own back-off
    return None


#: errors that the same request meets on every item: a key, a parameter, a model name
_CONFIG_ERRORS = ("AuthenticationError", "PermissionDeniedError", "NotFoundError",
                  "BadRequestError", "UnsupportedParamsError", "UnprocessableEntityError")
#: errors about one item's content, however they are sent
_ITEM_ERRORS = ("ContextWindowExceededError", "ContentPolicyViolationError")
#: how litellm says a key is missing before it sends anything (its class and status vary by
#: provider: Gemini's is an APIConnectionError 500)
_MISSING_KEY = ("missing gemini api key", "api key is missing", "api_key client option must be "
                "set", "missing anthropic api key", "no api key", "missing api key")


def _call_error(exc: Exception, api_base: str | None = None) -> ModelCallError:
    """Classify a litellm exception: transient (retry), permanent for the model (a
    configuration problem: stop it), or a failure of this item only (record and move on).
    ``api_base``: the server called, which a connection failure names."""
    status = getattr(exc, "status_code", None)
    name = type(exc).__name__
    text = str(exc).strip()
    # litellm gives a failure without an HTTP answer status 500 (or none), and a 200 answer
    # that is no completion its own status: a provider's real HTTP error keeps its words
    plain = _plain_failure(exc, text, api_base) if status in (None, 200, 500) else None
    if plain is not None:  # no HTTP answer, or one that is not a completion: no status either
        reason, retryable = plain
        return ModelCallError(redact(reason)[:240], retryable=retryable,
                              retry_after=_retry_after(exc))
    missing_key = any(m in text.lower() for m in _MISSING_KEY)
    item_only = name in _ITEM_ERRORS
    config = missing_key or (not item_only and (
        name in _CONFIG_ERRORS or status in (400, 401, 403, 404)))
    not_retryable = config or item_only or status in (400, 401, 403, 404, 422)
    retryable = not not_retryable and (status in _RETRYABLE_STATUS or name in (
        "Timeout", "APIConnectionError", "RateLimitError", "ServiceUnavailableError",
        "InternalServerError", "APIError", "BadGatewayError"))
    message = text.splitlines()[0] if text else name
    for noise in ("litellm.", f"{name}: ", "OpenAIException - "):
        message = message.replace(noise, "")
    message = _ADDRESS.sub("", _json_error_message(message))
    reason = f"{name}{f' {status}' if status else ''}: {redact(message)[:240]}"
    return ModelCallError(reason, retryable=retryable, retry_after=_retry_after(exc),
                          status=status if isinstance(status, int) else None,
                          permanent=config)


#: what varies per process in an exception's text and says nothing about the cause (an SSL
#: context's memory address), which would make one cause count as several reasons
_ADDRESS = re.compile(r"\s*ssl:<[^>]*>|\s*<[^<>]* at 0x[0-9a-fA-F]+>| at 0x[0-9a-fA-F]+")
_HOST_IN_TEXT = re.compile(r"(?:host|to) ([\w.-]+:\d+)")
#: failures below HTTP, as aiohttp, httpx and the OS word them → (short reason, retryable);
#: ``{at}`` is the server called. litellm reports them all as "500", which they are not.
_TRANSPORT: tuple[tuple[re.Pattern[str], str, bool], ...] = (
    (re.compile(r"Name or service not known|nodename nor servname|getaddrinfo failed|"
                r"Temporary failure in name resolution|No address associated", re.I),
     "host not found: {at}", True),
    (re.compile(r"Connection refused|Connect call failed", re.I),
     "connection refused by {at}", True),
    (re.compile(r"Connection reset|ECONNRESET", re.I), "connection reset by {at}", True),
    (re.compile(r"Server disconnected|without sending a response|RemoteProtocolError|"
                r"Connection aborted|IncompleteRead|EOF occurred", re.I),
     "connection closed by {at} without a response", True),
    (re.compile(r"Cannot connect to host|ConnectError|All connection attempts failed", re.I),
     "cannot connect to {at}", True),
)
#: litellm's words for a 200 answer whose body is not JSON
_NOT_JSON = re.compile(r"Unable to get json response|Expecting value: line 1 column 1", re.I)
#: litellm's words for a JSON answer that does not parse as a completion (a pydantic error)
_VALIDATION = re.compile(r"validation error for (\w+)\s*\n\s*([\w.]+)\s*\n\s*([^\n\[]+?)\s*"
                         r"\[type=[^,\]]+, input_value=([^,\]]+)")
#: OpenAI's usage fields under the names of a row
_USAGE_NAMES = {"prompt_tokens": "tokens_in", "completion_tokens": "tokens_out",
                "total_tokens": "total_tokens"}


def _plain_failure(exc: Exception, text: str, api_base: str | None
                   ) -> tuple[str, bool] | None:
    """(reason, retryable) of a failure that is no provider's HTTP error: the connection
    failed, or the answer was not a completion; None for the rest."""
    for pattern, template, retryable in _TRANSPORT:
        if pattern.search(text):
            return template.format(at=_endpoint(api_base, text)), retryable
    if _NOT_JSON.search(text):
        return f"response was not JSON ({_content_type(exc, text)})", True
    if "Invalid response object" in text:  # retried: a proxy may garble one answer
        found = _VALIDATION.search(text)
        if found is None:
            return "response was not a chat completion", True
        model, field, why, value = found.groups()
        if model == "Usage" and field in _USAGE_NAMES:
            return f"provider reported {_USAGE_NAMES[field]}={value}", True
        return f"response was not a chat completion: {model}.{field}={value} ({why})", True
    return None


def _endpoint(api_base: str | None, text: str) -> str:
    """host:port of the server called (never the user part of a URL), else what the error
    names, else "the provider"."""
    if api_base:
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(api_base)
            port = parts.port
        except ValueError:
            parts, port = None, None
        if parts is not None and parts.hostname:
            port = port or {"http": 80, "https": 443}.get(parts.scheme)
            return f"{parts.hostname}:{port}" if port else parts.hostname
    found = _HOST_IN_TEXT.search(text)
    return found.group(1) if found else "the provider"


def _content_type(exc: Exception, text: str) -> str:
    """The Content-Type the server answered with, or what the body looks like."""
    for headers in (getattr(exc, "litellm_response_headers", None),
                    getattr(getattr(exc, "response", None), "headers", None)):
        try:
            value = headers.get("content-type") if headers else None
        except AttributeError:
            value = None
        if value:
            return str(value).split(";")[0].strip()
    body = text.partition("Original Response:")[2].strip()
    if not body:
        return "an empty body"
    return "text/html" if body.startswith("<") else "text"


def _json_error_message(message: str) -> str:
    """litellm's own HTTP handler passes the provider's error body through as the message
    (``{"error": {"message": ...}}``): keep the provider's message, as the SDK path does."""
    start = message.find("{")
    if start < 0:
        return message
    import json

    try:
        body, _ = json.JSONDecoder().raw_decode(message[start:])
    except ValueError:
        return message
    error = body.get("error") if isinstance(body, dict) else None
    inner = error.get("message") if isinstance(error, dict) else None
    if not isinstance(inner, str) or not inner.strip():
        return message
    return (message[:start] + inner).strip()


def response_format(request: Request) -> dict[str, Any] | None:
    """The structured-output form of a request's answer space, as litellm takes it (and
    translates for Anthropic and Gemini): an object with one ``answer`` field whose ``enum``
    is the label set, or the extraction schema. Strict mode wants every object closed and
    fully required, and no length keywords (those bound llama.cpp's grammar only)."""
    if request.choices:
        schema: dict[str, Any] = {
            "type": "object", "properties": {"answer": {"type": "string",
                                                        "enum": list(request.choices)}},
            "required": ["answer"], "additionalProperties": False}
    elif request.json_schema is not None and request.json_schema.get("type") == "object":
        schema = _strict(request.json_schema)
    else:
        return None
    return {"type": "json_schema",
            "json_schema": {"name": "answer", "strict": True, "schema": schema}}


def _strict(schema: Any) -> Any:
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _strict(v) for k, v in schema.items() if k not in ("maxLength", "minLength")}
    if out.get("type") == "object" and "properties" in out:
        out["required"] = list(out["properties"])
        out["additionalProperties"] = False
    return out


def _unwrap_answer(text: str) -> str:
    """The label inside a structured ``{"answer": ...}`` reply; the text itself when it is
    not one (then it is scored, and counted invalid or truncated, as it stands)."""
    import json

    try:
        value = json.loads(text)
    except ValueError:
        return text
    if isinstance(value, dict) and isinstance(value.get("answer"), str):
        return value["answer"]
    return text


def _usage_int(obj: Any, name: str) -> int | None:
    value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _to_completion(resp: Any, latency: float, request: Request,
                   structured: bool = False) -> Completion:
    try:
        choice = resp.choices[0]
        content = choice.message.content
    except (AttributeError, IndexError, TypeError, KeyError):
        raise ModelCallError("malformed response: no choices[0].message", retryable=True) from None
    if content is not None and not isinstance(content, str):
        raise ModelCallError(f"malformed response: content is {type(content).__name__}",
                             retryable=False)
    text = content or ""
    if structured and request.choices and text:
        text = _unwrap_answer(text)
    finish = getattr(choice, "finish_reason", None)
    usage = getattr(resp, "usage", None)
    tokens_in = _usage_int(usage, "prompt_tokens") if usage else None
    tokens_out = _usage_int(usage, "completion_tokens") if usage else None
    cached = reasoning = cache_write = None
    if usage is not None:
        details = getattr(usage, "prompt_tokens_details", None)
        if details is not None:
            cached = _usage_int(details, "cached_tokens")
        out_details = getattr(usage, "completion_tokens_details", None)
        if out_details is not None:
            reasoning = _usage_int(out_details, "reasoning_tokens")
        # Anthropic's cache writes; litellm folds them into prompt_tokens
        cache_write = _usage_int(usage, "cache_creation_input_tokens")
        if cached is None:
            cached = _usage_int(usage, "cache_read_input_tokens")
    source = "provider"
    if not tokens_in or tokens_out is None:
        from slmbench.models.tokens import count_messages, count_tiktoken

        tokens_in, tokens_out, source = count_messages(request.messages), count_tiktoken(text), \
            "tiktoken"
        cached = reasoning = cache_write = None
    confidence = None
    logprobs = getattr(choice, "logprobs", None)
    content_lp = getattr(logprobs, "content", None) if logprobs is not None else None
    if content_lp is None and isinstance(logprobs, dict):
        content_lp = logprobs.get("content")
    if content_lp:
        import math

        total = 0.0
        for tok in content_lp:
            lp = tok.get("logprob") if isinstance(tok, dict) else getattr(tok, "logprob", None)
            if lp is None:
                total = None
                break
            total += float(lp)
        if total is not None:
            confidence = min(1.0, math.exp(total))
    return Completion(text=text, latency_s=latency, tokens_in=tokens_in, tokens_out=tokens_out,
                      token_source=source, cached_tokens_in=cached, confidence=confidence,
                      confidence_source="token-logprob" if confidence is not None else None,
                      finish_reason=finish if isinstance(finish, str) else None,
                      reasoning_tokens=reasoning,
                      cache_write_tokens=cache_write)
