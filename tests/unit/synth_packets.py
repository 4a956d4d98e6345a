"""Synthetic imuhip packet streams with known signals, clocks, BLE latency and losses (test helper).

Truth is computed here from first principles (device sample clock, offset + drift, latency model);
packets are produced with :func:`imuhip.ingest.protocol.encode_packet`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from imuhip.ingest import protocol
from imuhip.types import RawPacket, SensorMeta

ACC_LSB = protocol.acc_lsb_m_s2(16)
GYR_LSB = protocol.gyr_lsb_rad_s(2000)
MAG_LSB = protocol.MAG_LSB_UT


def make_meta(
    placement: str = "pelvis", rate_hz: float = 200.0, has_mag: bool = False
) -> SensorMeta:
    return SensorMeta(
        placement=placement,
        rate_hz=rate_hz,
        acc_lsb_m_s2=ACC_LSB,
        gyr_lsb_rad_s=GYR_LSB,
        mag_lsb_ut=MAG_LSB,
        has_mag=has_mag,
    )


@dataclass
class Stream:
    packets: list[RawPacket]  # arrival order
    raw: np.ndarray  # (N, ch) int counts of ALL generated samples (before loss)
    t_dev_us: np.ndarray  # (N,) unwrapped device time of each generated sample, µs
    t_true_s: np.ndarray  # (N,) true host-clock time of each sample, seconds since host zero
    host_rx_ns: np.ndarray  # (P,) per generated packet (before loss), ns
    seq: np.ndarray  # (P,) unwrapped seq of each generated packet
    n: int
    rate_hz: float
    lost: np.ndarray  # (P,) bool, packet dropped


def gyro_sine(t_s: np.ndarray, amp_counts: float = 8000.0, freq_hz: float = 1.3) -> np.ndarray:
    return np.rint(amp_counts * np.sin(2 * np.pi * freq_hz * t_s))


def make_stream(
    *,
    n_packets: int = 100,
    rate_hz: float = 200.0,
    n: int = 10,
    has_mag: bool = False,
    seq0: int = 0,
    t0_us: int = 1_000_000,
    offset_s: float = 2.0,
    drift_ppm: float = 0.0,
    conn_interval_s: float | None = 0.0075,
    miss_prob: float = 0.0,
    host_jitter_s: float = 0.0002,
    lose: tuple[int, ...] | np.ndarray = (),
    sensor: str = "pelvis",
    seed: int = 0,
    host_zero_ns: int = 5_000_000_000,
) -> Stream:
    """Packets of one sensor: sample j at device time ``t0_us + j * 1e6 / rate``.

    True host time of a sample: ``offset_s + (1 + drift) * t_dev_s``. A packet is queued when its
    last sample is taken and delivered at a BLE connection event within ``conn_interval_s`` (each
    event missed with ``miss_prob``; in-order delivery makes bursts), plus exponential host jitter.
    """
    rng = np.random.default_rng(seed)
    ch = 9 if has_mag else 6
    total = n_packets * n
    j = np.arange(total)
    period_us = 1e6 / rate_hz
    t_dev_us = t0_us + np.rint(j * period_us).astype(np.int64)
    t_dev_s = t_dev_us * 1e-6
    t_true = offset_s + (1 + drift_ppm * 1e-6) * t_dev_s
    raw = np.zeros((total, ch), np.int64)
    raw[:, 0] = np.rint(200 * np.cos(2 * np.pi * 0.7 * t_dev_s))
    raw[:, 1] = -50
    raw[:, 2] = 2048  # ~1 g at ±16 g
    raw[:, 3] = gyro_sine(t_dev_s)
    raw[:, 4] = gyro_sine(t_dev_s, 3000, 0.5)
    raw[:, 5] = (j % 200) - 100
    if has_mag:
        raw[:, 6:9] = [200, -150, 400]
    ready = t_true[n - 1 :: n]  # last sample of each packet
    if conn_interval_s:
        # wait for a connection event: uniform phase (events of a central serving several
        # peripherals move; a strictly periodic train commensurate with the packet period would
        # hide the drift for minutes, see align.py), plus whole missed intervals
        ev = ready + rng.uniform(0, conn_interval_s, len(ready))
        if miss_prob:
            ev = ev + conn_interval_s * rng.geometric(1 - miss_prob, len(ev)) - conn_interval_s
        # a connection event carries queued packets in order: delivery times never decrease
        ev = np.maximum.accumulate(ev)
    else:
        ev = ready.copy()
    host = ev + rng.exponential(host_jitter_s, len(ev)) if host_jitter_s else ev
    host_ns = host_zero_ns + np.rint(host * 1e9).astype(np.int64)
    lost = np.zeros(n_packets, bool)
    lost[np.asarray(lose, dtype=np.int64)] = True
    packets = []
    for p in range(n_packets):
        if lost[p]:
            continue
        pay = protocol.encode_packet(seq0 + p, int(t_dev_us[p * n]), raw[p * n : (p + 1) * n])
        packets.append(RawPacket(sensor, int(host_ns[p]), pay))
    return Stream(
        packets=packets,
        raw=raw,
        t_dev_us=t_dev_us,
        t_true_s=t_true,
        host_rx_ns=host_ns,
        seq=seq0 + np.arange(n_packets),
        n=n,
        rate_hz=rate_hz,
        lost=lost,
    )
