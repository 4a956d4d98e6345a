"""Impossible imported samples become counted gaps, or the file is refused; never numbers."""

from __future__ import annotations

import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imuhip.errors import ImportFormatError
from imuhip.interop._common import ImportedSensor
from imuhip.interop.plausibility import LIMITS, quarantine_impossible
from tests.cli import run_cli

REPO = Path(__file__).resolve().parents[3]


def _sensor(n: int = 1000) -> ImportedSensor:
    rng = np.random.default_rng(3)
    return ImportedSensor(
        placement="thigh_r",
        rate_hz=100.0,
        sample_idx=np.arange(n, dtype=np.int64),
        t_s=np.arange(n) / 100.0,
        acc_m_s2=rng.normal(0, 2, (n, 3)) + np.array([0.0, 0.0, 9.81]),
        gyr_rad_s=rng.normal(0, 1, (n, 3)),
        mag_ut=None,
        q_world_sensor=None,
        source="r.csv",
    )


def test_clean_sensor_is_returned_unchanged():
    s = _sensor()
    assert quarantine_impossible(s) is s


def test_one_huge_acceleration_row_becomes_a_one_sample_gap():
    s = _sensor()
    s.acc_m_s2[417, 1] = 1e5
    q = quarantine_impossible(s)
    assert len(q) == len(s) - 1
    assert 417 not in set(q.sample_idx.tolist())
    assert np.array_equal(q.acc_m_s2, np.delete(s.acc_m_s2, 417, axis=0))
    assert np.array_equal(q.t_s, np.delete(s.t_s, 417))
    (note,) = [n for n in q.notes if "quarantined" in n]
    assert "1 accelerometer sample" in note and "sample 417" in note and "1e+05" in note
    assert note.startswith("r.csv:")


def test_non_finite_and_overflowing_values_are_quarantined():
    s = _sensor()
    s.gyr_rad_s[5] = [np.inf, 0, 0]
    s.gyr_rad_s[6] = [np.nan, 0, 0]
    s.gyr_rad_s[7] = [1e308, 0, 0]
    q = quarantine_impossible(s)
    assert len(q) == len(s) - 3
    assert set(range(5, 8)).isdisjoint(q.sample_idx.tolist())
    # the rest of the channel keeps its values (one bad value never zeroes or rescales it)
    assert np.array_equal(q.gyr_rad_s, np.delete(s.gyr_rad_s, [5, 6, 7], axis=0))


def test_values_at_the_limit_are_kept():
    s = _sensor()
    s.gyr_rad_s[10, 2] = LIMITS["gyr_rad_s"]
    assert quarantine_impossible(s) is s


def test_many_impossible_samples_refuse_the_file_naming_the_unit():
    s = _sensor()
    # a deg/s column read as rad/s: every fast swing is 57x too large
    s.gyr_rad_s[:50] *= math.degrees(1.0) * 200
    with pytest.raises(ImportFormatError, match=r"r\.csv: .*gyroscope.*deg/s values in a rad/s"):
        quarantine_impossible(s)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd)


@pytest.mark.slow
def test_one_bad_csv_row_changes_no_clinical_number(tmp_path: Path) -> None:
    """One 1e5 m/s² row gave hip rotation 89 ± 129° and two false flags before quarantine."""
    rec = REPO / "recordings" / "typical.imrec"
    r = _cli("export", str(rec), "--format", "csv", "--out", "ex", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    files = {p: tmp_path / "ex" / f"typical_{p}.csv" for p in ("pelvis", "thigh_l", "thigh_r")}
    assert all(f.exists() for f in files.values()), sorted((tmp_path / "ex").iterdir())
    bad = tmp_path / "bad_thigh_r.csv"
    df = pd.read_csv(files["thigh_r"])
    df.loc[len(df) // 2, "acc_x_m_s2"] = 1e5
    df.to_csv(bad, index=False)
    out = {}
    for name, right in (("clean", files["thigh_r"]), ("bad", bad)):
        r = _cli(
            "import",
            "csv",
            f"--sensor=pelvis={files['pelvis']}",
            f"--sensor=thigh_l={files['thigh_l']}",
            f"--sensor=thigh_r={right}",
            "-o",
            f"{name}.imrec",
            cwd=tmp_path,
        )
        assert r.returncode == 0, r.stderr
        if name == "bad":
            assert "quarantined as a gap" in r.stderr and "1 accelerometer sample" in r.stderr
        r = _cli("analyze", f"{name}.imrec", "--out", name, "--quiet", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        out[name] = json.loads((tmp_path / name / "report.json").read_text())
    for side in ("left", "right"):
        exc = {
            k: out[k]["metrics"]["per_side"][side]["hip_rotation_excursion_deg"]["mean"]
            for k in out
        }
        assert exc["bad"] == pytest.approx(exc["clean"], abs=0.5), (side, exc)
    codes = {k: sorted((f["code"], f.get("side")) for f in out[k]["flags"]) for k in out}
    assert codes["bad"] == codes["clean"]
