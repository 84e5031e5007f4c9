"""One HTTP client for every connector: timeouts, bounded retries, rate-limit logging.

Retries happen only for network errors, 429, 5xx, JSON bodies cut off in transit, and
responses `rate_limited()` says are rate limits (by default a 403 carrying ``Retry-After``
or an exhausted quota header, which is how GitHub signals secondary limits) — never for 4xx
that mean "you asked wrong". Waits honour ``Retry-After`` (seconds or HTTP date) and reset
headers, and back off exponentially otherwise (tenacity). Remaining quota is logged from
whichever headers the platform uses; when it reaches 0 the next request waits for the reset.
Connectors can ask for a pause (`pause()`) when an API signals backoff in its body (Stack
Exchange). Tokens are sent in headers and never logged.
"""

from __future__ import annotations

import email.utils
import logging
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin

import requests
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
QUOTA_HEADERS = (
    "x-ratelimit-remaining",  # GitHub, Mastodon (X-RateLimit-Remaining)
    "x-rate-limit-remaining",  # X
    "ratelimit-remaining",
)
USER_AGENT = "agora-community-metrics/0.1 (+public data only)"


class HttpError(RuntimeError):
    """A request that failed for good; the message names the URL path and status, never a token."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class RetryableHttpError(HttpError):
    def __init__(self, message: str, status: int | None = None, wait: float | None = None):
        super().__init__(message, status)
        self.wait = wait


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        if parsed is None:
            return None
        return max(0.0, (parsed - datetime.now(UTC)).total_seconds())


class HttpClient:
    """A requests.Session bound to one API root.

    `max_wait` caps any single server-requested wait so a misbehaving server cannot
    stall a run for hours; the run fails clearly instead.
    """

    def __init__(
        self,
        base_url: str,
        *,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
        max_retries: int = 5,
        backoff_base: float = 1.0,
        max_wait: float = 300,
        log: logging.Logger | None = None,
    ):
        self.base_url = base_url.rstrip("/") + "/"
        self.session = requests.Session()
        self.session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        self.session.headers.update(headers or {})
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.max_wait = max_wait
        self.log = log or logging.getLogger("agora.http")
        self.requests_made = 0
        self.retries = 0
        self.paused_seconds = 0.0
        self._resume_at = 0.0  # time.monotonic() before which no request is sent

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return urljoin(self.base_url, path.lstrip("/"))

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
            self.log.warning(
                "retrying %s in %.1fs (attempt %d/%d): %s",
                _path_only(self.url(path)),
                state.next_action.sleep if state.next_action else 0,
                state.attempt_number,
                self.max_retries + 1,
                exc,
            )

        attempt = retry(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=wait,
            retry=retry_if_exception(lambda e: isinstance(e, RetryableHttpError)),
            before_sleep=before_sleep,
            reraise=True,
        )(self._get_once)
        try:
            return attempt(path, params, want_json)
        except RetryableHttpError as e:
            raise HttpError(f"gave up after {self.max_retries + 1} attempts: {e}", e.status) from None

    def pause(self, seconds: float, reason: str) -> None:
        """Send no request for `seconds` (capped at max_wait): the API asked us to back off."""
        seconds = min(max(0.0, float(seconds)), self.max_wait)
        if seconds > 0:
            self.log.info("pausing %.1fs before the next request: %s", seconds, reason)
            self._resume_at = max(self._resume_at, time.monotonic() + seconds)

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
            time.sleep(delay)
        self.requests_made += 1
        try:
            resp = self.session.get(url, params=params, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as e:
            # ChunkedEncodingError: the connection dropped mid-body (requests reads the body here).
            raise RetryableHttpError(f"{_path_only(url)}: {type(e).__name__}") from None
        self._log_quota(resp)
        if resp.status_code in RETRY_STATUS or self.rate_limited(resp):
            retry_after = retry_after_seconds(resp.headers.get("Retry-After"))
            raise RetryableHttpError(
                f"{_path_only(url)}: HTTP {resp.status_code}",
                resp.status_code,
                retry_after if retry_after is not None else self.rate_limit_wait(resp),  # "0" means now
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
                    self.pause(self.rate_limit_wait(resp) or 0, "rate-limit quota exhausted")
                return


def _path_only(url: str) -> str:
    """Log URLs without query strings: some APIs take keys as parameters."""
    return url.split("?", 1)[0]


def next_link(resp: requests.Response) -> str | None:
    """RFC 5988 `Link: <...>; rel="next"` (GitHub, Mastodon)."""
    return resp.links.get("next", {}).get("url")
