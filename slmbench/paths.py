"""Where bundled tasks and pricing sheets live: the repository's top-level folders."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def bundled_dir(name: str) -> Path:
    """``<repo>/<name>`` for a source checkout (editable install), else ``./<name>``."""
    candidate = REPO_ROOT / name
    return candidate if candidate.is_dir() else Path.cwd() / name


def bundled_tasks() -> list[Path]:
    return sorted(bundled_dir("tasks").glob("*.yaml"))
