"""Terminal rendering (rich): progress bars for the runner. Imported only by the CLI."""

from __future__ import annotations

from typing import Any


class RichProgress:
    """One bar per task × model with items/s and ETA, drawn on stderr; the items/s ends as
    the summary's figure (runner/progress.py)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self._progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("eta"),
            TimeRemainingColumn(), console=self.console, transient=False,
        )
        self._bar: Any = None
        self._progress.start()

    def start(self, task: str, model: str, total: int, done: int) -> None:
        from slmbench.runner.progress import RateMeter

        self._meter = RateMeter()
        self._bar = self._progress.add_task(f"{task} · {model}", total=total, completed=done,
                                            rate="")

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._bar, n)
        self._meter.advance(n)
        self._show(self._meter.rate())

    def timed(self, items: int, wall_s: float) -> None:
        """The pair's own figure, the one its summary gives (runner/progress.py)."""
        if self._bar is not None:
            self._show(self._meter.settle(items, wall_s))

    def _show(self, rate: float | None) -> None:
        if rate:
            self._progress.update(self._bar, rate=f"{rate:,.1f} items/s")

    def finish(self) -> None:
        pass

    def note(self, message: str) -> None:
        self._progress.console.print(f"[yellow]note:[/] {message}")

    def close(self) -> None:
        self._progress.stop()
