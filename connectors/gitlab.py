"""GitLab: issues and merge requests (threads) and their discussion notes (replies).

Works with gitlab.com and self-hosted instances (REST API v4 under ``base_url``). Only
public projects are read: the project is checked first and one whose ``visibility`` is not
``public`` is refused with an error, not skipped. Within a public project, an issue or merge
request list restricted to members (``*_access_level: private``) is not read, and
confidential issues, internal notes and system notes are dropped and counted.

Accounts are ``<instance>:<numeric user id>``: ids are per instance, like Mastodon's, and the
username (which people change) is never put in a record. Incremental: lists are asked for
items *updated* after the window start (an old issue gains notes), paged to the end
(``Link`` rel="next", else ``X-Next-Page``), and records are kept by *creation* time in
[since, until). Details: docs/connectors/gitlab.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import requests
from pydantic import Field, HttpUrl

from agora.envelope import RawEvent, Rejected
from agora.errors import PermanentError
from connectors.base import ITEM_ERRORS, Connector, Window, as_int, item_error, parse_iso
from connectors.http import HttpClient, HttpError, OriginError, Paginator, client_options, next_link, token_from_env
from connectors.registry import Platform, instance_ids, is_ascii_id
from connectors.schema import HttpSource

#: Access tokens of projects and groups act as users named like this; flagged as bots.
_TOKEN_BOT = re.compile(r"^(project|group)_\d+_bot(_[0-9a-f]+)?$")
#: The placeholder GitLab gives the contributions of deleted users: many people, not one.
GHOST_USERNAME = "ghost"


class PrivateProjectError(PermanentError):
    """A configured project is not public; Agora refuses to read it (no retry can change that)."""


class GitlabClient(HttpClient):
    """GitLab signals its limits with ``RateLimit-*`` headers; ``RateLimit-Reset`` is Unix time."""

    def rate_limit_wait(self, resp: requests.Response) -> float | None:
        if resp.headers.get("RateLimit-Remaining") != "0" and resp.status_code != 429:
            return None  # the reset header comes with every response: it means "wait" only when spent
        reset = resp.headers.get("RateLimit-Reset")
        try:
            return max(0.0, float(reset) - time.time()) if reset else None
        except ValueError:
            return None


def api_root(base_url: Any) -> str:
    """``<instance>/api/v4/``, whether base_url names the instance or already the API."""
    root = str(base_url).rstrip("/")
    return root + "/" if root.endswith("/api/v4") else root + "/api/v4/"


def instance_of(source: Any) -> str:
    """The instance whose user ids these are: configured, else base_url's host."""
    return (source.instance or urlsplit(str(source.base_url)).hostname or "").lower()


def account_key(instance: str, user_id: Any) -> str | None:
    """What gets pseudonymised for a GitLab user (also the form for privacy.staff/bots/requests)."""
    return None if user_id in (None, "") else f"{instance}:{user_id}"


def make_client(source: Any, log: Any) -> GitlabClient:
    token = token_from_env(source)
    return GitlabClient(
        api_root(source.base_url),
        credentials={"PRIVATE-TOKEN": token} if token else None,  # sent to the instance only
        **client_options(source, log),
    )


def lookup_handle(source: Any, handle: str, log: Any) -> str | None:
    """The account key of a username on this source's instance, or None when it has none."""
    body, _ = make_client(source, log).get_json("users", {"username": handle})
    if not isinstance(body, list) or not body or body[0].get("id") is None:
        return None
    return account_key(instance_of(source), body[0]["id"])


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _text(*parts: Any) -> str | None:
    text = "\n".join(p for p in parts if isinstance(p, str) and p)
    return text or None


class GitlabConnector(Connector):
    platform = "gitlab"
    version = "0.1.0"
    account_id_pattern = r"[a-z0-9.-]+:[1-9][0-9]{0,19}"  # <instance>:<user id>
    drop_reasons = {
        # visible to project members and the author only; its notes are not read
        "confidential_issue": (
            "confidential issues (visible to project members and their author only) and their comments"
        ),
        # internal (formerly confidential) notes: members only
        "internal_note": "internal notes (visible to project members only)",
        # "changed the description", "added label": GitLab's, not a person's contribution
        "system_note": 'automatic notes such as "changed the description" (not a contribution)',
        # author missing or GitLab's ghost placeholder for deleted users
        "no_account": "posts whose author account was deleted",
    }
    fields_read = (
        "project.id",
        "project.visibility",
        "project.issues_access_level",
        "project.merge_requests_access_level",
        "issue/merge_request.iid",
        "issue/merge_request.created_at",
        "issue/merge_request.confidential",
        "issue/merge_request.user_notes_count",
        "issue/merge_request.title, description (keyword tags, in memory only)",
        "discussion.individual_note",
        "note.id",
        "note.created_at",
        "note.system",
        "note.internal",
        "note.confidential",
        "note.body (keyword tags, in memory only)",
        "author.id",
        "author.bot",
        "author.username (in memory: ghost and token-bot patterns only)",
        "Link rel=next, X-Next-Page, RateLimit-* headers",
    )

    def __init__(self, source: Any, **kwargs: Any):
        super().__init__(source, **kwargs)
        self.client = make_client(source, self.log)
        self.instance = instance_of(source)

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        for path in self.source.projects:
            yield from _ProjectRun(self, path, since, until).run()
        self.log.info("%s: %d requests, %d retries", self.source.name, self.client.requests_made, self.client.retries)

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[Any]:
        """Every item of a list: ``Link`` rel="next" when sent, else ``X-Next-Page``. A next
        link must stay on the listing it continues; a loop or an endless list fails (Paginator)."""
        seen = Paginator(self.client)
        listing = self.client.relative_path(self.client.url(path))
        url: str | None = path
        query: dict[str, Any] | None = params
        while url:
            seen.visit(requests.Request("GET", self.client.url(url), params=query).prepare().url or url)
            body, resp = self.client.get_json(url, query)
            if not isinstance(body, list):
                raise HttpError(f"{self.source.name}: {path}: expected a JSON list, got {type(body).__name__}")
            yield from body
            link = next_link(resp)
            if link:
                if self.client.relative_path(self.client.url(link)) != listing:
                    raise OriginError(f"{self.source.name}: refusing a next link outside the listing {path}")
                url, query = link, None  # the link carries the query
            elif is_ascii_id(resp.headers.get("X-Next-Page", "")) and body:
                url, query = path, {**params, "page": resp.headers["X-Next-Page"]}
            else:
                url = None

    def account(self, user: Any) -> str | None:
        """The account key of an author object; None for no author or the ghost; a malformed
        author raises (the item is quarantined)."""
        if user is None:
            return None
        if not isinstance(user, dict):
            raise TypeError("author is not an object")
        if user.get("id") is None or user.get("username") == GHOST_USERNAME:
            return None
        return account_key(self.instance, as_int(user["id"]))


def _missing(item: Any, keys: tuple[str, ...]) -> str | None:
    """The first required key an object lacks (named in the quarantine reason), else None."""
    if not isinstance(item, dict):
        return None  # not an object: the parser says so
    return next((k for k in keys if item.get(k) in (None, "")), None)


def _is_bot(user: Any) -> bool:
    if not isinstance(user, dict):
        return False
    return user.get("bot") is True or bool(_TOKEN_BOT.match(str(user.get("username") or "")))


class _ProjectRun:
    """One project for one window: each thread, then the notes of its discussions."""

    KINDS = (("issues", "#", "issues_access_level"), ("merge_requests", "!", "merge_requests_access_level"))

    def __init__(self, conn: GitlabConnector, path: str, since: datetime | None, until: datetime):
        self.conn, self.path, self.since, self.window = conn, path, since, Window(since, until)

    def run(self) -> Iterator[RawEvent | Rejected]:
        project = self.check_public()
        self.project_id = as_int(project["id"])
        for kind, sign, access in self.KINDS:
            level = project.get(access, "enabled")
            if level != "enabled":  # "private": members only in a public project; "disabled": none
                self.conn.log.warning("gitlab project %s: %s are %s, not read", self.path, kind, level)
                continue
            yield from self.threads(kind, sign)

    def check_public(self) -> dict:
        try:
            meta, _ = self.conn.client.get_json(f"projects/{quote(self.path, safe='')}")
        except HttpError as e:
            if e.status == 404:  # what GitLab answers for a project you may not see
                raise PrivateProjectError(
                    f"gitlab project {self.path}: not found or not public; Agora reads public projects only"
                ) from None
            raise
        visibility = meta.get("visibility") if isinstance(meta, dict) else None
        if visibility != "public" or meta.get("id") is None:
            raise PrivateProjectError(
                f"gitlab project {self.path}: visibility is {visibility!r}, not 'public'; "
                "Agora reads public projects only"
            )
        return meta

    def threads(self, kind: str, sign: str) -> Iterator[RawEvent | Rejected]:
        params: dict[str, Any] = {
            "scope": "all",
            "state": "all",
            "order_by": "updated_at",
            "sort": "asc",
            "per_page": self.conn.source.page_size,
        }
        if self.since is not None:
            params["updated_after"] = _iso(self.since)
        for item in self.conn.pages(f"projects/{self.project_id}/{kind}", params):
            missing = _missing(item, ("iid", "created_at"))
            if missing:
                yield Rejected(f"gitlab {kind[:-1]} without {missing}", item)
                continue
            try:
                parsed = self.thread(item, kind, sign)
            except ITEM_ERRORS as e:
                yield Rejected(item_error(f"gitlab {kind[:-1]}", e), item)
                continue
            if parsed is None:
                continue
            event, thread_id, author = parsed
            if event is not None:
                yield event
            if item.get("user_notes_count") != 0:  # none: no discussion to ask for (system notes are not counted)
                yield from self.notes(f"projects/{self.project_id}/{kind}/{item['iid']}/discussions", thread_id, author)

    def thread(self, item: Any, kind: str, sign: str) -> tuple[RawEvent | None, str, str | None] | None:
        """(the thread's record if in the window, its id, its author), or None when it is confidential."""
        if not isinstance(item, dict):
            raise TypeError(f"{kind[:-1]} is not an object")
        iid, created = as_int(item["iid"]), parse_iso(item["created_at"])
        if item.get("confidential") is True:
            if created in self.window:
                self.conn.drop("confidential_issue")
            return None  # nor are its notes read: they are as confidential as the issue
        thread_id = f"{self.project_id}{sign}{iid}"
        author = self.conn.account(item.get("author"))
        if created not in self.window:
            return None, thread_id, author
        if author is None:
            self.conn.drop("no_account")
            return None, thread_id, author
        event = RawEvent(
            record_type="thread",
            record_id=thread_id,
            occurred_at=created,
            thread_id=thread_id,
            account_id=author,
            is_bot=_is_bot(item.get("author")),
            text=_text(item.get("title"), item.get("description")),
        )
        return event, thread_id, author

    def notes(self, path: str, thread_id: str, thread_author: str | None) -> Iterator[RawEvent | Rejected]:
        for discussion in self.conn.pages(path, {"per_page": self.conn.source.page_size}):
            notes = discussion.get("notes") if isinstance(discussion, dict) else None
            if not isinstance(notes, list) or not notes:
                yield Rejected("gitlab discussion without notes", discussion)
                continue
            # A thread's replies answer its first note; a lone comment answers the issue/MR.
            first = notes[0] if not discussion.get("individual_note") and isinstance(notes[0], dict) else None
            for note in notes:
                missing = _missing(note, ("id", "created_at"))
                if missing:
                    yield Rejected(f"gitlab note without {missing}", note)
                    continue
                try:
                    event = self.note(note, first, thread_id, thread_author)
                except ITEM_ERRORS as e:
                    yield Rejected(item_error("gitlab note", e), note)
                    continue
                if event is not None:
                    yield event

    def note(self, note: Any, first: dict | None, thread_id: str, thread_author: str | None) -> RawEvent | None:
        if not isinstance(note, dict):
            raise TypeError("note is not an object")
        note_id, created = as_int(note["id"]), parse_iso(note["created_at"])
        if created not in self.window:
            return None
        if note.get("system") is True:
            self.conn.drop("system_note")
            return None
        if note.get("internal") is True or note.get("confidential") is True:
            self.conn.drop("internal_note")
            return None
        author = self.conn.account(note.get("author"))
        if author is None:
            self.conn.drop("no_account")
            return None
        parent_id, parent_author = thread_id, thread_author
        if first is not None and first is not note:
            try:
                parent_id, parent_author = f"note:{as_int(first['id'])}", self.conn.account(first.get("author"))
            except ITEM_ERRORS:  # a malformed first note (quarantined itself): the reply answers the thread
                parent_id, parent_author = thread_id, thread_author
        return RawEvent(
            record_type="reply",
            record_id=f"note:{note_id}",
            occurred_at=created,
            thread_id=thread_id,
            parent_id=parent_id,
            account_id=author,
            parent_account_id=parent_author,
            is_bot=_is_bot(note.get("author")),
            text=_text(note.get("body")),
        )


# -- what the registry knows about this platform ----------------------------------------


class GitlabSource(HttpSource):
    type: Literal["gitlab"]
    base_url: HttpUrl = Field(
        HttpUrl("https://gitlab.com"), description="The GitLab instance (gitlab.com or self-hosted); /api/v4 is added."
    )
    projects: list[str] = Field(min_length=1, description="group/project path of each public project.")
    page_size: int = Field(100, ge=1, le=100, description="Items per page; GitLab serves at most 100.")
    instance: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9.-]+$",
        description="Instance whose user ids these are (pseudonyms hash '<instance>:<id>'); "
        "defaults to base_url's host. Set it when base_url is a proxy or replay server.",
    )


def describe(source: GitlabSource) -> str:
    """What the public notice says this source reads."""
    projects = ", ".join(source.projects)
    return f"public issues, merge requests and their comments in {projects} on GitLab ({instance_of(source)})"


PLATFORM = Platform(
    name="gitlab",
    source=GitlabSource,
    connector=GitlabConnector,
    describe=describe,
    lookup=lookup_handle,
    account_keys=instance_ids("gitlab", instance_of, account_key),
    demo="agora.demo.gitlab",
    fault_target="test_connector_gitlab:fault_target",
)
