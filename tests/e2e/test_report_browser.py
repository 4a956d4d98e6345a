"""report.html renders in headless Chromium (Debian's ``chromium``) with its images, no errors.

The page is loaded from a copy with a small checker script appended (the product page has no
script): after ``load`` it counts images that did not decode (``naturalWidth == 0``) and writes
the counts into an attribute that ``--dump-dom`` shows; console messages (JS errors, the checker's
error) come from ``--enable-logging=stderr``. A deliberately broken page proves the check fails.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.unit.report.test_report import _orientations

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"

CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length;
  document.documentElement.setAttribute('data-imuhip-check',
    'images=' + imgs.length + ';broken=' + bad);
  if (bad) { console.error('broken images: ' + bad); }
});
</script>"""


def _chromium() -> str:
    path = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    if path is None:
        msg = "headless Chromium not found at /usr/bin/chromium (Debian package 'chromium')"
        if os.environ.get("CI"):
            pytest.fail(msg + ": .ci/run must install it")
        pytest.skip(msg)
    return path


def render(html_path: Path, tmp: Path) -> tuple[int, int, list[str]]:
    """(n_images, n_broken, console lines) of a page loaded in headless Chromium."""
    page = tmp / "checked.html"
    text = html_path.read_text(encoding="utf-8")
    page.write_text(text.replace("</body>", CHECK + "</body>"), encoding="utf-8")
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    m = re.search(r'data-imuhip-check="images=(\d+);broken=(\d+)"', proc.stdout)
    assert m, "page did not finish loading (checker attribute missing)"
    console = [ln for ln in proc.stderr.splitlines() if ":CONSOLE" in ln]
    return int(m.group(1)), int(m.group(2)), console


@pytest.mark.slow
def test_report_renders_with_images_and_no_console_errors(tmp_path):
    from imuhip.pipeline import analyze_orientations
    from imuhip.report.writer import write_report

    ori, segcal, meta = _orientations(duration_s=16.0)
    res = analyze_orientations(ori, meta, segcal=segcal)
    html = write_report(res, tmp_path / "out")["html"]
    n, broken, console = render(html, tmp_path)
    assert n >= 3
    assert broken == 0
    assert console == []


def test_checker_detects_broken_image_and_js_error(tmp_path):
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><body><img src='data:image/png;base64,AAAA'>"
        "<script>undefinedFunction();</script></body></html>"
    )
    n, broken, console = render(bad, tmp_path)
    assert (n, broken) == (1, 1)
    assert any("undefinedFunction" in c for c in console)
    assert any("broken images" in c for c in console)
