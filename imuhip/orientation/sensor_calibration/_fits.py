"""Still detection and the three fits (gyro bias, accelerometer six-position, mag ellipsoid).

See :mod:`imuhip.orientation.sensor_calibration` for the models and references.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.conventions import GRAVITY_M_S2
from imuhip.dsp import moving_average, moving_std
from imuhip.errors import CalibrationError

__all__ = [
    "AccFit",
    "GyroBiasFit",
    "MagFit",
    "detect_still",
    "estimate_gyro_bias",
    "fit_mag_ellipsoid",
    "six_position_calibration",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# ---------------------------------------------------------------------------------------------
# Still periods
# ---------------------------------------------------------------------------------------------


def detect_still(
    gyr_rad_s: npt.ArrayLike,
    acc_m_s2: npt.ArrayLike,
    rate_hz: float,
    *,
    window_s: float = 1.0,
    gyr_std_max_rad_s: float = 0.03,
    acc_std_max_m_s2: float = 0.15,
    gyr_mean_max_rad_s: float = 0.25,
    min_duration_s: float = 1.0,
) -> BoolArray:
    """Samples at rest: low gyroscope and accelerometer variability over a centred window.

    A constant gyroscope bias does not prevent detection (the *standard deviation* is tested);
    a slow steady rotation does, because the accelerometer then changes within the window.

    Parameters
    ----------
    gyr_rad_s, acc_m_s2 : array_like, (N, 3), sensor frame
    rate_hz : float
    window_s : float
        Centred window for the moving mean / standard deviation.
    gyr_std_max_rad_s, acc_std_max_m_s2 : float
        Largest per-axis moving standard deviation counted as still.
    gyr_mean_max_rad_s : float
        Largest moving-mean gyroscope norm counted as still (a bias above ≈ 14°/s is a fault).
    min_duration_s : float
        Still runs shorter than this are discarded.

    Returns
    -------
    (N,) bool
    """
    gyr = np.asarray(gyr_rad_s, dtype=np.float64)
    acc = np.asarray(acc_m_s2, dtype=np.float64)
    if gyr.ndim != 2 or gyr.shape[1] != 3:
        raise ValueError(f"gyr_rad_s must have shape (N, 3), got {gyr.shape}")
    if acc.shape != gyr.shape:
        raise ValueError(f"acc_m_s2 must have shape {gyr.shape}, got {acc.shape}")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be a finite number > 0, got {rate_hz}")
    n = len(gyr)
    if n == 0:
        return np.zeros(0, dtype=bool)
    w = max(3, round(window_s * rate_hz))

    gyr_mean = np.linalg.norm(moving_average(gyr, w, axis=0), axis=1)
    still = (
        (moving_std(gyr, w, axis=0).max(axis=1) <= gyr_std_max_rad_s)
        & (moving_std(acc, w, axis=0).max(axis=1) <= acc_std_max_m_s2)
        & (gyr_mean <= gyr_mean_max_rad_s)
    )
    return _drop_short_runs(still, round(min_duration_s * rate_hz))


def _runs(mask: BoolArray) -> list[tuple[int, int]]:
    """Half-open ``[start, stop)`` runs of True."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


def _drop_short_runs(mask: BoolArray, min_len: int) -> BoolArray:
    out = np.zeros_like(mask, dtype=bool)
    for a, b in _runs(mask):
        if b - a >= min_len:
            out[a:b] = True
    return out


# ---------------------------------------------------------------------------------------------
# Fits
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GyroBiasFit:
    """Gyroscope bias from still periods.

    ``noise_rad_s``: per-axis standard deviation while still (white-noise level);
    ``still_s``: seconds of still data used.
    """

    bias_rad_s: FloatArray  # (3,)
    noise_rad_s: FloatArray  # (3,)
    still_s: float
    still: BoolArray  # (N,)


@dataclass(frozen=True, slots=True)
class AccFit:
    """Six-position accelerometer fit: ``acc = matrix @ (raw - offset_m_s2)``.

    ``poses_m_s2`` are the six raw mean vectors in face order +x, -x, +y, -y, +z, -z;
    ``residual_rms_m_s2`` is the RMS of ``| |acc| - g |`` over all still samples of the poses.
    """

    matrix: FloatArray  # (3, 3)
    offset_m_s2: FloatArray  # (3,)
    poses_m_s2: FloatArray  # (6, 3)
    residual_rms_m_s2: float
    pose_s: FloatArray  # (6,) seconds still per face


@dataclass(frozen=True, slots=True)
class MagFit:
    """Ellipsoid fit: ``mag = soft_iron @ (raw - hard_iron_ut)`` has norm ``field_ut``.

    ``soft_iron`` is symmetric (the rotation part of a soft-iron distortion is unobservable from
    the field norm alone). ``coverage`` is the smallest eigenvalue of the second moment of the
    corrected field directions (1/3 for a full sphere, 0 for a single plane).
    """

    soft_iron: FloatArray  # (3, 3)
    hard_iron_ut: FloatArray  # (3,)
    field_ut: float
    residual_rms_ut: float
    coverage: float
    octants: int


def _check_xyz(name: str, x: npt.ArrayLike, min_rows: int = 1) -> FloatArray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {arr.shape}")
    if len(arr) < min_rows:
        raise CalibrationError(f"{name} has {len(arr)} samples; at least {min_rows} are needed")
    if not np.isfinite(arr).all():
        first = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"{name} has non-finite values, first at row {first}")
    return arr


def estimate_gyro_bias(
    gyr_rad_s: npt.ArrayLike,
    acc_m_s2: npt.ArrayLike,
    rate_hz: float,
    *,
    min_still_s: float = 3.0,
) -> GyroBiasFit:
    """Gyroscope bias as the mean gyroscope reading over the still periods.

    Parameters
    ----------
    gyr_rad_s, acc_m_s2 : array_like, (N, 3), sensor frame
    rate_hz : float
    min_still_s : float
        Least total still time accepted.

    Raises
    ------
    CalibrationError
        When the sensor was not still long enough (the message gives the time found).
    """
    gyr = _check_xyz("gyr_rad_s", gyr_rad_s, 2)
    acc = _check_xyz("acc_m_s2", acc_m_s2, 2)
    still = detect_still(gyr, acc, rate_hz)
    still_s = float(still.sum()) / rate_hz
    if still_s < min_still_s:
        raise CalibrationError(
            f"the sensor was still for only {still_s:.1f} s (need {min_still_s:.1f} s): put it "
            "on a table, do not touch it, and record again"
        )
    return GyroBiasFit(
        bias_rad_s=gyr[still].mean(axis=0),
        noise_rad_s=gyr[still].std(axis=0),
        still_s=still_s,
        still=still,
    )


_MAG_MIN_SPREAD_RATIO: Final = 0.02
_FACES: Final = ("+x", "-x", "+y", "-y", "+z", "-z")


def six_position_calibration(
    acc_m_s2: npt.ArrayLike,
    rate_hz: float,
    gyr_rad_s: npt.ArrayLike | None = None,
    *,
    min_pose_s: float = 1.0,
    max_face_angle_rad: float = np.radians(30.0),
) -> AccFit:
    """Accelerometer scale, misalignment and offset from six static poses (one per face).

    Each still run is assigned to the face whose axis is closest to its mean reading (within
    ``max_face_angle_rad``); the reading ``+g`` along that axis is the target. The 12 parameters
    of ``acc = M @ raw + c`` are the linear least-squares solution over every still sample
    (ST AN3182); ``offset = -M⁻¹ c``.

    Parameters
    ----------
    acc_m_s2 : array_like, (N, 3), raw, sensor frame
    rate_hz : float
    gyr_rad_s : array_like, (N, 3), optional
        Improves still detection; without it a zero gyroscope is assumed.
    min_pose_s : float
        Least still time per face.
    max_face_angle_rad : float
        Largest angle between a pose's reading and its face axis.

    Raises
    ------
    CalibrationError
        Fewer than six distinct faces held still (naming the missing ones), the sensor never
        still, or a degenerate fit.
    """
    acc = _check_xyz("acc_m_s2", acc_m_s2, 2)
    gyr = np.zeros_like(acc) if gyr_rad_s is None else _check_xyz("gyr_rad_s", gyr_rad_s, 2)
    if gyr.shape != acc.shape:
        raise ValueError(f"gyr_rad_s must have shape {acc.shape}, got {gyr.shape}")
    still = detect_still(gyr, acc, rate_hz, min_duration_s=min_pose_s)
    runs = _runs(still)
    if not runs:
        raise CalibrationError(
            f"the sensor was never still for {min_pose_s:.1f} s: hold each face still longer"
        )
    face_samples: dict[int, list[FloatArray]] = {k: [] for k in range(6)}
    for a, b in runs:
        mean = acc[a:b].mean(axis=0)
        axis = int(np.argmax(np.abs(mean)))
        u = mean / np.linalg.norm(mean)
        if np.arccos(min(1.0, abs(u[axis]))) > max_face_angle_rad:
            log.info("still run [%d, %d) is not on a face (tilted); ignored", a, b)
            continue
        face = 2 * axis + (0 if mean[axis] > 0 else 1)
        face_samples[face].append(acc[a:b])
    pose_s = np.array([sum(len(x) for x in face_samples[k]) / rate_hz for k in range(6)])
    missing = [_FACES[k] for k in range(6) if pose_s[k] < min_pose_s]
    if missing:
        found = [_FACES[k] for k in range(6) if pose_s[k] >= min_pose_s]
        raise CalibrationError(
            f"found {len(found)} of the 6 faces still for {min_pose_s:.1f} s "
            f"({', '.join(found) or 'none'}); missing {', '.join(missing)} "
            "(the named sensor axis must point up, held still)"
        )
    raw = np.concatenate([np.concatenate(face_samples[k]) for k in range(6)])
    targets = np.concatenate(
        [
            np.tile(_face_vector(k) * GRAVITY_M_S2, (sum(len(x) for x in face_samples[k]), 1))
            for k in range(6)
        ]
    )
    design = np.column_stack([raw, np.ones(len(raw))])
    sol, *_ = np.linalg.lstsq(design, targets, rcond=None)
    matrix = sol[:3].T
    c = sol[3]
    if np.linalg.cond(matrix) > 1e3:
        raise CalibrationError("accelerometer fit is degenerate (ill-conditioned scale matrix)")
    offset = -np.linalg.solve(matrix, c)
    cal = raw @ matrix.T + c
    resid = np.linalg.norm(cal, axis=1) - GRAVITY_M_S2
    poses = np.array([np.concatenate(face_samples[k]).mean(axis=0) for k in range(6)])
    return AccFit(
        matrix=matrix,
        offset_m_s2=offset,
        poses_m_s2=poses,
        residual_rms_m_s2=float(np.sqrt(np.mean(resid**2))),
        pose_s=pose_s,
    )


def _face_vector(k: int) -> FloatArray:
    v = np.zeros(3)
    v[k // 2] = 1.0 if k % 2 == 0 else -1.0
    return v


def fit_mag_ellipsoid(
    mag_ut: npt.ArrayLike,
    *,
    min_samples: int = 100,
    min_coverage: float = 0.05,
    min_octants: int = 6,
) -> MagFit:
    """Hard- and soft-iron correction from a least-squares ellipsoid fit.

    Fits ``x'Ax + b'x = 1`` (9 parameters, linear least squares), takes the centre as the hard
    iron and the symmetric square root of the normalised shape matrix as the soft iron, scaled
    so the corrected field keeps the ellipsoid's geometric-mean radius.

    Parameters
    ----------
    mag_ut : array_like, (N, 3), raw, sensor frame, µT
        Ideally a slow figure-eight through all orientations.
    min_samples : int
    min_coverage : float
        Least accepted smallest eigenvalue of the direction second moment (full sphere 1/3).
    min_octants : int
        Least number of the 8 direction octants visited.

    Raises
    ------
    CalibrationError
        Too few samples, too poor coverage (planar movement), or a fit that is not an ellipsoid.
    """
    x = _check_xyz("mag_ut", mag_ut, min_samples)
    scale = float(np.median(np.linalg.norm(x - x.mean(axis=0), axis=1)))
    if not scale > 0:
        raise CalibrationError("magnetometer readings do not change: move the sensor")
    xs = (x - x.mean(axis=0)) / scale  # conditioning
    spread = np.linalg.eigvalsh(np.cov(xs.T))
    if spread[0] < _MAG_MIN_SPREAD_RATIO * spread[-1]:
        raise CalibrationError(
            f"magnetometer coverage too poor: the readings lie almost in one plane (spread ratio "
            f"{spread[0] / spread[-1]:.4f}); draw the figure-eight while also tilting the sensor "
            "up, down and on its sides"
        )
    d = np.column_stack(
        [
            xs[:, 0] ** 2,
            xs[:, 1] ** 2,
            xs[:, 2] ** 2,
            2 * xs[:, 1] * xs[:, 2],
            2 * xs[:, 0] * xs[:, 2],
            2 * xs[:, 0] * xs[:, 1],
            2 * xs[:, 0],
            2 * xs[:, 1],
            2 * xs[:, 2],
        ]
    )
    v, *_ = np.linalg.lstsq(d, np.ones(len(xs)), rcond=None)
    a_mat = np.array([[v[0], v[5], v[4]], [v[5], v[1], v[3]], [v[4], v[3], v[2]]])
    b_vec = v[6:9]
    evals = np.linalg.eigvalsh(a_mat)
    if not np.all(evals > 0):
        raise CalibrationError(
            "magnetometer data does not lie on an ellipsoid (rotate through more orientations)"
        )
    centre_s = -np.linalg.solve(a_mat, b_vec)
    k = 1.0 + centre_s @ a_mat @ centre_s
    shape = a_mat / k  # (x-c)' shape (x-c) = 1
    w_evals, w_evecs = np.linalg.eigh(shape)
    radius_s = float(np.prod(w_evals) ** (-1.0 / 6.0))
    soft = radius_s * (w_evecs @ np.diag(np.sqrt(w_evals)) @ w_evecs.T)
    hard = x.mean(axis=0) + scale * centre_s
    field_ut = radius_s * scale
    corrected = (x - hard) @ soft.T * 1.0
    norms = np.linalg.norm(corrected, axis=1)
    resid = float(np.sqrt(np.mean((norms - field_ut) ** 2)))
    u = corrected / norms[:, None]
    coverage = float(np.linalg.eigvalsh(u.T @ u / len(u))[0])
    octants = len({tuple(r) for r in (u > 0).astype(int).tolist()})
    if coverage < min_coverage or octants < min_octants:
        raise CalibrationError(
            f"magnetometer coverage too poor (coverage {coverage:.3f} < {min_coverage} or "
            f"{octants} of 8 octants < {min_octants}): draw a larger figure-eight while turning "
            "the sensor through all directions, not in one plane"
        )
    return MagFit(
        soft_iron=soft,
        hard_iron_ut=hard,
        field_ut=float(field_ut),
        residual_rms_ut=resid,
        coverage=coverage,
        octants=octants,
    )
