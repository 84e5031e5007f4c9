"""`python -m bench --landing s3`: the same pipeline with landing, state and quarantine in a bucket.

The store is the one the AWS_* environment variables name (any S3 API, the bucket must
exist), or else a moto server started on 127.0.0.1 for the run (bench/s3_server.py) and
stopped by PID at its end. Credentials reach agora only through those variables; the
bench's agora.yml holds `s3://` URLs and nothing else.

The generator writes the landing files once, locally; they are uploaded to the bucket
(timed apart, as extraction would have written them there), so both runs read identical
data and must publish identical marts.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CONFIG = """\
# Written by `python -m bench --landing s3`: landing, state and quarantine in the bucket;
# endpoint and credentials come from the AWS_* environment variables only.
community: Bench
privacy: {{k_min: 5}}
paths: {{landing: {root}/landing, state: {root}/state, quarantine: {root}/quarantine, warehouse: warehouse}}
sources:
  - {{name: forum, type: discourse, base_url: https://forum.invalid}}
"""


@contextmanager
def object_store(bucket: str) -> Iterator[dict[str, Any]]:
    """Where the run's bucket lives: the AWS_* store if `AWS_ENDPOINT_URL` is set, else a local moto server."""
    import s3fs

    if os.environ.get("AWS_ENDPOINT_URL"):
        s3fs.S3FileSystem.clear_instance_cache()
        yield {"store": "AWS_* environment", "bucket": bucket}
        return
    from agora.environ import environ_set
    from bench.s3_server import moto_server

    # dbt runs in a child process: it inherits the variables.
    with moto_server((bucket,)) as env, environ_set(env):
        s3fs.S3FileSystem.clear_instance_cache()
        try:
            yield {"store": f"moto server on {env['AWS_ENDPOINT_URL'].removeprefix('http://')}", "bucket": bucket}
        finally:
            s3fs.S3FileSystem.clear_instance_cache()


def s3_config(work: Path, bucket: str) -> Any:
    """`<work>/s3/agora.yml`: landing/state/quarantine under s3://bucket/bench, warehouse local."""
    from agora.config import load_config

    (work / "s3").mkdir()
    (work / "s3" / "agora.yml").write_text(CONFIG.format(root=f"s3://{bucket}/bench"))
    return load_config(work / "s3" / "agora.yml")


def upload(local_root: str, paths: list[str], landing_url: str) -> dict[str, Any]:
    """Copy the generated files to the same keys under `landing_url` (one batched put)."""
    from agora.storage import fs_of

    fs, root = fs_of(landing_url)
    remote = [f"{root}/{os.path.relpath(p, local_root)}" for p in paths]
    fs.put(list(paths), remote)
    return {"objects": len(remote), "bytes": sum(os.path.getsize(p) for p in paths)}


def objects_under(url: str) -> dict[str, int]:
    """Objects per top-level prefix under `url` (s3://bucket/bench): what the run wrote there."""
    from agora.storage import fs_of

    fs, root = fs_of(url)
    fs.invalidate_cache()
    counts: dict[str, int] = {}
    for key in fs.find(root):
        top = key.removeprefix(root + "/").split("/", 1)[0]
        counts[top] = counts.get(top, 0) + 1
    return counts


def marts_differ(serving_a: str, serving_b: str) -> list[str]:
    """Mart tables whose rows differ between two serving files (either way, duplicates counted)."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"attach '{serving_a}' as a (read_only)")
        con.execute(f"attach '{serving_b}' as b (read_only)")

        def tables(db: str) -> set[str]:
            rows = con.execute(
                "select table_schema || '.' || table_name from information_schema.tables where table_catalog = ?",
                [db],
            ).fetchall()
            return {r[0] for r in rows}

        names_a, names_b = tables("a"), tables("b")
        differ = sorted(names_a ^ names_b)
        for name in sorted(names_a & names_b):
            q = f"select count(*) from (from a.{name} except all from b.{name})"  # noqa: S608
            q2 = f"select count(*) from (from b.{name} except all from a.{name})"  # noqa: S608
            if con.execute(q).fetchone()[0] or con.execute(q2).fetchone()[0]:
                differ.append(name)
        return differ
    finally:
        con.close()
