"""Movesense GSP notifications -> :class:`~imuhip.types.ImuSamples` (SI units, device clock).

Movesense messages carry no sequence number, only the device time (u32 ms) of their first sample,
so this decoder orders, de-duplicates and accounts for loss by timestamp:

* notifications are read in arrival order: a DATA notification followed by a DATA_PART2 of the
  same reference is one message (``part1 + part2[2:]``); a DATA_PART2 without its DATA is an
  ``"orphan"`` protocol error; a lone DATA of the length of a part 1 seen before (its part 2 was
  lost) is ``"incomplete"``; garbage is counted per reason, never raises;
* every message of one subscription has the same sample count; a message with another count is a
  ``"count"`` error (the expected count is the most common one of the batch, or, live, the first
  count ``_CONFIRM`` messages in a row agree on: messages wait until it is known);
* no checksum guards a message, so before one moves the counters it is sanity-checked: values
  beyond any sensor range are a ``"value"`` error; a timestamp that jumps away from the latest
  accepted message is held until the next messages tell: back on the old clock, it was an
  ``"outlier"`` (counted, skipped); ``_CONFIRM`` messages agreeing with it, a real dropout;
* timestamps are unwrapped (2^32 ms) by nearest distance in arrival order; a timestamp seen before
  is a duplicate (first copy kept); messages are decoded in timestamp order;
* consecutive messages advance the sample index by ``round(dt_ms / period_ms)``, where
  ``period_ms`` is the sample period measured over contiguous messages (nominal ``1000 / rate``
  until enough are seen), so a sensor whose real rate is off by a few percent still counts whole
  messages; a larger advance is a :class:`~imuhip.types.Gap`, a smaller one overlapping samples
  (dropped, first kept);
* units: gyroscope deg/s -> rad/s; acceleration (m/s^2) and magnetic field (uT) unchanged.

``DecodeStats`` "packets" here are GSP data *messages* (one DATA, or DATA + DATA_PART2), except
``packets_received`` which counts notifications; ``lost_packets`` is the number of missing samples
over the message size, rounded.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.errors import ProtocolError
from imuhip.ingest.decode import MAX_ERROR_LOG, empty_samples
from imuhip.ingest.decode.stats import _Totals as _Acc  # the same counters as the imuhip decoder
from imuhip.sources.movesense import gsp
from imuhip.types import DecodeStats, Gap, ImuSamples, RawPacket, SensorMeta

__all__ = [
    "MovesenseStreamDecoder",
    "decode_movesense_packets",
    "movesense_meta",
]

_LOG = logging.getLogger(__name__)

DEG = math.pi / 180.0
_HALF = gsp.TIME_MODULUS_MS // 2
_RECENT = 4096  # timestamps remembered to tell duplicates from late messages
_PERIOD_MIN_SAMPLES = 64  # contiguous samples needed before the measured period is used
_CONFIRM = 3  # messages that must agree before a sample count or a time jump is believed
_STEP_SLACK_MS = 250.0  # slack of the timestamp-step check, ms ...
_STEP_REL = 0.1  # ... plus this fraction of the expected step
_STEP_AHEAD_MSGS = 4  # a step of up to this many messages is taken at once (reordering, a loss)
_STEP_BACK_MS = 10_000.0  # how far back a late message may lie
# |value| above these is not a measurement (float32 garbage): acc m/s^2, gyro deg/s, magn uT
_ABSURD = (1e4, 1e5, 1e5)


def movesense_meta(
    placement: str,
    rate_hz: int = 104,
    *,
    address: str = "",
    serial: str = "",
    firmware: str = "",
    model: str = "Movesense",
) -> SensorMeta:
    """The :class:`SensorMeta` of a Movesense streaming ``/Meas/IMU9/{rate_hz}``.

    The values are float32 in physical units, so the "LSB" factors are unit conversions: acc 1
    (m/s^2), gyro pi/180 (deg/s -> rad/s), magnetometer 1 (uT).
    """
    gsp.imu9_path(rate_hz)  # ValueError for a rate Movesense does not offer
    return SensorMeta(
        placement=placement,
        rate_hz=float(rate_hz),
        acc_lsb_m_s2=1.0,
        gyr_lsb_rad_s=DEG,
        mag_lsb_ut=1.0,
        has_mag=True,
        address=address,
        model=model,
        serial=serial,
        firmware=firmware,
        protocol="movesense",
        protocol_version=1,
        acc_range_g=16.0,
        gyr_range_dps=2000.0,
    )


@dataclass(slots=True)
class _Msg:
    """One reassembled message (before timestamp ordering)."""

    arrival: int  # index of its first notification in the decoder's input
    host_rx_ns: int
    value: bytes  # the IMU9 value (no GSP header)
    n_notifications: int


@dataclass(slots=True)
class _Pending:
    ref: int
    host_rx_ns: int
    arrival: int
    data: bytes  # DATA notification incl. header


class MovesenseStreamDecoder:
    """Stateful decoder of one Movesense's notification stream (same API as ``StreamDecoder``).

    ``push(packets)`` returns the samples the packets complete; a DATA notification that may still
    get its DATA_PART2 waits for the next push (:meth:`flush` resolves it at the end). Pushing a
    stream in chunks, then :meth:`flush`, gives the batch result (:func:`decode_movesense_packets`)
    except that, live, the expected sample count is learnt from the first ``_CONFIRM`` messages
    that agree rather than the most common one.

    Parameters
    ----------
    meta : SensorMeta
        From :func:`movesense_meta` (``protocol == "movesense"``).
    expected_n : int or None
        Samples per message if known (the batch decoder passes the most common count).
    """

    def __init__(self, meta: SensorMeta, expected_n: int | None = None) -> None:
        if not isinstance(meta, SensorMeta):
            raise TypeError(f"meta must be a SensorMeta, got {type(meta).__name__}")
        if meta.protocol != "movesense":
            raise ValueError(f"sensor {meta.placement!r} speaks {meta.protocol!r}, not movesense")
        self.meta = meta
        self.rate_hz = float(meta.rate_hz)
        self.expected_n = expected_n
        self._n_in = 0
        self._pending: _Pending | None = None
        self._part1_lengths: set[int] = set()
        self._arrival_ts: int | None = None  # unwrapped ts of the last accepted arrival
        self._last_ts: int | None = None  # highest emitted message: unwrapped ts,
        self._last_idx0 = 0  # its first sample index,
        self._last_n = 0  # its sample count
        self._last_sample_idx: int | None = None
        self._sum_dt_ms = 0.0
        self._sum_n = 0
        self._recent: set[int] = set()
        self._stats = _Acc()
        # sanity gate: (raw timestamp, n) of the latest accepted message; messages held back
        # because their timestamp jumped away from it; messages waiting for the sample count
        self._gate_ref: tuple[int, int] | None = None
        self._held: list[tuple[_Msg, gsp.Imu9Message]] = []
        self._learning: list[tuple[_Msg, gsp.Imu9Message]] = []

    # -- public --------------------------------------------------------------------------------
    @property
    def stats(self) -> DecodeStats:
        """Cumulative statistics over everything pushed so far."""
        return self._stats.freeze()

    @property
    def period_ms(self) -> float:
        """Sample period used to count samples between messages (measured or nominal)."""
        if self._sum_n >= _PERIOD_MIN_SAMPLES:
            return self._sum_dt_ms / self._sum_n
        return 1000.0 / self.rate_hz

    def push(self, packets: Sequence[RawPacket]) -> ImuSamples:
        """Decode the next notifications (arrival order); never raises on bad data."""
        acc = _Acc()
        acc.packets_received = len(packets)
        msgs: list[_Msg] = []
        for p in packets:
            self._take(p, msgs, acc)
        return self._emit(msgs, acc)

    def flush(self) -> ImuSamples:
        """Resolve a DATA still waiting for its part 2 (end of the stream)."""
        acc = _Acc()
        msgs: list[_Msg] = []
        self._resolve_pending(msgs, acc)
        return self._emit(msgs, acc, final=True)

    # -- reassembly ----------------------------------------------------------------------------
    def _error(self, acc: _Acc, reason: str, index: int, p: RawPacket, message: str) -> None:
        acc.protocol_errors[reason] = acc.protocol_errors.get(reason, 0) + 1
        if len(self._stats.error_log) + len(acc.error_log) < MAX_ERROR_LOG:
            acc.error_log.append(
                f"notification {index} (host_rx_ns={p.host_rx_ns}, {len(p.payload)} bytes): "
                f"{message}"
            )

    def _resolve_pending(self, msgs: list[_Msg], acc: _Acc) -> None:
        pend = self._pending
        if pend is None:
            return
        self._pending = None
        data = pend.data
        if len(data) in self._part1_lengths:
            p = RawPacket(self.meta.placement, pend.host_rx_ns, data)
            self._error(acc, "incomplete", pend.arrival, p, "DATA whose DATA_PART2 never came")
            return
        msgs.append(_Msg(pend.arrival, pend.host_rx_ns, data[gsp.HEADER_BYTES :], 1))

    def _full_len(self) -> int | None:
        if self.expected_n is None:
            return None
        return gsp.HEADER_BYTES + gsp.TIMESTAMP_BYTES + gsp.IMU9_SAMPLE_BYTES * self.expected_n

    def _take(self, p: RawPacket, msgs: list[_Msg], acc: _Acc) -> None:
        index = self._n_in
        self._n_in += 1
        b = bytes(p.payload)
        if len(b) < gsp.HEADER_BYTES:
            self._resolve_pending(msgs, acc)
            self._error(acc, "short", index, p, "shorter than the 2-byte GSP header")
            return
        kind, ref = b[0], b[1]
        if kind == gsp.RESP_DATA_PART2:
            pend = self._pending
            if pend is None or pend.ref != ref:
                self._resolve_pending(msgs, acc)
                self._error(acc, "orphan", index, p, "DATA_PART2 without its DATA")
                return
            self._pending = None
            self._part1_lengths.add(len(pend.data))
            value = pend.data[gsp.HEADER_BYTES :] + b[gsp.HEADER_BYTES :]
            msgs.append(_Msg(pend.arrival, pend.host_rx_ns, value, 2))
            return
        self._resolve_pending(msgs, acc)
        if kind == gsp.RESP_DATA:
            if not self._part1_lengths and len(b) == self._full_len():
                msgs.append(_Msg(index, p.host_rx_ns, b[gsp.HEADER_BYTES :], 1))
            else:
                self._pending = _Pending(ref, p.host_rx_ns, index, b)
            return
        if kind == gsp.RESP_COMMAND_RESULT:
            self._error(acc, "not_data", index, p, "a COMMAND_RESULT in the data stream")
            return
        self._error(acc, "type", index, p, f"unknown GSP response code {kind}")

    # -- ordering, indexing --------------------------------------------------------------------
    def _raw(self, m: _Msg) -> RawPacket:
        return RawPacket(self.meta.placement, m.host_rx_ns, gsp.HEADER_BYTES * b"\0" + m.value)

    def _learn_count(
        self, parsed: list[tuple[_Msg, gsp.Imu9Message]], final: bool
    ) -> list[tuple[_Msg, gsp.Imu9Message]]:
        """Fix ``expected_n`` once ``_CONFIRM`` messages in a row agree; hold messages until then.

        At the end of the stream (``final``) the most common count (the larger on a tie) wins.
        """
        if self.expected_n is not None:
            return parsed
        self._learning.extend(parsed)
        counts = [imu.n for _, imu in self._learning]
        for i in range(len(counts) - _CONFIRM + 1):
            if len(set(counts[i : i + _CONFIRM])) == 1:
                self.expected_n = counts[i]
                break
        if self.expected_n is None and final and counts:
            tally = Counter(counts)
            self.expected_n = max(tally, key=lambda k: (tally[k], k))
        if self.expected_n is None:
            return []
        out, self._learning = self._learning, []
        return out

    def _step_ok(self, ref: tuple[int, int], ts: int) -> bool:
        """Whether a message stamped ``ts`` may follow ``ref`` (raw timestamp, n) on one clock."""
        dt = ((ts - ref[0] + _HALF) % gsp.TIME_MODULUS_MS) - _HALF
        step = ref[1] * 1000.0 / self.rate_hz
        ahead = _STEP_AHEAD_MSGS * step * (1 + _STEP_REL) + _STEP_SLACK_MS
        return -_STEP_BACK_MS <= dt <= ahead

    def _gate(self, m: _Msg, imu: gsp.Imu9Message, acc: _Acc) -> list[tuple[_Msg, gsp.Imu9Message]]:
        """The messages that may move the counters now, given the next message ``(m, imu)``.

        Absurd values are a ``"value"`` error. A timestamp that jumps away from the latest
        accepted message is held: if the next message agrees with the latest accepted one again,
        the held ones are counted as ``"outlier"`` and skipped; once ``_CONFIRM`` messages agree
        with each other the jump was real (a dropout) and they are all accepted.
        """
        for a, lim in zip((imu.acc_m_s2, imu.gyr_dps, imu.mag_ut), _ABSURD, strict=True):
            if float(np.max(np.abs(a))) > lim:
                self._error(acc, "value", m.arrival, self._raw(m), "IMU9 value out of range")
                return []
        ts = imu.timestamp_ms
        ref = self._gate_ref
        if ref is None or self._step_ok(ref, ts):
            self._drop_held(acc)
            self._advance_ref(ts, imu.n)
            return [(m, imu)]
        if self._held:
            last = self._held[-1][1]
            if self._step_ok((last.timestamp_ms, last.n), ts):
                self._held.append((m, imu))
                if len(self._held) < _CONFIRM:
                    return []
                return self._release_held()
        self._drop_held(acc)
        self._held = [(m, imu)]
        return []

    def _release_held(self) -> list[tuple[_Msg, gsp.Imu9Message]]:
        """Accept the held messages (a real jump): the reference moves to the newest of them."""
        out, self._held = self._held, []
        self._gate_ref = None
        for _, h in out:
            self._advance_ref(h.timestamp_ms, h.n)
        return out

    def _advance_ref(self, ts: int, n: int) -> None:
        ref = self._gate_ref
        if ref is None or ((ts - ref[0] + _HALF) % gsp.TIME_MODULUS_MS) - _HALF > 0:
            self._gate_ref = (ts, n)

    def _drop_held(self, acc: _Acc) -> None:
        for hm, _ in self._held:
            self._error(
                acc, "outlier", hm.arrival, self._raw(hm), "timestamp inconsistent with neighbours"
            )
        self._held = []

    def _emit(self, msgs: list[_Msg], acc: _Acc, final: bool = False) -> ImuSamples:
        meta = self.meta
        decoded: list[tuple[int, _Msg, gsp.Imu9Message]] = []
        parsed: list[tuple[_Msg, gsp.Imu9Message]] = []
        for m in msgs:
            try:
                imu = gsp.parse_imu9(m.value)
            except ProtocolError as err:
                self._error(acc, err.reason, m.arrival, self._raw(m), str(err))
                continue
            parsed.append((m, imu))
        accepted: list[tuple[_Msg, gsp.Imu9Message]] = []
        for m, imu in self._learn_count(parsed, final):
            p = self._raw(m)
            if imu.n != self.expected_n:
                self._error(
                    acc,
                    "count",
                    m.arrival,
                    p,
                    f"message of {imu.n} samples in a stream of {self.expected_n}",
                )
                continue
            accepted.extend(self._gate(m, imu, acc))
        if final and self._held:  # the stream ended: a lone jump is an outlier, more a dropout
            if len(self._held) > 1:
                accepted.extend(self._release_held())
            else:
                self._drop_held(acc)
        for m, imu in accepted:
            ts = imu.timestamp_ms
            prev = ts if self._arrival_ts is None else self._arrival_ts
            ts_u = prev + ((ts - prev + _HALF) % gsp.TIME_MODULUS_MS) - _HALF
            self._arrival_ts = ts_u
            decoded.append((ts_u, m, imu))
        # duplicates within the chunk (first received kept), then timestamp order
        seen: dict[int, int] = {}
        keep: list[tuple[int, _Msg, gsp.Imu9Message]] = []
        for item in decoded:
            if item[0] in seen:
                acc.duplicates += 1
                continue
            seen[item[0]] = 1
            keep.append(item)
        running = -math.inf if self._last_ts is None else float(self._last_ts)
        for ts_u, _m, _i in keep:
            if ts_u < running:
                acc.reordered += 1
            running = max(running, ts_u)
        keep.sort(key=lambda it: it[0])

        idx_parts: list[npt.NDArray[np.int64]] = []
        t_parts: list[npt.NDArray[np.float64]] = []
        host_parts: list[npt.NDArray[np.int64]] = []
        rows: list[npt.NDArray[np.float64]] = []
        period_s_nominal = 1.0 / self.rate_hz
        for ts_u, m, imu in keep:
            if self._last_ts is not None and ts_u <= self._last_ts:
                if ts_u in self._recent:
                    acc.duplicates += 1
                else:
                    acc.late_packets += 1
                continue
            n = imu.n
            if self._last_ts is None:
                idx0 = 0
            else:
                dt = ts_u - self._last_ts
                adv = max(1, round(dt / self.period_ms))
                if adv == self._last_n:
                    self._sum_dt_ms += dt
                    self._sum_n += self._last_n
                idx0 = self._last_idx0 + adv
            k = np.arange(n, dtype=np.int64)
            idx = idx0 + k
            fresh = (
                np.ones(n, np.bool_)
                if self._last_sample_idx is None
                else idx > self._last_sample_idx
            )
            acc.overlapping_samples += int(n - np.count_nonzero(fresh))
            if self._last_sample_idx is not None and idx0 > self._last_sample_idx + 1:
                gap = Gap(self._last_sample_idx + 1, int(idx0))
                acc.gaps.append(gap)
                acc.lost_samples += gap.n_samples
                acc.lost_packets += round(gap.n_samples / n)
            acc.packets_decoded += 1
            acc.samples_decoded += int(np.count_nonzero(fresh))
            idx_parts.append(idx[fresh])
            t_parts.append((ts_u * 1e-3 + k[fresh] * period_s_nominal).astype(np.float64))
            host_parts.append(np.full(int(np.count_nonzero(fresh)), m.host_rx_ns, np.int64))
            rows.append(np.hstack([imu.acc_m_s2, imu.gyr_dps, imu.mag_ut])[fresh])
            self._last_ts, self._last_idx0, self._last_n = ts_u, idx0, n
            if fresh.any():
                self._last_sample_idx = int(idx[fresh][-1])
            self._recent.add(ts_u)
        if len(self._recent) > 2 * _RECENT and self._last_ts is not None:
            floor = sorted(self._recent)[-_RECENT]
            self._recent = {t for t in self._recent if t >= floor}
        self._stats.add(acc)
        if not rows:
            return empty_samples(meta, acc.freeze())
        data = np.vstack(rows)
        n_out = len(data)
        return ImuSamples(
            placement=meta.placement,
            rate_hz=self.rate_hz,
            sample_idx=np.concatenate(idx_parts).astype(np.int64),
            t_dev_s=np.concatenate(t_parts).astype(np.float64),
            host_rx_ns=np.concatenate(host_parts),
            acc_m_s2=np.ascontiguousarray(data[:, 0:3]),
            gyr_rad_s=data[:, 3:6] * DEG,
            mag_ut=np.ascontiguousarray(data[:, 6:9]),
            saturated=np.zeros(n_out, np.bool_),
            stats=acc.freeze(),
        )


def decode_movesense_packets(packets: Sequence[RawPacket], meta: SensorMeta) -> ImuSamples:
    """Decode all notifications of ONE Movesense (arrival order) into SI samples.

    The batch decoder registered as ``imuhip.ingest.decode.DECODERS["movesense"]``. Never raises
    for bad
    notification contents (they are counted in ``stats.protocol_errors``).
    """
    dec = MovesenseStreamDecoder(meta, expected_n=gsp.most_common_sample_count(packets))
    a = dec.push(packets)
    b = dec.flush()
    if len(b) == 0:
        return _with_stats(a, dec.stats)
    return ImuSamples(
        placement=a.placement,
        rate_hz=a.rate_hz,
        sample_idx=np.concatenate([a.sample_idx, b.sample_idx]),
        t_dev_s=np.concatenate([a.t_dev_s, b.t_dev_s]),
        host_rx_ns=np.concatenate([a.host_rx_ns, b.host_rx_ns]),
        acc_m_s2=np.vstack([a.acc_m_s2, b.acc_m_s2]),
        gyr_rad_s=np.vstack([a.gyr_rad_s, b.gyr_rad_s]),
        mag_ut=(
            np.vstack([a.mag_ut, b.mag_ut])
            if a.mag_ut is not None and b.mag_ut is not None
            else None
        ),
        saturated=np.concatenate([a.saturated, b.saturated]),
        stats=dec.stats,
    )


def _with_stats(s: ImuSamples, stats: DecodeStats) -> ImuSamples:
    return ImuSamples(
        placement=s.placement,
        rate_hz=s.rate_hz,
        sample_idx=s.sample_idx,
        t_dev_s=s.t_dev_s,
        host_rx_ns=s.host_rx_ns,
        acc_m_s2=s.acc_m_s2,
        gyr_rad_s=s.gyr_rad_s,
        mag_ut=s.mag_ut,
        saturated=s.saturated,
        stats=stats,
    )
