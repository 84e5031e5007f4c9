"""What the monthly report shows, read from the *published* serving database only.

The serving database is the DuckDB file Superset reads (``serving.duckdb``) or the
PostgreSQL serving schema; never the warehouse or landing. Every value keeps what a
reader needs to trust it: its group size, whether it was suppressed (fewer than k
people), whether it is provisional, and its margin when it was released with
differential privacy (the ``noise_scale`` column, when the marts carry one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from agora.config import AgoraConfig

#: Results in the report's order: (kpi, label, unit). NPS and the closed-loop rate are
#: read from their own marts (by quarter); the others from community_kpis_monthly.
RESULTS = (
    ("active_members", "Active members", "count"),
    ("new_members", "New members", "count"),
    ("returning_newcomer_rate", "Returning newcomers", "share"),
    ("retention_rate", "Retention (active again this month)", "share"),
    ("median_hours_to_first_response", "Median time to first response", "hours"),
    ("response_rate_48h", "Threads answered within 48 h", "share"),
    ("nps", "Net Promoter Score (quarter)", "points"),
    ("closed_loop_rate", "Feedback closed-loop rate", "share"),
)
PROVISIONAL_DAYS = 30
# 1.96 standard deviations: the 95 % margin of a Gaussian release.
MARGIN_Z = 1.96


class ReportError(RuntimeError):
    """The report cannot be made from what is published (nothing published, no such month)."""


@dataclass
class Point:
    period: date
    value: float | None
    group_size: int | None
    suppressed: bool
    withheld: bool = False  # published elsewhere at a coarser grain (feedback by quarter)
    noise_scale: float | None = None

    @property
    def margin(self) -> float | None:
        return None if self.noise_scale is None or self.value is None else MARGIN_Z * self.noise_scale


@dataclass
class Result:
    kpi: str
    label: str
    unit: str
    grain: str  # month or quarter
    current: Point | None
    previous: Point | None
    series: list[Point]
    target: float | None
    direction: str
    provisional: bool


@dataclass
class ReportData:
    community: str
    month: date
    k_min: int
    as_of: date
    results: list[Result]
    feedback_grain: str
    feedback: list[dict[str, Any]]
    learnings: list[dict[str, Any]]
    cohorts: list[dict[str, Any]]
    team: list[dict[str, Any]]
    months: list[date] = field(default_factory=list)


def month_start(d: date) -> date:
    return d.replace(day=1)


def add_months(d: date, n: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + n, 12)
    return date(y, m + 1, 1)


def quarter_start(d: date) -> date:
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


class Serving:
    """Read-only queries on the published marts (DuckDB file or PostgreSQL schema)."""

    def __init__(self, cfg: AgoraConfig) -> None:
        if cfg.serving.kind == "postgres":
            from agora.publish_pg import connect

            self.con = connect(cfg.serving, application_name="agora-report")
            self.con.set_session(readonly=True)
            self.schema, self.param = '"' + cfg.serving.schema_name + '"', "%s"
        else:
            import duckdb

            from agora.publish import serving_path

            path = serving_path(cfg)
            if not path.exists():
                raise ReportError(f"nothing published yet: {path} does not exist (run the pipeline first)")
            self.con = duckdb.connect(str(path), read_only=True)
            self.schema, self.param = "marts", "?"

    def rows(self, sql: str, params: list[Any] | tuple = ()) -> list[dict[str, Any]]:
        cur = self.con.cursor()
        try:
            cur.execute(sql.format(m=self.schema, p=self.param), list(params))
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
        finally:
            cur.close()

    def columns(self, table: str) -> set[str]:
        schema = self.schema.strip('"')
        found = self.rows(
            "select column_name from information_schema.columns where table_schema = {p} and table_name = {p}",
            [schema, table],
        )
        return {r["column_name"] for r in found}

    def close(self) -> None:
        self.con.close()


def _num(v: Any) -> float | None:
    return None if v is None else float(v)  # PostgreSQL numerics arrive as Decimal


def _noise(columns: set[str]) -> str:
    return "noise_scale" if "noise_scale" in columns else "cast(null as double precision)"


def latest_complete_month(db: Serving, today: date) -> date:
    """The latest published month that ended before `today` (a month still running is not reported)."""
    found = db.rows(
        "select max(month) as month from {m}.community_kpis_monthly where platform = 'all' and month < {p}",
        [month_start(today)],
    )
    if not found or found[0]["month"] is None:
        raise ReportError("nothing published yet: community_kpis_monthly has no complete month")
    return _as_date(found[0]["month"])


def _as_date(v: Any) -> date:
    return v.date() if hasattr(v, "date") and callable(v.date) else v


def load(cfg: AgoraConfig, month: date | None, today: date) -> ReportData:
    db = Serving(cfg)
    try:
        if month is None:
            month = latest_complete_month(db, today)
        months_published = {
            _as_date(r["month"])
            for r in db.rows("select distinct month from {m}.community_kpis_monthly where platform = 'all'")
        }
        if month not in months_published:
            have = sorted(months_published)
            span = f"{have[0]:%Y-%m} to {have[-1]:%Y-%m}" if have else "none"
            raise ReportError(f"month {month:%Y-%m} is not published (published months: {span})")
        first = add_months(month, -11)
        months = [add_months(first, i) for i in range(12)]
        catalog = {r["kpi"]: r for r in db.rows("select kpi, target, direction from {m}.kpi_catalog")}
        results = _monthly_results(db, month, first, catalog, today)
        results.append(_nps(db, month, catalog, today))
        grain, feedback = _feedback(db, month, first)
        results.append(_closed_loop(feedback, grain, month, catalog, today))
        learnings = db.rows(
            "select learned_on, title, text, tags, kpis from {m}.learnings "
            "where learned_on >= {p} and learned_on < {p} order by learned_on, title",
            [month, add_months(month, 1)],
        )
        cohorts = db.rows(
            "select cohort_month, months_since_first, retention_rate, group_size, is_suppressed "
            "from {m}.cohort_retention where platform = 'all' and cohort_month >= {p} and cohort_month <= {p} "
            "order by cohort_month, months_since_first",
            [add_months(month, -12), month],
        )
        team = db.rows(
            "select month, activity_kind, activities from {m}.team_activity_monthly "
            "where month >= {p} and month <= {p} order by month, activity_kind",
            [first, month],
        )
    finally:
        db.close()
    for rows in (learnings, cohorts, team):
        for r in rows:
            for k in ("learned_on", "cohort_month", "month"):
                if k in r:
                    r[k] = _as_date(r[k])
    return ReportData(
        community=cfg.community,
        month=month,
        k_min=cfg.privacy.k_min,
        as_of=today,
        results=results,
        feedback_grain=grain,
        feedback=feedback,
        learnings=learnings,
        cohorts=cohorts,
        team=team,
        months=months,
    )


def _provisional(period_end: date, today: date) -> bool:
    """Still moving: the period ended less than 30 days ago (late answers, returning newcomers)."""
    return period_end + timedelta(days=PROVISIONAL_DAYS) > today


def _monthly_results(db: Serving, month: date, first: date, catalog: dict, today: date) -> list[Result]:
    kpis = [k for k, _, _ in RESULTS if k not in ("nps", "closed_loop_rate")]
    noise = _noise(db.columns("community_kpis_monthly"))
    rows = db.rows(
        f"select kpi, month, value, group_size, is_suppressed, {noise} as noise_scale "  # noqa: S608 - constants and the quoted schema only
        "from {m}.community_kpis_monthly where platform = 'all' and month >= {p} and month <= {p} "
        f"and kpi in ({', '.join(['{p}'] * len(kpis))}) order by month",
        [first, month, *kpis],
    )
    out = []
    for kpi, label, unit in RESULTS:
        if kpi not in kpis:
            continue
        series = [
            Point(
                _as_date(r["month"]),
                _num(r["value"]),
                r["group_size"],
                bool(r["is_suppressed"]),
                False,
                _num(r["noise_scale"]),
            )
            for r in rows
            if r["kpi"] == kpi
        ]
        out.append(_result(kpi, label, unit, "month", series, month, add_months(month, -1), catalog, today))
    return out


def _result(kpi, label, unit, grain, series, period, previous, catalog, today) -> Result:
    by_period = {p.period: p for p in series}
    cat = catalog.get(kpi, {})
    end = add_months(period, 3 if grain == "quarter" else 1) - timedelta(days=1)
    return Result(
        kpi=kpi,
        label=label,
        unit=unit,
        grain=grain,
        current=by_period.get(period),
        previous=by_period.get(previous),
        series=series,
        target=_num(cat.get("target")),
        direction=cat.get("direction") or "up",
        provisional=_provisional(end, today),
    )


def _nps(db: Serving, month: date, catalog: dict, today: date) -> Result:
    quarter = quarter_start(month)
    noise = _noise(db.columns("nps_quarterly"))
    rows = db.rows(
        f"select quarter, nps, group_size, is_suppressed, {noise} as noise_scale from {{m}}.nps_quarterly "  # noqa: S608 - constants only
        "where quarter > {p} and quarter <= {p} order by quarter",
        [add_months(quarter, -12), quarter],
    )
    series = [
        Point(
            _as_date(r["quarter"]),
            _num(r["nps"]),
            r["group_size"],
            bool(r["is_suppressed"]),
            False,
            _num(r["noise_scale"]),
        )
        for r in rows
    ]
    return _result("nps", RESULTS[6][1], "points", "quarter", series, quarter, add_months(quarter, -3), catalog, today)


def _feedback(db: Serving, month: date, first: date) -> tuple[str, list[dict[str, Any]]]:
    """The feedback loop by month when every month of the last twelve is published, else by quarter."""
    monthly = db.rows(
        "select month as period, received, acted_on, closed_loop_rate, group_size, is_suppressed, "
        "withheld_for_quarter from {m}.feedback_loop_monthly "
        "where channel = 'all' and month >= {p} and month <= {p} order by month",
        [first, month],
    )
    if monthly and all(not r["is_suppressed"] and not r["withheld_for_quarter"] for r in monthly):
        for r in monthly:
            r["period"] = _as_date(r["period"])
            r["responded"] = None if r["closed_loop_rate"] is None else round(r["closed_loop_rate"] * r["received"])
        return "month", monthly
    quarterly = db.rows(
        "select quarter as period, received, acted_on, responded, closed_loop_rate, group_size, is_suppressed "
        "from {m}.feedback_loop_quarterly where quarter > {p} and quarter <= {p} order by quarter",
        [add_months(quarter_start(month), -12), quarter_start(month)],
    )
    for r in quarterly:
        r["period"] = _as_date(r["period"])
    return "quarter", quarterly


def _closed_loop(feedback: list[dict], grain: str, month: date, catalog: dict, today: date) -> Result:
    series = [
        Point(r["period"], _num(r["closed_loop_rate"]), r["group_size"], bool(r["is_suppressed"])) for r in feedback
    ]
    period = month if grain == "month" else quarter_start(month)
    previous = add_months(period, -1 if grain == "month" else -3)
    label = RESULTS[7][1] + (" (quarter)" if grain == "quarter" else "")
    return _result("closed_loop_rate", label, "share", grain, series, period, previous, catalog, today)
