"""Motion-BIDS exports pass both BIDS validators (3.x and legacy 1.15.0) with 0 errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from imuhip.interop.motion_bids import check_motion_bids, motion_channels, write_motion_bids
from imuhip.types import JointAngles, OrientationSession
from tests.unit.interop._bids_validators import legacy_errors, validator3_errors


def _export(root: Path) -> Path:
    rng = np.random.default_rng(3)
    m = 300
    t = np.arange(m) / 100.0
    places = ("pelvis", "thigh_l", "thigh_r", "lumbar")
    q = {p: np.tile([1.0, 0, 0, 0], (m, 1)) for p in places}
    valid = {p: np.ones(m, bool) for p in places}
    valid["thigh_r"][40:55] = False
    ori = OrientationSession(
        t_s=t,
        rate_hz=100.0,
        q_world_sensor=q,
        acc_m_s2={p: rng.normal(0, 1, (m, 3)) for p in places},
        gyr_rad_s={p: rng.normal(0, 1, (m, 3)) for p in places},
        valid=valid,
        source="vqf",
        mag_ut={"pelvis": rng.normal(0, 30, (m, 3))},
    )
    hip = np.radians(np.tile([10.0, 5.0, -3.0], (m, 1)))
    angles = JointAngles(
        t_s=t,
        hip_rad={"left": hip, "right": hip},
        pelvis_rad=np.zeros((m, 3)),
        lumbar_rad=np.zeros((m, 3)),
        valid=valid["thigh_r"].copy(),
    )
    data, chans = motion_channels(ori, angles, body_sites={"lumbar": "chest"})
    write_motion_bids(
        root,
        data,
        chans,
        rate_hz=100.0,
        subject="S01",
        acq_time="2024-05-01T11:30:00+02:00",
        manufacturer="Movesense",
        model="Movesense Active",
        events=[(0.5, 0.0, "initial_contact_left"), (1.1, 0.0, "toe_off_left")],
    )
    return root


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _export(tmp_path_factory.mktemp("bids"))


def test_own_checker_finds_nothing(dataset: Path) -> None:
    assert check_motion_bids(dataset) == []
    scans = (dataset / "sub-S01" / "sub-S01_scans.tsv").read_text().splitlines()
    assert scans[1].endswith("\t2024-05-01T09:30:00")  # UTC, no offset (legacy ACQTIME_FMT)
    desc = json.loads((dataset / "dataset_description.json").read_text())
    assert desc["Authors"] == ["n/a"] and desc["License"] == "n/a"
    assert "fill in `Authors`" in (dataset / "README.md").read_text()


def test_validator3_reports_no_error(dataset: Path) -> None:
    assert validator3_errors(dataset) == []


def test_legacy_validator_reports_no_error(dataset: Path) -> None:
    assert legacy_errors(dataset) == []


def test_validators_catch_the_old_mistakes(tmp_path: Path) -> None:
    """The harness can fail: the fields imuhip used to write are errors for the legacy one."""
    root = _export(tmp_path)
    scans = root / "sub-S01" / "sub-S01_scans.tsv"
    scans.write_text(scans.read_text().replace("T09:30:00", "T09:30:00+00:00"))
    ch = next(root.rglob("*_channels.json"))
    frames = json.loads(ch.read_text())
    frames["reference_frame"]["Levels"]["global"]["SpatialAxes"] = "ENU"
    ch.write_text(json.dumps(frames))
    mj = next(root.rglob("*_motion.json"))
    side = json.loads(mj.read_text())
    mj.write_text(json.dumps({**side, "RotationOrder": "ZXY"}))
    codes = {e["code"] for e in legacy_errors(root)}
    assert codes == {55, 84}  # JSON_SCHEMA_VALIDATION_ERROR (axes, motion.json key), ACQTIME_FMT
    problems = check_motion_bids(root)
    assert any("SpatialAxes 'ENU'" in p for p in problems)
    assert any("'RotationOrder' is not a motion.json field" in p for p in problems)
    assert any("acq_time '2024-05-01T09:30:00+00:00'" in p for p in problems)
