"""Discourse forums: public topics and posts, read through the JSON API.

Endpoints: ``/categories.json`` (which categories are public), ``/latest.json`` (topics
ordered by last activity, paged), ``/t/{id}.json`` (a topic's first posts and the ids of
all of them) and ``/t/{id}/posts.json?post_ids[]=...`` (the rest, 20 at a time).

Public only, decided here: an API key with staff rights also sees read-restricted
categories, whispers, deleted and hidden posts and unlisted topics, so every one of them
is dropped and counted by reason. Of each post only ids, times, post number/type, the
reply link and the visibility flags are read; ``cooked`` (public HTML) is passed on in
memory for keyword tags and never stored. Usernames, names and avatars are never read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from agora.envelope import RawEvent, Rejected
from connectors.base import ITEM_ERRORS, Connector, item_error, parse_iso
from connectors.http import HttpClient, HttpError, PageNumberPaginator, client_options, token_from_env
from connectors.registry import Platform
from connectors.schema import ConfigError, HttpSource

#: Discourse answers /t/{id}/posts.json for up to this many ids; its own web client asks for 20.
POSTS_CHUNK = 20
REGULAR, MODERATOR_ACTION, SMALL_ACTION, WHISPER = 1, 2, 3, 4
_TAGS = re.compile(r"<[^>]+>")


def parse_time(value: Any) -> datetime | None:
    """Discourse timestamps are ISO 8601 (``...Z`` or with an offset); None if unusable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?[0-9]{1,20}", value):  # ASCII: never "１２３"
        return int(value)
    return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _plain(html: Any) -> str:
    return _TAGS.sub(" ", html) if isinstance(html, str) else ""


class DiscourseConnector(Connector):
    platform = "discourse"
    version = "0.1.0"
    account_id_pattern = r"0|-?[1-9][0-9]{0,19}"  # system user -1 and bots are negative
    drop_reasons = {
        # topic in a read-restricted (or unlisted-to-us) category
        "restricted_category": "posts in categories that are not open to everyone",
        # public, but not in the configured `categories`
        "category_not_selected": "public categories this community did not choose to measure",
        "private_message": "private messages",
        # topic hidden from lists by staff (visible: false)
        "unlisted": "topics hidden from lists by moderators",
        # listed, then 403/404 when fetched (deleted or made private)
        "topic_unavailable": "topics deleted or made private before they were read",
        # whisper: staff-only post
        "not_public": "posts that are not public (staff-only whispers, followers-only or direct posts)",
        # moderator/small action ("closed this topic"): not a contribution
        "action_post": "automatic moderation notices (not a contribution)",
        # deleted by staff or withdrawn by its author
        "deleted": "deleted posts",
        # hidden after flags
        "hidden": "hidden or suppressed posts and revisions",
        # author account removed: nothing to attribute it to
        "no_account": "posts whose author account was deleted",
    }
    fields_read = (
        "category_list.categories[].id",
        "category_list.categories[].slug",
        "category_list.categories[].read_restricted",
        "category_list.categories[].parent_category_id",
        "category_list.categories[].subcategory_list",
        "topic_list.topics[].id",
        "topic_list.topics[].category_id",
        "topic_list.topics[].created_at",
        "topic_list.topics[].bumped_at",
        "topic_list.topics[].last_posted_at",
        "topic_list.topics[].archetype",
        "topic_list.topics[].visible",
        "topic_list.topics[].pinned",
        "topic_list.topics[].pinned_globally",
        "topic_list.more_topics_url",
        "title",
        "post_stream.stream",
        "post_stream.posts[].id",
        "post_stream.posts[].user_id",
        "post_stream.posts[].created_at",
        "post_stream.posts[].post_number",
        "post_stream.posts[].reply_to_post_number",
        "post_stream.posts[].post_type",
        "post_stream.posts[].deleted_at",
        "post_stream.posts[].user_deleted",
        "post_stream.posts[].hidden",
        "post_stream.posts[].cooked",
    )

    def __init__(self, source: Any, *, root: Any = None, log: Any = None):
        super().__init__(source, root=root, log=log)
        self.http = HttpClient(
            str(source.base_url), credentials=self._auth_headers(source), **client_options(source, self.log)
        )

    @staticmethod
    def _auth_headers(source: Any) -> dict[str, str]:
        """Api-Key from `token_env`; Api-Username (needed by all-user keys) from `<token_env>_USERNAME`."""
        key = token_from_env(source)
        if not key:
            return {}
        headers = {"Api-Key": key}
        user = os.environ.get(f"{source.token_env}_USERNAME")
        if user:
            headers["Api-Username"] = user
        return headers

    # -- categories -------------------------------------------------------------------

    def _categories(self) -> tuple[set[int], set[int]]:
        """(ids of public categories, ids of public categories selected by config)."""
        data, _ = self.http.get_json("categories.json", {"include_subcategories": "true"})
        flat: dict[int, tuple[str, bool, int | None]] = {}

        def walk(cats: Any, parent: int | None) -> None:
            for c in cats or []:
                cid = _int(c.get("id")) if isinstance(c, dict) else None
                if cid is None:
                    continue
                parent_id = _int(c.get("parent_category_id")) or parent
                flat[cid] = (str(c.get("slug") or ""), bool(c.get("read_restricted")), parent_id)
                walk(c.get("subcategory_list"), cid)

        walk(((data or {}).get("category_list") or {}).get("categories"), None)

        def restricted(cid: int, depth: int = 0) -> bool:
            slug, restr, parent = flat[cid]
            if restr:
                return True
            return parent is not None and parent in flat and depth < 5 and restricted(parent, depth + 1)

        public = {cid for cid in flat if not restricted(cid)}
        wanted = set(self.source.categories)
        if not wanted:
            return public, public
        unknown = wanted - {flat[c][0] for c in flat}
        if unknown:
            raise ConfigError(
                f"sources.{self.source.name}.categories: no such category slug(s): {', '.join(sorted(unknown))}"
            )
        selected = {c for c in public if flat[c][0] in wanted or (flat[c][2] in flat and flat[flat[c][2]][0] in wanted)}
        return public, selected

    # -- topics -----------------------------------------------------------------------

    def _latest(self, since: datetime | None) -> Iterator[dict]:
        """Topics by last activity, newest first; stop at the first unpinned topic older than `since`.

        Pinned topics sit on top of page 0 whatever their age, so they never stop the paging.
        """

        def more(data: Any) -> bool:
            topic_list = _dict(_dict(data).get("topic_list"))
            return bool(topic_list.get("topics")) and bool(topic_list.get("more_topics_url"))

        for data in PageNumberPaginator(self.http).pages("latest.json", {"order": "activity"}, more, first=0):
            topic_list = _dict(_dict(data).get("topic_list"))
            topics = topic_list.get("topics") or []
            if not isinstance(topics, list):
                raise HttpError(f"{self.source.name}: latest.json: topic_list.topics is not a list")
            reached_old = False
            for t in topics:
                if not isinstance(t, dict):
                    continue
                bumped = parse_time(t.get("bumped_at")) or parse_time(t.get("last_posted_at"))
                if since is not None and bumped is not None and bumped < since:
                    if not (t.get("pinned") or t.get("pinned_globally")):
                        reached_old = True
                    continue
                yield t
            if reached_old:
                return

    def _topic_posts(self, topic_id: int) -> tuple[dict, list[dict]]:
        data, _ = self.http.get_json(f"t/{topic_id}.json")
        stream = (data or {}).get("post_stream") or {}
        posts = list(stream.get("posts") or [])  # non-objects are quarantined by _posts_to_events
        have = {p.get("id") for p in posts if isinstance(p, dict)}
        missing = [i for i in stream.get("stream") or [] if i not in have]
        for start in range(0, len(missing), POSTS_CHUNK):
            chunk = missing[start : start + POSTS_CHUNK]
            more, _ = self.http.get_json(f"t/{topic_id}/posts.json", [("post_ids[]", i) for i in chunk])
            posts.extend(((more or {}).get("post_stream") or {}).get("posts") or [])
        return data or {}, posts

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        public, selected = self._categories()
        seen: set[int] = set()
        for t in self._latest(since):
            topic_id = _int(t.get("id"))
            if topic_id is None:
                yield Rejected("discourse topic without a usable id", payload=t)
                continue
            if topic_id in seen:  # bumped while we were paging: it moved to a later page
                continue
            seen.add(topic_id)
            created = parse_time(t.get("created_at"))
            if created is not None and created >= until:
                continue  # none of its posts can fall before `until`
            reason = self._topic_drop_reason(t, public, selected)
            if reason:
                self.drop(reason)
                continue
            try:
                topic, posts = self._topic_posts(topic_id)
            except HttpError as e:
                if e.status in (403, 404, 410):
                    self.drop("topic_unavailable")
                    continue
                raise
            # The topic itself may say more than the list did (moved, made private).
            reason = self._topic_drop_reason({**t, **_topic_fields(topic)}, public, selected)
            if reason:
                self.drop(reason)
                continue
            yield from self._posts_to_events(topic_id, topic.get("title"), posts, since, until)

    @staticmethod
    def _topic_drop_reason(t: dict, public: set[int], selected: set[int]) -> str | None:
        if t.get("archetype") == "private_message":
            return "private_message"
        cid = _int(t.get("category_id"))
        if cid is None or cid not in public:
            return "restricted_category"
        if cid not in selected:
            return "category_not_selected"
        if t.get("visible") is False:
            return "unlisted"
        return None

    # -- posts ------------------------------------------------------------------------

    @staticmethod
    def _post_drop_reason(p: dict) -> str | None:
        ptype = _int(p.get("post_type")) or REGULAR
        if ptype == WHISPER:
            return "not_public"
        if ptype in (MODERATOR_ACTION, SMALL_ACTION):
            return "action_post"
        if p.get("deleted_at") or p.get("user_deleted"):
            return "deleted"
        if p.get("hidden"):
            return "hidden"
        if _int(p.get("user_id")) is None:
            return "no_account"
        if ptype != REGULAR:
            return "not_public"  # a post type we do not know: assume the worst
        return None

    def _posts_to_events(
        self, topic_id: int, title: Any, posts: list[dict], since: datetime | None, until: datetime
    ) -> Iterator[RawEvent | Rejected]:
        parsed: list[tuple[dict, int, int, datetime]] = []
        for p in posts:
            if not isinstance(p, dict):
                yield Rejected("discourse post is not an object")
                continue
            pid, number = _int(p.get("id")), _int(p.get("post_number"))
            try:
                created = parse_iso(p.get("created_at"))
            except ITEM_ERRORS as e:
                created, problem = None, item_error("discourse post without a usable created_at", e)
            user = p.get("user_id")
            if pid is None or number is None or created is None or (user is not None and _int(user) is None):
                if pid is None or number is None:
                    problem = f"discourse post without a usable {'id' if pid is None else 'post_number'}"
                elif created is not None:
                    problem = "discourse post whose user_id is not a number"
                yield Rejected(problem, payload=p, record_id=None if pid is None else str(pid))
                continue
            parsed.append((p, pid, number, created))
        parsed.sort(key=lambda x: x[2])
        # Replies link only to public posts. A reply to the topic (no reply_to_post_number)
        # answers the first post; a reply to a post that is not public (whisper, hidden,
        # deleted or withdrawn, or not in the stream at all) keeps no parent: linking it to
        # the first post would invent an interaction between two people that never happened.
        public_by_number = {n: p for p, _, n, _ in parsed if self._post_drop_reason(p) is None}
        root = public_by_number.get(1)
        for p, pid, number, created in parsed:
            if (since is not None and created < since) or created >= until:
                continue
            reason = self._post_drop_reason(p)
            if reason:
                self.drop(reason)
                continue
            account = _int(p["user_id"])
            text = _plain(p.get("cooked"))
            if number == 1:
                yield RawEvent(
                    record_type="thread",
                    record_id=str(pid),
                    occurred_at=created,
                    thread_id=str(topic_id),
                    account_id=str(account),
                    is_bot=account <= 0,
                    text=f"{title if isinstance(title, str) else ''}\n{text}",
                )
                continue
            target = _int(p.get("reply_to_post_number"))
            parent = root if target is None else public_by_number.get(target)
            parent_account = _int(parent.get("user_id")) if parent else None
            yield RawEvent(
                record_type="reply",
                record_id=str(pid),
                occurred_at=created,
                thread_id=str(topic_id),
                parent_id=str(parent["id"]) if parent else None,
                account_id=str(account),
                parent_account_id=None if parent_account is None else str(parent_account),
                is_bot=account <= 0,
                text=text,
            )


def _topic_fields(topic: dict) -> dict:
    """The few topic-level fields that decide visibility, as /t/{id}.json states them."""
    return {k: topic[k] for k in ("archetype", "category_id", "visible") if k in topic}


# -- what the registry knows about this platform ----------------------------------------


class DiscourseSource(HttpSource):
    type: Literal["discourse"]
    categories: list[str] = Field(default_factory=list, description="Category slugs to read; empty = all public.")


def lookup_account(source: DiscourseSource, handle: str, log: Any) -> str:
    """A username's id (``GET /u/{username}.json``)."""
    body, _ = DiscourseConnector(source, log=log).http.get_json(f"u/{quote(handle, safe='')}.json")
    return str(body["user"]["id"])


def describe(source: DiscourseSource) -> str:
    """What the public notice says this source reads."""
    cats = f" (categories: {', '.join(source.categories)})" if source.categories else ""
    return f"the public forum at {source.base_url}{cats}"


PLATFORM = Platform(
    name="discourse",
    source=DiscourseSource,
    connector=DiscourseConnector,
    describe=describe,
    lookup=lookup_account,
    demo="agora.demo.discourse",
    fault_target="test_connector_discourse:fault_target",
)
