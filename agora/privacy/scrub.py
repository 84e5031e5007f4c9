"""Removing an erased person's rows from landing and quarantine files, and spotting
personal data in team-written text."""

from __future__ import annotations

import json
import posixpath
import re
from collections import Counter

import fsspec

from agora.storage import write_text


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


def parquet_files(root: str) -> list[str]:
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

    from agora.landing import atomic_write_table

    removed: Counter = Counter()
    unset: Counter = Counter()
    changed = 0
    if not pseudonyms:
        return removed, unset, changed
    wanted = pa.array(sorted(pseudonyms), pa.string())
    everyone = pa.array(sorted(set(pseudonyms) | set(also)), pa.string())
    fs, _ = fsspec.core.url_to_fs(root)
    for path in parquet_files(root):
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
            atomic_write_table(table, _full_url(root, path))
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
