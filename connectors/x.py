"""X (Twitter) recent search through tweepy: public, authored posts matching a query.

`tweepy.Client` makes the calls and waits out 429s itself (`wait_on_rate_limit`, from
``x-rate-limit-reset``); `tweepy.Paginator` follows ``meta.next_token`` to the last page.
Around it we add what tweepy lacks, on its public ``session`` (plain requests features, no
patching): a transport adapter that sends the calls to the configured ``base_url`` (tweepy
hard-codes ``https://api.twitter.com``) with a timeout and bounded retries on network
errors and 5xx, and a response hook that logs the quota and fails the run instead of
sleeping past ``max_wait_seconds`` or looping on endless 429s.

Mapping and drops: docs/connectors/x.md.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import requests
from pydantic import Field, HttpUrl
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

if TYPE_CHECKING:
    import tweepy

from agora import progress
from agora.envelope import RawEvent, Rejected
from connectors.base import ITEM_ERRORS, Connector, HandleNotFound, Window, item_error, parse_iso
from connectors.http import (
    DEFAULT_DEADLINE,
    DEFAULT_MAX_RESPONSE_BYTES,
    DeadlineExceeded,
    HttpError,
    LimitError,
    OriginError,
    origin_of,
    read_body,
    retry_after_seconds,
    token_from_env,
)
from connectors.registry import Platform
from connectors.schema import Bounded

API_HOST = "https://api.twitter.com"  # what tweepy 4.x sends every v2 call to
SEARCH_PATH = "/2/tweets/search/recent"
RECENT_SEARCH_REACH = timedelta(days=7)
# X refuses an end_time less than 10 s before the request; keep a margin.
END_TIME_MARGIN = timedelta(seconds=15)
EXPANSIONS = ("author_id", "referenced_tweets.id")
TWEET_FIELDS = ("author_id", "conversation_id", "created_at", "in_reply_to_user_id", "referenced_tweets", "withheld")
USER_FIELDS = ("protected",)


class _QuietTweepy(logging.Filter):
    """tweepy logs request headers (the bearer token) and response bodies (handles, text) at
    DEBUG: never let those records through, whatever the logging setup."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno > logging.DEBUG


log = logging.getLogger("agora.connectors.x")
_TWEEPY_LOG = logging.getLogger("tweepy.client")
if not any(isinstance(f, _QuietTweepy) for f in _TWEEPY_LOG.filters):
    _TWEEPY_LOG.addFilter(_QuietTweepy())


class ApiHostAdapter(HTTPAdapter):
    """Sends what tweepy addresses to api.twitter.com to `base_url` (same path and query),
    with a default timeout and urllib3 retries for network errors and 5xx. 429 is left to
    tweepy, which knows X's reset header."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float,
        max_retries: int,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        name: str = "x",
    ):
        retry = Retry(
            total=max_retries,
            status_forcelist=(500, 502, 503, 504),
            allowed_methods=frozenset({"GET"}),
            backoff_factor=1.0,
            raise_on_status=False,  # hand the last 5xx to tweepy, which raises TwitterServerError
            respect_retry_after_header=False,  # uncapped in urllib3; the backoff is bounded
        )
        super().__init__(max_retries=retry)
        self.base_url = base_url.rstrip("/")
        self.origin = origin_of(self.base_url)
        self.timeout = timeout
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.name = name
        self.body_retries = max_retries
        self.backoff_factor = 1.0

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        parts = urlsplit(request.url)
        if origin_of(request.url) not in (self.origin, origin_of(API_HOST)):
            # A redirect followed by the session: refused before anything (the bearer token) is sent.
            scheme, host, port = origin_of(request.url)
            raise OriginError(
                f"{self.name}: refusing a redirect to {scheme}://{host}:{port}: not the source's origin {self.base_url}"
            )
        request.url = f"{self.base_url}{parts.path}" + (f"?{parts.query}" if parts.query else "")
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        kwargs["stream"] = True  # the body is read below, within the deadline and size cap
        # A body cut off in transit (connection dropped, or a 200 whose JSON ends early) is
        # transient: fetch it again. urllib3 retries only up to the headers, so we read the
        # body here. The last attempt is handed on; extract() reports what went wrong.
        for attempt in range(self.body_retries + 1):
            last = attempt == self.body_retries
            try:
                resp = super().send(request, **kwargs)
                read_body(resp, time.monotonic() + self.deadline, self.max_response_bytes, self.name)
            except (requests.exceptions.ChunkedEncodingError, DeadlineExceeded) as e:
                if last:
                    raise
                problem = (
                    "response not complete within its deadline"
                    if isinstance(e, DeadlineExceeded)
                    else ("connection dropped mid-body")
                )
            else:
                if last or not _cut_off_json(resp):
                    return resp
                problem = "response is not valid JSON"
            wait = self.backoff_factor * 2**attempt
            log.warning("%s: %s; retrying in %.0fs", parts.path, problem, wait)
            time.sleep(wait)
        raise AssertionError("unreachable: the last attempt returns or raises")


def _cut_off_json(resp: requests.Response) -> bool:
    if resp.status_code != 200 or "json" not in resp.headers.get("Content-Type", ""):
        return False
    try:
        json.loads(resp.content)
    except ValueError:
        return True
    return False


class RateLimitGuard:
    """A requests response hook: logs X's quota headers and decides whether a 429 may be
    waited out. tweepy then sleeps until ``x-rate-limit-reset`` and retries; a 429 carrying
    only ``Retry-After`` (a proxy, a CDN) is waited out here, since tweepy would retry at
    once. We stop it when the wait is too long, no wait is given, or 429s keep coming."""

    def __init__(self, log: logging.Logger, max_wait: float, max_consecutive: int = 5):
        self.log = log
        self.max_wait = max_wait
        self.max_consecutive = max_consecutive
        self.consecutive = 0
        self.rate_limited = 0
        self.remaining: str | None = None
        self.limit: str | None = None

    def __call__(self, resp: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        path = urlsplit(resp.url).path
        self.remaining = resp.headers.get("x-rate-limit-remaining", self.remaining)
        self.limit = resp.headers.get("x-rate-limit-limit", self.limit)
        if self.remaining is not None:
            self.log.debug("%s: x-rate-limit-remaining %s of %s", path, self.remaining, self.limit)
        if resp.status_code != 429:
            self.consecutive = 0
            if resp.status_code < 300:
                progress.page()  # tweepy pages outside HttpClient: report to the same channel
            return resp
        self.consecutive += 1
        self.rate_limited += 1
        reset = (resp.headers.get("x-rate-limit-reset") or "").strip()
        retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
        if reset.isascii() and reset.isdigit():
            wait, signal = max(0.0, int(reset) - time.time()) + 1, "x-rate-limit-reset"  # tweepy adds 1 s
        elif retry_after is not None:
            wait, signal = retry_after, "Retry-After"
        else:
            raise HttpError(f"{path}: HTTP 429 without x-rate-limit-reset or Retry-After; giving up", 429)
        if wait > self.max_wait:
            raise HttpError(
                f"{path}: HTTP 429, {signal} is {wait:.0f}s away (> max_wait_seconds {self.max_wait:.0f})", 429
            )
        if self.consecutive > self.max_consecutive:
            raise HttpError(f"{path}: HTTP 429 {self.consecutive} times in a row; giving up", 429)
        self.log.warning(
            "%s: rate limited (x-rate-limit-remaining %s of %s); waiting %.0fs for %s",
            path,
            resp.headers.get("x-rate-limit-remaining", "?"),
            resp.headers.get("x-rate-limit-limit", "?"),
            wait,
            signal,
        )
        progress.waiting(wait, f"rate limited: HTTP 429 on {path}, {signal}")
        if signal == "Retry-After":
            time.sleep(wait)  # without a reset header tweepy retries at once: the wait is ours
        return resp


def make_client(source: Any, log: logging.Logger) -> tuple[tweepy.Client, RateLimitGuard]:
    """A real tweepy.Client bound to the configured host; the token comes from the environment."""
    import tweepy  # here, not at the top: the registry imports every connector module with agora.config

    token = token_from_env(source, "bearer_token_env", required=True)
    client = tweepy.Client(bearer_token=token, return_type=dict, wait_on_rate_limit=True)
    base_url = str(source.base_url) if source.base_url else API_HOST
    adapter = ApiHostAdapter(
        base_url,
        timeout=source.timeout_seconds,
        max_retries=source.max_retries,
        deadline=source.deadline_seconds,
        max_response_bytes=source.max_response_bytes,
        name=source.name,
    )
    # Every request this session sends goes through the adapter, which refuses other origins.
    client.session.mount("https://", adapter)
    client.session.mount("http://", adapter)
    client.session.trust_env = False
    client.session.max_redirects = 5
    guard = RateLimitGuard(log, source.max_wait_seconds)
    client.session.hooks["response"].append(guard)
    return client, guard


def search_window(
    since: datetime | None, until: datetime, now: datetime, log: logging.Logger | None = None
) -> tuple[datetime | None, datetime]:
    """start_time/end_time for recent search, which serves only the last 7 days.

    A stale cursor (since beyond the 7 days, until recent) is moved to the horizon so the
    pipeline catches up instead of failing every day; the unreachable gap is logged. A
    window lying wholly beyond the horizon is sent as is: X refuses it and the run fails
    clearly rather than landing nothing and advancing the cursor.
    """
    end = min(until, now - END_TIME_MARGIN)
    horizon = now - RECENT_SEARCH_REACH + timedelta(minutes=1)
    start = since
    if since is not None and since < horizon < end:
        if log:
            log.warning(
                "recent search reaches back 7 days: posts from %s to %s cannot be fetched",
                since.isoformat(),
                horizon.isoformat(timespec="seconds"),
            )
        start = horizon
    return start, end


def drop_reason(tweet: dict[str, Any], refs: dict[str, Any], author: dict[str, Any] | None) -> str | None:
    """Why a post must not be landed (design §4), or None when it is public and authored."""
    if "retweeted" in refs:
        return "not_authored"
    if tweet.get("withheld"):
        return "withheld"
    if author is None:  # cannot tell whether the account is public: leave it out
        return "author_unknown"
    if author.get("protected"):
        return "protected_account"
    return None


_parse_time = parse_iso


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class XConnector(Connector):
    platform = "x"
    version = "0.1.0"
    account_id_pattern = r"[1-9][0-9]{0,19}"
    drop_reasons = {
        "not_authored": "reposts and boosts of someone else's post",
        "withheld": "posts withheld in some countries",
        "protected_account": "posts of protected accounts",
        "author_unknown": "posts whose author could not be confirmed as public",
    }
    fields_read = (
        "data[].id",
        "data[].created_at",
        "data[].author_id",
        "data[].conversation_id",
        "data[].in_reply_to_user_id",
        "data[].referenced_tweets[].type/id",
        "data[].withheld (presence only)",
        "data[].text (keyword tags, in memory only)",
        "includes.users[].id",
        "includes.users[].protected",
        "meta.next_token",
    )

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        client, guard = make_client(self.source, self.log)
        start, end = search_window(since, until, datetime.now(UTC), self.log)
        pages = tweets = 0
        self.outside_window = 0
        import tweepy

        paginator = tweepy.Paginator(
            client.search_recent_tweets,
            self.source.query,
            max_results=self.source.page_size,
            start_time=start,
            end_time=end,
            expansions=list(EXPANSIONS),
            tweet_fields=list(TWEET_FIELDS),
            user_fields=list(USER_FIELDS),
        )
        next_tokens: set[str] = set()
        try:
            for page in paginator:
                pages += 1
                token = (page.get("meta") or {}).get("next_token")
                if token in next_tokens:
                    raise LimitError(f"{self.source.name}: the next page was already read: the listing loops")
                if pages > self.source.max_pages:
                    raise LimitError(f"{self.source.name}: more than {self.source.max_pages} pages (max_pages)")
                if token:
                    next_tokens.add(token)
                users = {u.get("id"): u for u in (page.get("includes") or {}).get("users") or [] if isinstance(u, dict)}
                for tweet in page.get("data") or []:
                    tweets += 1
                    item = self._item(tweet, users, since, until)
                    if item is not None:
                        yield item
        except tweepy.HTTPException as e:
            status = getattr(e.response, "status_code", None)
            raise HttpError(
                f"{SEARCH_PATH}: HTTP {status}: {'; '.join(e.api_messages) or 'no message'}", status
            ) from None
        except requests.JSONDecodeError:
            raise HttpError(
                f"{SEARCH_PATH}: response is not valid JSON after {self.source.max_retries} retries"
            ) from None
        except requests.RequestException as e:
            raise HttpError(f"{SEARCH_PATH}: {type(e).__name__} after {self.source.max_retries} retries") from None
        self.log.info(
            "%s: %d pages, %d posts read, %d outside the window, %d rate-limit waits, x-rate-limit-remaining %s of %s",
            self.source.name,
            pages,
            tweets,
            self.outside_window,
            guard.rate_limited,
            guard.remaining,
            guard.limit,
        )

    def _item(
        self, tweet: Any, users: dict[str, dict], since: datetime | None, until: datetime
    ) -> RawEvent | Rejected | None:
        try:
            return self._post(tweet, users, since, until)
        except ITEM_ERRORS as e:
            return Rejected(item_error("x post", e), tweet)

    def _post(
        self, tweet: Any, users: dict[str, dict], since: datetime | None, until: datetime
    ) -> RawEvent | Rejected | None:
        if not isinstance(tweet, dict):
            return Rejected("post is not an object", None)
        for key in ("id", "created_at", "author_id"):
            if not tweet.get(key):
                return Rejected(f"missing {key}", tweet, _str_or_none(tweet.get("id")))
            if not isinstance(tweet[key], str):
                return Rejected(f"{key} is not a string", tweet, _str_or_none(tweet.get("id")))
        if self.account_problem(tweet["author_id"]):  # before the users lookup, which would miss it
            return Rejected("author_id is not in X's id form", tweet, tweet["id"])
        try:
            occurred = _parse_time(tweet["created_at"])
        except ITEM_ERRORS as e:
            return Rejected(item_error("unparseable created_at", e), tweet, tweet["id"])
        if occurred not in Window(since, until):
            self.outside_window += 1  # another window's item: its drops are counted there
            return None
        refs = {r.get("type"): r.get("id") for r in tweet.get("referenced_tweets") or []}  # non-dicts raise
        reason = drop_reason(tweet, refs, users.get(tweet["author_id"]))
        if reason:
            self.drop(reason)
            return None
        record_id = str(tweet["id"])
        parent_id = refs.get("replied_to")
        if parent_id:
            return RawEvent(
                record_type="reply",
                record_id=record_id,
                occurred_at=occurred,
                thread_id=str(tweet.get("conversation_id") or parent_id),
                parent_id=str(parent_id),
                account_id=str(tweet["author_id"]),
                parent_account_id=tweet.get("in_reply_to_user_id"),
                text=tweet.get("text"),
            )
        # Posts and quotes start their own conversation (conversation_id = own id). A quote
        # is not linked to the quoted post: it is not a response to it.
        return RawEvent(
            record_type="thread",
            record_id=record_id,
            occurred_at=occurred,
            thread_id=str(tweet.get("conversation_id") or record_id),
            account_id=str(tweet["author_id"]),
            text=tweet.get("text"),
        )


# -- what the registry knows about this platform ----------------------------------------


class XSource(Bounded):
    type: Literal["x"]
    query: str = Field(description="Recent-search query, e.g. '#airflow -is:retweet'.")
    base_url: HttpUrl | None = Field(None, description="Override the X API host (replay server).")
    bearer_token_env: str = Field("X_BEARER_TOKEN", description="Environment variable holding the bearer token.")
    page_size: int = Field(100, ge=10, le=100, description="Posts per page (max_results).")
    timeout_seconds: float = Field(30, gt=0, description="Longest wait for any single read from the server.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on network errors and 5xx.")
    max_wait_seconds: float = Field(
        960, ge=0, description="Longest rate-limit wait (x-rate-limit-reset) before the run fails instead."
    )


def lookup_account(source: XSource, handle: str, log: Any) -> str:
    """A username's id (``GET /2/users/by/username/{username}``)."""
    client, _ = make_client(source, log)
    body = client.get_user(username=handle)
    data = body.get("data") if isinstance(body, dict) else None
    if not data or not data.get("id"):
        raise HandleNotFound(handle)
    return str(data["id"])


def describe(source: XSource) -> str:
    """What the public notice says this source reads."""
    return f"public posts on X matching {source.query!r}"


PLATFORM = Platform(
    name="x",
    source=XSource,
    connector=XConnector,
    describe=describe,
    lookup=lookup_account,
    demo="agora.demo.x",
    fault_target="test_connector_x:fault_target",
)
