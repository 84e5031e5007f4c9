"""Dashboards as code: the bundle is consistent, and Superset really shows the marts.

The end-to-end test installs what it needs (Debian chromium, Superset's venv from
its lock), starts Superset on a free 127.0.0.1 port with throwaway state, imports
the assets twice (the second run must update in place), opens the dashboard in
headless Chromium, and checks that no chart errors and that the headline cards
show the serving database's numbers, with suppressed values shown as suppressed.
It then publishes a new serving file while Superset runs and checks that the next
query sees it without a restart or a lock error.

The serving database comes from `build_serving_db`, a hand-made stand-in that
follows /work/briefs/marts.md; swap it for the real pipeline's publish when that
exists (only `serving_db` below needs to change).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUN_SH = ROOT / "dashboards" / "run.sh"
K_MIN = 5
PLATFORMS = ("discourse", "github", "mediawiki", "stackexchange")


# --------------------------------------------------------------------------- serving DB


def _months(first: dt.date, count: int) -> list[dt.date]:
    out, y, m = [], first.year, first.month
    for _ in range(count):
        out.append(dt.date(y, m, 1))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _suppress(value: float | None, group_size: int) -> tuple[float | None, int, bool]:
    hidden = group_size < K_MIN
    return (None if hidden else value), group_size, hidden


def build_serving_db(path: Path, *, months: int = 18, seed: int = 7, scale: float = 1.0) -> None:
    """Write a serving database shaped exactly like the marts contract (schema `marts`).

    Realistic-looking numbers: growing activity, one small platform whose rows are
    often suppressed, a suppressed latest NPS quarter, several feedback channels.
    Written to a temp file and moved into place, like the real publish.
    """
    import duckdb

    rnd = random.Random(seed)
    month_list = _months(dt.date(2025, 5, 1), months)
    size = {"discourse": 420, "github": 260, "mediawiki": 9, "stackexchange": 70}
    hours = {"discourse": 20, "github": 34, "mediawiki": 48, "stackexchange": 6}
    answered = {"discourse": 0.74, "github": 0.6, "mediawiki": 0.5, "stackexchange": 0.88}

    kpis: list[tuple] = []
    for i, month in enumerate(month_list):
        totals: dict[str, float] = {"active": 0, "new": 0, "contrib": 0}
        for platform in PLATFORMS:
            growth = 1 + 0.025 * i
            active = max(2, int(size[platform] * scale * growth * rnd.uniform(0.9, 1.1)))
            new = max(1, int(active * rnd.uniform(0.18, 0.3)))
            contrib = int(active * rnd.uniform(3.5, 6.0))
            threads = max(1, int(contrib * 0.22))
            totals["active"] += active
            totals["new"] += new
            totals["contrib"] += contrib
            rows = {
                "contributions": (contrib, active),
                "active_members": (active, active),
                "new_members": (new, new),
                "returning_newcomer_rate": (rnd.uniform(0.22, 0.42), new),
                "retention_rate": (rnd.uniform(0.45, 0.7), active),
                "churn_rate": (None, active),
                "reactivated_members": (int(active * rnd.uniform(0.05, 0.1)), active),
                "median_hours_to_first_response": (hours[platform] * (1 - 0.02 * i) * rnd.uniform(0.9, 1.1), threads),
                "response_rate_48h": (min(0.99, answered[platform] + 0.006 * i + rnd.uniform(-0.03, 0.03)), threads),
                "contributor_absence_factor": (max(1, int(active * 0.08)), active),
                "top_decile_share": (rnd.uniform(0.35, 0.6), active),
                "interaction_density": (rnd.uniform(0.8, 2.4), active),
            }
            rows["churn_rate"] = (1 - rows["retention_rate"][0], active)
            for kpi, (value, group) in rows.items():
                kpis.append((month, platform, kpi, *_suppress(value, group)))
        new_all, active_all = int(totals["new"]), int(totals["active"])
        threads_all = int(totals["contrib"] * 0.22)
        rate_all = 0.27 + 0.006 * i + rnd.uniform(-0.015, 0.015)
        retention_all = rnd.uniform(0.5, 0.62)
        rollup = {
            "contributions": (totals["contrib"], active_all),
            "active_members": (active_all, active_all),
            "new_members": (new_all, new_all),
            "returning_newcomer_rate": (rate_all, new_all),
            "retention_rate": (retention_all, active_all),
            "churn_rate": (1 - retention_all, active_all),
            "reactivated_members": (int(active_all * 0.07), active_all),
            "median_hours_to_first_response": (24 * (1 - 0.02 * i) + rnd.uniform(-1, 1), threads_all),
            "response_rate_48h": (0.7 + 0.008 * i, threads_all),
            "contributor_absence_factor": (int(active_all * 0.07), active_all),
            "top_decile_share": (rnd.uniform(0.4, 0.5), active_all),
            "interaction_density": (rnd.uniform(1.2, 1.8), active_all),
        }
        for kpi, (value, group) in rollup.items():
            hidden = group < K_MIN
            kpis.append((month, "all", kpi, None if hidden else float(value), group, hidden))

    cohorts: list[tuple] = []
    for c, cohort in enumerate(month_list):
        for platform in (*PLATFORMS, "all"):
            base = size.get(platform, sum(size.values())) * scale * 0.25
            members = max(1, int(base * rnd.uniform(0.8, 1.2)))
            for since in range(0, min(12, len(month_list) - 1 - c) + 1):
                share = (
                    1.0 if since == 0 else max(0.05, 0.55 * math.exp(-0.18 * (since - 1)) + rnd.uniform(-0.03, 0.03))
                )
                retained = int(round(members * share))
                hidden = members < K_MIN
                cohorts.append(
                    (
                        cohort,
                        platform,
                        since,
                        None if hidden else retained,
                        None if hidden else retained / members,
                        members,
                        hidden,
                    )
                )

    feedback: list[tuple] = []
    by_quarter: dict[dt.date, list[int]] = {}
    for i, month in enumerate(month_list):
        received_all = acted_all = closed_all = 0
        days: list[float] = []
        for channel, base in (("forum", 14), ("survey", 9), ("events", 3)):
            received = max(0, int(base * scale * rnd.uniform(0.7, 1.3)))
            acted = int(received * rnd.uniform(0.5, 0.85))
            closed = int(received * (0.35 + 0.015 * i))
            median_days = rnd.uniform(3, 15)
            received_all, acted_all, closed_all = received_all + received, acted_all + acted, closed_all + closed
            days.append(median_days)
            hidden = received < K_MIN
            feedback.append(
                (
                    month,
                    channel,
                    *([None] * 4 if hidden else [received, acted, closed / received, median_days]),
                    received,
                    hidden,
                )
            )
        hidden = received_all < K_MIN
        totals = by_quarter.setdefault(dt.date(month.year, 3 * ((month.month - 1) // 3) + 1, 1), [0, 0, 0])
        totals[0], totals[1], totals[2] = totals[0] + received_all, totals[1] + acted_all, totals[2] + closed_all
        feedback.append(
            (
                month,
                "all",
                *(
                    [None] * 4
                    if hidden
                    else [received_all, acted_all, closed_all / received_all, sorted(days)[len(days) // 2]]
                ),
                received_all,
                hidden,
            )
        )

    # every stand-in month holds at least k items: nothing is withheld for its quarter
    feedback = [(*row, False) for row in feedback]
    feedback_quarterly = [
        (quarter, received, acted, closed, closed / received, 7.0, received, False)
        for quarter, (received, acted, closed) in sorted(by_quarter.items())
    ]

    nps: list[tuple] = []
    quarters = sorted({dt.date(m.year, 3 * ((m.month - 1) // 3) + 1, 1) for m in month_list})
    for q, quarter in enumerate(quarters):
        respondents = 3 if q == len(quarters) - 1 else int(rnd.uniform(40, 90) * scale)
        promoters, detractors = rnd.uniform(0.4, 0.55), rnd.uniform(0.12, 0.25)
        hidden = respondents < K_MIN
        values = (
            [None] * 4 if hidden else [respondents, promoters, detractors, round(100 * (promoters - detractors), 1)]
        )
        nps.append((quarter, *values, respondents, hidden))

    team = [
        (month, kind, rnd.randint(lo, hi))
        for month in month_list
        for kind, lo, hi in (("event", 0, 3), ("talk", 1, 5), ("post", 2, 9), ("trip", 0, 2))
    ]
    learnings = [
        (
            dt.date(2025, 7, 14),
            "Office hours beat mailing lists",
            "Newcomers who came to a live office hour asked again within a month far more often.",
            "newcomers,events",
            "returning_newcomer_rate",
        ),
        (
            dt.date(2025, 10, 2),
            "Weekend questions wait longest",
            "Threads opened on Saturdays waited three times longer for a first answer; a rota fixed it.",
            "support,rota",
            "median_hours_to_first_response,response_rate_48h",
        ),
        (
            dt.date(2026, 1, 20),
            "Say what changed",
            "Closing the loop on feedback with a short changelog post doubled replies to the next survey.",
            "feedback",
            "closed_loop_rate,nps",
        ),
        (
            dt.date(2026, 4, 8),
            "Small wiki, small numbers",
            "Most wiki figures fall under the disclosure threshold; we read them quarterly instead.",
            "privacy,wiki",
            "active_members",
        ),
        (
            dt.date(2026, 8, 30),
            "Mentors retain cohorts",
            "Cohorts paired with a mentor kept twice as many members after three months.",
            "mentoring",
            "retention_rate",
        ),
    ]
    catalog = [
        (
            "contributions",
            "result",
            "quantitative",
            "Authored public records (threads, replies, edits, posts).",
            "count",
            "up",
            None,
            "community_kpis_monthly",
            "CHAOSS",
        ),
        (
            "active_members",
            "result",
            "quantitative",
            "Distinct members with at least one contribution in the month.",
            "members",
            "up",
            1200.0,
            "community_kpis_monthly",
            "CHAOSS",
        ),
        (
            "new_members",
            "result",
            "quantitative",
            "Active members whose first contribution on the platform falls in the month.",
            "members",
            "up",
            None,
            "community_kpis_monthly",
            "CHAOSS",
        ),
        (
            "returning_newcomer_rate",
            "result",
            "quantitative",
            "Share of new members who contribute again within 30 days.",
            "share",
            "up",
            0.4,
            "community_kpis_monthly",
            "Wikimedia CL KPIs",
        ),
        (
            "retention_rate",
            "result",
            "quantitative",
            "Share of last month's active members active this month.",
            "share",
            "up",
            None,
            "community_kpis_monthly",
            "CHAOSS",
        ),
        (
            "median_hours_to_first_response",
            "result",
            "quantitative",
            "Median hours from thread opened to first reply by another member.",
            "hours",
            "down",
            12.0,
            "community_kpis_monthly",
            "CHAOSS",
        ),
        (
            "response_rate_48h",
            "result",
            "quantitative",
            "Share of threads with a first response within 48 hours.",
            "share",
            "up",
            0.9,
            "community_kpis_monthly",
            "Agora",
        ),
        (
            "nps",
            "result",
            "quantitative",
            "% promoters (9-10) minus % detractors (0-6), by quarter.",
            "points",
            "up",
            30.0,
            "nps_quarterly",
            "Agora",
        ),
        (
            "closed_loop_rate",
            "result",
            "quantitative",
            "Feedback items answered back to the sender / items received.",
            "share",
            "up",
            0.6,
            "feedback_loop_monthly",
            "Agora",
        ),
        (
            "team_activity",
            "activity",
            "quantitative",
            "Events, talks, posts and trips by the team.",
            "activities",
            "neutral",
            None,
            "team_activity_monthly",
            "Agora",
        ),
        (
            "learnings",
            "result",
            "qualitative",
            "What the team learned, tagged with the KPIs it relates to.",
            None,
            "neutral",
            None,
            "learnings",
            "Wikimedia CL KPIs",
        ),
    ]

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute("create schema marts")
        for table, columns, rows in (
            (
                "community_kpis_monthly",
                "month date, platform varchar, kpi varchar, value double, group_size bigint, is_suppressed boolean",
                kpis,
            ),
            (
                "cohort_retention",
                "cohort_month date, platform varchar, months_since_first integer, retained_members bigint, retention_rate double, group_size bigint, is_suppressed boolean",
                cohorts,
            ),
            (
                "feedback_loop_monthly",
                "month date, channel varchar, received bigint, acted_on bigint, closed_loop_rate double, median_days_to_action double, group_size bigint, is_suppressed boolean, withheld_for_quarter boolean",
                feedback,
            ),
            (
                "feedback_loop_quarterly",
                "quarter date, received bigint, acted_on bigint, responded bigint, closed_loop_rate double, median_days_to_action double, group_size bigint, is_suppressed boolean",
                feedback_quarterly,
            ),
            (
                "nps_quarterly",
                "quarter date, respondents bigint, promoters_share double, detractors_share double, nps double, group_size bigint, is_suppressed boolean",
                nps,
            ),
            ("team_activity_monthly", "month date, activity_kind varchar, activities bigint", team),
            ("learnings", "learned_on date, title varchar, text varchar, tags varchar, kpis varchar", learnings),
            (
                "kpi_catalog",
                "kpi varchar, kind varchar, nature varchar, definition varchar, unit varchar, direction varchar, target double, mart varchar, origin varchar",
                catalog,
            ),
        ):
            con.execute(f"create table marts.{table} ({columns})")
            # one VALUES statement per table: executemany is row-by-row and takes seconds
            placeholders = ", ".join("(" + ", ".join("?" * len(rows[0])) + ")" for _ in rows)
            con.execute(f"insert into marts.{table} values {placeholders}", [v for row in rows for v in row])
        # How values were released (docs/privacy.md): exact here, as dbt builds them.
        con.execute("alter table marts.community_kpis_monthly add column release varchar default 'exact'")
        con.execute("alter table marts.community_kpis_monthly add column noise_scale double")
        con.execute("alter table marts.kpi_catalog add column release varchar default 'exact'")
    finally:
        con.close()
    os.replace(tmp, path)


def expected_cards(serving: Path) -> list[dict[str, object]]:
    """What the headline cards must say, computed in Python straight from the marts."""
    import duckdb

    from agora.kpis import headlines

    # The cards the KPI registry lists; the values below are read from the marts directly.
    headline = [(k.kpi, k.headline_label, k.card_unit) for k in headlines()]
    by_quarter = {"nps", "closed_loop_rate"}
    con = duckdb.connect(str(serving), read_only=True)
    try:
        latest = {
            kpi: con.execute(
                "select month, value, is_suppressed from marts.community_kpis_monthly"
                " where platform = 'all' and kpi = ? order by month desc limit 1",
                [kpi],
            ).fetchone()
            for kpi, _, _ in headline
            if kpi not in by_quarter
        }
        latest["nps"] = con.execute(
            "select quarter, nps, is_suppressed from marts.nps_quarterly order by quarter desc limit 1"
        ).fetchone()
        latest["closed_loop_rate"] = con.execute(
            "select quarter, closed_loop_rate, is_suppressed from marts.feedback_loop_quarterly"
            " order by quarter desc limit 1"
        ).fetchone()
    finally:
        con.close()
    cards = []
    for kpi, label, unit in headline:
        period, value, suppressed = latest[kpi]
        if suppressed:
            text = "suppressed"
        elif unit == "count":
            text = f"{int(round(value)):,}"
        elif unit == "share":
            text = f"{100 * value:.1f}%"
        elif unit == "hours":
            text = f"{value:.1f} h"
        else:
            text = f"{value:+.0f}"
        quarterly = kpi in by_quarter
        period_text = f"Q{(period.month - 1) // 3 + 1} {period.year}" if quarterly else period.strftime("%b %Y")
        cards.append({"label": label, "value": text, "period": period_text, "suppressed": bool(suppressed)})
    return cards


# --------------------------------------------------------------------------- fast checks


def _bundle_module():
    sys.path.insert(0, str(ROOT))
    from dashboards import bundle

    return bundle


def test_assets_are_consistent():
    bundle = _bundle_module()
    assert bundle.check_assets(bundle.load_assets()) == []


def test_bundle_sets_read_only_uri_and_expands_layout(tmp_path):
    import zipfile

    import yaml

    bundle = _bundle_module()
    serving = tmp_path / "wh" / "serving.duckdb"
    out = bundle.build_bundle(serving, tmp_path / "bundle.zip")
    with zipfile.ZipFile(out) as zf:
        files = {name.split("/", 1)[1]: yaml.safe_load(zf.read(name)) for name in zf.namelist()}
    assert files["metadata.yaml"]["type"] == "assets"
    (database,) = [v for k, v in files.items() if k.startswith("databases/")]
    assert database["sqlalchemy_uri"] == f"duckdb:///{serving.resolve()}?access_mode=read_only"
    assert database["allow_dml"] is False and database["allow_file_upload"] is False
    assert database["extra"]["engine_params"]["connect_args"]["config"]["enable_external_access"] is False
    (dashboard,) = [v for k, v in files.items() if k.startswith("dashboards/")]
    assert "layout" not in dashboard
    placed = {n["meta"]["uuid"] for n in dashboard["position"].values() if isinstance(n, dict) and n["type"] == "CHART"}
    charts = {v["uuid"] for k, v in files.items() if k.startswith("charts/")}
    assert placed == charts and len(charts) == 10
    tabs = [n["meta"]["text"] for n in dashboard["position"].values() if isinstance(n, dict) and n["type"] == "TAB"]
    assert tabs == ["Results", "Team activity (activity, not results)"]
    queries = [v for k, v in files.items() if k.startswith("queries/")]
    assert len(queries) == len(bundle.analyst_queries()) >= 8


def test_headline_dataset_formats_what_the_marts_hold(tmp_path):
    """The SQL behind the cards, run on DuckDB directly, says what Python reads from the marts."""
    import duckdb
    import yaml

    serving = tmp_path / "serving.duckdb"
    build_serving_db(serving)
    sql = yaml.safe_load((ROOT / "dashboards/assets/datasets/kpi_headlines.yaml").read_text())["sql"]
    con = duckdb.connect(str(serving), read_only=True)
    rows = con.execute(sql).fetchall()
    columns = [d[0] for d in con.description]
    con.close()
    got = [dict(zip(columns, row, strict=True)) for row in rows]
    want = expected_cards(serving)
    assert [(g["label"], g["value_text"], g["period_label"], g["is_suppressed"]) for g in got] == [
        (w["label"], w["value"], w["period"], w["suppressed"]) for w in want
    ]
    nps = got[4]
    assert nps["value_text"] == "suppressed" and nps["value"] is None  # never 0
    assert nps["target_status"] == "none"


def test_documented_queries_run_on_the_serving_db(tmp_path):
    import duckdb

    bundle = _bundle_module()
    serving = tmp_path / "serving.duckdb"
    build_serving_db(serving)
    con = duckdb.connect(str(serving), read_only=True)
    try:
        for query in bundle.analyst_queries():
            assert con.execute(query["sql"]).fetchall(), query["label"]
    finally:
        con.close()


# --------------------------------------------------------------------------- Superset, for real


def _ensure_chromium() -> str:
    """Debian's chromium (never a Playwright browser download); installed when missing."""
    path = shutil.which("chromium")
    if path:
        return path
    if os.geteuid() != 0:
        pytest.fail("chromium is missing and this is not root: apt-get install -y chromium")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, capture_output=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=True, env=env, capture_output=True)
    path = shutil.which("chromium")
    assert path, "apt-get installed chromium but it is not on PATH"
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Superset:
    """The REST API as an outside client sees it (plain requests: no code of ours in between)."""

    def __init__(self, url: str, password: str, user: str = "admin") -> None:
        import requests

        self.url = url
        self.http = requests.Session()
        r = self.http.post(
            f"{url}/api/v1/security/login",
            json={"username": user, "password": password, "provider": "db", "refresh": True},
            timeout=60,
        )
        r.raise_for_status()
        self.http.headers["Authorization"] = f"Bearer {r.json()['access_token']}"
        r = self.http.get(f"{url}/api/v1/security/csrf_token/", timeout=60)
        r.raise_for_status()
        self.http.headers.update({"X-CSRFToken": r.json()["result"], "Referer": url})

    def count(self, resource: str) -> int:
        r = self.http.get(f"{self.url}/api/v1/{resource}/", timeout=60)
        r.raise_for_status()
        return r.json()["count"]

    def ids(self, resource: str) -> list[int]:
        r = self.http.get(f"{self.url}/api/v1/{resource}/", params={"q": "(page_size:100)"}, timeout=60)
        r.raise_for_status()
        return sorted(item["id"] for item in r.json()["result"])

    def sql(self, sql: str) -> tuple[int, dict]:
        database_id = self.ids("database")[0]
        r = self.http.post(
            f"{self.url}/api/v1/sqllab/execute/",
            json={"database_id": database_id, "sql": sql, "runAsync": False},
            timeout=120,
        )
        return r.status_code, r.json()


def _run(args: list[str], env: dict[str, str], timeout: float = 900) -> str:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{output[-4000:]}"
    return output


def _processes(master: int) -> list[int]:
    """The gunicorn master and its direct children (the workers), from /proc."""
    kids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            kids.append(int(stat.parent.name))
    return [master, *kids]


def test_superset_dashboard_end_to_end(tmp_path):
    timings: dict[str, float] = {}

    def lap(name: str, since: float) -> float:
        timings[name] = round(time.monotonic() - since, 1)
        return time.monotonic()

    t = time.monotonic()
    chromium = _ensure_chromium()
    t = lap("chromium", t)

    serving = tmp_path / "warehouse" / "serving.duckdb"
    build_serving_db(serving)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    home = tmp_path / "superset"
    env = {k: v for k, v in os.environ.items() if k not in ("SUPERSET_ADMIN_PASSWORD", "SUPERSET_ADMIN_USER")}
    env.update(
        {
            "AGORA_SUPERSET_HOME": str(home),
            "SUPERSET_PORT": str(port),
            "AGORA_SERVING_DB": str(serving),
            "AGORA_CHROMIUM": chromium,
        }
    )
    pids: list[int] = []
    try:
        first = _run([str(RUN_SH), "up"], env)
        t = lap("first up (venv + init + start + import)", t)
        assert "generated Superset admin password" in first
        password = (home / "admin_password").read_text().strip()
        assert password in first
        assert (home / "admin_password").stat().st_mode & 0o077 == 0
        pids = _processes(int((home / "gunicorn.pid").read_text()))
        assert len(pids) >= 3, "gunicorn master and its workers"

        api = _Superset(url, password)
        before = {r: api.ids(r) for r in ("dashboard", "chart", "dataset", "database", "saved_query")}
        second = _run([str(RUN_SH), "up"], env)
        t = lap("second up (re-import)", t)
        assert "generated" not in second and password not in second  # printed once
        assert "already running" in second
        after = {r: api.ids(r) for r in ("dashboard", "chart", "dataset", "database", "saved_query")}
        assert after == before, "a second import must update in place"
        assert [len(before[r]) for r in ("dashboard", "chart", "dataset", "database")] == [1, 10, 10, 1]

        # Outside the browser (CSV export, alerts & reports, embedding): every chart's saved
        # query context answers the chart-data API with rows.
        for chart_id in before["chart"]:
            r = api.http.get(f"{url}/api/v1/chart/{chart_id}/data/", timeout=120)
            assert r.status_code == 200, (chart_id, r.status_code, r.text[:500])
            results = r.json()["result"]
            assert results and all(q["rowcount"] > 0 and q["data"] for q in results), (
                chart_id,
                results[0].get("query"),
            )
        t = lap("chart-data API, every chart", t)

        # Analysts: SQL Lab reads the marts and can change nothing.
        _run([str(RUN_SH), "analyst", "ana"], {**env, "AGORA_ANALYST_PASSWORD": "analyst-pw-0123"})
        t = lap("analyst user", t)
        analyst = _Superset(url, "analyst-pw-0123", user="ana")
        status, body = analyst.sql("select max(month) as m from marts.community_kpis_monthly")
        assert status == 200 and body["data"] == [{"m": "2026-10-01"}], body
        status, body = analyst.sql("create table marts.x as select 1 as a")
        assert status >= 400 and "DML" in json.dumps(body)
        status, body = analyst.sql("select * from read_csv('/etc/hostname')")
        assert status >= 400 and "disabled by configuration" in json.dumps(body)
        database_id = analyst.ids("database")[0]
        assert analyst.http.put(f"{url}/api/v1/database/{database_id}", json={"allow_dml": True}).status_code == 403

        # Publish a new serving file while Superset runs, with a reader still on the old one.
        import duckdb

        old_reader = duckdb.connect(str(serving), read_only=True)
        old_active = old_reader.execute(
            "select value from marts.community_kpis_monthly where platform = 'all' and kpi = 'active_members' "
            "order by month desc limit 1"
        ).fetchone()[0]
        build_serving_db(serving, seed=11, scale=1.4)
        status, body = api.sql(
            "select value from marts.community_kpis_monthly where platform = 'all' and kpi = 'active_members' "
            "order by month desc limit 1"
        )
        assert status == 200, body
        new_active = body["data"][0]["value"]
        assert new_active != old_active
        assert old_reader.execute("select count(*) from marts.kpi_catalog").fetchone()[0] == 11
        old_reader.close()
        t = lap("publish while running", t)

        # The executive's view, in a real browser.
        # docs/dashboard.png comes from what `make run` serves (`make docs-images`), not from this stand-in.
        screenshot = tmp_path / "dashboard.png"
        browser = subprocess.run(
            [
                str(ROOT / ".superset/venv/bin/python"),
                "-m",
                "dashboards.browser",
                "--url",
                url,
                "--out",
                str(screenshot),
            ],
            env={**env, "SUPERSET_ADMIN_PASSWORD": password, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=600,
            cwd=ROOT,
        )
        t = lap("browser", t)
        report = json.loads(browser.stdout)
        assert report["tabs"] == ["Results", "Team activity (activity, not results)"]
        assert len(report["charts"]) == 10
        broken = {name: c for name, c in report["charts"].items() if c["status"] != "ok"}
        assert not broken and not report["failed_requests"], (broken, report["failed_requests"])
        assert browser.returncode == 0, browser.stderr[-2000:]
        cards = [{k: c[k] for k in ("label", "value", "period", "suppressed")} for c in report["cards"]]
        assert cards == expected_cards(serving)
        assert cards[0]["value"] == f"{int(new_active):,}"  # the published file, not the old one
        assert [c["value"] for c in cards if c["suppressed"]] == ["suppressed"]  # NPS: too few answers
        assert screenshot.stat().st_size > 50_000
    finally:
        stop = subprocess.run([str(RUN_SH), "stop"], env=env, capture_output=True, text=True, timeout=120)
        timings["stop"] = round(time.monotonic() - t, 1)
        print("dashboard test timings (s):", json.dumps(timings))
    assert stop.returncode == 0, stop.stderr
    alive = [p for p in pids if Path(f"/proc/{p}").exists()]
    assert not alive, f"processes left running: {alive}"
