"""The pipeline's steps, each a plain function, and their one sequence (`STEPS`, `transform`):
the CLI, the DAGs, the privacy rebuild and the bench call the same ones.

Heavy libraries (GX, dbt, duckdb) are imported inside the functions so that importing
this module (from a DAG file, at parse time) stays cheap.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from typing import Any

from agora.config import AgoraConfig
from agora.kpis import summary_order

log = logging.getLogger("agora.pipeline")


def extract(cfg: AgoraConfig, source: str, since: Any = None, until: Any = None) -> dict[str, Any]:
    from agora.extract import run_extract

    return run_extract(cfg, source, since, until).as_dict()


def validate_landing(cfg: AgoraConfig, full: bool = False) -> dict[str, Any]:
    """The landing contract on files new or changed since its last pass (`full`: on every file)."""
    from expectations import validate_landing as _validate

    return _as_dict(_validate(cfg, full=full))


def build(
    cfg: AgoraConfig, full_refresh: bool = False, *, target_path: str | os.PathLike | None = None
) -> dict[str, Any]:
    from agora.warehouse import build as _build
    from agora.warehouse import dbt_target

    target = dbt_target(cfg=cfg)
    with _warehouse_environ(cfg, target):
        return _as_dict(_build(cfg, full_refresh=full_refresh, target=target, target_path=target_path))


@contextmanager
def _warehouse_environ(cfg: AgoraConfig, target: str) -> Iterator[None]:
    """Expose agora.yml's PostgreSQL warehouse as AGORA_PG_* for the duration of a build.

    `agora.warehouse.build` loads the landing zone with `PgSettings.from_env()`, which reads
    this process's environment; dbt itself gets the same values through `dbt_env`.
    """
    if target != "postgres" or cfg.warehouse.kind != "postgres":
        yield
        return
    from agora.environ import environ_set
    from agora.warehouse import dbt_env

    with environ_set({k: v for k, v in dbt_env(cfg).items() if k.startswith("AGORA_PG_")}):
        yield


def load_landing(cfg: AgoraConfig) -> dict[str, Any]:
    """Copy the landing zone into the PostgreSQL warehouse (`landing.events`); nothing on DuckDB.

    The transform DAG runs this before its dbt tasks; the CLI's build does it inside `build`.
    """
    from agora.warehouse import dbt_target

    if dbt_target(cfg=cfg) != "postgres":
        return {"target": "duckdb", "rows": None, "note": "not needed: DuckDB reads landing Parquet in place"}
    from agora.pg_landing import PgSettings
    from agora.pg_landing import load_landing as _load

    return {"target": "postgres", **_load(cfg.path("landing"), PgSettings.for_config(cfg)).as_dict()}


def validate_marts(cfg: AgoraConfig, *, target_path: str | os.PathLike | None = None) -> dict[str, Any]:
    """The mart contract on the warehouse dbt built: the DuckDB file, the PostgreSQL database, or
    the copy of the Spark marts (agora.spark_marts).

    `target_path`: where that build wrote its manifest (default: the project's `target/`)."""
    from pathlib import Path

    from agora.warehouse import dbt_target, manifest_path, warehouse_path
    from expectations import validate_marts as _validate

    manifest = Path(target_path) / "manifest.json" if target_path else manifest_path()
    if dbt_target(cfg=cfg) == "postgres":
        from agora.pg_landing import PgSettings

        return _as_dict(_validate(cfg, manifest_path=manifest, postgres=PgSettings.for_config(cfg)))
    if dbt_target(cfg=cfg) == "spark":
        # The DAG's dbt tasks wrote the Spark tables; the contract reads the marts' copy.
        from agora.spark_marts import export_marts

        export_marts(cfg)
    return _as_dict(_validate(cfg, warehouse_path(cfg), manifest))


def release(cfg: AgoraConfig, as_of: Any = None) -> dict[str, Any]:
    """Differential privacy (opt-in): draw, once, the months now due; between the mart contract and publish.

    Does nothing when `privacy.differential_privacy` is absent. Publish then serves only
    released values (agora.release), so the exact account-based marts never reach serving.
    Raises agora.dp.BudgetRefused when a month's release would break the 12-month cap.
    """
    from agora.dp import release_due

    return _as_dict(release_due(cfg, as_of))


def publish(cfg: AgoraConfig) -> dict[str, Any]:
    from agora.publish import publish as _publish

    return _as_dict(_publish(cfg))


#: The one pipeline sequence after extraction, in order. `agora run`, the privacy rebuild
#: and the bench run it whole (`transform`); the transform DAG runs each step as its own
#: task (`run_step`), except the build, which Cosmos runs there (one `dbt build`, same
#: settings from `agora.warehouse.dbt_env`).
STEPS = ("landing contract", "dbt build", "mart contract", "release", "publish")


def run_step(
    cfg: AgoraConfig,
    step: str,
    *,
    full_refresh: bool = False,
    landing_full: bool = False,
    target_path: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """One step of STEPS. `full_refresh` rebuilds the incremental models; `landing_full`
    re-checks every landing file; `target_path` keeps dbt's artifacts apart (the bench)."""
    if step == "landing contract":
        return validate_landing(cfg, full=landing_full)
    if step == "dbt build":
        return build(cfg, full_refresh=full_refresh, target_path=target_path)
    if step == "mart contract":
        return validate_marts(cfg, target_path=target_path)
    if step == "release":
        return release(cfg)
    if step == "publish":
        return publish(cfg)
    raise ValueError(f"unknown pipeline step {step!r} (steps: {', '.join(STEPS)})")


def transform(
    cfg: AgoraConfig,
    *,
    full_refresh: bool = False,
    landing_full: bool = False,
    target_path: str | os.PathLike | None = None,
    around: Callable[[str, Callable[[], dict[str, Any]]], dict[str, Any]] | None = None,
) -> dict[str, dict[str, Any]]:
    """landing contract → dbt build → mart contract → release → publish; stops at the first
    failure, so nothing unchecked is ever published. `around(step, run)` wraps each step
    (progress display, timing) and must return `run()`'s result."""
    results: dict[str, dict[str, Any]] = {}
    for step in STEPS:

        def run(step: str = step) -> dict[str, Any]:
            return run_step(cfg, step, full_refresh=full_refresh, landing_full=landing_full, target_path=target_path)

        results[step] = around(step, run) if around else run()
    return results


def _as_dict(result: Any) -> dict[str, Any]:
    if result is None:
        return {}
    if isinstance(result, dict):
        return result
    if hasattr(result, "as_dict"):
        return result.as_dict()
    if hasattr(result, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(result)
    return {"result": str(result)}


@dataclass
class KpiLine:
    kpi: str
    value: float | None
    group_size: int | None
    suppressed: bool
    previous: float | None
    target: float | None
    unit: str | None
    release: str = "exact"
    noise_scale: float | None = None


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


_KPI_MONTH = "select max(month) from {schema}.community_kpis_monthly where platform = {p} and kpi = 'active_members'"
_KPI_ROWS = """
    select k.kpi, k.value, k.group_size, k.is_suppressed, p.value as previous, c.target, c.unit,
        k.release, k.noise_scale
    from {schema}.community_kpis_monthly as k
    left join {schema}.community_kpis_monthly as p
        on p.kpi = k.kpi and p.platform = k.platform and p.month = k.month - interval '1 month'
    left join {schema}.kpi_catalog as c on c.kpi = k.kpi
    where k.platform = {p} and k.month = {p}
"""


def kpi_summary(cfg: AgoraConfig, platform: str = "all") -> tuple[date | None, list[KpiLine]]:
    """Latest month's headline KPIs from the *published* serving database (DuckDB file or PostgreSQL)."""
    if cfg.serving.kind == "postgres":
        from agora.publish_pg import connect

        con = connect(cfg.serving, application_name="agora-summary")
        schema, p = '"' + cfg.serving.schema_name + '"', "%s"
    else:
        import duckdb

        from agora.publish import serving_path

        con = duckdb.connect(str(serving_path(cfg)), read_only=True)
        schema, p = "marts", "?"
    try:
        cur = con.cursor()
        cur.execute(_KPI_MONTH.format(schema=schema, p=p), [platform])
        month = cur.fetchone()[0]
        if month is None:
            return None, []
        cur.execute(_KPI_ROWS.format(schema=schema, p=p), [platform, month])
        rows = cur.fetchall()
    finally:
        con.close()
    # PostgreSQL returns numerics as Decimal; the summary prints floats either way.
    by_kpi = {r[0]: KpiLine(r[0], _num(r[1]), r[2], r[3], _num(r[4]), _num(r[5]), r[6], r[7], _num(r[8])) for r in rows}
    # The order is the KPI registry's (summary_order in kpi_definitions.csv), the rest by name.
    first = summary_order()
    ordered = [by_kpi[k] for k in first if k in by_kpi]
    ordered += [v for k, v in sorted(by_kpi.items()) if k not in first]
    return month, ordered
