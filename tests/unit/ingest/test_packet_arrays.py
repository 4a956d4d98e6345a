"""The columnar recording fast path (``read_packet_arrays`` + ``decode_session_arrays``) gives
exactly what ``read_recording`` + ``decode_session`` give, damage, loss and duplicates included."""

from __future__ import annotations

import dataclasses
import struct
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest.decode import (
    PackedPayloads,
    decode_sensor_packets,
    decode_session,
    decode_session_arrays,
)
from imuhip.ingest.protocol import encode_packet
from imuhip.ingest.recording import FRAME_OVERHEAD, read_packet_arrays, read_recording
from imuhip.types import ImuSamples, RawPacket, SessionEvent

from .test_recording import make_meta

REPO = Path(__file__).resolve().parents[3]
PLACES = ("pelvis", "thigh_l", "thigh_r")


def _assert_samples_equal(a: ImuSamples, b: ImuSamples) -> None:
    for f in dataclasses.fields(ImuSamples):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None, f.name
            assert x.dtype == y.dtype, f.name
            np.testing.assert_array_equal(x, y, err_msg=f.name)
        else:
            assert x == y, f.name


def _assert_same(path: Path) -> None:
    rec = read_recording(path)
    arr = read_packet_arrays(path)
    assert arr.meta == rec.meta
    assert arr.events == rec.events
    assert arr.warnings == rec.warnings
    assert arr.complete == rec.complete
    assert (arr.valid_bytes, arr.size_bytes) == (rec.valid_bytes, rec.size_bytes)
    for s in rec.meta.sensors:
        mine = rec.packets_of(s.placement)
        assert [arr.payloads[s.placement][i] for i in range(len(mine))] == [p.payload for p in mine]
        assert len(arr.payloads[s.placement]) == len(mine)
        np.testing.assert_array_equal(
            arr.host_rx_ns[s.placement], np.array([p.host_rx_ns for p in mine], np.int64)
        )
    want = decode_session(rec.packets, rec.meta)
    got = decode_session_arrays(arr.payloads, arr.host_rx_ns, arr.meta)
    assert list(got) == list(want)
    for k in want:
        _assert_samples_equal(got[k], want[k])


def _packets(n: int, seed: int, *, loss=0.0, dup=0.0, swap=0.0, bad_crc=0.0) -> list[RawPacket]:
    """Per sensor ``n`` packets of 4 samples; some lost, duplicated, swapped, or with a broken
    protocol CRC (the frame itself intact); an occasional packet of another length."""
    rng = np.random.default_rng(seed)
    out: list[RawPacket] = []
    for k in range(n):
        for j, p in enumerate(PLACES):
            if rng.uniform() < loss:
                continue
            ns = 5 if rng.uniform() < 0.05 else 4  # another payload length now and then
            payload = bytearray(encode_packet(k, k * 20_000, rng.integers(-3000, 3000, (ns, 6))))
            if rng.uniform() < bad_crc:
                payload[-1] ^= 0xFF
            pkt = RawPacket(p, 1_000_000_000 + k * 20_000_000 + j * 1000, bytes(payload))
            out.append(pkt)
            if rng.uniform() < dup:
                out.append(dataclasses.replace(pkt, host_rx_ns=pkt.host_rx_ns + 5))
    for _ in range(int(swap * len(out))):
        i = int(rng.integers(0, len(out) - 1))
        out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _events() -> list[SessionEvent]:
    return [
        SessionEvent(1_000_000_000, "connect", "pelvis", {"rssi": -60}),
        SessionEvent(1_100_000_000, "calibration_start", None, {"movement": "static"}),
    ]


def _write(path: Path, packets, *, mid_events=True) -> Path:
    from imuhip.ingest.recording import RecordingWriter

    w = RecordingWriter(path, make_meta(PLACES))
    for ev in _events():
        w.write_event(ev)
    for i, p in enumerate(packets):
        w.write_packet(p)
        if mid_events and i % 97 == 50:
            w.write_event(SessionEvent(p.host_rx_ns, "annotation", None, {"i": i}))
    w.close()
    return path


@pytest.mark.parametrize("seed", [0, 1])
def test_clean_lossy_duplicated_reordered_recordings_equal(tmp_path: Path, seed: int) -> None:
    _assert_same(_write(tmp_path / "clean.imrec", _packets(300, seed)))
    lossy = _packets(300, seed, loss=0.1, dup=0.05, swap=0.05, bad_crc=0.02)
    _assert_same(_write(tmp_path / "lossy.imrec", lossy))
    _assert_same(_write(tmp_path / "plain.imrec", lossy, mid_events=False))


def test_damaged_truncated_and_garbage_recordings_equal(tmp_path: Path) -> None:
    src = _write(tmp_path / "src.imrec", _packets(120, 3, loss=0.05, dup=0.05))
    data = src.read_bytes()
    (n,) = struct.unpack_from("<I", data, 10)
    hdr_end = 14 + n + 4
    rng = np.random.default_rng(7)
    bad = tmp_path / "bad.imrec"
    for trial in range(40):
        b = bytearray(data)
        for pos in rng.integers(hdr_end, len(data), size=int(rng.integers(1, 4))):
            b[pos] ^= 1 << int(rng.integers(0, 8))
        if trial % 4 == 0:
            b = b[: int(rng.integers(hdr_end, len(b)))]  # truncated too
        bad.write_bytes(bytes(b))
        _assert_same(bad)
    bad.write_bytes(data + bytes(rng.integers(0, 256, 300, dtype=np.uint8)))  # garbage
    _assert_same(bad)
    bad.write_bytes(data[:hdr_end])  # no frames at all
    _assert_same(bad)


def test_unknown_sensor_index_and_frame_type_equal(tmp_path: Path) -> None:
    import zlib

    src = _write(tmp_path / "src.imrec", _packets(40, 4), mid_events=False)
    data = bytearray(src.read_bytes())
    (n,) = struct.unpack_from("<I", data, 10)
    pos = 14 + n + 4
    offs = []
    while pos < len(data):
        offs.append(pos)
        pos += FRAME_OVERHEAD + struct.unpack_from("<I", data, pos + 12)[0]
    for k, (field_off, value) in enumerate(((3, 9), (2, 7))):  # sensor 9, frame type 7
        b = bytearray(data)
        o = offs[10 + 5 * k]
        b[o + field_off] = value
        stop = o + FRAME_OVERHEAD - 4 + struct.unpack_from("<I", b, o + 12)[0]
        struct.pack_into("<I", b, stop, zlib.crc32(bytes(b[o:stop])))  # an intact frame
        path = tmp_path / f"odd{k}.imrec"
        path.write_bytes(bytes(b))
        _assert_same(path)


def test_shipped_recording_equal() -> None:
    _assert_same(REPO / "recordings" / "lossy_link.imrec")


def test_packed_payloads_sequence_and_decoder_equal() -> None:
    pk = _packets(50, 5, loss=0.1, dup=0.1, swap=0.1, bad_crc=0.05)
    mine = [p for p in pk if p.sensor == "thigh_l"]
    packed = PackedPayloads.from_payloads([p.payload for p in mine])
    assert len(packed) == len(mine) and list(packed) == [p.payload for p in mine]
    meta = make_meta(PLACES).sensor("thigh_l")
    got = decode_session_arrays(
        {"thigh_l": packed, "elbow": packed},  # unknown placement: ignored
        {"thigh_l": [p.host_rx_ns for p in mine], "elbow": [p.host_rx_ns for p in mine]},
        make_meta(PLACES),
    )
    _assert_samples_equal(got["thigh_l"], decode_sensor_packets(mine, meta))
    assert got["pelvis"].stats.packets_received == 0
    with pytest.raises(ValueError, match="inside data"):
        PackedPayloads(np.zeros(4, np.uint8), [2], [3])
    with pytest.raises(ValueError, match="host_rx_ns"):
        decode_session_arrays({"thigh_l": packed}, {"thigh_l": [1, 2]}, make_meta(PLACES))
