"""Degrade, don't abort: a sensor the calibration cannot use is dropped with its reason.

Only the pelvis, or every thigh, failing is an error (naming the sensor and what to redo); an
optional sensor (shank, lumbar) or one thigh is left out and the rest of the analysis goes on.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.errors import CalibrationError
from imuhip.orientation.segment_calibration import SegmentCalConfig, calibrate_segments
from imuhip.orientation.segment_calibration._windows import _index, _movement_windows
from imuhip.pipeline import analyze_orientations
from imuhip.report.writer import summary_lines
from imuhip.types import OrientationSession, SessionEvent, SessionMeta
from tests.unit._walk_synth import make_walk

META = SessionMeta("S1", "2026-01-01T00:00:00Z", "SIM01", ())
STATIC_S = 3.0


@pytest.fixture(scope="module")
def walk6d() -> OrientationSession:
    ori, _, _ = make_walk(with_mag=False, seed=5, static_s=STATIC_S, walk_s=20.0)
    return ori


def _with_sensor(
    ori: OrientationSession, placement: str, gyr: np.ndarray, acc: np.ndarray | None = None
) -> OrientationSession:
    """``ori`` plus (or with replaced) ``placement``: identity orientation, given gyro."""
    n = len(ori.t_s)
    q = np.tile([1.0, 0.0, 0.0, 0.0], (n, 1))
    acc = np.tile([0.0, 0.0, 9.81], (n, 1)) if acc is None else acc
    return dataclasses.replace(
        ori,
        q_world_sensor={**ori.q_world_sensor, placement: q},
        acc_m_s2={**ori.acc_m_s2, placement: acc},
        gyr_rad_s={**ori.gyr_rad_s, placement: gyr},
        valid={**ori.valid, placement: np.ones(n, bool)},
        mag_ut={**ori.mag_ut, placement: None},
    )


def test_constant_optional_shank_is_dropped_not_fatal(walk6d) -> None:
    """A shank that reads nothing (constant: no angular velocity) has no flexion axis."""
    n = len(walk6d.t_s)
    ori = _with_sensor(walk6d, "shank_r", np.zeros((n, 3)))
    segcal = calibrate_segments(ori)
    assert "ambiguous" in segcal.dropped["shank_r"]
    assert "shank_r" not in segcal.q_sensor_segment
    assert {"pelvis", "thigh_l", "thigh_r"} <= set(segcal.q_sensor_segment)

    res = analyze_orientations(ori, META)
    d = res.quality["dropped_sensors"]["shank_r"]
    assert d["stage"] == "calibration"
    assert "ambiguous" in d["reason"]
    assert set(res.angles.hip_rad) == {"left", "right"}
    # events of the right side come from the thigh now, and both sides have strides
    assert res.quality["event_sources"]["right"].startswith("thigh")
    assert res.session.n_strides["right"]["valid"] >= 10
    assert res.session.n_strides["left"]["valid"] >= 10
    assert any(line.startswith("DROPPED shank_r (calibration)") for line in summary_lines(res))


def test_constant_lumbar_is_dropped_and_lumbar_angles_absent(walk6d) -> None:
    n = len(walk6d.t_s)
    ori = _with_sensor(walk6d, "lumbar", np.zeros((n, 3)))
    res = analyze_orientations(ori, META)
    assert res.quality["dropped_sensors"]["lumbar"]["stage"] == "calibration"
    assert "obliquity" in res.quality["dropped_sensors"]["lumbar"]["reason"]
    assert res.angles.lumbar_rad is None
    assert set(res.angles.hip_rad) == {"left", "right"}


def test_optional_sensor_never_still_does_not_hide_the_standing_start(walk6d) -> None:
    """A loose shank that never keeps still: the standing start is still found (pelvis and
    thighs), and the shank is dropped for moving in it."""
    rng = np.random.default_rng(1)
    n = len(walk6d.t_s)
    ori = _with_sensor(walk6d, "shank_l", rng.normal(scale=1.0, size=(n, 3)))
    segcal = calibrate_segments(ori)
    assert "moved during the static window" in segcal.dropped["shank_l"]
    assert {"pelvis", "thigh_l", "thigh_r"} <= set(segcal.q_sensor_segment)


def test_pelvis_failure_is_an_error_naming_pelvis(walk6d) -> None:
    rng = np.random.default_rng(2)
    gyr = np.array(walk6d.gyr_rad_s["pelvis"], copy=True)
    k = round(STATIC_S * walk6d.rate_hz)
    gyr[:k] += rng.normal(scale=0.5, size=(k, 3))
    ori = dataclasses.replace(walk6d, gyr_rad_s={**walk6d.gyr_rad_s, "pelvis": gyr})
    with pytest.raises(CalibrationError, match=r"^pelvis: subject moved.*stand still"):
        calibrate_segments(ori, static_window=(0, k))


def test_one_thigh_moved_keeps_the_other_both_is_an_error(walk6d) -> None:
    rng = np.random.default_rng(3)
    k = round(STATIC_S * walk6d.rate_hz)
    gyr = dict(walk6d.gyr_rad_s)
    for p in ("thigh_r", "thigh_l"):
        g = np.array(gyr[p], copy=True)
        g[:k] += rng.normal(scale=0.5, size=(k, 3))
        gyr[p] = g
        if p == "thigh_r":
            one = calibrate_segments(
                dataclasses.replace(walk6d, gyr_rad_s=dict(gyr)), static_window=(0, k)
            )
            assert "moved" in one.dropped["thigh_r"]
            assert "thigh_l" in one.q_sensor_segment
    with pytest.raises(CalibrationError, match=r"thigh_l: subject moved.*thigh_r.*stand still"):
        calibrate_segments(dataclasses.replace(walk6d, gyr_rad_s=gyr), static_window=(0, k))


def _ends_at(ori: OrientationSession, placement: str, t_end_s: float) -> OrientationSession:
    """``ori`` with ``placement`` sending nothing after ``t_end_s`` (a flat battery): its rows
    are invalid from there, holding the last values as the aligned grid does."""
    k = int(np.searchsorted(ori.t_s, t_end_s))
    v = np.array(ori.valid[placement], copy=True)
    v[k:] = False
    held = {}
    for name in ("gyr_rad_s", "acc_m_s2"):
        a = np.array(getattr(ori, name)[placement], copy=True)
        a[k:] = a[k - 1]
        held[name] = {**getattr(ori, name), placement: a}
    return dataclasses.replace(ori, valid={**ori.valid, placement: v}, **held)


def test_a_thigh_that_stops_sending_is_dropped_and_the_other_side_calibrated(walk6d) -> None:
    """Before, the walking windows needed every thigh's data: a thigh whose battery died soon
    after the standing start left no walking at all and the whole session was refused."""
    ori = _ends_at(walk6d, "thigh_r", STATIC_S + 1.0)
    k = round(STATIC_S * ori.rate_hz)
    windows = _movement_windows(ori, (0, k), SegmentCalConfig())
    walking_s = len(_index(windows, len(ori.t_s))) / ori.rate_hz
    assert walking_s > 10.0  # the left thigh's walking (20 s walk, turns and ramps left out)
    segcal = calibrate_segments(ori, static_window=(0, k))
    assert {"pelvis", "thigh_l"} <= set(segcal.q_sensor_segment)
    assert "thigh_r" not in segcal.q_sensor_segment
    reason = segcal.dropped["thigh_r"]
    assert reason.startswith("no data during most of the walking (")
    assert f"its data: 0.0–{STATIC_S + 1.0 - 1 / ori.rate_hz:.1f} s)" in reason
    ref = calibrate_segments(walk6d, static_window=(0, k))
    cos = abs(float(np.dot(ref.q_sensor_segment["thigh_l"], segcal.q_sensor_segment["thigh_l"])))
    assert 2 * np.degrees(np.arccos(min(1.0, cos))) < 2.0  # the left side as with both thighs


def test_movement_error_names_a_required_sensor_whose_data_end_early(walk6d) -> None:
    ori = _ends_at(walk6d, "pelvis", STATIC_S + 2.0)
    k = round(STATIC_S * ori.rate_hz)
    end = float(ori.t_s[-1])
    with pytest.raises(
        CalibrationError,
        match=rf"movement too short .*; pelvis: its data end at {STATIC_S + 2.0 - 0.01:.1f} s "
        rf"of {end:.1f} s: walk straight",
    ):
        calibrate_segments(ori, static_window=(0, k))


def _swings(t0: float, t1: float) -> SessionEvent:
    data = {"movement": "hip_flexion", "start_s": t0, "stop_s": t1}
    return SessionEvent(0, "calibration_start", data=data)


def test_unusable_leg_swings_fall_back_to_walking_with_a_warning() -> None:
    """Swings marked where the subject in fact stood still: axes from the walking instead."""
    ori, _, _ = make_walk(with_mag=False, seed=5, static_s=9.0, walk_s=20.0)
    res = analyze_orientations(ori, META, events=[_swings(2.0, 8.0)])  # 6 s, no movement
    fb = res.quality["calibration_fallbacks"]
    assert {w.split(":")[0] for w in fb} == {"thigh_l", "thigh_r"}
    assert res.segcal is not None
    assert res.segcal.method["thigh_r"] == "static+walking"
    assert not res.quality["dropped_sensors"]
    assert any(line.startswith("CALIBRATION: thigh_r: fallback") for line in summary_lines(res))
    # the same axes as without any marked swings (the walking decides both)
    plain = calibrate_segments(ori)
    for p in ("thigh_l", "thigh_r"):
        dot = abs(float(np.dot(res.segcal.q_sensor_segment[p], plain.q_sensor_segment[p])))
        assert dot > np.cos(np.deg2rad(0.25))  # |<q1, q2>| = cos(half the angle between)


def test_too_short_leg_swings_fall_back_to_walking(walk6d) -> None:
    res = analyze_orientations(walk6d, META, events=[_swings(0.5, 2.5)])  # 2 s < 4 s
    assert [w.split(":")[0] for w in res.quality["calibration_fallbacks"]] == ["legs"]
    assert res.segcal is not None
    assert res.segcal.method["thigh_l"] == "static+walking"
    assert set(res.angles.hip_rad) == {"left", "right"}


def test_turn_is_left_out_of_the_walking_window() -> None:
    """make_walk(turn=True) turns 90 deg over 2 s (45 deg/s) in the middle of the walk."""
    ori, _, _ = make_walk(with_mag=False, seed=7, static_s=STATIC_S, walk_s=20.0, turn=True)
    cfg = SegmentCalConfig()
    k = round(STATIC_S * ori.rate_hz)
    idx = _index(_movement_windows(ori, (0, k), cfg), len(ori.t_s))
    t = ori.t_s[idx]
    turn_mid = STATIC_S + 10.0 + 1.0
    assert not np.any(np.abs(t - turn_mid) < 0.5)  # the middle of the turn is out
    assert np.sum(t < turn_mid - 1.5) > 6 * ori.rate_hz  # steady walking before it is in
    assert np.sum(t > turn_mid + 1.5) > 6 * ori.rate_hz  # and after it
