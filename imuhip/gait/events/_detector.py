"""The detector: filter, orient and find the swing peaks, then apply the segment's rule."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from imuhip.dsp import find_peaks
from imuhip.gait.events._config import EventConfig, FloatArray, SideEvents
from imuhip.gait.events._constraints import reject_close_candidates, swing_support
from imuhip.gait.events._shank_rule import _bout_end_swings, _shank_events
from imuhip.gait.events._signals import _lowpass
from imuhip.gait.events._thigh_rule import _thigh_events
from imuhip.types import SegmentCalibration

__all__ = ["config_for_segment", "detect_gait_events"]


def config_for_segment(cfg: EventConfig, segcal: SegmentCalibration, placement: str) -> EventConfig:
    """``cfg`` for detecting events on ``placement``: ``auto_sign`` off when the segment
    calibration decided that segment's flexion sign clearly (``trust_calibration_sign_score``).

    A calibration without a sign score (e.g. one stored in the recording, or an assumed one)
    leaves ``cfg`` as it is.
    """
    ts = cfg.trust_calibration_sign_score
    score = segcal.quality.get(placement, {}).get("sign_score")
    if not cfg.auto_sign or ts is None or score is None or not np.isfinite(score):
        return cfg
    return replace(cfg, auto_sign=False) if score >= ts else cfg


def detect_gait_events(
    t_s: FloatArray,
    omega_ml_rad_s: FloatArray,
    *,
    side: str,
    segment: str = "shank",
    source: str | None = None,
    cfg: EventConfig | None = None,
) -> SideEvents:
    """Initial contacts and toe-offs of one side from a leg segment's mediolateral angular velocity.

    Parameters
    ----------
    t_s : (M,) float64
        Uniform session grid, seconds.
    omega_ml_rad_s : (M,) float64
        Angular velocity about the segment Z axis (ISB, + swings the distal end forward), rad/s.
    side : str
        ``"left"`` or ``"right"`` (only recorded in the result).
    segment : {"shank", "thigh"}
        Which rule to apply (module docstring; Aminian 2002 / Salarian 2004 for the shank).
    source : str, optional
        Label stored in the result (default ``f"{segment}_gyro"``).
    cfg : EventConfig, optional

    Returns
    -------
    SideEvents
    """
    cfg = cfg or EventConfig()
    t_s = np.asarray(t_s, dtype=np.float64)
    w = np.asarray(omega_ml_rad_s, dtype=np.float64)
    if t_s.ndim != 1 or w.shape != t_s.shape:
        raise ValueError(f"omega_ml_rad_s must have shape {t_s.shape}, got {w.shape}")
    if segment not in ("shank", "thigh"):
        raise ValueError(f"segment must be 'shank' or 'thigh', got {segment!r}")
    empty = np.zeros(0)
    src = source or f"{segment}_gyro"
    if len(t_s) < 10:
        return SideEvents(side, src, empty, empty, empty)
    rate_hz = 1.0 / float(np.median(np.diff(t_s)))
    wf = _lowpass(np.nan_to_num(w), rate_hz, cfg.lowpass_hz)
    inverted = False
    if cfg.auto_sign:
        hi, lo = np.percentile(wf, [99.0, 1.0])
        if -lo > 1.5 * max(hi, 0.0):
            wf = -wf
            inverted = True
    # the shank's IC/TO minima and the thigh's heel-strike jolt are searched on a lightly filtered
    # signal (sharp contact features kept, sensor noise removed), as published for the shank; the
    # swing peaks on the low-passed one
    wm = wf
    wants_wm = segment == "shank" or cfg.thigh_impact_min_sharpness is not None
    if cfg.minima_lowpass_hz is not None and wants_wm:
        wm = _lowpass(np.nan_to_num(w), rate_hz, cfg.minima_lowpass_hz)
        if inverted:
            wm = -wm
    min_peak = cfg.swing_peak_min_rad_s * (1.0 if segment == "shank" else 0.5)
    dist = max(1, int(0.6 * cfg.min_stride_s * rate_hz))
    width = None
    if segment == "thigh" and cfg.thigh_swing_min_width_s is not None:
        width = cfg.thigh_swing_min_width_s * rate_hz  # a swing, not a jolt's rebound
    peaks, _ = find_peaks(wf, height=min_peak, distance=dist, prominence=min_peak, width=width)
    if segment == "shank":
        # the thigh rule's zero crossings are shifted while the posture ramps from standing to
        # walking, so a weak bout-end thigh swing gives a wrong IC: shank only
        peaks = _bout_end_swings(wf, peaks, dist, rate_hz, cfg)
    first = np.zeros(0)
    if segment == "thigh":
        ic, to, first = _thigh_events(t_s, wf, wm, peaks, rate_hz, cfg)
    else:
        ic, to = _shank_events(t_s, wf, wm, peaks, rate_hz, cfg)
    # physiological constraint: one IC (one TO) per same-side stride of >= 0.7 s
    ic, to, rejected = _constrain(t_s, wf, np.sort(ic), np.sort(to), cfg)
    first = first[np.isin(first, ic)]
    return SideEvents(
        side,
        src,
        ic,
        to,
        t_s[peaks].astype(np.float64),
        inverted,
        bout_start_ic_s=first,
        rejected=rejected,
    )


def _constrain(
    t_s: FloatArray, wf: FloatArray, ic: FloatArray, to: FloatArray, cfg: EventConfig
) -> tuple[FloatArray, FloatArray, dict[str, int]]:
    """IC and TO candidates closer than ``candidate_min_stride_s`` to the previous accepted one
    are dropped, the one with the larger swing kept (:mod:`._constraints`); counts returned."""
    gap = cfg.candidate_min_stride_s
    ic_k, _, n_ic = reject_close_candidates(ic, swing_support(t_s, wf, ic, cfg.max_stride_s), gap)
    to_k, _, n_to = reject_close_candidates(
        to, swing_support(t_s, wf, to, cfg.max_stride_s, after=True), gap
    )
    return ic_k, to_k, {"ic_too_close": n_ic, "to_too_close": n_to}
