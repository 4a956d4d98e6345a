"""Body geometry of the simulated walker: segments, points in segment frames, sensor sites.

Also the heel-strike transient and foot roll-over constants, and :class:`BodyState`, the body's
kinematics at a set of times (:meth:`imuhip.sim.kinematics.Body.state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np

from imuhip.conventions import quat_rotate
from imuhip.sim.curves import FloatArray

__all__ = ["SEGMENTS", "SENSOR_POINT_M", "BodyState"]

SEGMENTS: Final = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r", "lumbar")

# Points in segment frames (m): X anterior, Y superior, Z right.
HJC_IN_PELVIS_M: Final = {"right": (0.10, -0.08, 0.085), "left": (0.10, -0.08, -0.085)}
KNEE_IN_THIGH_M: Final = (0.0, -0.42, 0.0)
# Heel-strike transient at each initial contact (magnitude per stride from
# SimParams.heel_strike_peak_g, scaled by the walking activation). Translational part: the
# sensor site moves along its segment's long axis (pelvis, lumbar: world vertical) by
# -D exp(-u^2/2), u = (t - IC) / sigma, D = peak * sigma^2, so its acceleration peaks at +peak
# (upward, along the shank: the leg's descent is arrested) for ~2 sigma, with two negative side
# lobes of 0.45 peak (the ~1 mm heel-pad / soft-tissue compression and rebound), attenuated up
# the body. Angular part: the heel stops while the thigh goes on, so the knee flexes by an extra
# IMPACT_KNEE_DEG_PER_G per g within ~sigma (the shank's angular velocity dips sharply at IC)
# and gives it back in the loading response; it is part of the shank orientation, so the gyro
# and the orientations stay consistent.
IMPACT_SIGMA_S: Final = 0.008
IMPACT_KNEE_DEG_PER_G: Final = 0.6
IMPACT_RELAX_S: Final = 0.12
IMPACT_RELAX_SIGMA_S: Final = 0.04
IMPACT_ATTENUATION: Final = {
    "foot": 1.0,
    "shank": 1.0,
    "thigh": 0.5,
    "pelvis": 0.3,
    "lumbar": 0.25,
}
SENSOR_POINT_M: Final = {
    "pelvis": (-0.01, 0.0, 0.0),
    "lumbar": (-0.02, 0.20, 0.0),
    "thigh_r": (0.0, -0.21, 0.07),
    "thigh_l": (0.0, -0.21, -0.07),
    "shank_r": (0.01, -0.18, 0.05),
    "shank_l": (0.01, -0.18, -0.05),
    # instep (dorsum of the foot), from the ankle in the foot frame (imuhip.sim.foot)
    "foot_r": (0.07, -0.02, 0.0),
    "foot_l": (0.07, -0.02, 0.0),
}
# anterior mid-thigh site (Realism.thigh_placement = "anterior")
THIGH_ANTERIOR_POINT_M: Final = (0.07, -0.21, 0.0)

# Foot-ground contact of the shank in stance: roll-over shape (Hansen, Childress & Knox 2004,
# doi:10.1016/j.clinbiomech.2004.01.005). From initial contact to toe-off the shank-foot system
# rolls without slipping on the ground along a circular arc fixed in the shank frame, of radius
# ~0.3 x leg length, its centre on the shank's long axis (knee-ankle line) so that the arc passes
# ANKLE_HEIGHT_M below the ankle. The knee position comes from the unchanged pelvis + thigh chain;
# the rolling constraint then fixes the shank's sagittal angle (knee flexion is derived). The
# vertical closure (knee height minus shank and arc) is left free: it is absorbed by the arc's
# ground height (measured in docs/gait_events.md), not by moving the pelvis or the thigh.
SHANK_LENGTH_M: Final = 0.43  # knee to ankle
ANKLE_HEIGHT_M: Final = 0.08  # ankle above the sole
LEG_LENGTH_M: Final = -KNEE_IN_THIGH_M[1] + SHANK_LENGTH_M + ANKLE_HEIGHT_M
ROLLOVER_RADIUS_M: Final = 0.3 * LEG_LENGTH_M
ROLLOVER_CENTRE_FROM_KNEE_M: Final = SHANK_LENGTH_M + ANKLE_HEIGHT_M - ROLLOVER_RADIUS_M
ROLLOVER_RADIUS_RANGE_M: Final = (0.1 * LEG_LENGTH_M, 1.0 * LEG_LENGTH_M)
# the heel's arrest at IC and the toe's release at TO take a few ms: the contact weight switches
# as a normal CDF with this SD (the heel-strike transient's, IMPACT_SIGMA_S)
CONTACT_SIGMA_S: Final = IMPACT_SIGMA_S
# after toe-off the shank returns from the contact-constrained angle to the normative swing
# kinematics (knee table) with a C3 smoothstep over this fraction of the swing
SWING_RETURN_FRAC: Final = 0.25


@dataclass(frozen=True, slots=True)
class BodyState:
    """Body kinematics at times ``t`` (simulation seconds), angles in rad.

    ``q_world`` maps each segment (``pelvis``, ``thigh_l``, ``thigh_r``, ``shank_l``, ``shank_r``,
    ``lumbar``, and the walking-direction frame ``walk``) to ``(N, 4)`` ISB segment orientations;
    ``hip[side]`` columns flexion, adduction, internal rotation (left mirrored); ``pelvis``
    rotation, obliquity, tilt (relative to ``walk``); ``lumbar`` flexion, lateral bending, axial
    rotation; ``ir_deficit[side]`` = uncapped − capped IR; ``origin`` the pelvis origin offset
    from the walkway progression (world, m).
    """

    t: FloatArray
    activation: FloatArray
    phase: FloatArray
    heading_rad: FloatArray
    q_world: dict[str, FloatArray]
    hip: dict[str, FloatArray]
    pelvis: FloatArray
    lumbar: FloatArray
    knee: dict[str, FloatArray]
    ir_deficit: dict[str, FloatArray]
    origin: FloatArray
    impact_m: dict[str, FloatArray] = field(default_factory=dict)

    def point(self, placement: str, site_m: tuple[float, float, float] | None = None) -> FloatArray:
        """World position (minus walkway progression) of a sensor site, ``(N, 3)`` m.

        ``site_m`` replaces the default site (:data:`SENSOR_POINT_M`) in the segment frame; a
        foot's site is relative to the ankle. Includes the heel-strike transient ``impact_m[side]``
        (displacement along the segment's
        long axis; pelvis and lumbar: world vertical, both sides), attenuated up the body.
        """
        seg = placement
        r = np.asarray(SENSOR_POINT_M[placement] if site_m is None else site_m)
        if seg in ("pelvis", "lumbar"):
            out = self.origin + quat_rotate(self.q_world[seg], r)
            if self.impact_m:
                k = IMPACT_ATTENUATION[seg]
                out[:, 2] += k * (self.impact_m["left"] + self.impact_m["right"])
            return out
        side = "right" if seg.endswith("_r") else "left"
        hjc = self.origin + quat_rotate(self.q_world["pelvis"], np.asarray(HJC_IN_PELVIS_M[side]))
        thigh = f"thigh_{side[0]}"
        if seg.startswith("thigh"):
            out = hjc + quat_rotate(self.q_world[thigh], r)
        else:
            knee = hjc + quat_rotate(self.q_world[thigh], np.asarray(KNEE_IN_THIGH_M))
            if seg.startswith("foot"):
                shank = self.q_world[f"shank_{side[0]}"]
                ankle = knee + quat_rotate(shank, np.array([0.0, -SHANK_LENGTH_M, 0.0]))
                out = ankle + quat_rotate(self.q_world[seg], r)
            else:
                out = knee + quat_rotate(self.q_world[seg], r)
        if self.impact_m:
            k = IMPACT_ATTENUATION[seg.split("_")[0]]
            axis = quat_rotate(self.q_world[seg], np.array([0.0, 1.0, 0.0]))
            out = out + (k * self.impact_m[side])[:, None] * axis
        return out
