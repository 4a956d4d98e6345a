"""Foot contact of the simulated shanks: stance roll-over (Hansen, Childress & Knox 2004).

From initial contact to toe-off (the truth events) the shank-foot system rolls without slipping on
a roll-over arc fixed in the shank frame (doi:10.1016/j.clinbiomech.2004.01.005), so the shank's
sagittal angle follows from the knee position of the unchanged pelvis + thigh chain and the knee
flexion is derived. :class:`_FootContact` is the part of :class:`~imuhip.sim.kinematics.Body`
that computes it (see the model notes there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt
from scipy.special import ndtr

from imuhip.conventions import quat_conj, quat_mul, quat_rotate
from imuhip.sim.anatomy import (
    CONTACT_SIGMA_S,
    HJC_IN_PELVIS_M,
    KNEE_IN_THIGH_M,
    ROLLOVER_CENTRE_FROM_KNEE_M,
    ROLLOVER_RADIUS_M,
    ROLLOVER_RADIUS_RANGE_M,
    SWING_RETURN_FRAC,
    BodyState,
)
from imuhip.sim.curves import FloatArray, qz, smoothstep7
from imuhip.sim.timeline import phase_crossings

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


class _FootContact:
    """The foot-contact part of :class:`~imuhip.sim.kinematics.Body` (a mixin).

    The attributes and the two methods declared here are the body's own.
    """

    f_stride_hz: float
    stride_m: float
    toe_off_phase: float
    contact: dict[str, _Stances] | None

    if TYPE_CHECKING:

        def phase(self, t: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]: ...

        def state(self, t: npt.ArrayLike, segments: tuple[str, ...] | None = None) -> BodyState: ...

    def _stances(self, side: str, grid: tuple[FloatArray, FloatArray, FloatArray]) -> _Stances:
        """Stance intervals of one side (the truth's IC/TO) with their roll-over anchors."""
        ic_phase = 0.0 if side == "right" else 0.5
        ic = phase_crossings(self, ic_phase, grid)
        to = phase_crossings(self, (ic_phase + self.toe_off_phase) % 1.0, grid)
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
            (1.0 - self.toe_off_phase) / self.f_stride_hz,
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
