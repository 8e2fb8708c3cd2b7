"""Seeded percentile bootstrap of accuracy, reproducible bit for bit, in O(resamples) memory.

Accuracy is the mean of a 0/1 vector. Resampling n items with replacement from it and counting
the correct ones is exactly a Binomial(n, k/n) draw, so each resample is drawn as one binomial
number instead of n indices: the same distribution as the textbook bootstrap, without the
resamples × n index matrix that needs gigabytes at a million rows.
"""

from __future__ import annotations

from collections.abc import Sequence

N_RESAMPLES = 2000


def bootstrap_ci(correct: Sequence[bool], *, seed: int = 0, level: float = 0.95,
                 n_resamples: int = N_RESAMPLES) -> list[float] | None:
    import numpy as np

    n = len(correct)
    if n == 0:
        return None
    k = int(sum(bool(c) for c in correct))
    rng = np.random.default_rng(seed)
    means = rng.binomial(n, k / n, size=n_resamples) / n
    alpha = (1 - level) / 2
    return [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]
