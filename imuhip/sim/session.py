"""Simulate a whole session: kinematics -> sensors -> packets -> BLE link -> recording + truth.

Time bases
----------
* *simulation seconds*: 0 = start of the simulated motion (params, :class:`Disconnect`).
* *session seconds* (everything in :class:`SimResult` and the truth): 0 = first host receive
  time of the delivered packets, as ``docs/architecture.md`` defines the session clock, so
  ``t_s = (host_rx_ns - first_host_rx_ns) / 1e9`` and
  ``t_s = t_sim - truth.info["session_zero_sim_s"]``.

The result types are in :mod:`~imuhip.sim.result`, what the host sees of the link (delivery
order, link events, sensor metadata) in :mod:`~imuhip.sim.delivery` and the writing of the files
in :mod:`~imuhip.sim.writer` (all importable from here as before).
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip import __version__
from imuhip.ingest import protocol
from imuhip.sim.delivery import (
    _device_info,
    _host_delivery,
    _link_events,
    _sim_sensor_meta,
    _sync_events,
)
from imuhip.sim.kinematics import (
    DEG,
    PHASE0,
    SEGMENTS,
    Body,
    phase_crossings,
)
from imuhip.sim.link import SEND_DELAY_S, DeviceClock, LinkOutcome, deliver, time_sync_exchanges
from imuhip.sim.params import SimParams
from imuhip.sim.result import SimResult, SimSamples
from imuhip.sim.sensors import (
    IdealImu,
    SensorErrors,
    Wobble,
    apply_errors,
    ideal_imu,
    mountings,
    sensor_orientation,
    to_counts,
)
from imuhip.sim.soft_tissue import SoftTissue, draw_misalignment
from imuhip.sim.truth import Truth, session_metrics, stride_metrics
from imuhip.sim.writer import _jsonable as _jsonable
from imuhip.sim.writer import _save_npz as _save_npz
from imuhip.sim.writer import _stamp_stop_frame as _stamp_stop_frame
from imuhip.sim.writer import sha256_file as sha256_file
from imuhip.sim.writer import truth_json as truth_json
from imuhip.sim.writer import write_simulated_recording
from imuhip.types import SensorMeta, SessionEvent, SessionMeta

__all__ = ["SimResult", "SimSamples", "simulate_session", "write_simulated_recording"]

FloatArray = npt.NDArray[np.float64]
RAD2DEG = 180.0 / np.pi


def simulate_session(params: SimParams) -> SimResult:
    """Simulate one session, deterministically from ``params`` (including ``params.seed``).

    Raises
    ------
    ValueError
        If the MTU cannot carry one sample, or the params are inconsistent.
    """
    if not isinstance(params, SimParams):
        raise TypeError(f"params must be a SimParams, got {type(params).__name__}")
    wall0 = time.perf_counter()
    p = params
    seeds = np.random.SeedSequence(p.seed).spawn(4 + len(p.sensors))
    body = Body(p, np.random.default_rng(seeds[0]))
    mounts = mountings(p, np.random.default_rng(seeds[1]))
    rng_link = np.random.default_rng(seeds[2])
    rng_misc = np.random.default_rng(seeds[3])
    per_packet = protocol.samples_per_packet(p.att_mtu, p.rate_hz, p.has_mag)
    if per_packet == 0:
        raise ValueError(f"att_mtu={p.att_mtu} cannot carry one sample per notification")
    acc_lsb = protocol.acc_lsb_m_s2(p.acc_range_g)
    gyr_lsb = protocol.gyr_lsb_rad_s(p.gyr_range_dps)
    us_per_sample = round(1e6 / p.rate_hz)

    sensor_metas: list[SensorMeta] = []
    sent: dict[str, tuple[FloatArray, list[bytes]]] = {}
    clocks: dict[str, DeviceClock] = {}
    errors: dict[str, SensorErrors] = {}
    wobbles: dict[str, Wobble | SoftTissue | None] = {}
    misalign: dict[str, dict[str, list[list[float]]]] = {}
    raw_samples: dict[str, tuple[Any, ...]] = {}
    outcomes: dict[str, LinkOutcome] = {}
    syncs: dict[str, list[tuple[float, int, float]]] = {}
    for i, pl in enumerate(p.sensors):
        rng = np.random.default_rng(seeds[4 + i])
        clock = DeviceClock.draw(p, rng)
        err = SensorErrors.draw(p, rng)
        wob: Wobble | SoftTissue | None = (
            Wobble(p.soft_tissue_deg * DEG, rng.uniform(0, 2 * np.pi, (2, 3)))
            if p.soft_tissue_deg > 0
            else None
        )
        if p.realism is not None:  # realistic: STA against the bone (own generator per sensor)
            wob = SoftTissue.draw(body, p.realism, pl, np.random.default_rng([p.seed, 0x57A, i]))
        n = clock.n_samples(p.duration_s, p.rate_hz, per_packet)
        t_true = clock.sample_times(n, p.rate_hz)
        ideal = ideal_imu(body, p, pl, t_true, mounts[pl], wob)
        measured = ideal
        if p.realism is not None and p.realism.axis_misalignment_deg > 0:
            mis = draw_misalignment(
                p.realism.axis_misalignment_deg, np.random.default_rng([p.seed, 0xA115, i])
            )
            misalign[pl] = {k: v.tolist() for k, v in mis.items()}
            measured = IdealImu(
                ideal.t,
                ideal.q_world_sensor,
                ideal.gyr_rad_s @ mis["gyr"].T,
                ideal.acc_m_s2 @ mis["acc"].T,
                ideal.mag_ut @ mis["mag"].T,
            )
        acc, gyr, mag = apply_errors(measured, err, p, rng)
        counts, sat = to_counts(acc, gyr, mag if p.has_mag else None, acc_lsb, gyr_lsb)
        n_pk = n // per_packet
        payloads = []
        for j in range(n_pk):
            sl = slice(j * per_packet, (j + 1) * per_packet)
            payloads.append(
                protocol.encode_packet(
                    clock.seq0 + j,
                    clock.t_dev_start_us + j * per_packet * us_per_sample,
                    counts[sl],
                    saturated=bool(sat[sl].any()),
                )
            )
        send = t_true[per_packet - 1 :: per_packet][:n_pk] + SEND_DELAY_S
        sent[pl] = (send, payloads)
        outcomes[pl] = deliver(send, pl, p, rng_link)
        # the host's TIME_SYNC exchanges (a stream of their own: the other draws stay as they were)
        if p.time_sync:
            syncs[pl] = time_sync_exchanges(
                outcomes[pl], clock, np.random.default_rng([p.seed, 0x5E7, i])
            )
        clocks[pl], errors[pl], wobbles[pl] = clock, err, wob
        raw_samples[pl] = (t_true, acc, gyr, mag, ideal)
        sensor_metas.append(_sim_sensor_meta(p, pl, i, acc_lsb, gyr_lsb, scenario=0))

    host = _host_delivery(p.sensors, sent, outcomes, rng_misc)
    zero, host_ns, packets, delivered = host.zero, host.ns, host.packets, host.delivered

    tl = body.tl
    events: list[SessionEvent] = []
    static_windows = [(0.5, p.stand_start_s - 0.5), (tl.walk_off_s + 0.5, p.duration_s - 0.5)]
    marks: list[tuple[str, str | None, float, float]] = [
        ("static", None, a, b) for a, b in static_windows if b - a >= 1.0
    ]
    marks += [(m, s, a, b) for m, s, a, b in tl.functional]
    for move, side, a, b in marks:
        data: dict[str, Any] = {"movement": move, "start_s": a - zero, "stop_s": b - zero}
        if side is not None:
            data["side"] = side
        events.append(SessionEvent(host_ns(a), "calibration_start", None, dict(data)))
        events.append(SessionEvent(host_ns(b), "calibration_end", None, dict(data)))
    events += _link_events(outcomes, host_ns)
    events += _sync_events(syncs, host_ns)
    events.sort(key=lambda e: e.host_rx_ns)

    meta = SessionMeta(
        session_id=f"sim-{p.seed}",
        start_wall_time="2024-01-01T09:00:00+00:00",
        subject=p.subject,
        sensors=tuple(sensor_metas),
        software=f"imuhip {__version__} simulator",
        notes="simulated session (imuhip.sim); ground truth in the .truth.json/.truth.npz sidecar",
        extra={"simulated": True, "seed": p.seed},
    )

    truth = _truth(p, body, mounts, wobbles, zero, clocks, outcomes, errors, per_packet)
    if p.realism is not None:
        truth.info["axis_misalignment"] = misalign
    samples = {}
    for pl, (t_true, acc, gyr, mag, ideal) in raw_samples.items():
        samples[pl] = SimSamples(
            t_true - zero,
            acc,
            gyr,
            mag,
            ideal.acc_m_s2,
            ideal.gyr_rad_s,
            ideal.mag_ut,
            ideal.q_world_sensor,
        )
    info = {m.placement: _device_info(m, per_packet, m.serial) for m in sensor_metas}
    return SimResult(
        params=p,
        meta=meta,
        packets=packets,
        delivered=delivered,
        events=events,
        truth=truth,
        samples=samples,
        device_info=info,
        elapsed_s=time.perf_counter() - wall0,
    )


def _runs(mask: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Half-open index runs where ``mask`` is true."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.nonzero(d == 1)[0].tolist(), np.nonzero(d == -1)[0].tolist(), strict=True))


def _truth(
    p: SimParams,
    body: Body,
    mounts: dict[str, FloatArray],
    wobbles: dict[str, Wobble | SoftTissue | None],
    zero: float,
    clocks: dict[str, DeviceClock],
    outcomes: dict[str, LinkOutcome],
    errors: dict[str, SensorErrors],
    per_packet: int,
) -> Truth:
    t_sim = np.arange(0.0, p.duration_s, 1.0 / p.rate_hz)
    segments = SEGMENTS + tuple(s for s in ("foot_l", "foot_r") if s in p.sensors)
    st = body.state(t_sim, segments)
    t_s = t_sim - zero
    hip = {s: st.hip[s] * RAD2DEG for s in ("left", "right")}
    pelvis = st.pelvis * RAD2DEG
    lumbar = st.lumbar * RAD2DEG
    q_sensor = {
        pl: sensor_orientation(body, pl, t_sim, mounts[pl], wobbles[pl])[0] for pl in p.sensors
    }

    tl = body.tl
    tg = np.arange(0.0, p.duration_s, 2e-3)
    grid = (tg, *body.phase(tg)[::2])
    ic_sim = {"right": phase_crossings(body, 0.0, grid), "left": phase_crossings(body, 0.5, grid)}
    to_phase = body.toe_off_phase  # TOE_OFF_PHASE unless the curves depend on speed
    to_sim = {
        "right": phase_crossings(body, to_phase, grid),
        "left": phase_crossings(body, (0.5 + to_phase) % 1.0, grid),
    }

    # lost samples in session seconds, per sensor, for the stride data_loss flag
    lost_spans: list[tuple[float, float]] = []
    link_info: dict[str, Any] = {}
    rate = p.rate_hz
    for pl, o in outcomes.items():
        c = clocks[pl]
        scale = 1.0 + c.drift_ppm * 1e-6
        runs = _runs(o.lost)
        sample_runs = [(a * per_packet, b * per_packet) for a, b in runs]
        for a, b in sample_runs:
            lost_spans.append(
                (c.t_start_s + a / (rate * scale) - zero, c.t_start_s + b / (rate * scale) - zero)
            )
        reasons = {r: int(np.sum(o.reason == r)) for r in ("random", "burst", "disconnect")}
        link_info[pl] = {
            "packets_sent": len(o.rx_s),
            "packets_delivered": int(np.sum(~o.lost)),
            "samples_per_packet": per_packet,
            "lost_packets_by_reason": reasons,
            "lost_packet_idx": np.nonzero(o.lost)[0].tolist(),
            "lost_sample_ranges": [list(r) for r in sample_runs],
            "conn_interval_s": o.conn_interval_s,
            "disconnects_s": [[a - zero, b - zero] for a, b in o.disconnects],
            "clock": {
                "t_first_sample_s": c.t_start_s - zero,
                "drift_ppm": c.drift_ppm,
                "t_dev_start_us": c.t_dev_start_us,
                "seq0": c.seq0,
                # session_s = offset_s + (1 + session_per_device_ppm·1e-6) · t_dev_s, with
                # t_dev_s the unwrapped device time in s (t_dev_start_us / 1e6 at sample 0)
                "offset_s": c.t_start_s - zero - (c.t_dev_start_us / 1e6) / scale,
                "session_per_device_ppm": (1.0 / scale - 1.0) * 1e6,
            },
            "errors": errors[pl].to_dict(),
            "q_segment_sensor": [float(x) for x in mounts[pl]],
        }

    steady0, steady1 = tl.steady
    strides: list[dict[str, Any]] = []
    with_lumbar = "lumbar" in p.sensors
    for side in ("left", "right"):
        ics = ic_sim[side]
        tos = to_sim[side]
        for k in range(len(ics) - 1):
            ic0, ic1 = float(ics[k]), float(ics[k + 1])
            inside = tos[(tos >= ic0) & (tos < ic1)]
            to = float(inside[0]) if len(inside) else None
            reason = None
            if ic0 < steady0 or ic1 > steady1:
                reason = "standing"
            elif tl.turn is not None and ic0 <= tl.turn[1] and ic1 >= tl.turn[0]:
                reason = "turn"
            m = stride_metrics(
                t_s,
                hip[side],
                pelvis,
                lumbar if with_lumbar else None,
                ic0 - zero,
                ic1 - zero,
                None if to is None else to - zero,
            )
            loss = any(lo < ic1 - zero and hi > ic0 - zero for lo, hi in lost_spans)
            strides.append(
                {
                    "side": side,
                    "ic_s": ic0 - zero,
                    "next_ic_s": ic1 - zero,
                    "to_s": None if to is None else to - zero,
                    "valid": reason is None,
                    "excluded_reason": reason,
                    "data_loss": bool(loss),
                    **m,
                }
            )
    strides.sort(key=lambda s: s["ic_s"])

    deficit = {s: float(np.max(st.ir_deficit[s]) * RAD2DEG) for s in ("left", "right")}
    info = {
        "session_zero_sim_s": zero,
        "heading0_deg": body.heading0_rad * RAD2DEG,
        "timeline_s": {
            "walk_on": tl.walk_on_s - zero,
            "walk_off": tl.walk_off_s - zero,
            "steady": [steady0 - zero, steady1 - zero],
            "turn": None if tl.turn is None else [tl.turn[0] - zero, tl.turn[1] - zero],
            "functional": [
                {"movement": m, "side": s, "start_s": a - zero, "stop_s": b - zero}
                for m, s, a, b in tl.functional
            ],
        },
        "stride_time_s": 1.0 / body.f_stride_hz,
        "stride_length_m": body.stride_m,
        "phase0": PHASE0,
        "toe_off_phase": to_phase,
        "ir_deficit_peak_deg": deficit,
        "sensors": link_info,
    }
    return Truth(
        t_s=t_s,
        q_world_segment={k: st.q_world[k] for k in (*segments, "walk")},
        q_world_sensor=q_sensor,
        q_segment_sensor=dict(mounts),
        hip_deg=hip,
        pelvis_deg=pelvis,
        lumbar_deg=lumbar,
        knee_deg={s: st.knee[s] * RAD2DEG for s in ("left", "right")},
        ic_s={s: ic_sim[s] - zero for s in ic_sim},
        to_s={s: to_sim[s] - zero for s in to_sim},
        strides=strides,
        session_metrics=session_metrics(strides, with_lumbar),
        info=info,
    )


def with_overrides(params: SimParams, **changes: Any) -> SimParams:
    """``dataclasses.replace`` for SimParams (validated again)."""
    return replace(params, **changes)
