"""Baselines shared by the benchmarks (helpers, not a benchmark themselves)."""

from __future__ import annotations

import math

import numpy as np


def kmeans_constrained(xy: np.ndarray, k: int) -> np.ndarray:
    """Split points into ``k`` clusters of 0.9-1.1 x n/k points (k-means-constrained, n_init=1).

    ``pip install k-means-constrained`` (the ``bench`` extra); one cluster when ``k == 1``.
    """
    from k_means_constrained import KMeansConstrained

    n = len(xy)
    if k <= 1:
        return np.zeros(n, dtype=int)
    return np.asarray(KMeansConstrained(n_clusters=k, size_min=math.floor(0.9 * n / k),
                                        size_max=math.ceil(1.1 * n / k), n_init=1,
                                        random_state=0).fit_predict(xy))
