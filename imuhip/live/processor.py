"""Deterministic live processing: decode -> clock -> fusion -> hip angles, per packet.

:class:`LiveProcessor` is synchronous and deterministic: fed the same packets and events in the
same order (live, or from the recording with :func:`replay_metrics`) it produces the same loss
accounting and clock models.

Loss accounting comes from :class:`imuhip.ingest.decode.StreamDecoder` (sequence numbers: lost
packets and samples, gaps, duplicates, reordering); the device clock is mapped to the session
clock by :class:`imuhip.ingest.align.ClockTracker` (lower-envelope offset + drift fit, robust to
connection-interval bursts; re-anchored after a reconnect). Hip angles use the online vqf filter
(Laidig & Seel 2023, doi:10.1016/j.inffus.2022.10.014), a static-pose calibration from the first
seconds and :func:`imuhip.gait.joints.hip_angles` (ISB, Wu et al. 2002,
doi:10.1016/S0021-9290(01)00222-6).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip.conventions import Side, quat_conj, quat_from_axis_angle, quat_mul, quat_rotate
from imuhip.gait.joints import hip_angles
from imuhip.ingest.align import ClockTracker
from imuhip.ingest.decode import StreamDecoder, stream_decoder_for
from imuhip.live.latency import LatencyHistogram, _TimedRing
from imuhip.types import RawPacket, SensorMeta, SessionEvent, SessionMeta

__all__ = ["LiveProcessor", "SensorLiveState", "replay_metrics"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_THIGH_SIDE = {"thigh_l": Side.LEFT, "thigh_r": Side.RIGHT}
_MAX_FILL_S = 2.0  # longer gaps are not bridged with held samples for the live filter
_RECONVERGE_S = 3.0  # after a longer gap: fresh filter, no hip angle for this long
_REL_YAW_TAU_S = 5.0  # time constant of the running pelvis-thigh relative heading
_IR_WINDOW_S = 5.0  # hip rotation excursion shown live: over this many seconds


@dataclass
class SensorLiveState:
    """Per-sensor processing state (decoder, clock, filter)."""

    meta: SensorMeta
    decoder: StreamDecoder
    clock: ClockTracker
    fusion: Any | None = None
    q_last: FloatArray | None = None
    q_sensor_segment: FloatArray | None = None
    n_samples: int = 0
    last_idx: int | None = None
    first_host_ns: int | None = None
    last_host_ns: int | None = None
    events: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    reconverge_until_idx: int | None = None  # sample index up to which the filter re-converges
    q_yaw_fix: FloatArray | None = None  # world-frame heading fix applied after a re-alignment
    resets: int = 0


def _yaw_of_x_axis(q: FloatArray) -> float:
    x_world = quat_rotate(q, np.array([1.0, 0.0, 0.0]))
    return float(np.arctan2(x_world[1], x_world[0]))


# A segment at neutral, facing world +x: segment X (anterior) -> world x, Y (superior) -> world z,
# Z (right) -> world -y, i.e. a +90° rotation about x.
_Q_WORLD_SEG_FACING_X = quat_from_axis_angle(np.array([1.0, 0.0, 0.0]), np.pi / 2)


class LiveProcessor:
    """Deterministic live processing of one session's packets and events.

    Parameters
    ----------
    meta : SessionMeta
    calibration_s : float
    fusion : bool
        Run the online orientation filter and hip angles.
    time_scale : float, optional
        Session seconds per host-clock second (default: the recording's ``time_scale``).

    Notes
    -----
    Memory does not grow with the session: clock models keep a bounded set of anchors
    (:class:`~imuhip.ingest.align.ClockTracker`), latencies go to a fixed log-spaced histogram
    (:class:`LatencyHistogram`), the hip rotation history is a ring of ~5 s; only the decoders'
    gap lists grow, with the number of gaps (they are the loss accounting).
    """

    def __init__(
        self,
        meta: SessionMeta,
        *,
        calibration_s: float = 2.0,
        fusion: bool = True,
        time_scale: float | None = None,
    ) -> None:
        self.meta = meta
        # virtual sensors may run faster than the wall clock: session s = host s * time_scale
        self.time_scale = float(time_scale or meta.extra.get("time_scale", 1.0))
        # virtual host stamps (simulator) are no wall times: no notification latency then
        self._wall_stamps = meta.extra.get("host_clock", "monotonic") != "virtual"
        self.calibration_s = float(calibration_s)
        self.t0_ns: int | None = None
        self.sensors: dict[str, SensorLiveState] = {}
        for m in meta.sensors:
            st = SensorLiveState(m, stream_decoder_for(m), ClockTracker())
            if fusion:
                from imuhip.orientation.fusion.online import OnlineFusion

                st.fusion = OnlineFusion(rate_hz=m.rate_hz, use_mag=m.has_mag)
            self.sensors[m.placement] = st
        self.hip_deg: dict[str, FloatArray] = {}
        # hip updates come per pelvis/thigh notification: at most 3 x the sample rate
        cap = int(_IR_WINDOW_S * 3 * max((m.rate_hz for m in meta.sensors), default=200)) + 1
        self.hip_ir_hist: dict[str, _TimedRing] = {s.value: _TimedRing(cap) for s in Side}
        self.latency = LatencyHistogram()
        self.calibrated = False
        # per side: running mean (unit complex number) of the thigh-pelvis segment heading
        # difference while both filters are converged, and its sum during a re-convergence
        self._rel_yaw_ref: dict[str, complex] = {}
        self._rel_yaw_new: dict[str, complex] = {}
        #: sides whose hip angle is withheld while a filter re-converges after a gap
        self.reconverging: set[str] = set()
        self.event_counts: dict[str, int] = {}

    # -- input ---------------------------------------------------------------------------------
    def on_event(self, ev: SessionEvent) -> None:
        """Count events; re-anchor the clock model of a sensor that reconnected."""
        self.event_counts[ev.kind] = self.event_counts.get(ev.kind, 0) + 1
        st = self.sensors.get(ev.sensor or "")
        if st is None:
            return
        if ev.kind == "reconnect":
            st.clock.reanchor()
        st.last[ev.kind] = ev.data

    def push(self, sensor: str, packets: list[RawPacket]) -> None:
        """Process the next packets of one sensor (arrival order)."""
        st = self.sensors.get(sensor)
        if st is None or not packets:
            return
        if self.t0_ns is None:
            self.t0_ns = packets[0].host_rx_ns
        if st.first_host_ns is None:
            st.first_host_ns = packets[0].host_rx_ns
        st.last_host_ns = packets[-1].host_rx_ns
        smp = st.decoder.push(packets)
        n = len(smp)
        if n == 0:
            return
        st.n_samples += n
        host_s = (smp.host_rx_ns - self.t0_ns) * (1e-9 * self.time_scale)
        st.clock.update(smp.t_dev_s, host_s)
        if st.fusion is None:
            return
        self._fuse(st, smp.sample_idx, smp.acc_m_s2, smp.gyr_rad_s, smp.mag_ut)
        hips = (sensor in _THIGH_SIDE or sensor == "pelvis") and self._update_hips()
        if hips and self._wall_stamps:
            now = time.monotonic_ns()
            self.latency.add(now - packets[-1].host_rx_ns)

    def _fuse(
        self,
        st: SensorLiveState,
        idx: npt.NDArray[np.int64],
        acc: FloatArray,
        gyr: FloatArray,
        mag: FloatArray | None,
    ) -> None:
        fusion = st.fusion
        if fusion is None:
            return
        first = int(idx[0]) if st.last_idx is None else st.last_idx + 1
        span = int(idx[-1]) - first + 1
        if span - len(idx) > _MAX_FILL_S * st.meta.rate_hz and st.q_last is not None:
            # a long gap (e.g. a reconnect): the filter state is stale; start a fresh filter,
            # withhold this sensor's hip angles while it re-converges, then re-align its heading
            from imuhip.orientation.fusion.online import OnlineFusion

            st.fusion = fusion = OnlineFusion(rate_hz=st.meta.rate_hz, use_mag=st.meta.has_mag)
            st.reconverge_until_idx = int(idx[0]) + round(_RECONVERGE_S * st.meta.rate_hz)
            st.resets += 1
            res = fusion.update(acc, gyr, mag)
        elif span > len(idx) and span - len(idx) <= _MAX_FILL_S * st.meta.rate_hz:
            # hold the last valid row across short gaps so the fixed-rate filter stays on grid
            pos = idx - first
            valid = np.zeros(span, bool)
            valid[pos] = True
            a = np.zeros((span, 3))
            g = np.zeros((span, 3))
            a[pos], g[pos] = acc, gyr
            m = None
            if mag is not None:
                m = np.zeros((span, 3))
                m[pos] = mag
            res = fusion.update(a, g, m, valid=valid)
        else:
            res = fusion.update(acc, gyr, mag)
        st.last_idx = int(idx[-1])
        q = res.q_world_sensor[-1]
        st.q_last = q if st.q_yaw_fix is None else quat_mul(st.q_yaw_fix, q)

    def _calibrate(self) -> bool:
        need = {"pelvis"} | (set(_THIGH_SIDE) & set(self.sensors))
        if not need <= set(self.sensors):
            return False
        for p in need:
            st = self.sensors[p]
            if st.q_last is None or st.n_samples < self.calibration_s * st.meta.rate_hz:
                return False
        yaw = _yaw_of_x_axis(self.sensors["pelvis"].q_last)  # type: ignore[arg-type]
        q_world_seg = quat_mul(
            quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), yaw), _Q_WORLD_SEG_FACING_X
        )
        for p in need:
            st = self.sensors[p]
            if st.q_last is not None:
                st.q_sensor_segment = quat_mul(quat_conj(st.q_last), q_world_seg)
        self.calibrated = True
        return True

    @staticmethod
    def _reconverging(st: SensorLiveState) -> bool:
        u = st.reconverge_until_idx
        return u is not None and st.last_idx is not None and st.last_idx < u

    def _realign(self, p: str, st: SensorLiveState) -> None:
        """End of a re-convergence: turn the fresh filter's heading (about world z) so that the
        mean thigh-pelvis heading difference during the re-convergence equals the one before
        the gap (walking on, the segments keep their mean relative heading)."""
        st.reconverge_until_idx = None
        sides = (
            [s.value for t, s in _THIGH_SIDE.items() if t in self.sensors]
            if p == "pelvis"
            else [_THIGH_SIDE[p].value]
        )
        deltas = []
        for side in sides:
            ref, new = self._rel_yaw_ref.get(side), self._rel_yaw_new.pop(side, None)
            if ref and new:
                d = float(np.angle(ref / new))  # ref - new
                deltas.append(-d if p == "pelvis" else d)
        if not deltas:
            return
        delta = float(np.angle(np.mean(np.exp(1j * np.array(deltas)))))
        fix = quat_from_axis_angle(np.array([0.0, 0.0, 1.0]), delta)
        st.q_yaw_fix = fix if st.q_yaw_fix is None else quat_mul(fix, st.q_yaw_fix)
        if st.q_last is not None:
            st.q_last = quat_mul(fix, st.q_last)
        log.info("%s: heading re-aligned by %.1f° after a gap", p, np.degrees(delta))

    def _update_hips(self) -> bool:
        if not self.calibrated and not self._calibrate():
            return False
        pel = self.sensors["pelvis"]
        if pel.q_last is None or pel.q_sensor_segment is None:
            return False
        pel_busy = self._reconverging(pel)
        q_pel = quat_mul(pel.q_last, pel.q_sensor_segment)
        done = False
        alpha = 1.0 / (_REL_YAW_TAU_S * pel.meta.rate_hz)
        for p, side in _THIGH_SIDE.items():
            st = self.sensors.get(p)
            if st is None or st.q_last is None or st.q_sensor_segment is None:
                continue
            q_thigh = quat_mul(st.q_last, st.q_sensor_segment)
            rel = np.exp(1j * (_yaw_of_x_axis(q_thigh) - _yaw_of_x_axis(q_pel)))
            if pel_busy or self._reconverging(st):
                # withhold the angle (the view says "re-converging"); collect the relative
                # heading over the re-convergence for the re-alignment
                self.reconverging.add(side.value)
                self.hip_deg.pop(side.value, None)
                self._rel_yaw_new[side.value] = self._rel_yaw_new.get(side.value, 0j) + rel
                continue
            for q_st, name in ((st, p), (pel, "pelvis")):
                if q_st.reconverge_until_idx is not None:  # just converged
                    self._realign(name, q_st)
            if side.value in self.reconverging:
                self.reconverging.discard(side.value)
                q_pel = quat_mul(pel.q_last, pel.q_sensor_segment)
                q_thigh = quat_mul(st.q_last, st.q_sensor_segment)
                rel = np.exp(1j * (_yaw_of_x_axis(q_thigh) - _yaw_of_x_axis(q_pel)))
            ref = self._rel_yaw_ref.get(side.value)
            self._rel_yaw_ref[side.value] = rel if ref is None else ref + alpha * (rel - ref)
            ang = hip_angles(q_pel, q_thigh, side)
            deg = np.degrees(ang)
            self.hip_deg[side.value] = deg
            t_s = (pel.last_idx or 0) / pel.meta.rate_hz  # pelvis sample time
            self.hip_ir_hist[side.value].append(t_s, float(deg[2]))
            done = True
        return done

    # -- output --------------------------------------------------------------------------------
    def hip_ir_excursion_deg(self, side: str) -> float | None:
        """Max - min hip internal rotation over the last 5 s (pelvis sample time) of one side."""
        h = self.hip_ir_hist.get(side)
        return None if h is None else h.range_since_last(_IR_WINDOW_S)

    def metrics(self) -> dict[str, Any]:
        """Loss accounting and clock fit per sensor (JSON-serialisable, deterministic)."""
        out: dict[str, Any] = {}
        for p, st in self.sensors.items():
            s = st.decoder.stats
            m = st.clock.model
            elapsed = (
                (st.last_host_ns - st.first_host_ns) * 1e-9 * self.time_scale
                if st.first_host_ns is not None and st.last_host_ns is not None
                else 0.0
            )
            out[p] = {
                "packets_received": s.packets_received,
                "packets_decoded": s.packets_decoded,
                "samples_decoded": s.samples_decoded,
                "lost_packets": s.lost_packets,
                "lost_samples": s.lost_samples,
                "loss_fraction": s.loss_fraction,
                "gaps": [[g.start_idx, g.n_samples] for g in s.gaps],
                "duplicates": s.duplicates,
                "reordered": s.reordered,
                "late_packets": s.late_packets,
                "protocol_errors": dict(s.protocol_errors),
                "achieved_rate_hz": (s.samples_decoded / elapsed) if elapsed > 0 else None,
                "clock_offset_s": None if m is None else m.offset_s,
                "clock_drift_ppm": None if m is None else m.drift_ppm,
                "clock_jitter_ms": None if m is None else m.residual_jitter_s * 1e3,
                "clock_reanchors": st.clock.reanchors,
            }
        return out

    def latency_percentiles_ms(self) -> dict[str, float] | None:
        """p50/p99 of notification -> updated hip angle latency over the session, milliseconds
        (wall clock; from :class:`LatencyHistogram`, within its 2.3 % bin resolution)."""
        if not self.latency.count:
            return None
        return {
            "p50": self.latency.percentile(50) * 1e-6,
            "p99": self.latency.percentile(99) * 1e-6,
        }


def replay_metrics(path: str | Path, *, fusion: bool = False) -> dict[str, Any]:
    """Run a recording's packets and events, in file order, through :class:`LiveProcessor`.

    Gives the same :meth:`LiveProcessor.metrics` as the live run that wrote the recording.
    """
    from imuhip.ingest.recording import open_recording

    stream = open_recording(path)
    proc = LiveProcessor(stream.meta, fusion=fusion)
    _feed(proc, stream)
    return proc.metrics()


def _feed(proc: LiveProcessor, items: Iterable[RawPacket | SessionEvent]) -> None:
    # one packet per push, live and in replay: the results cannot depend on how the live queue
    # happened to batch notifications (a late packet is judged the same way in both)
    for it in items:
        if isinstance(it, RawPacket):
            proc.push(it.sensor, [it])
        else:
            proc.on_event(it)
