"""Benchmark minutes mode: the estimate before routing against the routed minutes, and balance.

Nantes' covered bureaux (``plan.covered_precincts``) and Liechtenstein by municipality, cut with
``--minutes-per-turf 120`` (tolerance 10 %) and routed, as ``knockin-geo cut`` does. Per data
set and code version:

* ``turfs``; ``time``: seconds of the whole in-memory cut (``plan_turfs``: barriers, snapping,
  cutting, routing, rebalancing when the code has it, report), 1 routing process, wall clock
  and CPU (the CPU seconds barely move with the load other programs put on the machine);
* ``within (est)``: turfs within 10 % of their precinct's target on the estimate the cutter
  balanced (what ``report.json`` counted before issue 20);
* ``within (routed)``: turfs whose routed minutes (``est_minutes`` of the route) lie within 10 %
  of their precinct's routed target, the precinct's routed minutes over its turf count (the
  mean routed turf of the precinct: moving doors between turfs keeps the total);
* ``p5 / p95``: percentiles of that routed deviation; ``max min``: the longest turf, minutes;
* ``routed / est``: the ratio of routed minutes to the cutter's estimate per turf (median and
  5th-95th percentile): how good the estimate is.

Everything is recomputed here from the plan's per-turf routed minutes and doors (not read from
the report). ``--before REV`` measures the ``knockin_geo`` of git revision REV as well (extracted
with ``git archive``), in the same run, one data set after the other, so both see the same
machine load.

Times are the median of ``--repeat`` runs, the versions taking turns. ``--cli`` also times the
whole ``knockin-geo cut`` command (every output written). Usage::

    .venv/bin/python benchmarks/bench_minutes.py --before 8cb72fc --cli --repeat 3
"""

from __future__ import annotations

import argparse
import io as stdio
import json
import os
import resource
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: Run in a subprocess with PYTHONPATH at the code to measure: cut one data set, print JSON.
_MEASURE = r"""
import json, sys, time
from pathlib import Path
import numpy as np
from knockin_geo import io, schema, streets
from knockin_geo.plan import covered_precincts, plan_turfs
from knockin_geo.turfs import TurfParams

data = Path(sys.argv[1]) / "data"
which, minutes, workers = sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
if which == "nantes":
    pr = io.read_precincts(data / "nantes/precincts/bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(data / "nantes/addresses/adresses_nantes_commune_2013.csv")
    net = streets.load_network(data / "nantes/osm/nantes_centre_2014-09.osm.pbf")
    universe = covered_precincts(pr, net)
else:
    doors = io.read_addresses(data / "liechtenstein/osm_addresses_liechtenstein_2024.csv")
    net = streets.load_network(data / "liechtenstein/liechtenstein-2024-03-03.osm.pbf")
    pr = io.read_precincts(data / "liechtenstein/municipalities.geojson",
                           id_column="municipality_id")
    universe = None
t0, c0 = time.perf_counter(), time.process_time()
plan = plan_turfs(doors, net, precincts=pr, universe=universe,
                  params=TurfParams(doors_per_turf=None, minutes_per_turf=minutes),
                  route_workers=workers)
secs, cpu = time.perf_counter() - t0, time.process_time() - c0
t = plan.turfs
est = t["est_minutes_precut"] if "est_minutes_precut" in t else t["weight"]
print(json.dumps({
    "seconds": secs, "cpu_seconds": cpu, "timings": plan.timings,
    "turf": t.index.astype(str).tolist(),
    "precinct": t[schema.PRECINCT_ID].astype(str).tolist(),
    "routed": t["est_minutes"].astype(float).tolist(),
    "estimate": est.astype(float).tolist(),
    "est_deviation": t["deviation_precut"].astype(float).tolist()
        if "deviation_precut" in t else t["deviation"].astype(float).tolist(),
}))
"""


def measure(source: Path, which: str, minutes: float, workers: int) -> dict:
    """Cut one data set with the ``knockin_geo`` found in ``source``; return the per-turf data."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(ROOT), which, str(minutes),
                           str(workers)], env=env, capture_output=True, text=True, check=False,
                          cwd=source)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def figures(res: dict, tol: float = 0.10) -> dict[str, float]:
    """Balance on routed minutes and the estimate's quality, from per-turf figures."""
    import numpy as np
    import pandas as pd

    t = pd.DataFrame({"p": res["precinct"], "routed": res["routed"], "est": res["estimate"],
                      "est_dev": res["est_deviation"]})
    target = t.groupby("p")["routed"].transform("mean")
    dev = (t["routed"] - target) / target
    ratio = t["routed"] / t["est"]
    return {
        "turfs": len(t),
        "seconds": res["seconds"],
        "cpu_seconds": res["cpu_seconds"],
        "stages": {k: round(v, 2) for k, v in res.get("timings", {}).items()},
        "within_est": float((t["est_dev"].abs() <= tol + 1e-9).mean()),
        "within_routed": float((dev.abs() <= tol + 1e-9).mean()),
        "p5": float(np.percentile(dev, 5)),
        "p95": float(np.percentile(dev, 95)),
        "max_min": float(t["routed"].max()),
        "ratio_med": float(ratio.median()),
        "ratio_p5": float(np.percentile(ratio, 5)),
        "ratio_p95": float(np.percentile(ratio, 95)),
    }


def _median_run(runs: list[dict]) -> dict:
    """The figures of the runs with the median times (figures are the same in every run)."""
    out = dict(runs[0])
    for key in ("seconds", "cpu_seconds", "cli_seconds", "cli_cpu_seconds"):
        if key in out:
            out[key] = statistics.median(r[key] for r in runs)
    return out


def extract(rev: str, into: Path) -> Path:
    """Extract the ``knockin_geo`` package (with its ``cli``) of git revision ``rev``."""
    tar = subprocess.run(["git", "archive", rev, "knockin_geo", "cli"], cwd=ROOT,
                         capture_output=True, check=True).stdout
    with tarfile.open(fileobj=stdio.BytesIO(tar)) as t:
        t.extractall(into, filter="data")
    (into / "cli").rename(into / "knockin_geo" / "cli")
    return into


def cli_args(which: str, minutes: float) -> list[str]:
    """Arguments of ``knockin-geo cut`` for one data set."""
    data = ROOT / "data"
    if which == "nantes":
        return ["--precincts", str(data / "nantes/precincts/bureaux_vote_nantes_2014.geojson"),
                "--addresses", str(data / "nantes/addresses/adresses_nantes_commune_2013.csv"),
                "--network", str(data / "nantes/osm/nantes_centre_2014-09.osm.pbf"),
                "--universe", "covered", "--minutes-per-turf", str(minutes)]
    return ["--precincts", str(data / "liechtenstein/municipalities.geojson"),
            "--precinct-id", "municipality_id",
            "--addresses", str(data / "liechtenstein/osm_addresses_liechtenstein_2024.csv"),
            "--network", str(data / "liechtenstein/liechtenstein-2024-03-03.osm.pbf"),
            "--minutes-per-turf", str(minutes)]


def time_cli(
    source: Path, which: str, minutes: float, workers: int, out: Path
) -> tuple[float, float]:
    """Wall and CPU seconds of the whole ``knockin-geo cut`` command (every output written)."""
    env = {**os.environ, "PYTHONPATH": str(source)}
    code = "import sys; from knockin_geo.cli.main import main; sys.exit(main())"
    t0, c0 = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, "-c", code, "cut", *cli_args(which, minutes),
                           "--workers", str(workers), "--out", str(out), "--overwrite"],
                          env=env, capture_output=True, text=True, check=False, cwd=source)
    if done.returncode:
        raise RuntimeError(done.stderr[-3000:])
    c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.perf_counter() - t0, (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", metavar="REV", help="also measure the code of this git revision")
    ap.add_argument("--minutes", type=float, default=120.0)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--sets", default="nantes,li")
    ap.add_argument("--repeat", type=int, default=1, help="runs per version (median time)")
    ap.add_argument("--cli", action="store_true",
                    help="also time the whole knockin-geo cut command (all outputs written)")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    versions = [("this tree", ROOT)]
    if args.before:
        versions.insert(0, (args.before, extract(args.before, tmp / "before")))
    rows = []
    for which in args.sets.split(","):
        runs: dict[str, list[dict]] = {name: [] for name, _ in versions}
        for i in range(args.repeat):  # versions interleaved: both see the same machine load
            for name, source in versions:
                f = figures(measure(source, which, args.minutes, args.workers))
                if args.cli:
                    f["cli_seconds"], f["cli_cpu_seconds"] = time_cli(
                        source, which, args.minutes, args.workers, tmp / f"out-{which}-{i}")
                runs[name].append(f)
                print(json.dumps({"set": which, "code": name, **f}), flush=True)
        for name, _ in versions:
            rows.append({"set": which, "code": name, **_median_run(runs[name])})
    head = ("| data | code | turfs | plan_turfs s (CPU s) | cut command s (CPU s) "
            "| within 10 % (est) | within 10 % (routed) | p5 / p95 | max min "
            "| routed/est median (p5-p95) |")
    print(head)
    print("|" + "---|" * 10)
    for r in rows:
        cli = (f"{r['cli_seconds']:.1f} ({r['cli_cpu_seconds']:.1f})" if "cli_seconds" in r
               else "-")
        print(f"| {r['set']} | {r['code']} | {r['turfs']} "
              f"| {r['seconds']:.1f} ({r['cpu_seconds']:.1f}) | {cli} "
              f"| {100 * r['within_est']:.1f} % | {100 * r['within_routed']:.1f} % "
              f"| {100 * r['p5']:+.1f} / {100 * r['p95']:+.1f} % | {r['max_min']:.0f} "
              f"| {r['ratio_med']:.2f} ({r['ratio_p5']:.2f}-{r['ratio_p95']:.2f}) |")
    out = ROOT / "benchmarks" / "results"
    out.mkdir(exist_ok=True)
    (out / "minutes.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
