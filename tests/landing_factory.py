"""Write synthetic landing data the way `agora extract` would, for warehouse and contract tests.

Rows go through `agora.landing.write_landing`, and accounts become pseudonyms with
`agora.pseudonym` under the test key, so what dbt reads has the real envelope shape.
Times are given in UTC (`"2025-01-31T23:30:00Z"` or aware datetimes).

    forum = LandingFactory(landing_root)
    t1 = forum.thread("alice", "2025-01-02T10:00:00Z")
    forum.reply("bob", "2025-01-02T12:00:00Z", t1)
    forum.write()
    write_survey(landing_root, [("2025-01-10T09:00:00Z", 9), ...])
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from agora.envelope import ENVELOPE_COLUMNS
from agora.landing import write_landing
from agora.pseudonym import pseudonym

DEFAULT_KEY = "test-pseudonym-key-0123456789abcdef"
EXTRACTED_AT = datetime(2030, 1, 1, tzinfo=UTC)


def utc(at: datetime | str) -> datetime:
    if isinstance(at, str):
        at = datetime.fromisoformat(at.replace("Z", "+00:00"))
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def actor(platform: str, account: str, key: str | None = None) -> str:
    """The pseudonym `agora extract` would store for `account` on `platform`."""
    return pseudonym(key or os.environ.get("AGORA_PSEUDONYM_KEY", DEFAULT_KEY), platform, account)


def _row(source: str, platform: str, record_type: str, record_id: str, at: datetime | str, **kw: Any) -> dict:
    row = {c: None for c in ENVELOPE_COLUMNS}
    row.update(
        source=source,
        platform=platform,
        record_type=record_type,
        record_id=record_id,
        occurred_at=utc(at),
        is_bot=False,
        is_staff=False,
        tags=[],
        extracted_at=EXTRACTED_AT,
        run_id="factory",
        connector_version="factory",
    )
    row.update(kw)
    return row


class LandingFactory:
    """Threads and replies of one community source; accounts are raw test names, pseudonymised on write."""

    def __init__(
        self,
        landing_root: str | os.PathLike,
        source: str = "forum",
        platform: str = "discourse",
        *,
        staff: Iterable[str] = (),
        bots: Iterable[str] = (),
        key: str | None = None,
    ):
        self.landing_root = str(landing_root)
        self.source, self.platform = source, platform
        self.staff, self.bots = set(staff), set(bots)
        self.key = key
        self.rows: list[dict] = []
        self._openers: dict[str, str] = {}
        self._authors: dict[str, str] = {}
        self._seq = 0

    def _next_id(self) -> str:
        self._seq += 1
        return str(self._seq)

    def _post(self, record_type: str, account: str | None, at, thread_id: str, parent_id, parent_account, tags) -> str:
        record_id = self._next_id()
        self.rows.append(
            _row(
                self.source,
                self.platform,
                record_type,
                record_id,
                at,
                thread_id=thread_id,
                parent_id=parent_id,
                actor=actor(self.platform, account, self.key) if account else None,
                parent_actor=actor(self.platform, parent_account, self.key) if parent_account else None,
                is_bot=account in self.bots,
                is_staff=account in self.staff,
                tags=sorted(tags),
            )
        )
        if account:
            self._authors[record_id] = account
        return record_id

    def thread(self, account: str | None, at, *, thread_id: str | None = None, tags: Iterable[str] = ()) -> str:
        """Open a thread; returns its thread id."""
        thread_id = thread_id or f"t{self._seq + 1}"
        record_id = self._post("thread", account, at, thread_id, None, None, tags)
        self._openers[thread_id] = record_id
        return thread_id

    def reply(self, account: str | None, at, thread_id: str, *, to: str | None = None, tags: Iterable[str] = ()) -> str:
        """Reply in a thread, to the post `to` (a record id) or else to the thread's first post."""
        parent_id = to or self._openers.get(thread_id)
        return self._post("reply", account, at, thread_id, parent_id, self._authors.get(parent_id), tags)

    def write(
        self, run_id: str = "factory", rows: list[dict] | None = None, extracted_at: datetime | None = None
    ) -> list[str]:
        """Land the rows (or a subset, e.g. to simulate an overlapping rerun) as one run."""
        rows = [
            dict(r, run_id=run_id, extracted_at=extracted_at or r["extracted_at"])
            for r in (self.rows if rows is None else rows)
        ]
        return write_landing(rows, self.landing_root, self.source, run_id)


def _team_rows(source: str, platform: str, record_type: str, items: list[dict]) -> list[dict]:
    rows = []
    for item in items:
        row = _row(source, platform, record_type, item.pop("record_id"), item.pop("at"), **item)
        row.setdefault("title", None)
        row.setdefault("text", None)
        rows.append(row)
    return rows


def write_survey(landing_root, answers: Iterable[tuple[Any, int]], source: str = "survey") -> list[str]:
    """Survey answers as (answered_at, score 0-10)."""
    items = [{"record_id": f"r{i}", "at": at, "value": float(score)} for i, (at, score) in enumerate(answers, 1)]
    return write_landing(
        _team_rows(source, "survey", "survey_response", items), str(landing_root), source, "factory", team=True
    )


def write_feedback(landing_root, items: Iterable[dict], source: str = "feedback") -> list[str]:
    """Feedback items as dicts: id, channel, status, received_at, acted_at?, responded_at?, summary?"""
    rows = []
    for item in items:
        for event in ("received", "acted", "responded"):
            at = item.get(f"{event}_at")
            if at is None:
                continue
            rows.append(
                {
                    "record_id": f"{item['id']}:{event}",
                    "at": at,
                    "thread_id": item["id"],
                    "parent_id": None if event == "received" else item["id"],
                    "tags": [f"channel:{item['channel']}", f"event:{event}", f"status:{item['status']}"],
                    "text": item.get("summary") if event == "received" else None,
                }
            )
    return write_landing(
        _team_rows(source, "feedback_log", "feedback", rows), str(landing_root), source, "factory", team=True
    )


def write_learnings(landing_root, entries: Iterable[dict], source: str = "learnings") -> list[str]:
    """Learnings as dicts: date, title, text, tags, kpis."""
    rows = [
        {
            "record_id": hashlib.sha256(f"{e['date']}|{e['title']}".encode()).hexdigest()[:16],
            "at": f"{e['date']}T00:00:00Z",
            "title": e["title"],
            "text": e.get("text"),
            "tags": sorted([*e.get("tags", []), *(f"kpi:{k}" for k in e.get("kpis", []))]),
        }
        for e in entries
    ]
    return write_landing(
        _team_rows(source, "learnings", "learning", rows), str(landing_root), source, "factory", team=True
    )


def write_team_activity(landing_root, activities: Iterable[tuple[str, str, str]], source: str = "team") -> list[str]:
    """Team activities as (date, kind, title)."""
    rows = [
        {"record_id": f"a{i}", "at": f"{day}T00:00:00Z", "title": title, "tags": [f"kind:{kind}"]}
        for i, (day, kind, title) in enumerate(activities, 1)
    ]
    return write_landing(
        _team_rows(source, "team_activity", "team_activity", rows), str(landing_root), source, "factory", team=True
    )


def write_pageviews(landing_root, views: Iterable[tuple[str, int]], source: str = "wiki") -> list[str]:
    """Daily support-page views as (date, views): aggregate records with no account."""
    rows = [
        _row(source, "mediawiki", "pageviews", f"Help:Start|{day}", f"{day}T00:00:00Z", value=float(n))
        for day, n in views
    ]
    return write_landing(rows, str(landing_root), source, "factory")


COMMUNITY_PLATFORMS = ("discourse", "github", "stackexchange", "x", "mastodon")


def write_mixed_community(
    landing_root, start: str = "2025-01-01", days: int = 150, seed: int = 7, run_id: str = "factory"
) -> None:
    """A deterministic multi-platform community over `days` days from `start` (UTC).

    Every community platform gets threads and replies (with staff, bots, self-replies and
    unanswered threads), the wiki gets talk-page edits and pageviews, and the team sources
    get survey answers, feedback, learnings and activities: enough rows that every KPI has
    published and suppressed values, for comparing builds (engines, incremental vs full).
    `run_id` lets a caller land later days as a separate run, as a daily extract would.
    """
    import random
    from datetime import timedelta

    rng = random.Random(seed)
    first = utc(f"{start}T00:00:00Z")
    for p_index, platform in enumerate(COMMUNITY_PLATFORMS):
        community = LandingFactory(landing_root, source=f"{platform}_src", platform=platform, staff={"s1"}, bots={"b1"})
        members = [f"m{i}" for i in range(30 + 5 * p_index)]
        threads: list[str] = []
        for day in range(days):
            for _ in range(rng.randint(0, 4)):
                at = first + timedelta(days=day, minutes=rng.randint(0, 1439))
                if not threads or rng.random() < 0.3:
                    threads.append(community.thread(rng.choice([*members[: 5 + day // 6], "s1"]), at))
                else:
                    who = rng.choice([*members[: 5 + day // 5], "s1", "b1"])
                    community.reply(who, at, rng.choice(threads[-8:]))
        community.rows.sort(key=lambda r: r["occurred_at"])
        community.write(run_id)
    wiki_rows = []
    for day in range(0, days, 2):
        at = first + timedelta(days=day, hours=rng.randint(0, 23))
        editor, previous = rng.sample([f"w{i}" for i in range(12)], 2)
        wiki_rows.append(
            _row(
                "wiki",
                "mediawiki",
                "edit",
                f"rev{day}",
                at,
                thread_id="page:1",
                parent_id=f"rev{day - 2}" if day else None,
                actor=actor("mediawiki", editor),
                parent_actor=actor("mediawiki", previous),
            )
        )
    pageviews = [
        _row("wiki", "mediawiki", "pageviews", f"Help:Start|{day}", first + timedelta(days=day), value=float(100 + day))
        for day in range(days)
    ]
    write_landing(wiki_rows + pageviews, str(landing_root), "wiki", run_id)
    day_at = [(first + timedelta(days=d)).strftime("%Y-%m-%dT12:00:00Z") for d in range(0, days, 3)]
    write_survey(landing_root, [(at, rng.randint(0, 10)) for at in day_at])
    write_feedback(
        landing_root,
        [
            {
                "id": f"f{i}",
                "channel": rng.choice(["forum", "email"]),
                "status": "open",
                "received_at": at,
                "acted_at": (utc(at) + timedelta(days=rng.randint(1, 9))) if rng.random() < 0.6 else None,
                "responded_at": (utc(at) + timedelta(days=12)) if rng.random() < 0.4 else None,
            }
            for i, at in enumerate(day_at)
        ],
    )
    write_team_activity(
        landing_root, [(at[:10], rng.choice(["event", "talk", "post"]), "Activity") for at in day_at[::4]]
    )
    write_learnings(landing_root, [{"date": day_at[1][:10], "title": "A learning", "tags": ["x"], "kpis": ["nps"]}])
