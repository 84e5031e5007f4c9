"""Build the Bluesky replay fixtures (synthetic people, shapes from the atproto lexicons).

Run: python tests/data/bluesky/build_fixtures.py. Every file is one route of the replay
server: {"path", "query" (exact, or null for any), "replies": [{status, headers, body}]}.
Post views follow app.bsky.feed.defs#postView / #feedViewPost, authors
app.bsky.actor.defs#profileViewBasic (did, handle, displayName, avatar, labels, ...), records
app.bsky.feed.post (text, createdAt, reply.root/parent strong refs, self-labels). Window under
test: 2025-03-01 .. 2025-03-08, limit 3. What each post exercises: README.md.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from urllib.parse import urlencode

HERE = Path(__file__).parent
SINCE, UNTIL = "2025-03-01T00:00:00.000Z", "2025-03-08T00:00:00.000Z"
LIMIT = 3
QUERY = "#agoraproject"
FEED = "at://did:plc:feedgenownerqqqqqqqqqqqqq/app.bsky.feed.generator/agora-devs"
_B32 = "abcdefghijklmnopqrstuvwxyz234567"


def b32(seed: str, n: int) -> str:
    digest = hashlib.sha512(seed.encode()).digest()
    return "".join(_B32[b % 32] for b in digest)[:n]


def did(name: str) -> str:
    return f"did:plc:{b32('did' + name, 24)}"


def cid(name: str) -> str:
    return "bafyrei" + b32("cid" + name, 52)


def person(handle: str, name: str, *, hidden: bool = False) -> dict:
    d = did(handle)
    labels = []
    if hidden:  # the account's own self-label on its profile record
        labels.append(
            {
                "src": d,
                "uri": f"at://{d}/app.bsky.actor.profile/self",
                "cid": cid("profile" + handle),
                "val": "!no-unauthenticated",
                "cts": "2024-11-02T10:00:00.000Z",
            }
        )
    return {
        "did": d,
        "handle": handle,
        "displayName": name,
        "avatar": f"https://cdn.bsky.app/img/avatar/plain/{d}/{cid('avatar' + handle)}@jpeg",
        "associated": {"chat": {"allowIncoming": "following"}},
        "viewer": {"muted": False, "blockedBy": False},
        "labels": labels,
        "createdAt": "2023-08-01T10:00:00.000Z",
    }


ALICE = person("alice-sky.bsky.social", "Alice Skywalker")
BOB = person("bob.example.net", "Bob Bluesky")
CAROL = person("carol-posts.bsky.social", "Carol Poster")
DAVE = person("dave-optout.bsky.social", "Dave Optout")  # tombstoned by the test
MAYA = person("maya.agora-team.org", "Maya Maintainer")  # staff
ERIN = person("erin-elsewhere.bsky.social", "Erin Elsewhere")  # only ever a parent, or in the feed
HIDDEN = person("quiet-one.bsky.social", "Quiet One", hidden=True)  # !no-unauthenticated


class Post:
    def __init__(self, key: str, who: dict, created: str, text: str, parent: Post | None = None, **extra):
        self.key, self.who, self.created, self.text, self.parent = key, who, created, text, parent
        self.indexed = extra.pop("indexed", created)
        self.extra = extra
        self.rkey = b32("rkey" + key, 13)

    @property
    def uri(self) -> str:
        return f"at://{self.who['did']}/app.bsky.feed.post/{self.rkey}"

    @property
    def cid(self) -> str:
        return cid(self.key)

    def root(self) -> Post:
        return self.parent.root() if self.parent else self

    def view(self) -> dict:
        record: dict = {
            "$type": "app.bsky.feed.post",
            "text": self.text,
            "createdAt": self.extra.get("created_at", self.created),
            "langs": ["en"],
        }
        if "#agoraproject" in self.text:
            start = self.text.encode().index(b"#agoraproject")
            record["facets"] = [
                {
                    "index": {"byteStart": start, "byteEnd": start + len("#agoraproject")},
                    "features": [{"$type": "app.bsky.richtext.facet#tag", "tag": "agoraproject"}],
                }
            ]
        if self.parent:
            root = self.root()
            record["reply"] = {
                "root": {"uri": root.uri, "cid": root.cid},
                "parent": {"uri": self.parent.uri, "cid": self.parent.cid},
            }
        if self.extra.get("self_label"):
            record["labels"] = {
                "$type": "com.atproto.label.defs#selfLabels",
                "values": [{"val": self.extra["self_label"]}],
            }
        return {
            "uri": self.uri,
            "cid": self.cid,
            "author": self.who,
            "record": record,
            "bookmarkCount": 0,
            "replyCount": 0,
            "repostCount": 0,
            "likeCount": 2,
            "quoteCount": 0,
            "indexedAt": self.indexed,
            "viewer": {"bookmarked": False, "threadMuted": False, "embeddingDisabled": False},
            "labels": [],
        }


T1 = Post("t1", ALICE, "2025-03-02T10:00:00.000Z", "Release 2.0 of #agoraproject is out!")
T2 = Post("t2", BOB, "2025-03-02T11:00:00.000Z", "Congrats! Upgrading #agoraproject now.", T1)
T3 = Post("t3", ALICE, "2025-03-02T12:00:00.000Z", "Thanks Bob, tell us how the #agoraproject upgrade goes.", T2)
T4 = Post("t4", HIDDEN, "2025-03-03T09:00:00.000Z", "Quietly trying #agoraproject at work.")
T5 = Post("t5", BOB, "2025-03-03T10:00:00.000Z", "Welcome! Ask anything about #agoraproject.", T4)
T6 = Post(
    "t6", CAROL, "2025-03-04T08:00:00.000Z", "Only for logged-in folks: #agoraproject notes.",
    self_label="!no-unauthenticated",
)  # fmt: skip
T7 = Post("t7", DAVE, "2025-03-04T09:00:00.000Z", "My #agoraproject dashboard is live.")
GONE = Post("gone", ERIN, "2025-03-04T20:00:00.000Z", "A post deleted since.")
T8 = Post("t8", ALICE, "2025-03-05T10:00:00.000Z", "Answering a post that was deleted since.", GONE)
T9 = Post("t9", MAYA, "2025-03-06T10:00:00.000Z", "Community call on Thursday #agoraproject meetup")
# createdAt is client-declared: a clock far ahead must not move the post out of its window.
T10 = Post(
    "t10", CAROL, "2025-03-06T11:00:00.000Z", "See you there! #agoraproject", T9, created_at="2025-03-20T11:00:00.000Z"
)
ERINS = Post("erins", ERIN, "2025-02-27T10:00:00.000Z", "Which metrics tools do you use?")
T11 = Post("t11", BOB, "2025-03-07T10:00:00.000Z", "We use #agoraproject for this.", ERINS)
T12 = Post("t12", ERIN, "2025-03-05T12:00:00.000Z", "Agora devs feed test post")
OLD = Post("old", ALICE, "2025-02-27T09:00:00.000Z", "Preparing the 2.0 release.")


def ratelimit(remaining: int) -> dict:
    return {
        "ratelimit-limit": "3000",
        "ratelimit-remaining": str(remaining),
        "ratelimit-reset": "1741000300",
        "ratelimit-policy": "3000;w=300",
    }


def route(name: str, path: str, query: dict | None, body: dict, status: int = 200, remaining: int = 2990) -> None:
    spec = {
        "path": path,
        "query": urlencode(query, doseq=True) if query is not None else None,
        "replies": [{"status": status, "headers": ratelimit(remaining), "body": body}],
    }
    (HERE / f"{name}.json").write_text(json.dumps(spec, indent=1, ensure_ascii=False) + "\n")


def feed_item(post: Post, *, repost_by: dict | None = None, parent_gone: bool = False) -> dict:
    item: dict = {"post": post.view()}
    if post.parent:
        root = post.root()
        parent_view = {"$type": "app.bsky.feed.defs#notFoundPost", "uri": post.parent.uri, "notFound": True}
        root_view = {"$type": "app.bsky.feed.defs#notFoundPost", "uri": root.uri, "notFound": True}
        if not parent_gone:
            parent_view = {"$type": "app.bsky.feed.defs#postView", **post.parent.view()}
            root_view = {"$type": "app.bsky.feed.defs#postView", **root.view()}
        item["reply"] = {"root": root_view, "parent": parent_view}
    if repost_by:
        item["reason"] = {
            "$type": "app.bsky.feed.defs#reasonRepost",
            "by": repost_by,
            "uri": f"at://{repost_by['did']}/app.bsky.feed.repost/{b32('rp', 13)}",
            "indexedAt": "2025-03-05T09:00:00.000Z",
        }
    return item


def main() -> None:
    for p in HERE.glob("*.json"):
        p.unlink()
    search = [T11, T10, T9, T7, T6, T5, T4, T3, T2, T1]  # latest first, by sortAt
    base = {"q": QUERY, "sort": "latest", "limit": LIMIT, "until": UNTIL, "since": SINCE}
    for n in range(0, len(search), LIMIT):
        page = search[n : n + LIMIT]
        body: dict = {"posts": [p.view() for p in page], "hitsTotal": len(search)}
        if n + LIMIT < len(search):
            body["cursor"] = str(n + LIMIT)
        query = base if n == 0 else {**base, "cursor": str(n)}
        route(f"search.page{n // LIMIT + 1}", "/xrpc/app.bsky.feed.searchPosts", query, body, remaining=2999 - n)

    feed = [feed_item(T1, repost_by=BOB), feed_item(T9), feed_item(T12)]
    route("feed", "/xrpc/app.bsky.feed.getFeed", {"feed": FEED, "limit": LIMIT}, {"feed": feed})

    actor = {"actor": ALICE["handle"], "limit": LIMIT, "filter": "posts_with_replies"}
    page1 = {"feed": [feed_item(T8, parent_gone=True), feed_item(T3), feed_item(T1)], "cursor": "2025-03-02T10:00:00Z"}
    route("author_feed.page1", "/xrpc/app.bsky.feed.getAuthorFeed", actor, page1)
    page2 = {"feed": [feed_item(OLD)], "cursor": "2025-02-27T09:00:00Z"}  # past `since`: the last page read
    route("author_feed.page2", "/xrpc/app.bsky.feed.getAuthorFeed", {**actor, "cursor": page1["cursor"]}, page2)
    gone = {"actor": "gone-away.bsky.social", "limit": LIMIT, "filter": "posts_with_replies"}
    route(
        "author_feed_gone",
        "/xrpc/app.bsky.feed.getAuthorFeed",
        gone,
        {"error": "InvalidRequest", "message": "Profile not found"},
        status=400,
    )

    resolve = "/xrpc/com.atproto.identity.resolveHandle"
    route("resolve_alice", resolve, {"handle": ALICE["handle"]}, {"did": ALICE["did"]})
    route(
        "resolve_nobody",
        resolve,
        {"handle": "nobody.bsky.social"},
        {"error": "InvalidRequest", "message": "Unable to resolve handle"},
        status=400,
    )


if __name__ == "__main__":
    main()
