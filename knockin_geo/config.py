"""One configuration of a cut: :class:`PlanConfig`, read from flags, TOML or Python, checked once.

``knockin-geo cut`` builds one from its flags (:meth:`PlanConfig.from_flags`), a campaign's area
from its TOML keys (:meth:`PlanConfig.from_flat`, used by :mod:`knockin_geo.batch`), a notebook
from Python or a TOML file (:meth:`PlanConfig.from_toml`); :func:`knockin_geo.pipeline.run_cut`
runs it. Every setting is a field of one of the sections below, under one name: the TOML key, the
Python keyword and the flag (``doors_per_turf`` / ``--doors-per-turf``; :func:`flag` lists the
few flags spelt otherwise). Defaults that the library's stages also use are taken from their
parameter classes (:class:`~knockin_geo.turfs.TurfParams`,
:class:`~knockin_geo.routing.RouteParams`, :data:`~knockin_geo.snap.MAX_SNAP_M`), so each is
written once.

A bad value raises :class:`ConfigError` listing every problem, each naming its key with
:func:`~knockin_geo._errors.kw` (the CLI shows the flag the user typed, TOML the key).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from pyproj import Transformer

from knockin_geo._errors import InputError, kw, render
from knockin_geo.io import ADDRESS_ROLES, load_column_map
from knockin_geo.params import pace_route_params
from knockin_geo.routing import RouteParams
from knockin_geo.snap import MAX_SNAP_M
from knockin_geo.turfs import TurfParams

__all__ = [
    "BarrierConfig",
    "ConfigError",
    "CutConfig",
    "InputConfig",
    "OutputConfig",
    "PaceConfig",
    "PlanConfig",
    "PrivacyConfig",
    "RouteConfig",
    "SnapConfig",
    "default",
    "flag",
    "key_names",
]

Check = Callable[[Any], Any]


# ---- value checks: each returns the value in its stored form or raises ValueError -----------
def _number(v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def _positive(v: Any) -> float:
    if not _number(v) > 0:
        raise ValueError(f"must be positive, got {v!r}")
    return float(v)


def _non_negative(v: Any) -> float:
    if not _number(v) >= 0:
        raise ValueError(f"must be >= 0, got {v!r}")
    return float(v)


def _open_fraction(v: Any) -> float:
    if not 0 < _number(v) < 1:
        raise ValueError(f"must be between 0 and 1 (0.10 is 10 %), got {v!r}")
    return float(v)


def _seed(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise ValueError(f"expected an integer, got {v!r}")
    if not 0 <= v < 2**63:
        raise ValueError(f"must be a whole number >= 0, got {v!r}")
    return int(v)


def _boolean(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _text(v: Any) -> str:
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"expected a non-empty string, got {v!r}")
    return v.strip()


def _crs(v: Any) -> str:
    if isinstance(v, int) and not isinstance(v, bool):
        return f"EPSG:{v}"
    return _text(v)


def _path(v: Any) -> str:
    if isinstance(v, os.PathLike):
        v = os.fspath(v)
    if not isinstance(v, str) or not v.strip():
        raise ValueError(f"expected a file path, got {v!r}")
    return v


def _choice(*allowed: str) -> Check:
    def check(v: Any) -> str:
        if v not in allowed:
            raise ValueError(f"expected one of {', '.join(map(repr, allowed))}, got {v!r}")
        return str(v)

    return check


def _texts(v: Any) -> tuple[str, ...]:
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list | tuple):
        raise ValueError(f"expected a list of names, got {v!r}")
    return tuple(_text(x) for x in v)


def _start(v: Any) -> tuple[float, float]:
    if isinstance(v, str):
        try:
            v = [float(x) for x in v.split(",")]
        except ValueError:
            raise ValueError(f"expected LON,LAT in degrees (for example -1.5536,47.2173), "
                             f"got {v!r}") from None
    if not isinstance(v, list | tuple) or len(v) != 2:
        raise ValueError(f"expected [lon, lat] in degrees, got {v!r}")
    lon, lat = (_number(x) for x in v)
    if not (-180 <= lon <= 180 and -90 <= lat <= 90):
        raise ValueError(f"{v!r} is not a longitude, latitude pair")
    return (lon, lat)


def _universe(v: Any) -> tuple[str, ...] | str:
    """Precinct ids (sorted, unique), ``"covered"``, or ids read from ``@FILE``."""
    if v == "covered":
        return "covered"
    if isinstance(v, str) and v.startswith("@"):
        path = Path(v[1:])
        if not path.is_file():
            raise ValueError(f"universe file not found: {path}")
        lines = path.read_text(encoding="utf-8").splitlines()
        v = [x for x in lines if x.strip() and not x.startswith("#")]
    elif isinstance(v, str):
        v = v.split(",")
    if not isinstance(v, list | tuple):
        raise ValueError(f'expected a list of precinct ids or "covered", got {v!r}')
    bad = [x for x in v if not isinstance(x, str)]
    if bad:
        raise ValueError(f'precinct ids must be quoted strings (ids like "0101" keep their '
                         f"zeros), got {bad[0]!r}")
    items = sorted({x.strip() for x in v if x.strip()})
    if not items:
        raise ValueError("the universe is empty")
    return tuple(items)


def _columns(v: Any) -> tuple[tuple[str, str], ...]:
    """Address roles -> columns: a TOML table, or ``ROLE=COLUMN`` items (``--addr-column``)."""
    if isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
        pairs = []
        for item in v:
            if "=" not in item:
                raise ValueError(f"expected ROLE=COLUMN (for example lon=LONG_WGS84), "
                                 f"got {item!r}")
            role, col = item.split("=", 1)
            pairs.append((role.strip(), col.strip()))
        v = dict(pairs)
    elif isinstance(v, list | tuple):
        v = dict(v)
    if not isinstance(v, dict):
        raise ValueError(f'expected a table of role = "column", got {v!r}')
    problems = []
    for role, col in v.items():
        if role not in ADDRESS_ROLES:
            problems.append(f"unknown role {role!r} (roles: {', '.join(ADDRESS_ROLES)})")
        elif not isinstance(col, str) or not col:
            problems.append(f"{role}: the column name must be a string, got {col!r}")
    if problems:
        raise ValueError("; ".join(problems))
    return tuple(sorted((str(k), str(c)) for k, c in v.items()))


# ---- fields ------------------------------------------------------------------------------------
def _opt(default: Any, check: Check, *, path: bool = False, flag: str | None = None,
         invert: bool = False) -> Any:
    """Declare a setting: default, check, whether it is a file, its flag when spelt otherwise.

    ``invert``: the flag says the opposite (``--no-route`` sets ``route = false``).
    """
    meta = {"check": check, "path": path, "flag": flag, "invert": invert}
    return field(default=default, metadata=meta)


class ConfigError(InputError):
    """Bad settings: every problem, each naming its key.

    Attributes
    ----------
    items
        ``(key, reason)`` pairs; the reasons may name other keys with :func:`kw`.
    """

    def __init__(self, items: Iterable[tuple[str, Any, str]]) -> None:
        self.items = [(k, r) for k, _v, r in items]
        lines = [f"{kw(k, v, cli=_cli_value(v))}: {r}" for k, v, r in items]
        super().__init__("invalid settings", lines)

    def lines(self, label: str, names: Mapping[str, str] | None = None) -> list[str]:
        """Problems as ``<label>: key '<key>': <reason>`` (other keys named by ``names``)."""
        keys = names if names is not None else {k: repr(k) for k in key_names()}
        return [f"{label}: key {k!r}: {render(r, keys)}" for k, r in self.items]


def _cli_value(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return ""
    if isinstance(v, list | tuple):
        return ",".join(str(x) for x in v)
    return str(v)


class _Section:
    """Checks every field of a frozen section on construction (all problems at once)."""

    name: ClassVar[str]

    def __post_init__(self) -> None:
        problems = []
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                continue
            try:
                object.__setattr__(self, f.name, f.metadata["check"](value))
            except ValueError as exc:
                problems.append((f.name, value, str(exc)))
        if problems:
            raise ConfigError(problems)


@dataclass(frozen=True)
class InputConfig(_Section):
    """Input files and how to read them."""

    name: ClassVar[str] = "inputs"
    precincts: str | None = _opt(None, _path, path=True)
    addresses: str | None = _opt(None, _path, path=True)
    network: str | None = _opt(None, _path, path=True)
    download: bool = _opt(False, _boolean)
    network_profile: str = _opt("canvass", _choice("canvass", "walk"))
    precinct_id: str | None = _opt(None, _text)
    address_id: str | None = _opt(None, _text)
    address_columns: tuple[tuple[str, str], ...] = _opt((), _columns, flag="--addr-column")
    columns_config: str | None = _opt(None, _path, path=True)
    crs: str | None = _opt(None, _crs)
    precincts_crs: str | None = _opt(None, _crs)
    encoding: str | None = _opt(None, _text)
    strict: bool = _opt(False, _boolean)
    cache: bool = _opt(True, _boolean, flag="--no-cache", invert=True)


@dataclass(frozen=True)
class SnapConfig(_Section):
    """Which doors are cut, and how far a door may be from its street."""

    name: ClassVar[str] = "snap"
    universe: tuple[str, ...] | str | None = _opt(None, _universe)
    max_snap_m: float = _opt(MAX_SNAP_M, _positive)


@dataclass(frozen=True)
class CutConfig(_Section):
    """Turf size and the cutter's seed (with neither size set: ``TurfParams``' default)."""

    name: ClassVar[str] = "cut"
    doors_per_turf: float | None = _opt(None, _positive)
    minutes_per_turf: float | None = _opt(None, _positive)
    balance_on: str = _opt("households", _choice("households", "voters", "doors"))
    tolerance: float = _opt(TurfParams.tolerance, _open_fraction)
    seed: int = _opt(TurfParams.seed, _seed)
    cross_precincts: bool = _opt(TurfParams.cross_precincts, _boolean)
    refine: str = _opt(TurfParams.refine, _choice("none", "fix", "compact"))
    rebalance: bool = _opt(True, _boolean, flag="--no-rebalance", invert=True)


@dataclass(frozen=True)
class BarrierConfig(_Section):
    """Busy roads, railways and rivers."""

    name: ClassVar[str] = "barriers"
    barriers: str = _opt(TurfParams.barriers, _choice("default", "strict"))
    crossing_m: float = _opt(RouteParams.crossing_m, _non_negative)


@dataclass(frozen=True)
class PaceConfig(_Section):
    """Walking pace, used by the cutter (minutes per turf) and the routes alike."""

    name: ClassVar[str] = "pace"
    walk_speed_kmh: float = _opt(TurfParams.walk_speed_kmh, _positive)
    minutes_per_door: float = _opt(TurfParams.minutes_per_door, _non_negative)


@dataclass(frozen=True)
class RouteConfig(_Section):
    """Routes through each turf."""

    name: ClassVar[str] = "route"
    route: bool = _opt(True, _boolean, flag="--no-route", invert=True)
    loop: bool = _opt(RouteParams.loop, _boolean)
    start: tuple[float, float] | None = _opt(None, _start)


@dataclass(frozen=True)
class OutputConfig(_Section):
    """What is written (the output folder itself is the caller's)."""

    name: ClassVar[str] = "outputs"
    lang: str = _opt("fr", _choice("fr", "en"))
    walk_lists: bool = _opt(True, _boolean, flag="--no-walk-lists", invert=True)
    maps: bool = _opt(True, _boolean, flag="--no-maps", invert=True)
    exports: bool = _opt(True, _boolean, flag="--no-exports", invert=True)
    canvassers: str | None = _opt(None, _path, path=True)
    volunteer_field: tuple[str, ...] = _opt((), _texts)


@dataclass(frozen=True)
class PrivacyConfig(_Section):
    """Voter file, do-not-knock list, pseudonyms and locked maps (docs/privacy.md).

    The secret and the map code themselves are never settings: they come from
    ``$KNOCKIN_GEO_SECRET`` (or ``secret_file``) and ``$KNOCKIN_GEO_MAP_CODE``.
    """

    name: ClassVar[str] = "privacy"
    voters: str | None = _opt(None, _path, path=True)
    voters_key: str = _opt("address_id", _text)
    voters_flag: tuple[str, ...] = _opt((), _texts)
    opt_outs: str | None = _opt(None, _path, path=True)
    pseudonymize: bool = _opt(False, _boolean)
    secret_file: str | None = _opt(None, _path, path=True)
    lock_maps: bool = _opt(False, _boolean)
    allow_personal_field: tuple[str, ...] = _opt((), _texts)


_SECTIONS: tuple[type[_Section], ...] = (InputConfig, SnapConfig, CutConfig, BarrierConfig,
                                         PaceConfig, RouteConfig, OutputConfig, PrivacyConfig)


def _fields() -> Iterator[tuple[type[_Section], dataclasses.Field[Any]]]:
    for section in _SECTIONS:
        for f in dataclasses.fields(section):  # type: ignore[arg-type]
            yield section, f


def key_names() -> list[str]:
    """Every setting's name (TOML key, Python keyword), in section order."""
    return [f.name for _s, f in _fields()]


def flag(name: str) -> str:
    """Return the ``cut`` flag of a setting (``doors_per_turf`` -> ``--doors-per-turf``)."""
    for _s, f in _fields():
        if f.name == name:
            return f.metadata["flag"] or "--" + name.replace("_", "-")
    raise KeyError(name)


def default(name: str) -> Any:
    """Return the default of a setting."""
    for _s, f in _fields():
        if f.name == name:
            return f.default
    raise KeyError(name)


def _dest(f: dataclasses.Field[Any]) -> str:
    return (f.metadata["flag"] or "--" + f.name).lstrip("-").replace("-", "_")


def is_path(name: str) -> bool:
    """Whether a setting is a file path (resolved against a campaign file's folder)."""
    return any(f.name == name and f.metadata["path"] for _s, f in _fields())


def check_values(raw: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, Any, str]]]:
    """Check each value of a flat ``{key: value}`` table by itself.

    Returns the checked values and the ``(key, value, reason)`` problems (unknown keys are the
    caller's: they are not in the result).
    """
    checks = {f.name: f.metadata["check"] for _s, f in _fields()}
    values: dict[str, Any] = {}
    problems = []
    for key, value in raw.items():
        if key not in checks:
            continue
        try:
            values[key] = checks[key](value)
        except ValueError as exc:
            problems.append((key, value, str(exc)))
    return values, problems


@dataclass(frozen=True)
class PlanConfig:
    """Every setting of a cut, in sections; see the module's docstring.

    Build one with :meth:`from_flat` (flat keys), :meth:`from_toml` (sections),
    :meth:`from_flags` (the CLI) or directly; :meth:`replace` changes some keys.
    """

    inputs: InputConfig = field(default_factory=InputConfig)
    snap: SnapConfig = field(default_factory=SnapConfig)
    cut: CutConfig = field(default_factory=CutConfig)
    barriers: BarrierConfig = field(default_factory=BarrierConfig)
    pace: PaceConfig = field(default_factory=PaceConfig)
    route: RouteConfig = field(default_factory=RouteConfig)
    outputs: OutputConfig = field(default_factory=OutputConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    def __post_init__(self) -> None:
        problems: list[tuple[str, Any, str]] = []
        c = self.cut
        if c.doors_per_turf is not None and c.minutes_per_turf is not None:
            problems.append(("minutes_per_turf", c.minutes_per_turf,
                             f"give {kw('doors_per_turf')} or {kw('minutes_per_turf')}, "
                             "not both"))
        if c.balance_on == "voters" and self.privacy.voters is None:
            problems.append(("balance_on", "voters", f"needs a voter file ({kw('voters')})"))
        if self.snap.universe == "covered" and self.inputs.precincts is None:
            problems.append(("universe", "covered", f"needs precincts ({kw('precincts')})"))
        if self.inputs.network is not None and self.inputs.download:
            problems.append(("download", True, f"give {kw('network')} or {kw('download')}, "
                                               "not both"))
        if problems:
            raise ConfigError(problems)

    # ---- building ------------------------------------------------------------------------
    @classmethod
    def from_flat(cls, values: Mapping[str, Any],
                  base_dir: str | os.PathLike[str] | None = None) -> PlanConfig:
        """Build from flat keys (``{"doors_per_turf": 80, ...}``); relative paths from ``base_dir``.

        Raises
        ------
        ConfigError
            Unknown keys and bad values, all listed.
        """
        known = set(key_names())
        problems = [(k, v, "unknown setting") for k, v in values.items() if k not in known]
        checked, bad = check_values(values)
        problems += bad
        if problems:
            raise ConfigError(problems)
        if base_dir is not None:
            checked = {k: _resolve(v, base_dir) if is_path(k) else v for k, v in checked.items()}
        sections = {}
        for section in _SECTIONS:
            names = {f.name for f in dataclasses.fields(section)}  # type: ignore[arg-type]
            sections[section.name] = section(**{k: v for k, v in checked.items() if k in names})
        return cls(**sections)  # type: ignore[arg-type]

    @classmethod
    def from_flags(cls, args: Any) -> PlanConfig:
        """Build from parsed ``knockin-geo`` arguments (flags a command lacks keep defaults)."""
        values: dict[str, Any] = {}
        for _s, f in _fields():
            value = getattr(args, _dest(f), None)
            if f.metadata["invert"]:
                values[f.name] = not value
            elif value is not None and not (isinstance(value, list | tuple) and not value):
                values[f.name] = value
        return cls.from_flat(values)

    @classmethod
    def from_toml(cls, source: str | os.PathLike[str]) -> PlanConfig:
        """Read TOML settings (``[cut]``, ``[pace]``... tables, see :meth:`to_toml`).

        ``source`` is the TOML text, or a file (``pathlib.Path``): relative input paths in a
        file are relative to its folder.
        """
        base = None
        text = str(source)
        if isinstance(source, os.PathLike):
            base = Path(source).resolve().parent
            text = Path(source).read_text(encoding="utf-8")
        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            msg = f"cannot parse the settings: {exc}"
            raise InputError(msg) from exc
        flat: dict[str, Any] = {}
        lines = []
        for section_name, table in doc.items():
            section = next((s for s in _SECTIONS if s.name == section_name), None)
            if section is None or not isinstance(table, dict):
                lines.append(f"unknown table [{section_name}]; the tables are "
                             + ", ".join(f"[{s.name}]" for s in _SECTIONS))
                continue
            names = {f.name for f in dataclasses.fields(section)}  # type: ignore[arg-type]
            lines += [f"[{section_name}]: unknown key {k!r}" for k in table if k not in names]
            flat.update({k: v for k, v in table.items() if k in names})
        if lines:
            msg = "the settings have unknown tables or keys"
            raise InputError(msg, lines)
        return cls.from_flat(flat, base)

    def to_toml(self) -> str:
        """Return the settings as TOML (every key, defaults included; unset keys left out)."""
        out = []
        for section in _SECTIONS:
            out.append(f"[{section.name}]")
            for f in dataclasses.fields(section):  # type: ignore[arg-type]
                value = getattr(getattr(self, section.name), f.name)
                if value is not None:
                    out.append(f"{f.name} = {_toml_value(f.name, value)}")
            out.append("")
        return "\n".join(out)

    def flat(self) -> dict[str, Any]:
        """Every key and its value (JSON-ready: tuples as lists, the column map as a table)."""
        out: dict[str, Any] = {}
        for section in _SECTIONS:
            for f in dataclasses.fields(section):  # type: ignore[arg-type]
                value = getattr(getattr(self, section.name), f.name)
                if f.name == "address_columns":
                    value = dict(value)
                elif isinstance(value, tuple):
                    value = list(value)
                out[f.name] = value
        return out

    def replace(self, **changes: Any) -> PlanConfig:
        """Return a copy with some keys changed (checked again)."""
        values = {k: v for k, v in self.flat().items() if v is not None}
        values.update(changes)
        return PlanConfig.from_flat({k: v for k, v in values.items() if v is not None})

    # ---- the stages' parameters ----------------------------------------------------------
    def turf_params(self) -> TurfParams:
        """Return the cutter's parameters (with no size set: ``TurfParams``' default)."""
        c = self.cut
        doors, minutes = c.doors_per_turf, c.minutes_per_turf
        if doors is None and minutes is None:
            doors = TurfParams.doors_per_turf
        return TurfParams(
            weight_column="voters" if c.balance_on == "voters" else None,
            use_households=c.balance_on != "doors",
            doors_per_turf=doors,
            minutes_per_turf=minutes,
            tolerance=c.tolerance,
            cross_precincts=c.cross_precincts,
            barriers=self.barriers.barriers,  # type: ignore[arg-type]
            refine=c.refine,  # type: ignore[arg-type]
            seed=c.seed,
            walk_speed_kmh=self.pace.walk_speed_kmh,
            minutes_per_door=self.pace.minutes_per_door,
            rebalance_rounds=TurfParams.rebalance_rounds if c.rebalance else 0,
        )

    def route_params(self, crs: Any) -> RouteParams | None:
        """Route parameters in ``crs`` (the network's); None lets the plan choose its defaults.

        The default start (None) is the end of each route nearest the centre of the plan's doors.
        """
        r = self.route
        crossing = self.barriers.crossing_m
        if not (r.loop or r.start is not None or crossing != RouteParams.crossing_m):
            return None
        start = None
        if r.start is not None:
            start = Transformer.from_crs(4326, crs, always_xy=True).transform(*r.start)
        return pace_route_params(self.turf_params(), loop=r.loop, start=start,
                                 crossing_m=self.barriers.crossing_m)

    def column_map(self) -> dict[str, str] | None:
        """Address columns: ``columns_config``'s, then ``address_columns``, then ``address_id``."""
        i = self.inputs
        cols: dict[str, str] = dict(load_column_map(i.columns_config)) if i.columns_config else {}
        cols.update(dict(i.address_columns))
        if i.address_id:
            cols["id"] = i.address_id
        return cols or None


def _resolve(value: str, base: str | os.PathLike[str]) -> str:
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else Path(base) / path)


def _toml_value(name: str, value: Any) -> str:
    if name == "address_columns":
        return "{" + ", ".join(f"{json.dumps(k)} = {_toml_value('', c)}" for k, c in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):  # a JSON string is a TOML basic string
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, tuple | list):
        return "[" + ", ".join(_toml_value("", v) for v in value) + "]"
    raise TypeError(f"{name}: cannot write {value!r} as TOML")
