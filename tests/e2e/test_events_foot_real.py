"""End to end on real sensors: ``imuhip import xsens`` of the gaittoolbox trial with feet, then
``imuhip analyze`` (subprocess): events come from the feet and the constraints are reported."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

import pytest

from tests.real_data import GAITTOOLBOX_IDS, SHARED_DATA, run_cli

IDS = GAITTOOLBOX_IDS


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args)


def test_analyze_gaittoolbox_with_feet(tmp_path: Path) -> None:
    folder = SHARED_DATA / "gaittoolbox" / "imu"
    if not folder.is_dir():
        pytest.skip("../shared/data/gaittoolbox missing")
    args = ["import", "xsens", "-o", str(tmp_path / "gt"), "--rate-hz", "100"]
    for p, sid in IDS.items():
        args += ["--sensor", f"{p}={folder / f'S02-Trial-Walk-1-000_{sid}.txt'}"]
    r = _cli(*args)
    assert r.returncode == 0, r.stderr
    r = _cli("analyze", str(tmp_path / "gt"), "--out", str(tmp_path / "rep"))
    assert r.returncode == 0, r.stderr
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    q = rep["quality"]
    assert q["event_sources"] == {"left": "foot_gyro", "right": "foot_gyro"}
    for side in ("left", "right"):
        checks = q["event_checks"][side]
        assert checks["sensor"] == f"foot_{side[0]}"
        assert set(checks["candidates_rejected"]) == {"ic_too_close", "to_too_close"}
        assert checks["strides_valid"] >= 3
        ev = rep["gait"]["events"][side]
        ic = sorted(ev["initial_contact_s"])
        assert all(b - a >= 0.7 for a, b in itertools.pairwise(ic))
