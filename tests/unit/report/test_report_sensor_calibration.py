"""The sensor-calibration files the analysis applied (name, sha256, date): in report.json and in
report.html's "Data and calibration" section, with the sensors; sessions without them say so."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from imuhip.orientation.sensor_calibration import SensorCalibration, save_calibration
from imuhip.pipeline import AnalysisConfig, SessionResult, analyze_orientations
from imuhip.report.html import render_html
from imuhip.report.writer import report_dict, strides_table, write_report


@dataclass(frozen=True)
class _Calibrated:
    rec: Path
    serial: dict[str, str]
    rate_hz: dict[str, float]
    cal_dir: Path
    path: Path  # the one calibration file (thigh_r)
    res: SessionResult


@pytest.fixture(scope="module")
def calibrated(tmp_path_factory: pytest.TempPathFactory) -> _Calibrated:
    """A simulated walk analysed with a calibration folder holding a file for thigh_r only."""
    from imuhip.pipeline import analyze_recording
    from imuhip.sim import SimParams, simulate_session, write_simulated_recording

    tmp = tmp_path_factory.mktemp("cal")
    sim = simulate_session(SimParams(duration_s=14.0, sensors=("pelvis", "thigh_l", "thigh_r")))
    rec = tmp / "walk.imrec"
    write_simulated_recording(sim, rec)
    serial = {s.placement: s.serial for s in sim.meta.sensors}
    cal_dir = tmp / "calibration"
    path = save_calibration(
        SensorCalibration(
            serial["thigh_r"], "2026-04-01T07:00:00+00:00", gyr_bias_rad_s=np.zeros(3)
        ),
        cal_dir,
    )
    res = analyze_recording(rec, AnalysisConfig(calibration_folder=str(cal_dir)))
    rate = {s.placement: s.rate_hz for s in sim.meta.sensors}
    return _Calibrated(rec, serial, rate, cal_dir, path, res)


def _section(page: str) -> str:
    """The text of the "Data and calibration" section (up to the next heading)."""
    assert page.count("<h2>Data and calibration</h2>") == 1
    return page.split("<h2>Data and calibration</h2>", 1)[1].split("<h2>", 1)[0]


def _row(section: str, placement: str) -> str:
    rows = [r for r in re.findall(r"<tr>(.*?)</tr>", section) if f">{placement}<" in r]
    assert len(rows) == 1, rows
    return rows[0]


@pytest.mark.slow
def test_applied_calibration_files_are_in_report_json(calibrated: _Calibrated) -> None:
    c = calibrated
    sc = report_dict(c.res)["sensor_calibration"]
    assert sc["folder"] == str(c.cal_dir)
    by = {e["placement"]: e for e in sc["sensors"]}
    assert set(by) == {"pelvis", "thigh_l", "thigh_r"}
    assert by["thigh_r"]["applied"] is True
    assert by["thigh_r"]["file"] == f"{c.serial['thigh_r']}.json"
    assert by["thigh_r"]["sha256"] == hashlib.sha256(c.path.read_bytes()).hexdigest()
    assert by["thigh_r"]["date"] == "2026-04-01T07:00:00+00:00"
    assert not by["pelvis"]["applied"] and not by["thigh_l"]["applied"]
    from imuhip.pipeline import analyze_recording

    res_none = analyze_recording(c.rec)
    assert report_dict(res_none)["sensor_calibration"] is None


@pytest.mark.slow
def test_applied_calibration_file_named_with_sha256_and_date_in_the_page(
    calibrated: _Calibrated, tmp_path: Path
) -> None:
    c = calibrated
    serial, cal_dir, path = c.serial, c.cal_dir, c.path
    page = write_report(c.res, tmp_path / "out")["html"].read_text(encoding="utf-8")
    sec = _section(page)
    assert f"<code>{cal_dir}</code>" in sec
    thigh_r = _row(sec, "thigh_r")
    assert f">{serial['thigh_r']}.json<" in thigh_r
    assert hashlib.sha256(path.read_bytes()).hexdigest() in thigh_r
    assert "2026-04-01T07:00:00+00:00" in thigh_r
    for p in ("pelvis", "thigh_l"):
        cal_row = [r for r in re.findall(r"<tr>(.*?)</tr>", sec) if "not applied" in r and p in r]
        assert len(cal_row) == 1
        assert f"no calibration file {serial[p]}.json in {cal_dir}" in cal_row[0]
    # the sensor table: one row per sensor with its serial and rate
    for p, s in serial.items():
        assert f">{s}<" in sec and f">{c.rate_hz[p]:.0f}<" in sec
    assert sec.count("sha256") == 1  # only the applied file carries a hash


def test_no_folder_and_orientation_only_sessions_say_so(tmp_path):
    from tests.unit.report.test_report import _orientations

    ori, segcal, meta = _orientations(duration_s=12.0, lumbar=False)
    res = analyze_orientations(ori, meta, segcal=segcal)
    sec = _section(render_html(res, report_dict(res), strides_table(res)))
    assert "No sensor-calibration folder given: raw sensor data were used." in sec
    res = analyze_orientations(
        ori, meta, AnalysisConfig(calibration_folder=str(tmp_path)), segcal=segcal
    )
    sec = _section(render_html(res, report_dict(res), strides_table(res)))
    assert f"<code>{tmp_path}</code>: not applied: no sensor samples." in sec
    assert "<table" not in sec  # neither sensors nor calibration files to list


def test_orientation_only_session_says_not_applied(tmp_path):
    from imuhip.pipeline import analyze_orientations
    from tests.unit.report.test_report import _orientations

    ori, segcal, meta = _orientations(duration_s=12.0, lumbar=False)
    res = analyze_orientations(
        ori, meta, AnalysisConfig(calibration_folder=str(tmp_path)), segcal=segcal
    )
    sc = report_dict(res)["sensor_calibration"]
    assert sc == {"folder": str(tmp_path), "sensors": [], "note": "not applied: no sensor samples"}
