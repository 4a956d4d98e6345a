"""The real OpenSense trial (Xsens, orientation only) through the analysis pipeline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imuhip.interop.orientation_file import (
    analyze_orientation_file,
    load_orientation_segcal,
    load_orientation_session,
    meta_for_vendor_session,
    orientation_session_from_imported,
    save_orientation_session,
)
from imuhip.interop.vendor_calibration import assumed_pose_calibration, find_still_window
from imuhip.interop.xsens import import_xsens_trial
from imuhip.pipeline import analyze_orientations


@pytest.fixture(scope="module")
def trial():
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opensense"
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
    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "opensense"
    rows = []
    for sid in ("00B42279", "00B4227C", "00B421EE", "00B4227D", "00B421ED", "00B42268"):
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
