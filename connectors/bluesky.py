"""Bluesky (AT Protocol): public posts from a search, feed generators or followed accounts.

Reads an AppView's XRPC queries (``app.bsky.feed.searchPosts``, ``getFeed``,
``getAuthorFeed``), newest first, with cursor paging, and stops after a page entirely
older than ``since``. A post replying to nothing is a thread; a reply links to its parent and its
thread root through the record's ``reply.parent``/``reply.root`` strong refs.

The account id is the author's DID (stable; the handle changes and is never read into a
record). Record ids are the posts' CIDs: an AT-URI holds its author's DID, so it never
lands. Respecting users' choices, decided here: posts by accounts carrying the
``!no-unauthenticated`` self-label (they asked not to be shown to logged-out viewers) are
dropped and counted, as are reposts; deleted posts are not served, a reply to one keeps its
parent's id but not its author; the text is used in memory for keyword tags only.
Details: docs/connectors/bluesky.md.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Literal

import requests
from pydantic import Field, HttpUrl, model_validator

from agora.envelope import RawEvent, Rejected
from connectors.base import ITEM_ERRORS, Connector, item_error, parse_iso, plausible
from connectors.http import HttpClient, HttpError, Paginator, client_options, token_from_env
from connectors.registry import AccountFormError, Platform
from connectors.schema import BaseHttpSource

NO_UNAUTHENTICATED = "!no-unauthenticated"
POST_TYPE = "app.bsky.feed.post"
REPOST_REASON = "app.bsky.feed.defs#reasonRepost"
#: XRPC errors of an author feed that mean "this account cannot be read", not "retry".
_UNAVAILABLE = (400,)


class BlueskyClient(HttpClient):
    """Bluesky services send ``ratelimit-*`` headers; ``ratelimit-reset`` is Unix time."""

    def rate_limit_wait(self, resp: requests.Response) -> float | None:
        if resp.headers.get("ratelimit-remaining") != "0" and resp.status_code != 429:
            return None
        reset = resp.headers.get("ratelimit-reset")
        try:
            return max(0.0, float(reset) - time.time()) if reset else None
        except ValueError:
            return None

    def login(self, source: Any) -> None:
        """Create a session with the app password; its access token authorises every later read
        (sent to base_url's origin only, like every credential)."""
        password = token_from_env(source, "app_password_env", required=True)
        url = self.url("xrpc/com.atproto.server.createSession")  # refuses another origin
        try:
            resp = self.session.post(
                url,
                json={"identifier": source.identifier, "password": password},
                timeout=self.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as e:
            raise HttpError(f"/xrpc/com.atproto.server.createSession: {type(e).__name__}") from None
        if resp.status_code != 200:
            raise HttpError(f"/xrpc/com.atproto.server.createSession: HTTP {resp.status_code}", resp.status_code)
        try:
            token = resp.json().get("accessJwt")
        except (ValueError, AttributeError):
            token = None
        if not isinstance(token, str) or not token:
            raise HttpError("/xrpc/com.atproto.server.createSession: no access token in the answer")
        self.credentials["Authorization"] = f"Bearer {token}"


def make_client(source: Any, log: Any) -> BlueskyClient:
    client = BlueskyClient(str(source.base_url), **client_options(source, log))
    if source.app_password_env:
        client.login(source)
    return client


def lookup_handle(source: Any, handle: str, log: Any) -> str | None:
    """The DID a handle resolves to (``com.atproto.identity.resolveHandle``), or None.
    A DID is the account id already: returned as is, without a request."""
    if handle.startswith("did:"):
        return handle
    try:
        body, _ = make_client(source, log).get_json(
            "xrpc/com.atproto.identity.resolveHandle", {"handle": handle.removeprefix("@")}
        )
    except HttpError as e:
        if e.status in (400, 404):  # HandleNotFound / "Unable to resolve handle"
            return None
        raise
    did = body.get("did") if isinstance(body, dict) else None
    return did if isinstance(did, str) and did.startswith("did:") else None


def did_of(uri: Any) -> str | None:
    """The repository DID of an AT-URI (``at://did:plc:.../app.bsky.feed.post/...``)."""
    if not isinstance(uri, str) or not uri.startswith("at://"):
        return None
    authority = uri[len("at://") :].split("/", 1)[0]
    return authority if authority.startswith("did:") else None


def _declared(value: Any) -> datetime:
    """A client-declared time (createdAt): any ISO 8601 datetime, not checked plausible on its own."""
    if not isinstance(value, str):
        raise TypeError(f"createdAt is a {type(value).__name__}, not a string")
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _has_label(labels: Any, value: str) -> bool:
    if isinstance(labels, dict):  # a record's self-labels: {"values": [{"val": ...}]}
        labels = labels.get("values")
    if not isinstance(labels, list):
        return False
    return any(isinstance(lb, dict) and lb.get("val") == value and not lb.get("neg") for lb in labels)


def _text(record: dict) -> str:
    """Post text plus its hashtags (record tags and facet tags), for keyword tags in memory only."""
    parts = [str(record.get("text") or "")]
    parts += [f"#{t}" for t in record.get("tags") or [] if isinstance(t, str)]
    for facet in record.get("facets") or []:
        for feature in (facet.get("features") or []) if isinstance(facet, dict) else []:
            if isinstance(feature, dict) and isinstance(feature.get("tag"), str):
                parts.append(f"#{feature['tag']}")
    return " ".join(parts)


class BlueskyConnector(Connector):
    platform = "bluesky"
    version = "0.1.0"
    account_id_pattern = r"did:(plc:[a-z2-7]{24}|web:[a-z0-9.-]+(%3[aA][0-9]{1,5})?)"
    drop_reasons = {
        # the author (or the post) carries !no-unauthenticated: not for logged-out eyes
        "no_unauthenticated": "posts of accounts (or single posts) that asked not to be shown to logged-out visitors",
        # a repost in a feed: not the reposter's contribution
        "not_authored": "reposts and boosts of someone else's post",
        # a followed account that is deactivated, taken down or unknown
        "account_unavailable": "posts of accounts that are deactivated, taken down or unknown",
    }
    fields_read = (
        "post.uri (author DID and thread links, in memory only)",
        "post.cid",
        "post.indexedAt",
        "post.author.did",
        "post.author.labels[].val, neg",
        "post.labels[].val, neg",
        "post.record.$type",
        "post.record.createdAt",
        "post.record.reply.root.cid, reply.parent.uri, reply.parent.cid",
        "post.record.labels.values[].val",
        "post.record.text, tags, facets[].features[].tag (keyword tags, in memory only)",
        "feed[].reason.$type, feed[].reply.parent (notFound, author.labels)",
        "cursor, ratelimit-* headers",
    )

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        src = self.source
        self.client = make_client(src, self.log)
        self.since, self.until = since, until
        self.events: dict[str, RawEvent] = {}  # by CID: a post found by two listings lands once
        self.hidden_authors: set[str] = set()  # DIDs seen with !no-unauthenticated (memory only)
        self.deleted: set[str] = set()  # AT-URIs seen as notFound (memory only)
        self.outside_window = 0
        rejected: list[Rejected] = []
        if src.query:
            params = {"q": src.query, "sort": "latest", "limit": src.page_size, "until": _iso(until)}
            if since is not None:
                params["since"] = _iso(since)
            rejected += self.read("xrpc/app.bsky.feed.searchPosts", params, "posts")
        for feed in src.feeds:
            params = {"feed": feed, "limit": src.page_size}
            rejected += self.read("xrpc/app.bsky.feed.getFeed", params, "feed", max_pages=src.feed_max_pages)
        for actor in src.accounts:
            params = {"actor": actor, "limit": src.page_size, "filter": "posts_with_replies"}
            try:
                rejected += self.read("xrpc/app.bsky.feed.getAuthorFeed", params, "feed")
            except HttpError as e:
                if e.status not in _UNAVAILABLE:
                    raise
                self.drop("account_unavailable")
                self.log.warning("%s: an account in `accounts` cannot be read (HTTP %s)", src.name, e.status)
        yield from rejected
        for event in self.events.values():
            parent_uri = event.parent_account_id  # an AT-URI until here; becomes its author's DID
            author = did_of(parent_uri)
            event.parent_account_id = None if parent_uri in self.deleted or author in self.hidden_authors else author
            yield event
        self.log.info(
            "%s: %d requests, %d retries, %d posts outside the window",
            src.name,
            self.client.requests_made,
            self.client.retries,
            self.outside_window,
        )

    def read(self, path: str, params: dict[str, Any], key: str, *, max_pages: int = 10_000) -> list[Rejected]:
        """Page through one listing until its end, or a page entirely older than `since`."""
        rejected: list[Rejected] = []
        seen = Paginator(self.client)  # a repeated cursor or an endless listing fails, naming the source
        for _ in range(max_pages):
            seen.visit(f"{path}?cursor={params.get('cursor', '')}", "cursor")
            body, _resp = self.client.get_json(path, params)
            items = body.get(key) if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise HttpError(f"/{path}: expected a list in {key!r}")
            times = []
            for item in items:
                post, context = (item, {}) if key == "posts" else (_get(item, "post"), item)
                missing = _missing(post)
                try:
                    if missing:
                        result = Rejected(f"bluesky post without {missing}", post)
                    else:
                        result = self.post(post, context if isinstance(context, dict) else {})
                except ITEM_ERRORS as e:
                    result = Rejected(item_error("bluesky post", e), post)
                if isinstance(result, Rejected):
                    rejected.append(result)
                elif result is not None:
                    times.append(result)
            cursor = body.get("cursor")
            if not items or not cursor:
                break
            if self.since is not None and times and max(times) < self.since:
                # Newest first: a page entirely older than the window ends it. Not its oldest post
                # alone: a post indexed late, or a feed in its own order, would end it too early.
                break
            params = {**params, "cursor": cursor}
        return rejected

    def post(self, post: Any, context: dict) -> datetime | Rejected | None:
        """Keep one post view (and its feed context); return its time, for the paging decision.
        A malformed post raises (ITEM_ERRORS): it is quarantined by the caller."""
        if not isinstance(post, dict):
            raise TypeError("post view is not an object")
        record, author = post["record"], post["author"]
        if not isinstance(record, dict) or not isinstance(author, dict):
            raise TypeError("record or author is not an object")
        cid, did, uri = post["cid"], author["did"], post["uri"]
        if not all(isinstance(v, str) and v for v in (cid, did, uri)):
            raise TypeError("uri, cid or author.did is not a string")
        if record.get("$type", POST_TYPE) != POST_TYPE:
            return Rejected("bluesky record is not an app.bsky.feed.post", post, cid)
        # createdAt is declared by the client (ahead, or far back for imports); the AppView's
        # indexedAt bounds it, as its own sortAt does.
        occurred = plausible(min(_declared(record["createdAt"]), parse_iso(post["indexedAt"])))
        self.note_context(context)
        if occurred >= self.until or (self.since is not None and occurred < self.since):
            self.outside_window += 1  # another window's post: its drops are counted there
            return occurred
        reason = context.get("reason")
        if isinstance(reason, dict) and reason.get("$type") == REPOST_REASON:
            self.drop("not_authored")
            return occurred
        if _has_label(author.get("labels"), NO_UNAUTHENTICATED) or _has_label(post.get("labels"), NO_UNAUTHENTICATED):
            self.hidden_authors.add(did)
            self.drop("no_unauthenticated")
            return occurred
        if _has_label(record.get("labels"), NO_UNAUTHENTICATED):
            self.drop("no_unauthenticated")
            return occurred
        if cid in self.events:
            return occurred
        reply = record.get("reply")
        if reply is not None:
            parent, root = reply["parent"], reply["root"]
            if not all(isinstance(v, str) and v for v in (parent["cid"], root["cid"])):
                raise TypeError("reply.parent.cid or reply.root.cid is not a string")
        self.events[cid] = RawEvent(
            record_type="reply" if reply else "thread",
            record_id=cid,
            occurred_at=occurred,
            thread_id=root["cid"] if reply else cid,
            parent_id=parent["cid"] if reply else None,
            account_id=did,
            parent_account_id=parent.get("uri") if reply else None,  # resolved to a DID in extract()
            text=_text(record),
        )
        return occurred

    def note_context(self, context: dict) -> None:
        """What a feed item tells about the posts a reply answers: deleted, or by a hidden author."""
        for view in (_get(_get(context, "reply"), "parent"), _get(_get(context, "reply"), "root")):
            if not isinstance(view, dict):
                continue
            if view.get("notFound") is True:
                self.deleted.add(view.get("uri"))
            elif _has_label(_get(view.get("author"), "labels"), NO_UNAUTHENTICATED):
                did = _get(view.get("author"), "did")
                if did:
                    self.hidden_authors.add(did)


def _missing(post: Any) -> str | None:
    """The first required field a post view lacks (named in the quarantine reason), else None."""
    if not isinstance(post, dict):
        return None  # not an object: the parser says so
    for path in ("uri", "cid", "indexedAt", "author.did", "record.createdAt"):
        value: Any = post
        for key in path.split("."):
            value = _get(value, key)
        if value in (None, ""):
            return path
    return None


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else None


# -- what the registry knows about this platform ----------------------------------------


class BlueskySource(BaseHttpSource):
    type: Literal["bluesky"]
    base_url: HttpUrl = Field(
        HttpUrl("https://public.api.bsky.app"),
        description="AppView (public, no login) or, with an app password, your PDS (https://bsky.social).",
    )
    query: str | None = Field(None, description="searchPosts query: a hashtag ('#airflow') or search terms.")
    feeds: list[str] = Field(default_factory=list, description="at:// URIs of feed generators to read.")
    accounts: list[str] = Field(default_factory=list, description="Handles or DIDs whose posts are read.")
    identifier: str | None = Field(None, description="Handle or DID that logs in with the app password.")
    app_password_env: str | None = Field(
        None, description="Environment variable holding an app password (never the account password)."
    )
    page_size: int = Field(100, ge=1, le=100, description="Posts per page; the AppView serves at most 100.")
    feed_max_pages: int = Field(
        20, ge=1, description="Pages read from one feed generator (a feed need not be chronological)."
    )

    @model_validator(mode="after")
    def _something_to_read(self) -> BlueskySource:
        if not (self.query or self.feeds or self.accounts):
            raise ValueError("give a query, feeds or accounts to read")
        if bool(self.identifier) != bool(self.app_password_env):
            raise ValueError("identifier and app_password_env go together")
        return self


def dids(sources: Any, account: str) -> set[str] | None:
    """A privacy request naming a DID means that DID (the account id); anything else is a handle."""
    if not account.startswith("did:"):
        return None
    if BlueskyConnector.account_problem(account):
        raise AccountFormError("a bluesky DID is did:plc:<24 base32 characters> or did:web:<host>, in lower case")
    return {account}


def describe(source: BlueskySource) -> str:
    """What the public notice says this source reads."""
    parts = [f"matching {source.query!r}"] if source.query else []
    parts += [f"in the feeds {', '.join(source.feeds)}"] if source.feeds else []
    parts += [f"by {', '.join(source.accounts)}"] if source.accounts else []
    return f"public posts on Bluesky {' and '.join(parts)}"


PLATFORM = Platform(
    name="bluesky",
    source=BlueskySource,
    connector=BlueskyConnector,
    describe=describe,
    lookup=lookup_handle,
    account_keys=dids,
    demo="agora.demo.bluesky",
    fault_target="test_connector_bluesky:fault_target",
)
