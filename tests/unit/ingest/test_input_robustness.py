"""Bad-input paths of the round-3 code (found in review) that must not crash.

A recording whose sensors hold only a few samples (a crash right after connecting, a two-row
CSV import) reached :func:`imuhip.ingest.units_check.check_gyro_units` with fewer than two analysis
blocks, and ``np.gradient`` raised its own ValueError: a traceback from ``export --format sto``
and ``rom-test``, an unrelated message from ``analyze``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from imuhip.ingest.units_check import check_gyro_units


@pytest.mark.parametrize("rate_hz", [25.0, 100.0, 200.0, 1000.0])
def test_too_few_samples_is_not_enough_motion(rate_hz: float) -> None:
    rng = np.random.default_rng(0)
    q = max(1, int(rate_hz // 25.0))  # samples per analysis block (~25 Hz)
    for n in (0, 1, 2, q, 2 * q - 1):
        acc = rng.normal(size=(n, 3)) + np.array([0.0, 0.0, 9.81])
        gyr = rng.normal(size=(n, 3))
        r = check_gyro_units(acc, gyr, rate_hz)
        assert r.status == "not_enough_motion", (rate_hz, n, r.message)
        assert r.suspected_factor is None


def test_cli_export_sto_of_a_two_sample_import_is_one_line(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    args = []
    for p in ("pelvis", "thigh_l", "thigh_r"):
        cols: dict[str, object] = {"t_s": [0.0, 0.01]}
        for j, a in enumerate("xyz"):
            cols[f"acc_{a}_m_s2"] = [0.1 * j, 0.1 * j + 0.01] if a != "z" else [9.8, 9.81]
            cols[f"gyr_{a}_rad_s"] = rng.normal(size=2) * 0.1
        pd.DataFrame(cols).to_csv(tmp_path / f"{p}.csv", index=False)
        args.append(f"--sensor={p}={p}.csv")

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "imuhip", *a],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )

    r = run("import", "csv", *args, "-o", "tiny.imrec")
    assert r.returncode == 0, r.stderr
    r = run("export", "tiny.imrec", "--format", "sto", "--out", "sto")
    assert "Traceback" not in r.stderr, r.stderr
    assert "gradient" not in r.stderr, r.stderr
    if r.returncode != 0:  # a clear refusal is fine; a crash is not
        errors = [ln for ln in r.stderr.splitlines() if "error" in ln]
        assert r.returncode == 1 and len(errors) == 1, r.stderr


@pytest.mark.parametrize("bad", [0.0, -5.0, float("nan"), float("inf")])
def test_event_config_refuses_a_bad_minima_lowpass(bad: float) -> None:
    from imuhip.gait.events import EventConfig

    with pytest.raises(ValueError, match="minima_lowpass_hz"):
        EventConfig(minima_lowpass_hz=bad)
    EventConfig(minima_lowpass_hz=None)  # off is allowed


def test_import_record_in_the_report_names_files_without_their_folders() -> None:
    """Folders of source files often carry the patient's name (``.../Anna_Meier/pelvis.csv``);
    the report and the import notes name the file only (the subject is a pseudonym)."""
    import dataclasses

    from imuhip.ingest.recording import read_recording
    from imuhip.ingest.units_check import input_quality
    from imuhip.interop._common import ImportedSensor
    from imuhip.interop.orientation_file import trim_notes
    from imuhip.types import AlignedSession

    folder = "/data/clinic/Anna_Meier"
    idx = np.arange(10)
    sensors = [
        ImportedSensor(
            p,
            100.0,
            idx[: 10 - k],
            idx[: 10 - k] / 100.0,
            np.zeros((10 - k, 3)),
            None,
            None,
            None,
            source=f"{folder}/{p}.txt",
        )
        for k, p in enumerate(("pelvis", "thigh_l"))
    ]
    notes = trim_notes(sensors)
    assert len(notes) == 1 and "pelvis.txt" in notes[0]
    assert "Anna_Meier" not in notes[0]

    meta = read_recording(Path(__file__).parents[3] / "recordings" / "typical.imrec").meta
    imported = {
        "format": "generic_csv",
        "files": {"pelvis": f"{folder}/pelvis.csv", "thigh_l": "thigh_l.csv"},
        "notes": [f"{folder}/pelvis.csv: 3 sample(s) outside"],
    }
    meta = dataclasses.replace(meta, extra={"import": imported})
    q = input_quality(AlignedSession(t_s=np.zeros(0), rate_hz=100.0, sensors={}), meta)
    assert q["import"]["files"] == {"pelvis": "pelvis.csv", "thigh_l": "thigh_l.csv"}
    assert "Anna_Meier" not in str(q["import"])
    assert meta.extra["import"]["files"]["pelvis"] == f"{folder}/pelvis.csv"  # not mutated


def _walk_imori(tmp_path: Path) -> Path:
    """A small orientation session written by the library itself."""
    from imuhip.interop._common import ImportedSensor
    from imuhip.interop.orientation_file import (
        meta_for_vendor_session,
        orientation_session_from_imported,
        save_orientation_session,
    )

    idx = np.arange(200)
    q = np.tile([1.0, 0.0, 0.0, 0.0], (200, 1))
    sensors = [
        ImportedSensor(
            p,
            100.0,
            idx,
            idx / 100.0,
            np.tile([0.0, 0.0, 9.81], (200, 1)),
            None,
            None,
            q,
            source=f"{p}.txt",
        )
        for p in ("pelvis", "thigh_l", "thigh_r")
    ]
    ori = orientation_session_from_imported(sensors, source="vendor:test")
    meta = meta_for_vendor_session(
        sensors,
        subject="S01",
        session_id="t",
        start_wall_time="2024-01-01T00:00:00+00:00",
        vendor="test",
    )
    out = tmp_path / "w.imori.npz"
    save_orientation_session(out, ori, meta)
    return out


@pytest.mark.parametrize("cut", ["empty", "truncated", "damaged"])
def test_a_broken_orientation_session_is_an_import_format_error(tmp_path: Path, cut: str) -> None:
    from imuhip.errors import ImportFormatError
    from imuhip.interop.orientation_file import analyze_orientation_file, load_orientation_session

    good = _walk_imori(tmp_path)
    load_orientation_session(good)  # the intact file reads
    data = bytearray(good.read_bytes())
    bad = tmp_path / f"{cut}.imori.npz"
    if cut == "empty":
        data = bytearray()
    elif cut == "truncated":
        data = data[: len(data) // 2]
    else:  # flip bytes inside a quaternion array's compressed data
        import zipfile

        info = zipfile.ZipFile(good).getinfo("q_world_sensor__pelvis.npy")
        start = info.header_offset + 30 + len(info.filename) + len(info.extra)
        for i in range(start + info.compress_size // 2, start + info.compress_size // 2 + 40):
            data[i] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(ImportFormatError, match=str(bad.name)):
        load_orientation_session(bad)
    with pytest.raises(ImportFormatError, match=str(bad.name)):
        analyze_orientation_file(bad)
