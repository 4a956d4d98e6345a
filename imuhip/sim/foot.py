"""Simulated feet (``foot_l``, ``foot_r``): swing on the ankle, flat on the ground in stance.

The foot segment (ISB-like: X along the foot toward the toes, Y up, Z right; aligned with the
shank at a neutral ankle) hangs on the shank of :class:`~imuhip.sim.kinematics.Body`, whose
stance is the roll-over contact of :mod:`imuhip.sim.contact`:

* **swing** (and the chain at every instant): ``foot = shank ⊗ Rz(ankle)`` with a normative ankle
  dorsiflexion curve (+ = toes up; Perry & Burnfield 2010, *Gait Analysis*; Winter 2009,
  doi:10.1002/9780470549148): 0° at initial contact, −5° plantarflexion in the loading response,
  +10° dorsiflexion at 40–45 %, −15° at toe-off, −18° early swing, neutral from mid swing;
* **stance**: the three foot rockers (Perry): from initial contact the foot rotates down onto the
  ground (heel rocker, flat at 10 % of the cycle), stays flat and level (ankle rocker) until
  heel-off at ``0.3 / 0.6`` of the stance, then pivots about the toes (forefoot rocker) back
  onto the chain orientation, which it reaches at toe-off. "Flat" is the chain foot's heading
  with zero pitch and roll; the blend is a slerp with C³ smoothstep weights, so the foot's
  angular velocity is continuous and zero in mid stance. Standing (activation 0) is flat.

The foot sensor site follows the chain (ankle from the shank, fixed point in the foot): in foot
flat the ankle moves on the roll-over arc by a few centimetres, i.e. the simulated foot is not a
zero-velocity foot at the mm level (a full stance inverse kinematics is not done).
"""

from __future__ import annotations

from typing import Final

import numpy as np

from imuhip.conventions import quat_from_axis_angle, quat_mul, quat_rotate
from imuhip.sim.curves import DEG, FloatArray, _fourier_coeffs, qz, smoothstep7

__all__ = ["ANKLE_TABLE_DEG", "ankle_angle", "foot_flat_weight", "foot_orientation"]

# ankle dorsiflexion (+) every 5 % of the cycle from initial contact, deg
ANKLE_TABLE_DEG: Final = (
    0.0, -4.0, -2.0, 1.0, 3.0, 5.0, 7.0, 9.0, 10.0, 10.0,
    7.0, -3.0, -14.0, -18.0, -12.0, -5.0, 0.0, 1.0, 1.0, 0.5,
)  # fmt: skip
FOOT_FLAT_AT: Final = 0.10  # fraction of the cycle: heel rocker done
HEEL_OFF_STANCE_FRAC: Final = 0.5  # heel-off at this fraction of the stance (30 % of a 60 % one)
_MEAN, _COEFFS = _fourier_coeffs(ANKLE_TABLE_DEG)
_X: Final = np.array([1.0, 0.0, 0.0])
_Q_ISB_TO_ENU: Final = quat_from_axis_angle([1.0, 0.0, 0.0], np.pi / 2)


def ankle_angle(phase: FloatArray, activation: FloatArray) -> FloatArray:
    """Normative ankle dorsiflexion (rad) at cycle phase ``phase`` (IC = 0), times activation."""
    k = np.arange(1, len(_COEFFS) + 1)
    z = np.exp(2j * np.pi * np.outer(np.mod(phase, 1.0), k))
    deg = _MEAN + np.real(z @ _COEFFS)
    return np.asarray(activation * deg * DEG, dtype=np.float64)


def foot_flat_weight(phase: FloatArray, activation: FloatArray, toe_off: float) -> FloatArray:
    """Weight of the level foot (1 = flat on the ground), ``(N,)``."""
    s = np.mod(phase, 1.0)
    heel_off = HEEL_OFF_STANCE_FRAC * toe_off
    on = smoothstep7(s / FOOT_FLAT_AT)
    off = smoothstep7((s - heel_off) / (toe_off - heel_off))
    w_gait = np.where(s < toe_off, on * (1.0 - off), 0.0)
    return np.asarray((1.0 - activation) + activation * w_gait, dtype=np.float64)


def _slerp(q0: FloatArray, q1: FloatArray, w: FloatArray) -> FloatArray:
    dot = np.sum(q0 * q1, axis=-1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.abs(dot)
    ang = np.arccos(np.clip(dot, -1.0, 1.0))
    small = ang < 1e-6
    s = np.where(small, 1.0, np.sin(ang))
    a = np.where(small, 1.0 - w, np.sin((1.0 - w) * ang) / s)
    b = np.where(small, w, np.sin(w * ang) / s)
    q = a[:, None] * q0 + b[:, None] * q1
    return np.asarray(q / np.linalg.norm(q, axis=-1, keepdims=True), dtype=np.float64)


def foot_orientation(
    q_world_shank: FloatArray, phase: FloatArray, activation: FloatArray, toe_off: float
) -> FloatArray:
    """``q_world_foot`` ``(N, 4)`` from the shank orientation and the side's cycle phase."""
    q_chain = quat_mul(q_world_shank, qz(ankle_angle(phase, activation)))
    x = quat_rotate(q_chain, np.broadcast_to(_X, (len(q_chain), 3)))
    yaw = np.arctan2(x[:, 1], x[:, 0])
    q_flat = quat_mul(qz(yaw), _Q_ISB_TO_ENU)
    return _slerp(q_chain, q_flat, foot_flat_weight(phase, activation, toe_off))
