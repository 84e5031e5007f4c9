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

The package, one module per concern (each imports only the others' public names):

- `requests`: the requests file (`Request`, `read_requests`)
- `lookups`: ids and handles to account keys (`account_keys`, through connectors/registry.py)
- `audit`: the audit log and the journal
- `apply`: `apply_requests` (tombstones, journal)
- `scrub`: removing rows from landing and quarantine files; personal data in team text
- `search`: finding pseudonyms in the warehouse and serving
- `rebuild`: `complete_pending` (scrub, rebuild, verify, publish, audit)
- `retention`: `purge_retention`
"""

from __future__ import annotations

from agora.privacy.apply import ApplyResult, apply_requests
from agora.privacy.audit import AUDIT_FILE, JOURNAL_FILE, LAYERS, completed_request_ids, has_pending, read_audit
from agora.privacy.errors import PrivacyError, PrivacyInputError
from agora.privacy.lookups import account_keys
from agora.privacy.rebuild import Completion, complete_pending
from agora.privacy.requests import (
    ACCOUNT_PLATFORMS,
    FUTURE_TOLERANCE,
    KINDS,
    REQUEST_COLUMNS,
    Request,
    read_requests,
    requests_path,
)
from agora.privacy.retention import PurgeResult, purge_retention
from agora.privacy.scrub import UNATTRIBUTED, clear_reason_ids, find_personal_data, parquet_files, scrub_files
from agora.privacy.search import (
    pg_rows_mentioning,
    pg_staging_counts,
    pg_warehouse,
    rows_mentioning,
    serving_rows_mentioning,
    staging_counts,
)
from agora.tombstones import add_tombstones, load_tombstones

__all__ = [
    "ACCOUNT_PLATFORMS",
    "AUDIT_FILE",
    "FUTURE_TOLERANCE",
    "JOURNAL_FILE",
    "KINDS",
    "LAYERS",
    "REQUEST_COLUMNS",
    "UNATTRIBUTED",
    "ApplyResult",
    "Completion",
    "PrivacyError",
    "PrivacyInputError",
    "PurgeResult",
    "Request",
    "account_keys",
    "add_tombstones",
    "apply_requests",
    "clear_reason_ids",
    "complete_pending",
    "completed_request_ids",
    "find_personal_data",
    "has_pending",
    "load_tombstones",
    "parquet_files",
    "pg_rows_mentioning",
    "pg_staging_counts",
    "pg_warehouse",
    "purge_retention",
    "read_audit",
    "read_requests",
    "requests_path",
    "rows_mentioning",
    "scrub_files",
    "serving_rows_mentioning",
    "staging_counts",
]
