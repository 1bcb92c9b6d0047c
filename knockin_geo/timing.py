"""Stage durations: where a run spends its time.

Durations change from run to run, so they never go into a file that is meant to be reproducible:
:func:`knockin_geo.plan.write_plan` writes them to their own ``timings.json`` (beside
``report.json``, which stays byte-identical), and the batch runner into
``campaign_timings.json``. See ``docs/report.md``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping

#: The file, beside ``report.json``, that holds the durations of the run that wrote it.
TIMINGS_JSON = "timings.json"


@contextlib.contextmanager
def stage(timings: dict[str, float] | None, name: str) -> Iterator[None]:
    """Add the wall-clock seconds spent in the ``with`` block to ``timings[name]``.

    Parameters
    ----------
    timings
        Stage -> seconds; the block's duration is added to ``name`` (created when missing). With
        None, nothing is recorded.
    name
        The stage.
    """
    if timings is None:
        yield
        return
    start = time.perf_counter()
    try:
        yield
    finally:
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start


def timings_doc(timings: Mapping[str, float]) -> str:
    """``timings.json``: seconds per stage in the order they ran, and their total.

    A stage named ``parent.part`` (``exports.kml``) is a part of ``parent`` and is left out of
    the total.
    """
    stages = {k: round(float(v), 3) for k, v in timings.items()}
    doc = {
        "note": "seconds per stage of the run that wrote this folder; the only file here that "
        "changes between identical runs",
        "stages": stages,
        "total_s": round(float(sum(v for k, v in timings.items() if "." not in k)), 3),
    }
    return json.dumps(doc, indent=2) + "\n"
