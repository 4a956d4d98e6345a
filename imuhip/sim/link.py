"""Device clocks and the BLE link: packet send times, loss, bursts, disconnects, host receive times.

Device clock of each sensor: ``t_dev = t_dev_start + (1 + drift_ppm·1e-6) (t_true - t_start)``;
the device samples on its own clock, so sample ``k`` is taken at true time
``t_start + k / (rate (1 + drift_ppm·1e-6))``. A packet of ``n`` samples leaves 0.3 ms after its
last sample. The host clock is the reference (no drift).

Link: each sensor has a connection interval and a random anchor; a packet is delivered at the
first connection event after it is sent, at most ``packets_per_event`` per event (the rest wait
for the next), occasionally late by 1–3 intervals (link-layer retransmissions), always in order,
plus 0.4–1.2 ms host stack latency. Losses: independent (``loss_prob``), bursts (Gilbert–Elliott
two-state model, Gilbert 1960, doi:10.1002/j.1538-7305.1960.tb03959.x; a burst starts with
``burst_start_prob`` and lasts ``burst_mean_packets`` on average, geometric) and disconnect windows
(nothing delivered; the device keeps sampling and counting, so the sequence number jumps, and
after the reconnect a new connection anchor is drawn).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.ingest import protocol
from imuhip.sim.params import SimParams

__all__ = ["DeviceClock", "LinkOutcome", "deliver", "time_sync_exchanges"]

FloatArray = npt.NDArray[np.float64]
SEND_DELAY_S = 3e-4


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """One sensor's sampling clock (true times are simulation seconds)."""

    t_start_s: float  # true time of sample 0
    drift_ppm: float  # device clock runs fast by this much
    t_dev_start_us: int  # device timestamp of sample 0
    seq0: int  # sequence number of packet 0

    @classmethod
    def draw(cls, params: SimParams, rng: np.random.Generator) -> DeviceClock:
        """A random clock: start 5–30 ms in, drift within ±max, any timestamp and counter."""
        return cls(
            t_start_s=float(rng.uniform(0.005, 0.03)),
            drift_ppm=float(rng.uniform(-params.clock_drift_ppm_max, params.clock_drift_ppm_max)),
            t_dev_start_us=int(rng.integers(10_000_000, 4_200_000_000)),
            seq0=int(rng.integers(0, 65536)),
        )

    def sample_times(self, n: int, rate_hz: float) -> FloatArray:
        """True times of samples ``0..n-1``."""
        return self.t_start_s + np.arange(n) / (rate_hz * (1.0 + self.drift_ppm * 1e-6))

    def n_samples(self, duration_s: float, rate_hz: float, per_packet: int) -> int:
        """Whole packets' worth of samples taken before ``duration_s``."""
        n = math.floor((duration_s - self.t_start_s) * rate_hz * (1.0 + self.drift_ppm * 1e-6))
        return (n // per_packet) * per_packet


@dataclass(frozen=True, slots=True)
class LinkOutcome:
    """What happened to each packet of one sensor."""

    rx_s: FloatArray  # (P,) true host receive time, NaN if lost
    reason: npt.NDArray[np.str_]  # (P,) "" delivered, "random", "burst", "disconnect"
    conn_interval_s: float
    disconnects: tuple[tuple[float, float], ...]  # (start, stop) true seconds
    #: connection-event anchor of each connection: the first, then one after each disconnect
    anchors: tuple[float, ...] = ()

    @property
    def lost(self) -> npt.NDArray[np.bool_]:
        """Lost packets."""
        return np.isnan(self.rx_s)


def deliver(
    send_s: FloatArray, sensor: str, params: SimParams, rng: np.random.Generator
) -> LinkOutcome:
    """Run the link model over one sensor's packets (send times in true seconds, ascending)."""
    p = params
    n = len(send_s)
    reason = np.full(n, "", dtype="<U10")
    rnd = rng.random(n)
    reason[rnd < p.loss_prob] = "random"
    # Gilbert-Elliott bursts
    u_start = rng.random(n)
    u_stay = rng.random(n)
    bad = False
    p_end = 1.0 / p.burst_mean_packets
    if p.burst_start_prob > 0:
        for j in range(n):
            bad = u_stay[j] >= p_end if bad else u_start[j] < p.burst_start_prob
            if bad:
                reason[j] = "burst"
    windows = tuple(
        (d.start_s, d.start_s + d.duration_s)
        for d in p.disconnects
        if d.sensor is None or d.sensor == sensor
    )
    for a, b in windows:
        reason[(send_s >= a) & (send_s < b)] = "disconnect"

    ci = p.conn_interval_s
    anchor = anchor0 = float(rng.uniform(0.0, ci))
    retx = rng.random(n) < p.retransmit_prob
    retx_k = rng.integers(1, 4, n)
    jitter = rng.uniform(0.0, 8e-4, n)
    new_anchor = rng.uniform(0.0, ci, len(windows) + 1)
    rx = np.full(n, np.nan)
    last_ev = -np.inf
    in_ev = 0
    last_rx = -np.inf
    win_done = 0
    for j in range(n):
        if reason[j]:
            continue
        while win_done < len(windows) and send_s[j] >= windows[win_done][1]:
            anchor = windows[win_done][1] + float(new_anchor[win_done])
            win_done += 1
            last_ev = -np.inf
        ev = anchor + math.ceil((send_s[j] - anchor) / ci) * ci
        if retx[j]:
            ev += int(retx_k[j]) * ci
        if ev < last_ev + 1e-9:
            ev = last_ev
        if ev == last_ev:
            if in_ev >= p.packets_per_event:
                ev = last_ev + ci
                in_ev = 0
        else:
            in_ev = 0
        last_ev = ev
        t = ev + 4e-4 + 1.5e-4 * in_ev + jitter[j]
        in_ev += 1
        t = max(t, last_rx + 1e-6)
        rx[j] = t
        last_rx = t
    anchors = (anchor0, *(float(w[1] + a) for w, a in zip(windows, new_anchor, strict=False)))
    return LinkOutcome(rx, reason, ci, windows, anchors)


#: the host's TIME_SYNC schedule (SPEC §4.4; imuhip live's defaults)
SYNC_BURST = protocol.TIME_SYNC_BURST
SYNC_INTERVAL_S = protocol.TIME_SYNC_INTERVAL_S


def time_sync_exchanges(
    out: LinkOutcome, clock: DeviceClock, rng: np.random.Generator
) -> list[tuple[float, int, float]]:
    """The TIME_SYNC exchanges a host records over this link: ``(t_send, t_dev_us, t_recv)``.

    Per connection (from its first delivered packet to its disconnect or last packet) a burst of
    :data:`SYNC_BURST` requests, then one every 0.5-1.5 x :data:`SYNC_INTERVAL_S` (the schedule of
    ``imuhip live``). A request reaches the device at the link's next connection event, where
    the device reads its clock; the reply reaches the host at the following event plus the host
    stack's 0.4-1.2 ms, as data do. True seconds (the host clock).
    """
    ci = out.conn_interval_s
    rx = out.rx_s[np.isfinite(out.rx_s)]
    if not len(rx):
        return []
    bounds = [(-np.inf, np.inf)]
    if out.disconnects:
        bounds = [(-np.inf, out.disconnects[0][0])]
        for k, (_, b) in enumerate(out.disconnects):
            end = out.disconnects[k + 1][0] if k + 1 < len(out.disconnects) else np.inf
            bounds.append((b, end))
    res: list[tuple[float, int, float]] = []
    for (lo, hi), anchor in zip(bounds, out.anchors or (0.0,) * len(bounds), strict=False):
        got = rx[(rx >= lo) & (rx < hi)]
        if not len(got):
            continue
        t, stop = float(got[0]), float(got[-1])
        k = 0
        while t < stop:
            ev = anchor + math.ceil((t - anchor) / ci + 1e-9) * ci
            t_dev = (
                clock.t_dev_start_us + (1.0 + clock.drift_ppm * 1e-6) * (ev - clock.t_start_s) * 1e6
            )
            back = ev + ci + 4e-4 + float(rng.uniform(0.0, 8e-4))
            res.append((t, round(t_dev) % (1 << 32), back))
            k += 1
            gap = 1e-3 if k < SYNC_BURST else SYNC_INTERVAL_S * float(rng.uniform(0.5, 1.5))
            t += gap
    return res
