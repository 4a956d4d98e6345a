"""imuhip.orientation.fusion: input checks, gap handling, online == batch, ahrs adapters,
fuse_session."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import quat_from_axis_angle, quat_mul
from imuhip.orientation.fusion import (
    FilterParams,
    FuseConfig,
    OnlineFusion,
    estimate_orientation,
    estimate_orientation_full,
    fuse_session,
    resample_to_grid,
)
from imuhip.orientation.fusion._ahrs import Q_ENU_NWU, estimate_dip_rad
from imuhip.orientation.fusion.broad import broad_errors, load_broad_trial
from imuhip.types import AlignedSensor, AlignedSession, ClockModel, DecodeStats
from tests.unit._fusion_synth import imu_from_trajectory, inclination_rad, yaw_trajectory

RATE_HZ = 100.0


@pytest.fixture(scope="module")
def walk() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = 3000
    t = np.arange(n) / RATE_HZ
    tilt = quat_from_axis_angle([1.0, 0.0, 0.0], 0.3 * np.sin(2 * np.pi * 0.7 * t))
    q = quat_mul(yaw_trajectory(0.8 * np.sin(2 * np.pi * 0.2 * t)), tilt)
    return imu_from_trajectory(q, RATE_HZ, noise=1.0)


@pytest.fixture(scope="module")
def broad_excerpt(shared_data_module: Path) -> dict[str, np.ndarray | float]:
    tr = load_broad_trial(shared_data_module / "broad" / "02_undisturbed_slow_rotation_B.hdf5")
    n = 6000
    return {
        "acc": tr.acc_m_s2[:n],
        "gyr": tr.gyr_rad_s[:n],
        "mag": tr.mag_ut[:n],
        "q_ref": tr.q_ref[:n],
        "movement": tr.movement[:n] | True,
        "rate_hz": tr.rate_hz,
    }


@pytest.fixture(scope="module")
def shared_data_module() -> Path:
    p = Path(__file__).resolve().parents[3].parent / "shared" / "data"
    if not p.is_dir():
        pytest.fail(f"shared data folder missing: {p}")
    return p


# --- input validation -------------------------------------------------------------------------


def test_nan_row_names_argument_and_row(walk: tuple[np.ndarray, ...]) -> None:
    acc, gyr, mag = (x.copy() for x in walk)
    gyr[17, 1] = np.nan
    with pytest.raises(ValueError, match=r"gyr_rad_s .*first at row 17"):
        estimate_orientation(acc, gyr, rate_hz=RATE_HZ)
    mag[5] = np.inf
    with pytest.raises(ValueError, match=r"mag_ut .*row 5"):
        estimate_orientation(acc, walk[1], mag, rate_hz=RATE_HZ)


@pytest.mark.parametrize(
    ("kind", "pattern"),
    [
        ("acc_g", "acc_m_s2 looks like g"),
        ("acc_mg", "acc_m_s2 looks like mg"),
        ("gyr_deg", "gyr_rad_s looks like deg/s"),
        ("mag_mt", "mag_ut looks like mT"),
        ("mag_nt", "mag_ut looks like nT"),
    ],
)
def test_unit_mixups_are_caught(walk: tuple[np.ndarray, ...], kind: str, pattern: str) -> None:
    acc, gyr, mag = walk
    if kind == "acc_g":
        acc = acc / 9.80665
    elif kind == "acc_mg":
        acc = acc / 9.80665 * 1000
    elif kind == "gyr_deg":
        gyr = np.degrees(gyr) * 20  # a fast movement in deg/s
    elif kind == "mag_mt":
        mag = mag / 1000
    else:
        mag = mag * 1000
    with pytest.raises(ValueError, match=pattern):
        estimate_orientation(acc, gyr, mag, rate_hz=RATE_HZ)


def test_bad_shapes_rate_and_method(walk: tuple[np.ndarray, ...]) -> None:
    acc, gyr, _ = walk
    with pytest.raises(ValueError, match=r"gyr_rad_s must have shape \(3000, 3\)"):
        estimate_orientation(acc, gyr[:-1], rate_hz=RATE_HZ)
    with pytest.raises(ValueError, match=r"acc_m_s2 must have shape \(N, 3\)"):
        estimate_orientation(acc[:, :2], gyr, rate_hz=RATE_HZ)
    with pytest.raises(ValueError, match="rate_hz"):
        estimate_orientation(acc, gyr, rate_hz=0.0)
    with pytest.raises(ValueError, match="unknown fusion method 'kalman'"):
        estimate_orientation(acc, gyr, rate_hz=RATE_HZ, method="kalman")
    with pytest.raises(ValueError, match=r"valid must have shape"):
        estimate_orientation(acc, gyr, rate_hz=RATE_HZ, valid=np.ones(5, bool))
    with pytest.raises(ValueError, match="madgwick_gain"):
        FilterParams(madgwick_gain=-1.0)


@pytest.mark.parametrize("method", ["vqf", "vqf_online", "madgwick"])
def test_valid_mask_fills_gaps_and_flags_them(walk: tuple[np.ndarray, ...], method: str) -> None:
    acc, gyr, _mag = walk
    valid = np.ones(len(acc), bool)
    valid[1000:1010] = False
    acc_gap, gyr_gap = acc.copy(), gyr.copy()
    acc_gap[~valid] = np.nan
    gyr_gap[~valid] = np.nan
    res = estimate_orientation_full(acc_gap, gyr_gap, rate_hz=RATE_HZ, method=method, valid=valid)
    assert np.isfinite(res.q_world_sensor).all()
    np.testing.assert_array_equal(res.valid, valid)
    ref = estimate_orientation(acc, gyr, rate_hz=RATE_HZ, method=method)
    # a 0.1 s gap barely moves the estimate (gyro interpolated or held across it)
    d = quat_mul(res.q_world_sensor, ref * np.array([1, -1, -1, -1]))
    assert np.degrees(2 * np.arccos(np.clip(np.abs(d[:, 0]), 0, 1))).max() < 3.0


def test_resample_to_grid_flags_gaps() -> None:
    rate = 50.0
    t = np.arange(100) / rate + 3.0
    keep = np.ones(100, bool)
    keep[40:45] = False  # 5 samples lost
    x = np.column_stack([t, 2 * t, -t])
    tg, _acc, gyr, mag, valid = resample_to_grid(t[keep], rate, x[keep] + 9.8, x[keep], x[keep])
    np.testing.assert_allclose(tg, t)
    np.testing.assert_allclose(gyr, x, atol=1e-9)  # linear data: interpolation is exact
    assert mag is not None
    np.testing.assert_array_equal(valid, keep)
    with pytest.raises(ValueError, match="strictly increasing"):
        resample_to_grid(t[::-1], rate, x, x)


# --- online == batch ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("use_mag", [False, True])
def test_online_chunked_equals_batch(
    walk: tuple[np.ndarray, ...], seed: int, use_mag: bool
) -> None:
    acc, gyr, mag = walk
    rng = np.random.default_rng(seed)
    valid = rng.random(len(acc)) > 0.02
    valid[0] = True
    cuts = np.sort(rng.choice(np.arange(1, len(acc)), size=25, replace=False))
    batch = estimate_orientation_full(
        acc, gyr, mag if use_mag else None, rate_hz=RATE_HZ, method="vqf_online", valid=valid
    )
    f = OnlineFusion(rate_hz=RATE_HZ, use_mag=use_mag)
    parts = []
    for a, b in zip(np.r_[0, cuts], np.r_[cuts, len(acc)], strict=True):
        parts.append(f.update(acc[a:b], gyr[a:b], mag[a:b] if use_mag else None, valid=valid[a:b]))
    q = np.concatenate([p.q_world_sensor for p in parts])
    assert np.array_equal(q, batch.q_world_sensor)
    assert np.array_equal(np.concatenate([p.rest for p in parts]), batch.rest)
    assert np.array_equal(np.concatenate([p.gyr_bias_rad_s for p in parts]), batch.gyr_bias_rad_s)
    assert f.n_samples == len(acc)


def test_online_rejects_mag_mismatch(walk: tuple[np.ndarray, ...]) -> None:
    acc, gyr, mag = walk
    with pytest.raises(ValueError, match="use_mag=True"):
        OnlineFusion(rate_hz=RATE_HZ, use_mag=True).update(acc, gyr)
    with pytest.raises(ValueError, match="use_mag=False"):
        OnlineFusion(rate_hz=RATE_HZ).update(acc, gyr, mag)


def test_vqf_diagnostics_bias_and_rest() -> None:
    n = int(60 * RATE_HZ)
    acc, gyr, _ = imu_from_trajectory(yaw_trajectory(np.zeros(n)), RATE_HZ, noise=1.0)
    bias = np.array([0.01, -0.02, 0.015])
    res = estimate_orientation_full(acc, gyr + bias, rate_hz=RATE_HZ)
    assert res.rest[n // 2 :].all()
    assert res.gyr_bias_rad_s is not None
    np.testing.assert_allclose(res.gyr_bias_rad_s[-1], bias, atol=2e-3)


# --- ahrs adapters: the library's own output, frame-converted ---------------------------------


def _library_output(
    name: str, acc: np.ndarray, gyr: np.ndarray, mag: np.ndarray | None, fs: float
) -> np.ndarray:
    from ahrs.filters import EKF, Madgwick, Mahony

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if name == "madgwick":
            return Madgwick(gyr=gyr, acc=acc, mag=mag, frequency=fs).Q
        if name == "mahony":
            return Mahony(gyr=gyr, acc=acc, mag=mag, frequency=fs).Q
        kw = {} if mag is None else {"magnetic_ref": float(np.degrees(-estimate_dip_rad(acc, mag)))}
        return EKF(gyr=gyr, acc=acc, mag=mag, frequency=fs, frame="NED", **kw).Q


# documented conversion per filter (9D): Madgwick and EKF output NWU, Mahony ENU
_CONVERSION_9D = {"madgwick": Q_ENU_NWU, "mahony": np.array([1.0, 0, 0, 0]), "ekf": Q_ENU_NWU}


@pytest.mark.parametrize("name", ["madgwick", "mahony", "ekf"])
@pytest.mark.parametrize("use_mag", [False, True])
def test_ahrs_adapter_reproduces_library(
    broad_excerpt: dict[str, np.ndarray | float], name: str, use_mag: bool
) -> None:
    n = 1500
    acc = np.asarray(broad_excerpt["acc"])[:n]
    gyr = np.asarray(broad_excerpt["gyr"])[:n]
    mag = np.asarray(broad_excerpt["mag"])[:n] if use_mag else None
    fs = float(broad_excerpt["rate_hz"])  # type: ignore[arg-type]
    lib = _library_output(name, acc, gyr, mag, fs)
    conv = _CONVERSION_9D[name] if use_mag else np.array([1.0, 0, 0, 0])
    expected = quat_mul(conv, lib)
    ours = estimate_orientation(acc, gyr, mag, rate_hz=fs, method=name)
    np.testing.assert_allclose(ours, expected, atol=1e-12)


@pytest.mark.parametrize("name", ["madgwick", "mahony", "ekf"])
def test_ahrs_adapter_frames_match_optical_reference(
    broad_excerpt: dict[str, np.ndarray | float], name: str
) -> None:
    fs = float(broad_excerpt["rate_hz"])  # type: ignore[arg-type]
    q = estimate_orientation(
        broad_excerpt["acc"], broad_excerpt["gyr"], broad_excerpt["mag"], rate_hz=fs, method=name
    )
    skip = 1000  # let the filter converge from its initial guess
    e = broad_errors(
        q[skip:],
        np.asarray(broad_excerpt["q_ref"])[skip:],
        np.asarray(broad_excerpt["movement"])[skip:],
    )
    assert e.total_rmse_deg < 4.0, e  # a frame mix-up gives ≈ 90° or 180°


def test_zero_gyro_rows_do_not_freeze_madgwick() -> None:
    # ahrs skips the whole update on an exactly-zero gyro; the adapter must keep correcting
    n = int(60 * RATE_HZ)
    acc = np.tile([0.0, 0.0, 9.80665], (n, 1))
    tilt = 0.5
    acc[1:] = [0.0, 9.80665 * np.sin(tilt), 9.80665 * np.cos(tilt)]
    q = estimate_orientation(acc, np.zeros((n, 3)), rate_hz=RATE_HZ, method="madgwick")
    assert abs(inclination_rad(q[-1]) - tilt) < np.radians(2.0)


# --- session -------------------------------------------------------------------------------------


def test_fuse_session(walk: tuple[np.ndarray, ...]) -> None:
    acc, gyr, mag = walk
    m = len(acc)
    valid = np.ones(m, bool)
    valid[100:120] = False
    stats = DecodeStats(0, 0, m, {}, 0, 0, 0, 20, ())
    clock = ClockModel(0.0, 0.0, 0.0)
    sensors = {
        "pelvis": AlignedSensor("pelvis", acc, gyr, mag, valid, clock, stats),
        "thigh_l": AlignedSensor("thigh_l", acc, gyr, None, np.ones(m, bool), clock, stats),
    }
    aligned = AlignedSession(np.arange(m) / RATE_HZ, RATE_HZ, sensors)
    ori = fuse_session(aligned, FuseConfig(method="vqf"))
    assert ori.source == "vqf_offline"
    assert set(ori.q_world_sensor) == {"pelvis", "thigh_l"}
    np.testing.assert_array_equal(ori.valid["pelvis"], valid)
    np.testing.assert_array_equal(
        ori.q_world_sensor["pelvis"],
        estimate_orientation(acc, gyr, mag, rate_hz=RATE_HZ, valid=valid),
    )
    assert ori.diagnostics["pelvis"]["uses_mag"].all()
    assert not ori.diagnostics["thigh_l"]["uses_mag"].any()
    assert "mag_disturbed" in ori.diagnostics["pelvis"]
    assert "mag_disturbed" not in ori.diagnostics["thigh_l"]
    assert ori.diagnostics["pelvis"]["gyr_bias_x_rad_s"].shape == (m,)
    six = fuse_session(aligned, FuseConfig(use_mag=False))
    assert not six.diagnostics["pelvis"]["uses_mag"].any()
    with pytest.raises(ValueError, match="unknown fusion method"):
        FuseConfig(method="nope")
