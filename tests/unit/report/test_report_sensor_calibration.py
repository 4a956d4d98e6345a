"""report.json records which sensor-calibration files the analysis applied (name, sha256, date)."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from imuhip.orientation.sensor_calibration import SensorCalibration, save_calibration
from imuhip.pipeline import AnalysisConfig
from imuhip.report.writer import report_dict


@pytest.mark.slow
def test_applied_calibration_files_are_in_report_json(tmp_path):
    from imuhip.pipeline import analyze_recording
    from imuhip.sim import SimParams, simulate_session, write_simulated_recording

    sim = simulate_session(SimParams(duration_s=14.0, sensors=("pelvis", "thigh_l", "thigh_r")))
    rec = tmp_path / "walk.imrec"
    write_simulated_recording(sim, rec)
    serial = {s.placement: s.serial for s in sim.meta.sensors}
    cal_dir = tmp_path / "calibration"
    path = save_calibration(
        SensorCalibration(
            serial["thigh_r"], "2026-04-01T07:00:00+00:00", gyr_bias_rad_s=np.zeros(3)
        ),
        cal_dir,
    )
    res = analyze_recording(rec, AnalysisConfig(calibration_folder=str(cal_dir)))
    sc = report_dict(res)["sensor_calibration"]
    assert sc["folder"] == str(cal_dir)
    by = {e["placement"]: e for e in sc["sensors"]}
    assert set(by) == {"pelvis", "thigh_l", "thigh_r"}
    assert by["thigh_r"]["applied"] is True
    assert by["thigh_r"]["file"] == f"{serial['thigh_r']}.json"
    assert by["thigh_r"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert by["thigh_r"]["date"] == "2026-04-01T07:00:00+00:00"
    assert not by["pelvis"]["applied"] and not by["thigh_l"]["applied"]
    res_none = analyze_recording(rec)
    assert report_dict(res_none)["sensor_calibration"] is None


def test_orientation_only_session_says_not_applied(tmp_path):
    from imuhip.pipeline import analyze_orientations
    from tests.unit.report.test_report import _orientations

    ori, segcal, meta = _orientations(duration_s=12.0, lumbar=False)
    res = analyze_orientations(
        ori, meta, AnalysisConfig(calibration_folder=str(tmp_path)), segcal=segcal
    )
    sc = report_dict(res)["sensor_calibration"]
    assert sc == {"folder": str(tmp_path), "sensors": [], "note": "not applied: no sensor samples"}
