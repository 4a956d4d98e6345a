"""Follow-up comparison of real gait reports (analysed simulated walks with known restriction)."""

from __future__ import annotations

import copy
import json
import math

import pytest
from scipy.stats import t as student_t

from imuhip.errors import ImuhipError
from imuhip.report.compare import (
    SubjectMismatchError,
    compare_dict,
    compare_lines,
    load_reports,
    render_compare_html,
    write_compare,
)
from tests.unit.report.test_report import _orientations


@pytest.fixture(scope="module")
def reports():
    """report.json documents of a walk with the right hip capped at 3° IR and one without."""
    from imuhip.pipeline import analyze_orientations
    from imuhip.report.writer import report_dict

    out = []
    for limit in (3.0, None):
        ori, segcal, meta = _orientations(duration_s=16.0, lumbar=False, limit_right=limit)
        out.append(report_dict(analyze_orientations(ori, meta, segcal=segcal)))
    before, after = out
    before["session"]["start_wall_time"] = "2026-01-10T09:00:00+00:00"
    after["session"]["start_wall_time"] = "2026-03-10T09:00:00+00:00"
    return before, after


@pytest.mark.slow
def test_sessions_by_date_with_t_intervals_and_the_change(reports):
    before, after = reports
    doc = compare_dict([("after.json", after), ("before.json", before)])  # given out of order
    assert [s["source"] for s in doc["sessions"]] == ["before.json", "after.json"]
    assert [s["label"] for s in doc["sessions"]] == ["S1", "S2"]
    assert doc["sessions"][0]["date"] == "2026-01-10T09:00:00+00:00"
    m = before["metrics"]["per_side"]["right"]["hip_rotation_excursion_deg"]
    v = doc["sessions"][0]["values"]["hip_rotation_excursion_deg.right"]
    half = student_t.ppf(0.975, m["n"] - 1) * m["sd"] / math.sqrt(m["n"])
    assert v["value"] == m["mean"]
    assert (v["ci95_low"], v["ci95_high"]) == pytest.approx((m["mean"] - half, m["mean"] + half))
    a = before["asymmetry"]["hip_rotation_excursion_deg"]
    va = doc["sessions"][0]["values"]["hip_rotation_excursion_deg.asymmetry"]
    assert (va["value"], va["ci95_low"], va["ci95_high"]) == (
        a["right_minus_left"],
        a["ci95_low"],
        a["ci95_high"],
    )
    # the restriction was lifted on the right: its excursion grows, the asymmetry closes
    (ch,) = doc["changes_from_first"]["hip_rotation_excursion_deg.right"]
    m2 = after["metrics"]["per_side"]["right"]["hip_rotation_excursion_deg"]
    assert ch["change"] == pytest.approx(m2["mean"] - m["mean"])
    assert ch["change"] > 2.0 and ch["significant"] is True
    (ch_left,) = doc["changes_from_first"]["hip_rotation_excursion_deg.left"]
    assert abs(ch_left["change"]) < 1.0
    comp = after["compensation"]["per_side"]["right"]["index"]
    assert doc["sessions"][1]["values"]["compensation_index.right"]["value"] == pytest.approx(comp)
    lines = compare_lines(doc)
    assert any(
        ln.startswith("S2 vs S1: Hip rotation excursion, right (°) changed by +") for ln in lines
    )
    row = next(ln for ln in lines if ln.startswith("Hip rotation excursion, right"))
    assert f"{m['mean']:.1f} [{m['mean'] - half:.1f}, {m['mean'] + half:.1f}]" in row
    page = render_compare_html(doc)
    assert "Follow-up: subject SIM01" in page and "Changes whose CI excludes 0" in page
    json.dumps(doc, allow_nan=False)


@pytest.mark.slow
def test_different_subjects_refused_unless_forced(reports, tmp_path):
    before, after = reports
    other = copy.deepcopy(after)
    other["session"]["subject"] = "P02"
    with pytest.raises(SubjectMismatchError, match=r"SIM01: a.json; P02: b.json|P02: b.json"):
        compare_dict([("a.json", before), ("b.json", other)])
    doc = compare_dict([("a.json", before), ("b.json", other)], force=True)
    assert doc["forced"] is True and doc["subjects"] == ["P02", "SIM01"]
    assert "Different subjects" in render_compare_html(doc)
    paths = write_compare(doc, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compare.html", "compare.json"]
    assert json.loads(paths["json"].read_text())["forced"] is True


def test_load_reports_names_what_is_wrong(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImuhipError, match=r"no report\.json or rom_report\.json"):
        load_reports([tmp_path / "empty"])
    (tmp_path / "x.json").write_text('{"schema": "something else"}')
    with pytest.raises(ImuhipError, match="not an imuhip gait or ROM report"):
        load_reports([tmp_path / "x.json"])
    (tmp_path / "y.json").write_text("not json")
    with pytest.raises(ImuhipError, match="not a JSON report"):
        load_reports([tmp_path / "y.json"])
    with pytest.raises(FileNotFoundError):
        load_reports([tmp_path / "missing"])
