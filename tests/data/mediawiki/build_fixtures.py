"""Build the MediaWiki replay fixtures (synthetic editors, shapes from the Action API and
Wikimedia REST pageviews docs; ``formatversion=2``).

Run: python tests/data/mediawiki/build_fixtures.py. Each file is one replay route:
{"path", "query" (exact, or null for any), "replies": [{status, headers, body}]}.
Editors include registered users (name + id), an IPv4 and an IPv6 anonymous editor, a
temporary account, a hidden user and a suppressed revision. Window: 2025-03-01 .. 2025-03-08.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).parent
API_PATH = "/w/api.php"
VIEWS_PATH = "/api/rest_v1/metrics/pageviews"
TALK, PAGEID = "Talk:Community portal", 7701
PAGE_SIZE = 3
HEADERS = {"Content-Type": "application/json; charset=utf-8", "X-Content-Type-Options": "nosniff"}


def rev(revid: int, parent: int, ts: str, user: str | None = None, userid: int | None = None, **flags) -> dict:
    r = {"revid": revid, "parentid": parent, "minor": False, "timestamp": ts}
    if user is not None:
        r["user"] = user
        r["userid"] = userid or 0
    r.update(flags)
    return r


def query(**extra) -> str:
    q = {
        "action": "query",
        "format": "json",
        "formatversion": "2",
        "maxlag": "5",
        "prop": "revisions",
        "titles": TALK,
        "rvprop": "ids|timestamp|user|userid|flags",
        "rvlimit": PAGE_SIZE,
        "rvdir": "newer",
        "rvend": "2025-03-08T00:00:00Z",
        "rvstart": "2025-03-01T00:00:00Z",
        **extra,
    }
    return urlencode(q)


def page(revisions: list[dict], title: str = TALK, pageid: int = PAGEID) -> dict:
    return {"pageid": pageid, "ns": 1, "title": title, "revisions": revisions}


def write(name: str, path: str, q: str | None, *replies: dict) -> None:
    (HERE / f"{name}.json").write_text(
        json.dumps({"path": path, "query": q, "replies": list(replies)}, indent=1, ensure_ascii=False) + "\n"
    )


def ok(body: dict, status: int = 200) -> dict:
    return {"status": status, "headers": HEADERS, "body": body}


def main() -> None:
    for old in HERE.glob("*.json"):
        old.unlink()
    cont1 = {"rvcontinue": "20250303090000|1004", "continue": "||"}
    cont2 = {"rvcontinue": "20250306100000|1007", "continue": "||"}
    write(
        "revisions.page1",
        API_PATH,
        query(),
        ok(
            {
                "continue": cont1,
                "query": {
                    "pages": [
                        page(
                            [
                                rev(1001, 990, "2025-03-01T08:00:00Z", "Alice Example", 9200001),
                                rev(1002, 1001, "2025-03-02T10:00:00Z", "203.0.113.45", 0, anon=True),
                                rev(1003, 1002, "2025-03-02T11:00:00Z", userhidden=True),
                            ]
                        )
                    ]
                },
            }
        ),
    )
    write(
        "revisions.page2",
        API_PATH,
        query(**cont1),
        ok(
            {
                "continue": cont2,
                "query": {
                    "pages": [
                        page(
                            [
                                rev(1004, 1003, "2025-03-03T09:00:00Z", "Bob Wikiwalker", 9200002),
                                rev(1005, 1004, "2025-03-04T12:00:00Z", "~2025-31337-42", 9200005, temp=True),
                                rev(1006, 1005, "2025-03-05T07:00:00Z", "Dave Optout", 9200004),
                            ]
                        )
                    ]
                },
            }
        ),
    )
    write(
        "revisions.page3",
        API_PATH,
        query(**cont2),
        ok(
            {
                "batchcomplete": True,
                "query": {
                    "pages": [
                        page(
                            [
                                rev(1007, 1006, "2025-03-06T10:00:00Z", "2001:db8:85a3::8a2e:370:7334", 0, anon=True),
                                rev(
                                    1008,
                                    1007,
                                    "2025-03-06T12:00:00Z",
                                    "Eve Suppressed",
                                    9200006,
                                    suppressed=True,
                                    texthidden=True,
                                    sha1hidden=True,
                                ),
                                {"revid": 1010, "parentid": 1008, "user": "Frank Broken", "userid": 9200007},
                                rev(1009, 1008, "2025-03-08T00:00:00Z", "Alice Example", 9200001),
                            ]
                        )
                    ]
                },
            }
        ),
    )
    # The parent of the window's first revision is older than the window: fetched by id.
    write(
        "parent_revisions",
        API_PATH,
        urlencode(
            {
                "action": "query",
                "format": "json",
                "formatversion": "2",
                "maxlag": "5",
                "prop": "revisions",
                "revids": "990",
                "rvprop": "ids|user|userid|flags",
            }
        ),
        ok(
            {
                "batchcomplete": True,
                "query": {"pages": [page([rev(990, 980, "2025-02-20T10:00:00Z", "Carol Wikiwise", 9200003)])]},
            }
        ),
    )
    write(
        "revisions.missing_page",
        API_PATH,
        query(titles="Talk:No such page"),
        ok({"batchcomplete": True, "query": {"pages": [{"ns": 1, "title": "Talk:No such page", "missing": True}]}}),
    )

    def views(article: str, days: range, base: int) -> dict:
        return {
            "items": [
                {
                    "project": "meta.wikimedia",
                    "article": article,
                    "granularity": "daily",
                    "timestamp": f"202503{d:02d}00",
                    "access": "all-access",
                    "agent": "user",
                    "views": base + 3 * d,
                }
                for d in days
            ]
        }

    per_article = f"{VIEWS_PATH}/per-article/meta.wikimedia.org/all-access/user"
    write(
        "pageviews.getting_started",
        f"{per_article}/Help%3AGetting_started/daily/2025030100/2025030700",
        None,
        ok(views("Help:Getting_started", range(1, 8), 40)),
    )
    write(
        "pageviews.faq_no_data",
        f"{per_article}/Help%3AFAQ/daily/2025030100/2025030700",
        None,
        ok(
            {
                "type": "https://mediawiki.org/wiki/HyperSwitch/errors/not_found",
                "title": "Not found.",
                "method": "get",
                "detail": "The date(s) you used are valid, but we either do not have data for those date(s), "
                "or the project you asked for is not loaded yet.",
                "uri": "/meta.wikimedia.org/v1/metrics/pageviews/per-article/meta.wikimedia.org/all-access/user/"
                "Help%3AFAQ/daily/2025030100/2025030700",
            },
            404,
        ),
    )


if __name__ == "__main__":
    main()
