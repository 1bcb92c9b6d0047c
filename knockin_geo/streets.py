"""Walking street network and barriers from local OpenStreetMap files.

The loader reads ``.osm.pbf`` / ``.osm`` / ``.osm.bz2`` / ``.osm.gz`` files with pyosmium in one
streaming pass (plus the short relation pre-pass pyosmium needs for multipolygon areas), keeps the
ways osmnx 2.1.1 would keep for ``network_type="walk"``, and builds an osmnx-style simplified,
undirected graph with numpy only (no per-node Python loops after the file pass).

Differences with osmnx, on purpose
----------------------------------
* **Clipped extracts.** A way that references nodes missing from the file is split into the runs
  of consecutive nodes that are present (runs of at least two nodes are kept). osmnx fails on such
  files and ``osmconvert --drop-broken-refs`` joins the way across the gap, which invents streets.
* **Edges never mix road classes.** Besides the osmnx endpoint rules (dead end, junction, self-loop,
  parallel edge), a node is also an endpoint when its two incident segments differ in ``highway``
  or ``name`` (osmnx's ``simplify_graph(edge_attrs_differ=["highway", "name"])``). A simplified
  edge therefore has a single ``highway`` and ``name``; its ``osmid`` is the way of its first
  segment in file order.
* **Pure cycles** (a closed way touching nothing else) get their smallest node id as endpoint, so
  they become one loop edge ``u == v``.
* **Lengths** are planar lengths in the metric CRS of the network (UTM by default), equal to the
  length of each edge's geometry. They differ from osmnx's great-circle lengths by the UTM scale
  factor (well under 0.1 % near the zone centre).

Barriers
--------
Ways tagged ``highway`` motorway/trunk/primary (and their ``_link``), ``railway`` rail,
light_rail, narrow_gauge, preserved, subway, monorail, funicular (``tram`` is not a barrier),
``waterway`` river, canal, riverbank, plus ``natural=water`` with ``water`` river/canal.

* Open or clipped ways become LineStrings (clipped runs as above).
* Complete closed riverbank / river-water ways and assembled multipolygon relations with the same
  tags become Polygons (one row per polygon part). Multipolygon relations cut by the extract's
  edge cannot be assembled and are skipped (their ``waterway=river`` centre line usually is in
  the file).
* ``bridge`` and ``tunnel`` flags are kept: a railway in a tunnel is not a barrier on the
  surface; later stages decide.

Marked crossing places
----------------------
Nodes tagged ``highway=crossing`` (kind from ``crossing``, ``crossing_ref``, ``crossing:signals``,
``crossing:markings``: ``signals``, ``zebra``, ``marked``, or ``unmarked``, which also takes a
crossing whose marking is not tagged), ``highway=traffic_signals`` (``signals``) and
``railway=level_crossing`` / ``railway=crossing`` (``level_crossing``); ``crossing=no`` is no
crossing. Footways, paths, steps, pedestrian ways and cycleways on a bridge (or ``layer`` above
0) are ``footbridge``, in a tunnel (or ``layer`` below 0) ``underpass``, where they pass over or
under a barrier line (not a bridge or tunnel itself): the point of that passage nearest the way's
middle. A bridge over no barrier is left out.

Node ids must be positive (pyosmium's in-memory location index); files written by JOSM with
negative ids for new objects are not supported.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import osmium
import pandas as pd
import scipy.sparse as sp
import shapely
from osmium.filter import EntityFilter, KeyFilter, TagFilter
from pyproj import CRS, Transformer
from scipy.sparse.csgraph import connected_components

from knockin_geo._atomic import atomic_path
from knockin_geo._errors import CRSError, InputError, NetworkError
from knockin_geo.crs import WGS84, utm_crs_for

if TYPE_CHECKING:
    from shapely.geometry.base import BaseGeometry

logger = logging.getLogger(__name__)

#: Bumped whenever the loader's output for the same file can change (invalidates the cache).
LOADER_VERSION = "knockin_geo.streets/2"

#: Road classes that are barriers to canvassers (crossing them is not a door-to-door move).
BARRIER_HIGHWAYS = frozenset(
    {"motorway", "motorway_link", "trunk", "trunk_link", "primary", "primary_link"}
)
#: Railway values that are barriers (``tram`` is deliberately absent).
BARRIER_RAILWAYS = frozenset(
    {"rail", "light_rail", "narrow_gauge", "preserved", "subway", "monorail", "funicular"}
)
#: Waterway values that are barriers.
BARRIER_WATERWAYS = frozenset({"river", "canal", "riverbank"})
#: ``water=*`` values of ``natural=water`` areas that are barriers.
BARRIER_WATER = frozenset({"river", "canal"})

# osmnx 2.1.1 "walk" filter (osmnx/_overpass.py, settings.default_access), as regex searches.
_WALK_EXCLUDE: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("area", re.compile("yes")),
    ("access", re.compile("private")),
    (
        "highway",
        re.compile(
            "abandoned|bus_guideway|construction|cycleway|motor|no|planned|platform|proposed|"
            "raceway|razed|rest_area|services"
        ),
    ),
    ("foot", re.compile("no")),
    ("service", re.compile("private")),
    ("sidewalk", re.compile("separate")),
    ("sidewalk:both", re.compile("separate")),
    ("sidewalk:left", re.compile("separate")),
    ("sidewalk:right", re.compile("separate")),
)

#: Street network profiles: which OSM ways are walked (see :func:`load_network`).
NETWORK_PROFILES = ("canvass", "walk")
#: ``highway`` values of the ways that lead to doors: the canvass profile keeps them when they are
#: private (a private residential close, a service road into a housing estate, a footway to the
#: entrances of a block).
DOOR_HIGHWAYS = frozenset(
    {"residential", "living_street", "service", "unclassified", "road", "footway", "path",
     "pedestrian", "steps", "track", "corridor"}
)
#: ``service`` values of private ways with no doors on them: car-park aisles, drive-throughs and
#: emergency accesses stay out even in the canvass profile.
NO_DOOR_SERVICES = frozenset({"parking_aisle", "drive-through", "emergency_access"})
#: ``foot`` values that open a private way to pedestrians.
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive"})
#: ``landuse`` of private sites no canvasser walks into: private ways inside them stay out.
PRIVATE_SITE_LANDUSE = frozenset(
    {"industrial", "military", "railway", "quarry", "landfill", "construction", "port"}
)
#: Kinds of marked crossing places (:attr:`StreetNetwork.crossings`).
CROSSING_KINDS = (
    "signals", "zebra", "marked", "unmarked", "level_crossing", "footbridge", "underpass",
)
#: ``highway`` values of the ways that are footbridges or underpasses when they pass over or
#: under a barrier on a bridge or in a tunnel (cycleways too: people walk them).
FOOT_CROSSING_HIGHWAYS = frozenset({"footway", "path", "steps", "pedestrian", "cycleway"})
#: The node tags of crossing places (read from the file; filtered in osmium's C++ code).
_CROSSING_NODE_TAGS = (("highway", "crossing"), ("highway", "traffic_signals"),
                       ("railway", "level_crossing"), ("railway", "crossing"))
#: ``crossing_ref`` values of crossings with pedestrian lights (the British names).
_SIGNAL_REFS = frozenset({"pelican", "toucan", "puffin", "pegasus", "tiger"})
#: ``crossing`` values of marked crossings without lights (``uncontrolled`` and ``island``:
#: older tags for a marked crossing, with a refuge island for the second).
_MARKED = frozenset({"marked", "uncontrolled", "island"})

_UNDEFINED_COORD = 2147483647  # osmium::Location undefined coordinate (missing node)
_COORD_SCALE = 1e-7  # osmium fixed-point coordinates -> degrees
_MIN_ZERO_WEIGHT = 1e-9  # stand-in for zero-length edges in sparse adjacency (0 = no edge)

_PBF_SUFFIXES = (".osm.pbf", ".pbf")
_XML_SUFFIXES = (".osm", ".osm.bz2", ".osm.gz")
_GRAPHML_SUFFIXES = (".graphml",)

_EDGE_STR_COLS = ("highway", "name", "sidewalk")
_EDGE_BOOL_COLS = ("bridge", "tunnel")
_BARRIER_STR_COLS = ("kind", "subtype", "name")
_CROSSING_STR_COLS = ("kind", "name")


# --------------------------------------------------------------------------------------------
# public data class
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class StreetNetwork:
    """A walking street network, its barriers and where they came from.

    Attributes
    ----------
    nodes
        Index ``node`` (int64 OSM node id, sorted); columns ``x``, ``y`` (float, metric CRS) and
        Point ``geometry``. Only graph nodes (dead ends, junctions, class changes) are kept.
    edges
        RangeIndex ``edge``; columns ``u``, ``v`` (int64 node ids, ``u == v`` only for loops),
        ``osmid`` (int64 way id), ``highway``, ``name`` (``""`` if none), ``length`` (metres, equal
        to the geometry length), ``bridge``, ``tunnel`` (bool), ``sidewalk`` (``""`` if none) and a
        LineString ``geometry`` running from node ``u`` to node ``v``.
    barriers
        RangeIndex ``barrier``; columns ``kind`` (``road``, ``railway``, ``waterway``),
        ``subtype`` (the tag value, e.g. ``primary``, ``rail``, ``river``), ``osmid`` (way or
        relation id), ``name``, ``bridge``, ``tunnel`` and a LineString or Polygon ``geometry``.
    crs
        The metric CRS of the four frames.
    source
        File name the network came from (or a description for downloaded graphs).
    source_sha256
        SHA-256 of the source file bytes (``""`` when there is no file).
    from_cache
        True when the network was read from the on-disk cache (not compared, for diagnostics).
    path
        Absolute path of the file :func:`load_network` read (``""`` otherwise; not compared):
        what a plan file records to load the network again (:mod:`knockin_geo.planfile`).
    profile
        The ``profile`` :func:`load_network` was given (not compared).
    crossings
        Marked crossing places (see the module docstring; empty when the source has none, and
        when not given): RangeIndex ``crossing``; columns ``kind`` (one of
        :data:`CROSSING_KINDS`), ``osmid`` (the node; the way of a footbridge or underpass),
        ``name`` (``""`` if none) and a Point ``geometry`` (the node, or where the footbridge or
        underpass passes over or under a barrier line). Not compared, and not part of a plan
        file's fingerprint: the turfs' doors and edges do not depend on it.
    """

    nodes: gpd.GeoDataFrame
    edges: gpd.GeoDataFrame
    barriers: gpd.GeoDataFrame
    crs: CRS
    source: str
    source_sha256: str
    from_cache: bool = field(default=False, compare=False)
    path: str = field(default="", compare=False)
    profile: str = field(default="canvass", compare=False)
    crossings: gpd.GeoDataFrame = field(default=None, compare=False)
    _memo: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.crossings is None:
            object.__setattr__(self, "crossings", _empty_crossings(self.crs))

    # -- graph views -------------------------------------------------------------------------
    def csr(self) -> tuple[sp.csr_array, np.ndarray]:
        """Return the symmetric weighted adjacency matrix of the network.

        Returns
        -------
        scipy.sparse.csr_array
            ``n x n`` matrix over ``self.nodes`` in index order; entry ``(i, j)`` is the length of
            the shortest edge between nodes ``i`` and ``j`` (self-loops dropped; zero-length edges
            stored as 1e-9 m so they stay edges).
        numpy.ndarray
            The int64 node ids of the rows/columns (``self.nodes.index``).

        Notes
        -----
        Computed once and cached on the instance; do not modify the returned matrix in place.
        """
        if "csr" not in self._memo:
            node_ids = self.nodes.index.to_numpy(dtype=np.int64)
            n = len(node_ids)
            i = np.searchsorted(node_ids, self.edges["u"].to_numpy(dtype=np.int64))
            j = np.searchsorted(node_ids, self.edges["v"].to_numpy(dtype=np.int64))
            w = np.maximum(self.edges["length"].to_numpy(dtype=float), _MIN_ZERO_WEIGHT)
            keep = i != j
            rows = np.concatenate([i[keep], j[keep]])
            cols = np.concatenate([j[keep], i[keep]])
            vals = np.concatenate([w[keep], w[keep]])
            # parallel edges: keep the shortest one
            order = np.lexsort((vals, cols, rows))
            rows, cols, vals = rows[order], cols[order], vals[order]
            first = np.ones(len(rows), dtype=bool)
            first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
            mat = sp.csr_array((vals[first], (rows[first], cols[first])), shape=(n, n))
            self._memo["csr"] = (mat, node_ids)
        return self._memo["csr"]

    def edge_tree(self) -> shapely.STRtree:
        """Return a spatial index of the edge geometries (positions as in ``self.edges``).

        Built once per network and cached on the instance, so that the maps and walk lists of
        every turf share it.
        """
        if "edge_tree" not in self._memo:
            self._memo["edge_tree"] = shapely.STRtree(self.edges.geometry.to_numpy())
        return self._memo["edge_tree"]

    def streets_in(self, area: shapely.Geometry) -> np.ndarray:
        """Return the edge geometries that meet ``area``, clipped to it, in edge order.

        Most streets near a turf lie wholly inside the area drawn around it and are returned as
        they are; only those that leave it go through the intersection.
        """
        tree = self.edge_tree()  # its geometries are the edges' (no column read per call)
        lines = tree.geometries[np.sort(tree.query(area, "intersects"))]
        shapely.prepare(area)
        leave = ~shapely.contains_properly(area, lines)
        lines[leave] = shapely.intersection(lines[leave], area)
        return np.asarray(lines)

    def component_labels(self) -> pd.Series:
        """Label every node with its connected component.

        Returns
        -------
        pandas.Series
            int64 component id per node (index ``node``); 0 is the largest component, then by
            decreasing size (ties: the component holding the smaller node id first).
        """
        if "components" not in self._memo:
            mat, _ = self.csr()
            _, raw = connected_components(mat, directed=False)
            self._memo["components"] = pd.Series(
                _relabel_by_size(raw), index=self.nodes.index.copy(), name="component"
            )
        return self._memo["components"].copy()

    def summary(self) -> dict[str, Any]:
        """Return headline figures of the network.

        Returns
        -------
        dict
            ``nodes``, ``edges``, ``total_km``, ``components``, ``largest_component_nodes``,
            ``largest_component_share``, ``largest_component_edges``, ``highway`` (edge count
            per highway value), ``barriers`` (count per kind) and ``barrier_subtypes``
            (``{kind: {subtype: count}}``), ``crossings`` (marked crossing places per kind),
            ``crs``, ``source``.
        """
        labels = self.component_labels()
        n_nodes = len(self.nodes)
        if n_nodes:
            sizes = np.bincount(labels.to_numpy())
            largest = int(sizes[0])
            comp_u = labels.reindex(self.edges["u"].to_numpy()).to_numpy()
            largest_edges = int(np.count_nonzero(comp_u == 0))
        else:
            sizes, largest, largest_edges = np.zeros(0, dtype=int), 0, 0
        kinds = self.barriers["kind"].value_counts().sort_index()
        subtypes: dict[str, dict[str, int]] = {}
        for (kind, subtype), count in (
            self.barriers.groupby(["kind", "subtype"]).size().sort_index().items()
        ):
            subtypes.setdefault(str(kind), {})[str(subtype)] = int(count)
        return {
            "nodes": n_nodes,
            "edges": len(self.edges),
            "total_km": float(self.edges["length"].sum() / 1000.0),
            "components": len(sizes),
            "largest_component_nodes": largest,
            "largest_component_share": largest / n_nodes if n_nodes else 0.0,
            "largest_component_edges": largest_edges,
            "highway": {str(k): int(v) for k, v in self.edges["highway"].value_counts().items()},
            "barriers": {str(k): int(v) for k, v in kinds.items()},
            "barrier_subtypes": subtypes,
            "crossings": {str(k): int(v) for k, v in
                          self.crossings["kind"].value_counts().sort_index().items()},
            "crs": self.crs.to_string(),
            "source": self.source,
        }

    def to_networkx(self) -> nx.MultiGraph:
        """Return an osmnx-style undirected MultiGraph of the network.

        Returns
        -------
        networkx.MultiGraph
            Nodes carry ``x``, ``y``; edges carry ``length``, ``highway``, ``name``, ``osmid``,
            ``bridge``, ``tunnel``, ``sidewalk`` and ``geometry`` (shapely LineString, from ``u``
            to ``v``). ``G.graph`` holds ``crs`` (pyproj CRS), ``simplified`` and ``source``.
        """
        G: nx.MultiGraph = nx.MultiGraph(crs=self.crs, simplified=True, source=self.source)
        xs = self.nodes["x"].to_numpy(dtype=float).tolist()
        ys = self.nodes["y"].to_numpy(dtype=float).tolist()
        ids = self.nodes.index.to_numpy(dtype=np.int64).tolist()
        G.add_nodes_from((n, {"x": x, "y": y}) for n, x, y in zip(ids, xs, ys, strict=True))
        e = self.edges
        cols = {
            "osmid": e["osmid"].to_numpy(dtype=np.int64).tolist(),
            "highway": e["highway"].tolist(),
            "name": e["name"].tolist(),
            "length": e["length"].to_numpy(dtype=float).tolist(),
            "bridge": e["bridge"].to_numpy(dtype=bool).tolist(),
            "tunnel": e["tunnel"].to_numpy(dtype=bool).tolist(),
            "sidewalk": e["sidewalk"].tolist(),
            "geometry": list(e.geometry.array),
        }
        keys = list(cols)
        G.add_edges_from(
            (u, v, dict(zip(keys, vals, strict=True)))
            for u, v, *vals in zip(
                e["u"].to_numpy(dtype=np.int64).tolist(),
                e["v"].to_numpy(dtype=np.int64).tolist(),
                *cols.values(),
                strict=True,
            )
        )
        return G

    def to_crs(self, crs: Any) -> StreetNetwork:
        """Return the network in another metric CRS.

        Parameters
        ----------
        crs
            Any pyproj-compatible CRS with metre units.

        Returns
        -------
        StreetNetwork
            A new network; edge lengths are recomputed in the new CRS (they stay equal to the
            geometry lengths).
        """
        target = _metric_crs(crs)
        if target == self.crs:
            return StreetNetwork(
                self.nodes.copy(),
                self.edges.copy(),
                self.barriers.copy(),
                self.crs,
                self.source,
                self.source_sha256,
                crossings=self.crossings.copy(),
            )
        nodes = self.nodes.to_crs(target)
        nodes["x"] = shapely.get_x(nodes.geometry.array)
        nodes["y"] = shapely.get_y(nodes.geometry.array)
        edges = self.edges.to_crs(target)
        edges["length"] = shapely.length(edges.geometry.array)
        barriers = self.barriers.to_crs(target)
        return StreetNetwork(nodes, edges, barriers, target, self.source, self.source_sha256,
                             crossings=self.crossings.to_crs(target))


# --------------------------------------------------------------------------------------------
# public functions
# --------------------------------------------------------------------------------------------
def cache_dir() -> Path:
    """Return the folder of knockin_geo's on-disk cache.

    Returns
    -------
    pathlib.Path
        ``$KNOCKIN_GEO_CACHE`` if set, else ``$XDG_CACHE_HOME/knockin_geo``, else
        ``~/.cache/knockin_geo``. The folder is not created.
    """
    return _cache_root()


def _cache_root() -> Path:
    """Return :func:`cache_dir` (``load_network``'s argument shadows that name)."""
    env = os.environ.get("KNOCKIN_GEO_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg).expanduser() / "knockin_geo"
    return Path.home() / ".cache" / "knockin_geo"


def load_network(
    path: str | os.PathLike[str],
    *,
    crs: Any = None,
    cache: bool = True,
    cache_dir: str | os.PathLike[str] | None = None,
    profile: str = "canvass",
) -> StreetNetwork:
    """Load the walking network and barriers from a local OSM or GraphML file.

    Parameters
    ----------
    path
        ``.osm.pbf``/``.pbf``, ``.osm``, ``.osm.bz2``, ``.osm.gz`` (read with pyosmium; clipped
        extracts are fine) or ``.graphml`` (an osmnx graph; it has no barriers).
    crs
        Target metric CRS (anything pyproj understands). Default: the UTM zone of the data's
        centre.
    cache
        Read/write the built network from/to the cache folder, keyed by the file's SHA-256, the
        loader version and the CRS.
    cache_dir
        Cache folder; default :func:`cache_dir`.
    profile
        Which OSM ways are walked (OSM files only; a GraphML graph is taken as it is).
        ``canvass`` (default): osmnx's ``walk`` filter, plus the private ways that lead to doors
        (``access=private`` residential, service, living_street, footway... roads; not car-park
        aisles, drive-throughs or emergency accesses, and not inside industrial, military,
        railway, quarry, landfill, construction or port land). ``walk``: osmnx's ``walk`` filter
        (drops every ``access=private`` way). Part of the cache key.

    Returns
    -------
    StreetNetwork
        The network (all connected components kept).

    Raises
    ------
    InputError
        Missing, unreadable or corrupt file, or an unknown file type.
    CRSError
        ``crs`` is not a projected CRS in metres.
    NetworkError
        The file holds no walkable way.
    """
    _check_profile(profile)
    p = Path(path)
    kind = _file_kind(p)
    if not p.is_file():
        msg = f"street file not found: {p} (check the path, or download an OSM extract first)"
        raise InputError(msg, path=str(p))
    target = None if crs is None else _metric_crs(crs)
    try:
        sha = _sha256(p)
    except OSError as exc:
        msg = f"cannot read street file {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc

    folder = Path(cache_dir) if cache_dir is not None else _cache_root()
    cache_file = folder / f"streets-{_cache_key(sha, target, profile)}.npz" if cache else None
    net = _cached_network(cache_file, p, sha)
    if net is None:
        net = _build_network(p, kind, target, sha, profile)
        if cache_file is not None:
            try:
                _write_cache(cache_file, net)
                logger.debug("wrote street cache %s", cache_file)
            except OSError as exc:
                logger.warning("could not write street cache %s: %s", cache_file, exc)
    return replace(net, path=str(p.resolve()), profile=profile)


def _cached_network(cache_file: Path | None, p: Path, sha: str) -> StreetNetwork | None:
    """Return the network the cache holds for this file, or None (none, or unreadable)."""
    if cache_file is None or not cache_file.is_file():
        return None
    try:
        net = _read_cache(cache_file, source=p.name, sha=sha)
    except Exception as exc:  # any unreadable cache is rebuilt
        logger.warning("ignoring corrupt street cache %s (%s); rebuilding", cache_file, exc)
        return None
    logger.info("street network cache hit: %s (%s)", cache_file, p.name)
    return net


def _build_network(p: Path, kind: str, target: CRS | None, sha: str, profile: str
                   ) -> StreetNetwork:
    """Read the street file (GraphML or OSM) and log what was built."""
    t0 = time.perf_counter()
    net = (_load_graphml(p, target, sha) if kind == "graphml"
           else _load_osm(p, target, sha, profile))
    logger.info(
        "built street network from %s in %.2f s: %d nodes, %d edges, %d barriers, "
        "%d marked crossing places",
        p.name, time.perf_counter() - t0, len(net.nodes), len(net.edges), len(net.barriers),
        len(net.crossings),
    )
    return net


def network_from_osmnx(
    G: nx.MultiGraph | nx.MultiDiGraph,
    *,
    crs: Any = None,
    barriers: gpd.GeoDataFrame | None = None,
    source: str = "osmnx graph",
    source_sha256: str = "",
) -> StreetNetwork:
    """Convert an osmnx graph to a :class:`StreetNetwork`.

    Parameters
    ----------
    G
        osmnx graph (directed or not) with ``G.graph["crs"]`` and node ``x``/``y``. An
        unsimplified graph (``G.graph["simplified"]`` false or missing) is simplified with the
        same rules as :func:`load_network`; a simplified one is converted edge for edge (its
        parallel reciprocal edges merged, geometries oriented from ``u`` to ``v`` and their ends
        set to the node coordinates, lengths recomputed in the metric CRS, isolated nodes
        dropped). List-valued attributes keep their first value.
    crs
        Target metric CRS; default the UTM zone of the graph's centre.
    barriers
        Optional barrier layer (any CRS) in the :attr:`StreetNetwork.barriers` layout.
    source, source_sha256
        Provenance recorded on the result.

    Returns
    -------
    StreetNetwork
        The network. ``G`` is not modified. Its ``crossings`` come from the graph's node tags
        (``highway``, ``railway``; ``crossing`` only if osmnx was told to keep it) and from its
        footway, path, steps, pedestrian and cycleway edges on bridges or in tunnels that pass
        over or under a line of ``barriers``.

    Raises
    ------
    NetworkError
        The graph has no edges or no CRS.
    """
    if G.number_of_edges() == 0:
        msg = f"the graph from {source} has no edges: nothing to walk on"
        raise NetworkError(msg)
    graph_crs = G.graph.get("crs")
    if graph_crs is None:
        msg = f"the graph from {source} has no 'crs' graph attribute"
        raise NetworkError(msg)
    src_crs = CRS.from_user_input(graph_crs)
    node_ids, node_xy, target, to_target = _graph_nodes(G, src_crs, crs)
    Gu = G if not G.is_directed() else _to_undirected(cast("nx.MultiDiGraph", G))
    rows = list(Gu.edges(keys=False, data=True))
    simplified = _truthy(G.graph.get("simplified", False))
    u, v = _edge_ends(rows, oriented=not simplified)
    ui = np.searchsorted(node_ids, u)
    vi = np.searchsorted(node_ids, v)
    datas = [r[2] for r in rows]
    osmid = np.array([_first_int(d.get("osmid", -1)) for d in datas], dtype=np.int64)
    attrs = _osmnx_edge_attrs(datas)
    if not simplified:
        # every edge is one straight OSM segment: run our simplification on them
        seg_way = np.arange(len(rows), dtype=np.int64)
        ways = {"osmid": osmid, **attrs}
        nodes, edges = _build_walk(ui, vi, seg_way, ways, node_ids, node_xy, target)
    else:
        geom_arr = _edge_geometries(datas, ui, vi, node_xy, to_target, source)
        used = np.unique(np.concatenate([ui, vi]))  # isolated nodes are dropped
        nodes = _nodes_frame(node_ids[used], node_xy[used], target)
        order_e = np.lexsort((vi, ui, osmid))
        edges = _edges_frame(u[order_e], v[order_e], osmid[order_e],
                             {k: a[order_e] for k, a in attrs.items()},
                             shapely.length(geom_arr[order_e]), geom_arr[order_e], target)
    if barriers is None:
        bar = _empty_barriers(target)
    else:
        bar = barriers.to_crs(target).reset_index(drop=True)
        bar.index.name = "barrier"
    foot = _osmnx_foot_crossings(datas, ui, vi, osmid, attrs["name"], node_xy, to_target, source)
    marks = _crossings_of(_osmnx_marks(G, node_ids, node_xy), foot, bar, target)
    return StreetNetwork(nodes, edges, bar, target, source, source_sha256, crossings=marks)


def _osmnx_edge_attrs(datas: list[dict]) -> dict[str, np.ndarray]:
    """Return the edges' highway, name, sidewalk, bridge and tunnel (first values)."""
    return {
        "highway": _str_array(_first_str(d.get("highway")) for d in datas),
        "name": _str_array(_first_str(d.get("name")) for d in datas),
        "sidewalk": _str_array(_first_str(d.get("sidewalk")) for d in datas),
        "bridge": np.array([_flag(_first_str(d.get("bridge"))) for d in datas], dtype=bool),
        "tunnel": np.array([_flag(_first_str(d.get("tunnel"))) for d in datas], dtype=bool),
    }


def _osmnx_marks(G: nx.MultiGraph | nx.MultiDiGraph, node_ids: np.ndarray, node_xy: np.ndarray
                 ) -> _Marks:
    """Crossing nodes of an osmnx graph, from its node tags.

    osmnx keeps a node's ``highway`` and ``railway`` tags by default, not ``crossing``: a
    ``highway=crossing`` node of such a graph is ``unmarked`` unless ``crossing`` was added to
    ``osmnx.settings.useful_tags_node`` before the graph was built.
    """
    found = [(i, k) for i, n in enumerate(node_ids.tolist())
             if (k := _crossing_kind(_TagView(G.nodes[n])))]
    at = np.array([i for i, _ in found], dtype=np.int64)
    return _Marks(_str_array(k for _, k in found), node_ids[at],
                  np.full(len(at), "", dtype="<U1"),
                  np.asarray(shapely.points(node_xy[at].reshape(-1, 2)), dtype=object))


def _osmnx_foot_crossings(
    datas: list[dict], ui: np.ndarray, vi: np.ndarray, osmid: np.ndarray, name: np.ndarray,
    node_xy: np.ndarray, to_target: Transformer, source: str,
) -> _Marks:
    """Footbridge and underpass edges of an osmnx graph, as lines (kind, way id, name)."""
    kinds = np.array([_foot_crossing_kind(_TagView(d), _first_str(d.get("highway")))
                      for d in datas], dtype=object)
    at = np.flatnonzero(kinds != "")
    if len(at) == 0:
        return _Marks.empty()
    lines = _edge_geometries([datas[i] for i in at.tolist()], ui[at], vi[at], node_xy, to_target,
                             source)
    return _Marks(_str_array(kinds[at]), osmid[at], name[at], lines)


def _graph_nodes(
    G: nx.MultiGraph | nx.MultiDiGraph, src_crs: CRS, crs: Any
) -> tuple[np.ndarray, np.ndarray, CRS, Transformer]:
    """Sort the graph's node ids; project their coordinates to the metric CRS (given or UTM)."""
    node_ids = np.fromiter(G.nodes, dtype=np.int64, count=G.number_of_nodes())
    order = np.argsort(node_ids, kind="stable")
    node_ids = node_ids[order]
    gx = np.array([G.nodes[n]["x"] for n in node_ids.tolist()], dtype=float)
    gy = np.array([G.nodes[n]["y"] for n in node_ids.tolist()], dtype=float)
    if src_crs.is_geographic:
        lon, lat = gx, gy
    else:
        lon, lat = Transformer.from_crs(src_crs, WGS84, always_xy=True).transform(gx, gy)
    target = _metric_crs(crs) if crs is not None else _auto_crs(lon, lat)
    to_target = Transformer.from_crs(src_crs, target, always_xy=True)
    nx_, ny_ = to_target.transform(gx, gy)
    return node_ids, np.column_stack([nx_, ny_]), target, to_target


def _edge_ends(rows: list[tuple[Any, Any, dict]], oriented: bool) -> tuple[np.ndarray, np.ndarray]:
    """Return the edges' end node ids, along their OSM way for raw segments when known."""
    u = np.array([r[0] for r in rows], dtype=np.int64)
    v = np.array([r[1] for r in rows], dtype=np.int64)
    if oriented:
        # orient raw segments along their way (osmnx marks added reverse edges "reversed")
        way_dir = [
            (d["from"], d["to"]) if not _truthy(d.get("reversed", False)) else (d["to"], d["from"])
            for *_, d in rows
            if "from" in d
        ]
        if len(way_dir) == len(rows):
            u = np.array([a for a, _ in way_dir], dtype=np.int64)
            v = np.array([b for _, b in way_dir], dtype=np.int64)
    return u, v


def _edge_geometries(
    datas: list[dict],
    ui: np.ndarray,
    vi: np.ndarray,
    node_xy: np.ndarray,
    to_target: Transformer,
    source: str,
) -> np.ndarray:
    """Project the edges' geometries (straight lines where none); from ``u`` to ``v`` exactly."""
    has = np.array([d.get("geometry") is not None for d in datas], dtype=bool)
    geom_arr = np.empty(len(datas), dtype=object)
    if has.any():
        given = np.empty(int(has.sum()), dtype=object)
        given[:] = [d["geometry"] for d in datas if d.get("geometry") is not None]
        geom_arr[has] = _project_geom(given, to_target)
    if (~has).any():
        ends = np.stack([node_xy[ui[~has]], node_xy[vi[~has]]], axis=1)
        geom_arr[~has] = shapely.linestrings(ends)
    # orient every geometry from u to v, then make its ends exactly the node coordinates
    start = shapely.get_coordinates(shapely.get_point(geom_arr, 0))
    d_u = np.hypot(*(start - node_xy[ui]).T)
    d_v = np.hypot(*(start - node_xy[vi]).T)
    flip = d_v < d_u
    geom_arr[flip] = shapely.reverse(geom_arr[flip])
    gtype, coords, (offs,) = shapely.to_ragged_array(geom_arr)
    if gtype != shapely.GeometryType.LINESTRING:
        msg = f"the graph from {source} has edge geometries that are not LineStrings"
        raise NetworkError(msg)
    coords[offs[:-1]] = node_xy[ui]
    coords[offs[1:] - 1] = node_xy[vi]
    return shapely.from_ragged_array(gtype, coords, (offs,))


def download_network(
    polygon_wgs84: shapely.Polygon | shapely.MultiPolygon,
    *,
    crs: Any = None,
    profile: str = "canvass",
) -> StreetNetwork:
    """Download the walking network and barriers inside a polygon from OpenStreetMap.

    Uses ``osmnx.graph_from_polygon(network_type="walk", retain_all=True, simplify=False)`` (the
    ``walk`` profile) or the same query without osmnx's ``access`` rule, filtered with the
    canvass rules of :func:`load_network` (the ``canvass`` profile; private-site land use is not
    downloaded, so only the tag rules apply), and simplifies with the same rules as
    :func:`load_network`, then fetches barriers with ``osmnx.features_from_polygon``.

    Parameters
    ----------
    polygon_wgs84
        (Multi)Polygon in EPSG:4326.
    crs
        Target metric CRS; default the UTM zone of the data's centre.
    profile
        ``canvass`` (default) or ``walk``, as in :func:`load_network`.

    Returns
    -------
    StreetNetwork
        The network (``source`` is ``"osmnx download"``, no SHA-256).

    Raises
    ------
    NetworkError
        The download failed or found no walkable way.
    """
    import osmnx as ox

    _check_profile(profile)
    query: dict[str, Any] = (
        {"network_type": "walk"} if profile == "walk" else {"custom_filter": _CANVASS_OVERPASS}
    )
    try:
        G = ox.graph_from_polygon(polygon_wgs84, retain_all=True, simplify=False, **query)
    except Exception as exc:
        msg = f"could not download the walking network from OpenStreetMap: {exc}"
        raise NetworkError(msg) from exc
    if profile == "canvass":
        drop = [(u, v, k) for u, v, k, d in G.edges(keys=True, data=True)
                if not _is_walkable(_TagView(d), str(_first(d.get("highway", ""))), profile)]
        G = G.copy()
        G.remove_edges_from(drop)
        G.remove_nodes_from([n for n in list(G.nodes) if G.degree(n) == 0])
    tags: dict[str, bool | str | list[str]] = {
        "highway": sorted(BARRIER_HIGHWAYS),
        "railway": sorted(BARRIER_RAILWAYS),
        "waterway": sorted(BARRIER_WATERWAYS),
        "natural": "water",
    }
    try:
        feats = ox.features_from_polygon(polygon_wgs84, tags=tags)
    except Exception as exc:  # osmnx raises InsufficientResponseError when empty
        logger.warning("no barrier features downloaded (%s)", exc)
        feats = gpd.GeoDataFrame(geometry=[], crs=WGS84)
    bar = _barriers_from_features(feats)
    return network_from_osmnx(G, crs=crs, barriers=bar, source="osmnx download")


# --------------------------------------------------------------------------------------------
# OSM file reading (pyosmium)
# --------------------------------------------------------------------------------------------
#: osmnx's walk query without its ``access`` and ``service=private`` rules (the canvass profile
#: filters those ways itself).
_CANVASS_OVERPASS = (
    '["highway"]["area"!~"yes"]["highway"!~"abandoned|bus_guideway|construction|cycleway|motor|'
    'no|planned|platform|proposed|raceway|razed|rest_area|services"]["foot"!~"no"]'
    '["sidewalk"!~"separate"]["sidewalk:both"!~"separate"]["sidewalk:left"!~"separate"]'
    '["sidewalk:right"!~"separate"]'
)


class _TagView:
    """``tags.get`` over an osmnx edge's attributes (list values: the first)."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self._data = data

    def get(self, key: str, default: Any = None) -> Any:
        value = self._data.get(key)
        return default if value is None else str(_first(value))


def _check_profile(profile: str) -> None:
    if profile not in NETWORK_PROFILES:
        msg = (
            f"unknown network profile {profile!r}: use one of {', '.join(NETWORK_PROFILES)} "
            "(--network-profile)"
        )
        raise InputError(msg)


def _is_walkable(tags: Any, highway: str, profile: str = "canvass") -> bool:
    """Return whether a way with these tags is walked in this profile.

    ``walk`` is osmnx's ``walk`` filter. ``canvass`` is the same filter except that a private
    way (``access=private`` or ``service=private``) is kept when it can lead to doors: its
    ``highway`` is one of :data:`DOOR_HIGHWAYS` and its ``service`` is not one of
    :data:`NO_DOOR_SERVICES`, or ``foot`` opens it to pedestrians. Private ways inside
    :data:`PRIVATE_SITE_LANDUSE` areas are dropped afterwards (:func:`_drop_private_sites`).
    """
    keep_private = profile == "canvass" and _private_leads_to_doors(tags, highway)
    for key, pattern in _WALK_EXCLUDE:
        if keep_private and key in ("access", "service"):
            continue
        value = highway if key == "highway" else tags.get(key)
        if value is not None and pattern.search(value):
            return False
    return True


def _is_private(tags: Any) -> bool:
    return "private" in (tags.get("access") or "") or "private" in (tags.get("service") or "")


def _private_leads_to_doors(tags: Any, highway: str) -> bool:
    """Whether a way the canvass profile keeps although it is private."""
    if (tags.get("foot") or "") in FOOT_ALLOWED:
        return True
    return highway in DOOR_HIGHWAYS and (tags.get("service") or "") not in NO_DOOR_SERVICES


def _flag(value: str | None) -> bool:
    """Return True for a present ``bridge``/``tunnel`` tag other than ``no``."""
    return value is not None and value not in ("", "no", "false", "False", "None", "nan")


def _barrier_class(
    highway: str | None,
    railway: str | None,
    waterway: str | None,
    natural: str | None,
    water: str | None,
) -> tuple[str, str] | None:
    """Return ``(kind, subtype)`` of a barrier way, or None."""
    if highway in BARRIER_HIGHWAYS:
        return "road", highway
    if railway in BARRIER_RAILWAYS:
        return "railway", railway
    if waterway in BARRIER_WATERWAYS:
        return "waterway", waterway
    if natural == "water" and water in BARRIER_WATER:
        return "waterway", water
    return None


def _crossing_kind(tags: Any) -> str:
    """Return the kind of a crossing node (one of :data:`CROSSING_KINDS`), or ``""``."""
    crossing = tags.get("crossing") or ""
    if crossing == "no":
        return ""
    if tags.get("railway") in ("level_crossing", "crossing"):
        return "level_crossing"
    highway = tags.get("highway")
    if highway not in ("crossing", "traffic_signals"):
        return ""
    ref = tags.get("crossing_ref") or ""
    if (highway == "traffic_signals" or crossing == "traffic_signals" or ref in _SIGNAL_REFS
            or tags.get("crossing:signals") == "yes"):
        return "signals"
    if crossing == "zebra" or ref == "zebra":
        return "zebra"
    if crossing in _MARKED or (tags.get("crossing:markings") or "no") != "no":
        return "marked"
    return "unmarked"


def _foot_crossing_kind(tags: Any, highway: str | None) -> str:
    """Return ``footbridge``/``underpass`` for a path on a bridge/in a tunnel, else ``""``."""
    if highway not in FOOT_CROSSING_HIGHWAYS:
        return ""
    if _flag(tags.get("bridge")):
        return "footbridge"
    if _flag(tags.get("tunnel")):
        return "underpass"
    try:
        layer = int(tags.get("layer") or 0)
    except ValueError:
        return ""
    return "footbridge" if layer > 0 else "underpass" if layer < 0 else ""


@dataclass
class _Collected:
    """What one pass over an OSM file gathers (plain Python lists, converted once)."""

    points: list[tuple[int, int, int]] = field(default_factory=list)  # (ref, x, y) all ways
    way_start: list[int] = field(default_factory=list)
    way_id: list[int] = field(default_factory=list)
    walk: list[bool] = field(default_factory=list)
    kind: list[str] = field(default_factory=list)  # "" when not a barrier
    subtype: list[str] = field(default_factory=list)
    highway: list[str] = field(default_factory=list)
    name: list[str] = field(default_factory=list)
    sidewalk: list[str] = field(default_factory=list)
    bridge: list[bool] = field(default_factory=list)
    tunnel: list[bool] = field(default_factory=list)
    area_like: list[bool] = field(default_factory=list)  # riverbank / natural=water river|canal
    private: list[bool] = field(default_factory=list)  # walked only thanks to the canvass profile
    sites: list[list[np.ndarray]] = field(default_factory=list)  # private-site polygons
    xing: list[str] = field(default_factory=list)  # footbridge / underpass / ""
    marks: list[tuple[int, int, int, str]] = field(default_factory=list)  # crossing nodes
    areas: list[tuple[int, str, str, str, list[list[np.ndarray]]]] = field(default_factory=list)


def _read_osm(path: Path, profile: str = "canvass") -> _Collected:
    """Read walkable and barrier ways (and water relation areas) from an OSM file.

    The canvass profile also reads the private-site areas (:data:`PRIVATE_SITE_LANDUSE`).
    """
    out = _Collected()
    area_keys = ("waterway", "natural", "landuse") if profile == "canvass" else ("waterway",
                                                                                 "natural")
    node_keys = TagFilter(*_CROSSING_NODE_TAGS)  # crossing nodes (kinds: _crossing_kind)
    node_keys.enable_for(osmium.osm.NODE)
    way_keys = KeyFilter("highway", "railway", *area_keys)
    way_keys.enable_for(osmium.osm.WAY | osmium.osm.AREA)
    fp = (
        osmium.FileProcessor(str(path))
        .with_locations()
        .with_areas(KeyFilter(*area_keys))
        .with_filter(EntityFilter(osmium.osm.NODE | osmium.osm.WAY | osmium.osm.AREA))
        .with_filter(node_keys)
        .with_filter(way_keys)
    )
    for obj in fp:
        if isinstance(obj, osmium.osm.Area):
            _collect_area(out, obj)
        elif isinstance(obj, osmium.osm.Way):
            _collect_way(out, obj, profile)
        elif isinstance(obj, osmium.osm.Node) and (kind := _crossing_kind(obj.tags)):
            loc = obj.location
            if loc.valid():
                out.marks.append((obj.id, loc.x, loc.y, kind))
    return out


def _collect_area(out: _Collected, obj: osmium.osm.Area) -> None:
    """Keep a private site's outline; keep a water area built from a relation as a barrier."""
    tags = obj.tags
    if tags.get("landuse") in PRIVATE_SITE_LANDUSE:
        out.sites.extend([_ring_xy(outer)] for outer in obj.outer_rings())
    if obj.from_way():
        return  # closed ways are handled (with clipping) as ways
    cls = _barrier_class(None, None, tags.get("waterway"), tags.get("natural"), tags.get("water"))
    if cls is None:
        return
    polys = []
    for outer in obj.outer_rings():
        rings = [_ring_xy(outer)]
        rings += [_ring_xy(inner) for inner in obj.inner_rings(outer)]
        polys.append(rings)
    out.areas.append((obj.orig_id(), cls[0], cls[1], tags.get("name") or "", polys))


def _collect_way(out: _Collected, obj: osmium.osm.Way, profile: str) -> None:
    """Keep a walkable or barrier way: its node refs and locations and its tags."""
    tags = obj.tags
    highway = tags.get("highway")
    walk = highway is not None and _is_walkable(tags, highway, profile)
    waterway, natural, water = tags.get("waterway"), tags.get("natural"), tags.get("water")
    cls = _barrier_class(highway, tags.get("railway"), waterway, natural, water)
    xing = _foot_crossing_kind(tags, highway)
    if not walk and cls is None and not xing:
        return
    points = out.points
    out.way_start.append(len(points))
    points.extend([(nr.ref, (loc := nr.location).x, loc.y) for nr in obj.nodes])
    out.way_id.append(obj.id)
    out.walk.append(walk)
    out.kind.append(cls[0] if cls else "")
    out.subtype.append(cls[1] if cls else "")
    out.highway.append(highway or "")
    out.name.append(tags.get("name") or "")
    out.sidewalk.append(tags.get("sidewalk") or "")
    out.bridge.append(_flag(tags.get("bridge")))
    out.tunnel.append(_flag(tags.get("tunnel")))
    out.area_like.append(
        waterway == "riverbank" or (natural == "water" and water in BARRIER_WATER)
    )
    out.private.append(walk and _is_private(tags))
    out.xing.append(xing)


def _drop_private_sites(col: _Collected, pts: np.ndarray, starts: np.ndarray,
                        walk: np.ndarray) -> np.ndarray:
    """Return ``walk`` without the private ways whose middle node lies in a private site.

    A private road inside an industrial estate, a military area or a railway yard leads to no
    door a canvasser knocks on; outside such areas a private way is kept (canvass profile).
    """
    private = np.array(col.private, dtype=bool) & walk
    if not private.any() or not col.sites:
        return walk
    polys = [shapely.Polygon(r[0] * _COORD_SCALE) for r in col.sites if len(r[0]) >= 4]
    polys = [g for g in polys if g.is_valid and not g.is_empty]
    if not polys:
        return walk
    idx = np.flatnonzero(private)
    counts = np.diff(np.append(starts, len(pts)))
    mid = pts[starts[idx] + counts[idx] // 2]
    present = mid[:, 1] != _UNDEFINED_COORD
    where = shapely.points(mid[present, 1] * _COORD_SCALE, mid[present, 2] * _COORD_SCALE)
    inside, _ = shapely.STRtree(polys).query(where, predicate="within")
    out = walk.copy()
    out[idx[present][np.unique(inside)]] = False
    logger.info("canvass profile: %d private way(s) kept, %d inside private sites dropped",
                int(private.sum()) - len(np.unique(inside)), len(np.unique(inside)))
    return out


def _ring_xy(ring: Iterable[Any]) -> np.ndarray:
    """Return the fixed-point (x, y) of an assembled area ring."""
    return np.array([((loc := nr.location).x, loc.y) for nr in ring], dtype=np.int64)


def _load_osm(path: Path, target: CRS | None, sha: str, profile: str = "canvass") -> StreetNetwork:
    """Build a network from an OSM XML/PBF file."""
    try:
        col = _read_osm(path, profile)
    except (RuntimeError, ValueError, OSError, EOFError) as exc:
        msg = (
            f"cannot read OSM file {path}: {exc}. The file is corrupt or truncated, or not an "
            "OSM file: download the extract again."
        )
        raise InputError(msg, path=str(path)) from exc

    n_ways = len(col.way_id)
    pts = np.array(col.points, dtype=np.int64).reshape(-1, 3)
    starts = np.array(col.way_start, dtype=np.int64)
    counts = np.diff(np.append(starts, len(pts)))
    way_of_pt = np.repeat(np.arange(n_ways, dtype=np.int64), counts)
    walk = _drop_private_sites(col, pts, starts, np.array(col.walk, dtype=bool))
    ways = {
        "osmid": np.array(col.way_id, dtype=np.int64),
        "highway": _str_array(col.highway),
        "name": _str_array(col.name),
        "sidewalk": _str_array(col.sidewalk),
        "bridge": np.array(col.bridge, dtype=bool),
        "tunnel": np.array(col.tunnel, dtype=bool),
        "kind": _str_array(col.kind),
        "subtype": _str_array(col.subtype),
        "area_like": np.array(col.area_like, dtype=bool),
        "xing": _str_array(col.xing),
    }
    n_missing = int(np.count_nonzero(pts[:, 1] == _UNDEFINED_COORD))
    if n_missing:
        logger.info(
            "%s: %d node references point outside the extract; ways split there",
            path.name,
            n_missing,
        )

    run_pts, run_id = _valid_runs(pts, way_of_pt)  # indices into pts, run id per kept point
    run_way = way_of_pt[run_pts]
    # walk segments: consecutive points of the same run
    in_walk = walk[run_way]
    same_run = run_id[1:] == run_id[:-1]
    seg = np.flatnonzero(same_run & in_walk[1:])
    if len(seg) == 0:
        msg = (
            f"no walkable street in {path}: the file has no way passing the walking filter "
            "(highway=* not private, not a motorway, not foot=no). Check that it is the right "
            "area and was not filtered to buildings or addresses only."
        )
        raise NetworkError(msg)
    seg_a_ref = pts[run_pts[seg], 0]
    seg_b_ref = pts[run_pts[seg + 1], 0]
    seg_way = run_way[seg]
    node_ids, first, inv = np.unique(
        np.concatenate([seg_a_ref, seg_b_ref]), return_index=True, return_inverse=True
    )
    ab_pts = np.concatenate([run_pts[seg], run_pts[seg + 1]])[first]
    lon = pts[ab_pts, 1] * _COORD_SCALE
    lat = pts[ab_pts, 2] * _COORD_SCALE
    crs = target if target is not None else _auto_crs(lon, lat)
    tr = Transformer.from_crs(WGS84, crs, always_xy=True)
    node_xy = np.column_stack(tr.transform(lon, lat))
    nodes, edges = _build_walk(
        inv[: len(seg)], inv[len(seg) :], seg_way, ways, node_ids, node_xy, crs
    )
    barriers = _build_barriers(pts, run_pts, run_id, way_of_pt, starts, counts, ways, col, tr, crs)
    sel = ways["xing"][way_of_pt[run_pts]] != ""
    lines, line_way, _ = _barrier_runs(pts, run_pts[sel], run_id[sel], way_of_pt, tr)
    foot = _Marks(ways["xing"][line_way], ways["osmid"][line_way], ways["name"][line_way], lines)
    crossings = _crossings_of(_file_marks(col, tr), foot, barriers, crs)
    return StreetNetwork(nodes, edges, barriers, crs, path.name, sha, crossings=crossings)


@dataclass(frozen=True)
class _Marks:
    """Crossing places or footbridge/underpass lines: kind, OSM id, name, geometry."""

    kind: np.ndarray
    osmid: np.ndarray
    name: np.ndarray
    geoms: np.ndarray

    @staticmethod
    def empty() -> _Marks:
        return _Marks(np.zeros(0, dtype="<U1"), np.zeros(0, dtype=np.int64),
                      np.zeros(0, dtype="<U1"), np.zeros(0, dtype=object))


def _file_marks(col: _Collected, tr: Transformer) -> _Marks:
    """Return the crossing nodes read from an OSM file, projected."""
    if not col.marks:
        return _Marks.empty()
    xy = np.array([m[1:3] for m in col.marks], dtype=np.int64)
    x, y = tr.transform(xy[:, 0] * _COORD_SCALE, xy[:, 1] * _COORD_SCALE)
    return _Marks(_str_array(m[3] for m in col.marks),
                  np.array([m[0] for m in col.marks], dtype=np.int64),
                  np.full(len(xy), "", dtype="<U1"), shapely.points(x, y))


def _crossings_of(nodes: _Marks, foot: _Marks, barriers: gpd.GeoDataFrame, crs: CRS
                  ) -> gpd.GeoDataFrame:
    """Build the crossings layer: crossing nodes, then footbridges and underpasses.

    A footbridge or underpass is placed where it passes over or under a barrier line (not a
    bridge or tunnel itself; a polygon barrier by its outline), at the passage nearest the
    middle of its line; one place per way. Both parts are ordered by OSM id.
    """
    solid = np.ones(len(barriers), dtype=bool)
    for flag in ("bridge", "tunnel"):
        if flag in barriers:
            solid &= ~barriers[flag].fillna(False).to_numpy(dtype=bool)
    bar = barriers.geometry.to_numpy()[solid]
    bar = np.where(shapely.get_type_id(bar) >= 3, shapely.boundary(bar), bar)
    at = np.zeros(0, dtype=object)
    owner = np.zeros(0, dtype=np.int64)
    if len(bar) and len(foot.geoms):
        l_i, b_i = shapely.STRtree(bar).query(foot.geoms, predicate="intersects")
        parts, which = shapely.get_parts(shapely.intersection(foot.geoms[l_i], bar[b_i]),
                                         return_index=True)
        point = shapely.get_type_id(parts) == 0  # a passage, not a stretch along the line
        at, owner = parts[point], l_i[which[point]]
    mid = shapely.line_interpolate_point(foot.geoms[owner], 0.5, normalized=True)
    order = np.lexsort((np.round(shapely.distance(at, mid), 3), foot.osmid[owner]))
    keep = order[np.unique(foot.osmid[owner][order], return_index=True)[1]]
    n_order = np.argsort(nodes.osmid, kind="stable")
    return _crossings_frame(
        {"kind": np.concatenate([nodes.kind[n_order], foot.kind[owner[keep]]]),
         "osmid": np.concatenate([nodes.osmid[n_order], foot.osmid[owner[keep]]]),
         "name": np.concatenate([nodes.name[n_order], foot.name[owner[keep]]])},
        np.concatenate([nodes.geoms[n_order], at[keep]]), crs)


def _valid_runs(pts: np.ndarray, way_of_pt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Split ways into runs of consecutive present nodes.

    Returns the indices (into ``pts``) of the points kept, in order, and their run id. Consecutive
    duplicate node references are dropped; runs shorter than two points are dropped.
    """
    n = len(pts)
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    same_way = np.zeros(n, dtype=bool)
    same_way[1:] = way_of_pt[1:] == way_of_pt[:-1]
    dup = np.zeros(n, dtype=bool)
    dup[1:] = same_way[1:] & (pts[1:, 0] == pts[:-1, 0])
    keep = np.flatnonzero(~dup)
    valid = pts[keep, 1] != _UNDEFINED_COORD
    sw = same_way[keep]
    start = np.ones(len(keep), dtype=bool)
    start[1:] = ~sw[1:] | ~valid[:-1]
    run = np.cumsum(start) - 1
    keep, run = keep[valid], run[valid]
    sizes = np.bincount(run)
    ok = sizes[run] >= 2
    return keep[ok], run[ok]


def _build_barriers(
    pts: np.ndarray,
    run_pts: np.ndarray,
    run_id: np.ndarray,
    way_of_pt: np.ndarray,
    starts: np.ndarray,
    counts: np.ndarray,
    ways: Mapping[str, np.ndarray],
    col: _Collected,
    tr: Transformer,
    crs: CRS,
) -> gpd.GeoDataFrame:
    """Barrier LineStrings (clipped runs), Polygons (closed complete ways, relation areas)."""
    is_bar = ways["kind"] != ""
    # complete closed water-area ways become polygons; clipped ones stay line runs
    n_pts = len(pts)
    last = np.clip(starts + counts - 1, 0, max(n_pts - 1, 0))
    closed = (
        (pts[np.clip(starts, 0, max(n_pts - 1, 0)), 0] == pts[last, 0])
        if n_pts
        else np.zeros(len(starts), dtype=bool)
    )
    n_missing = np.bincount(way_of_pt[pts[:, 1] == _UNDEFINED_COORD], minlength=len(starts))
    is_poly = is_bar & ways["area_like"] & closed & (counts >= 4) & (n_missing == 0)

    rw = way_of_pt[run_pts]
    line_mask = is_bar[rw] & ~is_poly[rw]
    lines, line_way, line_pos = _barrier_runs(
        pts, run_pts[line_mask], run_id[line_mask], way_of_pt, tr
    )
    pw = np.flatnonzero(is_poly)
    polys = _closed_way_polygons(pts, starts[pw], counts[pw], tr)
    rows_geom: list[np.ndarray] = [lines, polys]

    kind = [ways["kind"][line_way], ways["kind"][pw]]
    subtype = [ways["subtype"][line_way], ways["subtype"][pw]]
    osmid = [ways["osmid"][line_way], ways["osmid"][pw]]
    name = [ways["name"][line_way], ways["name"][pw]]
    bridge = [ways["bridge"][line_way], ways["bridge"][pw]]
    tunnel = [ways["tunnel"][line_way], ways["tunnel"][pw]]
    pos = [line_pos, starts[pw]]
    a_geoms, a_rows = _relation_polygons(col, tr)
    if a_rows:
        rows_geom.append(np.array(a_geoms, dtype=object))
        osmid.append(np.array([r[0] for r in a_rows], dtype=np.int64))
        kind.append(_str_array(r[1] for r in a_rows))
        subtype.append(_str_array(r[2] for r in a_rows))
        name.append(_str_array(r[3] for r in a_rows))
        bridge.append(np.zeros(len(a_rows), dtype=bool))
        tunnel.append(np.zeros(len(a_rows), dtype=bool))
        # relations come after ways: order them after, by id then part
        pos.append(np.arange(len(a_rows), dtype=np.int64) + len(pts))
    cat = {
        "kind": _str_array(np.concatenate(kind)),
        "subtype": _str_array(np.concatenate(subtype)),
        "osmid": np.concatenate(osmid).astype(np.int64),
        "name": _str_array(np.concatenate(name)),
        "bridge": np.concatenate(bridge).astype(bool),
        "tunnel": np.concatenate(tunnel).astype(bool),
    }
    geom = np.concatenate([np.asarray(g, dtype=object) for g in rows_geom])
    order = np.lexsort((np.concatenate(pos), cat["osmid"], cat["kind"]))
    return _barriers_frame({k: a[order] for k, a in cat.items()}, geom[order], crs)


def _barrier_runs(
    pts: np.ndarray, l_pts: np.ndarray, l_run: np.ndarray, way_of_pt: np.ndarray, tr: Transformer
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build one projected LineString per run of barrier points; return their ways and starts."""
    lx, ly = tr.transform(pts[l_pts, 1] * _COORD_SCALE, pts[l_pts, 2] * _COORD_SCALE)
    if not len(l_pts):
        empty = np.zeros(0, dtype=np.int64)
        return np.zeros(0, dtype=object), empty, empty.copy()
    brk = np.flatnonzero(np.diff(l_run)) + 1
    offsets = np.concatenate([[0], brk, [len(l_pts)]]).astype(np.int64)
    lines = shapely.from_ragged_array(
        shapely.GeometryType.LINESTRING, np.column_stack([lx, ly]), (offsets,)
    )
    return lines, way_of_pt[l_pts[offsets[:-1]]], l_pts[offsets[:-1]]


def _closed_way_polygons(
    pts: np.ndarray, starts: np.ndarray, counts: np.ndarray, tr: Transformer
) -> np.ndarray:
    """Build the projected Polygons of complete closed water ways."""
    if not len(starts):
        return np.zeros(0, dtype=object)
    idx = np.concatenate([np.arange(s, s + c) for s, c in zip(starts, counts, strict=True)])
    px, py = tr.transform(pts[idx, 1] * _COORD_SCALE, pts[idx, 2] * _COORD_SCALE)
    ring_off = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return shapely.from_ragged_array(
        shapely.GeometryType.POLYGON,
        np.column_stack([px, py]),
        (ring_off, np.arange(len(starts) + 1, dtype=np.int64)),
    )


def _relation_polygons(
    col: _Collected, tr: Transformer
) -> tuple[list[shapely.Polygon], list[tuple[int, str, str, str]]]:
    """Project multipolygon relation areas: one Polygon (and one row of tags) per part."""
    a_geoms, a_rows = [], []
    for rel_id, a_kind, a_sub, a_name, parts in col.areas:
        for rings in parts:
            projected = []
            for ring in rings:
                rx, ry = tr.transform(ring[:, 0] * _COORD_SCALE, ring[:, 1] * _COORD_SCALE)
                projected.append(np.column_stack([rx, ry]))
            a_geoms.append(shapely.Polygon(projected[0], projected[1:]))
            a_rows.append((rel_id, a_kind, a_sub, a_name))
    return a_geoms, a_rows


# --------------------------------------------------------------------------------------------
# simplification (numpy)
# --------------------------------------------------------------------------------------------
def _build_walk(
    seg_a: np.ndarray,
    seg_b: np.ndarray,
    seg_way: np.ndarray,
    ways: Mapping[str, np.ndarray],
    node_ids: np.ndarray,
    node_xy: np.ndarray,
    crs: CRS,
    *,
    split_on_attrs: bool = True,
) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Simplify straight segments into graph edges and return the node and edge frames.

    Parameters
    ----------
    seg_a, seg_b
        Node positions (into ``node_ids``) of each segment's ends, in file order.
    seg_way
        Row of each segment's way in ``ways``.
    ways
        Per-way arrays ``osmid``, ``highway``, ``name``, ``sidewalk``, ``bridge``, ``tunnel``.
    node_ids, node_xy
        Sorted node ids and their metric coordinates.
    crs
        CRS of ``node_xy``.
    split_on_attrs
        Also cut chains where ``highway`` or ``name`` changes (True in knockin_geo; False gives
        osmnx's default simplification).
    """
    keep = seg_a != seg_b
    seg_a, seg_b, seg_way = seg_a[keep], seg_b[keep], seg_way[keep]
    # segment order = (way id, position in way): a chain's first segment is on its lowest way id
    order = np.lexsort((np.arange(len(seg_a)), ways["osmid"][seg_way]))
    seg_a, seg_b, seg_way = seg_a[order], seg_b[order], seg_way[order]
    chains = _simplify_chains(
        seg_a, seg_b, _attr_codes(ways, seg_way) if split_on_attrs else None, node_ids
    )
    he_sorted, edge_off, edge_minseg = chains
    n_edges = len(edge_off) - 1
    seg_len = np.hypot(*(node_xy[seg_a] - node_xy[seg_b]).T)
    he_seg = he_sorted >> 1
    he_src = np.where(he_sorted & 1, seg_b[he_seg], seg_a[he_seg])
    he_dst = np.where(he_sorted & 1, seg_a[he_seg], seg_b[he_seg])
    first_he = edge_off[:-1]
    last_he = edge_off[1:] - 1
    u_idx = he_src[first_he]
    v_idx = he_dst[last_he]
    # polyline points: src of the first half-edge, then dst of every half-edge
    n_pts = len(he_sorted) + n_edges
    pt_node = np.empty(n_pts, dtype=np.int64)
    start_pos = first_he + np.arange(n_edges)
    is_start = np.zeros(n_pts, dtype=bool)
    is_start[start_pos] = True
    pt_node[start_pos] = u_idx
    pt_node[~is_start] = he_dst
    geom = shapely.from_ragged_array(
        shapely.GeometryType.LINESTRING,
        node_xy[pt_node],
        (edge_off + np.arange(n_edges + 1),),
    )
    length = np.add.reduceat(seg_len[he_seg], first_he) if n_edges else np.zeros(0)
    way = seg_way[edge_minseg]
    attrs = {k: ways[k][way] for k in (*_EDGE_STR_COLS, *_EDGE_BOOL_COLS)}
    edges = _edges_frame(
        node_ids[u_idx], node_ids[v_idx], ways["osmid"][way], attrs, length, geom, crs
    )
    used = np.unique(np.concatenate([u_idx, v_idx]))
    nodes = _nodes_frame(node_ids[used], node_xy[used], crs)
    return nodes, edges


def _attr_codes(ways: Mapping[str, np.ndarray], seg_way: np.ndarray) -> np.ndarray:
    """Integer code per segment of its way's (highway, name) pair."""
    pair = np.char.add(np.char.add(ways["highway"].astype(str), "\x1f"), ways["name"].astype(str))
    _, code = np.unique(pair, return_inverse=True)
    return code.astype(np.int64)[seg_way]


def _simplify_chains(
    seg_a: np.ndarray, seg_b: np.ndarray, attr: np.ndarray | None, node_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Group segments into simplified edges, vectorised with list ranking.

    Each segment ``s`` has two half-edges ``2s`` (a->b) and ``2s+1`` (b->a). At a non-endpoint
    node the half-edge arriving on one segment continues on the other; pointer jumping gives
    every half-edge its chain head and rank. Of the two traversals of a chain, the one running
    its first (lowest index) segment forwards is kept.

    Returns
    -------
    he_sorted
        Kept half-edges, grouped by edge, in path order.
    edge_off
        Offsets of each edge's half-edges in ``he_sorted`` (length ``n_edges + 1``).
    edge_minseg
        Lowest segment index of each edge (file order; the edge's attributes come from it).
    """
    n = len(node_ids)
    s_count = len(seg_a)
    deg = np.bincount(seg_a, minlength=n) + np.bincount(seg_b, minlength=n)
    lo, hi = np.minimum(seg_a, seg_b), np.maximum(seg_a, seg_b)
    pair = np.unique(lo * n + hi)
    nbrs = np.bincount(pair // n, minlength=n) + np.bincount(pair % n, minlength=n)
    endpoint = (deg != 2) | (nbrs != 2)
    if attr is not None:
        both = np.concatenate([seg_a, seg_b])
        codes = np.concatenate([attr, attr])
        amin = np.full(n, np.iinfo(np.int64).max)
        amax = np.full(n, -1)
        np.minimum.at(amin, both, codes)
        np.maximum.at(amax, both, codes)
        endpoint |= amin != amax
    # a component without any endpoint is a pure cycle: its smallest node id becomes one
    adj = sp.coo_array((np.ones(s_count, dtype=np.int8), (seg_a, seg_b)), shape=(n, n)).tocsr()
    n_comp, comp = connected_components(adj, directed=False)
    has_end = np.bincount(comp, weights=endpoint.astype(float), minlength=n_comp) > 0
    if not has_end.all():
        first_node = np.full(n_comp, n, dtype=np.int64)
        np.minimum.at(first_node, comp, np.arange(n, dtype=np.int64))  # ids sorted: min id
        endpoint[first_node[~has_end]] = True

    h_count = 2 * s_count
    src = np.empty(h_count, dtype=np.int64)
    src[0::2], src[1::2] = seg_a, seg_b
    nxt = np.full(h_count, -1, dtype=np.int64)
    order = np.argsort(src, kind="stable")
    inner = order[~endpoint[src[order]]].reshape(-1, 2)  # the two half-edges leaving each node
    nxt[inner[:, 0] ^ 1] = inner[:, 1]
    nxt[inner[:, 1] ^ 1] = inner[:, 0]
    has_next = nxt >= 0
    prev = np.full(h_count, -1, dtype=np.int64)
    prev[nxt[has_next]] = np.flatnonzero(has_next)
    # pointer jumping towards the chain head (prev == -1 at heads)
    ptr = np.where(prev >= 0, prev, np.arange(h_count))
    rank = (prev >= 0).astype(np.int64)
    while True:
        nptr = ptr[ptr]
        if np.array_equal(nptr, ptr):
            break
        rank = rank + rank[ptr] * (ptr != nptr)
        ptr = nptr
    head = ptr
    seg_of = np.arange(h_count) >> 1
    minseg = np.full(h_count, s_count, dtype=np.int64)
    np.minimum.at(minseg, head, seg_of)
    hm = minseg[head]
    forward = np.zeros(h_count, dtype=bool)
    at_min = seg_of == hm
    forward[head[at_min]] = (np.flatnonzero(at_min) & 1) == 0
    kept = np.flatnonzero(forward[head])
    sort = np.lexsort((rank[kept], hm[kept]))
    he_sorted = kept[sort]
    edge_key = hm[he_sorted]
    brk = np.flatnonzero(np.diff(edge_key)) + 1
    edge_off = np.concatenate([[0], brk, [len(he_sorted)]]).astype(np.int64)
    edge_minseg = edge_key[edge_off[:-1]]
    return he_sorted, edge_off, edge_minseg


# --------------------------------------------------------------------------------------------
# frames
# --------------------------------------------------------------------------------------------
def _str_array(values: Iterable[Any]) -> np.ndarray:
    """Return a numpy unicode array (the one representation of string columns here)."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values), dtype=str)
    return arr if arr.size else np.zeros(0, dtype="<U1")


def _nodes_frame(node_ids: np.ndarray, node_xy: np.ndarray, crs: CRS) -> gpd.GeoDataFrame:
    """Build the nodes frame."""
    x = np.ascontiguousarray(node_xy[:, 0], dtype=float)
    y = np.ascontiguousarray(node_xy[:, 1], dtype=float)
    index = pd.Index(np.asarray(node_ids, dtype=np.int64), name="node")
    return gpd.GeoDataFrame(
        {"x": x, "y": y},
        geometry=gpd.GeoSeries(shapely.points(x, y), index=index, crs=crs),
        index=index,
        crs=crs,
    )


def _edges_frame(
    u: np.ndarray,
    v: np.ndarray,
    osmid: np.ndarray,
    attrs: Mapping[str, np.ndarray],
    length: np.ndarray,
    geom: np.ndarray,
    crs: CRS,
) -> gpd.GeoDataFrame:
    """Build the edges frame with the documented column order and dtypes."""
    index = pd.RangeIndex(len(u), name="edge")
    data = {
        "u": np.asarray(u, dtype=np.int64),
        "v": np.asarray(v, dtype=np.int64),
        "osmid": np.asarray(osmid, dtype=np.int64),
        "highway": _str_array(attrs["highway"]),
        "name": _str_array(attrs["name"]),
        "length": np.asarray(length, dtype=float),
        "bridge": np.asarray(attrs["bridge"], dtype=bool),
        "tunnel": np.asarray(attrs["tunnel"], dtype=bool),
        "sidewalk": _str_array(attrs["sidewalk"]),
    }
    frame = pd.DataFrame(data, index=index)
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geom, index=index, crs=crs), crs=crs)


def _barriers_frame(cols: Mapping[str, np.ndarray], geom: np.ndarray, crs: CRS) -> gpd.GeoDataFrame:
    """Build the barriers frame."""
    index = pd.RangeIndex(len(geom), name="barrier")
    data = {
        "kind": _str_array(cols["kind"]),
        "subtype": _str_array(cols["subtype"]),
        "osmid": np.asarray(cols["osmid"], dtype=np.int64),
        "name": _str_array(cols["name"]),
        "bridge": np.asarray(cols["bridge"], dtype=bool),
        "tunnel": np.asarray(cols["tunnel"], dtype=bool),
    }
    frame = pd.DataFrame(data, index=index)
    return gpd.GeoDataFrame(
        frame,
        geometry=gpd.GeoSeries(np.asarray(geom, dtype=object), index=index, crs=crs),
        crs=crs,
    )


def _empty_barriers(crs: CRS) -> gpd.GeoDataFrame:
    """Return an empty barriers frame."""
    empty_s = np.zeros(0, dtype="<U1")
    return _barriers_frame(
        {
            "kind": empty_s,
            "subtype": empty_s,
            "osmid": np.zeros(0, dtype=np.int64),
            "name": empty_s,
            "bridge": np.zeros(0, dtype=bool),
            "tunnel": np.zeros(0, dtype=bool),
        },
        np.zeros(0, dtype=object),
        crs,
    )


def _crossings_frame(cols: Mapping[str, np.ndarray], geom: np.ndarray, crs: CRS
                     ) -> gpd.GeoDataFrame:
    """Build the crossings frame."""
    index = pd.RangeIndex(len(geom), name="crossing")
    data = {
        "kind": _str_array(cols["kind"]),
        "osmid": np.asarray(cols["osmid"], dtype=np.int64),
        "name": _str_array(cols["name"]),
    }
    return gpd.GeoDataFrame(
        pd.DataFrame(data, index=index),
        geometry=gpd.GeoSeries(np.asarray(geom, dtype=object), index=index, crs=crs),
        crs=crs,
    )


def _empty_crossings(crs: CRS) -> gpd.GeoDataFrame:
    """Return an empty crossings frame."""
    empty_s = np.zeros(0, dtype="<U1")
    return _crossings_frame({"kind": empty_s, "osmid": np.zeros(0, dtype=np.int64),
                             "name": empty_s}, np.zeros(0, dtype=object), crs)


def _relabel_by_size(raw: np.ndarray) -> np.ndarray:
    """Relabel component ids so that 0 is the largest (ties: first appearance first)."""
    if len(raw) == 0:
        return raw.astype(np.int64)
    sizes = np.bincount(raw)
    first = np.full(len(sizes), len(raw), dtype=np.int64)
    np.minimum.at(first, raw, np.arange(len(raw), dtype=np.int64))
    order = np.lexsort((first, -sizes))
    new = np.empty(len(sizes), dtype=np.int64)
    new[order] = np.arange(len(sizes))
    return new[raw]


# --------------------------------------------------------------------------------------------
# helpers: CRS, files, osmnx values
# --------------------------------------------------------------------------------------------
def _metric_crs(crs: Any) -> CRS:
    """Parse a user CRS and check that it is projected in metres."""
    try:
        out = CRS.from_user_input(crs)
    except Exception as exc:
        msg = f"unknown CRS {crs!r}: give an EPSG code of a projected CRS in metres"
        raise CRSError(msg) from exc
    units = {a.unit_name.lower() for a in out.axis_info}
    if not out.is_projected or not units <= {"metre", "meter", "m"}:
        msg = (
            f"CRS {out.to_string()} is not a projected CRS in metres: street lengths need one "
            "(for example the UTM zone, or leave crs unset to choose it automatically)"
        )
        raise CRSError(msg)
    return out


def _auto_crs(lon: np.ndarray, lat: np.ndarray) -> CRS:
    """UTM CRS of the centre of the bounding box of lon/lat points."""
    lon = np.asarray(lon, dtype=float)
    lat = np.asarray(lat, dtype=float)
    return utm_crs_for(float((lon.min() + lon.max()) / 2), float((lat.min() + lat.max()) / 2))


def _file_kind(path: Path) -> str:
    """Return ``pbf``, ``xml`` or ``graphml`` from the file name, else raise InputError."""
    name = path.name.lower()
    if name.endswith(_PBF_SUFFIXES):
        return "pbf"
    if name.endswith(_XML_SUFFIXES):
        return "xml"
    if name.endswith(_GRAPHML_SUFFIXES):
        return "graphml"
    msg = (
        f"unknown street file type: {path}. Use an OpenStreetMap extract (.osm.pbf, .osm, "
        ".osm.bz2, .osm.gz) or an osmnx .graphml file."
    )
    raise InputError(msg, path=str(path))


def file_sha256(path: Path) -> str:
    """Return the SHA-256 of a file's bytes (hex)."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(functools.partial(fh.read, 1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_sha256 = file_sha256


def _cache_key(sha: str, crs: CRS | None, profile: str = "canvass") -> str:
    """Cache key from file hash, loader version, target CRS and network profile."""
    crs_text = "auto" if crs is None else crs.to_wkt()
    text = f"{sha}\n{LOADER_VERSION}\n{crs_text}\n{profile}"
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def _load_graphml(path: Path, target: CRS | None, sha: str) -> StreetNetwork:
    """Load an osmnx GraphML file."""
    import osmnx as ox

    try:
        G = ox.load_graphml(path)
    except Exception as exc:
        msg = f"cannot read GraphML file {path}: {exc}. Save it again with osmnx.save_graphml."
        raise InputError(msg, path=str(path)) from exc
    try:
        return network_from_osmnx(G, crs=target, source=path.name, source_sha256=sha)
    except (KeyError, TypeError, ValueError) as exc:
        msg = f"GraphML file {path} is not an osmnx street graph: {exc}"
        raise InputError(msg, path=str(path)) from exc


def _to_undirected(G: nx.MultiDiGraph) -> nx.MultiGraph:
    """Convert an osmnx MultiDiGraph to a MultiGraph (reciprocal edges merged), G unchanged."""
    import osmnx as ox

    return ox.convert.to_undirected(G)


def _project_geom(geom: Any, tr: Transformer) -> Any:
    """Project shapely geometries (one or an array) with a pyproj transformer (always_xy)."""
    return shapely.transform(geom, lambda c: np.column_stack(tr.transform(c[:, 0], c[:, 1])))


def _first(value: Any) -> Any:
    """First element of a list-valued osmnx attribute, else the value."""
    if isinstance(value, list | tuple | set):
        value = sorted(value, key=str)[0] if isinstance(value, set) else value
        return value[0] if len(value) else None
    return value


def _first_str(value: Any) -> str:
    """Convert an osmnx attribute to str (``""`` for missing/NaN)."""
    value = _first(value)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return ""
    return str(value)


def _first_int(value: Any) -> int:
    """Convert an osmnx ``osmid`` to int (-1 if unusable)."""
    value = _first(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        return -1


def _truthy(value: Any) -> bool:
    """Graph attributes survive GraphML as strings: 'True' -> True."""
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _barriers_from_features(feats: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Barrier layer (EPSG:4326) from an ``osmnx.features_from_polygon`` frame."""
    rows: list[tuple[str, str, int, str, bool, bool]] = []
    geoms: list[BaseGeometry] = []
    if len(feats):

        def col(name: str) -> list[Any]:
            if name in feats.columns:
                return feats[name].tolist()
            return [None] * len(feats)

        ids = [int(i[-1]) if isinstance(i, tuple) else int(i) for i in feats.index]
        for osm_id, hw, rw, ww, nat, wat, nm, br, tu, g in zip(
            ids,
            col("highway"),
            col("railway"),
            col("waterway"),
            col("natural"),
            col("water"),
            col("name"),
            col("bridge"),
            col("tunnel"),
            feats.geometry,
            strict=True,
        ):
            cls = _barrier_class(
                _first_str(hw) or None,
                _first_str(rw) or None,
                _first_str(ww) or None,
                _first_str(nat) or None,
                _first_str(wat) or None,
            )
            if cls is None or g is None or g.is_empty:
                continue
            parts = list(g.geoms) if hasattr(g, "geoms") else [g]
            for part in parts:
                if part.geom_type not in ("LineString", "Polygon"):
                    continue
                rows.append(
                    (
                        *cls,
                        osm_id,
                        _first_str(nm),
                        _flag(_first_str(br) or None),
                        _flag(_first_str(tu) or None),
                    )
                )
                geoms.append(part)
    if not rows:
        return _empty_barriers(WGS84)
    cols = {
        "kind": _str_array(r[0] for r in rows),
        "subtype": _str_array(r[1] for r in rows),
        "osmid": np.array([r[2] for r in rows], dtype=np.int64),
        "name": _str_array(r[3] for r in rows),
        "bridge": np.array([r[4] for r in rows], dtype=bool),
        "tunnel": np.array([r[5] for r in rows], dtype=bool),
    }
    order = np.lexsort((cols["osmid"], cols["kind"]))
    return _barriers_frame(
        {k: a[order] for k, a in cols.items()}, np.array(geoms, dtype=object)[order], WGS84
    )


# --------------------------------------------------------------------------------------------
# cache (.npz without pickle)
# --------------------------------------------------------------------------------------------
def _write_cache(target: Path, net: StreetNetwork) -> None:
    """Write a network to ``target`` (.npz, no pickled objects), atomically."""
    e, b = net.edges, net.barriers
    e_type, e_coords, e_offs = shapely.to_ragged_array(e.geometry.array)
    if len(e) and e_type != shapely.GeometryType.LINESTRING:
        msg = "edge geometries must all be LineStrings"
        raise NetworkError(msg)
    bg = np.asarray(b.geometry.array, dtype=object)
    is_line = shapely.get_type_id(bg) == shapely.GeometryType.LINESTRING
    arrays: dict[str, np.ndarray] = {
        "meta": _str_array([LOADER_VERSION, net.crs.to_wkt(), net.source_sha256]),
        "node_id": net.nodes.index.to_numpy(dtype=np.int64),
        "node_x": net.nodes["x"].to_numpy(dtype=float),
        "node_y": net.nodes["y"].to_numpy(dtype=float),
        "e_coords": e_coords if len(e) else np.zeros((0, 2)),
        "e_offsets": e_offs[0] if len(e) else np.zeros(1, dtype=np.int64),
        "b_is_line": is_line,
    }
    for col in ("u", "v", "osmid", "length", *_EDGE_BOOL_COLS):
        arrays[f"e_{col}"] = e[col].to_numpy()
    for col in _EDGE_STR_COLS:
        arrays[f"e_{col}"] = _str_array(e[col].to_numpy(dtype=str))
    for col in ("osmid", "bridge", "tunnel"):
        arrays[f"b_{col}"] = b[col].to_numpy()
    for col in _BARRIER_STR_COLS:
        arrays[f"b_{col}"] = _str_array(b[col].to_numpy(dtype=str))
    c = net.crossings
    arrays["c_osmid"] = c["osmid"].to_numpy(dtype=np.int64)
    arrays["c_xy"] = shapely.get_coordinates(c.geometry.to_numpy()).reshape(-1, 2)
    for col in _CROSSING_STR_COLS:
        arrays[f"c_{col}"] = _str_array(c[col].to_numpy(dtype=str))
    for tag, mask, gtype in (
        ("l", is_line, shapely.GeometryType.LINESTRING),
        ("p", ~is_line, shapely.GeometryType.POLYGON),
    ):
        if mask.any():
            _, coords, offs = shapely.to_ragged_array(bg[mask])
            arrays[f"b{tag}_coords"] = coords
            for k, o in enumerate(offs):
                arrays[f"b{tag}_off{k}"] = o
        else:
            arrays[f"b{tag}_coords"] = np.zeros((0, 2))
            for k in range(1 if gtype == shapely.GeometryType.LINESTRING else 2):
                arrays[f"b{tag}_off{k}"] = np.zeros(1, dtype=np.int64)
    with atomic_path(target) as tmp, tmp.open("wb") as fh:
        # numpy's stub types the keywords as its own flags; named arrays are what savez stores
        np.savez(fh, **arrays)  # type: ignore[arg-type]


def _read_cache(path: Path, *, source: str, sha: str) -> StreetNetwork:
    """Read a network written by :func:`_write_cache` (raises on any inconsistency)."""
    with np.load(path, allow_pickle=False) as z:
        meta = z["meta"].tolist()
        if meta[0] != LOADER_VERSION or meta[2] != sha:
            msg = f"cache {path.name} is for another file or loader version"
            raise ValueError(msg)
        crs = CRS.from_wkt(meta[1])
        node_xy = np.column_stack([z["node_x"], z["node_y"]])
        nodes = _nodes_frame(z["node_id"], node_xy, crs)
        e_geom = shapely.from_ragged_array(
            shapely.GeometryType.LINESTRING, z["e_coords"], (z["e_offsets"],)
        )
        edges = _edges_frame(
            z["e_u"],
            z["e_v"],
            z["e_osmid"],
            {c: z[f"e_{c}"] for c in (*_EDGE_STR_COLS, *_EDGE_BOOL_COLS)},
            z["e_length"],
            e_geom,
            crs,
        )
        is_line = z["b_is_line"]
        geom = np.empty(len(is_line), dtype=object)
        if is_line.any():
            geom[is_line] = shapely.from_ragged_array(
                shapely.GeometryType.LINESTRING, z["bl_coords"], (z["bl_off0"],)
            )
        if (~is_line).any():
            geom[~is_line] = shapely.from_ragged_array(
                shapely.GeometryType.POLYGON, z["bp_coords"], (z["bp_off0"], z["bp_off1"])
            )
        barriers = _barriers_frame(
            {c: z[f"b_{c}"] for c in ("kind", "subtype", "osmid", "name", "bridge", "tunnel")},
            geom,
            crs,
        )
        crossings = _crossings_frame(
            {c: z[f"c_{c}"] for c in ("kind", "osmid", "name")},
            shapely.points(z["c_xy"].reshape(-1, 2)), crs)
        if len(edges) != len(z["e_u"]) or len(barriers) != len(z["b_kind"]):
            msg = "inconsistent cache"
            raise ValueError(msg)
    return StreetNetwork(nodes, edges, barriers, crs, source, sha, from_cache=True,
                         crossings=crossings)
