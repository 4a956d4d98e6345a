"""One packet at a time (live display, diagnostics), and the vectorised CRC-16 of many.

:func:`decode_packet` validates and scales one data packet (raising
:class:`~imuhip.errors.ProtocolError`, unlike the stream decoders, which count bad packets);
:func:`parse_time_sync_response` reads a TIME_SYNC control response; :func:`crc16_many` is the
packet CRC (CRC-16/CCITT-FALSE, ``firmware_protocol/SPEC.md`` §2.2) of many packets at once.
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.errors import ProtocolError
from imuhip.ingest import protocol
from imuhip.types import SensorMeta


def _crc_tables() -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.uint16]]:
    """Byte-wise and 16-bit-word-wise tables of CRC-16/CCITT-FALSE (poly 0x1021, MSB first)."""
    t8 = np.zeros(256, np.uint32)
    for b in range(256):
        c = b << 8
        for _ in range(8):
            c = ((c << 1) ^ 0x1021) if c & 0x8000 else (c << 1)
        t8[b] = c & 0xFFFF
    v = np.arange(65536, dtype=np.uint32)
    c = t8[v >> 8]  # first (high) byte from crc 0
    c = ((c << 8) & 0xFFFF) ^ t8[(c >> 8) ^ (v & 0xFF)]  # second (low) byte
    return t8.astype(np.uint16), c.astype(np.uint16)


_T8, _T16 = _crc_tables()
_CRC_ROWS_PER_ROW_CALL: Final = 256  # below this many packets binascii per row is faster


def crc16_many(data: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint16]:
    """CRC-16/CCITT-FALSE of every row of a ``(P, L)`` uint8 array, vectorised across rows.

    Two message bytes per step through a 65536-entry table (a CRC-16 register is fully replaced
    by 16 new bits), so the Python loop runs ``L / 2`` times whatever ``P`` is. Equal to
    ``binascii.crc_hqx(row, 0xFFFF)`` for each row.

    Parameters
    ----------
    data : (P, L) uint8

    Returns
    -------
    (P,) uint16
    """
    if data.ndim != 2:
        raise ValueError(f"data must have shape (P, L), got {data.shape}")
    p, length = data.shape
    if p < _CRC_ROWS_PER_ROW_CALL:
        # few rows (the live path: one notification at a time): the table loop's fixed cost of
        # ~L/2 numpy calls (~300 µs) dominates; binascii per row is ~3 µs and gives equal CRCs
        buf = np.ascontiguousarray(data).tobytes()
        return np.fromiter(
            (binascii.crc_hqx(buf[i : i + length], 0xFFFF) for i in range(0, p * length, length)),
            np.uint16,
            p,
        )
    crc = np.full(p, 0xFFFF, np.uint16)
    start = 0
    if length % 2:
        crc = ((crc << np.uint16(8)) ^ _T8[(crc >> np.uint16(8)) ^ data[:, 0]]).astype(np.uint16)
        start = 1
    words = (data[:, start::2].astype(np.uint16) << np.uint16(8)) | data[:, start + 1 :: 2]
    for col in np.ascontiguousarray(words.T):
        crc = _T16[crc ^ col]
    return crc


@dataclass(frozen=True, slots=True)
class DecodedPacket:
    """One validated packet in SI units, sensor frame.

    ``acc_m_s2``, ``gyr_rad_s``, ``mag_ut`` are ``(n, 3)``; ``raw`` the ``(n, 6|9)`` int16 counts.
    """

    header: protocol.PacketHeader
    raw: npt.NDArray[np.int16]
    acc_m_s2: npt.NDArray[np.float64]
    gyr_rad_s: npt.NDArray[np.float64]
    mag_ut: npt.NDArray[np.float64] | None

    @property
    def saturated(self) -> bool:
        """The sensor flagged a clipped channel in this packet."""
        return bool(self.header.flags & protocol.FLAG_SATURATED)

    @property
    def clock_resync(self) -> bool:
        """The device re-anchored its clock before this packet."""
        return bool(self.header.flags & protocol.FLAG_CLOCK_RESYNC)


def decode_packet(payload: bytes, meta: SensorMeta) -> DecodedPacket:
    """Validate and scale one data packet.

    Parameters
    ----------
    payload : bytes
        The notification value, verbatim.
    meta : SensorMeta
        Scale factors and whether the sensor sends magnetometer channels.

    Raises
    ------
    ProtocolError
        Whatever :func:`imuhip.ingest.protocol.parse_header` rejects, and ``reason="flags"`` when
        the
        packet's MAG flag disagrees with ``meta.has_mag``.
    """
    payload = bytes(payload)
    h = protocol.parse_header(payload)
    if h.has_mag != meta.has_mag:
        raise ProtocolError(_mag_message(h.has_mag, meta), "flags")
    ch = protocol.channels(h.has_mag)
    raw = np.frombuffer(payload, "<i2", count=h.n * ch, offset=protocol.HEADER_LEN).reshape(h.n, ch)
    raw = raw.astype(np.int16)
    f = raw.astype(np.float64)
    return DecodedPacket(
        header=h,
        raw=raw,
        acc_m_s2=f[:, 0:3] * meta.acc_lsb_m_s2,
        gyr_rad_s=f[:, 3:6] * meta.gyr_lsb_rad_s,
        mag_ut=f[:, 6:9] * meta.mag_lsb_ut if h.has_mag else None,
    )


def _mag_message(packet_has_mag: bool, meta: SensorMeta) -> str:
    return (
        f"packet {'has' if packet_has_mag else 'lacks'} the MAG flag but sensor "
        f"{meta.placement!r} is declared with has_mag={meta.has_mag}"
    )


def parse_time_sync_response(value: bytes) -> tuple[int, int, int]:
    """``(status, token, t_dev_us)`` of a TIME_SYNC control response (see SPEC.md §5.4).

    ``t_dev_us`` is the device clock (u32 µs, same clock and wrap as ``t_first_us``) when the
    response was produced. Raises ``ProtocolError`` for any other or malformed response.
    """
    cmd, status, payload = protocol.parse_control_response(bytes(value))
    if cmd != protocol.CMD_TIME_SYNC:
        raise ProtocolError(f"not a TIME_SYNC response: command 0x{cmd:02x}", "flags")
    if status != protocol.STATUS_OK:
        return status, payload[0] if payload else 0, 0
    if len(payload) != 5:
        raise ProtocolError(
            f"TIME_SYNC response payload has {len(payload)} bytes, expected 5", "length"
        )
    return status, payload[0], int.from_bytes(payload[1:5], "little")
