"""Long benchmark recordings: one simulated walking bout, repeated (:func:`make_bench_recording`).

Long sessions are made by :func:`make_bench_recording`: the simulator (:mod:`imuhip.sim`) costs
about 30 ms of CPU and 1 MB of memory per simulated second of a 4-sensor session (a 1-hour
simulation would take ~2 min and ~4 GB), so one walking bout of ``tile_s`` seconds (standing,
walking, standing) is simulated once and repeated, re-packetised with continuous sequence
numbers, device timestamps and per-sensor clock drift, and sent through the simulator's BLE link
model again. The result is a valid recording of repeated walking bouts.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["BENCH_PLACEMENTS", "make_bench_recording"]

BENCH_PLACEMENTS = ("pelvis", "thigh_l", "thigh_r", "lumbar", "shank_l", "shank_r")
"""Placements used for ``--sensors N`` (the first N)."""


def _tile_params(duration_s: float, placements: tuple[str, ...], rate_hz: int, seed: int) -> Any:
    from imuhip.sim import SimParams

    return SimParams(seed=seed, duration_s=duration_s, rate_hz=rate_hz, sensors=placements)


def make_bench_recording(
    path: str | os.PathLike[str],
    duration_s: float,
    sensors: int = 4,
    rate_hz: int = 200,
    *,
    seed: int = 0,
    tile_s: float = 300.0,
    block_s: float = 60.0,
) -> dict[str, Any]:
    """Write a simulated recording of ``duration_s`` seconds made of repeated walking bouts.

    One session of ``min(tile_s, duration_s)`` seconds is simulated (stand, walk, stand). Each
    sensor's sample stream (int16 counts) is repeated with a common period ``T`` in session time
    (sample offset ``round(k T rate (1 + drift))`` for bout ``k``, so the sensors stay aligned to
    half a sample while each keeps its own clock drift), cut into packets with continuous
    sequence numbers and device timestamps (both wrap as on hardware), and delivered through
    :func:`imuhip.sim.link.deliver` with the bout's link parameters. Memory stays bounded: packets
    are built and written in blocks of ``block_s`` seconds of host time.

    Parameters
    ----------
    path : path-like
        Output ``.imrec`` (overwritten).
    duration_s : float
    sensors : int
        The first ``sensors`` of :data:`BENCH_PLACEMENTS`.
    rate_hz : int
    seed : int
    tile_s : float
    block_s : float

    Returns
    -------
    dict
        ``path``, ``samples`` (total decoded samples expected), ``packets``, ``bouts``,
        ``generate_cpu_s``, ``simulate_cpu_s``.
    """
    from imuhip.ingest import protocol
    from imuhip.ingest.decode import crc16_many
    from imuhip.ingest.recording import RecordingWriter
    from imuhip.sim import simulate_session
    from imuhip.sim.link import SEND_DELAY_S, deliver
    from imuhip.types import RawPacket, SessionEvent

    cpu0 = time.process_time()
    placements = tuple(BENCH_PLACEMENTS[:sensors])
    tile_dur = float(min(tile_s, duration_s))
    sim = simulate_session(_tile_params(tile_dur, placements, rate_hz, seed))
    sim_cpu = time.process_time() - cpu0
    p = sim.params
    rate = float(rate_hz)
    us_per_sample = round(1e6 / rate)
    has_mag = p.has_mag
    ch = protocol.channels(has_mag)
    info = sim.truth.info["sensors"]

    # per sensor: tile counts (n_tile, ch) int16 and per-sample saturation, clock parameters
    tiles: dict[str, npt.NDArray[np.int16]] = {}
    sat: dict[str, npt.NDArray[np.bool_]] = {}
    pp = 0
    for pl in placements:
        payloads = [pay for _, pay in sim.packets[pl]]
        pp = payloads[0][8]
        length = protocol.packet_len(pp, has_mag)
        raw = np.frombuffer(b"".join(payloads), np.uint8).reshape(len(payloads), length)
        body = np.ascontiguousarray(raw[:, protocol.HEADER_LEN : length - protocol.CRC_LEN])
        tiles[pl] = body.view("<i2").reshape(-1, ch)
        sat[pl] = np.repeat((raw[:, 1] & protocol.FLAG_SATURATED) > 0, pp)
    scale = {pl: 1.0 + info[pl]["clock"]["drift_ppm"] * 1e-6 for pl in placements}
    t_first = {pl: float(info[pl]["clock"]["t_first_sample_s"]) for pl in placements}
    # common bout period (session s): every sensor's bout must cover it
    period = min(len(tiles[pl]) / (rate * scale[pl]) for pl in placements) - 2.0 / rate
    n_bouts = math.ceil(duration_s / period) if duration_s > tile_dur else 1
    if n_bouts == 1:
        period = duration_s

    # packet schedule per sensor (whole session; a few arrays of one value per packet)
    rng = np.random.default_rng(np.random.SeedSequence([seed, 9]))
    sched: dict[str, dict[str, Any]] = {}
    for pl in placements:
        n_total = int((duration_s - t_first[pl]) * rate * scale[pl]) // pp * pp
        if n_bouts == 1:
            n_total = min(n_total, len(tiles[pl]) // pp * pp)
        n_pk = n_total // pp
        starts = np.round(np.arange(n_bouts + 1) * period * rate * scale[pl]).astype(np.int64)
        last_sample = (np.arange(n_pk) + 1) * pp - 1
        send = t_first[pl] + last_sample / (rate * scale[pl]) + SEND_DELAY_S
        out = deliver(send, pl, p, rng)
        sched[pl] = {
            "n_pk": n_pk,
            "starts": starts,
            "rx": out.rx_s,
            "seq0": int(info[pl]["clock"]["seq0"]),
            "t0_us": int(info[pl]["clock"]["t_dev_start_us"]),
        }
    delivered_rx = np.concatenate([s["rx"][np.isfinite(s["rx"])] for s in sched.values()])
    zero = float(delivered_rx.min())
    epoch_ns = 10**12 + seed * 10**9

    def payload_rows(pl: str, j: npt.NDArray[np.int64]) -> npt.NDArray[np.uint8]:
        s = sched[pl]
        length = protocol.packet_len(pp, has_mag)
        smp = (j[:, None] * pp + np.arange(pp)[None, :]).ravel()
        bout = np.searchsorted(s["starts"], smp, side="right") - 1
        src = smp - s["starts"][bout]
        rows = np.zeros((len(j), length), np.uint8)
        rows[:, 0] = protocol.PROTOCOL_VERSION
        flags = np.full(len(j), protocol.FLAG_MAG if has_mag else 0, np.uint8)
        saturated = sat[pl][src].reshape(len(j), pp).any(axis=1)
        flags[saturated] |= np.uint8(protocol.FLAG_SATURATED)
        rows[:, 1] = flags
        seq = ((s["seq0"] + j) % protocol.SEQ_MODULUS).astype("<u2")
        rows[:, 2:4] = seq.view(np.uint8).reshape(-1, 2)
        t_us = ((s["t0_us"] + j * pp * us_per_sample) % protocol.TIME_MODULUS_US).astype("<u4")
        rows[:, 4:8] = t_us.view(np.uint8).reshape(-1, 4)
        rows[:, 8] = pp
        counts = np.ascontiguousarray(tiles[pl][src]).reshape(len(j), pp * ch)
        rows[:, 9 : length - 2] = counts.astype("<i2").view(np.uint8)
        crc = crc16_many(rows[:, : length - 2]).astype("<u2")  # stored little-endian
        rows[:, length - 2 :] = crc.view(np.uint8).reshape(-1, 2)
        return rows

    n_written = 0
    n_samples = 0
    last_ns = epoch_ns
    path = Path(path)
    first_events = [e for e in sim.events if e.kind.startswith("calibration")]
    first_events = [e for e in first_events if e.data.get("stop_s", 1e9) < period]
    sim_zero_ns = sim.delivered[0].host_rx_ns if sim.delivered else 0
    with RecordingWriter(path, sim.meta, overwrite=True, flush_interval_s=0.05) as w:
        for ev in first_events:
            ns = epoch_ns + (ev.host_rx_ns - sim_zero_ns)
            w.write_event(SessionEvent(ns, ev.kind, ev.sensor, dict(ev.data)))
        t = 0.0
        t_end = max(float(np.nanmax(s["rx"])) for s in sched.values()) - zero + 1.0
        while t < t_end:
            batch_ns: list[npt.NDArray[np.int64]] = []
            batch_order: list[npt.NDArray[np.int64]] = []
            batch_rows: list[tuple[str, npt.NDArray[np.uint8]]] = []
            for order, pl in enumerate(placements):
                rx = sched[pl]["rx"] - zero
                j = np.nonzero((rx >= t) & (rx < t + block_s))[0].astype(np.int64)
                if not len(j):
                    continue
                batch_ns.append(epoch_ns + np.round(rx[j] * 1e9).astype(np.int64))
                batch_order.append(np.full(len(j), order, np.int64))
                batch_rows.append((pl, payload_rows(pl, j)))
            t += block_s
            if not batch_ns:
                continue
            ns_all = np.concatenate(batch_ns)
            order_all = np.concatenate(batch_order)
            names = [pl for pl, r in batch_rows for _ in range(len(r))]
            rows_all = [row for _, r in batch_rows for row in r]
            for k in np.lexsort((order_all, ns_all)).tolist():
                w.write_packet(RawPacket(names[k], int(ns_all[k]), rows_all[k].tobytes()))
            n_written += len(ns_all)
            n_samples += len(ns_all) * pp
            last_ns = max(last_ns, int(ns_all.max()))
    return {
        "path": str(path),
        "duration_s": float(duration_s),
        "sensors": list(placements),
        "rate_hz": rate_hz,
        "samples": int(n_samples),
        "packets": int(n_written),
        "bouts": int(n_bouts),
        "bout_period_s": float(period),
        "simulate_cpu_s": float(sim_cpu),
        "generate_cpu_s": float(time.process_time() - cpu0),
        "size_bytes": path.stat().st_size,
    }
