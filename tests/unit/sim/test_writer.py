"""Simulated recordings are byte-reproducible: the clock-stamped stop frame is restamped."""

from __future__ import annotations

from pathlib import Path

import pytest

import imuhip.ingest.recording.writer as rec_writer
from imuhip.ingest.recording import read_recording
from imuhip.sim.writer import write_imrec
from imuhip.types import SessionEvent
from tests.unit.ingest.test_recording import make_meta


@pytest.mark.parametrize(
    "clock_ns",
    [
        123_456_789,
        # the frame sync bytes a5 5a inside the stop frame's own time field or CRC: the search
        # for the last frame used to stop there and read past the end of the file (struct.error,
        # seen once in ~1,200 tests, as the writer stamps time.monotonic_ns())
        int.from_bytes(b"\x00\x00\x00\x00\x00\x00\xa5\x5a", "little"),
        1_000_007_238,  # its stop frame's CRC-32 ends in a5 5a (the sync bytes)
    ],
)
def test_the_stop_frame_is_restamped_whatever_the_clock_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, clock_ns: int
) -> None:
    monkeypatch.setattr(rec_writer.time, "monotonic_ns", lambda: clock_ns)
    events = [SessionEvent(5_000_000_000, "calibration_start", None, {})]
    a, _ = write_imrec(tmp_path / "a", make_meta(), [], events)
    rec = read_recording(a)
    assert [e.kind for e in rec.events] == ["calibration_start", "stop"]
    assert rec.events[-1].host_rx_ns == 5_100_000_000  # 0.1 s after the last frame
    monkeypatch.setattr(rec_writer.time, "monotonic_ns", lambda: 42)
    b, _ = write_imrec(tmp_path / "b", make_meta(), [], events)
    assert a.read_bytes() == b.read_bytes()  # independent of the clock
