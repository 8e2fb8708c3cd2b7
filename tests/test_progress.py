"""The progress bar's items/s is the summary's: a real run's bar ends on the figure the
summary of the same run gives (both are fresh items ÷ the pair's wall time)."""

from __future__ import annotations

import io
import re

from conftest import BUNDLED_TASKS

from slmbench.runner.progress import RateMeter, SilentProgress, items_per_s


class Recorder(SilentProgress):
    def __init__(self) -> None:
        self.timed_calls: list[tuple[int, float]] = []

    def timed(self, items: int, wall_s: float) -> None:
        self.timed_calls.append((items, wall_s))


def _run(tmp_path, progress, run_id: str):
    from slmbench.pricing.run_costs import PricingOptions
    from slmbench.runner.run import RunOptions, run_benchmark

    return run_benchmark([BUNDLED_TASKS / "support_routing.yaml"], ["baseline:tfidf-logreg"],
                         results_dir=tmp_path, run_id=run_id, progress=progress,
                         options=RunOptions(pricing=PricingOptions(price_date="2026-11-22")))


def test_runner_hands_the_pair_timing_to_the_progress(tmp_path):
    rec = Recorder()
    result = _run(tmp_path, rec, "rec")
    entry = result.summary["results"][0]
    ((items, wall),) = rec.timed_calls
    assert items == entry["n_items"] == 40
    assert items_per_s(items, wall) == entry["items_per_s"]


def test_rich_bar_ends_on_the_summary_figure(tmp_path):
    from rich.console import Console

    from slmbench.ui import RichProgress

    buf = io.StringIO()
    bar = RichProgress(Console(file=buf, width=200, force_terminal=True, color_system=None))
    result = _run(tmp_path, bar, "rich")
    bar.close()
    shown = re.findall(r"([\d,]+\.\d) items/s", buf.getvalue())
    assert shown and shown[-1] == f"{result.summary['results'][0]['items_per_s']:,.1f}"


def test_rate_meter_is_a_whole_pair_average():
    now = [10.0]
    meter = RateMeter(clock=lambda: now[0])
    assert meter.rate() is None
    now[0] = 12.0
    meter.advance(3)
    now[0] = 14.0
    meter.advance(5)
    assert meter.rate() == 8 / 4
    assert meter.settle(6, 2.0) == 3.0 and meter.rate() == 3.0
    assert items_per_s(5, 0.0) is None
