"""What the Spark tests need, installed when missing: Java 17 from Debian and the locked
`spark` extra (dbt-spark + PySpark 3.5, ~345 MB) into this venv.

`uv sync --inexact` adds the extra without removing anything else; the next plain
`make setup` (uv sync without the extra) removes it again, and the next Spark test module
reinstalls it (~20-30 s from uv's cache).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def ensure_java() -> str:
    """`java` on PATH; installs Debian's openjdk-17-jre-headless when there is none."""
    found = shutil.which("java")
    if found:
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "openjdk-17-jre-headless"], check=True, env=env
    )
    found = shutil.which("java")
    if not found:
        raise RuntimeError("Java could not be installed from Debian packages (openjdk-17-jre-headless)")
    return found


def ensure_spark_extra() -> None:
    """dbt-spark and PySpark from uv.lock (`uv sync --frozen --inexact --extra spark`) when missing."""
    if importlib.util.find_spec("pyspark") and importlib.util.find_spec("dbt.adapters.spark"):
        return
    uv = ROOT / ".tools" / "bin" / "uv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(Path(sys.prefix))}
    subprocess.run(
        [str(uv), "sync", "--frozen", "--inexact", "--quiet", "--extra", "spark"], check=True, cwd=ROOT, env=env
    )
    importlib.invalidate_caches()
    if not importlib.util.find_spec("pyspark"):
        raise RuntimeError("the spark extra did not install pyspark")


def ensure_spark() -> None:
    ensure_java()
    ensure_spark_extra()
