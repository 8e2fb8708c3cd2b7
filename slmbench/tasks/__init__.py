"""Tasks: YAML specs, items loaded through ``datasets``, and prompts."""

from slmbench.tasks.loading import Item, LoadedTask, load_items
from slmbench.tasks.prompts import build_messages
from slmbench.tasks.spec import KINDS, FieldSpec, Route, TaskSpec, load_task, parse_task

__all__ = [
    "KINDS", "FieldSpec", "Item", "LoadedTask", "Route", "TaskSpec", "build_messages",
    "load_items", "load_task", "parse_task",
]
