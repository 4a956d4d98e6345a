"""``imuhip import`` and the interop formats of ``imuhip export``, end to end."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imuhip.interop.generic_csv import write_sensor_csv
from imuhip.interop.motion_bids import check_motion_bids
from imuhip.interop.opensim_sto import read_orientations_sto
from imuhip.interop.orientation_file import load_orientation_session
from tests.cli import run_cli
from tests.unit.interop._bids_validators import legacy_errors, validator3_errors


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


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


def test_opensense_chest_sensor_imported_as_lumbar_makes_no_lumbar_flag(
    tmp_path: Path, shared_data: Path
) -> None:
    """OpenSense's torso_imu sits on the chest and is imported as ``lumbar``. Before, analyze
    flagged "Lumbar rotation range = 18.9 deg is above the gait norm 3-16 deg" from it: trunk
    rotation against a lumbar norm. Now the summary, the report's first screen and report.json
    say the sensor is off site; its ranges are shown, not compared, and make no flag."""
    mapping = shared_data / "opensense" / "myIMUMappings.xml"
    r = _run("import", "xsens", "--mapping", str(mapping), "-o", "os", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    r = _run("analyze", "os.imori.npz", "--out", "out", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "SITE: lumbar sensor on the chest (as imported)" in r.stdout
    assert "lumbar rotation 18.9° (sensor off site: not compared with the norm)" in r.stdout
    rep = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert rep["quality"]["off_site_sensors"] == {"lumbar": "chest"}
    assert rep["metrics"]["trunk"]["lumbar_rotation_range_deg"]["n"] >= 3  # comparable otherwise
    assert not [f for f in rep["flags"] if f["metric"].startswith("lumbar")]
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Sensor site: lumbar sensor on the chest" in page
    assert "3–16 (not compared: sensor off site)" in page


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
        "calcn_r_imu",
        "calcn_l_imu",
    }
    # written in the Xsens world OpenSim's reader uses (tests/e2e/test_opensim_roundtrip.py)
    sto_enu = read_orientations_sto(tmp_path / "out" / "os_orientations.sto", world="xsens_nwu")
    np.testing.assert_allclose(sto_enu.q["femur_r_imu"], ori.q_world_sensor["thigh_r"], atol=1e-9)
    np.testing.assert_allclose(sto.t_s, ori.t_s, atol=1e-6)  # the session clock
    r = _run("export", str(f), "--format", "bids", "--out", "bids", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    bids = tmp_path / "bids"
    assert check_motion_bids(bids) == []
    assert validator3_errors(bids) == [] and legacy_errors(bids) == []
    # "Start Time: Unknown" in the Xsens files: no acquisition time, not the import time
    scans = (bids / "sub-imported" / "sub-imported_scans.tsv").read_text().splitlines()
    assert scans[1].endswith("_motion.tsv\tn/a")
    side = json.loads(next(bids.rglob("*_motion.json")).read_text())
    assert (side["Manufacturer"], side["ManufacturersModelName"]) == ("Xsens", "MTw")
    assert "firmware 4.0.2" in side["SoftwareVersions"]
    chans = pd.read_csv(next(bids.rglob("*_channels.tsv")), sep="\t")
    torso = chans[chans["name"] == "chest_acc_x"]  # the torso_imu is on the chest
    assert torso["placement"].tolist() == ["chest (analysed as imuhip placement 'lumbar')"]
    assert not chans["name"].str.startswith("lumbar").any()
    assert {"trunk_flexion", "hip_r_internal_rotation"} <= set(chans["name"])
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
    # the calcaneus sensors are imported as feet, so events come from the foot sensors
    assert report["gait"]["events"]["left"]["source"] == "foot_orientation"
    assert report["gait"]["events"]["left"]["n_initial_contacts"] >= 8


@pytest.mark.slow
def test_impossible_csv_values_are_named_and_change_no_flag(tmp_path: Path) -> None:
    """A 1e4 rad/s gyro row (a false asymmetry flag before) and a 1e308 acc value (zeroed the
    rest of the channel: "data looks like g") are quarantined with a note; the flags and the hip
    rotation of the analysis equal the clean file's. (1e5 m/s²: test_plausibility.)"""
    rec = Path(__file__).resolve().parents[2] / "recordings" / "typical.imrec"
    r = _run("export", str(rec), "--format", "csv", "--out", "ex", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    clean = {p: tmp_path / "ex" / f"typical_{p}.csv" for p in ("pelvis", "thigh_l", "thigh_r")}
    bad = {**clean, "thigh_l": tmp_path / "bad_l.csv", "thigh_r": tmp_path / "bad_r.csv"}
    df = pd.read_csv(clean["thigh_r"])
    df.loc[2000, "gyr_z_rad_s"] = 1e4
    df.to_csv(bad["thigh_r"], index=False)
    df = pd.read_csv(clean["thigh_l"])
    df.loc[1500, "acc_y_m_s2"] = 1e308
    df.to_csv(bad["thigh_l"], index=False)
    out = {}
    for name, files in (("clean", clean), ("bad", bad)):
        args = [f"--sensor={p}={f}" for p, f in files.items()]
        r = _run("import", "csv", *args, "-o", f"{name}.imrec", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        if name == "bad":
            notes = [ln for ln in r.stderr.splitlines() if "quarantined as a gap" in ln]
            assert len(notes) == 2, r.stderr
            assert any("bad_r.csv: 1 gyroscope sample(s)" in n and "1e+04" in n for n in notes)
            assert any("bad_l.csv: 1 accelerometer sample(s)" in n and "1e+308" in n for n in notes)
        else:
            assert "quarantined" not in r.stderr
        r = _run("analyze", f"{name}.imrec", "--out", name, "--quiet", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        out[name] = json.loads((tmp_path / name / "report.json").read_text())
    codes = {k: sorted((f["code"], f.get("side")) for f in out[k]["flags"]) for k in out}
    assert codes["bad"] == codes["clean"]
    for side in ("left", "right"):
        exc = {
            k: out[k]["metrics"]["per_side"][side]["hip_rotation_excursion_deg"]["mean"]
            for k in out
        }
        assert exc["bad"] == pytest.approx(exc["clean"], abs=0.5), (side, exc)
    assert "looks like g" not in json.dumps(out["bad"]["quality"])
