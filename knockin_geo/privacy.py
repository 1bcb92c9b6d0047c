"""Privacy by default: pseudonymous ids, opt-outs, personal-column detection, audit log, locks.

The Knockin lesson: the files handed to volunteers are where personal data leaks. knockin_geo's
volunteer-facing outputs (phone maps, walk lists, GPX, KML, the canvasser-app JSON, packets)
carry only the fields in :data:`knockin_geo.schema.VOLUNTEER_ALLOWED_FIELDS`; this module adds:

* :func:`pseudonymize`: a keyed hash (HMAC-SHA256) of ``address_id`` with a campaign secret, so a
  volunteer file never holds the contact database's ids; the director's files keep the mapping;
* :func:`read_opt_outs` / :func:`apply_opt_outs`: a do-not-knock list by address id or by
  address; those doors get status ``opted_out`` and never reach a turf or a volunteer file;
* :func:`personal_columns`: columns that look personal by name or by content;
* :func:`append_audit`: one JSON line per export (who, which turfs, which files with sha256,
  when);
* :func:`lock_html`: a volunteer page encrypted with a passphrase (PBKDF2-SHA256 + AES-256-GCM),
  opened in the browser with WebCrypto, so a forwarded file shows nothing without the code;
  :class:`MapLock` locks a plan's phone maps with salts and nonces that reveal nothing about
  the page or the code, and the same bytes on every run.
"""

from __future__ import annotations

import base64
import datetime as dt
import getpass
import hashlib
import hmac
import io
import json
import logging
import os
import re
import secrets
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

from knockin_geo import schema
from knockin_geo._errors import InputError
from knockin_geo.io import read_text, sniff_delimiter

logger = logging.getLogger(__name__)

#: Environment variable holding the campaign secret for pseudonymous ids.
SECRET_ENV = "KNOCKIN_GEO_SECRET"
#: Length of a pseudonymous id (hex characters of the HMAC).
PSEUDO_ID_LENGTH = 16
#: PBKDF2 iterations for locked pages (OWASP 2023 recommendation for PBKDF2-HMAC-SHA256).
PBKDF2_ITERATIONS = 600_000

_PERSONAL_NAME = re.compile(
    r"(^|_)(first_?name|last_?name|given_?name|family_?name|surname|name|nom|prenom|"
    r"nom_?naissance|full_?name|contact|phone|telephone|tel|mobile|portable|cell|e_?mail|"
    r"courriel|mail|birth|date_?of_?birth|dob|naissance|age|sex|gender|genre|party|parti|"
    r"affiliation|vanid|voter_?id|score|support|religion|ethni)",
    re.IGNORECASE,
)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[\d\s().-]{8,}$")
_DATE = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}$")


def load_secret(*, env: str = SECRET_ENV, key_file: str | os.PathLike[str] | None = None) -> bytes:
    """Return the campaign secret used for pseudonymous ids.

    Parameters
    ----------
    env
        Environment variable to read first.
    key_file
        A file holding the secret (its bytes, stripped), used when the variable is unset.

    Returns
    -------
    bytes
        The secret (at least 16 bytes).

    Raises
    ------
    InputError
        No secret, or one too short to be safe.
    """
    value: bytes | None = None
    if os.environ.get(env):
        value = os.environ[env].encode("utf-8")
    elif key_file is not None:
        path = Path(key_file)
        if not path.is_file():
            msg = f"secret key file not found: {path}"
            raise InputError(msg, path=str(path))
        value = path.read_bytes().strip()
    if not value:
        msg = (
            f"no campaign secret: set {env} or give a key file with --secret-file FILE "
            "(key_file= in Python). Create one with "
            "`python -c \"import secrets; print(secrets.token_hex(32))\" > campaign.key`"
        )
        raise InputError(msg)
    if len(value) < 16:
        msg = f"the campaign secret is too short ({len(value)} bytes): use at least 16"
        raise InputError(msg)
    return value


def new_secret() -> str:
    """Return a fresh random campaign secret (64 hex characters)."""
    return secrets.token_hex(32)


def pseudonymize(
    ids: Iterable[Any], secret: bytes, *, length: int = PSEUDO_ID_LENGTH
) -> np.ndarray:
    """Return keyed pseudonyms of ids: ``HMAC-SHA256(secret, id)``, hex, truncated.

    The same id and secret always give the same pseudonym; another secret gives unrelated ones;
    without the secret the ids cannot be recovered or checked against a guess.

    Parameters
    ----------
    ids
        The ids (converted to ``str``).
    secret
        The campaign secret (:func:`load_secret`).
    length
        Hex characters kept (16 = 64 bits; collisions are checked).

    Returns
    -------
    numpy.ndarray
        Pseudonymous ids (object dtype), in the input order.
    """
    if not secret:
        msg = "an empty secret gives no protection"
        raise InputError(msg)
    out = np.array(
        [
            hmac.new(secret, str(i).encode("utf-8"), hashlib.sha256).hexdigest()[:length]
            for i in ids
        ],
        dtype=object,
    )
    if len(set(out.tolist())) != len(out) and len(set(map(str, ids))) == len(out):
        msg = "pseudonym collision: use a longer length"
        raise InputError(msg)
    return out


def _normalize_address(number: pd.Series, street: pd.Series) -> pd.Series:
    def norm(s: pd.Series) -> pd.Series:
        s = s.fillna("").astype(str).map(
            lambda x: unicodedata.normalize("NFKD", x).encode("ascii", "ignore").decode("ascii")
        )
        return s.str.lower().str.replace(r"[^a-z0-9]+", " ", regex=True).str.strip()

    return norm(number) + "|" + norm(street)


def read_opt_outs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a do-not-knock list.

    Parameters
    ----------
    path
        CSV with an ``address_id`` column, or ``housenumber`` and ``street`` columns (case and
        accents ignored), or both. Other columns (a reason, a date) are ignored and never copied.
        A list of one column without a header holds one address id per line (the first line is
        taken as an id when it holds a digit). Delimiter (``,``, ``;``, tab or ``|``), encoding
        and BOM are detected.

    Returns
    -------
    pandas.DataFrame
        Columns ``address_id`` and ``address_key`` (normalised "number|street"), strings.
    """
    p, text = read_text(path, "opt-out")
    try:
        raw = pd.read_csv(io.StringIO(text), sep=sniff_delimiter(text), header=None, dtype=str,
                          keep_default_na=False, skip_blank_lines=True, engine="python")
    except Exception as exc:
        msg = f"cannot read the opt-out file {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc
    raw = raw.fillna("")  # short rows
    header = [str(h).strip().lstrip("\ufeff").strip() for h in raw.iloc[0]] if len(raw) else []
    cols = {re.sub(r"[\s\-]+", "_", h.lower()): i for i, h in reversed(list(enumerate(header)))}
    has_id = "address_id" in cols
    has_addr = "housenumber" in cols and "street" in cols
    if not (has_id or has_addr):
        # one column whose first line holds a digit: ids without a header (a header naming
        # another column, "name" or "adresse", is refused rather than read as an id)
        if raw.shape[1] != 1 or not any(ch.isdigit() for ch in header[0]):
            msg = (
                f"the opt-out file {p} needs an address_id column, or housenumber and street "
                f"columns; it has {header} (a list of one column may also hold address ids, "
                "one per line, without a header)"
            )
            raise InputError(msg, path=str(p))
        logger.info("opt-out file %s: one column without a known header, read as %d address "
                    "ids (the first line included)", p, len(raw))
        return pd.DataFrame({"address_id": raw[0].str.strip().to_numpy(dtype=object),
                             "address_key": ""}, index=pd.RangeIndex(len(raw)))
    frame = raw.iloc[1:].reset_index(drop=True)
    out = pd.DataFrame(index=frame.index)
    out["address_id"] = frame[cols["address_id"]].str.strip() if has_id else ""
    out["address_key"] = (
        _normalize_address(frame[cols["housenumber"]], frame[cols["street"]]) if has_addr else ""
    )
    return out


def apply_opt_outs(doors: pd.DataFrame, opt_outs: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Mark opted-out doors: status ``opted_out`` (they never reach a turf).

    Parameters
    ----------
    doors
        Doors indexed by ``address_id`` with ``housenumber``, ``street`` and ``status``.
    opt_outs
        From :func:`read_opt_outs`.

    Returns
    -------
    tuple
        A copy of ``doors`` with the statuses updated, and how many doors were opted out.
    """
    out = doors.copy()
    ids = set(opt_outs["address_id"].astype(str)) - {""}
    keys = set(opt_outs["address_key"].astype(str)) - {"", "|"}
    hit = out.index.astype(str).isin(ids)
    if keys:
        key = _normalize_address(out[schema.HOUSENUMBER], out[schema.STREET])
        hit |= key.isin(keys).to_numpy()
    status = out[schema.STATUS].to_numpy(dtype=object).copy()
    status[hit] = "opted_out"
    out[schema.STATUS] = status
    n = int(hit.sum())
    matched_ids = len(ids & set(out.index.astype(str)))
    if len(ids) > matched_ids:
        logger.warning("%d opt-out ids match no address", len(ids) - matched_ids)
    logger.info("%d doors opted out", n)
    return out, n


def personal_columns(frame: pd.DataFrame, *, sample: int = 200) -> dict[str, str]:
    """Return the columns that look personal, by name or by content, with the reason.

    Parameters
    ----------
    frame
        Any table (a voter or contact file).
    sample
        Values per column inspected.

    Returns
    -------
    dict
        ``column -> reason`` (``name`` or ``content: e-mails/phone numbers/dates``).
    """
    out: dict[str, str] = {}
    for col in frame.columns:
        name = str(col)
        if name in (schema.ADDRESS_ID, schema.HOUSENUMBER, schema.STREET, schema.UNIT,
                    schema.HOUSEHOLDS, schema.PRECINCT_ID, schema.TURF_ID, "geometry"):
            continue
        if _PERSONAL_NAME.search(name.replace("-", "_").replace(" ", "_")):
            out[name] = "name"
            continue
        if pd.api.types.is_bool_dtype(frame[col]) or _measure(frame[col]):
            continue  # flags and measures (offsets, coordinates): never a phone or a date
        values = _first_texts(frame[col], sample)
        if len(values) == 0:
            continue
        for pattern, what in ((_EMAIL, "e-mails"), (_PHONE, "phone numbers"), (_DATE, "dates")):
            if values.str.match(pattern).mean() > 0.5:
                out[name] = f"content: {what}"
                break
    return out


def _first_texts(column: pd.Series, sample: int) -> pd.Series:
    """Return the first ``sample`` non-blank values of a column, as stripped text.

    Reads the column in growing chunks and stops once it has them: the same values as
    stripping the whole column, without converting all of it (a commune has 50k addresses).
    """
    values = column.dropna()
    parts = []
    start, size, found = 0, max(sample, 1), 0
    while start < len(values) and found < sample:
        chunk = values.iloc[start:start + size].astype(str).str.strip()
        chunk = chunk[chunk != ""]
        parts.append(chunk)
        found += len(chunk)
        start, size = start + size, size * 4
    return pd.concat(parts).head(sample) if parts else values.iloc[:0]


def _measure(values: pd.Series) -> bool:
    """Whether a column holds measures: floats with a fractional part.

    A phone number read as a float (``612345678.0``) has none and is still inspected.
    """
    if not pd.api.types.is_float_dtype(values):
        return False
    v = values.dropna().to_numpy(dtype=float)
    return bool(len(v)) and bool((v % 1 != 0).any())


def append_audit(
    log_path: str | os.PathLike[str],
    *,
    action: str,
    files: Iterable[str | os.PathLike[str]],
    turfs: Iterable[str] = (),
    recipient: str | None = None,
    user: str | None = None,
    extra: Mapping[str, Any] | None = None,
    moved: tuple[Path, Path] | None = None,
) -> dict[str, Any]:
    """Append one record to the audit log (JSON lines): who exported what, to whom, when.

    Parameters
    ----------
    log_path
        The log file (created if missing; only ever appended to).
    action
        What happened (``export``, ``packet``...).
    files
        Files handed out: their paths, sizes and sha256 are recorded.
    turfs
        Turf ids concerned.
    recipient
        Canvasser id the files are for, if any.
    user
        Who ran the export (default: the operating-system user).
    extra
        More fields to record.
    moved
        ``(built, final)``: the files were written under the folder ``built``, which is then
        renamed to ``final``; their paths are recorded under ``final``.

    Returns
    -------
    dict
        The record written.
    """
    recs = []
    for f in files:
        p = Path(f)
        shown = moved[1] / p.relative_to(moved[0]) if moved is not None else p
        if p.is_file():
            recs.append({"path": str(shown), "bytes": p.stat().st_size,
                         "sha256": hashlib.sha256(p.read_bytes()).hexdigest()})
    record = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "user": user or _user(),
        "action": action,
        "recipient": recipient,
        "turfs": sorted(str(t) for t in turfs),
        "files": recs,
        **dict(extra or {}),
    }
    path = Path(log_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(record, ensure_ascii=False, sort_keys=True) + "\n")
    return record


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no user database (containers)
        return "unknown"


_LOCKED = """<!DOCTYPE html>
<html lang="{lang}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;margin:0;display:flex;min-height:100vh;
align-items:center;justify-content:center;background:#1f3b63}}
form{{background:#fff;padding:24px;border-radius:8px;width:min(90vw,360px)}}
input,button{{font-size:18px;width:100%;min-height:48px;box-sizing:border-box;margin-top:10px}}
button{{background:#1f3b63;color:#fff;border:0;border-radius:6px}}
#err{{color:#b00020;min-height:1.4em}}
</style></head>
<body>
<form id="f"><b>{prompt}</b>
<input id="code" type="password" autocomplete="off" autofocus aria-label="{prompt}">
<button type="submit">{open}</button><div id="err" role="alert"></div></form>
<script>
var LOCK = {payload};
function b64(s) {{ return Uint8Array.from(atob(s), function (c) {{ return c.charCodeAt(0); }}); }}
document.getElementById("f").addEventListener("submit", async function (ev) {{
  ev.preventDefault();
  var err = document.getElementById("err");
  err.textContent = "";
  try {{
    var pass = new TextEncoder().encode(document.getElementById("code").value);
    var base = await crypto.subtle.importKey("raw", pass, "PBKDF2", false, ["deriveKey"]);
    var key = await crypto.subtle.deriveKey(
      {{name: "PBKDF2", salt: b64(LOCK.salt), iterations: LOCK.iterations, hash: "SHA-256"}},
      base, {{name: "AES-GCM", length: 256}}, false, ["decrypt"]);
    var plain = await crypto.subtle.decrypt({{name: "AES-GCM", iv: b64(LOCK.iv)}}, key,
                                            b64(LOCK.data));
    var html = new TextDecoder().decode(plain);
    document.open(); document.write(html); document.close();
  }} catch (e) {{ err.textContent = "{wrong}"; }}
}});
</script></body></html>
"""

_LOCK_LABELS = {
    "fr": {"prompt": "Code d'accès", "open": "Ouvrir", "wrong": "Code incorrect",
           "title": "Carte protégée"},
    "en": {"prompt": "Access code", "open": "Open", "wrong": "Wrong code",
           "title": "Protected map"},
}


def lock_html(
    html: str,
    passphrase: str,
    *,
    lang: str = "fr",
    iterations: int = PBKDF2_ITERATIONS,
    salt: bytes | None = None,
    iv: bytes | None = None,
) -> str:
    """Encrypt an HTML page so that it opens only with a passphrase.

    The page is encrypted with AES-256-GCM under a key derived from the passphrase with
    PBKDF2-HMAC-SHA256 (``iterations``, random 16-byte salt); the result is a small page that asks
    for the code and decrypts in the browser with WebCrypto. Nothing of the original page is
    readable without the code. Random salt and nonce by default; to lock a plan's maps with the
    same bytes on every run, use :class:`MapLock` (never a salt or nonce derived from the page).

    Parameters
    ----------
    html
        The page to protect.
    passphrase
        The access code given to the volunteer (at least 6 characters).
    lang
        ``fr`` or ``en`` for the prompt.
    iterations
        PBKDF2 iterations.
    salt, iv
        Fixed salt (16 bytes) and nonce (12 bytes); random by default.

    Returns
    -------
    str
        The locked page.
    """
    _check_code(passphrase)
    salt = salt if salt is not None else secrets.token_bytes(16)
    iv = iv if iv is not None else secrets.token_bytes(12)
    key = _page_key(passphrase, salt, iterations)
    return _sealed_page(html, key, salt, iv, iterations, lang)


def _check_code(passphrase: str) -> None:
    if len(passphrase) < 6:
        msg = "the access code must have at least 6 characters"
        raise InputError(msg)


def _page_key(passphrase: str, salt: bytes, iterations: int) -> bytes:
    """Return the AES-256 key of a locked page: PBKDF2-HMAC-SHA256 (as the browser derives it)."""
    kdf = PBKDF2HMAC(algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations)
    return kdf.derive(passphrase.encode("utf-8"))


def _sealed_page(
    html: str, key: bytes, salt: bytes, iv: bytes, iterations: int, lang: str
) -> str:
    """Encrypt ``html`` (AES-256-GCM) into the page that asks for the code."""
    data = AESGCM(key).encrypt(iv, html.encode("utf-8"), None)
    payload = {
        "salt": base64.b64encode(salt).decode("ascii"),
        "iv": base64.b64encode(iv).decode("ascii"),
        "iterations": iterations,
        "data": base64.b64encode(data).decode("ascii"),
    }
    labels = _LOCK_LABELS.get(lang, _LOCK_LABELS["en"])
    return _LOCKED.format(lang=lang, payload=json.dumps(payload), **labels)


#: Domain label of every value derived for a locked map (changing it changes every output).
_LOCK_LABEL = b"knockin-geo/map-lock/v1"


def _frame(*parts: bytes) -> bytes:
    """Length-prefixed concatenation: no two different part lists give the same bytes."""
    return b"".join(len(p).to_bytes(8, "big") + p for p in parts)


@dataclass(frozen=True)
class MapLock:
    """How the phone maps of a plan are locked, deterministically (same plan, same bytes).

    Each page is encrypted with AES-256-GCM under ``key = PBKDF2-HMAC-SHA256(code, salt)``
    (:data:`PBKDF2_ITERATIONS`), which the browser derives again from the code typed. The salt
    and the nonce are published in the page; they are derived so that they reveal nothing about
    the page or the code:

    * ``salt = HMAC-SHA256(secret, label | "salt" | turf_id)[:16]`` with the campaign secret
      (``$KNOCKIN_GEO_SECRET``), else ``SHA-256(label | "salt" | turf_id)[:16]``: it depends
      on the turf only, never on the page or the code;
    * ``nonce = HMAC-SHA256(HMAC-SHA256(key, label | "nonce key"),
      label | "nonce" | turf_id | SHA-256(page))[:12]``: keyed by the page key, so nobody
      without the code can compute it for a guessed page, and two different pages of a turf
      (same key) get different nonces (a repeat would need a 96-bit collision), while the same
      page gives the same nonce, hence the same bytes.

    Checking a guessed code costs the full PBKDF2 whatever is tried (the nonce and the
    ciphertext both need the key).

    Parameters
    ----------
    code
        The access code (at least 6 characters).
    secret
        The campaign secret (:func:`load_secret`); the salts are then unpredictable without it,
        which also stops precomputed code tables for common turf ids.
    iterations
        PBKDF2 iterations.
    """

    code: str = field(repr=False)
    secret: bytes | None = field(default=None, repr=False)
    iterations: int = PBKDF2_ITERATIONS

    def __post_init__(self) -> None:
        _check_code(self.code)

    def salt(self, turf_id: str) -> bytes:
        """Return the PBKDF2 salt of a turf's page (independent of the page and the code)."""
        msg = _frame(_LOCK_LABEL, b"salt", turf_id.encode("utf-8"))
        if self.secret:
            return hmac.new(self.secret, msg, hashlib.sha256).digest()[:16]
        return hashlib.sha256(msg).digest()[:16]

    @staticmethod
    def nonce(key: bytes, turf_id: str, page: bytes) -> bytes:
        """Return the AES-GCM nonce of a page, keyed by the page key (see the class)."""
        nonce_key = hmac.new(key, _frame(_LOCK_LABEL, b"nonce key"), hashlib.sha256).digest()
        msg = _frame(_LOCK_LABEL, b"nonce", turf_id.encode("utf-8"),
                     hashlib.sha256(page).digest())
        return hmac.new(nonce_key, msg, hashlib.sha256).digest()[:12]

    def lock(self, html: str, turf_id: str, *, lang: str = "fr") -> str:
        """Return the locked page of a turf (same inputs, same bytes).

        Parameters
        ----------
        html
            The page (:func:`knockin_geo.maps.volunteer_map_html`).
        turf_id
            Its turf.
        lang
            ``fr`` or ``en`` for the code prompt.

        Returns
        -------
        str
            The page that asks for the code and decrypts in the browser.
        """
        salt = self.salt(turf_id)
        key = _page_key(self.code, salt, self.iterations)
        iv = self.nonce(key, turf_id, html.encode("utf-8"))
        return _sealed_page(html, key, salt, iv, self.iterations, lang)


@dataclass(frozen=True)
class FieldPolicy:
    """Which door fields may appear in volunteer-facing outputs (walk lists, app JSON).

    By default only :data:`knockin_geo.schema.VOLUNTEER_ALLOWED_FIELDS` do. ``extra`` adds door
    columns (e.g. ``voters``, a ``flag_priority``); a column that looks personal
    (:func:`personal_columns`) must also be listed in ``allow_personal``, and allowing it is
    logged as a warning.

    Parameters
    ----------
    extra
        Additional door columns shown to volunteers.
    allow_personal
        Columns allowed although they look personal (explicit, logged).
    """

    extra: tuple[str, ...] = ()
    allow_personal: tuple[str, ...] = ()

    def check(self, doors: pd.DataFrame) -> tuple[str, ...]:
        """Return the extra fields after checking them against the doors.

        Parameters
        ----------
        doors
            The plan's doors.

        Returns
        -------
        tuple of str
            The extra fields, in order.

        Raises
        ------
        InputError
            A field is missing, or looks personal without being allowed explicitly.
        """
        problems = [f"no door column {f!r}" for f in self.extra if f not in doors.columns]
        if problems:
            msg = (
                "the field policy (--volunteer-field) names unknown columns; door columns are: "
                + ", ".join(repr(c) for c in doors.columns if c != "geometry")
            )
            raise InputError(msg, problems)
        looks = personal_columns(doors[list(self.extra)]) if self.extra else {}
        refused = [f for f in looks if f not in self.allow_personal]
        if refused:
            msg = "the field policy would show personal data to volunteers"
            raise InputError(msg, [
                f"{f!r} looks personal ({looks[f]}): allow it explicitly with "
                f"--allow-personal-field {f} if this is intended" for f in refused
            ])
        for f in looks:
            logger.warning("field policy: personal field %r is shown to volunteers", f)
        return tuple(self.extra)


def read_voter_file(path: str | os.PathLike[str], *, key: str = schema.ADDRESS_ID) -> pd.DataFrame:
    """Read a voter or contact file (CSV) keyed by address.

    Its columns are personal by default: they are used to count voters per door and to carry
    the targeting flags asked for, and never copied to any output. Columns that look personal
    are named in the log (never their values).

    Parameters
    ----------
    path
        CSV file (delimiter and encoding detected), one row per voter.
    key
        Column holding the address id of each voter's door.

    Returns
    -------
    pandas.DataFrame
        The file, as strings.
    """
    p, text = read_text(path, "voter file")
    try:
        frame = pd.read_csv(io.StringIO(text), sep=sniff_delimiter(text), dtype=str,
                            keep_default_na=False)
    except Exception as exc:
        msg = f"cannot read the voter file {p}: {exc}"
        raise InputError(msg, path=str(p)) from exc
    cols = {c.strip().lower(): c for c in frame.columns}
    if key.lower() not in cols:
        msg = (
            f"the voter file {p} has no column {key!r} linking voters to doors; its columns "
            f"are {list(frame.columns)} (choose one with --voters-key)"
        )
        raise InputError(msg, path=str(p))
    frame = frame.rename(columns={cols[key.lower()]: key})
    flagged = personal_columns(frame)
    if flagged:
        logger.info("voter file: personal columns kept out of every output: %s",
                    ", ".join(sorted(flagged)))
    return frame


def join_voters(
    doors: pd.DataFrame,
    voters: pd.DataFrame,
    *,
    key: str = schema.ADDRESS_ID,
    flags: Iterable[str] = (),
) -> pd.DataFrame:
    """Count voters per door and carry targeting flags onto the doors.

    Parameters
    ----------
    doors
        Doors indexed by ``address_id``.
    voters
        From :func:`read_voter_file`.
    key
        The voters' column holding the door's address id.
    flags
        Voter columns holding a yes/no targeting flag (``1``, ``true``, ``yes``, ``oui``...): the
        door gets ``flag_<name>`` True when any of its voters has it.

    Returns
    -------
    pandas.DataFrame
        A copy of ``doors`` with ``voters`` (int, 0 when none) and the ``flag_*`` columns. Voters
        whose key matches no door are counted in ``attrs["unmatched_voters"]`` and logged.
    """
    out = doors.copy()
    keys = voters[key].astype(str).str.strip()
    counts = keys.value_counts()
    ids = out.index.astype(str)
    out["voters"] = counts.reindex(ids).fillna(0).astype(np.int64).to_numpy()
    unmatched = int((~keys.isin(set(ids))).sum())
    if unmatched:
        logger.warning("%d voters have an address id that matches no door", unmatched)
    out.attrs["unmatched_voters"] = unmatched
    truthy = {"1", "true", "yes", "y", "oui", "o", "x", "vrai"}
    for flag in flags:
        if flag not in voters.columns:
            msg = (
                f"the voter file has no flag column {flag!r} (--voters-flag); its columns are "
                f"{list(voters.columns)}"
            )
            raise InputError(msg)
        on = voters[flag].astype(str).str.strip().str.lower().isin(truthy)
        flagged = set(keys[on.to_numpy()])
        out[f"flag_{_slug(flag)}"] = ids.isin(flagged)
    return out


def _slug(name: str) -> str:
    text = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")
