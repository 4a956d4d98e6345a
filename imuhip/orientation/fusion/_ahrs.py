"""Adapters for the ``ahrs`` (0.4) filters: frames, units and quirks converted in one place.

Measured frame behaviour of ahrs 0.4.0 with specific-force accelerometer input (m/s², +g up at
rest), checked against BROAD's optical reference (``tests/unit/orientation/test_fusion.py``):

============ ===================================== =========================================
filter       9D output world frame                  conversion to ENU
============ ===================================== =========================================
Madgwick     NWU (x north, y west, z up)           ``q_enu = q_ENU_NWU ⊗ q`` (+90° about z)
Mahony       ENU                                   none
EKF          NWU when run with ``frame="NED"``     ``q_enu = q_ENU_NWU ⊗ q``
============ ===================================== =========================================

ahrs' EKF with ``frame="ENU"`` expects the accelerometer's sign and the dip sign in a way that
does not converge on real data (≈ 23° RMSE on BROAD trial 02 in every sign combination), so the
adapter runs its ``"NED"`` mode, whose dip convention (``magnetic_ref`` = signed angle between the
accelerometer's up and the field, negative in the northern hemisphere) is documented below.
In 6D the three filters start at ``acc2q`` (heading 0) in a z-up frame, like vqf, so no
conversion is applied: the 6D heading is relative anyway.

Quirk: Madgwick and Mahony skip the *whole* update (including the accelerometer correction)
when the gyroscope reads exactly ``[0, 0, 0]``, which quantised sensors at rest do. Such rows are
nudged to 1e-12 rad/s on x (far below any sensor's resolution) so the correction keeps running.

References
----------
Madgwick, Harrison, Vaidyanathan 2011, doi:10.1109/ICORR.2011.5975346.
Mahony, Hamel, Pflimlin 2008, doi:10.1109/TAC.2008.923738.
Quaternion EKF after Sabatini 2011 (Sensors 11(2), doi:10.3390/s110201489), as implemented in
ahrs 0.4 (github.com/Mayitzin/ahrs).
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_mul, quat_normalize
from imuhip.orientation.fusion._types import FilterParams

__all__ = ["Q_ENU_NWU", "estimate_dip_rad", "run_ekf", "run_madgwick", "run_mahony"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

Q_ENU_NWU = np.array([np.sqrt(0.5), 0.0, 0.0, np.sqrt(0.5)])
"""Rotation taking NWU-world vectors to ENU: +90° about the shared z (up) axis."""

_GYR_NUDGE_RAD_S = 1e-12


def _nudge_zero_gyro(gyr: FloatArray) -> FloatArray:
    zero = ~np.any(gyr != 0.0, axis=1)
    if not zero.any():
        return gyr
    out = gyr.copy()
    out[zero, 0] = _GYR_NUDGE_RAD_S
    return out


def estimate_dip_rad(acc_m_s2: FloatArray, mag_ut: FloatArray) -> float:
    """Magnetic dip from the data: median angle of the field below the accelerometer's horizon.

    Positive in the northern hemisphere (field points down). Uses every sample, so it is
    robust to short disturbances; accelerations during motion average out in the median.
    """
    a = acc_m_s2 / np.linalg.norm(acc_m_s2, axis=1, keepdims=True)
    m = mag_ut / np.linalg.norm(mag_ut, axis=1, keepdims=True)
    return float(-np.median(np.arcsin(np.clip(np.sum(a * m, axis=1), -1.0, 1.0))))


def run_madgwick(
    acc: FloatArray, gyr: FloatArray, mag: FloatArray | None, rate_hz: float, p: FilterParams
) -> FloatArray:
    """ahrs Madgwick, output converted to ENU (9D) — see the module docstring."""
    from ahrs.filters import Madgwick

    kw: dict[str, float] = {"frequency": float(rate_hz)}
    if p.madgwick_gain is not None:
        kw["gain"] = float(p.madgwick_gain)
    q = Madgwick(gyr=_nudge_zero_gyro(gyr), acc=acc, mag=mag, **kw).Q
    if mag is not None:
        q = quat_mul(Q_ENU_NWU, q)
    return quat_normalize(q)


def run_mahony(
    acc: FloatArray, gyr: FloatArray, mag: FloatArray | None, rate_hz: float, p: FilterParams
) -> FloatArray:
    """ahrs Mahony (already ENU)."""
    from ahrs.filters import Mahony

    q = Mahony(
        gyr=_nudge_zero_gyro(gyr),
        acc=acc,
        mag=mag,
        frequency=float(rate_hz),
        k_P=float(p.mahony_k_p),
        k_I=float(p.mahony_k_i),
    ).Q
    return quat_normalize(q)


def run_ekf(
    acc: FloatArray, gyr: FloatArray, mag: FloatArray | None, rate_hz: float, p: FilterParams
) -> FloatArray:
    """ahrs EKF in its ``"NED"`` mode with the dip from the data, converted to ENU (9D)."""
    from ahrs.filters import EKF

    noises = [float(p.ekf_noise_gyr), float(p.ekf_noise_acc), float(p.ekf_noise_mag)]
    if mag is None:
        q = EKF(gyr=gyr, acc=acc, frequency=float(rate_hz), frame="NED", noises=noises).Q
        return quat_normalize(q)
    dip = estimate_dip_rad(acc, mag) if p.ekf_dip_rad is None else p.ekf_dip_rad
    # ahrs' NED mode builds m_ref = [cos d, 0, sin d]; with z effectively up, d = -dip.
    q = EKF(
        gyr=gyr,
        acc=acc,
        mag=mag,
        frequency=float(rate_hz),
        frame="NED",
        magnetic_ref=float(np.degrees(-dip)),
        noises=noises,
    ).Q
    return quat_normalize(quat_mul(Q_ENU_NWU, q))
