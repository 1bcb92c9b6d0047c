"""HTML maps: the field director's overview (folium) and one phone map per volunteer turf.

Both open with no network: Leaflet's JavaScript and CSS are inlined from the
``django-js-lib-leaflet`` package (Leaflet 1.9.4 as static files, no other dependency), and the
streets are drawn from our own network data, so the map is readable without tiles. OpenStreetMap
tiles are an optional layer, off by default, for when the phone is online.

Volunteer maps carry only the allow-listed fields (house number, street, unit, households, walk
order, turf and precinct ids): no names, phones or e-mails, whatever the address file holds.
"""

from __future__ import annotations

import base64
import colorsys
import functools
import hashlib
import html
import itertools
import json
import logging
import re
from collections.abc import Mapping
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import folium
import geopandas as gpd
import jinja2
import networkx as nx
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, Figure, MacroElement, Template

from knockin_geo import schema
from knockin_geo._atomic import write_text_atomic
from knockin_geo._json import compact, parse
from knockin_geo._pool import per_turf
from knockin_geo.classes import classify
from knockin_geo.crs import WGS84, to_lonlat
from knockin_geo.mapedit import EditMode, edit_data, locked_mask
from knockin_geo.privacy import MapLock
from knockin_geo.walklist import crossing_point, distance_texts, start_door, turf_file_names

if TYPE_CHECKING:
    from knockin_geo.model import TurfPlan

logger = logging.getLogger(__name__)

#: Qualitative palette for turfs (ColorBrewer Set1/Dark2-like, readable on a light map).
PALETTE: tuple[str, ...] = (
    "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628",
    "#f781bf", "#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e",
)

OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
OSM_ATTRIBUTION = (
    '© <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors'
)


@functools.cache
def leaflet_assets() -> tuple[str, str]:
    """Return Leaflet's JavaScript and CSS, the CSS images inlined as data URIs.

    Returns
    -------
    tuple of str
        ``(javascript, css)`` ready to inline in ``<script>`` and ``<style>`` elements.
    """
    root = files("js_lib_leaflet") / "static" / "js_lib_leaflet"
    js = (root / "leaflet.js").read_text(encoding="utf-8")
    js = re.sub(r"//# sourceMappingURL=.*$", "", js, flags=re.MULTILINE)
    css = (root / "leaflet.css").read_text(encoding="utf-8")

    def inline(match: re.Match[str]) -> str:
        data = (root / "images" / Path(match.group(1)).name).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(data).decode('ascii')})"

    css = re.sub(r"url\((images/[^)]+\.png)\)", inline, css)
    return js, css


def turf_colors(turfs: gpd.GeoDataFrame, *, gap_m: float = 30.0) -> dict[str, str]:
    """Give each turf a colour so that neighbouring turfs never share one.

    Parameters
    ----------
    turfs
        Turfs with footprint polygons, metric CRS.
    gap_m
        Turfs whose footprints are closer than this are neighbours.

    Returns
    -------
    dict
        ``turf_id -> #rrggbb``. Greedy colouring (largest degree first), deterministic.
    """
    ids = [str(t) for t in turfs.index]
    g: nx.Graph = nx.Graph()
    g.add_nodes_from(sorted(ids))
    geoms = turfs.geometry.to_numpy()
    if len(geoms):
        a, b = shapely.STRtree(geoms).query(shapely.buffer(geoms, gap_m), "intersects")
        g.add_edges_from((ids[i], ids[j]) for i, j in zip(a, b, strict=True) if i != j)
    coloring = nx.greedy_color(g, strategy="largest_first")
    n_colors = max(coloring.values(), default=-1) + 1
    palette = list(PALETTE)
    while len(palette) < n_colors:  # more colours than the palette: spread extra hues
        h = len(palette) * 0.618034 % 1.0
        palette.append(_hsv_hex(h, 0.65, 0.85))
    return {t: palette[c] for t, c in coloring.items()}


def _hsv_hex(h: float, s: float, v: float) -> str:
    r, g, b = colorsys.hsv_to_rgb(h, s, v)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def to_wgs84(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Return the frame in EPSG:4326, coordinates rounded to 1e-6 degree (about 10 cm)."""
    out = frame.to_crs(WGS84)
    out.geometry = shapely.set_precision(out.geometry.to_numpy(), 1e-6)
    return out


def geojson_collection(frame: gpd.GeoDataFrame, props: list[str]) -> dict[str, Any]:
    """Return a compact GeoJSON FeatureCollection with the given properties (EPSG:4326).

    For folium layers only: every text property is HTML-escaped (:func:`html_text`), because
    folium's ``GeoJsonTooltip`` and ``GeoJsonPopup`` put property values into the page as HTML
    (``innerHTML``), and street names, ids and notes come from input anyone can edit.
    """
    feats = []
    geoms = shapely.to_geojson(frame.geometry.to_numpy())
    cols = {p: frame[p].tolist() for p in props}
    for i, g in enumerate(geoms):
        if g is None:
            continue
        feats.append(
            {
                "type": "Feature",
                "properties": {p: html_text(_plain(cols[p][i])) for p in props},
                "geometry": parse(g),
            }
        )
    return {"type": "FeatureCollection", "features": feats}


def html_text(value: Any) -> Any:
    """Return a text escaped for HTML (``& < > " '``, backtick, dollar, backslash, braces).

    Safe in an element's text, in a quoted attribute, inside a JavaScript template literal
    (where folium puts tooltip text) and in what folium compiles as a Jinja template again when
    the page is rendered (``{{ ... }}`` from input would run as Python then); numbers, booleans
    and None are returned unchanged.

    Parameters
    ----------
    value
        A value read from input (street name, id, note...).

    Returns
    -------
    Any
        The escaped text, or ``value`` when it is not a string.
    """
    if not isinstance(value, str):
        return value
    return html.escape(value, quote=True).translate(_EXTRA_ESCAPES)


#: Characters that matter inside JavaScript template literals (folium's tooltips use them), and
#: braces: branca compiles each element's rendered text as a Jinja template once more.
_EXTRA_ESCAPES = str.maketrans({"`": "&#96;", "$": "&#36;", "\\": "&#92;", "{": "&#123;",
                                "}": "&#125;"})


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA:
        return None
    if isinstance(v, float | np.floating):
        return None if np.isnan(v) else round(float(v), 3)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.bool_):
        return bool(v)
    return v if isinstance(v, int | str | bool) else str(v)


class _Raw(Element):
    """HTML put in the page as it is: not compiled as a template (Leaflet's code is large)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self._text = text

    def render(self, **kwargs: Any) -> str:
        return self._text


def _figure(element: Element) -> Figure:
    """Return the page an element is rendered in (branca types the root as any Element)."""
    return cast(Figure, element.get_root())


class _TextMacros(MacroElement):
    """``MacroElement.render`` without compiling what its macros wrote as a template again.

    branca wraps the text of an element's ``header``, ``html`` and ``script`` macros in a new
    ``Element``, which compiles it as a Jinja template before writing it out: for a layer, its
    whole data. Here the text goes into the page as that second pass writes it (Jinja drops one
    final newline). Layers put it before ``MacroElement`` (``class L(folium.GeoJson,
    _TextMacros)``): their own render steps run first, as in folium.
    """

    # branca annotates Element.render as returning the HTML, but MacroElement.render returns None
    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        figure = _figure(self)
        macros = self._template.module.__dict__
        for part in ("header", "html", "script"):
            if (macro := macros.get(part)) is not None:
                text = str(macro(self, kwargs)).removesuffix("\n")
                getattr(figure, part).add_child(_Raw(text), name=self.get_name())
        for element in list(self._children.values()):
            element.render(**kwargs)


class GeoJsonLayer(folium.GeoJson, _TextMacros):
    """``folium.GeoJson`` whose data is not compiled as a Jinja template (same page).

    The texts in the data are escaped for HTML and braces by :func:`geojson_collection`.
    """


class InlineLeaflet(MacroElement):
    """Puts Leaflet's JS and CSS inline in the page header (instead of CDN links)."""

    _template = Template("")

    # branca annotates Element.render as returning the HTML, but MacroElement.render returns None
    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        """Add Leaflet's code and style to the page header, then render as usual."""
        js, css = leaflet_assets()
        figure = _figure(self)
        figure.header.add_child(_Raw(f"<style>{css}</style>"), name="leaflet_css_inline")
        figure.header.add_child(_Raw(f"<script>{js}</script>"), name="leaflet_js_inline")
        super().render(**kwargs)


_LEGEND = """{% macro html(this, kwargs) %}
<div style="position:absolute; bottom:24px; right:10px; z-index:1000; background:white;
 padding:8px 10px; border:1px solid #999; border-radius:4px; font:12px sans-serif;
 box-shadow:0 1px 4px rgba(0,0,0,.3);">
<b>{{ this.title }}</b><br>
<span style="display:inline-block;width:14px;height:10px;background:#4daf4a;opacity:.45;
 border:2px solid #4daf4a"></span> {{ this.labels.turf }}<br>
<span style="display:inline-block;width:14px;border-top:3px solid #333"></span>
 {{ this.labels.route }}<br>
<span style="display:inline-block;width:8px;height:8px;border-radius:50%;background:#377eb8">
</span> {{ this.labels.door }}<br>
<span style="display:inline-block;width:8px;height:8px;border-radius:50%;background:#fff;
 border:2px solid #555"></span> {{ this.labels.unassigned }}<br>
<span style="display:inline-block;width:14px;border-top:2px dashed #222"></span>
 {{ this.labels.precinct }}<br>
<span style="color:#666">{{ this.labels.summary }}</span>
</div>
{% endmacro %}"""


class _Legend(MacroElement):
    _template = Template(_LEGEND)

    def __init__(self, title: str, labels: dict[str, str]) -> None:
        super().__init__()
        self._name = "Legend"
        self.title = title
        self.labels = labels


#: Labels of the director map's turf popup, by column (one figure per meaning, labelled).
_TURF_POPUP_LABELS: dict[str, str] = {
    schema.TURF_ID: "turf", schema.PRECINCT_ID: "precinct", "doors": "doors",
    "households": "households", "km": "walk km (incl. going to each door)",
    "est_minutes": "minutes", "balance": "balance", "pieces": "pieces",
    "barrier_crossings": "barriers", schema.LOCKED: "locked by hand edits", "note": "note",
}


def _popup_label(column: str, *, routed: bool) -> str:
    """Label of a turf popup field: minutes say whether they come from the route."""
    if column == "est_minutes":
        return "minutes (routed)" if routed else "minutes (estimate before routing)"
    return _TURF_POPUP_LABELS[column]


def director_map(
    plan: TurfPlan, *, include_unassigned: bool = True, streets: bool = True
) -> folium.Map:
    """Build the field director's map of a plan.

    Parameters
    ----------
    plan
        A plan (routed or not).
    include_unassigned
        Show doors left out of turfs (except those outside the chosen universe), with the reason.
    streets
        Draw the street network of the area (readable without tiles).

    Returns
    -------
    folium.Map
        Layers: streets, precincts, turfs (coloured so that neighbours differ, with a popup of
        their figures), turf labels, routes, doors and unassigned doors (each one canvas built
        from compact arrays, with a tooltip of the door under the mouse), and an
        optional OpenStreetMap background (off: it needs the network). Layer control, legend and
        scale bar. No CDN: opens offline.
    """
    turfs = plan.turfs
    doors = plan.doors
    assigned = doors[doors[schema.TURF_ID].notna()]
    colors = turf_colors(turfs)
    area_geom = (
        shapely.union_all(turfs.geometry.to_numpy()) if len(turfs)
        else shapely.box(*doors.total_bounds)
    )
    m = _base_map(area_geom, plan.crs)
    if streets:
        _add_streets(m, plan, area_geom)
    if plan.precincts is not None and len(turfs):
        _add_precincts(m, plan.precincts, turfs)
    if plan.precincts is not None and "score" in plan.precincts.columns:
        _add_priority(m, plan.precincts)
    if len(turfs):
        _add_turfs(m, turfs, colors)
    spans = _barrier_span_layer(plan.report)
    if spans._children:  # no empty entry in the layer control (nor an empty group's bounds)
        spans.add_to(m)
    if len(plan.routes):
        _add_routes(m, plan.routes, colors)
    if len(assigned):
        EditMode(_add_doors(m, assigned, colors), _script_json(edit_data(plan))).add_to(m)
    if include_unassigned:
        _add_unassigned(m, doors)
    summ = plan.report.get("summary", {})
    _Legend(
        "knockin_geo",
        {
            "turf": "turf (neighbours in different colours)",
            "route": "walking route",
            "door": "door (turf colour)",
            "unassigned": "door left out (see why)",
            "precinct": "precinct boundary",
            "summary": f"{summ.get('turfs', len(turfs))} turfs, "
                       f"{summ.get('doors_assigned', len(assigned))} doors",
        },
    ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m


def _base_map(area_geom: shapely.Geometry, crs: Any) -> folium.Map:
    """Start a map framed on the area: Leaflet inlined, OpenStreetMap tiles off by default."""
    minx, miny, maxx, maxy = gpd.GeoSeries([area_geom], crs=crs).to_crs(WGS84).total_bounds
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        tiles=None,
        control_scale=True,
        prefer_canvas=True,
        zoom_start=14,
    )
    m.default_js = []
    m.default_css = []
    m.add_child(InlineLeaflet())
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    folium.TileLayer(
        OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap (online)", overlay=True, show=False
    ).add_to(m)
    return m


def _add_streets(m: folium.Map, plan: TurfPlan, area_geom: shapely.Geometry) -> None:
    """Add the streets within 200 m of the turfs as one polyline layer."""
    hull = shapely.buffer(area_geom, 200.0)
    edges = plan.network.edges
    near = plan.network.edge_tree().query(hull, "intersects")
    _LineLayer(
        "Streets",
        _lines(edges.geometry.to_numpy()[np.sort(near)], edges.crs),
        {"color": "#9a9a9a", "weight": 2, "opacity": 0.8, "interactive": False},
    ).add_to(m)


def _add_precincts(m: folium.Map, precincts: gpd.GeoDataFrame, turfs: gpd.GeoDataFrame) -> None:
    """Add the outlines of the precincts that hold turfs."""
    used = set(turfs[schema.PRECINCT_ID].dropna().astype(str))
    pr = precincts[precincts.index.astype(str).isin(used)]
    pr = to_wgs84(pr.assign(**{schema.PRECINCT_ID: pr.index.astype(str)}))
    GeoJsonLayer(
        geojson_collection(pr, [schema.PRECINCT_ID]),
        name="Precincts",
        style_function=lambda f: {
            "color": "#222", "weight": 2, "dashArray": "6 4", "fillOpacity": 0,
        },
        tooltip=folium.GeoJsonTooltip([schema.PRECINCT_ID], aliases=["precinct"]),
    ).add_to(m)


def _add_priority(m: folium.Map, precincts: gpd.GeoDataFrame) -> None:
    """Add the precincts' priority score as a choropleth (precincts from ``knockin-geo target``)."""
    pr = precincts[pd.to_numeric(precincts["score"], errors="coerce").notna()]
    if len(pr) >= 2:
        layer, legend = choropleth_layer(
            pr, "score", name="Priority score", show=False,
            tooltip_fields=tuple(c for c in ("rank", "turnout") if c in pr.columns),
        )
        layer.add_to(m)
        legend.add_to(m)


def _add_turfs(m: folium.Map, turfs: gpd.GeoDataFrame, colors: Mapping[str, str]) -> None:
    """Add the turfs (coloured, with a popup of their figures) and their decluttered labels."""
    t = turfs.copy()
    t[schema.TURF_ID] = t.index.astype(str)
    t["color"] = [colors[x] for x in t[schema.TURF_ID]]
    t["km"] = np.round(t["walk_m"].to_numpy(dtype=float) / 1000, 2)
    t["balance"] = [f"{100 * x:+.1f} %" for x in t["deviation"].to_numpy(dtype=float)]
    locked = locked_mask(t)
    if locked.any():  # hand edits locked some turfs: the popup and the label say which
        t[schema.LOCKED] = np.where(locked, "yes", "no")
    props = [schema.TURF_ID, schema.PRECINCT_ID, "doors", "households", "km",
             "est_minutes", "balance", "pieces", "barrier_crossings", schema.LOCKED, "note",
             "color"]
    props = [p for p in props if p in t.columns]
    tw = to_wgs84(t[[*props, "geometry"]])
    GeoJsonLayer(
        geojson_collection(tw, props),
        name="Turfs",
        style_function=lambda f: {
            "color": f["properties"]["color"], "weight": 2,
            "fillColor": f["properties"]["color"], "fillOpacity": 0.25,
        },
        popup=folium.GeoJsonPopup(
            [p for p in props if p != "color"],
            # the routes' minutes once routed (the cutter's estimate is then est_minutes_precut)
            aliases=[_popup_label(p, routed="est_minutes_precut" in turfs.columns)
                     for p in props if p != "color"],
        ),
    ).add_to(m)
    big_first = np.argsort(-shapely.area(t.geometry.to_numpy()), kind="stable")
    rep = gpd.GeoDataFrame(geometry=shapely.point_on_surface(t.geometry.to_numpy()),
                           crs=t.crs).iloc[big_first]
    texts = [f"{tid} (locked)" if lock else tid
             for tid, lock in zip(t[schema.TURF_ID], locked, strict=True)]
    labels = _LabelLayer("Turf labels", _points(rep), [texts[i] for i in big_first])
    labels.add_to(m)
    _LabelDeclutter(labels).add_to(m)
    _figure(m).header.add_child(_Raw(
        "<style>.kg-turf-label{font:600 11px sans-serif;color:#111;text-align:center;"
        "text-shadow:0 0 3px #fff,0 0 3px #fff;white-space:nowrap}</style>"
    ))


def _add_routes(m: folium.Map, routes: gpd.GeoDataFrame, colors: Mapping[str, str]) -> None:
    """Add the route lines along the streets."""
    r = routes.copy()
    r[schema.TURF_ID] = r.index.astype(str)
    r["color"] = [colors.get(x, "#333") for x in r[schema.TURF_ID]]
    rw = to_wgs84(r[[schema.TURF_ID, "length_m", "color", "geometry"]])
    GeoJsonLayer(
        geojson_collection(rw, [schema.TURF_ID, "length_m", "color"]),
        name="Routes",
        style_function=lambda f: {"color": "#222", "weight": 2, "opacity": 0.85},
        tooltip=folium.GeoJsonTooltip([schema.TURF_ID, "length_m"],
                                      aliases=["turf", "route line along the streets (m)"]),
    ).add_to(m)


def _add_doors(
    m: folium.Map, assigned: gpd.GeoDataFrame, colors: Mapping[str, str]
) -> _PointLayer:
    """Add the assigned doors in their turf's colour (one canvas layer); return the layer.

    Its points carry their address ids (``ids``), for the edit mode (:mod:`knockin_geo.mapedit`).
    """
    d = assigned.assign(**{schema.TURF_ID: assigned[schema.TURF_ID].astype(str)})
    turf_ids = sorted(set(d[schema.TURF_ID]))
    turf_index = pd.Index(turf_ids).get_indexer(d[schema.TURF_ID])
    layer = _PointLayer("Doors", {**_point_payload(
        d,
        styles=[{"color": colors[t], "fillColor": colors[t], "radius": 3, "weight": 1,
                 "fillOpacity": 0.9} for t in turf_ids],
        style_index=turf_index,
        fields=[
            _table_field("turf", turf_ids, turf_index),
            _text_field("order", d[schema.SEQ]),
            _text_field("no.", d[schema.HOUSENUMBER]),
            _lookup_field("street", d[schema.STREET]),
        ],
        kind="door",
    ), "ids": d.index.astype(str).tolist()})
    layer.add_to(m)
    return layer


def _add_unassigned(m: folium.Map, doors: gpd.GeoDataFrame) -> None:
    """Add the doors left out of every turf (outside the universe excepted), with why."""
    un = doors[
        doors[schema.TURF_ID].isna()
        & ~doors[schema.STATUS].isin(["not_in_universe"])
        & ~shapely.is_missing(doors.geometry.to_numpy())
    ]
    if len(un):
        status = un[schema.STATUS].astype(str)
        _PointLayer(f"Unassigned doors ({len(un)})", _point_payload(
            un,
            styles=[{"color": "#555", "fillColor": "#fff", "radius": 4, "weight": 2,
                     "fillOpacity": 1}],
            style_index=np.zeros(len(un), dtype=int),
            fields=[
                _lookup_field("status", status),
                _lookup_field("why", status.map(schema.ADDRESS_STATUSES).fillna("")),
                _text_field("no.", un[schema.HOUSENUMBER]),
                _lookup_field("street", un[schema.STREET]),
            ],
            kind="unassigned",
        )).add_to(m)


def _barrier_span_layer(report: dict[str, Any]) -> folium.FeatureGroup:
    """Flag where a turf spans a barrier (report ``problems`` with a ``crossing``).

    Red: avoidable (the cut should not have crossed there); orange: unavoidable by the bound.
    The tooltip says where to cross (the report's ``crossing.label``, "traffic signals on
    Boulevard X"), escaped like every text read from the input.
    """
    layer = folium.FeatureGroup(name="Barrier spans")
    for prob in report.get("problems", []):
        at = prob.get("crossing")
        if not at or at.get("lat") is None or at.get("lon") is None:
            continue
        color = "#f28e2b" if prob.get("unavoidable") else "#d62728"
        text = f"{prob[schema.TURF_ID]}: {prob['problem']}. {prob['why']}"
        if at.get("label"):
            text += f". Cross at: {at['label']}"
        folium.CircleMarker(
            [at["lat"], at["lon"]], radius=7, color=color, weight=3, fill=True,
            fill_color="#ffffff", fill_opacity=0.9,
            tooltip=html_text(text),
        ).add_to(layer)
    return layer


#: Door coordinates are stored as integer steps of this many degrees from the map's south-west
#: corner (1e-6 degree: about 0.1 m, the precision of every other layer of the map).
POINT_STEP_DEG = 1e-6


def _grid(xy: np.ndarray) -> tuple[list[int], np.ndarray]:
    """Round WGS84 ``xy`` to integer steps of :data:`POINT_STEP_DEG` from their minimum."""
    steps = np.round(xy / POINT_STEP_DEG).astype(np.int64)
    origin = steps.min(axis=0) if len(steps) else np.zeros(2, dtype=np.int64)
    return [int(origin[0]), int(origin[1])], steps - origin


def _points(frame: gpd.GeoDataFrame) -> dict[str, Any]:
    """Return the points of ``frame`` (metric CRS) as integer offsets ``[x0, y0, x1, ...]``."""
    origin, steps = _grid(shapely.get_coordinates(frame.geometry.to_crs(WGS84).to_numpy()))
    return {"origin": origin, "step": POINT_STEP_DEG, "xy": steps.ravel().tolist()}


def _lines(geoms: np.ndarray, crs: Any) -> dict[str, Any]:
    """Return LineStrings (in ``crs``) as integer steps: each line its first point, then deltas."""
    wgs = gpd.GeoSeries(geoms, crs=crs).to_crs(WGS84).to_numpy()
    xy, part = shapely.get_coordinates(wgs, return_index=True)
    origin, steps = _grid(xy)
    delta = np.diff(steps, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    starts = np.r_[True, part[1:] != part[:-1]] if len(part) else np.zeros(0, dtype=bool)
    delta[starts] = steps[starts]  # each line starts from the origin, then moves by deltas
    bounds = [*np.flatnonzero(starts).tolist(), len(steps)]
    lines = [delta[i:j].ravel().tolist() for i, j in itertools.pairwise(bounds)]
    return {"origin": origin, "step": POINT_STEP_DEG, "lines": lines}


def _point_payload(
    frame: gpd.GeoDataFrame,
    *,
    styles: list[dict[str, Any]],
    style_index: np.ndarray,
    fields: list[dict[str, Any]],
    kind: str,
) -> dict[str, Any]:
    """Return what a `_PointLayer` draws: the points, their styles and tooltip lines."""
    return {**_points(frame), "styles": styles, "s": [int(i) for i in style_index],
            "fields": fields, "kind": kind}


def _table_field(label: str, table: list[str], index: np.ndarray) -> dict[str, Any]:
    """Return a tooltip line whose value is ``table[index[i]]`` for point ``i``."""
    return {"label": label, "table": table, "index": [int(i) for i in index]}


def _lookup_field(label: str, values: pd.Series) -> dict[str, Any]:
    """Return a tooltip line of repeated texts, stored once each (sorted), indexed per point."""
    texts = values.map(lambda v: "" if _plain(v) is None else str(_plain(v)))
    table = sorted(set(texts))
    return _table_field(label, table, pd.Index(table).get_indexer(texts))


def _text_field(label: str, values: pd.Series) -> dict[str, Any]:
    """Return a tooltip line with one text per point (numbers written as text)."""
    out = []
    for v in values.tolist():
        p = _plain(v)
        out.append("" if p is None else str(int(p) if isinstance(p, float) and p.is_integer()
                                             else p))
    return {"label": label, "text": out}


#: Draws a `_PointLayer`: all its points on one canvas (no Leaflet object per point), redrawn
#: after each move; the point under the mouse (or a tap) gets a tooltip whose text is set with
#: ``textContent`` (input-derived text is never parsed as HTML).
_POINTS_JS = """var KgPoints = L.Layer.extend({
  initialize: function (d) {
    var n = d.xy.length / 2;
    this._d = d; this.kgKind = d.kind; this.kgCount = n;
    this._lat = new Float64Array(n); this._lng = new Float64Array(n);
    this._x = new Float32Array(n); this._y = new Float32Array(n);
    for (var i = 0; i < n; i++) {
      this._lng[i] = (d.origin[0] + d.xy[2 * i]) * d.step;
      this._lat[i] = (d.origin[1] + d.xy[2 * i + 1]) * d.step;
    }
    this.kgRestyle();
    this._tip = L.tooltip({className: "kg-point-tip", direction: "top", offset: [0, -4]});
  },
  _kgEvents: {"moveend resize": "_draw", zoomstart: "_hide", "mousemove click": "_hover",
            mouseout: "_out"},
  onAdd: function (map) {
    this._canvas = L.DomUtil.create("canvas", "kg-points");
    this._canvas.style.pointerEvents = "none";
    map.getPane("overlayPane").appendChild(this._canvas);
    for (var k in this._kgEvents) { map.on(k, this[this._kgEvents[k]], this); }
    this._draw();
  },
  onRemove: function (map) {
    for (var k in this._kgEvents) { map.off(k, this[this._kgEvents[k]], this); }
    this._out();
    L.DomUtil.remove(this._canvas);
  },
  kgLatLng: function (i) { return L.latLng(this._lat[i], this._lng[i]); },
  kgShow: function (i) {
    this._tip.setLatLng(this.kgLatLng(i)).setContent(this._content(i));
    if (!this._map.hasLayer(this._tip)) { this._map.openTooltip(this._tip); }
  },
  _hide: function () { this._canvas.style.visibility = "hidden"; },
  _out: function () { if (this._map && this._map.hasLayer(this._tip)) { this._tip.close(); } },
  _draw: function () {
    var map = this._map, d = this._d, size = map.getSize(), c = this._canvas;
    var ratio = window.devicePixelRatio || 1, ctx = c.getContext("2d");
    c.width = size.x * ratio; c.height = size.y * ratio;
    c.style.width = size.x + "px"; c.style.height = size.y + "px";
    L.DomUtil.setPosition(c, map.containerPointToLayerPoint([0, 0]));
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    var crs = map.options.crs, k = crs.scale(map.getZoom()), o = map.getPixelOrigin();
    var tl = map.containerPointToLayerPoint([0, 0]);
    if (!this._px) {  // projected once, at zoom 0; a move only scales and shifts
      this._px = new Float64Array(this.kgCount); this._py = new Float64Array(this.kgCount);
      for (var j = 0; j < this.kgCount; j++) {
        var q = crs.latLngToPoint(L.latLng(this._lat[j], this._lng[j]), 0);
        this._px[j] = q.x / crs.scale(0); this._py[j] = q.y / crs.scale(0);
      }
    }
    for (var i = 0; i < this.kgCount; i++) {
      this._x[i] = this._px[i] * k - o.x - tl.x; this._y[i] = this._py[i] * k - o.y - tl.y;
    }
    var self = this;
    d.styles.forEach(function (st, s) {
      ctx.beginPath();
      self._byStyle[s].forEach(function (i) {
        var x = self._x[i], y = self._y[i];
        if (x < -9 || y < -9 || x > size.x + 9 || y > size.y + 9) { return; }
        ctx.moveTo(x + st.radius, y);
        ctx.arc(x, y, st.radius, 0, 2 * Math.PI);
      });
      ctx.globalAlpha = st.fillOpacity; ctx.fillStyle = st.fillColor; ctx.fill();
      ctx.globalAlpha = 1; ctx.lineWidth = st.weight; ctx.strokeStyle = st.color; ctx.stroke();
    });
    c.style.visibility = "";
  },
  kgNearest: function (p) {  // the point drawn under container point p, or -1
    var best = -1, reach = 0;
    for (var i = 0; i < this.kgCount; i++) {
      var r = this._d.styles[this._d.s[i]].radius + 3;
      var dx = this._x[i] - p.x, dy = this._y[i] - p.y, dd = dx * dx + dy * dy;
      if (dd <= r * r && (best < 0 || dd < reach)) { best = i; reach = dd; }
    }
    return best;
  },
  kgXY: function () { return [this._x, this._y]; },  // container points, as last drawn
  kgRestyle: function () {  // after a change of d.s (a point's style)
    var n = this.kgCount, s = this._d.s, by = this._d.styles.map(function () { return []; });
    for (var j = 0; j < n; j++) { by[s[j]].push(j); }
    this._byStyle = by;
    if (this._map) { this._draw(); }
  },
  _hover: function (e) {
    var best = this.kgNearest(e.containerPoint);
    if (best < 0) { this._out(); } else { this.kgShow(best); }
  },
  _content: function (i) {
    var table = document.createElement("table");
    this._d.fields.forEach(function (f) {
      var tr = table.insertRow(), th = document.createElement("th"), td = tr.insertCell(-1);
      th.textContent = f.label;
      td.textContent = f.text ? f.text[i] : f.table[f.index[i]];
      tr.insertBefore(th, td);
    });
    return table;
  }
});"""


_LINES_JS = """function kgLines(d, style) {
  var ox = d.origin[0], oy = d.origin[1];
  var lines = d.lines.map(function (c) {
    var x = ox, y = oy, out = [];
    for (var k = 0; k < c.length; k += 2) {
      x += c[k]; y += c[k + 1]; out.push([y * d.step, x * d.step]);
    }
    return out;
  });
  return L.polyline(lines, style);
}"""


#: Draws a `_LabelLayer`: one Leaflet marker per label, its text set with ``textContent``.
_LABELS_JS = """function kgLabels(d, texts) {
  var group = L.featureGroup();
  texts.forEach(function (text, i) {
    var el = document.createElement("div");
    el.className = "kg-turf-label"; el.textContent = text;
    var ll = [(d.origin[1] + d.xy[2 * i + 1]) * d.step, (d.origin[0] + d.xy[2 * i]) * d.step];
    group.addLayer(L.marker(ll, {icon: L.divIcon({html: el, className: "kg-label-icon",
                                                   iconSize: [60, 16], iconAnchor: [30, 8]})}));
  });
  return group;
}"""


class _ArrayLayer(folium.map.Layer, _TextMacros):
    """A layer the browser builds from compact JSON (``args``) with a function of ``_js``.

    The function is put once in the page header; every argument is JSON safe in ``<script>``.
    """

    _js: str = ""
    _css: str = ""
    _call: str = ""  # JavaScript expression of the layer, from the arguments a0, a1...

    def __init__(self, name: str, *args: Any) -> None:
        super().__init__(name=name, overlay=True, control=True, show=True)
        self._name = type(self).__name__.lstrip("_")
        self.args = [jinja2.utils.markupsafe.Markup(_script_json(a)) for a in args]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._template = Template(  # compiled once per class
            "{% macro script(this, kwargs) %}\nvar {{ this.get_name() }} = " + cls._call
            + ";\n{% endmacro %}"
        )

    # branca annotates Element.render as returning the HTML, but MacroElement.render returns None
    def render(self, **kwargs: Any) -> None:  # type: ignore[override]
        figure = _figure(self)
        figure.header.add_child(_Raw(f"<script>{self._js}</script>"), name=f"{self._name}_js")
        if self._css:
            figure.header.add_child(_Raw(f"<style>{self._css}</style>"), name=f"{self._name}_css")
        super().render(**kwargs)  # the script (megabytes of JSON) as text: _TextMacros


class _LabelLayer(_ArrayLayer):
    """Text labels at points (one marker each): ``(name, points, texts)``."""

    _js = _LABELS_JS
    _call = "kgLabels({{ this.args[0] }}, {{ this.args[1] }})"


class _LineLayer(_ArrayLayer):
    """Many lines drawn alike, as one polyline: ``(name, lines, style)``."""

    _js = _LINES_JS
    _call = "kgLines({{ this.args[0] }}, {{ this.args[1] }})"


class _PointLayer(_ArrayLayer):
    """Many small circles on one canvas, with a tooltip each: ``(name, payload)``.

    Far lighter than one GeoJSON feature per point: integer coordinates, and each distinct
    street name, turf id or status held once (the points index into it).
    """

    _js = _POINTS_JS
    _css = ".kg-point-tip th{text-align:left;padding-right:6px;color:#555}"
    _call = "new KgPoints({{ this.args[0] }})"


def save_map(m: folium.Map, path: str | Path) -> Path:
    """Write a folium map to ``path`` atomically (one self-contained HTML file).

    Parameters
    ----------
    m
        The map.
    path
        Target file.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    return write_text_atomic(path, page_html(m))


def page_html(m: Element) -> str:
    """Render a folium map (or any element of a page) as the HTML :func:`save_map` writes.

    folium names elements with random ids: they become sequential, so that the same plan gives
    the same bytes.
    """
    root = m.get_root()
    page = root.render()
    return _stable_ids(page, _element_ids(root))


def _element_ids(root: Element) -> set[str]:
    """Return the ids of every element of a rendered page (its tree then holds all of them)."""
    ids: set[str] = set()
    todo = [root]
    while todo:
        element = todo.pop()
        ids.add(element._id)
        todo.extend(element._children.values())
    return ids


def _stable_ids(html: str, ids: set[str]) -> str:
    """Replace the element ids ``ids`` (32 hex digits) by sequential ones, in order of use.

    Only the page's own ids: data that looks like one (an address id that is an MD5 sum) is
    left as it is.
    """
    mapping: dict[str, str] = {}

    def repl(m: re.Match[str]) -> str:
        key = m.group(0)
        if key not in ids:
            return key
        if key not in mapping:
            mapping[key] = f"{len(mapping):032x}"
        return mapping[key]

    return re.sub(r"(?<![0-9a-f])[0-9a-f]{32}(?![0-9a-f])", repl, html)


# ----------------------------------------------------------------------------------------------
# volunteer maps
# ----------------------------------------------------------------------------------------------
_VOLUNTEER = r"""<!DOCTYPE html>
<html lang="{{ lang }}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1, maximum-scale=5">
<meta name="robots" content="noindex">
<title>{{ L.turf }} {{ meta.turf_id }}</title>
<style>{{ css }}</style>
<style>
html, body { height: 100%; margin: 0; font-family: system-ui, -apple-system, Roboto, sans-serif; }
#map { position: absolute; top: 48px; bottom: 56px; left: 0; right: 0; background: #f7f6f2; }
#bar { position: absolute; top: 0; left: 0; right: 0; height: 48px; display: flex;
       align-items: center; gap: 6px; padding: 0 6px; background: #1f3b63; color: #fff;
       box-sizing: border-box; z-index: 1000; }
#bar .t { flex: 1; font-size: 15px; line-height: 1.1; overflow: hidden; white-space: nowrap; }
#bar .t small { display: block; opacity: .85; font-size: 12px; }
#locate { position: absolute; right: 10px; bottom: 84px; z-index: 999;
          box-shadow: 0 1px 5px rgba(0,0,0,.45); }
#foot { position: absolute; bottom: 0; left: 0; right: 0; height: 56px; display: flex;
        align-items: center; gap: 8px; padding: 0 8px; background: #1f3b63; color: #fff;
        box-sizing: border-box; z-index: 1000; font-size: 14px; }
#foot #send { flex: 1; background: #1e8e3e; color: #fff; font-size: 16px; min-height: 44px; }
#foot #send.none { background: #fff; color: #1f3b63; }
button.kg { min-width: 44px; min-height: 44px; font-size: 15px; border: 0; border-radius: 6px;
            background: #fff; color: #1f3b63; font-weight: 600; padding: 0 10px; }
#panel { position: absolute; left: 0; right: 0; bottom: 0; max-height: 60%; overflow-y: auto;
         background: #fff; z-index: 1001; box-shadow: 0 -2px 8px rgba(0,0,0,.3);
         display: none; }
#panel.open { display: block; }
#panel ol { list-style: none; margin: 0; padding: 0; }
#tools { position: sticky; top: 0; z-index: 1; display: flex; align-items: center; gap: 8px;
         padding: 6px 12px; background: #1f3b63; color: #fff; font-size: 15px; }
#tools span { flex: 1; }
#tools button { background: #fff; color: #1f3b63; }
#info { padding: 8px 12px; font-size: 14px; line-height: 1.4; background: #f5f7fb;
        border-bottom: 1px solid #dde3ee; }
#info a { display: inline-block; min-height: 44px; line-height: 44px; font-weight: 600;
          color: #1f5fbf; }
#panel li { min-height: 48px; display: flex; align-items: center; gap: 10px;
            padding: 4px 12px; border-bottom: 1px solid #e3e3e3; font-size: 16px; cursor: pointer;
            -webkit-tap-highlight-color: transparent; }
#panel li b { min-width: 32px; height: 32px; border-radius: 16px; background: #c0392b;
              color: #fff; display: inline-flex; align-items: center; justify-content: center;
              font-size: 13px; }
#panel li.street { min-height: 32px; background: #eef2f8; font-weight: 600; font-size: 14px;
                   cursor: default; }
#panel li .kg-state { margin-left: auto; font-size: 13px; padding: 3px 8px; border-radius: 10px; }
#panel li .kg-state:empty { display: none; }
.leaflet-marker-icon.kg-door { background: transparent; border: 0; }
.kg-door > span { position: absolute; left: 6px; top: 6px; width: 28px; height: 28px;
                  border-radius: 50%; background: #c0392b; color: #fff;
                  font: 600 13px/28px sans-serif; text-align: center; border: 2px solid #fff;
                  box-shadow: 0 0 2px rgba(0,0,0,.7); }
.kg-door > i { position: absolute; right: -4px; top: -2px; min-width: 14px; padding: 0 3px;
               height: 16px; border-radius: 8px; background: #fff; color: #222;
               font: 600 10px/16px sans-serif; font-style: normal; text-align: center;
               box-shadow: 0 0 2px rgba(0,0,0,.6); }
.kg-door.kg-start > span { background: #1e8e3e; }
.kg-door.kg-soon > span { border-color: #ffd600; border-width: 3px; left: 5px; top: 5px; }
.kg-door.kg-next > span { border-color: #ffd600; border-width: 5px; left: 3px; top: 3px;
                          box-shadow: 0 0 0 2px #111; }
.kg-door.kg-open > span { box-shadow: 0 0 0 3px #111, 0 0 0 6px #ffd600; }
{% for c in codes %}.kg-r-{{ c.code }}:not(.kg-door), .kg-door.kg-r-{{ c.code }} > span {
  background: {{ c.color }}; color: {{ c.ink }}; }
{% endfor %}
#sheet { position: absolute; left: 0; right: 0; bottom: 0; z-index: 1002; background: #fff;
         box-shadow: 0 -2px 10px rgba(0,0,0,.4); padding: 8px 12px 10px; max-height: 62%;
         overflow-y: auto; box-sizing: border-box; display: none; }
#sheet.open { display: block; }
#sheet .h { display: flex; align-items: center; gap: 8px; font-size: 17px; font-weight: 600;
            margin-bottom: 6px; }
#sheet .h span { flex: 1; }
#sheet .h button { border: 1px solid #999; }
#codes { display: grid; grid-template-columns: 1fr 1fr; gap: 6px; }
#codes button { min-height: 48px; font-size: 16px; font-weight: 600; border-radius: 8px;
                border: 3px solid transparent; padding: 4px 6px; }
#codes button.on { border-color: #111; outline: 2px solid #fff; outline-offset: -6px; }
#note { display: block; width: 100%; box-sizing: border-box; min-height: 48px; font-size: 16px;
        margin-bottom: 6px; padding: 8px; border: 1px solid #999; border-radius: 6px; }
#sheet .row { display: flex; gap: 8px; margin-top: 6px; }
#sheet .row button { flex: 1; min-height: 44px; font-size: 15px; border-radius: 8px;
                     border: 1px solid #999; background: #f3f3f3; color: #222; }
#sheet .row button#next { background: #1f3b63; color: #fff; border-color: #1f3b63; }
#hint { font-size: 14px; color: #333; margin-top: 4px; min-height: 1.2em; }
#toast { position: absolute; left: 8px; right: 8px; bottom: 64px; z-index: 1003; display: none;
         background: #263238; color: #fff; border-radius: 8px; padding: 10px 12px; font-size: 15px;
         box-shadow: 0 2px 8px rgba(0,0,0,.4); }
#toast.open { display: flex; align-items: center; gap: 8px; }
#toast span { flex: 1; }
#toast button { background: #fff; color: #263238; }
</style>
</head>
<body>
<div id="bar">
  <div class="t">{{ L.turf }} {{ meta.turf_id }}
    <small>{{ meta.doors }} {{ L.doors }} · {{ meta.walk_short }} ·
      {{ meta.minutes }} min</small></div>
  <button class="kg" id="whole" type="button" aria-label="{{ L.whole_long }}">{{ L.whole }}</button>
  <button class="kg" id="list" type="button" aria-expanded="false">{{ L.list }}</button>
</div>
<div id="map"></div>
<button class="kg" id="locate" type="button" aria-label="{{ L.locate }}">◎ {{ L.locate }}</button>
<div id="foot">
  <span><b id="done-foot">0</b>/{{ meta.doors }}</span>
  <button class="kg" id="send" type="button"></button>
</div>
<div id="panel" aria-label="{{ L.list }}">
  <div id="tools"><span><b id="done">0</b> / {{ meta.doors }} {{ L.done }}</span>
    <button class="kg" id="export" type="button">{{ L.export_long }}</button></div>
  <div id="info">{{ L.start }} : <b id="start-address">{{ meta.start }}</b><br>
    <a id="start-geo" href="{{ meta.start_geo }}">{{ L.open_in_maps }}</a><br>
    <span id="walk-long">{{ meta.walk_long }}</span>
    {% if meta.cross %}<br>{{ L.cross }} : <b id="cross">{{ meta.cross.text }}</b><br>
    <a id="cross-geo" href="{{ meta.cross.geo }}">{{ L.open_cross }}</a>{% endif %}</div>
  <ol id="doors"></ol></div>
<div id="sheet" role="dialog" aria-modal="false" aria-labelledby="sheet-title">
  <div class="h"><span id="sheet-title"></span>
    <button class="kg" id="sheet-close" type="button" aria-label="{{ L.close }}">✕</button></div>
  <textarea id="note" maxlength="500" rows="1" placeholder="{{ L.note }}"
            aria-label="{{ L.note }}"></textarea>
  <div id="codes"></div>
  <div id="hint" role="status"></div>
  <div class="row"><button type="button" id="clear">{{ L.erase }}</button>
    <button type="button" id="next">{{ L.next }}</button></div>
</div>
<div id="toast" role="status"><span id="toast-text"></span>
  <button class="kg" id="toast-close" type="button" aria-label="{{ L.close }}">OK</button></div>
<script>{{ js }}</script>
<script>
var DATA = {{ data }};
var T = DATA.labels;
var LANG = document.documentElement.lang;
var map = L.map("map", {zoomControl: true, maxZoom: 20, zoomSnap: 0.25});
// the "where am I" dot has its own pane, above the door markers (600) and below popups
map.createPane("kg-me");
map.getPane("kg-me").style.zIndex = 650;
L.control.scale({imperial: false}).addTo(map);
L.geoJSON(DATA.streets, {style: {color: "#a5a5a5", weight: 3}, interactive: false}).addTo(map);
var turf = L.geoJSON(DATA.turf, {style: {color: "#1f3b63", weight: 2, fillOpacity: 0.06},
                                 interactive: false}).addTo(map);
var route = L.geoJSON(DATA.route, {style: {color: "#1f5fbf", weight: 5, opacity: 0.85},
                                   interactive: false}).addTo(map);
var tiles = L.tileLayer(DATA.tiles, {attribution: DATA.attribution, maxZoom: 19});
L.control.layers(null, {"{{ L.tiles }}": tiles}, {collapsed: true}).addTo(map);

// ---- results, kept in this browser (localStorage), one key per turf and map
var STORE_KEY = "knockin_geo:results:" + DATA.turf_id + ":" + DATA.map_id;
var CODE = {};
DATA.codes.forEach(function (c) { CODE[c.code] = c; });
var storageOk = true;
var results = {};
try {
  var raw = window.localStorage.getItem(STORE_KEY);
  var stored = raw ? JSON.parse(raw) : null;
  if (stored && stored.doors) { results = stored.doors; }
} catch (e) { storageOk = false; }
function persist() {
  try {
    window.localStorage.setItem(STORE_KEY, JSON.stringify(
      {v: 2, turf_id: DATA.turf_id, map_id: DATA.map_id, doors: results}));
    storageOk = true;
  } catch (e) { storageOk = false; }
}
function latest(id) { var h = results[id]; return h && h.length ? h[h.length - 1] : null; }
function nowIso() { return new Date().toISOString().replace(/\.\d{3}Z$/, "Z"); }
// times are stored in UTC and shown in the phone's own time zone
function localTime(iso) {
  return new Date(iso).toLocaleTimeString(LANG, {hour: "2-digit", minute: "2-digit"});
}
function pad(n) { return (n < 10 ? "0" : "") + n; }

// ---- door markers: 44 px touch targets; where two would overlap, the one nearer in the walk
// order keeps its marker and the other is drawn as a small dot (its number joins a "+k" badge)
var TAP = 44, N = DATA.doors.length, current = null;
var markers = [], rows = [], states = [], spot = [], extra = [];
var where = DATA.doors.map(function (d) { return L.latLng(d.lat, d.lon); });
function doorLabel(d) {
  return d.seq + ". " + d.housenumber + (d.unit ? " (" + d.unit + ")" : "") + " " + d.street +
         (d.households > 1 ? " · " + d.households + " {{ L.households }}" : "");
}
function nextIndex(after) {
  for (var j = 0; j < N; j++) {
    var i = (after + 1 + j) % N;
    if (!latest(DATA.doors[i].id)) { return i; }
  }
  return -1;
}
function upcoming() {
  // the doors still to knock, in walk order from the first one not done
  var out = [], k = nextIndex(-1);
  if (k < 0) { return out; }
  for (var j = 0; j < N; j++) {
    var i = (k + j) % N;
    if (!latest(DATA.doors[i].id)) { out.push(i); }
  }
  return out;
}
function iconFor(i, rank) {
  var d = DATA.doors[i], last = latest(d.id), cls = "kg-door";
  if (last) { cls += " kg-r-" + last.r; }
  else if (rank === 0) { cls += " kg-next" + (i === 0 ? " kg-start" : ""); }
  else if (rank > 0 && rank < 4) { cls += " kg-soon"; }
  if (i === current) { cls += " kg-open"; }
  var badge = extra[i] ? "<i>+" + extra[i] + "</i>" : "";
  return L.divIcon({className: cls, html: "<span>" + d.seq + "</span>" + badge,
                    iconSize: [TAP, TAP], iconAnchor: [TAP / 2, TAP / 2]});
}
function declutter() {
  var todo = upcoming(), rank = {}, order = [], seen = {};
  todo.forEach(function (i, r) { rank[i] = r; });
  if (current !== null) { order.push(current); seen[current] = true; }
  todo.concat(DATA.doors.map(function (d, i) { return i; })).forEach(function (i) {
    if (!seen[i]) { order.push(i); seen[i] = true; }
  });
  var placed = [];
  extra = [];
  order.forEach(function (i) {
    var p = map.latLngToLayerPoint(where[i]), host = -1;
    for (var k = 0; k < placed.length && host < 0; k++) {
      var q = placed[k];
      if (Math.abs(q.p.x - p.x) < TAP && Math.abs(q.p.y - p.y) < TAP) { host = q.i; }
    }
    if (host < 0) { placed.push({i: i, p: p}); spot[i] = true; }
    else { spot[i] = false; extra[host] = (extra[host] || 0) + 1; }
  });
  DATA.doors.forEach(function (d, i) {
    var soon = i in rank && rank[i] < 4;  // the next doors stand out even as dots
    dots[i].setStyle(soon ? {radius: 5, color: "#111", fillColor: "#ffd600"}
                          : {radius: 3, color: "#fff", fillColor: "#7b241c"});
    markers[i].setIcon(iconFor(i, i in rank ? rank[i] : -1));
    if (spot[i]) {
      if (!map.hasLayer(markers[i])) { markers[i].addTo(map); }
    } else if (map.hasLayer(markers[i])) { markers[i].remove(); }
  });
}
DATA.doors.forEach(function (d, i) {
  markers[i] = L.marker(where[i], {icon: iconFor(i, -1), title: doorLabel(d), keyboard: true})
    .on("click", function () { openForm(i); });
});
// the map opens on the next doors to knock, at a zoom where their numbers and the route between
// them can be read; "whole turf" shows it all
function wholeTurf() {
  var view = turf.getBounds().extend(route.getBounds());
  where.forEach(function (ll) { view.extend(ll); });
  map.fitBounds(view, {padding: [8, 8], maxZoom: 18});
}
function startView() {
  var todo = upcoming().slice(0, 10);
  if (!todo.length) { wholeTurf(); return; }
  var view = L.latLngBounds(todo.map(function (i) { return where[i]; }));
  map.fitBounds(view.pad(0.2), {padding: [24, 24], maxZoom: 18});
}
startView();
map.on("zoomend", declutter);
document.getElementById("whole").addEventListener("click", wholeTurf);
var dots = where.map(function (ll) {
  return L.circleMarker(ll, {radius: 3, weight: 1, color: "#fff", fillColor: "#7b241c",
                             fillOpacity: 1, interactive: false}).addTo(map);
});

// ---- the list panel, in walk order
var list = document.getElementById("doors");
var lastStreet = null;
DATA.doors.forEach(function (d, i) {
  if (d.street !== lastStreet) {
    var h = document.createElement("li"); h.className = "street"; h.textContent = d.street;
    list.appendChild(h); lastStreet = d.street;
  }
  var li = document.createElement("li");
  li.setAttribute("data-door", d.id);
  var b = document.createElement("b"); b.textContent = d.seq; li.appendChild(b);
  li.appendChild(document.createTextNode(d.housenumber + (d.unit ? " (" + d.unit + ")" : "") +
    (d.households > 1 ? "  · " + d.households + " {{ L.households }}" : "")));
  var s = document.createElement("span"); s.className = "kg-state"; li.appendChild(s);
  states[i] = s; rows[i] = li;
  li.addEventListener("click", function () { togglePanel(false); openForm(i); });
  list.appendChild(li);
});
function refreshRow(i) {
  var last = latest(DATA.doors[i].id), s = states[i];
  s.textContent = last ? CODE[last.r].label : "";
  s.className = "kg-state" + (last ? " kg-r-" + last.r : "");
  rows[i].setAttribute("data-result", last ? last.r : "");
}
function pending() {
  var n = 0, all = 0;
  DATA.doors.forEach(function (d) {
    (results[d.id] || []).forEach(function (e) { all++; if (!e.x) { n++; } });
  });
  return {fresh: n, all: all};
}
function refreshCounts() {
  var n = 0;
  DATA.doors.forEach(function (d) { if (latest(d.id)) { n++; } });
  document.getElementById("done").textContent = String(n);
  document.getElementById("done-foot").textContent = String(n);
  var p = pending(), send = document.getElementById("send");
  send.textContent = (p.fresh <= 1 ? T.send_one : T.send_many).replace("{n}", p.fresh);
  send.classList.toggle("none", p.fresh === 0);
  send.setAttribute("data-new", String(p.fresh));
}
function refreshAll() {
  DATA.doors.forEach(function (d, i) { refreshRow(i); });
  refreshCounts(); declutter();
}
refreshAll();

// ---- the result form: note first, then one button per result; it stays open until closed
var sheet = document.getElementById("sheet"), note = document.getElementById("note");
var hint = document.getElementById("hint"), codeButtons = {};
DATA.codes.forEach(function (c) {
  var btn = document.createElement("button");
  btn.type = "button"; btn.className = "kg-r-" + c.code; btn.textContent = c.label;
  btn.setAttribute("data-code", c.code);
  btn.addEventListener("click", function () { record(c.code); });
  document.getElementById("codes").appendChild(btn); codeButtons[c.code] = btn;
});
function showHint() {
  var last = current === null ? null : latest(DATA.doors[current].id);
  DATA.codes.forEach(function (c) {
    codeButtons[c.code].classList.toggle("on", !!last && last.r === c.code);
  });
  hint.textContent = !storageOk ? T.no_storage
    : (last ? "✓ " + CODE[last.r].label + " · " + T.saved_at + " " + localTime(last.t) +
              (last.x ? " · " + T.sent : "") : "");
}
function keepInSight(i) {
  // pan so that the door sits in the middle of the map left visible above the form
  var top = sheet.getBoundingClientRect().top - document.getElementById("map")
    .getBoundingClientRect().top;
  if (map.getZoom() < 18) { map.setView(where[i], 18, {animate: false}); }
  var size = map.getSize(), p = map.latLngToContainerPoint(where[i]);
  map.panBy([p.x - size.x / 2, p.y - Math.max(top, 60) / 2], {animate: false});
}
function openForm(i) {
  var was = current;
  current = i;
  var d = DATA.doors[i], last = latest(d.id);
  document.getElementById("sheet-title").textContent = doorLabel(d);
  note.value = last ? (last.n || "") : "";
  sheet.classList.add("open");
  showHint();
  keepInSight(i);
  if (was !== i) { declutter(); }
}
function closeForm() { sheet.classList.remove("open"); current = null; declutter(); }
function record(code) {
  if (current === null) { return; }
  var d = DATA.doors[current], h = results[d.id] || [], last = latest(d.id), t = nowIso();
  var entry = {r: code, t: t, n: note.value.trim()};
  // a second tap within two minutes corrects the last result instead of adding a visit
  if (last && !last.x && Date.parse(t) - Date.parse(last.t) < 120000) { h[h.length - 1] = entry; }
  else { h.push(entry); }
  results[d.id] = h;
  persist(); refreshRow(current); refreshCounts(); declutter(); showHint();
}
note.addEventListener("input", function () {
  if (current === null) { return; }
  var last = latest(DATA.doors[current].id);
  if (last && !last.x) { last.n = note.value.trim(); persist(); refreshCounts(); }
});
document.getElementById("clear").addEventListener("click", function () {
  if (current === null) { return; }
  var id = DATA.doors[current].id, h = results[id];
  if (h && h.length && h[h.length - 1].x) { toast(T.sent_kept); return; }  // the director has it
  if (h && h.length) { h.pop(); if (!h.length) { delete results[id]; } }
  note.value = "";
  persist(); refreshRow(current); refreshCounts(); declutter(); showHint();
});
document.getElementById("next").addEventListener("click", function () {
  var k = nextIndex(current === null ? -1 : current);
  if (k < 0) { closeForm(); } else { openForm(k); }
});
document.getElementById("sheet-close").addEventListener("click", closeForm);

// ---- sending: the CSV knockin_geo.canvass.read_results reads, through the phone's share sheet
// when it takes files, else downloaded; every result is sent, the count says how many are new
// every cell is neutralised for spreadsheets as knockin_geo.sheets.neutralize_cell does
// (a leading ' before = + - @ TAB CR, also before an apostrophe form); import removes it
function cell(v) {
  var s = v === null || v === undefined ? "" : String(v);
  if (/^'*[ ]*[=+\-@\t\r]/.test(s)) { s = "'" + s; }
  return /[",\r\n]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
}
function toast(text) {
  document.getElementById("toast-text").textContent = text;
  document.getElementById("toast").classList.add("open");
}
document.getElementById("toast-close").addEventListener("click", function () {
  document.getElementById("toast").classList.remove("open");
});
function csvText() {
  var lines = ["id,turf_id,result,timestamp,canvasser,note"];
  DATA.doors.forEach(function (d) {
    (results[d.id] || []).forEach(function (e) {
      lines.push([cell(d.id), cell(DATA.turf_id), cell(e.r), cell(e.t), "", cell(e.n)]
                 .join(","));
    });
  });
  return lines.join("\r\n") + "\r\n";
}
function fileName() {
  var now = new Date();
  return "results-" + DATA.turf_id.replace(/[^A-Za-z0-9_.-]+/g, "_") + "-" + now.getFullYear() +
    "-" + pad(now.getMonth() + 1) + "-" + pad(now.getDate()) + "-" + pad(now.getHours()) +
    pad(now.getMinutes()) + ".csv";
}
function sent(name, p, how) {
  DATA.doors.forEach(function (d) { (results[d.id] || []).forEach(function (e) { e.x = 1; }); });
  persist(); refreshCounts();
  var count = (p.all <= 1 ? T.results_one : T.results_many).replace("{n}", p.all) + ", " +
    (p.fresh <= 1 ? T.new_one : T.new_many).replace("{n}", p.fresh);
  toast((how === "shared" ? T.shared : T.saved_file).replace("{file}", name)
        .replace("{count}", count));
}
function download(blob, name) {
  var a = document.createElement("a");
  a.href = URL.createObjectURL(blob);
  a.download = name;
  document.body.appendChild(a); a.click();
  setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 2000);
}
function sendResults() {
  var p = pending();
  if (!p.all) { toast(T.nothing); return; }
  var name = fileName(), text = csvText();
  var blob = new Blob([text], {type: "text/csv;charset=utf-8"});
  var file = typeof File === "function" ? new File([text], name, {type: "text/csv"}) : null;
  if (file && navigator.canShare && navigator.share && navigator.canShare({files: [file]})) {
    navigator.share({files: [file], title: name}).then(function () { sent(name, p, "shared"); },
      function (e) {
        if (e && e.name === "AbortError") { toast(T.not_sent); }
        else { download(blob, name); sent(name, p, "saved"); }
      });
    return;
  }
  download(blob, name); sent(name, p, "saved");
}
document.getElementById("send").addEventListener("click", sendResults);
document.getElementById("export").addEventListener("click", sendResults);

function togglePanel(open) {
  var panel = document.getElementById("panel");
  panel.classList.toggle("open", open);
  document.getElementById("list").setAttribute("aria-expanded", String(open));
}
document.getElementById("list").addEventListener("click", function () {
  togglePanel(!document.getElementById("panel").classList.contains("open"));
});
var me = null, meCircle = null;
document.getElementById("locate").addEventListener("click", function () {
  if (!navigator.geolocation) { toast(T.no_gps); return; }
  navigator.geolocation.getCurrentPosition(function (p) {
    var ll = [p.coords.latitude, p.coords.longitude];
    if (me) { me.setLatLng(ll); meCircle.setLatLng(ll).setRadius(p.coords.accuracy); }
    else {
      meCircle = L.circle(ll, {radius: p.coords.accuracy, weight: 1, fillOpacity: 0.1,
                               interactive: false}).addTo(map);
      me = L.circleMarker(ll, {radius: 9, color: "#fff", weight: 3, fillColor: "#2979ff",
                               fillOpacity: 1, pane: "kg-me", interactive: false}).addTo(map);
    }
    map.setView(ll, Math.max(map.getZoom(), 17));
  }, function () { toast(T.no_gps); }, {enableHighAccuracy: true, timeout: 15000});
});
</script>
</body>
</html>
"""

#: Compiled once per process: ``get_template`` caches what the loader gives.
_ENV = jinja2.Environment(loader=jinja2.DictLoader({"volunteer.html": _VOLUNTEER}),
                          autoescape=True)

VOLUNTEER_LABELS: dict[str, dict[str, Any]] = {
    "fr": {"turf": "Secteur", "doors": "portes", "locate": "Où suis-je ?", "list": "Liste",
           "tiles": "Fond OpenStreetMap (en ligne)", "households": "foyers",
           "no_gps": "Position indisponible", "done": "faites",
           "export_long": "Envoyer les résultats (CSV)", "close": "Fermer",
           "note": "Note (facultative)", "erase": "Effacer le résultat",
           "nothing": "Aucun résultat à envoyer", "saved_at": "enregistré à",
           "no_storage": "Attention : ce navigateur ne garde pas les résultats, envoyez-les "
                         "avant de fermer la page",
           "whole": "⤢ Tout", "whole_long": "Voir tout le secteur",
           "start": "Départ", "open_in_maps": "Ouvrir le départ dans l'appli de cartes",
           "cross": "Traversée", "open_cross": "Ouvrir le point de traversée",
           "next": "Porte suivante →",
           "send_one": "Envoyer les résultats ({n} nouveau)",
           "send_many": "Envoyer les résultats ({n} nouveaux)",
           "saved_file": "Fichier {file} enregistré ({count}). Envoyez-le à votre "
                         "responsable.",
           "shared": "Fichier {file} partagé ({count}).",
           "results_one": "{n} résultat", "results_many": "{n} résultats",
           "new_one": "dont {n} nouveau", "new_many": "dont {n} nouveaux",
           "not_sent": "Rien n'a été envoyé.", "sent": "envoyé",
           "sent_kept": "Ce résultat est déjà envoyé : touchez le bon résultat pour le "
                        "remplacer.",
           "codes": {"not_home": "Absent", "contacted": "Contact", "refused": "Refus",
                     "come_back": "Repasser", "moved": "Déménagé",
                     "inaccessible": "Inaccessible", "do_not_contact": "Ne pas contacter"}},
    "en": {"turf": "Turf", "doors": "doors", "locate": "Where am I?", "list": "List",
           "tiles": "OpenStreetMap background (online)", "households": "households",
           "no_gps": "Position unavailable", "done": "done",
           "export_long": "Send the results (CSV)", "close": "Close",
           "note": "Note (optional)", "erase": "Clear the result",
           "nothing": "No results to send", "saved_at": "saved at",
           "no_storage": "Warning: this browser does not keep results, send them before "
                         "closing the page",
           "whole": "⤢ All", "whole_long": "Show the whole turf",
           "start": "Start", "open_in_maps": "Open the start in the maps app",
           "cross": "Crossing", "open_cross": "Open the crossing point",
           "next": "Next door →",
           "send_one": "Send results ({n} new)", "send_many": "Send results ({n} new)",
           "saved_file": "File {file} saved ({count}). Send it to your field director.",
           "shared": "File {file} shared ({count}).",
           "results_one": "{n} result", "results_many": "{n} results",
           "new_one": "{n} new", "new_many": "{n} new",
           "not_sent": "Nothing was sent.", "sent": "sent",
           "sent_kept": "This result was already sent: tap the right result to replace it.",
           "codes": {"not_home": "Not home", "contacted": "Contacted", "refused": "Refused",
                     "come_back": "Come back", "moved": "Moved",
                     "inaccessible": "Inaccessible", "do_not_contact": "Do not contact"}},
}

#: Marker colour and text colour of each result code on the phone map.
RESULT_COLORS: dict[str, tuple[str, str]] = {
    "not_home": ("#ef6c00", "#fff"),
    "contacted": ("#1565c0", "#fff"),
    "refused": ("#616161", "#fff"),
    "come_back": ("#f9a825", "#111"),
    "moved": ("#6a1b9a", "#fff"),
    "inaccessible": ("#795548", "#fff"),
    "do_not_contact": ("#111111", "#fff"),
}

#: Door fields a volunteer map may show (all in ``schema.VOLUNTEER_ALLOWED_FIELDS``).
VOLUNTEER_DOOR_FIELDS = (schema.SEQ, schema.HOUSENUMBER, schema.STREET, schema.UNIT,
                         schema.HOUSEHOLDS)


def volunteer_map_html(
    plan: TurfPlan,
    turf_id: str,
    *,
    lang: str = "fr",
    door_ids: Mapping[str, str] | None = None,
) -> str:
    """Return the phone map of one turf as one self-contained HTML page.

    The page is also a small canvassing app. Door markers are 44 px touch targets that never
    overlap (a door too close to one nearer in the walk order joins its "+k" badge); the next
    doors are highlighted and the map opens on them. Tapping a door (marker or list row) opens a
    form, the door kept in sight above it, with an optional note and one big button per result
    code (:data:`knockin_geo.schema.RESULT_CODES`); it stays open until closed. Results are
    kept in the browser (``localStorage``, one key per turf and map, so they survive reloads and
    work offline) and shown in the phone's time zone; markers and rows show each door's state.
    A *send results (N new)* button on the main screen shares (``navigator.share``, where the
    phone takes files) or downloads the turf's results as the CSV that
    :func:`knockin_geo.canvass.read_results` reads (``id, turf_id, result, timestamp, canvasser,
    note``; timestamps ISO 8601 UTC; canvasser blank), and confirms with the file's name.

    Parameters
    ----------
    plan
        A routed plan.
    turf_id
        The turf.
    lang
        ``fr`` or ``en``.
    door_ids
        ``address_id -> id shown and exported`` (the pseudonymous ids of
        :func:`knockin_geo.privacy.pseudonymize` when the plan is written with a secret);
        default: the address id.

    Returns
    -------
    str
        HTML with Leaflet inlined, the turf's streets, route and numbered doors, a "where am I"
        button (its dot above the markers), a list panel (start door with a ``geo:`` link, the
        labelled walk, the doors in walk order) and the result form. Opens offline; carries
        only allow-listed door fields; the same plan gives the same bytes.
    """
    if lang not in VOLUNTEER_LABELS:
        msg = f"unknown language {lang!r}: use one of {sorted(VOLUNTEER_LABELS)}"
        raise ValueError(msg)
    d = plan.walk_doors(turf_id)
    if len(d) == 0:
        msg = f"no turf {turf_id!r} in this plan"
        raise KeyError(msg)
    shown_ids = _shown_ids(d.index.astype(str).tolist(), door_ids, turf_id)
    labels = VOLUNTEER_LABELS[lang]
    data, codes = _volunteer_data(plan, turf_id, d, shown_ids, labels)
    js, css = leaflet_assets()
    return _ENV.get_template("volunteer.html").render(
        lang=lang,
        L=labels,
        meta=_volunteer_meta(plan, turf_id, d, lang),
        codes=codes,
        css=jinja2.utils.markupsafe.Markup(css),
        js=jinja2.utils.markupsafe.Markup(js),
        data=jinja2.utils.markupsafe.Markup(_script_json(data)),
    )


def _volunteer_data(
    plan: TurfPlan, turf_id: str, d: gpd.GeoDataFrame, shown_ids: list[str],
    labels: dict[str, Any],
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """Return the phone map's JSON data (streets, turf, route, doors, codes) and its codes."""
    turf = np.array([plan.turfs.geometry.loc[turf_id]], dtype=object)
    route = (np.array([plan.routes.geometry.loc[turf_id]], dtype=object)
             if turf_id in plan.routes.index else np.array([], dtype=object))
    doors = _volunteer_doors(d, plan.lonlat[plan.walk_rows(turf_id)], shown_ids)
    codes = [
        {"code": c, "label": labels["codes"][c], "color": RESULT_COLORS[c][0],
         "ink": RESULT_COLORS[c][1]}
        for c in schema.RESULT_CODES
    ]
    # the storage key changes when the turf's doors or walk order change (a re-cut turf with
    # the same id starts afresh), and not otherwise (a re-sent map keeps its results)
    fingerprint = json.dumps([turf_id, [[i, r["seq"]] for i, r in zip(shown_ids, doors,
                                                                      strict=True)]])
    map_id = hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:12]
    streets, turf_shape, route_shape = _shapes([_streets_around(plan, d), turf, route], plan.crs)
    data = {
        "streets": streets,
        "turf": turf_shape,
        "route": route_shape,
        "doors": doors,
        "tiles": OSM_TILES,
        "attribution": OSM_ATTRIBUTION,
        "turf_id": str(turf_id),
        "map_id": map_id,
        "codes": codes,
        "labels": {k: v for k, v in labels.items() if k != "codes"},
    }
    return data, codes


def _volunteer_meta(plan: TurfPlan, turf_id: str, d: gpd.GeoDataFrame, lang: str) -> dict[str, Any]:
    """Return the phone map's header figures: doors, walk, minutes, start door, crossing."""
    minutes = float(plan.turfs.at[turf_id, "est_minutes"])
    distances = distance_texts(plan, turf_id, lang)
    start = start_door(plan, turf_id)
    return {
        "turf_id": turf_id,
        "doors": len(d),
        "walk_short": distances["walk_short"],
        "walk_long": f"{distances['walk']} ({distances['streets']})",
        "minutes": f"{minutes:.0f}",
        "start": start["address"],
        "start_geo": start["geo"],
        "cross": crossing_point(plan, turf_id, lang),
    }


def _shown_ids(
    address_ids: list[str], door_ids: Mapping[str, str] | None, turf_id: str
) -> list[str]:
    """Return the ids the page shows: the address ids, or their pseudonyms (all required)."""
    if door_ids is None:
        return address_ids
    missing = [a for a in address_ids if a not in door_ids]
    if missing:
        msg = f"door_ids has no id for {len(missing)} doors of turf {turf_id!r}"
        raise ValueError(msg)
    return [str(door_ids[a]) for a in address_ids]


def _streets_around(plan: TurfPlan, d: gpd.GeoDataFrame) -> np.ndarray:
    """Return the streets within 150 m of the doors' box, clipped to it (plan CRS)."""
    return plan.network.streets_in(shapely.buffer(shapely.box(*d.total_bounds), 150.0))


def _shapes(groups: list[np.ndarray], crs: Any) -> list[dict[str, Any]]:
    """Return each group of geometries as a FeatureCollection without properties, in EPSG:4326.

    Rounded as :func:`to_wgs84` rounds: the same text as
    ``geojson_collection(to_wgs84(frame), [])``, without building frames. All groups are
    reprojected in one call. Lines (nearly all of them: streets) keep their coordinates as
    numpy rows, which :func:`knockin_geo._json.compact` writes as it writes the same floats in
    lists; other shapes are read back from GEOS's GeoJSON.
    """
    ends = np.cumsum([len(g) for g in groups]).tolist()
    at = np.asarray(shapely.set_precision(to_lonlat(np.concatenate(groups), crs), 1e-6),
                    dtype=object)
    kind = shapely.get_type_id(at)
    line = kind == shapely.GeometryType.LINESTRING
    xy, part = shapely.get_coordinates(at[line], return_index=True)
    stops = np.cumsum(np.bincount(part, minlength=int(line.sum()))).tolist()
    lines = iter([xy[a:b] for a, b in zip([0, *stops][:-1], stops, strict=True)])
    features: list[dict[str, Any]] = []
    for g, k in zip(at, kind.tolist(), strict=True):
        geometry = (None if g is None
                    else {"type": "LineString", "coordinates": next(lines)}
                    if k == shapely.GeometryType.LINESTRING
                    else parse(shapely.to_geojson(g)))
        features.append({"type": "Feature", "properties": {}, "geometry": geometry})
    return [
        {"type": "FeatureCollection",
         "features": [f for f in features[a:b] if f["geometry"] is not None]}
        for a, b in zip([0, *ends][:-1], ends, strict=True)
    ]


def _volunteer_doors(
    d: gpd.GeoDataFrame, lonlat: np.ndarray, shown_ids: list[str]
) -> list[dict[str, Any]]:
    """Return the page's door records: allow-listed fields, walk order, id and position.

    ``lonlat``: the doors' EPSG:4326 positions (rows of ``d``), rounded here as
    :func:`to_wgs84` rounds.
    """
    at = shapely.get_coordinates(shapely.set_precision(shapely.points(lonlat), 1e-6)).tolist()
    # each column read once (object values, as a row of the frame holds them), not a row
    # Series per door
    cols = {f: d[f].to_numpy(dtype=object) if f in d else [None] * len(d)
            for f in VOLUNTEER_DOOR_FIELDS}
    doors = []
    for i, ((lon, lat), shown) in enumerate(zip(at, shown_ids, strict=True)):
        rec = {f: _plain(cols[f][i]) for f in VOLUNTEER_DOOR_FIELDS}
        seq = cols[schema.SEQ][i]
        rec[schema.SEQ] = int(seq) if pd.notna(seq) else None
        rec["id"] = shown
        rec["lon"] = round(lon, 6)
        rec["lat"] = round(lat, 6)
        doors.append(rec)
    return doors


def _script_json(obj: Any) -> str:
    r"""JSON safe to embed in a ``<script>`` element, and in a template branca compiles again.

    Branca compiles each element's rendered text as a Jinja template once more, so ``{{``,
    ``{%`` and ``{#`` from input would run as template code when the map is built: their brace
    is written ``\u007b`` (only inside strings: JSON's own ``{`` is followed by ``"`` or ``}``).
    """
    text = compact(obj, sort_keys=True)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return _JINJA_OPEN.sub(r"\\u007b", text)


#: A brace that opens a Jinja expression, statement or comment.
_JINJA_OPEN = re.compile(r"\{(?=[{%#])")


def volunteer_page(
    plan: TurfPlan,
    turf_id: str,
    *,
    lang: str = "fr",
    map_code: str | MapLock | None = None,
    door_ids: Mapping[str, str] | None = None,
) -> str:
    """Return a turf's phone map, locked with ``map_code`` when one is given.

    Parameters
    ----------
    plan
        A routed plan.
    turf_id
        The turf.
    lang
        ``fr`` or ``en``.
    map_code
        Access code, or a :class:`knockin_geo.privacy.MapLock` (code and campaign secret); the
        page is then encrypted. Salt and nonce reveal nothing about the page or the code, the
        same plan gives the same bytes, and two different pages never share a key and nonce
        (see :class:`~knockin_geo.privacy.MapLock`).
    door_ids
        ``address_id -> id`` shown and exported by the map (pseudonymous ids); see
        :func:`volunteer_map_html`.

    Returns
    -------
    str
        The HTML page.
    """
    html_page = volunteer_map_html(plan, turf_id, lang=lang, door_ids=door_ids)
    if map_code is None:
        return html_page
    lock = map_code if isinstance(map_code, MapLock) else MapLock(map_code)
    return lock.lock(html_page, turf_id, lang=lang)


def write_maps(
    plan: TurfPlan,
    out_dir: str | Path,
    *,
    lang: str = "fr",
    map_code: str | MapLock | None = None,
    door_ids: Mapping[str, str] | None = None,
    workers: int | None = 1,
) -> list[Path]:
    """Write ``map.html`` (director) and ``maps/<turf_id>.html`` (volunteers) into ``out_dir``.

    Parameters
    ----------
    plan
        A routed plan.
    out_dir
        Output folder.
    lang
        Language of the volunteer maps.
    map_code
        Lock every volunteer map with this access code or
        :class:`~knockin_geo.privacy.MapLock` (see :func:`volunteer_page`).
    door_ids
        Ids the phone maps show and export for each door (pseudonyms), instead of address ids.
    workers
        Processes that build the phone maps (:func:`knockin_geo._pool.per_turf`); None: one per
        core. The bytes are the same whatever the number.

    Returns
    -------
    list of pathlib.Path
        The files written (each written atomically).
    """
    out = Path(out_dir)
    written = [save_map(director_map(plan), out / "map.html")]
    names = turf_file_names(plan.turfs.index.astype(str))
    tids = sorted(names)
    build = functools.partial(volunteer_page, lang=lang, map_code=map_code, door_ids=door_ids)
    for tid, page in zip(tids, per_turf(build, plan, tids, workers), strict=True):
        written.append(write_text_atomic(out / "maps" / names[tid], page))
    return written


# ----------------------------------------------------------------------------------------------
# choropleths (electoral cartography)
# ----------------------------------------------------------------------------------------------
#: Sequential palette for choropleth classes (ColorBrewer YlOrRd, light to dark).
CHOROPLETH_COLORS: tuple[str, ...] = (
    "#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026", "#800026",
)


def choropleth_layer(
    precincts: gpd.GeoDataFrame,
    column: str,
    *,
    scheme: str = "quantiles",
    k: int = 5,
    name: str | None = None,
    tooltip_fields: tuple[str, ...] = (),
    show: bool = True,
) -> tuple[folium.GeoJson, MacroElement]:
    """Return a choropleth GeoJSON layer of a precinct indicator and its legend.

    Parameters
    ----------
    precincts
        Precincts (any CRS, index ``precinct_id``) with the numeric ``column``.
    column
        The indicator or score to map.
    scheme
        ``quantiles`` or ``natural_breaks`` (:func:`knockin_geo.target.classify`).
    k
        Number of classes.
    name
        Layer name (default: the column).
    tooltip_fields
        Other columns shown on hover.
    show
        Whether the layer is on when the map opens.

    Returns
    -------
    tuple
        The layer and a legend element with the class bounds; add both to a map.
    """
    values = pd.to_numeric(precincts[column], errors="coerce").to_numpy(dtype=float)
    finite = np.isfinite(values)
    cls = classify(values[finite], scheme, k)
    klass = np.full(len(values), -1)
    klass[finite] = np.asarray(cls.yb)
    n = int(cls.k)
    colors = [CHOROPLETH_COLORS[round(i * (len(CHOROPLETH_COLORS) - 1) / max(n - 1, 1))]
              for i in range(n)]
    frame = precincts.copy()
    frame[schema.PRECINCT_ID] = frame.index.astype(str)
    frame["value"] = np.round(values, 4)
    frame["color"] = [colors[c] if c >= 0 else "#cccccc" for c in klass]
    props = [schema.PRECINCT_ID, "value", "color", *[f for f in tooltip_fields if f in frame]]
    fw = to_wgs84(frame[[*props, "geometry"]])
    layer = GeoJsonLayer(
        geojson_collection(fw, props),
        name=html_text(name or column),  # the layer control shows names as HTML
        show=show,
        style_function=lambda f: {
            "color": "#555", "weight": 1, "fillColor": f["properties"]["color"],
            "fillOpacity": 0.7,
        },
        tooltip=folium.GeoJsonTooltip(
            [p for p in props if p != "color"],
            aliases=[html_text(a) for a in
                     ["precinct", column, *[f for f in tooltip_fields if f in frame]]],
        ),
    )
    lower = [float(np.nanmin(values[finite]))] + [float(b) for b in cls.bins[:-1]]
    rows = "".join(
        f'<div><span style="display:inline-block;width:14px;height:10px;background:{c};'
        f'border:1px solid #777"></span> {lo:,.3g} – {hi:,.3g}</div>'
        for c, lo, hi in zip(colors, lower, cls.bins, strict=True)
    )
    legend = _HtmlLegend(
        f"<b>{html_text(name or column)}</b> ({html_text(scheme.replace('_', ' '))})"
        f"{rows}",
        layer,
    )
    return layer, legend


class _HtmlLegend(MacroElement):
    """A fixed box with arbitrary (already escaped) HTML, bottom left above the scale bar.

    Given a ``layer``, the box shows only while that layer is on the map.
    """

    _template = Template(
        """{% macro html(this, kwargs) %}
<div id="{{ this.get_name() }}" class="kg-legend" style="position:absolute; bottom:60px;
 left:10px; z-index:1000; background:white; padding:6px 8px; border:1px solid #999;
 border-radius:4px; font:12px sans-serif; box-shadow:0 1px 4px rgba(0,0,0,.3);">
{{ this.body }}</div>
{% endmacro %}
{% macro script(this, kwargs) %}{% if this.layer is not none %}
(function () {
  var box = document.getElementById("{{ this.get_name() }}");
  var map = {{ this._parent.get_name() }}, layer = {{ this.layer.get_name() }};
  function sync() { box.style.display = map.hasLayer(layer) ? "" : "none"; }
  map.on("layeradd layerremove", sync);
  sync();
})();
{% endif %}{% endmacro %}"""
    )

    def __init__(self, body: str, layer: folium.GeoJson | None = None) -> None:
        super().__init__()
        self._name = "HtmlLegend"
        self.body = body
        self.layer = layer


class _LabelDeclutter(MacroElement):
    """Hides the turf labels that would overlap a label already shown (after each zoom).

    Labels are kept in the order they were added (the caller puts the larger turfs first);
    a hidden label comes back when zooming in makes room for it.
    """

    _template = Template(
        """{% macro script(this, kwargs) %}
(function () {
  var map = {{ this._parent.get_name() }}, group = {{ this.labels.get_name() }};
  function declutter() {
    if (!map.hasLayer(group)) { return; }
    var shown = [];
    group.eachLayer(function (marker) {
      var el = marker.getElement && marker.getElement();
      if (!el) { return; }
      var label = el.querySelector(".kg-turf-label") || el;
      label.style.visibility = "";
      var r = label.getBoundingClientRect(), pad = 2;
      var hit = shown.some(function (q) {
        return r.left < q.right + pad && q.left < r.right + pad &&
               r.top < q.bottom + pad && q.top < r.bottom + pad;
      });
      if (hit) { label.style.visibility = "hidden"; } else { shown.push(r); }
    });
  }
  map.on("zoomend overlayadd", declutter);
  map.whenReady(function () { setTimeout(declutter, 0); });
})();
{% endmacro %}"""
    )

    def __init__(self, labels: folium.map.Layer) -> None:
        super().__init__()
        self._name = "LabelDeclutter"
        self.labels = labels


def choropleth_map(
    precincts: gpd.GeoDataFrame,
    column: str,
    *,
    scheme: str = "quantiles",
    k: int = 5,
    tooltip_fields: tuple[str, ...] = (),
    title: str | None = None,
) -> folium.Map:
    """Return an offline choropleth map of one precinct indicator.

    Parameters
    ----------
    precincts
        Precincts with the indicator.
    column
        The indicator or score.
    scheme, k
        Classification (see :func:`choropleth_layer`).
    tooltip_fields
        Other columns shown on hover.
    title
        Legend title.

    Returns
    -------
    folium.Map
        Leaflet inlined (no CDN), OpenStreetMap background optional and off.
    """
    minx, miny, maxx, maxy = precincts.to_crs(WGS84).total_bounds
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], tiles=None,
                   control_scale=True, zoom_start=12)
    m.default_js = []
    m.default_css = []
    m.add_child(InlineLeaflet())
    m.fit_bounds([[miny, minx], [maxy, maxx]])
    folium.TileLayer(
        OSM_TILES, attr=OSM_ATTRIBUTION, name="OpenStreetMap (online)", overlay=True, show=False
    ).add_to(m)
    layer, legend = choropleth_layer(precincts, column, scheme=scheme, k=k, name=title,
                                     tooltip_fields=tooltip_fields)
    layer.add_to(m)
    legend.add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    return m
