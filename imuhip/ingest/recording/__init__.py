"""The ``.imrec`` recording format: append-only, crash-safe, lossless (``recordings/FORMAT.md``).

A recording stores every :class:`~imuhip.types.RawPacket` verbatim, *before* decoding, plus
:class:`~imuhip.types.SessionEvent` records (connect, disconnect, calibration markers, ...), so a
replay re-runs the identical decode. Layout (little-endian)::

    header  magic b"\\x89IMREC\\r\\n" (8) | u16 format version | u32 json_len | json | u32 crc32
    frame   b"\\xa5\\x5a" | u8 type | u8 sensor | i64 host_rx_ns | u32 len | payload | u32 crc32

The header JSON is :func:`meta_to_json` of the :class:`~imuhip.types.SessionMeta`; the header CRC
covers everything from the version field to the end of the JSON, a frame CRC covers the frame from
its sync word to the end of the payload. Frames are independent: a reader that meets a damaged
frame reports it (byte offset, frame number), scans forward to the next frame whose CRC checks,
reports how many bytes it skipped, and goes on; a file cut short by a crash reads as its valid
prefix plus a warning.

:class:`RecordingWriter` never blocks the caller: ``write_packet`` appends to an in-memory list and
a background thread encodes, writes and flushes it every ``flush_interval_s`` (default 0.25 s) and
``fsync``s every ``fsync_interval_s`` (default 1 s). A ``kill -9`` therefore loses at most the
last flush interval; a power cut at most the last fsync interval.

Modules, in the order a newcomer reads them:

* :mod:`~imuhip.ingest.recording.format`: the byte layout (magic, frame header, CRC, limits);
* :mod:`~imuhip.ingest.recording.header`: the metadata JSON, validated both ways;
* :mod:`~imuhip.ingest.recording.writer`: :class:`RecordingWriter`;
* :mod:`~imuhip.ingest.recording.parser`: the general frame parser, which reads past damage and
  words the warnings;
* :mod:`~imuhip.ingest.recording.reader`: :func:`read_recording` (compiled scan of intact frames,
  the parser from the first damage on);
* :mod:`~imuhip.ingest.recording.arrays`: :func:`read_packet_arrays`, the analysis fast path;
* :mod:`~imuhip.ingest.recording.stream`: :func:`open_recording` / :func:`iter_frames`, bounded
  memory;
* :mod:`~imuhip.ingest.recording.loss`: notifications the host dropped before recording them
  (``queue_overflow`` events), counted and worded as warnings by every reader.

Warnings of every module go to the ``imuhip.ingest.recording`` logger. The names this package
offered before it was split stay importable from it (``X as X`` below, outside ``__all__``).
"""

from __future__ import annotations

from imuhip.ingest.recording.arrays import PacketArrays, read_packet_arrays
from imuhip.ingest.recording.arrays import _packet_arrays as _packet_arrays
from imuhip.ingest.recording.format import EVENT_KINDS as EVENT_KINDS
from imuhip.ingest.recording.format import FORMAT_VERSION, MAGIC
from imuhip.ingest.recording.format import FRAME_EVENT as FRAME_EVENT
from imuhip.ingest.recording.format import FRAME_HEADER_LEN as FRAME_HEADER_LEN
from imuhip.ingest.recording.format import FRAME_OVERHEAD as FRAME_OVERHEAD
from imuhip.ingest.recording.format import FRAME_PACKET as FRAME_PACKET
from imuhip.ingest.recording.format import MAX_META as MAX_META
from imuhip.ingest.recording.format import MAX_PAYLOAD as MAX_PAYLOAD
from imuhip.ingest.recording.format import NO_SENSOR as NO_SENSOR
from imuhip.ingest.recording.format import SYNC as SYNC
from imuhip.ingest.recording.format import Frame as Frame
from imuhip.ingest.recording.header import PSEUDONYM_PATTERN, meta_from_json, meta_to_json
from imuhip.ingest.recording.header import _read_header as _read_header
from imuhip.ingest.recording.header import check_pseudonym as check_pseudonym
from imuhip.ingest.recording.loss import dropped_notifications
from imuhip.ingest.recording.parser import _NO_STOP as _NO_STOP
from imuhip.ingest.recording.parser import SHOWN_WARNINGS as SHOWN_WARNINGS
from imuhip.ingest.recording.parser import _parse as _parse
from imuhip.ingest.recording.parser import _parse_no_gc as _parse_no_gc
from imuhip.ingest.recording.parser import warning_lines
from imuhip.ingest.recording.reader import Recording, read_recording
from imuhip.ingest.recording.stream import RecordingStream, iter_frames, open_recording
from imuhip.ingest.recording.writer import RecordingWriter

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "PSEUDONYM_PATTERN",
    "PacketArrays",
    "Recording",
    "RecordingStream",
    "RecordingWriter",
    "dropped_notifications",
    "iter_frames",
    "meta_from_json",
    "meta_to_json",
    "open_recording",
    "read_packet_arrays",
    "read_recording",
    "warning_lines",
]
