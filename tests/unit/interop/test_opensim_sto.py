from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import from_rotation, quat_rotate, to_rotation
from imuhip.errors import ImportFormatError
from imuhip.interop.opensim_sto import read_orientations_sto, write_orientations_sto


def _quats(n: int, seed: int) -> np.ndarray:
    return from_rotation(to_rotation(np.array([1.0, 0, 0, 0])).random(n, rng=seed))


def test_header_and_layout_match_opensense(tmp_path: Path) -> None:
    q = {"pelvis": _quats(3, 1), "thigh_r": _quats(3, 2), "lumbar": _quats(3, 3)}
    f = write_orientations_sto(tmp_path / "o.sto", np.arange(3) / 100, q, 100.0)
    lines = f.read_text().splitlines()
    assert lines[:5] == [
        "DataRate=100.000000",
        "DataType=Quaternion",
        "version=3",
        "OpenSimVersion=4.5",
        "endheader",
    ]
    assert lines[5].split("\t") == ["time", "pelvis_imu", "femur_r_imu", "torso_imu"]
    cells = lines[6].split("\t")
    assert len(cells) == 4
    w, x, y, z = (float(v) for v in cells[1].split(","))
    np.testing.assert_allclose([w, x, y, z], q["pelvis"][0], atol=1e-10)


def test_round_trip_same_quaternions(tmp_path: Path) -> None:
    t = np.arange(250) / 60.0
    q = {"pelvis": _quats(250, 4), "thigh_l": _quats(250, 5), "shank_l": _quats(250, 6)}
    f = write_orientations_sto(tmp_path / "r.sto", t, q, 60.0)
    back = read_orientations_sto(f)
    assert back.rate_hz == 60.0
    np.testing.assert_allclose(back.t_s, t, atol=1e-6)
    for key, name in (
        ("pelvis", "pelvis_imu"),
        ("thigh_l", "femur_l_imu"),
        ("shank_l", "tibia_l_imu"),
    ):
        np.testing.assert_allclose(back.q[name], q[key], atol=1e-10)


def test_opensim_world_is_y_up_and_reads_back(tmp_path: Path) -> None:
    q = {"pelvis": _quats(10, 7)}
    f = write_orientations_sto(tmp_path / "y.sto", np.arange(10) / 100, q, 100.0, world="opensim")
    raw = read_orientations_sto(f)
    # the sensor's world-up direction (ENU z) must appear as OpenSim +Y
    v_sensor = quat_rotate(q["pelvis"] * np.array([1, -1, -1, -1]), [0, 0, 1])
    np.testing.assert_allclose(
        quat_rotate(raw.q["pelvis_imu"], v_sensor), np.tile([0, 1, 0], (10, 1)), atol=1e-9
    )
    back = read_orientations_sto(f, world="opensim")
    np.testing.assert_allclose(
        np.abs(np.sum(back.q["pelvis_imu"] * q["pelvis"], axis=1)), 1, atol=1e-9
    )


def test_malformed_cells_named(tmp_path: Path) -> None:
    f = tmp_path / "bad.sto"
    f.write_text("DataRate=100\nDataType=Quaternion\nendheader\ntime\tpelvis_imu\n0\t1,0,0\n")
    with pytest.raises(
        ImportFormatError, match=r"bad\.sto: line 5, column pelvis_imu: expected 'w,x,y,z'"
    ):
        read_orientations_sto(f)
    f.write_text("DataRate=100\nDataType=Vec3\nendheader\ntime\tpelvis_imu\n")
    with pytest.raises(ImportFormatError, match=r"DataType=Vec3, expected DataType=Quaternion"):
        read_orientations_sto(f)
    f.write_text("time\tpelvis_imu\n0\t1,0,0,0\n")
    with pytest.raises(ImportFormatError, match="no 'endheader' line"):
        read_orientations_sto(f)
