from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from imuhip.errors import ImportFormatError
from imuhip.ingest.decode import decode_session
from imuhip.ingest.recording import read_recording
from imuhip.interop._common import ImportedSensor
from imuhip.interop.native import choose_lsb, quantise, write_native_recording


def _sensor(placement: str, n: int = 400, rate: float = 100.0, seed: int = 0, **kw):
    rng = np.random.default_rng(seed)
    idx = kw.pop("sample_idx", np.arange(n, dtype=np.int64))
    m = len(idx)
    return ImportedSensor(
        placement=placement,
        rate_hz=rate,
        sample_idx=idx,
        t_s=10.0 + idx / rate,
        acc_m_s2=rng.normal(0, 15, (m, 3)),
        gyr_rad_s=kw.pop("gyr", rng.normal(0, 4, (m, 3))),
        mag_ut=kw.pop("mag", None),
        q_world_sensor=None,
        source=f"{placement}.csv",
        **kw,
    )


def test_choose_lsb_fits_peak_and_respects_floor() -> None:
    x = np.array([[100.0, -250.0, 3.0]])
    lsb = choose_lsb(x, "acc")
    assert 250.0 / lsb <= 32767
    assert 250.0 / lsb > 32700  # uses nearly the full int16 range
    small = choose_lsb(np.full((3, 3), 1e-3), "gyr")
    assert small == pytest.approx(np.radians(250) / 32767)
    q = quantise(x, lsb)
    assert np.max(np.abs(q * lsb - x)) <= lsb / 2 + 1e-12


def test_recording_decodes_to_the_samples_within_half_a_count(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    sensors = [
        _sensor("pelvis", seed=1, mag=rng.normal(0, 40, (400, 3))),
        _sensor("thigh_l", seed=2),
    ]
    meta = write_native_recording(sensors, tmp_path / "a.imrec", subject="S01")
    rec = read_recording(tmp_path / "a.imrec")
    assert rec.complete
    assert rec.meta.extra["import"]["format"] == "generic_csv"
    samples = decode_session(rec.packets, rec.meta)
    for s in sensors:
        sm = meta.sensor(s.placement)
        d = samples[s.placement]
        assert len(d) == len(s)
        np.testing.assert_array_equal(d.sample_idx, s.sample_idx)
        assert np.max(np.abs(d.acc_m_s2 - s.acc_m_s2)) <= sm.acc_lsb_m_s2 / 2 + 1e-9
        assert np.max(np.abs(d.gyr_rad_s - s.gyr_rad_s)) <= sm.gyr_lsb_rad_s / 2 + 1e-9
        np.testing.assert_allclose(d.t_dev_s - d.t_dev_s[0], s.t_s - s.t_s[0], atol=1e-6)
        assert d.stats.lost_samples == 0
    pel = samples["pelvis"]
    assert pel.mag_ut is not None
    assert np.max(np.abs(pel.mag_ut - sensors[0].mag_ut)) <= meta.sensor("pelvis").mag_lsb_ut / 2


def test_missing_samples_become_a_gap_of_exactly_those_samples(tmp_path: Path) -> None:
    # samples 102..106 are missing: before, the packets [100, 105) and [105, 110) were dropped
    # whole (8 valid samples lost with them); now every imported sample comes back
    idx = np.concatenate([np.arange(0, 102), np.arange(107, 300)]).astype(np.int64)
    s = _sensor("pelvis", sample_idx=idx)
    write_native_recording([s], tmp_path / "g.imrec")
    rec = read_recording(tmp_path / "g.imrec")
    d = decode_session(rec.packets, rec.meta)["pelvis"]
    np.testing.assert_array_equal(d.sample_idx, idx)
    assert d.stats.lost_samples == 5
    assert [(g.start_idx, g.stop_idx) for g in d.stats.gaps] == [(102, 107)]
    assert d.stats.lost_packets == 0  # nothing was lost on air
    lsb = rec.meta.sensor("pelvis").gyr_lsb_rad_s
    assert np.max(np.abs(d.gyr_rad_s - s.gyr_rad_s)) <= lsb / 2 + 1e-12


def test_refuses_missing_gyro_mixed_rates_duplicates(tmp_path: Path) -> None:
    no_gyr = ImportedSensor(
        "pelvis",
        100.0,
        np.arange(5),
        np.arange(5) / 100,
        np.zeros((5, 3)),
        None,
        None,
        None,
        "p.csv",
    )
    with pytest.raises(ImportFormatError, match=r"p\.csv: no gyroscope columns"):
        write_native_recording([no_gyr], tmp_path / "x.imrec")
    with pytest.raises(ImportFormatError, match=r"thigh_l\.csv: rate 50 Hz differs .* mixed rates"):
        write_native_recording(
            [_sensor("pelvis"), _sensor("thigh_l", rate=50.0)], tmp_path / "y.imrec"
        )
    with pytest.raises(ImportFormatError, match="placement 'pelvis' already given"):
        write_native_recording([_sensor("pelvis"), _sensor("pelvis")], tmp_path / "z.imrec")
    assert not (tmp_path / "x.imrec").exists()


def test_recording_stores_source_file_names_without_folders(tmp_path: Path) -> None:
    """Folders of clinical data often carry the patient's name; the recording keeps the
    subject pseudonym and the bare file names only."""
    folder = "/data/clinic/Anna_Meier"
    sensors = [dataclasses.replace(_sensor("pelvis", seed=1), source=f"{folder}/pelvis.csv")]
    write_native_recording(sensors, tmp_path / "a.imrec", subject="S01")
    rec = read_recording(tmp_path / "a.imrec")
    imp = rec.meta.extra["import"]
    assert imp["files"] == {"pelvis": "pelvis.csv"}
    assert list(imp["rates_hz"]) == ["pelvis.csv"]
    assert "Anna_Meier" not in (tmp_path / "a.imrec").read_bytes().decode("latin-1")
