"""Shared test helpers: small street networks, doors and precincts built in code.

The helpers are plain functions (import them with ``from conftest import make_network``) so that
test modules can build many variants of a scenario without fixture plumbing.

Coordinates are metres in EPSG:32630 (UTM 30N) around ``ORIGIN`` = (500000, 5000000): pass
*local* coordinates (e.g. ``(0, 0)``, ``(100, 0)``) and they are shifted by ``ORIGIN``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS

from knockin_geo.streets import StreetNetwork

#: Metric CRS of every network built here.
TEST_CRS = CRS.from_epsg(32630)
#: Local (0, 0) of the coordinates passed to the helpers.
ORIGIN = (500000.0, 5000000.0)


def _shift(xy: tuple[float, float]) -> tuple[float, float]:
    return (ORIGIN[0] + float(xy[0]), ORIGIN[1] + float(xy[1]))


def shift_geom(geom: shapely.Geometry) -> shapely.Geometry:
    """Move a geometry given in local coordinates to the test CRS (add ``ORIGIN``)."""
    return shapely.transform(geom, lambda c: c + np.asarray(ORIGIN))


def make_network(
    nodes: Mapping[int, tuple[float, float]],
    edges: Sequence[tuple[int, int, str] | tuple[int, int, str, str]],
    barriers: Iterable[tuple[str, str, shapely.Geometry]] = (),
    *,
    bridges: Iterable[int] = (),
    local: bool = True,
) -> StreetNetwork:
    """Build a :class:`StreetNetwork` following its documented contract exactly.

    Parameters
    ----------
    nodes
        ``{node id: (x, y)}`` in metres; local coordinates (shifted by ``ORIGIN``) unless
        ``local=False``.
    edges
        ``(u, v, highway)`` or ``(u, v, highway, name)``; each becomes a straight LineString from
        ``u`` to ``v``. ``osmid`` is the edge's position, ``length`` its geometry length.
    barriers
        ``(kind, subtype, geometry)``; geometries in the same coordinates as ``nodes``.
    bridges
        Edge positions to flag ``bridge=True`` (e.g. a footbridge over a river).
    local
        Whether coordinates are local (shifted by ``ORIGIN``) or already in EPSG:32630.
    """
    shift = _shift if local else (lambda xy: (float(xy[0]), float(xy[1])))
    ids = np.array(sorted(nodes), dtype=np.int64)
    xy = np.array([shift(nodes[int(i)]) for i in ids], dtype=float).reshape(-1, 2)
    node_index = pd.Index(ids, name="node")
    nodes_gdf = gpd.GeoDataFrame(
        {"x": xy[:, 0], "y": xy[:, 1]},
        geometry=gpd.GeoSeries(shapely.points(xy[:, 0], xy[:, 1]), index=node_index,
                               crs=TEST_CRS),
        index=node_index,
        crs=TEST_CRS,
    )

    pos = {int(i): k for k, i in enumerate(ids)}
    bridge_set = {int(b) for b in bridges}
    u = np.array([int(e[0]) for e in edges], dtype=np.int64)
    v = np.array([int(e[1]) for e in edges], dtype=np.int64)
    lines = np.array(
        [shapely.LineString([xy[pos[int(a)]], xy[pos[int(b)]]]) for a, b in zip(u, v, strict=True)],
        dtype=object,
    )
    edge_index = pd.RangeIndex(len(edges), name="edge")
    edges_gdf = gpd.GeoDataFrame(
        pd.DataFrame(
            {
                "u": u,
                "v": v,
                "osmid": np.arange(len(edges), dtype=np.int64),
                "highway": _strs([e[2] for e in edges]),
                "name": _strs([e[3] if len(e) > 3 else "" for e in edges]),
                "length": shapely.length(lines).astype(float) if len(lines) else np.zeros(0),
                "bridge": np.array([i in bridge_set for i in range(len(edges))], dtype=bool),
                "tunnel": np.zeros(len(edges), dtype=bool),
                "sidewalk": _strs([""] * len(edges)),
            },
            index=edge_index,
        ),
        geometry=gpd.GeoSeries(lines, index=edge_index, crs=TEST_CRS),
        crs=TEST_CRS,
    )

    bars = list(barriers)
    bar_geoms = np.array(
        [shift_geom(g) if local else g for _, _, g in bars], dtype=object
    ).reshape(-1)
    bar_index = pd.RangeIndex(len(bars), name="barrier")
    barriers_gdf = gpd.GeoDataFrame(
        pd.DataFrame(
            {
                "kind": _strs([b[0] for b in bars]),
                "subtype": _strs([b[1] for b in bars]),
                "osmid": np.arange(1, len(bars) + 1, dtype=np.int64) + 10_000,
                "name": _strs([""] * len(bars)),
                "bridge": np.zeros(len(bars), dtype=bool),
                "tunnel": np.zeros(len(bars), dtype=bool),
            },
            index=bar_index,
        ),
        geometry=gpd.GeoSeries(bar_geoms, index=bar_index, crs=TEST_CRS),
        crs=TEST_CRS,
    )
    return StreetNetwork(
        nodes=nodes_gdf,
        edges=edges_gdf,
        barriers=barriers_gdf,
        crs=TEST_CRS,
        source="built in tests/conftest.py",
        source_sha256="",
    )


def _strs(values: list[str]) -> np.ndarray:
    """Numpy unicode array, as the loader stores string columns."""
    arr = np.asarray(values, dtype=str)
    return arr if arr.size else np.zeros(0, dtype="<U1")


def doors_along(
    network: StreetNetwork,
    edge_index: int,
    n: int,
    side: str = "left",
    offset_m: float = 8.0,
    precinct_id: str | None = None,
    start_id: int = 0,
    *,
    households: int = 1,
) -> gpd.GeoDataFrame:
    """Place ``n`` doors evenly along an edge, ``offset_m`` from the street.

    Doors sit at ``(i + 0.5) / n`` of the edge's length, on the ``left`` or ``right`` of the
    edge looking from ``u`` to ``v``; ``side="both"`` puts ``n`` doors on *each* side (2n rows,
    left ones first). House numbers are odd on the left (1, 3, ...), even on the right (2, 4,
    ...). The index ``address_id`` is ``f"a{start_id + i:05d}"``.
    """
    if side not in {"left", "right", "both"}:
        msg = f"side must be left, right or both, got {side!r}"
        raise ValueError(msg)
    line = network.edges.geometry.iloc[edge_index]
    street = str(network.edges["name"].iloc[edge_index]) or f"Street {edge_index}"
    (x0, y0), (x1, y1) = np.asarray(line.coords)[[0, -1]]
    length = float(np.hypot(x1 - x0, y1 - y0))
    ux, uy = (x1 - x0) / length, (y1 - y0) / length
    nx_, ny_ = -uy, ux  # left normal
    frac = (np.arange(n) + 0.5) / n
    xs, ys, numbers = [], [], []
    for s in (["left", "right"] if side == "both" else [side]):
        sign = 1.0 if s == "left" else -1.0
        xs.extend(x0 + frac * (x1 - x0) + sign * offset_m * nx_)
        ys.extend(y0 + frac * (y1 - y0) + sign * offset_m * ny_)
        first = 1 if s == "left" else 2
        numbers.extend(str(first + 2 * i) for i in range(n))
    m = len(xs)
    index = pd.Index([f"a{start_id + i:05d}" for i in range(m)], name="address_id")
    data: dict[str, object] = {
        "housenumber": pd.array(numbers, dtype="string"),
        "street": pd.array([street] * m, dtype="string"),
        "unit": pd.array([""] * m, dtype="string"),
        "households": np.full(m, households, dtype=np.int64),
        "source_row": np.arange(start_id + 1, start_id + m + 1, dtype=np.int64),
        "status": pd.array(["ok"] * m, dtype="string"),
    }
    if precinct_id is not None:
        data["precinct_id"] = pd.array([precinct_id] * m, dtype="string")
    return gpd.GeoDataFrame(
        pd.DataFrame(data, index=index),
        geometry=gpd.GeoSeries(shapely.points(np.asarray(xs), np.asarray(ys)), index=index,
                               crs=TEST_CRS),
        crs=TEST_CRS,
    )


def concat_doors(frames: Iterable[gpd.GeoDataFrame]) -> gpd.GeoDataFrame:
    """Concatenate door frames (ids must already be distinct)."""
    frames = list(frames)
    out = gpd.GeoDataFrame(pd.concat(frames), crs=TEST_CRS)
    if not out.index.is_unique:
        msg = "door ids collide: give each doors_along call its own start_id"
        raise ValueError(msg)
    return out


def precinct_box(
    pid: str, minx: float, miny: float, maxx: float, maxy: float, *, local: bool = True
) -> gpd.GeoDataFrame:
    """A one-row precincts frame (index ``precinct_id``) holding a rectangle."""
    box = shapely.box(minx, miny, maxx, maxy)
    geom = shift_geom(box) if local else box
    index = pd.Index([pid], dtype="string", name="precinct_id")
    return gpd.GeoDataFrame(
        {"name": pd.array([f"Precinct {pid}"], dtype="string")},
        geometry=gpd.GeoSeries([geom], index=index, crs=TEST_CRS),
        index=index,
        crs=TEST_CRS,
    )


# ----------------------------------------------------------------------------------------------
# headless Chromium (Debian's package, driven by Playwright), offline
# ----------------------------------------------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROME_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="session")
def browser():
    """A headless Chromium; skipped without one locally, a failure in CI."""
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run must apt-get install chromium")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    with playwright.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROME_ARGS)
        yield b
        b.close()


def open_offline(browser, path: Path, width: int = 1300, height: int = 900, **ctx):
    """Open a local page with every network request blocked (and recorded).

    Returns ``(context, page, errors, requests)``: console errors and uncaught exceptions land
    in ``errors``, blocked network requests in ``requests``.
    """
    context = browser.new_context(viewport={"width": width, "height": height}, **ctx)
    requests: list[str] = []

    def block(route) -> None:
        requests.append(route.request.url)
        route.abort()

    context.route("**/*", lambda route: route.continue_()
                  if route.request.url.startswith("file:") else block(route))
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(300)
    return context, page, errors, requests


#: Screenshots for a person to look at; with KNOCKIN_DOCS_IMG=1 the guide's pictures in
#: docs/img/ are refreshed too (64-colour PNG, small enough to commit).
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
DOCS_IMG = Path(__file__).resolve().parents[1] / "docs" / "img"


def screenshot(page, name: str) -> Path:
    """Save a screenshot of ``page`` as ``tests/artifacts/<name>`` (and ``docs/img/<name>``)."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    if os.environ.get("KNOCKIN_DOCS_IMG"):
        from PIL import Image

        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as img:
            small = img.convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
            small.save(DOCS_IMG / name, optimize=True)
    return path


# ----------------------------------------------------------------------------------------------
# real inputs to plant hostile values in
# ----------------------------------------------------------------------------------------------
NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"


def nantes_within(codes: Iterable[str]) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Return the Nantes precincts ``codes`` and the rows of the commune address file inside them.

    Both as read (precinct columns ``code_bv``, ``nom``; address rows as strings), for tests
    that rewrite their text columns.
    """
    pr = gpd.read_file(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    pr = pr[pr["code_bv"].isin(list(codes))].copy()
    a = pd.read_csv(NANTES / "addresses" / "adresses_nantes_commune_2013.csv", dtype=str)
    pts = gpd.points_from_xy(a["lon"].astype(float), a["lat"].astype(float), crs=4326)
    inside = gpd.GeoSeries(pts).within(pr.union_all()).to_numpy()
    return pr, a[inside].reset_index(drop=True)
