"""Magnetic field quality, 6D relative heading correction and transverse confidence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.conventions import Side, quat_from_axis_angle, quat_mul, quat_rotate
from imuhip.gait.joints import hip_angles
from imuhip.orientation.heading import (
    correct_thigh_heading,
    mag_field_quality,
    transverse_confidence,
)
from tests.unit._walk_synth import DEG, MAG_WORLD_UT, make_walk


@pytest.fixture(scope="module")
def walk():
    return make_walk(with_mag=True, walk_s=40, seed=11)


def test_dip_and_norm_known_answer(walk) -> None:
    ori, _, _ = walk
    mq = mag_field_quality(ori.q_world_sensor["thigh_r"], ori.mag_ut["thigh_r"])
    np.testing.assert_allclose(mq.norm_ut, np.linalg.norm(MAG_WORLD_UT), rtol=1e-9)
    np.testing.assert_allclose(mq.dip_rad, np.arctan2(40, 20), atol=1e-9)
    assert mq.clean.all()


def test_disturbance_detected_and_reported(walk) -> None:
    ori, _, _ = walk
    mag = dict(ori.mag_ut)
    m = np.array(mag["thigh_r"], copy=True)
    sl = slice(int(12 * ori.rate_hz), int(18.5 * ori.rate_hz))
    m[sl] += quat_rotate(ori.q_world_sensor["thigh_r"][sl], [0.0, 0.0, -15.0])  # iron nearby
    mag["thigh_r"] = m
    mq = mag_field_quality(ori.q_world_sensor["thigh_r"], m)
    assert not mq.clean[sl].any()
    assert mq.clean[: sl.start].all() and mq.clean[sl.stop :].all()
    conf, reasons = transverse_confidence(dataclasses.replace(ori, mag_ut=mag))
    assert np.all(conf[: sl.start] == 1.0)
    assert np.all(conf[sl] < 1.0)
    assert any("magnetic disturbance on thigh_r 12.0-18.5 s" in r for r in reasons)


def test_clean_9d_confidence_is_one(walk) -> None:
    ori, _, _ = walk
    conf, reasons = transverse_confidence(ori)
    assert np.all(conf == 1.0) and reasons == ()


def test_drift_removed_excursion_kept(walk) -> None:
    ori, _, truth = walk
    rate = ori.rate_hz
    qp = truth["q_world_pelvis"]
    qt_true = truth["q_world_thigh_r"]
    t = ori.t_s
    drift = quat_from_axis_angle(np.tile([0, 0, 1.0], (len(t), 1)), 25 * DEG + 0.2 * DEG * t)
    qt = quat_mul(drift, qt_true)  # the thigh filter's heading drifts by 12 deg/min
    # thigh angular velocity in its (drifting) world frame
    gyr_world = quat_rotate(ori.q_world_sensor["thigh_r"], ori.gyr_rad_s["thigh_r"])
    gyr_world = quat_rotate(drift, gyr_world)
    corr = correct_thigh_heading(qp, qt, gyr_world, rate, name="thigh_r")
    w = t > 5
    err = (hip_angles(qp, corr.q_world_thigh, Side.RIGHT) - truth["hip_right"])[w] / DEG
    assert np.sqrt(np.mean(err[:, 2] ** 2)) < 1.0
    assert corr.drift_rad_per_s == pytest.approx(0.2 * DEG, rel=0.2)
    assert "deg/min" in corr.note
    # per-stride excursion untouched: compare peak-to-peak per 1.1 s stride
    ir = hip_angles(qp, corr.q_world_thigh, Side.RIGHT)[:, 2]
    ir_true = truth["hip_right"][:, 2]
    n = int(1.1 * rate)
    for a in range(int(6 * rate), len(t) - n, n):
        assert np.ptp(ir[a : a + n]) == pytest.approx(np.ptp(ir_true[a : a + n]), abs=0.5 * DEG)


def test_unanchored_when_standing() -> None:
    ori, _, truth = make_walk(with_mag=False, static_s=5, walk_s=0.1)
    g = quat_rotate(ori.q_world_sensor["thigh_r"], ori.gyr_rad_s["thigh_r"])
    corr = correct_thigh_heading(truth["q_world_pelvis"], truth["q_world_thigh_r"], g, ori.rate_hz)
    assert np.all(corr.confidence == 0.0)
    assert "unanchored" in corr.note
