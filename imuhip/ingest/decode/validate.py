"""Vectorised validation of a chunk of packets: one reason code per packet, the valid ones' fields.

The reason codes follow the order in which :func:`imuhip.ingest.protocol.parse_header` checks a
packet; one compiled pass (:func:`imuhip.ingest._decode_kernels.validate_packets`) checks them
all, and the CRC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.ingest import _decode_kernels as _kd
from imuhip.ingest.decode.payloads import _packed

# reason codes of the vectorised validation, in the order protocol.parse_header checks them
_OK, _SHORT, _VERSION, _FLAGS, _COUNT, _LENGTH, _CRC, _MAGFLAG = range(8)
_REASON_NAMES: Final = ("ok", "short", "version", "flags", "count", "length", "crc", "flags")


@dataclass(slots=True)
class _Valid:
    """Packets of one chunk that passed validation, arrival order."""

    pkt: npt.NDArray[np.int64]  # index into the chunk
    seq: npt.NDArray[np.int64]
    t_us: npt.NDArray[np.int64]
    flags: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]  # byte offset of the packet in the chunk's buffer


def _validate(
    payloads: Sequence[bytes], has_mag: bool
) -> tuple[npt.NDArray[np.uint8], _Valid, npt.NDArray[np.int64]]:
    """Validate all packets; return their buffer, the valid ones and a reason code per packet.

    ``payloads`` is a list of ``bytes`` or a :class:`PackedPayloads` (same result). One compiled
    pass over the bytes (:func:`imuhip.ingest._decode_kernels.validate_packets`).
    """
    data, start, length = _packed(payloads)
    p_total = len(start)
    reasons = np.empty(p_total, np.int64)
    seq = np.empty(p_total, np.int64)
    t_us = np.empty(p_total, np.int64)
    flags = np.empty(p_total, np.int64)
    n = np.empty(p_total, np.int64)
    n_valid = _kd.validate_packets(
        data, start, length, bool(has_mag), _kd.CRC16_TABLES, reasons, seq, t_us, flags, n
    )
    if n_valid == p_total:
        return data, _Valid(np.arange(p_total, dtype=np.int64), seq, t_us, flags, n, start), reasons
    ok = np.flatnonzero(reasons == _OK)
    return data, _Valid(ok, seq[ok], t_us[ok], flags[ok], n[ok], start[ok]), reasons
