"""Sensor-to-segment calibration on synthetic standing + walking with known mounting."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.conventions import Side, quat_rotate
from imuhip.errors import CalibrationError
from imuhip.gait.joints import hip_angles, joint_angles, pelvis_angles, segment_orientation
from imuhip.orientation.segment_calibration import (
    SegmentCalConfig,
    calibrate_segments,
    find_static_window,
    q_sensor_segment_from_axes,
    segcal_from_event_data,
    segcal_to_event,
    segcal_to_event_data,
)
from imuhip.types import SegmentCalibration
from tests.unit._walk_synth import DEG, make_walk

# the synthetic walker stands with a level pelvis (no anatomical tilt)
LEVEL = SegmentCalConfig(standing_pelvic_tilt_rad=0.0)


@pytest.fixture(scope="module")
def walk9d():
    return make_walk(with_mag=True, seed=3)


def test_axes_to_quaternion_known_answer() -> None:
    # segment X along sensor y, segment Y along sensor z -> Z = X x Y along sensor x
    q = q_sensor_segment_from_axes([0, 1, 0.05], [0, 0, 2])
    np.testing.assert_allclose(quat_rotate(q, [1, 0, 0]), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(quat_rotate(q, [0, 1, 0]), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(quat_rotate(q, [0, 0, 1]), [1, 0, 0], atol=1e-12)


def test_static_window_found(walk9d) -> None:
    ori, _, _ = walk9d
    a, b = find_static_window(ori)
    assert a == 0
    assert 2.5 <= (b - a) / ori.rate_hz <= 3.2  # standing lasts 3 s, walking ramps in after


def test_9d_angles_match_truth(walk9d) -> None:
    ori, _, truth = walk9d
    sc = calibrate_segments(ori, LEVEL)
    assert sc.method["thigh_r"] == "static+walking"
    assert sc.warnings == ()
    qp = segment_orientation(ori.q_world_sensor["pelvis"], sc.q_sensor_segment["pelvis"])
    w = ori.t_s > 4.0
    for side in (Side.LEFT, Side.RIGHT):
        qt = segment_orientation(
            ori.q_world_sensor[f"thigh_{side.suffix}"], sc.q_sensor_segment[f"thigh_{side.suffix}"]
        )
        err = (hip_angles(qp, qt, side) - truth[f"hip_{side.value}"])[w] / DEG
        assert np.sqrt(np.mean(err[:, :2] ** 2)) < 0.3  # flexion, adduction
        # rotation neutral = walking flexion axis: a constant offset, excursion exact
        assert abs(np.mean(err[:, 2])) < 3.0
        assert np.std(err[:, 2]) < 0.3
    d = np.array([0.0, 1.0, 0.0])  # synthetic walk goes north
    perr = (pelvis_angles(qp, d) - truth["pelvis"])[w] / DEG
    assert np.sqrt(np.mean(perr**2)) < 0.5


def test_6d_relative_heading_recovered() -> None:
    ori, _, truth = make_walk(
        with_mag=False,
        walk_s=60,
        seed=5,
        heading_offsets_deg={"pelvis": 40, "thigh_l": -70, "thigh_r": 10, "lumbar": 100},
        heading_drift_deg_per_s={"thigh_l": 0.05, "thigh_r": -0.03, "pelvis": 0.02},
    )
    sc = calibrate_segments(ori, LEVEL)
    assert "obliquity" in sc.method["pelvis"]
    ja = joint_angles(ori, sc)
    w = ori.t_s > 5.0
    for side in ("left", "right"):
        err = (ja.hip_rad[side] - truth[f"hip_{side}"])[w] / DEG
        assert np.sqrt(np.mean(err**2, axis=0))[2] < 1.0, side
    assert ja.lumbar_rad is not None
    lerr = (ja.lumbar_rad - truth["lumbar"])[w] / DEG
    assert np.sqrt(np.mean(lerr**2)) < 1.0
    assert ja.transverse_confidence is not None
    assert 0.3 < float(np.mean(ja.transverse_confidence[w])) < 1.0
    assert any("walking-axis" in n for n in ja.notes)


def test_rejects_subject_moved(walk9d) -> None:
    ori, _, _ = walk9d
    with pytest.raises(CalibrationError, match="moved"):
        calibrate_segments(ori, static_window=(0, int(8 * ori.rate_hz)))


def test_rejects_movement_too_small(walk9d) -> None:
    ori, _, _ = walk9d
    gyr = {k: (None if v is None else v * 0.05) for k, v in ori.gyr_rad_s.items()}
    small = dataclasses.replace(ori, gyr_rad_s=gyr)
    win = [(int(5 * ori.rate_hz), len(ori.t_s))]
    with pytest.raises(CalibrationError, match="too small"):
        calibrate_segments(small, static_window=(0, 250), functional_windows=win)


def test_rejects_ambiguous_axis(walk9d) -> None:
    """One thigh without an axis is dropped (the other side goes on); both = an error."""
    ori, _, _ = walk9d
    rng = np.random.default_rng(0)
    gyr = dict(ori.gyr_rad_s)
    noisy = np.array(gyr["thigh_r"], copy=True)
    noisy[300:] = rng.normal(scale=2.0, size=noisy[300:].shape)  # isotropic: no axis
    gyr["thigh_r"] = noisy
    one = calibrate_segments(dataclasses.replace(ori, gyr_rad_s=gyr, mag_ut={}))
    assert "ambiguous" in one.dropped["thigh_r"]
    assert "thigh_r" not in one.q_sensor_segment
    assert {"pelvis", "thigh_l"} <= set(one.q_sensor_segment)
    noisy_l = np.array(gyr["thigh_l"], copy=True)
    noisy_l[300:] = rng.normal(scale=2.0, size=noisy_l[300:].shape)
    gyr["thigh_l"] = noisy_l
    with pytest.raises(CalibrationError, match=r"thigh_l: flexion axis ambiguous.*thigh_r"):
        calibrate_segments(dataclasses.replace(ori, gyr_rad_s=gyr, mag_ut={}))


def test_no_static_window() -> None:
    ori, _, _ = make_walk(static_s=0.5, walk_s=8)
    with pytest.raises(CalibrationError, match="still"):
        calibrate_segments(ori, SegmentCalConfig(walking_posture_fallback=False))


def test_no_static_window_takes_the_mean_walking_posture() -> None:
    """Known answer: without a still period each segment's vertical is its mean attitude over
    the walking, so hip flexion reads the truth minus its walking mean (the synthetic hip
    flexes 10 deg on average), adduction and the rotation's shape stay."""
    ori, _, truth = make_walk(static_s=0.5, walk_s=20, seed=3)
    sc = calibrate_segments(ori, LEVEL)
    assert all(m.startswith("walking posture+walking") for m in sc.method.values()), sc.method
    assert any("no still period of 2 s" in w and "mean walking posture" in w for w in sc.warnings)
    qp = segment_orientation(ori.q_world_sensor["pelvis"], sc.q_sensor_segment["pelvis"])
    w = ori.t_s > 2.0
    for side in (Side.LEFT, Side.RIGHT):
        qt = segment_orientation(
            ori.q_world_sensor[f"thigh_{side.suffix}"], sc.q_sensor_segment[f"thigh_{side.suffix}"]
        )
        tr = truth[f"hip_{side.value}"][w] / DEG
        err = hip_angles(qp, qt, side)[w] / DEG - tr
        assert abs(np.mean(tr[:, 0])) > 9.0  # the walking mean the reference moves to
        assert abs(np.mean(err[:, 0]) + np.mean(tr[:, 0])) < 1.0  # measured 0.1-0.4 deg
        assert np.std(err[:, 0]) < 0.3
        assert np.sqrt(np.mean(err[:, 1] ** 2)) < 1.5  # adduction: measured 0.75 deg RMS
        assert np.std(err[:, 2]) < 0.5  # rotation: a constant offset (1.1 deg), shape kept


def test_event_round_trip(walk9d) -> None:
    ori, _, _ = walk9d
    sc = calibrate_segments(ori)
    ev = segcal_to_event(sc, host_rx_ns=123)
    assert ev.kind == "segment_calibration"
    import json

    back = segcal_from_event_data(json.loads(json.dumps(segcal_to_event_data(sc))))
    for k, q in sc.q_sensor_segment.items():
        np.testing.assert_allclose(back.q_sensor_segment[k], q, atol=1e-15)
    assert back.method == sc.method
    assert back.warnings == sc.warnings
    with pytest.raises(ValueError, match="unit quaternion"):
        segcal_from_event_data(
            {"version": 1, "q_sensor_segment": {"x": [1, 1, 0, 0]}, "method": {}}
        )
    with pytest.raises(ValueError, match="version"):
        segcal_from_event_data({"q_sensor_segment": {}})


def test_seated_needs_prior_and_uses_gravity_for_thigh_anterior(walk9d) -> None:
    ori, mount, _ = walk9d
    cfg = SegmentCalConfig(method="seated")
    with pytest.raises(CalibrationError, match="prior"):
        calibrate_segments(ori, cfg, static_window=(0, 250))
    prior = SegmentCalibration(
        q_sensor_segment={k: calibrate_segments(ori).q_sensor_segment[k] for k in mount},
        method={},
    )
    sc = calibrate_segments(ori, cfg, static_window=(0, 250), prior=prior)
    # in this (standing) data the up direction becomes the thigh's anterior axis
    up = np.mean(ori.acc_m_s2["thigh_r"][:250], axis=0)
    x = quat_rotate(sc.q_sensor_segment["thigh_r"], [1.0, 0, 0])
    np.testing.assert_allclose(x, up / np.linalg.norm(up), atol=1e-9)
    assert sc.method["pelvis"] == "seated+prior"


def test_packet_loss_gaps_do_not_break_still_or_walking_windows(walk9d) -> None:
    # 2-3 % packet loss at ~12 samples per packet leaves a short lost run every second or so on
    # every sensor; the still and walking windows must bridge them (a disconnect still breaks)
    ori, _, _ = walk9d
    rng = np.random.default_rng(5)
    n = len(ori.t_s)
    valid = {}
    for p in ori.valid:
        v = np.ones(n, dtype=bool)
        for a in rng.choice(n - 20, size=n // 300, replace=False):  # ~4 % lost
            v[a : a + 12] = False
        valid[p] = v
    lossy = dataclasses.replace(ori, valid=valid)
    ref = calibrate_segments(ori)
    sc = calibrate_segments(lossy)
    for p, q in ref.q_sensor_segment.items():
        cos = abs(float(np.dot(q, sc.q_sensor_segment[p])))
        assert 2 * np.degrees(np.arccos(min(1.0, cos))) < 1.0, p
    # a 1 s disconnect of every sensor inside the standing is not bridged
    cut = {p: v.copy() for p, v in valid.items()}
    half = int(1.5 * ori.rate_hz)
    for v in cut.values():
        v[half : half + int(ori.rate_hz)] = False
    a, b = find_static_window(
        dataclasses.replace(ori, valid=cut), SegmentCalConfig(min_static_s=1.0)
    )
    assert b <= half or a >= half + int(ori.rate_hz)
