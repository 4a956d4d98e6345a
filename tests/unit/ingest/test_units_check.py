"""Gyroscope unit plausibility: a factor 57.3 (rad/s vs deg/s) is caught, real motion is not."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from imuhip.errors import ImuhipError
from imuhip.ingest.units_check import (
    DEG_PER_RAD,
    GyroUnitsError,
    check_gyro_units,
    check_session_gyro_units,
)
from imuhip.sim import SimParams, SimSamples, simulate_session
from imuhip.sim.rom import RomSimParams, simulate_rom_session
from imuhip.types import AlignedSensor, AlignedSession, ClockModel, DecodeStats

WALK_SENSORS = ("pelvis", "thigh_l", "thigh_r", "lumbar", "shank_l")
WRONG = {"rad/s read as deg/s": 1.0 / DEG_PER_RAD, "deg/s read as rad/s": DEG_PER_RAD}


@pytest.fixture(scope="module")
def walk() -> dict[str, SimSamples]:
    return simulate_session(
        SimParams(duration_s=30.0, rate_hz=100, sensors=WALK_SENSORS, seed=3)
    ).samples


@pytest.fixture(scope="module")
def rom() -> tuple[dict[str, SimSamples], float]:
    r = simulate_rom_session(RomSimParams())
    return r.samples, float(r.meta.sensors[0].rate_hz)


@pytest.fixture(scope="module")
def standing() -> dict[str, SimSamples]:
    # 12 s of quiet standing before the walk starts: keep the first 11.5 s only
    res = simulate_session(SimParams(duration_s=25.0, rate_hz=100, stand_start_s=12.0, seed=4))
    out = {}
    for p, s in res.samples.items():
        keep = s.t_s < s.t_s[0] + 11.5
        out[p] = SimSamples(*(getattr(s, f)[keep] for f in SimSamples.__dataclass_fields__))
    return out


@pytest.mark.parametrize("sensor", WALK_SENSORS)
def test_walking_right_unit_ok_wrong_unit_suspected(walk: dict, sensor: str) -> None:
    s = walk[sensor]
    assert check_gyro_units(s.acc_m_s2, s.gyr_rad_s, 100.0).status == "ok"
    for scale in WRONG.values():
        r = check_gyro_units(s.acc_m_s2, s.gyr_rad_s * scale, 100.0)
        assert r.status == "suspected", r.message
        # the correction undoes the scale
        assert r.suspected_factor == pytest.approx(1.0 / scale)


def test_rom_seated_thighs_ok_and_wrong_unit_suspected(rom: tuple[dict, float]) -> None:
    samples, rate = rom
    for p, s in samples.items():
        r = check_gyro_units(s.acc_m_s2, s.gyr_rad_s, rate)
        assert r.status in ("ok", "not_enough_motion"), (p, r.message)
        if p.startswith("thigh"):
            assert r.status == "ok"
            assert r.tilt_gain == pytest.approx(1.0, abs=0.1)  # du/dt = u x w, gain 1
            for scale in WRONG.values():
                bad = check_gyro_units(s.acc_m_s2, s.gyr_rad_s * scale, rate)
                assert bad.status == "suspected"
                assert bad.suspected_factor == pytest.approx(1.0 / scale)
                assert bad.tilt_gain == pytest.approx(1.0 / scale, rel=0.15)


def test_standing_only_is_not_enough_motion_whatever_the_scale(standing: dict) -> None:
    for s in standing.values():
        for scale in (1.0, *WRONG.values()):
            r = check_gyro_units(s.acc_m_s2, s.gyr_rad_s * scale, 100.0)
            assert r.status == "not_enough_motion", r.message
            assert r.suspected_factor is None


def test_gaps_are_not_used(walk: dict) -> None:
    s = walk["thigh_l"]
    valid = np.ones(len(s.t_s), bool)
    valid[500:700] = False
    gyr = s.gyr_rad_s.copy()
    gyr[500:700] = np.nan  # filled samples may hold anything
    r = check_gyro_units(s.acc_m_s2, gyr, 100.0, valid=valid)
    assert r.status == "ok"


def test_misuse_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="acc_m_s2"):
        check_gyro_units(np.zeros((10, 2)), np.zeros((10, 3)), 100.0)
    with pytest.raises(ValueError, match="gyr_rad_s"):
        check_gyro_units(np.zeros((10, 3)), np.zeros((9, 3)), 100.0)
    with pytest.raises(ValueError, match="rate_hz"):
        check_gyro_units(np.zeros((10, 3)), np.zeros((10, 3)), 0.0)
    with pytest.raises(ValueError, match="valid"):
        check_gyro_units(np.zeros((10, 3)), np.zeros((10, 3)), 100.0, valid=np.ones(3, bool))


def _aligned(samples: dict[str, SimSamples], scale: dict[str, float]) -> AlignedSession:
    n = min(len(s.t_s) for s in samples.values())
    stats = DecodeStats(
        packets_received=0,
        packets_decoded=0,
        duplicates=0,
        reordered=0,
        late_packets=0,
        lost_packets=0,
        lost_samples=0,
        overlapping_samples=0,
        samples_decoded=n,
        clock_resyncs=0,
        protocol_errors={},
        gaps=(),
    )
    clock = ClockModel(offset_s=0.0, drift_ppm=0.0, residual_jitter_s=0.0)
    sensors = {
        p: AlignedSensor(
            placement=p,
            acc_m_s2=s.acc_m_s2[:n],
            gyr_rad_s=s.gyr_rad_s[:n] * scale.get(p, 1.0),
            mag_ut=None,
            valid=np.ones(n, bool),
            clock=clock,
            stats=stats,
        )
        for p, s in samples.items()
    }
    return AlignedSession(t_s=np.arange(n) / 100.0, rate_hz=100.0, sensors=sensors)


def test_session_check_raises_naming_the_sensor(walk: dict) -> None:
    ok = check_session_gyro_units(_aligned(walk, {}))
    assert set(ok["sensors"]) == set(WALK_SENSORS)
    assert all(v["status"] == "ok" for v in ok["sensors"].values())
    assert ok["warnings"] == []
    with pytest.raises(GyroUnitsError, match=r"thigh_r: gyroscope reads about 57.3x too small"):
        check_session_gyro_units(_aligned(walk, {"thigh_r": 1.0 / DEG_PER_RAD}))
    assert issubclass(GyroUnitsError, ImuhipError)


def test_real_data_with_gyroscopes_is_not_flagged(shared_data: Path) -> None:
    trials = sorted((shared_data / "broad").glob("*.hdf5"))
    assert len(trials) == 4
    for path in trials:
        with h5py.File(path, "r") as f:
            acc, gyr = f["imu_acc"][:], f["imu_gyr"][:]
            rate = float(f.attrs["sampling_rate"])
        r = check_gyro_units(acc, gyr, rate)
        assert r.status == "ok", (path.name, r.message)
        bad = check_gyro_units(acc, gyr / DEG_PER_RAD, rate)
        assert bad.status == "suspected", (path.name, bad.message)
    df = pd.read_csv(shared_data / "fusion" / "sensor_data.csv")
    acc = df[[f"Accelerometer {a} (g)" for a in "XYZ"]].to_numpy() * 9.80665
    gyr = np.deg2rad(df[[f"Gyroscope {a} (deg/s)" for a in "XYZ"]].to_numpy())
    assert check_gyro_units(acc, gyr, 100.0).status == "ok"
    assert check_gyro_units(acc, gyr * DEG_PER_RAD, 100.0).suspected_factor == pytest.approx(
        1 / DEG_PER_RAD
    )


@pytest.mark.slow
def test_cli_analyze_refuses_rad_s_data_labelled_deg_s_in_one_line(
    tmp_path: Path, walk: dict
) -> None:
    for p in ("pelvis", "thigh_l", "thigh_r"):
        s = walk[p]
        cols = {"t_s": s.t_s - s.t_s[0]}
        for j, a in enumerate("xyz"):
            cols[f"acc_{a}_m_s2"] = s.acc_m_s2[:, j]
        for j, a in enumerate("xyz"):
            # thigh_l's values are rad/s, but the header says deg/s
            cols[f"gyr_{a}_deg_s"] = s.gyr_rad_s[:, j] * (1.0 if p == "thigh_l" else DEG_PER_RAD)
        pd.DataFrame(cols).to_csv(tmp_path / f"{p}.csv", index=False, float_format="%.9g")
    args = [f"--sensor={p}={p}.csv" for p in ("pelvis", "thigh_l", "thigh_r")]
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "import", "csv", *args, "-o", "s.imrec"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr  # the import's magnitude check cannot see this mistake
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "analyze", "s.imrec", "--out", "rep"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 1
    errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
    assert len(errors) == 1 and "Traceback" not in r.stderr
    assert "thigh_l: gyroscope reads about 57.3x too small" in errors[0]
    assert "pelvis" not in errors[0] and "thigh_r" not in errors[0]
    assert not (tmp_path / "rep" / "report.json").exists()


def test_deg_per_rad() -> None:
    assert math.isclose(DEG_PER_RAD, 57.29577951308232)


@pytest.mark.slow
def test_cli_rom_test_refuses_a_gyro_scale_labelled_wrong(tmp_path: Path) -> None:
    import dataclasses

    from imuhip.sim.rom import write_rom_recording

    res = simulate_rom_session(RomSimParams())
    # the header says the thigh_r counts are deg/s-sized steps of a rad/s sensor: 57.3x too small
    sensors = tuple(
        dataclasses.replace(s, gyr_lsb_rad_s=s.gyr_lsb_rad_s / DEG_PER_RAD)
        if s.placement == "thigh_r"
        else s
        for s in res.meta.sensors
    )
    bad = dataclasses.replace(res, meta=dataclasses.replace(res.meta, sensors=sensors))
    write_rom_recording(res, tmp_path / "good")
    write_rom_recording(bad, tmp_path / "bad")

    def rom_test(name: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "imuhip", "rom-test", f"{name}.imrec"],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    good = rom_test("good")
    assert good.returncode == 0, good.stderr
    r = rom_test("bad")
    assert r.returncode == 1
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("imuhip rom-test: error: wrong gyroscope unit")
    assert "thigh_r: gyroscope reads about 57.3x too small" in lines[0]
    assert "thigh_l" not in lines[0]


def test_block_kernels_equal_numpy_block_means() -> None:
    from imuhip.ingest._units_kernels import block_all, block_means

    rng = np.random.default_rng(3)
    for n, q in ((0, 4), (7, 8), (1001, 8), (1000, 4), (999, 1)):
        x = rng.normal(size=(n, 3))
        m = n // q * q
        ref = x[:m].reshape(-1, q, 3).sum(axis=1) / q if m else np.empty((0, 3))
        got = block_means(x, q)
        assert got.shape == (n // q, 3)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-15)
        mask = rng.random(n) > 0.01
        ref_m = mask[:m].reshape(-1, q).all(axis=1) if m else np.empty(0, bool)
        np.testing.assert_array_equal(block_all(mask, q), ref_m)


def test_a_constant_gyroscope_while_walking_is_dead_not_a_unit_mistake(walk: dict) -> None:
    s = walk["thigh_l"]
    for value in (0.0, 0.013):  # all zeros (not streaming), or a stuck reading
        gyr = np.full_like(s.gyr_rad_s, value)
        r = check_gyro_units(s.acc_m_s2, gyr, 100.0)
        assert r.status == "dead", r.message
        assert r.suspected_factor is None
        assert "constant" in r.message and "57.3" not in r.message.split("(")[0]
    # a 57.3x-too-small gyroscope still varies: that stays a unit mistake
    small = check_gyro_units(s.acc_m_s2, s.gyr_rad_s / DEG_PER_RAD, 100.0)
    assert small.status == "suspected"
    dead = dict(walk)
    dead["thigh_l"] = SimSamples(
        *(
            np.zeros_like(s.gyr_rad_s) if f == "gyr_rad_s" else getattr(s, f)
            for f in SimSamples.__dataclass_fields__
        )
    )
    with pytest.raises(GyroUnitsError, match=r"gyroscope not working: thigh_l: .*constant"):
        check_session_gyro_units(_aligned(dead, {}))
