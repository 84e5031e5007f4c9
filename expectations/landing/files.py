"""The landing files to check: paths, partitions and what their Parquet footers say."""

from __future__ import annotations

import contextlib
import posixpath
from dataclasses import dataclass

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from agora.config import TEAM_PLATFORMS
from expectations.landing.checks import EXPECTED_TYPES, SAMPLE_IDS, type_ok


@dataclass
class LandingFile:
    url: str  # as DuckDB and fsspec see it
    rel: str  # <source>/dt=<day>/<name>, for messages and the ledger
    rows: int
    columns: list[tuple[str, str, bool]]  # name, type, type_ok
    team_file: bool
    fresh: bool = True  # new or changed since the ledger's last pass (not only re-checked by --full)


def relative(root_path: str, path: str) -> str:
    """Path below the landing root (posixpath.relpath costs ~70 us a call: thousands of files)."""
    prefix = root_path + "/"
    return path[len(prefix) :] if path.startswith(prefix) else posixpath.relpath(path, root_path)


def day(rel: str) -> str:
    """The ``dt=`` partition of a landing file (its records' UTC day of occurred_at)."""
    parts = rel.split("/")
    return parts[1] if len(parts) >= 3 else ""


def is_local(fs: fsspec.AbstractFileSystem) -> bool:
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def file_url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    """The file as DuckDB and fsspec see it: a plain path locally, protocol://... otherwise."""
    return path if is_local(fs) else fs.unstrip_protocol(path)


def _platforms(pf: pq.ParquetFile, index: int) -> set | None:
    """Platforms of a file from its row-group statistics, when they pin the set down exactly."""
    found: set = set()
    for g in range(pf.metadata.num_row_groups):
        stats = pf.metadata.row_group(g).column(index).statistics
        if stats is None or not stats.has_min_max or stats.null_count or stats.min != stats.max:
            return None
        found.add(stats.min)
    return found


def inspect_files(fs: fsspec.AbstractFileSystem, root: str, paths: list[str]) -> list[LandingFile]:
    """Footers only (plus the platform column when its statistics do not tell): cheap even for many files."""
    root_path = fs._strip_protocol(root).rstrip("/")
    local = is_local(fs)
    known: dict[pa.Schema, list[tuple[str, str, bool]]] = {}
    out = []
    for p in paths:
        # Local paths go to pyarrow's own reader: a Python file object costs twice as much.
        with contextlib.nullcontext(p) if local else fs.open(p, "rb") as f:
            pf = pq.ParquetFile(f)
            schema = pf.schema_arrow
            platforms: set | None = set()
            if "platform" in schema.names:
                platforms = _platforms(pf, schema.get_field_index("platform"))
                if platforms is None:
                    platforms = set(pf.read(columns=["platform"]).column(0).unique().to_pylist())
            rows = pf.metadata.num_rows
        columns = known.get(schema)
        if columns is None:  # most files share a handful of schemas: judge each once
            columns = known[schema] = [
                (fld.name, str(fld.type), fld.name in EXPECTED_TYPES and type_ok(fld.type, EXPECTED_TYPES[fld.name]))
                for fld in schema
            ]
        out.append(
            LandingFile(
                url=file_url(fs, p),
                rel=relative(root_path, p),
                rows=rows,
                columns=columns,
                team_file=bool(platforms) and platforms <= set(TEAM_PLATFORMS),
            )
        )
    return out


def sample_ids(fs: fsspec.AbstractFileSystem, url: str) -> list[str]:
    """A few record ids of a file, read from the file itself (for one failing the column check)."""
    try:
        with fs.open(url, "rb") as f:
            ids = pq.ParquetFile(f).read(columns=["record_id"]).column(0).to_pylist()
    except Exception:  # noqa: BLE001 - a malformed file may lack the column; ids are only a hint
        return []
    return sorted({i for i in ids if i is not None})[:SAMPLE_IDS]
