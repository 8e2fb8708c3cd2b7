"""Reports built from stored results only: leaderboards (terminal, markdown)."""
