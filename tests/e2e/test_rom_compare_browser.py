"""Screenshots of the ROM report and of a follow-up comparison in headless Chromium.

Each page is rendered twice by Debian's ``chromium`` (as in ``test_report_browser.py``): once to
a PNG (``--screenshot``), checked to be a drawn page (not blank: dark text pixels, and the red and
blue plot lines of the right and left side), and once with ``--dump-dom``, checked for the text
a clinician reads first.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.e2e.test_report_browser import _chromium
from tests.unit.report.test_report import _orientations

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def chromium(page: Path, tmp: Path, *mode: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        _chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--hide-scrollbars", f"--user-data-dir={tmp / 'profile'}", "--virtual-time-budget=5000",
        *mode, page.resolve().as_uri(),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc


def screenshot(page: Path, tmp: Path) -> np.ndarray:
    png = tmp / f"{page.stem}.png"
    chromium(page, tmp, "--window-size=1200,2400", f"--screenshot={png}")
    return np.asarray(Image.open(png).convert("RGB")).astype(int)


def assert_drawn(img: np.ndarray) -> None:
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    assert img.shape[:2] == (2400, 1200)
    assert (img.max(axis=2) < 100).mean() > 0.002  # dark text
    assert ((r > 180) & (g < 90) & (b < 90)).sum() > 200  # the right side's red
    assert ((b > 150) & (r < 90) & (g < 160)).sum() > 200  # the left side's blue


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    from imuhip.cli.commands.rom_test import analyze_rom_session
    from imuhip.pipeline import analyze_orientations
    from imuhip.report.compare import compare_dict, write_compare
    from imuhip.report.rom import rom_report_dict, write_rom_report
    from imuhip.report.writer import report_dict
    from imuhip.sim.params import SimParams
    from imuhip.sim.rom import RomSimParams, simulate_rom_session, write_rom_recording

    tmp = tmp_path_factory.mktemp("pages")
    base = SimParams(sensors=("thigh_l", "thigh_r"), rate_hz=100, seed=3)
    sim = simulate_rom_session(RomSimParams(base=base, ir_deg=(25.0, 40.0), repetitions=2))
    write_rom_recording(sim, tmp / "rom.imrec")
    a = analyze_rom_session(tmp / "rom.imrec")
    rom_doc = rom_report_dict(a.results, a.flags, a.errors, recording="rom.imrec", meta=a.meta)
    rom_html = write_rom_report(rom_doc, tmp / "rom")["html"]
    gait = []
    for limit, date in ((3.0, "2026-01-10T09:00:00+00:00"), (None, "2026-03-10T09:00:00+00:00")):
        ori, segcal, meta = _orientations(duration_s=16.0, lumbar=False, limit_right=limit)
        d = report_dict(analyze_orientations(ori, meta, segcal=segcal))
        d["session"]["start_wall_time"] = date
        gait.append(d)
    cmp_doc = compare_dict([("before", gait[0]), ("after", gait[1]), ("rom", rom_doc)])
    cmp_html = write_compare(cmp_doc, tmp / "cmp")["html"]
    return tmp, rom_html, cmp_html, rom_doc


def test_rom_report_screenshot(pages, tmp_path):
    _, rom_html, _, doc = pages
    assert_drawn(screenshot(rom_html, tmp_path))
    dom = chromium(rom_html, tmp_path, "--dump-dom").stdout
    assert "Hip rotation ROM test (seated 90/90)" in dom
    assert "Repeat the test." in dom  # two repetitions of three
    assert "left IR: 2 of 3 repetitions measured" in dom
    left = doc["sides"]["left"]
    assert f"{left['ir_mean_deg']:.1f} ± {left['ir_sd_deg']:.1f}" in dom
    assert dom.count("every repetition against the 30–45° IR norm") == 0  # in the PNG, not text
    assert dom.count('alt="plot"') == 2


def test_comparison_screenshot(pages, tmp_path):
    _, _, cmp_html, _ = pages
    assert_drawn(screenshot(cmp_html, tmp_path))
    dom = chromium(cmp_html, tmp_path, "--dump-dom").stdout
    assert "Follow-up: subject SIM01" in dom
    assert "Hip rotation excursion, right (°)" in dom and "ROM maximal IR, left (°)" in dom
    assert "S3 vs S2: Hip rotation excursion, right (°) changed by +" in dom  # ROM is S1
    assert "2026-01-10T09:00:00+00:00" in dom


def test_blank_page_fails_the_drawn_check(tmp_path):
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body><p>x</p></body></html>")
    with pytest.raises(AssertionError):
        assert_drawn(screenshot(blank, tmp_path))
