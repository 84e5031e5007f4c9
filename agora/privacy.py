"""Opt-out, erasure, retention, and the audit log that proves them (design §4).

A person asks to opt out or to be erased: the team adds a row to the requests file
(``platform,account,kind,requested_at``). `apply_requests` turns each new request into
pseudonyms and adds them to the tombstone list every connector checks before landing,
so nothing of that person lands again. An erasure also removes their rows from every
landing and quarantine file, rebuilds the warehouse *into a fresh file* and republishes
serving. `purge_retention` deletes partitions older than ``retention_days``.

Work that needs a rebuild is recorded in a journal (``<state>/privacy_pending.json``) and
finished by `complete_pending`: the DAG applies requests, purges, then rebuilds once, and
a run that fails half-way is finished by the next one. The journal holds pseudonyms only
until its work is done; the tombstone list holds them for good (that is its job).

The audit log (``<state>/privacy_audit.jsonl``, one JSON object a line) records what was
done and when, never who: a request id that is an HMAC of the request under the
pseudonym key, the kind, the request and completion times, and rows removed per layer.
Raw accounts and handles exist in memory only; log lines name requests by file:line.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import hmac
import json
import logging
import os
import posixpath
import re
import shutil
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import fsspec

from agora import locks
from agora.config import PLATFORMS, TEAM_PLATFORMS, AgoraConfig, ConfigError
from agora.pseudonym import pseudonym
from agora.storage import read_text, remove, write_text
from agora.tombstones import add_tombstones, load_tombstones
from connectors.base import HandleNotFound
from connectors.registry import AccountFormError
from connectors.registry import platform as _platform

log = logging.getLogger("agora.privacy")

KINDS = ("opt_out", "erasure")
#: Platforms whose records carry accounts; team-written sources hold none.
ACCOUNT_PLATFORMS = tuple(p for p in PLATFORMS if p not in TEAM_PLATFORMS)
REQUEST_COLUMNS = ("platform", "account", "kind", "requested_at")
AUDIT_FILE = "privacy_audit.jsonl"
JOURNAL_FILE = "privacy_pending.json"
LAYERS = ("landing", "quarantine", "warehouse", "serving")
# A request dated further ahead than this is a typo, not a clock difference.
FUTURE_TOLERANCE = timedelta(days=1)
# Any year width: partitions written before names were zero-padded say `dt=1-01-01`.
_DT_DIR = re.compile(r"^dt=(\d{1,4})-(\d{1,2})-(\d{1,2})$")


class PrivacyInputError(ValueError):
    """The requests file (or an argument) is wrong: one line naming file:line. Nothing was written."""


class PrivacyError(RuntimeError):
    """A privacy step could not finish; its journal entry stays and the next run retries it."""


# -- requests ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One row of the requests file. `account` is a raw id or handle: memory only, never shown."""

    where: str  # file:line, the only way a request is named in logs and errors
    platform: str
    account: str = field(repr=False)
    kind: str = ""
    requested_at: datetime = field(default=datetime.min.replace(tzinfo=UTC))

    def request_id(self, key: str) -> str:
        """Keyed, so the audit log cannot be matched against guessed accounts without the key.

        Rotating the key changes every id: each request then applies again, which is exactly
        what re-creates the tombstones under the new key.
        """
        msg = f"agora-privacy-request|{self.platform}|{self.account}|{self.kind}|{self.requested_at.isoformat()}"
        return hmac.new(key.encode(), msg.encode(), hashlib.sha256).hexdigest()[:32]


def _parse_requested_at(value: str, where: str, now: datetime) -> datetime:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise PrivacyInputError(f"{where}: requested_at is not an ISO date (YYYY-MM-DD) or date-time") from None
    dt = dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)
    if dt > now + FUTURE_TOLERANCE:
        raise PrivacyInputError(f"{where}: requested_at is in the future")
    return dt


def read_requests(cfg: AgoraConfig, path: str | Path, *, now: datetime | None = None) -> list[Request]:
    """Parse and validate the whole file before anything is done; raise on the first bad row.

    Error messages never echo the account: the file is the one place identities live.
    """
    path = Path(path)
    now = now or datetime.now(UTC)
    if not path.exists():
        raise PrivacyInputError(f"{path}: requests file not found")
    out: list[Request] = []
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header: list[str] | None = None
        for row in reader:
            line = reader.line_num
            where = f"{path}:{line}"
            cells = [c.strip() for c in row]
            if not any(cells) or cells[0].startswith("#"):
                continue
            if header is None:
                header = [c.lower() for c in cells]
                missing = [c for c in REQUEST_COLUMNS if c not in header]
                unknown = [c for c in header if c not in REQUEST_COLUMNS]
                if missing or unknown:
                    raise PrivacyInputError(
                        f"{where}: header must be {','.join(REQUEST_COLUMNS)}"
                        + (f" (missing: {', '.join(missing)})" if missing else "")
                        + (f" (unknown: {', '.join(unknown)})" if unknown else "")
                    )
                continue
            if len(cells) != len(header):
                raise PrivacyInputError(f"{where}: expected {len(header)} cells, found {len(cells)}")
            rec = dict(zip(header, cells, strict=True))
            out.append(_request(cfg, rec, where, now))
    if header is None:
        raise PrivacyInputError(f"{path}:1: empty file (header {','.join(REQUEST_COLUMNS)} expected)")
    return out


def _request(cfg: AgoraConfig, rec: dict[str, str], where: str, now: datetime) -> Request:
    platform = rec["platform"].lower()
    if platform not in ACCOUNT_PLATFORMS:
        hint = " (a team-written source holds no accounts)" if platform in TEAM_PLATFORMS else ""
        raise PrivacyInputError(f"{where}: unknown platform {platform!r}{hint}; known: {', '.join(ACCOUNT_PLATFORMS)}")
    kind = rec["kind"].lower()
    if kind not in KINDS:
        raise PrivacyInputError(f"{where}: kind must be opt_out or erasure")
    account = rec["account"]
    if not account:
        raise PrivacyInputError(f"{where}: account is empty")
    requested_at = _parse_requested_at(rec["requested_at"], where, now)
    req = Request(where, platform, account, kind, requested_at)
    # Forms that can never be resolved are input errors, found before anything is done.
    if not account.startswith("@"):
        declared = _platform(platform)
        try:
            keys = declared.account_keys(_sources(cfg, platform), account)
        except AccountFormError as e:
            raise PrivacyInputError(f"{where}: {e}") from None
        if keys is None and declared.lookup is None:
            raise PrivacyInputError(f"{where}: {platform} has no handle lookup; give the account id")
    return req


def _sources(cfg: AgoraConfig, platform: str) -> list[Any]:
    return [s for s in cfg.sources if s.type == platform]


# -- team-written text ------------------------------------------------------------------------


def find_personal_data(*texts: str | None) -> str | None:
    """What kind of personal data team-written text holds ("an e-mail address", ...), or None.

    For connectors of team-written files, so a row naming someone is rejected with its
    file:line before anything is written. The patterns are the landing contract's, which
    stays as the backstop for anything that reaches landing another way.
    """
    from expectations.landing import EMAIL_RE, HANDLE_RE, PHONE_RE

    joined = " ".join(t for t in texts if t)
    for label, pattern in (("an e-mail address", EMAIL_RE), ("a phone number", PHONE_RE), ("an @handle", HANDLE_RE)):
        if re.search(pattern, joined):
            return label
    return None


# -- from an account (id or handle) to the keys the connectors pseudonymise ---------------------


class _Redact(logging.Filter):
    """Replaces the handles being looked up in any record of the loggers it sits on.

    urllib3 logs request URLs at DEBUG and our HTTP client logs paths on retries; a handle
    is in the URL of a lookup, so while one runs those records are scrubbed (not dropped:
    a retry warning still matters).
    """

    def __init__(self, secrets: set[str]):
        super().__init__()
        self.secrets = sorted({s for x in secrets for s in (x, quote(x, safe=""), quote(x))}, key=len, reverse=True)

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        redacted = msg
        for s in self.secrets:
            redacted = redacted.replace(s, "<redacted>")
        if redacted != msg:
            record.msg, record.args = redacted, ()
        return True


_LOOKUP_LOGGERS = ("urllib3.connectionpool", "urllib3.util.retry", "tweepy.client", "agora.privacy.lookup")


@contextlib.contextmanager
def _redacted(*secrets: str) -> Iterator[logging.Logger]:
    flt = _Redact(set(secrets))
    loggers = [logging.getLogger(n) for n in _LOOKUP_LOGGERS]
    for lg in loggers:
        lg.addFilter(flt)
    try:
        yield logging.getLogger("agora.privacy.lookup")
    finally:
        for lg in loggers:
            lg.removeFilter(flt)


def account_keys(cfg: AgoraConfig, req: Request) -> tuple[set[str], str | None]:
    """(the keys connectors pseudonymise for this account, why not if it cannot be resolved).

    What names an id, and the keys it means, the platform declares (``Platform.account_keys``);
    a handle is looked up in every configured source of its platform (``Platform.lookup``:
    a forum's or an instance's own ids differ). A leading ``@`` marks a handle even when it
    is all digits. A 404 in one source means the account is not there; any other failure
    leaves the request pending, because an erasure must not be done by halves.
    """
    account, platform = req.account, req.platform
    declared = _platform(platform)
    if not account.startswith("@"):
        try:
            keys = declared.account_keys(_sources(cfg, platform), account)
        except AccountFormError as e:
            return set(), str(e)
        if keys is not None:
            return keys, None
    if declared.lookup is None:
        return set(), f"{platform} has no handle lookup; give the account id"
    handle = account.removeprefix("@")
    sources = _sources(cfg, platform)
    if not sources:
        return set(), f"no configured {platform} source to look the handle up in; give the numeric id"
    found: set[str] = set()
    with _redacted(handle, account) as lg:
        for src in sources:
            try:
                key = declared.lookup(src, handle, lg)
            except HandleNotFound:
                continue
            except ConfigError as e:
                return set(), f"{src.name}: cannot look the handle up: {e}"
            except Exception as e:  # noqa: BLE001 - any failure leaves the request pending
                status = getattr(e, "status", None) or getattr(getattr(e, "response", None), "status_code", None)
                if status == 404:
                    continue
                return set(), f"{src.name}: handle lookup failed ({f'HTTP {status}' if status else type(e).__name__})"
            if key is not None:
                found.add(key)
    if not found:
        names = ", ".join(s.name for s in sources)
        return set(), f"handle not found in {names} (renamed or deleted? give the numeric id)"
    return found, None


# -- audit log and journal ------------------------------------------------------------------


def _url(cfg: AgoraConfig, name: str) -> str:
    return posixpath.join(cfg.path("state"), name)


_write_text = write_text
_read_text = read_text


def read_audit(cfg: AgoraConfig) -> list[dict[str, Any]]:
    text = _read_text(_url(cfg, AUDIT_FILE)) or ""
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _append_audit(cfg: AgoraConfig, entries: list[dict[str, Any]]) -> None:
    """Append-only in effect: existing lines are kept verbatim (rewritten atomically, so any fsspec store works).

    Read-modify-written under the ``privacy`` lock, so two runs never drop each other's lines.
    """
    if not entries:
        return
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        url = _url(cfg, AUDIT_FILE)
        old = _read_text(url) or ""
        if old and not old.endswith("\n"):
            old += "\n"
        _write_text(url, old + "".join(json.dumps(e, sort_keys=True, default=str) + "\n" for e in entries))


def completed_request_ids(cfg: AgoraConfig) -> set[str]:
    return {e["request_id"] for e in read_audit(cfg) if e.get("event") == "request" and e.get("status") == "completed"}


def _load_journal(cfg: AgoraConfig) -> dict[str, Any]:
    text = _read_text(_url(cfg, JOURNAL_FILE))
    return json.loads(text) if text else {"entries": []}


def _save_journal(cfg: AgoraConfig, journal: dict[str, Any]) -> None:
    url = _url(cfg, JOURNAL_FILE)
    if journal["entries"]:
        _write_text(url, json.dumps(journal, indent=1, sort_keys=True))
    else:
        remove(url)


def has_pending(cfg: AgoraConfig) -> bool:
    """Is there privacy work waiting for a rebuild (the DAG's short-circuit)?"""
    return bool(_load_journal(cfg)["entries"])


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def _zero_layers() -> dict[str, int]:
    return dict.fromkeys(LAYERS, 0)


# -- apply -----------------------------------------------------------------------------------


@dataclass
class Completion:
    rebuilt: bool = False
    requests_completed: int = 0
    retention_completed: int = 0
    rows_removed: dict[str, int] = field(default_factory=_zero_layers)
    links_unset: dict[str, int] = field(default_factory=lambda: {"landing": 0, "quarantine": 0})
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ApplyResult:
    requests: int = 0
    already_done: int = 0
    awaiting_rebuild: int = 0
    opt_outs: int = 0
    erasures: int = 0
    tombstones_added: int = 0
    #: (file:line, why) of requests that could not be resolved: they stay pending.
    pending: list[tuple[str, str]] = field(default_factory=list)
    completion: Completion | None = None

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["pending"] = [list(p) for p in self.pending]
        return d


def requests_path(cfg: AgoraConfig, path: str | Path | None = None) -> Path:
    if path is not None:
        return Path(path)
    if cfg.privacy.requests is None:
        raise PrivacyInputError(
            "privacy.requests: no requests file configured (set it in agora.yml or pass --requests)"
        )
    return cfg.resolve(cfg.privacy.requests)


def apply_requests(
    cfg: AgoraConfig,
    path: str | Path | None = None,
    *,
    rebuild: bool = True,
    now: datetime | None = None,
) -> ApplyResult:
    """Apply every new request in the file: tombstone it, and journal erasures for the rebuild.

    Requests already completed (per the audit log) are skipped, so applying the same file
    again does nothing. With `rebuild`, pending work is completed in the same call
    (`complete_pending`): the erased rows are gone from every layer when this returns.

    Runs under the state store's ``privacy`` lock: two concurrent runs take turns, and the
    second finds the first's requests done (nothing lost, nothing done twice).
    """
    key = cfg.pseudonym_key()
    now = now or _now()
    reqs = read_requests(cfg, requests_path(cfg, path), now=now)
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        return _apply_locked(cfg, key, reqs, rebuild=rebuild, now=now)


def _apply_locked(cfg: AgoraConfig, key: str, reqs: list[Request], *, rebuild: bool, now: datetime) -> ApplyResult:
    done = completed_request_ids(cfg)
    journal = _load_journal(cfg)
    journaled = {e["request_id"] for e in journal["entries"] if e["event"] == "request"}
    result = ApplyResult(requests=len(reqs))
    seen: set[str] = set()
    tombstones: set[str] = set()
    opt_out_entries: list[dict[str, Any]] = []
    for req in reqs:
        rid = req.request_id(key)
        if rid in seen:
            continue
        seen.add(rid)
        if rid in done:
            result.already_done += 1
            continue
        if rid in journaled:
            result.awaiting_rebuild += 1
            continue
        keys, why = account_keys(cfg, req)
        if why:
            result.pending.append((req.where, why))
            log.warning("%s: %s request stays pending: %s", req.where, req.kind, why)
            continue
        pseudonyms = {pseudonym(key, req.platform, k) for k in keys}
        tombstones |= pseudonyms
        entry = {
            "event": "request",
            "request_id": rid,
            "kind": req.kind,
            "platform": req.platform,
            "requested_at": req.requested_at.isoformat(),
            "accounts": len(keys),
        }
        if req.kind == "opt_out":
            # Nothing new lands from now on; what was published stays (only aggregates).
            opt_out_entries.append(
                {**entry, "status": "completed", "completed_at": now.isoformat(), "rows_removed": _zero_layers()}
            )
            result.opt_outs += 1
        else:
            journal["entries"].append({**entry, "pseudonyms": sorted(pseudonyms), "progress": {}})
            result.erasures += 1
    # Tombstones first: from here on no connector lands these accounts, whatever fails next.
    result.tombstones_added = add_tombstones(cfg.path("state"), tombstones)
    _save_journal(cfg, journal)
    _append_audit(cfg, opt_out_entries)
    log.info(
        "privacy requests: %d in file, %d already done, %d opt-outs and %d erasures applied, %d pending",
        result.requests,
        result.already_done,
        result.opt_outs,
        result.erasures,
        len(result.pending),
    )
    if rebuild:
        result.completion = _complete_locked(cfg)
    return result


# -- removing rows from files ------------------------------------------------------------------


def _parquet_files(root: str) -> list[str]:
    """Every Parquet file under a root (landing or quarantine, including contract/ folders)."""
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        return []
    return sorted(p for p in fs.find(path) if p.endswith(".parquet") and not posixpath.basename(p).startswith("."))


#: Key of `scrub_files`' removed-counter for quarantine rows whose ids were cleared (no actor known).
UNATTRIBUTED = "<unattributed quarantine rows>"


def scrub_files(
    root: str,
    pseudonyms: set[str],
    *,
    dry_run: bool = False,
    also: set[str] = frozenset(),
    clear_unattributed: bool = False,
) -> tuple[Counter, Counter, int]:
    """Drop rows whose actor is one of `pseudonyms` and unset parent_actor links to them.

    Returns (rows removed per pseudonym, links unset per pseudonym, files changed). Each
    changed file is rewritten to a temporary name and renamed over the old one; a file left
    empty is deleted. `dry_run` only counts (used to verify that nothing remains).

    `also` (the whole tombstone list): a file rewritten anyway loses the rows of these
    accounts too, so no writer ever puts a tombstoned actor back into landing (the
    landing contract rejects one in a changed file). `clear_unattributed` (quarantine):
    extract rejects with no known actor could be anyone's, so after an erasure they keep
    their reason and shape but lose record_id and payload_sha256 (counted under
    UNATTRIBUTED).
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from agora.landing import _atomic_write_table

    removed: Counter = Counter()
    unset: Counter = Counter()
    changed = 0
    if not pseudonyms:
        return removed, unset, changed
    wanted = pa.array(sorted(pseudonyms), pa.string())
    everyone = pa.array(sorted(set(pseudonyms) | set(also)), pa.string())
    fs, _ = fsspec.core.url_to_fs(root)
    for path in _parquet_files(root):
        with fs.open(path, "rb") as f:
            names = pq.read_schema(f).names
        rejects = clear_unattributed and "payload_sha256" in names
        if "actor" not in names and "parent_actor" not in names and not rejects:
            continue
        with fs.open(path, "rb") as f:
            table = pq.read_table(f)

        def hits(column: str, values: pa.Array, table=table, names=names):
            return pc.fill_null(pc.is_in(table[column], value_set=values), False) if column in names else None

        drop, link = hits("actor", wanted), hits("parent_actor", wanted)
        n_drop = pc.sum(drop).as_py() or 0 if drop is not None else 0
        n_link = pc.sum(link).as_py() or 0 if link is not None else 0
        anon = None
        if rejects:
            no_actor = pc.is_null(table["actor"]) if "actor" in names else pa.array([True] * len(table))
            has_id = pc.or_(pc.is_valid(table["record_id"]), pc.is_valid(table["payload_sha256"]))
            anon = pc.and_(no_actor, has_id)
        n_anon = pc.sum(anon).as_py() or 0 if anon is not None else 0
        if not n_drop and not n_link and not n_anon:
            continue
        if drop is not None and n_drop:
            for v in pc.value_counts(pc.filter(table["actor"], drop)).to_pylist():
                removed[v["values"]] += v["counts"]
        if link is not None and n_link:
            for v in pc.value_counts(pc.filter(table["parent_actor"], link)).to_pylist():
                unset[v["values"]] += v["counts"]
        if n_anon:
            removed[UNATTRIBUTED] += n_anon
        changed += 1
        if dry_run:
            continue
        # The file is rewritten: every tombstoned account goes, not only the erased ones.
        drop_all, link_all = hits("actor", everyone, table), hits("parent_actor", everyone, table)
        if link_all is not None:
            nulls = pa.nulls(len(table), table.schema.field("parent_actor").type)
            cleared = pc.if_else(link_all, nulls, table["parent_actor"])
            table = table.set_column(table.schema.get_field_index("parent_actor"), "parent_actor", cleared)
        if anon is not None and n_anon:
            for column in ("record_id", "payload_sha256"):
                i = table.schema.get_field_index(column)
                table = table.set_column(i, column, pc.if_else(anon, pa.nulls(len(table), pa.string()), table[column]))
        if drop_all is not None:
            table = table.filter(pc.invert(drop_all))
        if table.num_rows == 0:
            fs.rm(path)
        else:
            _atomic_write_table(table, _full_url(root, path))
    return removed, unset, changed


def clear_reason_ids(root: str, *, dry_run: bool = False) -> int:
    """Empty `sample_record_ids` in the landing contract's ``*.reason.json`` files; returns files that held some.

    Those samples are record ids of a quarantined file: they could be an erased person's,
    and which ones no longer matters once the file itself was scrubbed.
    """
    from agora.storage import full_url

    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        return 0
    changed = 0
    for p in sorted(fs.find(path)):
        if not p.endswith(".reason.json"):
            continue
        with fs.open(p, "r") as f:
            reason = json.load(f)
        failures = reason.get("failures") or []
        if not any(f.get("sample_record_ids") for f in failures):
            continue
        changed += 1
        if not dry_run:
            for f in failures:
                f["sample_record_ids"] = []
            write_text(full_url(fs, p), json.dumps(reason, indent=2, sort_keys=True))
    return changed


def _full_url(root: str, path: str) -> str:
    """fsspec's find() drops the protocol; put it back for non-local roots."""
    if "://" not in root:
        return path
    protocol = root.split("://", 1)[0]
    return path if "://" in path else f"{protocol}://{path}"


# -- warehouse and serving ----------------------------------------------------------------------


def _hex_list(pseudonyms: set[str]) -> str:
    """A SQL list literal of pseudonyms; they are 64 hex characters, checked here, so safe to inline."""
    for p in pseudonyms:
        if not re.fullmatch(r"[0-9a-f]{64}", p):
            raise PrivacyError("refusing a pseudonym that is not 64 lowercase hex characters")
    return ", ".join(f"'{p}'" for p in sorted(pseudonyms))


def _staging_counts(path: str, pseudonyms: set[str]) -> Counter:
    """Rows per pseudonym in the warehouse's staging layer (the envelope-level staging relations)."""
    import duckdb

    counts: Counter = Counter()
    if not pseudonyms or not os.path.exists(path):
        return counts
    con = duckdb.connect(path, read_only=True)
    try:
        rels = con.execute(
            "select table_schema, table_name from information_schema.columns "
            "where table_schema like '%staging%' and column_name in ('actor', 'record_id') "
            "group by 1, 2 having count(*) = 2"
        ).fetchall()
        for schema, table in rels:
            rows = con.execute(
                f'select actor, count(*) from "{schema}"."{table}" '  # noqa: S608 - identifiers from the catalog
                f"where actor in ({_hex_list(pseudonyms)}) group by actor"
            ).fetchall()
            for actor, n in rows:
                counts[actor] += n
    finally:
        con.close()
    return counts


def _rows_mentioning(path: str, pseudonyms: set[str]) -> int:
    """Rows of any stored table, in any schema, with a text column containing one of the pseudonyms.

    Views are skipped: they store nothing (staging views read landing, searched separately).
    """
    import duckdb

    if not pseudonyms or not os.path.exists(path):
        return 0
    pattern = "|".join(sorted(pseudonyms))
    _hex_list(pseudonyms)
    con = duckdb.connect(path, read_only=True)
    total = 0
    try:
        cols = con.execute(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns as c "
            "inner join information_schema.tables as t on t.table_catalog = c.table_catalog "
            "and t.table_schema = c.table_schema and t.table_name = c.table_name "
            "where t.table_type = 'BASE TABLE' and c.table_catalog = current_database() "
            "and (c.data_type = 'VARCHAR' or c.data_type like 'VARCHAR[]%') order by 1, 2"
        ).fetchall()
        by_table: dict[tuple[str, str], list[str]] = {}
        for schema, table, column in cols:
            by_table.setdefault((schema, table), []).append(column)
        for (schema, table), columns in by_table.items():
            cond = " or ".join(f"regexp_matches(cast(\"{c}\" as varchar), '{pattern}')" for c in columns)
            total += con.execute(f'select count(*) from "{schema}"."{table}" where {cond}').fetchone()[0]  # noqa: S608
    finally:
        con.close()
    return total


_PG_STAGING_RELATIONS = (
    "select table_schema, table_name from information_schema.columns "
    "where table_schema like '%staging%' and column_name in ('actor', 'record_id') "
    "group by 1, 2 having count(*) = 2"
)


def _pg_staging_counts(conn: Any, pseudonyms: set[str]) -> Counter:
    """`_staging_counts` on the PostgreSQL warehouse (dbt target postgres)."""
    counts: Counter = Counter()
    if not pseudonyms:
        return counts
    with conn.cursor() as cur:
        cur.execute(_PG_STAGING_RELATIONS)
        for schema, table in cur.fetchall():
            cur.execute(
                f'select actor, count(*) from "{schema}"."{table}" '  # noqa: S608 - identifiers from the catalog
                f"where actor in ({_hex_list(pseudonyms)}) group by actor"
            )
            for actor, n in cur.fetchall():
                counts[actor] += n
    return counts


def _pg_rows_mentioning(conn: Any, pseudonyms: set[str], schema: str | None = None) -> int:
    """`_rows_mentioning` on PostgreSQL: stored tables of every user schema (or of `schema` only).

    Text, varchar and their arrays are searched; landing.events (the warehouse's copy of the
    landing zone) is one of them.
    """
    if not pseudonyms:
        return 0
    pattern = "|".join(sorted(pseudonyms))
    _hex_list(pseudonyms)
    total = 0
    with conn.cursor() as cur:
        cur.execute(
            "select c.table_schema, c.table_name, c.column_name from information_schema.columns as c "
            "inner join information_schema.tables as t on t.table_schema = c.table_schema "
            "and t.table_name = c.table_name "
            "where t.table_type = 'BASE TABLE' "
            "and c.table_schema not in ('pg_catalog', 'information_schema') and c.table_schema not like 'pg_toast%%' "
            "and (%s is null or c.table_schema = %s) "
            "and c.udt_name in ('text', 'varchar', 'bpchar', '_text', '_varchar') order by 1, 2",
            [schema, schema],
        )
        by_table: dict[tuple[str, str], list[str]] = {}
        for sch, table, column in cur.fetchall():
            by_table.setdefault((sch, table), []).append(column)
        for (sch, table), columns in by_table.items():
            cond = " or ".join(f"cast(\"{c}\" as text) ~ '{pattern}'" for c in columns)
            cur.execute(f'select count(*) from "{sch}"."{table}" where {cond}')  # noqa: S608
            total += cur.fetchone()[0]
    return total


@contextlib.contextmanager
def _pg_warehouse(cfg: AgoraConfig) -> Iterator[Any]:
    from agora.pg_landing import PgSettings

    conn = PgSettings.for_config(cfg).connect()
    try:
        conn.set_session(readonly=True, autocommit=True)
        yield conn
    finally:
        conn.close()


def _serving_rows_mentioning(cfg: AgoraConfig, pseudonyms: set[str]) -> int:
    """Rows of the published serving database holding one of the pseudonyms (DuckDB file or PostgreSQL schema)."""
    if cfg.serving.kind == "postgres":
        from agora.publish_pg import connect

        conn = connect(cfg.serving, application_name="agora-privacy")
        try:
            conn.set_session(readonly=True, autocommit=True)
            return _pg_rows_mentioning(conn, pseudonyms, cfg.serving.schema_name)
        finally:
            conn.close()
    serving = _serving_path(cfg)
    return _rows_mentioning(serving, pseudonyms) if serving else 0


def _remove_warehouse_file(path: str) -> None:
    """DuckDB keeps dropped rows in the file's free blocks: an erasure rebuilds into a new file."""
    for p in (path, f"{path}.wal"):
        if os.path.exists(p):
            os.remove(p)


def _serving_path(cfg: AgoraConfig) -> str | None:
    try:
        from agora.publish import serving_path
    except ImportError:
        return None
    return str(serving_path(cfg))


# -- completing journaled work -----------------------------------------------------------------


def complete_pending(cfg: AgoraConfig, *, now: datetime | None = None) -> Completion:
    """Finish journaled erasures and purges: scrub files, rebuild, verify, publish, audit.

    Order matters: staging is counted before the files change (staging views read landing);
    the warehouse is rebuilt from scratch into a new file; the mart contract must pass
    before serving is replaced; and every layer is searched for the erased pseudonyms
    before the audit says "completed". Any failure leaves the journal for the next run.
    Under the ``privacy`` lock; the scrub also under the ``landing`` lock (agora.locks).
    """
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        return _complete_locked(cfg, now=now)


def _complete_locked(cfg: AgoraConfig, *, now: datetime | None = None) -> Completion:
    from agora import pipeline
    from agora.landing import landing_files
    from agora.warehouse import dbt_target, spark_dir, warehouse_path

    started = time.monotonic()
    journal = _load_journal(cfg)
    result = Completion()
    if not journal["entries"]:
        return result
    erasures = [e for e in journal["entries"] if e["event"] == "request"]
    erased = {p for e in erasures for p in e["pseudonyms"]}
    on_postgres = dbt_target(cfg=cfg) == "postgres"
    on_spark = dbt_target(cfg=cfg) == "spark"
    wh = warehouse_path(cfg)

    def staging_counts() -> Counter:
        if on_postgres:
            with _pg_warehouse(cfg) as conn:
                return _pg_staging_counts(conn, erased)
        if on_spark:
            from agora import spark_marts

            return Counter(spark_marts.staging_counts(spark_dir(cfg), erased))
        return _staging_counts(wh, erased)

    def warehouse_rows() -> int:
        if on_postgres:
            with _pg_warehouse(cfg) as conn:
                return _pg_rows_mentioning(conn, erased)
        if on_spark:
            # Every file under Spark's warehouse directory, not only the tables it lists.
            from agora import spark_marts

            return spark_marts.rows_mentioning(spark_dir(cfg), erased) + _rows_mentioning(wh, erased)
        return _rows_mentioning(wh, erased)

    if erased:
        counts = staging_counts()
        for e in erasures:
            e["progress"].setdefault("warehouse_before", sum(counts[p] for p in e["pseudonyms"]))
        _save_journal(cfg, journal)
        # Under the landing lock: no extract writes between this scrub and the tombstones
        # it re-reads (they were added before the journal entry, so it drops these accounts).
        with locks.hold(cfg.path("state"), locks.LANDING):
            tombstones = load_tombstones(cfg.path("state"))
            for layer in ("landing", "quarantine"):
                removed, unset, files = scrub_files(
                    cfg.path(layer), erased, also=tombstones, clear_unattributed=layer == "quarantine"
                )
                for e in erasures:
                    prog = e["progress"]
                    prog[layer] = prog.get(layer, 0) + sum(removed[p] for p in e["pseudonyms"])
                    prog[f"{layer}_links"] = prog.get(f"{layer}_links", 0) + sum(unset[p] for p in e["pseudonyms"])
                log.info(
                    "privacy: %s: %d rows removed, %d links unset, %d files rewritten",
                    layer,
                    sum(removed.values()),
                    sum(unset.values()),
                    files,
                )
            cleared = clear_reason_ids(cfg.path("quarantine"))
            if cleared:
                log.info("privacy: quarantine: sample record ids cleared from %d reason files", cleared)
        _save_journal(cfg, journal)

    if not on_postgres:
        _remove_warehouse_file(wh)
    if on_spark and "://" not in spark_dir(cfg):
        # Tables, files of dropped tables and the metastore: the full refresh recreates them.
        shutil.rmtree(spark_dir(cfg), ignore_errors=True)
    # On PostgreSQL the full refresh below replaces every table (landing.events included):
    # dropped tables' files are unlinked at commit; WAL and backups age out (docs/privacy.md).
    if landing_files(cfg.path("landing")):
        try:
            pipeline.transform(cfg, full_refresh=True)
        except Exception as e:
            raise PrivacyError(f"rebuild after privacy changes failed (will be retried): {e}") from e
        result.rebuilt = True
    else:
        # Nothing left to build from: the warehouse is gone and serving keeps its aggregates.
        # (A PostgreSQL warehouse is not dropped: the check below fails if it still holds them.)
        log.warning(
            "privacy: no landing data left; %s, serving left as last published",
            "PostgreSQL warehouse left as is" if on_postgres else "warehouse removed",
        )

    after: Counter = Counter()
    if erased:
        q_removed, _, _ = scrub_files(cfg.path("quarantine"), erased, dry_run=True, clear_unattributed=True)
        left = {
            "landing": sum(scrub_files(cfg.path("landing"), erased, dry_run=True)[0].values()),
            "quarantine": sum(q_removed.values()) + clear_reason_ids(cfg.path("quarantine"), dry_run=True),
            "warehouse": warehouse_rows(),
            "serving": _serving_rows_mentioning(cfg, erased),
        }
        if any(left.values()):
            raise PrivacyError(
                "erased pseudonyms still found after the rebuild: "
                + ", ".join(f"{k} {v} rows" for k, v in left.items() if v)
            )
        after = staging_counts()

    now = now or _now()
    entries = []
    for e in journal["entries"]:
        e = dict(e)
        mine = e.pop("pseudonyms", [])
        prog = e.pop("progress", {})
        if e["event"] == "request":
            before = prog.get("warehouse_before", 0)
            e["rows_removed"] = {
                "landing": prog.get("landing", 0),
                "quarantine": prog.get("quarantine", 0),
                "warehouse": before - sum(after[p] for p in mine),
                "serving": 0,  # serving holds aggregates only; checked above to hold no pseudonym
            }
            e["links_unset"] = {"landing": prog.get("landing_links", 0), "quarantine": prog.get("quarantine_links", 0)}
            result.requests_completed += 1
        else:
            result.retention_completed += 1
        e.update(status="completed", completed_at=now.isoformat(), warehouse_rebuilt=result.rebuilt)
        for layer, n in (e.get("rows_removed") or {}).items():
            result.rows_removed[layer] = result.rows_removed.get(layer, 0) + n
        for layer, n in (e.get("links_unset") or {}).items():
            result.links_unset[layer] = result.links_unset.get(layer, 0) + n
        entries.append(e)
    _append_audit(cfg, entries)
    journal["entries"] = []
    _save_journal(cfg, journal)
    result.seconds = round(time.monotonic() - started, 2)
    log.info(
        "privacy: completed %d erasures and %d retention purges in %.1f s; rows removed %s",
        result.requests_completed,
        result.retention_completed,
        result.seconds,
        result.rows_removed,
    )
    return result


# -- retention ---------------------------------------------------------------------------------


@dataclass
class PurgeResult:
    as_of: str
    cutoff: str
    partitions_removed: dict[str, int] = field(default_factory=dict)
    rows_removed: dict[str, int] = field(default_factory=dict)
    completion: Completion | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _as_day(value: date | datetime | str | None) -> date:
    if value is None:
        return datetime.now(UTC).date()
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).date()
    if isinstance(value, date):
        return value
    try:
        dt = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise PrivacyInputError(f"as-of date {value!r} is not an ISO date (YYYY-MM-DD)") from None
    return _as_day(dt)


def _old_partitions(root: str, cutoff: date) -> Iterator[str]:
    """`<root>/<source>/dt=YYYY-MM-DD` directories whose day is before `cutoff`.

    Every ``dt=`` directory found is judged, whatever the width of its year (old unpadded
    names included); one whose name is not a date is reported, never silently kept.
    """
    fs, path = fsspec.core.url_to_fs(root)
    if not fs.exists(path):
        return
    for d in sorted(fs.glob(posixpath.join(path, "*", "dt=*"))):
        if not fs.isdir(d):
            continue
        m = _DT_DIR.match(posixpath.basename(d))
        try:
            day = date(int(m.group(1)), int(m.group(2)), int(m.group(3))) if m else None
        except ValueError:
            day = None
        if day is None:
            log.warning("retention: %s is not a dt=YYYY-MM-DD partition; left for an operator", d)
        elif day < cutoff:
            yield d


def _rows_in(fs: Any, directory: str) -> int:
    import pyarrow.parquet as pq

    rows = 0
    for p in fs.find(directory):
        if p.endswith(".parquet"):
            with fs.open(p, "rb") as f:
                rows += pq.ParquetFile(f).metadata.num_rows
    return rows


def purge_retention(
    cfg: AgoraConfig,
    as_of: date | datetime | str | None = None,
    *,
    rebuild: bool = True,
    now: datetime | None = None,
) -> PurgeResult:
    """Delete landing and quarantine partitions older than `retention_days` before `as_of`.

    `as_of` is the run's logical date (the DAG passes its data interval end), never the
    wall clock, so a rerun for the same date removes the same partitions. A partition is
    kept while its day is within `retention_days` of `as_of`.
    """
    with locks.hold(cfg.path("state"), locks.PRIVACY):
        return _purge_locked(cfg, as_of, rebuild=rebuild, now=now)


def _purge_locked(
    cfg: AgoraConfig, as_of: date | datetime | str | None, *, rebuild: bool, now: datetime | None
) -> PurgeResult:
    day = _as_day(as_of)
    cutoff = day - timedelta(days=cfg.privacy.retention_days)
    result = PurgeResult(as_of=day.isoformat(), cutoff=cutoff.isoformat())
    with locks.hold(cfg.path("state"), locks.LANDING):
        for layer in ("landing", "quarantine"):
            root = cfg.path(layer)
            fs, _ = fsspec.core.url_to_fs(root)
            parts = rows = 0
            for d in list(_old_partitions(root, cutoff)):
                rows += _rows_in(fs, d)
                fs.rm(d, recursive=True)
                parts += 1
            result.partitions_removed[layer] = parts
            result.rows_removed[layer] = rows
    now = now or _now()
    entry = {
        "event": "retention",
        "as_of": result.as_of,
        "cutoff": result.cutoff,
        "retention_days": cfg.privacy.retention_days,
        "partitions_removed": result.partitions_removed,
        "rows_removed": result.rows_removed,
    }
    log.info(
        "retention (%d days, as of %s): removed partitions before %s: %s",
        cfg.privacy.retention_days,
        result.as_of,
        result.cutoff,
        ", ".join(f"{k} {result.partitions_removed[k]} ({result.rows_removed[k]} rows)" for k in result.rows_removed),
    )
    if any(result.partitions_removed.values()):
        journal = _load_journal(cfg)
        journal["entries"].append(entry)  # completed once the warehouse no longer holds them
        _save_journal(cfg, journal)
    else:
        _append_audit(cfg, [{**entry, "status": "completed", "completed_at": now.isoformat()}])
    if rebuild and has_pending(cfg):
        result.completion = _complete_locked(cfg)
    return result
