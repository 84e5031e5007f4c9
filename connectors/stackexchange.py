"""Stack Exchange API 2.3: questions (threads), answers and comments (replies) for a site's tags.

Which questions: those with activity since the window start (``sort=activity&min=``) for each
configured tag, so answers and comments posted in the window on older questions are found
too; a question itself lands when it was *created* in the window. Answers and comments are
read for those questions in batches of 100 ids, paged with ``has_more`` to the end.

Rate limits: the API's ``backoff`` body field (seconds to wait before the next request) is
honoured and logged, ``quota_remaining`` is logged, and a ``throttle_violation`` is waited
out when short and fails the run clearly when the daily quota is gone.

Accounts are ``owner.user_id``; ``user_type == "does_not_exist"`` (a deleted account) has
none. The Community user (id -1) is the site's bot. Display names, profile images and links
come with every owner object and are never read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, Literal

import requests
from pydantic import Field, HttpUrl

from agora.envelope import RawEvent, Rejected
from connectors.base import ITEM_ERRORS, Connector, as_int, item_error, parse_epoch
from connectors.http import HttpClient, HttpError, PageNumberPaginator, client_options, token_from_env
from connectors.registry import AccountFormError, Platform, is_ascii_id
from connectors.schema import BaseHttpSource

IDS_PER_CALL = 100  # the API's limit for {ids} and pagesize
COMMUNITY_USER_ID = -1
_AVAILABLE_IN = re.compile(r"available in (\d+) seconds")


class StackExchangeClient(HttpClient):
    """Throttle violations come as HTTP 400 with ``error_name: throttle_violation``."""

    def throttle_wait(self, resp: requests.Response) -> float | None:
        if resp.status_code != 400:
            return None
        try:
            body = resp.json()
        except ValueError:
            return None
        if not isinstance(body, dict) or body.get("error_name") != "throttle_violation":
            return None
        match = _AVAILABLE_IN.search(str(body.get("error_message", "")))
        return float(match.group(1)) if match else 60.0

    def rate_limited(self, resp: requests.Response) -> bool:
        wait = self.throttle_wait(resp)
        if wait is None:
            return super().rate_limited(resp)
        if wait > self.max_wait:
            raise HttpError(f"stackexchange: request quota exhausted, available again in {wait:.0f}s", 400)
        return True

    def rate_limit_wait(self, resp: requests.Response) -> float | None:
        wait = self.throttle_wait(resp)
        return wait if wait is not None else super().rate_limit_wait(resp)


def _epoch(dt: datetime) -> int:
    return int(dt.timestamp())


_when = parse_epoch


def _account(owner: Any) -> str | None:
    """The owner's id; None for a deleted account. An owner that is not an object raises TypeError."""
    if owner is None:
        return None
    if not isinstance(owner, dict):
        raise TypeError("owner is not an object")
    if owner.get("user_type") == "does_not_exist" or owner.get("user_id") is None:
        return None
    uid = owner["user_id"]
    if isinstance(uid, bool) or not isinstance(uid, int | str):
        raise TypeError("owner.user_id is not a number")
    return str(uid)


def _is_bot(owner: Any) -> bool:
    return isinstance(owner, dict) and owner.get("user_id") == COMMUNITY_USER_ID


def _text(*parts: Any) -> str | None:
    text = "\n".join(p for p in parts if isinstance(p, str) and p)
    return text or None


def _chunks(ids: list[int], size: int = IDS_PER_CALL) -> Iterable[list[int]]:
    for i in range(0, len(ids), size):
        yield ids[i : i + size]


class StackExchangeConnector(Connector):
    platform = "stackexchange"
    version = "0.1.0"
    account_id_pattern = r"-?[1-9][0-9]{0,19}"  # the Community user is -1
    # The API serves public, undeleted posts only; opt-outs are dropped at the edge (agora.extract).
    drop_reasons = {
        # owner deleted (user_type does_not_exist): nobody to count
        "no_account": "posts whose author account was deleted",
    }
    fields_read = (
        "question.question_id",
        "question.creation_date",
        "question.title",
        "question.body",
        "answer.answer_id",
        "answer.question_id",
        "answer.creation_date",
        "answer.body",
        "comment.comment_id",
        "comment.post_id",
        "comment.creation_date",
        "comment.body",
        "owner.user_id",
        "owner.user_type",
        "reply_to_user.user_id",
        "reply_to_user.user_type",
        "wrapper.has_more",
        "wrapper.backoff",
        "wrapper.quota_remaining",
    )

    def __init__(self, source: Any, **kwargs: Any):
        super().__init__(source, **kwargs)
        self.client = StackExchangeClient(str(source.base_url), **client_options(source, self.log))
        self.common: dict[str, Any] = {"site": source.site, "filter": source.filter}
        key = token_from_env(source, "key_env")
        if key:
            self.common["key"] = key  # a query parameter: HttpClient logs paths without queries
        self.page_size = min(source.page_size, IDS_PER_CALL)
        self.quota_remaining: int | None = None

    def pages(self, path: str, params: dict[str, Any]) -> Iterator[dict]:
        """Every item of every page: ``page=1..`` while ``has_more``."""
        params = {**self.common, **params, "pagesize": self.page_size}
        for body in PageNumberPaginator(self.client).pages(path, params, lambda b: b.get("has_more") is True):
            if not isinstance(body, dict) or not isinstance(body.get("items"), list):
                raise HttpError(f"stackexchange {path}: response has no items list")
            if "quota_remaining" in body:
                self.quota_remaining = body["quota_remaining"]
                self.log.debug("stackexchange quota remaining: %s", self.quota_remaining)
            if body.get("backoff"):
                self.client.pause(float(body["backoff"]), f"stackexchange backoff field ({body['backoff']}s)")
            yield from body["items"]

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        for item in self.records(since, until):
            if isinstance(item, RawEvent) and item.account_id is None:
                self.drop("no_account")
                continue
            yield item
        self.log.info(
            "%s: %d requests, quota remaining %s", self.source.name, self.client.requests_made, self.quota_remaining
        )

    def records(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        def in_window(t: datetime) -> bool:
            return (since is None or t >= since) and t < until

        last_second = math.ceil(until.timestamp()) - 1  # todate/fromdate are inclusive
        owners: dict[int, str | None] = {}  # post id -> owner account (memory only)
        kinds: dict[int, str] = {}  # post id -> "question" | "answer"
        threads: dict[int, int] = {}  # post id -> question id

        for tag in self.source.tagged:
            params: dict[str, Any] = {"tagged": tag, "order": "asc", "sort": "activity", "todate": last_second}
            if since is not None:
                params["min"] = _epoch(since)
            for q in self.pages("questions", params):
                try:
                    qid, created = as_int(q["question_id"]), _when(q["creation_date"])
                    owner = _account(q.get("owner"))
                except ITEM_ERRORS as e:
                    yield Rejected(
                        item_error("stackexchange question without usable question_id, creation_date or owner", e), q
                    )
                    continue
                if qid in kinds:  # tagged with two configured tags
                    continue
                owners[qid], kinds[qid], threads[qid] = owner, "question", qid
                if in_window(created):
                    yield RawEvent(
                        record_type="thread",
                        record_id=f"question:{qid}",
                        occurred_at=created,
                        thread_id=f"question:{qid}",
                        account_id=owners[qid],
                        is_bot=_is_bot(q.get("owner")),
                        text=_text(q.get("title"), q.get("body")),
                    )

        # Sorted ids: the same window asks the same URLs whatever order the listing came in.
        questions = sorted(pid for pid, kind in kinds.items() if kind == "question")
        for ids in _chunks(questions):
            path = f"questions/{';'.join(map(str, ids))}/answers"
            for a in self.pages(path, {"order": "asc", "sort": "creation", "todate": last_second}):
                try:
                    aid, qid, created = as_int(a["answer_id"]), as_int(a["question_id"]), _when(a["creation_date"])
                    owner = _account(a.get("owner"))
                except ITEM_ERRORS as e:
                    yield Rejected(
                        item_error(
                            "stackexchange answer without usable answer_id, question_id, creation_date or owner", e
                        ),
                        a,
                    )
                    continue
                owners[aid], kinds[aid], threads[aid] = owner, "answer", qid
                if in_window(created):
                    yield RawEvent(
                        record_type="reply",
                        record_id=f"answer:{aid}",
                        occurred_at=created,
                        thread_id=f"question:{qid}",
                        parent_id=f"question:{qid}",
                        account_id=owners[aid],
                        parent_account_id=owners.get(qid),
                        is_bot=_is_bot(a.get("owner")),
                        text=_text(a.get("body")),
                    )

        comment_window: dict[str, Any] = {"order": "asc", "sort": "creation", "todate": last_second}
        if since is not None:
            comment_window["fromdate"] = _epoch(since)
        for ids in _chunks(sorted(kinds)):
            for c in self.pages(f"posts/{';'.join(map(str, ids))}/comments", comment_window):
                try:
                    cid, post, created = as_int(c["comment_id"]), as_int(c["post_id"]), _when(c["creation_date"])
                    author = _account(c.get("owner"))
                    # A comment addressed to someone (@name) answers them; otherwise the post's owner.
                    replied = _account(c.get("reply_to_user")) if c.get("reply_to_user") else owners.get(post)
                except ITEM_ERRORS as e:
                    yield Rejected(
                        item_error(
                            "stackexchange comment without usable comment_id, post_id, creation_date or owner", e
                        ),
                        c,
                    )
                    continue
                if not in_window(created) or post not in kinds:
                    continue
                yield RawEvent(
                    record_type="reply",
                    record_id=f"comment:{cid}",
                    occurred_at=created,
                    thread_id=f"question:{threads[post]}",
                    parent_id=f"{kinds[post]}:{post}",
                    account_id=author,
                    parent_account_id=replied,
                    is_bot=_is_bot(c.get("owner")),
                    text=_text(c.get("body")),
                )


# -- what the registry knows about this platform ----------------------------------------


class StackExchangeSource(BaseHttpSource):
    type: Literal["stackexchange"]
    base_url: HttpUrl = Field(HttpUrl("https://api.stackexchange.com/2.3"), description="API root, version included.")
    site: str = Field(description="Site parameter, e.g. stackoverflow or superuser.")
    tagged: list[str] = Field(min_length=1, description="Tags to read; a question with any of them is read.")
    key_env: str | None = Field(None, description="Environment variable holding an app key (raises quota).")
    filter: str = Field(
        "withbody", description="API filter; a custom filter can leave out owner fields Agora never reads."
    )


def user_ids(sources: Any, account: str) -> set[str]:
    """No handle lookup: display names are not unique; requests give the numeric user id."""
    if not is_ascii_id(account):
        raise AccountFormError("stackexchange accounts must be numeric user ids (from the profile URL)")
    return {account}


def describe(source: StackExchangeSource) -> str:
    """What the public notice says this source reads."""
    tags = ", ".join(source.tagged)
    return f"public questions tagged {tags} on {source.site} (Stack Exchange), with their answers and comments"


PLATFORM = Platform(
    name="stackexchange",
    source=StackExchangeSource,
    connector=StackExchangeConnector,
    describe=describe,
    account_keys=user_ids,
    demo="agora.demo.stackexchange",
    fault_target="test_connector_stackexchange:fault_target",
)
