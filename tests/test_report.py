"""`agora report`: the demo community's month, rendered to HTML and printed to PDF for real.

The demo is extracted, built and published once for the module (the same functions
`agora run` calls); the report then reads only the published serving file. The PDF's
text is extracted with Debian's pdftotext (poppler-utils) and checked against the
numbers the serving database holds.
"""

from __future__ import annotations

import re
import subprocess
from datetime import date
from pathlib import Path

import duckdb
import pyarrow.dataset as ds
import pytest
import yaml

from agora import pipeline
from agora.config import load_config
from agora.demo import start_demo
from agora.landing import landing_files
from agora.publish import serving_path
from agora.report import build_report
from agora.report.pdf import screenshot
from tests.debian import ensure_binary

ROOT = Path(__file__).resolve().parents[1]
AGORA = ROOT / ".venv" / "bin" / "agora"
MONTH = date(2026, 10, 1)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    ensure_binary("chromium", "chromium")
    ensure_binary("pdftotext", "poppler-utils")
    root = tmp_path_factory.mktemp("report")
    demo = start_demo(root / "demo", seed=42, data_dir=root / "data")
    try:
        cfg = load_config(demo.config_path)
        for source in cfg.sources:
            pipeline.extract(cfg, source.name, demo.start.isoformat(), demo.end.isoformat())
        pipeline.transform(cfg)
    finally:
        demo.stop()
    actors: set[str] = set()
    for source in ("forum", "gh", "so"):
        table = ds.dataset(landing_files(cfg.path("landing"), source), format="parquet").to_table(columns=["actor"])
        actors |= {a for a in table.column("actor").to_pylist() if a}
    yield demo, cfg, actors


def _report(cfg, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(AGORA), "report", "--config", str(cfg.root / "agora.yml"), "--out", str(out), *args],
        capture_output=True,
        text=True,
        timeout=600,
    )


def _pdf_text(pdf: Path) -> str:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(text.split())


def _between(text: str, start: str, end: str) -> str:
    """The text of one result row (pdftotext -layout interleaves a row's wrapped cells)."""
    return text[text.index(start) : text.index(end, text.index(start))]


def _published(cfg, sql: str, params: list) -> list[tuple]:
    con = duckdb.connect(str(serving_path(cfg)), read_only=True)
    try:
        return con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_demo_report_pdf_holds_the_published_month(published, tmp_path):
    demo, cfg, actors = published
    proc = _report(cfg, tmp_path, "--month", "2026-10")
    assert proc.returncode == 0, proc.stderr[-2000:]
    pdf, html = tmp_path / "report.pdf", tmp_path / "report.html"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    text = _pdf_text(pdf)

    (active,) = _published(
        cfg,
        "select value from marts.community_kpis_monthly where platform = 'all' and kpi = 'active_members' and month = ?",
        [MONTH],
    )[0]
    assert active >= 100
    assert f" {int(active):,} " in _between(text, "Active members", "New members")
    titles = [
        t
        for (t,) in _published(
            cfg,
            "select title from marts.learnings where learned_on >= ? and learned_on < ?",
            [MONTH, date(2026, 11, 1)],
        )
    ]
    assert len(titles) == 2
    for title in titles:
        assert title in text
    # Sections in the order, team activity last and labelled as such.
    order = [
        "Results against targets",
        "You said, we did",
        "What we learned in October 2026",
        "Cohort retention",
        "Team activity ACTIVITY, NOT RESULTS",
    ]
    positions = [text.find(s) for s in order]
    assert -1 not in positions and positions == sorted(positions), positions
    # The feedback loop is read by quarter in the demo (some months hold fewer than k items).
    assert "by quarter" in text and "Q3 2026" in text

    # No pseudonym, handle or account id: not in the PDF's text, not in the HTML.
    page = html.read_text()
    assert len(actors) > 500 and len(demo.handles) > 2000
    leaks = [s for s in [*demo.handles, *actors] if s in text or s in page]
    assert not leaks, leaks[:5]


def test_html_is_self_contained_with_alt_text(published, tmp_path):
    _, cfg, _ = published
    files = build_report(load_config(cfg.root / "agora.yml"), MONTH, tmp_path)
    page = files.html.read_text()
    assert not re.search(r"""(src|href)=["']?(https?:|//|file:)""", page), "the report must open offline"
    assert "<link" not in page and "<script" not in page
    images = re.findall(r"<img [^>]*>", page)
    assert len(images) >= 8 + 3  # a trend per result, feedback, cohorts, team
    for img in images:
        assert 'src="data:image/svg+xml;base64,' in img
        alt = re.search(r'alt="([^"]+)"', img)
        assert alt and len(alt.group(1)) > 40, img[:200]
    assert "Active members, trend: Nov 2025" in page


def test_rerun_overwrites_the_same_files(published, tmp_path):
    _, cfg, _ = published
    first = build_report(cfg, MONTH, tmp_path, today=date(2026, 12, 4))
    html = first.html.read_bytes()
    second = build_report(cfg, MONTH, tmp_path, today=date(2026, 12, 4))
    assert (second.html, second.pdf) == (first.html, first.pdf)
    assert second.html.read_bytes() == html
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html", "report.pdf"]


def test_suppressed_and_provisional_values_say_so(published, tmp_path):
    _, cfg, _ = published
    # 2025-Q3 has 4 survey answers (< k_min 5): NPS is withheld, and says why.
    suppressed = build_report(cfg, date(2025, 8, 1), tmp_path / "aug", today=date(2026, 12, 4))
    text = _pdf_text(suppressed.pdf)
    nps = _between(text, "Net Promoter Score", "Feedback closed-loop")
    assert "Q3 2025" in nps and " suppressed " in nps
    assert "suppressed: fewer than 5 people (k = 5)" in text
    assert "provisional" not in text.replace("Provisional marks", "")
    # Made 10 days after October closed: the month's values are provisional.
    fresh = build_report(cfg, MONTH, tmp_path / "oct", today=date(2026, 11, 10))
    text = _pdf_text(fresh.pdf)
    assert text.count("provisional") >= 6


def test_default_month_is_the_latest_complete_one(published):
    _, cfg, _ = published
    files = build_report(cfg, today=date(2026, 11, 3))
    assert files.month == MONTH
    assert files.html.parent == Path(cfg.path("warehouse")).parent / "reports" / "2026-10"
    # While October runs, it is not complete: September is the default.
    assert build_report(cfg, today=date(2026, 10, 20), out=files.html.parent.parent / "x").month == date(2026, 9, 1)


def test_missing_month_is_a_one_line_error(published, tmp_path):
    _, cfg, _ = published
    proc = _report(cfg, tmp_path, "--month", "2031-01")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()  # the step's progress line, then the one error line
    assert lines == [
        "rendering the report …",
        "error: month 2031-01 is not published (published months: 2025-01 to 2026-10)",
    ], proc.stderr
    assert "error" not in proc.stdout
    assert not (tmp_path / "report.pdf").exists()


def test_report_dag_writes_the_completed_month(published, tmp_path):
    """agora_report under `airflow dags test`, run after October closed: October's report, overwritten on rerun."""
    from agora.airflow_local import airflow_env, dags_test, ensure_metadata

    _, cfg, _ = published
    env = airflow_env(cfg.root / "agora.yml", home=tmp_path / "airflow")
    ensure_metadata(env)
    pdf = Path(cfg.path("warehouse")).parent / "reports" / "2026-10" / "report.pdf"
    pdf.unlink(missing_ok=True)
    dags_test("agora_report", "2026-11-02T06:00:00+00:00", env, None, tmp_path / "airflow.log")
    first = pdf.stat().st_mtime_ns
    assert "Demo community — October 2026" in _pdf_text(pdf)
    dags_test("agora_report", "2026-11-03T06:00:00+00:00", env, None, tmp_path / "airflow.log")
    assert pdf.stat().st_mtime_ns > first
    assert sorted(p.name for p in pdf.parent.iterdir()) == ["report.html", "report.pdf"]


def test_first_page_screenshot(published, tmp_path):
    """The README's example (docs/report.png) is this screenshot; `make report-example` refreshes it."""
    _, cfg, _ = published
    files = build_report(cfg, MONTH, tmp_path)
    png = screenshot(files.html, tmp_path / "report.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 40_000


def test_postgresql_serving_gives_the_same_report(published, postgres, tmp_path, monkeypatch):
    """The same marts published to PostgreSQL serving make the same HTML as serving.duckdb."""
    from agora.config import PostgresServing
    from agora.publish import publish
    from agora.publish_pg import provision

    _, cfg, _ = published
    monkeypatch.setenv("AGORA_SERVING_PASSWORD", "publisher-report-test")
    serving = PostgresServing(kind="postgres", host=postgres.host, port=postgres.port, database="report_serving")
    provision(postgres.url(), serving, "reader-report-test")
    raw = yaml.safe_load((cfg.root / "agora.yml").read_text())
    raw["serving"] = {"kind": "postgres", "host": postgres.host, "port": postgres.port, "database": "report_serving"}
    (tmp_path / "agora.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    pg_cfg = load_config(tmp_path / "agora.yml")
    publish(pg_cfg)
    from_pg = build_report(pg_cfg, MONTH, tmp_path / "pg", today=date(2026, 12, 4))
    from_duckdb = build_report(cfg, MONTH, tmp_path / "duckdb", today=date(2026, 12, 4))
    assert from_pg.html.read_text() == from_duckdb.html.read_text()


def test_differentially_private_values_show_their_margin(published, tmp_path):
    """Serving rows released with DP (release = 'dp', noise_scale) read as such, with their 95 % margin."""
    import shutil

    _, cfg, _ = published
    raw = yaml.safe_load((cfg.root / "agora.yml").read_text())
    raw["paths"]["warehouse"] = str(tmp_path / "wh")
    (tmp_path / "wh").mkdir()
    shutil.copy(serving_path(cfg), tmp_path / "wh" / "serving.duckdb")
    con = duckdb.connect(str(tmp_path / "wh" / "serving.duckdb"))
    try:
        con.execute("alter table marts.community_kpis_monthly add column if not exists noise_scale double")
        con.execute(
            "update marts.community_kpis_monthly set noise_scale = 2.5 where platform = 'all' and kpi = 'active_members'"
        )
    finally:
        con.close()
    (tmp_path / "agora.yml").write_text(yaml.safe_dump(raw, sort_keys=False))
    files = build_report(load_config(tmp_path / "agora.yml"), MONTH, tmp_path / "out", today=date(2026, 12, 4))
    text = _pdf_text(files.pdf)
    assert "differentially private: ± 5 (95 % margin)" in text  # 1.96 x 2.5, rounded for a count of people
    assert text.count("differentially private") == 1
