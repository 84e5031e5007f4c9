"""Shared fixtures. Area-specific fixtures live next to their tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))

TEST_KEY = "test-pseudonym-key-0123456789abcdef"
# Every mart the dbt project builds (one model file each), for tests comparing them all.
MARTS = tuple(sorted(p.stem for p in (ROOT / "dbt_project" / "models" / "marts").glob("*.sql")))


@pytest.fixture(autouse=True, scope="module")
def _module_pseudonym_key():
    """Module fixtures (a warehouse or a demo built once per file) run with the tests' key.

    Autouse fixtures come first within their scope, so this is set before any other module
    fixture, and undone after the module: a demo started there (which would otherwise
    generate a key into os.environ) cannot change the key of later modules' fixtures.
    """
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AGORA_PSEUDONYM_KEY", TEST_KEY)
        yield


@pytest.fixture(autouse=True)
def _pseudonym_key(monkeypatch):
    """Every test runs with a known key; real keys come from the environment only."""
    monkeypatch.setenv("AGORA_PSEUDONYM_KEY", TEST_KEY)


@pytest.fixture
def workdir(tmp_path, monkeypatch) -> Path:
    """A clean directory holding a community's config and data/."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write_config(directory: Path, sources: list[dict], **extra) -> Path:
    """Write an agora.yml into `directory` and return its path."""
    import yaml

    cfg = {"community": "Test community", "sources": sources, **extra}
    path = directory / "agora.yml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def error_lines(stderr: str) -> list[str]:
    """stderr's lines without the CLI's progress lines (`step …`, printed off a terminal)."""
    return [ln for ln in stderr.splitlines() if ln.strip() and not ln.endswith(" …")]


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL on 127.0.0.1 (see tests/postgres.py), shared by the session."""
    from tests.postgres import start_postgres

    server = start_postgres()
    try:
        yield server
    finally:
        server.stop()
