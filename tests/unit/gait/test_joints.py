"""Known-answer and property tests of imuhip.gait.joints (ISB hip, pelvis, lumbar angles)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imuhip.conventions import (
    Side,
    from_rotation,
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    to_rotation,
)
from imuhip.gait.joints import (
    JointsConfig,
    cardan_yxz,
    cardan_zxy,
    heading_oscillation_period_s,
    hip_angles,
    hip_angles_to_quat,
    joint_angles,
    lumbar_angles,
    pelvis_angles,
    segment_orientation,
    walking_direction,
    walking_frame,
)
from imuhip.orientation.heading import correct_thigh_heading, transverse_confidence
from imuhip.types import JointAngles
from tests.unit._walk_sessions import drifting_walk

DEG = np.pi / 180
X, Y, Z = np.eye(3)

# pelvis segment facing north-east, slightly tilted: an arbitrary but fixed world pose
Q_WORLD_PELVIS = quat_mul(
    walking_frame([1.0, 1.0, 0.0]), quat_from_axis_angle([0.2, 0.1, 1.0], 7 * DEG)
)


def _thigh(q_pelvis_thigh: np.ndarray) -> np.ndarray:
    return quat_mul(Q_WORLD_PELVIS, q_pelvis_thigh)


def test_walking_frame_axes() -> None:
    q = walking_frame([0.0, 2.0, 0.3])  # walking north
    np.testing.assert_allclose(quat_rotate(q, X), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(quat_rotate(q, Y), [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(quat_rotate(q, Z), [1, 0, 0], atol=1e-12)  # right of north = east


@pytest.mark.parametrize("side", [Side.RIGHT, Side.LEFT])
def test_pure_internal_rotation_30(side: Side) -> None:
    # internal rotation turns the thigh's anterior axis medially: toward -Z (left) for the right
    # thigh, toward +Z (right) for the left thigh, built by hand from that geometry.
    medial = -Z if side is Side.RIGHT else Z
    target_x = np.cos(30 * DEG) * X + np.sin(30 * DEG) * medial
    # rotation about the long axis Y that carries X to target_x
    angle = np.arctan2(np.dot(np.cross(X, target_x), Y), np.dot(X, target_x))
    q = quat_from_axis_angle(Y, angle)
    np.testing.assert_allclose(quat_rotate(q, X), target_x, atol=1e-12)
    ang = hip_angles(Q_WORLD_PELVIS, _thigh(q), side) / DEG
    np.testing.assert_allclose(ang, [0, 0, 30], atol=1e-9)


@pytest.mark.parametrize("side", [Side.RIGHT, Side.LEFT])
def test_pure_flexion_20(side: Side) -> None:
    # flexion: knee (-Y end of the thigh) moves anterior (+X)
    q = quat_from_axis_angle(Z, 20 * DEG)
    knee = quat_rotate(q, -Y)
    assert knee[0] > 0.3
    ang = hip_angles(Q_WORLD_PELVIS, _thigh(q), side) / DEG
    np.testing.assert_allclose(ang, [20, 0, 0], atol=1e-9)


@pytest.mark.parametrize("side", [Side.RIGHT, Side.LEFT])
def test_pure_adduction_positive(side: Side) -> None:
    # adduction: the knee moves medially (toward -Z for the right leg, +Z for the left)
    medial = -Z if side is Side.RIGHT else Z
    axis = X if side is Side.RIGHT else -X
    q = quat_from_axis_angle(axis, 10 * DEG)
    knee = quat_rotate(q, -Y)
    assert np.dot(knee, medial) > 0.1
    ang = hip_angles(Q_WORLD_PELVIS, _thigh(q), side) / DEG
    np.testing.assert_allclose(ang, [0, 10, 0], atol=1e-9)


def test_q_and_minus_q_same_angles() -> None:
    rng = np.random.default_rng(1)
    qp = from_rotation(
        to_rotation(quat_from_axis_angle(rng.normal(size=(50, 3)), np.full(50, 0.5)))
    )
    qt = quat_mul(qp, hip_angles_to_quat(rng.uniform(-0.5, 0.5, (50, 3)), Side.LEFT))
    a = hip_angles(qp, qt, Side.LEFT)
    np.testing.assert_allclose(hip_angles(-qp, qt, Side.LEFT), a, atol=1e-12)
    np.testing.assert_allclose(hip_angles(qp, -qt, Side.LEFT), a, atol=1e-12)


def test_invariant_to_common_world_rotation() -> None:
    rng = np.random.default_rng(2)
    ang = rng.uniform(-0.6, 0.6, (40, 3))
    qp = quat_from_axis_angle(rng.normal(size=(40, 3)), rng.uniform(0, 3, 40))
    qt = quat_mul(qp, hip_angles_to_quat(ang, Side.RIGHT))
    g = quat_from_axis_angle([0.3, -0.5, 0.8], 2.1)
    out = hip_angles(quat_mul(g, qp), quat_mul(g, qt), Side.RIGHT)
    np.testing.assert_allclose(out, ang, atol=1e-10)
    np.testing.assert_allclose(
        lumbar_angles(quat_mul(g, qp), quat_mul(g, qt)), lumbar_angles(qp, qt), atol=1e-10
    )


def test_chunked_equals_batch() -> None:
    rng = np.random.default_rng(3)
    qp = quat_from_axis_angle(rng.normal(size=(101, 3)), rng.uniform(0, 3, 101))
    qt = quat_from_axis_angle(rng.normal(size=(101, 3)), rng.uniform(0, 3, 101))
    batch = hip_angles(qp, qt, Side.LEFT)
    chunks = np.concatenate(
        [hip_angles(qp[i : i + 17], qt[i : i + 17], Side.LEFT) for i in range(0, 101, 17)]
    )
    np.testing.assert_array_equal(chunks, batch)


def test_closed_form_matches_scipy() -> None:
    rng = np.random.default_rng(4)
    q = quat_from_axis_angle(rng.normal(size=(500, 3)), rng.uniform(0, np.pi, 500))
    np.testing.assert_allclose(cardan_zxy(q), to_rotation(q).as_euler("ZXY"), atol=1e-9)
    np.testing.assert_allclose(cardan_yxz(q), to_rotation(q).as_euler("YXZ"), atol=1e-9)


angle = st.floats(-1.4, 1.4)
mid = st.floats(-1.3, 1.3)  # stay away from gimbal lock at ±90° of the second angle


@settings(max_examples=200, deadline=None)
@given(a=angle, b=mid, c=angle, left=st.booleans())
def test_round_trip_angles_quat_angles(a: float, b: float, c: float, left: bool) -> None:
    side = Side.LEFT if left else Side.RIGHT
    q_pelvis_thigh = hip_angles_to_quat([a, b, c], side)
    out = hip_angles(Q_WORLD_PELVIS, _thigh(q_pelvis_thigh), side)
    np.testing.assert_allclose(out, [a, b, c], atol=1e-9)


def test_lumbar_signs() -> None:
    # trunk leaning forward: the lumbar superior axis tips anterior (+X)
    q_flex = quat_from_axis_angle(-Z, 15 * DEG)
    assert quat_rotate(q_flex, Y)[0] > 0.2
    np.testing.assert_allclose(
        lumbar_angles(Q_WORLD_PELVIS, quat_mul(Q_WORLD_PELVIS, q_flex)) / DEG, [15, 0, 0], atol=1e-9
    )
    # bending to the right: superior axis tips to +Z
    q_bend = quat_from_axis_angle(X, 8 * DEG)
    assert quat_rotate(q_bend, Y)[2] > 0.1
    np.testing.assert_allclose(
        lumbar_angles(Q_WORLD_PELVIS, quat_mul(Q_WORLD_PELVIS, q_bend)) / DEG, [0, 8, 0], atol=1e-9
    )
    # turning to the right: anterior axis toward +Z (clockwise from above)
    q_rot = quat_from_axis_angle(-Y, 12 * DEG)
    assert quat_rotate(q_rot, X)[2] > 0.1
    np.testing.assert_allclose(
        lumbar_angles(Q_WORLD_PELVIS, quat_mul(Q_WORLD_PELVIS, q_rot)) / DEG, [0, 0, 12], atol=1e-9
    )


def test_pelvis_signs_relative_to_walking_direction() -> None:
    d = np.array([0.0, 1.0, 0.0])  # walking north
    q_walk = walking_frame(d)
    # rotation: counter-clockwise from above -> right hemipelvis (Z) moves forward
    q = quat_mul(q_walk, quat_from_axis_angle(Y, 10 * DEG))
    assert np.dot(quat_rotate(q, Z), d) > 0.1
    np.testing.assert_allclose(pelvis_angles(q, d) / DEG, [10, 0, 0], atol=1e-9)
    # obliquity: right hemipelvis up
    q = quat_mul(q_walk, quat_from_axis_angle(-X, 5 * DEG))
    assert quat_rotate(q, Z)[2] > 0.05
    np.testing.assert_allclose(pelvis_angles(q, d) / DEG, [0, 5, 0], atol=1e-9)
    # anterior tilt: superior axis tips forward
    q = quat_mul(q_walk, quat_from_axis_angle(-Z, 12 * DEG))
    assert np.dot(quat_rotate(q, Y), d) > 0.1
    np.testing.assert_allclose(pelvis_angles(q, d) / DEG, [0, 0, 12], atol=1e-9)


def test_walking_direction_averages_pelvic_rotation_and_follows_turn() -> None:
    rate = 100.0
    t = np.arange(0, 20, 1 / rate)
    heading = np.where(t < 10, 0.0, np.pi / 2)  # east, then north after a turn
    osc = 8 * DEG * np.sin(2 * np.pi * 1.0 * t)  # pelvic rotation, 1 stride/s
    d_true = np.stack([np.cos(heading), np.sin(heading), 0 * t], axis=1)
    qp = quat_mul(walking_frame(d_true), quat_from_axis_angle(Y, osc))
    d = walking_direction(qp, rate, window_s=2.0)
    err = np.arccos(np.clip(np.sum(d * d_true, axis=1), -1, 1))
    steady = (np.abs(t - 10) > 1.2) & (t > 1.2) & (t < 18.8)
    assert np.max(err[steady]) < 0.5 * DEG
    rot = pelvis_angles(qp, d)[:, 0]
    np.testing.assert_allclose(rot[steady], osc[steady], atol=0.5 * DEG)


def test_relative_quaternion_naming() -> None:
    # hip_angles uses q_pelvis_thigh = conj(q_world_pelvis) ⊗ q_world_thigh
    q_pt = hip_angles_to_quat([0.1, 0.2, 0.3], Side.RIGHT)
    qt = _thigh(q_pt)
    np.testing.assert_allclose(quat_mul(quat_conj(Q_WORLD_PELVIS), qt), q_pt, atol=1e-12)


def test_bad_shapes_raise() -> None:
    with pytest.raises(ValueError, match="q_world_pelvis"):
        hip_angles(np.zeros((3, 3)), np.zeros((3, 4)), Side.RIGHT)
    with pytest.raises(ValueError, match="walking_dir_world"):
        pelvis_angles(Q_WORLD_PELVIS, [0.0, 0.0, 1.0])


def test_joint_angles_valid_mask_and_outputs() -> None:
    import dataclasses

    from imuhip.gait.joints import joint_angles
    from imuhip.orientation.segment_calibration import calibrate_segments
    from tests.unit._walk_synth import make_walk

    ori, _, _ = make_walk(walk_s=12, seed=9)
    sc = calibrate_segments(ori)
    valid = {k: v.copy() for k, v in ori.valid.items()}
    valid["thigh_l"][1500:1600] = False
    valid["lumbar"][1700:1710] = False
    ja = joint_angles(dataclasses.replace(ori, valid=valid), sc)
    assert set(ja.hip_rad) == {"left", "right"}
    assert ja.hip_rad["left"].shape == (len(ori.t_s), 3)
    assert ja.pelvis_rad is not None and ja.lumbar_rad is not None
    expected = valid["thigh_l"] & valid["lumbar"]
    np.testing.assert_array_equal(ja.valid, expected)
    assert ja.transverse_confidence is not None
    assert np.all(ja.transverse_confidence == 1.0)  # clean 9D synthetic field


@pytest.mark.parametrize("stride_hz", [0.8, 0.93, 1.05])
def test_walking_direction_keeps_pelvic_rotation_range_at_any_cadence(stride_hz: float) -> None:
    # a fixed 2.2 s window leaves a stride-frequency ripple of sinc(f T) (~10 % of the range at
    # 0.8 and 1.05 strides/s); two periods of the detected oscillation remove it
    from imuhip.gait.joints import JointsConfig, heading_oscillation_period_s

    rate = 100.0
    t = np.arange(0, 40, 1 / rate)
    osc = 5 * DEG * np.sin(2 * np.pi * stride_hz * t) + 1 * DEG * np.sin(4 * np.pi * stride_hz * t)
    d_true = np.tile([np.cos(0.7), np.sin(0.7), 0.0], (len(t), 1))
    qp = quat_mul(walking_frame(d_true), quat_from_axis_angle(Y, osc))
    period = heading_oscillation_period_s(qp, rate)
    assert period is not None and abs(period - 1 / stride_hz) < 0.01
    d = walking_direction(qp, rate, window_s=2 * period)
    rot = pelvis_angles(qp, d)[:, 0]
    inner = (t > 3) & (t < 37)
    assert abs(np.ptp(rot[inner]) - np.ptp(osc[inner])) < 0.05 * DEG
    assert JointsConfig().walking_window_s > 0
    still = quat_mul(walking_frame(d_true), quat_from_axis_angle(Y, 0 * t))
    assert heading_oscillation_period_s(still, rate) is None


# ---------------------------------------------------------------------------------------------
# joint_angles (fused kernels) equals the public per-joint functions composed
# ---------------------------------------------------------------------------------------------
ATOL_RAD = 1e-12
"""The kernels repeat the public functions' floating-point operations; the tolerance allows an
ulp of a platform's libm ``cos``/``sin`` against numpy's (6e-11 deg)."""


def _composed(ori, segcal, cfg: JointsConfig, corrected: bool) -> JointAngles:
    """:func:`joint_angles` written out with the public functions, for sessions where every
    sensor has a gyroscope: segment orientations; with ``corrected`` the thighs and the lumbar
    segment turned by :func:`correct_thigh_heading` (the lumbar segment's X axis, gated by the
    right thigh's gyroscope, else the left's); hip and lumbar angles against the pelvis; pelvis
    angles against the walking direction over two heading oscillation periods."""
    q_seg = {
        p: segment_orientation(ori.q_world_sensor[p], segcal.q_sensor_segment[p])
        for p in ori.q_world_sensor
        if p in segcal.q_sensor_segment
    }
    thighs = [t for t in ("thigh_l", "thigh_r") if t in q_seg]
    notes: list[str] = []
    corrections = {}
    if corrected:
        for seg in [*thighs, *(["lumbar"] if "lumbar" in q_seg else [])]:
            gyro = seg if seg.startswith("thigh") else thighs[-1]
            corr = correct_thigh_heading(
                q_seg["pelvis"],
                q_seg[seg],
                quat_rotate(ori.q_world_sensor[gyro], ori.gyr_rad_s[gyro]),
                ori.rate_hz,
                valid=ori.valid[seg] & ori.valid["pelvis"],
                name=seg,
                segment_axis=(1.0, 0.0, 0.0) if seg == "lumbar" else (0.0, 0.0, 1.0),
            )
            q_seg[seg] = corr.q_world_thigh
            corrections[seg] = corr
            six_d = ori.mag_ut[seg] is None
            notes.append(corr.note if six_d or seg == "lumbar" else corr.note.replace("6D", "9D"))
    hip = {}
    valid = ori.valid["pelvis"].copy()
    for side in (Side.LEFT, Side.RIGHT):
        thigh = f"thigh_{side.suffix}"
        if thigh in q_seg:
            hip[side.value] = hip_angles(q_seg["pelvis"], q_seg[thigh], side)
            valid &= ori.valid[thigh]
    period = heading_oscillation_period_s(q_seg["pelvis"], ori.rate_hz, ori.valid["pelvis"])
    win_s = cfg.walking_window_s if period is None else 2.0 * period
    d = walking_direction(q_seg["pelvis"], ori.rate_hz, win_s, ori.valid["pelvis"])
    lumbar = None
    if "lumbar" in q_seg:
        lumbar = lumbar_angles(q_seg["pelvis"], q_seg["lumbar"])
        valid &= ori.valid["lumbar"]
    # a 6D thigh's confidence is its anchor's; a magnetometer's is the field quality's
    anchored = {t: corrections[t] for t in thighs if t in corrections and ori.mag_ut[t] is None}
    conf, reasons = transverse_confidence(ori, anchored)
    return JointAngles(
        ori.t_s,
        hip,
        pelvis_angles(q_seg["pelvis"], d),
        lumbar,
        valid,
        conf,
        (*segcal.warnings, *notes, *reasons),
    )


def _assert_angles_equal(got: JointAngles, want: JointAngles) -> None:
    assert set(got.hip_rad) == set(want.hip_rad)
    for side in want.hip_rad:
        np.testing.assert_allclose(got.hip_rad[side], want.hip_rad[side], rtol=0, atol=ATOL_RAD)
        assert got.hip_rad[side].shape == want.hip_rad[side].shape
    assert got.pelvis_rad is not None and want.pelvis_rad is not None
    np.testing.assert_allclose(got.pelvis_rad, want.pelvis_rad, rtol=0, atol=ATOL_RAD)
    if want.lumbar_rad is None:
        assert got.lumbar_rad is None
    else:
        assert got.lumbar_rad is not None
        np.testing.assert_allclose(got.lumbar_rad, want.lumbar_rad, rtol=0, atol=ATOL_RAD)
    np.testing.assert_array_equal(got.valid, want.valid)
    np.testing.assert_allclose(
        got.transverse_confidence, want.transverse_confidence, rtol=1e-12, atol=0
    )
    np.testing.assert_array_equal(got.t_s, want.t_s)
    assert got.notes == want.notes


@pytest.mark.parametrize(
    ("seed", "with_mag", "mode", "gaps", "lumbar"),
    [
        (0, True, "always", True, True),  # the pipeline's default (9D, walking anchor)
        (1, True, "auto", False, True),  # 9D, no correction, a turn
        (2, False, "auto", True, True),  # 6D: anchors drive the confidence
        (3, False, "never", False, False),  # 6D uncorrected, no lumbar
        (4, True, "always", False, False),
    ],
)
def test_joint_angles_equal_the_public_per_joint_functions(
    seed, with_mag, mode, gaps, lumbar
) -> None:
    ori, segcal = drifting_walk(seed, with_mag=with_mag, gaps=gaps, disturb=True, lumbar=lumbar)
    cfg = JointsConfig(heading_correction=mode)
    corrected = mode == "always" or (mode == "auto" and not with_mag)
    _assert_angles_equal(joint_angles(ori, segcal, cfg), _composed(ori, segcal, cfg, corrected))


def test_joint_angles_per_sample_calibration_and_bad_input() -> None:
    ori, segcal = drifting_walk(6, with_mag=True, gaps=False, disturb=False, lumbar=False)
    m = len(ori.t_s)
    # a per-sample (M, 4) calibration takes the general path
    per_sample = dict(segcal.q_sensor_segment)
    per_sample["thigh_r"] = np.tile(per_sample["thigh_r"], (m, 1))
    sc = dataclasses.replace(segcal, q_sensor_segment=per_sample)
    _assert_angles_equal(joint_angles(ori, sc), _composed(ori, sc, JointsConfig(), False))
    # non-finite sensor quaternion or zero calibration: named
    q = dict(ori.q_world_sensor)
    q["thigh_l"] = q["thigh_l"].copy()
    q["thigh_l"][17] = np.nan
    with pytest.raises(ValueError, match="finite and non-zero"):
        joint_angles(dataclasses.replace(ori, q_world_sensor=q), segcal)
    zero = dict(segcal.q_sensor_segment)
    zero["pelvis"] = np.zeros(4)
    with pytest.raises(ValueError, match="finite and non-zero"):
        joint_angles(ori, dataclasses.replace(segcal, q_sensor_segment=zero))


@pytest.mark.parametrize("m", [0, 1, 5, 399, 1601])
def test_joint_angles_of_short_sessions_equal_the_public_functions(m: int) -> None:
    """Shorter than a window, a block, the period search: the same angles, notes or error."""
    ori, segcal = drifting_walk(0, with_mag=False, gaps=True, disturb=False)
    short = dataclasses.replace(
        ori,
        t_s=ori.t_s[:m],
        q_world_sensor={p: v[:m] for p, v in ori.q_world_sensor.items()},
        acc_m_s2={p: v[:m] for p, v in ori.acc_m_s2.items()},
        gyr_rad_s={p: v[:m] for p, v in ori.gyr_rad_s.items()},
        valid={p: v[:m] for p, v in ori.valid.items()},
        mag_ut=dict.fromkeys(ori.q_world_sensor),
    )
    cfg = JointsConfig(heading_correction="always")
    if m == 0:
        with pytest.raises(ValueError, match="no valid pelvis samples"):
            joint_angles(short, segcal, cfg)
        return
    _assert_angles_equal(joint_angles(short, segcal, cfg), _composed(short, segcal, cfg, True))


def test_a_thigh_gap_costs_only_its_own_side_strides() -> None:
    """recordings/lossy_link.imrec: thigh_l disconnects for 1.5 s at ~12.5 s (and again at
    ~23.5 s); the left strides over the gap and its re-convergence are invalid ('gap'), the
    right strides over the same seconds stay valid (per-side validity, JointAngles.side_valid),
    as the manifest's truth says they are (35 true right strides)."""
    from pathlib import Path

    from imuhip.pipeline import analyze_recording

    rec = Path(__file__).resolve().parents[3] / "recordings" / "lossy_link.imrec"
    res = analyze_recording(rec)
    a = res.angles
    assert set(a.side_valid) == {"left", "right"}
    # some rows are valid for the right side only (the left thigh's gap), none for the left only
    # beyond the pelvis (both need it)
    only_right = a.side_valid["right"] & ~a.side_valid["left"]
    assert only_right.sum() > 5 * 100  # > 5 s at 100 Hz
    np.testing.assert_array_equal(a.valid, a.side_valid["left"] & a.side_valid["right"])

    def over(side: str, t0: float, t1: float) -> list[bool]:
        return [s.valid for s in res.strides if s.side == side and t0 <= s.ic_s < t1]

    assert not any(over("left", 13.0, 17.0))  # the gap and the re-convergence after it
    right = over("right", 13.0, 17.0)
    assert len(right) >= 3 and all(right)
    assert sum(s.valid for s in res.strides if s.side == "right") >= 28
