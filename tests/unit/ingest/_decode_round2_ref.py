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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.errors import ProtocolError
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

    Behaves as a read-only sequence of ``bytes`` (``payloads[i]`` copies one payload out) and
    lets :func:`decode_sensor_arrays` gather all payloads of one length into a ``(P, L)`` array
    at once. Used by the recording fast path (:func:`imuhip.ingest.recording.read_packet_arrays`),
    where the buffer is the file body and the payloads sit between frame headers.

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
    start: npt.NDArray[np.int64]  # first row of the packet in raw
    raw: npt.NDArray[np.int16]  # (S, ch)


def _validate(payloads: Sequence[bytes], has_mag: bool) -> tuple[_Valid, npt.NDArray[np.int64]]:
    """Validate all packets; return the valid ones and a reason code per packet.

    ``payloads`` is a list of ``bytes`` or a :class:`PackedPayloads` (same result).
    """
    ch = protocol.channels(has_mag)
    p_total = len(payloads)
    reasons = np.zeros(p_total, np.int64)
    packed = payloads if isinstance(payloads, PackedPayloads) else None
    if packed is not None:
        lengths = packed.length
        uniq = np.unique(lengths) if p_total else lengths
    else:
        lengths = np.fromiter(map(len, payloads), np.int64, p_total)
        uniq = np.unique(lengths)
    parts: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.uint8], int]] = []
    for length in uniq.tolist():
        if len(uniq) == 1:
            idx = np.arange(p_total, dtype=np.int64)
        else:
            idx = np.flatnonzero(lengths == length)
        if length < protocol.OVERHEAD:
            reasons[idx] = _SHORT
            continue
        if packed is not None:
            a = packed.take(idx, length)
        else:
            group = payloads if len(uniq) == 1 else [payloads[i] for i in idx.tolist()]
            a = np.frombuffer(b"".join(group), np.uint8).reshape(len(group), length)
        r = np.zeros(len(a), np.int64)
        version, flags, n = a[:, 0], a[:, 1], a[:, 8].astype(np.int64)
        pkt_ch = np.where(flags & protocol.FLAG_MAG, 9, 6)
        want = protocol.OVERHEAD + 2 * pkt_ch * n
        checks = (
            (version != protocol.PROTOCOL_VERSION, _VERSION),
            ((flags & protocol.FLAGS_RESERVED_MASK) != 0, _FLAGS),
            ((n < 1) | (n > protocol.MAX_SAMPLES), _COUNT),
            (want != length, _LENGTH),
        )
        for bad, code in checks:
            r[(r == _OK) & bad] = code
        todo = np.flatnonzero(r == _OK)
        if len(todo):
            sub = a[todo] if len(todo) < len(a) else a
            crc_rx = sub[:, length - 2].astype(np.uint16) | (
                sub[:, length - 1].astype(np.uint16) << np.uint16(8)
            )
            bad_crc = crc16_many(sub[:, : length - 2]) != crc_rx
            r[todo[bad_crc]] = _CRC
        r[(r == _OK) & (((flags & protocol.FLAG_MAG) != 0) != has_mag)] = _MAGFLAG
        reasons[idx] = r
        ok = r == _OK
        if ok.any():
            parts.append((idx[ok], a[ok], length))
    if not parts:
        e = np.zeros(0, np.int64)
        return _Valid(e, e, e, e, e, e, np.zeros((0, ch), np.int16)), reasons
    pkts, seqs, ts, flg, ns, raws = [], [], [], [], [], []
    for idx, a, length in parts:
        n_g = (length - protocol.OVERHEAD) // (2 * ch)
        pkts.append(idx)
        seqs.append(a[:, 2].astype(np.int64) | (a[:, 3].astype(np.int64) << 8))
        ts.append(
            a[:, 4].astype(np.int64)
            | (a[:, 5].astype(np.int64) << 8)
            | (a[:, 6].astype(np.int64) << 16)
            | (a[:, 7].astype(np.int64) << 24)
        )
        flg.append(a[:, 1].astype(np.int64))
        ns.append(np.full(len(idx), n_g, np.int64))
        body = np.ascontiguousarray(a[:, protocol.HEADER_LEN : length - protocol.CRC_LEN])
        raws.append(body.view("<i2").reshape(len(idx) * n_g, ch))
    n_all = np.concatenate(ns)
    start = np.concatenate([[0], np.cumsum(n_all)[:-1]]).astype(np.int64)
    pkt_all = np.concatenate(pkts)
    order = np.argsort(pkt_all, kind="stable")  # back to arrival order
    raw = (raws[0] if len(raws) == 1 else np.concatenate(raws)).astype(np.int16, copy=False)
    v = _Valid(
        pkt=pkt_all[order],
        seq=np.concatenate(seqs)[order],
        t_us=np.concatenate(ts)[order],
        flags=np.concatenate(flg)[order],
        n=n_all[order],
        start=start[order],
        raw=raw,
    )
    return v, reasons


def _nearest_diff(x: npt.NDArray[np.int64], modulus: int) -> npt.NDArray[np.int64]:
    """Differences of a wrapped counter taken as the nearest distance, in ``[-m/2, m/2)``."""
    half = modulus // 2
    return ((np.diff(x) + half) % modulus) - half


def _ranges(start: npt.NDArray[np.int64], n: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Concatenation of ``arange(s, s + k)`` for each pair, vectorised."""
    total = int(n.sum())
    if total == 0:
        return np.zeros(0, np.int64)
    first = np.cumsum(n) - n
    return np.repeat(start - first, n) + np.arange(total, dtype=np.int64)


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
        meta = self.meta
        tot = _Totals()
        p_total = len(packets)
        tot.packets_received = p_total
        base_index = self._n_pushed
        self._n_pushed += p_total
        if p_total == 0:
            return empty_samples(meta, tot.freeze())
        payloads = [p.payload for p in packets]
        host_ns = np.array([p.host_rx_ns for p in packets], dtype=np.int64)
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
        meta = self.meta
        tot = _Totals()
        p_total = len(payloads)
        tot.packets_received = p_total
        base_index = self._n_pushed
        self._n_pushed += p_total
        if p_total == 0:
            return empty_samples(meta, tot.freeze())
        return self._push(payloads, host_ns, tot, base_index)

    def _push(
        self,
        payloads: Sequence[bytes],
        host_ns: npt.NDArray[np.int64],
        tot: _Totals,
        base_index: int,
    ) -> ImuSamples:
        meta = self.meta
        rate = float(meta.rate_hz)
        v, reasons = _validate(payloads, meta.has_mag)
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
            k = np.where(contiguous, p_n[ri], np.maximum(p_n[ri], np.rint(est * rate)))
            dt[ri] = np.rint(k * 1e6 / rate).astype(np.int64)
            tot.clock_resyncs = len(ri)
        if has_prev:
            t_u = self._last_t_us + np.cumsum(dt)
        else:
            t_u = int(s_t[0]) + np.concatenate([[0], np.cumsum(dt[1:])]).astype(np.int64)
        if self._t0_us is None:
            self._t0_us = int(t_u[0])
        t0 = self._t0_us

        # --- samples in counter order ---------------------------------------------------------
        in_order = len(order) == len(v.seq) and bool(np.all(order == np.arange(len(order))))
        starts = v.start[order]
        rows = np.arange(len(v.raw), dtype=np.int64) if in_order else _ranges(starts, s_n)
        # every packet with the same sample count (the usual case): repeat by a scalar, faster
        reps: int | npt.NDArray[np.int64] = (
            int(s_n[0]) if len(s_n) and bool(np.all(s_n == s_n[0])) else s_n
        )
        k_in = rows - np.repeat(starts, reps)
        idx0 = np.rint((t_u - t0) * (rate * 1e-6)).astype(np.int64)
        sample_idx = np.repeat(idx0, reps) + k_in
        # keep the first (lowest counter) sample per index, drop those already emitted
        sel: npt.NDArray[np.int64] | None = None  # None: all samples, in this order
        if len(sample_idx) >= 2 and not bool(np.all(np.diff(sample_idx) > 0)):
            sample_idx, sel = np.unique(sample_idx, return_index=True)
        if (
            self._last_sample_idx is not None
            and len(sample_idx)
            and (sample_idx[0] <= self._last_sample_idx)
        ):
            fresh = np.flatnonzero(sample_idx > self._last_sample_idx)
            sel = fresh if sel is None else sel[fresh]
            sample_idx = sample_idx[fresh]
        uniq_idx = sample_idx
        tot.overlapping_samples = int(s_n.sum() - len(uniq_idx))
        t_dev_all = np.repeat(t_u * 1e-6, reps) + k_in / rate
        host_all = np.repeat(s_host, reps)
        sat_pkt = (s_flags & protocol.FLAG_SATURATED) != 0
        sat_all = np.repeat(sat_pkt, reps) if sat_pkt.any() else np.zeros(len(rows), np.bool_)
        if sel is None:
            raw = v.raw if in_order else v.raw[rows]
            t_dev_s, host_rx, sat = t_dev_all, host_all, sat_all
        else:
            raw = v.raw[rows[sel]]
            t_dev_s, host_rx, sat = t_dev_all[sel], host_all[sel], sat_all[sel]
        # a count at the int16 limits is clipped whatever the flag says: 0x7FFF, 0x8000
        at_limit = (raw.view(np.uint16) - np.uint16(0x7FFF)) <= 1
        if at_limit.any():
            sat = sat | at_limit.any(axis=1)

        # --- gaps -----------------------------------------------------------------------------
        chain = (
            uniq_idx
            if self._last_sample_idx is None
            else np.concatenate([[self._last_sample_idx], uniq_idx])
        )
        jumps = np.flatnonzero(np.diff(chain) > 1)
        tot.gaps = [Gap(int(chain[j]) + 1, int(chain[j + 1])) for j in jumps.tolist()]
        tot.lost_samples = int(sum(g.n_samples for g in tot.gaps))
        tot.samples_decoded = len(uniq_idx)

        # --- state ----------------------------------------------------------------------------
        self._last_seq = int(s_seq[-1])
        self._last_t_us = int(t_u[-1])
        self._last_n = int(s_n[-1])
        self._last_host_ns = int(s_host[-1])
        if len(uniq_idx):
            self._last_sample_idx = int(uniq_idx[-1])
        recent = s_seq[-_RECENT_SEQS:]
        self._recent[recent % _RECENT_SEQS] = recent
        self._totals.add(tot)

        return ImuSamples(
            placement=meta.placement,
            rate_hz=rate,
            sample_idx=uniq_idx.astype(np.int64),
            t_dev_s=t_dev_s.astype(np.float64, copy=False),
            host_rx_ns=host_rx.astype(np.int64, copy=False),
            acc_m_s2=np.multiply(raw[:, 0:3], float(meta.acc_lsb_m_s2), dtype=np.float64),
            gyr_rad_s=np.multiply(raw[:, 3:6], float(meta.gyr_lsb_rad_s), dtype=np.float64),
            mag_ut=(
                np.multiply(raw[:, 6:9], float(meta.mag_lsb_ut), dtype=np.float64)
                if meta.has_mag
                else None
            ),
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


def decode_session(packets: Iterable[RawPacket], meta: SessionMeta) -> dict[str, ImuSamples]:
    """Decode a whole session: group packets by ``RawPacket.sensor`` and dispatch per protocol.

    Packets of sensors absent from ``meta`` are counted and logged (warning), never fatal.
    Every sensor of ``meta`` gets an entry, empty if nothing of it was decodable.

    Raises
    ------
    ProtocolError
        ``reason="protocol"`` if a sensor declares a protocol no decoder is registered for.
    """
    by_sensor: dict[str, list[RawPacket]] = {s.placement: [] for s in meta.sensors}
    unknown: dict[str, int] = {}
    for p in packets:
        lst = by_sensor.get(p.sensor)
        if lst is None:
            unknown[p.sensor] = unknown.get(p.sensor, 0) + 1
        else:
            lst.append(p)
    if unknown:
        _LOG.warning(
            "ignored packets of sensors not in the session metadata: %s",
            ", ".join(f"{k!r} ({v})" for k, v in sorted(unknown.items())),
        )
    return {s.placement: decode_sensor(by_sensor[s.placement], s) for s in meta.sensors}
