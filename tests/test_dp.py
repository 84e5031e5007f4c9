"""Differential privacy (issue 20): OpenDP noise drawn once, a budget ledger, nothing exact served.

The warehouse is built once per module by real dbt from synthetic landing data of two
platforms; the exact build is published and kept aside, then the same warehouse is
released and published with `privacy.differential_privacy` on.
"""

from __future__ import annotations

import math
import random
import re
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import pytest
import yaml
from conftest import TEST_KEY
from landing_factory import LandingFactory
from typer.testing import CliRunner

from agora import dp, pipeline
from agora.config import ConfigError, load_config
from agora.release import DP_KPIS, EXACT_KPIS, dp_rows

SOURCES = [
    {"name": "forum", "type": "discourse", "base_url": "https://discuss.example.org"},
    {"name": "gh", "type": "github", "repos": ["org/repo"]},
]
DP_BLOCK = {"rho_per_month": 0.05, "rho_cap_12_months": 0.6, "release_after_days": 7}
MONTHS = [date(2025, m, 1) for m in range(1, 7)]
FIRST_RELEASE = datetime(2025, 6, 10, tzinfo=UTC)  # January..May are due (May closes 1 June + 7 days)


def _config(directory: Path, state: str, **dp_block) -> Path:
    privacy = {"k_min": 5}
    if dp_block:
        privacy["differential_privacy"] = dp_block
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"agora-{state}.yml"
    paths = {"landing": "data/landing", "state": f"data/{state}", "quarantine": "data/quarantine"}
    paths["warehouse"] = "data/warehouse"
    doc = {"community": "DP test", "privacy": privacy, "paths": paths, "sources": SOURCES}
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _land(root: Path) -> None:
    """~200 accounts over six months; some post up to 30 times a month (above the clamp of 10)."""
    rng = random.Random(20)  # the *data* is fixed; the noise never is
    for source, platform, accounts, base in (("forum", "discourse", 140, 1000), ("gh", "github", 70, 5000)):
        f = LandingFactory(root, source, platform)
        for a in range(accounts):
            start = rng.randrange(6)
            for m in MONTHS[start:]:
                if rng.random() < 0.6:
                    for i in range(rng.choice((1, 1, 2, 3, 30))):
                        f.thread(str(base + a), f"{m:%Y-%m}-{1 + (a + i) % 27:02d}T10:{i % 60:02d}:00Z")
        f.write()


def _rows(path: Path, table: str, where: str = "true") -> list[tuple]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(f"select * from marts.{table} where {where} order by all").fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def community(tmp_path_factory):
    root = tmp_path_factory.mktemp("dp")
    _land(root / "data" / "landing")
    exact_cfg = load_config(_config(root, "state-exact"))
    pipeline.build(exact_cfg)
    pipeline.validate_marts(exact_cfg)
    pipeline.publish(exact_cfg)
    serving = root / "data" / "warehouse" / "serving.duckdb"
    exact = root / "exact-serving.duckdb"
    shutil.copy(serving, exact)
    dp_cfg = load_config(_config(root, "state-dp", **DP_BLOCK))
    first = pipeline.release(dp_cfg, as_of=FIRST_RELEASE)
    pipeline.publish(dp_cfg)
    return {"root": root, "exact_cfg": exact_cfg, "dp_cfg": dp_cfg, "exact": exact, "serving": serving, "first": first}


# -- the mechanism ---------------------------------------------------------------------------


def test_noise_spread_matches_the_mechanism_scale():
    """Variance, mean and the ±1.96σ coverage of 20 000 draws of the mechanism at the plan's scale.

    OpenDP draws from the OS's cryptographic generator and has no seed (by design: a
    seedable generator in production would be a vulnerability), so this test is not
    seeded. It is made as good as deterministic by its thresholds instead: each of the
    three checks fails a correct mechanism with probability < 2e-9 (|z| > 6 under the
    normal approximation), < 6e-9 for the test.
    """
    settings = load_config_from_dict(DP_BLOCK)
    plan = dp.Plan.for_settings(settings)
    scale = plan.kpis["active_members"]["scale"]
    n = 20_000
    draws = [v - 1000 for v in dp.noisy([1000] * n, scale)]
    mean = sum(draws) / n
    var = sum((d - mean) ** 2 for d in draws) / (n - 1)
    # (n-1)s²/σ² ~ χ²(n-1): mean n-1, sd √(2(n-1)).
    z_var = ((n - 1) * var / scale**2 - (n - 1)) / math.sqrt(2 * (n - 1))
    z_mean = mean / (scale / math.sqrt(n))
    inside = sum(abs(d) <= dp.Z95 * scale for d in draws) / n
    z_cov = (inside - 0.95) / math.sqrt(0.95 * 0.05 / n)
    assert abs(z_var) < 6, (var, scale**2)
    assert abs(z_mean) < 6, mean
    assert abs(z_cov) < 6, inside


def load_config_from_dict(block: dict):
    from agora.config import DifferentialPrivacy

    return DifferentialPrivacy(**block)


def test_the_split_is_even_and_opendp_maps_it_to_the_budget():
    plan = dp.Plan.for_settings(load_config_from_dict({**DP_BLOCK, "max_contributions_per_account": 4}))
    assert set(plan.kpis) == set(dp.MEASURED)
    for k in plan.kpis.values():
        assert k["rho"] <= DP_BLOCK["rho_per_month"] / 6 * (1 + 1e-9)
        assert k["rho"] == pytest.approx(DP_BLOCK["rho_per_month"] / 6, rel=1e-6)
        # Gaussian under zCDP: rho = Δ² / (2σ²)
        assert k["scale"] == pytest.approx(k["l2_sensitivity"] / math.sqrt(2 * k["rho"]), rel=1e-6)
    assert plan.kpis["active_members"]["l2_sensitivity"] == pytest.approx(math.sqrt(2))
    assert plan.kpis["contributions"]["l2_sensitivity"] == pytest.approx(4 * math.sqrt(2))
    assert plan.rho <= DP_BLOCK["rho_per_month"]
    # Wikimedia's terms: ε at δ = 1e-7
    assert dp.epsilon(0.05) == pytest.approx(0.05 + 2 * math.sqrt(0.05 * math.log(1e7)))


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({**DP_BLOCK, "rho_per_month": 0}, "privacy.differential_privacy.rho_per_month"),
        ({**DP_BLOCK, "rho_per_month": 0.7}, "larger than rho_cap_12_months"),
        ({**DP_BLOCK, "release_after_days": 1}, "privacy.differential_privacy.release_after_days"),
        ({**DP_BLOCK, "epsilon": 1}, "privacy.differential_privacy.epsilon: unknown key"),
        ({"rho_per_month": 0.05, "release_after_days": 7}, "rho_cap_12_months: required key is missing"),
    ],
)
def test_the_block_is_validated_like_every_key(tmp_path, block, message):
    with pytest.raises(ConfigError, match=message):
        load_config(_config(tmp_path, "s", **block))


def test_off_by_default(tmp_path):
    assert load_config(_config(tmp_path, "s")).privacy.differential_privacy is None


# -- suppression on noisy values ------------------------------------------------------------


def _record(month: date, values: dict[str, dict[str, int]]) -> dict:
    return {
        "month": month.isoformat(),
        "cells": ["discourse", "all"],
        "kpis": {k: {"scale": 10.0, "values": values.get(k, {"discourse": 50, "all": 50})} for k in dp.MEASURED},
    }


def test_noisy_counts_below_k_are_suppressed_and_rates_need_a_noisy_denominator_of_k():
    jan, feb, mar = date(2025, 1, 1), date(2025, 2, 1), date(2025, 3, 1)
    releases = {
        jan: _record(jan, {"active_members": {"discourse": 4, "all": 5}, "new_members": {"discourse": -3, "all": 9}}),
        feb: _record(
            feb,
            {
                "active_members": {"discourse": 40, "all": 41},
                "retained_members": {"discourse": 3, "all": 60},
                "returned_newcomers": {"discourse": 2, "all": 4},  # January's newcomers
            },
        ),
    }
    rows = {(r["month"], r["platform"], r["kpi"]): r for r in dp_rows(releases, k_min=5)}
    assert rows[(jan, "discourse", "active_members")] | {"noise_scale": None} == {
        "month": jan,
        "platform": "discourse",
        "kpi": "active_members",
        "value": None,
        "group_size": 4,
        "is_suppressed": True,
        "release": "dp",
        "noise_scale": None,
    }
    assert rows[(jan, "all", "active_members")]["value"] == 5.0  # exactly k: published
    assert rows[(jan, "discourse", "new_members")]["group_size"] == 0  # a negative draw is no group
    assert rows[(jan, "discourse", "contributions")]["is_suppressed"]  # its group: 4 noisy active members
    # February retention: noisy retained / January's noisy active; January's 4 is below k.
    assert rows[(feb, "discourse", "retention_rate")]["is_suppressed"]
    assert rows[(feb, "all", "retention_rate")]["value"] == 1.0  # 60 / 5 clipped to a share
    assert rows[(feb, "all", "churn_rate")]["value"] == 0.0
    # January's returning newcomers come with February's release; -3 new members: suppressed.
    assert rows[(jan, "discourse", "returning_newcomer_rate")]["is_suppressed"]
    assert rows[(jan, "all", "returning_newcomer_rate")]["value"] == pytest.approx(4 / 9)
    assert (feb, "all", "returning_newcomer_rate") not in rows  # March not released yet
    assert (jan, "all", "retention_rate") not in rows  # no December release to divide by
    assert mar not in {r[0] for r in rows}


# -- the release, the ledger and serving ---------------------------------------------------------


def test_first_release_spends_the_budget_of_each_due_month(community):
    assert community["first"]["released"] == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05"]
    ledger = dp.read_ledger(community["dp_cfg"])
    assert [e["month"] for e in ledger] == [f"{m:%Y-%m-%d}" for m in MONTHS[:5]]
    for e in ledger:
        assert e["event"] == "release" and e["mechanism"] == dp.MECHANISM
        assert set(e["kpis"]) == set(dp.MEASURED) and e["rho"] <= DP_BLOCK["rho_per_month"]
        assert set(e["scale_by_kpi"]) == set(dp.MEASURED) and e["released_at"] == "2025-06-10T00:00:00+00:00"
    # Nothing in the state folder holds account data: only months, KPI names, numbers.
    text = "".join(p.read_text() for p in (community["root"] / "data" / "state-dp").rglob("*") if p.is_file())
    assert not any(len(w) == 64 for w in text.replace('"', " ").split())
    assert TEST_KEY not in text


def test_with_dp_on_no_exact_account_based_count_reaches_serving(community):
    exact = {(r[0], r[1], r[2]): r for r in _rows(community["exact"], "community_kpis_monthly")}
    served = _rows(community["serving"], "community_kpis_monthly")
    by_release = {}
    for r in served:
        by_release.setdefault(r[6], set()).add(r[2])
    assert by_release.get("exact", set()) <= set(EXACT_KPIS)  # no pageviews in this community
    assert by_release["dp"] == set(DP_KPIS)
    assert _rows(community["serving"], "cohort_retention") == []
    assert _rows(community["exact"], "cohort_retention") != []
    dp_rows_served = [r for r in served if r[6] == "dp"]
    assert {r[0] for r in dp_rows_served} == set(MONTHS[:5])  # June is not due yet
    counts = [r for r in dp_rows_served if r[2] in ("active_members", "new_members", "contributions")]
    assert len(counts) >= 40
    same_value = sum(r[3] is not None and r[3] == exact[r[:3]][3] for r in counts)
    same_group = sum(r[4] == exact[r[:3]][4] for r in counts)
    # Discrete Gaussian, σ ≈ 11 (counts) / 110 (contributions): a draw of exactly 0 has p < 0.04.
    assert same_value <= len(counts) * 0.2 and same_group <= len(counts) * 0.2, (same_value, same_group)
    # Every noisy value is within 6σ of the exact one (not a different number altogether).
    for r in counts:
        if r[3] is not None and exact[r[:3]][3] is not None:
            assert abs(r[3] - exact[r[:3]][3]) <= 6 * r[7]
    catalog = dict((r[0], r[-1]) for r in _rows(community["serving"], "kpi_catalog"))
    assert catalog["active_members"] == "dp" and catalog["cohort_retention"] == "withheld"
    assert catalog["median_hours_to_first_response"] == "withheld" and catalog["support_page_views"] == "exact"


def test_a_rebuild_and_a_late_record_republish_identical_values(community):
    cfg = community["dp_cfg"]
    before = _rows(community["serving"], "community_kpis_monthly")
    # A late record in released March, then a full rebuild (what an erasure does) and a republish.
    late = LandingFactory(community["root"] / "data" / "landing", "forum", "discourse")
    late._seq = 10**6  # record ids of their own, not copies of the first run's
    for a in range(20):
        late.thread(str(9000 + a), "2025-03-15T10:00:00Z")
    late.write(run_id="late")
    pipeline.build(cfg, full_refresh=True)
    pipeline.validate_marts(cfg)
    assert pipeline.release(cfg, as_of=FIRST_RELEASE)["released"] == []
    pipeline.publish(cfg)
    assert _rows(community["serving"], "community_kpis_monthly") == before
    # The exact warehouse did change: 20 more active members in March on the forum.
    con = duckdb.connect(str(community["root"] / "data" / "warehouse" / "agora.duckdb"), read_only=True)
    try:
        (march,) = con.execute(
            "select value from intermediate.int_dp_counts_monthly "
            "where platform = 'discourse' and month = date '2025-03-01' and kpi = 'new_members'"
        ).fetchone()
    finally:
        con.close()
    exact_march = [
        r
        for r in _rows(community["exact"], "community_kpis_monthly")
        if r[:3] == (date(2025, 3, 1), "discourse", "new_members")
    ][0]
    assert march == exact_march[4] + 20
    # July 8: June is due now, and only June is drawn.
    assert pipeline.release(cfg, as_of=datetime(2025, 7, 8, tzinfo=UTC))["released"] == ["2025-06"]
    pipeline.publish(cfg)
    after = _rows(community["serving"], "community_kpis_monthly")
    assert [r for r in after if r[0] < date(2025, 5, 1) or r[2] not in ("returning_newcomer_rate",)] != []
    old = {r[:3]: r for r in before}
    for r in after:
        if r[:3] in old:
            assert r == old[r[:3]]


def test_an_erasure_rebuild_republishes_the_released_values(community, tmp_path):
    """The erasure's full rebuild and republish (agora.privacy) serves the same released values.

    It runs on a copy of the module's community: the rebuild releases every month due
    today (its release is as of now), which the other tests must not see.
    """
    from agora import privacy

    root = tmp_path / "copy"
    shutil.copytree(community["root"], root)
    cfg = load_config(root / "agora-state-dp.yml")
    serving = root / "data" / "warehouse" / "serving.duckdb"
    pipeline.publish(cfg)
    before = _rows(serving, "community_kpis_monthly", "release = 'dp'")
    released_before = {r[0] for r in before}
    requests = root / "requests.csv"
    requests.write_text("platform,account,kind,requested_at\ndiscourse,1003,erasure,2025-07-01\n")
    done = privacy.apply_requests(cfg, requests)
    assert done.erasures == 1 and done.completion.rebuilt and done.completion.requests_completed == 1
    after = _rows(serving, "community_kpis_monthly", "release = 'dp'")
    # Rows served before keep their values exactly (a rate may be added: June's returning
    # newcomers come with July's release); months due since are released now.
    now_served = {r[:3]: r for r in after}
    assert [now_served.get(r[:3]) for r in before] == before
    assert {r[0] for r in after} > released_before
    assert not list((root / "data" / "state-dp" / "dp" / "released").glob("*.tmp"))


def test_the_ledger_refuses_a_release_past_the_cap(community, tmp_path):
    root = community["root"]
    cfg_path = _config(root, "state-cap", rho_per_month=0.2, rho_cap_12_months=0.5, release_after_days=7)
    cfg = load_config(cfg_path)
    with pytest.raises(dp.BudgetRefused, match=r"2025-03 .*cap 0.5.*2025-04"):
        pipeline.release(cfg, as_of=FIRST_RELEASE)
    ledger = dp.read_ledger(cfg)
    assert [(e["month"][:7], e["event"]) for e in ledger] == [
        ("2025-01", "release"),
        ("2025-02", "release"),
        ("2025-03", "refused"),
        ("2025-04", "refused"),
        ("2025-05", "refused"),
    ]
    assert sum(e["rho"] for e in ledger) <= 0.5
    assert set(dp.released(cfg)) == {date(2025, 1, 1), date(2025, 2, 1)}
    # A refusal is final: the next run neither retries nor fails again, and serves only what was released.
    assert pipeline.release(cfg, as_of=FIRST_RELEASE)["released"] == []
    pipeline.publish(cfg)
    months = {r[0] for r in _rows(community["serving"], "community_kpis_monthly", "release = 'dp'")}
    assert months == {date(2025, 1, 1), date(2025, 2, 1)}
    result = CliRunner().invoke(_app(), ["privacy", "budget", "--config", str(cfg_path)])
    assert result.exit_code == 0, result.output
    assert "refused" in result.output and "0.4000 of cap 0.5" in result.output


def test_concurrent_releases_draw_each_month_once_and_lose_no_ledger_line(community):
    """Four releases of the same due months at once: the ``dp`` lock makes them take turns,
    so each month is drawn (and its budget spent) once, and every ledger line survives."""
    import threading

    cfg = load_config(_config(community["root"], "state-race", **DP_BLOCK))
    start = threading.Barrier(4)
    results, errors = [], []

    def run():
        start.wait(60)
        try:
            results.append(pipeline.release(cfg, as_of=FIRST_RELEASE))
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(600)
    assert not errors and len(results) == 4
    due = [f"{m:%Y-%m}" for m in MONTHS[:5]]
    assert sorted(m for r in results for m in r["released"]) == due  # each month by exactly one run
    ledger = dp.read_ledger(cfg)
    assert sorted(e["month"][:7] for e in ledger) == due and all(e["event"] == "release" for e in ledger)
    assert sum(e["rho"] for e in ledger) <= 5 * DP_BLOCK["rho_per_month"] + 1e-9
    assert sorted(f"{m:%Y-%m}" for m in dp.released(cfg)) == due
    assert not list((community["root"] / "data" / "state-race").rglob("*.tmp"))


def _app():
    from agora.cli import app

    return app


def test_summary_and_budget_label_dp_values(community, monkeypatch):
    from agora import cli as cli_module

    monkeypatch.setattr(cli_module.console, "width", 250)  # one table row per line
    cfg = community["dp_cfg"]
    pipeline.publish(cfg)
    cli = CliRunner()
    out = cli.invoke(_app(), ["summary", "--config", str(cfg.root / "agora-state-dp.yml")])
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if "active_members" in x)
    assert re.search(r"\d+ \(differentially private, ±\d+ at 95 %\)", line), line
    budget = cli.invoke(_app(), ["privacy", "budget", "--config", str(cfg.root / "agora-state-dp.yml")])
    assert budget.exit_code == 0, budget.output
    assert "2025-01" in budget.output and "epsilon" in budget.output


def test_postgres_serving_gets_the_same_released_values(community, postgres, monkeypatch):
    """publish_pg substitutes the released tables too: PostgreSQL serving holds no exact account count."""
    import psycopg2

    from agora.config import PostgresServing
    from agora.publish_pg import provision

    serving = PostgresServing(kind="postgres", host=postgres.host, port=postgres.port, database="serving_dp")
    monkeypatch.setenv("AGORA_SERVING_PASSWORD", "publisher-test-only")
    provision(postgres.url(), serving, "reader-test-only")
    root = community["root"]
    path = _config(root, "state-dp", **DP_BLOCK)
    doc = yaml.safe_load(path.read_text())
    doc["serving"] = {"kind": "postgres", "host": postgres.host, "port": postgres.port, "database": "serving_dp"}
    pg_path = root / "agora-pg.yml"
    pg_path.write_text(yaml.safe_dump(doc, sort_keys=False))
    pipeline.publish(community["dp_cfg"])
    pipeline.publish(load_config(pg_path))
    conn = psycopg2.connect(
        host=postgres.host, port=postgres.port, dbname="serving_dp", user="agora_reader", password="reader-test-only"
    )
    try:
        with conn.cursor() as cur:
            cur.execute("select * from marts.community_kpis_monthly order by 1, 2, 3")
            pg_rows = cur.fetchall()
            cur.execute("select count(*) from marts.cohort_retention")
            (cohorts,) = cur.fetchone()
    finally:
        conn.close()
    assert pg_rows == _rows(community["serving"], "community_kpis_monthly")
    assert cohorts == 0 and {r[6] for r in pg_rows} == {"dp"}


def test_agora_publish_releases_due_months_before_publishing(community):
    """The CLI's publish is contract → release → publish: with DP on, nothing exact and every due month drawn."""
    path = _config(community["root"], "state-cli", **DP_BLOCK)
    result = CliRunner().invoke(_app(), ["publish", "--config", str(path)])
    assert result.exit_code == 0, result.output
    cfg = load_config(path)
    ledger = dp.read_ledger(cfg)
    released_months = [date.fromisoformat(e["month"]) for e in ledger]
    assert released_months[:6] == MONTHS  # and every later month already due today
    assert released_months == dp.due_months(MONTHS[0], datetime.now(UTC), DP_BLOCK["release_after_days"])
    served = _rows(community["serving"], "community_kpis_monthly", "kpi = 'active_members' and platform = 'all'")
    assert [r[0] for r in served] == released_months and {r[6] for r in served} == {"dp"}
