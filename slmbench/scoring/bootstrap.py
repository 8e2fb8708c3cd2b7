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
    """CI of the share of true values of ``correct`` (a sequence or a numpy bool array)."""
    import numpy as np

    if isinstance(correct, np.ndarray):
        k = int(np.count_nonzero(correct))
    else:
        k = int(sum(bool(c) for c in correct))
    return count_bootstrap_ci(k, len(correct), seed=seed, level=level, n_resamples=n_resamples)


def count_bootstrap_ci(k: int, n: int, *, seed: int = 0, level: float = 0.95,
                       n_resamples: int = N_RESAMPLES) -> list[float] | None:
    """:func:`bootstrap_ci` from the counts alone: ``k`` correct out of ``n`` (what a columnar
    summary has, without a per-item list)."""
    import numpy as np

    if n == 0:
        return None
    rng = np.random.default_rng(seed)
    means = rng.binomial(n, k / n, size=n_resamples) / n
    alpha = (1 - level) / 2
    return [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]
