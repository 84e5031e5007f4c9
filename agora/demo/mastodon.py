"""Render a platform `Community` as a Mastodon instance's hashtag timeline.

``GET /api/v1/timelines/tag/{hashtag}``: statuses newest first by snowflake id,
``limit`` (at most 40) a page, ``max_id`` to go further back, with ``Link`` rel="next"/"prev"
headers. Each thread is a status and its replies (``in_reply_to_id``/``in_reply_to_account_id``).
What the connector must drop is there too: boosts (`REPOST`, a status whose ``reblog`` holds
the original), statuses that are not public (`Post.state == HIDDEN`, shown ``unlisted``),
and accounts that are locked or opted out of indexing (`Account.private`). Statuses of
accounts deleted since (`GONE`) are gone, as on Mastodon. Usernames, display names, bios
and avatars come with every account, as the real API sends them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from agora.demo.community import GONE, HIDDEN, REPOST, STAFF, Account, Community, Post, Thread
from agora.demo.server import DemoServer, iso_ms, link_next
from agora.replay import Reply

INSTANCE = "demo.social"
HASHTAG = "demoproject"
TIMELINE_PATH = f"/api/v1/timelines/tag/{HASHTAG}"


def status_id(p: Post) -> int:
    """A Mastodon snowflake: milliseconds since the epoch << 16, plus a sequence."""
    return (int(p.created_at.timestamp() * 1000) << 16) | (p.id % 65536)


def _account(a: Account) -> dict[str, Any]:
    locked = a.private and a.id % 2 == 0
    return {
        "id": str(a.id),
        "username": a.handle,
        "acct": a.handle,
        "display_name": a.name,
        "locked": locked,
        "bot": False,
        "discoverable": not a.private,
        "indexable": not a.private,
        "group": False,
        "created_at": iso_ms(a.joined_at.replace(hour=0, minute=0, second=0, microsecond=0)),
        "note": "<p>Open source, data and coffee.</p>" if a.role != STAFF else "<p>Team member.</p>",
        "url": f"https://{INSTANCE}/@{a.handle}",
        "avatar": f"https://{INSTANCE}/system/accounts/avatars/{a.id}/original/avatar.png",
        "followers_count": a.id % 300,
        "following_count": a.id % 170,
    }


def _status(c: Community, t: Thread, p: Post) -> dict[str, Any]:
    a = c.account(p.account_id)
    sid = status_id(p)
    status: dict[str, Any] = {
        "id": str(sid),
        "created_at": iso_ms(p.created_at),
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "sensitive": False,
        "spoiler_text": "",
        "visibility": "unlisted" if p.state == HIDDEN else "public",
        "language": "en",
        "uri": f"https://{INSTANCE}/users/{a.handle}/statuses/{sid}",
        "url": f"https://{INSTANCE}/@{a.handle}/{sid}",
        "replies_count": 0,
        "reblogs_count": 0,
        "favourites_count": p.id % 4,
        "content": f'{p.text}<p><a href="https://{INSTANCE}/tags/{HASHTAG}" class="mention hashtag">#{HASHTAG}</a></p>',
        "reblog": None,
        "account": _account(a),
        "media_attachments": [],
        "mentions": [],
        "tags": [{"name": HASHTAG, "url": f"https://{INSTANCE}/tags/{HASHTAG}"}],
    }
    opener = t.posts[0]
    if p.kind == REPOST:
        status.update(content="", reblog=_status(c, t, opener) | {"reblog": None})
    elif p.number > 1:
        parent = t.posts[(p.reply_to or 1) - 1]
        status["in_reply_to_id"] = str(status_id(parent))
        status["in_reply_to_account_id"] = str(parent.account_id)
    return status


def render_timeline(c: Community) -> list[dict]:
    """Every status still on the instance, newest first (ordered by id, as Mastodon does)."""
    out = [_status(c, t, p) for t in c.threads for p in t.posts if c.account(p.account_id).role != GONE]
    out.sort(key=lambda s: int(s["id"]), reverse=True)
    return out


def timeline_handler(c: Community) -> Callable[[str, dict[str, str]], Any]:
    statuses = render_timeline(c)

    def handle(path: str, params: dict[str, str]) -> Any:
        if path != TIMELINE_PATH:
            return Reply(body=[])  # another tag: an empty timeline, as Mastodon answers
        limit = max(1, min(int(params.get("limit", 20)), 40))
        max_id = int(params["max_id"]) if params.get("max_id") else None
        page = [s for s in statuses if max_id is None or int(s["id"]) < max_id][:limit]
        headers = {
            "X-RateLimit-Limit": "300",
            "X-RateLimit-Remaining": "299",
            "X-RateLimit-Reset": "2026-11-01T00:05:00.000Z",
        }
        if page:
            nxt = link_next(path, {"limit": str(limit)}, max_id=page[-1]["id"])["Link"]
            prev = f'<{{base_url}}{path}?limit={limit}&min_id={page[0]["id"]}>; rel="prev"'
            headers["Link"] = f"{nxt}, {prev}"
        return Reply(body=page, headers=headers)

    return handle


def serve_mastodon(c: Community, server: DemoServer) -> None:
    """Answer ``/api/v1/timelines/tag/...`` on `server` from the community."""
    server.handle("/api/v1/timelines/tag/", timeline_handler(c))


def account_id(raw_id: int) -> str:
    """The id the connector pseudonymises for an account of the demo instance (for privacy.staff)."""
    return f"{INSTANCE}:{raw_id}"


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

COHORT = 7.0
ID_BASE = 460_500_000
#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("not_authored", "not_public", "locked_account", "opted_out_of_indexing")


def serve(c: Community, server: DemoServer, seed: int) -> None:
    serve_mastodon(c, server)


def source(server_url: str) -> dict:
    return {
        "name": "toots",
        "type": "mastodon",
        "base_url": server_url,
        "hashtag": HASHTAG,
        "instance": INSTANCE,  # pseudonyms must not depend on the server's port
        "max_retries": 2,
    }


def staff_account(raw_id: int) -> str:
    """How agora.yml's privacy.staff names a demo account (the connector's key form)."""
    return account_id(raw_id)


def extra_handles(c: Community) -> list[str]:
    return [account_id(a.id) for a in c.accounts]
