"""Render a demo `Community` as the Discourse JSON API and serve it from a `ReplayServer`.

Shapes follow what a Discourse forum returns to an API key with staff rights (the view
in which restricted categories, whispers, deleted/hidden posts and unlisted topics are
visible, so the connector's public-only rules are exercised): ``/categories.json``,
``/latest.json?order=activity&page=N`` (30 topics a page, pinned first, then by last
activity), ``/t/{id}.json`` (first 20 posts plus the full ``stream``) and
``/t/{id}/posts.json?post_ids[]=...`` in the chunks of 20 a Discourse client asks for.
Usernames, names and avatar templates are included, as the real API includes them: the
connector has to ignore them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from agora.demo.community import (
    ACTION,
    AUTHOR_DELETED,
    BOT,
    DELETED,
    HIDDEN,
    STAFF,
    WHISPER,
    Account,
    Community,
    Post,
    Thread,
    build_community,
)
from agora.replay import ReplayServer

PER_PAGE = 30
CHUNK = 20
POST_TYPES = {"regular": 1, ACTION: 3, WHISPER: 4}


def _ts(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _slug(title: str) -> str:
    out = "".join(c if c.isalnum() else "-" for c in title.lower())
    return "-".join(filter(None, out.split("-")))[:60] or "topic"


def _avatar(a: Account) -> str:
    if a.role == BOT:
        return "/images/discourse-logo-sketch-small.png"
    return f"/user_avatar/forum.example.org/{a.handle}/{{size}}/{a.id % 9973}_2.png"


def _user_ref(a: Account) -> dict[str, Any]:
    return {"id": a.id, "username": a.handle, "name": a.name or None, "avatar_template": _avatar(a)}


def render_categories(c: Community) -> dict:
    def cat(cat_) -> dict:
        topics = [t for t in c.threads if t.category_id == cat_.id]
        return {
            "id": cat_.id,
            "name": cat_.name,
            "color": "0088CC",
            "text_color": "FFFFFF",
            "slug": cat_.slug,
            "topic_count": len(topics),
            "post_count": sum(len(t.posts) for t in topics),
            "position": cat_.id,
            "description": cat_.description,
            "description_text": cat_.description,
            "description_excerpt": cat_.description,
            "topic_url": f"/t/about-the-{cat_.slug}-category",
            "read_restricted": cat_.restricted,
            "permission": 1,
            "notification_level": 1,
            "has_children": any(x.parent_id == cat_.id for x in c.categories),
            "parent_category_id": cat_.parent_id,
            "subcategory_ids": [x.id for x in c.categories if x.parent_id == cat_.id],
            "uploaded_logo": None,
            "uploaded_background": None,
        }

    top = []
    for cat_ in c.categories:
        if cat_.parent_id is None:
            item = cat(cat_)
            item["subcategory_list"] = [cat(x) for x in c.categories if x.parent_id == cat_.id]
            top.append(item)
    return {"category_list": {"can_create_category": True, "can_create_topic": True, "categories": top}}


def _regular(t: Thread) -> list[Post]:
    return [p for p in t.posts if p.kind == "regular"]


def _topic_summary(c: Community, t: Thread) -> dict:
    reg = _regular(t)
    last = reg[-1] if reg else t.posts[0]
    posters = []
    for i, aid in enumerate(dict.fromkeys([t.account_id, *(p.account_id for p in reg[1:])])):
        if i >= 5:
            break
        posters.append(
            {
                "extras": None,
                "description": "Original Poster" if i == 0 else "Frequent Poster",
                "user_id": aid,
                "primary_group_id": None,
            }
        )
    return {
        "id": t.id,
        "title": t.title,
        "fancy_title": t.title,
        "slug": _slug(t.title),
        "posts_count": len(reg),
        "reply_count": max(0, len(reg) - 1),
        "highest_post_number": len(t.posts),
        "image_url": None,
        "created_at": _ts(t.created_at),
        "last_posted_at": _ts(last.created_at),
        "bumped": True,
        "bumped_at": _ts(t.last_activity),
        "archetype": "regular",
        "unseen": False,
        "pinned": t.pinned,
        "unpinned": None,
        "visible": t.listed,
        "closed": t.closed,
        "archived": False,
        "bookmarked": None,
        "liked": None,
        "tags": [],
        "views": 10 + 7 * len(t.posts),
        "like_count": len(reg) // 2,
        "has_summary": len(reg) > 50,
        "last_poster_username": c.account(last.account_id).handle,
        "category_id": t.category_id,
        "pinned_globally": t.pinned_globally,
        "featured_link": None,
        "posters": posters,
    }


def render_latest_pages(c: Community) -> list[dict]:
    """Pinned topics first (as Discourse does), then by last activity, newest first."""
    ordered = sorted(c.threads, key=lambda t: (not t.pinned, -t.last_activity.timestamp(), -t.id))
    pages = [ordered[i : i + PER_PAGE] for i in range(0, len(ordered), PER_PAGE)]
    out = []
    for n, page in enumerate(pages):
        users = {aid: c.account(aid) for t in page for aid in [t.account_id, *(p.account_id for p in _regular(t))]}
        topic_list: dict[str, Any] = {"can_create_topic": True, "per_page": PER_PAGE, "top_tags": []}
        if n + 1 < len(pages):
            topic_list["more_topics_url"] = f"/latest?order=activity&page={n + 1}"
        topic_list["topics"] = [_topic_summary(c, t) for t in page]
        out.append(
            {
                "users": [{**_user_ref(a), "trust_level": 4 if a.role == STAFF else 1} for a in users.values()],
                "primary_groups": [],
                "flair_groups": [],
                "topic_list": topic_list,
            }
        )
    # Past the last page Discourse answers with an empty list and no more_topics_url.
    out.append(
        {"users": [], "primary_groups": [], "flair_groups": [], "topic_list": {"per_page": PER_PAGE, "topics": []}}
    )
    return out


def render_post(c: Community, t: Thread, p: Post) -> dict:
    a = c.account(p.account_id)
    by_number = {q.number: q for q in t.posts}
    reply_to = by_number.get(p.reply_to) if p.reply_to else None
    post = {
        "id": p.id,
        "name": a.name or None,
        "username": a.handle,
        "avatar_template": _avatar(a),
        "created_at": _ts(p.created_at),
        "cooked": p.text,
        "post_number": p.number,
        "post_type": POST_TYPES[p.kind],
        "updated_at": _ts(p.created_at),
        "reply_count": sum(1 for q in t.posts if q.reply_to == p.number),
        "reply_to_post_number": p.reply_to,
        "quote_count": 0,
        "incoming_link_count": 0,
        "reads": 3 + p.number,
        "readers_count": 2 + p.number,
        "score": round(0.2 * p.number + 1, 1),
        "yours": False,
        "topic_id": t.id,
        "topic_slug": _slug(t.title),
        "display_username": a.name or a.handle,
        "primary_group_name": None,
        "flair_name": None,
        "version": 1,
        "can_edit": True,
        "can_delete": True,
        "can_recover": p.state == DELETED,
        "can_wiki": True,
        "read": True,
        "user_title": "Team" if a.role == STAFF else None,
        "bookmarked": False,
        "actions_summary": [{"id": 2, "count": p.number % 3}],
        "moderator": a.role == STAFF,
        "admin": a.role in (STAFF, BOT),
        "staff": a.role in (STAFF, BOT),
        "user_id": a.id,
        "hidden": p.state == HIDDEN,
        "trust_level": 4 if a.role in (STAFF, BOT) else 1,
        "deleted_at": _ts(p.created_at) if p.state == DELETED else None,
        "user_deleted": p.state == AUTHOR_DELETED,
        "edit_reason": None,
        "can_view_edit_history": True,
        "wiki": False,
        "reviewable_id": 0,
        "reviewable_score_count": 0,
        "reviewable_score_pending_count": 0,
        "mentioned_users": [],
    }
    if p.action_code:
        post["action_code"] = p.action_code
    if reply_to is not None:
        ra = c.account(reply_to.account_id)
        post["reply_to_user"] = {"username": ra.handle, "name": ra.name or None, "avatar_template": _avatar(ra)}
    return post


def render_topic(c: Community, t: Thread) -> tuple[dict, list[tuple[list[int], dict]]]:
    """`/t/{id}.json` and the `/t/{id}/posts.json` chunks a client asks for afterwards."""
    posts = [render_post(c, t, p) for p in t.posts]
    stream = [p["id"] for p in posts]
    first = posts[:CHUNK]
    counts: dict[int, int] = {}
    for p in t.posts:
        counts[p.account_id] = counts.get(p.account_id, 0) + 1
    participants = [{**_user_ref(c.account(aid)), "post_count": n} for aid, n in counts.items()]
    last = t.posts[-1]
    topic = {
        "post_stream": {"posts": first, "stream": stream},
        "timeline_lookup": [[1, 0]],
        "tags": [],
        "id": t.id,
        "title": t.title,
        "fancy_title": t.title,
        "posts_count": len(t.posts),
        "created_at": _ts(t.created_at),
        "views": 10 + 7 * len(t.posts),
        "reply_count": max(0, len(t.posts) - 1),
        "like_count": len(t.posts) // 2,
        "last_posted_at": _ts(last.created_at),
        "visible": t.listed,
        "closed": t.closed,
        "archived": False,
        "has_summary": False,
        "archetype": "regular",
        "slug": _slug(t.title),
        "category_id": t.category_id,
        "word_count": 40 * len(t.posts),
        "deleted_at": None,
        "user_id": t.account_id,
        "featured_link": None,
        "pinned_globally": t.pinned_globally,
        "pinned_at": _ts(t.created_at) if t.pinned else None,
        "pinned_until": None,
        "image_url": None,
        "slow_mode_seconds": 0,
        "draft": None,
        "draft_key": f"topic_{t.id}",
        "draft_sequence": 0,
        "unpinned": None,
        "pinned": t.pinned,
        "current_post_number": 1,
        "highest_post_number": len(t.posts),
        "deleted_by": None,
        "actions_summary": [],
        "chunk_size": CHUNK,
        "bookmarked": False,
        "topic_timer": None,
        "message_bus_last_id": 0,
        "participant_count": len(participants),
        "show_read_indicator": False,
        "thumbnails": None,
        "details": {
            "can_edit": True,
            "notification_level": 1,
            "participants": participants[:24],
            "created_by": _user_ref(c.account(t.account_id)),
            "last_poster": _user_ref(c.account(last.account_id)),
        },
    }
    rest = posts[CHUNK:]
    chunks = []
    for i in range(0, len(rest), CHUNK):
        part = rest[i : i + CHUNK]
        chunks.append(([p["id"] for p in part], {"post_stream": {"posts": part}, "id": t.id}))
    return topic, chunks


def discourse_routes(c: Community) -> dict[tuple[str, Any], Any]:
    """Every response the demo forum serves, keyed by (path, exact query)."""
    routes: dict[tuple[str, Any], Any] = {("/categories.json", "include_subcategories=true"): render_categories(c)}
    for n, page in enumerate(render_latest_pages(c)):
        routes[("/latest.json", f"order=activity&page={n}")] = page
    for t in c.threads:
        topic, chunks = render_topic(c, t)
        routes[(f"/t/{t.id}.json", None)] = topic
        for ids, body in chunks:
            routes[(f"/t/{t.id}/posts.json", urlencode([("post_ids[]", i) for i in ids]))] = body
    return routes


def serve_discourse(c: Community, server: ReplayServer | None = None) -> ReplayServer:
    """Register the community's routes on `server` (a new ReplayServer if None); the caller starts it."""
    server = server or ReplayServer()
    for (path, query), body in discourse_routes(c).items():
        # Serialised once here rather than on every request: the server sends str bodies as JSON.
        server.add(path, json.dumps(body, separators=(",", ":")), query=query)
    return server


# -- what agora.demo needs (the same names in every platform's demo module) --------------------

#: The forum is the demo's main community: it is built by build_community, not build_platform.
FORUM_TAGS = [
    {"tag": "topic:install", "keywords": ["install", "upgrade", "setup"]},
    {"tag": "topic:docs", "keywords": ["documentation", "docs"]},
    {"tag": "topic:events", "keywords": ["meetup", "community call", "conference"]},
]

#: Drop reasons of its connector the demo's data makes it meet (tests/test_demo.py counts each).
DROPS = ("restricted_category", "deleted", "hidden", "not_public", "unlisted", "action_post")


def community(seed: int) -> Community:
    return build_community(seed)


def serve(c: Community, server: ReplayServer, seed: int) -> None:
    serve_discourse(c, server)


def source(server_url: str) -> dict:
    return {"name": "forum", "type": "discourse", "base_url": server_url, "tags": FORUM_TAGS, "max_retries": 2}
