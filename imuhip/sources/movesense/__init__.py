"""Movesense support: GATT SensorData Protocol (GSP), IMU9 decoding, live driver, virtual sensor.

Importing this package registers :func:`decode_movesense_packets` as
``imuhip.ingest.decode.DECODERS["movesense"]`` (and the stream decoder factory when the decode
module
offers a registry for it). The live driver (:mod:`imuhip.sources.movesense.driver`) and the bumble
virtual
Movesense (:mod:`imuhip.sources.movesense.virtual`) import bleak/bumble and are loaded on demand.
See ``docs/movesense.md``.
"""

from __future__ import annotations

from imuhip.ingest import decode as _decode
from imuhip.sources.movesense import gsp
from imuhip.sources.movesense.decode import (
    MovesenseStreamDecoder,
    decode_movesense_packets,
    movesense_meta,
)

__all__ = [
    "MovesenseStreamDecoder",
    "decode_movesense_packets",
    "gsp",
    "movesense_meta",
]

_decode.DECODERS.setdefault("movesense", decode_movesense_packets)
_stream = getattr(_decode, "STREAM_DECODERS", None)
if isinstance(_stream, dict):
    _stream.setdefault("movesense", MovesenseStreamDecoder)
