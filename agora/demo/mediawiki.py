"""Render a platform `Community` as a MediaWiki Action API (talk-page revisions) and the
Wikimedia pageviews REST API (daily views of support pages).

Each thread is a discussion on one of the talk pages; every post is a revision of that page
(``parentid`` = the page's previous revision). Accounts deleted since (`GONE`) edit as
anonymous IP editors, whose "account" is their address; a post with `state == HIDDEN` is a
revision whose user and text were hidden by an admin (``userhidden``/``texthidden``), which
the connector must drop. ``rvstart``/``rvend``/``rvdir=newer``/``rvlimit``/``rvcontinue``
and ``revids`` are honoured as MediaWiki does (formatversion=2). Pageviews are generated per
day (weekday rhythm, slow growth) and answer 404 for days without data, as the REST API does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

from agora.demo.community import END, GONE, HIDDEN, REPOST, START, Account, Community
from agora.demo.server import DemoServer, iso, parse_time
from agora.replay import Reply

TALK_PAGES = ("Talk:Getting started", "Talk:Installation", "Project:Support desk")
SUPPORT_PAGES = ("Help:Getting started", "Help:FAQ")
PROJECT = "wiki.demo.example"
API_PATH = "/w/api.php"
PAGEVIEWS_PATH = "/pageviews"
PAGE_ID_BASE = 4100


def anon_ip(a: Account) -> str:
    """The address an account deleted since edits as (documentation range, personal data all the same)."""
    return f"198.51.100.{(a.id % 200) + 20}"


def render_revisions(c: Community) -> dict[str, list[dict]]:
    """Talk page title -> its revisions, oldest first."""
    pages: dict[str, list[dict]] = {title: [] for title in TALK_PAGES}
    for t in c.threads:
        title = TALK_PAGES[t.id % len(TALK_PAGES)]
        for p in t.posts:
            if p.kind == REPOST:
                continue
            pages[title].append({"post": p, "account": c.account(p.account_id)})
    out: dict[str, list[dict]] = {}
    for title, items in pages.items():
        items.sort(key=lambda i: i["post"].id)
        revs, parent = [], 0
        for i in items:
            p, a = i["post"], i["account"]
            rev: dict[str, Any] = {"revid": p.id, "parentid": parent, "minor": False, "timestamp": iso(p.created_at)}
            if p.state == HIDDEN:
                rev.update(userhidden=True, texthidden=True)
            elif a.role == GONE:
                rev.update(anon=True, user=anon_ip(a), userid=0)
            else:
                rev.update(user=a.handle, userid=a.id)
            revs.append(rev)
            parent = p.id
        out[title] = revs
    return out


def render_pageviews(seed: int) -> dict[str, dict[datetime, int]]:
    """Support page title -> daily views over the demo period."""
    out: dict[str, dict[datetime, int]] = {}
    for n, title in enumerate(SUPPORT_PAGES):
        rng = random.Random(f"{seed}:pageviews:{title}")
        base = 180 if n == 0 else 70
        days, day = {}, START
        while day < END:
            growth = 1 + 0.5 * (day - START).days / 670
            weekday = 0.6 if day.weekday() >= 5 else 1.0
            days[day] = max(0, int(base * growth * weekday * rng.uniform(0.75, 1.25)))
            day += timedelta(days=1)
        out[title] = days
    return out


def _page(title: str, revs: list[dict]) -> dict:
    return {"pageid": PAGE_ID_BASE + TALK_PAGES.index(title), "ns": 1, "title": title, "revisions": revs}


def api_handler(c: Community, page_size_max: int = 500) -> Callable[[str, dict[str, str]], Any]:
    revisions = render_revisions(c)
    by_revid = {r["revid"]: (title, r) for title, revs in revisions.items() for r in revs}

    def handle(path: str, params: dict[str, str]) -> Any:
        if path != API_PATH or params.get("action") != "query" or params.get("prop") != "revisions":
            return Reply(200, {"error": {"code": "badvalue", "info": "demo wiki: unsupported query"}})
        if "revids" in params:
            found: dict[str, list[dict]] = {}
            for rid in params["revids"].split("|"):
                if rid.isdigit() and int(rid) in by_revid:
                    title, rev = by_revid[int(rid)]
                    found.setdefault(title, []).append(rev)
            return {"batchcomplete": True, "query": {"pages": [_page(t, r) for t, r in found.items()]}}
        title = params.get("titles", "")
        if title not in revisions:
            return {"batchcomplete": True, "query": {"pages": [{"ns": 1, "title": title, "missing": True}]}}
        start, end = parse_time(params.get("rvstart")), parse_time(params.get("rvend"))
        revs = [
            r
            for r in revisions[title]
            if (start is None or parse_time(r["timestamp"]) >= start)
            and (end is None or parse_time(r["timestamp"]) <= end)
        ]
        if "rvcontinue" in params:
            after = int(params["rvcontinue"].split("|")[1])
            revs = [r for r in revs if r["revid"] >= after]
        limit = min(int(params.get("rvlimit", 10)), page_size_max)
        body: dict[str, Any] = {"batchcomplete": True, "query": {"pages": [_page(title, revs[:limit])]}}
        if len(revs) > limit:
            nxt = revs[limit]
            stamp = parse_time(nxt["timestamp"]).strftime("%Y%m%d%H%M%S")
            body = {"continue": {"rvcontinue": f"{stamp}|{nxt['revid']}", "continue": "||"}, **body}
            del body["batchcomplete"]
        return body

    return handle


def pageviews_handler(seed: int, project: str = PROJECT) -> Callable[[str, dict[str, str]], Any]:
    views = render_pageviews(seed)

    def handle(path: str, params: dict[str, str]) -> Any:
        parts = path[len(PAGEVIEWS_PATH) :].strip("/").split("/")
        # per-article/{project}/{access}/{agent}/{article}/daily/{start}/{end}
        if len(parts) != 8 or parts[0] != "per-article" or parts[1] != project or parts[5] != "daily":
            return None
        title = unquote(parts[4]).replace("_", " ")
        first = datetime.strptime(parts[6], "%Y%m%d%H").replace(tzinfo=UTC)
        last = datetime.strptime(parts[7], "%Y%m%d%H").replace(tzinfo=UTC)
        days = views.get(title, {})
        items = [
            {
                "project": project,
                "article": title.replace(" ", "_"),
                "granularity": "daily",
                "timestamp": f"{day:%Y%m%d}00",
                "access": parts[2],
                "agent": parts[3],
                "views": n,
            }
            for day, n in sorted(days.items())
            if first <= day <= last
        ]
        if not items:
            return Reply(
                404, {"type": "https://mediawiki.org/wiki/HyperSwitch/errors/not_found", "title": "Not found."}
            )
        return {"items": items}

    return handle


def serve_mediawiki(c: Community, server: DemoServer, seed: int) -> None:
    """Answer ``/w/api.php`` and ``/pageviews/...`` on `server` from the community."""
    server.handle(API_PATH, api_handler(c))
    server.handle(PAGEVIEWS_PATH, pageviews_handler(seed))


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

COHORT = 6.5
ID_BASE = 640_200_000
#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("hidden",)


def serve(c: Community, server: DemoServer, seed: int) -> None:
    serve_mediawiki(c, server, seed)


def source(server_url: str) -> dict:
    return {
        "name": "wiki",
        "type": "mediawiki",
        "api_url": server_url + API_PATH,
        "pageviews_url": server_url + PAGEVIEWS_PATH,
        "project": PROJECT,
        "pages": list(TALK_PAGES),
        "support_pages": list(SUPPORT_PAGES),
        "max_retries": 2,
        "page_size": 500,
    }


def extra_handles(c: Community) -> list[str]:
    """Anonymous editors' IP addresses: personal data that must never reach disk."""
    return [anon_ip(a) for a in c.accounts if a.role == GONE]
