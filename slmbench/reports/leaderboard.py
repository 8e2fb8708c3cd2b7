"""The leaderboard: one row per task × model, from a summary (never from a model call)."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    ("task", "task"), ("model", "model"), ("n", "n_items"), ("accuracy", "accuracy"),
    ("95% CI", "accuracy_ci"), ("macro-F1", "macro_f1"), ("invalid", "invalid_rate"),
    ("errors", "n_errors"), ("p50 s", "latency_p50_s"), ("items/s", "items_per_s"),
]


def fmt(key: str, value: Any) -> str:
    if value is None:
        return "–"
    if key == "accuracy_ci":
        return f"{value[0]:.1%}–{value[1]:.1%}"
    if key in ("accuracy", "invalid_rate"):
        return f"{value:.1%}"
    if key == "macro_f1":
        return f"{value:.3f}"
    if key == "latency_p50_s":
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    if key == "items_per_s":
        return f"{value:,.1f}"
    return str(value)


def leaderboard_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """Summary entries ordered by task, then accuracy (best first)."""
    return sorted(summary["results"],
                  key=lambda r: (r["task"], -(r.get("accuracy") or 0.0), r["model"]))


def render_terminal(summary: dict[str, Any], console: Any = None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    table = Table(title=f"slmbench · run {summary['run_id']}", show_lines=False)
    for title, _ in COLUMNS:
        text_col = title in ("task", "model")
        table.add_column(title, justify="left" if text_col else "right",
                         overflow="fold", no_wrap=not text_col)
    for row in leaderboard_rows(summary):
        table.add_row(*(fmt(key, row.get(key)) for _, key in COLUMNS))
    console.print(table)


def render_markdown(summary: dict[str, Any]) -> str:
    head = "| " + " | ".join(t for t, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" if t in ("task", "model") else "---:" for t, _ in COLUMNS) + "|"
    lines = [head, sep]
    for row in leaderboard_rows(summary):
        cells = [fmt(key, row.get(key)).replace("|", "\\|") for _, key in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
