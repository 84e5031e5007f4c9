"""MediaWiki: revisions of configured talk pages (edits) and daily views of support pages.

Edits: the Action API's ``prop=revisions`` per page, oldest first, ``continue`` paging.
A revision whose user, text or sha1 was hidden (or that was suppressed) is not public and
is dropped (`hidden`). The account is ``userid`` for registered (and temporary) accounts;
an anonymous editor's account is their IP address, which is personal data: it goes to the
pseudonymiser like any id and is never stored. ``parent_actor`` is the editor of the
previous revision; when that revision is older than the window it is fetched by id.

Pageviews: the Wikimedia REST ``per-article`` daily endpoint (configurable root), landed
as aggregate records (`value`, no account). A day lands with the window in which it *ends*
(since < day end <= until), so consecutive windows land each complete day exactly once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

import requests
from pydantic import Field, HttpUrl, model_validator

from agora.envelope import RawEvent, Rejected
from connectors.base import ITEM_ERRORS, Connector, HandleNotFound, Window, as_int, item_error, parse_iso
from connectors.http import ContinuePaginator, HttpClient, HttpError, client_options, token_from_env
from connectors.registry import Platform, is_ascii_id
from connectors.schema import Bounded

HIDDEN_FLAGS = ("userhidden", "texthidden", "sha1hidden", "suppressed")
PAGEVIEWS_FIRST_DAY = datetime(2015, 7, 1, tzinfo=UTC)  # the REST API has no earlier data
MAXLAG = "5"  # seconds; Wikimedia's etiquette for non-interactive clients
REVIDS_PER_QUERY = 50


class MediawikiClient(HttpClient):
    """MediaWiki reports replication lag and rate limits in a 200 with an error header."""

    LIMIT_CODES = frozenset({"maxlag", "ratelimited"})

    def rate_limited(self, resp: requests.Response) -> bool:
        return super().rate_limited(resp) or resp.headers.get("MediaWiki-API-Error") in self.LIMIT_CODES

    def rate_limit_wait(self, resp: requests.Response) -> float | None:
        if resp.headers.get("MediaWiki-API-Error") in self.LIMIT_CODES:
            return 5.0  # no Retry-After: the maxlag manual asks for at least 5 s
        return super().rate_limit_wait(resp)


_ts = parse_iso


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _midnight(dt: datetime) -> datetime:
    return dt.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def _account(rev: dict) -> str | None:
    """userid for accounts (stable across renames); the IP/name for anonymous editors."""
    if rev.get("userid") and not rev.get("anon"):
        if isinstance(rev["userid"], bool) or not isinstance(rev["userid"], int | str):
            raise TypeError("userid is not a number")
        return str(rev["userid"])
    user = rev.get("user")
    if user is not None and not isinstance(user, str):
        raise TypeError("user is not a string")
    return user or None


def _hidden(rev: dict) -> bool:
    return any(rev.get(flag) for flag in HIDDEN_FLAGS)


class MediawikiConnector(Connector):
    platform = "mediawiki"
    version = "0.1.0"
    account_id_pattern = r"[1-9][0-9]{0,19}"  # userid; an anonymous editor's IP address is checked apart

    @classmethod
    def account_problem(cls, account_id: str | None) -> str | None:
        """A userid, or an anonymous editor's IPv4/IPv6 address kept as the wiki prints it."""
        if isinstance(account_id, str) and account_id.isascii():
            try:
                ipaddress.ip_address(account_id)
                return None
            except ValueError:
                pass
        return super().account_problem(account_id)

    drop_reasons = {
        # userhidden / texthidden / sha1hidden / suppressed revisions
        "hidden": "hidden or suppressed posts and revisions",
    }
    fields_read = (
        "page.pageid",
        "page.missing",
        "revision.revid",
        "revision.parentid",
        "revision.timestamp",
        "revision.userid",
        "revision.user (anonymous editors only, in memory)",
        "revision.anon",
        "revision.userhidden",
        "revision.texthidden",
        "revision.sha1hidden",
        "revision.suppressed",
        "pageviews.items.timestamp",
        "pageviews.items.views",
    )

    def __init__(self, source: Any, **kwargs: Any):
        super().__init__(source, **kwargs)
        token = token_from_env(source)
        opts = client_options(source, self.log)
        self.api_url = str(source.api_url)
        # The token is the wiki's: sent to api_url's origin only, never to the pageviews host.
        self.client = MediawikiClient(
            self.api_url, credentials={"Authorization": f"Bearer {token}"} if token else None, **opts
        )
        self.views = HttpClient(str(source.pageviews_url), **opts) if source.pageviews_url else None

    def extract(self, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        for title in self.source.pages:
            yield from self.page_edits(title, since, until)
        for title in self.source.support_pages:
            yield from self.page_views(title, since, until)
        requests_made = self.client.requests_made + (self.views.requests_made if self.views else 0)
        self.log.info("%s: %d requests", self.source.name, requests_made)

    # Edits

    def query(self, params: dict[str, Any]) -> dict:
        body, _ = self.client.get_json(
            self.api_url, {"action": "query", "format": "json", "formatversion": "2", "maxlag": MAXLAG, **params}
        )
        if not isinstance(body, dict):
            raise HttpError("mediawiki: expected a JSON object")
        if "error" in body:  # errors come as HTTP 200; the code is enough to act on
            raise HttpError(f"mediawiki API error: {body['error'].get('code', 'unknown')}")
        if "warnings" in body:
            self.log.warning("mediawiki API warnings from modules: %s", ", ".join(sorted(body["warnings"])))
        return body

    def revisions(self, title: str, since: datetime | None, until: datetime) -> Iterator[tuple[dict, dict]]:
        """(page, revision) pairs oldest first, following ``continue`` to the end."""
        params: dict[str, Any] = {
            "prop": "revisions",
            "titles": title,
            "rvprop": "ids|timestamp|user|userid|flags",
            "rvlimit": self.source.page_size,
            "rvdir": "newer",
            "rvend": _iso(until),  # inclusive: the window's end is filtered out below
        }
        if since is not None:
            params["rvstart"] = _iso(since)
        for body in ContinuePaginator(self.client).pages(self.query, params):
            for page in body.get("query", {}).get("pages", []):
                if page.get("missing") or page.get("invalid"):
                    self.log.warning("%s: a configured talk page does not exist", self.source.name)
                    continue
                for rev in page.get("revisions", []):
                    yield page, rev

    def fetch_editors(self, revids: list[int]) -> dict[int, str | None]:
        """Editors of revisions older than the window (parents of its first edits)."""
        editors: dict[int, str | None] = {}
        for i in range(0, len(revids), REVIDS_PER_QUERY):
            chunk = revids[i : i + REVIDS_PER_QUERY]
            body = self.query(
                {"prop": "revisions", "revids": "|".join(map(str, chunk)), "rvprop": "ids|user|userid|flags"}
            )
            for page in body.get("query", {}).get("pages", []):
                for rev in page.get("revisions", []):
                    try:
                        editors[as_int(rev["revid"])] = None if _hidden(rev) else _account(rev)
                    except ITEM_ERRORS:
                        continue  # a malformed parent: its child keeps no parent_actor
        return editors

    def page_edits(self, title: str, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        kept: list[tuple[dict, dict, datetime]] = []
        editors: dict[int, str | None] = {}  # revid -> editor, None when hidden (memory only)
        for page, rev in self.revisions(title, since, until):
            try:
                revid, when = as_int(rev["revid"]), _ts(rev["timestamp"])
                parentid = as_int(rev.get("parentid") or 0)
                hidden, account = _hidden(rev), _account(rev)
                thread = f"page:{as_int(page['pageid'])}"
            except ITEM_ERRORS as e:
                yield Rejected(
                    item_error("mediawiki revision without usable revid, timestamp, parentid or user", e), rev
                )
                continue
            # rvstart/rvend bound the query, but a revision the API returns out of the window
            # (out-of-order, a replica's clock) belongs to another window's landing file.
            in_window = when in Window(since, until)
            if hidden:
                editors[revid] = None
                if in_window:
                    self.drop("hidden")
                continue
            editors[revid] = account
            if in_window:
                kept.append((revid, parentid, thread, account, when))
        missing = sorted({parentid for _, parentid, _, _, _ in kept} - set(editors) - {0})
        editors.update(self.fetch_editors(missing) if missing else {})
        for revid, parentid, thread, account, when in kept:
            yield RawEvent(
                record_type="edit",
                record_id=str(revid),
                occurred_at=when,
                thread_id=thread,
                parent_id=str(parentid) if parentid else None,
                account_id=account,
                parent_account_id=editors.get(parentid),
            )

    # Pageviews

    def page_views(self, title: str, since: datetime | None, until: datetime) -> Iterator[RawEvent | Rejected]:
        first = _midnight(since) if since is not None else PAGEVIEWS_FIRST_DAY
        last = _midnight(until) - timedelta(days=1)  # the last day that has ended by `until`
        if last < first:
            return
        article = quote(title.replace(" ", "_"), safe="")
        path = f"per-article/{self.source.project}/all-access/user/{article}/daily/{first:%Y%m%d}00/{last:%Y%m%d}00"
        try:
            body, _ = self.views.get_json(path)
        except HttpError as e:
            if e.status == 404:  # the REST API's answer for "no data for these days"
                self.log.info("%s: no pageviews for a support page in this window", self.source.name)
                return
            raise
        for item in body.get("items", []) if isinstance(body, dict) else []:
            try:
                day = datetime.strptime(str(item["timestamp"]), "%Y%m%d%H").replace(tzinfo=UTC)
                views = float(item["views"])
            except (KeyError, TypeError, ValueError):
                yield Rejected("pageviews item without timestamp or views", item)
                continue
            if first <= day <= last:
                yield RawEvent(
                    record_type="pageviews",
                    record_id=f"{title.replace(' ', '_')}:{day:%Y-%m-%d}",
                    occurred_at=day,
                    value=views,
                )


# -- what the registry knows about this platform ----------------------------------------


class MediawikiSource(Bounded):
    type: Literal["mediawiki"]
    api_url: HttpUrl = Field(description="The wiki's api.php URL.")
    pageviews_url: HttpUrl | None = Field(None, description="Pageviews REST endpoint root.")
    project: str | None = Field(None, description="Pageviews project, e.g. meta.wikimedia.org.")
    pages: list[str] = Field(default_factory=list, description="Talk pages whose revisions are read.")
    support_pages: list[str] = Field(default_factory=list, description="Pages whose daily views are read.")
    token_env: str | None = Field(None, description="Environment variable holding an OAuth token, if any.")
    timeout_seconds: float = Field(30, gt=0, description="Longest wait for any single read from the server.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries of a failed request (network, maxlag, 429, 5xx).")
    page_size: int = Field(50, ge=1, le=500, description="Revisions per request (rvlimit).")

    @model_validator(mode="after")
    def _pageviews_complete(self) -> MediawikiSource:
        if self.support_pages and not (self.pageviews_url and self.project):
            raise ValueError("support_pages need pageviews_url and project")
        return self


def account_keys(sources: Any, account: str) -> set[str] | None:
    """A userid, or an anonymous editor's IP address in every form a wiki may print it
    (IPv6 in upper case, without zero padding); anything else is a user name to look up."""
    if is_ascii_id(account):
        return {account}
    try:
        ip = ipaddress.ip_address(account)
    except ValueError:
        return None
    if ip.version == 4:
        return {str(ip)}
    wiki = ":".join(f"{int(g, 16):X}" for g in ip.exploded.split(":"))
    return {account, str(ip), str(ip).upper(), wiki}


def lookup_account(source: MediawikiSource, handle: str, log: Any) -> str:
    """A user name's userid (``list=users``)."""
    body = MediawikiConnector(source, log=log).query({"list": "users", "ususers": handle})
    users = body.get("query", {}).get("users") or [{}]
    if users[0].get("missing") or users[0].get("invalid") or not users[0].get("userid"):
        raise HandleNotFound(handle)
    return str(users[0]["userid"])


def describe(source: MediawikiSource) -> str:
    """What the public notice says this source reads."""
    pages = f" (talk pages: {', '.join(source.pages)})" if source.pages else ""
    views = f"; daily view counts of {', '.join(source.support_pages)}" if source.support_pages else ""
    return f"public revisions on the wiki at {source.api_url}{pages}{views}"


PLATFORM = Platform(
    name="mediawiki",
    source=MediawikiSource,
    connector=MediawikiConnector,
    describe=describe,
    lookup=lookup_account,
    account_keys=account_keys,
    demo="agora.demo.mediawiki",
    fault_target="test_connector_mediawiki:fault_target",
)
