"""Reports built from stored results only: leaderboard, Pareto plot, CI gate.

Nothing here calls a model; heavy libraries (pandas, matplotlib) are imported inside functions.
"""

from slmbench.reports.leaderboard import leaderboard_frame

__all__ = ["leaderboard_frame"]
