"""Knee-hinge estimate of the thigh's long-axis soft-tissue artefact (imuhip.gait.knee_hinge).

Known answers built here from rotations alone (no simulator): a femur that swings in flexion
and turns in hip rotation, a tibia hinged to it about the femur's Z axis with its own axial
rotation, and a thigh sensor that turns against the femur by a known ``β(t)`` about the femur's
long axis. Gyroscopes are the sensors' body-frame rates from the orientations.
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.conventions import (
    HIP_SIGN,
    Side,
    axis_quat,
    quat_conj,
    quat_from_cardan_zxy,
    quat_mul,
    to_rotation,
)
from imuhip.gait.knee_hinge import correct_thigh_artefact, fit_thigh_artefact
from imuhip.types import JointAngles, OrientationSession, SegmentCalibration

RATE = 100.0
DEG = np.pi / 180


def _body_rates(q: np.ndarray) -> np.ndarray:
    """Body-frame angular velocity of orientations ``q`` (central differences), rad/s."""
    r = to_rotation(q)
    rv = (r[:-1].inv() * r[1:]).as_rotvec() * RATE
    w = np.empty((len(q), 3))
    w[1:-1] = 0.5 * (rv[:-1] + rv[1:])
    w[0], w[-1] = rv[0], rv[-1]
    return w


def _walk(beta_gain: float, side: str, heading_off_deg: float = 0.0, dur_s: float = 40.0):
    t = np.arange(0, dur_s, 1 / RATE)
    ph = 2 * np.pi * t / 1.1  # stride 1.1 s
    flex = 15 * DEG + 22 * DEG * np.sin(ph) + 4 * DEG * np.sin(2 * ph + 0.4)
    add = 4 * DEG * np.sin(ph + 0.6) + 2 * DEG * np.sin(2 * ph - 0.9)
    rot = 5 * DEG * np.sin(ph + 1.3) + 2 * DEG * np.sin(3 * ph + 0.2)
    knee = 3 * DEG + 12 * DEG * (1 + np.sin(2 * ph + 0.3)) + 18 * DEG * (1 + np.sin(ph - 0.5))
    tib_rot = 0.12 * knee  # tibial axial rotation with flexion (not a perfect hinge)
    sign = HIP_SIGN[Side(side)]
    q_wp = np.tile([1.0, 0, 0, 0], (len(t), 1))  # pelvis fixed
    q_wf = quat_mul(q_wp, quat_from_cardan_zxy(np.column_stack([flex, add, rot]) * sign))
    q_ws = quat_mul(quat_mul(q_wf, axis_quat(2, -knee)), axis_quat(1, tib_rot))
    beta = beta_gain * (flex - flex.mean())  # artefact driven by hip flexion
    mount_t = to_rotation(np.array([0.9, 0.1, -0.3, 0.2]) / np.linalg.norm([0.9, 0.1, -0.3, 0.2]))
    q_mount = np.array(mount_t.as_quat(scalar_first=True))
    q_wts = quat_mul(quat_mul(q_wf, axis_quat(1, beta)), q_mount)  # thigh sensor
    q_wss = quat_mul(q_ws, q_mount)
    q_wss = quat_mul(axis_quat(2, np.full(len(t), heading_off_deg * DEG)), q_wss)  # 6D heading
    sfx = "l" if side == "left" else "r"
    ori = OrientationSession(
        t_s=t,
        rate_hz=RATE,
        q_world_sensor={"pelvis": q_wp, f"thigh_{sfx}": q_wts, f"shank_{sfx}": q_wss},
        acc_m_s2={k: np.zeros((len(t), 3)) for k in ("pelvis", f"thigh_{sfx}", f"shank_{sfx}")},
        gyr_rad_s={
            "pelvis": np.zeros((len(t), 3)),
            f"thigh_{sfx}": _body_rates(q_wts),
            # the shank gyro is in its own (true) frame: heading errors are the fusion's
            f"shank_{sfx}": _body_rates(quat_mul(q_ws, q_mount)),
        },
        valid={k: np.ones(len(t), bool) for k in ("pelvis", f"thigh_{sfx}", f"shank_{sfx}")},
        source="test",
    )
    cal = quat_conj(q_mount)
    segcal = SegmentCalibration(
        q_sensor_segment={"pelvis": np.array([1.0, 0, 0, 0]), f"thigh_{sfx}": cal,
                          f"shank_{sfx}": cal},
        method={},
    )  # fmt: skip
    # hip angles as the analysis measures them: the thigh sensor's frame, artefact included
    from imuhip.conventions import cardan_zxy

    q_pf_meas = quat_mul(quat_conj(q_wp), quat_mul(q_wts, cal))
    hip_meas = cardan_zxy(q_pf_meas) * sign
    angles = JointAngles(
        t_s=t, hip_rad={side: hip_meas}, pelvis_rad=None, lumbar_rad=None,
        valid=np.ones(len(t), bool),
    )  # fmt: skip
    return ori, segcal, angles, beta, rot


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("heading_off_deg", [0.0, 25.0])
def test_recovers_known_artefact_and_restores_hip_rotation(side: str, heading_off_deg: float):
    ori, segcal, angles, beta, rot_true = _walk(0.15, side, heading_off_deg)
    fit = fit_thigh_artefact(ori, segcal, angles, side)
    assert fit is not None and fit.beta_rad is not None, fit
    b_true = beta - beta.mean()
    assert np.corrcoef(fit.beta_rad, b_true)[0, 1] > 0.95
    assert np.sqrt(np.mean((fit.beta_rad - b_true) ** 2)) < 0.6 * DEG
    corrected, removed = correct_thigh_artefact(ori, segcal, angles)
    err_before = angles.hip_rad[side][:, 2] - rot_true
    err_after = corrected.hip_rad[side][:, 2] - rot_true
    # the excursion error (what the report shows) goes from several degrees to a fraction
    ex = np.ptp(rot_true)
    assert abs(np.ptp(angles.hip_rad[side][:, 2]) - ex) > 1.5 * DEG
    assert abs(np.ptp(corrected.hip_rad[side][:, 2]) - ex) < 0.6 * DEG
    assert np.std(err_after) < 0.25 * np.std(err_before)
    # flexion and adduction untouched; the removed RMS reported in degrees
    np.testing.assert_array_equal(corrected.hip_rad[side][:, :2], angles.hip_rad[side][:, :2])
    assert removed[side] == pytest.approx(np.degrees(np.std(b_true)), abs=0.5)
    assert any("knee-hinge" in n for n in corrected.notes)


def test_no_artefact_leaves_hip_rotation_alone():
    ori, segcal, angles, _, _ = _walk(0.0, "right", 10.0)
    corrected, removed = correct_thigh_artefact(ori, segcal, angles)
    assert removed["right"] < 0.3
    d = corrected.hip_rad["right"][:, 2] - angles.hip_rad["right"][:, 2]
    assert np.max(np.abs(d)) < 0.5 * DEG


def test_without_shank_nothing_changes():
    ori, segcal, angles, _, _ = _walk(0.15, "right")
    cal = {k: v for k, v in segcal.q_sensor_segment.items() if not k.startswith("shank")}
    corrected, removed = correct_thigh_artefact(
        ori, SegmentCalibration(q_sensor_segment=cal, method={}), angles
    )
    assert corrected is angles and removed == {}


def test_too_little_knee_motion_is_said_not_guessed():
    ori, segcal, angles, _, _ = _walk(0.15, "right", dur_s=2.0)
    corrected, removed = correct_thigh_artefact(ori, segcal, angles)
    assert removed == {}
    np.testing.assert_array_equal(corrected.hip_rad["right"], angles.hip_rad["right"])
    assert any("not applied" in n for n in corrected.notes)
