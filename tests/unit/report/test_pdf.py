"""report.pdf: the page printed by headless Chromium, checked by rendering it with PDFium."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from imuhip.errors import ImuhipError
from imuhip.report.pdf import find_chromium
from tests.unit.report.test_report import _orientations

pytestmark = pytest.mark.browser


def _need_chromium() -> None:
    if find_chromium() is None:
        msg = "headless Chromium not found (Debian package 'chromium')"
        if os.environ.get("CI"):
            pytest.fail(msg + ": .ci/run must install it")
        pytest.skip(msg)


@pytest.mark.slow
def test_pdf_renders_a4_pages_with_the_finding_first(tmp_path):
    pdfium = pytest.importorskip("pypdfium2")
    _need_chromium()
    from imuhip.pipeline import analyze_orientations
    from imuhip.report.writer import write_report

    ori, segcal, meta = _orientations(duration_s=16.0, limit_right=1.0)
    res = analyze_orientations(ori, meta, segcal=segcal)
    paths = write_report(res, tmp_path / "out", pdf=True)
    assert paths["pdf"] == tmp_path / "out" / "report.pdf"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "report.html",
        "report.json",
        "report.pdf",
        "strides.csv",
    ]
    doc = pdfium.PdfDocument(paths["pdf"])
    # A4 portrait (595 x 842 pt); the figures, tables and quality notes fill 3-6 pages
    assert 3 <= len(doc) <= 6
    for i in range(len(doc)):
        page = doc[i]
        assert page.get_size() == pytest.approx((595.0, 842.0), abs=1.0)
        img = np.asarray(page.render(scale=0.5).to_pil().convert("L"))
        assert np.mean(img < 200) > 0.005, f"page {i + 1} is blank"
    first = " ".join(doc[0].get_textpage().get_text_range().split())  # lines joined
    assert "Right hip rotation reduced" in first
    # printed to its end: the last page holds the page's last words (its last caveat), and no
    # list item stands alone on it (the print stylesheet keeps the last two together)
    last = "".join(doc[len(doc) - 1].get_textpage().get_text_range().split())
    caveats = json.loads(paths["json"].read_text())["caveats"]
    assert "".join(caveats[-1].split())[-60:] in last
    assert "".join(caveats[-2].split())[-40:] in last
    # a second set without --pdf removes the first set's PDF (one set, never old and new mixed)
    write_report(res, tmp_path / "out")
    assert not (tmp_path / "out" / "report.pdf").exists()


def test_pdf_without_chromium_is_a_clear_error(tmp_path, monkeypatch):
    from imuhip.report.pdf import html_to_pdf

    monkeypatch.setenv("IMUHIP_CHROMIUM", str(tmp_path / "no-such-chromium"))
    with pytest.raises(ImuhipError, match="needs headless Chromium"):
        html_to_pdf("<html></html>", tmp_path / "x.pdf")
