"""Build one file per turf in worker processes, the results in the order asked.

The per-turf volunteer files (phone maps, walk lists, GPX tracks, packet files) are independent
of each other: with ``workers > 1`` they are built by a pool of forked processes that inherit
the plan (nothing is pickled but turf ids and the results), and the caller writes them in
order, so the bytes are the same with 1 or N workers. Where ``fork`` is not available the work
runs in this process.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing as mp
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

logger = logging.getLogger(__name__)

_T = TypeVar("_T")
#: Most turfs a worker builds per task: the results of a task wait in memory until they are
#: written.
_MAX_CHUNK = 16

#: The job the forked workers run: ``(function, plan)``; set only while a pool is alive.
_JOB: dict[str, Any] = {}


def cpu_workers(workers: int | None) -> int:
    """Return the number of processes to use: ``workers``, or one per core when None."""
    if workers is None:
        return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                   else os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        msg = f"workers must be a whole number >= 1, got {workers!r}"
        raise ValueError(msg)
    return workers


def per_turf(
    build: Callable[[Any, str], _T], plan: Any, turf_ids: Sequence[str], workers: int | None
) -> Iterator[_T]:
    """Yield ``build(plan, t)`` for each of ``turf_ids``, computed by up to ``workers`` processes.

    The results come one at a time, in order, as the workers finish them, so a caller that
    writes each file as it comes holds a few of them in memory, never all (the phone maps of a
    million doors are several GB).

    Parameters
    ----------
    build
        Builds one turf's file (text, bytes or any picklable value) from the plan and the
        turf id (any callable: it is inherited by the forked workers, not pickled).
    plan
        The plan (inherited by the workers).
    turf_ids
        The turfs, in the order of the result.
    workers
        Processes to use; None: one per core. 1 (or a single turf) runs in this process.

    Yields
    ------
    object
        One result per turf, in the order of ``turf_ids``, whatever the number of workers.
    """
    n = min(cpu_workers(workers), len(turf_ids))
    if n <= 1 or "fork" not in mp.get_all_start_methods() or _JOB:
        for t in turf_ids:
            yield build(plan, t)
        return
    _JOB["job"] = (build, plan)
    logger.debug("building %d results (%s) in %d processes", len(turf_ids),
                 getattr(build, "__qualname__", "?"), n)
    pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=mp.get_context("fork"))
    try:
        yield from pool.map(_run, turf_ids, chunksize=max(1, min(_MAX_CHUNK,
                                                                 len(turf_ids) // (4 * n))))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        _JOB.clear()


def _run(turf_id: str) -> Any:
    build, plan = _JOB["job"]
    return build(plan, turf_id)
