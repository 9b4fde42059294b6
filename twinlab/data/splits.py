"""The documented seeded split of trials (or images) into tiers, for sources without one."""

from __future__ import annotations

import numpy as np

__all__ = ["split_tiers"]


def split_tiers(n: int, seed: int = 0, validation_fraction: float = 0.1, test_fraction: float = 0.1) -> np.ndarray:
    """The documented seeded split of ``n`` trials into tiers (for files without a tier column):
    ``round(test_fraction * n)`` test and ``round(validation_fraction * n)`` validation trials
    drawn by ``numpy.random.default_rng(seed).permutation(n)`` (test first), the rest train;
    at least one trial stays in train."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = min(int(round(test_fraction * n)), max(n - 1, 0))
    n_val = min(int(round(validation_fraction * n)), max(n - 1 - n_test, 0))
    tiers = np.full(n, "train", dtype=object)
    tiers[order[:n_test]] = "test"
    tiers[order[n_test : n_test + n_val]] = "validation"
    return tiers.astype(str)
