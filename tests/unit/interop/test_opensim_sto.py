from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import (
    from_rotation,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    to_rotation,
)
from imuhip.errors import ImportFormatError
from imuhip.interop.opensim_session import base_heading_axis, sto_world, write_session_sto
from imuhip.interop.opensim_sto import read_orientations_sto, write_orientations_sto
from imuhip.types import OrientationSession, SegmentCalibration, SessionMeta


def _quats(n: int, seed: int) -> np.ndarray:
    return from_rotation(to_rotation(np.array([1.0, 0, 0, 0])).random(n, rng=seed))


def test_extra_header_lines(tmp_path: Path) -> None:
    q = {"pelvis": _quats(2, 1)}
    f = write_orientations_sto(
        tmp_path / "h.sto", np.arange(2) / 100, q, 100.0, header={"imuhip_world": "zup"}
    )
    lines = f.read_text().splitlines()
    assert lines[4:6] == ["imuhip_world=zup", "endheader"]
    assert read_orientations_sto(f).header["imuhip_world"] == "zup"
    with pytest.raises(ValueError, match="keys need no"):
        write_orientations_sto(tmp_path / "x.sto", np.arange(2), q, 1.0, header={"a=b": "c"})


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


def test_xsens_world_undoes_the_import_turn(tmp_path: Path) -> None:
    # a sensor whose x axis points north: NWU x. imuhip's ENU import has it along ENU +y
    # (north); the xsens_nwu table must show it along x again, as OpenSim's reader does
    q_enu = np.tile(quat_from_axis_angle([0, 0, 1], math.pi / 2), (2, 1))
    f = write_orientations_sto(
        tmp_path / "n.sto", np.arange(2) / 100, {"pelvis": q_enu}, 100.0, world="xsens_nwu"
    )
    raw = read_orientations_sto(f)
    np.testing.assert_allclose(
        quat_rotate(raw.q["pelvis_imu"], [1, 0, 0]), [[1, 0, 0]] * 2, atol=1e-9
    )
    back = read_orientations_sto(f, world="xsens_nwu")
    np.testing.assert_allclose(back.q["pelvis_imu"], q_enu, atol=1e-9)
    with pytest.raises(ValueError, match="world must be one of zup, opensim, xsens_nwu"):
        write_orientations_sto(
            tmp_path / "b.sto", np.arange(2), {"pelvis": q_enu}, 1.0, world="nwu"
        )  # type: ignore[arg-type]


def _session(t0_s: float, placements: tuple[str, ...], source: str = "vqf_offline"):
    n = 5
    q = {p: _quats(n, k) for k, p in enumerate(placements)}
    return OrientationSession(
        t_s=t0_s + np.arange(n) / 100.0,
        rate_hz=100.0,
        q_world_sensor=q,
        acc_m_s2={p: np.zeros((n, 3)) for p in placements},
        gyr_rad_s=dict.fromkeys(placements),
        valid={p: np.ones(n, bool) for p in placements},
        source=source,
    )


def _meta(world: str | None) -> SessionMeta:
    imp = {"vendor": "xsens"} | ({} if world is None else {"world": world})
    return SessionMeta("s", "2020-01-01T00:00:00+00:00", "S1", (), extra={"import": imp})


def test_session_table_keeps_clock_feet_and_settings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ori = _session(0.04, ("pelvis", "thigh_r", "foot_r", "foot_l", "sacrum"))
    # pelvis sensor mounted with its -y axis forward, 10 deg pitched
    q_sensor_pelvis = quat_from_axis_angle([0, 0, 1], -math.pi / 2)
    q_sensor_pelvis = quat_mul(quat_from_axis_angle([1, 0, 0], math.radians(10)), q_sensor_pelvis)
    segcal = SegmentCalibration(q_sensor_segment={"pelvis": q_sensor_pelvis}, method={})
    with caplog.at_level(logging.WARNING):
        f = write_session_sto(tmp_path / "s.sto", ori, None, segcal)
    assert "placement 'sacrum' has no OpenSim body" in caplog.text
    t = read_orientations_sto(f)
    np.testing.assert_allclose(t.t_s, [0.04, 0.05, 0.06, 0.07, 0.08], atol=1e-9)  # session clock
    assert list(t.q) == ["pelvis_imu", "femur_r_imu", "calcn_r_imu", "calcn_l_imu", "sacrum_imu"]
    np.testing.assert_allclose(t.q["calcn_l_imu"], ori.q_world_sensor["foot_l"], atol=1e-10)
    assert t.header["imuhip_world"] == "zup"
    assert t.header["imuhip_sensor_to_opensim_rotations"] == "-1.5707963267949 0 0"
    assert t.header["imuhip_base_imu_label"] == "pelvis_imu"
    assert t.header["imuhip_base_heading_axis"] == "-y"
    axis, off_deg = base_heading_axis(segcal)
    assert axis == "-y" and off_deg == pytest.approx(10.0, abs=1e-9)


def test_world_follows_the_import() -> None:
    xs = _session(0.0, ("pelvis",), source="vendor:xsens")
    assert sto_world(xs, _meta("nwu")) == "xsens_nwu"
    assert sto_world(xs, _meta(None)) == "xsens_nwu"  # the import's default
    assert sto_world(xs, _meta("enu")) == "zup"
    # Xsens raw data fused by imuhip lives in imuhip's world, not the vendor's
    assert sto_world(_session(0.0, ("pelvis",)), _meta("nwu")) == "zup"
    assert sto_world(xs, None) == "zup"
    assert base_heading_axis(None) == (None, pytest.approx(float("nan"), nan_ok=True))
