"""Locked phone maps: salt and nonce reveal nothing about the page or the code, never repeat.

The page is decrypted here with the ``cryptography`` primitives and the published payload only
(PBKDF2 then AES-GCM, as the browser does), not with the code that locks it.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
from pathlib import Path

import pytest
from conftest import NANTES, open_offline
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from knockin_geo.cli.main import main

from knockin_geo._errors import InputError
from knockin_geo.privacy import MapLock

FAST = 1_000  # PBKDF2 iterations for the unit tests (the CLI test uses the real number)
SECRET = b"test-campaign-secret-0123456789abcdef"


def _payload(locked: str) -> dict[str, bytes | int]:
    m = re.search(r"var LOCK = (\{.*?\});", locked)
    assert m is not None
    p = json.loads(m.group(1))
    return {"salt": base64.b64decode(p["salt"]), "iv": base64.b64decode(p["iv"]),
            "data": base64.b64decode(p["data"]), "iterations": p["iterations"]}


def _decrypt(locked: str, code: str) -> str:
    p = _payload(locked)
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=p["salt"],
                     iterations=p["iterations"])
    key = kdf.derive(code.encode("utf-8"))
    return AESGCM(key).decrypt(p["iv"], p["data"], None).decode("utf-8")


def _pages(n: int) -> list[str]:
    """Different pages, many differing by one character only."""
    base = "<html><body>" + "door 12 Rue de la Paix; " * 50 + "</body></html>"
    return [base.replace("12", str(i), 1) for i in range(n // 2)] + \
        [base + " " * i for i in range(1, n - n // 2 + 1)]


def test_salt_depends_on_the_turf_only(tmp_path: Path) -> None:
    a, b = MapLock("code-123456", iterations=FAST), MapLock("other-654321", iterations=FAST)
    for turf in ("0101-01", "0101-02"):
        salts = {_payload(lock.lock(p, turf))["salt"] for p in _pages(6) for lock in (a, b)}
        assert len(salts) == 1  # not the page, not the code
    assert a.salt("0101-01") != a.salt("0101-02")
    # with the campaign secret, nobody can compute it (nor precompute codes for a turf)
    s1 = MapLock("code-123456", SECRET, iterations=FAST).salt("0101-01")
    s2 = MapLock("code-123456", SECRET[::-1], iterations=FAST).salt("0101-01")
    assert len({s1, s2, a.salt("0101-01")}) == 3
    # the old salt, a hash of turf and page, let anyone confirm a guessed page
    page = _pages(1)[0]
    old = hashlib.sha256(b"knockin-salt|0101-01|" + page.encode()).digest()[:16]
    assert _payload(a.lock(page, "0101-01"))["salt"] != old


def test_nonce_is_keyed_so_a_guessed_page_cannot_be_checked() -> None:
    page = _pages(1)[0]
    ivs = {_payload(MapLock(code, iterations=FAST).lock(page, "T1"))["iv"]
           for code in ("code-123456", "code-123457", "another code")}
    assert len(ivs) == 3  # the same page gives another nonce under another code
    body = page.encode()
    unkeyed = {hashlib.sha256(body).digest()[:12],
               hashlib.sha256(b"knockin-iv|code-123456|" + body).digest()[:12]}
    assert not ivs & unkeyed


def test_two_different_pages_never_share_key_and_nonce() -> None:
    seen: dict[tuple[str, bytes, bytes], str] = {}
    locks = [MapLock("code-123456", iterations=FAST), MapLock("code-123456", SECRET, FAST)]
    for lock, turf, page in itertools.product(locks, ("T1", "T2", "0101-01"), _pages(40)):
        p = _payload(lock.lock(page, turf))
        key_nonce = (lock.code, p["salt"], p["iv"])  # the key is PBKDF2(code, salt)
        assert seen.setdefault(key_nonce, page) == page
    assert len(seen) == 2 * 3 * 40  # every (lock, turf, page) got its own key and nonce


def test_same_inputs_same_bytes_and_the_page_decrypts() -> None:
    page = _pages(1)[0]
    lock = MapLock("code-123456", SECRET, iterations=FAST)
    locked = lock.lock(page, "T1", lang="en")
    assert locked == MapLock("code-123456", SECRET, iterations=FAST).lock(page, "T1", lang="en")
    assert "Rue de la Paix" not in locked
    assert _decrypt(locked, "code-123456") == page
    with pytest.raises(InvalidTag):
        _decrypt(locked, "code-123457")
    with pytest.raises(InputError, match="6 characters"):
        MapLock("12345")


def test_locked_maps_of_a_cut_are_reproducible_and_open_with_the_code(
    browser, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KNOCKIN_GEO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KNOCKIN_GEO_MAP_CODE", "porte-42-bis")
    monkeypatch.setenv("KNOCKIN_GEO_SECRET", SECRET.decode())
    args = ["-q", "cut", "--precincts", str(NANTES / "precincts" /
                                            "bureaux_vote_nantes_2014.geojson"),
            "--addresses", str(NANTES / "addresses" / "adresses_nantes_commune_2013.csv"),
            "--network", str(NANTES / "osm" / "nantes_centre_2014-09.osm.pbf"),
            "--universe", "0101", "--lock-maps"]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--out", str(tmp_path / "b")]) == 0
    maps = sorted((tmp_path / "a" / "maps").glob("*.html"))
    assert len(maps) >= 2
    for m in maps:
        assert m.read_bytes() == (tmp_path / "b" / "maps" / m.name).read_bytes()
    # one salt per turf, under the campaign secret
    salts = [_payload(m.read_text(encoding="utf-8"))["salt"] for m in maps]
    assert len(set(salts)) == len(maps)
    assert salts[0] == MapLock("porte-42-bis", SECRET).salt(maps[0].stem)

    context, page, errors, _ = open_offline(browser, maps[0], 390, 844)
    try:
        assert page.locator(".kg-door").count() == 0
        page.fill("#code", "porte-42-bis")
        page.click("button")
        page.wait_for_selector(".kg-door", timeout=30000)
        assert page.locator(".kg-door").count() > 0
    finally:
        context.close()
    assert errors == []
