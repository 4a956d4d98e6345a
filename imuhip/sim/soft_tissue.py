"""Soft-tissue artefact (STA) and axis misalignment of the realistic simulator.

STA model (Camomilla et al. 2013, doi:10.1016/j.jbiomech.2012.09.018: thigh STA as a linear
function of the hip joint angles; here as a rotation of the sensor against its bone): the
rotation vector of the sensor relative to the bone, in the segment frame (X anterior, Y along
the long axis, Z right), is

``v_j(t) = Σ_i w_ji (θ_i(t) − θ_i,standing) + ringing_j(t)``

with drivers θ the joint angles at the segment's joints (thigh: hip flexion, adduction, rotation
of its side; shank: knee flexion and hip flexion; pelvis/lumbar: pelvic rotation, obliquity, tilt
and both hip flexions; foot: knee flexion), weights ``w`` drawn per walker and sensor from a
generator of their own, and scaled so that the long-axis (j = Y) component has exactly the RMS
``Realism.sta_deg(placement)`` over steady walking, and each other axis
``sta_off_axis_ratio`` of it. The ringing is a damped 12 Hz oscillation (time constant 40 ms)
after each heel strike of the side, ``sta_impact_deg_per_g`` per g of the heel-strike peak
(soft-tissue vibration, Wakeling & Nigg 2001, J Appl Physiol 90:412–420); on the thighs also a
damped 7 Hz sagittal jolt, extension first (``thigh_jolt_deg_per_g``; the real thighs'
heel-strike V, :mod:`imuhip.sim.realism`). Standing is
artefact-free (drivers at their standing values), so a standing calibration sees the bone.

The truth (segment orientations, joint angles) never contains the artefact; the sensor's true
orientation (``Truth.q_world_sensor``) does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from imuhip.sim.anatomy import BodyState
from imuhip.sim.curves import DEG, FloatArray
from imuhip.sim.kinematics import Body
from imuhip.sim.realism import Realism

__all__ = ["SoftTissue", "draw_misalignment"]

RING_HZ: Final = 12.0
RING_TAU_S: Final = 0.04
RING_ONSET_S: Final = 0.004
JOLT_HZ: Final = 7.0
JOLT_TAU_S: Final = 0.1
_LONG: Final = 1  # segment Y
_FLEX: Final = 2  # segment Z: + flexes the segment


def _side(placement: str) -> str:
    return "left" if placement.endswith("_l") else "right"


def drivers(st: BodyState, placement: str) -> FloatArray:
    """Joint angles driving the artefact of a placement, ``(N, D)`` rad."""
    kind = placement.split("_")[0]
    side = _side(placement)
    if kind == "thigh":
        return st.hip[side]
    if kind == "shank":
        return np.stack([st.knee[side], st.hip[side][:, 0]], axis=-1)
    if kind == "foot":
        return st.knee[side][:, None]
    return np.concatenate(
        [st.pelvis, st.hip["left"][:, :1], st.hip["right"][:, :1]], axis=-1
    )  # pelvis, lumbar


@dataclass(frozen=True, slots=True)
class SoftTissue:
    """The drawn artefact of one sensor: ``rotvec(st)`` gives its rotation vector, rad."""

    placement: str
    weights: FloatArray  # (3, D): rows = segment axes X, Y, Z
    standing: FloatArray  # (D,) driver values at activation 0
    impact_times_s: FloatArray  # heel strikes of the side, simulation s
    impact_amp_rad: FloatArray  # ringing amplitude per heel strike, rad (about the long axis)
    jolt_amp_rad: FloatArray | None = None  # thighs: sagittal jolt per heel strike, rad

    @classmethod
    def draw(
        cls, body: Body, realism: Realism, placement: str, rng: np.random.Generator
    ) -> SoftTissue | None:
        """Draw the artefact of ``placement`` (``None`` if its RMS is 0)."""
        rms = realism.sta_deg(placement) * DEG
        if rms <= 0:
            return None
        seg = (placement,)
        tl = body.tl
        s0, s1 = tl.steady
        grid = np.arange(s0, max(s1, s0 + 1.0), 0.01)
        if tl.turn is not None:
            grid = grid[(grid < tl.turn[0]) | (grid > tl.turn[1])]
        st0 = body.state(np.array([0.0]), seg)
        standing = drivers(st0, placement)[0]
        d = drivers(body.state(grid, seg), placement) - standing
        w = rng.normal(size=(3, d.shape[1]))
        target = np.array([realism.sta_off_axis_ratio, 1.0, realism.sta_off_axis_ratio]) * rms
        raw = d @ w.T
        raw_rms = np.sqrt(np.mean(raw**2, axis=0))
        w = w * (target / np.maximum(raw_rms, 1e-12))[:, None]
        t_k, g_k = body.impacts[_side(placement)]
        amp = realism.sta_impact_deg_per_g * DEG * g_k * rng.choice([-1.0, 1.0], len(g_k))
        jolt = None
        if placement.startswith("thigh") and realism.thigh_jolt_deg_per_g > 0:
            jolt = realism.thigh_jolt_deg_per_g * DEG * g_k
        return cls(placement, w, standing, t_k, amp, jolt)

    def rotvec(self, st: BodyState) -> FloatArray:
        """Rotation vector of the sensor against its bone, segment frame, ``(N, 3)`` rad."""
        v = (drivers(st, self.placement) - self.standing) @ self.weights.T
        if len(self.impact_times_s):
            t = st.t
            j = np.searchsorted(self.impact_times_s, t)[:, None] + np.arange(-2, 1)[None, :]
            ok = (j >= 0) & (j < len(self.impact_times_s))
            jj = np.clip(j, 0, len(self.impact_times_s) - 1)
            dt = t[:, None] - self.impact_times_s[jj]
            ring = (
                ndtr(dt / RING_ONSET_S)
                * np.exp(-np.maximum(dt, 0.0) / RING_TAU_S)
                * np.sin(2 * np.pi * RING_HZ * np.maximum(dt, 0.0))
            )
            v[:, _LONG] += np.sum(np.where(ok, ring * self.impact_amp_rad[jj], 0.0), axis=1)
            if self.jolt_amp_rad is not None:
                tp = np.maximum(dt, 0.0)
                jolt = (
                    ndtr(dt / RING_ONSET_S)
                    * np.exp(-tp / JOLT_TAU_S)
                    * np.sin(2 * np.pi * JOLT_HZ * tp)
                )  # extension first: the rate falls at the heel strike, then rebounds
                v[:, _FLEX] -= np.sum(np.where(ok, jolt * self.jolt_amp_rad[jj], 0.0), axis=1)
        return np.asarray(v, dtype=np.float64)


def draw_misalignment(
    sigma_deg: float, rng: np.random.Generator
) -> dict[str, npt.NDArray[np.float64]]:
    """Per-triad (acc, gyr, mag) maps ``I + E`` with off-diagonal ``E ~ N(0, sigma)`` (rad)."""
    out = {}
    for name in ("acc", "gyr", "mag"):
        e = rng.normal(0.0, sigma_deg * DEG, (3, 3))
        np.fill_diagonal(e, 0.0)
        out[name] = np.eye(3) + e
    return out
