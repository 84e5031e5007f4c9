"""Landing, state and quarantine on S3, against a real S3 API (moto's server on 127.0.0.1).

Extract, the landing contract, dbt on DuckDB reading landing Parquet from the bucket,
publish, the summary, privacy (erasure rewrites objects; tombstones and audit in the
bucket), retention, the erasure race, and the one-line errors for a missing bucket or
refused credentials. Endpoint and credentials reach agora only as AWS_* variables.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from agora import pipeline, privacy
from agora.config import load_config
from agora.extract import run_extract
from agora.landing import landing_files, read_state
from agora.tombstones import load_tombstones
from tests.conftest import error_lines, write_config
from tests.s3 import SECRET_KEY, all_objects, moto_server
from tests.test_connector_discourse import fixture_routes
from tests.test_privacy import SINCE, UNTIL, GatedServer, _p, _requests, check_erasure_won, erasure_race, race_config

BUCKET = "agora-test"


@pytest.fixture(scope="module")
def s3():
    import s3fs

    with moto_server((BUCKET,)) as env, pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        s3fs.S3FileSystem.clear_instance_cache()
        yield env
    s3fs.S3FileSystem.clear_instance_cache()


def s3_paths(prefix: str, bucket: str = BUCKET) -> dict:
    return {k: f"s3://{bucket}/{prefix}/{k}" for k in ("landing", "state", "quarantine")}


def s3_config(workdir: Path, url: str, prefix: str, bucket: str = BUCKET, **privacy_opts):
    return write_config(
        workdir,
        [{"name": "forum", "type": "discourse", "base_url": url, "max_retries": 0}],
        privacy={"requests": "inputs/requests.csv", "k_min": 2, **privacy_opts},
        paths=s3_paths(prefix, bucket),
    )


def values_in(objects: dict[str, bytes]) -> dict[str, bytes]:
    """Raw bytes plus decoded Parquet content (compressed on disk), per key."""
    out = {}
    for key, data in objects.items():
        text = data
        if key.endswith(".parquet"):
            table = pq.read_table(io.BytesIO(data))
            text += repr(table.to_pylist()).encode()
        out[key] = text
    return out


def _agora(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("agora")
    return subprocess.run(
        [str(exe), *args],
        cwd=cwd,
        env={**os.environ, **env, "COLUMNS": "300"},
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_the_pipeline_runs_with_landing_on_s3_and_an_erasure_leaves_only_the_tombstone(s3, workdir):
    from agora.replay import ReplayServer

    with ReplayServer(fixture_routes()) as server:
        cfg = load_config(s3_config(workdir, server.url, "e2e"))
        first = run_extract(cfg, "forum", SINCE, UNTIL)
        assert first.landed > 0 and all(f.startswith(f"s3://{BUCKET}/e2e/landing/forum/dt=") for f in first.files)
        assert read_state(cfg.path("state"), "forum")["cursor"] == "2025-07-01T00:00:00+00:00"
        before = {k: v for k, v in all_objects(s3, BUCKET).items() if "/landing/" in k}
        # The same window again replaces its objects: same keys, same rows.
        again = run_extract(cfg, "forum", SINCE, UNTIL)
        after = {k: v for k, v in all_objects(s3, BUCKET).items() if "/landing/" in k}
        assert again.landed == first.landed and set(after) == set(before)
        assert not [k for k in all_objects(s3, BUCKET) if k.endswith(".tmp")]
        # A crash between writing the objects and the cursor: the retry lands nothing twice.
        run_extract(cfg, "forum", SINCE, "2025-08-01T00:00:00Z", save_state=False)
        assert read_state(cfg.path("state"), "forum")["cursor"] == "2025-07-01T00:00:00+00:00"
        run_extract(cfg, "forum", None, "2025-08-01T00:00:00Z")
        assert read_state(cfg.path("state"), "forum")["cursor"] == "2025-08-01T00:00:00+00:00"

        contract = pipeline.validate_landing(cfg)
        assert contract["files_checked"] == len(landing_files(cfg.path("landing")))
        pipeline.build(cfg)
        pipeline.validate_marts(cfg)
        pipeline.publish(cfg)
        import duckdb

        from agora.warehouse import warehouse_path

        con = duckdb.connect(warehouse_path(cfg), read_only=True)
        try:
            keys = con.execute(
                "select count(*), count(distinct (source, record_type, record_id)) from staging.stg_landing__events"
            ).fetchone()
        finally:
            con.close()
        assert keys[0] == keys[1] >= first.landed  # reruns and the crashed window: no duplicates
        month, lines = pipeline.kpi_summary(cfg)
        assert month is not None and lines
        summary = _agora(["summary", "--config", str(workdir / "agora.yml")], workdir, s3)
        assert summary.returncode == 0, summary.stderr

        gone = _p("discourse", "91")
        assert any(gone.encode() in v for v in values_in(all_objects(s3, BUCKET)).values())
        _requests(workdir / "inputs" / "requests.csv", [("discourse", "91", "erasure", "2025-07-02")])
        res = privacy.apply_requests(cfg)
        assert res.completion.requests_completed == 1 and res.completion.rebuilt
    holding = sorted(k for k, v in values_in(all_objects(s3, BUCKET)).items() if gone.encode() in v)
    assert holding == ["e2e/state/tombstones.txt"]
    assert gone in load_tombstones(cfg.path("state"))
    assert privacy.read_audit(cfg)[-1]["status"] == "completed"
    # Retention on the bucket: every partition is older than a year after the window.
    purge = privacy.purge_retention(cfg, "2027-01-01", rebuild=False)
    assert purge.partitions_removed["landing"] > 0
    assert not landing_files(cfg.path("landing"))


def test_an_erasure_applied_while_an_extract_is_fetching_wins_on_s3(s3, workdir):
    with GatedServer(fixture_routes(), "/t/110.json") as server:
        cfg = race_config(workdir, server.url, s3_paths("race"))
        out = erasure_race(cfg, server, workdir)
    check_erasure_won(out)
    objects = values_in(all_objects(s3, BUCKET))
    gone = _p("discourse", "91")
    assert sorted(k for k, v in objects.items() if k.startswith("race/") and gone.encode() in v) == [
        "race/state/tombstones.txt"
    ]


def test_a_missing_bucket_is_one_line_and_exit_2(s3, workdir):
    s3_config(workdir, "http://127.0.0.1:9", "err", bucket="agora-nope")
    proc = _agora(["extract", "--source", "forum", "--config", str(workdir / "agora.yml")], workdir, s3)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and "paths.landing" in lines[0] and "'agora-nope' does not exist" in lines[0], lines
    assert SECRET_KEY not in proc.stdout + proc.stderr


def test_refused_credentials_are_one_line_and_exit_2_and_no_key_is_ever_logged(workdir):
    """A server that checks signatures (moto with IAM): a wrong secret is refused; a right one works, at DEBUG."""
    from agora.replay import ReplayServer

    with moto_server((BUCKET,), auth=True) as env, ReplayServer(fixture_routes()) as server:
        s3_config(workdir, server.url, "auth")
        args = ["extract", "--source", "forum", "--since", SINCE, "--until", UNTIL]
        args += ["--config", str(workdir / "agora.yml")]
        wrong = _agora(args, workdir, {**env, "AWS_SECRET_ACCESS_KEY": "wrong-" + env["AWS_SECRET_ACCESS_KEY"]})
        right = _agora(["-v", *args], workdir, env)  # DEBUG logging: botocore must still not print keys
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    lines = error_lines(wrong.stderr)
    assert len(lines) == 1 and "paths.landing" in lines[0] and f"bucket {BUCKET!r}" in lines[0], lines
    assert right.returncode == 0, right.stderr
    assert "landed" in right.stdout
    for proc in (wrong, right):
        text = proc.stdout + proc.stderr
        assert env["AWS_SECRET_ACCESS_KEY"] not in text and env["AWS_ACCESS_KEY_ID"] not in text


def test_the_s3_lock_serialises_writers_and_frees_a_dead_holders_lease(s3, monkeypatch):
    import json
    import threading
    import time

    import fsspec

    from agora import locks
    from agora.pseudonym import pseudonym
    from agora.tombstones import add_tombstones
    from tests.conftest import TEST_KEY

    state = f"s3://{BUCKET}/locks-test/state"

    def add_many(run: int):
        for i in range(40):
            add_tombstones(state, {pseudonym(TEST_KEY, "discourse", f"{run}-{i}")})

    threads = [threading.Thread(target=add_many, args=(run,)) for run in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert len(load_tombstones(state)) == 80  # without the lock, concurrent rewrites drop some

    # A holder died without releasing: its lease object stays, never renewed.
    monkeypatch.setenv("AGORA_LOCK_LEASE_SECONDS", "2")
    fs, _ = fsspec.core.url_to_fs(state)
    fs.pipe_file(locks.lock_url(state, "landing").split("://", 1)[1], json.dumps({"host": "gone", "pid": 1}).encode())
    started = time.monotonic()
    with locks.hold(state, locks.LANDING, timeout=60) as lock:
        assert not lock.lost
    assert 2 <= time.monotonic() - started < 60
    with pytest.raises(locks.LockTimeout):
        with locks.hold(state, locks.LANDING), _other_thread_holds(state):
            pass


class _other_thread_holds:
    """Try to take the lock from another thread with a short timeout, expecting it to time out."""

    def __init__(self, state: str):
        self.state = state

    def __enter__(self):
        import threading

        from agora import locks

        errors: list[BaseException] = []

        def take():
            try:
                with locks.hold(self.state, locks.LANDING, timeout=1):
                    pass
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        t = threading.Thread(target=take)
        t.start()
        t.join(60)
        if errors:
            raise errors[0]
        return self

    def __exit__(self, *exc):
        return False


def test_the_postgresql_landing_load_reads_the_bucket(s3, workdir, postgres):
    """agora.pg_landing reads landing objects through the registered fsspec filesystem (no httpfs)."""
    from agora.pg_landing import PgSettings, load_landing
    from agora.replay import ReplayServer
    from tests.postgres import PASSWORD, SUPERUSER

    with ReplayServer(fixture_routes()) as server:
        cfg = load_config(s3_config(workdir, server.url, "pg"))
        landed = run_extract(cfg, "forum", SINCE, UNTIL).landed
    postgres.create_database("agora_s3_landing")
    settings = PgSettings(postgres.host, postgres.port, SUPERUSER, PASSWORD, "agora_s3_landing")
    first = load_landing(cfg.path("landing"), settings)
    assert first.rows == landed and first.files_loaded == len(landing_files(cfg.path("landing")))
    again = load_landing(cfg.path("landing"), settings)
    assert again.files_loaded == 0 and again.rows == landed  # fingerprints (ETags) unchanged: nothing reloaded
