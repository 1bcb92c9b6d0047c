"""Atomic file writing: write to a temporary file next to the target, then rename."""

from __future__ import annotations

import contextlib
import filecmp
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from knockin_geo._errors import InputError


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path; on success move it onto ``target`` in one rename.

    Parameters
    ----------
    target
        The final file path. Its folder is created if needed.

    Yields
    ------
    pathlib.Path
        A path in the same folder to write to. It is removed if the block raises.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    tmp_path.unlink()  # let the writer create it (some drivers refuse existing files)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_bytes_atomic(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically.

    Parameters
    ----------
    target
        Destination path.
    data
        The bytes to write.

    Returns
    -------
    pathlib.Path
        The target path.
    """
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def write_text_atomic(target: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically.

    Parameters
    ----------
    target
        Destination path.
    text
        The text to write.

    Returns
    -------
    pathlib.Path
        The target path.
    """
    return write_bytes_atomic(target, text.encode("utf-8"))


def check_output_folder(path: str | os.PathLike[str], *, flag: str | None = None) -> Path:
    """Check that ``path`` can be an output folder: it is a folder, or can be created as one.

    Parameters
    ----------
    path
        The output folder (created later if missing).
    flag
        The command-line flag that named it (``--out``), for the message.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    InputError
        ``path``, or a folder above it, is an existing file.
    """
    p = Path(path)
    named = f"{flag} {p}" if flag else f"the output folder {p}"
    for q in (p, *p.parents):
        if not (q.exists() or q.is_symlink()):
            continue
        if not q.is_dir():
            where = "is an existing file" if q == p else f"is inside {q}, which is a file"
            msg = (f"{named} {where}, not a folder: give a folder (it is created if needed); "
                   "the file is left as it is")
            raise InputError(msg, path=str(q))
        break
    return p


def move_into_place(tmp: Path, out: Path) -> list[Path]:
    """Move every file and folder built in ``tmp`` into ``out``, each with one rename.

    A file whose bytes are those already in ``out`` is not replaced: the old file stays (its
    date too), so a re-run or a hand edit leaves the volunteer files it did not change as they
    were, and a shared folder or a sync tool sees only the files that changed.
    """
    written: list[Path] = []
    for item in sorted(tmp.iterdir()):
        target = out / item.name
        if item.is_dir():
            if target.is_dir() and not target.is_symlink():
                _keep_unchanged(item, target)
            if target.exists() or target.is_symlink():
                os.replace(target, tmp / f".{item.name}.old")
            os.replace(item, target)
            written += sorted(p for p in target.rglob("*") if p.is_file())
        else:
            if _same_file(item, target):
                item.unlink()
            else:
                os.replace(item, target)
            written.append(target)
    return written


def _same_file(new: Path, old: Path) -> bool:
    """Whether ``old`` is a regular file with the bytes of ``new``."""
    if old.is_symlink() or not old.is_file() or old.stat().st_size != new.stat().st_size:
        return False
    return filecmp.cmp(new, old, shallow=False)


def _keep_unchanged(new_dir: Path, old_dir: Path) -> None:
    """In the folder built aside, put the old file back wherever the bytes did not change.

    The old file is hard-linked into the new folder (same inode, same date) before the folder
    is moved in with one rename; where links are not possible the new file stays.
    """
    for new in sorted(new_dir.rglob("*")):
        old = old_dir / new.relative_to(new_dir)
        if new.is_symlink() or not new.is_file() or not _same_file(new, old):
            continue
        link = new.with_name(f".{new.name}.kept")
        try:
            os.link(old, link)
            os.replace(link, new)
        except OSError:
            link.unlink(missing_ok=True)
