"""Imports keep every sample: missing samples become recorded gaps, dropped rows are counted."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imuhip.ingest import protocol
from imuhip.ingest.decode import decode_sensor_packets, decode_session
from imuhip.ingest.recording import read_recording
from imuhip.interop import CsvOptions, read_sensor_csv, write_native_recording
from imuhip.interop._common import ImportedSensor
from imuhip.interop.orientation_file import (
    orientation_session_from_imported,
    samples_outside_common_grid,
    trim_notes,
)
from imuhip.sim import SimParams, simulate_session
from imuhip.types import RawPacket, SensorMeta

FUSION_GYR = [f"Gyroscope {a} (deg/s)" for a in "XYZ"]


def test_fusion_csv_every_valid_row_is_a_sample_and_gaps_are_the_csvs(
    tmp_path: Path, shared_data: Path
) -> None:
    path = shared_data / "fusion" / "sensor_data.csv"
    df = pd.read_csv(path)
    valid_rows = int(np.isfinite(df.to_numpy(dtype=float)).all(axis=1).sum())
    assert valid_rows == 13514
    # where the file's own time skips samples: its documented rate is 100 Hz
    t = df["Time (s)"].to_numpy()
    want_idx = np.concatenate([[0], np.cumsum(np.rint(np.diff(t) / 0.01).astype(np.int64))])
    want_gaps = [(int(a) + 1, int(b)) for a, b in itertools.pairwise(want_idx) if b - a > 1]
    assert len(want_gaps) == 10  # ten two-sample gaps in the file

    sensor = read_sensor_csv(path, "pelvis", CsvOptions())
    meta = write_native_recording([sensor], tmp_path / "f.imrec")
    rec = read_recording(tmp_path / "f.imrec")
    dec = decode_session(rec.packets, rec.meta)["pelvis"]
    assert len(dec.sample_idx) == valid_rows  # before: 13,475 (39 lost with their packets)
    np.testing.assert_array_equal(dec.sample_idx - dec.sample_idx[0], want_idx)
    assert [(g.start_idx, g.stop_idx) for g in dec.stats.gaps] == want_gaps
    assert dec.stats.lost_samples == sum(b - a for a, b in want_gaps) == 20
    lsb = meta.sensor("pelvis").gyr_lsb_rad_s
    gyr = np.deg2rad(df[FUSION_GYR].to_numpy())
    assert np.max(np.abs(dec.gyr_rad_s - gyr)) <= lsb / 2 + 1e-12
    assert any("20 sample(s) missing from the time column" in n for n in sensor.notes)


def _imported(idx: np.ndarray, rate: float = 100.0, seed: int = 1) -> ImportedSensor:
    rng = np.random.default_rng(seed)
    m = len(idx)
    return ImportedSensor(
        placement="thigh_l",
        rate_hz=rate,
        sample_idx=idx.astype(np.int64),
        t_s=idx / rate,
        acc_m_s2=rng.normal(0, 5, (m, 3)),
        gyr_rad_s=rng.normal(0, 2, (m, 3)),
        mag_ut=rng.normal(0, 40, (m, 3)),
        q_world_sensor=None,
        source="x.csv",
    )


@pytest.mark.parametrize(
    "holes",
    [[(3, 4)], [(0, 0)], [(12, 20), (21, 22), (44, 45)], [(5, 6), (6, 7)], [(59, 61)]],
)
def test_any_hole_pattern_round_trips_exactly(tmp_path: Path, holes: list) -> None:
    # 9 channels at 100 Hz: 5 samples per packet; holes at block edges, inside, adjacent
    keep = np.ones(70, bool)
    for a, b in holes:
        keep[a:b] = False
    s = _imported(np.flatnonzero(keep))
    write_native_recording([s], tmp_path / "h.imrec")
    rec = read_recording(tmp_path / "h.imrec")
    got = decode_session(rec.packets, rec.meta)["thigh_l"]
    np.testing.assert_array_equal(got.sample_idx - got.sample_idx[0], s.sample_idx)
    assert got.stats.lost_samples == int(s.sample_idx[-1] + 1 - len(s.sample_idx))


def test_csv_missing_rows_are_counted_in_notes(tmp_path: Path) -> None:
    t = np.arange(60) / 100.0
    acc = np.tile([0.0, 0.0, 9.81], (60, 1))
    gyr = np.zeros((60, 3))
    valid = np.ones(60, bool)
    valid[[0, 1, 30, 31, 32]] = False  # two before the data, three inside
    from imuhip.interop.generic_csv import write_sensor_csv

    write_sensor_csv(
        tmp_path / "a.csv",
        np.delete(t, [45, 46]),
        *(np.delete(x, [45, 46], axis=0) for x in (acc, gyr)),
        valid=np.delete(valid, [45, 46]),
    )
    s = read_sensor_csv(tmp_path / "a.csv", "pelvis", CsvOptions())
    assert len(s) == 60 - 5 - 2
    assert s.notes[0] == (
        "a.csv: 5 row(s) with empty/NaN values treated as lost samples (2 before the first or "
        "after the last complete row: outside the recording)"
    )
    assert "a.csv: 2 sample(s) missing from the time column" in s.notes[1]


def test_vendor_grid_trimming_is_counted() -> None:
    def vendor(p: str, idx: np.ndarray) -> ImportedSensor:
        m = len(idx)
        q = np.tile([1.0, 0, 0, 0], (m, 1))
        return ImportedSensor(
            p, 100.0, idx, idx / 100.0, np.zeros((m, 3)), None, None, q, source=f"{p}.txt"
        )

    a = vendor("pelvis", np.arange(-3, 50))  # started 3 samples before the common start
    b = vendor("thigh_l", np.arange(0, 41))  # the shortest: the grid is 0..40
    ori = orientation_session_from_imported([a, b], source="vendor:test")
    assert len(ori.t_s) == 41
    assert samples_outside_common_grid([a, b]) == {"pelvis": 3 + 9, "thigh_l": 0}
    notes = trim_notes([a, b])
    assert len(notes) == 1 and notes[0].startswith("pelvis.txt: 12 sample(s) (0.12 s) outside")


def test_decoder_places_packets_of_mixed_length_in_order() -> None:
    # what the import relies on (the decoder grouped rows by packet length before 5aebb5e)
    meta = SensorMeta("pelvis", 100.0, 1e-3, 1e-3, 0.1, has_mag=False)
    pk = []
    for seq, (a, b) in enumerate([(0, 5), (5, 7), (9, 10), (10, 15)]):
        counts = np.tile(np.arange(a, b)[:, None], (1, 6))
        payload = protocol.encode_packet(seq, a * 10_000, counts)
        pk.append(RawPacket("pelvis", 10**9 + b * 10**7, payload))
    d = decode_sensor_packets(pk, meta)
    want = np.array([0, 1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 13, 14])
    np.testing.assert_array_equal(d.sample_idx, want)
    np.testing.assert_array_equal(np.rint(d.acc_m_s2[:, 0] * 1e3), want)


@pytest.mark.slow
def test_cli_import_with_gaps_then_analyze(tmp_path: Path) -> None:
    sim = simulate_session(SimParams(duration_s=24.0, rate_hz=100, seed=5))
    drop = {"thigh_l": [700, 701, 702]}  # rows absent: the time column skips 3 samples
    blank = {"pelvis": [900, 901]}  # rows present, values empty
    n_rows = {}
    for p, s in sim.samples.items():
        cols = {"t_s": s.t_s}
        for name, arr, unit in (("acc", s.acc_m_s2, "m_s2"), ("gyr", s.gyr_rad_s, "rad_s")):
            for j, a in enumerate("xyz"):
                cols[f"{name}_{a}_{unit}"] = arr[:, j]
        df = pd.DataFrame(cols)
        df.loc[blank.get(p, []), [c for c in df.columns if c != "t_s"]] = np.nan
        df = df.drop(index=drop.get(p, []))
        n_rows[p] = int(df.notna().all(axis=1).sum())
        df.to_csv(tmp_path / f"{p}.csv", index=False, float_format="%.9g", na_rep="")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "imuhip", *args],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    r = run("import", "csv", *(f"--sensor={p}={p}.csv" for p in sim.samples), "-o", "s.imrec")
    assert r.returncode == 0, r.stderr
    assert "thigh_l.csv: 3 sample(s) missing from the time column" in r.stderr
    assert "pelvis.csv: 2 row(s) with empty/NaN values treated as lost samples" in r.stderr
    rec = read_recording(tmp_path / "s.imrec")
    dec = decode_session(rec.packets, rec.meta)
    for p, s in dec.items():
        assert len(s.sample_idx) == n_rows[p]  # every valid row is a sample
    r = run("analyze", "s.imrec", "--out", "rep")
    assert r.returncode == 0, r.stderr
    report = json.loads((tmp_path / "rep" / "report.json").read_text())
    q = report["quality"]
    assert q["sensors"]["thigh_l"]["lost_samples"] == 3
    assert q["sensors"]["pelvis"]["lost_samples"] == 2
    assert q["sensors"]["thigh_r"]["lost_samples"] == 0
    assert any("3 sample(s) missing" in n for n in q["import"]["notes"])
    assert all(v["status"] == "ok" for v in q["gyro_units"]["sensors"].values())
    assert report["gait"]["strides"]["left"]["valid"] > 5
    assert report["gait"]["strides"]["right"]["valid"] > 5


def test_sto_export_counts_gap_filled_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from imuhip.interop.exporters import _write_sto
    from imuhip.types import OrientationSession

    m = 50
    valid = np.ones(m, bool)
    valid[10:17] = False
    ori = OrientationSession(
        t_s=np.arange(m) / 100.0,
        rate_hz=100.0,
        q_world_sensor={"pelvis": np.tile([1.0, 0, 0, 0], (m, 1))},
        acc_m_s2={"pelvis": np.zeros((m, 3))},
        gyr_rad_s={"pelvis": np.zeros((m, 3))},
        valid={"pelvis": valid},
        source="test",
    )
    with caplog.at_level("WARNING"):
        (path,) = _write_sto(ori, tmp_path, "s", force=False)
    assert path.exists()
    assert "7 of 50 pelvis orientations in the .sto are gap-filled" in caplog.text
