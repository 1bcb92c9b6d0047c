"""Refuse to replace an earlier plan in ``--out`` without ``--overwrite``."""

from __future__ import annotations

from pathlib import Path

from knockin_geo._errors import InputError

#: Files that mark a folder as holding a plan (``cut``, ``recut``, ``demo``) or a campaign
#: (``batch``).
PLAN_MARKERS = ("plan.gpkg", "report.json")
CAMPAIGN_MARKERS = ("campaign_summary.json", "campaign_summary.csv", "campaign_map.html")
#: A folder written by ``demo`` (it may replace its own outputs).
DEMO_MARKER = Path("targeting") / "universe.txt"


def describe(folder: Path, limit: int = 8) -> str:
    """Short list of what a folder holds: ``plan.gpkg, walklists/ (12 files), ...``."""
    items = []
    for entry in sorted(folder.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            n = sum(1 for f in entry.rglob("*") if f.is_file())
            items.append(f"{entry.name}/ ({n} files)")
        else:
            items.append(entry.name)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def holds_plan(folder: Path) -> bool:
    """Return whether the folder holds the outputs of an earlier plan."""
    return any((folder / m).is_file() for m in PLAN_MARKERS)


def holds_campaign(folder: Path) -> bool:
    """Return whether the folder holds the outputs of an earlier campaign (``batch``)."""
    if any((folder / m).is_file() for m in CAMPAIGN_MARKERS):
        return True
    return folder.is_dir() and any(holds_plan(d) for d in folder.iterdir() if d.is_dir())


def check_out(
    out: str | Path, *, overwrite: bool, campaign: bool = False, demo: bool = False
) -> None:
    """Raise :class:`InputError` when ``out`` holds earlier outputs and ``overwrite`` is off.

    ``campaign``: look for a ``batch`` campaign. ``demo``: a folder an earlier demo wrote (its
    ``targeting/universe.txt``) is replaced without ``--overwrite``.
    """
    folder = Path(out)
    if overwrite or not folder.is_dir() or (demo and (folder / DEMO_MARKER).is_file()):
        return
    earlier = holds_campaign(folder) if campaign else holds_plan(folder)
    if not earlier:
        return
    what = "an earlier campaign" if campaign else "an earlier plan"
    alt = ", --resume to plan only the areas that changed," if campaign else ""
    msg = (
        f"--out {folder} already holds {what} ({describe(folder)}): this run would replace "
        f"its maps, walk lists and exports. Choose another folder{alt} or add --overwrite"
    )
    raise InputError(msg, path=str(folder))
