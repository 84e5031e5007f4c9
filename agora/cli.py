"""`agora`: the command line. Every command calls the same functions the DAGs call.

Exit codes: 0 ok, 1 the step failed (contract, build, network), 2 the input is wrong
(config, arguments) — and then nothing was written.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from agora.config import TEAM_PLATFORMS, ConfigError, load_config
from agora.progress import progress

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__.splitlines()[0])
console = Console()
# soft_wrap: an error stays one line in CI and Airflow logs, where stderr is not a terminal.
err = Console(stderr=True, soft_wrap=True)

ConfigOpt = typer.Option(None, "--config", "-c", help="agora.yml (default: $AGORA_CONFIG or ./agora.yml)")


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, markup=False)],
    )
    for noisy in ("great_expectations", "urllib3", "filelock", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _config(path: Optional[Path]):
    try:
        cfg = load_config(path)
        from agora.storage import check_roots

        check_roots(cfg)  # a missing bucket or refused credentials: one line, exit 2
        return cfg
    except ConfigError as e:
        err.print(f"[bold red]config error:[/] {escape(str(e))}", markup=True, highlight=False)
        raise typer.Exit(2) from None


def _fail(step: str, e: Exception) -> typer.Exit:
    err.print(f"[bold red]{step} failed:[/] {escape(str(e))}", markup=True, highlight=False)
    return typer.Exit(1)


@app.callback()
def main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Debug logging.")) -> None:
    _setup_logging(verbose)


@app.command()
def extract(
    source: str = typer.Option(..., "--source", "-s", help="Configured source name."),
    since: Optional[str] = typer.Option(None, help="ISO start (UTC); default: the saved cursor."),
    until: Optional[str] = typer.Option(None, help="ISO end (UTC, exclusive); default: now."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Pull one source into the landing zone (public records only, pseudonymised)."""
    from agora.extract import run_extract, utc

    cfg = _config(config)
    try:
        if cfg.source(source).type not in TEAM_PLATFORMS:
            cfg.pseudonym_key()  # fail before writing anything
        since_dt, until_dt = utc(since), utc(until)
    except (ConfigError, ValueError) as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    t0 = time.perf_counter()
    try:
        with progress(err, f"extracting {source} …"):
            s = run_extract(cfg, source, since_dt, until_dt)
    except Exception as e:  # noqa: BLE001 - report any failure as one readable line
        raise _fail(f"extract {source}", e) from None
    table = Table(title=f"{source} ({s.platform}) {s.run_id}", show_header=False)
    table.add_row("landed", f"{s.landed} records in {len(s.files)} files")
    for rtype, n in sorted(s.by_type.items()):
        table.add_row(f"  {rtype}", str(n))
    table.add_row("quarantined", str(s.quarantined))
    table.add_row("dropped", ", ".join(f"{k}: {v}" for k, v in sorted(s.dropped.items())) or "nothing")
    table.add_row("took", f"{time.perf_counter() - t0:.1f} s")
    console.print(table)


@app.command()
def validate(
    what: str = typer.Argument("landing", help="landing or marts"),
    full: bool = typer.Option(
        False, "--full", help="Landing: check every file, not only those new or changed since the last pass."
    ),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Run the Great Expectations contract on the landing zone or the marts."""
    from agora import pipeline

    cfg = _config(config)
    if what not in ("landing", "marts"):
        err.print("error: validate takes 'landing' or 'marts'")
        raise typer.Exit(2)
    try:
        with progress(err, f"{what} contract …"):
            res = pipeline.validate_landing(cfg, full=full) if what == "landing" else pipeline.validate_marts(cfg)
    except Exception as e:  # noqa: BLE001
        raise _fail(f"{what} contract", e) from None
    console.print(f"[green]{what} contract passed[/] {json.dumps(res, default=str)}")


@app.command()
def build(
    full_refresh: bool = typer.Option(False, "--full-refresh", help="Rebuild incremental models from scratch."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """dbt build: staging -> intermediate -> marts, with tests and unit tests."""
    from agora import pipeline

    cfg = _config(config)
    try:
        with progress(err, "dbt build …"):
            res = pipeline.build(cfg, full_refresh=full_refresh)
    except Exception as e:  # noqa: BLE001
        raise _fail("dbt build", e) from None
    console.print(f"[green]build ok[/] {json.dumps(res, default=str)}")


@app.command()
def publish(config: Optional[Path] = ConfigOpt) -> None:
    """Validate the marts, then publish them (only them) to serving.duckdb atomically."""
    from agora import pipeline

    cfg = _config(config)
    try:
        with progress(err, "mart contract …") as p:
            pipeline.validate_marts(cfg)
            p.update("differential-privacy release …", force=True)
            pipeline.release(cfg)  # differential privacy only: draws the months now due, once
            p.update("publishing the marts …", force=True)
            res = pipeline.publish(cfg)
    except Exception as e:  # noqa: BLE001
        raise _fail("publish", e) from None
    console.print(f"[green]published[/] {json.dumps(res, default=str)}")


@app.command()
def run(
    since: Optional[str] = typer.Option(None, help="ISO start for every source (default: cursors)."),
    until: Optional[str] = typer.Option(None, help="ISO end for every source (default: now)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """The whole pipeline in this process, without Airflow: extract all, contracts, build, publish."""
    cfg = _config(config)
    _run_all(cfg, since, until)
    print_summary(cfg)


def _run_all(cfg, since: Optional[str], until: Optional[str]) -> None:
    """`agora run`'s steps, each shown while it runs and timed when done."""
    from agora import pipeline

    try:
        for s in cfg.sources:
            with progress(err, f"extracting {s.name} …"):
                r = pipeline.extract(cfg, s.name, since, until)
            console.print(f"  {s.name}: landed {r['landed']}, quarantined {r['quarantined']}, dropped {r['dropped']}")

        def around(step: str, run_step):
            t0 = time.perf_counter()
            with progress(err, f"{step} …"):
                result = run_step()
            console.print(f"  {step}: ok ({time.perf_counter() - t0:.1f} s)")
            return result

        pipeline.transform(cfg, around=around)
    except Exception as e:  # noqa: BLE001
        raise _fail("run", e) from None


@app.command()
def summary(config: Optional[Path] = ConfigOpt) -> None:
    """Print the latest month's headline KPIs from the published marts."""
    print_summary(_config(config))


@app.command()
def report(
    month: Optional[str] = typer.Option(None, "--month", "-m", help="YYYY-MM (default: the latest complete month)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Directory (default: data/reports/<YYYY-MM>/)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """The month's community report (report.html + report.pdf) from the published marts only."""
    from agora.report import ReportError, build_report, parse_month

    cfg = _config(config)
    try:
        wanted = parse_month(month) if month else None
        with progress(err, "rendering the report …"):
            files = build_report(cfg, wanted, out)
    except (ValueError, ReportError) as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    except Exception as e:  # noqa: BLE001
        raise _fail("report", e) from None
    console.print(f"[green]report {files.month:%Y-%m}[/] {files.html} {files.pdf}")


@app.command()
def notice(
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Directory (default: data/notice/)."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """The public notice of what Agora measures (notice.md + notice.html), from agora.yml and the connectors."""
    from agora.notice import write_notice

    cfg = _config(config)
    try:
        md, html = write_notice(cfg, out)
    except ConfigError as e:
        err.print(f"[bold red]config error:[/] {escape(str(e))}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    except Exception as e:  # noqa: BLE001
        raise _fail("notice", e) from None
    console.print(f"[green]notice[/] {md} {html}")


privacy_app = typer.Typer(no_args_is_help=True, help="Opt-out and erasure requests, retention purge (docs/privacy.md).")
app.add_typer(privacy_app, name="privacy")
RebuildOpt = typer.Option(True, "--rebuild/--no-rebuild", help="Rebuild and republish now (default).")


def _privacy_call(step: str, fn, *args, **kwargs):

    from agora.privacy import PrivacyInputError

    try:
        with progress(err, f"{step} …"):
            return fn(*args, **kwargs)
    except (PrivacyInputError, ConfigError) as e:
        err.print(f"[bold red]error:[/] {escape(str(e))}", markup=True, highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as e:  # noqa: BLE001
        raise _fail(step, e) from None


def _completion_rows(table: Table, done) -> None:
    if done is None or not (done.requests_completed or done.retention_completed):
        table.add_row("rebuild", "skipped (--no-rebuild)" if done is None else "not needed")
        return
    table.add_row("erasures completed", str(done.requests_completed))
    table.add_row("rows removed", ", ".join(f"{k} {v}" for k, v in done.rows_removed.items()))
    table.add_row("reply links unset", ", ".join(f"{k} {v}" for k, v in done.links_unset.items()))
    rebuilt = f"yes ({done.seconds:.1f} s)" if done.rebuilt else "no landing data left: warehouse removed"
    table.add_row("rebuilt and republished", rebuilt)


@privacy_app.command("apply")
def privacy_apply(
    requests: Optional[Path] = typer.Option(None, "--requests", "-r", help="Requests CSV (default: privacy.requests)."),
    rebuild: bool = RebuildOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Apply opt-out/erasure requests: tombstone, erase from every layer, republish, audit."""
    from agora import privacy

    cfg = _config(config)
    res = _privacy_call("privacy apply", privacy.apply_requests, cfg, requests, rebuild=rebuild)
    table = Table(title="privacy requests", show_header=False)
    table.add_row("in the file", str(res.requests))
    table.add_row("already done", str(res.already_done))
    table.add_row("applied", f"{res.opt_outs} opt-outs, {res.erasures} erasures")
    table.add_row("new tombstones", str(res.tombstones_added))
    _completion_rows(table, res.completion)
    table.add_row("pending", str(len(res.pending)))
    console.print(table)
    for where, why in res.pending:
        err.print(f"pending: {where}: {why}", markup=False, highlight=False)
    if res.pending:
        raise typer.Exit(1)


@privacy_app.command("purge")
def privacy_purge(
    as_of: Optional[str] = typer.Option(None, "--as-of", help="Logical date YYYY-MM-DD (default: today, UTC)."),
    rebuild: bool = RebuildOpt,
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Delete landing and quarantine partitions older than privacy.retention_days, then republish."""
    from agora import privacy

    cfg = _config(config)
    res = _privacy_call("privacy purge", privacy.purge_retention, cfg, as_of, rebuild=rebuild)
    table = Table(title=f"retention {cfg.privacy.retention_days} days as of {res.as_of}", show_header=False)
    table.add_row("removed before", res.cutoff)
    for layer, n in res.partitions_removed.items():
        table.add_row(layer, f"{n} partitions, {res.rows_removed[layer]} rows")
    _completion_rows(table, res.completion)
    console.print(table)


@privacy_app.command("budget")
def privacy_budget(config: Optional[Path] = ConfigOpt) -> None:
    """Print the differential-privacy ledger (every release and refusal) and the budget left."""
    from agora import dp

    cfg = _config(config)
    settings = dp.settings(cfg)
    if settings is None:
        console.print("differential privacy is off (no privacy.differential_privacy in agora.yml): exact values")
        return
    ledger = dp.read_ledger(cfg)
    table = Table(title=f"privacy budget ledger ({dp.ledger_url(cfg)})")
    for col in ("month", "event", "rho", "epsilon at delta 1e-7", "KPIs", "noise scales", "at"):
        table.add_column(col)
    for e in ledger:
        scales = ", ".join(f"{k} {v:.4g}" for k, v in (e.get("scale_by_kpi") or {}).items())
        rho = float(e.get("rho", 0.0))
        table.add_row(
            e["month"][:7],
            e["event"] if e["event"] == "release" else f"refused ({e.get('window')}: {e.get('window_total', 0):.4f})",
            f"{rho:.4f}",
            f"{dp.epsilon(rho):.3f}" if rho else "–",
            ", ".join(e.get("kpis", [])),
            scales or "–",
            e.get("released_at") or e.get("refused_at", ""),
        )
    console.print(table)
    spent = dp.spent_by_month(ledger)
    cap = settings.rho_cap_12_months
    if spent:
        latest = max(spent)
        worst, start = dp.worst_window(spent, latest, 0.0)
        console.print(
            f"spent over the 12 months {start:%Y-%m}..{dp.add_months(start, 11):%Y-%m}: rho {worst:.4f} of cap {cap} "
            f"(epsilon {dp.epsilon(worst):.3f} at delta 1e-7); left for {dp.add_months(latest, 1):%Y-%m}: "
            f"rho {dp.remaining(cfg, dp.add_months(latest, 1)):.4f}; each month spends {settings.rho_per_month}"
        )
    else:
        console.print(f"nothing released yet; cap rho {cap} over any 12 months, {settings.rho_per_month} a month")


@app.command()
def demo(
    seed: int = typer.Option(42, help="Seed of the generated community: same seed, same marts."),
    airflow: bool = typer.Option(True, "--airflow/--no-airflow", help="Run through Airflow's DAGs (default)."),
    data: Optional[Path] = typer.Option(
        None, "--data", help="Directory for the demo's inputs, landing zone and warehouse (default: data/ in the repo)."
    ),
) -> None:
    """Generate the offline demo community, serve it locally, and run the whole pipeline on it."""
    from agora.demo import start_demo

    repo = Path(__file__).resolve().parents[1]
    data = (data or repo / "data").resolve()
    t0 = time.perf_counter()
    with progress(err, "generating the demo community …"):
        community = start_demo(data / "demo", seed=seed, data_dir=data)
    console.print(f"demo community served at {community.server.url} (seed {seed}); config {community.config_path}")
    try:
        cfg = _config(community.config_path)
        if airflow:
            _demo_through_airflow(cfg, community.config_path, data / "logs" / "demo-airflow.log")
        else:  # the same window the ingest DAG is given
            _run_all(cfg, community.start.isoformat(), community.end.isoformat())
    except RuntimeError as e:
        raise _fail("demo", e) from None
    finally:
        community.server.stop()
    print_summary(cfg)
    console.print(f"done in {time.perf_counter() - t0:.0f} s")


def _task_label(task: str, sources: list[str]) -> str:
    """`extract[3]` (a mapped task) as `extract <source>`: list_sources maps them in config order."""
    name, _, index = task.partition("[")
    if name == "extract" and index.rstrip("]").isdigit() and int(index.rstrip("]")) < len(sources):
        return f"extract {sources[int(index.rstrip(']'))]}"
    return task


def _demo_through_airflow(cfg, config_path: Path, log_file: Path) -> None:
    from agora.airflow_local import airflow_env, dags_test, ensure_metadata
    from agora.demo import END as DEMO_END
    from agora.demo import START as DEMO_START

    env = airflow_env(config_path)
    sources = [s.name for s in cfg.sources]
    log_file.unlink(missing_ok=True)
    with progress(err, "preparing Airflow (SQLite metadata) …"):
        ensure_metadata(env)
    logical = DEMO_END.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    conf = {"since": DEMO_START.isoformat(), "until": DEMO_END.isoformat()}
    for dag_id, what in (
        ("agora_ingest", "one mapped extract per source"),
        ("agora_transform", "landing contract → one dbt build, a sensor per model → mart contract → publish"),
        ("agora_report", "the month's report from the published marts"),
    ):
        t0 = time.perf_counter()
        with progress(err, f"airflow: {dag_id} ({what}) …") as p:
            dags_test(
                dag_id,
                logical,
                env,
                conf if dag_id == "agora_ingest" else None,
                log_file,
                on_task=lambda task, d=dag_id, p=p: p.update(f"airflow: {d}: {_task_label(task, sources)} …"),
            )
        console.print(f"  {dag_id}: success in {time.perf_counter() - t0:.0f} s")
    console.print(f"  Airflow log: {log_file}; reports: {log_file.parents[1] / 'reports'}/")


def _is_share(line) -> bool:
    return line.unit in ("share", "ratio", "rate") or line.kpi.endswith("_rate") or line.kpi.endswith("_share")


def _fmt(line) -> str:
    if line.suppressed or line.value is None:
        return "suppressed"
    v = line.value
    if _is_share(line):
        text = f"{v:.1%}"
    else:
        text = f"{v:,.1f}" if abs(v - round(v)) > 1e-9 else f"{v:,.0f}"
    if getattr(line, "release", "exact") == "dp" and line.noise_scale is not None:
        half = 1.96 * line.noise_scale
        text += (
            f" (differentially private, ±{half:.1%} at 95 %)"
            if _is_share(line)
            else (f" (differentially private, ±{half:,.0f} at 95 %)")
        )
    return text


def print_summary(cfg) -> None:
    from agora.pipeline import kpi_summary

    try:
        month, lines = kpi_summary(cfg)
    except Exception as e:  # noqa: BLE001
        raise _fail("summary", e) from None
    if month is None:
        console.print("no published KPIs yet")
        return
    table = Table(title=f"{cfg.community} — community KPIs, {month:%B %Y} (all platforms)")
    table.add_column("KPI")
    table.add_column("value", justify="right")
    table.add_column("previous month", justify="right")
    table.add_column("target", justify="right")
    table.add_column("group size", justify="right")
    for line in lines:
        prev = type(line)(line.kpi, line.previous, None, line.previous is None, None, None, line.unit)
        tgt = type(line)(line.kpi, line.target, None, False, None, None, line.unit) if line.target is not None else None
        table.add_row(
            line.kpi,
            _fmt(line),
            _fmt(prev) if line.previous is not None else "–",
            _fmt(tgt) if tgt else "–",
            str(line.group_size) if line.group_size is not None else "–",
        )
    console.print(table)
    if any(line.release == "dp" for line in lines):
        console.print(
            "Differentially private values carry noise drawn once at release (docs/privacy.md); "
            "suppressed = the noisy count is below k_min (privacy.k_min)."
        )
    else:
        console.print("Suppressed = fewer than k_min accounts behind the number (privacy.k_min).")


if __name__ == "__main__":
    sys.exit(app())
