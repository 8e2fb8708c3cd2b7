"""Figures computed from stored rows: summaries, cascade simulations, gate decisions, merges
and repricing.

Kept apart from ``store/`` (which only reads and writes run folders) and ``reports/`` (which
only writes figures out) so that ``run`` can build its summary without loading any renderer,
and every report recomputes the same numbers from the same rows.
"""
