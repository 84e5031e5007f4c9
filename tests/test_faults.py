"""Faults × connectors: the helpers the generated contract suite runs the matrix with
(tests/test_connector_contract.py, `test_fault`), and agora.yml faults through the CLI.

The matrix (targets, faults, what each fault does to the recorded responses) is in
tests/fault_matrix.py; each case runs `run_extract` for real against `FaultServer`.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import write_config
from fault_matrix import (
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
from agora.landing import landing_files

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


def test_the_matrix_covers_every_http_connector():
    from connectors.registry import names

    assert {t.name for t in TARGETS} == set(names(team=False))  # every connector declares its fault_target


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
