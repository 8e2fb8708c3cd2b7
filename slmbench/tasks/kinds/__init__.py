"""Task kinds: one module per kind, found by name.

Built-in kinds and third-party ones use the same seam as backends
(:mod:`slmbench.models.registry`): a ``"module:attribute"`` target registered under the kind's
name, in :data:`BUILTIN_KINDS` or through the ``slmbench.task_kinds`` entry-point group. The
attribute is a :class:`~slmbench.tasks.kinds.base.TaskKind` instance (or its class). A kind's
module is imported the first time a task of that kind is met, so the CLI stays fast.

A plugin that cannot be loaded is left out with a warning naming it and the reason: a task of
its kind then fails with "unknown kind", and the warning says why.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Any

from slmbench.errors import InputError
from slmbench.tasks.kinds.base import RequestParts, TaskKind

__all__ = ["BUILTIN_KINDS", "ENTRY_POINT_GROUP", "KINDS", "RequestParts", "TaskKind",
           "find_kind", "get_kind", "kind_names", "loaded_kinds"]

# kind name → "module:attribute" of its TaskKind
BUILTIN_KINDS: dict[str, str] = {
    "classification": "slmbench.tasks.kinds.classification:KIND",
    "routing": "slmbench.tasks.kinds.routing:KIND",
    "extraction": "slmbench.tasks.kinds.extraction:KIND",
    "chain": "slmbench.tasks.kinds.chain:KIND",
    "multilabel": "slmbench.tasks.kinds.multilabel:KIND",
}
ENTRY_POINT_GROUP = "slmbench.task_kinds"
#: the built-in kinds (:func:`kind_names` adds the installed plugins)
KINDS = tuple(BUILTIN_KINDS)

_loaded: dict[str, TaskKind] = {}
_broken: set[str] = set()  # plugins that failed to load (warned about once)


def entry_points(group: str) -> Any:
    """The installed entry points of ``group`` (a seam, so tests can install a fake one)."""
    from importlib.metadata import entry_points as installed

    return installed(group=group)


@functools.lru_cache(maxsize=1)
def _targets() -> dict[str, str | Any]:
    """Kind name → target: a ``module:attribute`` string, or a plugin's entry point."""
    found: dict[str, str | Any] = dict(BUILTIN_KINDS)
    try:
        points = list(entry_points(ENTRY_POINT_GROUP))
    except Exception as exc:  # a broken environment must not break built-ins
        warnings.warn(f"task kind plugins could not be listed ({ENTRY_POINT_GROUP}): "
                      f"{type(exc).__name__}: {exc}", RuntimeWarning, stacklevel=2)
        return found
    for ep in points:
        if ep.name in found:
            if found[ep.name] != getattr(ep, "value", None):
                warnings.warn(f"task kind plugin '{ep.name}' ({ep.value}) is ignored: a kind "
                              "of that name is already registered", RuntimeWarning,
                              stacklevel=2)
            continue
        found[ep.name] = ep
    return found


def kind_names() -> tuple[str, ...]:
    """Every kind a task may name: the built-in ones, then the installed plugins."""
    return tuple(_targets())


def find_kind(name: Any) -> TaskKind | None:
    """The kind of that name, or None when no kind (or no loadable plugin) has it."""
    if not isinstance(name, str):
        return None
    kind = _loaded.get(name)
    if kind is not None:
        return kind
    target = _targets().get(name)
    if target is None or name in _broken:
        return None
    try:
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            obj = getattr(importlib.import_module(module), attr)
        else:
            obj = target.load()
        kind = obj() if isinstance(obj, type) else obj
        if not isinstance(kind, TaskKind):
            raise TypeError(f"{type(kind).__name__} is not a TaskKind")
    except Exception as exc:  # a broken plugin must not break the others
        if isinstance(target, str):
            raise  # a built-in kind that does not load is a bug, not a plugin problem
        _broken.add(name)
        warnings.warn(f"task kind plugin '{name}' ({getattr(target, 'value', target)}) could "
                      f"not be loaded: {type(exc).__name__}: {exc}", RuntimeWarning,
                      stacklevel=2)
        return None
    if kind.name != name:
        kind.name = name  # the registered name is the one tasks and stored rows use
    _loaded[name] = kind
    return kind


def get_kind(name: Any) -> TaskKind:
    """The kind of that name; an :class:`InputError` naming the known kinds otherwise (a
    stored run of a plugin kind read where the plugin is not installed)."""
    kind = find_kind(name)
    if kind is None:
        raise InputError(f"unknown task kind (known: {', '.join(kind_names())})",
                         field="kind", value=name)
    return kind


def loaded_kinds() -> list[TaskKind]:
    """Every kind that loads, in :func:`kind_names` order (what the task schema lists)."""
    return [k for k in map(find_kind, kind_names()) if k is not None]


def reset() -> None:
    """Forget what was discovered and loaded (tests that install a plugin)."""
    _targets.cache_clear()
    _loaded.clear()
    _broken.clear()
