"""Progress reporting seam: the runner reports, the CLI renders (rich), tests can record."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, task: str, model: str, total: int, done: int) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def finish(self) -> None: ...
    def note(self, message: str) -> None: ...


class SilentProgress:
    def start(self, task: str, model: str, total: int, done: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass

    def note(self, message: str) -> None:
        pass
