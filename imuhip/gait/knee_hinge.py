"""Thigh soft-tissue artefact about the femur's long axis, estimated from the knee as a hinge.

A skin-mounted thigh sensor turns against the femur, most of all about the femur's long axis
(Cappozzo et al. 1996, doi:10.1016/0268-0033(95)00046-1; Camomilla et al. 2017,
doi:10.1016/j.jbiomech.2016.11.040), and hip rotation is exactly the rotation about that axis:
the artefact adds to it one to one. With the thigh sensor alone nothing separates it from bone
rotation. A shank sensor does: the knee flexes about an axis fixed in the femur (its
mediolateral axis, segment Z), so the direction of the shank's angular velocity relative to
the thigh, seen in the thigh's estimated frame, turns by minus the artefact angle.

Model and estimate, per side with a calibrated shank sensor:

1. The relative angular velocity ``ω = ω_shank − ω_thigh`` in the estimated femur frame
   (gyroscopes, rotated with the fused orientations and the segment calibration). Each sensor's
   fused heading is its own (6D, or a magnetometer rejected as disturbed), and a heading error
   of the shank against the thigh turns part of the thigh's swing into an apparent knee-axis
   tilt; so the shank's world vectors are first turned by the heading offset that makes the
   knee axis steadiest, per 10-s window (:func:`_relative_heading`). The component
   along the tibia's long axis (shank segment Y, from the standing calibration) is tibial
   axial rotation, not flexion, and is removed; what is left is flexion about the knee axis
   plus the small varus/valgus rate (Grood & Suntay 1983 knee joint coordinate system).
2. Where the knee turns fast (``|ω_z| ≥ min_knee_rate_rad_s``: loading response and swing),
   the knee axis points along ``(−sin β, 0, cos β)`` in the estimated femur frame, so
   ``β_m = atan(−ω_x / ω_z)``.
3. The artefact is modelled as a linear function of the joint angles (Camomilla et al. 2013,
   doi:10.1016/j.jbiomech.2012.09.018: thigh artefact from the hip angles; knee flexion added
   for the quadriceps and fascia sliding over the femur): ``β(t) = Σ c_k θ_k(t)`` with θ the
   hip flexion, adduction and rotation as measured and the knee flexion. The coefficients are
   fitted per side by weighted ridge least squares over the whole walk. Both sides of the fit
   are first detrended with the same weighted moving mean (``detrend_window_s``), which removes
   what is not artefact: the slow relative heading of the 6D shank against the thigh (about the
   near-vertical leg, indistinguishable from a long-axis turn) and any constant offset of the
   calibrations.
4. The correction is ``β̂(t) − mean over valid samples``: the mean hip rotation stays what the
   calibration made it; the within-stride pattern (and so the excursion) loses the artefact.
   Hip rotation is the last Cardan angle (Z–X′–Y″, about the thigh's own Y), so turning the
   thigh by ``−β̂`` about its long axis subtracts ``HIP_SIGN · β̂`` from hip rotation and leaves
   flexion and adduction unchanged.

The fit is applied only where it is supported (enough fast-knee samples spread over enough
strides); otherwise the hip angles stay as measured and a note says why. Without shank sensors
nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.conventions import HIP_SIGN, Side, quat_conj, quat_mul, quat_rotate, to_rotation
from imuhip.types import JointAngles, OrientationSession, SegmentCalibration

__all__ = ["KneeHingeConfig", "KneeHingeFit", "correct_thigh_artefact", "fit_thigh_artefact"]

FloatArray = npt.NDArray[np.float64]
_Y: Final = np.array([0.0, 1.0, 0.0])
_MAX_HEADING_STEP: Final = np.radians(10.0)  # per Gauss–Newton step


@dataclass(frozen=True, slots=True)
class KneeHingeConfig:
    """Options of :func:`correct_thigh_artefact` (SI units).

    ``min_knee_rate_rad_s``: knee flexion rate above which a sample measures the knee axis
    (about 57 °/s: the loading-response and swing flexion; slower samples are dominated by the
    varus/valgus and noise). ``detrend_window_s``: moving-mean window that removes slow relative
    heading and offsets (about two strides). ``ridge``: Tikhonov weight relative to the drivers'
    weighted variance. ``min_samples_s``: seconds of fast-knee samples needed for a fit.
    ``max_correction_deg``: a fitted correction with a larger RMS is refused (not a soft-tissue
    artefact: a loose sensor or a wrong calibration) and reported. ``min_r2`` and
    ``max_heading_spread_deg``: the hinge model must explain that share of the knee-axis
    motion, and the fitted shank heading may change at most that much within
    ``heading_window_s``, else nothing is applied (on the real gaittoolbox trial
    the fit needed 30–100° heading swings within seconds and removed 5–9° RMS: refused).
    ``max_heading_deg``: search range of the first heading guess. ``iterations``:
    Gauss–Newton steps of the joint fit.
    """

    min_knee_rate_rad_s: float = 1.0
    detrend_window_s: float = 2.5
    ridge: float = 0.005
    min_samples_s: float = 3.0
    max_correction_deg: float = 6.0
    min_r2: float = 0.3
    max_heading_spread_deg: float = 15.0
    heading_window_s: float = 10.0
    max_heading_deg: float = 45.0
    iterations: int = 3
    heading_smoothing: float = 1.0


@dataclass(frozen=True, slots=True)
class KneeHingeFit:
    """The fitted artefact of one thigh: ``beta_rad`` per sample (zero-mean), its RMS, a note."""

    side: str
    beta_rad: FloatArray | None
    coef: FloatArray | None  # per driver (hip flexion, adduction, rotation, knee flexion)
    rms_deg: float
    n_samples: int
    note: str


def _segment(ori: OrientationSession, segcal: SegmentCalibration, p: str) -> FloatArray:
    q = quat_mul(np.asarray(ori.q_world_sensor[p], np.float64), segcal.q_sensor_segment[p])
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def _moving_mean(x: FloatArray, w: FloatArray, n: int) -> FloatArray:
    """Weighted centred moving mean of ``x`` (columns) with weights ``w`` over ``n`` samples."""
    k = np.ones(max(n, 1))
    den = np.convolve(w, k, mode="same")
    xs = x if x.ndim == 2 else x[:, None]
    num = np.stack([np.convolve(w * xs[:, j], k, mode="same") for j in range(xs.shape[1])], 1)
    out = num / np.maximum(den, 1e-12)[:, None]
    return out if x.ndim == 2 else out[:, 0]


def _rotmats(q: FloatArray) -> FloatArray:
    """``(N, 3, 3)`` rotation matrices of unit quaternions."""
    return np.asarray(to_rotation(q).as_matrix(), dtype=np.float64)


def _turn_z(v: FloatArray, delta: FloatArray | float) -> FloatArray:
    """World vectors turned by ``delta`` about the world vertical."""
    c, s = np.cos(delta), np.sin(delta)
    return np.column_stack([c * v[:, 0] - s * v[:, 1], s * v[:, 0] + c * v[:, 1], v[:, 2]])


def _knee_axis(
    r_fw: FloatArray,
    w_t: FloatArray,
    w_s: FloatArray,
    y_s: FloatArray,
    delta: FloatArray | float,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Relative angular velocity (x, z) in the estimated femur frame, and the knee flexion.

    The shank's world vectors are first turned by ``delta`` (its heading against the thigh's);
    the component along the tibia's long axis is removed (tibial axial rotation).
    """
    w_rel = np.einsum("nij,nj->ni", r_fw, _turn_z(w_s, delta) - w_t)
    y_tib = np.einsum("nij,nj->ni", r_fw, _turn_z(y_s, delta))
    w_rel = w_rel - np.sum(w_rel * y_tib, axis=1, keepdims=True) * y_tib
    knee = np.arctan2(y_tib[:, 0], y_tib[:, 1])  # shank = thigh ⊗ Rz(−knee)
    return w_rel[:, 0], w_rel[:, 2], knee


def _relative_heading(
    r_fw: FloatArray,
    w_t: FloatArray,
    w_s: FloatArray,
    y_s: FloatArray,
    base: npt.NDArray[np.bool_],
    rate_hz: float,
    cfg: KneeHingeConfig,
) -> FloatArray:
    """Heading of the shank's fused world frame against the thigh's, per sample, rad.

    Without a (clean) magnetometer each sensor's heading is its own, so the shank's angular
    velocity, turned into the thigh frame, carries a share of the thigh's own swing that looks
    like a tilted knee axis. Per window of ``heading_window_s`` the heading offset is the one
    (on a 1° grid, ±``max_heading_deg``) that makes the knee axis the steadiest (least weighted
    variance of its angle in the femur's transverse plane); between window centres it is
    interpolated.
    """
    n = len(w_t)
    grid = np.radians(np.arange(-cfg.max_heading_deg, cfg.max_heading_deg + 0.5, 1.0))
    step = max(int(cfg.heading_window_s * rate_hz), 1)
    centres: list[float] = []
    best: list[float] = []
    for a in range(0, n, step):
        sl = slice(a, min(a + step, n))
        if int(base[sl].sum()) < cfg.min_samples_s * rate_hz / 2:
            continue
        cost = np.full(len(grid), np.inf)
        for k, d in enumerate(grid):
            wx, wz, _ = _knee_axis(r_fw[sl], w_t[sl], w_s[sl], y_s[sl], d)
            thr = cfg.min_knee_rate_rad_s
            ok = base[sl] & (np.abs(wz) >= thr) & (np.abs(wx) < np.abs(wz))
            if ok.sum() < 10:
                continue
            b = np.arctan(-wx[ok] / wz[ok])
            w = wz[ok] ** 2
            m = np.sum(w * b) / np.sum(w)
            cost[k] = np.sum(w * (b - m) ** 2) / np.sum(w)
        if np.isfinite(cost).any():
            centres.append(0.5 * (sl.start + sl.stop - 1))
            best.append(float(grid[int(np.argmin(cost))]))
    if not best:
        return np.zeros(n)
    return np.interp(np.arange(n), np.asarray(centres), np.unwrap(np.asarray(best)))


def _hat_basis(n: int, step: int) -> FloatArray:
    """``(n, J)`` piecewise-linear interpolation basis with knots every ``step`` samples."""
    knots = np.arange(0, n + step - 1, step, dtype=np.float64)
    knots[-1] = min(knots[-1], n - 1)
    x = np.arange(n, dtype=np.float64)
    eye = np.eye(len(knots))
    return np.stack([np.interp(x, knots, eye[j]) for j in range(len(knots))], axis=1)


def _joint_fit(
    r_fw: FloatArray,
    w_t: FloatArray,
    w_s: FloatArray,
    y_s: FloatArray,
    base: npt.NDArray[np.bool_],
    drivers: FloatArray,
    delta: FloatArray,
    rate_hz: float,
    cfg: KneeHingeConfig,
) -> tuple[FloatArray, FloatArray, npt.NDArray[np.bool_]]:
    """Artefact coefficients and the shank's relative heading, fitted together.

    The heading offset must be part of the fit: chosen alone (steadiest knee axis) it absorbs
    part of the artefact. Gauss–Newton on the measured knee-axis angle
    ``b = atan(−(ω_x − β' sin k cos k)/ω_z)`` (the thigh gyroscope's own artefact rate ``β'``
    taken out, see the module docstring) against ``β = D c``, both detrended alike; unknowns
    the coefficients ``c`` and the heading offset at knots every ``heading_window_s``
    (piecewise linear, derivative of ``b`` by finite difference). Returns ``c``, the heading
    per sample and the samples used.
    """
    n = len(w_t)
    n_win = round(cfg.detrend_window_s * rate_hz)
    phi = _hat_basis(n, max(int(cfg.heading_window_s * rate_hz), 1))
    rates = np.gradient(drivers, axis=0) * rate_hz
    coef = np.zeros(drivers.shape[1])
    eps = np.radians(0.5)
    ok = base.copy()
    for it in range(cfg.iterations):
        wx, wz, knee = _knee_axis(r_fw, w_t, w_s, y_s, delta)
        if it == 0:
            ok = base & (np.abs(wz) >= cfg.min_knee_rate_rad_s) & (np.abs(wx) < np.abs(wz))
        idx = np.flatnonzero(ok)
        sc = np.sin(knee) * np.cos(knee)
        u = wx - (rates @ coef) * sc
        b = np.zeros(n)
        b[idx] = np.arctan(-u[idx] / wz[idx])
        wx_e, wz_e, _ = _knee_axis(r_fw, w_t, w_s, y_s, delta + eps)
        b_e = np.zeros(n)
        b_e[idx] = np.arctan(-(wx_e[idx] - (rates[idx] @ coef) * sc[idx]) / wz_e[idx])
        h = (b_e - b) / eps
        jac = np.zeros_like(drivers)
        jac[idx] = (wz[idx] / (wz[idx] ** 2 + u[idx] ** 2) * sc[idx])[:, None] * rates[idx]
        wts = np.where(ok, wz**2, 0.0)
        cols = np.column_stack([drivers - jac, -h[:, None] * phi])
        rhs = b - jac @ coef
        cols = cols - _moving_mean(cols, wts, n_win)
        rhs = rhs - _moving_mean(rhs, wts, n_win)
        sw = np.sqrt(wts[idx] / np.sum(wts[idx]))
        a_m = cols[idx] * sw[:, None]
        y = rhs[idx] * sw
        gram = a_m.T @ a_m
        reg = np.diag(gram).copy()
        reg[: drivers.shape[1]] *= cfg.ridge
        nd = drivers.shape[1]
        reg[nd:] = reg[nd:] * 1e-3 + 1e-12
        pen = np.diag(reg)
        # a fused heading moves slowly: neighbouring knots are tied together (first
        # differences, weight relative to the heading columns' mean information)
        nk = phi.shape[1]
        if nk > 1:
            dmat = np.diff(np.eye(nk), axis=0)
            lam = cfg.heading_smoothing * float(np.mean(np.diag(gram)[nd:]))
            pen[nd:, nd:] += lam * (dmat.T @ dmat)
        sol = np.linalg.solve(gram + pen, a_m.T @ y)
        sol[nd:] = np.clip(sol[nd:], -_MAX_HEADING_STEP, _MAX_HEADING_STEP)
        coef = sol[: drivers.shape[1]]
        delta = delta + phi @ sol[drivers.shape[1] :]
    return np.asarray(coef, np.float64), delta, ok


def _hinge_consistency(
    r_fw: FloatArray,
    w_t: FloatArray,
    w_s: FloatArray,
    y_s: FloatArray,
    drivers: FloatArray,
    coef: FloatArray,
    delta: FloatArray,
    ok: npt.NDArray[np.bool_],
    rate_hz: float,
    cfg: KneeHingeConfig,
) -> tuple[float, float]:
    """How well the knee behaved as a hinge: (R² of the fitted model on the detrended knee-axis
    angle, largest change of the fitted shank heading within ``heading_window_s``, degrees)."""
    wx, wz, knee = _knee_axis(r_fw, w_t, w_s, y_s, delta)
    rates = np.gradient(drivers, axis=0) * rate_hz
    n_win = round(cfg.detrend_window_s * rate_hz)
    wts = np.where(ok, wz**2, 0.0)
    b = np.zeros(len(wz))
    u = wx - (rates @ coef) * np.sin(knee) * np.cos(knee)
    b[ok] = np.arctan(-u[ok] / wz[ok])
    model = drivers @ coef
    bd = (b - _moving_mean(b, wts, n_win))[ok]
    md = (model - _moving_mean(model, wts, n_win))[ok]
    w = wts[ok] / np.sum(wts[ok])
    r2 = 1.0 - float(np.sum(w * (bd - md) ** 2) / max(float(np.sum(w * bd**2)), 1e-18))
    # change of the fitted heading between neighbouring knots (a fused heading drifts slowly;
    # a hinge fit that needs it to swing within seconds is not a hinge)
    from scipy.ndimage import maximum_filter1d, minimum_filter1d

    idx = np.flatnonzero(ok)
    if not len(idx):
        return r2, 0.0
    span = delta[idx[0] : idx[-1] + 1]
    size = max(int(cfg.heading_window_s * rate_hz), 1)
    moved = maximum_filter1d(span, size) - minimum_filter1d(span, size)
    return r2, float(np.degrees(np.max(moved)))


def fit_thigh_artefact(
    ori: OrientationSession,
    segcal: SegmentCalibration,
    angles: JointAngles,
    side: str,
    cfg: KneeHingeConfig | None = None,
) -> KneeHingeFit | None:
    """Fit the long-axis artefact of one thigh from its knee (``None`` without a shank)."""
    cfg = cfg or KneeHingeConfig()
    s = Side(side)
    thigh, shank = f"thigh_{s.suffix}", f"shank_{s.suffix}"
    need = (thigh, shank)
    if side not in angles.hip_rad or any(p not in segcal.q_sensor_segment for p in need):
        return None
    if any(p not in ori.q_world_sensor or ori.gyr_rad_s.get(p) is None for p in need):
        return None
    gyr_t = np.asarray(ori.gyr_rad_s[thigh], np.float64)
    gyr_s = np.asarray(ori.gyr_rad_s[shank], np.float64)
    q_wf = _segment(ori, segcal, thigh)  # estimated femur frame in the world
    w_t = quat_rotate(np.asarray(ori.q_world_sensor[thigh], np.float64), gyr_t)  # world
    w_s = quat_rotate(np.asarray(ori.q_world_sensor[shank], np.float64), gyr_s)
    y_s = quat_rotate(_segment(ori, segcal, shank), np.tile(_Y, (len(w_s), 1)))
    base = (
        np.asarray(angles.valid, bool)
        & np.asarray(ori.valid[shank], bool)
        & np.all(np.isfinite(w_t), axis=1)
        & np.all(np.isfinite(w_s), axis=1)
    )
    r_fw = _rotmats(quat_conj(q_wf))
    delta0 = _relative_heading(r_fw, w_t, w_s, y_s, base, ori.rate_hz, cfg)
    hip = np.asarray(angles.hip_rad[side], np.float64)
    drivers = np.where(np.isfinite(hip), hip, 0.0)
    v = np.asarray(angles.valid, bool)
    label = f"{thigh}: knee-hinge soft-tissue correction"
    wx, wz, _ = _knee_axis(r_fw, w_t, w_s, y_s, delta0)
    n_ok = int(np.sum(base & (np.abs(wz) >= cfg.min_knee_rate_rad_s) & (np.abs(wx) < np.abs(wz))))
    if n_ok < cfg.min_samples_s * ori.rate_hz:
        return KneeHingeFit(
            side, None, None, 0.0, n_ok,
            f"{label} not applied: {n_ok / ori.rate_hz:.1f} s of fast knee motion "
            f"(needs {cfg.min_samples_s:g} s)",
        )  # fmt: skip
    coef, delta, used = _joint_fit(r_fw, w_t, w_s, y_s, base, drivers, delta0, ori.rate_hz, cfg)
    r2, spread = _hinge_consistency(
        r_fw, w_t, w_s, y_s, drivers, coef, delta, used, ori.rate_hz, cfg
    )
    if r2 < cfg.min_r2 or spread > cfg.max_heading_spread_deg:
        return KneeHingeFit(
            side, None, coef, 0.0, n_ok,
            f"{label} not applied: the knee did not move as a hinge about an axis fixed in the "
            f"thigh (model explains {100 * r2:.0f} % of the knee-axis motion, needs "
            f"{100 * cfg.min_r2:.0f} %; the shank's heading against the thigh had to change "
            f"{spread:.0f}° within {cfg.heading_window_s:g} s, at most "
            f"{cfg.max_heading_spread_deg:g}°)",
        )  # fmt: skip
    beta = drivers @ coef
    beta = beta - (np.mean(beta[v]) if v.any() else 0.0)
    rms = float(np.degrees(np.sqrt(np.mean(beta[v] ** 2)))) if v.any() else 0.0
    if rms > cfg.max_correction_deg:
        return KneeHingeFit(
            side, None, coef, rms, n_ok,
            f"{label} refused: fitted artefact {rms:.1f}° RMS > {cfg.max_correction_deg:g}° "
            "(loose sensor or wrong calibration?)",
        )  # fmt: skip
    return KneeHingeFit(
        side, beta, coef, rms, n_ok,
        f"{label}: {rms:.1f}° RMS removed from hip rotation "
        f"({n_ok / ori.rate_hz:.1f} s of fast knee motion)",
    )  # fmt: skip


def correct_thigh_artefact(
    ori: OrientationSession,
    segcal: SegmentCalibration,
    angles: JointAngles,
    cfg: KneeHingeConfig | None = None,
) -> tuple[JointAngles, dict[str, float]]:
    """Hip angles with each thigh's long-axis artefact removed where a shank supports it.

    Returns the corrected angles (a note per side with a shank: what was removed, or why
    nothing was) and the RMS of the removed artefact per corrected side, degrees (for the
    report's quality section). Flexion and adduction are unchanged; hip rotation loses
    ``HIP_SIGN · β̂`` (see the module docstring). Without shank sensors ``angles`` is returned
    as it is.
    """
    notes: list[str] = []
    removed: dict[str, float] = {}
    hip = dict(angles.hip_rad)
    for side in ("left", "right"):
        fit = fit_thigh_artefact(ori, segcal, angles, side, cfg)
        if fit is None:
            continue
        notes.append(fit.note)
        if fit.beta_rad is not None:
            h = np.array(hip[side], dtype=np.float64, copy=True)
            h[:, 2] -= HIP_SIGN[Side(side)][2] * fit.beta_rad
            hip[side] = h
            removed[side] = round(fit.rms_deg, 2)
    if not notes:
        return angles, removed
    return replace(angles, hip_rad=hip, notes=(*angles.notes, *notes)), removed
