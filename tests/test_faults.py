"""Faults × connectors: whatever the network or the input does, every good record lands
exactly once, every bad one is quarantined with its reason, and a run that cannot finish
fails clearly, lands nothing and leaves the cursor where it was.

The matrix (targets, faults, what each fault does to the recorded responses) is in
tests/fault_matrix.py; each case runs `run_extract` for real against `FaultServer`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_config
from fault_matrix import (
    FAULTS,
    NEW_FIELD,
    NEW_FIELD_VALUE,
    Fault,
    FaultServer,
    Routes,
    Target,
    source_config,
    targets,
    window_of,
)

from agora.config import load_config
from agora.envelope import ENVELOPE_COLUMNS
from agora.extract import run_extract
from agora.landing import landing_files, read_state, write_state
from connectors.http import HttpError

TARGETS = targets()


@dataclass(frozen=True)
class Baseline:
    ids: frozenset[str]
    quarantined: int
    requests: int


_baselines: dict[str, Baseline] = {}


def serve(server: FaultServer, routes: Routes) -> None:
    for (path, query), replies in routes.items():
        server.add(path, replies, query=query)


def configure(t: Target, workdir: Path, url: str, settings: dict):
    return load_config(write_config(workdir, [source_config(t, url, settings)]))


def landed_rows(cfg, source: str) -> list[dict]:
    rows = []
    for f in landing_files(cfg.path("landing"), source):
        table = pq.read_table(f)
        assert tuple(table.schema.names) == ENVELOPE_COLUMNS  # a new API field never becomes a column
        rows += table.to_pylist()
    return rows


def quarantine_rows(cfg, source: str) -> list[dict]:
    return [
        r for f in sorted(Path(cfg.path("quarantine"), source).rglob("*.parquet")) for r in pq.read_table(f).to_pylist()
    ]


def baseline(t: Target, tmp_path_factory) -> Baseline:
    """The happy path's landed record ids, quarantine count and request count."""
    if t.name not in _baselines:
        workdir = tmp_path_factory.mktemp(f"baseline-{t.name}")
        with FaultServer() as server:
            serve(server, t.routes())
            cfg = configure(t, workdir, server.url, {})
            summary = run_extract(cfg, t.name, *window_of(t))
            ids = frozenset(r["record_id"] for r in landed_rows(cfg, t.name))
            assert ids and len(ids) == summary.landed
            _baselines[t.name] = Baseline(ids, summary.quarantined, len(server.requests))
    return _baselines[t.name]


def stored_bytes(root: Path) -> bytes:
    """Everything on disk, with Parquet files also decoded (their pages are compressed)."""
    blobs = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            blobs.append(p.read_bytes())
            if p.suffix == ".parquet":
                blobs.append(repr(pq.read_table(p).to_pylist()).encode())
    return b"\n".join(blobs)


CASES = [pytest.param(t, f, id=f"{t.name}-{f.name}") for t in TARGETS for f in FAULTS]


@pytest.mark.parametrize(("t", "fault"), CASES)
def test_fault(t: Target, fault: Fault, workdir, monkeypatch, tmp_path_factory):
    for k, v in t.env.items():
        monkeypatch.setenv(k, v)
    base = baseline(t, tmp_path_factory)
    since, until = window_of(t)
    routes = t.routes()
    with FaultServer() as server:
        plan = fault.inject(t, routes, server, set(base.ids))
        serve(server, routes)
        cfg = configure(t, workdir, server.url, fault.settings)

        if fault.outcome == "fails":
            # A previous run left the cursor at `since`; this run starts from it and breaks.
            write_state(cfg.path("state"), t.name, {"cursor": since.isoformat()})
            with pytest.raises(HttpError) as failed:
                run_extract(cfg, t.name, None, until)
            message = str(failed.value)
            assert fault.message in message and t.pages[1][0] in message, message
            assert "\n" not in message
            assert landing_files(cfg.path("landing"), t.name) == []  # nothing half-landed
            assert not Path(cfg.path("quarantine")).exists()
            assert read_state(cfg.path("state"), t.name) == {"cursor": since.isoformat()}  # cursor kept
            # The network recovers: the next scheduled run picks up the same window, whole.
            serve(server, t.routes())
            summary = run_extract(cfg, t.name, None, until)
            assert summary.since == since
            assert {r["record_id"] for r in landed_rows(cfg, t.name)} == base.ids
            assert read_state(cfg.path("state"), t.name)["cursor"] == until.isoformat()
            return

        started = time.monotonic()
        summary = run_extract(cfg, t.name, since, until)
        seconds = time.monotonic() - started
        requests = len(server.requests)

    rows = landed_rows(cfg, t.name)
    keys = [(r["record_type"], r["record_id"]) for r in rows]
    assert len(keys) == len(set(keys)), "a record landed twice"
    assert {r["record_id"] for r in rows} == base.ids - plan.lost
    assert summary.landed == len(rows)
    assert all(since <= r["occurred_at"] < until for r in rows)
    assert summary.quarantined == base.quarantined + plan.quarantined
    if plan.reason:
        reasons = [q["reason"] for q in quarantine_rows(cfg, t.name)]
        assert any(plan.reason in r for r in reasons), reasons
    if plan.retried:
        assert requests > base.requests
    assert seconds >= plan.waited
    assert read_state(cfg.path("state"), t.name)["cursor"] == until.isoformat()
    # An unexpected field is never read: not its value anywhere, not its name in landing
    # (quarantine keeps the key names of a rejected payload, by design).
    assert NEW_FIELD_VALUE.encode() not in stored_bytes(workdir / "data")
    assert NEW_FIELD.encode() not in stored_bytes(Path(cfg.path("landing")))


def test_the_matrix_covers_every_http_connector():
    from connectors.base import _REGISTRY

    http_types = {t for t, (module, _) in _REGISTRY.items() if module != "connectors.team"}
    assert {t.name for t in TARGETS} == http_types


# --- agora.yml faults: one line naming the key, exit code 2, nothing written ------------


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("agora")), *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


GOOD = {"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        ([{**GOOD, "type": "myspace"}], "sources.0: unknown source type 'myspace'"),
        ([GOOD, GOOD], "duplicate source name 'forum'"),
        ([{**GOOD, "base_url": "not a url"}], "sources.0.base_url:"),
    ],
    ids=["unknown source type", "duplicate source name", "bad URL"],
)
def test_cli_rejects_a_bad_config_with_exit_2_and_writes_nothing(tmp_path, sources, expected):
    """test_config.py covers the CLI for a typo'd key, a bad URL scheme and a missing key variable;
    these are the issue's other cases, through the CLI too."""
    path = write_config(tmp_path, sources)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    res = _cli(["extract", "--config", str(path), "--source", "forum"], tmp_path)
    assert res.returncode == 2, res.stderr
    assert expected in " ".join(res.stderr.split()), res.stderr
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_cli_config_error_is_one_line_when_stderr_is_not_a_terminal(tmp_path):
    path = write_config(tmp_path, [{**GOOD, "type": "myspace"}])
    res = _cli(["extract", "--config", str(path), "--source", "forum"], tmp_path)
    assert res.returncode == 2
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
