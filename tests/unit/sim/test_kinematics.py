"""Simulator self-checks: gyro integration, static pose, angle truth, IR cap, compensation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.interpolate import CubicSpline

from imuhip.conventions import (
    GRAVITY_M_S2,
    quat_conj,
    quat_mul,
    quat_rotate,
    to_rotation,
)
from imuhip.sim import SimParams, simulate_session
from imuhip.sim.kinematics import Body
from imuhip.sim.sensors import ideal_imu, mountings, nominal_mounting
from imuhip.sim.truth import cardan_yxz, cardan_zxy, hip_angles, lumbar_angles, pelvis_angles

SENSORS = ("pelvis", "thigh_l", "thigh_r", "lumbar", "shank_l", "shank_r")


@pytest.fixture(scope="module")
def clean() -> object:
    """A short noise-free session with every sensor, a turn and functional movements."""
    p = SimParams(
        seed=5,
        duration_s=56.0,
        rate_hz=100,
        sensors=SENSORS,
        noise=False,
        turn=True,
        functional_calibration=True,
        soft_tissue_deg=2.0,
        random_heading=True,
    )
    return simulate_session(p)


def _angle_deg(qa: np.ndarray, qb: np.ndarray) -> np.ndarray:
    d = quat_mul(quat_conj(qa), qb)
    return np.degrees(2 * np.arctan2(np.linalg.norm(d[..., 1:], axis=-1), np.abs(d[..., 0])))


def _integrate_gyro(t: np.ndarray, gyr: np.ndarray, q0: np.ndarray) -> np.ndarray:
    """4th-order Magnus (two Gauss points) on a cubic spline of the sampled body rate."""
    cs = CubicSpline(t, gyr)
    h = np.diff(t)
    c = np.sqrt(3.0) / 6.0
    w1 = cs(t[:-1] + (0.5 - c) * h)
    w2 = cs(t[:-1] + (0.5 + c) * h)
    omega = 0.5 * h[:, None] * (w1 + w2) + (np.sqrt(3.0) / 12.0) * h[:, None] ** 2 * np.cross(
        w1, w2
    )
    ang = np.linalg.norm(omega, axis=1)
    axis = omega / np.where(ang > 0, ang, 1.0)[:, None]
    dq = np.concatenate([np.cos(ang / 2)[:, None], np.sin(ang / 2)[:, None] * axis], axis=1)
    out = np.empty((len(t), 4))
    out[0] = q0
    q = q0
    for k in range(len(dq)):
        q = quat_mul(q, dq[k])
        out[k + 1] = q
    return out


def test_gyro_integration_reproduces_orientation_over_60s() -> None:
    p = SimParams(seed=1, duration_s=60.0, noise=False, sensors=("pelvis", "thigh_r"), turn=True)
    rng = np.random.default_rng(0)
    body = Body(p, rng)
    mounts = mountings(p, rng)
    t = np.arange(0.0, 60.0, 1.0 / 200.0)
    for pl in ("thigh_r", "pelvis"):
        imu = ideal_imu(body, p, pl, t, mounts[pl])
        q_int = _integrate_gyro(t, imu.gyr_rad_s, imu.q_world_sensor[0])
        err = _angle_deg(q_int, imu.q_world_sensor)
        assert err.max() < 0.1, (pl, err.max())
        assert np.abs(imu.gyr_rad_s).max() > 2.0  # the motion is not trivial


def test_gyro_integration_from_session_samples(clean) -> None:
    """The same through simulate_session (wobble on, functional movements, turn, drift)."""
    for pl in ("thigh_l", "shank_r", "lumbar"):
        s = clean.samples[pl]
        q_int = _integrate_gyro(s.t_s, s.gyr_rad_s, s.q_world_sensor[0])
        assert _angle_deg(q_int, s.q_world_sensor).max() < 0.1


def test_static_pose_reads_gravity_and_earth_field(clean) -> None:
    p = clean.params
    dip = np.radians(p.mag_dip_deg)
    for pl, s in clean.samples.items():
        still = s.t_s < 2.0
        assert still.sum() > 25
        acc = s.acc_m_s2[still]
        np.testing.assert_allclose(np.linalg.norm(acc, axis=1), GRAVITY_M_S2, atol=1e-6)
        # gravity along world up, seen in the sensor frame
        up = quat_rotate(quat_conj(s.q_world_sensor[still]), [0.0, 0.0, 1.0])
        np.testing.assert_allclose(acc / GRAVITY_M_S2, up, atol=1e-7)
        np.testing.assert_allclose(s.gyr_rad_s[still], 0.0, atol=1e-8)
        mag = s.mag_ut[still]
        np.testing.assert_allclose(np.linalg.norm(mag, axis=1), p.mag_field_ut, atol=1e-9)
        dip_meas = np.arcsin(-np.sum(mag * up, axis=1) / np.linalg.norm(mag, axis=1))
        np.testing.assert_allclose(dip_meas, dip, atol=1e-9), pl


def test_walking_accelerometer_is_specific_force(clean) -> None:
    """Rotated to the world, the pelvis accelerometer minus gravity integrates to the velocity."""
    s = clean.samples["pelvis"]
    acc_w = quat_rotate(s.q_world_sensor, s.acc_m_s2) - [0.0, 0.0, GRAVITY_M_S2]
    # mean horizontal acceleration over the whole session is ~0 (start and end at rest)
    v_end = np.trapezoid(acc_w, s.t_s, axis=0)
    np.testing.assert_allclose(v_end, 0.0, atol=2e-3)
    # while walking the vertical acceleration oscillates (bounce) around 0 with a few m/s²
    walk = (s.t_s > 40) & (s.t_s < 45)
    assert 1.0 < np.ptp(acc_w[walk, 2]) < 15.0


def test_hip_pelvis_lumbar_truth_recomputed_from_orientations(clean) -> None:
    tr = clean.truth
    q = tr.q_world_segment
    for side in ("left", "right"):
        rec = np.degrees(hip_angles(q["pelvis"], q[f"thigh_{side[0]}"], side))
        np.testing.assert_allclose(rec, tr.hip_deg[side], atol=1e-9)
    np.testing.assert_allclose(
        np.degrees(pelvis_angles(q["walk"], q["pelvis"])), tr.pelvis_deg, atol=1e-9
    )
    np.testing.assert_allclose(
        np.degrees(lumbar_angles(q["pelvis"], q["lumbar"])), tr.lumbar_deg, atol=1e-9
    )
    # truth sensor orientation = segment orientation x mounting (up to the wobble, 2 deg here)
    for pl in clean.params.sensors:
        q_expect = quat_mul(q[pl], tr.q_segment_sensor[pl])
        err = _angle_deg(q_expect, tr.q_world_sensor[pl])
        assert 0.1 < err.max() < 2.0 * np.sqrt(3) + 0.01


def test_truth_angles_match_independent_joints_module(clean) -> None:
    """Cross-check: imuhip.gait.joints (written separately from the same convention table)."""
    joints = pytest.importorskip("imuhip.gait.joints")
    tr = clean.truth
    q = tr.q_world_segment
    for side in ("left", "right"):
        got = np.degrees(joints.hip_angles(q["pelvis"], q[f"thigh_{side[0]}"], side))
        np.testing.assert_allclose(got, tr.hip_deg[side], atol=1e-6)
    got = np.degrees(joints.lumbar_angles(q["pelvis"], q["lumbar"]))
    np.testing.assert_allclose(got, tr.lumbar_deg, atol=1e-6)
    walk_dir = quat_rotate(q["walk"], [1.0, 0.0, 0.0])
    got = np.degrees(joints.pelvis_angles(q["pelvis"], walk_dir))
    np.testing.assert_allclose(got, tr.pelvis_deg, atol=1e-6)


def test_cardan_extraction_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    q = rng.normal(size=(500, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(cardan_zxy(q), to_rotation(q).as_euler("ZXY"), atol=1e-9)
    np.testing.assert_allclose(cardan_yxz(q), to_rotation(q).as_euler("YXZ"), atol=1e-9)


def test_known_answers_of_the_sign_conventions() -> None:
    """A pure 30 deg internal rotation reads +30 on both sides; lumbar/pelvis physical signs."""
    ident = np.array([[1.0, 0, 0, 0]])
    a = np.radians(30.0)
    rot_y = np.array([[np.cos(a / 2), 0, np.sin(a / 2), 0]])  # +Y: anterior turns to -Z (left)
    # right thigh: anterior toward the left (medial) = internal rotation
    assert np.degrees(hip_angles(ident, rot_y, "right"))[0, 2] == pytest.approx(30.0)
    # left thigh: anterior toward the left is lateral = external rotation
    assert np.degrees(hip_angles(ident, rot_y, "left"))[0, 2] == pytest.approx(-30.0)
    # lumbar: trunk turning to the left (anterior toward -Z) is negative axial rotation
    assert np.degrees(lumbar_angles(ident, rot_y))[0, 2] == pytest.approx(-30.0)
    # lumbar: rotation about +Z tips the superior axis backward = extension (negative flexion)
    rot_z = np.array([[np.cos(a / 2), 0, 0, np.sin(a / 2)]])
    assert np.degrees(lumbar_angles(ident, rot_z))[0, 0] == pytest.approx(-30.0)
    # pelvis: rotation about +Z lifts the anterior pelvis = posterior tilt (negative)
    assert np.degrees(pelvis_angles(ident, rot_z))[0, 2] == pytest.approx(-30.0)
    # pelvis: rotation about +X lowers the right side = negative obliquity
    rot_x = np.array([[np.cos(a / 2), np.sin(a / 2), 0, 0]])
    assert np.degrees(pelvis_angles(ident, rot_x))[0, 1] == pytest.approx(-30.0)


def test_misplacement_is_bounded_and_seeded() -> None:
    p = SimParams(misplacement_deg=7.0, sensors=SENSORS)
    m1 = mountings(p, np.random.default_rng(9))
    m2 = mountings(p, np.random.default_rng(9))
    for pl in SENSORS:
        np.testing.assert_array_equal(m1[pl], m2[pl])
        assert _angle_deg(m1[pl], nominal_mounting(pl)) <= 7.0 + 1e-9
    # documented default: pelvis sensor z points posterior (-X of the segment)
    np.testing.assert_allclose(quat_rotate(nominal_mounting("pelvis"), [0, 0, 1]), [-1, 0, 0])
    np.testing.assert_allclose(quat_rotate(nominal_mounting("thigh_r"), [0, 0, 1]), [0, 0, 1])
    np.testing.assert_allclose(quat_rotate(nominal_mounting("thigh_l"), [0, 0, 1]), [0, 0, -1])


def _short(**kw: object) -> object:
    base = {"duration_s": 30.0, "rate_hz": 50, "noise": False, "misplacement_deg": 0.0}
    base.update(kw)
    return simulate_session(SimParams(**base))


def test_ir_limit_caps_the_true_peak_and_compensation_raises_ranges() -> None:
    sensors = ("pelvis", "thigh_l", "thigh_r", "lumbar")
    free = _short(sensors=sensors)
    capped = _short(sensors=sensors, hip_ir_limit_deg=(None, 1.0), compensation_gain=0.0)
    comp = _short(sensors=sensors, hip_ir_limit_deg=(None, 1.0), compensation_gain=1.0)
    for r in (capped, comp):
        assert r.truth.hip_deg["right"][:, 2].max() < 1.0
        assert r.truth.session_metrics["hip_ir_peak_deg"]["right"] < 1.0
    assert free.truth.session_metrics["hip_ir_peak_deg"]["right"] > 4.0
    # the unrestricted left side is untouched
    np.testing.assert_allclose(capped.truth.hip_deg["left"], free.truth.hip_deg["left"])
    sm_c, sm_k = capped.truth.session_metrics, comp.truth.session_metrics
    for name in ("pelvis_rotation_range_deg", "lumbar_rotation_range_deg"):
        assert sm_k[name] > sm_c[name] + 1.0, name

    # compensation keeps the thigh's transverse rotation relative to the ground (G = 1): the
    # world yaw of the right thigh is closer to the unrestricted walker's than without it
    def yaw(r: object) -> np.ndarray:
        x = quat_rotate(r.truth.q_world_segment["thigh_r"], [1.0, 0.0, 0.0])
        return np.unwrap(np.arctan2(x[:, 1], x[:, 0]))

    d_cap = np.abs(yaw(capped) - yaw(free)).max()
    d_comp = np.abs(yaw(comp) - yaw(free)).max()
    assert d_comp < 0.5 * d_cap


def test_asymmetry_and_excursion_parameters() -> None:
    r = _short(hip_ir_excursion_deg=(8.0, 12.0))
    sm = r.truth.session_metrics["hip_rotation_excursion_deg"]
    assert sm["left"] == pytest.approx(8.0, abs=0.5)
    assert sm["right"] == pytest.approx(12.0, abs=0.5)
    r = _short(asymmetry=0.4)
    fl = r.truth.session_metrics["hip_flexion_range_deg"]
    assert fl["right"] / fl["left"] == pytest.approx(1.2 / 0.8, rel=0.05)


def test_defaults_describe_a_typical_adult() -> None:
    r = _short(duration_s=40.0)
    sm = r.truth.session_metrics
    for side in ("left", "right"):
        assert 6.0 <= sm["hip_rotation_excursion_deg"][side] <= 15.0
        assert 35.0 <= sm["hip_flexion_range_deg"][side] <= 50.0
    assert 9.0 <= sm["pelvis_rotation_range_deg"] <= 13.0
    ic = r.truth.ic_s["right"]
    stride = np.median(np.diff(ic))
    assert 120.0 / stride == pytest.approx(110.0, rel=0.03)  # cadence, steps/min
    assert r.truth.info["stride_length_m"] / stride == pytest.approx(1.3, rel=0.01)
