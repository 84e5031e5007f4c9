"""Render a platform `Community` as a Bluesky AppView's ``app.bsky.feed.searchPosts``.

Every post of the community matches the demo's hashtag; each thread is a post and its
replies (``record.reply.root``/``parent`` strong refs). Search is newest first by ``sortAt``
(``min(createdAt, indexedAt)``), honours ``since``/``until``/``limit``, and pages with an
offset ``cursor``. What the connector must drop is there too: accounts that are not public
(`Account.private`) carry the ``!no-unauthenticated`` self-label. Posts the AppView no longer
serves are absent, as on Bluesky: hidden ones (`Post.state == HIDDEN`, deleted by their
author), reposts (search returns posts, not reposts) and every post of a deleted account
(`GONE`). DIDs, handles, display names and avatars come with every author.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from agora.demo.community import GONE, HIDDEN, REPOST, Account, Community, Post
from agora.demo.server import DemoServer, iso_ms, parse_time
from agora.replay import Reply

HASHTAG = "demoproject"
SEARCH_PATH = "/xrpc/app.bsky.feed.searchPosts"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def _b32(seed: str, n: int) -> str:
    return "".join(_B32[b % 32] for b in hashlib.sha512(seed.encode()).digest())[:n]


def did(a: Account | int) -> str:
    """The account's DID: what the connector pseudonymises (also the form for privacy.staff)."""
    raw = a.id if isinstance(a, Account) else a
    return f"did:plc:{_b32(f'demo-did-{raw}', 24)}"


def _cid(p: Post) -> str:
    # Digits only (still base32): a random run of letters could spell a demo handle, and the
    # privacy checks search the landing zone for every handle.
    return "bafyrei" + "".join("234567"[b % 6] for b in hashlib.sha512(f"demo-cid-{p.id}".encode()).digest())[:52]


def _uri(c: Community, p: Post) -> str:
    return f"at://{did(c.account(p.account_id))}/app.bsky.feed.post/{_b32(f'rkey-{p.id}', 13)}"


def _author(a: Account) -> dict[str, Any]:
    labels = []
    if a.private:
        labels.append(
            {
                "src": did(a),
                "uri": f"at://{did(a)}/app.bsky.actor.profile/self",
                "val": "!no-unauthenticated",
                "cts": iso_ms(a.joined_at),
            }
        )
    return {
        "did": did(a),
        "handle": f"{a.handle}.bsky.social",
        "displayName": a.name,
        "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did(a)}/{_b32(str(a.id), 20)}@jpeg",
        "labels": labels,
        "createdAt": iso_ms(a.joined_at),
    }


def render_posts(c: Community) -> list[dict]:
    """Every post the AppView still serves, newest first by sortAt."""
    out = []
    for t in c.threads:
        opener = t.posts[0]
        for p in t.posts:
            a = c.account(p.account_id)
            if a.role == GONE or p.state == HIDDEN or p.kind == REPOST:
                continue
            record: dict[str, Any] = {
                "$type": "app.bsky.feed.post",
                "text": f"{p.text} #{HASHTAG}",
                "createdAt": iso_ms(p.created_at),
                "langs": ["en"],
            }
            if p.number > 1:
                parent = t.posts[(p.reply_to or 1) - 1]
                record["reply"] = {
                    "root": {"uri": _uri(c, opener), "cid": _cid(opener)},
                    "parent": {"uri": _uri(c, parent), "cid": _cid(parent)},
                }
            out.append(
                {
                    "uri": _uri(c, p),
                    "cid": _cid(p),
                    "author": _author(a),
                    "record": record,
                    "replyCount": 0,
                    "repostCount": 0,
                    "likeCount": p.id % 5,
                    "indexedAt": iso_ms(p.created_at),
                    "labels": [],
                }
            )
    out.sort(key=lambda v: (v["indexedAt"], v["cid"]), reverse=True)
    return out


def search_handler(c: Community) -> Callable[[str, dict[str, str]], Any]:
    posts = render_posts(c)

    def handle(path: str, params: dict[str, str]) -> Any:
        if path != SEARCH_PATH:
            return None
        since, until = parse_time(params.get("since")), parse_time(params.get("until"))
        hits = [
            p
            for p in posts
            if (since is None or parse_time(p["indexedAt"]) >= since)
            and (until is None or parse_time(p["indexedAt"]) < until)
        ]
        limit = max(1, min(int(params.get("limit", 25)), 100))
        start = int(params.get("cursor") or 0)
        page = hits[start : start + limit]
        body: dict[str, Any] = {"posts": page, "hitsTotal": len(hits)}
        if start + limit < len(hits):
            body["cursor"] = str(start + limit)
        headers = {"ratelimit-limit": "3000", "ratelimit-remaining": "2999", "ratelimit-policy": "3000;w=300"}
        return Reply(body=body, headers=headers)

    return handle


def serve_bluesky(c: Community, server: DemoServer) -> None:
    """Answer ``/xrpc/app.bsky.feed.searchPosts`` on `server` from the community."""
    server.handle("/xrpc/app.bsky.", search_handler(c))


def source(server_url: str) -> dict[str, Any]:
    """The demo's Bluesky source."""
    return {"name": "sky", "type": "bluesky", "base_url": server_url, "query": f"#{HASHTAG}", "max_retries": 2}


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

COHORT = 7.5
ID_BASE = 250_700_000
#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("no_unauthenticated",)


def serve(c: Community, server: DemoServer, seed: int) -> None:
    serve_bluesky(c, server)


def staff_account(raw_id: int) -> str:
    """How agora.yml's privacy.staff names a demo account: its DID."""
    return did(raw_id)


def extra_handles(c: Community) -> list[str]:
    """DIDs and the handles as Bluesky shows them: none may reach disk."""
    return [did(a) for a in c.accounts] + [f"{a.handle}.bsky.social" for a in c.accounts]
