"""Model ids → backends.

A model id is ``prefix:rest`` for a registered backend (``llamacpp:``, ``baseline:``) or a litellm
id (``openai/gpt-5.4-nano``), optionally followed by ``?key=value&...`` settings, e.g.
``llamacpp:smollm2?n_gpu_layers=-1`` or ``openai/my-model?api_base=http://127.0.0.1:8080/v1``.

Built-in backends and third-party plugins use the same seam: a callable registered under a
prefix, either in :data:`BUILTIN_BACKENDS` or through the ``slmbench.backends`` entry-point group.
Backends are imported only when a model of theirs is resolved, so the CLI stays fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from slmbench.errors import InputError
from slmbench.models.base import Model

# prefix → "module:factory"; the factory takes (rest_of_id, settings) and returns a Model.
BUILTIN_BACKENDS: dict[str, str] = {
    "llamacpp": "slmbench.models.llamacpp:create",
    "baseline": "slmbench.models.baselines:create",
    "litellm": "slmbench.models.litellm_api:create",
}

# litellm provider prefixes we accept without an explicit ``litellm:`` prefix.
LITELLM_PROVIDERS = (
    "openai", "anthropic", "gemini", "azure", "azure_ai", "vertex_ai", "mistral", "together_ai",
    "fireworks_ai", "deepseek", "groq", "ollama", "ollama_chat", "hosted_vllm", "openrouter",
    "bedrock", "cohere", "xai", "huggingface", "dashscope", "cerebras", "text-completion-openai",
)

#: the setting that labels a model in results, whatever its backend (see resolve_model)
NAME_SETTING = "name"

FORBIDDEN_SETTINGS = {"api_key", "key", "token", "secret", "password"}


def parse_model_id(model_id: str) -> tuple[str, str, dict[str, Any]]:
    """Split ``prefix:rest?settings`` into (backend, rest, settings)."""
    if not isinstance(model_id, str) or not model_id.strip():
        raise InputError("model id is empty", field="--model", value=model_id)
    base, _, query = model_id.strip().partition("?")
    settings: dict[str, Any] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key.lower() in FORBIDDEN_SETTINGS:
            raise InputError(
                f"'{key}' cannot be a model setting: API keys come from the environment only",
                field="--model", value=f"{base}?{key}=***")
        settings[key] = value if key == NAME_SETTING else _coerce(value)
    prefix, sep, rest = base.partition(":")
    if sep and prefix in _backends():
        backend = prefix
    elif "/" in base and base.split("/", 1)[0] in LITELLM_PROVIDERS:
        backend, rest = "litellm", base
    else:
        known = (", ".join(f"{p}:" for p in _backends())
                 + ", or a litellm id like openai/gpt-5.4-nano")
        raise InputError(f"unknown model prefix (expected {known})", field="--model",
                         value=model_id)
    if not rest:
        raise InputError("model id has nothing after the prefix", field="--model", value=model_id)
    return backend, rest, settings


def resolve_model(model_id: str) -> Model:
    """Build the :class:`Model` for an id; raises :class:`InputError` on a bad id or file.

    ``name=LABEL`` (any backend) tells apart two models that would otherwise share a name in
    results, such as one model id served by two endpoints (``api_base``) or two GGUF files
    of one file name: the label joins the model's name (``openai/x?name=box-a``), so each
    gets its own rows, cache entries and leaderboard line; pricing still reads the id before
    the ``?``."""
    from slmbench.tasks.fewshot import PROMPT_SETTINGS, check_setting_values, variant_name

    backend, rest, settings = parse_model_id(model_id)
    # a prompt variant is the task's, not the backend's: any prompted model takes it
    variant = {k: settings.pop(k) for k in PROMPT_SETTINGS if k in settings}
    check_setting_values(variant)
    label = settings.pop(NAME_SETTING, None)
    if label is not None and (not label or any(c in label for c in "?&=/ ")):
        raise InputError("name= needs a short label without ?, &, =, / or spaces",
                         field="--model", value=model_id)
    factory = _load_factory(_backends()[backend])
    model = factory(rest, settings)
    model.model_id = model_id.strip()  # what a Ray actor rebuilds it from
    if variant:
        if not model.prompted:
            raise InputError(f"{model.name} takes no prompt: prompt= and k= are for models "
                             "that are prompted", field="--model", value=model_id)
        model.name = variant_name(model.name, variant)
        model.settings.update(variant)
    if label is not None:
        model.name += f"{'&' if '?' in model.name else '?'}{NAME_SETTING}={label}"
        model.settings[NAME_SETTING] = label
    return model


def _coerce(value: str) -> Any:
    low = value.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def _backends() -> dict[str, str]:
    found = dict(BUILTIN_BACKENDS)
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group="slmbench.backends"):
            found.setdefault(ep.name, ep.value)
    except Exception:  # a broken third-party plugin must not break built-ins
        pass
    return found


def _load_factory(target: str) -> Callable[[str, dict[str, Any]], Model]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)
