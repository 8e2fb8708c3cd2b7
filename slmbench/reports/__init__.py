"""Reports built from stored results only: leaderboard, Pareto plot, cascade table, CI gate.

Rendering only (terminal, markdown, CSV, JSON, plot, JUnit): the figures come from
:mod:`slmbench.analysis`, so ``run`` builds its summary without loading any renderer. Nothing
here calls a model; heavy libraries (pandas, matplotlib) are imported inside functions.
"""

from slmbench.reports.leaderboard import leaderboard_frame

__all__ = ["leaderboard_frame"]
