"""Helpers shared by the connector tests that replay JSON route fixtures (tests/data/<platform>/*.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq

from agora.envelope import ENVELOPE_COLUMNS
from agora.replay import ReplayServer, Reply


def load_json_routes(data_dir: Path, server: ReplayServer) -> None:
    """Register every `{path, query, replies}` fixture file of `data_dir` on the server."""
    for p in sorted(data_dir.glob("*.json")):
        spec = json.loads(p.read_text())
        server.add(spec["path"], [Reply(**r) for r in spec["replies"]], query=spec["query"])


def stored_blobs(root: Path) -> list[tuple[Path, bytes]]:
    """Every byte under the data dir, plus the decoded content of Parquet files (compressed on disk)."""
    blobs = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            blobs.append((p, p.read_bytes()))
            if p.suffix == ".parquet":
                blobs.append((p, repr(pq.read_table(p).to_pylist()).encode()))
                blobs.append((p, repr(pq.read_metadata(p).metadata).encode()))
    return blobs


def landed_rows(cfg, source: str) -> list[dict]:
    """Every landed row of one source, checking each file holds exactly the envelope columns."""
    rows = []
    for f in sorted(Path(cfg.path("landing"), source).rglob("*.parquet")):
        table = pq.read_table(f)
        assert tuple(table.schema.names) == ENVELOPE_COLUMNS
        rows += table.to_pylist()
    return rows


def person_values(obj, person_objects: set[str], person_skip: set[str], free_text: set[str], person: bool = False):
    """Every value of a person object (but the harmless keys in `person_skip`) and every free text.

    What a privacy test must never find on disk: handles, names, URLs and ids of people, and bodies.
    """
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k in person_objects and isinstance(v, dict):
                yield from person_values(v, person_objects, person_skip, free_text, True)
            elif person and k not in person_skip and isinstance(v, (str, int)) and not isinstance(v, bool):
                yield str(v)
            elif k in free_text and isinstance(v, str) and v:
                yield v
            else:
                yield from person_values(v, person_objects, person_skip, free_text, person)
    elif isinstance(obj, list):
        for v in obj:
            yield from person_values(v, person_objects, person_skip, free_text, person)
