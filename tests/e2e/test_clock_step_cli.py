"""A device clock that steps back 2 s while the packet counter runs on (issue 17), through the CLI.

tests' copy of recordings/typical.imrec with thigh_l's ``t_first_us`` moved back 2 s from the
middle on once lost 200 samples and gave a false asymmetry flag (right − left −4.9°). `imuhip info`
must name the step and count it, and `imuhip analyze` must give the clean file's flags and hip
rotation excursions (within 0.5°), with the step in the report's quality section.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.cli import run_cli
from tests.unit.ingest.test_clock_check import TYPICAL, _rewrite


def _imuhip(*args: str | Path) -> subprocess.CompletedProcess[str]:
    r = run_cli(*args)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    return r


def _row(stdout: str, label: str) -> list[str]:
    line = next(ln for ln in stdout.splitlines() if ln.startswith(label + "  "))
    return line[len(label) :].split()


def _report(rec: Path, out: Path) -> dict[str, Any]:
    _imuhip("analyze", rec, "--out", out)
    report: dict[str, Any] = json.loads((out / "report.json").read_text())
    return report


@pytest.mark.slow  # two analyses of a 50 s recording (~5 s)
def test_clock_step_back_loses_nothing_and_flags_nothing(tmp_path: Path) -> None:
    stepped = _rewrite(tmp_path / "step_back.imrec", step_us=-2_000_000)

    clean_info = _imuhip("info", TYPICAL).stdout
    info = _imuhip("info", stepped).stdout
    assert "warning: thigh_l: device clock steps back 1 time(s), largest 2.000 s" in info
    assert "no sample dropped or misplaced (about 200 samples would have been)" in info
    assert _row(info, "clock steps") == ["0", "1", "0"]  # pelvis, thigh_l, thigh_r
    assert _row(clean_info, "clock steps") == ["0", "0", "0"]
    for label in ("samples", "samples lost", "gaps", "duration [s]"):
        assert _row(info, label) == _row(clean_info, label), label

    clean = _report(TYPICAL, tmp_path / "clean")
    got = _report(stepped, tmp_path / "stepped")
    assert got["flags"] == clean["flags"]
    for side in ("left", "right"):
        exc = got["metrics"]["per_side"][side]["hip_rotation_excursion_deg"]
        ref = clean["metrics"]["per_side"][side]["hip_rotation_excursion_deg"]
        assert exc["n"] == ref["n"], side
        assert abs(exc["mean"] - ref["mean"]) < 0.5, side
    q = got["quality"]
    assert q["sensors"]["thigh_l"]["clock_steps"] == 1
    assert q["sensors"]["thigh_l"]["lost_samples"] == 0
    assert q["sensors"]["pelvis"]["clock_steps"] == 0
    assert any("thigh_l: device clock steps back 1 time(s)" in w for w in q["recording_warnings"])
