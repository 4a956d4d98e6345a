"""Per-push bookkeeping of the streaming decoder: wrapped-counter steps and protocol errors."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from imuhip.errors import ProtocolError
from imuhip.ingest import protocol
from imuhip.ingest.decode.packet import _mag_message
from imuhip.ingest.decode.stats import MAX_ERROR_LOG, _Totals
from imuhip.ingest.decode.validate import _OK, _REASON_NAMES
from imuhip.types import SensorMeta

__all__ = ["count_errors", "nearest_diff", "seq_between"]


def nearest_diff(x: npt.NDArray[np.int64], modulus: int) -> npt.NDArray[np.int64]:
    """Differences of a wrapped counter taken as the nearest distance, in ``[-m/2, m/2)``."""
    half = modulus // 2
    return ((np.diff(x) + half) % modulus) - half


def seq_between(a: int, b: int, c: int) -> bool:
    """Counter ``b`` comes after ``a`` and before ``c`` (16-bit wrap, nearest distance)."""
    half = protocol.SEQ_MODULUS // 2
    return all((y - x + half) % protocol.SEQ_MODULUS > half for x, y in ((a, b), (b, c)))


def count_errors(
    tot: _Totals,
    reasons: npt.NDArray[np.int64],
    payloads: Sequence[bytes],
    host_ns: npt.NDArray[np.int64],
    base_index: int,
    so_far: _Totals,
    meta: SensorMeta,
) -> None:
    """Count the refused packets of one push by reason; log the first ones (one line each)."""
    bad = np.flatnonzero(reasons != _OK)
    if not len(bad):
        return
    codes, counts = np.unique(reasons[bad], return_counts=True)
    for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
        name = _REASON_NAMES[c]
        tot.protocol_errors[name] = tot.protocol_errors.get(name, 0) + k
    room = MAX_ERROR_LOG - len(so_far.error_log)
    for i in bad[: max(0, room)].tolist():
        try:
            protocol.parse_header(payloads[i])
        except ProtocolError as err:
            msg = str(err)
        else:
            msg = _mag_message(not meta.has_mag, meta)
        tot.error_log.append(
            f"packet {base_index + i} (host_rx_ns={int(host_ns[i])}, "
            f"{len(payloads[i])} bytes): {msg}"
        )
