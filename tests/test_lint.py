"""The repository passes its own linters, so `make test` (and CI) enforces them.

Each tool runs as a subprocess on the whole repository with the committed configuration
(pyproject.toml's [tool.ruff], .sqlfluff); a failure shows the tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*args: str) -> None:
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True)
    report = (proc.stdout + proc.stderr)[-20_000:]
    assert proc.returncode == 0, f"`{' '.join(args)}` exited {proc.returncode}:\n{report}"


def test_ruff_check():
    _run("ruff", "check", ".")


def test_ruff_format():
    _run("ruff", "format", "--check", "--diff", ".")


@pytest.mark.timeout(900)
def test_sqlfluff_models():
    # sqlfluff's dbt templater compiles every model (the same SQL dbt runs) and skips macro
    # files; macros are linted where the models expand them.
    _run("sqlfluff", "lint", "--disable-progress-bar", "dbt_project/models")
