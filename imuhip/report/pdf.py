"""report.pdf: the HTML page printed by headless Chromium (its print stylesheet, A4).

The page is self-contained (inline CSS and SVG), so Chromium's ``--print-to-pdf`` renders exactly
what the browser shows, vector figures included, with the stylesheet's ``@media print`` rules
(no scroll boxes, repeated table headers, figures kept whole). Chromium is a system package
(Debian ``chromium``); without it, asking for a PDF is an error that says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Final

from imuhip.errors import ImuhipError

__all__ = ["CHROMIUM_PATHS", "find_chromium", "html_to_pdf"]

CHROMIUM_PATHS: Final = ("/usr/bin/chromium", "/usr/bin/chromium-browser")


def find_chromium() -> str | None:
    """Path of a Chromium executable (``IMUHIP_CHROMIUM`` first), ``None`` if there is none."""
    env = os.environ.get("IMUHIP_CHROMIUM")
    if env:
        return env if Path(env).exists() else None
    for p in CHROMIUM_PATHS:
        if Path(p).exists():
            return p
    return shutil.which("chromium") or shutil.which("chromium-browser")


def html_to_pdf(html_text: str, pdf_path: str | Path, timeout_s: float = 120.0) -> Path:
    """Print an HTML page (one self-contained string) to ``pdf_path`` with headless Chromium.

    Raises
    ------
    ImuhipError
        No Chromium, or Chromium failed (its last error lines are in the message).
    """
    exe = find_chromium()
    if exe is None:
        raise ImuhipError(
            "a PDF report needs headless Chromium (Debian package 'chromium', or set "
            "IMUHIP_CHROMIUM to its path); none was found"
        )
    out = Path(pdf_path)
    with tempfile.TemporaryDirectory(prefix="imuhip-pdf-") as tmp:
        page = Path(tmp) / "report.html"
        page.write_text(html_text, encoding="utf-8")
        target = Path(tmp) / "report.pdf"
        cmd = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={Path(tmp) / 'profile'}",
            "--no-pdf-header-footer",
            f"--print-to-pdf={target}",
            page.as_uri(),
        ]
        try:
            proc = subprocess.run(
                cmd, capture_output=True, text=True, timeout=timeout_s, check=False
            )
        except subprocess.TimeoutExpired as err:
            raise ImuhipError(f"Chromium did not print the report within {timeout_s:g} s") from err
        if proc.returncode != 0 or not target.exists() or target.stat().st_size == 0:
            tail = " | ".join(proc.stderr.strip().splitlines()[-3:])
            raise ImuhipError(f"Chromium could not print the report to PDF: {tail or 'no output'}")
        shutil.move(str(target), out)
    return out
