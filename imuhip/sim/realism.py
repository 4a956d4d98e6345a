"""Knobs of the realistic simulator: soft-tissue artefact, axis misalignment, speed dependence.

The clean simulator shares the analysis' assumptions (rigidly mounted sensors, one gait pattern
for every speed, MEMS errors only), so the analysis is within a fraction of a degree on it by
construction. :class:`Realism` (``SimParams.realism``; ``None`` = the clean simulator, whose
output stays bit-identical) switches on what real walking adds:

* **Soft-tissue artefact (STA)**: a skin-mounted sensor rotates against its bone, mostly about
  the segment's long axis (thigh: Cappozzo et al. 1996, doi:10.1016/0268-0033(95)00046-1;
  review Camomilla et al. 2017, doi:10.1016/j.jbiomech.2016.11.040; on real treadmill data
  anterior thigh sensors differ from their marker clusters by 3–5° RMS rotation). The artefact is
  driven by the joint angles of the segment's proximal/distal joints, a random linear combination
  per walker and sensor (the model of Camomilla et al. 2013, doi:10.1016/j.jbiomech.2012.09.018),
  plus a damped 12 Hz ringing after each heel strike (soft-tissue vibration, Wakeling & Nigg 2001,
  J Appl Physiol 90:412–420), and on the thighs a sagittal jolt at each heel strike (below).
  Amplitudes are RMS over steady walking about the segment's long
  axis (Y); each of the two other axes gets ``sta_off_axis_ratio`` of it. The truth stays the bone
  motion: the artefact moves only the sensor. See :mod:`imuhip.sim.soft_tissue`.
* **Heel-strike jolt of the thigh** (``thigh_jolt_deg_per_g`` per g of the heel-strike peak):
  on the real gaittoolbox and OpenSense trials the thigh's sagittal angular velocity falls by
  ~1-2 rad/s within ~40 ms of each foot contact and rebounds by ~70-100 ms (median depth of the
  V 1.3 rad/s after a 30 Hz low-pass; ``docs/validation.md``, "The heel strike's jolt in the
  thigh"). Modelled as a damped 7 Hz rotation of the thigh sensor about the segment's
  flexion axis, extension first (``-A e^{-t/0.1 s} sin(2π 7 Hz t)``; initial rate ``-A·44/s``):
  1° per g gives ~1.5 rad/s at the simulator's 2 g heel strikes. Whether the real jolt is bone
  or soft tissue is not known; it is put on the sensor so that the truth stays the bone's.
* **Thigh placement**: ``"lateral"`` (the documented default mounting) or ``"anterior"`` (sensor
  flat on the front of mid-thigh, x superior, z anterior): it changes the mounting, the sensor
  site and which off-long axis is the skin tangent.
* **Axis misalignment**: each triad's axes are off the housing by a small random linear map
  (off-diagonal terms N(0, ``axis_misalignment_deg``)), as datasheets specify it (cross-axis
  sensitivity / alignment error; values in :data:`SENSOR_GRADES`).
* **Speed-dependent joint curves**: amplitude and timing of the normative curves scale with
  walking speed (Koopman, van Asseldonk & van der Kooij 2014, doi:10.1016/j.jbiomech.2013.12.030,
  found most key events of hip and knee trajectories speed dependent in amplitude and timing;
  Lelas et al. 2003, doi:10.1016/S0966-6362(02)00060-7, peak angles vs speed). The linear
  factors of :func:`speed_factors` are around 1.3 m/s, where the curves equal the clean ones:
  hip flexion range +25 % per m/s, knee flexion range +15 %/(m/s), hip adduction and pelvic
  rotation/obliquity +20 %/(m/s), toe-off at 60 % − 5 %/(m/s) of the cycle (stance is longer
  when slow), clipped to 57–65 %. They are round-number approximations of those trends, not the
  papers' regression coefficients.
* **Stride variability**: more random components in the cadence and amplitude modulation, so
  the stride-to-stride CV is not a three-sinusoid beat (``variability_components``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Final

__all__ = ["SENSOR_GRADES", "Realism", "speed_factors"]

THIGH_PLACEMENTS: Final = ("lateral", "anterior")
REFERENCE_SPEED_M_S: Final = 1.3  # the clean curves' speed (SimParams default)
TOE_OFF_RANGE: Final = (0.57, 0.65)

# Sensor error grades from datasheets, as SimParams error fields (SI; noise RMS at 200 Hz, i.e.
# density x sqrt(100 Hz); bias and scale factor are the SDs of the per-sensor draw).
#
# * Xsens MTx ("MTi and MTx User Manual and Technical Documentation", Xsens, doc. MT0100P):
#   rate of turn noise density 0.05 °/s/√Hz, bias stability 1 °/s (1σ), alignment error 0.1°,
#   linearity 0.1 % FS; acceleration noise density 0.002 m/s²/√Hz, bias stability 0.02 m/s²,
#   alignment 0.1°, linearity 0.2 % FS; magnetic field noise 0.5 mGauss (0.05 µT).
#   Factory-calibrated scale factors: 0.1 % SD here.
# * Movesense (Suunto/Movesense sensor with the ST LSM6DSL IMU and LIS2MDL magnetometer; ST
#   datasheets DocID028475 and DocID030310): gyroscope rate noise density 4 mdps/√Hz, zero-rate
#   level ±2 °/s (typ., uncalibrated), accelerometer noise density 80 µg/√Hz, zero-g offset
#   ±40 mg (typ.), sensitivity tolerance ±1 % (acc; gyro taken alike), cross-axis sensitivity
#   ±1 % (≈ 0.6° misalignment); magnetometer RMS noise 3 mGauss (0.3 µT), zero-gauss offset
#   ±60 mGauss (6 µT, before hard-iron calibration). "typ." values are used as 1σ.
SENSOR_GRADES: Final[dict[str, dict[str, float]]] = {
    "xsens_mtx": {
        "gyr_noise_rad_s": math.radians(0.05 * 10.0),
        "gyr_bias_rad_s": math.radians(1.0),
        "acc_noise_m_s2": 0.002 * 10.0,
        "acc_bias_m_s2": 0.02,
        "scale_error": 0.001,
        "mag_noise_ut": 0.05,
        "mag_bias_ut": 0.5,
        "axis_misalignment_deg": 0.1,
    },
    "movesense": {
        "gyr_noise_rad_s": math.radians(0.004 * 10.0),
        "gyr_bias_rad_s": math.radians(2.0),
        "acc_noise_m_s2": 80e-6 * 9.80665 * 10.0,
        "acc_bias_m_s2": 0.040 * 9.80665,
        "scale_error": 0.01,
        "mag_noise_ut": 0.3,
        "mag_bias_ut": 6.0,
        "axis_misalignment_deg": math.degrees(0.01),
    },
}


@dataclass(frozen=True, slots=True)
class Realism:
    """What the realistic simulator adds to the clean one (see the module docstring).

    Angles in degrees (user edge). ``sta_*_deg`` are RMS rotations about the segment's long axis
    during steady walking.
    """

    sta_thigh_deg: float = 3.5
    sta_shank_deg: float = 1.5
    sta_pelvis_deg: float = 0.0
    sta_foot_deg: float = 0.0
    sta_off_axis_ratio: float = 0.4
    sta_impact_deg_per_g: float = 0.5
    thigh_jolt_deg_per_g: float = 1.0
    thigh_placement: str = "lateral"
    axis_misalignment_deg: float = 0.5
    speed_dependent: bool = True
    variability_components: int = 12

    def __post_init__(self) -> None:
        for name in (
            "sta_thigh_deg",
            "sta_shank_deg",
            "sta_pelvis_deg",
            "sta_foot_deg",
            "sta_off_axis_ratio",
            "sta_impact_deg_per_g",
            "thigh_jolt_deg_per_g",
            "axis_misalignment_deg",
        ):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                raise ValueError(f"Realism.{name} must be >= 0, got {v}")
        if self.thigh_placement not in THIGH_PLACEMENTS:
            raise ValueError(
                f"Realism.thigh_placement must be one of {THIGH_PLACEMENTS}, "
                f"got {self.thigh_placement!r}"
            )
        if not 3 <= self.variability_components <= 64:
            raise ValueError(
                f"Realism.variability_components must be in [3, 64], "
                f"got {self.variability_components}"
            )

    def sta_deg(self, placement: str) -> float:
        """Long-axis STA RMS of a placement, degrees."""
        kind = placement.split("_")[0]
        return float(
            {
                "thigh": self.sta_thigh_deg,
                "shank": self.sta_shank_deg,
                "pelvis": self.sta_pelvis_deg,
                "lumbar": self.sta_pelvis_deg,
                "foot": self.sta_foot_deg,
            }[kind]
        )


def speed_factors(speed_m_s: float, realism: Realism | None) -> dict[str, Any]:
    """Range factors and toe-off phase of the joint curves at a walking speed.

    Exactly 1 (and toe-off 0.6) without realism or with ``speed_dependent=False``, so the clean
    simulator is unchanged.
    """
    one = {
        "hip_flexion": 1.0,
        "hip_adduction": 1.0,
        "knee": 1.0,
        "pelvis_rotation": 1.0,
        "pelvis_obliquity": 1.0,
        "toe_off_phase": 0.6,
    }
    if realism is None or not realism.speed_dependent:
        return one
    dv = speed_m_s - REFERENCE_SPEED_M_S
    return {
        "hip_flexion": max(0.5, 1.0 + 0.25 * dv),
        "hip_adduction": max(0.5, 1.0 + 0.2 * dv),
        "knee": max(0.5, 1.0 + 0.15 * dv),
        "pelvis_rotation": max(0.5, 1.0 + 0.2 * dv),
        "pelvis_obliquity": max(0.5, 1.0 + 0.2 * dv),
        "toe_off_phase": min(max(0.6 - 0.05 * dv, TOE_OFF_RANGE[0]), TOE_OFF_RANGE[1]),
    }
