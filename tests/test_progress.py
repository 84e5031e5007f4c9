"""Long work shows progress, and CLI processes end cleanly.

`agora extract` runs as a real subprocess with its output piped (not a terminal), against
the recorded Discourse forum replayed on 127.0.0.1 with a 429 + Retry-After on the first
listing page: its plain lines must name the pages fetched, the records read and the wait
with its reason. The landing zone it writes is then checked with `agora validate landing`,
whose stderr (like the extract's) must carry no `nanobind: leaked ...` line at exit.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from agora.config import load_config
from agora.extract import run_extract
from agora.replay import ReplayServer, Reply
from tests.conftest import TEST_KEY, write_config
from tests.test_connector_discourse import REPLIES, THREADS, UNTIL, fixture_routes

AGORA = str(Path(sys.executable).with_name("agora"))
LISTING = ("/latest.json", "order=activity&page=0")


def _forum(server: ReplayServer, retry_after: str) -> None:
    """The recorded forum, its first listing page answered 429 once."""
    for (path, query), body in fixture_routes().items():
        server.add(path, body, query=query)
    server.add(
        LISTING[0],
        [
            Reply(429, {"errors": ["slow down"]}, headers={"Retry-After": retry_after}),
            Reply(body=fixture_routes()[LISTING]),
        ],
        query=LISTING[1],
    )


def _config(directory: Path, url: str) -> Path:
    src = {"name": "forum", "type": "discourse", "base_url": url, "max_retries": 2}
    return write_config(directory, [src], privacy={"staff": [{"platform": "discourse", "account": "41"}]})


def _agora(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AGORA_PSEUDONYM_KEY": TEST_KEY, "AGORA_PROGRESS_EVERY": "0", "COLUMNS": "200"}
    env.pop("AGORA_CONFIG", None)
    return subprocess.run([AGORA, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def extracted(tmp_path_factory):
    """`agora extract` of the forum as a subprocess whose output is a pipe."""
    root = tmp_path_factory.mktemp("progress")
    with ReplayServer() as server:
        _forum(server, retry_after="1")
        config = _config(root, server.url)
        res = _agora(["extract", "-s", "forum", "--until", UNTIL, "-c", str(config)], root)
    assert res.returncode == 0, res.stdout + res.stderr
    return root, config, res


def _counts(lines: list[str]) -> list[tuple[int, int]]:
    found = [re.search(r"extract forum: ([\d,]+) pages fetched, ([\d,]+) records read", line) for line in lines]
    return [(int(m[1].replace(",", "")), int(m[2].replace(",", ""))) for m in found if m]


def test_extract_off_a_terminal_prints_pages_records_and_the_wait(extracted):
    _, _, res = extracted
    lines = res.stderr.splitlines()  # progress goes to stderr; stdout keeps the result table
    assert lines[0] == "extracting forum …", lines  # the step, shown before anything is fetched
    assert not any("extract forum:" in line for line in res.stdout.splitlines())
    assert "landed" in res.stdout  # the result table
    counts = _counts(lines)
    pages = [p for p, _ in counts]
    records = [r for _, r in counts]
    # Every page is reported as it arrives (AGORA_PROGRESS_EVERY=0), and records as they are read.
    assert pages == sorted(pages) and len(set(pages)) >= 5, lines
    assert records == sorted(records) and records[-1] >= THREADS + REPLIES, lines
    waits = [line for line in lines if ": waiting " in line]
    assert len(waits) == 1, lines
    assert re.search(
        r"extract forum: waiting 1\.0 s: rate limited: HTTP 429 on /latest\.json, Retry-After: 1 \(retry 1/2\)",
        waits[0],
    ), waits
    done = [line for line in lines if "landed" in line and "extract forum:" in line]
    assert done and f"landed {THREADS + REPLIES} records in" in done[-1] and "1.0 s spent waiting" in done[-1], lines
    assert not any("\x1b[" in line for line in lines)  # plain lines: no spinner, no colour codes


def test_extract_and_validate_end_without_nanobind_lines(extracted):
    root, config, res = extracted
    assert "nanobind" not in res.stderr
    validate = _agora(["validate", "landing", "-c", str(config)], root)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    assert "landing contract …" in validate.stderr and "landing contract passed" in validate.stdout
    assert "landing contract …" not in validate.stdout  # stdout: the result only
    assert int(re.search(r'"files_checked": (\d+)', validate.stdout)[1]) > 0  # a full first pass: GX and DuckDB ran
    assert "nanobind" not in validate.stderr, validate.stderr[-3000:]
    assert "leaked" not in validate.stderr


def test_without_a_display_an_extract_logs_its_progress(workdir, monkeypatch, caplog):
    """In an Airflow task no CLI display is open: the same lines go to the task's log."""
    monkeypatch.setenv("AGORA_PROGRESS_EVERY", "3600")  # only the first line, the wait and the end
    with ReplayServer() as server:
        _forum(server, retry_after="0.5")
        cfg = load_config(_config(workdir, server.url))
        with caplog.at_level(logging.INFO, logger="agora.progress"):
            summary = run_extract(cfg, "forum", None, UNTIL)
    lines = [r.getMessage() for r in caplog.records if r.name == "agora.progress"]
    assert summary.landed == THREADS + REPLIES
    assert len(lines) == 3, lines
    assert lines[0] == "extract forum: 1 pages fetched, 0 records read"  # categories.json
    assert "waiting 0.5 s: rate limited: HTTP 429 on /latest.json, Retry-After: 0.5" in lines[1]
    assert re.fullmatch(
        rf"extract forum: \d+ pages fetched, {THREADS + REPLIES} records read, 1 quarantined, "
        rf"0\.5 s spent waiting; landed {THREADS + REPLIES} records in \d+ files",
        lines[2],
    ), lines[2]
