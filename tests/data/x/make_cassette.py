"""Rebuild search_recent.yaml from tweepy's recorded cassette (see README.md).

Run from the repository root with the shared corpora next to it:
    .venv/bin/python tests/data/x/make_cassette.py
Page 1 is tweepy's recorded `search/recent` response (ids, text, meta.next_token and
headers as recorded) with the fields Agora requests added: created_at (the time each
post's text states), author_id/conversation_id, and includes.users for the recorded
account. Page 2 is written here to cover what the recording lacks; its accounts (ids,
handles, names) are real public ones from tweepy's other cassettes.
"""

from __future__ import annotations

import copy
import gzip
import json
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import yaml

HERE = Path(__file__).resolve().parent
CORPUS = HERE.parents[2].parent / "shared" / "corpora" / "x-api-v2-tweepy"
KEEP_HEADERS = (
    "api-version",
    "cache-control",
    "content-type",
    "date",
    "server",
    "x-access-level",
    "x-rate-limit-limit",
    "x-rate-limit-remaining",
    "x-rate-limit-reset",
)

QUERY = {
    "query": "tweepy -is:retweet",
    "max_results": "100",
    "start_time": "2022-10-07T00:00:00Z",
    "end_time": "2022-10-08T00:00:00Z",
    "expansions": "author_id,referenced_tweets.id",
    "tweet.fields": "author_id,conversation_id,created_at,in_reply_to_user_id,referenced_tweets,withheld",
    "user.fields": "protected",
}

TWEEPY_DEV = {"id": "1072250532645998596", "name": "Tweepy Testing", "username": "TweepyDev"}  # get_me
TWITTER = {"id": "783214", "name": "Twitter", "username": "Twitter"}  # get_users
TWITTER_DEV = {"id": "2244994945", "name": "Twitter Dev", "username": "TwitterDev"}  # get_users
PATI = {"id": "118589107", "name": "Debashree Pati", "username": "d_pati"}  # get_retweeters
SURYA = {"id": "1438363597428572167", "name": "iamsurya", "username": "iamsury71020583"}  # get_retweeters
LIMMERT = {"id": "77984765", "name": "Dan Limmert", "username": "DanLimmert"}  # get_liking_users
HIRO = {"id": "1342483347302281217", "name": "hiro3pc", "username": "hiro3pc"}  # get_liking_users
QUOTINDER = "1429492556702703617"  # get_retweeters; deliberately absent from includes.users
ANNOUNCEMENT = "1293593516040269825"  # get_tweet: a 2020 post by TwitterDev


def recorded_page() -> tuple[dict, dict]:
    doc = yaml.safe_load((CORPUS / "test_client_search_recent_tweets.yaml").read_text())
    resp = doc["interactions"][0]["response"]
    body = json.loads(gzip.decompress(resp["body"]["string"]))
    headers = {k: v for k, v in resp["headers"].items() if k in KEEP_HEADERS}
    return body, headers


def tweet(id_: str, author: str, at: str, conversation: str | None = None, **extra) -> dict:
    t = {
        "id": id_,
        "edit_history_tweet_ids": [id_],
        "author_id": author,
        "conversation_id": conversation or id_,
        "created_at": at,
    }
    t.update(extra)
    return t


def page_one() -> tuple[dict, dict]:
    body, headers = recorded_page()
    for t in body["data"]:
        stamp = t["text"].split(" tweepy")[0]  # "2022-10-07 22:42:12.637103"
        t.update(
            author_id=TWEEPY_DEV["id"],
            conversation_id=t["id"],
            created_at=stamp.replace(" ", "T")[:23] + "Z",
        )
    body["includes"] = {"users": [{**TWEEPY_DEV, "protected": False}]}
    return body, headers


def sid(at: str, seq: int = 0) -> str:
    """A tweet id as X mints them (Snowflake: milliseconds since 2010-11-04 << 22)."""
    ms = int(datetime.fromisoformat(at.replace("Z", "+00:00")).timestamp() * 1000)
    return str(((ms - 1288834974657) << 22) + seq)


def page_two() -> dict:
    at = {
        "root": "2022-10-07T20:50:12.636Z",
        "announce_reply": "2022-10-07T20:55:00.000Z",
        "r1": "2022-10-07T21:10:01.000Z",
        "r2": "2022-10-07T21:20:02.000Z",
        "r3": "2022-10-07T21:30:03.000Z",
        "malformed": "2022-10-07T21:35:00.000Z",
        "quote": "2022-10-07T21:40:00.000Z",
        "retweet": "2022-10-07T21:45:00.000Z",
        "protected_thread": "2022-10-07T21:50:00.000Z",
        "protected_reply": "2022-10-07T21:55:00.000Z",
        "withheld": "2022-10-07T22:00:00.000Z",
        "unknown_author": "2022-10-07T22:05:00.000Z",
    }
    ids = {k: sid(v, 4097) for k, v in at.items()}
    root = ids["root"]

    def reply(key: str, author: dict, parent: str, parent_author: dict, text: str, conversation: str = root) -> dict:
        return tweet(
            ids[key],
            author["id"],
            at[key],
            conversation,
            text=text,
            in_reply_to_user_id=parent_author["id"],
            referenced_tweets=[{"type": "replied_to", "id": parent}],
        )

    data = [
        tweet(ids["unknown_author"], QUOTINDER, at["unknown_author"], text="tweepy tip of the day"),
        tweet(
            ids["withheld"],
            SURYA["id"],
            at["withheld"],
            text="tweepy bot tutorial",
            withheld={"copyright": False, "country_codes": ["DE", "FR"]},
        ),
        reply("protected_reply", LIMMERT, root, TWEEPY_DEV, "@TweepyDev does tweepy do v2 search?"),
        tweet(ids["protected_thread"], LIMMERT["id"], at["protected_thread"], text="learning tweepy today"),
        tweet(
            ids["retweet"],
            HIRO["id"],
            at["retweet"],
            text="RT @TweepyDev: 2022-10-07 20:50:12.636000 tweepy",
            referenced_tweets=[{"type": "retweeted", "id": root}],
        ),
        tweet(
            ids["quote"],
            TWITTER["id"],
            at["quote"],
            text="Building with tweepy? https://t.co/xxxxxxxxxx",
            referenced_tweets=[{"type": "quoted", "id": ANNOUNCEMENT}],
        ),
        {  # no created_at: quarantined, not landed
            "id": ids["malformed"],
            "edit_history_tweet_ids": [ids["malformed"]],
            "author_id": TWITTER["id"],
            "text": "tweepy",
        },
        reply("r3", TWEEPY_DEV, ids["r2"], PATI, "@d_pati @TwitterDev thanks, fixed in the next tweepy release"),
        reply("r2", PATI, ids["r1"], TWITTER_DEV, "@TwitterDev @TweepyDev same here with tweepy 4.10"),
        reply("r1", TWITTER_DEV, root, TWEEPY_DEV, "@TweepyDev looks good from here"),
        reply(
            "announce_reply",
            TWITTER,
            ANNOUNCEMENT,
            TWITTER_DEV,
            "@TwitterDev tweepy supports this already",
            conversation=ANNOUNCEMENT,
        ),
        tweet(root, TWEEPY_DEV["id"], at["root"], text="2022-10-07 20:50:12.636000 tweepy"),
    ]
    return {
        "data": data,
        "includes": {
            "users": [
                {**u, "protected": u is LIMMERT} for u in (TWEEPY_DEV, TWITTER, TWITTER_DEV, PATI, SURYA, LIMMERT, HIRO)
            ],
            "tweets": [
                {
                    "id": ANNOUNCEMENT,
                    "edit_history_tweet_ids": [ANNOUNCEMENT],
                    "author_id": TWITTER_DEV["id"],
                    "conversation_id": ANNOUNCEMENT,
                    "created_at": "2020-08-12T17:01:42.000Z",
                    "text": "It\u2019s finally here! Say hello to the new #TwitterAPI.",
                },
            ],
        },
        "meta": {"newest_id": data[0]["id"], "oldest_id": root, "result_count": len(data)},
    }


class Block(str):
    """Written as a YAML literal block, so a reviewer can read the JSON."""


yaml.SafeDumper.add_representer(Block, lambda d, v: d.represent_scalar("tag:yaml.org,2002:str", v, style="|"))


def interaction(query: dict, body: dict, headers: dict) -> dict:
    return {
        "request": {
            "body": None,
            "headers": {"Authorization": ["Bearer REDACTED"]},
            "method": "GET",
            "uri": "https://api.twitter.com/2/tweets/search/recent?" + urlencode(query),
        },
        "response": {
            "body": {"string": Block(json.dumps(body, ensure_ascii=False, indent=1))},
            "headers": headers,
            "status": {"code": 200, "message": "OK"},
        },
    }


def main() -> None:
    body1, headers = page_one()
    headers2 = {**copy.deepcopy(headers), "x-rate-limit-remaining": ["447"]}
    doc = {
        "interactions": [
            interaction(QUERY, body1, headers),
            interaction({**QUERY, "next_token": body1["meta"]["next_token"]}, page_two(), headers2),
        ],
        "version": 1,
    }
    out = HERE / "search_recent.yaml"
    out.write_text(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=120))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
