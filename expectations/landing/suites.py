"""The two suites (GX) over the scratch database, and which files hold the offending rows."""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from typing import Any

import fsspec

from agora.config import AgoraConfig
from expectations.landing.checks import COLUMNS_CHECK, FILE_COLUMNS, FILES, ROW_CHECKS, ROWS, SAMPLE_IDS, Check
from expectations.landing.files import LandingFile, is_local, relative, sample_ids
from expectations.landing.scratch import Scratch, load_landing, prepare_db
from expectations.result import ContractError, ContractResult, Failure


def run_checks(
    cfg: AgoraConfig,
    *,
    db_files: list[LandingFile],
    validated: list[str],
    fs: fsspec.AbstractFileSystem,
    result: ContractResult,
    tombstones: set[str] = frozenset(),
) -> dict[str, list[dict[str, Any]]]:
    """Both suites over the files to check; returns {file url: its reason.json entries}."""
    from expectations.gx_duckdb import ephemeral_context

    by_url = {f.url: f for f in db_files}
    problems: dict[str, list[dict[str, Any]]] = defaultdict(list)
    tmp = tempfile.mkdtemp(prefix="agora-landing-contract-")  # where DuckDB spills past its memory cap
    db = None
    try:
        db = Scratch(tmp)
        if not is_local(fs):
            db.con.register_filesystem(fs)  # DuckDB reads the objects through fsspec: no extension download
        prepare_db(db, db_files, tombstones)
        context = ephemeral_context()

        failed = _run_suite(context, db, FILE_COLUMNS, (COLUMNS_CHECK,))
        result.expectations_evaluated += 1
        result.expectations_passed += not failed
        bad_schema = _locate_columns(db) if failed else {}
        if bad_schema:
            result.failures.append(
                Failure(
                    "landing",
                    COLUMNS_CHECK.name,
                    sum(by_url[u].rows for u in bad_schema),
                    [by_url[u].rel for u in sorted(bad_schema)],
                    detail="columns: " + ", ".join(sorted({c for cols in bad_schema.values() for c in cols})),
                )
            )
            for u, cols in bad_schema.items():
                problems[u].append(
                    {
                        "expectation": COLUMNS_CHECK.name,
                        "description": COLUMNS_CHECK.description,
                        "rows": by_url[u].rows,
                        "columns": cols,
                        "sample_record_ids": sample_ids(fs, u),
                    }
                )

        good = [f for f in db_files if f.url not in bad_schema]
        if good:
            load_landing(db, good, validated)
            failed = _run_suite(context, db, ROWS, ROW_CHECKS)
            result.expectations_evaluated += len(ROW_CHECKS)
            result.expectations_passed += len(ROW_CHECKS) - len(failed)
            for check in ROW_CHECKS:
                if check.name not in failed:
                    continue
                located = _locate(db, check, ROWS)
                result.failures.append(
                    Failure("landing", check.name, failed[check.name], [_rel_of(cfg, u) for u in sorted(located)])
                )
                for u, (n, ids) in located.items():
                    problems[u].append(
                        {
                            "expectation": check.name,
                            "description": check.description,
                            "rows": n,
                            "sample_record_ids": ids,
                        }
                    )
    finally:
        if db is not None:
            db.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return problems


def _run_suite(context: Any, db: Scratch, table: str, checks: tuple[Check, ...]) -> dict[str, int]:
    """Validate one table with GX; return {check name: offending rows} for the failed checks.

    The datasource is closed before returning, so it holds no connection to the scratch database.
    """
    import great_expectations as gx

    from expectations.gx_duckdb import (
        UnexpectedRowCountExpectation,
        close_datasource,
        gx_braces,
    )

    datasource = context.data_sources.add_duckdb(
        name=f"landing_contract_{table}", connection_string=db.url, kwargs=db.engine_kwargs
    )
    try:
        batch = datasource.add_table_asset(name=table, table_name=table).add_batch_definition_whole_table("all")
        suite = gx.ExpectationSuite(
            name=f"landing.{table}",
            expectations=[
                UnexpectedRowCountExpectation(
                    unexpected_rows_query=gx_braces(c.sql), description=c.description, meta={"check": c.name}
                )
                for c in checks
            ],
        )
        result = batch.get_batch().validate(suite)
    finally:
        close_datasource(datasource)
    failed: dict[str, int] = {}
    for r in result.results:
        name = r.expectation_config.meta["check"]
        if r.exception_info and r.exception_info.get("raised_exception"):
            raise ContractError(f"landing: {name} could not be evaluated: {r.exception_info.get('exception_message')}")
        if not r.success:
            failed[name] = int(r.result.get("observed_value") or 0)
    return failed


def _locate(db: Scratch, check: Check, table: str) -> dict[str, tuple[int, list[str]]]:
    """Offending rows per file, with a few record ids (never actors or text)."""
    rows_sql = check.sql.replace("{batch}", table)
    found = db.con.execute(
        f"select filename, count(*), array_slice(list(distinct record_id order by record_id), 1, {SAMPLE_IDS}) "  # noqa: S608
        f"from ({rows_sql}) as offending join {FILES} using (file_id) group by filename"
    ).fetchall()
    return {f: (n, [i for i in ids if i is not None]) for f, n, ids in found}


def _locate_columns(db: Scratch) -> dict[str, list[str]]:
    """Files failing the column check, with the unexpected, mistyped or missing column names."""
    rows_sql = COLUMNS_CHECK.sql.replace("{batch}", FILE_COLUMNS)
    found = db.con.execute(
        f"select filename, list(distinct column_name order by column_name) from ({rows_sql}) as offending "  # noqa: S608
        "group by filename"
    ).fetchall()
    return {f: cols for f, cols in found}


def _rel_of(cfg: AgoraConfig, url: str) -> str:
    """<source>/dt=<day>/<name> of a landing file URL (checked or only compared)."""
    fs, root_path = fsspec.core.url_to_fs(cfg.path("landing"))
    return relative(root_path.rstrip("/"), fs._strip_protocol(url))
