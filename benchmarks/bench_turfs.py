"""Benchmark knockin_geo's turf cutter against off-the-shelf partitioners, and its scaling.

Data: Liechtenstein (``data/liechtenstein/``: the OSM address CSV and the 2024-03-03 PBF), no
precincts (one area), 80 doors per turf. The doors are snapped once exactly as
:func:`knockin_geo.plan.plan_turfs` does; every method then partitions the SAME usable snapped
doors into the SAME number of turfs ``k = round(n / 80)``.

Datasets
--------
full   all usable snapped doors (12,493 of 12,497; k = 156)
s2k    the 2,000 usable doors nearest the median door (median x, median y), k = 25, so that
       spopt can run at all (as in PERFORMANCE-ANCHORS.md section 4)

Methods (comparison)
--------------------
knockin_geo cut_turfs      ``cut_turfs`` alone, on the snapped doors (``TurfParams()`` defaults:
                           80 doors per turf, tolerance 10 %, seed 0)
knockin_geo plan_turfs     the whole in-memory pipeline: reprojection, barrier lines, snapping,
                           cut and quality report, with ``route=False`` when plan_turfs has that
                           option (routing is benchmarked elsewhere); time and RSS only, its
                           labels are checked to be identical to ``cut_turfs``
k-means-constrained        ``KMeansConstrained`` on projected x/y with ``n_init=1`` (it reproduces
                           the anchors' 0.4 s at 2k and 21-32 s at 12.5k; the library default
                           ``n_init=10`` is ~10x slower: ``--kmc-n-init``), ``max_iter=300``,
                           ``random_state=0``, size bounds
                           ``floor(lo * n/k)`` .. ``ceil(hi * n/k)`` with lo-hi = 0.8-1.2 (the
                           anchors' bounds) and 0.9-1.1 (our tolerance)
spopt Skater               ``spopt.region.Skater`` on x/y with ``floor = floor(0.8 * n/k)`` (the
                           anchors' most usable spopt method: RegionKMeansHeuristic was 8x slower
                           and badly unbalanced, MaxPHeuristic 18x slower and cannot fix k). Its
                           libpysal W is built from STREET ADJACENCY (see ``street_adjacency``):
                           doors on the same edge or on edges sharing a node; plus, because
                           door-free streets otherwise split the W into ~1,100 islands, the
                           chain-end doors of edges joined by door-free streets (clique, or a
                           Delaunay graph of those end doors when more than 20 meet); the few
                           remaining pieces (separate network components) are joined to the main
                           piece by their nearest door pair. Run in a subprocess with a time limit.
sklearn KMeans             ``KMeans(n_init="auto", random_state=0)`` on x/y: fast, unbalanced floor

Metrics
-------
time         median of up to ``--repeat`` runs in one fresh subprocess (a single run when the first
             takes more than 20 s); imports and data loading are excluded
k, sizes     turfs produced and their min-max doors
balance      max |size - n/k| / (n/k) with k the number of turfs produced
±10 %        share of turfs with |size - n/k| <= 10 % of n/k
connected    share of turfs with 1 piece by :func:`knockin_geo.metrics.turf_pieces`, and the mean
             pieces. For every method the doors frame of OUR cut (its ``edge``, ``offset_m``,
             ``side``, ``chain``) is reused with ``turf_id`` overwritten, so pieces are measured
             by the same rule
spanning     turfs that span a barrier by the independent rule (:mod:`knockin_geo.checks`: the
             hull of the turf's doors minus the barrier lines buffered by 3 m has 2+ parts
             holding doors)
PP           mean Polsby-Popper of the convex hull of each turf's doors (MultiPoint)
RSS          peak resident set size of the method's subprocess (``ru_maxrss``, imports and data
             included); ``+Δ`` = peak minus the peak before the method started

Scaling (cut_turfs only)
------------------------
1k / 10k       the 1,000 / 10,000 usable doors nearest the median door, real network, one area
12.5k          all real doors, one area
tiles x1..x8   SYNTHETIC ENLARGEMENT: the real doors AND the real network (nodes, edges and
               barriers) are copied 1, 2, 4 and 8 times, copy ``i`` translated east by
               ``i * 30 km`` (the country is 12.7 km wide, so every copy is an independent real
               network). Node ids, edge ``u``/``v`` and way ``osmid`` are offset by ``i * 1e11``
               (OSM ids are < 1.2e10), edge numbers of the snapped doors by ``i * n_edges``, door
               ids are prefixed ``t{i}:``; same CRS. Snapped doors are translated rather than
               re-snapped (identical result). Each copy's doors get ``precinct_id = "tile{i}"``
               and ``cut_turfs(precincts=None)`` cuts per precinct id without polygons.
               x8 = 99,944 doors, 1,248 turfs.
tiles x8, one area   the same 99,944 doors with no precinct id: one area of 1,249 turfs.

Each case runs in a fresh subprocess (time = median of ``--repeat`` runs; peak RSS). Growth is
checked with the exponent ``log(t8/t1) / log(n8/n1)`` over the tiles (1.0 = linear).

Usage::

    .venv/bin/python benchmarks/bench_turfs.py                 # everything (~15 min, 2 cores)
    .venv/bin/python benchmarks/bench_turfs.py --skip-scaling  # comparison only
    .venv/bin/python benchmarks/bench_turfs.py --skip-compare  # scaling only

Needs ``k-means-constrained``, ``spopt`` and ``libpysal`` (``pip install`` them into the venv). A
method whose library is missing is reported as ``error``. Results: tables on stdout and
``benchmarks/results/turfs.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
ADDRESSES = ROOT / "data" / "liechtenstein" / "osm_addresses_liechtenstein_2024.csv"
PBF = ROOT / "data" / "liechtenstein" / "liechtenstein-2024-03-03.osm.pbf"
RESULTS = ROOT / "benchmarks" / "results" / "turfs.json"

DOORS_PER_TURF = 80.0
SUBSET_N = 2000
TILE_DX_M = 30_000.0
ID_STEP = 10**11
SLOW_S = 20.0  # a first run slower than this is not repeated
CLIQUE_MAX = 20  # door-free street clusters with more end doors use a Delaunay graph

DATASETS = ("s2k", "full")
METHODS = (
    ("cut", "knockin_geo cut_turfs"),
    ("plan", "knockin_geo plan_turfs (snap+cut+report, no routing)"),
    ("kmc82", "k-means-constrained (0.8-1.2 x target)"),
    ("kmc91", "k-means-constrained (0.9-1.1 x target)"),
    ("skater", "spopt Skater (street-adjacency W, floor 0.8 x target)"),
    ("kmeans", "sklearn KMeans"),
)
SCALE_CASES = (
    {"name": "1k (real subset)", "kind": "subset", "n": 1000},
    {"name": "10k (real subset)", "kind": "subset", "n": 10000},
    {"name": "12.5k (real, all)", "kind": "subset", "n": None},
    {"name": "tiles x1 (12.5k)", "kind": "tiles", "tiles": 1, "one_area": False},
    {"name": "tiles x2 (25k)", "kind": "tiles", "tiles": 2, "one_area": False},
    {"name": "tiles x4 (50k)", "kind": "tiles", "tiles": 4, "one_area": False},
    {"name": "tiles x8 (100k)", "kind": "tiles", "tiles": 8, "one_area": False},
    {"name": "tiles x8 (100k), one area", "kind": "tiles", "tiles": 8, "one_area": True},
)


# ------------------------------------------------------------------------------------------------
# shared data helpers (parent and children)
# ------------------------------------------------------------------------------------------------
def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def load_inputs() -> tuple[Any, Any]:
    """Return (addresses, network) for Liechtenstein (network from the on-disk cache)."""
    from knockin_geo.io import read_addresses
    from knockin_geo.streets import load_network

    return read_addresses(ADDRESSES), load_network(PBF)


def snap_like_plan(addresses: Any, net: Any) -> Any:
    """Snap doors exactly as ``plan_turfs`` does with default parameters and no precincts."""
    from knockin_geo import schema
    from knockin_geo.barriers import barrier_lines
    from knockin_geo.crs import to_crs
    from knockin_geo.snap import MAX_SNAP_M, snap_doors
    from knockin_geo.turfs import TurfParams

    params = TurfParams(doors_per_turf=DOORS_PER_TURF)
    doors = to_crs(addresses, net.crs)
    doors[schema.PRECINCT_ID] = pd.array([pd.NA] * len(doors), dtype="string")
    lines = barrier_lines(
        net,
        highways=params.barrier_highways,
        railways=params.railways_are_barriers,
        waterways=params.waterways_are_barriers,
    )
    return snap_doors(doors, net, max_snap_m=MAX_SNAP_M, barrier_lines=lines)


def usable_mask(snapped: Any) -> np.ndarray:
    from knockin_geo import schema

    return (snapped[schema.STATUS] == schema.STATUS_OK).to_numpy() & (
        snapped["edge"].to_numpy() >= 0
    )


def nearest_median(snapped: Any, n: int | None) -> Any:
    """The ``n`` usable doors nearest the median door (all usable doors when n is None)."""
    import shapely

    u = snapped[usable_mask(snapped)]
    if n is None or n >= len(u):
        return u
    pts = u.geometry.to_numpy()
    x, y = shapely.get_x(pts), shapely.get_y(pts)
    d2 = (x - np.median(x)) ** 2 + (y - np.median(y)) ** 2
    pick = np.sort(np.argsort(d2, kind="stable")[:n])
    return u.iloc[pick]


def tile_network(net: Any, tiles: int, dx: float = TILE_DX_M) -> Any:
    """Copy a StreetNetwork ``tiles`` times, copy i translated by ``i * dx`` metres east."""
    from knockin_geo.streets import StreetNetwork

    ids = net.nodes.index.to_numpy(dtype=np.int64)
    if max(ids.max(), net.edges["osmid"].max(), net.barriers["osmid"].max()) >= ID_STEP:
        msg = "OSM ids too large for the tiling offset"
        raise RuntimeError(msg)
    nodes, edges, bars = [], [], []
    for i in range(tiles):
        off, step = i * dx, i * ID_STEP
        nd = net.nodes.copy()
        nd.geometry = nd.geometry.translate(xoff=off)
        nd["x"] = nd["x"] + off
        nd.index = pd.Index(ids + step, name=net.nodes.index.name)
        ed = net.edges.copy()
        ed.geometry = ed.geometry.translate(xoff=off)
        for c in ("u", "v", "osmid"):
            ed[c] = ed[c].to_numpy(dtype=np.int64) + step
        br = net.barriers.copy()
        br.geometry = br.geometry.translate(xoff=off)
        br["osmid"] = br["osmid"].to_numpy(dtype=np.int64) + step
        nodes.append(nd)
        edges.append(ed)
        bars.append(br)
    n_all = pd.concat(nodes)
    e_all = pd.concat(edges, ignore_index=True)
    e_all.index.name = net.edges.index.name
    b_all = pd.concat(bars, ignore_index=True)
    b_all.index.name = net.barriers.index.name
    return StreetNetwork(n_all, e_all, b_all, net.crs, f"{net.source} x{tiles} tiles",
                         net.source_sha256)


def tile_doors(doors: Any, n_edges: int, tiles: int, one_area: bool,
               dx: float = TILE_DX_M) -> Any:
    """Copy snapped doors onto the tiled network (see :func:`tile_network`)."""
    from knockin_geo import schema

    parts = []
    for i in range(tiles):
        off = i * dx
        d = doors.copy()
        d.geometry = d.geometry.translate(xoff=off)
        d["snap_x"] = d["snap_x"] + off
        d["edge"] = d["edge"].to_numpy(dtype=np.int64) + i * n_edges
        d.index = pd.Index([f"t{i}:{a}" for a in d.index], name=doors.index.name)
        d[schema.PRECINCT_ID] = pd.array([pd.NA if one_area else f"tile{i}"] * len(d),
                                         dtype="string")
        parts.append(d)
    return pd.concat(parts)


def street_adjacency(ref: Any, net: Any) -> tuple[Any, dict[str, Any]]:
    """Symmetric 0/1 sparse adjacency of doors on the street network (for the spopt W).

    1. doors on the same edge, or on edges sharing a street node;
    2. across door-free streets: street nodes joined by edges that carry none of these doors form
       clusters; the chain-end doors (lowest/highest offset on each edge, i.e. the door next to
       each end node) of edges touching one cluster are adjacent (clique up to ``CLIQUE_MAX`` end
       doors, else their Delaunay graph);
    3. any piece still separate (a separate network component) is joined to the largest piece
       by its nearest door pair.
    """
    import shapely
    from scipy import sparse
    from scipy.sparse import csgraph
    from scipy.spatial import Delaunay, cKDTree

    n = len(ref)
    e = ref["edge"].to_numpy(dtype=np.int64)
    off = ref["offset_m"].to_numpy(dtype=float)
    n_e, n_n = len(net.edges), len(net.nodes)
    node_pos = pd.Index(net.nodes.index)
    eu = node_pos.get_indexer(net.edges["u"].to_numpy())
    ev = node_pos.get_indexer(net.edges["v"].to_numpy())
    xy = np.column_stack([shapely.get_x(ref.geometry.to_numpy()),
                          shapely.get_y(ref.geometry.to_numpy())])
    de = sparse.csr_array((np.ones(n), (np.arange(n), e)), shape=(n, n_e))
    en = sparse.csr_array(
        (np.ones(2 * n_e), (np.r_[np.arange(n_e), np.arange(n_e)], np.r_[eu, ev])),
        shape=(n_e, n_n),
    )
    dn = (de @ en).tocsr()
    dn.data[:] = 1.0
    a1 = (dn @ dn.T).tocoo()
    rows, cols = [a1.row], [a1.col]
    # 2. door-free street clusters
    has_door = np.zeros(n_e, dtype=bool)
    has_door[e] = True
    free = np.flatnonzero(~has_door)
    fa = sparse.coo_array((np.ones(len(free)), (eu[free], ev[free])), shape=(n_n, n_n))
    _, cl = csgraph.connected_components(fa, directed=False)
    srt = np.lexsort((off, e))
    first = np.ones(n, dtype=bool)
    first[1:] = e[srt][1:] != e[srt][:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = first[1:]
    lo_d, hi_d = srt[first], srt[last]
    td = np.r_[lo_d, hi_d]
    tc = np.r_[cl[eu[e[lo_d]]], cl[ev[e[hi_d]]]]
    pairs = pd.DataFrame({"c": tc, "d": td}).drop_duplicates().sort_values(["c", "d"])
    n_delaunay = 0
    for _c, grp in pairs.groupby("c", sort=False)["d"]:
        m = grp.to_numpy()
        if len(m) < 2:
            continue
        if len(m) <= CLIQUE_MAX:
            ii, jj = np.triu_indices(len(m), 1)
        else:
            n_delaunay += 1
            simp = Delaunay(xy[m], qhull_options="QJ").simplices
            ii = np.r_[simp[:, 0], simp[:, 1], simp[:, 2]]
            jj = np.r_[simp[:, 1], simp[:, 2], simp[:, 0]]
        rows.append(m[ii])
        cols.append(m[jj])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    adj = sparse.coo_array((np.ones(len(r)), (r, c)), shape=(n, n)).tocsr()
    adj = ((adj + adj.T) > 0).astype(float).tocsr()
    adj.setdiag(0)
    adj.eliminate_zeros()
    # 3. join remaining pieces
    n_comp, lab = csgraph.connected_components(adj, directed=False)
    pieces_before = int(n_comp)
    if n_comp > 1:
        big = int(np.argmax(np.bincount(lab)))
        in_big = np.flatnonzero(lab == big)
        tree = cKDTree(xy[in_big])
        add_r, add_c = [], []
        for comp in range(n_comp):
            if comp == big:
                continue
            mem = np.flatnonzero(lab == comp)
            dist, j = tree.query(xy[mem])
            i = int(np.argmin(dist))
            add_r += [mem[i], in_big[j[i]]]
            add_c += [in_big[j[i]], mem[i]]
        extra = sparse.coo_array((np.ones(len(add_r)), (add_r, add_c)), shape=(n, n)).tocsr()
        adj = ((adj + extra) > 0).astype(float).tocsr()
    info = {
        "links": int(adj.nnz // 2),
        "mean_degree": float(adj.nnz / n),
        "delaunay_clusters": n_delaunay,
        "pieces_joined_by_nearest_pair": pieces_before,
    }
    return adj, info


# ------------------------------------------------------------------------------------------------
# child side
# ------------------------------------------------------------------------------------------------
def _timed(fn: Any, repeat: int) -> tuple[list[float], Any]:
    times: list[float] = []
    out = None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
        if times[0] > SLOW_S:
            break
    return times, out


def _params(refine: str = "fix") -> Any:
    from knockin_geo.turfs import TurfParams

    return TurfParams(doors_per_turf=DOORS_PER_TURF, refine=refine)


def _child_compare(spec: dict[str, Any]) -> dict[str, Any]:
    work = Path(spec["work"])
    ds, method, repeat = spec["dataset"], spec["method"], spec["repeat"]
    ids = json.loads((work / f"ids_{ds}.json").read_text())
    res: dict[str, Any] = {}
    if method in ("cut", "plan"):
        from knockin_geo.plan import plan_turfs
        from knockin_geo.turfs import cut_turfs

        addresses, net = load_inputs()
        params = _params(spec.get("refine", "fix"))
        if method == "cut":
            snapped = pd.read_pickle(work / "snapped.pkl")
            doors = snapped.loc[ids]
            res["rss_before_mb"] = _peak_rss_mb()
            times, cut = _timed(lambda: cut_turfs(doors, net, params=params), repeat)
            res["peak_rss_mb"] = _peak_rss_mb()
            ref = cut.doors[cut.doors["turf_id"].notna()]
            ref.to_pickle(work / f"ref_{ds}.pkl")
            res["notes"] = sum(len(v) for v in cut.notes.values())
        else:
            import inspect

            addr = addresses.loc[ids]
            kw: dict[str, Any] = {"params": params}
            if "route" in inspect.signature(plan_turfs).parameters:
                kw["route"] = False
            res["plan_kwargs"] = sorted(kw)
            res["rss_before_mb"] = _peak_rss_mb()
            times, plan = _timed(lambda: plan_turfs(addr, net, **kw), repeat)
            res["peak_rss_mb"] = _peak_rss_mb()
            d = plan.doors[plan.doors["turf_id"].notna()]
            pd.Series(d["turf_id"].astype(str).to_numpy(), index=d.index).to_pickle(
                work / f"plan_labels_{ds}.pkl")
        res["times"] = times
        return res

    import shapely

    ref = pd.read_pickle(work / f"ref_{ds}.pkl")
    n = len(ref)
    k = max(1, round(n / DOORS_PER_TURF))
    x = np.column_stack([shapely.get_x(ref.geometry.to_numpy()),
                         shapely.get_y(ref.geometry.to_numpy())])
    if method in ("kmc82", "kmc91"):
        from k_means_constrained import KMeansConstrained

        lo, hi = (0.8, 1.2) if method == "kmc82" else (0.9, 1.1)
        smin, smax = math.floor(lo * n / k), math.ceil(hi * n / k)
        n_init = int(spec.get("kmc_n_init", 1))
        res["params"] = {"size_min": smin, "size_max": smax, "n_init": n_init,
                         "random_state": 0}
        res["rss_before_mb"] = _peak_rss_mb()
        times, labels = _timed(
            lambda: KMeansConstrained(n_clusters=k, size_min=smin, size_max=smax,
                                      n_init=n_init, random_state=0).fit_predict(x),
            repeat,
        )
    elif method == "kmeans":
        from sklearn.cluster import KMeans

        res["rss_before_mb"] = _peak_rss_mb()
        times, labels = _timed(
            lambda: KMeans(n_clusters=k, n_init="auto", random_state=0).fit_predict(x), repeat
        )
    elif method == "skater":
        import geopandas as gpd
        from libpysal.weights import W
        from spopt.region import Skater

        from knockin_geo.streets import load_network

        net = load_network(PBF)
        t0 = time.perf_counter()
        adj, info = street_adjacency(ref, net)
        w = W.from_sparse(adj)
        res["w_build_s"] = time.perf_counter() - t0
        res["w"] = info
        gdf = gpd.GeoDataFrame({"x": x[:, 0], "y": x[:, 1]}, geometry=ref.geometry.to_numpy(),
                               crs=ref.crs)
        floor = math.floor(0.8 * n / k)
        res["params"] = {"n_clusters": k, "floor": floor, "attrs": ["x", "y"]}
        res["rss_before_mb"] = _peak_rss_mb()

        def run() -> np.ndarray:
            model = Skater(gdf, w, attrs_name=["x", "y"], n_clusters=k, floor=floor,
                           trace=False)
            model.solve()
            return np.asarray(model.labels_)

        times, labels = _timed(run, repeat)
    else:
        msg = f"unknown method {method}"
        raise ValueError(msg)
    res["peak_rss_mb"] = _peak_rss_mb()
    res["times"] = times
    np.save(work / f"labels_{ds}_{method}.npy", np.asarray(labels, dtype=np.int64))
    return res


def _child_scale(spec: dict[str, Any]) -> dict[str, Any]:
    from knockin_geo.metrics import turf_pieces
    from knockin_geo.turfs import cut_turfs

    work = Path(spec["work"])
    case, repeat = spec["case"], spec["repeat"]
    _addresses, net = load_inputs()
    snapped = pd.read_pickle(work / "snapped.pkl")
    if case["kind"] == "subset":
        doors = nearest_median(snapped, case["n"])
        areas = 1
    else:
        n_edges = len(net.edges)
        net = tile_network(net, case["tiles"])
        doors = tile_doors(snapped[usable_mask(snapped)], n_edges, case["tiles"],
                           case["one_area"])
        areas = 1 if case["one_area"] else case["tiles"]
    params = _params(spec.get("refine", "fix"))
    res: dict[str, Any] = {"doors": len(doors), "areas": areas,
                           "network_nodes": len(net.nodes), "network_edges": len(net.edges),
                           "rss_before_mb": _peak_rss_mb()}
    times, cut = _timed(lambda: cut_turfs(doors, net, params=params), repeat)
    res["peak_rss_mb"] = _peak_rss_mb()
    res["times"] = times
    t = cut.turfs
    dev = np.abs(t["deviation"].to_numpy(dtype=float))
    res["k"] = len(t)
    res["assigned"] = int(cut.doors["turf_id"].notna().sum())
    res["sizes"] = [int(t["doors"].min()), int(t["doors"].max())]
    res["balance"] = float(dev.max())
    res["within_10"] = float((dev <= params.tolerance + 1e-9).mean())
    if spec.get("pieces", True):
        from knockin_geo import checks

        lines = checks.rule_lines(net.barriers, checks.RuleParams())
        res["spanning"] = int(checks.barrier_spans(cut.doors, lines)["spans"].sum())
    if spec.get("pieces", True):
        t0 = time.perf_counter()
        pieces = turf_pieces(cut.doors, net)
        res["pieces_s"] = time.perf_counter() - t0
        res["connected"] = float((pieces.to_numpy() == 1).mean())
    return res


def child_main(spec: dict[str, Any]) -> None:
    import logging
    import warnings

    logging.basicConfig(level=logging.WARNING)
    warnings.filterwarnings("ignore")
    res = _child_scale(spec) if spec["task"] == "scale" else _child_compare(spec)
    Path(spec["out"]).write_text(json.dumps(res))


# ------------------------------------------------------------------------------------------------
# parent side
# ------------------------------------------------------------------------------------------------
def run_child(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    out = Path(spec["work"]) / f"out_{os.getpid()}_{time.monotonic_ns()}.json"
    spec = {**spec, "out": str(out)}
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False,
        )
    except subprocess.TimeoutExpired:
        return {"status": "timeout", "limit_s": timeout, "wall_s": time.perf_counter() - t0,
                "load_before": load, "load_after": os.getloadavg()[0]}
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or "").strip().splitlines()[-3:]
        return {"status": "error", "error": " | ".join(tail), "wall_s": time.perf_counter() - t0,
                "load_before": load}
    res = json.loads(out.read_text())
    res["status"] = "ok"
    res["wall_s"] = time.perf_counter() - t0
    res["load_before"] = load
    res["load_after"] = os.getloadavg()[0]
    if res.get("times"):
        res["time_s"] = statistics.median(res["times"])
    return res


def labelling_quality(ref: Any, labels: np.ndarray, net: Any) -> dict[str, Any]:
    """Quality of any labelling of ``ref``'s doors, measured by our rules (see module doc)."""
    import shapely

    from knockin_geo import checks
    from knockin_geo.metrics import polsby_popper, turf_pieces

    codes, _ = pd.factorize(pd.Series(labels), sort=True)
    n = len(codes)
    k = int(codes.max()) + 1
    sizes = np.bincount(codes, minlength=k)
    mean = n / k
    dev = np.abs(sizes - mean) / mean
    d = ref.copy()
    d["turf_id"] = pd.array([f"B{c:05d}" for c in codes], dtype="string")
    pieces = turf_pieces(d, net).to_numpy()
    spans = checks.barrier_spans(d, checks.rule_lines(net.barriers, checks.RuleParams()))
    order = np.argsort(codes, kind="stable")
    splits = np.split(ref.geometry.to_numpy()[order],
                      np.flatnonzero(np.diff(codes[order])) + 1)
    pp = polsby_popper(np.array([shapely.multipoints(p) for p in splits], dtype=object))
    return {
        "n": n,
        "k": k,
        "size_min": int(sizes.min()),
        "size_max": int(sizes.max()),
        "balance": float(dev.max()),
        "within_10": float((dev <= 0.10 + 1e-9).mean()),
        "connected": float((pieces == 1).mean()),
        "mean_pieces": float(pieces.mean()),
        "spanning": int(spans["spans"].sum()),
        "mean_pp": float(np.nanmean(pp)),
    }


def _fmt_t(s: float | None) -> str:
    if s is None:
        return ""
    if s < 1:
        return f"{s * 1000:.0f} ms" if s >= 0.01 else f"{s * 1000:.1f} ms"
    return f"{s:.2f} s" if s < 100 else f"{s:.0f} s"


def _table(headers: list[str], rows: list[list[str]], right: set[int] | None = None) -> str:
    right = right if right is not None else set(range(1, len(headers)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(headers)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.rjust(w) if i in right else c.ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths, strict=True))).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def _time_cell(r: dict[str, Any]) -> str:
    if r["status"] == "timeout":
        return f"timeout > {r['limit_s']:.0f} s"
    if r["status"] == "error":
        return "error"
    reps = len(r["times"])
    return _fmt_t(r["time_s"]) + ("" if reps > 1 else " (1 run)")


def _load(r: dict[str, Any]) -> str:
    """1-min load average before -> after the method's subprocess (contention hint)."""
    if "load_before" not in r:
        return ""
    after = r.get("load_after")
    return f"{r['load_before']:.1f}" + (f"->{after:.1f}" if after is not None else "")


def _git_state() -> dict[str, Any]:
    def git(*a: str) -> str:
        try:
            return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True,
                                  check=False).stdout.strip()
        except OSError:
            return ""

    dirty = [ln[3:] for ln in git("status", "--porcelain", "knockin_geo").splitlines()]
    return {"head": git("rev-parse", "--short", "HEAD"), "dirty_package_files": dirty}


def _status(r: dict[str, Any]) -> str:
    return "error: " + r["error"] if r["status"] == "error" else _time_cell(r)


def prepare(work: Path) -> tuple[Any, Any]:
    addresses, net = load_inputs()
    snapped = snap_like_plan(addresses, net)
    snapped.to_pickle(work / "snapped.pkl")
    (work / "ids_full.json").write_text(json.dumps([str(i) for i in snapped.index]))
    sub = nearest_median(snapped, SUBSET_N)
    (work / "ids_s2k.json").write_text(json.dumps([str(i) for i in sub.index]))
    return snapped, net


def compare(work: Path, net: Any, args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ds in DATASETS:
        print(f"\n[{ds}] running ...", flush=True)
        rows: dict[str, Any] = {}
        for key, label in METHODS:
            if key == "skater":
                limit = args.spopt_timeout if ds == "s2k" else args.spopt_full_timeout
            elif key.startswith("kmc"):
                limit = args.kmc_timeout
            else:
                limit = args.timeout
            spec = {"task": "compare", "work": str(work), "dataset": ds, "method": key,
                    "repeat": args.repeat, "kmc_n_init": args.kmc_n_init, "refine": args.refine}
            r = run_child(spec, limit)
            r["label"] = label
            print(f"  {label}: {_status(r)}", flush=True)
            rows[key] = r
            if key == "cut" and r["status"] != "ok":
                msg = f"our cut failed on {ds}: {r}"
                raise RuntimeError(msg)
        ref = pd.read_pickle(work / f"ref_{ds}.pkl")
        for key, r in rows.items():
            if r["status"] != "ok":
                continue
            if key == "cut":
                labels = ref["turf_id"].astype(str).to_numpy()
            elif key == "plan":
                pl = pd.read_pickle(work / f"plan_labels_{ds}.pkl")
                same = pl.reindex(ref.index).astype(str).to_numpy()
                r["labels_identical_to_cut"] = bool(
                    (same == ref["turf_id"].astype(str).to_numpy()).all()
                )
                labels = same
            else:
                labels = np.load(work / f"labels_{ds}_{key}.npy")
            r["quality"] = labelling_quality(ref, labels, net)
        out[ds] = {"n": len(ref), "k": max(1, round(len(ref) / DOORS_PER_TURF)),
                   "methods": rows}
    return out


def print_compare(res: dict[str, Any]) -> None:
    headers = ["method", "time", "k", "sizes", "balance", "±10%", "connected", "mean pcs",
               "spanning", "PP", "peak RSS", "+Δ", "load"]
    for ds, block in res.items():
        print(f"\n=== {ds}: n = {block['n']} doors, k = {block['k']} "
              f"(target {block['n'] / block['k']:.1f} doors/turf) ===")
        rows = []
        for r in block["methods"].values():
            q = r.get("quality")
            rss = (f"{r['peak_rss_mb']:.0f} MB" if "peak_rss_mb" in r else "")
            delta = (f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB"
                     if "rss_before_mb" in r and "peak_rss_mb" in r else "")
            if q:
                rows.append([r["label"], _time_cell(r), str(q["k"]),
                             f"{q['size_min']}-{q['size_max']}", f"{q['balance']:.3f}",
                             f"{q['within_10']:.0%}", f"{q['connected']:.1%}",
                             f"{q['mean_pieces']:.2f}", str(q["spanning"]), f"{q['mean_pp']:.3f}",
                             rss, delta, _load(r)])
            else:
                rows.append([r["label"], _time_cell(r), *[""] * 8, rss, delta, _load(r)])
        print(_table(headers, rows))
        sk = block["methods"].get("skater", {})
        notes = []
        if "w" in sk:
            notes.append(f"Skater W (street adjacency): {sk['w']['links']} links, mean degree "
                         f"{sk['w']['mean_degree']:.1f}, {sk['w']['delaunay_clusters']} door-free "
                         f"clusters as Delaunay, {sk['w']['pieces_joined_by_nearest_pair']} "
                         f"pieces joined by nearest pair; W build {_fmt_t(sk['w_build_s'])} "
                         "(not in the time column)")
        pl = block["methods"].get("plan", {})
        if "labels_identical_to_cut" in pl:
            same = pl["labels_identical_to_cut"]
            notes.append(f"plan_turfs labels identical to cut_turfs: {same}")
        for key in ("kmc82", "kmc91"):
            p = block["methods"].get(key, {}).get("params")
            if p:
                notes.append(f"{key}: size_min {p['size_min']}, size_max {p['size_max']}, "
                             f"n_init {p['n_init']}")
        for nline in notes:
            print("  note: " + nline)


def aims(res: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for ds, block in res.items():
        m = block["methods"]
        cut = m["cut"]["quality"]
        a: dict[str, Any] = {}
        kmc = m.get("kmc82", {})
        if kmc.get("quality"):
            a["balance <= k-means-constrained (0.8-1.2)"] = (
                cut["balance"] <= kmc["quality"]["balance"] + 1e-12,
                f"{cut['balance']:.3f} vs {kmc['quality']['balance']:.3f}")
        kmc9 = m.get("kmc91", {})
        if kmc9.get("quality"):
            a["balance <= k-means-constrained (0.9-1.1)"] = (
                cut["balance"] <= kmc9["quality"]["balance"] + 1e-12,
                f"{cut['balance']:.3f} vs {kmc9['quality']['balance']:.3f}")
        a["100 % connected"] = (cut["connected"] >= 1.0,
                                f"{cut['connected']:.1%} (mean pieces {cut['mean_pieces']:.2f})")
        others = {lbl: m[k] for k, lbl in (("kmc82", "k-means-constrained 0.8-1.2"),
                                           ("skater", "spopt Skater"))}
        parts, ok = [], True
        for lbl, r in others.items():
            if r.get("quality"):
                ok &= cut["spanning"] < r["quality"]["spanning"]
                parts.append(f"{lbl} {r['quality']['spanning']}")
            else:
                parts.append(f"{lbl} n/a ({r.get('status')})")
        a["fewer barrier-spanning turfs than both"] = (
            ok, f"{cut['spanning']} vs " + ", ".join(parts))
        if kmc.get("time_s"):
            sp_cut = kmc["time_s"] / m["cut"]["time_s"]
            extra = ""
            if m.get("plan", {}).get("time_s"):
                extra = f"; plan_turfs {kmc['time_s'] / m['plan']['time_s']:.1f}x"
            a[">= 10x faster than k-means-constrained"] = (
                sp_cut >= 10, f"cut_turfs {sp_cut:.1f}x{extra}")
        out[ds] = a
    return out


def print_aims(a: dict[str, Any]) -> None:
    print("\n=== aims (our cut_turfs vs the others) ===")
    rows = [[ds, aim, "yes" if ok else "NO", detail]
            for ds, block in a.items() for aim, (ok, detail) in block.items()]
    print(_table(["set", "aim", "met", "detail"], rows, right=set()))


def scaling(work: Path, args: argparse.Namespace) -> list[dict[str, Any]]:
    print("\n[scaling] running ...", flush=True)
    out = []
    for case in SCALE_CASES:
        spec = {"task": "scale", "work": str(work), "case": case, "repeat": args.repeat,
                "pieces": not args.no_pieces, "refine": args.refine}
        r = run_child(spec, args.scale_timeout)
        r["name"] = case["name"]
        r["case"] = case
        print(f"  {case['name']}: {_status(r)}", flush=True)
        out.append(r)
    return out


def print_scaling(rows: list[dict[str, Any]]) -> dict[str, Any]:
    print("\n=== scaling: knockin_geo cut_turfs only (80 doors/turf) ===")
    headers = ["case", "doors", "areas", "k", "time", "doors/s", "µs/door", "peak RSS", "+Δ",
               "balance", "±10%", "connected", "spanning", "load"]
    table = []
    for r in rows:
        if r["status"] != "ok":
            table.append([r["name"], "", "", "", _time_cell(r), *[""] * 8, _load(r)])
            continue
        t = r["time_s"]
        table.append([
            r["name"], f"{r['doors']:,}", str(r["areas"]), str(r["k"]), _time_cell(r),
            f"{r['doors'] / t:,.0f}", f"{t / r['doors'] * 1e6:.0f}",
            f"{r['peak_rss_mb']:.0f} MB", f"{r['peak_rss_mb'] - r['rss_before_mb']:.0f} MB",
            f"{r['balance']:.3f}", f"{r['within_10']:.0%}",
            f"{r['connected']:.1%}" if "connected" in r else "", str(r.get("spanning", "")),
            _load(r),
        ])
    print(_table(headers, table))
    growth: dict[str, Any] = {}
    tiles = [r for r in rows if r["status"] == "ok" and r["case"]["kind"] == "tiles"
             and not r["case"]["one_area"]]
    if len(tiles) >= 2:
        a, b = tiles[0], tiles[-1]
        expo = math.log(b["time_s"] / a["time_s"]) / math.log(b["doors"] / a["doors"])
        growth = {"exponent_tiles": expo, "from": a["name"], "to": b["name"],
                  "time_ratio": b["time_s"] / a["time_s"], "doors_ratio": b["doors"] / a["doors"]}
        print(f"  growth {a['name']} -> {b['name']}: {growth['doors_ratio']:.0f}x doors, "
              f"{growth['time_ratio']:.2f}x time, exponent {expo:.2f} (1.00 = linear)")
    big = [r for r in rows if r["status"] == "ok" and r["doors"] >= 90_000]
    for r in big:
        print(f"  aim 100k doors cut in < 30 s: {r['name']}: {_fmt_t(r['time_s'])} -> "
              f"{'met' if r['time_s'] < 30 else 'NOT met'}")
    return growth


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for p in ("knockin_geo", "numpy", "scipy", "pandas", "geopandas", "shapely", "scikit-learn",
              "k-means-constrained", "spopt", "libpysal"):
        try:
            out[p] = version(p)
        except PackageNotFoundError:
            out[p] = "missing"
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help="runs per fast method (median)")
    ap.add_argument("--timeout", type=float, default=600, help="limit for our cut/plan/KMeans")
    ap.add_argument("--kmc-timeout", type=float, default=600,
                    help="limit for each k-means-constrained run")
    ap.add_argument("--kmc-n-init", type=int, default=1,
                    help="k-means-constrained n_init (1 matches the anchors; library default 10)")
    ap.add_argument("--spopt-timeout", type=float, default=300, help="spopt limit on s2k")
    ap.add_argument("--spopt-full-timeout", type=float, default=300,
                    help="spopt limit on the full set")
    ap.add_argument("--scale-timeout", type=float, default=900, help="limit per scaling case")
    ap.add_argument("--no-pieces", action="store_true",
                    help="skip turf_pieces in the scaling table")
    ap.add_argument("--refine", choices=["none", "fix", "compact"], default="fix",
                    help="our cutter's refinement after the bisection (default: fix)")
    ap.add_argument("--skip-compare", action="store_true")
    ap.add_argument("--skip-scaling", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.child:
        child_main(json.loads(args.child))
        return

    t_all = time.perf_counter()
    result: dict[str, Any] = {
        "benchmark": "turfs",
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "versions": _versions(),
        "git": _git_state(),
        "data": {"addresses": str(ADDRESSES.relative_to(ROOT)), "pbf": str(PBF.relative_to(ROOT)),
                 "doors_per_turf": DOORS_PER_TURF, "subset": SUBSET_N,
                 "tile_dx_m": TILE_DX_M},
    }
    with tempfile.TemporaryDirectory(prefix="bench-turfs-") as tmp:
        work = Path(tmp)
        snapped, net = prepare(work)
        result["data"]["doors_in"] = len(snapped)
        result["data"]["doors_usable"] = int(usable_mask(snapped).sum())
        print(f"Liechtenstein: {len(snapped)} doors, {result['data']['doors_usable']} usable "
              f"after snapping; network {len(net.nodes)} nodes / {len(net.edges)} edges; "
              f"{os.cpu_count()} CPUs")
        print(f"git {result['git']['head']}, uncommitted package files: "
              f"{', '.join(result['git']['dirty_package_files']) or 'none'}")
        print("'load' = 1-min load average before->after each subprocess (the benchmark itself "
              f"adds ~1; clearly above 1 on {os.cpu_count()} CPUs = other work shared them)")
        if not args.skip_compare:
            cmp_res = compare(work, net, args)
            print_compare(cmp_res)
            a = aims(cmp_res)
            print_aims(a)
            result["compare"] = cmp_res
            result["aims"] = {ds: {k: {"met": bool(v[0]), "detail": v[1]} for k, v in b.items()}
                              for ds, b in a.items()}
        if not args.skip_scaling:
            sc = scaling(work, args)
            result["scaling"] = sc
            result["scaling_growth"] = print_scaling(sc)
    result["wall_s"] = time.perf_counter() - t_all
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"\nwall time {result['wall_s']:.0f} s; results written to {args.out}")


if __name__ == "__main__":
    main()
