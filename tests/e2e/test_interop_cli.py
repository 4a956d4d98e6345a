"""``imuhip import`` and the interop formats of ``imuhip export``, end to end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imuhip.interop.generic_csv import write_sensor_csv
from imuhip.interop.motion_bids import check_motion_bids
from imuhip.interop.opensim_sto import read_orientations_sto
from imuhip.interop.orientation_file import load_orientation_session


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imuhip", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _csv_session(folder: Path) -> dict[str, dict[str, np.ndarray]]:
    rng = np.random.default_rng(11)
    n, rate = 600, 100.0
    t = 3.0 + np.arange(n) / rate
    truth = {}
    for k, p in enumerate(("pelvis", "thigh_l", "thigh_r")):
        acc = rng.normal(0, 3, (n, 3)) + np.array([0, 0, 9.81])
        gyr = rng.normal(0, 2, (n, 3)) + 0.1 * k
        write_sensor_csv(folder / f"{p}.csv", t, acc, gyr, rate_hz=rate)
        truth[p] = {"acc": acc, "gyr": gyr}
    return truth


@pytest.mark.slow
def test_csv_import_export_round_trip_reproduces_samples(tmp_path: Path) -> None:
    truth = _csv_session(tmp_path)
    args = [f"--sensor={p}={p}.csv" for p in truth]
    r = _run("import", "csv", *args, "-o", "s.imrec", "--subject", "S7", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run("export", "s.imrec", "--format", "csv", "--out", "ex", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "ex" / "meta.json").read_text())
    for p, want in truth.items():
        df = pd.read_csv(tmp_path / "ex" / f"s_{p}.csv")
        sm = next(s for s in meta["sensors"] if s["placement"] == p)
        assert len(df) == 600 and df["valid"].all()
        acc = df[["acc_x_m_s2", "acc_y_m_s2", "acc_z_m_s2"]].to_numpy()
        gyr = df[["gyr_x_rad_s", "gyr_y_rad_s", "gyr_z_rad_s"]].to_numpy()
        assert np.max(np.abs(acc - want["acc"])) <= sm["acc_lsb_m_s2"] / 2 + 1e-9
        assert np.max(np.abs(gyr - want["gyr"])) <= sm["gyr_lsb_rad_s"] / 2 + 1e-9
        np.testing.assert_allclose(np.diff(df["t_s"]), 0.01, atol=1e-6)
    r = _run("export", "s.imrec", "--format", "sto", "--out", "ex", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    sto = read_orientations_sto(tmp_path / "ex" / "s_orientations.sto")
    assert set(sto.q) == {"pelvis_imu", "femur_l_imu", "femur_r_imu"}
    assert sto.rate_hz == 100.0 and abs(len(sto.t_s) - 600) <= 2
    np.testing.assert_allclose(np.linalg.norm(sto.q["pelvis_imu"], axis=1), 1.0, atol=1e-8)
    # the re-exported tables import again (generic CSV reader accepts the export's columns)
    r = _run("import", "csv", "--sensor=pelvis=ex/s_pelvis.csv", "-o", "again.imrec", cwd=tmp_path)
    assert r.returncode == 0, r.stderr


def test_bad_csv_gives_one_line_naming_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_text("t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2\n0,0,0,9\n0,0,0,9\n")
    r = _run("import", "csv", "--sensor", "pelvis=bad.csv", "-o", "x.imrec", cwd=tmp_path)
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "bad.csv: line 3, column t_s" in lines[0] and "does not increase" in lines[0]
    assert not (tmp_path / "x.imrec").exists()


@pytest.mark.slow
def test_opensense_import_export_sto_and_bids(tmp_path: Path, shared_data: Path) -> None:
    mapping = shared_data / "opensense" / "myIMUMappings.xml"
    r = _run("import", "xsens", "--mapping", str(mapping), "-o", "os", "--summary", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "chest" in r.stderr  # torso sensor imported as lumbar is announced
    assert "initial contacts" in r.stdout
    f = tmp_path / "os.imori.npz"
    ori, _ = load_orientation_session(f)
    r = _run("export", str(f), "--format", "sto", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    sto = read_orientations_sto(tmp_path / "out" / "os_orientations.sto")
    assert set(sto.q) == {
        "pelvis_imu",
        "femur_l_imu",
        "femur_r_imu",
        "tibia_l_imu",
        "tibia_r_imu",
        "torso_imu",
    }
    np.testing.assert_allclose(sto.q["femur_r_imu"], ori.q_world_sensor["thigh_r"], atol=1e-9)
    np.testing.assert_allclose(sto.t_s, ori.t_s - ori.t_s[0], atol=1e-6)
    r = _run("export", str(f), "--format", "bids", "--out", "bids", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert check_motion_bids(tmp_path / "bids") == []
    r = _run("export", str(f), "--format", "strides-csv", "--out", "out", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    strides = pd.read_csv(tmp_path / "out" / "os_strides.csv")
    assert {"hip_rotation_excursion_deg", "side", "exclusion"} <= set(strides.columns)
    r = _run("export", str(f), "--format", "csv", "--out", "out", cwd=tmp_path)
    assert r.returncode == 1 and "not available for orientation sessions" in r.stderr
    r = _run("analyze", str(f), "--out", "rep", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    assert report["quality"]["orientation_file"].endswith("os.imori.npz")
    assert report["gait"]["events"]["left"]["source"] == "shank_orientation"
    assert report["gait"]["events"]["left"]["n_initial_contacts"] >= 8
