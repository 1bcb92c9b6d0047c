"""One exception hierarchy for knockin_geo.

Every exception subclasses :class:`KnockinGeoError` and the matching builtin, so callers'
``except ValueError`` keeps working. The CLI maps :class:`InputError` (and subclasses) to exit
code 2 with the message only, and anything else to exit code 1.
"""

from __future__ import annotations

from collections.abc import Iterable


class KnockinGeoError(Exception):
    """Base class of every error raised on purpose by knockin_geo."""


class InputError(KnockinGeoError, ValueError):
    """Bad input that the user can fix: the message says what and where.

    Parameters
    ----------
    message
        Headline of the problem.
    problems
        Individual problems (each naming file, row or column); listed under the headline.
    path
        The file concerned, if any.
    """

    def __init__(
        self,
        message: str,
        problems: Iterable[str] = (),
        *,
        path: str | None = None,
    ) -> None:
        self.headline = message
        self.problems = list(problems)
        self.path = path
        text = message
        if self.problems:
            shown = self.problems[:20]
            text += "\n" + "\n".join(f"  - {p}" for p in shown)
            if len(self.problems) > len(shown):
                text += f"\n  ... and {len(self.problems) - len(shown)} more"
        super().__init__(text)


class CRSError(InputError):
    """A missing, unknown or inconsistent coordinate reference system."""


class NetworkError(KnockinGeoError, RuntimeError):
    """The street network cannot be built or used (empty, unreadable, no walkable ways)."""


class InfeasibleError(KnockinGeoError, RuntimeError):
    """The requested plan cannot be met with the given inputs and parameters."""


class MissingDependencyError(KnockinGeoError, ImportError):
    """An optional dependency needed for this feature is not installed."""
