"""report.html renders in headless Chromium (Debian's ``chromium``): figures, no errors, and a
first screen that shows the finding and the banners.

The page is loaded from a copy with a small checker script appended (the product page has no
script): after ``load`` it counts images and inline SVG figures, the images that did not decode
(``naturalWidth == 0``) and the SVG figures with no size, and writes the counts into an attribute
that ``--dump-dom`` shows; console messages (JS errors, the checker's error) come from
``--enable-logging=stderr``. A deliberately broken page proves the check fails.

Screenshots (first screen, 1200 x 900) of the gait report of the shipped restricted walker, of a
damaged (truncated and corrupted) copy of it and of the real gaittoolbox trial, each analysed
through the CLI, are checked through their DOM text and their pixels (non-blank; the red banner
colour present exactly when a banner is due).
"""

from __future__ import annotations

import html as htmllib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.report.test_report import _orientations

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"

CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var svgs = Array.prototype.slice.call(document.querySelectorAll('svg[role=img]'));
  var bad = imgs.filter(function (i) { return !(i.complete && i.naturalWidth > 0); }).length
    + svgs.filter(function (s) { return !(s.getBoundingClientRect().width > 0); }).length;
  document.documentElement.setAttribute('data-imuhip-check',
    'images=' + (imgs.length + svgs.length) + ';broken=' + bad);
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


# --- first screen of real reports ---------------------------------------------------------------

REPO = Path(__file__).resolve().parents[2]
RESTRICTED = REPO / "recordings" / "right_ir_restricted.imrec"
BANNER_RGB = (0xC6, 0x28, 0x28)  # .banner border-left in imuhip/report/html.py


def _cli(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "imuhip", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]


def _damaged_copy(src: Path, dst: Path) -> Path:
    """The first 30 % of ``src`` (cut mid-frame) with 3,000 bytes overwritten in the middle."""
    data = src.read_bytes()
    n = len(data) * 3 // 10
    b = bytearray(data[:n])
    b[n // 2 : n // 2 + 3000] = b"\xff" * 3000
    dst.write_bytes(bytes(b))
    return dst


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """report.html of the restricted walker, its damaged copy and (when present) the real trial.

    The analyses run as the user runs them (``imuhip analyze``), two at a time.
    """
    from tests.e2e import test_real_walking_gaittoolbox as gtb

    _chromium()
    tmp = tmp_path_factory.mktemp("browser_reports")
    dmg = _damaged_copy(RESTRICTED, tmp / "damaged.imrec")
    procs = [
        _cli("analyze", str(RESTRICTED), "--out", str(tmp / "restricted"), "--quiet", "--pdf"),
        _cli("analyze", str(dmg), "--out", str(tmp / "damaged"), "--quiet"),
    ]
    out = {
        "restricted": tmp / "restricted" / "report.html",
        "damaged": tmp / "damaged" / "report.html",
    }
    if gtb.DATA.is_dir():
        sensors = [a for p in gtb.IDS for a in ("--sensor", f"{p}={gtb._file(p)}")]
        rec = tmp / "real"
        _wait(_cli("import", "xsens", *sensors, "-o", str(rec), "--overwrite", "--rate-hz", "100"))
        procs.append(_cli("analyze", str(rec), "--out", str(tmp / "real_out"), "--quiet"))
        out["real"] = tmp / "real_out" / "report.html"
    for p in procs:
        _wait(p)
    return out


def shoot(html_path: Path, tmp: Path) -> tuple[str, Path]:
    """(visible text of the DOM, PNG of the first screen at 1200 x 900) in headless Chromium."""
    png = tmp / (html_path.parent.name + ".png")
    cmd = [
        _chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp / 'profile'}",
        "--window-size=1200,900",
        f"--screenshot={png}",
        "--dump-dom",
        html_path.resolve().as_uri(),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    body = proc.stdout.split("<body>", 1)[1]
    text = htmllib.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)))
    return text, png


def _pixels(png: Path) -> tuple[float, int]:
    """(fraction of non-white pixels, pixels of the banner colour) of a screenshot."""
    import numpy as np
    from PIL import Image

    a = np.asarray(Image.open(png).convert("RGB"), dtype=np.int16)
    assert a.shape[:2] == (900, 1200)
    ink = float(np.mean(np.any(a < 235, axis=-1)))
    banner = int(np.all(np.abs(a - np.array(BANNER_RGB)) <= 12, axis=-1).sum())
    return ink, banner


def _first_screen(text: str) -> str:
    return text.split(" Summary ", 1)[0]


@pytest.mark.slow
def test_restricted_walker_first_screen_states_the_finding(reports, tmp_path):
    truth = json.loads(RESTRICTED.with_suffix(".truth.json").read_text())["session_metrics"]
    text, png = shoot(reports["restricted"], tmp_path)
    first = _first_screen(text)
    m = re.search(r"Right hip rotation reduced: ([\d.]+)° vs ([\d.]+)° on the left side", first)
    assert m, first[:600]
    exc = truth["hip_rotation_excursion_deg"]
    assert float(m.group(1)) == pytest.approx(exc["right"], abs=1.0)
    assert float(m.group(2)) == pytest.approx(exc["left"], abs=1.0)
    assert "95 % CI" in first and "Clear: the 95 % CI excludes 0" in first
    assert "Data: valid strides left" in first
    assert "Damaged" not in first and "Few valid strides" not in first
    assert "Hip rotation excursion" in text and "hip_rotation_excursion_deg" not in text
    ink, banner = _pixels(png)
    assert ink > 0.05
    assert banner == 0


@pytest.mark.slow
def test_analyze_pdf_option_writes_the_report_as_pdf(reports):
    pdfium = pytest.importorskip("pypdfium2")
    doc = pdfium.PdfDocument(reports["restricted"].with_name("report.pdf"))
    assert len(doc) >= 3
    first = " ".join(doc[0].get_textpage().get_text_range().split())  # lines joined
    assert "Right hip rotation reduced" in first
    assert "Pelvis and lumbar spine compensate for the restricted right hip" in first


@pytest.mark.slow
def test_damaged_recording_first_screen_has_both_banners(reports, tmp_path):
    text, png = shoot(reports["damaged"], tmp_path)
    first = _first_screen(text)
    assert "Damaged or partial recording: " in first
    assert "recording truncated at byte offset" in first
    assert re.search(r"Few valid strides \(left \d, right \d; at least 10 per side", first)
    assert "hip rotation reduced" in first  # the finding is still given, below the banners
    assert "Uncertain: the 95 % CI excludes 0, but from only" in first
    assert first.index("Damaged or partial") < first.index("hip rotation reduced")
    ink, banner = _pixels(png)
    assert ink > 0.05
    assert banner > 500  # the red banner edge is on the first screen


@pytest.mark.slow
def test_real_gaittoolbox_trial_first_screen(reports, tmp_path):
    if "real" not in reports:
        pytest.skip("gaittoolbox data not present")
    text, png = shoot(reports["real"], tmp_path)
    first = _first_screen(text)
    # a typical walker: no hip clearly restricted; few straight strides (a loop with a turn)
    assert re.search(r"(No hip restricted|hip rotation reduced|Hip rotation below)", first)
    assert re.search(r"Data: valid strides left \d+ of \d+, right \d+ of \d+", first)
    assert "Few valid strides" in first
    assert "Clear:" not in first  # 3-4 straight strides per side are never a clear finding
    ink, banner = _pixels(png)
    assert ink > 0.05
    assert banner > 300  # one banner: its red edge, 6 px by at least two lines of text
