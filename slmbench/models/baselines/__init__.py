"""Purpose-built classifiers used as baselines (``baseline:<name>``).

Adding a baseline is one file in this folder: a module named after the baseline (``-`` becomes
``_``) that defines ``create(settings) -> Model``. Modules are discovered without importing them,
so listing baselines stays cheap.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

from slmbench.errors import InputError
from slmbench.models.base import Model


def available() -> list[str]:
    return sorted(m.name.replace("_", "-") for m in pkgutil.iter_modules(__path__)
                  if not m.name.startswith("_"))


def create(rest: str, settings: dict[str, Any]) -> Model:
    if rest not in available():
        raise InputError(f"unknown baseline (available: {', '.join(available())})",
                         field="--model", value=f"baseline:{rest}")
    module = importlib.import_module(f"{__name__}.{rest.replace('-', '_')}")
    return module.create(settings)
