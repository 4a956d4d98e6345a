"""The real OpenSense trial (Xsens, orientation only) through the analysis pipeline.

Plausibility ranges are the level-walking norms of ``docs/interop.md`` (hip rotation excursion
~6-15 deg, hip flexion range ~35-50 deg, pelvic obliquity ~5-10 deg, tilt ~2-5 deg), widened to
what a slow loop walk can show; none is a value produced by this code.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import quat_conj, quat_mul, to_rotation
from imuhip.gait.walking_direction import WALKING_TURN_MAX_DEG
from imuhip.interop.orientation_file import (
    analyze_orientation_file,
    load_orientation_segcal,
    load_orientation_session,
    meta_for_vendor_session,
    orientation_session_from_imported,
    save_orientation_session,
)
from imuhip.interop.vendor_calibration import (
    assumed_pose_calibration,
    find_still_window,
    forward_sign_score,
)
from imuhip.interop.xsens import import_xsens_trial, read_xsens_txt, xsens_heading_reference
from imuhip.orientation.heading import VENDOR_HEADING_KEY, transverse_confidence
from imuhip.pipeline import analyze_orientations


@pytest.fixture(scope="module")
def trial():
    folder = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "opensense"
    if not folder.is_dir():
        pytest.fail(f"shared data folder missing: {folder}")
    sensors, notes = import_xsens_trial(mapping=folder / "myIMUMappings.xml")
    ori = orientation_session_from_imported(sensors, source="vendor:xsens")
    meta = meta_for_vendor_session(
        sensors,
        subject="OS1",
        session_id="opensense",
        start_wall_time="2019-01-01T00:00:00+00:00",
        vendor="xsens",
        notes=notes,
    )
    return ori, meta


def test_session_grid_and_vendor_source(trial) -> None:
    ori, _ = trial
    assert ori.source == "vendor:xsens"
    assert ori.rate_hz == 100.0
    # every file starts at counter 472 and has no gaps: the common grid is the shortest file
    folder = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "opensense"
    rows = []
    ids = ("00B42279", "00B4227C", "00B421EE", "00B4227D", "00B421ED", "00B42268")
    for sid in (*ids, "00B421EF", "00B421E6"):  # feet (calcn_*) included
        text = (folder / f"MT_012005D6_009-001_{sid}.txt").read_text().splitlines()
        rows.append(sum(1 for ln in text if ln and ln[0].isdigit()))
    assert len(ori.t_s) == min(rows)
    assert all(np.all(v) for v in ori.valid.values())
    assert all(g is None for g in ori.gyr_rad_s.values())
    for q in ori.q_world_sensor.values():
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-6)
        assert np.all(np.sum(q[1:] * q[:-1], axis=1) > 0)  # sign kept continuous


def test_static_pose_is_found_at_the_start(trial) -> None:
    ori, _ = trial
    a, b = find_still_window(ori)
    assert a == 0 and 1.0 <= (b - a) / ori.rate_hz < 3.0


def test_assumed_pose_zeroes_angles_in_the_static_window(trial) -> None:
    ori, meta = trial
    segcal = assumed_pose_calibration(ori)
    res = analyze_orientations(ori, meta, segcal=segcal)
    a = res.angles
    sl = slice(20, 150)
    for side in ("left", "right"):
        assert np.max(np.abs(np.degrees(a.hip_rad[side][sl]))) < 3.0
    assert np.max(np.abs(np.degrees(a.pelvis_rad[sl, 1:]))) < 3.0  # obliquity, tilt


def test_gait_numbers_are_plausible(trial) -> None:
    ori, meta = trial
    res = analyze_orientations(ori, meta, segcal=assumed_pose_calibration(ori))
    # the subject walks about 17 s (7-24 s): 8-15 initial contacts per side
    for side in ("left", "right"):
        assert 8 <= len(res.events[side].ic_s) <= 15
    stride_s = [s.next_ic_s - s.ic_s for s in res.strides]
    assert 0.9 < float(np.median(stride_s)) < 1.8  # cadence 67-133 steps/min
    straight = [
        (s, m)
        for s, m in zip(res.strides, res.per_stride, strict=True)
        if abs(s.heading_change_deg) < 20
    ]
    assert len(straight) >= 4
    for _, m in straight:
        # level walking: hip rotation excursion ~6-15 deg, flexion range ~35-50 deg
        assert 4.0 < m["hip_rotation_excursion_deg"] < 20.0
        assert 25.0 < m["hip_flexion_range_deg"] < 55.0
        assert m["pelvis_obliquity_range_deg"] < 15.0
        assert m["pelvis_tilt_range_deg"] < 15.0


def test_saved_session_analyses_identically(trial, tmp_path: Path) -> None:
    ori, meta = trial
    segcal = assumed_pose_calibration(ori)
    f = save_orientation_session(tmp_path / "os.imori.npz", ori, meta, segcal=segcal)
    ori2, meta2 = load_orientation_session(f)
    assert meta2 == meta
    for p in ori.q_world_sensor:
        np.testing.assert_array_equal(ori2.q_world_sensor[p], ori.q_world_sensor[p])
        np.testing.assert_array_equal(ori2.valid[p], ori.valid[p])
    sc2 = load_orientation_segcal(f)
    assert sc2 is not None
    for p, q in segcal.q_sensor_segment.items():
        np.testing.assert_allclose(sc2.q_sensor_segment[p], q, atol=1e-12)
    r1 = analyze_orientations(ori, meta, segcal=segcal)
    r2 = analyze_orientation_file(f)
    np.testing.assert_allclose(r2.angles.hip_rad["left"], r1.angles.hip_rad["left"], atol=1e-12)
    assert len(r2.strides) == len(r1.strides)


def _same_rotation(a: np.ndarray, b: np.ndarray, atol: float = 1e-9) -> None:
    np.testing.assert_allclose(abs(float(np.dot(a, b))), 1.0, atol=atol)


def test_forward_is_the_pelvis_z_axis_and_the_walking_agrees(trial) -> None:
    ori, meta = trial
    segcal = assumed_pose_calibration(ori)  # default: OpenSense's base_heading_axis z
    q = segcal.quality["pelvis"]
    assert q["forward_sign_score"] > 0.3
    assert "forward_reversed" not in q
    for side in ("l", "r"):  # every cue says forward: swing forward, knee flexes
        assert q[f"forward_cue_shank_{side}_swing"] > 0.1
        assert q[f"forward_cue_knee_{side}_flexion"] > 0.5
    res = analyze_orientations(ori, meta, segcal=segcal)
    assert res.quality["event_warnings"] == []  # no inverted mediolateral axis any more
    walk = slice(round(7.0 * ori.rate_hz), round(24.0 * ori.rate_hz))
    for side, sfx in (("left", "l"), ("right", "r")):
        flex = np.degrees(res.angles.hip_rad[side][walk, 0])
        # relative to standing: ~25-35 deg flexion in late swing, ~10-15 deg extension
        assert 18.0 < np.percentile(flex, 99) < 45.0
        assert -25.0 < np.percentile(flex, 1) < -3.0
        q_t = quat_mul(ori.q_world_sensor[f"thigh_{sfx}"], segcal.q_sensor_segment[f"thigh_{sfx}"])
        q_s = quat_mul(ori.q_world_sensor[f"shank_{sfx}"], segcal.q_sensor_segment[f"shank_{sfx}"])
        knee = np.degrees(to_rotation(quat_mul(quat_conj(q_t), q_s)[walk]).as_rotvec()[:, 2])
        assert np.percentile(knee, 1) < -45.0  # flexion (distal end backwards) in swing
        assert np.percentile(knee, 99) < 10.0  # never tens of degrees of hyperextension


def test_a_backward_base_axis_is_reversed_by_the_walking(trial) -> None:
    ori, _ = trial
    good = assumed_pose_calibration(ori, base_heading_axis="z")
    bad = assumed_pose_calibration(ori, base_heading_axis="-z")
    assert bad.quality["pelvis"]["forward_reversed"] == 1.0
    assert any("points backwards" in w for w in bad.warnings)
    for p, qq in good.q_sensor_segment.items():
        _same_rotation(bad.q_sensor_segment[p], qq)
    unchecked = assumed_pose_calibration(
        ori, base_heading_axis="-z", check_forward_with_walking=False
    )
    score, _ = forward_sign_score(ori, unchecked.q_sensor_segment, np.arange(len(ori.t_s)) > 700)
    assert score is not None and score < -0.3
    # a lateral axis (90 deg off): the cues disagree, nothing is flipped, the user is told
    side = assumed_pose_calibration(ori, base_heading_axis="y")
    assert "forward_reversed" not in side.quality["pelvis"]
    assert any("disagree" in w for w in side.warnings)


def test_vendor_heading_is_magnetometer_anchored(trial) -> None:
    ori, meta = trial
    for p, d in ori.diagnostics.items():
        assert np.all(d[VENDOR_HEADING_KEY]), p  # '// Filter Profile: human', AHS disabled
    res = analyze_orientations(ori, meta, segcal=assumed_pose_calibration(ori))
    assert res.quality["transverse_confidence_mean"] == pytest.approx(0.7)
    notes = " ".join(res.quality["angle_notes"])
    assert "vendor's magnetometer-referenced fusion" in notes
    assert "not anchored" not in notes and "not drift-corrected" not in notes
    # without the vendor's word the same orientations are unanchored 6D (confidence 0)
    bare = dataclasses.replace(ori, diagnostics={})
    conf, reasons = transverse_confidence(bare)
    assert np.all(conf == 0.0) and any("not anchored" in r for r in reasons)
    # the flag counts only for vendor orientations
    ours = dataclasses.replace(ori, source="vqf_offline")
    assert np.all(transverse_confidence(ours)[0] == 0.0)


def test_heading_reference_from_the_export_header(tmp_path: Path) -> None:
    body = "PacketCounter\tAcc_X\tAcc_Y\tAcc_Z\tQuat_q0\tQuat_q1\tQuat_q2\tQuat_q3\n" + "".join(
        f"{k:05d}\t0\t0\t9.81\t1\t0\t0\t0\n" for k in range(5)
    )
    cases = {
        "// Filter Profile: human (46.1)\n// Option Flags: AHS Disabled ICC Disabled\n": (
            "magnetometer"
        ),
        "// Filter Profile: VRU_general (13.1)\n": "none",
        "// Filter Profile: general (39.1)\n// Option Flags: AHS Enabled\n": "none",
        "": None,
    }

    for i, (head, want) in enumerate(cases.items()):
        f = tmp_path / f"h{i}.txt"
        f.write_text("// Update Rate: 100.0Hz\n" + head + body)
        assert xsens_heading_reference(read_xsens_txt(f)) == want, head


def test_saved_session_keeps_the_vendor_heading_flag(trial, tmp_path: Path) -> None:
    ori, meta = trial
    f = save_orientation_session(tmp_path / "v.imori.npz", ori, meta)
    ori2, _ = load_orientation_session(f)
    for p, d in ori.diagnostics.items():
        np.testing.assert_array_equal(
            ori2.diagnostics[p][VENDOR_HEADING_KEY], d[VENDOR_HEADING_KEY]
        )


def test_report_of_the_trial_is_plausible(trial) -> None:
    """Issue 8: straight strides valid, session values in the walking norms (docs/interop.md)."""
    ori, meta = trial
    res = analyze_orientations(ori, meta, segcal=assumed_pose_calibration(ori))
    for side in ("left", "right"):
        valid = [s for s in res.strides if s.side == side and s.valid]
        assert len(valid) >= 3, side
        assert all(abs(s.heading_change_deg) <= 20.0 for s in valid)
        m = res.session.per_side[side]
        assert 6.0 <= m["hip_rotation_excursion_deg"].mean <= 20.0
        assert 25.0 <= m["hip_flexion_range_deg"].mean <= 55.0
        assert 70.0 <= m["cadence_steps_min"].mean <= 130.0
        assert 45.0 <= m["stance_pct"].mean <= 70.0
        assert len(res.events[side].to_s) >= len(valid)
    trunk = res.session.trunk
    assert 3.0 <= trunk["pelvis_obliquity_range_deg"].mean <= 12.0
    assert 1.0 <= trunk["pelvis_tilt_range_deg"].mean <= 8.0
    # the subject walks a loop: the walking direction turns within every stride, so the pelvis
    # rotation range (measured against it) is left out of every stride rather than reported
    # inflated (~36 deg per stride before) and flagged; nothing is flagged from it
    wh = res.angles.walking_heading_rad
    assert wh is not None
    for s in (s for s in res.strides if s.valid):
        turn = np.degrees(np.ptp(wh[s.start_idx : s.stop_idx]))
        m = res.per_stride[res.strides.index(s)]
        assert np.isnan(m["pelvis_rotation_range_deg"]) == (turn > WALKING_TURN_MAX_DEG)
    assert trunk["pelvis_rotation_range_deg"].n == 0
    assert "pelvis_rotation_range_deg" not in {f.metric for f in res.flags}
