"""Tests of knockin_geo.streets: OSM loading, simplification, barriers, cache, errors."""

from __future__ import annotations

import bz2
import logging
from pathlib import Path

import networkx as nx
import numpy as np
import osmnx as ox
import pytest
import shapely
from geopandas.testing import assert_geodataframe_equal
from pyproj import CRS

import knockin_geo.streets as st
from knockin_geo._errors import CRSError, InputError, NetworkError
from knockin_geo.streets import StreetNetwork, load_network, network_from_osmnx

DATA = Path(__file__).resolve().parents[1] / "data"
NANTES_PBF = DATA / "nantes" / "osm" / "nantes_centre_2014-09.osm.pbf"
LIECHTENSTEIN_PBF = DATA / "liechtenstein" / "liechtenstein-2024-03-03.osm.pbf"


# ------------------------------------------------------------------------------------------------
# tiny OSM XML files written in code
# ------------------------------------------------------------------------------------------------
NODES: dict[int, tuple[float, float]] = {
    # W101 residential "Main Street" 1-2-3-4 (2 and 3 merged away)
    1: (9.500, 47.100),
    2: (9.501, 47.100),
    3: (9.502, 47.1005),
    4: (9.503, 47.100),
    # W102 footway 4-5-6 then W103 footway 6-7: same class and name -> one edge 4..7
    5: (9.503, 47.101),
    6: (9.503, 47.102),
    7: (9.503, 47.103),
    # W104 residential "Broken Lane" 1-10-11-[999 missing]-12-13: two runs
    10: (9.500, 47.099),
    11: (9.500, 47.098),
    12: (9.500, 47.096),
    13: (9.500, 47.095),
    # W105 footway foot=no 7-20 (excluded); W106 motorway 20-21-22 (barrier only)
    20: (9.504, 47.103),
    21: (9.505, 47.103),
    22: (9.506, 47.103),
    # W107 closed footway loop touching nothing
    30: (9.510, 47.100),
    31: (9.511, 47.100),
    32: (9.511, 47.101),
    33: (9.510, 47.101),
    # W108 railway=rail, W109 waterway=river, W110 natural=water + water=river (closed)
    40: (9.490, 47.090),
    41: (9.490, 47.100),
    42: (9.490, 47.110),
    50: (9.520, 47.090),
    51: (9.521, 47.100),
    52: (9.522, 47.110),
    60: (9.530, 47.100),
    61: (9.531, 47.100),
    62: (9.531, 47.101),
    63: (9.530, 47.101),
    # W111 tram (not a barrier), W112 cycleway 5-80 (excluded from walking)
    70: (9.540, 47.100),
    71: (9.541, 47.100),
    80: (9.504, 47.101),
    # W114 untagged closed way, outer ring of multipolygon relation R500 waterway=riverbank
    90: (9.550, 47.100),
    91: (9.552, 47.100),
    92: (9.552, 47.102),
    93: (9.550, 47.102),
}

WAYS: list[tuple[int, list[int], dict[str, str]]] = [
    (101, [1, 2, 3, 4], {"highway": "residential", "name": "Main Street"}),
    (102, [4, 5, 6], {"highway": "footway"}),
    (103, [6, 7], {"highway": "footway"}),
    (104, [1, 10, 11, 999, 12, 13], {"highway": "residential", "name": "Broken Lane"}),
    (105, [7, 20], {"highway": "footway", "foot": "no"}),
    (106, [20, 21, 22], {"highway": "motorway", "name": "A1"}),
    (107, [30, 31, 32, 33, 30], {"highway": "footway"}),
    (108, [40, 41, 42], {"railway": "rail", "name": "Line"}),
    (109, [50, 51, 52], {"waterway": "river", "name": "Test River"}),
    (110, [60, 61, 62, 63, 60], {"natural": "water", "water": "river"}),
    (111, [70, 71], {"railway": "tram"}),
    (112, [5, 80], {"highway": "cycleway"}),
    (114, [90, 91, 92, 93, 90], {}),
]

RELATIONS: list[tuple[int, list[tuple[int, str]], dict[str, str]]] = [
    (500, [(114, "outer")], {"type": "multipolygon", "waterway": "riverbank", "name": "Big"}),
]


def osm_xml(
    nodes: dict[int, tuple[float, float]],
    ways: list[tuple[int, list[int], dict[str, str]]],
    relations: list[tuple[int, list[tuple[int, str]], dict[str, str]]] = (),
) -> str:
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    used = {r for _, refs, _ in ways for r in refs}
    for nid, (lon, lat) in sorted(nodes.items()):
        if nid not in used:
            continue
        lines.append(f'  <node id="{nid}" version="1" lat="{lat}" lon="{lon}"/>')
    for wid, refs, tags in ways:
        lines.append(f'  <way id="{wid}" version="1">')
        lines += [f'    <nd ref="{r}"/>' for r in refs]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </way>")
    for rid, members, tags in relations:
        lines.append(f'  <relation id="{rid}" version="1">')
        lines += [f'    <member type="way" ref="{r}" role="{role}"/>' for r, role in members]
        lines += [f'    <tag k="{k}" v="{v}"/>' for k, v in tags.items()]
        lines.append("  </relation>")
    lines.append("</osm>")
    return "\n".join(lines) + "\n"


@pytest.fixture
def tiny_osm(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.osm"
    path.write_text(osm_xml(NODES, WAYS, RELATIONS), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def nantes() -> StreetNetwork:
    return load_network(NANTES_PBF, cache=False)


def check_invariants(net: StreetNetwork) -> None:
    nodes, edges = net.nodes, net.edges
    assert nodes.index.name == "node"
    assert nodes.index.is_unique and nodes.index.is_monotonic_increasing
    assert edges.index.name == "edge"
    assert list(edges.index) == list(range(len(edges)))
    assert list(edges.columns) == [
        "u", "v", "osmid", "highway", "name", "length", "bridge", "tunnel", "sidewalk", "geometry",
    ]  # fmt: skip
    for col in ("u", "v", "osmid"):
        assert edges[col].dtype == np.int64
    assert edges["bridge"].dtype == bool and edges["tunnel"].dtype == bool
    assert edges.crs == net.crs == nodes.crs == net.barriers.crs
    assert net.crs.is_projected
    # every edge: positive length equal to its geometry, ends on its nodes
    length = edges["length"].to_numpy()
    assert (length > 0).all()
    np.testing.assert_allclose(length, shapely.length(edges.geometry.array), rtol=1e-6)
    assert edges["u"].isin(nodes.index).all() and edges["v"].isin(nodes.index).all()
    geoms = edges.geometry.array
    start = shapely.get_coordinates(shapely.get_point(geoms, 0))
    end = shapely.get_coordinates(shapely.get_point(geoms, -1))
    xy = nodes[["x", "y"]]
    np.testing.assert_array_equal(start, xy.loc[edges["u"]].to_numpy())
    np.testing.assert_array_equal(end, xy.loc[edges["v"]].to_numpy())
    np.testing.assert_array_equal(shapely.get_x(nodes.geometry.array), nodes["x"].to_numpy())
    # every node is used by an edge
    used = np.union1d(edges["u"].to_numpy(), edges["v"].to_numpy())
    np.testing.assert_array_equal(used, nodes.index.to_numpy())
    assert set(net.barriers["kind"]) <= {"road", "railway", "waterway"}
    assert set(shapely.get_type_id(net.barriers.geometry.array)) <= {1, 3}


# ------------------------------------------------------------------------------------------------
# tiny XML: exact expectations
# ------------------------------------------------------------------------------------------------
def test_tiny_xml_exact_graph(tiny_osm: Path) -> None:
    net = load_network(tiny_osm, cache=False)
    check_invariants(net)
    assert net.crs == CRS.from_epsg(32632)
    assert net.nodes.index.tolist() == [1, 4, 7, 11, 12, 13, 30]
    got = list(
        zip(net.edges["u"], net.edges["v"], net.edges["osmid"], net.edges["highway"], strict=True)
    )
    assert got == [
        (1, 4, 101, "residential"),  # 2 and 3 merged; 1 is an endpoint (name changes there)
        (4, 7, 102, "footway"),  # class change at 4 not merged; W102+W103 merged at 6
        (1, 11, 104, "residential"),  # run before the missing node 999
        (12, 13, 104, "residential"),  # run after it: no edge across the gap
        (30, 30, 107, "footway"),  # pure cycle -> one loop edge at its smallest node
    ]
    assert net.edges["name"].tolist() == ["Main Street", "", "Broken Lane", "Broken Lane", ""]
    # the merged chain's geometry runs through all its nodes
    assert len(net.edges.geometry.iloc[0].coords) == 4
    assert len(net.edges.geometry.iloc[1].coords) == 4
    # excluded: foot=no footway, motorway, cycleway; nodes only on them are absent
    assert not net.edges["osmid"].isin([105, 106, 112]).any()
    assert 20 not in net.nodes.index and 80 not in net.nodes.index

    b = net.barriers
    assert list(zip(b["kind"], b["subtype"], b["osmid"], strict=True)) == [
        ("railway", "rail", 108),
        ("road", "motorway", 106),
        ("waterway", "river", 109),
        ("waterway", "river", 110),
        ("waterway", "riverbank", 500),  # assembled multipolygon relation
    ]
    assert b.geom_type.tolist() == ["LineString", "LineString", "LineString", "Polygon", "Polygon"]
    assert b["name"].tolist() == ["Line", "A1", "Test River", "", "Big"]
    assert b.geometry.iloc[4].area == pytest.approx(150 * 222, rel=0.05)

    s = net.summary()
    assert s["nodes"] == 7 and s["edges"] == 5
    assert s["components"] == 3
    assert s["largest_component_nodes"] == 4
    assert s["largest_component_share"] == pytest.approx(4 / 7)
    assert s["barriers"] == {"railway": 1, "road": 1, "waterway": 3}
    assert s["highway"] == {"residential": 3, "footway": 2}


def test_tiny_graph_views(tiny_osm: Path) -> None:
    net = load_network(tiny_osm, cache=False)
    mat, ids = net.csr()
    assert mat.shape == (7, 7)
    np.testing.assert_array_equal(ids, net.nodes.index.to_numpy())
    assert (mat != mat.T).nnz == 0
    i1, i4 = np.searchsorted(ids, [1, 4])
    assert mat[i1, i4] == pytest.approx(net.edges["length"].iloc[0])
    assert net.csr()[0] is mat  # cached
    labels = net.component_labels()
    assert labels.index.equals(net.nodes.index)
    assert labels.loc[[1, 4, 7, 11]].eq(0).all()
    assert labels.loc[12] == labels.loc[13] != labels.loc[30]

    G = net.to_networkx()
    assert isinstance(G, nx.MultiGraph) and not G.is_directed()
    assert G.number_of_nodes() == 7 and G.number_of_edges() == 5
    assert G.graph["crs"] == net.crs
    data = G.get_edge_data(1, 4)[0]
    assert data["osmid"] == 101 and data["highway"] == "residential"
    assert data["geometry"].equals(net.edges.geometry.iloc[0])

    other = net.to_crs("EPSG:3857")
    assert other.crs == CRS.from_epsg(3857)
    check_invariants(other)
    assert net.crs == CRS.from_epsg(32632)  # input untouched
    with pytest.raises(CRSError):
        net.to_crs("EPSG:4326")


def test_matches_osmnx_simplification(tmp_path: Path) -> None:
    """Without missing refs or pure cycles we equal osmnx's simplify_graph(edge_attrs_differ)."""
    ways = [w for w in WAYS if w[0] in (101, 102, 103)]
    ways.append((104, [1, 10, 11], {"highway": "residential", "name": "Broken Lane"}))
    ways.append((113, [11, 12, 13], {"highway": "residential", "name": "Broken Lane"}))
    path = tmp_path / "walk.osm"
    path.write_text(osm_xml(NODES, ways), encoding="utf-8")
    net = load_network(path, cache=False)

    raw = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
    ref = ox.convert.to_undirected(ox.simplify_graph(raw, edge_attrs_differ=["highway", "name"]))
    assert sorted(ref.nodes) == net.nodes.index.tolist() == [1, 4, 7, 13]
    assert sorted(tuple(sorted(e)) for e in ref.edges()) == sorted(
        tuple(sorted(e)) for e in zip(net.edges["u"], net.edges["v"], strict=True)
    )
    ref_km = sum(d["length"] for *_, d in ref.edges(data=True))
    assert net.edges["length"].sum() == pytest.approx(ref_km, rel=1e-3)  # UTM vs great circle

    # the unsimplified osmnx graph goes through the same simplifier
    from_raw = network_from_osmnx(raw)
    assert_geodataframe_equal(from_raw.nodes, net.nodes, check_less_precise=True)
    assert from_raw.edges[["u", "v", "osmid", "highway", "name"]].equals(
        net.edges[["u", "v", "osmid", "highway", "name"]]
    )

    # an osmnx-simplified MultiDiGraph is converted edge for edge (osmnx does not split at
    # highway/name changes: the whole network here is one path from 7 to 13)
    simplified = ox.graph_from_xml(path, bidirectional=True, simplify=True, retain_all=True)
    conv = network_from_osmnx(simplified)
    check_invariants(conv)
    assert conv.nodes.index.tolist() == [7, 13]
    assert len(conv.edges) == 1
    assert conv.edges["length"].sum() == pytest.approx(net.edges["length"].sum(), rel=1e-9)


def test_nantes_equals_osmnx_simplify_on_same_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """On the real clipped extract, our numpy chains equal osmnx.simplify_graph's."""
    captured: dict[str, tuple] = {}
    original = st._build_walk

    def spy(*args, **kwargs):
        captured["args"] = args
        return original(*args, **kwargs)

    monkeypatch.setattr(st, "_build_walk", spy)
    net = load_network(NANTES_PBF, cache=False)
    seg_a, seg_b, seg_way, ways, node_ids, node_xy, _ = captured["args"]
    G = nx.MultiDiGraph(crs="EPSG:4326")
    G.add_nodes_from((int(n), {"x": 0.0, "y": 0.0}) for n in node_ids)
    for a, b, w in zip(seg_a.tolist(), seg_b.tolist(), seg_way.tolist(), strict=True):
        attrs = {"highway": str(ways["highway"][w]), "name": str(ways["name"][w])}
        G.add_edge(int(node_ids[a]), int(node_ids[b]), **attrs)
        G.add_edge(int(node_ids[b]), int(node_ids[a]), **attrs)
    for n, (x, y) in zip(node_ids.tolist(), node_xy.tolist(), strict=True):
        G.nodes[n]["x"], G.nodes[n]["y"] = x, y
    ref = ox.simplify_graph(G, edge_attrs_differ=["highway", "name"])
    assert sorted(ref.nodes) == net.nodes.index.tolist()
    assert ref.number_of_edges() == 2 * len(net.edges)  # bidirectional


# ------------------------------------------------------------------------------------------------
# real files
# ------------------------------------------------------------------------------------------------
def test_nantes_clipped_pbf(nantes: StreetNetwork) -> None:
    check_invariants(nantes)
    assert len(nantes.nodes) > 2_000
    assert len(nantes.edges) > 3_000
    assert nantes.crs == CRS.from_epsg(32630)
    assert nantes.source == NANTES_PBF.name and len(nantes.source_sha256) == 64
    counts = nantes.barriers["kind"].value_counts()
    assert counts["road"] > 0 and counts["railway"] > 0 and counts["waterway"] > 0
    water = nantes.barriers[nantes.barriers["kind"] == "waterway"]
    # the Loire: its river lines are in the extract (the riverbank multipolygon is clipped)
    assert water["name"].str.contains("Loire").any()
    assert (water.geom_type == "Polygon").any()  # complete riverbank ways
    assert nantes.barriers["tunnel"].any() and nantes.barriers["bridge"].any()
    s = nantes.summary()
    assert s["largest_component_share"] > 0.9
    assert "tram" not in s["barrier_subtypes"].get("railway", {})


def test_liechtenstein_pbf() -> None:
    net = load_network(LIECHTENSTEIN_PBF, cache=False, profile="walk")
    check_invariants(net)
    s = net.summary()
    assert net.crs == CRS.from_epsg(32632)
    # fixed file -> fixed figures (osmnx-style simplification without the highway/name rule
    # gives 9,011 nodes / 11,506 edges; largest component 8,824 nodes)
    assert (s["nodes"], s["edges"]) == (9_852, 12_347)
    assert s["largest_component_nodes"] == 9_653
    assert s["barriers"]["road"] > 0 and s["barriers"]["railway"] > 0
    again = load_network(LIECHTENSTEIN_PBF, cache=False, profile="walk")
    assert_geodataframe_equal(net.edges, again.edges)
    assert_geodataframe_equal(net.nodes, again.nodes)
    assert_geodataframe_equal(net.barriers, again.barriers)


# ------------------------------------------------------------------------------------------------
# formats, cache, errors
# ------------------------------------------------------------------------------------------------
def test_bz2_and_gz_same_as_xml(tiny_osm: Path, tmp_path: Path) -> None:
    plain = load_network(tiny_osm, cache=False)
    packed = tmp_path / "tiny.osm.bz2"
    packed.write_bytes(bz2.compress(tiny_osm.read_bytes()))
    other = load_network(packed, cache=False)
    assert other.source == "tiny.osm.bz2"
    assert_geodataframe_equal(plain.edges, other.edges)
    assert_geodataframe_equal(plain.nodes, other.nodes)
    assert_geodataframe_equal(plain.barriers, other.barriers)


def test_graphml_round_trip(tiny_osm: Path, tmp_path: Path) -> None:
    net = load_network(LIECHTENSTEIN_PBF, cache=False)
    path = tmp_path / "li.graphml"
    ox.save_graphml(net.to_networkx(), path)
    back = load_network(path, cache=False)
    check_invariants(back)
    assert back.crs == net.crs
    assert len(back.nodes) == len(net.nodes) and len(back.edges) == len(net.edges)
    assert back.edges["length"].sum() == pytest.approx(net.edges["length"].sum(), rel=1e-3)
    assert back.barriers.empty
    assert sorted(back.edges["highway"].unique()) == sorted(net.edges["highway"].unique())


def test_cache_hit_equals_fresh(
    tiny_osm: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cdir = tmp_path / "cache"
    first = load_network(NANTES_PBF, cache_dir=cdir)
    assert not first.from_cache
    assert len(list(cdir.glob("*.npz"))) == 1
    with caplog.at_level(logging.INFO, logger="knockin_geo.streets"):
        second = load_network(NANTES_PBF, cache_dir=cdir)
    assert second.from_cache
    assert "cache hit" in caplog.text
    assert_geodataframe_equal(first.nodes, second.nodes)
    assert_geodataframe_equal(first.edges, second.edges)
    assert_geodataframe_equal(first.barriers, second.barriers)
    assert second.crs == first.crs and second.source_sha256 == first.source_sha256
    assert second.summary() == first.summary()
    # another CRS is another cache entry
    third = load_network(NANTES_PBF, cache_dir=cdir, crs="EPSG:2154")
    assert not third.from_cache and third.crs == CRS.from_epsg(2154)
    assert len(list(cdir.glob("*.npz"))) == 2


def test_corrupt_cache_is_rebuilt(
    tiny_osm: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cdir = tmp_path / "cache"
    fresh = load_network(tiny_osm, cache_dir=cdir)
    (cache_file,) = cdir.glob("*.npz")
    cache_file.write_bytes(b"garbage")
    with caplog.at_level(logging.WARNING, logger="knockin_geo.streets"):
        again = load_network(tiny_osm, cache_dir=cdir)
    assert not again.from_cache
    assert "corrupt" in caplog.text
    assert_geodataframe_equal(fresh.edges, again.edges)
    assert load_network(tiny_osm, cache_dir=cdir).from_cache  # rewritten


def test_cache_dir_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KNOCKIN_GEO_CACHE", str(tmp_path / "kg"))
    assert st.cache_dir() == tmp_path / "kg"
    monkeypatch.delenv("KNOCKIN_GEO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert st.cache_dir() == tmp_path / "xdg" / "knockin_geo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert st.cache_dir() == Path.home() / ".cache" / "knockin_geo"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.osm.pbf"
    with pytest.raises(InputError, match=r"nowhere\.osm\.pbf") as info:
        load_network(path)
    assert info.value.path == str(path)


@pytest.mark.parametrize(
    "content", [b"this is not a pbf\n" * 40, b"", "half"], ids=["garbage", "empty", "truncated"]
)
def test_corrupt_pbf(tmp_path: Path, content: bytes | str) -> None:
    if content == "half":
        data = LIECHTENSTEIN_PBF.read_bytes()
        content = data[: len(data) // 2]
    path = tmp_path / "bad.osm.pbf"
    path.write_bytes(content)
    with pytest.raises(InputError, match=r"bad\.osm\.pbf"):
        load_network(path, cache_dir=tmp_path / "cache")


def test_unknown_suffix(tmp_path: Path) -> None:
    path = tmp_path / "streets.shp"
    path.write_bytes(b"x")
    with pytest.raises(InputError, match="unknown street file type"):
        load_network(path)


def test_no_walkable_ways(tmp_path: Path) -> None:
    ways = [(1, [1, 2, 3, 4, 1], {"building": "yes"}), (2, [20, 21], {"highway": "motorway"})]
    path = tmp_path / "buildings.osm"
    path.write_text(osm_xml(NODES, ways), encoding="utf-8")
    with pytest.raises(NetworkError, match="no walkable street"):
        load_network(path, cache=False)


def test_bad_crs(tiny_osm: Path) -> None:
    with pytest.raises(CRSError):
        load_network(tiny_osm, crs="EPSG:4326", cache=False)


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        ({"highway": "footway"}, True),
        ({"highway": "motorway_link"}, False),
        ({"highway": "service", "service": "private"}, False),
        ({"highway": "service", "service": "driveway"}, True),
        ({"highway": "residential", "access": "private"}, False),
        ({"highway": "residential", "access": "destination"}, True),
        ({"highway": "footway", "foot": "no"}, False),
        ({"highway": "pedestrian", "area": "yes"}, False),
        ({"highway": "primary", "sidewalk": "separate"}, False),
        ({"highway": "primary", "sidewalk:left": "separate"}, False),
        ({"highway": "primary", "sidewalk": "both"}, True),
        ({"highway": "unknown"}, False),  # osmnx's "no" is a regex search: it matches "unknown"
        ({"highway": "corridor"}, True),
        ({"highway": "proposed"}, False),
    ],
)
def test_walk_filter_matches_osmnx(tags: dict[str, str], walkable: bool) -> None:
    assert st._is_walkable(tags, tags["highway"], "walk") is walkable


@pytest.mark.parametrize(
    ("tags", "walkable"),
    [
        # private ways that lead to doors
        ({"highway": "residential", "access": "private"}, True),
        ({"highway": "service", "service": "private"}, True),
        ({"highway": "service", "access": "private", "service": "driveway"}, True),
        ({"highway": "living_street", "access": "private"}, True),
        ({"highway": "footway", "access": "private"}, True),
        ({"highway": "tertiary", "access": "private", "foot": "yes"}, True),
        # private ways without doors, and what no one walks
        ({"highway": "service", "access": "private", "service": "parking_aisle"}, False),
        ({"highway": "service", "access": "private", "service": "drive-through"}, False),
        ({"highway": "tertiary", "access": "private"}, False),
        ({"highway": "residential", "access": "private", "foot": "no"}, False),
        ({"highway": "motorway", "access": "private", "foot": "yes"}, False),
        # everything the walk filter keeps is kept
        ({"highway": "service", "service": "parking_aisle"}, True),
        ({"highway": "residential", "access": "destination"}, True),
        ({"highway": "residential", "access": "customers"}, True),
        ({"highway": "primary", "sidewalk": "separate"}, False),
    ],
)
def test_canvass_profile_keeps_private_ways_to_doors(tags: dict[str, str], walkable: bool) -> None:
    assert st._is_walkable(tags, tags["highway"], "canvass") is walkable


def test_canvass_profile_on_a_file(tmp_path: Path) -> None:
    """A private close is walked; a private road inside an industrial site is not."""
    nodes = {**NODES, 100: (9.5005, 47.1010), 101: (9.5005, 47.1020),
             110: (9.5035, 47.0985), 111: (9.5045, 47.0985),
             120: (9.5030, 47.0980), 121: (9.5050, 47.0980), 122: (9.5050, 47.0990),
             123: (9.5030, 47.0990)}
    ways = [w for w in WAYS if w[0] in (101, 102, 103)]
    ways += [
        (201, [2, 100, 101], {"highway": "residential", "access": "private", "name": "Clos"}),
        (202, [4, 110, 111], {"highway": "service", "access": "private"}),
        (203, [120, 121, 122, 123, 120], {"landuse": "industrial"}),
    ]
    path = tmp_path / "private.osm"
    path.write_text(osm_xml(nodes, ways), encoding="utf-8")
    canvass = load_network(path, cache=False)
    walk = load_network(path, cache=False, profile="walk")
    assert 201 in set(canvass.edges["osmid"]) and 201 not in set(walk.edges["osmid"])
    assert 202 not in set(canvass.edges["osmid"])  # inside the industrial site
    assert set(walk.edges["osmid"]) <= set(canvass.edges["osmid"])
    with pytest.raises(InputError, match="--network-profile"):
        load_network(path, cache=False, profile="bike")


def test_cache_key_holds_the_profile(tmp_path: Path) -> None:
    path = tmp_path / "private.osm"
    ways = [*(w for w in WAYS if w[0] in (101, 102, 103)),
            (201, [1, 10, 11], {"highway": "residential", "access": "private"})]
    path.write_text(osm_xml(NODES, ways), encoding="utf-8")
    cdir = tmp_path / "cache"
    canvass = load_network(path, cache_dir=cdir)
    walk = load_network(path, cache_dir=cdir, profile="walk")
    assert not walk.from_cache  # not the canvass network from the cache
    assert len(walk.edges) < len(canvass.edges)
    assert load_network(path, cache_dir=cdir, profile="walk").from_cache
    assert len(list(cdir.glob("streets-*.npz"))) == 2


def test_nantes_canvass_profile_adds_private_ways_only() -> None:
    """On the real extract the canvass profile walks every street the walk profile walks."""
    walk = load_network(NANTES_PBF, cache=False, profile="walk")
    canvass = load_network(NANTES_PBF, cache=False)
    check_invariants(canvass)
    lines = shapely.union_all(canvass.edges.geometry.array)  # re-measured in shapely
    missing = shapely.difference(
        shapely.union_all(walk.edges.geometry.array), shapely.buffer(lines, 0.01)
    )
    assert missing.length < 1.0
    assert canvass.edges["length"].sum() > walk.edges["length"].sum()
    # fewer pieces: private closes joined to the streets they hang from
    assert canvass.summary()["components"] <= walk.summary()["components"]


def test_download_network_offline(tiny_osm: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """download_network with osmnx's downloads replaced by the same calls on a local XML."""
    calls: dict[str, dict] = {}

    def fake_graph(polygon, **kwargs):
        calls["graph"] = kwargs
        # osmnx builds raw graphs the same way from Overpass JSON and from XML; our missing
        # node 999 would make osmnx fail, so use a file without it
        ways = [w if w[0] != 104 else (104, [1, 10, 11], w[2]) for w in WAYS]
        path = tiny_osm.with_name("dl.osm")
        walk = [w for w in ways if w[0] in (101, 102, 103, 104, 107)]
        if "custom_filter" in kwargs:  # the canvass query also returns private ways
            walk += PRIVATE_WAYS
        path.write_text(osm_xml(NODES, walk), encoding="utf-8")
        return ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)

    def fake_features(polygon, tags):
        calls["features"] = tags
        return ox.features_from_xml(tiny_osm, tags=tags)

    monkeypatch.setattr(ox, "graph_from_polygon", fake_graph)
    monkeypatch.setattr(ox, "features_from_polygon", fake_features)
    net = st.download_network(shapely.box(9.4, 47.0, 9.6, 47.2), profile="walk")
    check_invariants(net)
    assert calls["graph"] == {"network_type": "walk", "retain_all": True, "simplify": False}
    assert net.source == "osmnx download"
    file_net = load_network(tiny_osm, cache=False)
    # same walking graph as the file loader, except the clipped run 12-13 (not in this file)
    expected = file_net.edges[file_net.edges["u"] != 12].reset_index(drop=True)
    expected.index.name = "edge"
    got = net.edges[["u", "v", "osmid", "highway", "name"]]
    assert got.equals(expected[["u", "v", "osmid", "highway", "name"]])
    kinds = sorted(zip(net.barriers["kind"], net.barriers["subtype"], strict=True))
    assert kinds == sorted(
        zip(file_net.barriers["kind"], file_net.barriers["subtype"], strict=True)
    )

    # canvass profile (the default): osmnx's query without its access rule, then our rules
    canvass = st.download_network(shapely.box(9.4, 47.0, 9.6, 47.2))
    check_invariants(canvass)
    assert "network_type" not in calls["graph"] and "private" not in calls["graph"]["custom_filter"]
    osmids = set(canvass.edges["osmid"])
    assert 201 in osmids and 202 not in osmids
    assert set(net.edges["osmid"]) <= osmids


#: A private close (kept by the canvass profile) and a private car-park aisle (not kept).
PRIVATE_WAYS = [
    (201, [12, 13], {"highway": "residential", "access": "private", "name": "Clos"}),
    (202, [30, 31], {"highway": "service", "access": "private", "service": "parking_aisle"}),
]


def test_streets_in_equals_plain_intersection(nantes: StreetNetwork) -> None:
    """The streets a map draws around a turf are exactly what shapely's intersection of every
    street with the area gives (streets wholly inside are kept as they are)."""
    lines = nantes.edges.geometry.to_numpy()
    x0, y0, x1, y1 = shapely.total_bounds(lines)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    area = shapely.buffer(shapely.box(cx - 300, cy - 200, cx + 200, cy + 300), 150.0)
    got = nantes.streets_in(area)
    meets = np.flatnonzero(shapely.intersects(lines, area))
    want = shapely.intersection(lines[meets], area)
    assert len(got) == len(meets) > 20
    assert bool(shapely.contains_properly(area, lines[meets]).any())
    assert not bool(shapely.contains_properly(area, lines[meets]).all())
    assert shapely.equals(got, want).all()
