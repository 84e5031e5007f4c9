"""Open a dashboard in headless Chromium as a person would, and report what it shows.

Runs in Superset's venv (Playwright lives there) against Debian's ``chromium``: no
browser is ever downloaded. Prints one JSON object:

    {"charts": {slice_name: {"status": "ok" | "empty" | "error" | "timeout", "detail": ...}},
     "cards": [{"label", "value", "period", "change", "target"}],
     "tabs": [...], "screenshot": path, "seconds": {...}}

A chart counts as failed when its data request fails, when its result carries an
error, or when Superset draws an error alert in its place.

    python -m dashboards.browser --url URL --slug SLUG --out PNG
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CHROMIUM = os.environ.get("AGORA_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ERROR_SELECTOR = '[data-test="error-alert"], .alert-danger, [role="alert"].ant-alert-error'
LOADING_SELECTOR = '[data-test="loading-indicator"], .loading'


def check_dashboard(
    url: str, slug: str, user: str, password: str, out: Path, timeout_s: float = 180, all_tabs: bool = False
) -> dict[str, Any]:
    """Log in, open every tab of the dashboard, wait for its charts, screenshot the first tab (or all)."""
    from playwright.sync_api import sync_playwright

    seconds: dict[str, float] = {}
    chart_requests: list[dict[str, Any]] = []
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="agora-chromium-") as profile, sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            profile,
            executable_path=CHROMIUM,
            args=CHROMIUM_FLAGS,
            headless=True,
            viewport={"width": 1600, "height": 1000},
            device_scale_factor=1,
        )
        try:
            page = context.new_page()
            page.set_default_timeout(timeout_s * 1000)
            seconds["browser_start"] = time.monotonic() - start

            def on_response(response: Any) -> None:
                if "/api/v1/chart/data" not in response.url:
                    return
                entry: dict[str, Any] = {"status": response.status}
                try:
                    body = response.json()
                    entry["errors"] = [r.get("error") for r in body.get("result", []) if r.get("error")]
                    entry["errors"] += [e.get("message") for e in body.get("errors", [])]
                    entry["message"] = body.get("message")
                except Exception as e:  # noqa: BLE001 - a non-JSON answer is itself the finding
                    entry["errors"] = [f"unreadable response: {e}"]
                chart_requests.append(entry)

            page.on("response", on_response)
            page.goto(f"{url}/login/")
            page.fill('[data-test="username-input"]', user)
            page.fill('[data-test="password-input"]', password)
            page.click('[data-test="login-button"]')
            page.wait_for_url(lambda u: "/login" not in u)
            seconds["login"] = time.monotonic() - start

            page.goto(f"{url}/superset/dashboard/{slug}/")
            page.locator(".dashboard-component-chart-holder").first.wait_for(state="visible")
            tabs = [t.strip() for t in page.locator('[role="tab"]').all_inner_texts()] or ["(no tabs)"]
            charts: dict[str, dict[str, Any]] = {}
            cards: list[dict[str, str]] = []
            for index, tab in enumerate(tabs):
                if index > 0:
                    page.locator('[role="tab"]').nth(index).click()
                tab_charts = _wait_for_charts(page, timeout_s)
                charts.update(tab_charts)
                seconds[f"tab {tab}"] = time.monotonic() - start
                if index == 0:
                    cards = _read_cards(page)
                if index == 0 or all_tabs:
                    page.wait_for_timeout(1500)  # let ECharts finish its entry animation
                    shot = out if index == 0 else out.with_name(f"{out.stem}-tab{index + 1}{out.suffix}")
                    page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    failed_requests = [r for r in chart_requests if r["status"] >= 400 or r["errors"]]
    seconds["total"] = time.monotonic() - start
    return {
        "tabs": tabs,
        "charts": charts,
        "cards": cards,
        "chart_requests": len(chart_requests),
        "failed_requests": failed_requests,
        "screenshot": str(out),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
    }


def _wait_for_charts(page: Any, timeout_s: float) -> dict[str, dict[str, Any]]:
    """Wait until every chart of the visible tab has finished loading; return each one's state."""
    page.locator('[data-test="chart-grid-component"]:visible').first.wait_for(state="visible")
    deadline = time.monotonic() + timeout_s
    while True:
        charts = page.evaluate(
            """([errorSel, loadingSel]) => Array.from(
                document.querySelectorAll('[data-test="chart-grid-component"]')
            ).filter(c => c.offsetParent !== null).map(c => {
                const error = c.querySelector(errorSel);
                const empty = c.textContent.includes('No results were returned for this query');
                return {
                    title: c.getAttribute('data-test-chart-name'),
                    viz: c.getAttribute('data-test-viz-type'),
                    error: error ? error.textContent.trim().slice(0, 500) : null,
                    empty: empty,
                    loading: !!c.querySelector(loadingSel),
                    drawn: !!c.querySelector('canvas, svg:not([data-icon]), table, .agora-cards'),
                };
            })""",
            [ERROR_SELECTOR, LOADING_SELECTOR],
        )
        if charts and all(s["error"] or s["empty"] or (s["drawn"] and not s["loading"]) for s in charts):
            # "empty" (the query returned no rows) is not an error, but a caller may want data everywhere
            return {
                s["title"] or f"chart {i + 1}": {
                    "status": "error" if s["error"] else "empty" if s["empty"] else "ok",
                    "detail": s["error"],
                }
                for i, s in enumerate(charts)
            }
        if time.monotonic() > deadline:
            return {
                s["title"] or f"chart {i + 1}": {"status": "timeout", "detail": json.dumps(s)}
                for i, s in enumerate(charts)
            }
        page.wait_for_timeout(250)


def _read_cards(page: Any) -> list[dict[str, str]]:
    return page.evaluate(
        """() => Array.from(document.querySelectorAll('.agora-card')).map(c => ({
            label: c.querySelector('.agora-label').textContent.trim(),
            value: c.querySelector('.agora-value').textContent.trim(),
            suppressed: c.querySelector('.agora-value').classList.contains('value-suppressed'),
            period: c.querySelector('.agora-period').textContent.trim(),
            change: c.querySelector('.agora-change').textContent.trim(),
            target: c.querySelector('.agora-target').textContent.trim().replace(/\s+/g, ' '),
        }))"""
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.browser")
    parser.add_argument("--url", default="http://127.0.0.1:8088")
    parser.add_argument("--slug", default="community-health")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=180)
    parser.add_argument("--all-tabs", action="store_true", help="also screenshot the other tabs (<out>-tabN.png)")
    args = parser.parse_args(argv)
    report = check_dashboard(
        args.url,
        args.slug,
        os.environ.get("SUPERSET_ADMIN_USER", "admin"),
        os.environ["SUPERSET_ADMIN_PASSWORD"],
        args.out,
        args.timeout,
        args.all_tabs,
    )
    print(json.dumps(report, indent=2))
    ok = bool(report["charts"]) and all(c["status"] in ("ok", "empty") for c in report["charts"].values())
    ok = ok and not report["failed_requests"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
