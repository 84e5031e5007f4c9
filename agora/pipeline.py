"""The pipeline's steps, each a plain function: the CLI and the DAGs call the same ones.

Heavy libraries (GX, dbt, duckdb) are imported inside the functions so that importing
this module (from a DAG file, at parse time) stays cheap.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from typing import Any

from agora.config import AgoraConfig

log = logging.getLogger("agora.pipeline")

# KPIs shown in the closing summary, in reading order.
SUMMARY_KPIS = (
    "active_members",
    "new_members",
    "returning_newcomer_rate",
    "retention_rate",
    "median_hours_to_first_response",
    "response_rate_48h",
    "contributions",
)


def extract(cfg: AgoraConfig, source: str, since: Any = None, until: Any = None) -> dict[str, Any]:
    from agora.extract import run_extract

    return run_extract(cfg, source, since, until).as_dict()


def validate_landing(cfg: AgoraConfig) -> dict[str, Any]:
    from expectations import validate_landing as _validate

    return _as_dict(_validate(cfg))


def build(cfg: AgoraConfig, full_refresh: bool = False) -> dict[str, Any]:
    from agora.warehouse import build as _build

    return _as_dict(_build(cfg, full_refresh=full_refresh))


def validate_marts(cfg: AgoraConfig) -> dict[str, Any]:
    from agora.warehouse import manifest_path, warehouse_path
    from expectations import validate_marts as _validate

    return _as_dict(_validate(cfg, warehouse_path(cfg), manifest_path()))


def publish(cfg: AgoraConfig) -> dict[str, Any]:
    from agora.publish import publish as _publish

    return _as_dict(_publish(cfg))


def run_all(cfg: AgoraConfig, since: Any = None, until: Any = None) -> list[dict[str, Any]]:
    """Everything the two DAGs do, in one process, without Airflow (CLI `agora run`)."""
    extracted = [extract(cfg, s.name, since, until) for s in cfg.sources]
    validate_landing(cfg)
    build(cfg)
    validate_marts(cfg)
    publish(cfg)
    return extracted


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


def kpi_summary(cfg: AgoraConfig, platform: str = "all") -> tuple[date | None, list[KpiLine]]:
    """Latest month's headline KPIs from the *published* serving database."""
    import duckdb

    from agora.publish import serving_path

    con = duckdb.connect(str(serving_path(cfg)), read_only=True)
    try:
        month = con.execute(
            "select max(month) from marts.community_kpis_monthly where platform = ? and kpi = 'active_members'",
            [platform],
        ).fetchone()[0]
        if month is None:
            return None, []
        rows = con.execute(
            """
            select k.kpi, k.value, k.group_size, k.is_suppressed, p.value as previous, c.target, c.unit
            from marts.community_kpis_monthly as k
            left join marts.community_kpis_monthly as p
                on p.kpi = k.kpi and p.platform = k.platform and p.month = k.month - interval 1 month
            left join marts.kpi_catalog as c on c.kpi = k.kpi
            where k.platform = ? and k.month = ?
            """,
            [platform, month],
        ).fetchall()
    finally:
        con.close()
    by_kpi = {r[0]: KpiLine(*r) for r in rows}
    ordered = [by_kpi[k] for k in SUMMARY_KPIS if k in by_kpi]
    ordered += [v for k, v in sorted(by_kpi.items()) if k not in SUMMARY_KPIS]
    return month, ordered
