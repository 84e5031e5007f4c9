"""The landing envelope: one schema for every source (design §3).

Connectors never build envelope rows themselves: they yield `RawEvent`s (which may
hold raw account ids *in memory only*) and `agora.extract` turns them into rows,
pseudonymising at the edge before anything touches disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

RECORD_TYPES = (
    "thread",
    "reply",
    "edit",
    "mention",
    "pageviews",
    "survey_response",
    "feedback",
    "learning",
    "team_activity",
)

ENVELOPE_SCHEMA = pa.schema(
    [
        ("source", pa.string()),
        ("platform", pa.string()),
        ("record_type", pa.string()),
        ("record_id", pa.string()),
        ("thread_id", pa.string()),
        ("parent_id", pa.string()),
        ("actor", pa.string()),
        ("parent_actor", pa.string()),
        ("occurred_at", pa.timestamp("us", tz="UTC")),
        ("is_bot", pa.bool_()),
        ("is_staff", pa.bool_()),
        ("value", pa.float64()),
        ("tags", pa.list_(pa.string())),
        ("extracted_at", pa.timestamp("us", tz="UTC")),
        ("run_id", pa.string()),
        ("connector_version", pa.string()),
    ]
)
ENVELOPE_COLUMNS = tuple(ENVELOPE_SCHEMA.names)

# Team-written sources (learnings, feedback, team activity) may carry a title and a
# text the team wrote; the landing contract scans them for personal data.
TEAM_TEXT_FIELDS = (("title", pa.string()), ("text", pa.string()))
TEAM_SCHEMA = pa.schema([*ENVELOPE_SCHEMA, *(pa.field(n, t) for n, t in TEAM_TEXT_FIELDS)])
ALLOWED_COLUMNS = frozenset(TEAM_SCHEMA.names)


@dataclass
class RawEvent:
    """One public record as a connector sees it, before pseudonymisation.

    `account_id` / `parent_account_id` are the platform's stable account ids; they live
    only in memory. `text` is public text used for keyword tags, never stored.
    `title`/`body` are stored only for team-written sources.
    """

    record_type: str
    record_id: str
    occurred_at: datetime
    thread_id: str | None = None
    parent_id: str | None = None
    account_id: str | None = None
    parent_account_id: str | None = None
    is_bot: bool = False
    value: float | None = None
    tags: list[str] = field(default_factory=list)
    text: str | None = None
    title: str | None = None
    body: str | None = None


@dataclass
class Rejected:
    """An item that could not be parsed: quarantined with its reason, never dropped silently.

    `payload` is the raw item; only its shape (keys) and a hash are stored. `account_id`,
    when the connector can tell the author, is pseudonymised at the edge like an event's
    and stored as the row's `actor`, so an erasure reaches the row (and a tombstoned
    author's rejects are not kept at all).
    """

    reason: str
    payload: Any = None
    record_id: str | None = None
    account_id: str | None = None
