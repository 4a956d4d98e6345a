"""Bounded-memory analysis of long sessions: :func:`analyze_recording_chunked`.

The recording is analysed in windows of fixed length (plus overlap for the filters to settle),
streaming the file, so memory does not grow with the session length; strides are assigned to the
window holding their initial contact and the session statistics are computed over all strides at
the end. :func:`imuhip.report.cohort.analyze_one` uses it for large recordings of a batch.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from imuhip.pipeline import AnalysisConfig

__all__ = ["ChunkedResult", "analyze_recording_chunked", "segcal_placements"]


@dataclass(frozen=True)
class ChunkedResult:
    """Session-level result of :func:`analyze_recording_chunked` (no full-length time series).

    Same attribute names as :class:`imuhip.pipeline.SessionResult` for ``meta``, ``strides``,
    ``per_stride``, ``session``, ``compensation``, ``flags`` and ``quality`` (so
    :func:`result_rows` takes either). Stride ``start_idx``/``stop_idx`` index the whole
    session's grid; times are session seconds.
    """

    meta: Any
    strides: list[Any]
    per_stride: list[dict[str, float]]
    session: Any
    compensation: dict[str, Any]
    flags: list[Any]
    quality: dict[str, Any]
    windows: int
    window_s: float
    overlap_s: float
    segcal: Any = None
    """The segment calibration every window used (the recording's, or the first window's)."""


def _window_frames(
    path: str | os.PathLike[str], window_s: float, overlap_s: float
) -> Iterable[tuple[int, float, list[Any], list[Any], int]]:
    """Stream a recording; yield ``(k, core_start_s, packets, events_so_far, t0_ns)`` per window.

    Window ``k`` holds the packets received in ``[k W - O, (k + 1) W + O)`` session seconds.
    """
    from imuhip.ingest.recording import open_recording
    from imuhip.types import RawPacket

    stream = open_recording(path)
    w_ns, o_ns = int(window_s * 1e9), int(overlap_s * 1e9)
    t0: int | None = None
    buf: list[Any] = []
    events: list[Any] = []
    k = 0
    for fr in stream:
        if type(fr) is not RawPacket:
            events.append(fr)
            continue
        if t0 is None:
            t0 = fr.host_rx_ns
        while fr.host_rx_ns >= t0 + (k + 1) * w_ns + o_ns:
            lo = t0 + k * w_ns - o_ns
            yield k, k * window_s, [p for p in buf if p.host_rx_ns >= lo], events, t0
            k += 1
            keep_from = t0 + k * w_ns - o_ns
            buf = [p for p in buf if p.host_rx_ns >= keep_from]
        buf.append(fr)
    if t0 is not None and buf:
        lo = t0 + k * w_ns - o_ns
        yield k, k * window_s, [p for p in buf if p.host_rx_ns >= lo], events, t0
    _window_frames.last_warnings = list(stream.warnings)  # type: ignore[attr-defined]
    _window_frames.last_complete = bool(stream.complete)  # type: ignore[attr-defined]


def analyze_recording_chunked(
    path: str | os.PathLike[str],
    cfg: AnalysisConfig | None = None,
    *,
    window_s: float = 600.0,
    overlap_s: float = 30.0,
    progress: Callable[[str], None] | None = None,
) -> ChunkedResult:
    """Analyse a recording of any length in windows, with memory bounded by the window length.

    Each window (``window_s`` plus ``overlap_s`` on both sides, so the orientation filters
    settle before the window's own part starts) goes through the same stages as
    :func:`imuhip.pipeline.analyze_packets` on the one session clock of the whole recording
    (:func:`imuhip.ingest.align.align_session` with the recording's ``t0_ns``); the segment
    calibration
    is computed once, in the first window (or taken from the recording), and reused. A stride
    belongs to the window whose own part holds its initial contact, so none is counted twice.
    Session statistics, asymmetry (bootstrap) and the compensation index are computed over all
    strides at the end, as in the one-piece analysis.

    Parameters
    ----------
    path : path-like
    cfg : AnalysisConfig, optional
    window_s, overlap_s : float
        Window length and overlap on each side, seconds (overlap >= 10 s, well above a stride).
    progress : callable, optional
        Called with a label per window.

    Raises
    ------
    ValueError
        Bad window parameters.
    InsufficientDataError, CalibrationError, RecordingError
        As :func:`imuhip.pipeline.analyze_recording`.
    """
    from imuhip.gait.assumptions import off_site_metrics, off_site_sensors
    from imuhip.gait.compensation import absorption_phase_deg
    from imuhip.gait.metrics import session_metrics
    from imuhip.gait.norms import flaggable_means, gait_flags
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.units_check import check_session_gyro_units
    from imuhip.orientation.fusion import FuseConfig, fuse_session
    from imuhip.orientation.segment_calibration import calibrate_segments
    from imuhip.pipeline import _recorded_segcal, analyze_orientations

    if not (window_s >= 60.0 and np.isfinite(window_s)):
        raise ValueError(f"window_s must be >= 60, got {window_s}")
    if not 10.0 <= overlap_s <= window_s:
        raise ValueError(f"overlap_s must be in [10, window_s], got {overlap_s}")
    cfg = cfg or AnalysisConfig()
    say = progress or (lambda _: None)
    meta = None
    segcal = None
    strides: list[Any] = []
    per_stride: list[dict[str, float]] = []
    phases: list[tuple[str, float]] = []
    sensors_q: dict[str, dict[str, float]] = {}
    conf_sum, conf_n, valid_sum, n_grid = 0.0, 0, 0.0, 0
    n_windows = 0
    notes: list[str] = []
    seg_quality: dict[str, Any] = {}
    for k, core0, packets, events, t0 in _window_frames(path, window_s, overlap_s):
        say(f"window {k + 1} ({core0:.0f}-{core0 + window_s:.0f} s)")
        from imuhip.ingest.recording import open_recording

        if meta is None:
            meta = open_recording(path).meta
        samples = decode_session(packets, meta)
        if not any(len(s) for s in samples.values()):
            continue
        aligned = align_session(samples, AlignConfig(), t0_ns=t0, events=events)
        del samples
        if cfg.calibration_folder is not None:
            from imuhip.orientation.sensor_calibration import apply_sensor_calibrations

            aligned = apply_sensor_calibrations(aligned, meta, cfg.calibration_folder)
        check_session_gyro_units(aligned)  # a gyroscope off by 57.3 is refused
        ori = fuse_session(aligned, FuseConfig(method=cfg.method, use_mag=cfg.use_mag))
        for pl, sensor in aligned.sensors.items():
            q = sensors_q.setdefault(pl, {"loss_fraction": 0.0, "n_gaps": 0})
            q["loss_fraction"] = max(q["loss_fraction"], float(sensor.stats.loss_fraction))
            q["n_gaps"] += len(sensor.stats.gaps)
        del aligned
        if segcal is None:
            segcal = _recorded_segcal(events) or calibrate_segments(
                ori, cfg.segment_calibration_config()
            )
        res = analyze_orientations(ori, meta, cfg, segcal=segcal)
        n_windows += 1
        grid0 = round(float(ori.t_s[0]) * ori.rate_hz)
        del ori
        core1 = core0 + window_s
        ang = res.angles
        for s, m in zip(res.strides, res.per_stride, strict=True):
            if not core0 <= s.ic_s < core1:
                continue
            if s.valid and s.to_s is not None and ang.pelvis_rad is not None:
                hip = ang.hip_rad.get(s.side)
                if hip is not None:
                    sl = slice(s.start_idx, s.stop_idx)
                    ph = absorption_phase_deg(
                        ang.pelvis_rad[sl, 0], hip[sl, 2], s.side, ang.t_s[sl] < s.to_s
                    )
                    phases.append((s.side, ph))
            strides.append(replace(s, start_idx=s.start_idx + grid0, stop_idx=s.stop_idx + grid0))
            per_stride.append(m)
        inside = (ang.t_s >= core0) & (ang.t_s < core1)
        if ang.transverse_confidence is not None and (ang.valid & inside).any():
            conf_sum += float(np.sum(ang.transverse_confidence[ang.valid & inside]))
            conf_n += int(np.sum(ang.valid & inside))
        valid_sum += float(np.sum(ang.valid[inside]))
        n_grid += int(np.sum(inside))
        notes = list(dict.fromkeys([*notes, *ang.notes]))
        seg_quality = res.quality.get("segment_calibration", seg_quality)
        del res, ang
    if meta is None or (not strides and n_windows == 0):
        from imuhip.errors import InsufficientDataError

        raise InsufficientDataError(f"{path}: no decodable sensor data")
    order = sorted(range(len(strides)), key=lambda i: (strides[i].ic_s, strides[i].side))
    strides = [strides[i] for i in order]
    per_stride = [per_stride[i] for i in order]
    counters: dict[str, int] = {}
    renumbered = []
    for s in strides:
        counters[s.side] = counters.get(s.side, 0) + 1
        renumbered.append(replace(s, number=counters[s.side]))
    strides = renumbered
    session = session_metrics(strides, per_stride, seed=cfg.bootstrap_seed)
    off_site = off_site_sensors(meta)  # e.g. an OpenSense chest sensor imported as lumbar
    with_lumbar = "lumbar" in segcal_placements(meta) and "lumbar" not in off_site
    comp = _compensation(strides, per_stride, phases, cfg, with_lumbar)
    conf_mean = conf_sum / conf_n if conf_n else None
    flags = gait_flags(
        {s: flaggable_means(m) for s, m in session.per_side.items()},
        flaggable_means(session.trunk, skip=off_site_metrics(off_site)),
        {k: (a.right_minus_left, a.ci95_low, a.ci95_high) for k, a in session.asymmetry.items()},
        {s: (c.index, cfg.compensation.band) for s, c in comp.items()},
        conf_mean,
    )
    quality = {
        "recording_warnings": list(getattr(_window_frames, "last_warnings", [])),
        "recording_complete": bool(getattr(_window_frames, "last_complete", True)),
        "sensors": sensors_q,
        "segment_calibration": seg_quality,
        "transverse_confidence_mean": conf_mean,
        "angle_notes": notes,
        "valid_fraction_angles": valid_sum / n_grid if n_grid else 0.0,
        "chunked": {"windows": n_windows, "window_s": window_s, "overlap_s": overlap_s},
        "off_site_sensors": off_site,
    }
    return ChunkedResult(
        meta,
        strides,
        per_stride,
        session,
        comp,
        flags,
        quality,
        n_windows,
        window_s,
        overlap_s,
        segcal,
    )


def segcal_placements(meta: Any) -> set[str]:
    """Placements of a session's sensors."""
    return {s.placement for s in meta.sensors}


def _compensation(
    strides: Sequence[Any],
    per_stride: Sequence[dict[str, float]],
    phases: Sequence[tuple[str, float]],
    cfg: AnalysisConfig,
    with_lumbar: bool,
) -> dict[str, Any]:
    """:func:`imuhip.gait.compensation.compensation_index` from per-stride ingredients.

    The stance absorption phases were computed per stride inside each window (they need the
    angle time series); ratio, medians and z-scores follow ``compensation_index`` exactly.
    """
    from imuhip.gait.compensation import side_index, stride_log_ratio

    out: dict[str, Any] = {}
    for side in ("left", "right"):
        ratios = [
            r
            for s, m in zip(strides, per_stride, strict=True)
            if s.side == side and s.valid and s.to_s is not None
            if (r := stride_log_ratio(m, with_lumbar)) is not None
        ]
        res = side_index(
            side, ratios, [p for sd, p in phases if sd == side], with_lumbar, cfg.compensation
        )
        if res is not None:
            out[side] = res
    return out
