"""Seeded percentile bootstrap, so a confidence interval is reproducible bit for bit."""

from __future__ import annotations

from collections.abc import Sequence

N_RESAMPLES = 2000


def bootstrap_ci(correct: Sequence[bool], *, seed: int = 0, level: float = 0.95,
                 n_resamples: int = N_RESAMPLES) -> list[float] | None:
    import numpy as np

    values = np.asarray(correct, dtype=np.float64)
    if values.size == 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, values.size, size=(n_resamples, values.size))
    means = values[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]
