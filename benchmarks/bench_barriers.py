"""Barrier, contiguity and compactness figures of our cut and of k-means-constrained.

Every figure is measured by :mod:`knockin_geo.checks` (written apart from the cutter) on the
output doors: barrier spans by the hull rule, strict one-piece on street sides, balance within
10 % of the precinct's mean turf, mean Polsby-Popper of the door hulls, hull overlap between
turfs of a precinct, and precincts with more spanning turfs than the bound's unplaceable sides.

Data sets (80 doors per turf, tolerance 10 %, seed 0, no routes):

nantes      the 22 bureaux of Nantes the 2014 OSM extract covers (4,092 doors)
li-muni     Liechtenstein cut by its 11 municipalities (12,497 OSM addresses)
li          Liechtenstein without precincts (one area)

Methods: ``ours`` (``plan_turfs``, once per ``--refine`` mode: ``none`` the bisection alone,
``fix`` the default, ``compact``) and ``kmc`` (``KMeansConstrained`` on the doors' x/y per
precinct, sizes between 0.9 and 1.1 of ``n / k`` with our ``k``; ``pip install -e ".[bench]"``).
The kmc labels reuse our doors frame (same snapping), so strict pieces are measured alike.

Usage::

    .venv/bin/python benchmarks/bench_barriers.py [--no-kmc] [--sets nantes,li-muni,li]

Prints a markdown table and writes ``benchmarks/results/barriers.json``.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from baselines import kmeans_constrained

from knockin_geo import checks, io, schema, streets
from knockin_geo.plan import TurfPlan, covered_precincts, plan_turfs
from knockin_geo.turfs import TurfParams

DATA = Path(__file__).resolve().parents[1] / "data"
RESULTS = Path(__file__).resolve().parent / "results"
logger = logging.getLogger("bench_barriers")


def load(name: str, params: TurfParams | None = None) -> TurfPlan:
    """Cut one data set with our cutter."""
    params = params or TurfParams(doors_per_turf=80)
    if name == "nantes":
        n = DATA / "nantes"
        prec = io.read_precincts(n / "precincts" / "bureaux_vote_nantes_2014.geojson")
        doors = io.read_addresses(n / "addresses" / "adresses_nantes_commune_2013.csv")
        net = streets.load_network(n / "osm" / "nantes_centre_2014-09.osm.pbf")
        return plan_turfs(doors, net, precincts=prec, universe=covered_precincts(prec, net),
                          params=params, route=False)
    li = DATA / "liechtenstein"
    doors = io.read_addresses(li / "osm_addresses_liechtenstein_2024.csv")
    net = streets.load_network(li / "liechtenstein-2024-03-03.osm.pbf")
    prec = (io.read_precincts(li / "municipalities.geojson", id_column="municipality_id")
            if name == "li-muni" else None)
    return plan_turfs(doors, net, precincts=prec, params=params, route=False)


def kmc_labels(plan: TurfPlan) -> pd.Series:
    """k-means-constrained turfs per precinct, with our turf count per precinct."""
    d = plan.doors[plan.doors[schema.TURF_ID].notna()]
    area = d[schema.PRECINCT_ID].astype("string").fillna("all")
    out = pd.Series(pd.NA, index=plan.doors.index, dtype="string")
    for a, rows in d.groupby(area.to_numpy(), sort=True).indices.items():
        sub = d.iloc[rows]
        k = int(sub[schema.TURF_ID].nunique())
        xy = np.column_stack([sub.geometry.x.to_numpy(), sub.geometry.y.to_numpy()])
        lab = kmeans_constrained(xy, k)
        out.loc[sub.index] = [f"{a}-k{x:03d}" for x in lab]
    return out


def figures(plan: TurfPlan, labels: pd.Series | None = None) -> dict[str, Any]:
    """The independent figures of a labelling of ``plan``'s doors (ours when ``labels`` is None)."""
    d = plan.doors.copy()
    if labels is not None:
        d[schema.TURF_ID] = labels.reindex(d.index)
    a = d[d[schema.TURF_ID].notna()]
    lines = checks.rule_lines(plan.network.barriers.to_crs(d.crs), checks.RuleParams())
    spans = checks.barrier_spans(d, lines)
    edges = plan.network.edges
    strict = checks.strict_pieces(d, edges["u"].to_numpy(), edges["v"].to_numpy())
    pp = checks.hull_polsby_popper(d)
    _, overlap = checks.hull_overlap(d)
    sides, door_side = checks.precinct_sides(d, lines, tolerance=plan.params.tolerance,
                                             precincts=plan.precincts)
    explained = checks.explain_spans(spans, sides, door_side, d)
    unplaceable = sides.groupby("area")["placeable"].apply(lambda s: int((~s).sum()))
    per_area = explained[explained["spans"]].groupby("area").size()
    beyond = (per_area.reindex(unplaceable.index, fill_value=0) - unplaceable) > 0
    w = pd.to_numeric(a["weight"], errors="coerce").fillna(1.0)
    area = a[schema.PRECINCT_ID].astype("string").fillna("all")
    t_w = w.groupby(a[schema.TURF_ID]).sum()
    t_area = area.groupby(a[schema.TURF_ID]).first()
    target = (w.groupby(area).sum() / t_area.value_counts()).reindex(t_area).to_numpy()
    within = (np.abs(t_w.to_numpy() / target - 1) <= plan.params.tolerance + 1e-9)
    return {
        "turfs": len(t_w),
        "within_tolerance": float(within.mean()),
        "strict_one_piece": float((strict == 1).mean()),
        "spanning": int(spans["spans"].sum()),
        "spanning_share": float(spans["spans"].mean()),
        "unplaceable_sides": int(unplaceable.sum()),
        "precincts_beyond_bound": int(beyond.sum()),
        "mean_pp": float(np.nanmean(pp.to_numpy())),
        "hull_overlap": float(overlap),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sets", default="nantes,li-muni,li")
    ap.add_argument("--no-kmc", action="store_true", help="skip k-means-constrained")
    ap.add_argument("--refine", default="none,fix,compact",
                    help="our cut with these --refine modes, side by side (none,fix,compact)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    rows: list[dict[str, Any]] = []
    for name in args.sets.split(","):
        for mode in args.refine.split(","):
            t0 = time.perf_counter()
            plan = load(name, TurfParams(doors_per_turf=80, refine=mode))
            cut_s = time.perf_counter() - t0
            rows.append({"set": name, "method": f"ours ({mode})", "time_s": round(cut_s, 1),
                         **figures(plan)})
        if not args.no_kmc:
            t0 = time.perf_counter()
            labels = kmc_labels(plan)
            rows.append({"set": name, "method": "kmc", "time_s":
                         round(time.perf_counter() - t0, 1), **figures(plan, labels)})
        logger.info("%s done", name)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "barriers.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    cols = ["set", "method", "turfs", "within_tolerance", "strict_one_piece", "spanning",
            "spanning_share", "unplaceable_sides", "precincts_beyond_bound", "mean_pp",
            "hull_overlap", "time_s"]
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = [f"{r[c]:.3f}" if isinstance(r[c], float) and c != "time_s" else str(r[c])
                 for c in cols]
        lines.append("| " + " | ".join(cells) + " |")
    logger.info("\n%s", "\n".join(lines))


if __name__ == "__main__":
    main()
