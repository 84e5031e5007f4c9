"""GitHub: issues and pull requests (threads); issue comments, review comments, reviews (replies).

Only public repositories are read: the repository is checked first and a private (or
Enterprise-internal) one is refused with an error, not skipped silently. Accounts are the
numeric ``user.id`` (logins change and are never read into a record). Bots are flagged from
``type == "Bot"`` or the ``[bot]`` login suffix, checked in memory only.

Incremental: every list is asked for items *updated* since the window start (GitHub's
``since``) and paged to the end, because an item created in the window may have been
updated after it; records are then kept by *creation* time in [since, until).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from itertools import chain
from typing import Any, Literal
from urllib.parse import quote

import requests
from pydantic import Field, HttpUrl

from agora.envelope import RawEvent, Rejected
from agora.errors import PermanentError
from connectors.base import ITEM_ERRORS, Connector, Window, item_error, parse_iso
from connectors.http import HttpClient, HttpError, LinkHeaderPaginator, client_options, token_from_env
from connectors.registry import Platform
from connectors.schema import HttpSource

API_VERSION = "2022-11-28"
GHOST_USER_ID = 10137  # GitHub's placeholder for deleted accounts: many people, not one


class PrivateRepositoryError(PermanentError):
    """A configured repository is not public; Agora refuses to read it."""


class GithubClient(HttpClient):
    """GitHub signals limits with 403 as well as 429 (secondary limits, spent quota)."""

    def rate_limited(self, resp: requests.Response) -> bool:
        if super().rate_limited(resp):
            return True
        return resp.status_code == 403 and "rate limit" in resp.text[:2000].lower()

    def rate_limit_wait(self, resp: requests.Response) -> float | None:
        # The reset header comes on every response: it only means "wait" when quota is spent.
        if resp.headers.get("x-ratelimit-remaining") == "0":
            return super().rate_limit_wait(resp)
        if resp.status_code == 403:
            return 60.0  # secondary limit without Retry-After: GitHub asks for at least a minute
        return None


_ts = parse_iso


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class GithubConnector(Connector):
    platform = "github"
    version = "0.1.0"
    account_id_pattern = r"[1-9][0-9]{0,19}"
    drop_reasons = {
        # a review not yet submitted is visible to its author only
        "pending_review": "reviews not yet submitted (visible to their author only)",
        # author deleted (null user or GitHub's ghost account)
        "no_account": "posts whose author account was deleted",
    }
    fields_read = (
        "repo.private",
        "repo.visibility",
        "repo.full_name",
        "issue.number",
        "issue.created_at",
        "issue.pull_request",
        "issue.title",
        "issue.body",
        "comment.id",
        "comment.created_at",
        "comment.issue_url",
        "comment.pull_request_url",
        "comment.in_reply_to_id",
        "comment.body",
        "review.id",
        "review.state",
        "review.submitted_at",
        "review.body",
        "user.id",
        "user.type",
        "user.login (in memory, bot suffix only)",
    )

    def __init__(self, source: Any, **kwargs: Any):
        super().__init__(source, **kwargs)
        headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION}
        token = token_from_env(source)
        self.client = GithubClient(
            str(source.base_url),
            headers=headers,
            credentials={"Authorization": f"Bearer {token}"} if token else None,
            **client_options(source, self.log),
        )
        self.per_page = min(source.page_size, 100)  # GitHub's maximum

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        for repo in self.source.repos:
            yield from _RepoRun(self, repo, since, until).run()
        self.log.info("%s: %d requests, %d retries", self.source.name, self.client.requests_made, self.client.retries)

    # Paging and lookups shared by the per-repository run.

    def pages(self, path: str, params: dict[str, Any] | None = None, follow: Any = None) -> Iterator[dict]:
        """Follow ``Link: rel="next"`` to the last page; `follow(url)` vets each next link."""
        for body, _ in LinkHeaderPaginator(self.client).pages(path, params, follow):
            if not isinstance(body, list):
                raise HttpError(f"{path}: expected a JSON list, got {type(body).__name__}")
            yield from body

    def get_or_none(self, path: str) -> dict | None:
        """An item that may have been deleted (404) or transferred/removed (410) since."""
        try:
            body, _ = self.client.get_json(path)
        except HttpError as e:
            if e.status in (404, 410):
                return None
            raise
        return body if isinstance(body, dict) else None


def _account(user: Any) -> str | None:
    """The author's id; None for a deleted author. A user that is not an object, or an id
    that is not a number, raises TypeError: the item is quarantined."""
    if user is None:
        return None
    if not isinstance(user, dict):
        raise TypeError("user is not an object")
    uid = user.get("id")
    if uid in (None, GHOST_USER_ID):
        return None
    return str(_number(uid))  # "１２３" or "123\u200b" raise: they would pseudonymise apart from 123


def _is_bot(user: Any) -> bool:
    if not isinstance(user, dict):
        return False
    return user.get("type") == "Bot" or str(user.get("login") or "").endswith("[bot]")


def _number(value: Any) -> int:
    """An id or issue number: an int, or a string of ASCII digits (never a bool, float or "１２３")."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError("not a number")
    if isinstance(value, str) and not value.isascii():
        raise ValueError("not an ASCII number")
    number = int(value)
    if not 0 < number < 2**63:
        raise ValueError("number out of range")
    return number


def _last_number(url: Any) -> int:
    """The issue/PR number at the end of an API URL (`.../issues/42`)."""
    if not isinstance(url, str):
        raise TypeError("url is not a string")
    return _number(url.rstrip("/").rsplit("/", 1)[1])


def _text(*parts: Any) -> str | None:
    text = "\n".join(p for p in parts if isinstance(p, str) and p)
    return text or None


class _RepoRun:
    """One repository for one window: threads first, so replies can name who they answer."""

    def __init__(self, conn: GithubConnector, repo: str, since: datetime | None, until: datetime):
        self.conn, self.repo, self.since, self.until = conn, repo, since, until
        self.authors: dict[int, str | None] = {}  # issue/PR number -> author account (memory only)
        self.prs: list[int] = []

    def in_window(self, t: datetime) -> bool:
        return t in Window(self.since, self.until)

    def list_params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"sort": "updated", "direction": "asc", "per_page": self.conn.per_page}
        if self.since is not None:
            params["since"] = _iso(self.since)
        return params

    def thread_id(self, number: int) -> str:
        return f"{self.full_name}#{number}"

    def run(self) -> Iterator[RawEvent | Rejected]:
        self.check_public()
        for item in chain(self.issues(), self.issue_comments(), self.review_comments(), self.reviews()):
            if isinstance(item, RawEvent) and item.account_id is None:
                self.conn.drop("no_account")  # deleted account (null user or the ghost): nobody to count
                continue
            yield item

    def check_public(self) -> None:
        try:
            meta, _ = self.conn.client.get_json(f"repos/{self.repo}")
        except HttpError as e:
            if e.status == 404:  # GitHub answers 404, not 403, for a private repo you cannot see
                raise PrivateRepositoryError(
                    f"github repo {self.repo}: not found or not public; Agora reads public repositories only"
                ) from None
            raise
        if not isinstance(meta, dict):
            raise HttpError(f"github repo {self.repo}: expected a JSON object")
        if meta.get("private") is not False or meta.get("visibility", "public") != "public":
            raise PrivateRepositoryError(
                f"github repo {self.repo}: repository is not public; Agora reads public repositories only"
            )
        self.full_name = meta["full_name"] if isinstance(meta.get("full_name"), str) else self.repo
        self.repo_id = meta.get("id")

    def in_repo(self, url: str) -> bool:
        """Is a next link still inside the repository checked public? GitHub pages by the
        numeric id (``/repositories/{id}/...``) as well as by name."""
        rel = self.conn.client.relative_path(url)
        if rel is None:
            return False
        if rel.lower().startswith(f"repos/{self.full_name.lower()}/"):
            return True
        return isinstance(self.repo_id, int) and rel.startswith(f"repositories/{self.repo_id}/")

    def issues(self) -> Iterator[RawEvent | Rejected]:
        params = {**self.list_params(), "state": "all"}
        for item in self.conn.pages(f"repos/{self.repo}/issues", params, self.in_repo):
            try:
                number, created = _number(item["number"]), _ts(item["created_at"])
                user = item.get("user")
                self.authors[number] = _account(user)
            except ITEM_ERRORS as e:
                yield Rejected(item_error("github issue without a usable number, created_at or user", e), item)
                continue
            if "pull_request" in item:
                self.prs.append(number)
            if self.in_window(created):
                yield RawEvent(
                    record_type="thread",
                    record_id=self.thread_id(number),
                    occurred_at=created,
                    thread_id=self.thread_id(number),
                    account_id=_account(user),
                    is_bot=_is_bot(user),
                    text=_text(item.get("title"), item.get("body")),
                )

    def thread_author(self, number: int) -> str | None:
        if number not in self.authors:
            issue = self.conn.get_or_none(f"repos/{self.repo}/issues/{number}")
            try:
                self.authors[number] = _account(issue.get("user")) if issue else None
            except ITEM_ERRORS:
                self.authors[number] = None  # a malformed thread: keep the reply, not the link
        return self.authors[number]

    def issue_comments(self) -> Iterator[RawEvent | Rejected]:
        for item in self.conn.pages(f"repos/{self.repo}/issues/comments", self.list_params(), self.in_repo):
            try:
                cid, created = _number(item["id"]), _ts(item["created_at"])
                number = _last_number(item["issue_url"])
                event = None
                if self.in_window(created):
                    parent = self.thread_author(number)
                    event = self.reply(f"issue_comment:{cid}", created, number, item, self.thread_id(number), parent)
            except ITEM_ERRORS as e:
                yield Rejected(
                    item_error("github issue comment without usable id, created_at, issue_url or user", e), item
                )
                continue
            if event is not None:
                yield event

    def review_comments(self) -> Iterator[RawEvent | Rejected]:
        # Collect first: a reply may come before the comment it answers when that one was edited later.
        comments, authors = [], {}
        for item in self.conn.pages(f"repos/{self.repo}/pulls/comments", self.list_params(), self.in_repo):
            try:
                cid, created = _number(item["id"]), _ts(item["created_at"])
                number = _last_number(item["pull_request_url"])
                reply_to = item.get("in_reply_to_id")
                reply_to = None if reply_to is None else _number(reply_to)
                authors[cid] = _account(item.get("user"))
            except ITEM_ERRORS as e:
                yield Rejected(
                    item_error("github review comment without usable id, created_at, pull_request_url or user", e),
                    item,
                )
                continue
            if self.in_window(created):
                comments.append((cid, created, number, reply_to, item))
        for cid, created, number, reply_to, item in comments:
            if reply_to is not None:
                if reply_to not in authors:
                    old = self.conn.get_or_none(f"repos/{self.repo}/pulls/comments/{reply_to}")
                    try:
                        authors[reply_to] = _account(old.get("user")) if old else None
                    except ITEM_ERRORS:
                        authors[reply_to] = None  # the parent is malformed: keep the reply, not the link
                parent_id, parent_account = f"review_comment:{reply_to}", authors[reply_to]
            else:
                parent_id, parent_account = self.thread_id(number), self.thread_author(number)
            yield self.reply(f"review_comment:{cid}", created, number, item, parent_id, parent_account)

    def reviews(self) -> Iterator[RawEvent | Rejected]:
        # A review bumps its PR's updated_at, so the PRs listed since the window start hold them all.
        for number in self.prs:
            path = f"repos/{self.repo}/pulls/{number}/reviews"
            for item in self.conn.pages(path, {"per_page": self.conn.per_page}, self.in_repo):
                if isinstance(item, dict) and (item.get("state") == "PENDING" or not item.get("submitted_at")):
                    self.conn.drop("pending_review")
                    continue
                try:
                    rid, submitted = _number(item["id"]), _ts(item["submitted_at"])
                    event = None
                    if self.in_window(submitted):
                        parent = self.authors.get(number)
                        event = self.reply(f"review:{rid}", submitted, number, item, self.thread_id(number), parent)
                except ITEM_ERRORS as e:
                    yield Rejected(item_error("github review without usable id, submitted_at or user", e), item)
                    continue
                if event is not None:
                    yield event

    def reply(
        self, record_id: str, at: datetime, number: int, item: dict, parent_id: str, parent_account: str | None
    ) -> RawEvent:
        """A comment or review on issue/PR `number`, answering `parent_id` by `parent_account`."""
        user = item.get("user")
        return RawEvent(
            record_type="reply",
            record_id=record_id,
            occurred_at=at,
            thread_id=self.thread_id(number),
            parent_id=parent_id,
            account_id=_account(user),
            parent_account_id=parent_account,
            is_bot=_is_bot(user),
            text=_text(item.get("body")),
        )


# -- what the registry knows about this platform ----------------------------------------


class GithubSource(HttpSource):
    type: Literal["github"]
    base_url: HttpUrl = Field(
        HttpUrl("https://api.github.com"), description="REST API root (GitHub Enterprise: .../api/v3)."
    )
    repos: list[str] = Field(min_length=1, description="owner/name of each public repository.")


def lookup_account(source: GithubSource, handle: str, log: Any) -> str:
    """A login's numeric id (``GET /users/{login}``); a 404 means no such account."""
    body, _ = GithubConnector(source, log=log).client.get_json(f"users/{quote(handle, safe='')}")
    return str(_number(body["id"]))


def describe(source: GithubSource) -> str:
    """What the public notice says this source reads."""
    return f"public issues, pull requests, reviews and comments in {', '.join(source.repos)} on GitHub"


PLATFORM = Platform(
    name="github",
    source=GithubSource,
    connector=GithubConnector,
    describe=describe,
    lookup=lookup_account,
    demo="agora.demo.github",
    fault_target="test_connector_github:fault_target",
)
