"""Declared rates and device clocks checked against the packets when a recording is read."""

from __future__ import annotations

import dataclasses
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest import protocol
from imuhip.ingest.decode import decode_session
from imuhip.ingest.recording import RecordingWriter, read_packet_arrays, read_recording
from imuhip.ingest.recording.clock_check import check_clocks, headers_from_payloads
from imuhip.types import ImuSamples, SessionMeta

TYPICAL = Path(__file__).resolve().parents[3] / "recordings" / "typical.imrec"


def _shift_time(payload: bytes, dt_us: int) -> bytes:
    v, f, seq, t, n = struct.unpack_from("<BBHIB", payload)
    body = struct.pack("<BBHIB", v, f, seq, (t + dt_us) % (1 << 32), n) + payload[9:-2]
    return body + struct.pack("<H", protocol.crc16(body))


def _rewrite(path: Path, *, step_us: int = 0, rate_factor: float = 1.0) -> Path:
    """typical.imrec with thigh_l's device clock stepped by ``step_us`` halfway through and
    every declared rate multiplied by ``rate_factor``."""
    rec = read_recording(TYPICAL)
    idx = [i for i, p in enumerate(rec.packets) if p.sensor == "thigh_l"]
    half = idx[len(idx) // 2]
    sensors = tuple(
        dataclasses.replace(s, rate_hz=s.rate_hz * rate_factor) for s in rec.meta.sensors
    )
    with RecordingWriter(path, dataclasses.replace(rec.meta, sensors=sensors)) as w:
        for e in rec.events:
            w.write_event(e)
        for i, p in enumerate(rec.packets):
            if step_us and p.sensor == "thigh_l" and i >= half:
                p = dataclasses.replace(p, payload=_shift_time(p.payload, step_us))
            w.write_packet(p)
    return path


@pytest.fixture(scope="module")
def samples_of_typical() -> dict[str, int]:
    rec = read_recording(TYPICAL)
    return {k: len(s.sample_idx) for k, s in decode_session(rec.packets, rec.meta).items()}


def test_clean_recording_gives_no_line_and_keeps_meta() -> None:
    rec = read_recording(TYPICAL)
    assert not [w for w in rec.warnings if "clock" in w or "declares" in w]
    heads = {
        s.placement: headers_from_payloads([p.payload for p in rec.packets_of(s.placement)])
        for s in rec.meta.sensors
    }
    host = {
        s.placement: [p.host_rx_ns for p in rec.packets_of(s.placement)] for s in rec.meta.sensors
    }
    meta, lines = check_clocks(rec.meta, heads, host)
    assert meta is rec.meta and lines == []


@pytest.fixture(scope="module")
def typical_decoded() -> dict[str, ImuSamples]:
    rec = read_recording(TYPICAL)
    return decode_session(rec.packets, rec.meta)


@pytest.mark.parametrize(
    ("step_us", "word", "would"), [(-2_000_000, "back", 200), (1_000_000, "forward", 100)]
)
def test_clock_step_is_named_and_rejoined_on_the_counter(
    tmp_path: Path, typical_decoded: dict[str, ImuSamples], step_us: int, word: str, would: int
) -> None:
    """typical.imrec with thigh_l's clock stepped halfway decodes exactly like the clean file."""
    f = _rewrite(tmp_path / "step.imrec", step_us=step_us)
    for rec in (read_recording(f), read_packet_arrays(f)):
        lines = [w for w in rec.warnings if "device clock" in w]
        assert len(lines) == 1, rec.warnings
        assert lines[0].startswith(
            f"thigh_l: device clock steps {word} 1 time(s), largest {abs(step_us) / 1e6:.3f} s"
        )
        assert "re-joins the device time on the counter: no sample dropped or misplaced" in lines[0]
        assert f"about {would} samples would have been" in lines[0]
    rec = read_recording(f)
    got = decode_session(rec.packets, rec.meta)
    for p, clean in typical_decoded.items():
        assert got[p].stats.clock_steps == (1 if p == "thigh_l" else 0)
        assert got[p].stats.overlapping_samples == 0 and got[p].stats.gaps == ()
        for name in ("sample_idx", "t_dev_s", "host_rx_ns", "acc_m_s2", "gyr_rad_s"):
            np.testing.assert_array_equal(getattr(got[p], name), getattr(clean, name), name)


@pytest.mark.slow  # runs `imuhip info` (~5 s)
def test_rate_declared_ten_times_too_low_is_corrected_and_named(
    tmp_path: Path, samples_of_typical: dict[str, int]
) -> None:
    f = _rewrite(tmp_path / "rate.imrec", rate_factor=0.1)
    for rec in (read_recording(f), read_packet_arrays(f)):
        assert {s.rate_hz for s in rec.meta.sensors} == {100.0}
        lines = [w for w in rec.warnings if "declares" in w]
        assert len(lines) == 3
        assert all("declares 10 Hz but the packets carry 100 Hz" in w for w in lines)
        assert all("decoded at 100 Hz instead" in w for w in lines)
    rec = read_recording(f)
    got = {k: len(s.sample_idx) for k, s in decode_session(rec.packets, rec.meta).items()}
    assert got == samples_of_typical  # nothing discarded
    r = subprocess.run(
        [sys.executable, "-m", "imuhip", "info", str(f)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert "warning: thigh_l: the header declares 10 Hz but the packets carry 100 Hz" in r.stdout
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("samples "))
    assert row.split()[1:] == [str(samples_of_typical[p]) for p in ("pelvis", "thigh_l", "thigh_r")]


def test_clocks_that_disagree_are_not_corrected() -> None:
    """Device clock says 100 Hz, host clock 50 Hz: the header (10 Hz) is named, not changed."""
    n, per = 40, 5
    pk = [protocol.encode_packet(i, i * per * 10_000, np.zeros((per, 6), int)) for i in range(n)]
    host = [10**9 + i * 100_000_000 for i in range(n)]  # 5 samples per 0.1 s = 50 Hz
    rec = read_recording(TYPICAL)
    s0 = dataclasses.replace(rec.meta.sensors[0], rate_hz=10.0)
    meta = SessionMeta("x", "2024-01-01T00:00:00+00:00", "S", (s0,))
    out, lines = check_clocks(meta, {s0.placement: headers_from_payloads(pk)}, {s0.placement: host})
    assert out is meta
    assert lines == [
        f"{s0.placement}: the header declares 10 Hz but the device clock says 100 Hz and the host "
        "clock 50 Hz; not corrected: samples may be discarded or misplaced in time"
    ]


def test_a_sensor_whose_data_end_or_start_early_is_named(tmp_path) -> None:
    """typical.imrec with thigh_r's packets cut after 20 s and thigh_l's before 10 s: a battery
    that died, a sensor switched on late. Reading says so, naming each, in session seconds."""
    rec = read_recording(TYPICAL)
    t0 = min(p.host_rx_ns for p in rec.packets)
    end = (max(p.host_rx_ns for p in rec.packets) - t0) / 1e9

    def t(p) -> float:
        return (p.host_rx_ns - t0) / 1e9

    path = tmp_path / "cut.imrec"
    with RecordingWriter(path, rec.meta) as w:
        for e in rec.events:
            w.write_event(e)
        for p in rec.packets:
            if not (
                (p.sensor == "thigh_r" and t(p) > 20.0) or (p.sensor == "thigh_l" and t(p) < 10.0)
            ):
                w.write_packet(p)
    last_r = max(t(p) for p in rec.packets_of("thigh_r") if t(p) <= 20.0)
    first_l = min(t(p) for p in rec.packets_of("thigh_l") if t(p) >= 10.0)
    lines = sorted(w for w in read_recording(path).warnings if "its data" in w)
    assert lines == [
        f"thigh_l: its data start at {first_l:.1f} s, {first_l:.1f} s after the first sensor's "
        "(no samples before that)",
        f"thigh_r: its data end at {last_r:.1f} s, {end - last_r:.1f} s before the last "
        "sensor's (no samples after that)",
    ]
    assert not [w for w in rec.warnings if "its data" in w]  # the whole recording: nothing
