"""Seated 90/90 hip rotation ROM test on synthetic thigh orientations with known rotations."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.conventions import quat_conj, quat_from_axis_angle, quat_mul, to_rotation
from imuhip.errors import InsufficientDataError
from imuhip.gait.rom import RomConfig, check_seated_rom, rom_flags, rom_side, twist_angle_rad

RATE = 100.0


def _q_segment_sensor(side):
    x, y, z = np.eye(3)
    cols = (y, -x, z) if side == "right" else (y, x, -z)  # sensor axes in the segment frame
    from scipy.spatial.transform import Rotation

    return Rotation.from_matrix(np.array(cols).T).as_quat(scalar_first=True)


def seated_session(side, ir_deg, er_deg, misplace_deg=0.0, noise=0.0, seed=0):
    """Neutral 2 s, then per repetition IR peak then ER peak (2 s each), back to neutral."""
    segs = [np.zeros(int(2 * RATE))]
    for ir, er in zip(ir_deg, er_deg, strict=True):
        u = np.linspace(0, 1, int(2 * RATE))
        segs += [ir * np.sin(np.pi * u) ** 2, -er * np.sin(np.pi * u) ** 2]
    segs.append(np.zeros(int(1 * RATE)))
    rot = np.radians(np.concatenate(segs))  # anatomical IR +
    t = np.arange(len(rot)) / RATE
    # seated: thigh X up, Y proximal (backwards = -north), Z right = east
    r0 = np.array([[0, 0, 1], [0, -1, 0], [1, 0, 0]], float).T  # columns X, Y, Z in world
    from scipy.spatial.transform import Rotation

    q_world_seg0 = Rotation.from_matrix(r0).as_quat(scalar_first=True)
    twist = rot if side == "right" else -rot  # left mirrored
    q_seg = quat_mul(q_world_seg0, quat_from_axis_angle([0, 1, 0], twist))
    q_ss = _q_segment_sensor(side)
    if misplace_deg:
        q_ss = quat_mul(quat_from_axis_angle([0.3, 0.2, 1.0], np.radians(misplace_deg)), q_ss)
    q = quat_mul(q_seg, q_ss)
    dq = quat_mul(quat_conj(q[:-1]), q[1:])
    gyr = to_rotation(dq).as_rotvec() * RATE
    gyr = np.vstack([gyr, gyr[-1:]])
    gyr += np.random.default_rng(seed).normal(0, noise, gyr.shape)
    return t, q, gyr


@pytest.mark.parametrize("side", ["left", "right"])
def test_known_ir_er_recovered(side):
    t, q, g = seated_session(side, [35, 38, 36], [40, 42, 41])
    r = rom_side(t, q, g, side)
    assert r.ir_deg == pytest.approx((35, 38, 36), abs=0.3)
    assert r.er_deg == pytest.approx((40, 42, 41), abs=0.3)
    assert r.ir_mean_deg == pytest.approx(np.mean([35, 38, 36]), abs=0.3)
    assert r.ir_sd_deg == pytest.approx(np.std([35, 38, 36], ddof=1), abs=0.3)
    assert r.neutral_s[0] == pytest.approx(0.0, abs=0.1)


def test_misplaced_sensor_small_error_with_gyro_axis():
    t, q, g = seated_session("right", [30, 30, 30], [40, 40, 40], misplace_deg=10, noise=0.01)
    r = rom_side(t, q, g, "right")
    assert r.ir_mean_deg == pytest.approx(30, abs=1.0)
    assert r.er_mean_deg == pytest.approx(40, abs=1.0)


def test_flags_low_ir_and_side_difference():
    tl, ql, gl = seated_session("left", [20, 22, 21], [40, 40, 40])
    tr, qr, gr = seated_session("right", [36, 36, 36], [40, 40, 40])
    res = {"left": rom_side(tl, ql, gl, "left"), "right": rom_side(tr, qr, gr, "right")}
    codes = {(f.code, f.side) for f in rom_flags(res)}
    assert ("hip_ir_rom_below_norm", "left") in codes
    assert ("hip_ir_rom_side_difference", "left") in codes
    assert not any(c[1] == "right" for c in codes)
    assert ("hip_er_rom_side_difference", "left") not in codes


def test_no_neutral_pose_is_an_error():
    t = np.arange(300) / RATE
    g = np.ones((300, 3))
    q = np.tile([1.0, 0, 0, 0], (300, 1))
    with pytest.raises(InsufficientDataError, match="neutral"):
        rom_side(t, q, g, "left", cfg=RomConfig())


def test_twist_angle():
    q = quat_from_axis_angle([1, 0, 0], np.radians([10.0, -20.0, 170.0]))
    assert np.degrees(twist_angle_rad(q, [1, 0, 0])) == pytest.approx([10, -20, 170])
    swing = quat_mul(quat_from_axis_angle([0, 0, 1], np.radians(30)), q[0])
    # a swing about a perpendicular axis barely changes the twist about x
    assert np.degrees(twist_angle_rad(swing[None], [1, 0, 0]))[0] == pytest.approx(10, abs=1.5)


@pytest.mark.parametrize("misplace_deg", [15.0, 30.0])
def test_off_axis_mounting_is_still_a_rom_test(misplace_deg):
    t, q, g = seated_session("left", [35, 35, 35], [40, 40, 40], misplace_deg=misplace_deg)
    r = rom_side(t, q, g, "left")  # no refusal
    assert r.ir_mean_deg == pytest.approx(35, abs=1.5)


def test_standing_thigh_is_not_a_seated_rom_test():
    t, q, g = seated_session("right", [35, 35, 35], [40, 40, 40])
    # the same movement with the whole thigh pitched 90° (femur vertical, as when standing)
    q_up = quat_mul(quat_from_axis_angle([1.0, 0.0, 0.0], np.radians(90.0)), q)
    with pytest.raises(InsufficientDataError, match=r"not seated \(thigh long axis 90° from"):
        rom_side(t, q_up, g, "right")
    # 30° above horizontal (a low chair) is still accepted
    q_30 = quat_mul(quat_from_axis_angle([1.0, 0.0, 0.0], np.radians(30.0)), q)
    assert rom_side(t, q_30, g, "right").ir_mean_deg == pytest.approx(35, abs=0.5)


def test_walking_like_motion_is_refused_but_slow_off_axis_rotation_is_not():
    rate = 100.0
    tt = np.arange(int(20 * rate)) / rate
    q_flat = np.array([1.0, 0.0, 0.0, 0.0])  # sensor x (nominal long axis) horizontal
    swing = np.zeros((len(tt), 3))
    swing[:, 2] = 3.0 * np.sin(2 * np.pi * 0.9 * tt)  # flexion-like swing, 0.9 Hz strides
    swing[:, 0] = 0.4 * np.sin(2 * np.pi * 1.8 * tt)  # a little long-axis rotation
    with pytest.raises(InsufficientDataError, match="looks like walking"):
        check_seated_rom(q_flat, [1.0, 0.0, 0.0], swing, rate)
    # large but not periodic motion off the long axis: not refused here (rom_side notes it)
    rng = np.random.default_rng(1)
    jerky = np.zeros((len(tt), 3))
    jerky[:, 2] = np.cumsum(rng.normal(0, 0.3, len(tt)))
    jerky[:, 2] -= np.convolve(jerky[:, 2], np.ones(301) / 301, mode="same")
    check_seated_rom(q_flat, [1.0, 0.0, 0.0], jerky, rate)
    # genuine ROM rotation about the long axis, even if rhythmic: accepted
    rom = np.zeros((len(tt), 3))
    rom[:, 0] = 2.0 * np.sin(2 * np.pi * 0.9 * tt)
    check_seated_rom(q_flat, [1.0, 0.0, 0.0], rom, rate)
