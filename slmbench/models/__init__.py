"""Models: one interface, one module per backend, a small registry resolving model ids."""

from slmbench.models.base import Completion, Model, Request
from slmbench.models.registry import parse_model_id, resolve_model

__all__ = ["Completion", "Model", "Request", "parse_model_id", "resolve_model"]
