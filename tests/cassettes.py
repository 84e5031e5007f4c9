"""Load VCR-style YAML cassettes (vcrpy's format, as tweepy and Mastodon.py record them)
into `ReplayServer` routes, so connectors replay recorded traffic over real HTTP.

Bodies may be text or gzip inside ``!!binary``; they are served decoded. Headers that
describe the recorded transfer (encoding, length, cookies, connection) are dropped: the
replay server sets its own. ``{base_url}`` in a body or header points back at the server.
"""

from __future__ import annotations

import gzip
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from agora.replay import ReplayServer, Reply

_TRANSFER_HEADERS = frozenset(
    {
        "content-encoding",
        "content-length",
        "transfer-encoding",
        "connection",
        "set-cookie",
        "keep-alive",
        "date",
        "server",
    }
)


@dataclass
class Interaction:
    method: str
    path: str
    query: str
    reply: Reply


def _body(raw: object, encoding: str | None) -> str | bytes:
    if raw is None:
        return b""
    if isinstance(raw, bytes):
        data = gzip.decompress(raw) if encoding == "gzip" or raw[:2] == b"\x1f\x8b" else raw
        return data.decode()
    return str(raw)


def load_cassette(path: str | Path) -> list[Interaction]:
    """Every recorded interaction, in order."""
    doc = yaml.safe_load(Path(path).read_text())
    out = []
    for i in doc["interactions"]:
        req, resp = i["request"], i["response"]
        raw_headers = {k.lower(): v for k, v in (resp.get("headers") or {}).items()}
        encoding = (raw_headers.get("content-encoding") or [None])[0]
        headers = {
            k: ", ".join(v) if isinstance(v, list) else str(v)
            for k, v in raw_headers.items()
            if k not in _TRANSFER_HEADERS
        }
        parts = urlsplit(req["uri"])
        reply = Reply(status=resp["status"]["code"], body=_body(resp["body"]["string"], encoding), headers=headers)
        out.append(Interaction(req["method"], parts.path, parts.query, reply))
    return out


def serve_cassette(server: ReplayServer, path: str | Path, *, match_query: bool = True) -> list[Interaction]:
    """Register a cassette's GETs on `server`. With `match_query` a request must carry the
    recorded query exactly (any order), so a connector asking for something else gets a 404.
    Interactions recorded for the same request are served in order."""
    interactions = load_cassette(path)
    grouped: dict[tuple[str, str | None], list[Reply]] = {}
    for it in interactions:
        if it.method == "GET":
            grouped.setdefault((it.path, it.query if match_query else None), []).append(it.reply)
    for (route, query), replies in grouped.items():
        server.add(route, replies, query=query)
    return interactions


# --- privacy checks on what a connector run left on disk -------------------------------

IPV4 = re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}\b")
_PSEUDONYM = re.compile(r"[0-9a-f]{64}")
_PERSON_KEYS = ("username", "acct", "display_name")


def identifiers(interactions: list[Interaction]) -> set[str]:
    """Handles, display names, profile URLs and IP addresses found in recorded bodies.

    `name` counts only in objects that also have a `username` (X users); elsewhere it is
    a tag, an app or a poll option.
    """
    found: set[str] = set()

    def walk(o: object) -> None:
        if isinstance(o, dict):
            person = "username" in o
            for k, v in o.items():
                if (
                    isinstance(v, str)
                    and v.strip()
                    and (k in _PERSON_KEYS or (person and k in ("name", "url", "avatar")))
                ):
                    found.add(v.strip())
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    for it in interactions:
        body = it.reply.body
        if isinstance(body, str) and body.strip():
            found.update(IPV4.findall(body))
            try:
                walk(json.loads(body))
            except ValueError:
                pass
    return {s for s in found if len(s) >= 3}


def leaks(data_dir: Path, needles: set[str]) -> list[str]:
    """Where any needle (or any IPv4 address) appears under `data_dir`; empty when clean.

    Every file's raw bytes are searched (needles long enough not to occur by chance in
    compressed bytes), and every Parquet file is decoded and each value searched too,
    since zstd would hide a plain substring. Pseudonym columns must hold 64-hex HMACs.
    """
    import pyarrow.parquet as pq

    found = []
    files = [p for p in sorted(data_dir.rglob("*")) if p.is_file()]
    assert files, f"nothing under {data_dir}"
    for path in files:
        raw = path.read_bytes()
        for n in needles:
            if len(n) >= 6 and n.encode() in raw:
                found.append(f"{path.name}: raw bytes contain {n!r}")
        if path.suffix == ".parquet":
            table = pq.read_table(path)
            for col in table.column_names:
                for value in table.column(col).to_pylist():
                    for text in value if isinstance(value, list) else [value]:
                        if not isinstance(text, str):
                            continue
                        if col in ("actor", "parent_actor"):
                            if not _PSEUDONYM.fullmatch(text):
                                found.append(f"{path.name}: {col} is not a pseudonym")
                            continue
                        found += [f"{path.name}: {col} contains {n!r}" for n in needles if n in text]
                        if IPV4.search(text):
                            found.append(f"{path.name}: {col} holds an IP address")
        else:
            text = raw.decode(errors="replace")
            found += [f"{path.name}: contains {n!r}" for n in needles if n in text]
            if IPV4.search(text):
                found.append(f"{path.name}: holds an IP address")
    return found
