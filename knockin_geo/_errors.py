"""One exception hierarchy for knockin_geo.

Every exception subclasses :class:`KnockinGeoError` and the matching builtin, so callers'
``except ValueError`` keeps working. The CLI maps :class:`InputError` (and subclasses) to exit
code 2 with the message only, and anything else to exit code 1.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping

#: A parameter named inside a message: ``\x00name\x1fpython text\x1fcli value\x00`` (:func:`kw`).
_KW = re.compile(r"\x00([A-Za-z_]\w*)\x1f([^\x00\x1f]*)\x1f([^\x00\x1f]*)\x00")
_NO_VALUE = object()


def kw(
    name: str, value: object = _NO_VALUE, *, cli: str | None = None, python: str | None = None
) -> str:
    """Name a parameter inside an error message, in the words of whoever called.

    The message reads ``support=`` (or ``support='rolland'``) from Python and ``--support``
    (or ``--support rolland``) from the command line, which maps ``name`` to its flag (see
    :meth:`InputError.render`).

    Parameters
    ----------
    name
        The Python keyword (``"support"``, ``"contest"``...).
    value
        An example value, shown with :func:`repr` from Python.
    cli
        The example as typed on the command line, when it differs from ``str(value)`` (``""``
        for a flag that takes no value).
    python
        The whole Python wording, when it is not a keyword (``"add_registered()"``).
    """
    if python is None:
        python = f"{name}=" + ("" if value is _NO_VALUE else repr(value))
    shell = cli if cli is not None else ("" if value is _NO_VALUE else str(value))
    clean = [t.replace("\x00", "").replace("\x1f", "") for t in (python, shell)]
    return f"\x00{name}\x1f{clean[0]}\x1f{clean[1]}\x00"


def render(text: str, flags: Mapping[str, str] | None = None) -> str:
    """Write the parameters :func:`kw` marked in ``text`` as Python keywords or CLI flags.

    Parameters
    ----------
    text
        A message built with :func:`kw`.
    flags
        Python keyword -> command-line flag (``{"support": "--support"}``). ``None`` (or a
        keyword it does not map) writes the Python form ``support=``.
    """

    def one(m: re.Match[str]) -> str:
        name, python, shell = m.groups()
        flag = (flags or {}).get(name)
        if flag is None:
            return python
        return f"{flag} {_shell_word(shell)}" if shell else flag

    return _KW.sub(one, text)


def _shell_word(text: str) -> str:
    """Quote ``text`` as one would type it in a shell, readably."""
    if shlex.quote(text) == text or "'" not in text:
        return shlex.quote(text)
    if not any(c in text for c in '"$`\\!'):
        return f'"{text}"'
    return shlex.quote(text)


def keywords(text: str) -> list[str]:
    """Return the parameter names :func:`kw` marked in ``text``, in order."""
    return [m.group(1) for m in _KW.finditer(text)]


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

    Parameters the message names (:func:`kw`) read as Python keywords in ``str(error)`` and as
    flags in :meth:`render` with the command line's map.
    """

    def __init__(
        self,
        message: str,
        problems: Iterable[str] = (),
        *,
        path: str | None = None,
    ) -> None:
        self.headline = render(message)
        self.problems = [render(p) for p in problems]
        self.path = path
        text = message
        marked = list(problems)
        if marked:
            shown = marked[:20]
            text += "\n" + "\n".join(f"  - {p}" for p in shown)
            if len(marked) > len(shown):
                text += f"\n  ... and {len(marked) - len(shown)} more"
        self.template = text
        super().__init__(render(text))

    def render(self, flags: Mapping[str, str] | None = None) -> str:
        """Return the message with the parameters it names written as ``flags`` map them."""
        return render(self.template, flags)


class CRSError(InputError):
    """A missing, unknown or inconsistent coordinate reference system."""


class NetworkError(KnockinGeoError, RuntimeError):
    """The street network cannot be built or used (empty, unreadable, no walkable ways)."""


class InfeasibleError(KnockinGeoError, RuntimeError):
    """The requested plan cannot be met with the given inputs and parameters."""


class MissingDependencyError(KnockinGeoError, ImportError):
    """An optional dependency needed for this feature is not installed."""
