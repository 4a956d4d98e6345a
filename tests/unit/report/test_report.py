"""report.json / strides.csv / report.html from an analysis of simulated kinematics."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from imuhip.pipeline import analyze_orientations
from imuhip.report.writer import SCHEMA, report_dict, strides_table, summary_lines, write_report
from imuhip.types import OrientationSession, SegmentCalibration, SessionMeta


def _orientations(duration_s=20.0, lumbar=True, limit_right=None):
    from imuhip.sim.kinematics import Body
    from imuhip.sim.params import SimParams

    sensors = ("pelvis", "thigh_l", "thigh_r") + (("lumbar",) if lumbar else ())
    p = SimParams(
        duration_s=duration_s,
        sensors=sensors,
        hip_ir_limit_deg=(None, limit_right),
        compensation_gain=0.8 if limit_right is not None else 0.0,
    )
    t = np.arange(0, duration_s, 1 / 100)
    st = Body(p, np.random.default_rng(1)).state(t)
    m = len(t)
    ori = OrientationSession(
        t,
        100.0,
        {s: st.q_world[s] for s in sensors},
        {s: np.zeros((m, 3)) for s in sensors},
        dict.fromkeys(sensors),
        {s: np.ones(m, bool) for s in sensors},
        "truth",
    )
    segcal = SegmentCalibration(
        {s: np.array([1.0, 0, 0, 0]) for s in sensors}, dict.fromkeys(sensors, "assumed")
    )
    meta = SessionMeta("S1", "2026-01-01T00:00:00Z", "SIM01", ())
    return ori, segcal, meta


@pytest.fixture(scope="module")
def result():
    ori, segcal, meta = _orientations()
    return analyze_orientations(ori, meta, segcal=segcal)


@pytest.fixture(scope="module")
def written(result, tmp_path_factory):
    return write_report(result, tmp_path_factory.mktemp("report"))


def test_report_json_schema_and_values(written):
    paths = written
    d = json.loads(paths["json"].read_text())
    assert d["schema"] == SCHEMA
    for key in (
        "session",
        "conventions",
        "gait",
        "metrics",
        "asymmetry",
        "compensation",
        "norms",
        "flags",
        "quality",
        "caveats",
    ):
        assert key in d
    exc = d["metrics"]["per_side"]["left"]["hip_rotation_excursion_deg"]
    assert 8 < exc["mean"] < 12 and exc["n"] >= 8
    assert set(d["metrics"]["trunk"]) >= {"pelvis_rotation_range_deg", "lumbar_rotation_range_deg"}
    a = d["asymmetry"]["hip_rotation_excursion_deg"]
    assert a["ci95_low"] <= a["right_minus_left"] <= a["ci95_high"]
    assert d["gait"]["events"]["right"]["source"] == "thigh_orientation"
    assert "transverse_confidence_mean" in d["quality"]
    assert "NaN" not in paths["json"].read_text()  # strict JSON


def test_strides_csv_one_row_per_stride(result, written):
    paths = written
    df = pd.read_csv(paths["csv"])
    assert len(df) == len(result.strides)
    assert {
        "side",
        "ic_s",
        "valid",
        "exclusion",
        "hip_rotation_excursion_deg",
        "pelvis_rotation_range_deg",
    } <= set(df.columns)
    excluded = df[~df["valid"]]
    assert excluded["exclusion"].notna().all()
    assert len(strides_table(result)) == len(df)


def test_strides_csv_read_by_pandas_gives_the_strides_values(result, written):
    """strides.csv is written without pandas; pandas, what users read it with, gets every value
    back: numbers to the 4 decimals written, booleans as booleans, a missing toe-off as NaN."""
    df = pd.read_csv(written["csv"])
    assert df["valid"].dtype == bool
    assert df["valid"].tolist() == [s.valid for s in result.strides]
    assert df["stride"].tolist() == [s.number for s in result.strides]
    assert df["side"].tolist() == [s.side for s in result.strides]
    assert df["exclusion"].tolist() == [s.exclusion or "none" for s in result.strides]
    to = np.array([np.nan if s.to_s is None else s.to_s for s in result.strides])
    np.testing.assert_allclose(df["toe_off_s"], to, atol=5e-5)  # NaN where no toe-off
    np.testing.assert_allclose(df["ic_s"], [s.ic_s for s in result.strides], atol=5e-5)
    exc = [m.get("hip_rotation_excursion_deg", np.nan) for m in result.per_stride]
    np.testing.assert_allclose(df["hip_rotation_excursion_deg"], exc, atol=5e-5)


def test_strides_csv_cells_written_as_pandas_writes_them():
    from imuhip.report.stride_table import StridesTable

    t = StridesTable(
        ["side", "n", "x", "ok", "why"],
        [
            ("left", 1, 1.23456, True, "none"),
            ("right", np.int64(2), np.nan, np.False_, "a,b"),
            ("left", 3, np.inf, True, "none"),
        ],
    )
    ref = pd.DataFrame(t.rows, columns=t.columns).to_csv(index=False, float_format="%.4f")
    assert t.to_csv() == ref
    assert ref == (
        'side,n,x,ok,why\nleft,1,1.2346,True,none\nright,2,,False,"a,b"\nleft,3,inf,True,none\n'
    )


def test_html_self_contained_with_inline_svg_plots(written):
    html = written["html"].read_text()
    assert "<img" not in html  # figures are inline SVG, text in the DOM, sharp in print
    charts = re.findall(r'<svg [^>]*role="img"[^>]*>\s*<title>([^<]+)</title>', html)
    assert charts[:2] == ["Hip rotation over the gait cycle", "Hip rotation excursion per stride"]
    assert {"Pelvis rotation", "Lumbar rotation (relative to pelvis)"} <= set(charts)
    assert not re.search(r'(src|href)="(https?:)?//', html)
    for section in (
        'id="finding"',
        "Summary",
        "Hip rotation over the gait cycle",
        "Pelvis and lumbar",
        "asymmetry",
        "Strides",
        "Data quality",
        "Conventions and caveats",
        "@media print",
    ):
        assert section in html
    # human names on the page; code names only in report.json / strides.csv
    body = html.split("<body>", 1)[1]
    assert "Hip rotation excursion" in body
    for code in ("hip_rotation_excursion_deg", "pelvis_rotation_range_deg", "hip_er_peak_deg"):
        assert code not in body
    assert "{'" not in body and "--" not in body
    assert "° (+ counter-clockwise from above)" in body  # sign convention on the axis


def test_stride_table_capped_with_excluded_first(result, tmp_path, monkeypatch):
    import imuhip.report.html as page

    monkeypatch.setattr(page, "MAX_TABLE_ROWS", 5)
    table = strides_table(result)
    html = page.render_html(result, report_dict(result), table)
    section = html.split("<h2>Strides</h2>", 1)[1].split("<h2>", 1)[0]
    assert section.count("<tr class=") == 5
    n_excl = table.column("valid").count(False)
    assert section.count('<tr class="excl">') == min(n_excl, 5)
    assert f"5 of {len(table)} strides shown" in section


def test_restricted_side_flagged_and_summary():
    ori, segcal, meta = _orientations(limit_right=1.0, lumbar=False)
    res = analyze_orientations(ori, meta, segcal=segcal)
    codes = {(f.code, f.side) for f in res.flags}
    assert ("hip_rotation_restricted_side", "right") in codes
    text = "\n".join(summary_lines(res))
    assert "smaller on the right side" in text
    assert "valid strides" in text


def test_summary_says_flags_on_few_strides_are_uncertain():
    """As the report's first screen: a flag made of fewer than 10 valid strides per side is not
    printed bare on the terminal."""
    ori, segcal, meta = _orientations(duration_s=13.0, limit_right=1.0, lumbar=False)
    res = analyze_orientations(ori, meta, segcal=segcal)
    n = {s: v["valid"] for s, v in res.session.n_strides.items()}
    assert 0 < min(n.values()) < 10 and res.flags
    lines = summary_lines(res)
    last = lines[-1]
    assert last.startswith("UNCERTAIN: few valid strides (")
    assert all(f"{s} {k}" in last for s, k in n.items() if k < 10)
    assert lines.index(last) > max(i for i, s in enumerate(lines) if s.startswith("FLAG"))
    d = report_dict(res)
    # 3 valid strides a side: no compensation index (COMPENSATION_MIN_STRIDES), and the
    # summary says why instead of leaving it out silently
    assert d["compensation"]["per_side"] == {} and d["compensation"]["min_strides"] == 5
    assert sum("compensation index – (needs 5 usable strides)" in x for x in lines) == 2
    # the asymmetry of 3 strides a side is Welch's interval, and this one excludes 0
    a = res.session.asymmetry["hip_rotation_excursion_deg"]
    assert (a.n_left, a.n_right) == (n["left"], n["right"]) and a.ci95_high < 0
    from imuhip.report.summary import first_screen

    fs = first_screen(d)
    assert fs.headline.startswith("Right hip rotation reduced: ")
    exc = d["metrics"]["per_side"]
    r = exc["right"]["hip_rotation_excursion_deg"]["mean"]
    left = exc["left"]["hip_rotation_excursion_deg"]["mean"]
    assert f"{r:.1f}° vs {left:.1f}° on the left side" in fs.headline


def test_excursion_plot_dots_then_one_line_past_the_cap(result, monkeypatch):
    import imuhip.report.plots as plots

    n_left = sum(1 for s in result.strides if s.side == "left" and s.valid)
    svg = plots.excursion_over_time_svg(result)
    assert svg.count("h0") >= n_left  # one dot per valid stride
    monkeypatch.setattr(plots, "MAX_DOTS", 2)
    svg = plots.excursion_over_time_svg(result)
    assert "h0" not in svg
    assert svg.count('stroke-width="0.8"') == 2  # one line per side
