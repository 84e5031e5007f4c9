"""Run the dbt project (`dbt_project/`) against the warehouse a config describes.

dbt runs as a subprocess of the same venv, never in-process: a dbt-duckdb connection
left open inside a long-lived process (an Airflow worker, `dag.test()`) makes the next
DuckDB open fail, and a subprocess also isolates dbt's global state and logging.
Every setting reaches dbt through environment variables (`dbt_env`), exactly as Cosmos
passes them inside Airflow, so both run the same project the same way.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agora.config import AgoraConfig, ConfigError
from agora.landing import landing_files

log = logging.getLogger("agora.warehouse")

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
WAREHOUSE_FILE = "agora.duckdb"
KPI_DEFINITIONS = PROJECT_DIR / "seeds" / "kpi_definitions.csv"

# Outcomes dbt writes to run_results.json that mean "this node broke".
_FAILED = {"error", "fail", "runtime error"}


class WarehouseError(RuntimeError):
    """dbt could not build the warehouse; the message names what failed and why."""


@dataclass
class BuildResult:
    warehouse: str
    seconds: float
    models_passed: int = 0
    tests_passed: int = 0
    unit_tests_passed: int = 0
    seeds_passed: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


TARGETS = ("duckdb", "postgres", "spark")


def dbt_target(target: str | None = None, cfg: AgoraConfig | None = None) -> str:
    """The dbt target to build, first found of: `target`, env AGORA_DBT_TARGET, agora.yml's
    `warehouse.kind`, duckdb.

    The environment wins over the file so that one deployment (compose, a test) can switch
    the engine without editing agora.yml. On `postgres` the profile reads AGORA_PG_*:
    from agora.yml's `warehouse` block when it is postgres (`dbt_env`), else the environment.
    """
    chosen = target or os.environ.get("AGORA_DBT_TARGET") or (cfg.warehouse.kind if cfg is not None else None)
    chosen = chosen or "duckdb"
    if chosen not in TARGETS:
        raise ConfigError(f"dbt target {chosen!r}: expected one of {', '.join(TARGETS)}")
    return chosen


def warehouse_path(cfg: AgoraConfig) -> str:
    """The DuckDB file the mart contract and publish read: the one dbt builds,
    `<paths.warehouse>/agora.duckdb`, or on Spark the copy of its marts (agora.spark_marts)."""
    if dbt_target(cfg=cfg) == "spark":
        from agora.spark_marts import MARTS_FILE

        return os.path.join(cfg.path("warehouse"), MARTS_FILE)
    return os.path.join(cfg.path("warehouse"), WAREHOUSE_FILE)


def spark_dir(cfg: AgoraConfig) -> str:
    """spark.sql.warehouse.dir: `warehouse.warehouse_dir`, else `<paths.warehouse>/spark`.

    The in-process session keeps its Derby metastore beside the tables, in `metastore_db`.
    """
    wh = cfg.warehouse
    configured = wh.warehouse_dir if wh.kind == "spark" else None
    if configured:
        return configured if "://" in configured else str(cfg.resolve(configured))
    return os.path.join(cfg.path("warehouse"), "spark")


def known_kpis() -> list[str]:
    with KPI_DEFINITIONS.open(newline="") as f:
        return [row["kpi"] for row in csv.DictReader(f)]


def dp_bound(cfg: AgoraConfig) -> int:
    dp = cfg.privacy.differential_privacy
    return dp.max_contributions_per_account if dp else 10


def _landing_protocol(url: str) -> str:
    """`s3` for s3://... (any fsspec protocol but local), else empty."""
    protocol = url.split("://", 1)[0] if "://" in url else ""
    return "" if protocol in ("", "file", "local") else protocol


def dbt_env(cfg: AgoraConfig, *, with_password: bool = True) -> dict[str, str]:
    """The environment variables the dbt project reads (see dbt_project.yml and profiles.yml).

    Cosmos gets the same dict (`operator_args={"env": ...}`), so a DAG and the CLI build
    identical warehouses from one agora.yml. With a postgres `warehouse` block the AGORA_PG_*
    connection comes from it; `with_password=False` leaves out the password itself (only
    AGORA_PG_PASSWORD_ENV, its variable's name), for values that get stored or shown.
    """
    unknown = sorted(set(cfg.kpis.targets) - set(known_kpis()))
    if unknown:
        raise ConfigError(f"kpis.targets: unknown KPI {unknown[0]!r} (known: {', '.join(known_kpis())})")
    env = {
        "AGORA_DBT_TARGET": dbt_target(cfg=cfg),
        "AGORA_WAREHOUSE_PATH": warehouse_path(cfg),
        "AGORA_LANDING_ROOT": cfg.path("landing").rstrip("/"),
        # fsspec protocols DuckDB must read landing through (profiles.yml `filesystems`):
        # registered filesystems instead of DuckDB's httpfs, which it would download.
        "AGORA_DBT_FILESYSTEMS": _landing_protocol(cfg.path("landing")),
        "AGORA_K_MIN": str(cfg.privacy.k_min),
        # The clamp of int_dp_counts_monthly; agora/dp.py checks the built value matches.
        "AGORA_DP_MAX_CONTRIBUTIONS": str(dp_bound(cfg)),
        "AGORA_KPI_TARGETS": json.dumps(cfg.kpis.targets, sort_keys=True),
        "AGORA_COMMUNITY": cfg.community,
    }
    wh = cfg.warehouse
    if wh.kind == "postgres":
        env.update(
            AGORA_PG_HOST=wh.host,
            AGORA_PG_PORT=str(wh.port),
            AGORA_PG_USER=wh.user,
            AGORA_PG_DBNAME=wh.database,
            AGORA_PG_SSLMODE=wh.sslmode,
            # The *name* travels (DAG XCom, rendered task fields); the value is read where
            # dbt runs, from that process's environment.
            AGORA_PG_PASSWORD_ENV=wh.password_env,
        )
        if with_password:
            env["AGORA_PG_PASSWORD"] = wh.password()
    if env["AGORA_DBT_TARGET"] == "spark":
        env["AGORA_SPARK_DIR"] = spark_dir(cfg)
        if wh.kind == "spark":
            env.update(
                AGORA_SPARK_METHOD=wh.method,
                AGORA_SPARK_MASTER=wh.master,
                AGORA_SPARK_DRIVER_MEMORY=wh.driver_memory,
                AGORA_SPARK_SHUFFLE_PARTITIONS=str(wh.shuffle_partitions),
            )
            if wh.method == "thrift":
                env.update(AGORA_SPARK_HOST=wh.host, AGORA_SPARK_PORT=str(wh.port), AGORA_SPARK_USER=wh.user)
                env["AGORA_SPARK_PASSWORD_ENV"] = wh.password_env or ""
                if with_password and wh.password_env:
                    env["AGORA_SPARK_PASSWORD"] = wh.password()
    return env


def _dbt_executable() -> str:
    """dbt from this interpreter's venv, so the subprocess runs the locked versions."""
    candidate = Path(sys.executable).with_name("dbt")
    if candidate.exists():
        return str(candidate)
    found = shutil.which("dbt")
    if not found:
        raise WarehouseError(f"dbt not found next to {sys.executable} nor on PATH")
    return found


def run_dbt(
    cfg: AgoraConfig | None,
    args: list[str],
    *,
    target_path: str | os.PathLike | None = None,
    check: bool = True,
    timeout: float | None = None,
    target: str | None = None,
) -> subprocess.CompletedProcess:
    """Run `dbt <args>` on our project; raise WarehouseError naming failed nodes if it fails.

    `cfg=None` runs with the project's defaults (what Cosmos sees at DAG-parse time).
    `target_path` is where dbt writes its artifacts and logs; without it this invocation
    gets a directory of its own (see `invocation_dir`), which is removed afterwards.
    """
    if target_path is None:
        with invocation_dir() as own:
            return run_dbt(cfg, args, target_path=own, check=check, timeout=timeout, target=target)
    env = {**os.environ, **(dbt_env(cfg) if cfg is not None else {})}
    if target is not None:
        env["AGORA_DBT_TARGET"] = dbt_target(target)
    if cfg is not None and "://" not in env["AGORA_WAREHOUSE_PATH"]:
        # DuckDB creates the file but not its directory.
        Path(env["AGORA_WAREHOUSE_PATH"]).parent.mkdir(parents=True, exist_ok=True)
    env.setdefault("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    env.setdefault("DBT_VERSION_CHECK", "false")
    target = Path(target_path)
    cmd = [
        _dbt_executable(),
        *args,
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(target),
        "--log-path",
        str(target / "logs"),
    ]
    started = time.time()
    log.info("dbt %s", " ".join(args))
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, cwd=PROJECT_DIR)
    log.info("dbt %s finished in %.1f s (exit %d)", args[0] if args else "", time.time() - started, proc.returncode)
    log.debug("dbt output:\n%s", proc.stdout)
    if check and proc.returncode != 0:
        raise WarehouseError(_failure_summary(args, proc, target / "run_results.json", started))
    return proc


RUNS_DIR = PROJECT_DIR / "target" / "runs"
SHARED_ARTIFACTS = ("partial_parse.msgpack", "manifest.json")  # the manifest last: readers wait for it


@contextmanager
def invocation_dir(target_path: str | os.PathLike | None = None) -> Iterator[Path]:
    """Where one dbt invocation writes run_results.json, its logs and compiled SQL.

    Each invocation gets its own directory (under `dbt_project/target/runs/`), so two
    builds (a CLI run beside a DAG run, two privacy rebuilds) never read each other's
    results or overwrite each other's files. dbt's partial-parse cache is copied in, and
    after a success the manifest (what the mart contract and Cosmos read) and the cache
    are renamed into `dbt_project/target` — whole files, never half-written. A failed
    invocation's directory is kept for its logs (the error names it); a successful one is
    removed. A caller's own `target_path` is used as it is and kept.
    """
    if target_path is not None:
        yield Path(target_path)
        return
    RUNS_DIR.mkdir(parents=True, exist_ok=True)
    own = Path(tempfile.mkdtemp(prefix=f"{time.strftime('%Y%m%dT%H%M%S')}-", dir=RUNS_DIR))
    shared = PROJECT_DIR / "target"
    try:
        shutil.copyfile(shared / SHARED_ARTIFACTS[0], own / SHARED_ARTIFACTS[0])
    except OSError:
        pass  # no cache yet: dbt parses in full
    try:
        yield own
    except BaseException as e:
        if isinstance(e, WarehouseError):
            e.args = (f"{e.args[0]}\n  dbt logs: {own / 'logs' / 'dbt.log'}", *e.args[1:])
        else:
            shutil.rmtree(own, ignore_errors=True)
        raise
    for name in SHARED_ARTIFACTS:
        if (own / name).exists():
            os.replace(own / name, shared / name)  # same filesystem: an atomic rename
    shutil.rmtree(own, ignore_errors=True)


def _run_results(path: Path, since: float) -> list[dict[str, Any]]:
    """Results of *this* invocation only: an older file left by a previous run is ignored."""
    if not path.exists() or path.stat().st_mtime < since - 1:
        return []
    return json.loads(path.read_text()).get("results", [])


def _node_name(unique_id: str) -> tuple[str, str, str]:
    """`test.agora.not_null_x.5bc6` -> ("test", "agora", "not_null_x"); unit tests keep `model::test`."""
    kind, package, *rest = unique_id.split(".")
    if kind == "unit_test":
        return kind, package, "::".join(rest)
    return kind, package, rest[0] if rest else ""


def _failure_summary(args: list[str], proc: subprocess.CompletedProcess, results_path: Path, since: float) -> str:
    failed = [r for r in _run_results(results_path, since) if r.get("status") in _FAILED]
    lines = [f"dbt {' '.join(args[:1])} failed (exit {proc.returncode})"]
    for r in failed:
        kind, _, name = _node_name(r["unique_id"])
        message = (r.get("message") or "").strip().splitlines()
        lines.append(f"  {kind} {name}: {r['status']}: {' '.join(m.strip() for m in message)[:500]}")
    if not failed:
        # Failures before any node ran (parse errors, a locked file, no landing data):
        # dbt's own error lines are the best summary there is.
        output = (proc.stdout + "\n" + proc.stderr).splitlines()
        errors = [ln for ln in output if "error" in ln.lower()] or output[-15:]
        lines.extend(f"  {ln.strip()}" for ln in errors[-15:])
    return "\n".join(lines)


def build(
    cfg: AgoraConfig,
    full_refresh: bool = False,
    *,
    target_path: str | os.PathLike | None = None,
    select: list[str] | None = None,
    target: str | None = None,
    unit_tests: bool = False,
) -> BuildResult:
    """`dbt build`: seeds, models and data tests, in DAG order; fail on any failure.

    Incremental by default (staging reads only recent landing partitions); `full_refresh`
    rebuilds from the whole landing zone. On the postgres target the landing zone is first
    loaded into `landing.events` (agora.pg_landing), which PostgreSQL cannot read in place.
    On spark the marts are then copied into a DuckDB file for the contract and publish
    (agora.spark_marts). Unit tests check SQL logic on fixed inputs, not the data: they belong in CI
    (`unit_tests=True`, tests/test_dbt.py), not in every production build (seconds each run).
    """
    landing = cfg.path("landing")
    if not landing_files(landing):
        raise WarehouseError(f"no landing data under {landing}: run `agora extract` first")
    target = dbt_target(target, cfg)
    if target == "postgres":
        from agora.pg_landing import PgSettings, load_landing

        settings = PgSettings.from_env()
        # A full refresh (the privacy rebuild) replaces landing.events instead of deleting from it.
        load_landing(landing, settings, full=full_refresh)
        path = f"postgresql://{settings.host}:{settings.port}/{settings.dbname}"
    elif target == "spark":
        _require_spark()
        path = spark_dir(cfg)
    else:
        path = warehouse_path(cfg)
    args = ["build"]
    if full_refresh:
        args.append("--full-refresh")
    if select:
        args += ["--select", *select]
    if not unit_tests:
        args += ["--exclude-resource-type", "unit_test"]
    started = time.time()
    with invocation_dir(target_path) as artifacts:
        run_dbt(cfg, args, target_path=artifacts, target=target)
        results = _run_results(artifacts / "run_results.json", started)
    if target == "postgres" and full_refresh:
        from agora.pg_landing import scrub_dead_rows

        scrub_dead_rows(settings)
    if target == "spark":
        from agora.spark_marts import export_marts

        export_marts(cfg)
    result = BuildResult(warehouse=path, seconds=round(time.time() - started, 2))
    for r in results:
        kind = r["unique_id"].split(".", 1)[0]
        if r.get("status") == "warn":
            result.warnings.append(r["unique_id"])
        if r.get("status") not in ("success", "pass"):
            continue
        if kind == "model":
            result.models_passed += 1
        elif kind == "test":
            result.tests_passed += 1
        elif kind == "unit_test":
            result.unit_tests_passed += 1
        elif kind == "seed":
            result.seeds_passed += 1
    log.info(
        "warehouse built in %.1f s: %d models, %d data tests, %d unit tests",
        result.seconds,
        result.models_passed,
        result.tests_passed,
        result.unit_tests_passed,
    )
    return result


def _require_spark() -> None:
    """dbt-spark and PySpark are the optional `spark` extra (~345 MB): say how to get them."""
    import importlib.util

    if importlib.util.find_spec("pyspark") is None or importlib.util.find_spec("dbt.adapters.spark") is None:
        raise WarehouseError(
            "warehouse.kind spark needs dbt-spark and PySpark: uv sync --extra spark (or pip install 'agora[spark]')"
        )


def parse(cfg: AgoraConfig | None = None, *, target_path: str | os.PathLike | None = None) -> Path:
    """Write `target/manifest.json`, which Cosmos (LoadMode.DBT_MANIFEST) and the mart contract read.

    dbt parses into a directory of its own; the manifest is then renamed into place
    (`invocation_dir`), so a reader or a concurrent parse never sees half a file.
    """
    if target_path is not None:
        run_dbt(cfg, ["parse"], target_path=target_path)
        manifest = Path(target_path) / "manifest.json"
        if not manifest.exists():
            raise WarehouseError(f"dbt parse did not write {manifest}")
        return manifest
    with invocation_dir() as own:
        run_dbt(cfg, ["parse"], target_path=own)
        if not (own / "manifest.json").exists():
            raise WarehouseError(f"dbt parse did not write {own / 'manifest.json'}")
    return manifest_path()


def manifest_path() -> Path:
    """The manifest the transform DAG and the mart contract read (written by `parse`/`build`)."""
    return PROJECT_DIR / "target" / "manifest.json"


if __name__ == "__main__":
    # `python -m agora.warehouse parse`: run by `make` so the DAGs can be parsed.
    import sys

    if sys.argv[1:] != ["parse"]:
        sys.exit("usage: python -m agora.warehouse parse")
    print(parse())
