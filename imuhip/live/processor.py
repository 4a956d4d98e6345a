"""Deterministic live processing: decode -> clock -> fusion -> hip angles, per packet.

:class:`LiveProcessor` is synchronous and deterministic: fed the same packets and events in the
same order (live, or from the recording with :func:`replay_metrics`) it produces the same loss
accounting and clock models.

Loss accounting comes from :class:`imuhip.ingest.decode.StreamDecoder` (sequence numbers: lost
packets and samples, gaps, duplicates, reordering); the device clock is mapped to the session
clock by :class:`imuhip.ingest.align.ClockTracker` (lower-envelope offset + drift fit, robust to
connection-interval bursts; re-anchored after a reconnect). Hip angles are the offline
analysis's, causally: samples on the session grid (:mod:`imuhip.live.grid`), the online vqf
filter (Laidig & Seel 2023, doi:10.1016/j.inffus.2022.10.014), the offline segment calibration,
walking-axis heading anchor and :func:`imuhip.gait.joints.hip_angles` (ISB, Wu et al. 2002,
doi:10.1016/S0021-9290(01)00222-6) in :mod:`imuhip.live.hips`; ``docs/live.md``.
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

from imuhip.conventions import Side
from imuhip.ingest.align import ClockTracker
from imuhip.ingest.align.syncs import MIN_SYNCS, SyncFloor, unwrap_device_us
from imuhip.ingest.decode import StreamDecoder, stream_decoder_for
from imuhip.live.grid import GridResampler
from imuhip.live.hips import HipUpdate, LiveHips
from imuhip.live.latency import LatencyHistogram, _TimedRing
from imuhip.live.strides import LiveStrides
from imuhip.orientation.fusion.session import RESET_GAP_S
from imuhip.types import (
    ClockModel,
    RawPacket,
    SegmentCalibration,
    SensorMeta,
    SessionEvent,
    SessionMeta,
)

__all__ = [
    "LIVE_SEGCAL_KIND",
    "LiveProcessor",
    "SensorLiveState",
    "replay_metrics",
    "warm_up",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

#: Kind of the event carrying the live segment calibration (the data of
#: :func:`imuhip.orientation.segment_calibration.segcal_to_event_data`).
LIVE_SEGCAL_KIND = "live_segment_calibration"
_STALE_ROWS = 20  # a side with no angle for this many grid rows (0.1 s at 200 Hz) shows none

_RESET_GAP_S = RESET_GAP_S  # longer gaps restart the sensor's filter, as offline
_MAX_FILL_S = 1.0  # as AlignConfig.max_fill_gap_s (only gaps up to _RESET_GAP_S reach it)
_IR_WINDOW_S = 5.0  # hip rotation excursion shown live: over this many seconds
# the angle shown is the final one this far behind the newest data (walking: final angles lag
# 4-6 s, imuhip.live.hips), so the number on screen moves steadily rather than in 2 s steps
_DISPLAY_DELAY_S = 6.0


@dataclass
class SensorLiveState:
    """Per-sensor processing state (decoder, clock, grid, filter)."""

    meta: SensorMeta
    decoder: StreamDecoder
    clock: ClockTracker
    grid: GridResampler | None = None
    fusion: Any | None = None
    n_samples: int = 0
    first_host_ns: int | None = None
    last_host_ns: int | None = None
    events: int = 0
    last: dict[str, Any] = field(default_factory=dict)
    resets: int = 0  # filter restarts after gaps longer than _RESET_GAP_S
    #: TIME_SYNC lower bounds (imuhip.ingest.align.syncs), the newest device time decoded and the
    #: floor clock computed at the last reply (None: recompute)
    syncs: SyncFloor = field(default_factory=SyncFloor)
    last_t_dev_s: float | None = None
    floor_model: ClockModel | None = None


class LiveProcessor:
    """Deterministic live processing of one session's packets and events.

    Parameters
    ----------
    meta : SessionMeta
    fusion : bool
        Run the online orientation filter and hip angles. The calibration period ends when
        :func:`~imuhip.orientation.segment_calibration.calibrate_segments` succeeds on the data
        so far (standing still, then walking) and the first heading window is complete; from
        then on strides are counted as the report counts them (:mod:`imuhip.live.strides`).
    time_scale : float, optional
        Session seconds per host-clock second (default: the recording's ``time_scale``).

    Notes
    -----
    Hip angles are those of the offline analysis run with the online filter
    (``AnalysisConfig(method="vqf_online")``): samples go onto the same session grid
    (:mod:`imuhip.live.grid`), each sensor through :class:`~imuhip.orientation.fusion.online.
    OnlineFusion`, then the offline segment calibration, walking-axis heading anchor and joint
    angles (:mod:`imuhip.live.hips`); ``docs/live.md`` gives the measured differences.
    Memory does not grow with the session: clock models keep a bounded set of anchors
    (:class:`~imuhip.ingest.align.ClockTracker`), latencies go to a fixed log-spaced histogram
    (:class:`LatencyHistogram`), the grid rows kept are one heading window (8 s) after the
    calibration; only the decoders' gap lists grow, with the number of gaps.
    """

    def __init__(
        self,
        meta: SessionMeta,
        *,
        fusion: bool = True,
        time_scale: float | None = None,
    ) -> None:
        self.meta = meta
        # virtual sensors may run faster than the wall clock: session s = host s * time_scale
        self.time_scale = float(time_scale or meta.extra.get("time_scale", 1.0))
        # virtual host stamps (simulator) are no wall times: no notification latency then
        self._wall_stamps = meta.extra.get("host_clock", "monotonic") != "virtual"
        self.t0_ns: int | None = None
        self.sensors: dict[str, SensorLiveState] = {}
        rate = max((m.rate_hz for m in meta.sensors), default=200.0)
        self.rate_hz = float(rate)
        for m in meta.sensors:
            st = SensorLiveState(m, stream_decoder_for(m), ClockTracker())
            if fusion:
                st.grid = GridResampler(
                    self.rate_hz, max_fill_gap_s=_MAX_FILL_S, reset_gap_s=_RESET_GAP_S
                )
            self.sensors[m.placement] = st
        self.hips = LiveHips(list(self.sensors), self.rate_hz) if fusion else None
        #: strides per side and their hip rotation excursion, as the report will count them
        self.strides = LiveStrides(self.rate_hz) if fusion else None
        if self.hips is not None and self.strides is not None:
            self.hips.keep_before_final = self.strides.win + self.strides.hop
        self.hip_deg: dict[str, FloatArray] = {}
        # one hip update per grid row and side
        cap = int(_IR_WINDOW_S * self.rate_hz) + 2
        self.hip_ir_hist: dict[str, _TimedRing] = {s.value: _TimedRing(cap) for s in Side}
        self.latency = LatencyHistogram()
        #: sides whose hip angle is withheld while a filter re-converges after a gap
        self.reconverging: set[str] = set()
        self.event_counts: dict[str, int] = {}
        #: events the session should record (the live segment calibration), taken by
        #: :meth:`take_events`
        self.pending_events: list[SessionEvent] = []
        self._last_host_ns = 0
        self._last_k: dict[str, int] = {}
        ring = int((_DISPLAY_DELAY_S + 2.0) * self.rate_hz)
        self._ring_k = {s.value: np.full(ring, -1, np.int64) for s in Side}
        self._ring_deg = {s.value: np.zeros((ring, 3)) for s in Side}

    @property
    def calibrated(self) -> bool:
        """The segment calibration is done (hip angles may follow)."""
        return self.hips is not None and self.hips.segcal is not None

    @property
    def segcal(self) -> SegmentCalibration | None:
        """The live segment calibration (``None`` until the calibration period is over)."""
        return None if self.hips is None else self.hips.segcal

    # -- input ---------------------------------------------------------------------------------
    def on_event(self, ev: SessionEvent) -> None:
        """Count events; re-anchor the clock model of a sensor that reconnected."""
        self.event_counts[ev.kind] = self.event_counts.get(ev.kind, 0) + 1
        st = self.sensors.get(ev.sensor or "")
        if st is None:
            return
        if ev.kind == "reconnect":
            st.clock.reanchor()
        elif ev.kind == "time_sync":
            self._add_sync(st, ev.data)
        st.last[ev.kind] = ev.data

    def _add_sync(self, st: SensorLiveState, data: dict[str, Any]) -> None:
        """A TIME_SYNC reply as a floor point, as :func:`imuhip.ingest.align.syncs.sync_anchors`
        reads it offline (from the sensor's first sample on, unwrapped against its newest)."""
        if self.t0_ns is None or st.first_host_ns is None or st.last_t_dev_s is None:
            return
        try:
            send, dev = int(data["t_send_ns"]), int(data["t_dev_us"])
        except (KeyError, TypeError, ValueError):
            return
        if send < st.first_host_ns:
            return
        t_dev = float(unwrap_device_us([dev], [st.last_t_dev_s])[0])
        if st.syncs.add(
            t_dev, (send - self.t0_ns) * (1e-9 * self.time_scale) - t_dev, st.clock.model
        ):
            st.floor_model = None

    def _floor_clock(self, st: SensorLiveState, ceiling: ClockModel) -> ClockModel | None:
        """The sensor's TIME_SYNC floor clock now, once every sensor has enough replies (the rule
        of the offline alignment), else ``None``."""
        if st.last_t_dev_s is None or any(len(x.syncs) < MIN_SYNCS for x in self.sensors.values()):
            return None
        return st.syncs.model(st.last_t_dev_s, ceiling)

    def _final_clock(self, st: SensorLiveState, ceiling: ClockModel) -> ClockModel:
        """The clock :meth:`_clock_model` maps with, computed afresh from what the sensor has
        now (not the one cached at the last reply): the same whether the packets were
        processed with fusion (live) or without (``replay_metrics``)."""
        m = self._floor_clock(st, ceiling)
        return ceiling if m is None else m

    def _clock_model(self, st: SensorLiveState) -> ClockModel:
        """The sensor's clock: its TIME_SYNC floor clock, computed at the last reply and cached,
        else the envelope of its receive times."""
        ceiling = st.clock.model
        assert ceiling is not None
        if st.floor_model is None:
            st.floor_model = self._floor_clock(st, ceiling)
        return ceiling if st.floor_model is None else st.floor_model

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
        self._last_host_ns = max(self._last_host_ns, packets[-1].host_rx_ns)
        smp = st.decoder.push(packets)
        n = len(smp)
        if n == 0:
            return
        st.n_samples += n
        host_s = (smp.host_rx_ns - self.t0_ns) * (1e-9 * self.time_scale)
        st.clock.update(smp.t_dev_s, host_s)
        finite = smp.t_dev_s[np.isfinite(smp.t_dev_s)]
        if len(finite):
            st.last_t_dev_s = float(finite[-1])
        if st.grid is None or self.hips is None:
            return
        model = self._clock_model(st)
        ok = np.isfinite(smp.t_dev_s) & np.isfinite(smp.acc_m_s2).all(axis=1)
        ok &= np.isfinite(smp.gyr_rad_s).all(axis=1)
        if smp.mag_ut is not None:
            ok &= np.isfinite(smp.mag_ut).all(axis=1)
        if not ok.any():
            return
        mag = None if smp.mag_ut is None else smp.mag_ut[ok]
        for rows in st.grid.push(
            model.to_session(smp.t_dev_s[ok]),
            smp.sample_idx[ok],
            smp.acc_m_s2[ok],
            smp.gyr_rad_s[ok],
            mag,
        ):
            if st.fusion is None:
                from imuhip.orientation.fusion.online import OnlineFusion

                st.fusion = OnlineFusion(rate_hz=self.rate_hz, use_mag=rows.mag_ut is not None)
            elif rows.restart:  # as the offline fusion: new orientation, same gyroscope bias
                st.resets += 1
                log.info("%s: filter restarted after a gap", sensor)
                st.fusion.restart()
            res = st.fusion.update(rows.acc_m_s2, rows.gyr_rad_s, rows.mag_ut, valid=rows.valid)
            self.hips.add(
                sensor,
                rows.k0,
                res.q_world_sensor,
                rows.acc_m_s2,
                rows.gyr_rad_s,
                rows.mag_ut,
                rows.valid,
                restart=rows.restart,
            )
        was_calibrated = self.calibrated
        updates = self.hips.update()
        if self.calibrated and not was_calibrated:
            from imuhip.orientation.segment_calibration import segcal_to_event_data

            assert self.hips.segcal is not None
            self.pending_events.append(
                SessionEvent(
                    self._last_host_ns,
                    LIVE_SEGCAL_KIND,
                    None,
                    segcal_to_event_data(self.hips.segcal),
                )
            )
        self._show(updates)
        self._count_strides(updates)
        if updates and self._wall_stamps:
            self.latency.add(time.monotonic_ns() - packets[-1].host_rx_ns)

    def _show(self, updates: list[HipUpdate]) -> None:
        hips = self.hips
        if hips is None or hips.k_done is None:
            return
        for u in updates:
            deg = np.degrees(u.angles_rad)
            hist = self.hip_ir_hist[u.side]
            for k, ir in zip(u.k.tolist(), deg[:, 2].tolist(), strict=True):
                hist.append(k / self.rate_hz, ir)
            slots = u.k % len(self._ring_k[u.side])
            self._ring_k[u.side][slots] = u.k
            self._ring_deg[u.side][slots] = deg
            self._last_k[u.side] = int(u.k[-1])
        delay = round(_DISPLAY_DELAY_S * self.rate_hz)
        for side in ("left", "right"):
            if side in self._last_k:  # the final angle _DISPLAY_DELAY_S behind, or the newest
                want = min(self._last_k[side], hips.k_done - delay)
                i = want % len(self._ring_k[side])
                if self._ring_k[side][i] == want:
                    self.hip_deg[side] = self._ring_deg[side][i].copy()
                elif side not in self.hip_deg:
                    i = self._last_k[side] % len(self._ring_k[side])
                    self.hip_deg[side] = self._ring_deg[side][i].copy()
        for side in ("left", "right"):
            busy = hips.reconverging(side)
            if busy:
                self.reconverging.add(side)
            else:
                self.reconverging.discard(side)
            # no number it cannot stand behind: nothing while re-converging or after a gap
            kf = hips.kf.get(f"thigh_{Side(side).suffix}", hips.k_done)
            if busy or self._last_k.get(side, -1) < kf - _STALE_ROWS:
                self.hip_deg.pop(side, None)

    def _count_strides(self, updates: list[HipUpdate]) -> None:
        hips, strides = self.hips, self.strides
        if hips is None or strides is None or not self.calibrated:
            return
        for u in updates:
            strides.add(u.side, u.k, u.angles_rad)
        k = hips.k_final  # strides over the rows whose angles are final
        if k is not None and strides.ready(k):
            strides.run(hips, k)

    def finish(self) -> list[HipUpdate]:
        """End of the session: the hip angles still waiting for the next heading anchor, with
        the last one held (as the offline analysis holds it at the end); returns them."""
        if self.hips is None:
            return []
        updates = self.hips.finish()
        self._show(updates)
        self._count_strides(updates)
        k = self.hips.k_final
        if self.strides is not None and self.calibrated and k is not None:
            self.strides.run(self.hips, k, final=True)
        return updates

    def take_events(self) -> list[SessionEvent]:
        """Events produced since the last call (the session writes them to the recording)."""
        out, self.pending_events = self.pending_events, []
        return out

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
            used = None if m is None else self._final_clock(st, m)
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
                # the clock samples are mapped with (TIME_SYNC floors or the packets' envelope)
                "clock_offset_s": None if used is None else used.offset_s,
                "clock_drift_ppm": None if used is None else used.drift_ppm,
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


def warm_up(*, has_mag: bool = False) -> float:
    """Load the live path's compiled kernels (decode, clock, grid, filter) before streaming.

    The first packet a fresh process pushes loads them from numba's cache: 1.5 s here idle, up to
    9 s under CPU load (measured with ``scripts/kill9_live.py``), during which the event loop
    handled nothing (no notification recorded: a kill then lost all of it, and real sensors'
    notifications pile up). :func:`~imuhip.live.session.run_live` calls this before connecting.
    Feeds 1 s of synthetic 200 Hz packets of a pelvis and two thighs through a throwaway
    processor; returns the wall seconds it took.
    """
    from imuhip.ingest import protocol

    t0 = time.perf_counter()
    sensors = tuple(
        SensorMeta(
            placement=p,
            rate_hz=200.0,
            acc_lsb_m_s2=protocol.acc_lsb_m_s2(16),
            gyr_lsb_rad_s=protocol.gyr_lsb_rad_s(2000),
            mag_lsb_ut=protocol.MAG_LSB_UT,
            has_mag=has_mag,
        )
        for p in ("pelvis", "thigh_l", "thigh_r")
    )
    meta = SessionMeta("warmup", "2000-01-01T00:00:00+00:00", "warmup", sensors)
    proc = LiveProcessor(meta, fusion=True, time_scale=1.0)
    rows = np.zeros((10, 9 if has_mag else 6), np.int64)
    rows[:, 2] = 2048  # ~1 g on z at 16 g full scale
    for k in range(20):
        for p in meta.sensors:
            pkt = protocol.encode_packet(k, k * 50_000, rows)
            proc.push(p.placement, [RawPacket(p.placement, 1_000_000 + k * 50_000_000, pkt)])
    return time.perf_counter() - t0


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
