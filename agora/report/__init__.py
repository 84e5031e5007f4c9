"""`agora report`: the month's community report for executives, as HTML and PDF.

Built from the published serving database only (agora/report/data.py), rendered with a
Jinja2 template into one self-contained HTML file (inline CSS, charts as inline SVG),
then printed to PDF by headless Chromium. A rerun for the same month overwrites both
files. See docs/reports.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from agora.config import AgoraConfig
from agora.report.data import ReportError, month_start

__all__ = ["ReportError", "ReportFiles", "build_report", "default_out_dir", "parse_month"]


@dataclass
class ReportFiles:
    month: date
    html: Path
    pdf: Path

    def as_dict(self) -> dict[str, str]:
        return {"month": f"{self.month:%Y-%m}", "html": str(self.html), "pdf": str(self.pdf)}


def parse_month(text: str) -> date:
    try:
        return datetime.strptime(text, "%Y-%m").date()
    except ValueError:
        raise ValueError(f"--month: expected YYYY-MM, got {text!r}") from None


def default_out_dir(cfg: AgoraConfig, month: date) -> Path:
    """`data/reports/<YYYY-MM>/`: next to the warehouse directory (data/ by default)."""
    warehouse = cfg.path("warehouse")
    base = cfg.resolve("data") if "://" in warehouse else Path(warehouse).parent
    return base / "reports" / f"{month:%Y-%m}"


def build_report(
    cfg: AgoraConfig, month: date | None = None, out: Path | None = None, today: date | None = None
) -> ReportFiles:
    """Write report.html and report.pdf for `month` (default: the latest complete one)."""
    from agora.report import data, render
    from agora.report.pdf import html_to_pdf

    today = today or datetime.now(UTC).date()
    content = data.load(cfg, month_start(month) if month else None, today)
    out = Path(out) if out else default_out_dir(cfg, content.month)
    out.mkdir(parents=True, exist_ok=True)
    html = out / "report.html"
    tmp = html.with_name("report.html.tmp")
    tmp.write_text(render.render_html(content), encoding="utf-8")
    tmp.replace(html)
    pdf = html_to_pdf(html, out / "report.pdf")
    return ReportFiles(content.month, html, pdf)
