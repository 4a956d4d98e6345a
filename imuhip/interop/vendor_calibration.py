"""Sensor-to-segment calibration for vendor-orientation imports (OpenSense's IMU Placer rule).

Orientation-only imports have no gyroscope, and a trial like OpenSense's walks a loop, so the
functional (flexion-axis) calibration of :mod:`imuhip.orientation.segment_calibration` has little
straight
walking to work from (on the OpenSense trial the principal axis of the thigh's differentiated
angular velocity is its long axis: the turns dominate). OpenSense's IMU Placer (Al Borno et al.
2022, doi:10.1186/s12984-022-01001-x) instead assumes the subject stands in the model's default
pose at the calibration time: every segment frame is then aligned with one body heading frame,
Y up and X forward, where forward is one axis of a base sensor (``base_imu_label`` pelvis_imu,
``base_heading_axis`` ``z`` in the OpenSense example's ``myIMUPlacer_Setup.xml`` for this very
trial). This module applies the same rule in imuhip's ISB frames::

    H = [X forward (horizontal part of the base sensor axis), Y up, Z = X × Y (right)]
    q_sensor_segment[p] = conj(q_world_sensor[p](static)) ⊗ q_world_H

averaged over a still window (all sensors still: accelerometer std and the angular speed
differentiated from the vendor orientation below thresholds). Joint angles are then zero in the
standing pose, as in OpenSense.

The base axis is a claim about how the pelvis sensor was strapped on; a wrong sign walks the
model backwards (every leg segment's mediolateral axis inverted: hip flexion negative in swing,
the knee "hyperextending" by 60°). The walking after the static pose checks it
(:func:`forward_sign_score`) with two anatomical cues that need no walking direction: the shank
swings its distal end forward fast in swing (Aminian et al. 2002,
doi:10.1016/S0021-9290(02)00008-8: the swing peak is the largest lobe of the mediolateral shank
angular velocity), and the knee only flexes (shank distal end backwards relative to the thigh,
tens of degrees in swing, a few degrees of extension at most). When both say "backwards" the
heading frame is turned by 180° about the vertical and a warning says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.spatial.transform import Rotation

from imuhip.conventions import from_rotation, quat_conj, quat_mul, quat_positive_w, quat_rotate
from imuhip.conventions import to_rotation as _to_rotation
from imuhip.dsp import moving_average, moving_std
from imuhip.errors import CalibrationError
from imuhip.interop._common import FloatArray
from imuhip.types import OrientationSession, SegmentCalibration

BoolArray = npt.NDArray[np.bool_]

__all__ = [
    "angular_velocity_from_orientation",
    "assumed_pose_calibration",
    "find_still_window",
    "forward_sign_score",
]

_AXES: Final = {
    "x": [1.0, 0.0, 0.0],
    "y": [0.0, 1.0, 0.0],
    "z": [0.0, 0.0, 1.0],
}


def angular_velocity_from_orientation(q: FloatArray, rate_hz: float) -> FloatArray:
    """Sensor-frame angular velocity ``(M, 3)`` rad/s from orientations ``(M, 4)``.

    Central difference ``rotvec(conj(q[k-1]) ⊗ q[k+1]) * rate / 2``; ends copy their neighbour.
    """
    m = len(q)
    om = np.zeros((m, 3))
    if m >= 3:
        dq = quat_mul(quat_conj(q[:-2]), q[2:])
        om[1:-1] = _to_rotation(dq).as_rotvec() * (rate_hz / 2.0)
        om[0], om[-1] = om[1], om[-2]
    return om


def find_still_window(
    ori: OrientationSession,
    *,
    min_still_s: float = 1.0,
    max_acc_std_m_s2: float = 0.25,
    max_speed_rad_s: float = 0.12,
) -> tuple[int, int]:
    """First half-open sample range of at least ``min_still_s`` where every sensor is still."""
    n_win = max(3, round(0.5 * ori.rate_hz))
    still = np.ones(len(ori.t_s), dtype=bool)
    for p, q in ori.q_world_sensor.items():
        acc = ori.acc_m_s2[p]
        still &= np.all(moving_std(acc, n_win, axis=0) < max_acc_std_m_s2, axis=1)
        gyr = ori.gyr_rad_s.get(p)
        om = gyr if gyr is not None else angular_velocity_from_orientation(q, ori.rate_hz)
        speed = moving_average(np.linalg.norm(om, axis=1), n_win)
        still &= (speed < max_speed_rad_s) & np.asarray(ori.valid[p], bool)
    need = round(min_still_s * ori.rate_hz)
    d = np.diff(np.concatenate([[0], still.astype(np.int8), [0]]))
    for a, b in zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True):
        if b - a >= need:
            return int(a), int(b)
    raise CalibrationError(
        f"no still period of {min_still_s:g} s in which all sensors "
        f"({', '.join(sorted(ori.q_world_sensor))}) are still: give the static pose time "
        "(--static-s START:STOP)"
    )


def _lobe_balance(x: FloatArray) -> float | None:
    """(p99 + p1) / (p99 − p1) in [-1, 1]: + when the positive lobe is the larger one."""
    if len(x) < 10:
        return None
    lo, hi = np.percentile(x, [1.0, 99.0])
    span = float(hi - lo)
    return float((hi + lo) / span) if span > 1e-9 else None


def forward_sign_score(
    ori: OrientationSession,
    q_sensor_segment: dict[str, FloatArray],
    moving: npt.NDArray[np.bool_],
) -> tuple[float | None, dict[str, float]]:
    """Whether the segment frames' X axes point forward, from the walking itself.

    Parameters
    ----------
    ori : OrientationSession
    q_sensor_segment : dict
        Candidate sensor-to-segment rotations (ISB: X anterior, Y up, Z right).
    moving : (M,) bool
        Samples of walking to judge (not the static pose).

    Returns
    -------
    score : float or None
        Mean of the cues in [-1, 1]: + = X anterior (Z right), − = the frames are reversed;
        ``None`` without a leg segment or walking.
    cues : dict
        ``shank_l_swing``, ``knee_l_flexion`` (and ``_r``), each in [-1, 1]:
        the lobe balance of the shank's angular velocity about its Z axis (swing forward is the
        large positive lobe) and of minus the knee angle about the thigh Z axis (flexion, distal
        end backwards, is the large lobe; extension stays within a few degrees).
    """
    cues: dict[str, float] = {}
    q_seg: dict[str, FloatArray] = {
        p: quat_mul(ori.q_world_sensor[p], q_sensor_segment[p])
        for p in ("thigh_l", "thigh_r", "shank_l", "shank_r")
        if p in ori.q_world_sensor and p in q_sensor_segment
    }
    for s in ("l", "r"):
        shank, thigh = q_seg.get(f"shank_{s}"), q_seg.get(f"thigh_{s}")
        ok = moving & np.asarray(ori.valid.get(f"shank_{s}", moving), bool)
        if shank is not None:
            om = angular_velocity_from_orientation(shank, ori.rate_hz)[:, 2]
            c = _lobe_balance(om[ok])
            if c is not None:
                cues[f"shank_{s}_swing"] = c
        if shank is not None and thigh is not None:
            ok &= np.asarray(ori.valid[f"thigh_{s}"], bool)
            knee = _to_rotation(quat_mul(quat_conj(thigh), shank)).as_rotvec()[:, 2]
            c = _lobe_balance(-knee[ok])
            if c is not None:
                cues[f"knee_{s}_flexion"] = c
    if not cues:
        return None, cues
    return float(np.mean(list(cues.values()))), cues


def _moving_after(ori: OrientationSession, stop_idx: int, min_speed_rad_s: float) -> BoolArray:
    """Samples after ``stop_idx`` where some leg sensor turns faster than ``min_speed_rad_s``."""
    m = len(ori.t_s)
    moving = np.zeros(m, dtype=bool)
    size = max(3, round(1.0 * ori.rate_hz))
    for p in ("thigh_l", "thigh_r", "shank_l", "shank_r"):
        if p not in ori.q_world_sensor:
            continue
        gyr = ori.gyr_rad_s.get(p)
        om = (
            gyr
            if gyr is not None
            else angular_velocity_from_orientation(ori.q_world_sensor[p], ori.rate_hz)
        )
        speed = moving_average(np.linalg.norm(om, axis=1), size)
        moving |= speed > min_speed_rad_s
    moving[:stop_idx] = False
    return moving


def assumed_pose_calibration(
    ori: OrientationSession,
    *,
    static_window: tuple[int, int] | None = None,
    base_placement: str = "pelvis",
    base_heading_axis: str = "z",
    placements: Sequence[str] | None = None,
    check_forward_with_walking: bool = True,
    min_walking_s: float = 2.0,
    min_sign_score: float = 0.2,
) -> SegmentCalibration:
    """Segment frames = the body heading frame during the static pose (OpenSense's IMU Placer).

    Parameters
    ----------
    ori : OrientationSession
        Vendor orientations (world ENU).
    static_window : (start_idx, stop_idx), optional
        Standing still in the default pose; found with :func:`find_still_window` if omitted.
    base_placement : str
        Sensor whose axis gives the forward direction.
    base_heading_axis : str
        That axis in the sensor frame: ``"x"``, ``"-x"``, ``"y"``, ``"-y"``, ``"z"``, ``"-z"``
        (``"z"``: OpenSense's example setup for its Xsens trial, pelvis sensor on the sacrum).
    placements : sequence of str, optional
        Placements to calibrate (default all).
    check_forward_with_walking : bool
        Check the forward sign with :func:`forward_sign_score` on the walking after the static
        pose (at least ``min_walking_s`` of leg movement faster than 1 rad/s); when the score is
        below ``-min_sign_score`` the heading frame is turned by 180° about the vertical (and a
        warning says so), unless the cues disagree in sign (then the axis is likely off by about
        90°: a warning, no change); between ``±min_sign_score`` a warning says the cues are weak.

    Returns
    -------
    SegmentCalibration
        ``method`` ``"assumed_pose"`` for every placement; ``quality`` holds the static window,
        the tilt of the base axis from horizontal (``base_axis_tilt_rad``) and, when checked, the
        ``forward_sign_score`` and its cues (on the base placement).

    Raises
    ------
    CalibrationError
        No base sensor, a base axis (nearly) vertical, no still window.
    """
    if base_placement not in ori.q_world_sensor:
        raise CalibrationError(f"assumed-pose calibration needs a {base_placement} sensor")
    ax = base_heading_axis.strip().lower()
    sign = -1.0 if ax.startswith("-") else 1.0
    if ax.lstrip("+-") not in _AXES:
        raise ValueError(f"base_heading_axis must be one of x, -x, y, -y, z, -z, got {ax!r}")
    axis = sign * np.array(_AXES[ax.lstrip("+-")])
    a, b = static_window if static_window is not None else find_still_window(ori)
    if not (0 <= a < b <= len(ori.t_s)):
        raise ValueError(f"static_window {(a, b)} outside the session (0, {len(ori.t_s)})")

    def mean_q(p: str) -> FloatArray:
        ok = np.asarray(ori.valid[p][a:b], bool)
        if not ok.any():
            raise CalibrationError(f"{p}: no valid sample in the static window")
        return from_rotation(_to_rotation(ori.q_world_sensor[p][a:b][ok]).mean())

    q_base = mean_q(base_placement)
    fwd = quat_rotate(q_base, axis)
    tilt = float(np.arcsin(np.clip(abs(fwd[2]), 0.0, 1.0)))
    horiz = np.array([fwd[0], fwd[1], 0.0])
    if np.linalg.norm(horiz) < 0.3:
        raise CalibrationError(
            f"{base_placement} axis {base_heading_axis} is nearly vertical in the static pose "
            f"({np.degrees(tilt):.0f}° from horizontal): choose another base_heading_axis"
        )
    chosen = list(placements) if placements is not None else list(ori.q_world_sensor)
    static_q = {p: mean_q(p) for p in chosen}

    def frames(x_fwd: FloatArray) -> dict[str, FloatArray]:
        x = x_fwd / np.linalg.norm(x_fwd)
        y = np.array([0.0, 0.0, 1.0])
        q_world_h = from_rotation(Rotation.from_matrix(np.stack([x, y, np.cross(x, y)], axis=1)))
        return {
            p: np.asarray(quat_positive_w(quat_mul(quat_conj(q), q_world_h)))
            for p, q in static_q.items()
        }

    q_ss = frames(horiz)
    quality: dict[str, dict[str, float]] = {
        p: {"static_start_s": a / ori.rate_hz, "static_stop_s": b / ori.rate_hz} for p in chosen
    }
    if base_placement in quality:
        quality[base_placement]["base_axis_tilt_rad"] = tilt
    warnings = [
        "segment frames assumed aligned with the body heading frame in the static pose "
        f"({a / ori.rate_hz:.2f}-{b / ori.rate_hz:.2f} s; OpenSense IMU Placer rule, "
        f"forward = {base_placement} {base_heading_axis}): absolute angles are relative to "
        "that pose"
    ]
    if check_forward_with_walking:
        moving = _moving_after(ori, b, 1.0)
        score: float | None = None
        cues: dict[str, float] = {}
        if moving.sum() >= min_walking_s * ori.rate_hz:
            score, cues = forward_sign_score(ori, q_ss, moving)
        qb = quality.setdefault(base_placement, {})
        if score is None:
            warnings.append(
                f"forward direction ({base_placement} {base_heading_axis}) not checked: no leg "
                f"sensor or less than {min_walking_s:g} s of walking after the static pose"
            )
        else:
            qb["forward_sign_score"] = score
            qb.update({f"forward_cue_{k}": v for k, v in cues.items()})
            cue_txt = ", ".join(f"{k} {v:+.2f}" for k, v in cues.items())
            mixed = min(cues.values()) < -min_sign_score and max(cues.values()) > min_sign_score
            if mixed:
                warnings.append(
                    f"forward direction ({base_placement} {base_heading_axis}): the walking cues "
                    f"disagree ({cue_txt}); the axis may be off by about 90 degrees - check "
                    "base_heading_axis"
                )
            elif score < -min_sign_score:
                q_ss = frames(-horiz)
                qb["forward_reversed"] = 1.0
                warnings.append(
                    f"the walking says {base_placement} axis {base_heading_axis} points "
                    f"backwards (score {score:+.2f}: {cue_txt}); forward reversed - next time "
                    f"give the opposite base heading axis"
                )
            elif score < min_sign_score:
                warnings.append(
                    f"forward direction ({base_placement} {base_heading_axis}) weakly "
                    f"supported by the walking (score {score:+.2f}: {cue_txt}); check that hip "
                    "flexion is positive in swing"
                )
    return SegmentCalibration(
        q_sensor_segment=q_ss,
        method=dict.fromkeys(chosen, "assumed_pose"),
        quality=quality,
        warnings=tuple(warnings),
    )
