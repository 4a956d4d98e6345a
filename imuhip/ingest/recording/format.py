"""The ``.imrec`` byte layout: magic, frame header, CRC, limits (``recordings/FORMAT.md``).

Layout (little-endian)::

    header  magic b"\\x89IMREC\\r\\n" (8) | u16 format version | u32 json_len | json | u32 crc32
    frame   b"\\xa5\\x5a" | u8 type | u8 sensor | i64 host_rx_ns | u32 len | payload | u32 crc32

The header CRC covers everything from the version field to the end of the JSON
(:mod:`~imuhip.ingest.recording.header`); a frame CRC covers the frame from its sync word to the
end of the payload. Frames are independent, so a reader can resume after a damaged one.
"""

from __future__ import annotations

import re
import struct
from typing import Final

from imuhip.types import RawPacket, SessionEvent

MAGIC: Final = b"\x89IMREC\r\n"
FORMAT_VERSION: Final = 1
SYNC: Final = b"\xa5\x5a"
FRAME_PACKET: Final = 1
FRAME_EVENT: Final = 2
NO_SENSOR: Final = 0xFF
MAX_PAYLOAD: Final = 1 << 24  # 16 MiB: anything longer is a damaged length field
MAX_META: Final = 1 << 24
EVENT_KINDS: Final = (
    "connect",
    "disconnect",
    "reconnect",
    "calibration_start",
    "calibration_end",
    "annotation",
    "sensor_info",
    "time_sync",
    "stop",
    "queue_overflow",
    "header_copy",
)
"""Event kinds the package writes (readers accept any ``[a-z0-9_]+`` kind)."""

_KIND_RE = re.compile(r"[a-z0-9_]{1,64}")
_FILE_HDR = struct.Struct("<8sHI")  # magic, version, json length
_FRAME_HDR = struct.Struct("<2sBBqI")  # sync, type, sensor index, host_rx_ns, payload length
_CRC = struct.Struct("<I")
FRAME_HEADER_LEN: Final = _FRAME_HDR.size  # 16
FRAME_OVERHEAD: Final = FRAME_HEADER_LEN + _CRC.size  # 20
_I64_MIN, _I64_MAX = -(1 << 63), (1 << 63) - 1

Frame = RawPacket | SessionEvent
