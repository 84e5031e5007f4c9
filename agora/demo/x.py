"""Render a platform `Community` as X API v2 recent search (``/2/tweets/search/recent``).

Each thread is a conversation (the opening post's id is the ``conversation_id``); replies
reference the post they answer (``replied_to``) and its author (``in_reply_to_user_id``).
What the connector must drop is there too: retweets (`REPOST`), posts withheld in some
countries (`Post.state == HIDDEN`), posts of protected accounts (`Account.private`) and
posts whose author is missing from ``includes.users`` (accounts deleted since, `GONE`).
Usernames and display names come in ``includes.users`` as the real API sends them.

The 7-day reach of recent search is not enforced: the demo server answers any
``start_time``/``end_time`` inside the demo period, newest first, ``max_results`` a page,
``meta.next_token`` to the next, as if each window had been asked for while it was recent
(what a deployment that runs at least weekly has landed). See docs/connectors.md.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agora.demo.community import GONE, HIDDEN, REPOST, Community, Post, Thread
from agora.demo.server import DemoServer, iso_ms, parse_time
from agora.replay import Reply

SEARCH_PATH = "/2/tweets/search/recent"
HASHTAG = "#demoproject"
TWITTER_EPOCH_MS = 1_288_834_974_657


def tweet_id(p: Post) -> str:
    """A snowflake from the post's time, as X's ids are (19 digits in 2025)."""
    ms = int(p.created_at.timestamp() * 1000)
    return str(((ms - TWITTER_EPOCH_MS) << 22) | (p.id % 4096))


def _tweet(c: Community, t: Thread, p: Post) -> dict[str, Any]:
    opener = t.posts[0]
    tid = tweet_id(p)
    tweet: dict[str, Any] = {
        "edit_history_tweet_ids": [tid],
        "id": tid,
        "author_id": str(p.account_id),
        "created_at": iso_ms(p.created_at),
        "conversation_id": tweet_id(opener),
        "text": f"{p.text} {HASHTAG}",
    }
    if p.kind == REPOST:
        source = c.account(opener.account_id)
        tweet["text"] = f"RT @{source.handle}: {opener.text}"
        tweet["referenced_tweets"] = [{"type": "retweeted", "id": tweet_id(opener)}]
        tweet["conversation_id"] = tid
        return tweet
    if p.number > 1:
        parent = t.posts[(p.reply_to or 1) - 1]
        tweet["referenced_tweets"] = [{"type": "replied_to", "id": tweet_id(parent)}]
        tweet["in_reply_to_user_id"] = str(parent.account_id)
    if p.state == HIDDEN:
        tweet["withheld"] = {"copyright": False, "country_codes": ["DE", "FR"]}
    return tweet


def render_tweets(c: Community) -> list[tuple[datetime, dict]]:
    """Every post as (created_at, tweet), newest first as search returns them."""
    out = [(p.created_at, _tweet(c, t, p)) for t in c.threads for p in t.posts]
    out.sort(key=lambda x: int(x[1]["id"]), reverse=True)
    return out


def _user(c: Community, account_id: str) -> dict[str, Any] | None:
    a = c.account(int(account_id))
    if a.role == GONE:
        return None  # deleted or suspended since: X leaves it out of includes
    return {"id": account_id, "name": a.name or a.handle, "username": a.handle, "protected": a.private}


def search_handler(c: Community) -> Callable[[str, dict[str, str]], Any]:
    tweets = render_tweets(c)

    def handle(path: str, params: dict[str, str]) -> Any:
        if path != SEARCH_PATH:
            return None
        if not params.get("query"):
            return Reply(400, {"title": "Invalid Request", "detail": "query is required"})
        start, end = parse_time(params.get("start_time")), parse_time(params.get("end_time"))
        matches = [
            tw
            for at, tw in tweets
            if HASHTAG in params["query"] and (start is None or at >= start) and (end is None or at < end)
        ]
        size = max(10, min(int(params.get("max_results", 10)), 100))
        offset = int(params.get("next_token", "0").removeprefix("demo-") or 0)
        page = matches[offset : offset + size]
        if not page:
            return {"meta": {"result_count": 0}}
        users = []
        for author in dict.fromkeys(tw["author_id"] for tw in page):
            user = _user(c, author)
            if user is not None:
                users.append(user)
        meta: dict[str, Any] = {"newest_id": page[0]["id"], "oldest_id": page[-1]["id"], "result_count": len(page)}
        if offset + size < len(matches):
            meta["next_token"] = f"demo-{offset + size}"
        reset = int(datetime.now(UTC).timestamp()) + 900
        headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449", "x-rate-limit-reset": str(reset)}
        return Reply(body={"data": page, "includes": {"users": users}, "meta": meta}, headers=headers)

    return handle


def serve_x(c: Community, server: DemoServer) -> None:
    """Answer ``/2/tweets/search/recent`` on `server` from the community."""
    server.handle(SEARCH_PATH, search_handler(c))


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

COHORT = 8.0
ID_BASE = 930_400_000
#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("not_authored", "withheld", "protected_account", "author_unknown")
#: The demo's X source reads this variable; the demo sets it to a dummy token (not a secret).
TOKEN_ENV = "AGORA_DEMO_X_BEARER_TOKEN"


def serve(c: Community, server: DemoServer, seed: int) -> None:
    serve_x(c, server)


def source(server_url: str) -> dict:
    return {
        "name": "x",
        "type": "x",
        "query": f"{HASHTAG} -is:retweet",
        "base_url": server_url,
        "bearer_token_env": TOKEN_ENV,
        "max_retries": 2,
    }


def environment() -> dict[str, str]:
    """Variables the demo source needs (a dummy token, not a secret)."""
    return {TOKEN_ENV: "demo-token-not-a-secret"}
