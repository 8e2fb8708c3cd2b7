"""The leaderboard: one row per task × model, from a summary (never from a model call)."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    ("task", "task"), ("model", "model"), ("n", "n_items"), ("accuracy", "accuracy"),
    ("95% CI", "accuracy_ci"), ("macro-F1", "macro_f1"), ("invalid", "invalid_rate"),
    ("errors", "n_errors"), ("p50 s", "latency_p50_s"), ("items/s", "items_per_s"),
    ("$/1k items", "usd_per_1k_items"), ("$/correct", "usd_per_correct"),
    ("correct/$", "correct_per_usd"),
]
USD_KEYS = ("usd_per_1k_items", "usd_per_correct", "correct_per_usd")


def _usd(value: float) -> str:
    if value == 0:
        return "$0"
    if value >= 100:
        return f"${value:,.0f}"
    if value >= 0.01:
        return f"${value:.4f}".rstrip("0").rstrip(".") if value < 1 else f"${value:,.2f}"
    return f"${value:.3g}"


def fmt(key: str, value: Any, row: dict[str, Any] | None = None) -> str:
    if key in USD_KEYS and row is not None and not row.get("priced", True):
        return "unpriced"
    if value is None:
        return "–"
    if key == "correct_per_usd":
        return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"
    if key in USD_KEYS:
        return _usd(value)
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
        table.add_row(*(fmt(key, row.get(key), row) for _, key in COLUMNS))
    console.print(table)
    pricing = summary.get("pricing") or {}
    if pricing:
        console.print(f"prices as of {pricing.get('price_date')} from "
                      f"{len(pricing.get('sheets', []))} sheet(s); local models priced per hour "
                      "of wall time")
    for warning in summary.get("warnings", []):
        console.print(f"[yellow]warning:[/] {warning}")


def render_markdown(summary: dict[str, Any]) -> str:
    head = "| " + " | ".join(t for t, _ in COLUMNS) + " |"
    sep = "|" + "|".join("---" if t in ("task", "model") else "---:" for t, _ in COLUMNS) + "|"
    lines = [head, sep]
    for row in leaderboard_rows(summary):
        cells = [fmt(key, row.get(key), row).replace("|", "\\|") for _, key in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
