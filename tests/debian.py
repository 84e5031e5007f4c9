"""Debian packages a test needs, installed by the test's setup when missing (root only)."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def ensure_binary(binary: str, package: str) -> str:
    """The path of `binary`; `apt-get install -y <package>` first when it is missing."""
    path = shutil.which(binary)
    if path:
        return path
    if os.geteuid() != 0:
        pytest.fail(f"{binary} is missing and this is not root: apt-get install -y {package}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True, env=env, capture_output=True)
    path = shutil.which(binary)
    assert path, f"apt-get installed {package} but {binary} is not on PATH"
    return path
