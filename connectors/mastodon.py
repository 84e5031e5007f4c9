"""Mastodon hashtag timeline: public, authored statuses of accounts that allow indexing.

Reads ``GET /api/v1/timelines/tag/{hashtag}`` newest first, following the ``Link``
rel="next" header, and stops once a page reaches back past ``since`` (the timeline has
no date filter). `HttpClient` retries 429/5xx and waits for ``X-RateLimit-Reset``.

Account ids are local to the instance that serves them (a remote account gets a local
id there), so the id handed to the pseudonymiser is ``<instance>:<id>``: two sources on
two instances never mix up two people who share a number. Mapping, drops and the id
format: docs/connectors/mastodon.md.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

from pydantic import Field

from agora.envelope import RawEvent, Rejected
from connectors.base import ITEM_ERRORS, Connector, Window, item_error, parse_iso
from connectors.http import HttpClient, HttpError, LinkHeaderPaginator, client_options, token_from_env
from connectors.registry import Platform, instance_ids
from connectors.schema import HttpSource

_TAGS = re.compile(r"<[^>]+>")
SNOWFLAKE_SINCE_MS = 1_483_228_800_000  # 2017-01-01: Mastodon switched to snowflake ids in 2.0 (2017)


def instance_of(source: Any) -> str:
    """The instance whose account ids these are: configured, else base_url's host."""
    if source.instance:
        return source.instance.lower()
    return (urlsplit(str(source.base_url)).hostname or "").lower()


def account_key(instance: str, account_id: Any) -> str | None:
    """What gets pseudonymised for a Mastodon account (also the form for privacy.staff/bots)."""
    return None if account_id in (None, "") else f"{instance}:{account_id}"


_parse_time = parse_iso


def _plain_text(status: dict[str, Any]) -> str:
    """Content without markup, for keyword tags only (never stored)."""
    parts = (status.get("spoiler_text") or "", status.get("content") or "")
    return html.unescape(_TAGS.sub(" ", " ".join(parts)))


class MastodonConnector(Connector):
    platform = "mastodon"
    version = "0.1.0"
    # <instance>:<id>; ids are digits on Mastodon, base62/ULIDs on Pleroma and GoToSocial.
    account_id_pattern = r"[^\s:]+:[0-9A-Za-z]{1,32}"
    drop_reasons = {
        "not_authored": "reposts and boosts of someone else's post",
        "not_public": "posts that are not public (staff-only whispers, followers-only or direct posts)",
        "locked_account": "posts of locked accounts",
        "opted_out_of_indexing": "posts of accounts that opted out of search and indexing",
    }
    fields_read = (
        "id",
        "created_at",
        "visibility",
        "in_reply_to_id",
        "in_reply_to_account_id",
        "reblog (presence only)",
        "account.id",
        "account.locked",
        "account.discoverable",
        "account.indexable",
        "account.noindex",
        "account.bot",
        "content, spoiler_text (keyword tags, in memory only)",
        "Link rel=next, X-RateLimit-* headers",
    )

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        src = self.source
        token = token_from_env(src)
        http = HttpClient(
            str(src.base_url),
            credentials={"Authorization": f"Bearer {token}"} if token else None,
            **client_options(src, self.log),
        )
        self.instance = instance_of(src)
        self.outside_window = 0
        path = f"api/v1/timelines/tag/{quote(src.hashtag.lstrip('#'), safe='')}"
        events: list[RawEvent] = []
        pages = statuses = 0
        resp = None
        for page, resp in LinkHeaderPaginator(http).pages(path, {"limit": src.page_size}):
            if not isinstance(page, list):
                raise HttpError(f"{urlsplit(resp.url).path}: expected a list of statuses")
            pages += 1
            statuses += len(page)
            oldest = None
            for status in page:
                item = self._item(status, since, until)
                if isinstance(item, Rejected):
                    yield item
                elif item is not None:
                    events.append(item)
                stored = _stored_at(status)
                if stored is not None and (oldest is None or stored < oldest):
                    oldest = stored
            if not page or (since is not None and oldest is not None and oldest < since):
                break  # ordered by id: everything further back was stored, so created, before `since`
        _link_threads(events)
        yield from events
        quota = resp.headers if resp is not None else {}
        self.log.info(
            "%s: %d pages, %d statuses read, %d outside the window; X-RateLimit-Remaining %s of %s (reset %s)",
            src.name,
            pages,
            statuses,
            self.outside_window,
            quota.get("X-RateLimit-Remaining"),
            quota.get("X-RateLimit-Limit"),
            quota.get("X-RateLimit-Reset"),
        )

    def _item(self, status: Any, since: datetime | None, until: datetime) -> RawEvent | Rejected | None:
        try:
            return self._status(status, since, until)
        except ITEM_ERRORS as e:
            return Rejected(item_error("mastodon status", e), status)

    def _status(self, status: Any, since: datetime | None, until: datetime) -> RawEvent | Rejected | None:
        if not isinstance(status, dict):
            return Rejected("status is not an object", None)
        account = status.get("account") or {}
        if not isinstance(account, dict):
            return Rejected("account is not an object", status)
        for key, value in (
            ("id", status.get("id")),
            ("created_at", status.get("created_at")),
            ("account.id", account.get("id")),
        ):
            if not value:
                return Rejected(f"missing {key}", status, _id_or_none(status))
            if not isinstance(value, str | int) or isinstance(value, bool):
                return Rejected(f"{key} is not a string or number", status, _id_or_none(status))
        try:
            occurred = _parse_time(status["created_at"])
        except ITEM_ERRORS as e:
            return Rejected(item_error("unparseable created_at", e), status, _id_or_none(status))
        if occurred not in Window(since, until):
            self.outside_window += 1  # another window's item: its drops are counted there
            return None
        reason = drop_reason(status, account)
        if reason:
            self.drop(reason)
            return None
        record_id = str(status["id"])
        parent_id = status.get("in_reply_to_id")
        return RawEvent(
            record_type="reply" if parent_id else "thread",
            record_id=record_id,
            occurred_at=occurred,
            thread_id=None if parent_id else record_id,  # replies: set by _link_threads
            parent_id=str(parent_id) if parent_id else None,
            account_id=account_key(self.instance, account["id"]),
            parent_account_id=account_key(self.instance, status.get("in_reply_to_account_id")) if parent_id else None,
            is_bot=bool(account.get("bot")),
            text=_plain_text(status),
        )


def _id_or_none(status: dict) -> str | None:
    sid = status.get("id")
    return str(sid) if isinstance(sid, str | int) and not isinstance(sid, bool) else None


def drop_reason(status: dict[str, Any], account: dict[str, Any]) -> str | None:
    """Why a status must not be landed (design §4), or None when it is public and authored."""
    if status.get("reblog"):
        return "not_authored"
    if status.get("visibility") != "public":
        return "not_public"
    if account.get("locked"):
        return "locked_account"
    # indexable (4.2+), discoverable and the older noindex: any opt-out signal counts.
    if account.get("indexable") is False or account.get("discoverable") is False or account.get("noindex") is True:
        return "opted_out_of_indexing"
    return None


def _created(status: Any) -> datetime | None:
    try:
        return _parse_time(status["created_at"])
    except ITEM_ERRORS:
        return None


def _stored_at(status: Any) -> datetime | None:
    """When the instance stored a status, from its snowflake id (ms since epoch << 16).

    The timeline is ordered by id, not by created_at: a remote status arrives (and gets its
    id) after it was created, sometimes hours late. Stopping on created_at would end paging
    at such a late arrival and miss the in-window statuses on the next pages; stopping on
    the id's time is safe: nothing further back can have been created after it (unless the
    sending server's clock runs ahead).
    Servers without snowflake ids (Pleroma, GoToSocial) fall back to created_at.
    """
    try:
        ms = int(status["id"]) >> 16
    except (KeyError, TypeError, ValueError):
        return _created(status)
    if ms < SNOWFLAKE_SINCE_MS:  # a pre-2017 sequential id, not a snowflake
        return _created(status)
    try:
        return datetime.fromtimestamp(ms / 1000, tz=UTC)
    except (OverflowError, OSError, ValueError):  # an absurd id: the status itself is quarantined
        return _created(status)


def _link_threads(events: list[RawEvent]) -> None:
    """thread_id of a reply: its oldest ancestor among this run's statuses, else its parent.

    The tag timeline carries only the direct parent; fetching every conversation's
    context would cost a request per reply, so chains are resolved from what was read.
    """
    by_id = {e.record_id: e for e in events}
    for e in events:
        if e.parent_id is None:
            continue
        cur, hops = e, 0
        while cur.parent_id is not None and cur.parent_id in by_id and hops < len(by_id):
            cur, hops = by_id[cur.parent_id], hops + 1
        e.thread_id = cur.record_id if cur.parent_id is None else cur.parent_id


# -- what the registry knows about this platform ----------------------------------------


class MastodonSource(HttpSource):
    type: Literal["mastodon"]
    hashtag: str = Field(pattern=r"^#?\w+$", description="Hashtag whose public timeline is read.")
    page_size: int = Field(40, ge=1, le=40, description="Statuses per page; Mastodon serves at most 40.")
    instance: str | None = Field(
        None,
        description="Instance whose local account ids these are (pseudonyms hash '<instance>:<id>'); "
        "defaults to base_url's host. Set it when base_url is a proxy or replay server.",
    )


def lookup_account(source: MastodonSource, handle: str, log: Any) -> str:
    """``user`` or ``user@domain`` as the instance knows it (``/api/v1/accounts/lookup``)."""
    token = token_from_env(source)
    http = HttpClient(
        str(source.base_url),
        credentials={"Authorization": f"Bearer {token}"} if token else None,
        **client_options(source, log),
    )
    body, _ = http.get_json("api/v1/accounts/lookup", {"acct": handle})
    return account_key(instance_of(source), body["id"])


def describe(source: MastodonSource) -> str:
    """What the public notice says this source reads."""
    instance = source.instance or urlsplit(str(source.base_url)).hostname
    return f"public posts tagged #{source.hashtag.lstrip('#')} on {instance}"


PLATFORM = Platform(
    name="mastodon",
    source=MastodonSource,
    connector=MastodonConnector,
    describe=describe,
    lookup=lookup_account,
    account_keys=instance_ids("mastodon", instance_of, account_key),
    demo="agora.demo.mastodon",
    fault_target="test_connector_mastodon:fault_target",
)
