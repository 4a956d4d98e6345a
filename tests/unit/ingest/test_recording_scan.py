"""``read_recording``'s compiled frame scan reads exactly what the general frame parser reads.

``read_recording`` and ``read_packet_arrays`` locate and CRC-check runs of intact packet frames in
one compiled pass and hand over to the general, damage-tolerant parser (``_parse``) at the first
damaged or unexpected frame. Here the compiled scan is checked against a plain ``struct`` +
``zlib.crc32`` frame walk, and both readers against the general parser run over the whole file:
mixed payload lengths, events, growth of the frame table, damage, truncation and odd frames.
"""

from __future__ import annotations

import dataclasses
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest import _decode_kernels as kd
from imuhip.ingest.decode import decode_session, decode_session_arrays
from imuhip.ingest.recording import (
    FRAME_HEADER_LEN,
    FRAME_OVERHEAD,
    Recording,
    RecordingWriter,
    read_packet_arrays,
    read_recording,
)
from imuhip.ingest.recording.arrays import _packet_arrays
from imuhip.ingest.recording.header import _read_header
from imuhip.ingest.recording.parser import _NO_STOP, _parse_no_gc
from imuhip.types import RawPacket, SessionEvent

from .test_decode import assert_samples_equal, mixed_stream
from .test_recording import make_meta as make_session_meta


def _frame_run_ref(body: bytes, pos: int, n: int, n_sensors: int) -> list[int]:
    """A plain struct + zlib walk: starts of consecutive intact packet frames of length ``n``."""
    out = []
    size = n + FRAME_OVERHEAD
    while pos + size <= len(body):
        sync, kind, idx, _, ln = struct.unpack_from("<2sBBqI", body, pos)
        stop = pos + FRAME_HEADER_LEN + n
        ok = sync == b"\xa5\x5a" and kind == 1 and idx < n_sensors and ln == n
        if not ok or struct.unpack_from("<I", body, stop)[0] != zlib.crc32(body[pos:stop]):
            break
        out.append(pos)
        pos += size
    return out


def _write_recording(path: Path, packets, events=()) -> Path:
    meta = make_session_meta(("pelvis", "thigh_l", "thigh_r"))
    with RecordingWriter(path, meta) as w:
        for ev in events:
            w.write_event(ev)
        for p in packets:
            w.write_packet(p)
    return path


def _session_packets(counts_of) -> list[RawPacket]:
    out = []
    for i, name in enumerate(("pelvis", "thigh_l", "thigh_r")):
        pk, _, _ = mixed_stream(counts_of(i))
        out += [dataclasses.replace(p, sensor=name, host_rx_ns=p.host_rx_ns + i) for p in pk]
    return sorted(out, key=lambda p: p.host_rx_ns)


def test_scan_kernel_finds_the_frame_runs_a_struct_walk_finds(tmp_path: Path) -> None:
    path = _write_recording(tmp_path / "r.imrec", _session_packets(lambda i: [4] * 50))
    with path.open("rb") as f:
        _, hdr = _read_header(f, path)
        f.seek(0)
        whole = f.read()
    data = np.frombuffer(whole, np.uint8)
    first_packet = hdr
    while whole[first_packet + 2] != 1:  # skip the event frames
        first_packet += FRAME_OVERHEAD + struct.unpack_from("<I", whole, first_packet + 12)[0]
    n = struct.unpack_from("<I", whole, first_packet + 12)[0]
    want = _frame_run_ref(whole, first_packet, n, 3)
    outs = [np.empty(len(want) + 10, np.int64) for _ in range(4)]
    k, stop = kd.scan_packet_frames(data, first_packet, 3, 1 << 24, kd.CRC32_TABLES, *outs)
    assert stop == want[-1] + n + FRAME_OVERHEAD
    assert outs[0][:k].tolist() == want
    assert outs[3][:k].tolist() == [n] * k
    # a damaged CRC ends the run exactly where the walk ends it
    bad = bytearray(whole)
    bad[want[37] + 20] ^= 1
    bad_data = np.frombuffer(bytes(bad), np.uint8)
    k2, stop2 = kd.scan_packet_frames(bad_data, first_packet, 3, 1 << 24, kd.CRC32_TABLES, *outs)
    assert k2 == len(_frame_run_ref(bytes(bad), first_packet, n, 3)) == 37
    assert stop2 == want[37]


def _read_by_general_parser(path: Path) -> Recording:
    """``read_recording`` as the general frame-by-frame parser alone, over the whole body."""
    with path.open("rb") as f:
        meta, hdr_len = _read_header(f, path)
        body = f.read()
    parsed = _parse_no_gc(body, 0, hdr_len, 0, tuple(s.placement for s in meta.sensors), True)
    packets = [it for it in parsed.items if type(it) is RawPacket]
    events = [it for it in parsed.items if type(it) is SessionEvent]
    complete = any(e.kind == "stop" for e in events)
    if not complete:
        parsed.warnings.append(_NO_STOP)
    return Recording(
        meta,
        packets,
        events,
        parsed.warnings,
        complete,
        hdr_len + parsed.valid,
        hdr_len + len(body),
    )


def _assert_readers_read_as_general_parser(path: Path) -> None:
    rec = read_recording(path)
    assert rec == _read_by_general_parser(path)
    arr = read_packet_arrays(path)
    assert (arr.events, arr.warnings, arr.complete) == (rec.events, rec.warnings, rec.complete)
    assert (arr.valid_bytes, arr.size_bytes) == (rec.valid_bytes, rec.size_bytes)
    for s in rec.meta.sensors:
        mine = rec.packets_of(s.placement)
        pp = arr.payloads[s.placement]
        assert [pp[i] for i in range(len(pp))] == [p.payload for p in mine]
        np.testing.assert_array_equal(arr.host_rx_ns[s.placement], [p.host_rx_ns for p in mine])
        if len(pp) > 1:  # one sensor's payloads lie together, in order
            np.testing.assert_array_equal(pp.start[1:], pp.start[:-1] + pp.length[:-1])
    got = decode_session_arrays(arr.payloads, arr.host_rx_ns, arr.meta)
    want = decode_session(rec.packets, rec.meta)
    for k in want:
        assert_samples_equal(got[k], want[k])


def test_mixed_lengths_events_and_frame_table_growth_read_exactly(tmp_path: Path) -> None:
    # the first packet frame is long, the rest short: the preallocated frame table must grow
    packets = _session_packets(lambda i: [32] + [1] * 300 + [7] * 20)
    events = [SessionEvent(1, "connect", "pelvis", {}), SessionEvent(2, "annotation", None, {})]
    _assert_readers_read_as_general_parser(_write_recording(tmp_path / "g.imrec", packets, events))


def test_damage_after_mixed_lengths_reads_exactly(tmp_path: Path) -> None:
    path = _write_recording(tmp_path / "d.imrec", _session_packets(lambda i: [4] * 30 + [9] * 30))
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF  # a damaged frame in the middle
    path.write_bytes(bytes(blob[:-7]))  # and a truncated end
    _assert_readers_read_as_general_parser(path)
    assert any("damaged" in w for w in read_packet_arrays(path).warnings)


def test_reader_without_mmap_reads_as_with_mmap(tmp_path: Path) -> None:
    path = _write_recording(tmp_path / "m.imrec", _session_packets(lambda i: [5] * 40))
    with path.open("rb") as f:
        meta, hdr = _read_header(f, path)
    a = _packet_arrays(path, meta, hdr, path.read_bytes())
    b = read_packet_arrays(path)
    assert a.events == b.events and a.valid_bytes == b.valid_bytes
    for k in b.payloads:
        assert list(a.payloads[k]) == list(b.payloads[k])
        np.testing.assert_array_equal(a.host_rx_ns[k], b.host_rx_ns[k])


def _frame(kind: int, sensor: int, ns: int, payload: bytes) -> bytes:
    head = struct.pack("<2sBBqI", b"\xa5\x5a", kind, sensor, ns, len(payload)) + payload
    return head + struct.pack("<I", zlib.crc32(head))


@pytest.mark.parametrize(
    "insert",
    [
        _frame(1, 9, 5, b"\x01" * 20),  # a sensor index not in the session
        _frame(7, 0, 5, b"xyz"),  # an unknown frame type
        _frame(2, 0xFF, 5, b"{not json"),  # an unreadable event
        b"\x00garbage\xa5\x5a\x01",  # bytes between frames
        _frame(1, 0, 5, b"")[:-1] + b"\x00",  # a packet frame with a bad CRC
    ],
)
@pytest.mark.parametrize("cut", [0, 5, 30])
def test_odd_frames_and_truncation_read_as_the_general_parser_reads(
    tmp_path: Path, insert, cut
) -> None:
    path = _write_recording(tmp_path / "o.imrec", _session_packets(lambda i: [3] * 40 + [6] * 9))
    blob = path.read_bytes()
    with path.open("rb") as f:
        _, pos = _read_header(f, path)
    while pos < len(blob) // 2:  # the first frame boundary past the middle
        pos += FRAME_OVERHEAD + struct.unpack_from("<I", blob, pos + 12)[0]
    out = blob[:pos] + insert + blob[pos:]
    path.write_bytes(out[: len(out) - cut] if cut else out)
    _assert_readers_read_as_general_parser(path)
