"""The .imrec format: round trip, validation, damage handling, non-blocking writer."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

from imuhip.errors import RecordingError
from imuhip.ingest.protocol import MAG_LSB_UT, acc_lsb_m_s2, encode_packet, gyr_lsb_rad_s
from imuhip.ingest.recording import (
    FRAME_OVERHEAD,
    MAGIC,
    RecordingWriter,
    iter_frames,
    meta_from_json,
    meta_to_json,
    open_recording,
    read_recording,
)
from imuhip.types import RawPacket, SensorMeta, SessionEvent, SessionMeta

PLACEMENTS = ("pelvis", "thigh_l", "thigh_r", "lumbar")


def make_meta(placements=PLACEMENTS, subject="S07", has_mag=False) -> SessionMeta:
    sensors = tuple(
        SensorMeta(
            placement=p,
            rate_hz=200.0,
            acc_lsb_m_s2=acc_lsb_m_s2(16),
            gyr_lsb_rad_s=gyr_lsb_rad_s(2000),
            mag_lsb_ut=MAG_LSB_UT,
            has_mag=has_mag,
            address=f"AA:BB:CC:00:00:0{i}",
            model="imuhip-ref",
            serial=f"SN{i:04d}",
            firmware="1.2.3",
            calibration={"gyr_bias_rad_s": [0.001, -0.002, 0.0005]} if i == 0 else None,
        )
        for i, p in enumerate(placements)
    )
    return SessionMeta(
        session_id="sess-0001",
        start_wall_time="2024-05-01T09:30:00.123456+00:00",
        subject=subject,
        sensors=sensors,
        software="imuhip 0.1.0",
        notes="unit test",
        extra={"site": "lab"},
    )


def make_packets(n_per_sensor=20, placements=PLACEMENTS, seed=0) -> list[RawPacket]:
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n_per_sensor):
        for j, p in enumerate(placements):
            samples = rng.integers(-32768, 32768, size=(4, 6))
            payload = encode_packet(k, k * 20_000, samples)
            out.append(RawPacket(p, 1_000_000_000 + k * 20_000_000 + j * 1000, payload))
    return out


def write_file(path: Path, packets, events=(), meta=None, close=True) -> None:
    w = RecordingWriter(path, meta or make_meta())
    for ev in events:
        w.write_event(ev)
    for p in packets:
        w.write_packet(p)
    if close:
        w.close()


# ---------------------------------------------------------------------------------------------
# round trip
# ---------------------------------------------------------------------------------------------


def test_round_trip_bytes_order_and_events(tmp_path: Path) -> None:
    meta = make_meta(has_mag=True)
    packets = make_packets()
    # payloads that are not valid protocol packets are stored verbatim too (decode judges them)
    packets.insert(5, RawPacket("thigh_r", 1_000_050_000, b""))
    packets.insert(9, RawPacket("lumbar", 1_000_090_000, bytes(range(256)) * 3))
    events = [
        SessionEvent(999, "connect", "pelvis", {"address": "AA:BB", "mtu": 247}),
        SessionEvent(1_000_000_500, "annotation", None, {"text": "Gang über den Flur ✓"}),
        SessionEvent(1_000_000_600, "calibration_start", None, {"pose": "standing"}),
    ]
    path = tmp_path / "s.imrec"
    with RecordingWriter(path, meta) as w:
        w.write_event(events[0])
        for i, p in enumerate(packets):
            w.write_packet(p)
            if i == 3:
                w.write_event(events[1])
        w.write_event(events[2])
    rec = read_recording(path)
    assert rec.meta == meta
    assert rec.packets == packets
    assert [p.payload for p in rec.packets] == [p.payload for p in packets]
    assert all(type(p.payload) is bytes for p in rec.packets)
    assert rec.events[:3] == events
    assert rec.events[3].kind == "stop"
    assert rec.complete
    assert rec.warnings == []
    assert rec.valid_bytes == rec.size_bytes == path.stat().st_size
    # streaming gives the same frames in file order: events interleaved where written
    frames = list(iter_frames(path))
    assert [f for f in frames if isinstance(f, RawPacket)] == packets
    assert frames[0] == events[0]
    assert frames[5] == events[1]


def test_streaming_reader_small_chunks_equals_whole_read(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    write_file(path, make_packets(50), [SessionEvent(5, "annotation", None, {"x": 1})])
    rec = read_recording(path)
    from imuhip.ingest.recording import RecordingStream

    stream = RecordingStream(path, chunk_bytes=1024)
    frames = list(stream)
    assert [f for f in frames if isinstance(f, RawPacket)] == rec.packets
    assert [f for f in frames if isinstance(f, SessionEvent)] == rec.events
    assert stream.complete and stream.warnings == []
    assert stream.valid_bytes == path.stat().st_size


def test_meta_json_round_trip_and_field_order() -> None:
    meta = make_meta()
    text = meta_to_json(meta)
    assert meta_from_json(text) == meta
    obj = json.loads(text)
    assert obj["subject"] == "S07"
    assert obj["sensors"][0]["placement"] == "pelvis"
    assert obj["sensors"][0]["acc_lsb_m_s2"] == acc_lsb_m_s2(16)  # floats exact


def test_int_and_numpy_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    p = make_packets(1)[0]
    with RecordingWriter(path, make_meta()) as w:
        w.write_packet(RawPacket(p.sensor, np.int64(-5), bytearray(p.payload)))  # type: ignore[arg-type]
    rec = read_recording(path)
    assert rec.packets[0].host_rx_ns == -5
    assert rec.packets[0].payload == p.payload


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda o: o["sensors"][0].update(placement="hip"), "sensors[0].placement"),
        (lambda o: o["sensors"][1].pop("rate_hz"), "sensors[1].rate_hz"),
        (lambda o: o["sensors"][0].update(has_mag="yes"), "sensors[0].has_mag"),
        (lambda o: o["sensors"][0].update(rate_hz=True), "sensors[0].rate_hz"),
        (lambda o: o["sensors"][0].update(acc_lsb_m_s2=-1.0), "sensors[0]"),
        (lambda o: o.pop("session_id"), "session_id"),
        (lambda o: o.update(subject="Jane Doe"), "subject"),
        (lambda o: o.update(subject=""), "subject"),
        (lambda o: o.update(subject="x" * 33), "subject"),
        (lambda o: o.update(start_wall_time="yesterday"), "start_wall_time"),
        (lambda o: o.update(start_wall_time="2024-05-01T09:30:00"), "start_wall_time"),
        (lambda o: o.update(sensors=[]), "sensors"),
        (lambda o: o.update(sensors={"a": 1}), "sensors"),
        (lambda o: o["sensors"].append(dict(o["sensors"][0])), "sensors[4].placement"),
    ],
)
def test_meta_validation_names_the_field(mutate, field: str) -> None:
    obj = json.loads(meta_to_json(make_meta()))
    mutate(obj)
    with pytest.raises(RecordingError, match="field " + re.escape(field)):
        meta_from_json(json.dumps(obj))


def test_writer_refuses_a_name_as_subject_before_creating_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    with pytest.raises(RecordingError, match="pseudonym"):
        RecordingWriter(path, make_meta(subject="Max Mustermann"))
    assert not path.exists()


def test_writer_refuses_to_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    path.write_bytes(b"precious")
    with pytest.raises(RecordingError, match="already exists"):
        RecordingWriter(path, make_meta())
    assert path.read_bytes() == b"precious"
    with RecordingWriter(path, make_meta(), overwrite=True):
        pass
    assert read_recording(path).complete


def test_writer_rejects_unknown_sensor_and_bad_event(tmp_path: Path) -> None:
    with RecordingWriter(tmp_path / "s.imrec", make_meta(("pelvis",))) as w:
        with pytest.raises(ValueError, match="thigh_l"):
            w.write_packet(RawPacket("thigh_l", 0, b"x"))
        with pytest.raises(ValueError, match="kind"):
            w.write_event(SessionEvent(0, "Bad Kind"))
        with pytest.raises(ValueError, match="JSON"):
            w.write_event(SessionEvent(0, "annotation", None, {"x": object()}))
        with pytest.raises(TypeError, match="host_rx_ns"):
            w.write_event(SessionEvent(1.5, "annotation"))  # type: ignore[arg-type]
    with pytest.raises(RecordingError, match="closed"):
        w.write_packet(RawPacket("pelvis", 0, b"x"))


def test_missing_file_and_not_a_recording(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_recording(tmp_path / "nope.imrec")
    bad = tmp_path / "bad.imrec"
    bad.write_text("time,acc_x\n0,1\n")
    with pytest.raises(RecordingError, match="not an imuhip recording"):
        read_recording(bad)
    with pytest.raises(RecordingError, match="not an imuhip recording"):
        open_recording(bad)
    empty = tmp_path / "empty.imrec"
    empty.write_bytes(b"")
    with pytest.raises(RecordingError, match="not an imuhip recording"):
        read_recording(empty)


def test_corrupt_header_is_a_one_line_recording_error(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    write_file(path, make_packets(2))
    data = bytearray(path.read_bytes())
    data[20] ^= 0x01  # inside the metadata JSON
    n_json = struct.unpack_from("<I", data, 10)[0]
    data[8 + 2 + 4 + n_json + 4 + 30] ^= 0x01  # ... and inside its copy (the first frame)
    path.write_bytes(bytes(data))
    with pytest.raises(RecordingError, match=r"corrupt header.*no intact header copy") as exc:
        read_recording(path)
    assert "\n" not in str(exc.value)
    path.write_bytes(bytes(data[:30]))
    with pytest.raises(RecordingError, match="corrupt header"):
        read_recording(path)
    # a header with a valid CRC whose JSON breaks a rule: the field is named
    obj = json.loads(meta_to_json(make_meta()))
    obj["sensors"][0]["placement"] = "elbow"
    text = json.dumps(obj).encode()
    body = struct.pack("<HI", 1, len(text)) + text
    path.write_bytes(MAGIC + body + struct.pack("<I", zlib.crc32(body)))
    with pytest.raises(RecordingError, match=r"sensors\[0\]\.placement"):
        read_recording(path)
    body = struct.pack("<HI", 7, len(text)) + text
    path.write_bytes(MAGIC + body + struct.pack("<I", zlib.crc32(body)))
    with pytest.raises(RecordingError, match="version 7"):
        read_recording(path)


# ---------------------------------------------------------------------------------------------
# damage: truncation and bit flips
# ---------------------------------------------------------------------------------------------


def _frame_offsets(path: Path) -> tuple[int, list[int]]:
    data = path.read_bytes()
    (n,) = struct.unpack_from("<I", data, 10)
    pos = 14 + n + 4
    (length,) = struct.unpack_from("<I", data, pos + 12)
    if b'"kind":"header_copy"' in data[pos : pos + FRAME_OVERHEAD + length]:
        pos += FRAME_OVERHEAD + length  # the header's copy belongs to the header
    hdr_end = pos
    offs = []
    while pos < len(data):
        offs.append(pos)
        (length,) = struct.unpack_from("<I", data, pos + 12)
        pos += FRAME_OVERHEAD + length
    return hdr_end, offs


def test_truncation_at_every_offset_yields_prefix_and_warning(tmp_path: Path) -> None:
    src = tmp_path / "full.imrec"
    packets = make_packets(3, placements=("pelvis", "thigh_l"))
    write_file(src, packets, meta=make_meta(("pelvis", "thigh_l")))
    data = src.read_bytes()
    hdr_end, offs = _frame_offsets(src)
    assert len(offs) == len(packets) + 1  # + stop event
    cut = tmp_path / "cut.imrec"
    for size in range(hdr_end, len(data)):
        cut.write_bytes(data[:size])
        rec = read_recording(cut)
        n_whole = sum(1 for o in offs if o + _flen(data, o) <= size)
        assert rec.packets == packets[:n_whole], size
        assert not rec.complete
        ends_inside = size not in offs
        if ends_inside:
            assert any(f"truncated at byte offset {offs[n_whole]}" in w for w in rec.warnings), (
                size,
                rec.warnings,
            )
        assert rec.valid_bytes == (offs[n_whole] if n_whole < len(offs) else len(data))
    # cut inside the header: a one-line RecordingError, never another exception
    primary_end = 14 + struct.unpack_from("<I", data, 10)[0] + 4
    for size in range(primary_end):
        cut.write_bytes(data[:size])
        with pytest.raises(RecordingError):
            read_recording(cut)
    # cut inside the header's copy: the header reads, no frames, a truncation warning
    for size in range(primary_end + 1, hdr_end):
        cut.write_bytes(data[:size])
        rec = read_recording(cut)
        assert rec.packets == [] and rec.events == []
        assert any("truncated" in w for w in rec.warnings)


def _flen(data: bytes, off: int) -> int:
    return FRAME_OVERHEAD + struct.unpack_from("<I", data, off + 12)[0]


def test_bit_flip_warns_with_offset_and_frame_and_resyncs(tmp_path: Path) -> None:
    src = tmp_path / "full.imrec"
    packets = make_packets(10)
    write_file(src, packets)
    data = src.read_bytes()
    _, offs = _frame_offsets(src)
    k = 17
    for where in (
        0,
        2,
        5,
        12,
        16,
        30,
        _flen(data, offs[k]) - 1,
    ):  # sync, type, ns, len, payload, crc
        bad = bytearray(data)
        bad[offs[k] + where] ^= 0x10
        path = tmp_path / "bad.imrec"
        path.write_bytes(bytes(bad))
        rec = read_recording(path)
        msg = [w for w in rec.warnings if f"frame {k} at byte offset {offs[k]}" in w]
        assert msg, (where, rec.warnings)
        assert f"skipped {offs[k + 1] - offs[k]} bytes" in msg[0]
        assert rec.packets == packets[:k] + packets[k + 1 :], where
        assert rec.complete
        assert rec.valid_bytes == len(data) - (offs[k + 1] - offs[k])


def test_random_bit_flips_never_raise(tmp_path: Path) -> None:
    src = tmp_path / "full.imrec"
    packets = make_packets(5)
    write_file(src, packets)
    data = src.read_bytes()
    hdr_end, _ = _frame_offsets(src)
    rng = np.random.default_rng(1)
    path = tmp_path / "bad.imrec"
    for _ in range(200):
        bad = bytearray(data)
        for pos in rng.integers(hdr_end, len(data), size=rng.integers(1, 4)):
            bad[pos] ^= 1 << int(rng.integers(0, 8))
        path.write_bytes(bytes(bad))
        rec = read_recording(path)
        assert rec.warnings
        # everything read back is a packet that was written (no invented frames)
        assert all(p in packets for p in rec.packets)
        assert rec.valid_bytes < len(data)
        stream = open_recording(path)
        assert [f for f in stream if isinstance(f, RawPacket)] == rec.packets


def test_garbage_appended_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    packets = make_packets(2)
    write_file(path, packets)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x00" * 100)
    rec = read_recording(path)
    assert rec.packets == packets and rec.complete
    assert any(f"byte offset {size}" in w and "100 bytes" in w for w in rec.warnings)


# ---------------------------------------------------------------------------------------------
# writer thread behaviour
# ---------------------------------------------------------------------------------------------


def test_writer_flushes_in_background_before_close(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    packets = make_packets(5)
    w = RecordingWriter(path, make_meta(), flush_interval_s=0.05)
    try:
        for p in packets:
            w.write_packet(p)
        deadline = time.monotonic() + 2.0
        while time.monotonic() < deadline:
            rec = read_recording(path)
            if len(rec.packets) == len(packets):
                break
            time.sleep(0.02)
        assert rec.packets == packets
        assert not rec.complete
    finally:
        w.close()
    assert read_recording(path).complete


def test_writer_thread_error_surfaces_on_next_call(tmp_path: Path) -> None:
    path = tmp_path / "s.imrec"
    w = RecordingWriter(path, make_meta(), flush_interval_s=0.02)

    class Full:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            pass

        def fileno(self) -> int:
            return real.fileno()

        def close(self) -> None:
            real.close()

    real = w._file
    w._file = Full()  # type: ignore[assignment]
    w.write_packet(make_packets(1)[0])
    deadline = time.monotonic() + 2.0
    while w._error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    with pytest.raises(RecordingError, match="No space left") as exc:
        w.write_packet(make_packets(1)[0])
    assert "1 buffered frame(s) could not be written" in str(exc.value)
    with pytest.raises(RecordingError, match="No space left"):
        w.close()


def test_writer_validates_intervals(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="flush_interval_s"):
        RecordingWriter(tmp_path / "a.imrec", make_meta(), flush_interval_s=0)
    with pytest.raises(ValueError, match="fsync_interval_s"):
        RecordingWriter(tmp_path / "a.imrec", make_meta(), fsync_interval_s=float("nan"))
    assert not (tmp_path / "a.imrec").exists()


async def test_write_packet_does_not_block_the_event_loop(tmp_path: Path) -> None:
    """3200 packets/s for 1 s from the loop while a probe task measures scheduling lag."""
    packets = make_packets(100, placements=("pelvis", "thigh_l", "thigh_r", "lumbar"))
    pkts = [dataclasses.replace(p, payload=p.payload) for p in packets] * 8  # 3200
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.002)
            lags.append(time.perf_counter() - t - 0.002)

    path = tmp_path / "s.imrec"
    w = RecordingWriter(path, make_meta(), flush_interval_s=0.05, fsync_interval_s=0.2)
    task = asyncio.create_task(probe())
    t0 = time.perf_counter()
    for tick in range(100):  # 32 packets every 10 ms
        for p in pkts[tick * 32 : (tick + 1) * 32]:
            w.write_packet(p)
        await asyncio.sleep(max(0.0, t0 + (tick + 1) * 0.01 - time.perf_counter()))
    done.set()
    await task
    w.close()
    assert len(read_recording(path).packets) == 3200
    assert len(lags) > 50
    assert max(lags) < 0.020, f"max loop lag {max(lags) * 1e3:.1f} ms"


def test_warning_lines_caps_and_summarises() -> None:
    from imuhip.ingest.recording import warning_lines

    ws = [f"frame {i} at byte offset {i} is damaged (CRC32 ...)" for i in range(12)]
    ws.append("recording has no stop event")
    out = warning_lines(ws, skipped_bytes=999)
    assert out[:5] == ws[:5]
    assert len(out) == 6
    assert out[5].startswith("... and 7 more damaged regions and 1 more warning, 999 bytes skipped")
    assert warning_lines(ws[:5]) == ws[:5]  # nothing to summarise
    assert warning_lines([]) == []
    with pytest.raises(ValueError, match="limit"):
        warning_lines(ws, limit=-1)
