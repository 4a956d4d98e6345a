from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import (
    from_rotation,
    quat_rotate,
    to_rotation,
)
from imuhip.errors import ImportFormatError
from imuhip.interop.xsens import (
    import_xsens_trial,
    read_imu_mappings,
    read_xsens_txt,
    xsens_to_imported,
)

HEAD = "// Start Time: Unknown\n// Update Rate: 60.0Hz\n// Firmware Version: 4.0.2\n"


def _same_rotation(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> None:
    np.testing.assert_allclose(np.abs(np.sum(a * b, axis=-1)), 1.0, atol=atol)


def _write(path: Path, q: np.ndarray, counter: np.ndarray, kind: str, sep: str = "\t") -> Path:
    n = len(q)
    acc = np.tile([0.0, 0.0, 9.81], (n, 1))
    cols = ["PacketCounter", "Acc_X", "Acc_Y", "Acc_Z"]
    data = [counter[:, None], acc]
    if kind == "quat":
        cols += ["Quat_q0", "Quat_q1", "Quat_q2", "Quat_q3"]
        data.append(q)
    elif kind == "mat":
        r = to_rotation(q).as_matrix()
        for j in range(3):  # MT Manager order: Mat[1][1] Mat[2][1] Mat[3][1] Mat[1][2] ...
            for i in range(3):
                cols.append(f"Mat[{i + 1}][{j + 1}]")
                data.append(r[:, i, j][:, None])
    else:
        e = to_rotation(q).as_euler("ZYX", degrees=True)
        cols += ["Roll", "Pitch", "Yaw"]
        data.append(e[:, ::-1])
    arr = np.hstack(data)
    lines = [sep.join(cols)] + [
        sep.join([f"{int(r[0]):05d}"] + [f"{v:.9f}" for v in r[1:]]) for r in arr
    ]
    path.write_text(HEAD + "\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("kind", ["quat", "mat", "euler"])
def test_orientation_columns_read_as_the_same_rotation(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(5)
    q = from_rotation(to_rotation(np.array([1.0, 0, 0, 0])).random(20, rng=rng))
    f = _write(
        tmp_path / "MT_x_00B40001.txt",
        q,
        np.arange(100, 120),
        kind,
        sep="," if kind == "euler" else "\t",
    )
    xf = read_xsens_txt(f)
    assert xf.rate_hz == 60.0
    assert xf.serial == "00B40001"
    np.testing.assert_array_equal(xf.counter, np.arange(100, 120))
    _same_rotation(xf.q_xsens_sensor, q, atol=1e-6)


def test_nwu_to_enu_turns_north_into_y(tmp_path: Path) -> None:
    # sensor x axis pointing north in Xsens NWU = world x; in ENU north is +y
    q = np.tile([1.0, 0, 0, 0], (5, 1))
    xf = read_xsens_txt(_write(tmp_path / "a.txt", q, np.arange(5), "quat"))
    s = xsens_to_imported(xf, "pelvis", world="nwu")
    np.testing.assert_allclose(quat_rotate(s.q_world_sensor[0], [1, 0, 0]), [0, 1, 0], atol=1e-12)
    np.testing.assert_allclose(quat_rotate(s.q_world_sensor[0], [0, 1, 0]), [-1, 0, 0], atol=1e-12)
    s2 = xsens_to_imported(xf, "pelvis", world="enu")
    np.testing.assert_allclose(s2.q_world_sensor, q)


def test_counter_wrap_and_gaps(tmp_path: Path) -> None:
    counter = np.array([65533, 65534, 65535, 0, 1, 3, 4])
    q = np.tile([1.0, 0, 0, 0], (7, 1))
    xf = read_xsens_txt(_write(tmp_path / "w.txt", q, counter, "quat"))
    np.testing.assert_array_equal(xf.counter - xf.counter[0], [0, 1, 2, 3, 4, 6, 7])
    assert any("1 sample(s) missing" in n for n in xf.notes)


def test_exact_duplicate_rows_are_dropped_and_local_swaps_sorted(tmp_path: Path) -> None:
    q = np.zeros((6, 4))
    q[:, 0] = np.cos(np.arange(6) / 10)  # a different orientation per sample
    q[:, 3] = np.sin(np.arange(6) / 10)
    order = [0, 2, 1, 3, 3, 4]  # rows 1 and 2 swapped, row 3 exported twice
    f = _write(tmp_path / "d.txt", q[order], np.array([10, 12, 11, 13, 13, 14]), "quat")
    xf = read_xsens_txt(f)
    np.testing.assert_array_equal(xf.counter, [10, 11, 12, 13, 14])
    _same_rotation(xf.q_xsens_sensor, q[:5], atol=1e-6)
    assert "d.txt: 1 row(s) out of counter order: sorted by PacketCounter" in xf.notes
    assert "d.txt: 1 duplicated row(s) dropped" in xf.notes


def test_errors_name_file_and_what_was_expected(tmp_path: Path) -> None:
    f = tmp_path / "bad.txt"
    f.write_text(HEAD + "PacketCounter\tAcc_X\tAcc_Y\tAcc_Z\n1\t0\t0\t9\n2\t0\t0\t9\n")
    with pytest.raises(ImportFormatError, match=r"bad\.txt: neither orientation .* nor gyroscope"):
        read_xsens_txt(f)
    f.write_text(
        HEAD + "PacketCounter\tQuat_q0\tQuat_q1\tQuat_q2\tQuat_q3\n1\t1\t0\t0\t0\n2\t1\t0\t0\t0\n"
    )
    with pytest.raises(ImportFormatError, match=r"bad\.txt: missing column Acc_X"):
        read_xsens_txt(f)
    q = np.tile([1.0, 0, 0, 0], (4, 1))
    q[2] = [0.0, 1.0, 0.0, 0.0]  # counter 6 twice, with different values: ambiguous
    _write(f, q, np.array([5, 6, 6, 7]), "quat")
    with pytest.raises(
        ImportFormatError,
        match=r"bad\.txt: lines 6 and 7, column PacketCounter: counter 6 on two rows with "
        "different values",
    ):
        read_xsens_txt(f)
    _write(f, q, np.array([5, 6, 20, 7]), "quat")  # 13 samples back: another recording
    with pytest.raises(ImportFormatError, match=r"line 8, column PacketCounter: counter 7 jumps"):
        read_xsens_txt(f)
    f.write_text(
        "PacketCounter\tAcc_X\tAcc_Y\tAcc_Z\tGyr_X\tGyr_Y\tGyr_Z\n1\t0\t0\t9\t0\t0\t0\n2\t0\t0\t9\t0\t0\t0\n"
    )
    with pytest.raises(ImportFormatError, match=r"bad\.txt: no '// Update Rate: <Hz>' header line"):
        read_xsens_txt(f)
    assert read_xsens_txt(f, rate_hz=100).gyr_rad_s is not None
    # a rate given against the header's: the data would be stretched with no word
    f.write_text("// Update Rate: 100.0Hz\n" + f.read_text())
    assert read_xsens_txt(f, rate_hz=100).rate_hz == 100.0  # the same: fine
    with pytest.raises(
        ImportFormatError,
        match=r"bad\.txt: its header says 'Update Rate: 100\.0Hz' but the rate given is 60 Hz",
    ):
        read_xsens_txt(f, rate_hz=60)


def test_opensense_mapping_and_trial(shared_data: Path) -> None:
    folder = shared_data / "opensense"
    prefix, ids = read_imu_mappings(folder / "myIMUMappings.xml")
    assert prefix == "MT_012005D6_009-001"
    assert ids["00B42279"] == "pelvis_imu"
    assert len(ids) == 8
    sensors, notes = import_xsens_trial(mapping=folder / "myIMUMappings.xml")
    assert sorted(s.placement for s in sensors) == sorted(
        ["pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r", "lumbar", "foot_l", "foot_r"]
    )
    assert any("chest" in n for n in notes)
    assert not any("skipped" in n for n in notes)  # feet are foot_r / foot_l (calcn_*)
    for s in sensors:
        assert s.rate_hz == 100.0
        assert s.gyr_rad_s is None
        assert s.sample_idx[0] == 0  # every file starts at counter 472 (README)
        # at rest at the start, the vendor orientation maps specific force onto world +z
        up = quat_rotate(s.q_world_sensor[:50], s.acc_m_s2[:50]).mean(axis=0)
        assert up[2] == pytest.approx(9.81, abs=0.15), s.placement
        assert math.hypot(up[0], up[1]) < 0.2, s.placement


def test_export_with_gyroscope_reencodes_to_a_native_recording(tmp_path: Path) -> None:
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording
    from imuhip.interop.native import write_native_recording

    rng = np.random.default_rng(2)
    n = 120
    gyr = rng.normal(0, 2, (n, 3))
    acc = rng.normal(0, 3, (n, 3))
    rows = ["PacketCounter\tAcc_X\tAcc_Y\tAcc_Z\tGyr_X\tGyr_Y\tGyr_Z"]
    rows += [
        "\t".join([f"{1000 + i:05d}", *(f"{v:.6f}" for v in (*acc[i], *gyr[i]))]) for i in range(n)
    ]
    f = tmp_path / "MT_t_00B40002.txt"
    f.write_text("// Update Rate: 100.0Hz\n" + "\n".join(rows) + "\n")
    sensors, _ = import_xsens_trial([str(f)], placements={str(f): "pelvis"})
    assert sensors[0].q_world_sensor is None
    write_native_recording(sensors, tmp_path / "x.imrec", source_format="xsens")
    rec = read_recording(tmp_path / "x.imrec")
    d = decode_session(rec.packets, rec.meta)["pelvis"]
    lsb = rec.meta.sensor("pelvis").gyr_lsb_rad_s
    assert len(d) == n
    assert np.max(np.abs(d.gyr_rad_s - gyr)) <= lsb / 2 + 1e-6
