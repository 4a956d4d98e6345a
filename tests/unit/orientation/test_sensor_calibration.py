"""Sensor calibration: known distortions recovered, bad procedures rejected, files round-trip."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import GRAVITY_M_S2, quat_from_axis_angle, quat_rotate
from imuhip.errors import CalibrationError
from imuhip.orientation.sensor_calibration import (
    SensorCalibration,
    apply_calibration,
    apply_sensor_calibrations,
    detect_still,
    estimate_gyro_bias,
    fit_mag_ellipsoid,
    load_calibration,
    load_for_sensor,
    save_calibration,
    six_position_calibration,
)
from imuhip.types import (
    AlignedSensor,
    AlignedSession,
    ClockModel,
    DecodeStats,
    ImuSamples,
    SensorMeta,
    SessionMeta,
)
from tests.cli import run_cli

RATE_HZ = 100.0
RNG = np.random.default_rng(42)

# a known distortion: raw = D @ true + b  (so the calibration must be M = D^-1, offset = b)
ACC_D = np.array([[1.03, 0.01, -0.02], [0.0, 0.98, 0.015], [0.01, -0.01, 1.01]])
ACC_B = np.array([0.15, -0.25, 0.3])
MAG_D = np.array([[1.10, 0.05, -0.03], [0.05, 0.92, 0.02], [-0.03, 0.02, 1.04]])  # symmetric
MAG_B = np.array([12.0, -30.0, 5.0])


def _six_pose_recording(faces: list[int], noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Still 3 s on each face, with 1 s tumbling transitions between them."""
    acc_parts, gyr_parts = [], []
    n_still, n_move = int(3 * RATE_HZ), int(1 * RATE_HZ)
    for i, k in enumerate(faces):
        up = np.zeros(3)
        up[k // 2] = 1.0 if k % 2 == 0 else -1.0
        true = np.tile(up * GRAVITY_M_S2, (n_still, 1))
        acc_parts.append(true @ ACC_D.T + ACC_B)
        gyr_parts.append(np.zeros((n_still, 3)))
        if i < len(faces) - 1:
            t = np.linspace(0, 1, n_move)
            wobble = np.column_stack([np.sin(7 * t), np.cos(5 * t), np.sin(3 * t)]) * 6.0
            acc_parts.append(wobble + ACC_B)
            gyr_parts.append(np.column_stack([np.cos(7 * t), np.sin(5 * t), t]) * 3.0)
    acc = np.concatenate(acc_parts)
    gyr = np.concatenate(gyr_parts)
    if noise:
        acc = acc + RNG.normal(0, 0.02 * noise, acc.shape)
        gyr = gyr + RNG.normal(0, 0.003 * noise, gyr.shape)
    return acc, gyr


def _sphere(n: int) -> np.ndarray:
    u = RNG.normal(size=(n, 3))
    return u / np.linalg.norm(u, axis=1, keepdims=True)


# --- still detection and gyro bias -----------------------------------------------------------


def test_gyro_bias_known_answer() -> None:
    n = int(20 * RATE_HZ)
    bias = np.array([0.012, -0.021, 0.004])
    gyr = RNG.normal(0, 0.004, (n, 3)) + bias
    acc = np.tile([0.0, 0.0, GRAVITY_M_S2], (n, 1)) + RNG.normal(0, 0.02, (n, 3))
    gyr[800:1200] += np.array([1.0, 0.5, -0.7])  # a movement in the middle
    acc[800:1200] += RNG.normal(0, 2.0, (400, 3))
    fit = estimate_gyro_bias(gyr, acc, RATE_HZ)
    np.testing.assert_allclose(fit.bias_rad_s, bias, atol=5e-4)
    assert not fit.still[850:1150].any()
    assert 12.0 < fit.still_s < 17.0
    np.testing.assert_allclose(fit.noise_rad_s, 0.004, rtol=0.2)


def test_gyro_bias_rejects_moving_recording() -> None:
    n = int(10 * RATE_HZ)
    t = np.arange(n) / RATE_HZ
    gyr = np.column_stack([np.sin(t * 3), np.cos(t * 2), t * 0]) * 1.5
    acc = np.column_stack([np.sin(t * 3), np.cos(t * 4), np.ones(n) * 9.8]) * 2
    with pytest.raises(CalibrationError, match=r"still for only 0\.0 s"):
        estimate_gyro_bias(gyr, acc, RATE_HZ)


def test_detect_still_ignores_constant_bias_but_not_slow_rotation() -> None:
    n = int(10 * RATE_HZ)
    acc = np.tile([0.0, 0.0, GRAVITY_M_S2], (n, 1))
    assert detect_still(np.full((n, 3), 0.03), acc, RATE_HZ).all()  # 1.7°/s bias: still
    ang = 0.3 * np.arange(n) / RATE_HZ  # 0.3 rad/s about x
    q = quat_from_axis_angle([1.0, 0.0, 0.0], ang)
    acc_rot = quat_rotate(q * [1, -1, -1, -1], [0.0, 0.0, GRAVITY_M_S2])
    gyr_rot = np.tile([0.3, 0.0, 0.0], (n, 1))
    assert not detect_still(gyr_rot, acc_rot, RATE_HZ).any()


# --- accelerometer six-position ----------------------------------------------------------------


@pytest.mark.parametrize("noise", [0.0, 1.0])
def test_six_position_recovers_known_distortion(noise: float) -> None:
    acc, gyr = _six_pose_recording([0, 1, 2, 3, 4, 5], noise)
    fit = six_position_calibration(acc, RATE_HZ, gyr)
    atol = 1e-9 if noise == 0 else 5e-3
    np.testing.assert_allclose(fit.matrix, np.linalg.inv(ACC_D), atol=atol)
    np.testing.assert_allclose(fit.offset_m_s2, ACC_B, atol=1e-8 if noise == 0 else 5e-3)
    assert fit.residual_rms_m_s2 < (1e-9 if noise == 0 else 0.05)
    cal = SensorCalibration.empty("SN-1").with_acc(fit)
    acc_cal, _, _ = apply_calibration(cal, acc_m_s2=acc[:10])
    assert acc_cal is not None
    np.testing.assert_allclose(np.linalg.norm(acc_cal, axis=1), GRAVITY_M_S2, atol=0.1)
    assert cal.quality["acc"] == "good"


def test_six_position_names_missing_faces() -> None:
    acc, gyr = _six_pose_recording([0, 1, 4, 5])
    with pytest.raises(CalibrationError, match=r"found 4 of the 6 faces.*missing \+y, -y"):
        six_position_calibration(acc, RATE_HZ, gyr)


def test_six_position_rejects_constant_motion() -> None:
    n = int(20 * RATE_HZ)
    acc = RNG.normal(0, 3.0, (n, 3)) + np.array([0.0, 0.0, 9.8])
    with pytest.raises(CalibrationError, match="never still"):
        six_position_calibration(acc, RATE_HZ)


# --- magnetometer ellipsoid ---------------------------------------------------------------------


@pytest.mark.parametrize("noise_ut", [0.0, 0.3])
def test_mag_ellipsoid_recovers_known_distortion(noise_ut: float) -> None:
    field = 48.0
    true = _sphere(2000) * field
    raw = (
        true @ MAG_D.T + MAG_B + RNG.normal(0, noise_ut, true.shape)
        if noise_ut
        else (true @ MAG_D.T + MAG_B)
    )
    fit = fit_mag_ellipsoid(raw)
    tol = 1e-8 if noise_ut == 0 else 0.2
    np.testing.assert_allclose(fit.hard_iron_ut, MAG_B, atol=tol)
    # the soft iron is recovered up to the unobservable overall scale: compare normalised
    w = fit.soft_iron * field / fit.field_ut
    np.testing.assert_allclose(w, np.linalg.inv(MAG_D), atol=1e-8 if noise_ut == 0 else 5e-3)
    cal = SensorCalibration.empty("SN-1").with_mag(fit)
    _, _, mag = apply_calibration(cal, mag_ut=raw)
    assert mag is not None
    norms = np.linalg.norm(mag, axis=1)
    assert norms.std() / norms.mean() < (1e-9 if noise_ut == 0 else 0.01)
    assert fit.coverage > 0.25
    assert fit.octants == 8


def test_mag_ellipsoid_rejects_planar_movement() -> None:
    ang = np.linspace(0, 4 * np.pi, 800)
    true = np.column_stack([np.cos(ang), np.sin(ang), 0.05 * np.sin(3 * ang)]) * 45.0
    with pytest.raises(CalibrationError, match="coverage too poor"):
        fit_mag_ellipsoid(true @ MAG_D.T + MAG_B)


def test_mag_ellipsoid_rejects_too_few_samples() -> None:
    with pytest.raises(CalibrationError, match="at least 100"):
        fit_mag_ellipsoid(_sphere(20) * 40)


# --- storage --------------------------------------------------------------------------------------


def _full_calibration(serial: str = "IMU-0042") -> SensorCalibration:
    acc, gyr = _six_pose_recording([0, 1, 2, 3, 4, 5])
    cal = SensorCalibration.empty(serial)
    cal = cal.with_acc(six_position_calibration(acc, RATE_HZ, gyr))
    cal = cal.with_gyro(estimate_gyro_bias(np.full((1000, 3), 0.01), acc[:1000], RATE_HZ))
    return cal.with_mag(fit_mag_ellipsoid(_sphere(500) * 40 @ MAG_D.T + MAG_B))


def test_save_load_round_trip_and_merge(tmp_path: Path) -> None:
    cal = _full_calibration()
    assert set(cal.dates) == {"gyro", "acc", "mag"}  # later parts kept the earlier ones
    path = save_calibration(cal, tmp_path)
    assert path == tmp_path / "IMU-0042.json"
    doc = json.loads(path.read_text())
    assert doc["schema_version"] == 1
    back = load_for_sensor("IMU-0042", tmp_path)
    assert back is not None
    for name in ("gyr_bias_rad_s", "acc_matrix", "acc_offset_m_s2", "mag_soft_iron"):
        np.testing.assert_array_equal(getattr(back, name), getattr(cal, name))
    assert back.quality == cal.quality
    assert load_for_sensor("OTHER", tmp_path) is None


def test_load_rejects_other_schema_and_bad_serial(tmp_path: Path) -> None:
    p = save_calibration(_full_calibration(), tmp_path)
    doc = json.loads(p.read_text())
    doc["schema_version"] = 99
    p.write_text(json.dumps(doc))
    with pytest.raises(CalibrationError, match="schema_version 99"):
        load_calibration(p)
    with pytest.raises(ValueError, match="cannot name a calibration file"):
        SensorCalibration.empty("../etc/passwd")


# --- applied on load ------------------------------------------------------------------------------


def _meta(serial: str) -> SessionMeta:
    s = SensorMeta("pelvis", RATE_HZ, 0.001, 0.001, 0.1, True, serial=serial)
    t = SensorMeta("thigh_l", RATE_HZ, 0.001, 0.001, 0.1, True, serial="")
    return SessionMeta("s1", "2024-01-01T00:00:00Z", "P01", (s, t))


def test_apply_sensor_calibrations_on_samples_and_aligned(tmp_path: Path) -> None:
    cal = _full_calibration()
    save_calibration(cal, tmp_path)
    n = 50
    gyr = np.full((n, 3), 0.01)
    acc = np.tile(ACC_D @ [0, 0, GRAVITY_M_S2] + ACC_B, (n, 1))
    mag = np.tile(MAG_D @ [0, 40.0, 0] + MAG_B, (n, 1))
    stats = DecodeStats(1, 1, n, {}, 0, 0, 0, 0, ())
    samples = {
        p: ImuSamples(
            p,
            RATE_HZ,
            np.arange(n),
            np.arange(n) / RATE_HZ,
            np.arange(n),
            acc,
            gyr,
            mag,
            np.zeros(n, bool),
            stats,
        )
        for p in ("pelvis", "thigh_l")
    }
    out = apply_sensor_calibrations(samples, _meta("IMU-0042"), tmp_path)
    np.testing.assert_allclose(out["pelvis"].gyr_rad_s, 0.0, atol=1e-12)
    np.testing.assert_allclose(out["pelvis"].acc_m_s2, [[0, 0, GRAVITY_M_S2]] * n, atol=1e-6)
    assert np.ptp(np.linalg.norm(out["pelvis"].mag_ut, axis=1)) < 1e-9
    assert out["thigh_l"] is samples["thigh_l"]  # no serial: untouched

    clock = ClockModel(0.0, 0.0, 0.0)
    aligned = AlignedSession(
        np.arange(n) / RATE_HZ,
        RATE_HZ,
        {"pelvis": AlignedSensor("pelvis", acc, gyr, mag, np.ones(n, bool), clock, stats)},
    )
    out2 = apply_sensor_calibrations(aligned, _meta("IMU-0042"), tmp_path)
    assert isinstance(out2, AlignedSession)
    np.testing.assert_allclose(out2.sensors["pelvis"].acc_m_s2, out["pelvis"].acc_m_s2)
    # a missing calibration file is not an error
    same = apply_sensor_calibrations(aligned, _meta("NO-FILE"), tmp_path)
    assert same.sensors["pelvis"] is aligned.sensors["pelvis"]


# --- CLI: imuhip calibrate-sensor on a recording -----------------------------------------------

ACC_LSB = 16 * GRAVITY_M_S2 / 32768
GYR_LSB = np.radians(2000) / 32768
MAG_LSB = 0.15


def _write_recording(
    path: Path, acc: np.ndarray, gyr: np.ndarray, mag: np.ndarray, serial: str
) -> None:
    from imuhip.ingest.protocol import encode_packet
    from imuhip.ingest.recording import RecordingWriter
    from imuhip.types import RawPacket

    sm = SensorMeta("pelvis", RATE_HZ, ACC_LSB, GYR_LSB, MAG_LSB, True, serial=serial)
    meta = SessionMeta("cal1", "2024-01-01T00:00:00Z", "P01", (sm,))
    raw = np.column_stack([acc / ACC_LSB, gyr / GYR_LSB, mag / MAG_LSB])
    raw = np.clip(np.round(raw), -32768, 32767).astype(np.int64)
    per = 10
    with RecordingWriter(path, meta) as w:
        for k in range(len(raw) // per):
            t_us = int(k * per * 1e6 / RATE_HZ)
            payload = encode_packet(k, t_us, raw[k * per : (k + 1) * per])
            w.write_packet(RawPacket("pelvis", 1_000_000_000 + t_us * 1000 + 20_000_000, payload))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli("calibrate-sensor", *args, timeout_s=120)


def test_cli_acc6_then_mag_from_recordings(tmp_path: Path) -> None:
    acc, gyr = _six_pose_recording([0, 1, 2, 3, 4, 5], noise=1.0)
    mag = np.tile([20.0, 0.0, -40.0], (len(acc), 1))
    rec = tmp_path / "acc6.imrec"
    _write_recording(rec, acc, gyr + 0.01, mag, "IMU-7")
    out = tmp_path / "cal"
    r = _cli(str(rec), "--sensor", "pelvis", "--kind", "acc6", "--out", str(out))
    assert r.returncode == 0, r.stderr
    assert "six faces" in r.stdout  # the guidance is shown
    assert "quality: good" in r.stdout
    cal = load_for_sensor("IMU-7", out)
    assert cal is not None and cal.acc_matrix is not None
    np.testing.assert_allclose(cal.acc_matrix, np.linalg.inv(ACC_D), atol=5e-3)

    true = _sphere(3000) * 45.0
    rec2 = tmp_path / "mag.imrec"
    _write_recording(
        rec2, np.tile([0, 0, 9.8], (3000, 1)), np.zeros((3000, 3)), true @ MAG_D.T + MAG_B, "IMU-7"
    )
    r2 = _cli(str(rec2), "--sensor", "pelvis", "--kind", "mag", "--out", str(out))
    assert r2.returncode == 0, r2.stderr
    assert "figure-eight" in r2.stdout
    cal2 = load_for_sensor("IMU-7", out)
    assert cal2 is not None and cal2.mag_hard_iron_ut is not None
    np.testing.assert_allclose(cal2.mag_hard_iron_ut, MAG_B, atol=0.5)
    assert cal2.acc_matrix is not None  # merged, not replaced
    np.testing.assert_array_equal(cal2.acc_matrix, cal.acc_matrix)


def test_cli_errors_are_one_line(tmp_path: Path) -> None:
    n = 1000
    rec = tmp_path / "moving.imrec"
    t = np.arange(n) / RATE_HZ
    gyr = np.column_stack([np.sin(3 * t), np.cos(2 * t), 0 * t]) * 2
    acc = np.column_stack([np.sin(3 * t), np.cos(4 * t), 4.9 + 0 * t]) * 2
    _write_recording(rec, acc, gyr, np.tile([20.0, 0, -40], (n, 1)), "IMU-8")
    r = _cli(str(rec), "--sensor", "pelvis", "--kind", "gyro", "--out", str(tmp_path / "c"))
    assert r.returncode == 1
    assert "error: the sensor was still for only" in r.stderr
    assert "Traceback" not in r.stderr
    r = _cli(str(rec), "--sensor", "thigh_l", "--kind", "gyro")
    assert r.returncode == 1 and "no sensor at placement 'thigh_l'" in r.stderr
    r = _cli(
        "--sensor", "pelvis", "--kind", "gyro", "--live", "AA:BB:CC:DD:EE:FF", "--duration", "1"
    )
    assert r.returncode == 1 and "AA:BB:CC:DD:EE:FF" in r.stderr  # no Bluetooth here
    r = _cli(str(tmp_path / "missing.imrec"), "--sensor", "pelvis", "--kind", "gyro")
    assert r.returncode == 1 and "no such file" in r.stderr
