"""Print HTML to PDF (and screenshot it) with Debian's headless Chromium.

The same browser and flags the dashboard tests use (docs/stack-notes: never a browser
download). Each call gets a fresh profile directory, removed afterwards.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


class PdfError(RuntimeError):
    """Chromium is missing or could not print the page."""


def chromium() -> str:
    path = os.environ.get("AGORA_CHROMIUM") or shutil.which("chromium")
    if not path or not Path(path).exists():
        raise PdfError("chromium not found: apt-get install -y chromium (or set AGORA_CHROMIUM)")
    return path


def _run(args: list[str], produced: Path, timeout: float) -> None:
    with tempfile.TemporaryDirectory(prefix="agora-chromium-") as profile:
        cmd = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0 or not produced.exists() or produced.stat().st_size == 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise PdfError(f"chromium failed ({proc.returncode}): {' | '.join(tail)}")


def html_to_pdf(html: Path, pdf: Path, timeout: float = 180) -> Path:
    """Print `html` (A4, the page's own @page rules, no browser header or footer) to `pdf`."""
    tmp = pdf.with_name(pdf.name + ".tmp")
    tmp.unlink(missing_ok=True)
    _run(["--no-pdf-header-footer", f"--print-to-pdf={tmp}", html.resolve().as_uri()], tmp, timeout)
    os.replace(tmp, pdf)  # a rerun overwrites; a reader never sees half a file
    return pdf


def screenshot(html: Path, png: Path, width: int = 1000, height: int = 1400, timeout: float = 180) -> Path:
    """The first screenful of `html`, as a reader opening the file would see it."""
    png.unlink(missing_ok=True)
    _run(
        ["--hide-scrollbars", f"--window-size={width},{height}", f"--screenshot={png}", html.resolve().as_uri()],
        png,
        timeout,
    )
    return png
