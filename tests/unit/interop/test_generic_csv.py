from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import GRAVITY_M_S2
from imuhip.errors import ImportFormatError
from imuhip.interop.generic_csv import CsvOptions, read_sensor_csv, write_sensor_csv


def _signals(n: int = 300, rate: float = 100.0, seed: int = 0):
    rng = np.random.default_rng(seed)
    t = 2.0 + np.arange(n) / rate
    acc = rng.normal(0, 2, (n, 3)) + np.array([0, 0, 9.81])
    gyr = rng.normal(0, 1.5, (n, 3))
    mag = rng.normal(0, 10, (n, 3)) + np.array([20, 0, -40])
    return t, acc, gyr, mag


def test_write_read_round_trip_reproduces_samples(tmp_path: Path) -> None:
    t, acc, gyr, mag = _signals()
    f = write_sensor_csv(tmp_path / "p.csv", t, acc, gyr, mag, rate_hz=100)
    s = read_sensor_csv(f, "pelvis")
    assert s.rate_hz == 100
    np.testing.assert_array_equal(s.sample_idx, np.arange(len(t)))
    np.testing.assert_allclose(s.t_s, t, rtol=0, atol=1e-8)
    np.testing.assert_allclose(s.acc_m_s2, acc, rtol=1e-8)
    np.testing.assert_allclose(s.gyr_rad_s, gyr, rtol=1e-8)
    np.testing.assert_allclose(s.mag_ut, mag, rtol=1e-8)


def test_unit_variants_in_column_names(tmp_path: Path) -> None:
    f = tmp_path / "u.csv"
    f.write_text(
        "t_ms,acc_x_g,acc_y_g,acc_z_g,gyr_x_deg_s,gyr_y_deg_s,gyr_z_deg_s,mag_x_nt,mag_y_nt,mag_z_nt\n"
        "0,0,0,1,90,0,0,20000,0,-40000\n"
        "10,0.5,0,1,0,-180,0,20000,0,-40000\n"
        "20,0,0,1,0,0,45,20000,0,-40000\n"
    )
    s = read_sensor_csv(f, "thigh_l")
    assert s.rate_hz == pytest.approx(100.0)
    np.testing.assert_allclose(s.t_s, [0, 0.01, 0.02])
    np.testing.assert_allclose(s.acc_m_s2[1], [0.5 * GRAVITY_M_S2, 0, GRAVITY_M_S2])
    np.testing.assert_allclose(s.gyr_rad_s[:, 0], [math.pi / 2, 0, 0])
    np.testing.assert_allclose(s.gyr_rad_s[1, 1], -math.pi)
    np.testing.assert_allclose(s.mag_ut[0], [20, 0, -40])


def test_bare_columns_with_declared_units_and_rate(tmp_path: Path) -> None:
    f = tmp_path / "b.csv"
    f.write_text(
        "# rate_hz: 50\n# acc_unit: g\n"
        "acc_x;acc_y;acc_z;gyr_x;gyr_y;gyr_z\n"
        "0;0;1;1;2;3\n0;0;1;1;2;3\n0;0;1;1;2;3\n"
    )
    with pytest.raises(
        ImportFormatError, match=r"b\.csv: columns gyr_x, gyr_y, gyr_z carry no unit"
    ):
        read_sensor_csv(f, "pelvis")
    s = read_sensor_csv(f, "pelvis", CsvOptions(gyr_unit="deg/s"))
    assert s.rate_hz == 50
    np.testing.assert_allclose(s.t_s, [0, 0.02, 0.04])
    np.testing.assert_allclose(s.acc_m_s2[0, 2], GRAVITY_M_S2)
    np.testing.assert_allclose(s.gyr_rad_s[0], np.radians([1, 2, 3]))
    assert s.mag_ut is None


def test_missing_accelerometer_columns_named(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("t_s,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s\n0,0,0,0\n0.01,0,0,0\n")
    with pytest.raises(
        ImportFormatError, match=r"m\.csv: missing accelerometer columns: expected acc_x_m_s2"
    ):
        read_sensor_csv(f, "pelvis")


def test_incomplete_axis_set_named(tmp_path: Path) -> None:
    f = tmp_path / "i.csv"
    f.write_text("t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s\n0,0,0,9,0,0\n")
    with pytest.raises(ImportFormatError, match=r"i\.csv: incomplete gyr columns"):
        read_sensor_csv(f, "pelvis")


def test_no_time_and_no_rate(tmp_path: Path) -> None:
    f = tmp_path / "n.csv"
    f.write_text("acc_x_m_s2,acc_y_m_s2,acc_z_m_s2\n0,0,9\n0,0,9\n")
    with pytest.raises(ImportFormatError, match=r"n\.csv: no time column .* --rate-hz"):
        read_sensor_csv(f, "pelvis")


def test_non_monotonic_time_names_line(tmp_path: Path) -> None:
    t, acc, gyr, _ = _signals(20)
    t[7] = t[5]  # comment line 1, header line 2: data row 7 is line 10
    f = write_sensor_csv(tmp_path / "t.csv", t, acc, gyr, rate_hz=100)
    with pytest.raises(
        ImportFormatError, match=r"t\.csv: line 10, column t_s: time .* does not increase"
    ):
        read_sensor_csv(f, "pelvis")


def test_non_number_names_line_and_column(tmp_path: Path) -> None:
    f = tmp_path / "x.csv"
    f.write_text("t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2\n0,0,0,9\n0.01,0,abc,9\n0.02,0,0,9\n")
    with pytest.raises(
        ImportFormatError, match=r"x\.csv: line 3, column acc_y_m_s2: expected a number, got 'abc'"
    ):
        read_sensor_csv(f, "pelvis")


def test_short_nan_run_is_a_gap_long_run_refused(tmp_path: Path) -> None:
    t, acc, gyr, _ = _signals(200)
    valid = np.ones(200, bool)
    valid[50:53] = False
    f = write_sensor_csv(tmp_path / "g.csv", t, acc, gyr, rate_hz=100, valid=valid)
    s = read_sensor_csv(f, "pelvis")
    assert len(s) == 197
    np.testing.assert_array_equal(s.sample_idx, np.flatnonzero(valid))
    np.testing.assert_allclose(s.acc_m_s2, acc[valid], rtol=1e-8)
    valid[100:170] = False  # 0.7 s > max_gap_s 0.5
    f = write_sensor_csv(tmp_path / "g2.csv", t, acc, gyr, rate_hz=100, valid=valid)
    with pytest.raises(
        ImportFormatError,
        match=r"g2\.csv: lines 103-172: 70 consecutive rows with empty or NaN values "
        r"\(columns acc_x_m_s2",
    ):
        read_sensor_csv(f, "pelvis")
    s = read_sensor_csv(f, "pelvis", CsvOptions(max_gap_s=1.0))
    assert len(s) == 200 - 3 - 70


def test_time_gap_keeps_sample_index(tmp_path: Path) -> None:
    t, acc, gyr, _ = _signals(100)
    keep = np.ones(100, bool)
    keep[40:45] = False  # rows absent from the file
    f = write_sensor_csv(tmp_path / "h.csv", t[keep], acc[keep], gyr[keep])
    s = read_sensor_csv(f, "pelvis")
    np.testing.assert_array_equal(s.sample_idx, np.flatnonzero(keep))


def test_mixed_rates_in_one_file(tmp_path: Path) -> None:
    t = np.concatenate([np.arange(50) / 100.0, 0.5 + np.arange(1, 50) / 60.0])
    n = len(t)
    f = write_sensor_csv(tmp_path / "r.csv", t, np.zeros((n, 3)), np.zeros((n, 3)))
    with pytest.raises(
        ImportFormatError,
        match=r"r\.csv: line \d+, column t_s: step of .* mixed or irregular rates",
    ):
        read_sensor_csv(f, "pelvis")


def test_declared_rate_must_agree(tmp_path: Path) -> None:
    t, acc, gyr, _ = _signals(50)
    f = write_sensor_csv(tmp_path / "d.csv", t, acc, gyr, rate_hz=200)
    with pytest.raises(
        ImportFormatError, match=r"d\.csv: declared rate 200 Hz but column t_s steps at 100 Hz"
    ):
        read_sensor_csv(f, "pelvis")


def test_unknown_unit_and_placement(tmp_path: Path) -> None:
    t, acc, gyr, _ = _signals(10)
    f = write_sensor_csv(tmp_path / "k.csv", t, acc, gyr)
    with pytest.raises(ImportFormatError, match="unknown placement 'knee'"):
        read_sensor_csv(f, "knee")
    g = tmp_path / "k2.csv"
    g.write_text("# acc_unit: furlong\nt,acc_x,acc_y,acc_z\n0,0,0,1\n1,0,0,1\n")
    with pytest.raises(ImportFormatError, match=r"k2\.csv: acc_unit: unknown acc unit 'furlong'"):
        read_sensor_csv(g, "pelvis")


def test_unit_in_parentheses_headers(tmp_path: Path) -> None:
    """x-io Fusion style: ``Gyroscope X (deg/s)``, ``Accelerometer X (g)``, ``Time (s)``."""
    t, acc, gyr, mag = _signals(120)
    f = tmp_path / "fusion.csv"
    head = ["Time (s)"]
    head += [f"Gyroscope {a} (deg/s)" for a in "XYZ"]
    head += [f"Accelerometer {a} (g)" for a in "XYZ"]
    head += [f"Magnetometer {a} (uT)" for a in "XYZ"]
    rows = np.column_stack([t, np.degrees(gyr), acc / GRAVITY_M_S2, mag])
    np.savetxt(f, rows, delimiter=",", header=",".join(head), comments="", fmt="%.9g")
    s = read_sensor_csv(f, "pelvis")
    np.testing.assert_allclose(s.acc_m_s2, acc, rtol=1e-7, atol=1e-7)
    np.testing.assert_allclose(s.gyr_rad_s, gyr, rtol=1e-7, atol=1e-9)
    assert s.mag_ut is not None
    np.testing.assert_allclose(s.mag_ut, mag, rtol=1e-7)
    assert s.rate_hz == 100.0
    # a unit that is not one of ours is named, not guessed
    bad = tmp_path / "bad.csv"
    bad.write_text(f.read_text().replace("(deg/s)", "(furlong/s)"), encoding="utf-8")
    with pytest.raises(ImportFormatError, match=r"gyr columns .* unknown or differing units"):
        read_sensor_csv(bad, "pelvis")


def test_jittered_timestamps_of_one_rate_are_placed_on_the_grid(tmp_path: Path) -> None:
    """Coarse-clock stamps (10.08 ms steps with a 7.56 ms one every 31, as x-io Fusion writes)
    and random ±8 % jitter: the nominal rate is inferred, every sample kept in order."""
    n = 3000
    true_t = np.arange(n) * 0.01
    coarse = np.floor(true_t / 0.00252) * 0.00252  # a 2.52 ms clock tick
    jitter = true_t + np.random.default_rng(2).uniform(-0.0008, 0.0008, n)
    for name, t in (("coarse", coarse), ("jitter", jitter)):
        _, acc, gyr, _ = _signals(n)
        f = write_sensor_csv(tmp_path / f"{name}.csv", t, acc, gyr)
        s = read_sensor_csv(f, "pelvis")
        assert s.rate_hz == 100.0, name
        np.testing.assert_array_equal(s.sample_idx, np.arange(n))
        np.testing.assert_allclose(s.acc_m_s2, acc, rtol=1e-8)


def test_big_time_jump_is_refused_small_one_is_a_gap(tmp_path: Path) -> None:
    t, acc, gyr, _ = _signals(300)
    t = t.copy()
    t[150:] += 2.0  # 2 s without samples
    f = write_sensor_csv(tmp_path / "j.csv", t, acc, gyr)
    with pytest.raises(ImportFormatError, match=r"j\.csv: line \d+, column t_s: time jumps by"):
        read_sensor_csv(f, "pelvis")
    s = read_sensor_csv(f, "pelvis", CsvOptions(max_gap_s=3.0))
    assert s.sample_idx[150] - s.sample_idx[149] == 201


def test_a_bare_time_column_in_milliseconds_is_not_read_as_seconds(tmp_path: Path) -> None:
    """A bare ``time`` column is read in seconds unless declared. Before, one in milliseconds
    at 100 Hz imported as a 0.1-Hz recording ("25020 s"), and the analysis found no valid stride
    with no word on why; a rate outside 5-5000 Hz is now an error naming the likely unit, and
    declaring it reads the file at 100 Hz. A seconds column declared as ms (100 kHz) likewise."""
    t, acc, gyr, _ = _signals()
    rows = "\n".join(
        f"{ti:.3f},{a[0]},{a[1]},{a[2]},{g[0]},{g[1]},{g[2]}"
        for ti, a, g in zip((t - t[0]) * 1000.0, acc, gyr, strict=True)
    )
    f = tmp_path / "ms.csv"
    f.write_text(
        "time,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s\n" + rows
    )
    with pytest.raises(
        ImportFormatError,
        match=r"ms\.csv: column time steps by a median 10 s, i\.e\. 0\.1 Hz, outside the "
        r"5-5000 Hz of body-worn IMUs: the column looks like ms "
        r"\(--time-unit ms, or name it t_ms\)",
    ):
        read_sensor_csv(f, "pelvis")
    s = read_sensor_csv(f, "pelvis", CsvOptions(time_unit="ms"))
    assert s.rate_hz == pytest.approx(100.0)
    np.testing.assert_allclose(s.t_s[:3], [0.0, 0.01, 0.02])
    sec = tmp_path / "s.csv"
    rows_s = "\n".join(
        f"{ti:.5f},{a[0]},{a[1]},{a[2]},{g[0]},{g[1]},{g[2]}"
        for ti, a, g in zip(t - t[0], acc, gyr, strict=True)
    )
    sec.write_text(
        "t,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s\n" + rows_s
    )
    with pytest.raises(ImportFormatError, match=r"100000 Hz.*looks like s \(--time-unit s"):
        read_sensor_csv(sec, "pelvis", CsvOptions(time_unit="ms"))
    assert read_sensor_csv(sec, "pelvis").rate_hz == pytest.approx(100.0)
