"""Executors by name (``--executor``): who makes a pair's calls.

Built-in executors and third-party ones use one seam, as model backends do
(models/registry.py): a name maps to ``"module:Class"``, either in :data:`BUILTIN_EXECUTORS`
or through the ``slmbench.executors`` entry-point group, and modules are imported only when a
run picks its executor (``auto`` asks each), so ``slmbench --help`` loads none of them. A
plugin that cannot be listed or loaded never takes the built-ins down: it is left out with a
warning, and naming it with ``--executor`` is refused with the reason (exit 2).

An executor class is a pair run (subclass :class:`slmbench.runner.pair.PairRun`): built with
``(task, model, scorer, options, accounts)``, where ``options`` is :class:`ExecutorOptions`
(the run options an executor may act on, nothing else) and ``accounts`` the pair's
:class:`~slmbench.runner.dispatch.PairAccounts`, through which every request is admitted and
every fresh row settled. It yields the pair's rows from ``rows(items)``. Optional class-level
hooks, all with defaults on PairRun:

* ``available(host)``: why it cannot run on this machine (None: it can), checked at once;
* ``resolve(options, models, host)``: for ``--executor auto``, the options it would run this
  run with, or None to pass. Auto asks each executor in registry order (built-ins first) and
  falls back to ``local``;
* ``check(options, models)``: what can be wrong with this run on it, before the run folder is
  made or a model called;
* ``prestart(options, models)``: start what takes long (worker processes) while the tasks load.
"""

from __future__ import annotations

import importlib
import warnings
from dataclasses import dataclass, field
from typing import Any

from slmbench.errors import InputError
from slmbench.runner.retry import RetryPolicy

#: name → "module:Class"; a plugin cannot take a built-in name
BUILTIN_EXECUTORS: dict[str, str] = {
    "local": "slmbench.runner.pair:PairRun",
    "processes": "slmbench.runner.process_pool:ProcessPairRun",
    "ray": "slmbench.runner.ray_executor:RayPairRun",
}
ENTRY_POINT_GROUP = "slmbench.executors"
AUTO = "auto"
#: what auto falls back to when no executor asks for the run
FALLBACK = "local"


@dataclass(frozen=True)
class ExecutorOptions:
    """The part of the run options an executor acts on; it sees nothing else of the run (cost
    cap, cache and errors are the accounts' business, runner/dispatch.py)."""

    concurrency: int = 8
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: worker processes or Ray workers (None: the executor decides)
    workers: int | None = None
    ray_address: str | None = None

    @classmethod
    def of(cls, options: Any) -> ExecutorOptions:
        """From ``runner.run.RunOptions`` (or anything with these attributes)."""
        return cls(concurrency=options.concurrency, retry=options.retry,
                   workers=options.workers, ray_address=options.ray_address)


@dataclass(frozen=True)
class Host:
    """The facts about this machine that executors decide on, gathered by the caller once."""

    cores: int
    posix: bool


def executors() -> dict[str, str]:
    """Every executor: the built-ins, then the plugins' (by entry point), name → target."""
    found = dict(BUILTIN_EXECUTORS)
    try:
        from importlib.metadata import entry_points

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in found or ep.name == AUTO:
                warnings.warn(f"executor plugin {ep.value!r} is ignored: the name {ep.name!r} "
                              "is taken", stacklevel=2)
                continue
            found[ep.name] = ep.value
    except Exception as exc:  # a broken plugin must not break the built-ins
        warnings.warn(f"executor plugins could not be listed: {exc}", stacklevel=2)
    return found


def executor_names() -> list[str]:
    """What ``--executor`` accepts."""
    return [AUTO, *executors()]


def executor_class(name: str) -> type:
    """The class of executor ``name``; InputError (exit 2) for an unknown or broken one."""
    targets = executors()
    if name not in targets:
        raise InputError(f"unknown executor; one of {', '.join([AUTO, *targets])}",
                         field="--executor", value=name)
    try:
        return _load(targets[name])
    except Exception as exc:
        if name in BUILTIN_EXECUTORS:
            raise
        raise InputError(f"the executor plugin {targets[name]!r} cannot be loaded: "
                         f"{type(exc).__name__}: {exc}", field="--executor",
                         value=name) from None


def auto_choice(options: ExecutorOptions, models: list[Any], host: Host
                ) -> tuple[str, ExecutorOptions]:
    """What ``--executor auto`` runs with: the first executor (registry order) whose
    ``resolve`` takes the run, else :data:`FALLBACK` with ``options`` unchanged."""
    for name, target in executors().items():
        if name == FALLBACK:
            continue
        try:
            cls = _load(target)
        except Exception as exc:  # a broken plugin is left out of auto
            warnings.warn(f"executor plugin {name!r} ({target}) is left out: "
                          f"{type(exc).__name__}: {exc}", stacklevel=2)
            continue
        if cls.available(host) is not None:
            continue
        chosen = cls.resolve(options, models, host)
        if chosen is not None:
            return name, chosen
    return FALLBACK, options


def _load(target: str) -> type:
    from slmbench.runner.pair import PairRun

    module, _, attr = target.partition(":")
    cls = getattr(importlib.import_module(module), attr)
    # the hooks and the attributes run_benchmark reads come with the base class
    if not (isinstance(cls, type) and issubclass(cls, PairRun)):
        raise TypeError(f"{target} is not a subclass of slmbench.runner.pair.PairRun")
    return cls
