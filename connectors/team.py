"""Team-written sources: survey scores, the feedback log, learnings, team activity.

These are files the team keeps next to `agora.yml` (paths relative to it). They hold no
accounts, so nothing is pseudonymised; `title`/`text` are written by the team and the
landing contract scans them for personal data. Every row is validated on its own: a bad
row is quarantined with ``<file>:<line>: <what is wrong>`` and the good rows still land.
Reasons never echo the bad value, which could itself be personal data.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

from agora.envelope import RawEvent, Rejected
from connectors.base import Connector
from connectors.registry import Platform
from connectors.schema import FileSource

ACTIVITY_KINDS = ("event", "talk", "post", "trip", "workshop", "other")
#: Labels that become tags (channel:..., status:..., kpi:...): short, no free text.
_LABEL = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


class RowError(ValueError):
    """What is wrong with one row, phrased for the person who keeps the file."""


def parse_when(value: Any, column: str) -> datetime:
    """A date (midnight UTC) or an ISO date-time (naive = UTC)."""
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, date):
        dt = datetime.combine(value, time(0), tzinfo=UTC)
    elif isinstance(value, str) and value.strip():
        try:
            dt = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise RowError(f"{column} is not an ISO date (YYYY-MM-DD) or date-time") from None
    else:
        raise RowError(f"{column} is empty")
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _label(value: Any, column: str) -> str:
    v = str(value or "").strip().lower()
    if not _LABEL.match(v):
        raise RowError(f"{column} must be a short label (lowercase letters, digits, - or _)")
    return v


def _required(row: dict, column: str) -> str:
    v = (row.get(column) or "").strip()
    if not v:
        raise RowError(f"{column} is empty")
    return v


def _in_window(when: datetime, since: datetime | None, until: datetime) -> bool:
    return (since is None or when >= since) and when < until


class _TeamFile(Connector):
    """Shared plumbing: locate the file, number its rows, turn RowErrors into quarantine."""

    def path(self) -> Path:
        p = Path(self.source.path)
        return p if p.is_absolute() else Path(self.root or ".") / p

    def where(self, line: int) -> str:
        return f"{self.source.path}:{line}"

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        path = self.path()
        if not path.exists():
            raise FileNotFoundError(f"sources.{self.source.name}.path: {self.source.path} does not exist")
        for line, item in self.items(path):
            if isinstance(item, Rejected):
                yield item
                continue
            try:
                events = list(self.events(item))
                for ev in events:
                    from agora.privacy import find_personal_data

                    found = find_personal_data(ev.title, ev.body)  # imported here: agora.privacy loads the registry
                    if found:
                        # Rejected at the edge with file:line; the landing contract is the backstop.
                        raise RowError(f"title/text holds {found}: team notes must not name people")
            except RowError as e:
                yield Rejected(f"{self.where(line)}: {e}", payload=item)
                continue
            for ev in events:
                if _in_window(ev.occurred_at, since, until):
                    yield ev

    def items(self, path: Path) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def events(self, item: Any) -> Iterator[RawEvent]:
        raise NotImplementedError


class _CsvFile(_TeamFile):
    columns: ClassVar[tuple[str, ...]]
    #: Column holding the row's own id: a second row with the same id is rejected.
    id_column: ClassVar[str | None] = None

    def items(self, path: Path) -> Iterator[tuple[int, Any]]:
        with path.open(newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in reader.fieldnames or []]
            missing = [c for c in self.columns if c not in header]
            if missing:
                yield 1, Rejected(f"{self.where(1)}: missing column(s) {', '.join(missing)}; no row read")
                return
            reader.fieldnames = header
            seen: set[str] = set()
            line = reader.line_num
            for row in reader:
                start, line = line + 1, reader.line_num
                if None in row:  # more cells than the header has
                    yield start, Rejected(f"{self.where(start)}: more cells than columns", payload=None)
                    continue
                if self.id_column:
                    rid = (row.get(self.id_column) or "").strip()
                    if rid and rid in seen:
                        yield start, Rejected(f"{self.where(start)}: duplicate {self.id_column}", payload=row)
                        continue
                    seen.add(rid)
                yield start, row


class SurveyConnector(_CsvFile):
    """`response_id,answered_at,score` (0-10): one record per answer, the score as `value`."""

    platform = "survey"
    columns = ("response_id", "answered_at", "score")
    id_column = "response_id"

    def events(self, row: dict) -> Iterator[RawEvent]:
        rid = _required(row, "response_id")
        when = parse_when(row.get("answered_at"), "answered_at")
        raw = (row.get("score") or "").strip()
        if not re.fullmatch(r"\d{1,2}", raw) or not 0 <= int(raw) <= 10:
            raise RowError("score is not a whole number from 0 to 10")
        yield RawEvent(record_type="survey_response", record_id=rid, occurred_at=when, value=float(raw))


class FeedbackConnector(_CsvFile):
    """The feedback log: received, acted on, responded back — one record per event.

    The three events share `thread_id` = the item's id, so the loop can be closed in SQL
    without the log ever being rewritten.
    """

    platform = "feedback_log"
    columns = ("feedback_id", "received_at", "channel", "status", "acted_at", "responded_at", "summary")
    id_column = "feedback_id"

    def events(self, row: dict) -> Iterator[RawEvent]:
        fid = _required(row, "feedback_id")
        received = parse_when(row.get("received_at"), "received_at")
        channel, status = _label(row.get("channel"), "channel"), _label(row.get("status"), "status")
        later = {}
        for event, column in (("acted", "acted_at"), ("responded", "responded_at")):
            if (row.get(column) or "").strip():
                when = parse_when(row[column], column)
                if when < received:
                    raise RowError(f"{column} is before received_at")
                later[event] = when
        tags = [f"channel:{channel}", f"status:{status}"]
        summary = (row.get("summary") or "").strip() or None
        yield RawEvent(
            record_type="feedback",
            record_id=f"{fid}:received",
            occurred_at=received,
            thread_id=fid,
            tags=["event:received", *tags],
            body=summary,
        )
        for event, when in later.items():
            yield RawEvent(
                record_type="feedback",
                record_id=f"{fid}:{event}",
                occurred_at=when,
                thread_id=fid,
                parent_id=fid,
                tags=[f"event:{event}", *tags],
            )


class TeamActivityConnector(_CsvFile):
    """`date,kind,title`: what the team did (events, talks, posts, trips) — activity, not results."""

    platform = "team_activity"
    columns = ("date", "kind", "title")

    def events(self, row: dict) -> Iterator[RawEvent]:
        when = parse_when(row.get("date"), "date")
        kind = (row.get("kind") or "").strip().lower()
        if kind not in ACTIVITY_KINDS:
            raise RowError(f"kind must be one of {', '.join(ACTIVITY_KINDS)}")
        title = _required(row, "title")
        yield RawEvent(
            record_type="team_activity",
            record_id=_stable_id(when.date().isoformat(), kind, title),
            occurred_at=when,
            tags=[f"kind:{kind}"],
            title=title,
        )


class LearningsConnector(_TeamFile):
    """A YAML list of `{date, title, text, tags, kpis}`: what the team learned, and about which KPIs."""

    platform = "learnings"
    keys = frozenset({"date", "title", "text", "tags", "kpis"})

    def items(self, path: Path) -> Iterator[tuple[int, Any]]:
        text = path.read_text(encoding="utf-8")
        try:
            data = yaml.safe_load(text)
            node = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            line = mark.line + 1 if mark else 1
            yield line, Rejected(f"{self.where(line)}: not valid YAML; no entry read")
            return
        if data is None:
            return
        if not isinstance(data, list):
            yield 1, Rejected(f"{self.where(1)}: expected a list of learnings; no entry read")
            return
        seen: set[str] = set()
        for item, item_node in zip(data, node.value, strict=True):
            line = item_node.start_mark.line + 1
            if isinstance(item, dict) and "date" in item and "title" in item:
                rid = _stable_id(str(item["date"]), str(item["title"]))
                if rid in seen:
                    yield line, Rejected(f"{self.where(line)}: duplicate date and title", payload=item)
                    continue
                seen.add(rid)
            yield line, item

    def events(self, item: Any) -> Iterator[RawEvent]:
        if not isinstance(item, dict):
            raise RowError("entry is not a mapping with date, title, text, tags, kpis")
        unknown = sorted(set(map(str, item)) - self.keys)
        if unknown:
            raise RowError(f"unknown key(s) {', '.join(unknown)} (allowed: {', '.join(sorted(self.keys))})")
        when = parse_when(item.get("date"), "date")
        title, text = item.get("title"), item.get("text")
        if not isinstance(title, str) or not title.strip():
            raise RowError("title is empty")
        if not isinstance(text, str) or not text.strip():
            raise RowError("text is empty")
        tags, kpis = item.get("tags") or [], item.get("kpis") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
            raise RowError("tags must be a list of words")
        if not isinstance(kpis, list):
            raise RowError("kpis must be a list of KPI names")
        kpi_names = [_label(k, "kpis") for k in kpis]
        yield RawEvent(
            record_type="learning",
            record_id=_stable_id(str(item["date"]), title),
            occurred_at=when,
            tags=[*(t.strip() for t in tags), *(f"kpi:{k}" for k in kpi_names)],
            title=title.strip(),
            body=text.strip(),
        )


def _stable_id(*parts: str) -> str:
    """Same content, same id: a rerun replaces the record instead of adding one."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


# -- what the registry knows about this platform ----------------------------------------


class SurveySource(FileSource):
    type: Literal["survey"]


class FeedbackSource(FileSource):
    type: Literal["feedback_log"]


class LearningsSource(FileSource):
    type: Literal["learnings"]


class TeamActivitySource(FileSource):
    type: Literal["team_activity"]


def _says(text: str) -> Callable[[Any], str]:
    """A team file's notice description: the same whatever file it is read from."""
    return lambda source: text


PLATFORMS = [
    Platform(
        name="survey",
        source=SurveySource,
        connector=SurveyConnector,
        describe=_says("answers to the team's own survey: a score from 0 to 10 and when it was given, nothing else"),
        team=True,
    ),
    Platform(
        name="feedback_log",
        source=FeedbackSource,
        connector=FeedbackConnector,
        describe=_says("the team's log of feedback received and what was done about it"),
        team=True,
    ),
    Platform(
        name="learnings",
        source=LearningsSource,
        connector=LearningsConnector,
        describe=_says("the team's own notes of what it learned"),
        team=True,
    ),
    Platform(
        name="team_activity",
        source=TeamActivitySource,
        connector=TeamActivityConnector,
        describe=_says("the team's own list of events, talks, posts and trips"),
        team=True,
    ),
]
