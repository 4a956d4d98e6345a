"""The decoder's device-time model: unwrap ``t_first_us``, re-join it at resyncs and clock steps.

:func:`unwrap_device_time` unwraps the 32-bit device time in counter order and re-joins the time
base at ``CLOCK_RESYNC`` packets (SPEC §4.3: exactly from ``seq`` when no packet is missing, else
from the host receive times) and at unflagged clock steps (:func:`rejoin_clock_steps`).

Clock steps. SPEC §4.1–4.3: when no packet is missing between two packets, the second's
``t_first_us`` is the first's plus ``n_prev`` sample periods (within ±0.25 period). A device
time that steps away from it without ``CLOCK_RESYNC`` is a clock fault (a firmware re-anchoring
its time base without the flag, a clock source switch): the counter is the truth for the order
and spacing of the samples, so the time base is re-joined exactly from ``seq`` as for a flagged
resync, and the step is counted (``DecodeStats.clock_steps``). Placed by the stepped clock, a
2 s step back would put 200 samples on times already covered (dropped as overlaps) and a step
forward would open a gap of samples that were never lost.

* A step **back** is always a clock fault: time cannot run backwards while the counter runs on.
* A step **forward** can also be real time that passed without a packet missing (a firmware that
  skips samples but keeps its counter contiguous; the native importer writes a missing sample as
  exactly such a jump). The host receive times decide: a notification arrives after its last
  sample, with a one-sided latency, so ``host_rx - t_dev(last sample)`` of the stepped packet,
  against the smallest of that offset over the :data:`OFFSET_WINDOW` packets before it, is about
  ``latency - step`` for a clock step and ``latency >= 0`` for time that passed. It is re-joined
  when the host clock saw less than half of the step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.ingest import protocol
from imuhip.ingest.decode.accounting import nearest_diff

__all__ = [
    "OFFSET_WINDOW",
    "STEP_PERIODS",
    "DeviceTime",
    "rejoin_clock_steps",
    "unwrap_device_time",
]

STEP_PERIODS: Final = 1.5
"""A device-time step beyond this many sample periods between contiguous packets is a fault."""
OFFSET_WINDOW: Final = 16
"""Packets before a forward step whose smallest host-minus-device offset is the reference."""

I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class DeviceTime:
    """Unwrapped device times of one push's packets and what re-joining them found."""

    t_us: I64  # (P,) device time of each packet's first sample, µs, on one time base
    resyncs: int  # CLOCK_RESYNC packets re-joined
    steps_back: int  # unflagged clock steps re-joined on the counter
    steps_forward: int
    off_tail_ns: I64  # host-minus-device offsets before the last packet (next push's prior)


def unwrap_device_time(
    seq: I64,
    t_raw_us: I64,
    n: I64,
    host_ns: I64,
    flags: I64,
    restart: npt.NDArray[np.bool_],
    rate_hz: float,
    prev: tuple[int, int, int, int, int] | None,
    prior_off_ns: I64,
) -> DeviceTime:
    """Device times of packets sorted by unwrapped counter, on one time base.

    Parameters
    ----------
    seq, t_raw_us, n, host_ns, flags : (P,) int
        Unwrapped counter, wrapped ``t_first_us``, samples, receive time and flags per packet.
    restart : (P,) bool
        Packets after which the counter restarted (sensor reboot): the counter says nothing
        about the time between them and the packet before.
    rate_hz : float
    prev : (seq, t_us, t_raw_us, n, host_ns) or None
        The last packet of earlier pushes (its re-joined time and its raw ``t_first_us``),
        ``None`` for the first push.
    prior_off_ns : (k,) int
        :attr:`DeviceTime.off_tail_ns` of the previous push (empty for the first).
    """
    has_prev = prev is not None
    p0 = prev if prev is not None else (0, 0, 0, 0, 0)
    p_seq = np.concatenate([[p0[0]], seq])
    p_n = np.concatenate([[p0[3]], n])
    p_host = np.concatenate([[p0[4]], host_ns])
    # steps of the device's own clock (raw times), re-joined below where it was re-anchored
    dt = nearest_diff(np.concatenate([[p0[2]], t_raw_us]), protocol.TIME_MODULUS_US)
    resync = (flags & protocol.FLAG_CLOCK_RESYNC) != 0
    if not has_prev:
        resync[0] = False  # the very first packet defines the time base
    n_resync = 0
    if resync.any():
        ri = np.flatnonzero(resync)
        # after a counter restart (sensor rebooted) the counter says nothing about the gap
        contiguous = ((p_seq[ri + 1] - p_seq[ri]) == 1) & ~restart[ri]
        host_gap_s = (p_host[ri + 1] - p_host[ri]) * 1e-9
        est = (p_n[ri] - 1) / rate_hz + host_gap_s - (p_n[ri + 1] - 1) / rate_hz
        # every lost packet carried at least one sample: a lower bound on the gap
        lost_between = np.maximum(p_seq[ri + 1] - p_seq[ri] - 1, 0)
        k = np.where(
            contiguous, p_n[ri], np.maximum(p_n[ri] + lost_between, np.rint(est * rate_hz))
        )
        dt[ri] = np.rint(k * 1e6 / rate_hz).astype(np.int64)
        n_resync = len(ri)
    on_counter = (np.diff(p_seq) == 1) & ~resync & ~restart
    first = 0 if has_prev else 1  # without a previous packet, chain from the first of this push
    t0 = p0[1] if has_prev else int(t_raw_us[0])
    dt_c, rejoined, tail = rejoin_clock_steps(
        t0, dt[first:], p_n[first:], p_host[first:], on_counter[first:], rate_hz, prior_off_ns
    )
    back = int(np.count_nonzero(rejoined & (dt_c > dt[first:])))
    t_u = t0 + np.concatenate([[0], np.cumsum(dt_c)]).astype(np.int64)
    fwd = int(np.count_nonzero(rejoined)) - back
    return DeviceTime(t_u[int(has_prev) :], n_resync, back, fwd, tail)


def rejoin_clock_steps(
    t0_us: int,
    dt_us: I64,
    n: I64,
    host_ns: I64,
    contiguous: npt.NDArray[np.bool_],
    rate_hz: float,
    prior_off_ns: I64,
) -> tuple[I64, npt.NDArray[np.bool_], I64]:
    """Re-join the device time at unflagged steps between contiguous packets (module docstring).

    Parameters
    ----------
    t0_us : int
        Unwrapped device time of packet 0 of the chain.
    dt_us : (m,) int
        Device-time steps into packets ``1..m`` (unwrapped differences of ``t_first_us``).
    n : (m + 1,) int
        Samples per packet.
    host_ns : (m + 1,) int
        Host receive times.
    contiguous : (m,) bool
        Packet ``j + 1`` directly follows packet ``j`` on the counter (no loss, no restart) and
        carries no ``CLOCK_RESYNC`` (flagged packets are re-joined by the decoder already).
    rate_hz : float
    prior_off_ns : (k,) int
        Host-minus-device offsets of up to :data:`OFFSET_WINDOW` packets before packet 0, not
        packet 0 itself (earlier pushes of a stream; empty for the first).

    Returns
    -------
    dt_us : (m,) int
        The steps with each clock step replaced by ``n_prev`` sample periods.
    rejoined : (m,) bool
        The steps re-joined (clock steps).
    off_tail_ns : (<= OFFSET_WINDOW,) int
        Offsets of the packets before the chain's last one (with ``prior_off_ns``): the
        ``prior_off_ns`` of the next push, whose packet 0 is this chain's last packet.
    """
    period_us = 1e6 / rate_hz
    expected = np.rint(n[:-1] * period_us).astype(np.int64)
    step = dt_us - expected
    cand = np.flatnonzero(contiguous & (np.abs(step) > STEP_PERIODS * period_us))
    t_us = t0_us + np.concatenate([[0], np.cumsum(dt_us)]).astype(np.int64)
    end_us = np.rint((n - 1) * period_us).astype(np.int64)
    off = host_ns - (t_us + end_us) * 1000  # host minus device time of each packet's last sample
    out = dt_us.copy()
    rejoined = np.zeros(len(dt_us), np.bool_)
    for j in cand.tolist():
        e = j + 1
        s = int(step[j])
        if s > 0:
            before = off[max(0, e - OFFSET_WINDOW) : e]
            if len(before) < OFFSET_WINDOW:  # the window reaches into earlier pushes
                before = np.concatenate([prior_off_ns, before])[-OFFSET_WINDOW:]
            if int(off[e]) - int(before.min()) >= -s * 1000 // 2:
                continue  # the host clock saw the time pass: a real gap, kept
        rejoined[j] = True
        out[j] = expected[j]
        off[e:] += s * 1000  # the device times from packet e on move back by the step
    tail = off[max(0, len(off) - 1 - OFFSET_WINDOW) : -1]
    if len(tail) < OFFSET_WINDOW:
        tail = np.concatenate([prior_off_ns, tail])[-OFFSET_WINDOW:]
    return out, rejoined, tail.astype(np.int64)
