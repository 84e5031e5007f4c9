"""Rebuild tag_timeline.yaml from Mastodon.py's recorded cassettes (see README.md).

Run from the repository root with the shared corpora next to it:
    .venv/bin/python tests/data/mastodon/make_cassette.py
The statuses are the 37 real ones icosahedron.website returned in Mastodon.py's
`test_entity_partialaccountwithavatar` recording, unchanged, newest first, served as a
hashtag timeline in pages of 15 with the recording's own headers and Mastodon's `Link`
paging (the last page's next link returns an empty page, as Mastodon does). Two items
are written here because the recording has none: a status by a bot account and a
reblog (which a tag timeline should never carry; the connector must drop it anyway).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[2].parent / "shared" / "corpora" / "mastodon-api"
HOST = "https://icosahedron.website"
HASHTAG = "fediverse"
PAGE_SIZE = 15
KEEP_HEADERS = (
    "cache-control",
    "content-type",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)


class Block(str):
    """Written as a YAML literal block, so a reviewer can read the JSON."""


yaml.SafeDumper.add_representer(Block, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))


def mastodon_id(at: str) -> str:
    """A status id as Mastodon mints them (milliseconds << 16, plus a sequence)."""
    ms = int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
    return str((ms << 16) + 4242)


def recorded() -> tuple[list[dict], dict]:
    doc = yaml.safe_load((CORPUS / "test_entity_partialaccountwithavatar.yaml").read_text())
    resp = doc["interactions"][0]["response"]
    body = json.loads(resp["body"]["string"])
    headers = {k.lower(): v for k, v in resp["headers"].items() if k.lower() in KEEP_HEADERS}
    return body["statuses"], headers


def written(statuses: list[dict]) -> list[dict]:
    by_id = {s["id"]: s for s in statuses}
    bot_at = "2026-04-11T16:30:00.000Z"
    bot_account = {
        **{k: v for k, v in by_id["116386066936197501"]["account"].items() if k not in ("emojis", "fields", "roles")},
        "id": "109999999999999999",
        "username": "agora_fixture_bot",
        "acct": "agora_fixture_bot@bots.example",
        "display_name": "Agora Fixture Bot",
        "note": "<p>Posts build results.</p>",
        "url": "https://bots.example/@agora_fixture_bot",
        "uri": "https://bots.example/users/agora_fixture_bot",
        "avatar": "https://bots.example/avatars/agora_fixture_bot.png",
        "avatar_static": "https://bots.example/avatars/agora_fixture_bot.png",
        "bot": True,
        "locked": False,
        "discoverable": True,
        "indexable": True,
        "noindex": False,
        "emojis": [],
        "fields": [],
    }
    bot_id = mastodon_id(bot_at)
    bot_status = {
        **{k: v for k, v in by_id["116386066936197501"].items() if k not in ("account", "media_attachments", "card")},
        "id": bot_id,
        "created_at": bot_at,
        "uri": f"https://bots.example/users/agora_fixture_bot/statuses/{bot_id}",
        "url": f"https://bots.example/@agora_fixture_bot/{bot_id}",
        "content": '<p>Nightly build passed. <a href="https://bots.example/tags/fediverse">#fediverse</a></p>',
        "account": bot_account,
        "media_attachments": [],
        "card": None,
    }
    reblogged = by_id["116386304083189708"]
    reblog_at = "2026-04-11T13:30:00.000Z"
    reblog_id = mastodon_id(reblog_at)
    reblog = {
        **{k: v for k, v in by_id["116386066936197501"].items() if k not in ("media_attachments", "card")},
        "id": reblog_id,
        "created_at": reblog_at,
        "in_reply_to_id": None,
        "in_reply_to_account_id": None,
        "content": "",
        "uri": f"{HOST}/users/halcy/statuses/{reblog_id}/activity",
        "url": None,
        "media_attachments": [],
        "card": None,
        "reblog": copy.deepcopy(reblogged),
    }
    return [bot_status, reblog]


def link(max_id: str | None, min_id: str) -> str:
    base = f"{{base_url}}/api/v1/timelines/tag/{HASHTAG}?limit={PAGE_SIZE}"
    prev = f'<{base}&min_id={min_id}>; rel="prev"'
    return f'<{base}&max_id={max_id}>; rel="next", {prev}' if max_id else prev


def interaction(query: str, body: list, headers: dict) -> dict:
    return {
        "request": {
            "body": None,
            "headers": {"Authorization": ["Bearer REDACTED"]},
            "method": "GET",
            "uri": f"{HOST}/api/v1/timelines/tag/{HASHTAG}?{query}",
        },
        "response": {
            "body": {"string": Block(json.dumps(body, ensure_ascii=False, indent=1))},
            "headers": headers,
            "status": {"code": 200, "message": "OK"},
        },
    }


def main() -> None:
    statuses, headers = recorded()
    timeline = sorted(statuses + written(statuses), key=lambda s: int(s["id"]), reverse=True)
    pages = [timeline[i : i + PAGE_SIZE] for i in range(0, len(timeline), PAGE_SIZE)]
    interactions = []
    query = f"limit={PAGE_SIZE}"
    remaining = int(headers["x-ratelimit-remaining"][0])
    for n, page in enumerate(pages):
        h = copy.deepcopy(headers)
        h["x-ratelimit-remaining"] = [str(remaining - n)]
        h["link"] = [link(page[-1]["id"], page[0]["id"])]
        interactions.append(interaction(query, page, h))
        query = f"limit={PAGE_SIZE}&max_id={page[-1]['id']}"
    last = copy.deepcopy(headers)  # Mastodon answers past the end with [] and no Link
    last["x-ratelimit-remaining"] = [str(remaining - len(pages))]
    interactions.append(interaction(query, [], last))
    out = HERE / "tag_timeline.yaml"
    out.write_text(yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False, allow_unicode=True))
    print(f"wrote {out}: {len(timeline)} statuses in {len(pages)} pages + an empty one")
    for n, page in enumerate(pages, 1):
        print(f"  page {n}: {page[0]['created_at']} .. {page[-1]['created_at']}")


if __name__ == "__main__":
    main()
