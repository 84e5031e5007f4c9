"""Build the Stack Exchange replay fixtures (synthetic people, shapes from the API 2.3 docs).

Run: python tests/data/stackexchange/build_fixtures.py. Each file is one replay route:
{"path", "query" (exact, or null for any), "replies": [{status, headers, body}]}.
Owners carry every field the API returns (display_name, profile_image, link, account_id,
reputation); bodies are HTML as with ``filter=withbody``. Window: 2025-03-01 .. 2025-03-08.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).parent
ROOT = "/2.3"
SITE = "stackoverflow"
PAGE_SIZE = 2
SINCE, LAST_SECOND = 1740787200, 1741391999  # 2025-03-01T00:00:00Z, 2025-03-07T23:59:59Z
HEADERS = {"Content-Type": "application/json; charset=utf-8", "Access-Control-Allow-Origin": "*"}
quota = iter(range(9990, 0, -1))


def owner(uid: int, name: str, user_type: str = "registered", reputation: int = 1234) -> dict:
    slug = name.lower().replace(" ", "-")
    return {
        "account_id": uid + 11000000,
        "reputation": reputation,
        "user_id": uid,
        "user_type": user_type,
        "accept_rate": 80,
        "profile_image": f"https://www.gravatar.com/avatar/{uid:032x}?s=256&d=identicon&r=PG",
        "display_name": name,
        "link": f"https://stackoverflow.com/users/{uid}/{slug}",
    }


ALICE = owner(8800001, "Alice Stackwell")
BOB = owner(8800002, "Bob Overflow")
CAROL = owner(8800003, "Carol Queryson")
DAVE = owner(8800004, "Dave Optedout")  # opted out: tombstoned by the test
GONE = {"user_type": "does_not_exist", "display_name": "user8800099"}
COMMUNITY = owner(-1, "Community", "moderator", 1)


def ts(s: str) -> int:
    return int(datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp())


def question(qid: int, who: dict, created: str, active: str, title: str, body: str, tags: list[str]) -> dict:
    return {
        "tags": tags,
        "owner": who,
        "is_answered": True,
        "view_count": 321,
        "answer_count": 1,
        "score": 3,
        "last_activity_date": ts(active),
        "creation_date": ts(created),
        "question_id": qid,
        "content_license": "CC BY-SA 4.0",
        "link": f"https://stackoverflow.com/questions/{qid}/{title.lower().replace(' ', '-')}",
        "title": title,
        "body": body,
    }


def answer(aid: int, qid: int, who: dict, created: str, body: str) -> dict:
    return {
        "owner": who,
        "is_accepted": False,
        "score": 1,
        "last_activity_date": ts(created),
        "creation_date": ts(created),
        "answer_id": aid,
        "question_id": qid,
        "content_license": "CC BY-SA 4.0",
        "body": body,
    }


def comment(cid: int, post: int, who: dict, created: str, body: str, reply_to: dict | None = None) -> dict:
    c = {
        "owner": who,
        "edited": False,
        "score": 0,
        "creation_date": ts(created),
        "post_id": post,
        "comment_id": cid,
        "content_license": "CC BY-SA 4.0",
        "body": body,
    }
    if reply_to:
        c["reply_to_user"] = reply_to
    return c


def wrapper(items: list[dict], has_more: bool, **extra) -> dict:
    return {"items": items, "has_more": has_more, "quota_max": 10000, "quota_remaining": next(quota), **extra}


def q(page: int, **params) -> str:
    return urlencode({"site": SITE, "filter": "withbody", "page": page, "pagesize": PAGE_SIZE, **params})


def write(name: str, path: str, query: str | None, body: dict, status: int = 200) -> None:
    spec = {"path": path, "query": query, "replies": [{"status": status, "headers": HEADERS, "body": body}]}
    (HERE / f"{name}.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")


def main() -> None:
    for old in HERE.glob("*.json"):
        old.unlink()
    active = {"order": "asc", "sort": "activity", "todate": LAST_SECOND, "min": SINCE}
    write(
        "questions.airflow.page1",
        f"{ROOT}/questions",
        q(1, tagged="airflow", **active),
        wrapper(
            [
                question(
                    7001,
                    ALICE,
                    "2025-02-15T09:00:00",
                    "2025-03-01T09:00:00",
                    "DAG not scheduled",
                    "<p>My DAG in Lisbon never runs, see alice@example.org</p>",
                    ["airflow"],
                ),
                question(
                    7002,
                    BOB,
                    "2025-03-02T08:00:00",
                    "2025-03-02T10:00:00",
                    "Pool slots with dbt",
                    "<p>Bob Overflow asks: how many pool slots?</p>",
                    ["airflow", "dbt"],
                ),
            ],
            True,
        ),
    )
    write(
        "questions.airflow.page2",
        f"{ROOT}/questions",
        q(2, tagged="airflow", **active),
        wrapper(
            [
                question(
                    7003,
                    GONE,
                    "2025-03-03T08:00:00",
                    "2025-03-03T08:00:00",
                    "Sensor timeout",
                    "<p>Sensor times out</p>",
                    ["airflow"],
                ),
                question(
                    7004,
                    DAVE,
                    "2025-03-04T08:00:00",
                    "2025-03-05T12:00:00",
                    "Dark mode for the UI",
                    "<p>Dave from Berlin wants dark mode</p>",
                    ["airflow"],
                ),
            ],
            False,
        ),
    )
    broken = question(7006, CAROL, "2025-03-06T08:00:00", "2025-03-06T08:00:00", "Broken", "<p>x</p>", ["dbt"])
    del broken["creation_date"]
    write(
        "questions.dbt.page1",
        f"{ROOT}/questions",
        q(1, tagged="dbt", **active),
        wrapper(
            [
                question(
                    7002,
                    BOB,
                    "2025-03-02T08:00:00",
                    "2025-03-02T10:00:00",
                    "Pool slots with dbt",
                    "<p>Bob Overflow asks: how many pool slots?</p>",
                    ["airflow", "dbt"],
                ),
                question(
                    7005,
                    CAROL,
                    "2025-03-05T08:00:00",
                    "2025-03-06T09:00:00",
                    "Incremental model on DuckDB",
                    "<p>Carol Queryson: is_incremental() is always false</p>",
                    ["dbt"],
                ),
                broken,
            ],
            False,
        ),
    )
    answers_path = f"{ROOT}/questions/7001;7002;7003;7004;7005/answers"
    created = {"order": "asc", "sort": "creation", "todate": LAST_SECOND}
    write(
        "answers.page1",
        answers_path,
        q(1, **created),
        wrapper(
            [
                answer(7101, 7001, BOB, "2025-02-20T10:00:00", "<p>Check the start_date, Alice</p>"),
                answer(7102, 7001, CAROL, "2025-03-01T09:00:00", "<p>Also check catchup</p>"),
            ],
            True,
        ),
    )
    write(
        "answers.page2",
        answers_path,
        q(2, **created),
        wrapper(
            [
                answer(7103, 7002, COMMUNITY, "2025-03-02T10:00:00", "<p>Community wiki answer</p>"),
                answer(7104, 7004, ALICE, "2025-03-05T12:00:00", "<p>Use the theme setting</p>"),
            ],
            True,
        ),
    )
    write(
        "answers.page3",
        answers_path,
        q(3, **created),
        wrapper([answer(7105, 7005, DAVE, "2025-03-06T09:00:00", "<p>Dave: add a unique_key</p>")], False),
    )
    comments_path = f"{ROOT}/posts/7001;7002;7003;7004;7005;7101;7102;7103;7104;7105/comments"
    window = {"order": "asc", "sort": "creation", "todate": LAST_SECOND, "fromdate": SINCE}
    write(
        "comments.page1",
        comments_path,
        q(1, **window),
        wrapper(
            [
                comment(7201, 7101, ALICE, "2025-03-01T12:00:00", "Thanks Bob Overflow, that was it"),
                comment(
                    7202,
                    7002,
                    CAROL,
                    "2025-03-02T11:00:00",
                    "@Alice Stackwell had the same issue",
                    {
                        k: ALICE[k]
                        for k in (
                            "account_id",
                            "reputation",
                            "user_id",
                            "user_type",
                            "display_name",
                            "link",
                            "profile_image",
                        )
                    },
                ),
            ],
            True,
        ),
    )
    write(
        "comments.page2",
        comments_path,
        q(2, **window),
        wrapper([comment(7203, 7102, BOB, "2025-03-06T10:00:00", "Catchup fixed it for me")], False),
    )


if __name__ == "__main__":
    main()
