"""The one interface every backend implements, built-ins and plugins alike.

A backend gets a :class:`Request` (chat messages plus the raw item text and, for closed answer
sets, the allowed choices) and returns a :class:`Completion` carrying what the rest of the
pipeline needs: the text, token usage and where it came from, latency, and a confidence where
the backend can honestly give one (never a made-up value).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ClassVar

# defined with the other stored records; imported from here by backends and plugins
from slmbench.records import Completion, Request

__all__ = ["PRICING_HOURLY", "PRICING_TOKENS", "Completion", "Model", "Request",
           "semantic_settings"]

if TYPE_CHECKING:
    from slmbench.tasks.loading import LoadedTask

# How a model is paid for: per token from a price sheet, or per hour of the hardware it runs on.
PRICING_TOKENS = "tokens"
PRICING_HOURLY = "hourly"


#: settings that change how fast or where a model is called, never what it answers
NON_SEMANTIC_SETTINGS = {"timeout", "n_threads", "n_batch", "api_base", "instances",
                         "extra_bufts"}


def semantic_settings(settings: dict[str, Any]) -> dict[str, Any]:
    """The settings an answer depends on: what the cache key and a resume compare (also
    inside nested settings, such as a chain's steps)."""
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items() if k not in NON_SEMANTIC_SETTINGS}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return strip(settings)


class Model(ABC):
    """A model under test. ``name`` identifies it in results; ``settings`` pins how it ran."""

    #: how the model is priced (see PRICING_*)
    pricing: str = PRICING_TOKENS
    #: True when calls may run in parallel threads (network APIs); False for in-process models
    thread_safe: bool = False
    #: most calls it can serve at once when thread_safe (None: --concurrency decides)
    parallel: int | None = None
    #: False when an answer depends on more than (settings, request), e.g. a trained baseline
    cacheable: bool = True
    #: the id it was resolved from (set by resolve_model): other processes, e.g. Ray actors,
    #: rebuild the model from it
    model_id: str | None = None
    #: tokens one request may hold, where the backend knows it (None: unknown): a call
    #: reporting more than ten times this is refused as a provider fault (runner/items.py)
    context_window: int | None = None
    #: Optional native asyncio path: a backend that talks to a network service defines
    #: ``async def acomplete(self, request) -> Completion`` (same contract as :meth:`complete`,
    #: raising ModelCallError on failure). The runner then keeps every call of a pair on one
    #: event loop instead of a thread per call in flight: threads cost a GIL hand-off per call
    #: and, for litellm, an event loop of its own per thread. None: calls run in threads.
    acomplete: ClassVar[Callable[..., Awaitable[Completion]] | None] = None

    # Capabilities: what the runner and the pricing may rely on, declared here so that a
    # backend that says nothing is described by these defaults in the manifest (see
    # :meth:`capabilities`), visibly, rather than by a describe() key someone forgot. A
    # backend whose capability depends on its settings sets the attribute in ``__init__``.
    #: runs (partly) on a GPU: an hourly price then needs the GPU machine's rate, and a Ray
    #: worker a GPU
    gpu_offload: bool = False
    #: answers carry a confidence from the model's own token probabilities
    logprobs: bool = False
    #: the answer is held to the task's closed label set or JSON schema while it is generated
    structured_output: bool = False
    #: answers a prompt: takes the task's prompt variants and few-shot examples (``?prompt=``,
    #: ``?k=``); False for a classifier trained on the train split
    prompted: bool = True

    def __init__(self, name: str, settings: dict[str, Any]) -> None:
        self.name = name
        self.settings = dict(settings)

    #: True for a model behind a paid remote API: it gets the pre-flight probe and fail-fast
    remote: bool = False

    def output_budget(self, request: Request) -> int:
        """The output tokens one request may use, as sent (the cost cap's upper bound): a
        reasoning model adds room for its hidden tokens to the task's answer budget."""
        return request.max_tokens

    def not_ready(self) -> str | None:
        """Why no call can succeed (a missing API key variable), checked before any call;
        None when nothing is known to be wrong."""
        return None

    def resume_from(self, stored: dict[str, Any]) -> None:  # noqa: B027 - optional hook
        """Called on a resume with the settings the run stored for this model: a backend
        whose settings grew since then sets each new one, unless given, to what it meant before
        it existed, so that the resumed rows answer like the stored ones."""

    def warnings(self) -> list[str]:
        """One line per setting that was asked for but cannot be honoured (shown once)."""
        return []

    def supports(self, kind: str) -> bool:
        """Whether this model can do a task kind at all (a classifier cannot extract JSON)."""
        return True

    def prepare(self, task: LoadedTask) -> None:  # noqa: B027 - optional hook
        """Called once per task before any item: load weights, train a baseline, warm up."""

    def preload(self) -> None:  # noqa: B027 - optional hook
        """The task-free part of :meth:`prepare` (imports), run in a worker process as soon
        as it starts, so that it overlaps the parent's loading of the tasks."""

    @abstractmethod
    def complete(self, request: Request) -> Completion:
        """Answer one item. Raise :class:`~slmbench.errors.ModelCallError` on failure."""

    def capabilities(self) -> dict[str, Any]:
        """The capability attributes as the manifest records them (``async``: has
        :attr:`acomplete`); stored runs are priced from this record, not from the class."""
        return {"pricing": self.pricing, "gpu_offload": bool(self.gpu_offload),
                "logprobs": bool(self.logprobs),
                "structured_output": bool(self.structured_output),
                "async": self.acomplete is not None}

    def describe(self) -> dict[str, Any]:
        """What goes in the manifest: enough to reproduce the run, never a secret (``model_id``:
        the id as given, from which a bare ``--resume`` rebuilds the model)."""
        return {"name": self.name, "model_id": self.model_id,
                "backend": type(self).__module__.rsplit(".", 1)[-1],
                "pricing": self.pricing, "settings": self.settings,
                "capabilities": self.capabilities()}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release weights, sessions, threads."""
