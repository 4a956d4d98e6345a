"""The inline-SVG chart: tick values and the data-to-pixel mapping, with known answers."""

from __future__ import annotations

import re

import numpy as np
import pytest

from imuhip.report.plots import MAX_STRIDE_CURVES, _spread
from imuhip.report.svg import Chart, nice_ticks


@pytest.mark.parametrize(
    ("lo", "hi", "n", "ticks"),
    [
        (0.0, 100.0, 6, [0, 20, 40, 60, 80, 100]),
        (-5.3, 5.3, 5, [-5, -2.5, 0, 2.5, 5]),  # 10.6 / 5 = 2.12 -> step 2.5
        (4.6, 16.4, 5, [5, 7.5, 10, 12.5, 15]),
        (0.0, 0.9, 5, [0, 0.2, 0.4, 0.6, 0.8]),
    ],
)
def test_nice_ticks(lo, hi, n, ticks):
    assert nice_ticks(lo, hi, n) == pytest.approx(ticks)


def test_line_maps_data_corners_to_plot_corners():
    ch = Chart("t", "x", "y", (0.0, 100.0), (0.0, 10.0), width=558, height=300)
    ch.lines(np.array([0.0, 100.0]), np.array([0.0, 10.0]), "#000")
    svg = ch.svg()
    # plot area: left 58, right 12 -> 488 px wide; top 26, bottom 44 -> 230 px high
    assert '<rect x="58" y="26" width="488" height="230"' in svg
    d = re.search(r'<path d="M([^"]+)" fill="none" stroke="#000"', svg).group(1)
    assert d == "58,256L546,26"


def test_band_fill_points_and_vline_positions():
    ch = Chart("t", "x", "y", (0.0, 10.0), (-1.0, 1.0), width=170, height=170)
    ch.hband(-0.5, 0.5, "#999", 0.2)
    ch.vline(5.0, "#f00")
    ch.points(np.array([0.0, 10.0]), np.array([1.0, -1.0]), "#00f")
    svg = ch.svg()
    # 100 px wide from x=58, 100 px high from y=26
    assert '<rect x="58" y="51.0" width="100" height="50.0" fill="#999"' in svg
    assert '<line x1="108.0" x2="108.0" y1="26" y2="126" stroke="#f00"' in svg
    assert 'd="M58.0,26.0h0M158.0,126.0h0" stroke="#00f"' in svg


def test_drawn_stride_curves_are_capped_and_spread():
    idx = _spread(3000, MAX_STRIDE_CURVES)
    assert len(idx) == MAX_STRIDE_CURVES
    assert idx[0] == 0 and idx[-1] == 2999
    assert list(_spread(7, MAX_STRIDE_CURVES)) == list(range(7))
