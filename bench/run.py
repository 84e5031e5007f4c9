"""Run the pipeline on synthetic data: full build, one added day, then a run with nothing
new (the fixed cost of a daily run); time every stage.

The stages are the ones `agora run` chains after extraction (landing contract, dbt
build, mart contract, publish), called through the same functions. dbt artifacts go to
the bench's own target directory, so a bench never overwrites the manifest the DAGs read.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.generate import generate, generate_day
from bench.reference import run_reference
from bench.rss import PeakRss

CONFIG = """\
# Written by `python -m bench`: the synthetic community's pipeline settings.
community: Bench
privacy: {k_min: 5}
paths: {landing: landing, state: state, quarantine: quarantine, warehouse: warehouse}
sources:
  - {name: forum, type: discourse, base_url: https://forum.invalid}
"""

# Issue 8 targets.
FULL_VS_REFERENCE_MAX = 3.0
DAY_VS_FULL_MAX = 0.05
PEAK_RSS_MAX_MB = 4096
# Issue 14: a daily run through Airflow costs at most this multiple of the CLI's.
AIRFLOW_VS_CLI_MAX = 1.5
FLOOR_DAGS = Path(__file__).resolve().parent / "airflow_floor"


@dataclass
class Stage:
    phase: str  # setup | generate | reference | full | incremental | unchanged
    name: str
    seconds: float
    cpu_seconds: float  # this process and its finished children (dbt): what the stage cost, whatever the load
    peak_rss_mb: float
    load_avg_1m: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class BenchReport:
    events: int
    days: int
    started_at: str
    machine: dict[str, Any]
    stages: list[Stage] = field(default_factory=list)
    dbt_profile: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    # --landing s3: the store, and per phase the objects in the bucket and marts differing from local
    s3: dict[str, Any] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def machine() -> dict[str, Any]:
    import platform

    import duckdb
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "kernel": platform.release(),
    }


def _timed(report: BenchReport, phase: str, name: str, fn: Callable[[], Any]) -> Any:
    load = os.getloadavg()[0]
    with PeakRss() as rss:
        cpu0 = _cpu()
        started = time.perf_counter()
        result = fn()
        seconds = time.perf_counter() - started
        cpu = _cpu() - cpu0
    detail = result if isinstance(result, dict) else {}
    stage = Stage(phase, name, round(seconds, 2), round(cpu, 2), round(rss.peak / 2**20, 1), round(load, 2), detail)
    report.stages.append(stage)
    checked = f"  checked {_checked(detail)}" if "files_checked" in detail else ""
    print(
        f"  {phase:<14} {name:<16} {seconds:8.2f} s  cpu {cpu:8.2f} s  peak {stage.peak_rss_mb:7.0f} MB"
        f"  load {load:.2f}{checked}",
        flush=True,
    )
    return result


def _checked(detail: dict[str, Any]) -> str:
    """What the landing contract actually read: new or changed files, and validated ones compared."""
    return (
        f"{detail['files_checked']:,} files / {detail['rows_checked']:,} rows "
        f"({detail['files_unchanged']:,} unchanged skipped, {detail['files_compared']:,} compared for key ties)"
    )


def _stage_seconds(report: BenchReport, phase: str, name: str) -> float:
    return next(s.seconds for s in report.stages if s.phase == phase and s.name == name)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _dbt_profile(target: Path, wall: float, top: int = 12) -> list[dict[str, Any]]:
    """Slowest dbt nodes of the last build (run_results.json), where the build's time goes.

    `(dbt overhead)` is the wall time no node accounts for: process start, parsing,
    compiling, connecting.
    """
    path = target / "run_results.json"
    if not path.exists():
        return []
    results = json.loads(path.read_text()).get("results", [])
    rows = [
        {
            "node": r["unique_id"].split(".", 2)[-1],
            "kind": r["unique_id"].split(".")[0],
            "seconds": round(r["execution_time"], 2),
        }
        for r in results
    ]
    by_kind: dict[str, float] = {}
    for r in rows:
        by_kind[r["kind"]] = by_kind.get(r["kind"], 0) + r["seconds"]
    rows.sort(key=lambda r: -r["seconds"])
    overhead = {"node": "(dbt overhead)", "kind": "overhead", "seconds": round(wall - sum(by_kind.values()), 2)}
    totals = [{"node": f"(all {k}s)", "kind": k, "seconds": round(s, 2)} for k, s in sorted(by_kind.items())]
    return [overhead, *totals, *rows[:top]]


def run_bench(
    events: int,
    workdir: str | os.PathLike,
    *,
    days: int = 1095,
    seed: int = 7,
    keep: bool = False,
    spark: bool = False,
    production: bool = True,
    landing_s3: bool = False,
    bucket: str = "agora-bench",
) -> BenchReport:
    """Generate `events` events over `days` days, run the full path, add a day, run it again.

    `landing_s3`: each path also runs with landing/state/quarantine in an S3 bucket
    (bench/s3_landing.py), right after the local one, on the same data.
    """
    from agora.config import load_config

    work = Path(workdir).resolve()
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "agora.yml").write_text(CONFIG)
    cfg = load_config(work / "agora.yml")
    report = BenchReport(
        events=events, days=days, started_at=datetime.now(UTC).isoformat(timespec="seconds"), machine=machine()
    )
    # The added day is yesterday (wholly in the past); history ends the day before.
    added_day = datetime.now(UTC).date() - timedelta(days=1)

    print(f"bench: {events:,} events over {days} days in {work}", flush=True)
    _timed(report, "setup", "imports", _import_heavy)
    with ExitStack() as store:
        s3_cfg = None
        if landing_s3:
            from bench.s3_landing import object_store, s3_config

            report.s3["store"] = store.enter_context(object_store(bucket))
            s3_cfg = s3_config(work, bucket)
        ref_seconds, ref_cpu, day_events = _paths(
            report, work, cfg, s3_cfg, events=events, days=days, seed=seed, added_day=added_day, spark=spark
        )

    if production:
        _production(report, work)

    report.summary = _summarise(report, ref_seconds, ref_cpu, day_events)
    if spark:
        for phase in ("spark full", "spark incremental"):
            report.summary[f"{phase.replace(' ', '_')}_dbt_build_seconds"] = _stage_seconds(report, phase, "dbt build")
    (work / "bench.json").write_text(json.dumps(report.as_dict(), indent=2, default=str))
    if not keep:
        shutil.rmtree(work / "landing", ignore_errors=True)
    return report


def _paths(
    report: BenchReport,
    work: Path,
    cfg: Any,
    s3_cfg: Any,
    *,
    events: int,
    days: int,
    seed: int,
    added_day: date,
    spark: bool,
) -> tuple[float, float, int]:
    """Generate, reference query, full path, added day, nothing new (the first two also on S3 with `s3_cfg`)."""
    landing = cfg.path("landing")
    target = work / "dbt_target"
    gen = _timed(
        report,
        "generate",
        "history",
        lambda: _gen_detail(generate(landing, events, end_day=added_day, days=days, seed=seed)),
    )
    ref_seconds, ref_cpu, ref_rows = _timed(report, "reference", "query", lambda: run_reference(landing))
    report.stages[-1].detail = {
        "best_of_2_seconds": round(ref_seconds, 3),
        "best_of_2_cpu_seconds": round(ref_cpu, 3),
        "months": len(ref_rows),
    }
    if s3_cfg:
        _upload(report, "history", landing, "*/dt=*/*.parquet", s3_cfg)

    _pipeline(report, "full", cfg, target, full_refresh=True)
    report.dbt_profile["full"] = _dbt_profile(target, _stage_seconds(report, "full", "dbt build"))
    if s3_cfg:
        _s3_pipeline(report, "s3 full", cfg, s3_cfg, work, full_refresh=True)
    spark_cfg = _spark_config(work) if spark else None
    if spark_cfg:
        _spark_build(report, "spark full", spark_cfg, work / "spark_target", full_refresh=True)

    day_events = _last_month_daily_rate(gen["rows_by_day"], added_day)
    _timed(
        report,
        "generate",
        "added day",
        lambda: _gen_detail(
            generate_day(landing, day_events, history_events=events, day=added_day, days=days, seed=seed)
        ),
    )
    if s3_cfg:
        _upload(report, "added day", landing, f"*/dt={added_day.isoformat()}/*.parquet", s3_cfg)
    _pipeline(report, "incremental", cfg, target, full_refresh=False)
    report.dbt_profile["incremental"] = _dbt_profile(target, _stage_seconds(report, "incremental", "dbt build"))
    if s3_cfg:
        _s3_pipeline(report, "s3 incremental", cfg, s3_cfg, work, full_refresh=False)
    if spark_cfg:
        _spark_build(report, "spark incremental", spark_cfg, work / "spark_target", full_refresh=False)
    # The same path again with nothing new: what a daily run costs whatever it brings. The
    # added day minus this is what the day's data itself cost.
    _pipeline(report, "unchanged", cfg, target, full_refresh=False)
    report.dbt_profile["unchanged"] = _dbt_profile(target, _stage_seconds(report, "unchanged", "dbt build"))
    return ref_seconds, ref_cpu, day_events


def _upload(report: BenchReport, what: str, landing: str, pattern: str, s3_cfg: Any) -> None:
    """The generated files into the bucket, timed apart (extraction would have written them there)."""
    from bench.s3_landing import upload

    files = sorted(str(p) for p in Path(landing).glob(pattern))
    _timed(report, "generate", f"upload {what}", lambda: upload(landing, files, s3_cfg.path("landing")))


def _s3_pipeline(report: BenchReport, phase: str, cfg: Any, s3_cfg: Any, work: Path, *, full_refresh: bool) -> None:
    """The local phase again on the bucket; then what the bucket holds and whether the marts match."""
    from agora.publish import serving_path
    from bench.s3_landing import marts_differ, objects_under

    target = work / "s3" / "dbt_target"
    _pipeline(report, phase, s3_cfg, target, full_refresh=full_refresh)
    report.dbt_profile[phase] = _dbt_profile(target, _stage_seconds(report, phase, "dbt build"))
    root = s3_cfg.path("landing").rsplit("/", 1)[0]
    report.s3[phase] = {
        "objects": objects_under(root),
        "marts_differing_from_local": marts_differ(str(serving_path(cfg)), str(serving_path(s3_cfg))),
    }


def _spark_config(work: Path) -> Any:
    """The same landing zone built on Spark (`--target spark`): warehouse.kind spark, own directory."""
    from agora.config import load_config
    from tests.spark import ensure_spark

    ensure_spark()
    (work / "spark").mkdir()
    spark_yml = CONFIG.replace("landing: landing", f"landing: {work / 'landing'}")
    spark_yml = spark_yml.replace("warehouse: warehouse}", "warehouse: spark_warehouse}")
    (work / "spark" / "agora.yml").write_text(spark_yml + "warehouse: {kind: spark}\n")
    return load_config(work / "spark" / "agora.yml")


def _spark_build(report: BenchReport, phase: str, cfg: Any, target: Path, *, full_refresh: bool) -> None:
    """dbt build on Spark (its marts copied out for the contract, agora.spark_marts): the stage
    that differs by engine; the contracts and publish then read DuckDB either way."""
    from agora.warehouse import build

    _timed(report, phase, "dbt build", lambda: build(cfg, full_refresh=full_refresh, target_path=target).as_dict())
    report.dbt_profile[phase] = _dbt_profile(target, _stage_seconds(report, phase, "dbt build"))


def _import_heavy() -> dict[str, Any]:
    """GX and DuckDB import once; stages then time their own work (dbt runs in a child process).

    The contracts import GX lazily (`expectations.gx_duckdb`, ~7 s): without importing it
    here the full path's landing contract would carry that one-off cost and the
    incremental one would not. A fresh process (an Airflow task) pays it once per run.
    """
    import duckdb  # noqa: F401

    import expectations.gx_duckdb  # noqa: F401
    import expectations.landing  # noqa: F401
    import expectations.marts  # noqa: F401

    return {}


def _gen_detail(g: Any) -> dict[str, Any]:
    return {
        "files": g.files,
        "rows": g.rows,
        "community_events": g.community_events,
        "first_day": g.first_day,
        "last_day": g.last_day,
        "rows_by_day": g.rows_by_day,
    }


def _last_month_daily_rate(rows_by_day: dict[str, int], added_day: date) -> int:
    """Community events of an average recent day: the added day is as busy as the last 30."""
    since = (added_day - timedelta(days=30)).isoformat()
    recent = [n for d, n in rows_by_day.items() if d >= since]
    return max(1, round(sum(recent) / max(1, len(recent))))


def _pipeline(report: BenchReport, phase: str, cfg: Any, target: Path, *, full_refresh: bool) -> None:
    """The one sequence `agora run` and the transform DAG run (agora.pipeline.transform), each step timed.

    A full build checks every landing file (the ledger of validated files is ignored, as
    `--full-refresh` ignores the incremental models); the added day checks what is new.
    """
    from agora import pipeline

    def around(step: str, run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        if step.endswith("contract"):
            return _timed(report, phase, step, lambda: _contract(run()))
        if step == "publish":
            return _timed(report, phase, step, lambda: {"tables": run().get("tables")})
        return _timed(report, phase, step, run)

    pipeline.transform(cfg, full_refresh=full_refresh, landing_full=full_refresh, target_path=target, around=around)


def _production(report: BenchReport, work: Path) -> None:
    """A daily run with nothing new, the way production pays it: the transform DAG through
    Airflow (`airflow dags test agora_transform`: every task, one dbt build, the sensors),
    next to the CLI's own commands (`agora validate landing`, `agora build`, `agora publish`),
    each a fresh process as a cron job would run them. Airflow's metadata: SQLite in the workdir.
    """
    import subprocess
    import sys

    from agora.airflow_local import airflow_env, ensure_metadata

    config = work / "agora.yml"
    agora = str(Path(sys.executable).with_name("agora"))
    for args in (["validate", "landing"], ["build"], ["publish"]):
        cmd = [agora, *args, "--config", str(config)]
        _timed(
            report,
            "cli",
            f"agora {' '.join(args)}",
            lambda cmd=cmd: _check_run(subprocess.run(cmd, capture_output=True, text=True)),
        )
    env = airflow_env(config, home=work / "airflow")
    _timed(report, "airflow", "metadata setup", lambda: ensure_metadata(env) or {})
    log = work / "airflow.log"
    tasks = _dags_test_stage(report, "dags test agora_transform", "agora_transform", env, log)
    # Airflow's floor in the same run: no-op DAGs of one task and of as many tasks as the
    # transform ran. What a daily run through Airflow costs beyond the CLI can be no less.
    for n in sorted({1, tasks}):
        floor_env = {**env, "AIRFLOW__CORE__DAGS_FOLDER": str(FLOOR_DAGS), "AGORA_BENCH_FLOOR_TASKS": str(n)}
        name = f"dags test floor ({n} no-op task{'s' if n > 1 else ''})"
        _dags_test_stage(report, name, "bench_airflow_floor", floor_env, log)


def _dags_test_stage(report: BenchReport, name: str, dag_id: str, env: dict[str, str], log: Path) -> int:
    """One timed `airflow dags test <dag_id>` (phase `airflow`); returns how many tasks ran."""
    from agora.airflow_local import dags_test

    ran: list[str] = []
    _timed(
        report,
        "airflow",
        name,
        lambda: (
            dags_test(dag_id, datetime.now(UTC).isoformat(), env, None, log, on_task=ran.append) or {"tasks": len(ran)}
        ),
    )
    return len(ran)


def _check_run(proc: Any) -> dict[str, Any]:
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(proc.args[:3])} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return {}


def _contract(result: Any) -> dict[str, Any]:
    d = result if isinstance(result, dict) else result.as_dict() if hasattr(result, "as_dict") else {}
    keys = ("rows_checked", "files_checked", "files_unchanged", "files_compared")
    return {k: d[k] for k in (*keys, "expectations_evaluated", "expectations_passed") if k in d}


def _summarise(report: BenchReport, ref_seconds: float, ref_cpu: float, day_events: int) -> dict[str, Any]:
    def total(phase: str) -> float:
        return round(sum(s.seconds for s in report.stages if s.phase == phase), 2)

    def cpu(phase: str) -> float:
        return round(sum(s.cpu_seconds for s in report.stages if s.phase == phase), 2)

    def contract(phase: str) -> dict[str, Any]:
        return next(s.detail for s in report.stages if s.phase == phase and s.name == "landing contract")

    full, incremental, unchanged = total("full"), total("incremental"), total("unchanged")
    dags_test = next((s for s in report.stages if s.phase == "airflow" and s.name == "dags test agora_transform"), None)
    cli, airflow = total("cli"), dags_test.seconds if dags_test else None
    cli_cpu, airflow_cpu = cpu("cli"), dags_test.cpu_seconds if dags_test else None
    floors = sorted(
        (s for s in report.stages if s.phase == "airflow" and s.name.startswith("dags test floor")),
        key=lambda s: s.detail.get("tasks", 0),
    )
    floor_one = floors[0].seconds if floors else None
    build = _stage_seconds(report, "full", "dbt build")
    s3: dict[str, Any] = {}
    if report.s3:  # --landing s3: the same paths with the landing zone in the bucket, next to local disk
        for p in ("full", "incremental"):
            s3[f"s3_{p}_seconds"], s3[f"s3_{p}_cpu_seconds"] = total(f"s3 {p}"), cpu(f"s3 {p}")
            s3[f"s3_{p}_vs_local"] = round(total(f"s3 {p}") / total(p), 2) if total(p) else None
        s3["s3_marts_equal_local"] = all(
            not v["marts_differing_from_local"] for k, v in report.s3.items() if k.startswith("s3 ")
        )
    # The generator is not part of the pipeline: the target is about the pipeline's stages.
    peak = max(s.peak_rss_mb for s in report.stages if s.phase in ("full", "incremental", "unchanged", "reference"))
    # Largest single child (dbt) and this process, exact, as the kernel counted them.
    children_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    self_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "events": report.events,
        "added_day_events": day_events,
        "reference_seconds": round(ref_seconds, 2),
        "full_seconds": full,
        "full_dbt_build_seconds": build,
        "incremental_seconds": incremental,
        "unchanged_seconds": unchanged,
        "added_day_marginal_seconds": round(incremental - unchanged, 2),
        "reference_cpu_seconds": round(ref_cpu, 2),
        "full_cpu_seconds": cpu("full"),
        "incremental_cpu_seconds": cpu("incremental"),
        "unchanged_cpu_seconds": cpu("unchanged"),
        "full_events_per_second": round(report.events / full) if full else None,
        "full_vs_reference": round(full / ref_seconds, 1) if ref_seconds else None,
        "dbt_build_vs_reference": round(build / ref_seconds, 1) if ref_seconds else None,
        "full_vs_reference_cpu": round(cpu("full") / ref_cpu, 1) if ref_cpu else None,
        "incremental_vs_full": round(incremental / full, 3) if full else None,
        "incremental_vs_full_cpu": round(cpu("incremental") / cpu("full"), 3) if cpu("full") else None,
        "full_landing_contract_checked": _checked(contract("full")),
        "incremental_landing_contract_checked": _checked(contract("incremental")),
        **s3,
        "production_cli_seconds": cli or None,
        "production_airflow_seconds": airflow,
        "production_airflow_vs_cli": round(airflow / cli, 2) if airflow and cli else None,
        "production_cli_cpu_seconds": cli_cpu or None,
        "production_airflow_cpu_seconds": airflow_cpu,
        "production_airflow_vs_cli_cpu": round(airflow_cpu / cli_cpu, 2) if airflow_cpu and cli_cpu else None,
        # Airflow's floor: a no-op DAG of one task, and of as many tasks as agora_transform ran.
        "production_airflow_floor_1_task_seconds": floor_one,
        "production_airflow_floor_same_tasks_seconds": floors[-1].seconds if floors else None,
        # The ratio even a one-task DAG doing the CLI's work could not beat: CLI + that floor.
        "production_floor_vs_cli": round((cli + floor_one) / cli, 2) if floor_one and cli else None,
        "peak_rss_mb": peak,
        "max_child_rss_mb": round(children_mb),
        "max_self_rss_mb": round(self_mb),
        "targets": {
            f"full <= {FULL_VS_REFERENCE_MAX:g}x reference": bool(ref_seconds)
            and full <= FULL_VS_REFERENCE_MAX * ref_seconds,
            f"added day <= {DAY_VS_FULL_MAX:.0%} of full": incremental <= DAY_VS_FULL_MAX * full,
            f"peak RSS < {PEAK_RSS_MAX_MB} MB": peak < PEAK_RSS_MAX_MB,
            **(
                {f"Airflow <= {AIRFLOW_VS_CLI_MAX:g}x CLI (nothing new)": airflow <= AIRFLOW_VS_CLI_MAX * cli}
                if airflow and cli
                else {}
            ),
        },
    }


def format_report(report: BenchReport) -> str:
    """Markdown: stages, summary and the dbt profile, as pasted into docs/benchmarks.md."""
    lines = [
        f"Events: {report.events:,} over {report.days} days; started {report.started_at}; machine {report.machine}",
        "",
        "| phase | stage | wall (s) | CPU (s) | peak RSS (MB) | load avg (1 min) | checked |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    lines += [
        f"| {s.phase} | {s.name} | {s.seconds:.2f} | {s.cpu_seconds:.2f} | {s.peak_rss_mb:.0f} | {s.load_avg_1m:.2f} "
        f"| {_checked(s.detail) if 'files_checked' in s.detail else ''} |"
        for s in report.stages
    ]
    lines += ["", "| measure | value |", "|---|---|"]
    for k, v in report.summary.items():
        if k != "targets":
            lines.append(f"| {k} | {v} |")
    for k, ok in report.summary.get("targets", {}).items():
        lines.append(f"| target: {k} | {'met' if ok else 'MISSED'} |")
    for phase, seen in report.s3.items():
        if phase.startswith("s3 "):
            differ = ", ".join(seen["marts_differing_from_local"]) or "none"
            lines.append(
                f"| {phase}: objects in the bucket | {seen['objects']}; marts differing from local: {differ} |"
            )
    for phase, rows in report.dbt_profile.items():
        lines += ["", f"dbt profile ({phase}):", "", "| node | seconds |", "|---|---:|"]
        lines += [f"| {r['node']} | {r['seconds']:.2f} |" for r in rows]
    return "\n".join(lines)
