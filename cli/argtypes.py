"""Argument types of ``knockin-geo``: numbers checked where the flag is parsed.

A bad value is refused by argparse with the flag the user typed (``argument --doors-per-turf:
must be a positive number, got '-5'``) and exit code 2, before any file is read. The library
checks the same ranges again with its Python parameter names, for callers from Python.
"""

from __future__ import annotations

import argparse
import math
import zoneinfo
from collections.abc import Callable


def _number(text: str, kind: type[float] | type[int]) -> float:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        msg = f"expected {what}, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if not math.isfinite(value):
        msg = f"expected a finite number, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _checked(
    kind: type[float] | type[int], ok: Callable[[float], bool], rule: str
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        value = _number(text, kind)
        if not ok(value):
            msg = f"must be {rule}, got {text!r}"
            raise argparse.ArgumentTypeError(msg)
        return value

    parse.__name__ = rule  # argparse names the type in its "invalid <type> value" fallback
    return parse


#: A number > 0 (turf size, speed, distance).
positive = _checked(float, lambda v: v > 0, "a positive number")
#: A number >= 0 (minutes per door, crossing cost).
non_negative = _checked(float, lambda v: v >= 0, "a number >= 0")
#: A share strictly between 0 and 1 (tolerance).
open_fraction = _checked(float, lambda v: 0 < v < 1, "between 0 and 1 (0.10 is 10 %)")
#: A share from 0 to 1 included (minimum fill).
fraction = _checked(float, lambda v: 0 <= v <= 1, "from 0 to 1")
#: A whole number >= 0 (random seed).
seed = _checked(int, lambda v: 0 <= v < 2**63, "a whole number >= 0")
#: A whole number >= 1 (workers, count of precincts).
count = _checked(int, lambda v: v >= 1, "a whole number >= 1")


def time_zone(text: str) -> str:
    """Return the name if it is an IANA time zone (``Europe/Paris``) or ``UTC``."""
    try:
        zoneinfo.ZoneInfo(text)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        msg = f"unknown time zone {text!r}: use an IANA name such as Europe/Paris, or UTC"
        raise argparse.ArgumentTypeError(msg) from None
    return text
