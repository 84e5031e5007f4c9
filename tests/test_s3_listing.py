"""Globs on S3 list flat (agora/s3_listing.py) and find exactly what s3fs's own walk finds.

Against moto's server on 127.0.0.1; the class is what `fsspec.filesystem("s3")` returns in
any process of the environment (the `fsspec.specs` entry point), dbt's included.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import s3fs

from agora.s3_listing import S3FileSystem
from tests.conftest import ROOT
from tests.s3 import moto_server

BUCKET = "agora-listing"
KEYS = [
    "lz/forum/dt=2026-01-01/a.parquet",
    "lz/forum/dt=2026-01-01/b.parquet",
    "lz/forum/dt=2026-01-02/a.parquet",
    "lz/forum/dt=2026-01-02/notes.txt",
    "lz/gh/dt=2026-01-01/c.parquet",
    "lz/gh/dt=2026-01-01/deeper/d.parquet",
    "lz/gh/readme.md",
    "lz/top.parquet",
]
PATTERNS = [
    "lz/*/dt=*/*.parquet",
    "lz/*/dt=*",
    "lz/forum/dt=*/a.parquet",
    "lz/gh/dt=2026-01-0*/*.parquet",
    "lz/*",
    "lz/*.parquet",
]


@pytest.fixture(scope="module")
def store():
    with moto_server((BUCKET,)) as env, pytest.MonkeyPatch.context() as mp:
        for k, v in env.items():
            mp.setenv(k, v)
        s3fs.S3FileSystem.clear_instance_cache()
        walk = s3fs.S3FileSystem(skip_instance_cache=True)
        for key in KEYS:
            walk.pipe(f"{BUCKET}/{key}", b"x")
        yield env
    s3fs.S3FileSystem.clear_instance_cache()


@pytest.mark.parametrize("pattern", PATTERNS)
def test_flat_glob_finds_what_the_walk_finds(store, pattern):
    walk, flat = s3fs.S3FileSystem(skip_instance_cache=True), S3FileSystem(skip_instance_cache=True)
    expected = walk.glob(f"{BUCKET}/{pattern}", detail=True)
    found = flat.glob(f"{BUCKET}/{pattern}", detail=True)
    assert expected  # every pattern matches something, or the comparison proves little
    assert sorted(found) == sorted(expected)
    assert {k: v["type"] for k, v in found.items()} == {k: v["type"] for k, v in expected.items()}


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_find_keeps_its_depth_limit(store, depth):
    walk, flat = s3fs.S3FileSystem(skip_instance_cache=True), S3FileSystem(skip_instance_cache=True)
    for withdirs in (False, True):
        expected = walk.find(f"{BUCKET}/lz", maxdepth=depth, withdirs=withdirs)
        assert flat.find(f"{BUCKET}/lz", maxdepth=depth, withdirs=withdirs) == expected


def test_every_process_gets_it_for_s3_urls():
    code = "import fsspec; print(fsspec.get_filesystem_class('s3').__module__, fsspec.get_filesystem_class('s3a').__module__)"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=dict(os.environ), capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["agora.s3_listing", "agora.s3_listing"]
