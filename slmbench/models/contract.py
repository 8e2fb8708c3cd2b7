"""What an API model accepts, worked out before the first call from what litellm knows of it.

Providers differ in what a request may carry, and a request that breaks the contract fails on
every item: a GPT-5 model whose reasoning is on rejects ``temperature`` and ``logprobs``,
Anthropic has no logprobs at all, extended thinking wants temperature 1, and a reasoning model
spends its output budget on hidden tokens before it writes the answer. So slmbench resolves one
:class:`Contract` per model from litellm's bundled model map (offline and versioned with the
installed litellm; read as JSON, so the parent process never pays for ``import litellm``) and
sends only what it allows. What was sent and what was dropped, with the reason, go in the
manifest.

Rules, in the order they apply:

* **Reasoning effort.** A model the map marks ``supports_reasoning`` reasons at the provider's
  default unless ``reasoning_effort`` is set: the map's ``default_reasoning_effort`` where it
  gives one, else ``medium`` on OpenAI (reasoning is on by default), ``none`` on Anthropic
  (thinking is opt-in) and the provider's own default elsewhere (Gemini thinks by default).
  A level the map marks unsupported (``supports_none_reasoning_effort: false`` …) is refused
  before the run, as is ``reasoning_effort`` on a model the map does not mark as reasoning.
* **Temperature.** Sent (default 0, for repeatable answers) unless the provider rejects it in
  this configuration: OpenAI while reasoning is active, Anthropic with extended thinking, and
  any model the map marks ``supports_sampling_params: false``. The default is then dropped; an
  explicit ``temperature`` the model cannot take is refused before the run.
* **Logprobs.** Asked for only where the provider returns them: never on Anthropic, not on an
  OpenAI model while reasoning is active. Elsewhere ``logprobs=true`` degrades to a null
  confidence with one warning, instead of failing every item.
* **Output budget.** ``max_tokens`` set on the model wins. Otherwise the task's answer budget,
  plus, while reasoning is active, a reserve for the hidden reasoning tokens that the provider
  counts in the same budget (:data:`REASONING_RESERVE`: twice the thinking budget litellm maps
  each effort to, so an answer still fits when the model thinks its full budget), capped at the
  model's ``max_output_tokens``.
* **Structured output.** ``structured=auto`` (default) sends the label enum or the extraction
  schema as ``response_format`` where the map says ``supports_response_schema``; ``on`` forces
  it, ``off`` never sends it.

Models litellm does not know (a local server behind ``api_base``) keep today's request: the
map has nothing to say about them, and an OpenAI-compatible server takes every parameter.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from slmbench.errors import InputError

EFFORTS = ("none", "minimal", "low", "medium", "high", "xhigh", "max")
STRUCTURED = ("auto", "on", "off")

#: extra output tokens for hidden reasoning, per effort ("default": the provider decides)
REASONING_RESERVE = {"minimal": 1024, "low": 2048, "medium": 4096, "default": 4096,
                     "high": 8192, "xhigh": 16384, "max": 32768}

#: the thinking budget litellm sends Anthropic for each effort (max_tokens must exceed it)
ANTHROPIC_THINKING_BUDGET = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096,
                             "xhigh": 8192, "max": 16384}
#: providers on which reasoning is on unless turned off (Anthropic's thinking is opt-in)
_REASONING_BY_DEFAULT = {"openai": "medium", "azure": "medium", "anthropic": "none"}
#: providers that never return token logprobs
_NO_LOGPROBS = {"anthropic", "bedrock", "vertex_ai"}
#: providers whose reasoning models reject sampling parameters while reasoning is active
_SAMPLING_OFF_WHILE_REASONING = {"openai", "azure"}

#: providers whose ``api_base`` is usually a server of one's own (llama.cpp, vLLM, Ollama)
_OWN_SERVERS = {"openai", "hosted_vllm", "ollama", "ollama_chat", "text-completion-openai"}
#: the environment variables litellm reads a provider's key from (any one suffices); a
#: provider not listed here is checked by the pre-flight probe alone
KEY_VARIABLES: dict[str, tuple[str, ...]] = {
    "openai": ("OPENAI_API_KEY",), "anthropic": ("ANTHROPIC_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"), "mistral": ("MISTRAL_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY", "TOGETHER_API_KEY", "TOGETHER_AI_API_KEY"),
    "fireworks_ai": ("FIREWORKS_API_KEY", "FIREWORKS_AI_API_KEY", "FIREWORKSAI_API_KEY"),
    "deepseek": ("DEEPSEEK_API_KEY",), "groq": ("GROQ_API_KEY",), "xai": ("XAI_API_KEY",),
    "openrouter": ("OPENROUTER_API_KEY",), "dashscope": ("DASHSCOPE_API_KEY",),
    "cerebras": ("CEREBRAS_API_KEY",), "cohere": ("COHERE_API_KEY",),
    "azure": ("AZURE_API_KEY", "AZURE_OPENAI_API_KEY"), "azure_ai": ("AZURE_AI_API_KEY",),
}


@lru_cache(maxsize=1)
def model_map() -> tuple[dict[str, Any], str | None]:
    """litellm's bundled model map and litellm's version, without importing litellm."""
    import importlib.metadata
    import importlib.util

    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}, None
    path = Path(next(iter(spec.submodule_search_locations))) / \
        "model_prices_and_context_window_backup.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = importlib.metadata.version("litellm")
    except (OSError, ValueError, importlib.metadata.PackageNotFoundError):
        return {}, None
    return (data if isinstance(data, dict) else {}), version


def model_info(name: str) -> dict[str, Any] | None:
    """The map's entry for a litellm id such as ``openai/gpt-5-mini`` or ``gemini/x``."""
    data, _ = model_map()
    provider, _, rest = name.partition("/")
    for key in (name, rest):
        entry = data.get(key)
        if isinstance(entry, dict) and entry.get("litellm_provider", provider) in (
                provider, f"{provider}_chat", "text-completion-openai"):
            return entry
    entry = data.get(name)
    return entry if isinstance(entry, dict) else None


@dataclass(frozen=True)
class Contract:
    """What slmbench sends to one API model, and why."""

    provider: str
    known: bool
    reasoning: bool
    effort: str | None  # the effective effort; None: not a reasoning model
    send_effort: str | None  # what goes out as reasoning_effort (None: not sent)
    temperature: float | None  # None: not sent
    logprobs: bool
    structured: bool
    max_tokens: int | None  # fixed by the user; None: the task's budget (+ reserve)
    max_output: int | None
    key_variables: tuple[str, ...]
    dropped: dict[str, str] = field(default_factory=dict)
    litellm_version: str | None = None

    @property
    def reasoning_active(self) -> bool:
        return self.reasoning and self.effort not in (None, "none")

    def output_budget(self, task_budget: int) -> int:
        """``max_tokens`` for one request: see the module docstring."""
        if self.max_tokens is not None:
            return self.max_tokens
        budget = task_budget
        if self.reasoning_active:
            budget += REASONING_RESERVE.get(self.effort or "default", REASONING_RESERVE["default"])
        if self.max_output:
            budget = min(budget, self.max_output)
        return budget

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _int_setting(key: str, value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError("must be a whole number of tokens, at least 1", field="--model",
                         value=f"{name}?{key}={value}")
    return value


def resolve_contract(name: str, settings: dict[str, Any], explicit: set[str]) -> Contract:
    """The contract of litellm model ``name`` under ``settings``; ``explicit`` holds the
    settings the user gave (a default may be dropped, a user's value is refused instead)."""
    provider = name.split("/", 1)[0]
    info = model_info(name) or {}
    _, version = model_map()
    known = bool(info)
    dropped: dict[str, str] = {}

    reasoning = bool(info.get("supports_reasoning"))
    effort = settings.get("reasoning_effort")
    if effort is not None:
        effort = str(effort).lower()
        if effort not in EFFORTS:
            raise InputError(f"unknown reasoning_effort; one of {', '.join(EFFORTS)}",
                             field="--model", value=f"{name}?reasoning_effort={effort}")
        if known and not reasoning:
            raise InputError("litellm's model map does not mark this model as a reasoning "
                             "model; drop reasoning_effort", field="--model",
                             value=f"{name}?reasoning_effort={effort}")
        if info.get(f"supports_{effort}_reasoning_effort") is False:
            raise InputError(f"this model does not take reasoning_effort={effort} (litellm's "
                             "model map)", field="--model", value=f"{name}?reasoning_effort="
                             f"{effort}")
        send_effort: str | None = effort
    else:
        send_effort = None
        if reasoning:
            effort = (info.get("default_reasoning_effort")
                      or _REASONING_BY_DEFAULT.get(provider, "default"))
    active = reasoning and effort not in (None, "none")

    temperature: float | None = settings.get("temperature")
    reason = None
    if info.get("supports_sampling_params") is False:
        reason = "the model takes no sampling parameters (litellm's model map)"
    elif active and provider in _SAMPLING_OFF_WHILE_REASONING:
        reason = f"rejected while reasoning is active (reasoning_effort={effort})"
    elif active and provider == "anthropic":
        reason = "extended thinking requires temperature 1"
    if reason is not None and temperature is not None:
        if "temperature" in explicit and temperature != 1:
            raise InputError(f"temperature is {reason}; drop it or set reasoning_effort=none",
                             field="--model", value=f"{name}?temperature={temperature}")
        dropped["temperature"] = reason
        temperature = None

    logprobs = bool(settings.get("logprobs"))
    if logprobs:
        why = None
        if provider in _NO_LOGPROBS:
            why = f"{provider} returns no token logprobs"
        elif active and provider in _SAMPLING_OFF_WHILE_REASONING:
            why = f"rejected while reasoning is active (reasoning_effort={effort})"
        if why is not None:
            dropped["logprobs"] = why + "; confidence is null"
            logprobs = False

    mode = str(settings.get("structured", "auto")).lower()
    if mode not in STRUCTURED:
        raise InputError(f"structured is one of {', '.join(STRUCTURED)}", field="--model",
                         value=f"{name}?structured={mode}")
    structured = mode == "on" or (mode == "auto" and bool(info.get("supports_response_schema")))

    max_tokens = settings.get("max_tokens")
    if max_tokens is not None:
        max_tokens = _int_setting("max_tokens", max_tokens, name)
    if max_tokens is not None and active and provider == "anthropic":
        budget = ANTHROPIC_THINKING_BUDGET.get(str(effort), 0)
        if max_tokens <= budget:
            raise InputError(f"max_tokens must be more than the thinking budget of "
                             f"reasoning_effort={effort} ({budget} tokens)", field="--model",
                             value=f"{name}?max_tokens={max_tokens}")
    max_output = info.get("max_output_tokens")
    # an OpenAI-compatible server of one's own needs no key; a proxy of a provider still does
    keys = () if settings.get("api_base") and provider in _OWN_SERVERS \
        else KEY_VARIABLES.get(provider, ())
    return Contract(provider=provider, known=known, reasoning=reasoning,
                    effort=effort if reasoning or effort else None, send_effort=send_effort,
                    temperature=temperature, logprobs=logprobs, structured=structured,
                    max_tokens=max_tokens,
                    max_output=max_output if isinstance(max_output, int) else None,
                    key_variables=keys, dropped=dropped, litellm_version=version)


def missing_key(contract: Contract) -> str | None:
    """The variable to set when none of the provider's key variables is set, else None."""
    import os

    if not contract.key_variables:
        return None
    if any(os.environ.get(v) for v in contract.key_variables):
        return None
    return contract.key_variables[0]
