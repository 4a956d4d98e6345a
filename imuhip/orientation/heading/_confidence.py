"""Transverse confidence: how well the pelvis–thigh relative heading is known, per sample."""

from __future__ import annotations

import numpy as np

from imuhip.orientation import _heading_kernels as _kq
from imuhip.orientation.heading._config import VENDOR_HEADING_KEY, FloatArray, HeadingConfig
from imuhip.orientation.heading._magnetic import _mag_field_quality
from imuhip.orientation.heading._walking_axis import HeadingCorrection
from imuhip.types import OrientationSession

__all__ = ["transverse_confidence", "vendor_heading_anchored"]


def vendor_heading_anchored(ori: OrientationSession, placement: str) -> bool:
    """True when a vendor import says its fusion referenced ``placement``'s heading to the
    magnetometer on every sample (``diagnostics[placement][VENDOR_HEADING_KEY]``)."""
    flag = ori.diagnostics.get(placement, {}).get(VENDOR_HEADING_KEY)
    return (
        ori.source.startswith("vendor:")
        and flag is not None
        and len(flag) == len(ori.t_s)
        and bool(np.all(flag))
    )


def transverse_confidence(
    ori: OrientationSession,
    corrections: dict[str, HeadingCorrection] | None = None,
    cfg: HeadingConfig | None = None,
    ref_window: tuple[int, int] | None = None,
) -> tuple[FloatArray, tuple[str, ...]]:
    """How well the pelvis–thigh relative heading is known, per sample, and why.

    Parameters
    ----------
    ori : OrientationSession
    corrections : dict, optional
        6D walking-axis corrections per thigh placement (:func:`correct_thigh_heading`).
    cfg : HeadingConfig, optional
    ref_window : (start_idx, stop_idx), optional
        Magnetic reference window (e.g. the static calibration window).

    Returns
    -------
    confidence : (M,) float in [0, 1]
        Minimum over the thighs (and pelvis): 1 with a clean magnetometer on every involved sensor;
        decaying with ``mag_hold_tau_s`` after a disturbance; 6D: the correction's confidence
        (anchored value decaying away from anchors); ``vendor_anchored_confidence`` for a vendor
        orientation referenced to the magnetometer by the vendor (field not available); 0
        without any heading anchor.
    reasons : tuple of str
    """
    return _transverse_confidence(
        ori, {p: c.confidence for p, c in (corrections or {}).items()}, cfg, ref_window
    )


def _transverse_confidence(
    ori: OrientationSession,
    anchor_conf: dict[str, FloatArray],
    cfg: HeadingConfig | None = None,
    ref_window: tuple[int, int] | None = None,
) -> tuple[FloatArray, tuple[str, ...]]:
    """:func:`transverse_confidence` from the corrections' confidences only (``(M,)`` each)."""
    cfg = cfg or HeadingConfig()
    m = len(ori.t_s)
    conf = np.ones(m)
    scratch: FloatArray | None = None
    reasons: list[str] = []
    involved = [p for p in ("pelvis", "thigh_l", "thigh_r") if p in ori.q_world_sensor]
    for p in involved:
        if p in anchor_conf:
            np.minimum(conf, anchor_conf[p], out=conf)
            continue
        mag = ori.mag_ut.get(p)
        if mag is None and vendor_heading_anchored(ori, p):
            np.minimum(conf, cfg.vendor_anchored_confidence, out=conf)
            reasons.append(
                f"{p}: heading from the vendor's magnetometer-referenced fusion ({ori.source}); "
                f"the field itself is not in the file, so disturbances cannot be checked "
                f"(confidence {cfg.vendor_anchored_confidence:g})"
            )
            continue
        if mag is None:
            if p == "pelvis":
                continue  # 6D pelvis: the thighs' heading is judged relative to it
            conf = np.zeros(m)
            reasons.append(f"6D: {p} heading not anchored (no magnetometer, no correction)")
            continue
        if scratch is None:
            scratch = np.empty((3, m))
        mq = _mag_field_quality(ori.q_world_sensor[p], mag, ref_window, cfg, scratch)
        clean = mq.clean & np.asarray(ori.valid[p], bool)
        if np.all(clean):
            continue
        # held by the gyroscope since the last clean sample: 0.9 exp(-since_s / tau); clean
        # samples hold 1 (no update of a confidence <= 1), so only the others are touched
        idx, c = _kq.hold_args(clean, float(ori.rate_hz), float(cfg.mag_hold_tau_s))
        np.exp(c, out=c)
        c *= 0.9
        conf[idx] = np.minimum(conf[idx], c)
        # report disturbances, bridging flickers shorter than 0.5 s (binary closing, 1-D)
        gap = max(1, round(0.5 * ori.rate_hz))
        t_s = np.asarray(ori.t_s)
        for a, b in zip(*_kq.disturbed_runs(clean, gap), strict=True):
            reasons.append(
                f"magnetic disturbance on {p} {float(t_s[a]):.1f}-{float(t_s[b - 1]):.1f} s"
            )
    return np.clip(conf, 0.0, 1.0), tuple(reasons)
