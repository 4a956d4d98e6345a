"""Decode raw sensor notifications into SI samples: vectorised, de-duplicated, reordered, unwrapped.

The packet layout is ``firmware_protocol/SPEC.md`` (mirrored in :mod:`imuhip.ingest.protocol`). This
module turns the :class:`~imuhip.types.RawPacket` stream of one sensor into
:class:`~imuhip.types.ImuSamples` on that sensor's own (device) clock:

* malformed packets (short, unknown version, reserved flags, impossible count, length mismatch,
  CRC, magnetometer flag disagreeing with the sensor's metadata) are counted per reason in
  :attr:`DecodeStats.protocol_errors` and never raise;
* the 16-bit packet counter is unwrapped relative to arrival order (nearest distance), duplicates
  (same unwrapped counter) are dropped keeping the first received copy, packets are sorted by
  counter and counter gaps counted as lost packets;
* the 32-bit µs device timestamp is unwrapped in counter order (nearest distance); a packet
  flagged ``CLOCK_RESYNC`` starts a new device time base, which is re-joined to the old one from the
  counter (contiguous) or the host receive times (after a loss);
* ``sample_idx = round((t - t0) * rate)`` from the device timestamps, gaps become
  :class:`~imuhip.types.Gap` ranges, samples whose index is already covered are dropped (the one
  from the lower counter is kept).

Batch (:func:`decode_sensor_packets`) and live (:class:`StreamDecoder`) share one implementation:
the batch decode is a single ``push``, so chunked decoding of in-order packets concatenates to
exactly the batch result.

Modules, in the order the data takes:

* :mod:`~imuhip.ingest.decode.payloads`: :class:`PackedPayloads`, many payloads in one buffer;
* :mod:`~imuhip.ingest.decode.packet`: one packet (:func:`decode_packet`), time-sync responses,
  and the packet CRC of many packets (:func:`crc16_many`);
* :mod:`~imuhip.ingest.decode.validate`: a reason code per packet, in one compiled pass;
* :mod:`~imuhip.ingest.decode.stats`: what a decode counts (:class:`~imuhip.types.DecodeStats`);
* :mod:`~imuhip.ingest.decode.stream`: :class:`StreamDecoder`, the one decoder of a sensor;
* :mod:`~imuhip.ingest.decode.session`: whole sensors and sessions, per protocol
  (:data:`DECODERS`).

Log messages go to the ``imuhip.ingest.decode`` logger. The names this package offered before it
was split stay importable from it (``X as X`` below, outside ``__all__``).
"""

from __future__ import annotations

from imuhip.ingest.decode.packet import (
    DecodedPacket,
    crc16_many,
    decode_packet,
    parse_time_sync_response,
)
from imuhip.ingest.decode.payloads import _PACK_CHUNK as _PACK_CHUNK
from imuhip.ingest.decode.payloads import PackedPayloads
from imuhip.ingest.decode.payloads import _pack_by_code as _pack_by_code
from imuhip.ingest.decode.session import (
    DECODERS,
    decode_sensor,
    decode_sensor_arrays,
    decode_sensor_packets,
    decode_session,
    decode_session_arrays,
    stream_decoder_for,
)
from imuhip.ingest.decode.session import STREAM_DECODERS as STREAM_DECODERS
from imuhip.ingest.decode.stats import MAX_ERROR_LOG as MAX_ERROR_LOG
from imuhip.ingest.decode.stats import empty_samples
from imuhip.ingest.decode.stream import StreamDecoder
from imuhip.ingest.decode.validate import _validate as _validate

__all__ = [
    "DECODERS",
    "DecodedPacket",
    "PackedPayloads",
    "StreamDecoder",
    "crc16_many",
    "decode_packet",
    "decode_sensor",
    "decode_sensor_arrays",
    "decode_sensor_packets",
    "decode_session",
    "decode_session_arrays",
    "empty_samples",
    "parse_time_sync_response",
    "stream_decoder_for",
]
