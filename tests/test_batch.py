"""Batch runs (knockin_geo.batch): campaign files, identity with single runs, resume, parallel."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from knockin_geo import io, streets
from knockin_geo._errors import InputError
from knockin_geo.batch import (
    AUDIT_NAME,
    RECORD_NAME,
    TIMINGS_JSON,
    CampaignError,
    ProgressEvent,
    load_campaign,
    run_campaign,
)
from knockin_geo.plan import plan_turfs, write_plan
from knockin_geo.timing import TIMINGS_JSON as AREA_TIMINGS_JSON
from knockin_geo.turfs import TurfParams

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
NANTES = DATA / "nantes"
LI = DATA / "liechtenstein"

NANTES_UNIVERSE = ["0101", "0301", "0319"]
LI_UNIVERSE = ["1155946", "1155954"]  # Schellenberg, Planken: small, fast

CAMPAIGN = f"""
[defaults]
doors_per_turf = 80
seed = 0

[[areas]]
name = "nantes"
precincts = "{NANTES / 'precincts' / 'bureaux_vote_nantes_2014.geojson'}"
addresses = "{NANTES / 'addresses' / 'adresses_nantes_commune_2013.csv'}"
network = "{NANTES / 'osm' / 'nantes_centre_2014-09.osm.pbf'}"
universe = {json.dumps(NANTES_UNIVERSE)}

[[areas]]
name = "liechtenstein"
precincts = "{LI / 'municipalities.geojson'}"
precinct_id = "municipality_id"
addresses = "{{li_addresses}}"
network = "{LI / 'liechtenstein-2024-03-03.osm.pbf'}"
universe = {json.dumps(LI_UNIVERSE)}
lang = "en"
"""


def write_campaign(folder: Path, *, li_addresses: Path | None = None, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    addr = li_addresses or LI / "osm_addresses_liechtenstein_2024.csv"
    path = folder / "campaign.toml"
    path.write_text(CAMPAIGN.replace("{li_addresses}", str(addr)) + extra, encoding="utf-8")
    return path


def tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (relative path -> bytes), timings and audit logs excluded.

    Both hold when and by whom a run was made (the audit log is tested on its own).
    """
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name not in (TIMINGS_JSON, AREA_TIMINGS_JSON, AUDIT_NAME)
    }


def assert_same_tree(a: Path, b: Path) -> None:
    ta, tb = tree(a), tree(b)
    assert sorted(ta) == sorted(tb)
    differ = [k for k in ta if ta[k] != tb[k]]
    assert not differ, f"files differ: {differ[:10]}"


@pytest.fixture(scope="module", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # module-wide (the baseline fixture is module-scoped); spawned workers inherit os.environ
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("KNOCKIN_GEO_CACHE", str(tmp_path_factory.getbasetemp() / "batch-cache"))
        yield


@pytest.fixture(scope="module")
def campaign_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_campaign(tmp_path_factory.mktemp("campaign"))


@pytest.fixture(scope="module")
def baseline(campaign_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean sequential run of the campaign."""
    out = tmp_path_factory.mktemp("baseline")
    result = run_campaign(load_campaign(campaign_file), out)
    assert result.ran == ["liechtenstein", "nantes"]
    return out


# ---- identity with single runs ------------------------------------------------------------
def test_batch_equals_separate_plan_runs(baseline: Path, tmp_path: Path) -> None:
    cases = [
        ("nantes", NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson", None,
         NANTES / "addresses" / "adresses_nantes_commune_2013.csv",
         NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", NANTES_UNIVERSE, "fr"),
        ("liechtenstein", LI / "municipalities.geojson", "municipality_id",
         LI / "osm_addresses_liechtenstein_2024.csv", LI / "liechtenstein-2024-03-03.osm.pbf",
         LI_UNIVERSE, "en"),
    ]
    for name, prec_path, pid, addr_path, net_path, universe, lang in cases:
        precincts = io.read_precincts(prec_path, id_column=pid)
        doors = io.read_addresses(addr_path,
                                  reference_bounds=tuple(precincts.to_crs(4326).total_bounds))
        net = streets.load_network(net_path)
        inputs = {"precincts": prec_path.name, "addresses": addr_path.name,
                  "network": net_path.name, "network_sha256": net.source_sha256}
        params = TurfParams(doors_per_turf=80.0)  # the CLI's flags are floats too
        plan = plan_turfs(doors, net, precincts=precincts, params=params, universe=universe,
                          inputs=inputs)
        single = tmp_path / name
        write_plan(plan, single, lang=lang, input_files={
            "addresses": addr_path, "precincts": prec_path, "network": net_path})
        for f in ("plan.gpkg", "report.json"):
            assert (single / f).read_bytes() == (baseline / name / f).read_bytes(), (name, f)
        # and every other file write_plan writes (maps, walk lists, exports)
        batch_files = tree(baseline / name)
        assert batch_files.pop(RECORD_NAME)
        assert tree(single) == batch_files
        assert plan.report["summary"]["turfs"] > 0


def test_campaign_files(baseline: Path) -> None:
    summary = json.loads((baseline / "campaign_summary.json").read_text(encoding="utf-8"))
    assert [a["area"] for a in summary["areas"]] == ["liechtenstein", "nantes"]
    nantes = summary["areas"][1]
    report = json.loads((baseline / "nantes" / "report.json").read_text(encoding="utf-8"))
    assert nantes["turfs"] == report["summary"]["turfs"]
    assert nantes["assigned"] == report["summary"]["doors_assigned"]
    assert nantes["unassigned"] == report["unassigned"]
    assert summary["totals"]["doors"] == 53197 + 12497
    csv_lines = (baseline / "campaign_summary.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("area,status,doors,assigned,turfs,within_tolerance,connected")
    assert [line.split(",")[0] for line in csv_lines[1:]] == ["liechtenstein", "nantes"]
    page = (baseline / "campaign_map.html").read_text(encoding="utf-8")
    assert '<script src="http' not in page  # Leaflet inlined: opens offline
    assert "L.map(" in page and "nantes: " in page and "liechtenstein: " in page
    timings = json.loads((baseline / TIMINGS_JSON).read_text(encoding="utf-8"))
    assert set(timings["areas"]) == {"liechtenstein", "nantes"}
    for area in ("liechtenstein", "nantes"):  # each area's stages, also beside its report
        stages = timings["areas"][area]["stages"]
        assert {"load", "snap", "cut", "route", "gpkg"} <= stages.keys()
        own = json.loads((baseline / area / AREA_TIMINGS_JSON).read_text(encoding="utf-8"))
        assert own["stages"].keys() == stages.keys()
    record = json.loads((baseline / "nantes" / RECORD_NAME).read_text(encoding="utf-8"))
    assert AREA_TIMINGS_JSON not in record["files"]  # durations never in the resume record
    assert set(record["inputs"]) == {"addresses", "network", "precincts"}
    assert record["params"]["universe"] == NANTES_UNIVERSE
    assert "plan.gpkg" in record["files"]


# ---- resume -------------------------------------------------------------------------------
class StopAfterFirst:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    def __call__(self, ev: ProgressEvent) -> None:
        self.events.append(ev)
        if ev.kind == "ran":
            raise KeyboardInterrupt


def test_resume_after_interrupt(campaign_file: Path, baseline: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    campaign = load_campaign(campaign_file)
    stop = StopAfterFirst()
    with pytest.raises(KeyboardInterrupt):
        run_campaign(campaign, out, progress=stop)
    left = sorted(p.name for p in out.iterdir())
    assert left == ["liechtenstein"]  # one complete area; no .tmp-*, no half area, no summary
    assert (out / "liechtenstein" / RECORD_NAME).is_file()

    events: list[ProgressEvent] = []
    result = run_campaign(campaign, out, resume=True, progress=events.append)
    assert result.skipped == ["liechtenstein"]
    assert result.ran == ["nantes"]
    assert [(e.kind, e.area) for e in events if e.area] == [("skipped", "liechtenstein"),
                                                          ("ran", "nantes")]
    assert_same_tree(out, baseline)

    # nothing changed: everything is skipped and the outputs stay the same
    events.clear()
    result = run_campaign(campaign, out, resume=True, progress=events.append)
    assert result.skipped == ["liechtenstein", "nantes"]
    assert {e.kind for e in events if e.area} == {"skipped"}
    assert_same_tree(out, baseline)

    # a parameter changes for one area: only that area runs again
    changed = write_campaign(tmp_path / "c2", extra="seed = 3\n")  # the last area: liechtenstein
    result = run_campaign(load_campaign(changed), out, resume=True)
    assert result.ran == ["liechtenstein"]
    assert result.skipped == ["nantes"]
    rep = json.loads((out / "liechtenstein" / "report.json").read_text(encoding="utf-8"))
    assert rep["params"]["seed"] == 3

    # an input file moved but identical: skipped; its content changes: that area runs again
    copy = tmp_path / "data" / "osm_addresses_liechtenstein_2024.csv"
    copy.parent.mkdir()
    shutil.copyfile(LI / "osm_addresses_liechtenstein_2024.csv", copy)
    moved = write_campaign(tmp_path / "c3", li_addresses=copy, extra="seed = 3\n")
    result = run_campaign(load_campaign(moved), out, resume=True)
    assert result.ran == []
    lines = copy.read_text(encoding="utf-8").splitlines(keepends=True)
    copy.write_text("".join(lines[:-1]), encoding="utf-8")  # drop the last address
    result = run_campaign(load_campaign(moved), out, resume=True)
    assert result.ran == ["liechtenstein"]
    assert result.skipped == ["nantes"]
    summary = json.loads((out / "campaign_summary.json").read_text(encoding="utf-8"))
    assert summary["areas"][0]["doors"] == 12497 - 1
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


def test_leftovers_of_a_crash_are_cleaned(campaign_file: Path, baseline: Path,
                                          tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(baseline, out)
    # crashes while building nantes (older and current build-folder names, a half-written
    # GeoPackage with its SQLite journal, a stray file), and one between the two renames of
    # liechtenstein
    for stale in (".tmp-nantes", ".tmp-nantes~4242-0123456789ab"):
        (out / stale / "walklists").mkdir(parents=True)
        (out / stale / "plan.gpkg").write_bytes(b"SQLite format 3\0half")
        (out / stale / "plan.gpkg-journal").write_bytes(b"\0" * 512)
    (out / ".tmp-liechtenstein~1-2").write_text("not even a folder", encoding="utf-8")
    (out / ".tmp-elsewhere~1-2").mkdir()  # not an area of this campaign: left alone
    (out / "liechtenstein").rename(out / ".old-liechtenstein")
    result = run_campaign(load_campaign(campaign_file), out, resume=True)
    assert result.skipped == ["liechtenstein", "nantes"]
    (out / ".tmp-elsewhere~1-2").rmdir()
    assert_same_tree(out, baseline)


def test_resume_while_a_dying_worker_still_writes_its_old_folder(
    campaign_file: Path, baseline: Path, tmp_path: Path
) -> None:
    """An orphan of a killed run re-creating ``.tmp-nantes`` cannot spoil the resumed area."""
    out = tmp_path / "out"
    shutil.copytree(baseline, out)
    shutil.rmtree(out / "nantes")
    stale = out / ".tmp-nantes"
    stop = threading.Event()

    def orphan() -> None:  # what a surviving worker of the killed run did to its build folder
        while not stop.is_set():
            shutil.rmtree(stale, ignore_errors=True)
            stale.mkdir(exist_ok=True)
            (stale / "plan.gpkg").write_bytes(b"SQLite format 3\0half")
            time.sleep(0.01)

    writer = threading.Thread(target=orphan, daemon=True)
    writer.start()
    try:
        result = run_campaign(load_campaign(campaign_file), out, resume=True)
    finally:
        stop.set()
        writer.join()
    assert result.ran == ["nantes"]
    shutil.rmtree(stale, ignore_errors=True)
    assert_same_tree(out, baseline)


# ---- killing a parallel batch -------------------------------------------------------------
def session_processes(sid: int) -> list[tuple[int, str]]:
    """Live processes of session ``sid`` (pid, command line), read from /proc; zombies left out.

    The batch runs in a session of its own, so this finds its workers and multiprocessing's
    resource tracker even once they are re-parented.
    """
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        if int(fields[3]) == sid and fields[0] not in ("Z", "X"):
            found.append((int(entry.name), cmd[:120]))
    return found


def wait_until(condition: callable, limit_s: float) -> bool:  # type: ignore[valid-type]
    end = time.monotonic() + limit_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


KILL_AREAS = ("1155946", "1155947", "1155954")  # Schellenberg, Gamprin, Planken: small


@pytest.fixture(scope="module")
def li_campaign(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Three Liechtenstein municipalities as three areas, and their clean sequential run."""
    folder = tmp_path_factory.mktemp("li3")
    text = (f'[defaults]\nprecincts = "{LI / "municipalities.geojson"}"\n'
            f'precinct_id = "municipality_id"\n'
            f'addresses = "{LI / "osm_addresses_liechtenstein_2024.csv"}"\n'
            f'network = "{LI / "liechtenstein-2024-03-03.osm.pbf"}"\n')
    for m in KILL_AREAS:
        text += f'\n[[areas]]\nname = "m{m}"\nuniverse = ["{m}"]\n'
    path = folder / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    run_campaign(load_campaign(path), folder / "clean")
    return path, folder / "clean"


def batch_command(campaign: Path, out: Path, *more: str) -> list[str]:
    return [sys.executable, "-m", "knockin_geo.cli.main", "-q", "batch", str(campaign),
            "--out", str(out), "--workers", "2", *more]


@pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs /proc (Linux)")
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_killed_parallel_batch_leaves_no_process_and_resumes(
    li_campaign: tuple[Path, Path], tmp_path: Path, sig: str
) -> None:
    campaign, clean = li_campaign
    out = tmp_path / "out"
    proc = subprocess.Popen(batch_command(campaign, out), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        building = wait_until(lambda: proc.poll() is not None
                              or (out.is_dir() and any(out.glob(".tmp-*"))), 300)
        assert building and proc.poll() is None, "the batch ended before building an area"
        assert len(session_processes(proc.pid)) >= 3  # the batch and its two workers at least
        os.kill(proc.pid, getattr(signal, sig))
        code = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    all_gone = wait_until(lambda: not session_processes(proc.pid), 20)
    left = session_processes(proc.pid)
    for pid, _cmd in left:  # do not leave them running after a failure
        os.kill(pid, signal.SIGKILL)
    assert all_gone, f"still running after the batch died: {left}"
    # SIGTERM: workers stopped, half-built areas removed, exit 128 + 15
    assert code == (-signal.SIGKILL if sig == "SIGKILL" else 128 + signal.SIGTERM)
    if sig == "SIGTERM":
        assert not list(out.glob(".tmp-*"))
    done = run_resume(campaign, out)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert_same_tree(out, clean)


def run_resume(campaign: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(batch_command(campaign, out, "--resume"), capture_output=True,
                          text=True, timeout=600, check=False)


def test_a_worker_watchdog_ends_it_when_its_parent_dies() -> None:
    """The portable fallback (no prctl): the watchdog thread alone ends an orphaned worker."""
    if not Path("/proc/self/stat").is_file():
        pytest.skip("needs /proc (Linux)")
    worker = ("import sys; from knockin_geo.batch import _watch_parent; "
              "_watch_parent(int(sys.argv[1])); raise SystemExit(9)")
    parent = ("import os, subprocess, sys; "
              f"w = subprocess.Popen([sys.executable, '-c', {worker!r}, str(os.getpid())]); "
              "print(w.pid)")
    out = subprocess.run([sys.executable, "-c", parent], capture_output=True, text=True,
                         check=True, timeout=120)
    orphan = int(out.stdout.strip())

    def gone() -> bool:
        try:
            state = Path(f"/proc/{orphan}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return True
        return state in ("Z", "X")

    try:
        assert wait_until(gone, 20), "the orphaned worker is still running"
    finally:
        if not gone():
            os.kill(orphan, signal.SIGKILL)


# ---- parallel -----------------------------------------------------------------------------
def test_two_processes_give_the_same_bytes(campaign_file: Path, baseline: Path,
                                           tmp_path: Path) -> None:
    result = run_campaign(load_campaign(campaign_file), tmp_path / "p2", workers=2)
    assert result.ran == ["liechtenstein", "nantes"]
    assert_same_tree(tmp_path / "p2", baseline)
    timings = json.loads((tmp_path / "p2" / TIMINGS_JSON).read_text(encoding="utf-8"))
    assert timings["mode"] == "processes x2"


@pytest.mark.skipif(importlib.util.find_spec("distributed") is None,
                    reason="dask.distributed is not installed")
def test_dask_local_cluster_gives_the_same_bytes(campaign_file: Path, baseline: Path,
                                                 tmp_path: Path) -> None:
    result = run_campaign(load_campaign(campaign_file), tmp_path / "dask", workers=2,
                          use_dask=True)
    assert result.ran == ["liechtenstein", "nantes"]
    assert_same_tree(tmp_path / "dask", baseline)


# ---- failures -----------------------------------------------------------------------------
def test_a_failing_area_does_not_stop_the_others(tmp_path: Path) -> None:
    path = write_campaign(tmp_path)
    text = path.read_text(encoding="utf-8").replace('"1155954"]', '"9999999"]')  # unknown id
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CampaignError) as info:
        run_campaign(load_campaign(path), tmp_path / "out")
    result = info.value.result
    assert result.failed == ["liechtenstein"]
    assert result.ran == ["nantes"]
    assert "9999999" in str(info.value)
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if not p.is_file()) == ["nantes"]
    csv_text = (tmp_path / "out" / "campaign_summary.csv").read_text(encoding="utf-8")
    assert "liechtenstein,failed" in csv_text


# ---- bad campaign files -------------------------------------------------------------------
def problems_of(path: Path) -> str:
    with pytest.raises(InputError) as info:
        load_campaign(path)
    return str(info.value)


def test_unknown_keys_are_named(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, extra="doors_per_turn = 60\n")
    text = problems_of(path)
    assert "area 'liechtenstein': unknown key 'doors_per_turn'" in text
    assert "did you mean 'doors_per_turf'" in text
    path.write_text(path.read_text(encoding="utf-8").replace("seed = 0", "sede = 0"),
                    encoding="utf-8")
    assert "[defaults]: unknown key 'sede'" in problems_of(path)


def test_missing_files_and_duplicates_are_all_listed(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, li_addresses=tmp_path / "nowhere.csv",
                          extra='\n[[areas]]\nname = "nantes"\naddresses = "a.csv"\n'
                                'network = "n.pbf"\ntolerance = 2\nlang = "de"\n')
    text = problems_of(path)
    assert "area 'liechtenstein': key 'addresses': file not found" in text
    assert "nowhere.csv" in text
    assert "area 'nantes': duplicate area name" in text
    assert f"key 'addresses': file not found: {tmp_path / 'a.csv'}" in text  # relative path
    assert "key 'network': file not found" in text
    assert "area 'nantes': key 'lang'" in text
    assert "area 'nantes': key 'tolerance': must be between 0 and 1" in text


def test_bad_values_and_names(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(
        '[defaults]\ndoors_per_turf = -5\nseed = "zero"\n\n'
        '[[areas]]\nname = "../etc"\naddresses = "x.csv"\n\n'
        '[[areas]]\naddresses = 3\nuniverse = [101]\n',
        encoding="utf-8",
    )
    text = problems_of(path)
    assert "[defaults]: key 'doors_per_turf': must be positive" in text
    assert "[defaults]: key 'seed': expected an integer" in text
    assert "key 'name' must be a folder-safe name" in text
    assert "area #2: key 'name' is missing" in text
    assert "area #2: key 'universe': precinct ids must be quoted strings" in text
    assert "area #2: key 'addresses' must be a file path" in text
    path.write_text("[[areas]\n", encoding="utf-8")
    assert "cannot parse campaign file" in problems_of(path)


def test_size_keys_override_as_a_pair(tmp_path: Path) -> None:
    path = write_campaign(tmp_path, extra="minutes_per_turf = 120\n")
    c = load_campaign(path)
    li = c.area("liechtenstein").config.cut
    assert li.minutes_per_turf == 120 and li.doors_per_turf is None
    assert c.area("nantes").config.turf_params().doors_per_turf == 80


def test_example_campaign_loads() -> None:
    c = load_campaign(DATA / "campaign_example.toml")
    assert [a.name for a in c.areas] == ["nantes-centre", "liechtenstein-unterland"]
    assert all(a.addresses.is_file() and a.network.is_file() for a in c.areas)


def test_batch_area_equals_the_cut_command(baseline: Path, tmp_path: Path) -> None:
    from knockin_geo.cli.main import main

    code = main(["-q", "cut",
                 "--precincts", str(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson"),
                 "--addresses", str(NANTES / "addresses" / "adresses_nantes_commune_2013.csv"),
                 "--network", str(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"),
                 "--doors-per-turf", "80", "--universe", ",".join(NANTES_UNIVERSE),
                 "--out", str(tmp_path / "cut")])
    assert code == 0
    batch_files = tree(baseline / "nantes")
    batch_files.pop(RECORD_NAME)
    cut_files = tree(tmp_path / "cut")
    cut_files.pop("audit.jsonl", None)  # the CLI's export log (user, time): not a plan file
    assert cut_files == batch_files
    # and the batch writes the same audit log as cut: same fields, same files and digests
    cut_log, = read_audit(tmp_path / "cut")
    batch_log, = read_audit(baseline / "nantes")
    assert set(batch_log) == set(cut_log)
    assert batch_log["action"] == cut_log["action"] == "export"
    assert batch_log["turfs"] == cut_log["turfs"]
    assert batch_log["out_dir"] == str(baseline / "nantes")
    # the same files with the same digests; both list their timings.json, whose durations differ
    batch_audited = audited(batch_log, baseline / "nantes")
    cut_audited = audited(cut_log, tmp_path / "cut")
    assert batch_audited.pop(AREA_TIMINGS_JSON) and cut_audited.pop(AREA_TIMINGS_JSON)
    assert batch_audited == cut_audited


def read_audit(folder: Path) -> list[dict]:
    lines = (folder / AUDIT_NAME).read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def audited(record: dict, folder: Path) -> dict[str, str]:
    """The files of an audit record, relative to ``folder``, with their sha256 (re-checked)."""
    out = {}
    for f in record["files"]:
        path = Path(f["path"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == f["sha256"]
        out[path.relative_to(folder).as_posix()] = f["sha256"]
    return out


def test_a_rerun_area_keeps_its_audit_history(campaign_file: Path, baseline: Path,
                                              tmp_path: Path) -> None:
    out = tmp_path / "out"
    shutil.copytree(baseline, out)
    first, = read_audit(out / "liechtenstein")
    changed = write_campaign(tmp_path / "c2", extra="seed = 3\n")  # liechtenstein only
    result = run_campaign(load_campaign(changed), out, resume=True)
    assert result.ran == ["liechtenstein"]
    old, new = read_audit(out / "liechtenstein")
    assert old == first  # carried over, never rewritten
    assert set(audited(new, out / "liechtenstein")) == {
        p.relative_to(out / "liechtenstein").as_posix()
        for p in (out / "liechtenstein").rglob("*")
        if p.is_file() and p.name not in (AUDIT_NAME, RECORD_NAME)
    }
    assert len(read_audit(out / "nantes")) == 1  # skipped: nothing exported, nothing logged
    record = json.loads((out / "liechtenstein" / RECORD_NAME).read_text(encoding="utf-8"))
    assert AUDIT_NAME not in record["files"]  # a log that grows does not force a re-run


# ---- an area is a cut, privacy options included ----------------------------------------------
PRIVATE_UNIVERSE = ["1155954"]  # Planken: small


def private_inputs(folder: Path) -> dict[str, Path]:
    """A voter file (0-2 voters per door, a yes/no flag), a do-not-knock list and a secret."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = io.read_addresses(LI / "osm_addresses_liechtenstein_2024.csv").index.astype(str)
    voters = folder / "voters.csv"
    rows = [f"V{i}-{k},{aid},{'yes' if i % 5 == 0 else 'no'}\n"
            for i, aid in enumerate(ids) for k in range(i % 3)]
    voters.write_text("voter_name,address_id,priority\n" + "".join(rows), encoding="utf-8")
    opt_outs = folder / "opt_outs.csv"
    opt_outs.write_text("address_id\n" + "".join(f"{a}\n" for a in ids[::7]), encoding="utf-8")
    secret = folder / "secret.key"
    secret.write_text("a campaign secret of more than 16 bytes\n", encoding="utf-8")
    return {"voters": voters, "opt_outs": opt_outs, "secret_file": secret}


def test_a_private_area_equals_the_cut_command(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from knockin_geo.cli.main import main

    monkeypatch.delenv("KNOCKIN_GEO_SECRET", raising=False)
    monkeypatch.setenv("KNOCKIN_GEO_MAP_CODE", "open-sesame-42")
    files = private_inputs(tmp_path / "in")
    campaign = tmp_path / "campaign.toml"
    campaign.write_text(f"""
[[areas]]
name = "planken"
precincts = "{LI / 'municipalities.geojson'}"
precinct_id = "municipality_id"
addresses = "{LI / 'osm_addresses_liechtenstein_2024.csv'}"
network = "{LI / 'liechtenstein-2024-03-03.osm.pbf'}"
universe = {json.dumps(PRIVATE_UNIVERSE)}
voters = "in/voters.csv"
voters_flag = ["priority"]
balance_on = "voters"
opt_outs = "in/opt_outs.csv"
pseudonymize = true
secret_file = "in/secret.key"
lock_maps = true
volunteer_field = ["voters", "flag_priority"]
network_profile = "walk"
lang = "en"
""", encoding="utf-8")
    run_campaign(load_campaign(campaign), tmp_path / "batch")
    code = main(["-q", "cut", "--precincts", str(LI / "municipalities.geojson"),
                 "--precinct-id", "municipality_id",
                 "--addresses", str(LI / "osm_addresses_liechtenstein_2024.csv"),
                 "--network", str(LI / "liechtenstein-2024-03-03.osm.pbf"),
                 "--universe", ",".join(PRIVATE_UNIVERSE),
                 "--voters", str(files["voters"]), "--voters-flag", "priority",
                 "--balance-on", "voters", "--opt-outs", str(files["opt_outs"]),
                 "--pseudonymize", "--secret-file", str(files["secret_file"]), "--lock-maps",
                 "--volunteer-field", "voters", "--volunteer-field", "flag_priority",
                 "--network-profile", "walk", "--lang", "en", "--out", str(tmp_path / "cut")])
    assert code == 0
    batch_files = tree(tmp_path / "batch" / "planken")
    batch_files.pop(RECORD_NAME)
    cut_files = tree(tmp_path / "cut")
    assert sorted(cut_files) == sorted(batch_files)
    assert [k for k in cut_files if cut_files[k] != batch_files[k]] == []
    # the options took effect in both: doors opted out, voters balanced, maps locked, pseudonyms
    report = json.loads(batch_files["report.json"])
    assert report["unassigned"]["opted_out"] > 0 and report["unassigned"]["no_voters"] > 0
    assert report["params"]["weight_column"] == "voters"
    pages = [k for k in batch_files if k.startswith("maps/") and k.endswith(".html")]
    assert pages and all(b"PBKDF2" in batch_files[k] for k in pages)
    opted = set(files["opt_outs"].read_text(encoding="utf-8").split()[1:])
    assigned = batch_files["exports/assignments.csv"].decode("utf-8")
    assert "LI0" in assigned and not any(a in assigned for a in opted)
    assert b"LI0" not in batch_files["exports/app/turfs.json"]  # pseudonyms, not address ids


def test_the_resume_record_holds_what_changes_the_outputs(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from knockin_geo.batch import _expected_record

    monkeypatch.delenv("KNOCKIN_GEO_SECRET", raising=False)
    monkeypatch.setenv("KNOCKIN_GEO_MAP_CODE", "open-sesame-42")
    files = private_inputs(tmp_path / "in")

    def record(**change: object) -> dict:
        keys = {"addresses": str(LI / "osm_addresses_liechtenstein_2024.csv"),
                "network": str(LI / "liechtenstein-2024-03-03.osm.pbf"),
                "pseudonymize": True, "secret_file": str(files["secret_file"]),
                "lock_maps": True, **change}
        path = tmp_path / "c.toml"
        path.write_text("[[areas]]\nname = \"a\"\n" + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in keys.items()), encoding="utf-8")
        area = load_campaign(path).areas[0]
        return _expected_record(area, {p: "x" for p in area.files().values()})

    first = record()
    assert record() == first
    assert record(network_profile="walk")["params"] != first["params"]
    assert record(opt_outs=str(files["opt_outs"]))["inputs"] != first["inputs"]
    other = tmp_path / "other.key"
    other.write_text("another campaign secret, 16+ bytes\n", encoding="utf-8")
    changed = record(secret_file=str(other))["privacy"]
    assert changed["secret"] != first["privacy"]["secret"]
    assert changed["map_lock"] != first["privacy"]["map_lock"]  # the secret keys the salts
    monkeypatch.setenv("KNOCKIN_GEO_MAP_CODE", "another-code")
    new_code = record()["privacy"]
    assert new_code["secret"] == first["privacy"]["secret"]
    assert new_code["map_lock"] != first["privacy"]["map_lock"]
    # neither the secret nor the code is written in the record
    text = json.dumps(first)
    assert "campaign secret" not in text and "open-sesame" not in text


def test_area_paths_are_relative_to_the_campaign_file(tmp_path: Path) -> None:
    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "universe.txt").write_text("# bureaux\n1155954\n", encoding="utf-8")
    path = write_campaign(tmp_path, extra="download = true\n")
    assert "area 'liechtenstein': unknown key 'download': an area's network is a file" \
        in problems_of(path)
    text = write_campaign(tmp_path).read_text(encoding="utf-8")
    path.write_text(text.replace(f"universe = {json.dumps(LI_UNIVERSE)}",
                                 'universe = "@lists/universe.txt"'), encoding="utf-8")
    assert load_campaign(path).area("liechtenstein").config.snap.universe == ("1155954",)
