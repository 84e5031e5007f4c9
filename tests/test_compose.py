"""docker-compose.yml, checked statically (no Docker engine runs here).

It parses; images are pinned; every service's command is one the program accepts; the
environment holds what the code reads (agora.yml's secret env var names, dbt's profile,
Airflow options that exist); every secret comes from the env file, never inline, and each
service gets only the secrets its role uses — the same variables, role by role, that
tests/test_celery_live.py gives the processes it runs; placeholders are refused and the
generator replaces every one.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
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
ENTRYPOINT = ROOT / "deploy" / "entrypoint.sh"
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
    assert set(services) == {"secrets-check", "postgres", "redis", "minio", "superset", *AIRFLOW_SERVICES}
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        deps = services[name]["depends_on"]
        assert deps["airflow-init"]["condition"] == "service_completed_successfully"
        assert deps["postgres"]["condition"] == "service_healthy"
    for name in ("postgres", "redis", "minio", "airflow-api-server"):
        assert services[name]["healthcheck"]["test"]
    assert set(compose["volumes"]) >= {"postgres-data", "minio-data"}

    # Nothing starts before secrets-check has passed: every service depends on it, directly or not.
    def reaches_check(name: str, seen=()) -> bool:
        deps = services[name].get("depends_on") or {}
        return "secrets-check" in deps or any(reaches_check(d, (*seen, name)) for d in deps if d not in seen)

    for name in set(services) - {"secrets-check"}:
        assert reaches_check(name), f"{name} can start before the secrets are checked"
    check = services["secrets-check"]
    assert check["command"] == ["check-secrets"] and check["env_file"] == [".env"]
    assert check["network_mode"] == "none" and check["restart"] == "no"


def test_images_are_pinned(services):
    for name, svc in services.items():
        image = svc["image"]
        repo, _, tag = image.rpartition(":")
        pinned = re.fullmatch(r"\d+(\.\d+)+(-[a-z0-9.]+)?|RELEASE\.\d{4}-\d\d-\d\dT\d\d-\d\d-\d\dZ", tag)
        assert repo and pinned, f"{name}: image {image} is not pinned"
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
    for name in AIRFLOW_SERVICES | {"secrets-check"}:
        command = services[name]["command"]
        if command == ["check-secrets"]:
            assert "check-secrets)" in entrypoint
            continue
        if command == ["init"]:
            # deploy/entrypoint.sh runs these; check each airflow call it makes.
            for line in re.findall(r"^\s*airflow (.+)$", entrypoint, re.M):
                args = re.findall(r'"[^"]*"|\S+', line)
                parser.parse_args([a.strip('"') for a in args])
            continue
        if command[0] == "celery":
            # The celery subcommands come from the Celery provider (a main dependency).
            assert command == ["celery", "worker"]
            from airflow.providers.celery.cli.definition import CELERY_COMMANDS

            assert "worker" in {c.name for c in CELERY_COMMANDS}
            continue
        parser.parse_args(command)
    assert '\nexec airflow "$@"' in entrypoint


def _secrets_used(service: dict) -> set[str]:
    return {name for value in _env(service).values() for name in VAR.findall(value)}


def test_each_service_gets_the_variables_and_secrets_of_its_role_as_in_the_live_test(services):
    """Same executor, broker, auth manager and variable names, role by role, as the processes
    tests/test_celery_live.py runs: compose is what that test proves works."""
    from tests.test_celery_live import SECRET_NAMES, role_env

    example = dict(re.findall(r"^(\w+)=(.*)$", (ROOT / ".env.example").read_text(), re.M))
    secret = {name: example[name] for name in SECRET_NAMES}
    urls = {
        "pg": "postgres:5432",
        "redis": "redis:6379",
        "api": "http://airflow-api-server:8080",
        "s3": "http://minio:9000",
    }
    urls |= {"admin_dsn": f"postgresql://postgres:{secret['POSTGRES_PASSWORD']}@postgres:5432/postgres"}
    urls |= {"cosmos_cache": "", "config": ""}
    for name in AIRFLOW_SERVICES:
        env, tested = _env(services[name]), role_env(name, secret, urls)
        assert set(env) == set(tested), f"{name}: compose {sorted(set(env) ^ set(tested))} differ from the live test"
        held = {k for k in SECRET_NAMES if any(example[k] in v for v in tested.values())}
        assert _secrets_used(services[name]) - {"AIRFLOW_ADMIN_USER"} == held, name
        for key in ("AIRFLOW__CORE__EXECUTOR", "AIRFLOW__CORE__AUTH_MANAGER", "AWS_DEFAULT_REGION"):
            assert env.get(key) == tested.get(key), (name, key)
        for key in ("AIRFLOW__CELERY__BROKER_URL", "AIRFLOW__CELERY__RESULT_BACKEND"):
            if key in tested:
                assert env[key].split("://")[0] == tested[key].split("://")[0] == "redis", (name, key)
                assert env[key].rsplit("/", 1)[1] == tested[key].rsplit("/", 1)[1], (name, key)  # same Redis db
    base = _env(services["airflow-scheduler"])
    assert base["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"
    assert base["AIRFLOW__CORE__AUTH_MANAGER"].endswith("fab_auth_manager.FabAuthManager")
    assert base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
    assert "@postgres:5432/airflow" in base["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    assert "@redis:6379" in base["AIRFLOW__CELERY__BROKER_URL"]
    # Workers reach the api-server by its service name and the port its command binds.
    api = services["airflow-api-server"]["command"]
    port = api[api.index("--port") + 1]
    assert base["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-api-server:{port}/execution/"
    assert any(p.endswith(f":{port}") for p in services["airflow-api-server"]["ports"])
    # The S3 endpoint is the MinIO service, whose root credentials are the workers' AWS keys.
    worker, minio = _env(services["airflow-worker"]), _env(services["minio"])
    assert worker["AWS_ENDPOINT_URL"] == "http://minio:9000" and services["minio"]["command"] == ["server", "/data"]
    assert (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"]) == (
        worker["AWS_ACCESS_KEY_ID"],
        worker["AWS_SECRET_ACCESS_KEY"],
    )


def test_secrets_stay_with_the_services_that_use_them(services):
    everything = set(VAR.findall(COMPOSE.read_text()))
    workers = _secrets_used(services["airflow-worker"])
    central = set().union(*(_secrets_used(services[n]) for n in AIRFLOW_SERVICES - {"airflow-worker", "airflow-init"}))
    assert not workers & {"AIRFLOW_DB_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "POSTGRES_PASSWORD"}
    assert not central & {
        "AGORA_PSEUDONYM_KEY",
        "AGORA_WAREHOUSE_PASSWORD",
        "AGORA_SERVING_PASSWORD",
        "AWS_SECRET_ACCESS_KEY",
    }
    for name in ("POSTGRES_PASSWORD", "AGORA_READER_PASSWORD", "AIRFLOW_ADMIN_PASSWORD"):
        users = {n for n, svc in services.items() if name in _secrets_used(svc)}
        assert users <= {"postgres", "airflow-init"}, (name, users)
    assert _secrets_used(services["superset"]) == {
        "SUPERSET_SECRET_KEY",
        "SUPERSET_DB_PASSWORD",
        "SUPERSET_ADMIN_USER",
        "SUPERSET_ADMIN_PASSWORD",
        "REDIS_PASSWORD",
    }
    assert everything >= workers | central


def test_airflow_options_exist(services):
    from airflow.configuration import conf

    keys = {key for name in AIRFLOW_SERVICES for key in _env(services[name])}
    for key in sorted(keys):
        if not key.startswith("AIRFLOW__"):
            continue
        _, section, option = key.split("__", 2)
        if section.lower() in ("cosmos", "celery"):  # provider sections: not in core's defaults
            from airflow.providers.celery.get_provider_info import get_provider_info

            if section.lower() == "celery":
                assert option.lower() in get_provider_info()["config"]["celery"]["options"], key
            continue
        # The documented options (config.yml), including those without a default.
        known = conf.configuration_description.get(section.lower(), {}).get("options", {})
        assert option.lower() in known, f"{key}: Airflow has no such option"
    # The auth manager class exists (the FAB provider is a main dependency).
    from airflow.providers.fab.auth_manager.fab_auth_manager import FabAuthManager

    assert _env(services["airflow-api-server"])["AIRFLOW__CORE__AUTH_MANAGER"] == (
        f"{FabAuthManager.__module__}.{FabAuthManager.__name__}"
    )


def test_environment_matches_what_the_code_reads(services):
    env = _env(services["airflow-worker"])
    config_file = _mount(services["airflow-worker"], env["AGORA_CONFIG"])
    cfg = load_config(config_file)
    assert cfg.serving.kind == "postgres" and cfg.serving.host == "postgres"
    assert cfg.privacy.pseudonym_key_env in env
    assert cfg.serving.password_env in env
    # Workers share nothing but S3, PostgreSQL and Redis: landing, state and quarantine are
    # in the MinIO bucket (through the AWS_* variables), the warehouse directory is local scratch.
    for kind in ("landing", "state", "quarantine"):
        assert cfg.path(kind).startswith("s3://agora/"), kind
    assert cfg.path("warehouse").startswith("/opt/agora/data/")
    assert {"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(env)
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
        "@postgres:5432/airflow" in _env(services["airflow-scheduler"])["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        and "create database airflow" in pg_init
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
    secret = re.compile(r"PASSWORD|SECRET|FERNET|PSEUDONYM_KEY|_DSN$|ACCESS_KEY")
    for name, svc in services.items():
        for key, value in _env(svc).items():
            if secret.search(key):
                assert "${" in value, f"{name}.{key} holds an inline secret"
            if "://" in value and "@" in value:
                userinfo = value.split("://", 1)[1].split("@", 1)[0]
                assert ":" not in userinfo or "${" in userinfo, f"{name}.{key}: password inline"
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()
    # Every secret in the example is a placeholder the entrypoint recognises.
    for name, value in re.findall(r"^(\w+)=(.*)$", example, re.M):
        if secret.search(name):
            assert value.startswith("change-me"), f".env.example: {name} is not a change-me placeholder"


def _check_secrets(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), "check-secrets"],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _env_file(text: str) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(.*)$", text, re.M))


def test_placeholder_secrets_are_refused_with_a_clear_message():
    example = _env_file((ROOT / ".env.example").read_text())
    refused = _check_secrets(example)
    assert refused.returncode == 78
    assert "refusing to start: placeholder secret from .env.example" in refused.stderr
    assert "AGORA_PSEUDONYM_KEY" in refused.stderr and "deploy/generate_env.py" in refused.stderr
    placeholders = [k for k, v in example.items() if v.startswith("change-me")]
    assert len(placeholders) >= 15 and all(k in refused.stderr for k in placeholders)
    # One placeholder left among real values is enough, also inside a URL.
    generated = _env_file(_generate())
    for key, value in (
        ("REDIS_PASSWORD", example["REDIS_PASSWORD"]),
        ("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"postgresql://airflow:{example['AIRFLOW_DB_PASSWORD']}@pg/airflow"),
    ):
        one = _check_secrets({**generated, key: value})
        assert one.returncode == 78 and key in one.stderr, one.stderr
    short = _check_secrets({**generated, "AGORA_PSEUDONYM_KEY": "too-short-key"})
    assert short.returncode == 78 and "AGORA_PSEUDONYM_KEY is shorter than 32" in short.stderr
    # Nothing is ever echoed back: the message names variables, not values.
    assert generated["REDIS_PASSWORD"] not in refused.stderr + one.stderr + short.stderr


def _generate() -> str:
    res = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "generate_env.py"), "--print"],
        capture_output=True,
        text=True,
        check=True,
    )
    return res.stdout


def test_the_generator_replaces_every_placeholder_with_a_fresh_secret(tmp_path):
    from cryptography.fernet import Fernet

    first, second = _env_file(_generate()), _env_file(_generate())
    example = _env_file((ROOT / ".env.example").read_text())
    assert set(first) == set(example)
    assert _check_secrets(first).returncode == 0, _check_secrets(first).stderr
    for name, value in example.items():
        if value.startswith("change-me"):
            assert first[name] != second[name] and len(first[name]) >= 32, name
        else:
            assert first[name] == value, name  # user names and the like stay
    assert re.fullmatch(r"[0-9a-f]{64}", first["AGORA_PSEUDONYM_KEY"])
    Fernet(first["AIRFLOW_FERNET_KEY"].encode())  # a valid Fernet key
    secrets = [v for k, v in first.items() if example[k].startswith("change-me")]
    assert len(set(secrets)) == len(secrets)
    # Writing .env: mode 600, and never over an existing file (it holds the pseudonym key).
    import shutil

    shutil.copytree(ROOT / "deploy", tmp_path / "deploy")
    shutil.copy(ROOT / ".env.example", tmp_path / ".env.example")
    script = [sys.executable, str(tmp_path / "deploy" / "generate_env.py")]
    assert subprocess.run(script, capture_output=True, text=True).returncode == 0
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    kept = (tmp_path / ".env").read_text()
    again = subprocess.run(script, capture_output=True, text=True)
    assert again.returncode == 1 and "not overwritten" in again.stderr
    assert (tmp_path / ".env").read_text() == kept
