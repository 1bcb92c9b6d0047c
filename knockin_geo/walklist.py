"""Printable walk lists: one HTML page per turf, doors in walk order, for paper or a phone.

Each page holds the turf's figures, a small map drawn from our own street data (inline SVG: no
tiles, no script, prints and works offline), and the doors in walk order grouped by street and
side, with a box per result code (not home, contacted, refused, moved, come back) and a notes
column. Only the fields volunteers need leave the machine: house number, unit, street, households,
walk order, turf and precinct ids (``knockin_geo.schema.VOLUNTEER_ALLOWED_FIELDS``).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Iterable
from html import escape as html_escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
import numpy as np
import pandas as pd
import shapely

from knockin_geo import schema
from knockin_geo._atomic import write_text_atomic
from knockin_geo._pool import per_turf

if TYPE_CHECKING:
    from knockin_geo.model import TurfPlan

logger = logging.getLogger(__name__)

#: Result codes printed as check boxes, in order (code, French label, English label).
RESULT_CODES: tuple[tuple[str, str, str], ...] = (
    ("not_home", "Absent", "Not home"),
    ("contacted", "Contact", "Contacted"),
    ("refused", "Refus", "Refused"),
    ("moved", "Déménagé", "Moved"),
    ("come_back", "Repasser", "Come back"),
)

LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "title": "Liste de porte-à-porte",
        "turf": "Secteur",
        "precinct": "Bureau de vote",
        "doors": "Portes",
        "households": "Foyers",
        "route": "Distance",
        "time": "Durée estimée",
        "start": "Départ",
        "volunteer": "Militant·e",
        "date": "Date",
        "seq": "N° ordre",
        "number": "N°",
        "unit": "Log.",
        "hh": "Foyers",
        "notes": "Notes",
        "odd": "côté impair",
        "even": "côté pair",
        "left": "côté gauche",
        "right": "côté droit",
        "both": "les deux côtés",
        "total": "Total",
        "minutes": "min",
        "map": "Plan du secteur (parcours en bleu, départ en vert)",
        "no_street": "(voie sans nom)",
        "credit": "Fond : © contributeurs OpenStreetMap (ODbL)",
        "index": "Listes de porte-à-porte",
        "open_in_maps": "ouvrir dans l'appli de cartes",
        "cross": "Traversée",
        "cross_text": "traverser {barrier} une seule fois, {where}",
    },
    "en": {
        "title": "Canvassing walk list",
        "turf": "Turf",
        "precinct": "Precinct",
        "doors": "Doors",
        "households": "Households",
        "route": "Distance",
        "time": "Estimated time",
        "start": "Start",
        "volunteer": "Volunteer",
        "date": "Date",
        "seq": "Order",
        "number": "No.",
        "unit": "Unit",
        "hh": "Households",
        "notes": "Notes",
        "odd": "odd side",
        "even": "even side",
        "left": "left side",
        "right": "right side",
        "both": "both sides",
        "total": "Total",
        "minutes": "min",
        "map": "Turf map (route in blue, start in green)",
        "no_street": "(unnamed street)",
        "credit": "Streets: © OpenStreetMap contributors (ODbL)",
        "index": "Canvassing walk lists",
        "open_in_maps": "open in the maps app",
        "cross": "Crossing",
        "cross_text": "cross {barrier} once, {where}",
    },
}

#: Where a spanning turf crosses, by the kind of the report's crossing point (``crossing.kind``,
#: see :mod:`knockin_geo.checks`); any other kind (a street meeting the barrier, the barrier's
#: nearest point, a plan written before kinds were reported) is "at this point".
CROSSING_WHERE: dict[str, dict[str, str]] = {
    "fr": {"signals": "aux feux", "zebra": "au passage piéton", "marked": "au passage piéton",
           "unmarked": "au passage non marqué", "level_crossing": "au passage à niveau",
           "footbridge": "par la passerelle", "underpass": "par le passage souterrain",
           "": "à ce point"},
    "en": {"signals": "at the traffic lights", "zebra": "at the zebra crossing",
           "marked": "at the marked crossing", "unmarked": "at the unmarked crossing",
           "level_crossing": "at the level crossing", "footbridge": "by the footbridge",
           "underpass": "by the underpass", "": "at this point"},
}

#: How the two distances of a turf are labelled, wherever they are shown (walk list, phone map):
#: ``walk_m`` is the walk including the way from the street to each door and back, ``length_m``
#: the street length of the route line drawn on the maps (see :mod:`knockin_geo.routing`).
DISTANCE_LABELS: dict[str, dict[str, str]] = {
    "fr": {
        "walk_short": "{km} km à pied",
        "walk": "Marche : {km} km, aller-retour jusqu'à chaque porte compris",
        "streets": "dont {km} km le long des rues (trait bleu)",
        "walk_head": "Marche (km, portes comprises)",
    },
    "en": {
        "walk_short": "walk {km} km",
        "walk": "Walk {km} km including going to each door",
        "streets": "of which {km} km along the streets (blue line)",
        "walk_head": "Walk (km, incl. doors)",
    },
}


def turf_distances(plan: TurfPlan, turf_id: str) -> tuple[float, float]:
    """Return a turf's ``(walk_m, streets_m)``: the walk including door access, the route line.

    Parameters
    ----------
    plan
        A routed (or unrouted) plan.
    turf_id
        The turf.

    Returns
    -------
    tuple of float
        Metres; without a route the street length is the walk.
    """
    walk = float(plan.turfs.loc[turf_id, "walk_m"])
    if turf_id in plan.routes.index:
        return walk, float(plan.routes.loc[turf_id, "length_m"])
    return walk, walk


def distance_texts(plan: TurfPlan, turf_id: str, lang: str) -> dict[str, str]:
    """Return the labelled distance texts of a turf (:data:`DISTANCE_LABELS`) in ``lang``."""
    walk, streets = turf_distances(plan, turf_id)
    labels = DISTANCE_LABELS[lang]
    return {
        "walk_short": labels["walk_short"].format(km=f"{walk / 1000:.1f}"),
        "walk": labels["walk"].format(km=f"{walk / 1000:.1f}"),
        "streets": labels["streets"].format(km=f"{streets / 1000:.1f}"),
    }


def start_door(plan: TurfPlan, turf_id: str) -> dict[str, Any]:
    """Return where a turf's walk starts: the first door's address, position and ``geo:`` link.

    Parameters
    ----------
    plan
        A routed plan.
    turf_id
        The turf.

    Returns
    -------
    dict
        ``address`` (house number, unit, street), ``lat``/``lon`` (WGS84, 6 decimals) and
        ``geo`` (RFC 5870 URI with the address as its label, opened by the phone's map app).
    """
    rows = plan.walk_rows(turf_id)
    if len(rows) == 0:
        msg = f"no turf {turf_id!r} in this plan"
        raise KeyError(msg)
    row = int(rows[0])
    first = plan.doors.iloc[row]
    unit = _text(first.get(schema.UNIT))
    address = " ".join(
        x for x in (_text(first.get(schema.HOUSENUMBER)), f"({unit})" if unit else "",
                    _text(first.get(schema.STREET))) if x
    )
    lon_f, lat_f = plan.lonlat[row]
    lat, lon = f"{lat_f:.6f}", f"{lon_f:.6f}"
    label = quote(address.replace("(", " ").replace(")", " ").strip(), safe="")
    return {"address": address, "lat": lat, "lon": lon,
            "geo": f"geo:{lat},{lon}?q={lat},{lon}({label})"}


def crossing_point(plan: TurfPlan, turf_id: str, lang: str = "fr") -> dict[str, str] | None:
    """Return where a turf that spans a barrier crosses it, or None.

    The point is the report's (:mod:`knockin_geo.checks`: a marked crossing place on the
    separating barrier line, else a street meeting it, nearest the doors' centre). Returns
    ``text`` (what to do: the barrier's name and how to cross, "cross Boulevard X once, at the
    traffic lights"), ``lat``/``lon`` and ``geo`` (a ``geo:`` link the phone's map app opens).
    """
    for prob in plan.report.get("problems", []):
        if prob.get(schema.TURF_ID) != turf_id or "crossing" not in prob:
            continue
        at = prob["crossing"]
        lat = f"{float(at['lat']):.6f}"
        lon = f"{float(at['lon']):.6f}"
        barrier = str(at.get("on") or prob.get("barrier") or "")
        where = CROSSING_WHERE[lang]
        text = LABELS[lang]["cross_text"].format(
            barrier=barrier, where=where.get(str(at.get("kind") or ""), where[""])).strip()
        label = quote(barrier.replace("(", " ").replace(")", " ").strip(), safe="")
        return {"text": text, "lat": lat, "lon": lon,
                "geo": f"geo:{lat},{lon}?q={lat},{lon}({label})"}
    return None


_TEMPLATE = """<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ L.title }} {{ turf_id }}</title>
<style>
@page { size: A4; margin: 12mm; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto;
       max-width: 190mm; padding: 8px; color: #111; font-size: 14px; }
h1 { font-size: 20px; margin: 4px 0; }
.meta { display: grid; grid-template-columns: repeat(auto-fit, minmax(130px, 1fr)); gap: 4px 12px;
        margin: 6px 0 10px; }
.meta div span { display: block; color: #555; font-size: 12px; }
.meta .wide { grid-column: span 2; }
.meta small { display: block; color: #333; }
.meta a.geo { display: inline-block; margin-left: 6px; }
.fill { border-bottom: 1px solid #999; min-height: 1.4em; }
figure { margin: 0 0 10px; }
figure svg { width: 100%; height: auto; max-height: 95mm; border: 1px solid #ccc; }
figcaption { font-size: 12px; color: #555; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #bbb; padding: 4px 3px; text-align: center; }
th { background: #f0f0f0; font-size: 12px; }
td.num { font-weight: 600; font-size: 15px; }
td.notes { min-width: 70px; }
tr.street th { text-align: left; background: #dde6f5; font-size: 13px; }
.box { display: inline-block; width: 16px; height: 16px; border: 1.5px solid #333; }
tfoot td { font-weight: 600; }
.scroll { overflow-x: auto; }
@media print { .scroll { overflow: visible; } tr { page-break-inside: avoid; }
               thead { display: table-header-group; } .meta a.geo { display: none; } }
/* a phone (360 px and up): every column fits, headers written upwards, smaller boxes */
@media screen and (max-width: 600px) {
  body { padding: 4px; font-size: 13px; }
  .meta { grid-template-columns: 1fr 1fr; }
  .meta a.geo { display: block; min-height: 44px; line-height: 44px; margin: 0; }
  thead th { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap;
             padding: 4px 1px; font-size: 11px; vertical-align: bottom; }
  th, td { padding: 3px 1px; }
  td.num { font-size: 14px; }
  td.notes { min-width: 56px; }
  .box { width: 14px; height: 14px; }
}
</style>
</head>
<body>
<h1>{{ L.title }} — {{ L.turf }} {{ turf_id }}</h1>
<div class="meta">
  {% if precinct_id %}<div><span>{{ L.precinct }}</span>{{ precinct_id }}</div>{% endif %}
  <div><span>{{ L.doors }}</span>{{ n_doors }}</div>
  <div><span>{{ L.households }}</span>{{ n_households }}</div>
  <div class="wide"><span>{{ L.route }}</span><b class="walk">{{ dist.walk }}</b>
    <small class="streets">{{ dist.streets }}</small></div>
  <div><span>{{ L.time }}</span>{{ minutes }} {{ L.minutes }}</div>
  <div class="wide"><span>{{ L.start }}</span><b class="start">{{ start.address }}</b>
    <a class="geo" href="{{ start.geo }}">{{ L.open_in_maps }}</a></div>
  {% if crossing %}<div class="wide"><span>{{ L.cross }}</span><b class="cross">{{ crossing.text
    }}</b> <a class="geo" href="{{ crossing.geo }}">{{ L.open_in_maps }}</a></div>{% endif %}
  <div><span>{{ L.volunteer }}</span><div class="fill"></div></div>
  <div><span>{{ L.date }}</span><div class="fill"></div></div>
</div>
<figure>{{ svg }}<figcaption>{{ L.map }}. {{ L.credit }}</figcaption></figure>
<div class="scroll">
<table>
<thead><tr><th>{{ L.seq }}</th><th>{{ L.number }}</th><th>{{ L.unit }}</th><th>{{ L.hh }}</th>
{% for f in extra %}<th>{{ f }}</th>{% endfor %}
{% for code in codes %}<th>{{ code }}</th>{% endfor %}<th>{{ L.notes }}</th></tr></thead>
<tbody>
{% for group in groups %}
<tr class="street"><th colspan="{{ 5 + extra|length + codes|length }}">{{ group.street }} —
{{ group.side }}</th></tr>
{% for d in group.doors %}
<tr><td>{{ d.seq }}</td><td class="num">{{ d.number }}</td><td>{{ d.unit }}</td>
<td>{{ d.households }}</td>
{% for f in extra %}<td>{{ d.extra[loop.index0] }}</td>{% endfor %}
{% for code in codes %}<td><span class="box"></span></td>{% endfor %}<td class="notes"></td></tr>
{% endfor %}
{% endfor %}
</tbody>
<tfoot><tr><td colspan="3">{{ L.total }}</td><td>{{ n_households }}</td>
{% for f in extra %}<td></td>{% endfor %}
{% for code in codes %}<td></td>{% endfor %}<td></td></tr></tfoot>
</table>
</div>
</body>
</html>
"""

_INDEX = """<!DOCTYPE html>
<html lang="{{ lang }}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ L.index }}</title>
<style>body{font-family:system-ui,sans-serif;max-width:800px;margin:auto;padding:8px}
td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}
a{font-size:16px}</style></head>
<body><h1>{{ L.index }}</h1><table>
<tr><th>{{ L.turf }}</th><th>{{ L.precinct }}</th><th>{{ L.doors }}</th><th>{{ walk_head }}</th>
<th>{{ L.time }}</th></tr>
{% for t in turfs %}<tr><td><a href="{{ t.file }}">{{ t.turf_id }}</a></td>
<td>{{ t.precinct_id }}</td><td>{{ t.doors }}</td><td>{{ t.km }}</td>
<td>{{ t.minutes }} {{ L.minutes }}</td></tr>{% endfor %}
</table></body></html>
"""

#: Compiled once per process: ``get_template`` caches what the loader gives.
_ENV = jinja2.Environment(
    loader=jinja2.DictLoader({"walk_list.html": _TEMPLATE, "index.html": _INDEX}),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)

_NUMBER = re.compile(r"^\s*(\d+)")


def house_parity(number: str) -> str | None:
    """Return ``odd``/``even`` for a house number such as ``12``, ``12 bis``, ``7B``; else None.

    Parameters
    ----------
    number
        House number as written.

    Returns
    -------
    str or None
        The parity of its leading integer.
    """
    m = _NUMBER.match(number or "")
    if not m:
        return None
    return "odd" if int(m.group(1)) % 2 else "even"


def walk_list_html(
    plan: TurfPlan, turf_id: str, *, lang: str = "fr", extra_fields: tuple[str, ...] = ()
) -> str:
    """Return the walk list of one turf as a self-contained HTML page.

    Parameters
    ----------
    plan
        A routed plan.
    turf_id
        The turf.
    lang
        ``fr`` or ``en``.
    extra_fields
        Door columns allowed by the field policy (:class:`knockin_geo.privacy.FieldPolicy`),
        shown after the households.

    Returns
    -------
    str
        The HTML page.
    """
    if lang not in LABELS:
        msg = f"unknown language {lang!r}: use one of {sorted(LABELS)}"
        raise ValueError(msg)
    labels = LABELS[lang]
    d = plan.walk_doors(turf_id)
    if len(d) == 0:
        msg = f"no turf {turf_id!r} in this plan"
        raise KeyError(msg)
    t = plan.turfs.loc[turf_id]
    route = plan.routes.geometry.get(turf_id) if len(plan.routes) else None
    groups = _groups(d, labels, extra_fields)
    start = start_door(plan, turf_id)
    minutes = t.get("est_minutes", np.nan)
    codes = [fr if lang == "fr" else en for _, fr, en in RESULT_CODES]
    html = _ENV.get_template("walk_list.html").render(
        lang=lang,
        L=labels,
        turf_id=turf_id,
        precinct_id=_text(t.get(schema.PRECINCT_ID)),
        n_doors=len(d),
        n_households=int(d[schema.HOUSEHOLDS].sum()) if schema.HOUSEHOLDS in d else len(d),
        dist=distance_texts(plan, turf_id, lang),
        minutes=f"{minutes:.0f}" if pd.notna(minutes) else "?",
        start=start,
        crossing=crossing_point(plan, turf_id, lang),
        groups=groups,
        codes=codes,
        extra=list(extra_fields),
        svg=jinja2.utils.markupsafe.Markup(_svg_map(plan, d, route, start["address"])),
    )
    return html


def walk_lists(
    plan: TurfPlan,
    out_dir: Path,
    *,
    lang: str = "fr",
    extra_fields: tuple[str, ...] = (),
    workers: int | None = 1,
) -> list[Path]:
    """Write one walk list per turf and an index into ``out_dir``, each file atomically.

    Parameters
    ----------
    plan
        A routed plan.
    out_dir
        Folder to write into (created).
    lang
        ``fr`` or ``en``.
    extra_fields
        Extra door columns shown (see :func:`walk_list_html`).
    workers
        Processes that build the pages (:func:`knockin_geo._pool.per_turf`); None: one per
        core. The bytes are the same whatever the number.

    Returns
    -------
    list of pathlib.Path
        The files written, the index last.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    rows = []
    tids = sorted(plan.turfs.index.astype(str))
    build = functools.partial(walk_list_html, lang=lang, extra_fields=extra_fields)
    for tid, page in zip(tids, per_turf(build, plan, tids, workers), strict=True):
        name = f"{_safe(tid)}.html"
        write_text_atomic(out_dir / name, page)
        written.append(out_dir / name)
        t = plan.turfs.loc[tid]
        walk, _ = turf_distances(plan, tid)
        rows.append({
            "file": name,
            schema.TURF_ID: tid,
            schema.PRECINCT_ID: _text(t.get(schema.PRECINCT_ID)),
            "doors": int(t["doors"]),
            "km": f"{walk / 1000:.1f}",
            "minutes": f"{float(t['est_minutes']):.0f}",
        })
    index = _ENV.get_template("index.html").render(
        lang=lang, L=LABELS[lang], turfs=rows, walk_head=DISTANCE_LABELS[lang]["walk_head"]
    )
    write_text_atomic(out_dir / "index.html", index)
    written.append(out_dir / "index.html")
    return written


def _groups(
    d: pd.DataFrame, labels: dict[str, str], extra_fields: tuple[str, ...] = ()
) -> list[dict[str, Any]]:
    """Consecutive runs of doors on the same street (and street side, where walked apart).

    A run is labelled with its side: odd or even when all its house numbers share a parity,
    else left or right when all its doors are on one side, else both sides (a quiet street swept
    in one pass).
    """
    street = (
        d[schema.STREET].fillna("").astype(str).to_numpy()
        if schema.STREET in d
        else np.full(len(d), "", dtype=object)
    )
    numbers = d[schema.HOUSENUMBER].fillna("").astype(str).to_numpy()
    sides = d[schema.SIDE].fillna("").astype(str).to_numpy()
    chain = d["chain"].to_numpy() if "chain" in d else np.zeros(len(d))
    seq, unit, households = (_cells(d, c) for c in (schema.SEQ, schema.UNIT, schema.HOUSEHOLDS))
    extra = [_cells(d, f) for f in extra_fields]
    groups: list[dict[str, Any]] = []
    key = None
    for i in range(len(d)):
        name = street[i] or labels["no_street"]
        k = (name, chain[i])
        if k != key:
            groups.append({"street": name, "doors": [], "sides": set()})
            key = k
        groups[-1]["sides"].add(sides[i])
        groups[-1]["doors"].append(
            {
                "seq": _text(seq[i]),
                "number": numbers[i],
                "unit": _text(unit[i]) if unit is not None else "",
                "households": _text(households[i]) if households is not None else 1,
                "extra": [_text(x[i]) for x in extra],
            }
        )
    for g in groups:
        parities = {house_parity(x["number"]) for x in g["doors"]}
        parity = next(iter(parities)) if len(parities) == 1 else None
        sides_here = g.pop("sides")
        if parity is not None:
            g["side"] = labels[parity]
        elif len(sides_here) == 1 and next(iter(sides_here)) in ("left", "right"):
            g["side"] = labels[next(iter(sides_here))]
        else:
            g["side"] = labels["both"]
    return groups


def _svg_map(
    plan: TurfPlan, d: pd.DataFrame, route: shapely.Geometry | None, start: str = ""
) -> str:
    """Draw a small static map: nearby streets, the route, numbered doors, the start."""
    pts = np.column_stack([d["snap_x"].to_numpy(float), d["snap_y"].to_numpy(float)])
    door_xy = np.column_stack(
        [shapely.get_x(d.geometry.to_numpy()), shapely.get_y(d.geometry.to_numpy())]
    )
    allxy = np.vstack([pts, door_xy])
    lo = allxy.min(axis=0) - 40
    hi = allxy.max(axis=0) + 40
    span = np.maximum(hi - lo, 1.0)
    width = 600.0
    scale = width / span[0]
    height = max(200.0, min(900.0, span[1] * scale))
    scale = min(scale, height / span[1])

    def tx(xy: np.ndarray) -> np.ndarray:
        return np.column_stack([(xy[:, 0] - lo[0]) * scale, (hi[1] - xy[:, 1]) * scale])

    box = shapely.box(lo[0], lo[1], hi[0], hi[1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {span[0] * scale:.0f} '
        f'{span[1] * scale:.0f}" role="img">',
        '<rect width="100%" height="100%" fill="#fbfbf8"/>',
    ]
    coords, which = shapely.get_coordinates(plan.network.streets_in(box), return_index=True)
    for c in np.split(tx(coords), np.flatnonzero(np.diff(which)) + 1) if len(coords) else []:
        if len(c) >= 2:
            parts.append(
                f'<polyline points="{_pts(c)}" fill="none" stroke="#b9b9b9" stroke-width="3"/>'
            )
    if route is not None and not shapely.is_empty(route):
        c = tx(shapely.get_coordinates(route))
        parts.append(
            f'<polyline points="{_pts(c)}" fill="none" stroke="#1f5fbf" stroke-width="2.5" '
            'stroke-opacity="0.85"/>'
        )
    dxy = tx(door_xy)
    seqs = d[schema.SEQ].to_numpy()
    for k, (x, y) in enumerate(dxy):
        parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.2" fill="#c0392b"/>')
        if pd.notna(seqs[k]):
            parts.append(
                f'<text x="{x + 4:.1f}" y="{y - 3:.1f}" font-size="9" fill="#222">'
                f"{int(seqs[k])}</text>"
            )
    if len(dxy):
        x, y = dxy[0]
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7" fill="none" stroke="#1e8e3e" '
            'stroke-width="3"/>'
        )
        parts.append(_svg_start_label(x, y, span[0] * scale, start))
    parts.append("</svg>")
    return "".join(parts)


def _svg_start_label(x: float, y: float, width: float, text: str) -> str:
    """Return the start's address beside its green circle, inside the drawing (escaped)."""
    label = html_escape(text)
    right = x < width * 0.6
    tx = x + 10 if right else x - 10
    anchor = "start" if right else "end"
    return (
        f'<text class="start-label" x="{tx:.1f}" y="{max(y - 8, 14):.1f}" font-size="13" '
        f'font-weight="700" fill="#1e8e3e" stroke="#fff" stroke-width="3" '
        f'paint-order="stroke" text-anchor="{anchor}">{label}</text>'
    )


def _pts(c: np.ndarray) -> str:
    """Return ``x,y x,y ...`` with one decimal (one formatting call for the whole line)."""
    return ("%.1f,%.1f " * len(c) % tuple(c.ravel().tolist()))[:-1]


def _cells(d: pd.DataFrame, column: str) -> Any:
    """Return a column's values as ``d[column].iloc[i]`` gives them (None without the column).

    Read once per turf instead of once per door: each ``.iloc`` builds a Series (the walk
    lists of a city made tens of thousands of them).
    """
    return d[column].array if column in d else None


def _text(value: Any) -> str:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _safe(name: str) -> str:
    """Return a file-name-safe version of a turf id."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def turf_file_names(turf_ids: Iterable[str]) -> dict[str, str]:
    """Map turf ids to the walk list file names used by :func:`walk_lists`.

    Parameters
    ----------
    turf_ids
        Turf ids.

    Returns
    -------
    dict
        ``turf_id -> file name``.
    """
    return {t: f"{_safe(t)}.html" for t in turf_ids}
