"""Hand-kept lists in the dbt project agree with the files they list (no dbt run needed)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from connectors.registry import names

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"


def _community_staging_models() -> list[str]:
    return yaml.safe_load((PROJECT / "dbt_project.yml").read_text())["vars"]["community_staging_models"]


def test_every_staging_posts_model_is_a_community_model():
    """dbt resolves ref() at parse time, so int_posts_unioned cannot find its inputs itself."""
    calling = {
        p.stem
        for p in (PROJECT / "models" / "staging").glob("*/stg_*.sql")
        if re.search(r"\{\{\s*staging_posts\(", p.read_text())
    }
    listed = _community_staging_models()
    assert len(listed) == len(set(listed)), f"community_staging_models lists a model twice: {listed}"
    missing, stale = sorted(calling - set(listed)), sorted(set(listed) - calling)
    assert not missing, f"add {missing} to community_staging_models in dbt_project/dbt_project.yml"
    assert not stale, f"{stale} in community_staging_models do not call staging_posts"


def test_every_account_platform_has_a_community_model():
    """A registered platform with accounts (connectors/registry.py) counts in the community KPIs."""
    folders = {p.stem: p.parent.name for p in (PROJECT / "models" / "staging").glob("*/stg_*.sql")}
    covered = {folders[m] for m in _community_staging_models()}
    missing = sorted(set(names(team=False)) - covered)
    assert not missing, f"no stg_<platform>__posts model (staging_posts macro) for {missing}"
