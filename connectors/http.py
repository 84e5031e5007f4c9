"""One HTTP client for every connector: timeouts, bounded retries, rate-limit logging.

Retries happen only for network errors, 429, 5xx, JSON bodies cut off in transit, and
responses `rate_limited()` says are rate limits (by default a 403 carrying ``Retry-After``
or an exhausted quota header, which is how GitHub signals secondary limits) — never for 4xx
that mean "you asked wrong". Waits honour ``Retry-After`` (seconds or HTTP date) and reset
headers, and back off exponentially otherwise (tenacity). Remaining quota is logged from
whichever headers the platform uses; when it reaches 0 the next request waits for the reset.
Connectors can ask for a pause (`pause()`) when an API signals backoff in its body (Stack
Exchange). Tokens are sent in headers and never logged.

Hostile servers are bounded here, once for every connector: a URL (next link, redirect)
outside the source's origin (scheme, host, port of ``base_url``) is refused before any
request, and credentials are attached per request to that origin only; redirects are
followed by hand, within the origin; each request has a total deadline (not per read) and
a cap on the body it reads (streamed); paginators stop link loops and endless listings
with an error naming the source.
"""

from __future__ import annotations

import email.utils
import logging
import math
import os
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)
from urllib3 import exceptions as urllib3_errors

from agora import progress
from connectors.schema import ConfigError

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
QUOTA_HEADERS = (
    "x-ratelimit-remaining",  # GitHub, Mastodon (X-RateLimit-Remaining)
    "x-rate-limit-remaining",  # X
    "ratelimit-remaining",
)
USER_AGENT = "agora-community-metrics/0.1 (+public data only)"
REDIRECT_STATUS = frozenset({301, 302, 303, 307, 308})
MAX_REDIRECTS = 5
DEFAULT_MAX_PAGES = 10_000
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
DEFAULT_DEADLINE = 120.0  # seconds for one request, body included
_READ_CHUNK = 64 * 1024


class HttpError(RuntimeError):
    """A request that failed for good; the message names the URL path and status, never a token."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class OriginError(HttpError):
    """A next link or redirect leading off the source's origin: refused, nothing sent."""


class LimitError(HttpError):
    """A bound was hit (page cap, link loop, response size): the source misbehaves, retrying will not help."""


class RetryableHttpError(HttpError):
    """`reason`: why the next attempt waits (shown in the extract's progress)."""

    def __init__(self, message: str, status: int | None = None, wait: float | None = None, reason: str = ""):
        super().__init__(message, status)
        self.wait = wait
        self.reason = reason or message


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delay-seconds or an HTTP date), or None
    when it says neither (a hostile value is ignored, never raised on)."""
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            parsed = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if parsed.tzinfo is None:  # an HTTP date is GMT
            parsed = parsed.replace(tzinfo=UTC)
        return max(0.0, (parsed - datetime.now(UTC)).total_seconds())
    return max(0.0, seconds) if math.isfinite(seconds) else None


def origin_of(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1  # unparseable port: never equal to a real origin
    if port is None:
        port = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def _origin_text(url: str) -> str:
    scheme, host, port = origin_of(url)
    return f"{scheme}://{host}:{port}"


class HttpClient:
    """A requests.Session bound to one API root (its origin: scheme, host and port).

    `max_wait` caps any single server-requested wait so a misbehaving server cannot
    stall a run for hours; the run fails clearly instead. `credentials` are headers sent
    with each request to the origin and nowhere else (requests would keep custom headers
    such as Discourse's ``Api-Key`` across a redirect to another host). `name` (the
    source's) is put in the errors that stop a misbehaving listing.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        credentials: dict[str, str] | None = None,
        timeout: float = 30,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        max_wait: float = 300,
        deadline: float = DEFAULT_DEADLINE,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        max_pages: int = DEFAULT_MAX_PAGES,
        name: str = "source",
        log: logging.Logger | None = None,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.origin = origin_of(self.base_url)
        self.session = requests.Session()
        self.session.trust_env = False  # no .netrc credentials or proxies picked up from the environment
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.headers.update(headers or {})
        self.credentials = dict(credentials or {})
        self.name = name
        self.deadline = deadline
        self.max_response_bytes = max_response_bytes
        self.max_pages = max_pages
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self.log = log or logging.getLogger("agora.http")
        self.requests_made = 0
        self.retries = 0
        self.paused_seconds = 0.0
        self._resume_at = 0.0  # time.monotonic() before which no request is sent
        self._pause_reason = ""

    def url(self, path: str) -> str:
        """The absolute URL for `path`; refuses (OriginError, no request) one off the origin."""
        url = path if path.startswith(("http://", "https://")) else urljoin(self.base_url, path.lstrip("/"))
        self.check_origin(url, "link")
        return url

    def check_origin(self, url: str, what: str) -> None:
        if origin_of(url) != self.origin:
            raise OriginError(
                f"{self.name}: refusing a {what} to {_origin_text(url)}: not the source's origin "
                f"{_origin_text(self.base_url)} (credentials and requests stay on the configured host)"
            )

    def relative_path(self, url: str) -> str | None:
        """`url`'s path below base_url's path (no query), or None when it lies outside."""
        path, root = urlsplit(url).path, urlsplit(self.base_url).path
        return path[len(root) :] if path.startswith(root) else None

    def get(self, path: str, params: dict[str, Any] | Iterable[tuple[str, Any]] | None = None) -> requests.Response:
        """GET with retries; returns the successful response or raises HttpError."""
        return self._with_retries(path, params, want_json=False)[1]

    def get_json(self, path: str, params: Any = None) -> tuple[Any, requests.Response]:
        """GET and parse JSON; a truncated or non-JSON body is retried like a 5xx (it is transient)."""
        return self._with_retries(path, params, want_json=True)

    def _with_retries(self, path: str, params: Any, want_json: bool) -> tuple[Any, requests.Response]:
        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            if isinstance(exc, RetryableHttpError) and exc.wait is not None:
                return min(exc.wait, self.max_wait)
            return wait_exponential(multiplier=self.backoff_base, max=60)(state)

        def before_sleep(state: RetryCallState) -> None:
            self.retries += 1
            exc = state.outcome.exception()
            seconds = state.next_action.sleep if state.next_action else 0
            self.log.warning(
                "retrying %s in %.1fs (attempt %d/%d): %s",
                _path_only(self.url(path)),
                seconds,
                state.attempt_number,
                self.max_retries + 1,
                exc,
            )
            why = exc.reason if isinstance(exc, RetryableHttpError) else str(exc)
            progress.waiting(seconds, f"{why} (retry {state.attempt_number}/{self.max_retries})")

        attempt = retry(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, RetryableHttpError)),
            before_sleep=before_sleep,
            reraise=True,
        )(self._get_once)
        try:
            result = attempt(path, params, want_json)
        except RetryableHttpError as e:
            raise HttpError(f"gave up after {self.max_retries + 1} attempts: {e}", e.status) from None
        progress.page()
        return result

    def pause(self, seconds: float, reason: str) -> None:
        """Send no request for `seconds` (capped at max_wait): the API asked us to back off."""
        seconds = min(max(0.0, float(seconds)), self.max_wait)
        if seconds > 0:
            self.log.info("pausing %.1fs before the next request: %s", seconds, reason)
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)
            self._pause_reason = reason

    def rate_limited(self, resp: requests.Response) -> bool:
        """Is this non-429 response a rate limit to wait out? Subclasses add platform signals."""
        if resp.status_code == 403:
            return "Retry-After" in resp.headers or any(resp.headers.get(h) == "0" for h in QUOTA_HEADERS)
        return False

    def _get_once(self, path: str, params: Any, want_json: bool = False) -> tuple[Any, requests.Response]:
        url = self.url(path)
        delay = self._resume_at - time.monotonic()
        if delay > 0:
            self.paused_seconds += delay
            progress.waiting(delay, self._pause_reason)
            time.sleep(delay)
        resp = self._fetch(url, params)
        self._log_quota(resp)
        if resp.status_code in RETRY_STATUS or self.rate_limited(resp):
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            wait = retry_after if retry_after is not None else self.rate_limit_wait(resp)  # "0" means now
            raise RetryableHttpError(
                f"{_path_only(url)}: HTTP {resp.status_code}",
                resp.status_code,
                wait,
                _wait_reason(resp, retry_after, wait, rate_limit=resp.status_code < 500),
            )
        if resp.status_code >= 400:
            raise HttpError(f"{_path_only(url)}: HTTP {resp.status_code}", resp.status_code)
        if not want_json:
            return None, resp
        try:
            return resp.json(), resp
        except ValueError:
            # A cut-off body (proxy, dropped connection) is transient: fetch the same page again.
            # No status: callers (the ingest DAG) treat 4xx-like statuses as permanent, and this is not.
            raise RetryableHttpError(
                f"{_path_only(resp.url)}: response is not valid JSON ({len(resp.content)} bytes)"
            ) from None

    def _fetch(self, url: str, params: Any) -> requests.Response:
        """One GET with its body read, following same-origin redirects by hand."""
        deadline = time.monotonic() + self.deadline
        for _ in range(MAX_REDIRECTS + 1):
            self.requests_made += 1
            try:
                resp = self.session.get(
                    url,
                    params=params,
                    headers=self.credentials,  # url is on the origin: checked before every request
                    timeout=self.timeout,
                    stream=True,
                    allow_redirects=False,
                )
                read_body(resp, deadline, self.max_response_bytes, self.name)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
                # ChunkedEncodingError: the connection dropped mid-body.
                raise RetryableHttpError(
                    f"{_path_only(url)}: {type(e).__name__}",
                    reason=f"network error on {_path_only(url)}: {type(e).__name__}",
                ) from None
            if resp.status_code not in REDIRECT_STATUS or not resp.headers.get("Location"):
                return resp
            url, params = urljoin(resp.url, resp.headers["Location"]), None
            self.check_origin(url, "redirect")
        raise HttpError(f"{self.name}: {_path_only(url)}: more than {MAX_REDIRECTS} redirects")

    def rate_limit_wait(self, resp: requests.Response) -> float | None:
        """Seconds until a reset header says the quota refills (GitHub, X, Mastodon)."""
        for name in ("x-ratelimit-reset", "x-rate-limit-reset"):
            value = resp.headers.get(name)
            if value:
                try:
                    reset = float(value)
                except ValueError:
                    try:
                        reset = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
                    except ValueError:
                        continue
                return max(0.0, reset - time.time())
        return None

    def _log_quota(self, resp: requests.Response) -> None:
        for name in QUOTA_HEADERS:
            if name in resp.headers:
                self.log.debug("%s remaining quota: %s", _path_only(resp.url), resp.headers[name])
                if resp.headers[name] == "0" and resp.status_code < 400:
                    # Quota spent: wait for the reset instead of earning a 403/429 next time.
                    self.pause(self.rate_limit_wait(resp) or 0, f"rate-limit quota exhausted ({name}: 0)")
                return


def token_from_env(source: Any, field: str = "token_env", *, required: bool = False) -> str | None:
    """The secret named by `source.<field>` (an environment variable name), or None when the
    field is unset; a named but unset or empty variable is a config error naming the key."""
    env = getattr(source, field)
    if not env:
        if required:
            raise ConfigError(f"sources.{source.name}.{field}: required")
        return None
    value = os.environ.get(env, "")
    if not value:
        raise ConfigError(f"sources.{source.name}.{field}: environment variable {env} is unset")
    return value


def client_options(source: Any, log: logging.Logger | None = None) -> dict[str, Any]:
    """HttpClient keyword arguments from a source's settings (timeouts, retries, bounds)."""
    return dict(
        timeout=source.timeout_seconds,
        max_retries=source.max_retries,
        deadline=source.deadline_seconds,
        max_response_bytes=source.max_response_bytes,
        max_pages=source.max_pages,
        name=source.name,
        log=log,
    )


def _wait_reason(resp: requests.Response, retry_after: float | None, wait: float | None, rate_limit: bool) -> str:
    """Why a retry waits, in words: a rate limit (and which header set the wait) or a server error."""
    what = "rate limited" if rate_limit else "server error"
    text = f"{what}: HTTP {resp.status_code} on {urlsplit(resp.url).path}"
    if retry_after is not None:
        return f"{text}, Retry-After: {resp.headers.get('Retry-After')}"
    if wait is not None:
        return f"{text}, quota resets in {wait:.0f} s"
    return text


def _path_only(url: str) -> str:
    """Log URLs without query strings: some APIs take keys as parameters."""
    return url.split("?", 1)[0]


class DeadlineExceeded(requests.Timeout):
    """The whole request (headers and body) took longer than its deadline."""


def read_body(resp: requests.Response, deadline: float, max_bytes: int, name: str) -> bytes:
    """Read a streamed body into `resp` (so `.json()`/`.text` work), within a total deadline
    (time.monotonic()) and a size cap. Reads return as soon as any bytes arrive, so a body
    dripped one byte at a time is checked against the deadline at every byte."""
    declared = resp.headers.get("Content-Length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > max_bytes:  # not "²" (isdigit, not int)
        resp.close()
        raise LimitError(
            f"{name}: {_path_only(resp.url)}: response of {declared} bytes exceeds the {max_bytes}-byte cap"
        )
    chunks, size = [], 0
    try:
        while True:
            if time.monotonic() > deadline:
                raise DeadlineExceeded(f"{_path_only(resp.url)}: response not complete within its deadline")
            chunk = resp.raw.read1(_READ_CHUNK, decode_content=True)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise LimitError(f"{name}: {_path_only(resp.url)}: response exceeds the {max_bytes}-byte cap")
            chunks.append(chunk)
    except (urllib3_errors.ProtocolError, urllib3_errors.DecodeError) as e:
        resp.close()
        raise requests.exceptions.ChunkedEncodingError(str(type(e).__name__)) from None
    except urllib3_errors.ReadTimeoutError:
        resp.close()
        raise requests.exceptions.ReadTimeout(_path_only(resp.url)) from None
    except BaseException:
        resp.close()
        raise
    body = b"".join(chunks)
    resp._content = body  # requests' own cache of a read body: .json(), .text, .content use it
    resp._content_consumed = True
    return body


class Paginator:
    """Counts the pages of one listing and remembers what it asked for: a listing that
    loops (a ``Link`` to itself, a continue token repeated) or never ends fails with an
    error naming the source instead of fetching forever."""

    def __init__(self, client: HttpClient):
        self.client = client
        self.seen: set[str] = set()

    def visit(self, key: str, what: str = "page") -> None:
        name = self.client.name
        if key in self.seen:
            raise LimitError(f"{name}: the next {what} was already read ({_path_only(key)}): the listing loops")
        if len(self.seen) >= self.client.max_pages:
            raise LimitError(f"{name}: more than {self.client.max_pages} pages in one listing (max_pages)")
        self.seen.add(key)


class LinkHeaderPaginator(Paginator):
    """Follow ``Link: rel="next"`` to the last page (GitHub, Mastodon). `follow(url)` may
    refuse a next link that leaves what the caller checked (GitHub: another repository)."""

    def pages(self, path: str, params: Any = None, follow: Any = None) -> Iterator[tuple[Any, requests.Response]]:
        url: str | None = path
        while url:
            self.visit(requests.Request("GET", self.client.url(url), params=params).prepare().url or url)
            body, resp = self.client.get_json(url, params)
            yield body, resp
            url, params = next_link(resp), None  # the next link carries the query
            if url and follow is not None and not follow(self.client.url(url)):
                raise OriginError(f"{self.client.name}: refusing a next link outside the listing: {_path_only(url)}")


class PageNumberPaginator(Paginator):
    """``page=first, first+1, ...`` while `more(body)` says so (Discourse, Stack Exchange)."""

    def pages(
        self, path: str, params: dict[str, Any], more: Any, first: int = 1, page_param: str = "page"
    ) -> Iterator[Any]:
        page = first
        while True:
            self.visit(f"{path}?{page_param}={page}")
            body, _ = self.client.get_json(path, {**params, page_param: page})
            yield body
            if not more(body):
                return
            page += 1


class ContinuePaginator(Paginator):
    """MediaWiki's ``continue``: the next request repeats the query plus the token object."""

    def pages(self, get: Any, params: dict[str, Any]) -> Iterator[Any]:
        cont: dict[str, Any] = {}
        while True:
            self.visit(repr(sorted(cont.items())), "continue token")
            body = get({**params, **cont})
            yield body
            cont = body.get("continue") or {} if isinstance(body, dict) else {}
            if not cont:
                return


def next_link(resp: requests.Response) -> str | None:
    """RFC 5988 `Link: <...>; rel="next"` (GitHub, Mastodon)."""
    return resp.links.get("next", {}).get("url")
