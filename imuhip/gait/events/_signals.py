"""The signals the rules read: segment angular velocity, pelvis heading, filters."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_conj, quat_mul, quat_rotate, to_rotation
from imuhip.dsp import butter_lowpass, filtfilt, filtfilt_padlen
from imuhip.gait.events._config import FloatArray
from imuhip.types import OrientationSession, SegmentCalibration

__all__ = ["pelvis_heading_rad", "segment_angular_velocity"]


def segment_angular_velocity(
    ori: OrientationSession, segcal: SegmentCalibration | None, placement: str
) -> tuple[FloatArray, str]:
    """Angular velocity of a segment in its own (ISB) frame.

    Parameters
    ----------
    ori : OrientationSession
    segcal : SegmentCalibration or None
        Sensor-to-segment rotations; without one (or without ``placement`` in it) the sensor frame
        is used as is.
    placement : str

    Returns
    -------
    omega_rad_s : (M, 3) float64
        Segment-frame angular velocity. From the gyroscope when present, else differentiated from
        the orientations (central difference, ``conj(q[k-1]) ⊗ q[k+1]``).
    kind : str
        ``"gyro"`` or ``"orientation"``.
    """
    q_ss = None
    if segcal is not None and placement in segcal.q_sensor_segment:
        q_ss = np.asarray(segcal.q_sensor_segment[placement], dtype=np.float64)
    gyr = ori.gyr_rad_s.get(placement)
    if gyr is not None:
        omega = np.asarray(gyr, dtype=np.float64)
        kind = "gyro"
        if q_ss is not None:
            # ω_segment = conj(q_sensor_segment) ω_sensor q_sensor_segment
            omega = quat_rotate(quat_conj(q_ss), omega)
        return omega, kind
    q = ori.q_world_sensor[placement]
    if q_ss is not None:
        q = quat_mul(q, q_ss)
    m = len(q)
    omega = np.zeros((m, 3))
    if m >= 3:
        dq = quat_mul(quat_conj(q[:-2]), q[2:])
        omega[1:-1] = to_rotation(dq).as_rotvec() * (ori.rate_hz / 2.0)
        omega[0] = omega[1]
        omega[-1] = omega[-2]
    return omega, "orientation"


def pelvis_heading_rad(
    ori: OrientationSession, segcal: SegmentCalibration | None, placement: str = "pelvis"
) -> FloatArray:
    """Unwrapped heading (yaw about world up) of the pelvis segment X axis, rad, shape ``(M,)``."""
    q = ori.q_world_sensor[placement]
    if segcal is not None and placement in segcal.q_sensor_segment:
        q = quat_mul(q, segcal.q_sensor_segment[placement])
    x_world = quat_rotate(q, np.array([1.0, 0.0, 0.0]))
    return np.unwrap(np.arctan2(x_world[:, 1], x_world[:, 0]))


def _lowpass(x: FloatArray, rate_hz: float, cutoff_hz: float) -> FloatArray:
    wn = min(cutoff_hz / (rate_hz / 2.0), 0.95)
    b, a = butter_lowpass(4, wn)
    if len(x) <= filtfilt_padlen(b, a):
        return x.copy()
    return np.asarray(filtfilt(b, a, x), dtype=np.float64)


def _local_minima(x: FloatArray) -> npt.NDArray[np.int64]:
    return np.flatnonzero((x[1:-1] < x[:-2]) & (x[1:-1] <= x[2:])) + 1
