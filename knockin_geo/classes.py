"""Classes of a choropleth: reproducible quantiles and natural breaks (mapclassify).

Shared by the targeting stage (:mod:`knockin_geo.target`, static PNG) and the map writer
(:mod:`knockin_geo.maps`, the HTML choropleth), so neither imports the other for it.
"""

from __future__ import annotations

import warnings
from typing import Any, Final

import numpy as np

from knockin_geo._errors import InputError, MissingDependencyError, kw

__all__ = ["FISHER_JENKS_MAX", "check_classes", "classify"]

_SCHEMES: Final = ("quantiles", "natural_breaks")
#: Up to this many values, natural breaks are the exact Fisher-Jenks optimum (O(k n²)).
FISHER_JENKS_MAX: Final = 1000


def _mapclassify() -> Any:
    try:
        import mapclassify
    except ImportError as exc:  # pragma: no cover - depends on the environment
        msg = "choropleth_png needs mapclassify: pip install mapclassify"
        raise MissingDependencyError(msg) from exc
    return mapclassify


def check_classes(scheme: str, k: int) -> None:
    """Refuse an unknown scheme or fewer than two classes (messages name the flag)."""
    if scheme not in _SCHEMES:
        msg = f"unknown classification {kw('scheme', scheme)}; schemes: {', '.join(_SCHEMES)}"
        raise InputError(msg)
    if int(k) < 2:
        msg = f"{kw('k')} must be at least 2 classes, not {k}"
        raise InputError(msg)


def classify(values: Any, scheme: str = "quantiles", k: int = 5) -> Any:
    """Classify values with mapclassify, reproducibly.

    Parameters
    ----------
    values
        Numbers (NaN are left out).
    scheme
        ``"quantiles"`` (as many values per class as possible) or ``"natural_breaks"`` (Jenks:
        minimises the variance within classes; the exact Fisher-Jenks optimum up to
        :data:`FISHER_JENKS_MAX` values, else one-dimensional k-means with a fixed seed, as
        mapclassify's ``NaturalBreaks`` does but deterministic).
    k
        Number of classes (fewer when there are fewer distinct values).

    Returns
    -------
    mapclassify classifier
        With ``bins`` (upper bounds), ``yb`` (class of each non-NaN value) and ``k``.

    Raises
    ------
    InputError
        Unknown scheme, ``k < 2`` or no finite value.
    """
    check_classes(scheme, k)
    y = np.asarray(values, dtype=float)
    y = y[np.isfinite(y)]
    if len(y) == 0:
        msg = "nothing to classify: every value is missing"
        raise InputError(msg)
    mc = _mapclassify()
    k = min(int(k), len(np.unique(y)))
    if k < 2:
        return mc.UserDefined(y, bins=[float(y.max())])
    if scheme == "quantiles":
        return mc.Quantiles(y, k=k)
    if len(y) <= FISHER_JENKS_MAX:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "Numba not installed"
            return mc.FisherJenks(y, k=k)
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=k, n_init=10, random_state=0).fit(y.reshape(-1, 1)).labels_
    cuts = np.sort([y[labels == c].max() for c in np.unique(labels)])
    return mc.UserDefined(y, bins=cuts)
