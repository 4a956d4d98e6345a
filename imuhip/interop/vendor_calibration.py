"""Sensor-to-segment calibration for vendor-orientation imports (OpenSense's IMU Placer rule).

Orientation-only imports have no gyroscope, and a trial like OpenSense's walks a loop, so the
functional (flexion-axis) calibration of :mod:`imuhip.segment_calibration` has nothing straight
to work from. OpenSense's IMU Placer (Al Borno et al. 2022, doi:10.1186/s12984-022-01001-x)
instead assumes the subject stands in the model's default pose at the calibration time: every
segment frame is then aligned with one body heading frame, Y up and X forward, where forward is
one axis of a base sensor (``base_imu_label`` pelvis_imu, ``base_heading_axis`` -z in the
OpenSense example). This module applies the same rule in imuhip's ISB frames::

    H = [X forward (horizontal part of the base sensor axis), Y up, Z = X × Y (right)]
    q_sensor_segment[p] = conj(q_world_sensor[p](static)) ⊗ q_world_H

averaged over a still window (all sensors still: accelerometer std and the angular speed
differentiated from the vendor orientation below thresholds). Joint angles are then zero in the
standing pose, as in OpenSense.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import numpy as np
from scipy.ndimage import uniform_filter1d

from imuhip.conventions import from_rotation, quat_conj, quat_mul, quat_positive_w, quat_rotate
from imuhip.conventions import to_rotation as _to_rotation
from imuhip.errors import CalibrationError
from imuhip.interop._common import FloatArray
from imuhip.types import OrientationSession, SegmentCalibration

__all__ = ["angular_velocity_from_orientation", "assumed_pose_calibration", "find_still_window"]

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
        mean = uniform_filter1d(acc, n_win, axis=0, mode="nearest")
        var = uniform_filter1d(acc * acc, n_win, axis=0, mode="nearest") - mean * mean
        still &= np.all(np.sqrt(np.maximum(var, 0.0)) < max_acc_std_m_s2, axis=1)
        gyr = ori.gyr_rad_s.get(p)
        om = gyr if gyr is not None else angular_velocity_from_orientation(q, ori.rate_hz)
        speed = uniform_filter1d(np.linalg.norm(om, axis=1), n_win, mode="nearest")
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


def assumed_pose_calibration(
    ori: OrientationSession,
    *,
    static_window: tuple[int, int] | None = None,
    base_placement: str = "pelvis",
    base_heading_axis: str = "-z",
    placements: Sequence[str] | None = None,
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
        That axis in the sensor frame: ``"x"``, ``"-x"``, ``"y"``, ``"-y"``, ``"z"``, ``"-z"``.

    Returns
    -------
    SegmentCalibration
        ``method`` ``"assumed_pose"`` for every placement; ``quality`` holds the static window
        and the tilt of the base axis from horizontal (``base_axis_tilt_rad``).

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
    x = horiz / np.linalg.norm(horiz)
    y = np.array([0.0, 0.0, 1.0])
    z = np.cross(x, y)
    from scipy.spatial.transform import Rotation

    q_world_h = from_rotation(Rotation.from_matrix(np.stack([x, y, z], axis=1)))
    chosen = list(placements) if placements is not None else list(ori.q_world_sensor)
    q_ss: dict[str, FloatArray] = {}
    quality: dict[str, dict[str, float]] = {}
    for p in chosen:
        q_ss[p] = np.asarray(quat_positive_w(quat_mul(quat_conj(mean_q(p)), q_world_h)))
        quality[p] = {"static_start_s": a / ori.rate_hz, "static_stop_s": b / ori.rate_hz}
    quality[base_placement]["base_axis_tilt_rad"] = tilt
    return SegmentCalibration(
        q_sensor_segment=q_ss,
        method=dict.fromkeys(chosen, "assumed_pose"),
        quality=quality,
        warnings=(
            "segment frames assumed aligned with the body heading frame in the static pose "
            f"({a / ori.rate_hz:.2f}-{b / ori.rate_hz:.2f} s; OpenSense IMU Placer rule, "
            f"forward = {base_placement} {base_heading_axis}): absolute angles are relative to "
            "that pose",
        ),
    )
