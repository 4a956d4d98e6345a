"""One damaged header byte does not lose a recording: the header is kept twice (issue 14).

The writer puts a copy of the header metadata in the first frame (its own CRC). Every
single-byte corruption of the header, or of its copy, of a small recording must read fully
(same metadata, packets and events); only a file whose header and copy are both damaged, or an
old recording without a copy, is refused, with a one-line error.
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest

from imuhip.cli import main as cli_main
from imuhip.errors import RecordingError
from imuhip.ingest.recording import open_recording, read_packet_arrays, read_recording
from imuhip.types import SessionEvent
from tests.unit.ingest.test_recording import make_meta, make_packets, write_file

REPO = Path(__file__).resolve().parents[3]


def _small(tmp_path: Path) -> tuple[Path, bytes, int, int]:
    path = tmp_path / "small.imrec"
    events = [SessionEvent(999_000_000, "connect", "pelvis", {"att_mtu": 247})]
    write_file(path, make_packets(3, placements=("pelvis", "thigh_l")), events,
               meta=make_meta(("pelvis", "thigh_l")))  # fmt: skip
    data = path.read_bytes()
    primary = 14 + struct.unpack_from("<I", data, 10)[0] + 4
    copy_end = primary + 20 + struct.unpack_from("<I", data, primary + 12)[0]
    return path, data, primary, copy_end


@pytest.mark.slow
def test_every_single_byte_corruption_of_the_header_reads_fully(tmp_path: Path) -> None:
    path, data, primary, copy_end = _small(tmp_path)
    ref = read_recording(path)
    assert ref.warnings == [] and ref.complete and len(ref.packets) == 6
    assert [e.kind for e in ref.events] == ["connect", "stop"]  # the copy is no event
    assert ref.valid_bytes == len(data)
    bad = tmp_path / "bad.imrec"
    bad.write_bytes(data)
    outcomes = {"full": 0, "refused": 0}
    fd = os.open(bad, os.O_WRONLY)  # one byte changed in place (truncating is slow on some FS)
    for off in range(copy_end):  # the header, then its copy
        for flip in (0xFF, 0x01):
            os.pwrite(fd, bytes([data[off] ^ flip]), off)
            try:
                rec = read_recording(bad)  # raises on a refused variant: none is
            finally:
                os.pwrite(fd, data[off : off + 1], off)
            assert rec.meta == ref.meta, off
            assert rec.packets == ref.packets, off
            assert rec.events == ref.events, off
            assert rec.complete
            if off < primary:
                assert rec.warnings[0].startswith("header damaged ("), (off, rec.warnings)
                assert f"read from its copy at byte offset {primary}" in rec.warnings[0]
            else:  # the header is intact; the damaged copy is one damaged frame
                assert len(rec.warnings) == 1 and "damaged" in rec.warnings[0], off
            outcomes["full"] += 1
    os.close(fd)
    assert outcomes == {"full": 2 * copy_end, "refused": 0}
    # the streaming reader and the analysis fast path recover the same way (a sample of offsets)
    for off in range(0, primary, 37):
        damaged = bytearray(data)
        damaged[off] ^= 0xFF
        bad.write_bytes(bytes(damaged))
        arrays = read_packet_arrays(bad)
        assert arrays.meta == ref.meta and arrays.events == ref.events
        assert {k: len(v) for k, v in arrays.host_rx_ns.items()} == {"pelvis": 3, "thigh_l": 3}
        stream = open_recording(bad)
        assert list(stream) == [*ref.events[:1], *ref.packets, ref.events[1]]
        assert stream.warnings[0].startswith("header damaged (")


def test_header_and_copy_both_damaged_is_a_one_line_error(tmp_path: Path) -> None:
    path, data, primary, _ = _small(tmp_path)
    damaged = bytearray(data)
    damaged[12] ^= 0x01  # the metadata length
    damaged[primary + 40] ^= 0x01  # inside the copy
    path.write_bytes(bytes(damaged))
    with pytest.raises(RecordingError, match="no intact header copy") as exc:
        read_recording(path)
    assert "\n" not in str(exc.value)


def test_not_a_recording_is_still_refused(tmp_path: Path) -> None:
    path, data, _, _ = _small(tmp_path)
    path.write_bytes(b"PK\x03\x04 zip " + data[12:])  # most of the magic is wrong
    with pytest.raises(RecordingError, match="not an imuhip recording"):
        read_recording(path)


def test_info_names_the_recovered_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, data, primary, _ = _small(tmp_path)
    damaged = bytearray(data)
    damaged[30] ^= 0x20  # one metadata byte
    path.write_bytes(bytes(damaged))
    assert cli_main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "6 packets, complete" in out
    assert (
        f"warning: header damaged (corrupt header (metadata CRC32 mismatch)); the metadata "
        f"was read from its copy at byte offset {primary}" in out
    )


@pytest.mark.parametrize("name", ["typical", "lossy_link", "right_ir_restricted"])
def test_shipped_recordings_without_a_copy_read_as_before(name: str) -> None:
    rec = read_recording(REPO / "recordings" / f"{name}.imrec")
    assert not any(w.startswith("header damaged") for w in rec.warnings)
    assert rec.valid_bytes == rec.size_bytes and rec.packets
