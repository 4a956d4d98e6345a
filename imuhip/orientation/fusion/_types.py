"""Configuration and result types of :mod:`imuhip.orientation.fusion`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "METHODS",
    "FilterParams",
    "FuseConfig",
    "FusionResult",
    "canonical_method",
    "vqf_params",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

METHODS: Final = ("vqf", "vqf_offline", "vqf_online", "madgwick", "mahony", "ekf")
"""Accepted ``method`` names. ``"vqf"`` is an alias of ``"vqf_offline"`` (the default for
recordings); ``"vqf_online"`` is the causal filter used live."""


def canonical_method(method: str) -> str:
    """Resolve aliases (``"vqf"`` → ``"vqf_offline"``); ``ValueError`` naming the valid ones."""
    if not isinstance(method, str):
        raise TypeError(f"method must be a string, got {type(method).__name__}")
    m = method.strip().lower()
    if m not in METHODS:
        raise ValueError(f"unknown fusion method {method!r}; choose one of {', '.join(METHODS)}")
    return "vqf_offline" if m == "vqf" else m


@dataclass(frozen=True, slots=True)
class FilterParams:
    """Tuning of the fusion filters. ``None`` means the library's own default.

    Parameters
    ----------
    vqf_tau_acc_s, vqf_tau_mag_s : float
        vqf time constants of the accelerometer and magnetometer corrections (vqf defaults 3 s
        and 9 s; Laidig & Seel 2023, doi:10.1016/j.inffus.2022.10.014).
    vqf_rest_bias_est, vqf_motion_bias_est, vqf_mag_dist_rejection : bool
        vqf's gyroscope bias estimation at rest / in motion and magnetic disturbance rejection.
    vqf_bias_clip_deg_s : float
        vqf's largest expected gyroscope bias (its ``biasClip``; vqf default 2 °/s). It also
        gates rest detection: a low-passed rate above it on any axis is never rest, so a sensor
        whose bias exceeds it is never seen at rest and its heading drifts by the bias. Consumer
        MEMS gyroscopes before calibration have zero-rate levels of ±2 °/s *typical* (ST
        LSM6DSL in the Movesense, DocID028475) and more in the tails; 2 °/s left a realistic
        Movesense walker's pelvis and shanks without any rest detection and drifting 1–4 °/s in
        heading. Default 6 °/s.
    madgwick_gain : float or None
        Madgwick's beta (ahrs defaults: 0.033 6D, 0.041 9D).
    mahony_k_p, mahony_k_i : float
        Mahony proportional and integral gains (ahrs defaults 1.0 and 0.3).
    ekf_noise_gyr, ekf_noise_acc, ekf_noise_mag : float
        ahrs EKF noise variances (ahrs defaults 0.3², 0.5², 0.8²).
    ekf_dip_rad : float or None
        Magnetic dip (inclination) for the EKF's reference field, radians, positive when the
        field points below the horizon (northern hemisphere). ``None``: estimated from the
        data as the median angle between the accelerometer and magnetometer readings.
    """

    vqf_tau_acc_s: float = 3.0
    vqf_tau_mag_s: float = 9.0
    vqf_rest_bias_est: bool = True
    vqf_motion_bias_est: bool = True
    vqf_mag_dist_rejection: bool = True
    vqf_bias_clip_deg_s: float = 6.0
    madgwick_gain: float | None = None
    mahony_k_p: float = 1.0
    mahony_k_i: float = 0.3
    ekf_noise_gyr: float = 0.3**2
    ekf_noise_acc: float = 0.5**2
    ekf_noise_mag: float = 0.8**2
    ekf_dip_rad: float | None = None

    def __post_init__(self) -> None:
        for name in (
            "vqf_tau_acc_s",
            "vqf_tau_mag_s",
            "vqf_bias_clip_deg_s",
            "mahony_k_p",
            "ekf_noise_gyr",
            "ekf_noise_acc",
            "ekf_noise_mag",
        ):
            v = getattr(self, name)
            if not (np.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {v}")
        if not (np.isfinite(self.mahony_k_i) and self.mahony_k_i >= 0):
            raise ValueError(f"mahony_k_i must be a finite number >= 0, got {self.mahony_k_i}")
        if self.madgwick_gain is not None and not (
            np.isfinite(self.madgwick_gain) and self.madgwick_gain > 0
        ):
            raise ValueError(f"madgwick_gain must be > 0 or None, got {self.madgwick_gain}")
        if self.ekf_dip_rad is not None and not (abs(self.ekf_dip_rad) < np.pi / 2):
            raise ValueError(f"ekf_dip_rad must be in (-pi/2, pi/2), got {self.ekf_dip_rad}")


@dataclass(frozen=True, slots=True)
class FuseConfig:
    """What :func:`imuhip.orientation.fusion.fuse_session` runs on every sensor.

    Parameters
    ----------
    method : str
        One of :data:`METHODS` (default ``"vqf"`` = vqf offline).
    use_mag : bool
        Use the magnetometer where a sensor has one (9D); ``False`` forces 6D everywhere.
    params : FilterParams
    workers : int or None
        Sensors fused at once, each in a process of its own. ``None`` (default): one process per
        sensor up to the CPUs available, for sessions long enough to gain from it
        (:func:`imuhip.orientation.fusion.session.fusion_workers`); ``1``: one after the other.
        The orientations are the same either way.
    """

    method: str = "vqf"
    use_mag: bool = True
    params: FilterParams = field(default_factory=FilterParams)
    workers: int | None = None

    def __post_init__(self) -> None:
        canonical_method(self.method)
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1 or None, got {self.workers}")
        if not isinstance(self.params, FilterParams):
            raise TypeError(f"params must be FilterParams, got {type(self.params).__name__}")


@dataclass(frozen=True, slots=True)
class FusionResult:
    """Orientation of one sensor plus the filter's diagnostics.

    Parameters
    ----------
    q_world_sensor : (N, 4) float64
        Scalar-first unit quaternions, world ENU (z up). In 6D the heading is relative: the
        world x axis is where the sensor's x axis pointed (horizontally) at the start.
    valid : (N,) bool
        False where the input row was missing and was filled before filtering.
    rest : (N,) bool
        Rest (standing still) detected.
    mag_disturbed : (N,) bool or None
        Magnetic disturbance detected; ``None`` in 6D.
    gyr_bias_rad_s : (N, 3) float64 or None
        Gyroscope bias estimate, sensor frame; ``None`` for filters that do not estimate it.
    method : str
        Canonical method name (``"vqf_offline"``, ``"vqf_online"``, ``"madgwick"``, ...).
    uses_mag : bool
        True for 9D.
    """

    q_world_sensor: FloatArray
    valid: BoolArray
    rest: BoolArray
    mag_disturbed: BoolArray | None
    gyr_bias_rad_s: FloatArray | None
    method: str
    uses_mag: bool

    def __len__(self) -> int:
        return len(self.q_world_sensor)


def vqf_params(p: FilterParams) -> dict[str, Any]:
    """The vqf parameter dictionary for ``p`` (camelCase is vqf's, kept at this boundary)."""
    return {
        "tauAcc": float(p.vqf_tau_acc_s),
        "tauMag": float(p.vqf_tau_mag_s),
        "restBiasEstEnabled": bool(p.vqf_rest_bias_est),
        "motionBiasEstEnabled": bool(p.vqf_motion_bias_est),
        "magDistRejectionEnabled": bool(p.vqf_mag_dist_rejection),
        "biasClip": float(p.vqf_bias_clip_deg_s),
    }
