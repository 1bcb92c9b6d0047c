"""Benchmark the walking-route solver against the usual alternatives, on the SAME cost matrices.

For every turf, the door-to-door cost matrix is built exactly as :mod:`knockin_geo.routing`
does (``_Context._local_paths`` + ``_Context._cost_matrix``: street-sweep costs, busy-street
crossing costs, gap penalties). Every method then solves the same open-path problem: the matrix
plus a dummy stop at cost 0 from every door (as ``_Context._solve`` does without a fixed
start), and every result is scored by the same function, the sum of the matrix entries along
the walk order.

Data sets
---------
nantes      the 22 Nantes bureaux the 2014 OSM extract covers, 80 doors per turf
li          Liechtenstein cut by municipality, 80 doors per turf
d100        Nantes (the same 22 bureaux) cut with 100 doors per turf; the first ``--n100``
            turfs with at least 95 doors

Methods
-------
ours        ``_Context._solve`` with the default ``RouteParams`` (LKH through elkai, runs=1,
            ``trials=LKH_TRIALS``, candidates from the plain 1-tree): what ``route_turfs`` does
lkh10       the same with ``runs=10`` and 100 trials per run (LKH's own default is one trial
            per stop): the reference, "best found"
nn          nearest neighbour from every start, best kept
nn+2opt     the best nearest-neighbour path improved by 2-opt (numpy, best move per city,
            until no improving move), on the closed tour through the dummy stop
ortools     OR-Tools routing, depot = the dummy stop, PATH_CHEAPEST_ARC then
            GUIDED_LOCAL_SEARCH with a ``--ortools-limit`` (1 s) time limit; skipped when
            ``ortools`` is not installed

"best" is the lowest cost any method (or trial budget) found for the turf.

Trial budget
------------
``--trials 1,5,10,20,40,100`` also solves every turf with LKH (runs=1) and each of these
``MAX_TRIALS``; the table "LKH trial budget" gives, per budget, the median solve time and the
mean / max gap to the best tour found. ``routing.LKH_TRIALS`` is the smallest budget whose mean
gap stays <= 1 % on every data set with room to spare (5 trials gave 1.02 % on d100). The
worst turf needs far more: 13 % over the best at 5-15 trials, 3 % at LKH's default (one trial
per stop, 80), at 5 times the time.

Time: the solver alone ("solve": wall seconds; "CPU": this process's CPU seconds, which a
shared, loaded machine inflates much less than wall time), and
with the cost matrix ("+matrix"), which is what one turf costs ``route_turfs`` apart from
drawing; ``route`` is ``_Context.route`` (matrix + solve + drawing the line).

    .venv/bin/python benchmarks/bench_routes.py [--ortools-limit 1] [--n100 8] [--no-ortools]
        [--trials 1,5,10,20,40,100] [--sets nantes,li,d100]

Writes ``benchmarks/results/routes.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from knockin_geo import io, schema, streets
from knockin_geo.plan import covered_precincts, plan_turfs
from knockin_geo.routing import _MAX_COST_M, LKH_TRIALS, RouteParams, _Context, _Stops
from knockin_geo.turfs import TurfParams

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
OUT = ROOT / "benchmarks" / "results" / "routes.json"

try:  # optional baseline
    from ortools.constraint_solver import pywrapcp, routing_enums_pb2

    HAVE_ORTOOLS = True
except ImportError:  # pragma: no cover
    HAVE_ORTOOLS = False


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def nantes_inputs() -> tuple:
    nantes = DATA / "nantes"
    precincts = io.read_precincts(nantes / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(nantes / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(nantes / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return doors, net, precincts, covered_precincts(precincts, net)


def li_inputs() -> tuple:
    li = DATA / "liechtenstein"
    doors = io.read_addresses(li / "osm_addresses_liechtenstein_2024.csv")
    net = streets.load_network(li / "liechtenstein-2024-03-03.osm.pbf", cache=False)
    munis = io.read_precincts(li / "municipalities.geojson", id_column="municipality_id")
    return doors, net, munis, None


def cut(inputs: tuple, doors_per_turf: float) -> tuple:
    """Cut doors into turfs (no routing): the turfs every method routes."""
    doors, net, precincts, universe = inputs
    plan = plan_turfs(doors, net, precincts=precincts, universe=universe,
                      params=TurfParams(doors_per_turf=doors_per_turf), route=False)
    d = plan.doors
    turfs = [g for _, g in d[d[schema.TURF_ID].notna() & (d["edge"] >= 0)]
             .groupby(schema.TURF_ID, sort=True)]
    return turfs, net


# ------------------------------------------------------------------------------------------------
# methods
# ------------------------------------------------------------------------------------------------
def stops_of(ctx: _Context, turf) -> _Stops:
    """The turf's stops, exactly as ``_Context.route`` builds them (no fixed start)."""
    edge = turf["edge"].to_numpy(dtype=np.int64)
    extra = {}
    if hasattr(ctx, "name") and hasattr(ctx, "direction"):  # street names, block directions
        extra = {"name": ctx.name[edge], "direction": ctx.direction[edge]}
    return _Stops(
        edge=edge,
        offset=turf["offset_m"].to_numpy(dtype=float),
        side=turf["side"].astype(str).to_numpy(dtype=object),
        busy=ctx.busy[edge],
        xy=np.column_stack([turf["snap_x"].to_numpy(float), turf["snap_y"].to_numpy(float)]),
        **extra,
    )


def path_cost(cost: np.ndarray, order: np.ndarray) -> float:
    """Cost of an open walk through the doors in ``order``."""
    order = np.asarray(order, dtype=np.int64)
    return float(cost[order[:-1], order[1:]].sum())


def with_dummy(cost: np.ndarray) -> np.ndarray:
    """The matrix ``_Context._solve`` hands to LKH for an open route: a dummy at cost 0."""
    n = len(cost)
    m = np.zeros((n + 1, n + 1))
    m[:n, :n] = cost
    return m


def open_from_tour(tour: np.ndarray, dummy: int) -> np.ndarray:
    """Cut a closed tour through the dummy stop into the open walk."""
    tour = np.asarray(tour, dtype=np.int64)
    k = int(np.flatnonzero(tour == dummy)[0])
    return np.concatenate([tour[k + 1:], tour[:k]])


def nearest_neighbour(cost: np.ndarray, start: int) -> np.ndarray:
    n = len(cost)
    order = np.empty(n, dtype=np.int64)
    seen = np.zeros(n, dtype=bool)
    cur = start
    for k in range(n):
        order[k] = cur
        seen[cur] = True
        if k == n - 1:
            break
        row = np.where(seen, np.inf, cost[cur])
        cur = int(np.argmin(row))
    return order


def nn_best(cost: np.ndarray) -> np.ndarray:
    """Nearest neighbour from every start; the cheapest open walk."""
    best, best_c = None, np.inf
    for s in range(len(cost)):
        o = nearest_neighbour(cost, s)
        c = path_cost(cost, o)
        if c < best_c - 1e-9:
            best, best_c = o, c
    return best


def two_opt(cost: np.ndarray, order: np.ndarray) -> np.ndarray:
    """2-opt on the closed tour through a dummy stop (= open-path 2-opt incl. end moves)."""
    n = len(cost)
    if n < 4:
        return order
    m = with_dummy(cost)
    tour = np.concatenate([[n], order]).astype(np.int64)
    big_n = len(tour)
    improved = True
    while improved:
        improved = False
        for i in range(big_n - 2):
            a, b = tour[i], tour[i + 1]
            j = np.arange(i + 2, big_n if i > 0 else big_n - 1)
            if len(j) == 0:
                continue
            c = tour[j]
            d = tour[(j + 1) % big_n]
            delta = m[a, c] + m[b, d] - m[a, b] - m[c, d]
            k = int(np.argmin(delta))
            if delta[k] < -1e-7:
                jj = int(j[k])
                tour[i + 1: jj + 1] = tour[i + 1: jj + 1][::-1]
                improved = True
    return open_from_tour(tour, n)


def ortools_solve(cost: np.ndarray, limit_s: float) -> np.ndarray:
    """OR-Tools routing on the dummy-stop matrix (depot = dummy), integer decimetres."""
    n = len(cost)
    if n <= 2:
        return np.arange(n)
    m = np.rint(np.minimum(with_dummy(cost), _MAX_COST_M) * 10).astype(np.int64).tolist()
    manager = pywrapcp.RoutingIndexManager(n + 1, 1, n)
    routing = pywrapcp.RoutingModel(manager)

    def cb(i: int, j: int) -> int:
        return m[manager.IndexToNode(i)][manager.IndexToNode(j)]

    transit = routing.RegisterTransitCallback(cb)
    routing.SetArcCostEvaluatorOfAllVehicles(transit)
    p = pywrapcp.DefaultRoutingSearchParameters()
    p.first_solution_strategy = routing_enums_pb2.FirstSolutionStrategy.PATH_CHEAPEST_ARC
    p.local_search_metaheuristic = routing_enums_pb2.LocalSearchMetaheuristic.GUIDED_LOCAL_SEARCH
    p.time_limit.FromMilliseconds(int(limit_s * 1000))
    sol = routing.SolveWithParameters(p)
    order = []
    idx = routing.Start(0)
    idx = sol.Value(routing.NextVar(idx))
    while not routing.IsEnd(idx):
        order.append(manager.IndexToNode(idx))
        idx = sol.Value(routing.NextVar(idx))
    return np.asarray(order, dtype=np.int64)


#: CPU seconds of the last :func:`timed` call (this process only: LKH runs in it).
LAST_CPU = {"s": 0.0}


def timed(fn, *args) -> tuple[Any, float]:
    """Run ``fn``; return its result and wall seconds (CPU seconds in ``LAST_CPU``)."""
    c = time.process_time()
    t = time.perf_counter()
    out = fn(*args)
    wall = time.perf_counter() - t
    LAST_CPU["s"] = time.process_time() - c
    return out, wall


# ------------------------------------------------------------------------------------------------
# run
# ------------------------------------------------------------------------------------------------
def bench_turf(ctx: _Context, ctx10: _Context, turf, args,
               budgets: dict[int, _Context]) -> dict[str, Any]:
    stops = stops_of(ctx, turf)
    t0 = time.perf_counter()
    paths = ctx._local_paths(stops)
    cost = ctx._cost_matrix(stops, paths)[0]
    t_matrix = time.perf_counter() - t0
    n = len(cost)
    res: dict[str, Any] = {"doors": n, "matrix_s": t_matrix, "methods": {}}
    _, t_route = timed(ctx.route, turf)
    res["route_s"] = t_route

    def record(name: str, order: np.ndarray, t: float) -> None:
        order = np.asarray(order, dtype=np.int64)
        assert sorted(order.tolist()) == list(range(n)), name
        res["methods"][name] = {"cost": path_cost(cost, order), "solve_s": t,
                                "cpu_s": LAST_CPU["s"]}

    o, t = timed(lambda: ctx._solve(cost, fixed_start=None))
    record("ours", o, t)
    o, t = timed(lambda: ctx10._solve(cost, fixed_start=None))
    record("lkh10", o, t)
    o, t = timed(nn_best, cost)
    record("nn", o, t)
    cpu_nn = LAST_CPU["s"]
    o2, t2 = timed(two_opt, cost, o)
    LAST_CPU["s"] += cpu_nn
    record("nn+2opt", o2, t + t2)
    if args.ortools:
        o, t = timed(ortools_solve, cost, args.ortools_limit)
        record("ortools", o, t)
    res["trials"] = {}
    for trials, c in budgets.items():
        o, t = timed(lambda c=c: c._solve(cost, fixed_start=None))
        res["trials"][trials] = {"cost": path_cost(cost, o), "solve_s": t,
                                 "cpu_s": LAST_CPU["s"]}
    best = min(v["cost"] for v in [*res["methods"].values(), *res["trials"].values()])
    res["best"] = best
    for v in [*res["methods"].values(), *res["trials"].values()]:
        v["ratio"] = v["cost"] / best if best > 0 else 1.0
    return res


def print_trials(rows: list[dict[str, Any]], budgets: list[int]) -> list[dict[str, Any]]:
    """The trial-budget table: time and gap to the best tour per LKH ``MAX_TRIALS``."""
    print("\nLKH trial budget (runs=1; gap = cost / best found - 1, over all turfs)")
    head = (f"{'trials':>6} {'turfs':>5} {'solve ms':>9} {'CPU ms':>7} {'+matrix ms':>10} "
            f"{'mean gap %':>10} {'max gap %':>9} {'=best':>6}")
    print(head)
    print("-" * len(head))
    out = []
    for b in budgets:
        gap = np.array([r["trials"][b]["ratio"] - 1 for r in rows])
        solve = np.array([r["trials"][b]["solve_s"] for r in rows])
        cpu = np.array([r["trials"][b]["cpu_s"] for r in rows])
        total = solve + np.array([r["matrix_s"] for r in rows])
        out.append({"trials": b, "turfs": len(rows), "median_solve_s": float(np.median(solve)),
                    "median_solve_cpu_s": float(np.median(cpu)),
                    "median_total_s": float(np.median(total)),
                    "mean_gap": float(gap.mean()), "max_gap": float(gap.max()),
                    "share_best": float(np.mean(gap <= 1e-9))})
        mark = "  <- default" if b == LKH_TRIALS else ""
        print(f"{b:>6} {len(rows):>5} {1000 * np.median(solve):>9.1f} "
              f"{1000 * np.median(cpu):>7.1f} "
              f"{1000 * np.median(total):>10.1f} {100 * gap.mean():>10.2f} "
              f"{100 * gap.max():>9.2f} {100 * np.mean(gap <= 1e-9):>5.0f}%{mark}")
    return out


def summarise(rows: list[dict[str, Any]], methods: list[str]) -> list[dict[str, Any]]:
    out = []
    big = [r for r in rows if r["doors"] >= 95]
    for m in methods:
        ratio = np.array([r["methods"][m]["ratio"] for r in rows])
        solve = np.array([r["methods"][m]["solve_s"] for r in rows])
        total = np.array([r["methods"][m]["solve_s"] + r["matrix_s"] for r in rows])
        total100 = [r["methods"][m]["solve_s"] + r["matrix_s"] for r in big]
        out.append({
            "method": m,
            "turfs": len(rows),
            "mean_ratio": float(ratio.mean()),
            "worst_ratio": float(ratio.max()),
            "share_best": float(np.mean(ratio <= 1 + 1e-9)),
            "median_solve_s": float(np.median(solve)),
            "median_solve_cpu_s": float(np.median([r["methods"][m]["cpu_s"] for r in rows])),
            "median_total_s": float(np.median(total)),
            "median_total_100_s": float(np.median(total100)) if total100 else None,
            "max_total_100_s": float(np.max(total100)) if total100 else None,
        })
    return out


def print_table(title: str, summary: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    head = (f"{'method':<9} {'turfs':>5} {'mean/best':>10} {'worst/best':>10} {'=best':>6} "
            f"{'solve s':>8} {'CPU s':>7} {'+matrix s':>9} {'100-door s':>10} {'100 max s':>9}")
    print(head)
    print("-" * len(head))
    for s in summary:
        t100 = "-" if s["median_total_100_s"] is None else f"{s['median_total_100_s']:.3f}"
        m100 = "-" if s["max_total_100_s"] is None else f"{s['max_total_100_s']:.3f}"
        print(f"{s['method']:<9} {s['turfs']:>5} {s['mean_ratio']:>10.4f} "
              f"{s['worst_ratio']:>10.4f} {100 * s['share_best']:>5.0f}% "
              f"{s['median_solve_s']:>8.4f} {s['median_solve_cpu_s']:>7.4f} "
              f"{s['median_total_s']:>9.4f} {t100:>10} {m100:>9}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ortools-limit", type=float, default=1.0, help="seconds per turf")
    ap.add_argument("--no-ortools", dest="ortools", action="store_false")
    ap.add_argument("--n100", type=int, default=8, help="100-door turfs to add")
    ap.add_argument("--trials", default="1,5,10,20,40,100",
                    help="LKH trial budgets to compare (comma-separated)")
    ap.add_argument("--sets", default="nantes,li,d100", help="data sets (nantes, li, d100)")
    args = ap.parse_args(argv)
    if args.ortools and not HAVE_ORTOOLS:
        print("ortools is not installed: its rows are skipped (pip install ortools)")
        args.ortools = False
    methods = ["ours", "lkh10", "nn", "nn+2opt"] + (["ortools"] if args.ortools else [])
    wall = time.perf_counter()
    load_start = os.getloadavg()[0]

    chosen = {x.strip() for x in args.sets.split(",")}
    budgets = sorted({int(x) for x in args.trials.split(",") if x.strip()} | {LKH_TRIALS})
    nantes = nantes_inputs() if chosen & {"nantes", "d100"} else None
    sets = {}
    if "nantes" in chosen:
        sets["nantes"] = cut(nantes, 80)
    if "li" in chosen:
        sets["li"] = cut(li_inputs(), 80)
    if "d100" in chosen:
        t100, net100 = cut(nantes, 100)
        sets["d100"] = ([t for t in t100 if len(t) >= 95][: args.n100], net100)

    rp = RouteParams()
    rows_all: list[dict[str, Any]] = []
    per_set: dict[str, Any] = {}
    for name, (turfs, net) in sets.items():
        ctx = _Context(net, rp)
        ctx10 = _Context(net, RouteParams(runs=10, trials=100))
        by_budget = {b: _Context(net, RouteParams(trials=b)) for b in budgets}
        rows = []
        t = time.perf_counter()
        for turf in turfs:
            r = bench_turf(ctx, ctx10, turf, args, by_budget)
            r["set"] = name
            r["turf_id"] = str(turf[schema.TURF_ID].iloc[0])
            rows.append(r)
        print(f"{name}: {len(rows)} turfs, {sum(r['doors'] for r in rows)} doors, "
              f"{time.perf_counter() - t:.1f} s", file=sys.stderr)
        ours = np.array([r["methods"]["ours"]["cost"] for r in rows])
        nn = np.array([r["methods"]["nn"]["cost"] for r in rows])
        impr = 1 - ours / nn
        per_set[name] = {
            "turfs": len(rows),
            "doors_min": int(min(r["doors"] for r in rows)),
            "doors_max": int(max(r["doors"] for r in rows)),
            "ours_vs_nn_mean_pct": float(100 * impr.mean()),
            "ours_vs_nn_min_pct": float(100 * impr.min()),
            "ours_vs_nn_total_pct": float(100 * (1 - ours.sum() / nn.sum())),
            "ours_mean_ratio": float(np.mean([r["methods"]["ours"]["ratio"] for r in rows])),
            "summary": summarise(rows, methods),
        }
        rows_all += rows

    overall = summarise(rows_all, methods)
    print_table("All turfs (cost = the same street-sweep matrix; best = lowest any method found)",
                overall)
    for name, s in per_set.items():
        print_table(f"{name}: {s['turfs']} turfs, {s['doors_min']}-{s['doors_max']} doors",
                    s["summary"])
    trials_table = print_trials(rows_all, budgets)
    print("\nours vs nearest neighbour (route cost saved)")
    print(f"{'set':<7} {'turfs':>5} {'mean %':>7} {'min %':>7} {'total %':>8}")
    for name, s in per_set.items():
        print(f"{name:<7} {s['turfs']:>5} {s['ours_vs_nn_mean_pct']:>7.1f} "
              f"{s['ours_vs_nn_min_pct']:>7.1f} {s['ours_vs_nn_total_pct']:>8.1f}")
    matrix = np.array([r["matrix_s"] for r in rows_all])
    route = np.array([r["route_s"] for r in rows_all])
    big = [r for r in rows_all if r["doors"] >= 95]
    print(f"\ncost matrix per turf: median {np.median(matrix):.4f} s, max {matrix.max():.4f} s")
    print(f"_Context.route per turf (matrix + solve + line): median {np.median(route):.4f} s"
          + (f", 100-door median {np.median([r['route_s'] for r in big]):.4f} s" if big else ""))

    ours = next(s for s in overall if s["method"] == "ours")
    mean_nn = np.mean([1 - r["methods"]["ours"]["cost"] / r["methods"]["nn"]["cost"]
                       for r in rows_all])
    aims = {
        "ours mean ratio to best <= 1.01": ours["mean_ratio"] <= 1.01,
        "ours worst ratio to best <= 1.03": ours["worst_ratio"] <= 1.03,
        "ours >= 15 % shorter than nearest neighbour (mean)": mean_nn >= 0.15,
        "100-door turf (matrix + solve) < 0.2 s": (ours["max_total_100_s"] or 0) < 0.2,
        "80-door turf: median solve <= 15 ms": ours["median_solve_s"] <= 0.015,
        "80-door turf: median solve CPU <= 15 ms": ours["median_solve_cpu_s"] <= 0.015,
    }
    print("\naims")
    for k, v in aims.items():
        print(f"  [{'ok' if v else 'MISSED'}] {k}")
    wall = time.perf_counter() - wall
    print(f"\nwall time {wall:.0f} s; 1-minute load average {load_start:.1f} at the start, "
          f"{os.getloadavg()[0]:.1f} at the end (the benchmark itself adds about 1)")

    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "ortools": args.ortools,
        "ortools_limit_s": args.ortools_limit if args.ortools else None,
        "route_params": {"crossing_m": rp.crossing_m, "runs": rp.runs, "trials": rp.trials},
        "load_average": [load_start, os.getloadavg()[0]],
        "trials": trials_table,
        "wall_s": wall,
        "aims": aims,
        "overall": overall,
        "sets": per_set,
        "turfs": rows_all,
    }, indent=2, default=float) + "\n", encoding="utf-8")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
