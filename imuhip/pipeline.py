"""The analysis pipeline: composition of the stages only, no maths.

``read_recording → decode_session → align_session → apply_sensor_calibrations → fuse_session →
calibrate_segments → joint_angles → detect_gait_events / segment_strides → stride_metrics →
session_metrics → compensation_index → gait_flags``.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from imuhip.gait.compensation import CompensationReference, CompensationResult, compensation_index
from imuhip.gait.events import EventConfig, SideEvents, Stride, pelvis_heading_rad, session_events
from imuhip.gait.events import mark_implausible as _implausible
from imuhip.gait.events import mark_partial_steps as _partial_steps
from imuhip.gait.knee_hinge import correct_thigh_artefact
from imuhip.gait.metrics import SessionMetrics, session_metrics, stride_metrics_many
from imuhip.gait.norms import Flag, flaggable_means, gait_flags
from imuhip.orientation.segment_calibration import STANDING_PELVIC_TILT_DEG, SegmentCalConfig
from imuhip.types import (
    ImuSamples,
    JointAngles,
    OrientationSession,
    RawPacket,
    SegmentCalibration,
    SessionEvent,
    SessionMeta,
)

__all__ = [
    "AnalysisConfig",
    "SessionResult",
    "analyze_orientations",
    "analyze_packets",
    "analyze_recording",
]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class AnalysisConfig:
    """Options of the analysis.

    Parameters
    ----------
    method : str
        Orientation filter (:data:`imuhip.orientation.fusion.METHODS`).
    use_mag : bool
        Use magnetometers where present.
    calibration_folder : str or None
        Folder with per-sensor calibration files (``calibration/``); ``None`` = none applied.
    events : EventConfig
    compensation : CompensationReference
    bootstrap_seed : int
    standing_pelvic_tilt_deg : float
        Anatomical anterior pelvic tilt (ASIS–PSIS) in the calibration stance; default the
        population mean (:data:`imuhip.orientation.segment_calibration.STANDING_PELVIC_TILT_DEG`).
        Absolute hip flexion, pelvic tilt and lumbar flexion assume it unless set per subject.
    relative_heading : {"walking", "magnetometer"}
        Pelvis–thigh relative heading with magnetometers: ``"walking"`` anchors it as in 6D (mean
        hip rotation over each walking window is zero; immune to hard-iron bias), the
        magnetometer giving only the walking direction and the field-quality confidence;
        ``"magnetometer"``: the 9D headings as fused (6D sensors are always anchored).
    knee_hinge : bool
        Experimental (off): remove the thigh sensors' long-axis soft-tissue artefact with the
        shanks (:mod:`imuhip.gait.knee_hinge`); simulator-validated only (docs/validation.md).
    """

    method: str = "vqf"
    use_mag: bool = True
    calibration_folder: str | None = None
    events: EventConfig = field(default_factory=EventConfig)
    compensation: CompensationReference = field(default_factory=CompensationReference)
    bootstrap_seed: int = 0
    standing_pelvic_tilt_deg: float = STANDING_PELVIC_TILT_DEG
    relative_heading: str = "walking"
    knee_hinge: bool = False

    def __post_init__(self) -> None:
        if self.relative_heading not in ("walking", "magnetometer"):
            raise ValueError(
                "relative_heading must be 'walking' or 'magnetometer', got "
                f"{self.relative_heading!r}"
            )

    def segment_calibration_config(self) -> SegmentCalConfig:
        """The :class:`SegmentCalConfig` these options describe."""
        return SegmentCalConfig(
            standing_pelvic_tilt_rad=float(np.deg2rad(self.standing_pelvic_tilt_deg)),
        )


@dataclass(frozen=True, slots=True)
class SessionResult:
    """Everything the report shows: inputs' metadata, angles, events, strides, metrics, flags.

    ``quality`` is JSON-ready: per-sensor loss and gaps, calibration quality and warnings,
    transverse-plane confidence, recording warnings.
    """

    meta: SessionMeta
    angles: JointAngles
    events: dict[str, SideEvents]
    strides: list[Stride]
    per_stride: list[dict[str, float]]
    session: SessionMetrics
    compensation: dict[str, CompensationResult]
    flags: list[Flag]
    quality: dict[str, Any]
    segcal: SegmentCalibration | None
    orientation_source: str
    config: AnalysisConfig


def _noop(_: str) -> None:
    return None


def analyze_recording(
    path: str | os.PathLike[str],
    cfg: AnalysisConfig | None = None,
    progress: Progress | None = None,
    *,
    segcal: SegmentCalibration | None = None,
) -> SessionResult:
    """Analyse one ``.imrec`` recording end to end.

    Parameters
    ----------
    path : path-like
    cfg : AnalysisConfig, optional
    progress : callable, optional
        Called with a short label before each stage (the CLI shows it on stderr).
    segcal : SegmentCalibration, optional
        A segment calibration to use (e.g. one made on an earlier session or a part of this
        one); default: the one stored in the recording, else calibrated from the session.

    Raises
    ------
    FileNotFoundError, RecordingError, InsufficientDataError, CalibrationError
    """
    from imuhip.ingest.decode import decode_session_arrays
    from imuhip.ingest.recording import read_packet_arrays

    say = progress or _noop
    say("reading recording")
    # columnar fast path: payloads as slices of the file body, no object per packet (decodes
    # to the same samples as read_recording + decode_session)
    rec = read_packet_arrays(Path(path))
    say("decoding packets")
    samples = decode_session_arrays(rec.payloads, rec.host_rx_ns, rec.meta)
    rec.payloads.clear()  # the file body is freed once decoded (bounded memory)
    rec.host_rx_ns.clear()
    return _analyze_samples(
        samples,
        rec.meta,
        rec.events,
        cfg,
        recording_warnings=list(rec.warnings),
        recording_complete=bool(rec.complete),
        progress=progress,
        segcal=segcal,
    )


def analyze_packets(
    packets: Iterable[RawPacket],
    meta: SessionMeta,
    events: Sequence[SessionEvent] = (),
    cfg: AnalysisConfig | None = None,
    *,
    recording_warnings: Sequence[str] = (),
    recording_complete: bool = True,
    progress: Progress | None = None,
) -> SessionResult:
    """Analyse raw packets (from a recording, a simulator or a live session) end to end.

    Parameters
    ----------
    packets : iterable of RawPacket
    meta : SessionMeta
    events : sequence of SessionEvent
        Session events; a stored segment calibration is reused.
    cfg : AnalysisConfig, optional
    recording_warnings, recording_complete
        Damage reported by the recording reader (copied into the quality section).
    progress : callable, optional
    """
    from imuhip.ingest.decode import decode_session

    say = progress or _noop
    say("decoding packets")
    samples = decode_session(packets, meta)
    return _analyze_samples(
        samples,
        meta,
        events,
        cfg,
        recording_warnings=recording_warnings,
        recording_complete=recording_complete,
        progress=progress,
    )


def _analyze_samples(
    samples: dict[str, ImuSamples],
    meta: SessionMeta,
    events: Sequence[SessionEvent] = (),
    cfg: AnalysisConfig | None = None,
    *,
    recording_warnings: Sequence[str] = (),
    recording_complete: bool = True,
    progress: Progress | None = None,
    segcal: SegmentCalibration | None = None,
) -> SessionResult:
    """:func:`analyze_packets` from the decoded samples on (``samples`` is emptied)."""
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.orientation.fusion import FuseConfig, fuse_session_degrading

    cfg = cfg or AnalysisConfig()
    say = progress or _noop
    say("aligning clocks")
    aligned = align_session(samples, AlignConfig(), events=events)
    samples.clear()  # bounded memory: decoded samples are not needed once on the grid
    if cfg.calibration_folder is not None:
        from imuhip.orientation.sensor_calibration import apply_sensor_calibrations

        aligned = apply_sensor_calibrations(aligned, meta, cfg.calibration_folder)
    say(f"fusing orientations ({cfg.method})")
    from imuhip.ingest.units_check import (
        input_quality,  # raises GyroUnitsError on a clear unit mistake
    )

    checked = input_quality(aligned, meta)  # quality.gyro_units (+ quality.import if imported)
    ori, fusion_dropped = fuse_session_degrading(
        aligned, FuseConfig(method=cfg.method, use_mag=cfg.use_mag), required=_REQUIRED
    )
    quality: dict[str, Any] = {
        **checked,
        "dropped_sensors": fusion_dropped,
        "recording_warnings": list(recording_warnings),
        "recording_complete": recording_complete,
        "sensors": {
            p: {
                "loss_fraction": float(s.stats.loss_fraction),
                "lost_samples": int(s.stats.lost_samples),
                "n_gaps": len(s.stats.gaps),
                "longest_gap_samples": max((g.n_samples for g in s.stats.gaps), default=0),
                "valid_fraction": float(np.mean(s.valid)) if len(s.valid) else 0.0,
                "clock_drift_ppm": float(s.clock.drift_ppm),
                "clock_jitter_ms": float(s.clock.residual_jitter_s * 1e3),
                # device-clock steps re-joined on the packet counter (recording_warnings name them)
                "clock_steps": int(s.stats.clock_steps),
            }
            for p, s in aligned.sensors.items()
        },
    }
    del aligned  # the raw grid is not needed past this point (quality is extracted)
    segcal = segcal or _recorded_segcal(events)
    return analyze_orientations(
        ori, meta, cfg, segcal=segcal, quality=quality, progress=progress, events=events
    )


def _recorded_segcal(events: Sequence[SessionEvent]) -> SegmentCalibration | None:
    """The last segment calibration stored in the recording, if any."""
    try:
        from imuhip.orientation.segment_calibration import EVENT_KIND, segcal_from_event_data
    except ImportError:  # pragma: no cover - optional stage
        return None
    found = [e for e in events if e.kind == EVENT_KIND]
    return segcal_from_event_data(found[-1].data) if found else None


def _calibrate(
    ori: OrientationSession,
    events: Sequence[SessionEvent],
    seg_cfg: SegmentCalConfig | None = None,
) -> SegmentCalibration:
    """Segment calibration using the recording's calibration markers where there are any.

    The first marked static window (if the subject stood still in it) replaces the automatic
    search; marked hip flexion/extension swings replace the walking as functional movement.
    """
    from imuhip.errors import CalibrationError
    from imuhip.orientation.segment_calibration import (
        calibrate_segments,
        functional_windows_from_events,
    )

    statics = functional_windows_from_events(events, ori.t_s, movement="static")
    swings = functional_windows_from_events(events, ori.t_s, movement="hip_flexion")
    functional = swings or None
    if statics:
        try:
            return calibrate_segments(
                ori, seg_cfg, static_window=statics[0], functional_windows=functional
            )
        except CalibrationError as err:
            log.warning("marked static window unusable (%s); searching for one", err)
    return calibrate_segments(ori, seg_cfg, functional_windows=functional)


_REQUIRED: Final = ("pelvis", "thigh_l", "thigh_r")
"""Sensors the analysis cannot do without (one thigh may still fail calibration later)."""


def _drop_uncalibrated(
    ori: OrientationSession, segcal: SegmentCalibration, quality: dict[str, Any]
) -> OrientationSession:
    """``ori`` without the sensors the calibration could not use, each named in ``quality``.

    ``quality["dropped_sensors"][placement] = {"stage": ..., "reason": ...}``: an optional sensor
    (shank, lumbar, foot) or one thigh that failed its calibration is left out of everything
    downstream (angles, events) instead of aborting the session; the pelvis and the last thigh
    raise in the calibration itself.
    """
    dropped: dict[str, dict[str, str]] = quality.setdefault("dropped_sensors", {})
    keep = [p for p in ori.q_world_sensor if p in segcal.q_sensor_segment]
    for p in ori.q_world_sensor:
        if p in keep or ori.gyr_rad_s.get(p) is None or p.startswith("foot_"):
            # orientation-only sensors are left as they were; feet need no segment
            # calibration (their events use the sensor frame, gait.events foot rule)
            continue
        reason = segcal.dropped.get(p, "not in the segment calibration")
        dropped[p] = {"stage": "calibration", "reason": reason}
        log.warning("%s dropped: segment calibration failed (%s)", p, reason)
    if not any(p in dropped for p in ori.q_world_sensor):
        return ori
    return dataclasses.replace(
        ori,
        q_world_sensor={p: q for p, q in ori.q_world_sensor.items() if p not in dropped},
        acc_m_s2={p: a for p, a in ori.acc_m_s2.items() if p not in dropped},
        gyr_rad_s={p: g for p, g in ori.gyr_rad_s.items() if p not in dropped},
        valid={p: v for p, v in ori.valid.items() if p not in dropped},
        diagnostics={p: d for p, d in ori.diagnostics.items() if p not in dropped},
        mag_ut={p: m for p, m in ori.mag_ut.items() if p not in dropped},
    )


def analyze_orientations(
    ori: OrientationSession,
    meta: SessionMeta,
    cfg: AnalysisConfig | None = None,
    *,
    segcal: SegmentCalibration | None = None,
    quality: dict[str, Any] | None = None,
    progress: Progress | None = None,
    events: Sequence[SessionEvent] = (),
) -> SessionResult:
    """Analyse sensor orientations (fused here or imported, e.g. Xsens/OpenSense).

    Parameters
    ----------
    ori : OrientationSession
    meta : SessionMeta
    cfg : AnalysisConfig, optional
    segcal : SegmentCalibration, optional
        A calibration to use (e.g. stored in the recording); computed from ``ori`` otherwise.
    quality : dict, optional
        Quality entries collected by earlier stages; extended here.
    progress : callable, optional
    events : sequence of SessionEvent
        Session events; calibration markers (``calibration_start`` with ``movement`` =
        ``"static"`` / ``"hip_flexion"``) give the calibration's static and functional windows.
    """
    from imuhip.gait.assumptions import angle_assumptions, off_site_metrics, off_site_sensors
    from imuhip.gait.joints import JointsConfig, joint_angles
    from imuhip.gait.leg_check import event_warnings, thigh_shank_check, thigh_side_check

    cfg = cfg or AnalysisConfig()
    say = progress or _noop
    quality = dict(quality or {})
    if "sensors" not in quality:
        quality["sensors"] = {
            p: {"valid_fraction": float(np.mean(v)) if len(v) else 0.0}
            for p, v in ori.valid.items()
        }
    recorded_segcal = segcal is not None
    if segcal is None:
        say("calibrating segments")
        segcal = _calibrate(ori, events, cfg.segment_calibration_config())
    ori = _drop_uncalibrated(ori, segcal, quality)
    say("computing joint angles")
    angles = joint_angles(
        ori,
        segcal,
        JointsConfig(heading_correction="always" if cfg.relative_heading == "walking" else "auto"),
    )
    if cfg.knee_hinge:
        angles, quality["thigh_artefact_deg"] = correct_thigh_artefact(ori, segcal, angles)
    say("detecting gait events")
    heading = pelvis_heading_rad(ori, segcal) if "pelvis" in ori.q_world_sensor else None
    sides = tuple(side for side in ("left", "right") if side in angles.hip_rad)
    # per side: foot, else shank, else thigh; constraints and alternation (gait.events); each
    # side's strides need its own angles valid (side_valid: the other thigh's gaps don't count)
    gait_events, strides, event_checks = session_events(
        ori, segcal, angles.side_valid or angles.valid, sides, heading, cfg.events
    )
    say("computing metrics")
    per_stride = stride_metrics_many(angles, strides)
    strides = _partial_steps(_implausible(strides, per_stride), per_stride)  # no hip / part step
    session = session_metrics(strides, per_stride, seed=cfg.bootstrap_seed)
    off_site = off_site_sensors(meta)  # e.g. an OpenSense chest sensor imported as lumbar
    comp_angles = dataclasses.replace(angles, lumbar_rad=None) if "lumbar" in off_site else angles
    comp = compensation_index(comp_angles, strides, per_stride, cfg.compensation)
    conf = angles.transverse_confidence
    conf_mean = (
        float(np.mean(conf[angles.valid])) if conf is not None and angles.valid.any() else None
    )
    flags = gait_flags(
        {s: flaggable_means(m) for s, m in session.per_side.items()},
        flaggable_means(session.trunk, skip=off_site_metrics(off_site)),
        {k: (a.right_minus_left, a.ci95_low, a.ci95_high) for k, a in session.asymmetry.items()},
        {s: (c.index, cfg.compensation.band) for s, c in comp.items()},
        conf_mean,
    )
    quality["segment_calibration"] = {
        "method": dict(segcal.method),
        "quality": {k: dict(v) for k, v in segcal.quality.items()},
        "warnings": list(segcal.warnings),
        "dropped": dict(segcal.dropped),
    }
    # a leg whose marked swings were unusable, calibrated from the walking instead
    quality["calibration_fallbacks"] = [w for w in segcal.warnings if ": fallback: " in w]
    # session-level count of strides left out because the pelvis heading turned in them
    quality["turning_strides"] = sum(1 for s in strides if s.exclusion == "turning")
    quality["off_site_sensors"] = off_site
    quality["angle_assumptions"] = angle_assumptions(
        cfg.standing_pelvic_tilt_deg, cfg.relative_heading, segcal, recorded_segcal
    )
    quality["transverse_confidence_mean"] = conf_mean
    quality["angle_notes"] = list(angles.notes)
    quality["valid_fraction_angles"] = float(np.mean(angles.valid)) if len(angles.valid) else 0.0
    quality["event_sources"] = {s: e.source for s, e in gait_events.items()}
    quality["event_checks"] = event_checks
    quality["event_warnings"] = event_warnings(gait_events)
    # a thigh on the other leg (files swapped): peak hip flexion half a stride from IC
    quality["thigh_side_check"], quality["placement_warnings"] = thigh_side_check(
        angles, strides, gait_events
    )
    quality["placement_warnings"] += thigh_shank_check(ori)  # a thigh and its shank swapped
    return SessionResult(
        meta=meta,
        angles=angles,
        events=gait_events,
        strides=strides,
        per_stride=per_stride,
        session=session,
        compensation=comp,
        flags=flags,
        quality=quality,
        segcal=segcal,
        orientation_source=ori.source,
        config=cfg,
    )
