"""Ready-made simulator set-ups: the 10-m walkway session and the realistic walker.

* :func:`walkway_params`: stand, walk ``distance_m`` (ramping up from standing), a 180° turn,
  walk back, stop and stand (the clinical walkway protocol, e.g. the 10-m walk test).
* :func:`realistic_params`: a walkway session with :class:`~imuhip.sim.realism.Realism` switched
  on, datasheet sensor errors (:data:`~imuhip.sim.realism.SENSOR_GRADES`), stride-to-stride
  variability drawn in 2–4 % CV (stride time and joint amplitudes; Hausdorff et al. 1995,
  doi:10.1152/jappl.1995.78.1.349, report ~2-3 % for healthy adults) and foot sensors.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Final

import numpy as np

from imuhip.sim.params import SimParams
from imuhip.sim.realism import SENSOR_GRADES, Realism

__all__ = ["REALISTIC_SENSORS", "realistic_params", "walkway_params"]

REALISTIC_SENSORS: Final = (
    "pelvis",
    "thigh_l",
    "thigh_r",
    "shank_l",
    "shank_r",
    "foot_l",
    "foot_r",
)
_TURN_SLOWDOWN: Final = 0.35 * 0.375  # Body.speed: 35 % less under a sin⁴ window (mean 3/8)


def walkway_params(
    speed_m_s: float = 1.3,
    *,
    distance_m: float = 10.0,
    stand_start_s: float = 4.0,
    stand_end_s: float = 3.0,
    ramp_s: float = 1.5,
    turn_duration_s: float = 2.5,
    **overrides: Any,
) -> SimParams:
    """A walkway session: stand, walk ``distance_m``, turn 180°, walk back, stop, stand.

    The walking time is chosen so that each leg covers ``distance_m`` at ``speed_m_s`` (the
    ramps from and into standing cost half a ramp each; the turn slows the progression).
    """
    if not (np.isfinite(distance_m) and distance_m > 0):
        raise ValueError(f"distance_m must be > 0, got {distance_m}")
    if not (np.isfinite(speed_m_s) and speed_m_s > 0):
        raise ValueError(f"speed_m_s must be > 0, got {speed_m_s}")
    walk_s = 2.0 * distance_m / speed_m_s + ramp_s + _TURN_SLOWDOWN * turn_duration_s
    walk_s = max(walk_s, 4.0 * ramp_s + turn_duration_s + 0.5)
    return SimParams(
        speed_m_s=speed_m_s,
        stand_start_s=stand_start_s,
        stand_end_s=stand_end_s,
        ramp_s=ramp_s,
        turn=True,
        turn_duration_s=turn_duration_s,
        duration_s=stand_start_s + walk_s + stand_end_s,
        **overrides,
    )


def realistic_params(
    seed: int = 0,
    *,
    speed_m_s: float = 1.3,
    sensor_grade: str = "movesense",
    realism: Realism | None = None,
    walkway: bool = True,
    distance_m: float = 10.0,
    **overrides: Any,
) -> SimParams:
    """The realistic walker: STA, datasheet errors, variability, speed-dependent curves, feet.

    ``overrides`` are SimParams fields (they win over the preset, e.g. ``sensors=...``,
    ``stride_time_cv=...``); with ``walkway=False`` it is a straight walk of ``duration_s``.
    Stride-time and amplitude CVs are drawn in [0.02, 0.04] from a generator seeded by
    ``seed``.
    """
    if sensor_grade not in SENSOR_GRADES:
        raise ValueError(
            f"sensor_grade must be one of {sorted(SENSOR_GRADES)}, got {sensor_grade!r}"
        )
    grade = dict(SENSOR_GRADES[sensor_grade])
    mis = grade.pop("axis_misalignment_deg")
    real = realism if realism is not None else Realism(axis_misalignment_deg=mis)
    rng = np.random.default_rng([seed, 0xC0FE])
    fields: dict[str, Any] = {
        "seed": seed,
        "sensors": REALISTIC_SENSORS,
        "stride_time_cv": float(rng.uniform(0.02, 0.04)),
        "amplitude_cv": float(rng.uniform(0.02, 0.04)),
        "realism": real,
        **grade,
    }
    fields.update(overrides)
    if walkway:
        return walkway_params(speed_m_s, distance_m=distance_m, **fields)
    return replace(SimParams(speed_m_s=speed_m_s), **fields)
