"""Great Expectations 1.x on DuckDB: the one fix it needs, and quiet logging.

Why a fix: duckdb-engine's cursors share their connection's single result set, and
GX's default ``execute_query`` runs ``with engine.connect() as c: result = c.execute(q)``
and fetches *after* the block. Leaving the block rolls the connection back, which on
DuckDB discards the pending result, so every metric comes back empty and GX reports
``MetricResolutionError: list index out of range`` (GX issues #10738, #11579).

The fix is what GX already does for SQLite: keep one connection open for the engine's
life. Instead of patching GX, we register a datasource type ``duckdb`` (GX's fluent
datasources register themselves by subclassing, like ``SqliteDatasource``) whose
execution engine keeps that connection; checks are still pushed down to DuckDB.
This module is imported only inside our contract runners (GX costs seconds to import),
never at import of a DAG file.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, Literal

# Must run before GX is imported: its import logs hundreds of INFO lines.
_GX_LOGGER = "great_expectations"


def quiet_gx_logging() -> None:
    """Keep GX's warnings and errors, drop its INFO chatter (it floods Airflow task logs).

    Some GX modules set their own logger to INFO, so the parent's level is not enough.
    """
    logging.getLogger(_GX_LOGGER).setLevel(logging.WARNING)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith(_GX_LOGGER + ".") and isinstance(logger, logging.Logger):
            if logger.level and logger.level < logging.WARNING:
                logger.setLevel(logging.WARNING)


quiet_gx_logging()

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
from great_expectations.data_context.types.base import ProgressBarsConfig  # noqa: E402
from great_expectations.datasource.fluent.sql_datasource import SQLDatasource  # noqa: E402
from great_expectations.execution_engine import SqlAlchemyExecutionEngine  # noqa: E402

quiet_gx_logging()  # again, for the loggers GX's import configured itself

if TYPE_CHECKING:
    import sqlalchemy
    from great_expectations.data_context import AbstractDataContext


class DuckDBExecutionEngine(SqlAlchemyExecutionEngine):
    """SqlAlchemyExecutionEngine that keeps one DuckDB connection open (see module doc)."""

    @contextmanager
    def get_connection(self) -> Iterator[sqlalchemy.Connection]:
        if self._connection is None or self._connection.closed:
            self._connection = self.engine.connect()
        yield self._connection

    def close(self) -> None:
        # The base class only closes a kept connection for its own persisted dialects.
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        self.engine.dispose()


class DuckDBDatasource(SQLDatasource):
    """``context.data_sources.add_duckdb(name, connection_string="duckdb:///path")``."""

    type: Literal["duckdb"] = "duckdb"  # type: ignore[assignment]

    @property
    def execution_engine_type(self) -> builtins.type[SqlAlchemyExecutionEngine]:
        return DuckDBExecutionEngine


class UnexpectedRowCountExpectation(gxe.UnexpectedRowsExpectation):
    """``UnexpectedRowsExpectation`` that only counts the offending rows.

    Upstream always resolves two metrics, the offending rows (a table, for COMPLETE
    results only) and their count, so each query scans the data twice. Our contracts
    need the count and locate the offending rows themselves, only when a check fails.
    """

    metric_dependencies: ClassVar[tuple[str, ...]] = ("unexpected_rows_query.row_count",)

    def _validate(
        self, metrics: dict, runtime_configuration: dict | None = None, execution_engine: Any = None
    ) -> dict[str, Any]:
        count = metrics["unexpected_rows_query.row_count"]
        return {"success": count == 0, "result": {"observed_value": count}}


def ephemeral_context() -> AbstractDataContext:
    """An in-memory GX context: nothing is written into the repository, no progress bars."""
    quiet_gx_logging()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
    return context


def duckdb_url(path: str, read_only: bool = False) -> str:
    url = f"duckdb:///{path}"
    return f"{url}?access_mode=read_only" if read_only else url


def add_duckdb_datasource(context: AbstractDataContext, name: str, path: str, read_only: bool = False) -> Any:
    return context.data_sources.add_duckdb(name=name, connection_string=duckdb_url(path, read_only))


def close_datasource(datasource: Any) -> None:
    """Close the kept connection so the DuckDB file is released (and can be deleted or written)."""
    engine = getattr(datasource, "_execution_engine", None)
    if engine is not None:
        engine.close()
    if getattr(datasource, "_engine", None) is not None:
        datasource._engine.dispose()


def gx_braces(sql: str) -> str:
    """UnexpectedRowsExpectation formats its query with ``{batch}``: double every other brace."""
    return sql.replace("{", "{{").replace("}", "}}").replace("{{batch}}", "{batch}")
