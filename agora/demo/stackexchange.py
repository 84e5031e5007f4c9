"""Render a platform `Community` as the Stack Exchange API 2.3 for one tag of one site.

Each thread is a question tagged ``demo-project``; replies are answers and comments (on
the question or an answer, some addressed to someone with ``reply_to_user``). As on the
real API, deleted posts (`Post.state == HIDDEN`) are simply not served, and a post whose
author deleted their account since (`GONE`) has an owner with ``user_type:
does_not_exist`` that the connector must drop. ``sort=activity&min=``, ``todate``,
``fromdate``, ``page``/``pagesize``/``has_more`` and ``{ids}`` batches are honoured;
every wrapper carries ``quota_max``/``quota_remaining``. Display names, profile images
and links come with every owner, as the real API sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agora.demo.community import GONE, HIDDEN, REPOST, STAFF, Account, Community
from agora.demo.server import DemoServer, parse_time

API_ROOT = "/2.3"
SITE = "demo"
TAG = "demo-project"
ANSWER_ID_BASE = 3_000_000  # 7 digits: never equal to a 9-digit account id
COMMENT_ID_BASE = 5_000_000


def _owner(a: Account) -> dict[str, Any]:
    if a.role == GONE:
        return {"user_type": "does_not_exist", "display_name": a.handle}
    return {
        "reputation": 1 + a.id % 4000,
        "user_id": a.id,
        "user_type": "moderator" if a.role == STAFF else "registered",
        "profile_image": f"https://www.gravatar.com/avatar/{a.id:032x}?s=256&d=identicon&r=PG",
        "display_name": a.name or a.handle,
        "link": f"https://{SITE}.stackexchange.com/users/{a.id}/{a.handle}",
    }


def _epoch(p) -> int:
    return int(p.created_at.timestamp())


def render_site(c: Community) -> tuple[list[dict], list[dict], list[dict]]:
    """(questions, answers, comments) as the API serves them, deleted posts left out."""
    questions, answers, comments = [], [], []
    for t in c.threads:
        posts = [p for p in t.posts if p.kind != REPOST and p.state != HIDDEN]
        q, rest = posts[0], posts[1:]
        qid = t.id
        last_answer: tuple[int, Account] | None = None
        served = [q]
        for i, p in enumerate(rest):
            a = c.account(p.account_id)
            if i % 2 == 0:
                aid = ANSWER_ID_BASE + p.id
                answers.append(
                    {
                        "owner": _owner(a),
                        "is_accepted": i == 0 and t.outcome == "fast",
                        "score": p.id % 7,
                        "creation_date": _epoch(p),
                        "last_activity_date": _epoch(p),
                        "answer_id": aid,
                        "question_id": qid,
                        "content_license": "CC BY-SA 4.0",
                        "body": p.text,
                    }
                )
                last_answer = (aid, a)
            else:
                on_answer = last_answer is not None and p.id % 2 == 0
                comment = {
                    "owner": _owner(a),
                    "edited": False,
                    "score": 0,
                    "creation_date": _epoch(p),
                    "post_id": last_answer[0] if on_answer else qid,
                    "comment_id": COMMENT_ID_BASE + p.id,
                    "content_license": "CC BY-SA 4.0",
                    "body": p.text,
                }
                if last_answer is not None and not on_answer:
                    comment["reply_to_user"] = _owner(last_answer[1])  # "@name" to the answerer, under the question
                comments.append(comment)
            served.append(p)
        qa = c.account(q.account_id)
        questions.append(
            {
                "tags": [TAG, "configuration" if t.id % 2 else "installation"],
                "owner": _owner(qa),
                "is_answered": bool(rest),
                "answer_count": sum(1 for i in range(len(rest)) if i % 2 == 0),
                "score": t.id % 5,
                "last_activity_date": max(_epoch(p) for p in served),
                "creation_date": _epoch(q),
                "question_id": qid,
                "content_license": "CC BY-SA 4.0",
                "link": f"https://{SITE}.stackexchange.com/questions/{qid}",
                "title": t.title,
                "body": q.text,
            }
        )
    return questions, answers, comments


def _between(value: int, params: dict[str, str], low: str, high: str = "todate") -> bool:
    lo, hi = parse_time(params.get(low)), parse_time(params.get(high))
    return (lo is None or value >= int(lo.timestamp())) and (hi is None or value <= int(hi.timestamp()))


def _wrapper(items: list[dict], params: dict[str, str]) -> dict:
    size = min(int(params.get("pagesize", 30)), 100)
    page = int(params.get("page", 1))
    return {
        "items": items[(page - 1) * size : page * size],
        "has_more": page * size < len(items),
        "quota_max": 10000,
        "quota_remaining": 9970,
    }


def site_handler(c: Community) -> Callable[[str, dict[str, str]], Any]:
    questions, answers, comments = render_site(c)

    def handle(path: str, params: dict[str, str]) -> Any:
        if params.get("site") != SITE:
            return None
        parts = path[len(API_ROOT) :].strip("/").split("/")
        reverse = params.get("order", "desc") == "desc"
        if parts == ["questions"]:
            tag = params.get("tagged", "")
            items = [
                q for q in questions if tag in q["tags"] and _between(q["last_activity_date"], params, "min", "todate")
            ]
            key = "last_activity_date" if params.get("sort", "activity") == "activity" else "creation_date"
            items.sort(key=lambda q: (q[key], q["question_id"]), reverse=reverse)
            return _wrapper(items, params)
        if len(parts) == 3 and parts[0] == "questions" and parts[2] == "answers":
            ids = {int(i) for i in parts[1].split(";") if i.isdigit()}
            items = [a for a in answers if a["question_id"] in ids and _between(a["creation_date"], params, "fromdate")]
            items.sort(key=lambda a: (a["creation_date"], a["answer_id"]), reverse=reverse)
            return _wrapper(items, params)
        if len(parts) == 3 and parts[0] == "posts" and parts[2] == "comments":
            ids = {int(i) for i in parts[1].split(";") if i.isdigit()}
            items = [x for x in comments if x["post_id"] in ids and _between(x["creation_date"], params, "fromdate")]
            items.sort(key=lambda x: (x["creation_date"], x["comment_id"]), reverse=reverse)
            return _wrapper(items, params)
        return None

    return handle


def serve_stackexchange(c: Community, server: DemoServer) -> None:
    """Answer ``/2.3/...`` on `server` from the community."""
    server.handle(API_ROOT, site_handler(c))


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

COHORT = 6.5
ID_BASE = 820_300_000
#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("no_account",)


def serve(c: Community, server: DemoServer, seed: int) -> None:
    serve_stackexchange(c, server)


def source(server_url: str) -> dict:
    return {
        "name": "so",
        "type": "stackexchange",
        "base_url": server_url + API_ROOT,
        "site": SITE,
        "tagged": [TAG],
        "max_retries": 2,
        "page_size": 100,
    }
