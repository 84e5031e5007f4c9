"""docker-compose.yml, checked statically (no Docker engine runs here).

It parses; images are pinned; every service's command is one the program accepts; the
environment holds what the code reads (agora.yml's secret env var names, dbt's profile,
Airflow options that exist) and every secret comes from the env file, never inline.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from agora.config import load_config

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-api-server",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
}
VAR = re.compile(r"\$\{(\w+)(?::?[-?][^}]*)?\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    return {k: str(v) for k, v in env.items()}


def _mount(service: dict, target: str) -> Path:
    for volume in service.get("volumes", []):
        host, inside, *_ = volume.split(":")
        if inside == target:
            return ROOT / host
    raise AssertionError(f"nothing mounted at {target}")


def test_topology(services, compose):
    assert set(services) == {"postgres", "redis", "superset", *AIRFLOW_SERVICES}
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "airflow-api-server"):
        assert services[name]["healthcheck"]["test"]
    assert set(compose["volumes"]) >= {"postgres-data", "agora-data"}


def test_images_are_pinned(services):
    for name, svc in services.items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9.]+)?", tag), f"{name}: image {image} is not pinned"
    for name in ("airflow-worker", "superset"):
        build = services[name]["build"]
        dockerfile = (ROOT / build["context"] / build.get("dockerfile", "Dockerfile")).read_text()
        bases = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
        assert bases and all(re.search(r":\d+\.\d+\.\d+", b) for b in bases), bases
        for line in re.findall(r"pip install ([^\n&\\]*)", dockerfile):
            for req in line.split():
                if not req.startswith("-"):
                    assert re.fullmatch(r"[\w.\-\[\]]+==[\w.]+", req), f"{name}: unpinned {req}"
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    assert re.search(r"uv==\d+\.\d+\.\d+", dockerfile)
    assert "uv sync --frozen" in dockerfile  # the locked versions, nothing resolved at build time


def test_ports_are_published_on_loopback_only(services):
    for name, svc in services.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} on every interface"


def test_airflow_commands_are_accepted_by_airflow(services):
    from airflow.cli.cli_parser import get_parser

    parser = get_parser()
    entrypoint = (ROOT / "deploy" / "entrypoint.sh").read_text()
    for name in AIRFLOW_SERVICES:
        command = services[name]["command"]
        if command == ["init"]:
            # deploy/entrypoint.sh runs these; check each airflow call it makes.
            for line in re.findall(r"^\s*airflow (.+)$", entrypoint, re.M):
                args = re.findall(r'"[^"]*"|\S+', line)
                parser.parse_args([a.strip('"') for a in args])
            continue
        if command[0] == "celery":
            # The celery subcommands come from the Celery provider (a main dependency).
            assert command == ["celery", "worker"]
            continue
        parser.parse_args(command)
    assert '\nexec airflow "$@"' in entrypoint


def test_one_environment_for_every_airflow_service(services):
    envs = {name: _env(services[name]) for name in AIRFLOW_SERVICES}
    base = envs["airflow-scheduler"]
    for name, env in envs.items():
        extra = set(env) - set(base)
        assert {k: env[k] for k in base} == base, name
        if name != "airflow-init":
            assert extra == set(), f"{name} has extra variables {extra}"
    assert base["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert "@postgres:5432/airflow" in base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert (
        base["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://")
        and "@redis:6379" in base["AIRFLOW__CELERY__BROKER_URL"]
    )
    # Workers reach the api-server by its service name and the port its command binds.
    api = services["airflow-api-server"]["command"]
    port = api[api.index("--port") + 1]
    assert base["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-api-server:{port}/execution/"
    assert any(p.endswith(f":{port}") for p in services["airflow-api-server"]["ports"])


def test_airflow_options_exist(services):
    from airflow.configuration import conf

    for key in _env(services["airflow-scheduler"]):
        if not key.startswith("AIRFLOW__"):
            continue
        _, section, option = key.split("__", 2)
        if section.lower() in ("cosmos", "celery"):  # provider sections: not in core's defaults
            continue
        # The documented options (config.yml), including those without a default.
        known = conf.configuration_description.get(section.lower(), {}).get("options", {})
        assert option.lower() in known, f"{key}: Airflow has no such option"


def test_environment_matches_what_the_code_reads(services):
    env = _env(services["airflow-worker"])
    config_file = _mount(services["airflow-worker"], env["AGORA_CONFIG"])
    cfg = load_config(config_file)
    assert cfg.serving.kind == "postgres" and cfg.serving.host == "postgres"
    assert cfg.privacy.pseudonym_key_env in env
    assert cfg.serving.password_env in env
    for kind in ("landing", "state", "quarantine", "warehouse"):
        assert cfg.path(kind).startswith("/opt/agora/data/"), "data must live on the agora-data volume"
    assert any(v.endswith(":/opt/agora/data") for v in services["airflow-worker"]["volumes"])
    # The production profile: dbt builds on PostgreSQL because agora.yml says so; no
    # AGORA_DBT_TARGET in the environment overrides it.
    assert cfg.warehouse.kind == "postgres" and cfg.warehouse.host == "postgres"
    assert "AGORA_DBT_TARGET" not in env
    assert cfg.warehouse.password_env in env and "${" in env[cfg.warehouse.password_env]
    # dbt's profile: every AGORA_PG_* / AGORA_DBT_TARGET it reads comes from agora.yml via
    # dbt_env (the password by its variable's name, resolved on the worker by the DAG).
    from agora.warehouse import dbt_env

    settings = dbt_env(cfg, with_password=False)
    assert settings["AGORA_DBT_TARGET"] == "postgres"
    assert settings["AGORA_PG_PASSWORD_ENV"] == cfg.warehouse.password_env
    profile = (ROOT / "dbt_project" / "profiles.yml").read_text()
    for name in set(re.findall(r"env_var\('(AGORA_PG_\w+|AGORA_DBT_TARGET)'", profile)) - {"AGORA_PG_PASSWORD"}:
        assert name in settings, f"dbt profile reads {name}, dbt_env does not set it"
    init = _env(services["airflow-init"])
    assert {"AGORA_PG_ADMIN_DSN", "AGORA_READER_PASSWORD"} <= set(init)  # python -m agora.publish_pg provision
    # The warehouse role and database the postgres init script creates are the ones dbt uses,
    # with the password the workers get.
    pg_init = (ROOT / "deploy" / "postgres" / "init.sh").read_text()
    pg_env = _env(services["postgres"])
    assert f"create role {cfg.warehouse.user} login password :'warehouse_pw'" in pg_init
    assert f'warehouse_pw="${cfg.warehouse.password_env}"' in pg_init
    assert pg_env[cfg.warehouse.password_env] == env[cfg.warehouse.password_env]
    assert f"create database {cfg.warehouse.database} owner {cfg.warehouse.user}" in pg_init
    assert (
        "@postgres:5432/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] and "create database airflow" in pg_init
    )
    superset_config = (ROOT / "deploy" / "superset" / "superset_config.py").read_text()
    superset_env = _env(services["superset"])
    for name in re.findall(r"os\.environ\[['\"](\w+)['\"]\]", superset_config):
        assert name in superset_env, f"superset_config.py reads {name}"
    assert _mount(services["superset"], "/app/agora") == ROOT / "deploy" / "superset"


def test_secrets_come_from_the_env_file_only(services):
    example = (ROOT / ".env.example").read_text()
    defined = set(re.findall(r"^(\w+)=", example, re.M))
    used = set(VAR.findall(COMPOSE.read_text()))
    assert used <= defined, f"not in .env.example: {used - defined}"
    assert defined <= used, f".env.example defines unused {defined - used}"
    secret = re.compile(r"PASSWORD|SECRET|FERNET|PSEUDONYM_KEY|_DSN$")
    for name, svc in services.items():
        for key, value in _env(svc).items():
            if secret.search(key):
                assert "${" in value, f"{name}.{key} holds an inline secret"
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                assert ":" not in userinfo or "${" in userinfo, f"{name}.{key}: password inline"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
