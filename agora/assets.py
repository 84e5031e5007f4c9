"""Airflow Assets shared by the DAGs (data-aware scheduling).

Sources come from agora.yml, which DAG files must not read at parse time, so each
extract task attaches its per-source asset through an AssetAlias at run time, and the
ingest DAG emits LANDING once, after every source has landed.
"""

from airflow.sdk import Asset, AssetAlias

LANDING = Asset("agora://landing", group="agora")
LANDING_SOURCES = AssetAlias("agora-landing-sources")
SERVING = Asset("agora://serving/marts", group="agora")


def source_asset(source: str) -> Asset:
    return Asset(f"agora://landing/{source}", group="agora")
