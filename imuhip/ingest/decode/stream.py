"""The streaming decoder of one sensor (:class:`StreamDecoder`); the batch decode is one push.

Per push: validate (:mod:`~imuhip.ingest.decode.validate`), unwrap the 16-bit counter against
arrival order, drop duplicates and late packets, sort by counter, count lost packets, unwrap the
32-bit device time and re-join it at ``CLOCK_RESYNC`` and at clock steps under a contiguous
counter (:mod:`~imuhip.ingest.decode.device_time`), then one compiled pass
(:func:`imuhip.ingest._decode_kernels.emit_samples`) unpacks, scales and indexes the samples and
finds the gaps. The state kept between pushes is a few scalars and a fixed-size table of recent
counters, so the live path's memory does not grow per packet.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.ingest import _decode_kernels as _kd
from imuhip.ingest import protocol
from imuhip.ingest.decode.accounting import count_errors, nearest_diff, seq_between
from imuhip.ingest.decode.device_time import unwrap_device_time
from imuhip.ingest.decode.payloads import PackedPayloads
from imuhip.ingest.decode.stats import _Totals, empty_samples
from imuhip.ingest.decode.validate import _Valid, _validate
from imuhip.types import DecodeStats, Gap, ImuSamples, RawPacket, SensorMeta

_SEQ_HALF: Final = protocol.SEQ_MODULUS // 2
_RECENT_SEQS: Final = 8192  # live path: how far back duplicates are told apart from late packets
_CONFIRM: Final = 3  # a counter/time jump is accepted once this many packets agree with it
_JUMP_TOL_US: Final = 250_000  # slack of the counter/time consistency check, µs ...
_JUMP_TOL_REL: Final = 0.02  # ... plus this fraction of the expected time step
_OUTLIER: Final = (
    "outlier"  # protocol_errors key of a valid packet inconsistent with its neighbours
)

_HOST: Final = operator.attrgetter("host_rx_ns")
_PAYLOAD: Final = operator.attrgetter("payload")


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
        self._last_t_us = 0  # ... its unwrapped, re-joined t_first_us,
        self._last_t_raw_us = 0  # its t_first_us as sent,
        self._last_n = 0  # its sample count,
        self._last_host_ns = 0  # and host receive time
        self._t0_us: int | None = None
        self._step_off_ns = np.zeros(0, np.int64)  # host - device offsets (clock-step check)
        self._last_sample_idx: int | None = None
        # the last _RECENT_SEQS emitted packet counters, slot seq % _RECENT_SEQS (preallocated:
        # the live path's memory does not grow per packet)
        self._recent = np.full(_RECENT_SEQS, -1, np.int64)
        self._resync_payloads: list[bytes] = []  # recent CLOCK_RESYNC packets (duplicate check)
        # outlier gate: (seq, t_first_us, n) of the last accepted packet (raw, wrapped), and the
        # packets held back because they jumped away from it (payload, host_rx_ns, seq, t, n),
        # at most _CONFIRM - 1
        self._ref = np.zeros(3, np.int64)  # preallocated: no allocation per packet
        self._has_ref = False
        self._held: list[tuple[bytes, int, int, int, int]] = []
        self._totals = _Totals()

    @property
    def held_packets(self) -> int:
        """Packets held back (a jump awaiting confirmation by the packets that follow it)."""
        return len(self._held)

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
        count_errors(tot, reasons, payloads, host_ns, base_index, self._totals, self.meta)
        data, v, payloads, host_ns = self._gate(data, v, payloads, host_ns, tot)

        # --- packet counter: unwrap against arrival order, nearest distance -------------------
        if len(v.seq) == 0:
            self._totals.add(tot)
            return empty_samples(meta, tot.freeze())
        prev = self._arrival_seq
        d = nearest_diff(v.seq, protocol.SEQ_MODULUS)
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

        # --- device time: unwrap in counter order, re-join at CLOCK_RESYNC and clock steps -----
        last_pkt = None
        if self._last_seq is not None:
            last_pkt = (
                self._last_seq,
                self._last_t_us,
                self._last_t_raw_us,
                self._last_n,
                self._last_host_ns,
            )
        dev = unwrap_device_time(
            s_seq, s_t, s_n, s_host, s_flags, restart[order], rate, last_pkt, self._step_off_ns
        )
        t_u, self._step_off_ns = dev.t_us, dev.off_tail_ns
        tot.clock_resyncs = dev.resyncs
        tot.clock_steps = dev.steps_back + dev.steps_forward
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
        self._last_t_raw_us = int(s_t[-1])
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

    def _consistent_many(
        self,
        sa: npt.NDArray[np.int64],
        ta: npt.NDArray[np.int64],
        na: npt.NDArray[np.int64],
        sb: npt.NDArray[np.int64],
        tb: npt.NDArray[np.int64],
        nb: npt.NDArray[np.int64],
    ) -> npt.NDArray[np.bool_]:
        """Whether packets ``b`` (seq, t_first_us, n) can follow ``a`` on one counter and clock.

        The device time between their first samples is the samples of the packets in between,
        each carrying 1..MAX_SAMPLES: a counter step ``ds`` bounds the time step (with slack).
        """
        ds = ((sb - sa + _SEQ_HALF) % protocol.SEQ_MODULUS) - _SEQ_HALF
        half_t = protocol.TIME_MODULUS_US // 2
        dt = ((tb - ta + half_t) % protocol.TIME_MODULUS_US) - half_t
        period = 1e6 / float(self.meta.rate_hz)
        big = protocol.MAX_SAMPLES
        pos, neg = ds > 0, ds < 0
        back = -ds - 1
        lo = (pos * (na + ds - 1) - neg * (nb + back * big)) * period
        hi = (pos * (na + (ds - 1) * big) - neg * (nb + back)) * period
        ok: npt.NDArray[np.bool_] = (lo - np.abs(lo) * _JUMP_TOL_REL - _JUMP_TOL_US <= dt) & (
            dt <= hi + np.abs(hi) * _JUMP_TOL_REL + _JUMP_TOL_US
        )
        return ok

    def _consistent(self, a: tuple[int, int, int], b: tuple[int, int, int]) -> bool:
        """:meth:`_consistent_many` of one pair."""
        sa, ta, na = (np.array([x], np.int64) for x in a)
        sb, tb, nb = (np.array([x], np.int64) for x in b)
        return bool(self._consistent_many(sa, ta, na, sb, tb, nb)[0])

    def _gate(
        self,
        data: npt.NDArray[np.uint8],
        v: _Valid,
        payloads: Sequence[bytes],
        host_ns: npt.NDArray[np.int64],
        tot: _Totals,
    ) -> tuple[npt.NDArray[np.uint8], _Valid, Sequence[bytes], npt.NDArray[np.int64]]:
        """Hold back valid packets that jump away from the stream; drop lone outliers.

        A packet whose counter and device time disagree with the last accepted packet (and that
        is not flagged ``CLOCK_RESYNC``) is held. If a later packet agrees with the last accepted
        one again, the held packets were outliers: they are counted in
        ``protocol_errors["outlier"]`` and never decoded. If ``_CONFIRM`` packets in a row agree
        with each other, the jump was real and they are decoded. Packets held at the end of a
        push wait for the next one, so chunked and batch decoding stay equal.
        """
        m = len(v.seq)
        resync_bit = protocol.FLAG_CLOCK_RESYNC
        start = 0
        if not self._held and m:  # fast path: every packet agrees with the one before it
            r = self._ref if self._has_ref else np.array([v.seq[0], v.t_us[0], 1], np.int64)
            ok = self._consistent_many(
                np.concatenate([r[:1], v.seq[:-1]]),
                np.concatenate([r[1:2], v.t_us[:-1]]),
                np.concatenate([r[2:], v.n[:-1]]),
                v.seq,
                v.t_us,
                v.n,
            )
            ok |= (v.flags & resync_bit) != 0
            if not self._has_ref:
                ok[0] = True
            bad = np.flatnonzero(~ok)
            start = int(bad[0]) if len(bad) else m
            if start:
                self._ref[0] = v.seq[start - 1]
                self._ref[1] = v.t_us[start - 1]
                self._ref[2] = v.n[start - 1]
                self._has_ref = True
            if start == m:
                return data, v, payloads, host_ns
        seq, t, n, fl = v.seq.tolist(), v.t_us.tolist(), v.n.tolist(), v.flags.tolist()
        keep = np.zeros(m, np.bool_)
        keep[:start] = True
        prev_held = self._held  # from earlier pushes: (payload, host, seq, t, n)
        released: list[tuple[bytes, int, int, int, int]] = []
        held: list[int] = []  # indices into this chunk's valid packets (after prev_held)
        outliers = 0

        def held_last() -> tuple[int, int, int]:
            if held:
                j = held[-1]
                return seq[j], t[j], n[j]
            _, _, a, b, c = prev_held[-1]
            return a, b, c

        for i in range(start, m):
            cur = (seq[i], t[i], n[i])
            n_held = len(prev_held) + len(held)
            ref = (int(self._ref[0]), int(self._ref[1]), int(self._ref[2]))
            if fl[i] & resync_bit or not self._has_ref or self._consistent(ref, cur):
                first = prev_held[0][2] if prev_held else seq[held[0]] if held else ref[0]
                between = n_held and seq_between(ref[0], first, cur[0])
                if between and self._consistent(held_last(), cur):
                    # held packets between the reference and this one on the counter, leading up
                    # to it: a real jump of the device time (samples skipped, counter contiguous)
                    released.extend(prev_held)
                    keep[held] = True
                else:
                    outliers += n_held
                prev_held, held = [], []
                keep[i] = True
                self._ref[:] = cur
                self._has_ref = True
            elif n_held and self._consistent(held_last(), cur):
                held.append(i)
                if n_held + 1 >= _CONFIRM:  # a real jump: decode the held packets
                    released.extend(prev_held)
                    keep[held] = True
                    prev_held, held = [], []
                    self._ref[:] = cur
            else:
                outliers += n_held
                prev_held, held = [], [i]
        if outliers:
            tot.protocol_errors[_OUTLIER] = tot.protocol_errors.get(_OUTLIER, 0) + outliers
        self._held = prev_held + [
            (payloads[int(v.pkt[j])], int(host_ns[v.pkt[j]]), seq[j], t[j], n[j]) for j in held
        ]
        if not released:
            k = np.flatnonzero(keep)
            return (
                data,
                _Valid(v.pkt[k], v.seq[k], v.t_us[k], v.flags[k], v.n[k], v.start[k]),
                payloads,
                host_ns,
            )
        # packets held by an earlier push are decoded now: they come first (they arrived first)
        idx = v.pkt[keep].tolist()
        new_payloads = [r[0] for r in released] + [payloads[j] for j in idx]
        new_host = np.concatenate(
            [np.array([r[1] for r in released], np.int64), host_ns[v.pkt[keep]]]
        )
        data2, v2, _ = _validate(new_payloads, self.meta.has_mag)
        return data2, v2, new_payloads, new_host

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
