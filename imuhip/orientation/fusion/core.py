"""``estimate_orientation``: one entry point over vqf (offline and online) and the ahrs filters.

References
----------
vqf: D. Laidig, T. Seel. "VQF: Highly Accurate IMU Orientation Estimation with Bias Estimation
and Magnetic Disturbance Rejection." Information Fusion 91, 2023, doi:10.1016/j.inffus.2022.10.014.
ahrs filters: see :mod:`imuhip.orientation.fusion._ahrs`.
"""

from __future__ import annotations

import logging

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_normalize, quat_rotate
from imuhip.ingest._align_kernels import normalize_rows_inplace
from imuhip.orientation.fusion import _ahrs
from imuhip.orientation.fusion._inputs import check_inputs, fill_invalid
from imuhip.orientation.fusion._types import (
    FilterParams,
    FusionResult,
    canonical_method,
    vqf_params,
)

__all__ = ["estimate_orientation", "estimate_orientation_full", "vqf_params"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Magnetic disturbance flags for filters without their own detector (same thresholds as vqf's
# defaults: 10 % field-norm change, 10° dip change, against the recording's median field).
_MAG_NORM_TOL = 0.1
_MAG_DIP_TOL_RAD = np.radians(10.0)


def estimate_orientation(
    acc_m_s2: npt.ArrayLike,
    gyr_rad_s: npt.ArrayLike,
    mag_ut: npt.ArrayLike | None = None,
    *,
    rate_hz: float,
    method: str = "vqf",
    valid: npt.ArrayLike | None = None,
    params: FilterParams | None = None,
) -> FloatArray:
    """Orientation of one IMU: ``q_world_sensor``, shape (N, 4), scalar-first, world ENU.

    The plain call returns only the quaternions; :func:`estimate_orientation_full` returns the
    same quaternions plus diagnostics (rest, magnetic disturbance, gyroscope bias, valid mask).

    Parameters
    ----------
    acc_m_s2 : array_like, (N, 3)
        Accelerometer, m/s² (specific force: +9.81 along the sensor's up axis at rest), sensor
        frame.
    gyr_rad_s : array_like, (N, 3)
        Gyroscope, rad/s, sensor frame.
    mag_ut : array_like, (N, 3), optional
        Magnetometer, µT, sensor frame. Given: 9D (absolute heading, x east / y north);
        omitted: 6D (heading relative to the start).
    rate_hz : float
        Fixed sampling rate. Irregular data must first go through
        :func:`imuhip.orientation.fusion.resample_to_grid` (or the session aligner).
    method : str
        ``"vqf"`` (= ``"vqf_offline"``, default, acausal: for recordings), ``"vqf_online"``
        (causal, equals :class:`imuhip.orientation.fusion.OnlineFusion` run in chunks),
        ``"madgwick"``,
        ``"mahony"``, ``"ekf"`` (the ahrs library, frames converted).
    valid : array_like of bool, (N,), optional
        Missing rows (False) may hold NaN; they are filled (interpolated offline, held online)
        before filtering and stay flagged in the full result.
    params : FilterParams, optional
        Filter tuning; ``None`` uses the defaults.

    Returns
    -------
    q_world_sensor : (N, 4) float64

    Raises
    ------
    ValueError
        Wrong shapes, a non-finite row without ``valid`` (naming the argument and row), a bad
        rate, or data that looks like the wrong unit (g, deg/s, mT, nT).
    """
    return estimate_orientation_full(
        acc_m_s2, gyr_rad_s, mag_ut, rate_hz=rate_hz, method=method, valid=valid, params=params
    ).q_world_sensor


def estimate_orientation_full(
    acc_m_s2: npt.ArrayLike,
    gyr_rad_s: npt.ArrayLike,
    mag_ut: npt.ArrayLike | None = None,
    *,
    rate_hz: float,
    method: str = "vqf",
    valid: npt.ArrayLike | None = None,
    params: FilterParams | None = None,
) -> FusionResult:
    """Like :func:`estimate_orientation` but returns a :class:`FusionResult` with diagnostics.

    Diagnostics: vqf reports its own rest detection, magnetic disturbance detection and bias
    estimate. For the ahrs filters rest comes from
    :func:`imuhip.orientation.sensor_calibration.detect_still`,
    magnetic disturbance from the field norm and dip deviating from the recording's median
    (10 %, 10°), and the bias is ``None`` (they do not estimate it, or do not expose it).
    """
    m = canonical_method(method)
    p = FilterParams() if params is None else params
    if not isinstance(p, FilterParams):
        raise TypeError(f"params must be FilterParams or None, got {type(p).__name__}")
    if m == "vqf_online":
        from imuhip.orientation.fusion.online import OnlineFusion

        online = OnlineFusion(rate_hz=rate_hz, use_mag=mag_ut is not None, params=p)
        return online.update(acc_m_s2, gyr_rad_s, mag_ut, valid=valid)

    acc, gyr, mag, mask = check_inputs(acc_m_s2, gyr_rad_s, mag_ut, rate_hz, valid)
    n = len(acc)
    if mask is None:
        mask = np.ones(n, dtype=bool)
    elif not mask.all():  # every row valid: nothing to fill, the filters only read the arrays
        acc = fill_invalid(acc, mask, "interp")
        gyr = fill_invalid(gyr, mask, "interp")
        mag = None if mag is None else fill_invalid(mag, mask, "interp")

    if m == "vqf_offline":
        return _run_vqf_offline(acc, gyr, mag, float(rate_hz), p, mask)

    runner = {"madgwick": _ahrs.run_madgwick, "mahony": _ahrs.run_mahony, "ekf": _ahrs.run_ekf}[m]
    q = runner(acc, gyr, mag, float(rate_hz), p)
    # imported here: only these filters need sensor_calibration (and its fitting modules)
    from imuhip.orientation.sensor_calibration import detect_still

    rest = detect_still(gyr, acc, float(rate_hz))
    disturbed = None if mag is None else _mag_disturbed(q, mag)
    return FusionResult(
        q_world_sensor=q,
        valid=mask,
        rest=rest,
        mag_disturbed=disturbed,
        gyr_bias_rad_s=None,
        method=m,
        uses_mag=mag is not None,
    )


def _run_vqf_offline(
    acc: FloatArray,
    gyr: FloatArray,
    mag: FloatArray | None,
    rate_hz: float,
    p: FilterParams,
    mask: BoolArray,
) -> FusionResult:
    from vqf import offlineVQF

    out = offlineVQF(
        np.ascontiguousarray(gyr),
        np.ascontiguousarray(acc),
        None if mag is None else np.ascontiguousarray(mag),
        1.0 / rate_hz,
        vqf_params(p),
    )
    q = out["quat6D"] if mag is None else out["quat9D"]
    return FusionResult(
        q_world_sensor=_normalized(q),
        valid=mask,
        rest=np.asarray(out["restDetected"], dtype=bool),
        mag_disturbed=None if mag is None else np.asarray(out["magDistDetected"], dtype=bool),
        gyr_bias_rad_s=np.asarray(out["bias"], dtype=np.float64),
        method="vqf_offline",
        uses_mag=mag is not None,
    )


def _normalized(q: npt.ArrayLike) -> FloatArray:
    """``quat_normalize(q)``, in place when ``q`` is a fresh float64 array (the filter's output).

    Same sums and divisions per row (:func:`imuhip.ingest._align_kernels.normalize_rows_inplace`),
    so
    the same values, without another ``(N, 4)`` array.
    """
    arr = np.asarray(q)
    if arr.dtype != np.float64 or arr.ndim != 2 or arr.shape[1] != 4:
        return quat_normalize(np.asarray(q, dtype=np.float64))
    if not (arr.flags.c_contiguous and arr.flags.writeable):
        arr = np.array(arr, dtype=np.float64, order="C")
    if not normalize_rows_inplace(arr):
        raise ValueError("quaternion must be finite and non-zero")
    return arr


def _mag_disturbed(q_world_sensor: FloatArray, mag_ut: FloatArray) -> BoolArray:
    """Flag samples whose field norm or dip differs from the recording's median field."""
    m_world = quat_rotate(q_world_sensor, mag_ut)
    norm = np.linalg.norm(m_world, axis=1)
    dip = np.arctan2(-m_world[:, 2], np.hypot(m_world[:, 0], m_world[:, 1]))
    ref_norm = float(np.median(norm))
    ref_dip = float(np.median(dip))
    bad_norm = np.abs(norm - ref_norm) > _MAG_NORM_TOL * ref_norm
    bad_dip = np.abs(dip - ref_dip) > _MAG_DIP_TOL_RAD
    return np.asarray(bad_norm | bad_dip, dtype=bool)
