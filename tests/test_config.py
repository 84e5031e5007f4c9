"""agora.yml validation: one-line errors naming the key, exit code 2, nothing written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from agora.config import ConfigError, load_config
from tests.conftest import ROOT, write_config

GOOD_SOURCE = {"name": "forum", "type": "discourse", "base_url": "http://127.0.0.1:9"}


def test_example_config_is_valid():
    cfg = load_config(ROOT / "agora.example.yml")
    assert {s.type for s in cfg.sources} >= {"discourse", "github", "mediawiki", "stackexchange", "x", "mastodon"}
    assert cfg.privacy.k_min == 5


@pytest.mark.parametrize(
    ("sources", "extra", "expected"),
    [
        ([{**GOOD_SOURCE, "bogus": 1}], {}, "sources.0.bogus: unknown key"),
        ([{**GOOD_SOURCE, "type": "myspace"}], {}, "sources.0: unknown source type 'myspace'"),
        ([{**GOOD_SOURCE, "base_url": "not a url"}], {}, "sources.0.base_url:"),
        ([GOOD_SOURCE, GOOD_SOURCE], {}, "duplicate source name 'forum'"),
        ([GOOD_SOURCE], {"privacy": {"k_min": "five"}}, "privacy.k_min:"),
        ([GOOD_SOURCE], {"privacy": {"k_min": 1}}, "privacy.k_min:"),
        ([{"name": "s", "type": "survey"}], {}, "sources.0.path: required key is missing"),
        ([GOOD_SOURCE], {"colour": "blue"}, "colour: unknown key"),
        # Credentials with their own key: a token_env would be silently ignored, so it is refused.
        (
            [{"name": "so", "type": "stackexchange", "site": "stackoverflow", "tagged": ["x"], "token_env": "SE"}],
            {},
            "sources.0.token_env: unknown key",
        ),
        (
            [{"name": "sky", "type": "bluesky", "query": "#x", "token_env": "BSKY"}],
            {},
            "sources.0.token_env: unknown key",
        ),
    ],
)
def test_invalid_config_names_the_key(tmp_path, sources, extra, expected):
    path = write_config(tmp_path, sources, **extra)
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    message = str(exc.value)
    assert expected in message
    assert "\n" not in message


def test_missing_pseudonym_key_is_a_config_error(tmp_path, monkeypatch):
    cfg = load_config(write_config(tmp_path, [GOOD_SOURCE]))
    monkeypatch.delenv("AGORA_PSEUDONYM_KEY")
    with pytest.raises(ConfigError, match="privacy.pseudonym_key_env: environment variable AGORA_PSEUDONYM_KEY"):
        cfg.pseudonym_key()


def _cli(args: list[str], cwd: Path, env_key: bool = True) -> subprocess.CompletedProcess:
    import os

    env = dict(os.environ)
    if not env_key:
        env.pop("AGORA_PSEUDONYM_KEY", None)
    return subprocess.run(
        [str(Path(sys.executable).with_name("agora")), *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.mark.parametrize(
    ("sources", "env_key", "expected"),
    [
        ([{**GOOD_SOURCE, "base_url": "ftp//nope"}], True, "sources.0.base_url"),
        ([{**GOOD_SOURCE, "typo_key": 1}], True, "sources.0.typo_key: unknown key"),
        ([GOOD_SOURCE], False, "AGORA_PSEUDONYM_KEY"),
    ],
)
def test_cli_exits_2_and_writes_nothing(tmp_path, sources, env_key, expected):
    path = write_config(tmp_path, sources)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    res = _cli(["extract", "--config", str(path), "--source", "forum"], tmp_path, env_key)
    assert res.returncode == 2, res.stderr
    assert expected in res.stderr
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written


def test_cli_unknown_source_exits_2(tmp_path):
    path = write_config(tmp_path, [GOOD_SOURCE])
    res = _cli(["extract", "--config", str(path), "--source", "nope"], tmp_path)
    assert res.returncode == 2
    assert "no source named 'nope'" in res.stderr


PG_WAREHOUSE = {
    "kind": "postgres",
    "host": "db.internal",
    "port": 6543,
    "database": "wh",
    "user": "dbt",
    "password_env": "WH_SECRET",
    "sslmode": "require",
}
PG_SERVING = {"kind": "postgres", "host": "db.internal"}


def test_warehouse_defaults_to_duckdb_and_postgres_shares_the_connection_fields(tmp_path):
    assert load_config(write_config(tmp_path, [GOOD_SOURCE])).warehouse.kind == "duckdb"
    cfg = load_config(write_config(tmp_path, [GOOD_SOURCE], warehouse=PG_WAREHOUSE, serving=PG_SERVING))
    wh = cfg.warehouse
    assert (wh.host, wh.port, wh.database, wh.user, wh.sslmode) == ("db.internal", 6543, "wh", "dbt", "require")
    defaults = load_config(write_config(tmp_path, [GOOD_SOURCE], warehouse={"kind": "postgres"}, serving=PG_SERVING))
    assert (defaults.warehouse.database, defaults.warehouse.password_env) == ("warehouse", "AGORA_PG_PASSWORD")
    assert defaults.serving.password_env == "AGORA_SERVING_PASSWORD"  # serving keeps its own defaults


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"warehouse": {**PG_WAREHOUSE, "port": 0}, "serving": PG_SERVING}, "warehouse.port:"),
        ({"warehouse": {**PG_WAREHOUSE, "schema": "x"}, "serving": PG_SERVING}, "warehouse.schema: unknown key"),
        ({"warehouse": {"kind": "snowflake"}}, "warehouse.kind: unknown kind 'snowflake'"),
        ({"warehouse": {"kind": "spark", "masterr": "local[2]"}}, "warehouse.masterr: unknown key"),
        ({"warehouse": {"kind": "spark", "method": "thrift"}}, "warehouse.host: required with method thrift"),
        ({"warehouse": {"kind": "spark", "host": "h"}}, "warehouse.host: only for method thrift"),
        (
            {
                "warehouse": {"kind": "spark"},
                "privacy": {
                    "differential_privacy": {"rho_per_month": 0.1, "rho_cap_12_months": 1.0, "release_after_days": 5}
                },
            },
            "privacy.differential_privacy: not available with warehouse.kind spark",
        ),
        ({"warehouse": PG_WAREHOUSE}, "serving.kind: a PostgreSQL warehouse publishes to PostgreSQL serving only"),
    ],
)
def test_invalid_warehouse_names_the_key(tmp_path, extra, expected):
    with pytest.raises(ConfigError) as exc:
        load_config(write_config(tmp_path, [GOOD_SOURCE], **extra))
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_dbt_target_precedence_argument_env_config_default(tmp_path, monkeypatch):
    from agora.warehouse import dbt_target

    monkeypatch.delenv("AGORA_DBT_TARGET", raising=False)
    duck = load_config(write_config(tmp_path, [GOOD_SOURCE]))
    pg = load_config(write_config(tmp_path, [GOOD_SOURCE], warehouse=PG_WAREHOUSE, serving=PG_SERVING))
    assert dbt_target(cfg=duck) == "duckdb"
    assert dbt_target(cfg=pg) == "postgres"
    monkeypatch.setenv("AGORA_DBT_TARGET", "duckdb")  # the deployment overrides the file
    assert dbt_target(cfg=pg) == "duckdb"
    assert dbt_target("postgres", cfg=duck) == "postgres"  # an explicit argument overrides both


def test_dbt_env_carries_the_postgres_warehouse_and_its_password_only_when_asked(tmp_path, monkeypatch):
    from agora.warehouse import dbt_env

    monkeypatch.delenv("AGORA_DBT_TARGET", raising=False)
    cfg = load_config(write_config(tmp_path, [GOOD_SOURCE], warehouse=PG_WAREHOUSE, serving=PG_SERVING))
    monkeypatch.delenv("WH_SECRET", raising=False)
    with pytest.raises(ConfigError, match="^warehouse.password_env: environment variable WH_SECRET is unset$"):
        dbt_env(cfg)
    public = dbt_env(cfg, with_password=False)
    assert public["AGORA_DBT_TARGET"] == "postgres"
    assert {k: public[k] for k in public if k.startswith("AGORA_PG_")} == {
        "AGORA_PG_HOST": "db.internal",
        "AGORA_PG_PORT": "6543",
        "AGORA_PG_USER": "dbt",
        "AGORA_PG_DBNAME": "wh",
        "AGORA_PG_SSLMODE": "require",
        "AGORA_PG_PASSWORD_ENV": "WH_SECRET",
    }
    monkeypatch.setenv("WH_SECRET", "s3cret-value")
    assert dbt_env(cfg)["AGORA_PG_PASSWORD"] == "s3cret-value"
    assert "s3cret-value" not in repr(cfg) + str(public)
    duck = dbt_env(load_config(write_config(tmp_path, [GOOD_SOURCE])))
    assert duck["AGORA_DBT_TARGET"] == "duckdb" and not any(k.startswith("AGORA_PG_") for k in duck)


def test_example_production_profile_is_valid_once_uncommented():
    import re

    import yaml

    from agora.config import AgoraConfig

    text = (ROOT / "agora.example.yml").read_text()
    uncommented = re.sub(r"^# (warehouse:|serving:|  )", r"\1", text, flags=re.M)
    cfg = AgoraConfig(**yaml.safe_load(uncommented))
    assert (cfg.warehouse.kind, cfg.serving.kind) == ("postgres", "postgres")
    assert cfg.warehouse.password_env != cfg.serving.password_env


# -- the connector registry ---------------------------------------------------------------------


def test_every_platform_is_declared_once_by_its_connector_module_with_a_documented_schema():
    from typing import get_args

    from agora.config import PLATFORMS, TEAM_PLATFORMS
    from connectors.registry import platforms

    declared = platforms()
    assert PLATFORMS == tuple(p.name for p in declared) and len(set(PLATFORMS)) == len(PLATFORMS)
    assert set(TEAM_PLATFORMS) == {p.name for p in declared if p.team}
    for p in declared:
        assert get_args(p.source.model_fields["type"].annotation) == (p.name,)
        assert p.connector.platform == p.name
        assert p.source.__module__ == p.connector.__module__  # schema and code in one module
        undocumented = [n for n, f in p.source.model_fields.items() if n != "type" and not f.description]
        assert undocumented == [], (p.name, undocumented)
        if not p.team:
            assert p.connector.account_id_pattern, p.name  # ids are checked before pseudonymisation
            assert p.fault_target, p.name  # and the contract suite covers it


def test_an_unknown_source_type_lists_every_registered_platform(tmp_path):
    from agora.config import PLATFORMS

    path = write_config(tmp_path, [{"name": "s", "type": "myspace"}])
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert all(name in str(e.value) for name in PLATFORMS)


def test_spark_warehouse_defaults_and_thrift(tmp_path, monkeypatch):
    from agora.warehouse import dbt_env, spark_dir

    cfg = load_config(write_config(tmp_path, [GOOD_SOURCE], warehouse={"kind": "spark"}))
    assert (cfg.warehouse.method, cfg.warehouse.master) == ("session", "local[2]")
    assert spark_dir(cfg) == str(tmp_path / "data" / "warehouse" / "spark")
    monkeypatch.delenv("AGORA_DBT_TARGET", raising=False)
    env = dbt_env(cfg)
    assert env["AGORA_DBT_TARGET"] == "spark" and env["AGORA_SPARK_DIR"] == spark_dir(cfg)
    thrift = {"kind": "spark", "method": "thrift", "host": "sts", "user": "agora", "warehouse_dir": "/mnt/wh"}
    cfg = load_config(write_config(tmp_path, [GOOD_SOURCE], warehouse={**thrift, "password_env": "SPARK_PW"}))
    with pytest.raises(ConfigError, match="warehouse.password_env: environment variable SPARK_PW is unset"):
        dbt_env(cfg)
    env = dbt_env(cfg, with_password=False)
    assert (env["AGORA_SPARK_METHOD"], env["AGORA_SPARK_HOST"], env["AGORA_SPARK_PASSWORD_ENV"]) == (
        "thrift",
        "sts",
        "SPARK_PW",
    )
    assert "AGORA_SPARK_PASSWORD" not in env
