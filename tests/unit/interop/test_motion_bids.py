from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from imuhip.interop.motion_bids import check_motion_bids, motion_channels, write_motion_bids
from imuhip.types import JointAngles, OrientationSession

# keyword lists and units from the BIDS specification, motion modality (channels.tsv)
SPEC_TYPES = {
    "ACCEL",
    "ANGACCEL",
    "GYRO",
    "JNTANG",
    "LATENCY",
    "MAGN",
    "MISC",
    "ORNT",
    "POS",
    "VEL",
}
SPEC_COMPONENTS = {"x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w", "n/a"}
SPEC_UNITS = {"ACCEL": "m/s^2", "GYRO": "rad/s", "JNTANG": "deg"}


def _session(m: int = 120) -> tuple[OrientationSession, JointAngles]:
    rng = np.random.default_rng(0)
    t = np.arange(m) / 100.0
    q = {p: np.tile([1.0, 0, 0, 0], (m, 1)) for p in ("pelvis", "thigh_l")}
    valid = {p: np.ones(m, bool) for p in q}
    valid["thigh_l"][10:15] = False
    ori = OrientationSession(
        t_s=t,
        rate_hz=100.0,
        q_world_sensor=q,
        acc_m_s2={p: rng.normal(0, 1, (m, 3)) for p in q},
        gyr_rad_s={"pelvis": rng.normal(0, 1, (m, 3)), "thigh_l": None},
        valid=valid,
        source="test",
        mag_ut={"pelvis": rng.normal(0, 30, (m, 3))},
    )
    hip = np.radians(np.tile([10.0, 5.0, -3.0], (m, 1)))
    angles = JointAngles(
        t_s=t,
        hip_rad={"left": hip},
        pelvis_rad=np.zeros((m, 3)),
        lumbar_rad=None,
        valid=valid["thigh_l"].copy(),
    )
    return ori, angles


def test_files_follow_the_checkable_spec_rules(tmp_path: Path) -> None:
    ori, angles = _session()
    data, chans = motion_channels(ori, angles)
    files = write_motion_bids(
        tmp_path,
        data,
        chans,
        rate_hz=100.0,
        subject="S01",
        task="walking",
        tracksys="imu",
        acq_time="2024-05-01T09:30:00+00:00",
        events=[(0.5, 0.0, "initial_contact_left")],
    )
    # file names
    assert re.fullmatch(r"sub-S01_task-walking_tracksys-imu_motion\.tsv", files.motion_tsv.name)
    assert files.motion_tsv.parent == tmp_path / "sub-S01" / "motion"
    desc = json.loads((tmp_path / "dataset_description.json").read_text())
    assert {"Name", "BIDSVersion"} <= set(desc)
    # channels.tsv: required columns first, spec keywords, units
    rows = [ln.split("\t") for ln in files.channels_tsv.read_text().splitlines()]
    head, body = rows[0], rows[1:]
    assert head[:5] == ["name", "component", "type", "tracked_point", "units"]
    recs = [dict(zip(head, r, strict=True)) for r in body]
    for r in recs:
        assert r["type"] in SPEC_TYPES and r["type"].isupper()
        assert r["component"] in SPEC_COMPONENTS
        if r["type"] in ("ACCEL", "GYRO", "MAGN"):
            assert r["component"] in ("x", "y", "z")
        if r["type"] in SPEC_UNITS:
            assert r["units"] == SPEC_UNITS[r["type"]]
    types = [r["type"] for r in recs]
    # pelvis acc+gyr+mag, thigh acc only, 2x4 quaternion, 3 hip + 3 pelvis angles
    assert types.count("ACCEL") == 6 and types.count("GYRO") == 3 and types.count("MAGN") == 3
    assert types.count("ORNT") == 8 and types.count("JNTANG") == 6
    assert {r["component"] for r in recs if r["type"] == "ORNT"} == {
        "quat_w",
        "quat_x",
        "quat_y",
        "quat_z",
    }
    # motion.tsv: no header row, one column per channel row, numbers or n/a
    lines = files.motion_tsv.read_text().splitlines()
    assert len(lines) == 120
    for ln in lines:
        cells = ln.split("\t")
        assert len(cells) == len(recs)
        [float(c) for c in cells if c != "n/a"]
    # missing samples of the thigh are n/a, the rest are numbers
    thigh_cols = [i for i, r in enumerate(recs) if r["tracked_point"] == "thigh_l"]
    assert all(lines[12].split("\t")[i] == "n/a" for i in thigh_cols)
    assert all(lines[20].split("\t")[i] != "n/a" for i in thigh_cols)
    hip_flex = next(i for i, r in enumerate(recs) if r["name"] == "hip_l_flexion")
    assert float(lines[0].split("\t")[hip_flex]) == pytest.approx(10.0)
    # sidecar
    meta = json.loads(files.motion_json.read_text())
    assert meta["SamplingFrequency"] == 100.0
    assert meta["TrackingSystemName"] == "imu"  # must equal the tracksys entity
    assert meta["TaskName"] == "walking"
    assert meta["ACCELChannelCount"] == 6 and meta["JNTANGChannelCount"] == 6
    assert meta["MotionChannelCount"] == len(recs)
    assert meta["RecordingDuration"] == pytest.approx(1.2)
    scans = (tmp_path / "sub-S01" / "sub-S01_scans.tsv").read_text().splitlines()
    assert scans[1].startswith("motion/sub-S01_task-walking_tracksys-imu_motion.tsv\t2024-05-01")
    assert check_motion_bids(tmp_path) == []


def test_checker_finds_broken_datasets(tmp_path: Path) -> None:
    ori, _ = _session()
    data, chans = motion_channels(ori)
    files = write_motion_bids(tmp_path, data, chans, rate_hz=100.0, subject="S01")
    meta = json.loads(files.motion_json.read_text())
    meta["TrackingSystemName"] = "other"
    files.motion_json.write_text(json.dumps(meta))
    text = files.channels_tsv.read_text().replace("\tACCEL\t", "\taccel\t", 1)
    files.channels_tsv.write_text(text)
    problems = check_motion_bids(tmp_path)
    assert any("does not match tracksys-imu" in p for p in problems)
    assert any("type 'accel' not a motion channel type" in p for p in problems)
    files.motion_tsv.write_text("a\tb\n" + files.motion_tsv.read_text())
    assert any("header row" in p or "columns" in p for p in check_motion_bids(tmp_path))


def test_bad_labels_and_shapes_rejected(tmp_path: Path) -> None:
    ori, _ = _session()
    data, chans = motion_channels(ori)
    with pytest.raises(ValueError, match="subject label must be alphanumeric"):
        write_motion_bids(tmp_path, data, chans, rate_hz=100.0, subject="S_01")
    with pytest.raises(ValueError, match="data must have shape"):
        write_motion_bids(tmp_path, data[:, :3], chans, rate_hz=100.0, subject="S01")


@pytest.mark.parametrize(
    ("frame", "cardan"),
    [("hip_right", "cardan_zxy"), ("lumbar", "cardan_zxy"), ("pelvis", "cardan_yxz")],
)
def test_rotation_order_is_the_extrinsic_sequence_of_the_angles(frame: str, cardan: str) -> None:
    """BIDS RotationOrder is extrinsic: applying its axes in order about fixed axes (scipy's
    lower-case sequences) with the channels' angles reproduces imuhip's intrinsic Cardan angles."""
    from scipy.spatial.transform import Rotation

    from imuhip import conventions
    from imuhip.interop._motion_bids_meta import REFERENCE_FRAMES

    order = REFERENCE_FRAMES[frame]["RotationOrder"]
    abc = np.radians([25.0, -12.0, 40.0])  # imuhip's 1st, 2nd, 3rd intrinsic angle
    # extrinsic: the last intrinsic angle is applied first
    q = Rotation.from_euler(order.lower(), abc[::-1]).as_quat(scalar_first=True)
    np.testing.assert_allclose(getattr(conventions, cardan)(q), abc, atol=1e-12)
    intrinsic = {"hip_right": "zxy", "lumbar": "zxy", "pelvis": "yxz"}[frame]
    assert order == intrinsic[::-1].upper()


def test_frames_fit_the_legacy_schema_and_chest_is_not_lumbar(tmp_path: Path) -> None:
    from imuhip.interop._motion_bids_meta import REFERENCE_FRAMES

    for name, level in REFERENCE_FRAMES.items():
        assert "SpatialAxes" not in level or re.fullmatch(r"[APLRSI_]{3}", level["SpatialAxes"])
        assert level.get("RotationOrder", "XYZ") in ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")
        assert level.get("RotationRule", "right-hand") in ("left-hand", "right-hand"), name
    ori, angles = _session()
    angles = JointAngles(angles.t_s, angles.hip_rad, None, np.zeros((120, 3)), angles.valid)
    data, chans = motion_channels(ori, angles, body_sites={"pelvis": "chest"})
    names = {c.name for c in chans}
    assert "chest_acc_x" in names and "pelvis_acc_x" not in names
    assert {c.placement for c in chans if c.tracked_point == "chest"} == {
        "chest (analysed as imuhip placement 'pelvis')"
    }
    ornt = [c for c in chans if c.type == "ORNT"]
    assert {c.description for c in ornt} == {"orientation from test"}
    assert {c.reference_frame for c in chans if c.name.startswith("hip_l")} == {"hip_left"}
    with pytest.raises(ValueError, match=r"extra_json keys \['OrientationSource'\]"):
        write_motion_bids(
            tmp_path,
            data,
            chans,
            rate_hz=100.0,
            subject="S1",
            extra_json={"OrientationSource": "x"},
        )
    with pytest.raises(ValueError, match="acq_time must be an ISO 8601 time, got 'yesterday'"):
        write_motion_bids(tmp_path, data, chans, rate_hz=100.0, subject="S1", acq_time="yesterday")
