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

import os
from collections.abc import Iterator
from datetime import datetime
from itertools import chain
from typing import Any

import requests

from agora.config import ConfigError
from agora.envelope import RawEvent, Rejected
from connectors.base import Connector
from connectors.http import HttpClient, HttpError, next_link

API_VERSION = "2022-11-28"
GHOST_USER_ID = 10137  # GitHub's placeholder for deleted accounts: many people, not one


class PrivateRepositoryError(RuntimeError):
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


def _ts(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


class GithubConnector(Connector):
    platform = "github"
    version = "0.1.0"
    drop_reasons = (
        "pending_review",  # a review not yet submitted is visible to its author only
        "no_account",  # author deleted (null user or GitHub's ghost account)
    )
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
        if source.token_env:
            token = os.environ.get(source.token_env)
            if not token:
                raise ConfigError(f"sources.{source.name}.token_env: environment variable {source.token_env} is unset")
            headers["Authorization"] = f"Bearer {token}"
        self.client = GithubClient(
            str(source.base_url),
            headers=headers,
            timeout=source.timeout_seconds,
            max_retries=source.max_retries,
            log=self.log,
        )
        self.per_page = min(source.page_size, 100)  # GitHub's maximum

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        for repo in self.source.repos:
            yield from _RepoRun(self, repo, since, until).run()
        self.log.info("%s: %d requests, %d retries", self.source.name, self.client.requests_made, self.client.retries)

    # Paging and lookups shared by the per-repository run.

    def pages(self, path: str, params: dict[str, Any] | None = None) -> Iterator[dict]:
        """Follow ``Link: rel="next"`` to the last page."""
        url: str | None = path
        while url:
            body, resp = self.client.get_json(url, params)
            if not isinstance(body, list):
                raise HttpError(f"{path}: expected a JSON list, got {type(body).__name__}")
            yield from body
            url, params = next_link(resp), None  # the next link carries the query

    def get_or_none(self, path: str) -> dict | None:
        """An item that may have been deleted (404) or transferred/removed (410) since."""
        try:
            body, _ = self.client.get_json(path)
        except HttpError as e:
            if e.status in (404, 410):
                return None
            raise
        return body if isinstance(body, dict) else None


def _account(user: dict | None) -> str | None:
    if not user or user.get("id") in (None, GHOST_USER_ID):
        return None
    return str(user["id"])


def _is_bot(user: dict | None) -> bool:
    if not user:
        return False
    return user.get("type") == "Bot" or str(user.get("login") or "").endswith("[bot]")


def _last_number(url: Any) -> int:
    """The issue/PR number at the end of an API URL (`.../issues/42`)."""
    return int(str(url).rstrip("/").rsplit("/", 1)[1])


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
        return (self.since is None or t >= self.since) and t < self.until

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
        if meta.get("private") is not False or meta.get("visibility", "public") != "public":
            raise PrivateRepositoryError(
                f"github repo {self.repo}: repository is not public; Agora reads public repositories only"
            )
        self.full_name = meta.get("full_name") or self.repo

    def issues(self) -> Iterator[RawEvent | Rejected]:
        params = {**self.list_params(), "state": "all"}
        for item in self.conn.pages(f"repos/{self.repo}/issues", params):
            try:
                number, created = int(item["number"]), _ts(item["created_at"])
            except (KeyError, TypeError, ValueError):
                yield Rejected("github issue without a number or created_at", item)
                continue
            user = item.get("user")
            self.authors[number] = _account(user)
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
            self.authors[number] = _account(issue.get("user")) if issue else None
        return self.authors[number]

    def issue_comments(self) -> Iterator[RawEvent | Rejected]:
        for item in self.conn.pages(f"repos/{self.repo}/issues/comments", self.list_params()):
            try:
                cid, created = int(item["id"]), _ts(item["created_at"])
                number = _last_number(item["issue_url"])
            except (KeyError, TypeError, ValueError, IndexError):
                yield Rejected("github issue comment without id, created_at or issue_url", item)
                continue
            if self.in_window(created):
                yield self.reply(
                    f"issue_comment:{cid}", created, number, item, self.thread_id(number), self.thread_author(number)
                )

    def review_comments(self) -> Iterator[RawEvent | Rejected]:
        # Collect first: a reply may come before the comment it answers when that one was edited later.
        comments, authors = [], {}
        for item in self.conn.pages(f"repos/{self.repo}/pulls/comments", self.list_params()):
            try:
                cid, created = int(item["id"]), _ts(item["created_at"])
                number = _last_number(item["pull_request_url"])
            except (KeyError, TypeError, ValueError, IndexError):
                yield Rejected("github review comment without id, created_at or pull_request_url", item)
                continue
            authors[cid] = _account(item.get("user"))
            if self.in_window(created):
                comments.append((cid, created, number, item))
        for cid, created, number, item in comments:
            reply_to = item.get("in_reply_to_id")
            if reply_to is not None:
                reply_to = int(reply_to)
                if reply_to not in authors:
                    old = self.conn.get_or_none(f"repos/{self.repo}/pulls/comments/{reply_to}")
                    authors[reply_to] = _account(old.get("user")) if old else None
                parent_id, parent_account = f"review_comment:{reply_to}", authors[reply_to]
            else:
                parent_id, parent_account = self.thread_id(number), self.thread_author(number)
            yield self.reply(f"review_comment:{cid}", created, number, item, parent_id, parent_account)

    def reviews(self) -> Iterator[RawEvent | Rejected]:
        # A review bumps its PR's updated_at, so the PRs listed since the window start hold them all.
        for number in self.prs:
            path = f"repos/{self.repo}/pulls/{number}/reviews"
            for item in self.conn.pages(path, {"per_page": self.conn.per_page}):
                if item.get("state") == "PENDING" or not item.get("submitted_at"):
                    self.conn.drop("pending_review")
                    continue
                try:
                    rid, submitted = int(item["id"]), _ts(item["submitted_at"])
                except (KeyError, TypeError, ValueError):
                    yield Rejected("github review without id or submitted_at", item)
                    continue
                if self.in_window(submitted):
                    yield self.reply(
                        f"review:{rid}", submitted, number, item, self.thread_id(number), self.authors.get(number)
                    )

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
