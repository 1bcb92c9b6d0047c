"""Privacy: no personal data in what volunteers get, opt-outs honoured, pseudonyms, locked maps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest

from knockin_geo import io, schema, streets
from knockin_geo._errors import InputError
from knockin_geo.export import read_canvassers
from knockin_geo.plan import TurfPlan, plan_turfs, write_plan
from knockin_geo.privacy import (
    apply_opt_outs,
    load_secret,
    lock_html,
    personal_columns,
    pseudonymize,
    read_opt_outs,
)

NANTES = Path(__file__).resolve().parents[1] / "data" / "nantes"
SECRET = b"test-campaign-secret-0123456789abcdef"


def fake_voters(doors: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A voter file made up in the test: names, phones, e-mails, birth dates per address."""
    rng = np.random.default_rng(seed)
    n = len(doors)
    first = np.array(["Zoltanette", "Quirinus", "Ysoline", "Bertrandine"])
    last = np.array(["Xylophanes", "Wuthering", "Vexillaire", "Ulmaceae"])
    return pd.DataFrame(
        {
            "first_name": first[rng.integers(0, 4, n)],
            "last_name": last[rng.integers(0, 4, n)],
            "phone": [f"+33 6 {rng.integers(10, 99)} {rng.integers(10, 99)} 77 {i % 89 + 10}"
                      for i in range(n)],
            "email": [f"voter{i}@example.invalid" for i in range(n)],
            "birth_date": ["1961-04-17"] * n,
        },
        index=doors.index,
    )


@pytest.fixture(scope="module")
def inputs() -> tuple:
    precincts = io.read_precincts(NANTES / "precincts" / "bureaux_vote_nantes_2014.geojson")
    doors = io.read_addresses(NANTES / "addresses" / "adresses_nantes_commune_2013.csv")
    net = streets.load_network(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf", cache=False)
    return precincts, doors, net


@pytest.fixture(scope="module")
def written(inputs: tuple, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TurfPlan]:
    precincts, doors, net = inputs
    personal = fake_voters(doors)
    with_voters = doors.join(personal)
    out = tmp_path_factory.mktemp("private")
    # opt-outs: 10 by id, 2 by address (number + street, case and accents ignored)
    base = plan_turfs(doors, net, precincts=precincts, universe=["0101", "0301"], route=False)
    in_turfs = base.doors[base.doors[schema.TURF_ID].notna()]
    by_id = in_turfs.index[:10].tolist()
    by_addr = in_turfs.iloc[20:22]
    opt = out.parent / "optouts.csv"
    rows = [{"address_id": a, "housenumber": "", "street": ""} for a in by_id]
    rows += [{"address_id": "", "housenumber": r[schema.HOUSENUMBER],
              "street": str(r[schema.STREET]).upper()} for _, r in by_addr.iterrows()]
    pd.DataFrame(rows).to_csv(opt, index=False)
    plan = plan_turfs(with_voters, net, precincts=precincts, universe=["0101", "0301"],
                      opt_outs=read_opt_outs(opt))
    cv = out.parent / "canvassers.csv"
    cv.write_text("canvasser_id,name,team,lon,lat,capacity\nV1,Ann,A,-1.553,47.217,2\n"
                  "V2,Bob,B,,,2\n", encoding="utf-8")
    write_plan(plan, out / "plan", canvassers=read_canvassers(cv), secret=SECRET,
               audit_log=out / "plan" / "audit.jsonl")
    plan.doors.attrs["opted_ids"] = by_id + by_addr.index.tolist()
    return out / "plan", plan


def test_no_personal_value_in_any_output_file(written: tuple[Path, TurfPlan]) -> None:
    out, _ = written
    secrets = [b"Zoltanette", b"Quirinus", b"Ysoline", b"Bertrandine", b"Xylophanes",
               b"Wuthering", b"Vexillaire", b"Ulmaceae", b"example.invalid", b"1961-04-17",
               b" 77 "]
    files = [p for p in out.rglob("*") if p.is_file() and p.name != "audit.jsonl"]
    assert any(p.suffix == ".gpx" for p in files)
    assert any("packets" in p.parts for p in files)
    assert any("maps" in p.parts for p in files)
    for path in files:
        data = path.read_bytes()
        for s in secrets:
            assert s not in data, f"{s!r} in {path.relative_to(out)}"


def test_opt_outs_are_excluded_and_counted(written: tuple[Path, TurfPlan]) -> None:
    out, plan = written
    ids = plan.doors.attrs["opted_ids"]
    d = plan.doors
    assert (d.loc[ids, schema.STATUS] == "opted_out").all()
    assert d.loc[ids, schema.TURF_ID].isna().all()
    assert plan.report["unassigned"]["opted_out"] == 12
    assert plan.report["opted_out"] == 12
    layer = pyogrio.read_dataframe(out / "plan.gpkg", layer="doors")
    assert (layer.set_index("address_id").loc[ids, "status"] == "opted_out").all()
    app = json.loads((out / "exports" / "app" / "turfs.json").read_text(encoding="utf-8"))
    shown = {door["address_id"] for t in app["turfs"] for door in t["doors_list"]}
    pseudo = set(pseudonymize(ids, SECRET))
    assert not (shown & pseudo)
    assert not (shown & set(ids))


def test_volunteer_files_carry_pseudonyms_and_the_director_keeps_the_mapping(
    written: tuple[Path, TurfPlan],
) -> None:
    out, plan = written
    app = json.loads((out / "exports" / "app" / "turfs.json").read_text(encoding="utf-8"))
    shown = [door["address_id"] for t in app["turfs"] for door in t["doors_list"]]
    real = set(plan.doors.index.astype(str))
    assert shown and not (set(shown) & real)
    mapping = pd.read_csv(out / "exports" / "assignments.csv", dtype=str)
    assert set(mapping["pseudo_id"]) == set(shown)
    assert (mapping["pseudo_id"] == pseudonymize(mapping["address_id"], SECRET)).all()
    kml = (out / "exports" / "turfs.kml").read_text(encoding="utf-8")
    assert not any(f">{a}<" in kml for a in mapping["address_id"][:50])


def test_pseudonyms_stable_with_one_secret_and_different_with_another() -> None:
    ids = ["1", "2", "44109_0101-12", "x"]
    a = pseudonymize(ids, SECRET)
    assert (a == pseudonymize(ids, SECRET)).all()
    b = pseudonymize(ids, b"another-secret-of-enough-length")
    assert not (a == b).any()
    assert len(set(a)) == len(ids)
    assert all(len(x) == 16 for x in a)


def test_secret_from_environment_or_key_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("KNOCKIN_GEO_SECRET", raising=False)
    with pytest.raises(InputError, match="no campaign secret"):
        load_secret()
    key = tmp_path / "campaign.key"
    key.write_text("0123456789abcdef0123\n", encoding="utf-8")
    assert load_secret(key_file=key) == b"0123456789abcdef0123"
    monkeypatch.setenv("KNOCKIN_GEO_SECRET", "short")
    with pytest.raises(InputError, match="too short"):
        load_secret()


def test_personal_columns_by_name_and_content() -> None:
    frame = pd.DataFrame({
        "address_id": ["1", "2"], "Nom": ["A", "B"], "tel_portable": ["x", "y"],
        "notes": ["a@b.fr", "c@d.org"], "col7": ["06 12 34 56 78", "+33 6 98 76 54 32"],
        "born": ["1970-01-02", "1980-03-04"], "households": [1, 2], "flag": ["y", "n"],
    })
    found = personal_columns(frame)
    assert set(found) == {"Nom", "tel_portable", "notes", "col7", "born"}
    assert found["notes"] == "content: e-mails"


def test_opt_outs_by_address_ignore_case_and_accents(inputs: tuple, tmp_path: Path) -> None:
    _, doors, _ = inputs
    row = doors[doors[schema.STREET].str.contains("é", na=False)].iloc[0]
    f = tmp_path / "o.csv"
    f.write_text(f"housenumber;street\n{row[schema.HOUSENUMBER]};"
                 f"{row[schema.STREET].upper().replace('É', 'E')}\n", encoding="utf-8")
    out, n = apply_opt_outs(doors, read_opt_outs(f))
    assert n >= 1
    assert out.loc[row.name, schema.STATUS] == "opted_out"
    assert doors.loc[row.name, schema.STATUS] == "ok"  # input untouched
    bad = tmp_path / "bad.csv"
    bad.write_text("name\nx\n", encoding="utf-8")
    with pytest.raises(InputError, match="address_id column"):
        read_opt_outs(bad)


def test_audit_log_records_every_export(written: tuple[Path, TurfPlan]) -> None:
    out, plan = written
    lines = [json.loads(x) for x in (out / "audit.jsonl").read_text("utf-8").splitlines()]
    assert lines[0]["action"] == "export"
    assert {r["recipient"] for r in lines[1:]} == {"V1", "V2"}
    for rec in lines:
        assert rec["when"] and rec["user"]
        for f in rec["files"]:
            import hashlib

            assert hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest() == f["sha256"]
    packet_turfs = {t for r in lines[1:] for t in r["turfs"]}
    assert packet_turfs <= set(plan.turfs.index)


def test_locked_map_opens_only_with_the_right_code(
    browser, written: tuple[Path, TurfPlan], tmp_path: Path
) -> None:
    from knockin_geo.maps import volunteer_map_html

    _, plan = written
    tid = plan.turfs.index[0]
    page_html = volunteer_map_html(plan, tid)
    locked = lock_html(page_html, "correct horse 42", iterations=10_000)
    assert "kg-door" not in locked and "Leaflet" not in locked
    path = tmp_path / "locked.html"
    path.write_text(locked, encoding="utf-8")
    n = int((plan.doors[schema.TURF_ID] == tid).sum())
    context = browser.new_context()
    context.route("http*://**/*", lambda r: r.abort())
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(path.as_uri())
    page.fill("#code", "wrong code!")
    page.click("button")
    page.wait_for_timeout(1500)
    assert page.locator("#err").inner_text() != ""
    assert page.locator(".kg-door").count() == 0
    page.fill("#code", "correct horse 42")
    page.click("button")
    page.wait_for_selector(".kg-door", timeout=15000)
    assert page.locator("#panel li[data-door]").count() == n  # every door, in the list
    context.close()
    assert errors == []
    with pytest.raises(InputError, match="6 characters"):
        lock_html(page_html, "123")


def test_phone_maps_carry_pseudonyms_not_address_ids(written: tuple[Path, TurfPlan]) -> None:
    out, plan = written
    assigned = plan.doors[plan.doors[schema.TURF_ID].notna()]
    pseudo = dict(zip(assigned.index.astype(str),
                      pseudonymize(assigned.index.astype(str), SECRET), strict=True))
    for page in sorted((out / "maps").iterdir()):
        html = page.read_text(encoding="utf-8")
        tid = page.stem
        mine = assigned[assigned[schema.TURF_ID] == tid].index.astype(str)
        assert any(pseudo[a] in html for a in mine), page.name
        assert not any(f'"{a}"' in html for a in mine), page.name


def test_voter_file_counts_voters_and_never_leaks(inputs: tuple, tmp_path: Path) -> None:
    """A voter file (names, phones, e-mails, a flag) balances turfs on voters; nothing leaks."""
    from knockin_geo.cli.main import main

    _, doors, _ = inputs
    rng = np.random.default_rng(3)
    sample = doors.index[doors.index.astype(str).str.len() > 0][:60000]
    picked = rng.choice(np.asarray(sample, dtype=object), size=9000, replace=True)
    voters = fake_voters(pd.DataFrame(index=pd.Index(picked)))
    voters.insert(0, "door", picked)
    voters["priority"] = np.where(rng.random(len(voters)) < 0.2, "oui", "non")
    vf = tmp_path / "voters.csv"
    voters.to_csv(vf, index=False, sep=";")
    out = tmp_path / "plan"
    code = main(["-q", "cut", "--precincts", str(NANTES / "precincts" /
                                                 "bureaux_vote_nantes_2014.geojson"),
                 "--addresses", str(NANTES / "addresses" / "adresses_nantes_commune_2013.csv"),
                 "--network", str(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"),
                 "--universe", "0101,0301", "--voters", str(vf), "--voters-key", "door",
                 "--voters-flag", "priority", "--balance-on", "voters", "--doors-per-turf", "60",
                 "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    layer = pyogrio.read_dataframe(out / "plan.gpkg", layer="doors").set_index("address_id")
    counts = pd.Series(picked).astype(str).value_counts()
    in_u = layer["precinct_id"].isin(["0101", "0301"])
    no_voter = in_u & ~layer.index.isin(counts.index)
    assert (layer.loc[no_voter & (layer["status"] != "no_street_nearby"), "status"]
            == "no_voters").all()
    # turf sizes are voters: the report's weights add up to the voters of the assigned doors
    assigned = layer[layer["status"] == "assigned"]
    total_voters = int(counts.reindex(assigned.index).fillna(0).sum())
    assert sum(t["weight"] for t in report["turfs"]) == pytest.approx(total_voters)
    for path in (p for p in out.rglob("*") if p.is_file() and p.name != "audit.jsonl"):
        data = path.read_bytes()
        for s in (b"Zoltanette", b"Xylophanes", b"example.invalid", b"1961-04-17"):
            assert s not in data, f"{s!r} in {path.relative_to(out)}"


def test_field_policy_refuses_personal_fields_unless_allowed(
    written: tuple[Path, TurfPlan], tmp_path: Path, caplog
) -> None:
    from knockin_geo.privacy import FieldPolicy

    _, plan = written
    doors = plan.doors.assign(voters=1)
    plan2 = TurfPlan(doors, plan.turfs, plan.routes, plan.precincts, plan.report, plan.params,
                     plan.network)
    # a harmless extra column is shown on the walk lists
    write_plan(plan2, tmp_path / "a", maps=False, exports=False,
               field_policy=FieldPolicy(extra=("voters",)))
    page = next((tmp_path / "a" / "walklists").glob("0*.html")).read_text(encoding="utf-8")
    assert "<th>voters</th>" in page
    # a personal one is refused, naming it and the way to allow it; nothing is written
    with pytest.raises(InputError, match="allow-personal-field phone"):
        write_plan(plan2, tmp_path / "b", maps=False, exports=False,
                   field_policy=FieldPolicy(extra=("phone",)))
    assert not (tmp_path / "b" / "walklists").exists()
    with pytest.raises(InputError, match="no door column"):
        write_plan(plan2, tmp_path / "b", field_policy=FieldPolicy(extra=("nope",)))
    # allowed explicitly: shown, and the choice is logged
    import logging

    with caplog.at_level(logging.WARNING, logger="knockin_geo.privacy"):
        write_plan(plan2, tmp_path / "c", maps=False, exports=False,
                   field_policy=FieldPolicy(extra=("phone",), allow_personal=("phone",)))
    assert "personal field 'phone' is shown" in caplog.text


def test_personal_columns_inspect_whole_floats_but_not_measures() -> None:
    frame = pd.DataFrame({
        "tel": [612345678.0, 698765432.0, 611223344.0],  # phones a spreadsheet made floats
        "offset_m": [12.34, 56.78, 9.1],  # a measure, not a phone
        "info": ["06 12 34 56 78", "+33 6 98 76 54 32", "06-11-22-33-44"],
    })
    found = personal_columns(frame)
    assert "offset_m" not in found
    assert found.get("info", "").startswith("content")
    assert "tel" in found  # by its name
    whole = frame.rename(columns={"tel": "x1"})
    assert "x1" in personal_columns(whole)  # by its content
