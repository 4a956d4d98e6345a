"""``imuhip rom-test`` writes the ROM report; ``imuhip compare`` puts sessions side by side.

End to end through the command line on simulated sessions with known truth: a ROM test (report
numbers against the simulator's truth, calibration provenance, "repeat the test" with exit 3
when a repetition is missing) and a follow-up of one subject whose right hip restriction was
lifted (the comparison shows the change; another subject's report is refused with exit 2).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def imuhip(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imuhip", *args],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_rom_test_report_matches_truth_and_records_calibration(tmp_path):
    from imuhip.ingest.recording import read_recording
    from imuhip.orientation.sensor_calibration import SensorCalibration, save_calibration

    rec = tmp_path / "rom"
    cp = imuhip(
        "simulate", "--scenario", "rom-seated", "--rom-ir-deg", "25,40", "--rom-er-deg", "40,35",
        "--sensors", "thigh_l,thigh_r", "--rate", "100", "--subject", "P01", "--seed", "2",
        str(rec),
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    truth = json.loads((tmp_path / "rom.truth.json").read_text())["rom"]
    cal_dir = tmp_path / "calibration"
    serial = read_recording(rec.with_suffix(".imrec")).meta.sensor("thigh_l").serial
    # a zero gyro bias: recorded as applied, the numbers stay those of the truth
    cal_file = save_calibration(
        SensorCalibration(serial, "2026-02-01T08:00:00+00:00", gyr_bias_rad_s=np.zeros(3)),
        cal_dir,
    )
    out = tmp_path / "report"
    cp = imuhip(
        "rom-test", str(rec.with_suffix(".imrec")), "--report-dir", str(out),
        "--calibration", str(cal_dir),
    )  # fmt: skip
    assert cp.returncode == 0, cp.stdout + cp.stderr
    assert f"report: {out / 'rom_report.html'}" in cp.stdout
    assert sorted(p.name for p in out.iterdir()) == ["rom_report.html", "rom_report.json"]
    doc = json.loads((out / "rom_report.json").read_text())
    assert doc["repeat_test"] is False
    for side in ("left", "right"):
        assert doc["sides"][side]["ir_deg"] == pytest.approx(truth[side]["ir_deg"], abs=1.5)
        assert doc["sides"][side]["er_deg"] == pytest.approx(truth[side]["er_deg"], abs=1.5)
    diff = truth["right"]["ir_mean_deg"] - truth["left"]["ir_mean_deg"]
    assert doc["asymmetry"]["hip_ir_rom_deg"]["right_minus_left"] == pytest.approx(diff, abs=1.5)
    assert doc["session"]["subject"] == "P01"
    left, right = doc["sensor_calibration"]["sensors"]
    assert (left["placement"], left["applied"], left["file"]) == ("thigh_l", True, f"{serial}.json")
    assert left["sha256"] == hashlib.sha256(cal_file.read_bytes()).hexdigest()
    assert left["date"] == "2026-02-01T08:00:00+00:00"
    assert right["applied"] is False and "no calibration file" in right["reason"]
    page = (out / "rom_report.html").read_text()
    assert "Hip rotation ROM test (seated 90/90)" in page and left["sha256"] in page
    assert f"{doc['sides']['left']['ir_mean_deg']:.1f} ±" in page


def test_missing_repetition_says_repeat_and_exits_3(tmp_path):
    from imuhip.sim.params import SimParams
    from imuhip.sim.rom import RomSimParams, simulate_rom_session, write_rom_recording

    sim = simulate_rom_session(
        RomSimParams(
            base=SimParams(sensors=("thigh_l", "thigh_r"), rate_hz=100, seed=5), repetitions=2
        )
    )
    write_rom_recording(sim, tmp_path / "short.imrec")
    cp = imuhip("rom-test", str(tmp_path / "short.imrec"))  # report beside the recording
    assert cp.returncode == 3, cp.stdout + cp.stderr
    assert "REPEAT: left IR: 2 of 3 repetitions measured" in cp.stdout
    assert "=> repeat the test" in cp.stdout
    doc = json.loads((tmp_path / "rom_report.json").read_text())
    assert doc["repeat_test"] is True
    assert sorted(doc["repeat_reasons"]) == sorted(
        f"{s} {k}: 2 of 3 repetitions measured" for s in ("left", "right") for k in ("IR", "ER")
    )
    assert "<b>Repeat the test.</b>" in (tmp_path / "rom_report.html").read_text()


def test_bad_report_dir_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("x")
    cp = imuhip("rom-test", str(tmp_path / "none.imrec"), "--report-dir", str(tmp_path / "file"))
    assert cp.returncode == 1 and "Traceback" not in cp.stderr
    assert "no such file" in cp.stderr
    rec = tmp_path / "r.imrec"
    rec.write_bytes(b"")
    cp = imuhip("rom-test", str(rec), "--report-dir", str(tmp_path / "file"))
    assert cp.returncode == 1 and "--report-dir" in cp.stderr and "Traceback" not in cp.stderr


def test_compare_shows_the_change_of_one_subject_and_refuses_another(tmp_path):
    from imuhip.pipeline import analyze_recording
    from imuhip.report.writer import write_report
    from imuhip.sim import SimParams, simulate_session, write_simulated_recording

    reports = []  # real reports of simulated walks (made in-process to keep the test short)
    for name, limit in (("before", 3.0), ("after", None)):
        sim = simulate_session(
            SimParams(
                duration_s=16.0,
                sensors=("pelvis", "thigh_l", "thigh_r"),
                hip_ir_limit_deg=(None, limit),
                subject="P01",
                seed=7,
            )
        )
        write_simulated_recording(sim, tmp_path / f"{name}.imrec")
        write_report(analyze_recording(tmp_path / f"{name}.imrec"), tmp_path / name)
        reports.append(tmp_path / name)
    out = tmp_path / "cmp"
    cp = imuhip("compare", str(reports[0]), str(reports[1] / "report.json"), "--out", str(out))
    assert cp.returncode == 0, cp.stderr
    doc = json.loads((out / "compare.json").read_text())
    assert [s["source"] for s in doc["sessions"]] == [
        str(reports[0] / "report.json"),
        str(reports[1] / "report.json"),
    ]
    before = json.loads((reports[0] / "report.json").read_text())
    after = json.loads((reports[1] / "report.json").read_text())
    key = "hip_rotation_excursion_deg"
    (ch,) = doc["changes_from_first"][f"{key}.right"]
    expect = (
        after["metrics"]["per_side"]["right"][key]["mean"]
        - before["metrics"]["per_side"]["right"][key]["mean"]
    )
    assert ch["change"] == pytest.approx(expect) and ch["change"] > 2.0 and ch["significant"]
    (ch_a,) = doc["changes_from_first"][f"{key}.asymmetry"]
    a0 = before["asymmetry"][key]["right_minus_left"]
    assert a0 < -2.0 and ch_a["change"] == pytest.approx(
        after["asymmetry"][key]["right_minus_left"] - a0
    )
    assert "S2 vs S1: Hip rotation excursion, right (°) changed by +" in cp.stdout
    assert "Excursion asymmetry, right − left (°)" in cp.stdout
    assert f"comparison: {out / 'compare.html'}" in cp.stdout
    assert sorted(p.name for p in out.iterdir()) == ["compare.html", "compare.json"]

    other = tmp_path / "other"
    other.mkdir()
    doc_other = dict(after, session={**after["session"], "subject": "P02"})
    (other / "report.json").write_text(json.dumps(doc_other))
    cp = imuhip("compare", str(reports[0]), str(other), "--out", str(tmp_path / "mixed"))
    assert cp.returncode == 2
    assert cp.stderr.startswith("usage: imuhip compare")
    assert "different subjects (P01: " in cp.stderr and "P02: " in cp.stderr
    assert "--force" in cp.stderr and "Traceback" not in cp.stderr
    assert not (tmp_path / "mixed" / "compare.json").exists()
    cp = imuhip("compare", str(reports[0]), str(other), "--out", str(tmp_path / "mixed"), "--force")
    assert cp.returncode == 0, cp.stderr
    cp = imuhip("compare", str(reports[0]), "--out", str(tmp_path / "one"))
    assert cp.returncode == 2 and "at least two reports" in cp.stderr
