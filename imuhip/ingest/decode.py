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
"""

from __future__ import annotations

import binascii
import logging
import operator
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

import numpy as np
import numpy.typing as npt

from imuhip.errors import ProtocolError
from imuhip.ingest import _decode_kernels as _kd
from imuhip.ingest import protocol
from imuhip.types import DecodeStats, Gap, ImuSamples, RawPacket, SensorMeta, SessionMeta

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

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T", bound=np.generic)

MAX_ERROR_LOG: Final = 20
"""How many protocol-error messages :class:`DecodeStats` keeps (the counts are always complete)."""

_SEQ_HALF: Final = protocol.SEQ_MODULUS // 2
_TIME_HALF: Final = protocol.TIME_MODULUS_US // 2
_RECENT_SEQS: Final = 8192  # live path: how far back duplicates are told apart from late packets

# reason codes of the vectorised validation, in the order protocol.parse_header checks them
_OK, _SHORT, _VERSION, _FLAGS, _COUNT, _LENGTH, _CRC, _MAGFLAG = range(8)
_REASON_NAMES: Final = ("ok", "short", "version", "flags", "count", "length", "crc", "flags")


class PackedPayloads(Sequence[bytes]):
    """The payloads of many packets as slices of one byte buffer (no object per packet).

    Behaves as a read-only sequence of ``bytes`` (``payloads[i]`` copies one payload out);
    :meth:`take` gathers payloads of one length into a ``(P, L)`` array at once. Used by the
    recording fast path (:func:`imuhip.ingest.recording.read_packet_arrays`) and by
    :func:`decode_session`, where each sensor's payloads lie together in one shared buffer.

    Parameters
    ----------
    data : (B,) uint8
        The buffer.
    start : (P,) int
        Offset of each payload in ``data``.
    length : (P,) int
        Length of each payload (bytes).
    """

    __slots__ = ("data", "length", "start")

    def __init__(self, data: npt.ArrayLike, start: npt.ArrayLike, length: npt.ArrayLike) -> None:
        self.data = np.asarray(data, dtype=np.uint8).reshape(-1)
        self.start = np.asarray(start, dtype=np.int64).reshape(-1)
        self.length = np.asarray(length, dtype=np.int64).reshape(-1)
        if self.start.shape != self.length.shape:
            raise ValueError(
                f"start and length must have the same shape, got {self.start.shape} "
                f"and {self.length.shape}"
            )
        if len(self.start) and (
            int(self.start.min()) < 0
            or int(self.length.min()) < 0
            or int((self.start + self.length).max()) > len(self.data)
        ):
            raise ValueError("payload ranges must lie inside data")

    @classmethod
    def from_payloads(cls, payloads: Sequence[bytes]) -> PackedPayloads:
        """Pack a list of payloads (concatenated)."""
        length = np.fromiter(map(len, payloads), np.int64, len(payloads))
        start = np.cumsum(length) - length
        return cls(np.frombuffer(b"".join(payloads), np.uint8), start, length)

    def __len__(self) -> int:
        return len(self.start)

    def __getitem__(self, i: int) -> bytes:  # type: ignore[override]
        a = int(self.start[i])
        return self.data[a : a + int(self.length[i])].tobytes()

    def take(self, idx: npt.NDArray[np.int64], length: int) -> npt.NDArray[np.uint8]:
        """Payloads ``idx`` (all of ``length`` bytes) as a ``(len(idx), length)`` array."""
        st = self.start[idx]
        if len(st) > 1 and length:
            d = np.diff(st)
            step = int(d[0])
            if step >= length and bool(np.all(d == step)):  # evenly spaced: a strided view
                a = int(st[0])
                rows = self.data[a : a + step * (len(st) - 1) + length]
                return np.lib.stride_tricks.as_strided(
                    rows, (len(st), length), (step, 1), writeable=False
                )
        if not len(st) or not length:
            return np.zeros((len(st), length), np.uint8)
        # every byte offset of the buffer as the start of a row of ``length`` bytes (a view),
        # then one row gather: no per-byte index array
        rows = np.lib.stride_tricks.as_strided(
            self.data, (len(self.data) - length + 1, length), (1, 1), writeable=False
        )
        return rows[st]


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


# ---------------------------------------------------------------------------------------------
# single packet (live display, diagnostics)
# ---------------------------------------------------------------------------------------------
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


# ---------------------------------------------------------------------------------------------
# vectorised validation
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Valid:
    """Packets of one chunk that passed validation, arrival order."""

    pkt: npt.NDArray[np.int64]  # index into the chunk
    seq: npt.NDArray[np.int64]
    t_us: npt.NDArray[np.int64]
    flags: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]
    start: npt.NDArray[np.int64]  # byte offset of the packet in the chunk's buffer


def _readonly(a: npt.NDArray[_T]) -> npt.NDArray[_T]:
    """A read-only, C-contiguous view (the kernels are compiled for one array type only)."""
    a = np.ascontiguousarray(a)
    if a.flags.writeable:
        a = a.view()
        a.flags.writeable = False
    return a


def _packed(
    payloads: Sequence[bytes],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(buffer, start, length)`` of the payloads: the buffer itself for :class:`PackedPayloads`,
    else the payloads joined (the one per-packet Python step of the list path)."""
    if isinstance(payloads, PackedPayloads):
        return (
            _readonly(payloads.data),
            np.ascontiguousarray(payloads.start),
            np.ascontiguousarray(payloads.length),
        )
    length = np.fromiter(map(len, payloads), np.int64, len(payloads))
    start = np.cumsum(length) - length
    return _readonly(np.frombuffer(b"".join(payloads), np.uint8)), start, length


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


def _nearest_diff(x: npt.NDArray[np.int64], modulus: int) -> npt.NDArray[np.int64]:
    """Differences of a wrapped counter taken as the nearest distance, in ``[-m/2, m/2)``."""
    half = modulus // 2
    return ((np.diff(x) + half) % modulus) - half


# ---------------------------------------------------------------------------------------------
# streaming decoder (the batch decoder is one push)
# ---------------------------------------------------------------------------------------------
@dataclass(slots=True)
class _Totals:
    packets_received: int = 0
    packets_decoded: int = 0
    samples_decoded: int = 0
    protocol_errors: dict[str, int] = field(default_factory=dict)
    duplicates: int = 0
    reordered: int = 0
    lost_packets: int = 0
    lost_samples: int = 0
    gaps: list[Gap] = field(default_factory=list)
    overlapping_samples: int = 0
    clock_resyncs: int = 0
    late_packets: int = 0
    error_log: list[str] = field(default_factory=list)

    def freeze(self) -> DecodeStats:
        return DecodeStats(
            packets_received=self.packets_received,
            packets_decoded=self.packets_decoded,
            samples_decoded=self.samples_decoded,
            protocol_errors=dict(sorted(self.protocol_errors.items())),
            duplicates=self.duplicates,
            reordered=self.reordered,
            lost_packets=self.lost_packets,
            lost_samples=self.lost_samples,
            gaps=tuple(self.gaps),
            overlapping_samples=self.overlapping_samples,
            clock_resyncs=self.clock_resyncs,
            late_packets=self.late_packets,
            error_log=tuple(self.error_log),
        )

    def add(self, other: _Totals) -> None:
        for name in (
            "packets_received",
            "packets_decoded",
            "samples_decoded",
            "duplicates",
            "reordered",
            "lost_packets",
            "lost_samples",
            "overlapping_samples",
            "clock_resyncs",
            "late_packets",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for k, v in other.protocol_errors.items():
            self.protocol_errors[k] = self.protocol_errors.get(k, 0) + v
        self.gaps.extend(other.gaps)
        self.error_log.extend(other.error_log[: MAX_ERROR_LOG - len(self.error_log)])


def empty_samples(meta: SensorMeta, stats: DecodeStats | None = None) -> ImuSamples:
    """An :class:`ImuSamples` with no samples (a sensor that sent nothing decodable)."""
    z3 = np.zeros((0, 3), np.float64)
    return ImuSamples(
        placement=meta.placement,
        rate_hz=float(meta.rate_hz),
        sample_idx=np.zeros(0, np.int64),
        t_dev_s=np.zeros(0, np.float64),
        host_rx_ns=np.zeros(0, np.int64),
        acc_m_s2=z3,
        gyr_rad_s=z3.copy(),
        mag_ut=z3.copy() if meta.has_mag else None,
        saturated=np.zeros(0, np.bool_),
        stats=stats if stats is not None else _Totals().freeze(),
    )


class StreamDecoder:
    """Stateful decoder of one sensor's packet stream (live path), chunk by chunk.

    ``push(packets)`` returns the samples those packets complete. Concatenating the chunks of
    in-order packets equals :func:`decode_sensor_packets` on all of them; :attr:`stats` then equals
    the batch statistics. A packet arriving after a later packet was already emitted cannot be
    inserted into the past: it is dropped and counted in ``late_packets`` (or ``duplicates`` if its
    counter was seen recently).

    Parameters
    ----------
    meta : SensorMeta
        The sensor (scale factors, nominal rate, magnetometer present).
    """

    def __init__(self, meta: SensorMeta) -> None:
        if not isinstance(meta, SensorMeta):
            raise TypeError(f"meta must be a SensorMeta, got {type(meta).__name__}")
        self.meta = meta
        self._n_pushed = 0
        self._arrival_seq: int | None = None  # unwrapped seq of the last valid arrival
        self._max_arrival_seq: int | None = None
        self._last_seq: int | None = None  # highest emitted packet (seq order) ...
        self._last_t_us = 0  # ... its unwrapped t_first_us,
        self._last_n = 0  # its sample count,
        self._last_host_ns = 0  # and host receive time
        self._t0_us: int | None = None
        self._last_sample_idx: int | None = None
        # the last _RECENT_SEQS emitted packet counters, slot seq % _RECENT_SEQS (preallocated:
        # the live path's memory does not grow per packet)
        self._recent = np.full(_RECENT_SEQS, -1, np.int64)
        self._resync_payloads: list[bytes] = []  # recent CLOCK_RESYNC packets (duplicate check)
        self._totals = _Totals()

    @property
    def stats(self) -> DecodeStats:
        """Cumulative statistics over everything pushed so far."""
        return self._totals.freeze()

    def push(self, packets: Sequence[RawPacket]) -> ImuSamples:
        """Decode the next packets (in arrival order) of this sensor; never raises on bad data."""
        p_total = len(packets)
        tot, base_index = self._begin(p_total)
        if p_total == 0:
            return empty_samples(self.meta, tot.freeze())
        payloads = list(map(_PAYLOAD, packets))
        host_ns = np.fromiter(map(_HOST, packets), np.int64, p_total)
        return self._push(payloads, host_ns, tot, base_index)

    def push_arrays(self, payloads: PackedPayloads, host_rx_ns: npt.ArrayLike) -> ImuSamples:
        """:meth:`push` for packets given as arrays: payloads packed in one buffer.

        Parameters
        ----------
        payloads : PackedPayloads
            This sensor's payloads in arrival order.
        host_rx_ns : (P,) int
            Host receive time of each, ns.

        Returns
        -------
        ImuSamples
            Equal to ``push`` of the same packets as :class:`~imuhip.types.RawPacket` objects.
        """
        if not isinstance(payloads, PackedPayloads):
            raise TypeError(f"payloads must be PackedPayloads, got {type(payloads).__name__}")
        host_ns = np.asarray(host_rx_ns, dtype=np.int64).reshape(-1)
        if len(host_ns) != len(payloads):
            raise ValueError(f"host_rx_ns has {len(host_ns)} entries for {len(payloads)} payloads")
        p_total = len(payloads)
        tot, base_index = self._begin(p_total)
        if p_total == 0:
            return empty_samples(self.meta, tot.freeze())
        return self._push(payloads, host_ns, tot, base_index)

    def _begin(self, p_total: int) -> tuple[_Totals, int]:
        """Totals of a push of ``p_total`` packets, and the arrival index of its first."""
        tot = _Totals()
        tot.packets_received = p_total
        base_index = self._n_pushed
        self._n_pushed += p_total
        return tot, base_index

    def _push(
        self,
        payloads: Sequence[bytes],
        host_ns: npt.NDArray[np.int64],
        tot: _Totals,
        base_index: int,
    ) -> ImuSamples:
        meta = self.meta
        rate = float(meta.rate_hz)
        data, v, reasons = _validate(payloads, meta.has_mag)
        self._count_errors(tot, reasons, payloads, host_ns, base_index)

        # --- packet counter: unwrap against arrival order, nearest distance -------------------
        if len(v.seq) == 0:
            self._totals.add(tot)
            return empty_samples(meta, tot.freeze())
        prev = self._arrival_seq
        d = _nearest_diff(v.seq, protocol.SEQ_MODULUS)
        if prev is None:
            first = int(v.seq[0])
        else:
            first = prev + ((int(v.seq[0]) - prev + _SEQ_HALF) % protocol.SEQ_MODULUS) - _SEQ_HALF
        seq_u = first + np.concatenate([[0], np.cumsum(d)]).astype(np.int64)
        restart = self._counter_restarts(v, payloads, seq_u)
        self._arrival_seq = int(seq_u[-1])

        # --- duplicates (keep first received) and reordering ----------------------------------
        if len(seq_u) < 2 or bool(np.all(d > 0)):  # the common case: strictly increasing
            keep = np.ones(len(seq_u), np.bool_)
        else:
            _, first_idx = np.unique(seq_u, return_index=True)
            keep = np.zeros(len(seq_u), np.bool_)
            keep[first_idx] = True
        tot.duplicates += int(len(seq_u) - np.count_nonzero(keep))
        if self._last_seq is not None:
            old = keep & (seq_u <= self._last_seq)
            for i in np.flatnonzero(old).tolist():
                sq = int(seq_u[i])
                if sq >= 0 and int(self._recent[sq % _RECENT_SEQS]) == sq:
                    tot.duplicates += 1
                else:
                    tot.late_packets += 1
            keep &= ~old
        kept = np.flatnonzero(keep)
        run_max = np.maximum.accumulate(seq_u[kept]) if len(kept) else seq_u[kept]
        prior_max = np.concatenate(
            [
                [
                    self._max_arrival_seq
                    if self._max_arrival_seq is not None
                    else np.iinfo(np.int64).min
                ],
                run_max[:-1],
            ]
        )
        tot.reordered += int(np.count_nonzero(seq_u[kept] < prior_max))
        if len(kept):
            m = int(run_max[-1])
            self._max_arrival_seq = (
                m if self._max_arrival_seq is None else max(m, self._max_arrival_seq)
            )
        if len(kept) == 0:
            self._totals.add(tot)
            return empty_samples(meta, tot.freeze())

        order = kept if tot.reordered == 0 else kept[np.argsort(seq_u[kept], kind="stable")]
        s_seq = seq_u[order]
        s_t = v.t_us[order]
        s_n = v.n[order]
        s_flags = v.flags[order]
        s_host = host_ns[v.pkt[order]]
        tot.packets_decoded = len(order)

        # --- lost packets ---------------------------------------------------------------------
        seq_chain = s_seq if self._last_seq is None else np.concatenate([[self._last_seq], s_seq])
        tot.lost_packets = int(np.sum(np.diff(seq_chain) - 1))

        # --- device time: unwrap in counter order, re-join at CLOCK_RESYNC ---------------------
        has_prev = self._last_seq is not None
        p_seq = np.concatenate([[self._last_seq if has_prev else 0], s_seq])
        p_t = np.concatenate([[self._last_t_us if has_prev else 0], s_t])
        p_n = np.concatenate([[self._last_n], s_n])
        p_host = np.concatenate([[self._last_host_ns], s_host])
        dt = _nearest_diff(p_t, protocol.TIME_MODULUS_US)
        resync = (s_flags & protocol.FLAG_CLOCK_RESYNC) != 0
        if not has_prev:
            resync[0] = False  # the very first packet defines the time base
        if resync.any():
            ri = np.flatnonzero(resync)
            # after a counter restart (sensor rebooted) the counter says nothing about the gap
            contiguous = ((p_seq[ri + 1] - p_seq[ri]) == 1) & ~restart[order][ri]
            host_gap_s = (p_host[ri + 1] - p_host[ri]) * 1e-9
            est = (p_n[ri] - 1) / rate + host_gap_s - (p_n[ri + 1] - 1) / rate
            # every lost packet carried at least one sample: a lower bound on the gap
            lost_between = np.maximum(p_seq[ri + 1] - p_seq[ri] - 1, 0)
            k = np.where(
                contiguous, p_n[ri], np.maximum(p_n[ri] + lost_between, np.rint(est * rate))
            )
            dt[ri] = np.rint(k * 1e6 / rate).astype(np.int64)
            tot.clock_resyncs = len(ri)
        if has_prev:
            t_u = self._last_t_us + np.cumsum(dt)
        else:
            t_u = int(s_t[0]) + np.concatenate([[0], np.cumsum(dt[1:])]).astype(np.int64)
        if self._t0_us is None:
            self._t0_us = int(t_u[0])
        t0 = self._t0_us

        # --- samples in counter order: index, then one compiled pass unpacks and scales -------
        idx0 = np.rint((t_u - t0) * (rate * 1e-6)).astype(np.int64)
        last = self._last_sample_idx
        n_total = int(s_n.sum())
        e = np.zeros(0, np.int64)
        sel_pkt, sel_k, use_sel = e, e, False
        # strictly increasing sample indices (the usual case) iff each packet starts after the
        # last sample of the one before it
        if len(idx0) < 2 or bool(np.all(idx0[1:] >= idx0[:-1] + s_n[:-1])):
            fresh = s_n if last is None else np.clip(idx0 + s_n - 1 - last, 0, s_n)
            n_out = int(fresh.sum())
        else:
            # overlapping packets: keep the first (lowest counter) sample per index
            pkt_of = np.repeat(np.arange(len(s_n), dtype=np.int64), s_n)
            k_in = np.arange(n_total, dtype=np.int64) - np.repeat(np.cumsum(s_n) - s_n, s_n)
            uniq, sel = np.unique(idx0[pkt_of] + k_in, return_index=True)
            if last is not None:
                sel = sel[uniq > last]
            sel_pkt, sel_k, use_sel = pkt_of[sel], k_in[sel], True
            n_out = len(sel)
        tot.overlapping_samples = n_total - n_out
        ch = protocol.channels(meta.has_mag)
        sample_idx = np.empty(n_out, np.int64)
        t_dev_s = np.empty(n_out, np.float64)
        host_rx = np.empty(n_out, np.int64)
        acc = np.empty((n_out, 3), np.float64)
        gyr = np.empty((n_out, 3), np.float64)
        mag = np.empty((n_out if meta.has_mag else 0, 3), np.float64)
        sat = np.empty(n_out, np.bool_)
        gap_start = np.empty(len(s_n) + 1, np.int64)
        gap_stop = np.empty(len(s_n) + 1, np.int64)
        m, n_gaps = _kd.emit_samples(
            data,
            v.start[order] + protocol.HEADER_LEN,
            s_n,
            idx0,
            t_u,
            s_host,
            (s_flags & protocol.FLAG_SATURATED) != 0,
            ch,
            rate,
            float(meta.acc_lsb_m_s2),
            float(meta.gyr_lsb_rad_s),
            float(meta.mag_lsb_ut),
            0 if last is None else last,
            last is not None,
            sel_pkt,
            sel_k,
            use_sel,
            sample_idx,
            t_dev_s,
            host_rx,
            acc,
            gyr,
            mag,
            sat,
            gap_start,
            gap_stop,
        )
        if m != n_out:  # pragma: no cover - the kernel and the count above disagree
            raise RuntimeError(f"decode kernel emitted {m} samples, expected {n_out}")

        # --- gaps -----------------------------------------------------------------------------
        gs, ge = gap_start[:n_gaps].tolist(), gap_stop[:n_gaps].tolist()
        tot.gaps = [Gap(a, b) for a, b in zip(gs, ge, strict=True)]
        tot.lost_samples = int(sum(ge) - sum(gs))
        tot.samples_decoded = n_out

        # --- state ----------------------------------------------------------------------------
        self._last_seq = int(s_seq[-1])
        self._last_t_us = int(t_u[-1])
        self._last_n = int(s_n[-1])
        self._last_host_ns = int(s_host[-1])
        if n_out:
            self._last_sample_idx = int(sample_idx[-1])
        recent = s_seq[-_RECENT_SEQS:]
        self._recent[recent % _RECENT_SEQS] = recent
        self._totals.add(tot)

        return ImuSamples(
            placement=meta.placement,
            rate_hz=rate,
            sample_idx=sample_idx,
            t_dev_s=t_dev_s,
            host_rx_ns=host_rx,
            acc_m_s2=acc,
            gyr_rad_s=gyr,
            mag_ut=mag if meta.has_mag else None,
            saturated=sat,
            stats=tot.freeze(),
        )

    def _counter_restarts(
        self, v: _Valid, payloads: Sequence[bytes], seq_u: npt.NDArray[np.int64]
    ) -> npt.NDArray[np.bool_]:
        """Re-join a packet counter that restarted (sensor reboot), in place; mark those packets.

        A restart is a ``CLOCK_RESYNC`` packet whose counter went backwards relative to the packet
        received before it and that is not a byte-identical copy of an earlier resync packet. It is
        placed right after the highest counter seen so far (SPEC §4.3); its time base is re-joined
        from the host receive times.
        """
        restart = np.zeros(len(seq_u), np.bool_)
        rs = np.flatnonzero((v.flags & protocol.FLAG_CLOCK_RESYNC) != 0)
        if not len(rs):
            return restart
        seen = self._resync_payloads
        for i in rs.tolist():
            payload = payloads[int(v.pkt[i])]
            before = self._arrival_seq if i == 0 else int(seq_u[i - 1])
            if before is not None and int(seq_u[i]) < before and payload not in seen:
                prior = [int(seq_u[:i].max())] if i else []
                if self._max_arrival_seq is not None:
                    prior.append(self._max_arrival_seq)
                seq_u[i:] += max(prior) + 1 - int(seq_u[i])
                restart[i] = True
            seen.append(payload)
        del seen[:-64]
        return restart

    def _count_errors(
        self,
        tot: _Totals,
        reasons: npt.NDArray[np.int64],
        payloads: Sequence[bytes],
        host_ns: npt.NDArray[np.int64],
        base_index: int,
    ) -> None:
        bad = np.flatnonzero(reasons != _OK)
        if not len(bad):
            return
        codes, counts = np.unique(reasons[bad], return_counts=True)
        for c, k in zip(codes.tolist(), counts.tolist(), strict=True):
            name = _REASON_NAMES[c]
            tot.protocol_errors[name] = tot.protocol_errors.get(name, 0) + k
        room = MAX_ERROR_LOG - len(self._totals.error_log)
        for i in bad[: max(0, room)].tolist():
            try:
                protocol.parse_header(payloads[i])
            except ProtocolError as err:
                msg = str(err)
            else:
                msg = _mag_message(not self.meta.has_mag, self.meta)
            tot.error_log.append(
                f"packet {base_index + i} (host_rx_ns={int(host_ns[i])}, "
                f"{len(payloads[i])} bytes): {msg}"
            )


def decode_sensor_packets(packets: Sequence[RawPacket], meta: SensorMeta) -> ImuSamples:
    """Decode all packets of ONE sensor (any arrival order) into samples on its device clock.

    Parameters
    ----------
    packets : sequence of RawPacket
        This sensor's notifications in arrival order (``packet.sensor`` is not checked).
    meta : SensorMeta
        Scale factors, nominal ``rate_hz``, ``has_mag``.

    Returns
    -------
    ImuSamples
        Sorted by ``sample_idx``; malformed, duplicate and lost packets are in ``stats``. Never
        raises for bad packet contents.
    """
    return StreamDecoder(meta).push(packets)


def decode_sensor_arrays(
    payloads: PackedPayloads, host_rx_ns: npt.ArrayLike, meta: SensorMeta
) -> ImuSamples:
    """:func:`decode_sensor` for packets given as arrays (no :class:`RawPacket` per packet).

    Parameters
    ----------
    payloads : PackedPayloads
        ONE sensor's payloads in arrival order.
    host_rx_ns : (P,) int
        Their host receive times, ns.
    meta : SensorMeta

    Returns
    -------
    ImuSamples
        Equal to :func:`decode_sensor` of the same packets. Sensors of another protocol than
        ``"imuhip"`` are decoded through their registered packet decoder.
    """
    if meta.protocol == "imuhip":
        return StreamDecoder(meta).push_arrays(payloads, host_rx_ns)
    host = np.asarray(host_rx_ns, dtype=np.int64).reshape(-1)
    if len(host) != len(payloads):
        raise ValueError(f"host_rx_ns has {len(host)} entries for {len(payloads)} payloads")
    packets = [RawPacket(meta.placement, int(h), payloads[i]) for i, h in enumerate(host.tolist())]
    return decode_sensor(packets, meta)


DECODERS: dict[str, Callable[[Sequence[RawPacket], SensorMeta], ImuSamples]] = {
    "imuhip": decode_sensor_packets,
}
"""Batch decoder per ``SensorMeta.protocol``; other protocol modules register themselves here."""

STREAM_DECODERS: dict[str, Callable[[SensorMeta], StreamDecoder]] = {"imuhip": StreamDecoder}
"""Streaming decoder class per protocol (``push(packets) -> ImuSamples``, ``stats``), same rule."""

_PROTOCOL_PACKAGES: Final = {"movesense": "imuhip.sources.movesense"}
"""Packages that register their protocol's decoders when imported (loaded on first use)."""


def _load_protocol(name: str) -> None:
    """Import the package of protocol ``name`` so it registers its decoders (no-op if unknown)."""
    module = _PROTOCOL_PACKAGES.get(name)
    if module is not None and name not in DECODERS:
        import importlib

        importlib.import_module(module)


def stream_decoder_for(meta: SensorMeta) -> StreamDecoder:
    """A fresh streaming decoder for ``meta.protocol`` (``ProtocolError`` if none is known)."""
    _load_protocol(meta.protocol)
    factory = STREAM_DECODERS.get(meta.protocol)
    if factory is None:
        raise ProtocolError(
            f"sensor {meta.placement!r} speaks protocol {meta.protocol!r}; no stream decoder "
            f"registered (known: {', '.join(sorted(STREAM_DECODERS))})",
            "protocol",
        )
    return factory(meta)


def decode_sensor(packets: Sequence[RawPacket], meta: SensorMeta) -> ImuSamples:
    """Decode all packets of one sensor with the batch decoder of ``meta.protocol``.

    Raises
    ------
    ProtocolError
        ``reason="protocol"`` if no decoder is registered for ``meta.protocol``.
    """
    _load_protocol(meta.protocol)
    decoder = DECODERS.get(meta.protocol)
    if decoder is None:
        raise ProtocolError(
            f"sensor {meta.placement!r} speaks protocol {meta.protocol!r}; no decoder "
            f"registered (known: {', '.join(sorted(DECODERS))})",
            "protocol",
        )
    return decoder(packets, meta)


def decode_session_arrays(
    payloads: Mapping[str, PackedPayloads],
    host_rx_ns: Mapping[str, npt.ArrayLike],
    meta: SessionMeta,
) -> dict[str, ImuSamples]:
    """:func:`decode_session` for packets already grouped per sensor as arrays.

    Parameters
    ----------
    payloads : mapping of placement to PackedPayloads
        Each sensor's payloads in arrival order (e.g.
        :attr:`imuhip.ingest.recording.PacketArrays.payloads`); a sensor of ``meta`` missing here
        has
        no packets.
    host_rx_ns : mapping of placement to (P,) int
    meta : SessionMeta

    Returns
    -------
    dict of str to ImuSamples
        Equal to :func:`decode_session` of the same packets. Entries for placements not in
        ``meta`` are counted and logged (warning), never fatal.
    """
    known = {s.placement for s in meta.sensors}
    unknown = {k: len(v) for k, v in payloads.items() if k not in known and len(v)}
    if unknown:
        _LOG.warning(
            "ignored packets of sensors not in the session metadata: %s",
            ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items())),
        )
    empty = PackedPayloads(np.zeros(0, np.uint8), np.zeros(0, np.int64), np.zeros(0, np.int64))
    return {
        s.placement: decode_sensor_arrays(
            payloads.get(s.placement, empty),
            host_rx_ns.get(s.placement, np.zeros(0, np.int64)),
            s,
        )
        for s in meta.sensors
    }


class _SensorCodes(dict[str, int]):
    """Sensor name -> index in the session; -1 for a name not in the session."""

    def __missing__(self, key: str) -> int:
        return -1


_SENSOR: Final = operator.attrgetter("sensor")
_HOST: Final = operator.attrgetter("host_rx_ns")
_PAYLOAD: Final = operator.attrgetter("payload")


_PACK_CHUNK: Final = 4096  # packets joined at once: a small buffer the allocator reuses


def _pack_by_code(
    payloads: Sequence[bytes], codes: npt.NDArray[np.int64], n_codes: int
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Pack the payloads into one buffer with those of each code together (arrival order).

    Returns ``(buffer, start, length)`` per payload. The payloads are joined in arrival order a
    chunk at a time (small buffers the allocator reuses, read in memory order) and copied into
    place by :func:`imuhip.ingest._decode_kernels.gather_payloads`; codes must lie in ``[0,
    n_codes)``.
    """
    n = len(payloads)
    length = np.fromiter(map(len, payloads), np.int64, n)
    per_code = np.bincount(codes, weights=length, minlength=n_codes).astype(np.int64)
    cursor = np.cumsum(per_code) - per_code
    buf = np.empty(int(per_code.sum()), np.uint8)
    start = np.empty(n, np.int64)
    for a in range(0, n, _PACK_CHUNK):
        b = min(n, a + _PACK_CHUNK)
        chunk = np.frombuffer(b"".join(payloads[a:b]), np.uint8)
        ln, cd = length[a:b], codes[a:b]
        _kd.gather_payloads(chunk, np.cumsum(ln) - ln, ln, cd, 0, cursor, buf, start[a:b])
        cursor += np.bincount(cd, weights=ln, minlength=n_codes).astype(np.int64)
    buf.flags.writeable = False
    return buf, start, length


def decode_session(packets: Iterable[RawPacket], meta: SessionMeta) -> dict[str, ImuSamples]:
    """Decode a whole session: group packets by ``RawPacket.sensor`` and dispatch per protocol.

    Packets of sensors absent from ``meta`` are counted and logged (warning), never fatal.
    Every sensor of ``meta`` gets an entry, empty if nothing of it was decodable. Sensors of the
    imuhip protocol are decoded from their payloads packed into one buffer
    (:meth:`StreamDecoder.push_arrays`, equal to :func:`decode_sensor_packets`): the only
    per-packet Python work is taking the three fields of each packet.

    Raises
    ------
    ProtocolError
        ``reason="protocol"`` if a sensor declares a protocol no decoder is registered for.
    """
    pk = packets if isinstance(packets, list | tuple) else list(packets)
    codes_of = _SensorCodes()
    for s in meta.sensors:
        codes_of.setdefault(s.placement, len(codes_of))
    n = len(pk)
    codes = np.fromiter(map(codes_of.__getitem__, map(_SENSOR, pk)), np.int64, n)
    bad = np.flatnonzero(codes < 0)
    if len(bad):
        unknown: dict[str, int] = {}
        for j in bad.tolist():
            unknown[pk[j].sensor] = unknown.get(pk[j].sensor, 0) + 1
        _LOG.warning(
            "ignored packets of sensors not in the session metadata: %s",
            ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items())),
        )
    # the payloads of all packets packed per sensor, and the host times, taken once (only if an
    # imuhip sensor needs them)
    packed: tuple[PackedPayloads, npt.NDArray[np.int64]] | None = None
    out: dict[str, ImuSamples] = {}
    for s in meta.sensors:
        mine = np.flatnonzero(codes == codes_of[s.placement])
        _load_protocol(s.protocol)
        if DECODERS.get(s.protocol) is decode_sensor_packets:  # imuhip: the array path
            if packed is None:
                sink = np.where(codes < 0, len(codes_of), codes)  # unknown sensors: not decoded
                buf, start, length = _pack_by_code(list(map(_PAYLOAD, pk)), sink, len(codes_of) + 1)
                packed = (
                    PackedPayloads(buf, start, length),
                    np.fromiter(map(_HOST, pk), np.int64, n),
                )
            allp, host = packed
            out[s.placement] = StreamDecoder(s).push_arrays(
                PackedPayloads(allp.data, allp.start[mine], allp.length[mine]), host[mine]
            )
        else:
            out[s.placement] = decode_sensor([pk[j] for j in mine.tolist()], s)
    return out
