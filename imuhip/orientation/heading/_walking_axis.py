"""The walking-axis constraint (6D): remove the slow pelvis–thigh relative heading drift.

During walking the thigh's flexion axis must lie along the pelvis mediolateral axis, i.e. the
mean hip rotation over a window of several strides is held constant (zero after calibration).
The heading offset is estimated per window from block sums (one compiled pass,
:func:`imuhip.orientation._heading_kernels.heading_block_sums`) and interpolated between the
anchor windows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import numpy.typing as npt

from imuhip.orientation import _heading_kernels as _kq
from imuhip.orientation.heading._config import BoolArray, FloatArray, HeadingConfig

__all__ = ["HeadingCorrection", "correct_thigh_heading"]


@dataclass(frozen=True, slots=True)
class HeadingCorrection:
    """Result of :func:`correct_thigh_heading`.

    ``q_world_thigh`` is the corrected thigh segment orientation ``(M, 4)``; ``offset_rad``
    the removed heading offset ``(M,)`` (about world up); ``anchor`` ``(M,)`` bool marks samples in
    anchor windows; ``confidence`` ``(M,)``; ``drift_rad_per_s`` the fitted slope of the offset.
    """

    q_world_thigh: FloatArray
    offset_rad: FloatArray
    anchor: BoolArray
    confidence: FloatArray
    drift_rad_per_s: float
    note: str


def _signed_angle_about_up(a: FloatArray, b: FloatArray) -> FloatArray:
    """Angle (rad) that rotates horizontal vector ``a`` onto ``b`` about world up."""
    cross = a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]
    dot = a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1]
    return np.asarray(np.arctan2(cross, dot), dtype=np.float64)


def correct_thigh_heading(
    q_world_pelvis: npt.ArrayLike,
    q_world_thigh: npt.ArrayLike,
    gyr_thigh_world_rad_s: npt.ArrayLike,
    rate_hz: float,
    valid: npt.ArrayLike | None = None,
    cfg: HeadingConfig | None = None,
    name: str = "thigh",
    method: Literal["mean_axis", "flexion_axis"] = "mean_axis",
    segment_axis: tuple[float, float, float] = (0.0, 0.0, 1.0),
) -> HeadingCorrection:
    """Remove the slow pelvis–thigh relative heading drift with the walking-axis constraint.

    Per window (``cfg.window_s``, hop ``cfg.hop_s``) of walking (thigh angular velocity RMS and a
    clear principal axis), the thigh's heading offset is the angle about world up from the mean
    horizontal pelvis mediolateral axis to, with ``method="mean_axis"`` (default), the mean
    horizontal thigh mediolateral axis (the mean hip rotation over the window is held at zero), or,
    with ``method="flexion_axis"``, the principal axis of the thigh angular velocity (the flexion
    axis is held perpendicular to the walking direction; measured biased by 2–4° on synthetic
    walking because the thigh is inclined while it flexes, so not the default).
    ``segment_axis`` selects the compared segment axis (Z; X for the lumbar segment).
    Offsets of anchor windows are interpolated linearly between window centres (held constant
    outside), i.e.
    low-passed at the window scale, and the thigh is turned back by that angle about world up.
    Within-window (within-stride) motion is untouched.

    Parameters
    ----------
    q_world_pelvis, q_world_thigh : (M, 4) float
        Segment orientations, each in its own filter's world frame (6D: headings unrelated).
    gyr_thigh_world_rad_s : (M, 3) float
        Thigh angular velocity in the thigh filter's world frame.
    rate_hz : float
    valid : (M,) bool, optional
    cfg : HeadingConfig, optional
    name : str
        Placement used in the note.

    Returns
    -------
    HeadingCorrection
    """
    cfg = cfg or HeadingConfig()
    qp = np.asarray(q_world_pelvis, dtype=np.float64)
    qt = np.asarray(q_world_thigh, dtype=np.float64)
    g = np.asarray(gyr_thigh_world_rad_s, dtype=np.float64)
    m = len(qt)
    if qp.shape != (m, 4) or qt.shape != (m, 4) or g.shape != (m, 3):
        raise ValueError("q_world_pelvis, q_world_thigh must be (M, 4), gyr (M, 3), same M")
    ok = np.ones(m, bool) if valid is None else np.asarray(valid, dtype=bool)
    (fit,) = _heading_fit(
        qp, _NO_CAL, qt, _NO_CAL, _NO_QUAT, g, ok, rate_hz, cfg, name, method, segment_axis
    )
    anchor = _kq.anchor_mask(fit.starts, fit.win, m)
    if fit.off_rad is None:
        return HeadingCorrection(
            q_world_thigh=qt,
            offset_rad=np.zeros(m),
            anchor=anchor,
            confidence=np.zeros(m),
            drift_rad_per_s=float("nan"),
            note=fit.note,
        )
    offset = np.interp(np.arange(m, dtype=np.float64), fit.centres, fit.off_rad)
    q_corr = _kq.heading_fix(np.ascontiguousarray(qt), offset)
    return HeadingCorrection(
        q_corr, offset, anchor, fit.confidence(m), fit.drift_rad_per_s, fit.note
    )


_NO_CAL = np.zeros(0)
"""Empty sensor-to-segment rotation: the kernels then use the orientations as given."""
_NO_QUAT = np.zeros((0, 4))
"""Empty gyroscope orientation: the kernels then take the angular velocity as world-frame."""
_NO_GYR = np.zeros((0, 3))
_NO_MASK = np.zeros(0, dtype=np.bool_)


@dataclass(frozen=True, slots=True)
class _HeadingFit:
    """The walking-axis fit of :func:`correct_thigh_heading` before any per-sample output.

    ``centres`` (sample index) and ``off_rad`` (unwrapped, ``None`` without anchor windows) of
    the anchor windows: the offset per sample is ``np.interp(t_idx, centres, off_rad)``;
    :meth:`confidence` makes the per-sample confidence on demand (the 9D pipeline does not
    need it).
    """

    starts: npt.NDArray[np.int64]
    win: int
    centres: FloatArray
    off_rad: FloatArray | None
    drift_rad_per_s: float
    note: str
    rate_hz: float
    cfg: HeadingConfig
    #: (M,) rows re-converging after a filter restart (``None``: no restart), see ``_epochs``
    reconverging: BoolArray | None = None

    def confidence(self, m: int) -> FloatArray:
        """Anchor confidence per sample, ``(m,)`` (0 without anchors)."""
        if self.off_rad is None:
            return np.zeros(m)
        cs = np.sort(self.centres)
        conf = _kq.heading_conf_args(
            cs, m, float(self.rate_hz), 0.5 * self.cfg.window_s, float(self.cfg.anchor_tau_s)
        )
        np.exp(conf, out=conf)
        conf *= self.cfg.anchored_confidence
        return conf


def _heading_fit(
    qp: FloatArray,
    cal_p: FloatArray,
    qt: FloatArray,
    cal_t: FloatArray,
    q_gyr: FloatArray,
    gyr: FloatArray,
    ok: BoolArray,
    rate_hz: float,
    cfg: HeadingConfig,
    name: str,
    method: str,
    segment_axis: tuple[float, float, float],
    second: tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray, str] | None = None,
    pairs: list[npt.NDArray[np.int64] | None] | None = None,
) -> list[_HeadingFit]:
    """Walking-axis heading offsets per sample, from segment or sensor orientations.

    ``qp``/``qt`` are segment orientations (``cal_* = _NO_CAL``) or sensor orientations with
    their sensor-to-segment rotations ``cal_*`` (4,) (``normalize(q) ⊗ cal``, as
    :func:`imuhip.gait.joints.segment_orientation`); ``gyr`` is the world angular velocity
    (``q_gyr = _NO_QUAT``) or the sensor-frame one with ``q_gyr`` its sensor orientation.
    ``second`` = ``(qt, cal_t, q_gyr, gyr, ok, name)`` of another segment against the same
    pelvis (both thighs in one pass). Inputs checked by the callers; the same numbers as the
    numpy version before it (tests). One fit per segment. ``pairs`` (one per segment, from
    :func:`imuhip.orientation.heading._epochs.pair_epochs`, ``None`` = no filter restart):
    anchors per filter epoch pair and the re-converging rows (``_epochs.reanchor``).
    """
    m = len(ok)
    win = max(2, round(cfg.window_s * rate_hz))
    hop = max(1, round(cfg.hop_s * rate_hz))
    starts, length = _window_layout(m, win, hop)
    b = math.gcd(win, hop)
    c = np.ascontiguousarray
    if second is None:
        two: tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray] = (
            _NO_QUAT,
            _NO_CAL,
            _NO_QUAT,
            _NO_GYR,
            _NO_MASK,
        )
        names = [name]
    else:
        two = (c(second[0]), second[1], c(second[2]), c(second[3]), c(second[4], dtype=np.bool_))
        names = [name, second[5]]
    blocks = _kq.heading_block_sums(
        c(qp),
        cal_p,
        c(qt),
        cal_t,
        c(q_gyr),
        c(gyr),
        c(ok, dtype=np.bool_),
        *two,
        second is not None,
        np.asarray(segment_axis, dtype=np.float64),
        b,
        length // b,
    )
    first = starts // b
    fits = []
    for blk, nm in zip(blocks, names, strict=True):
        sums = np.zeros((len(starts), blk.shape[1]), dtype=np.float64)
        for j in range(win // b):
            sums += blk[first + j]
        fits.append(_fit_from_sums(sums, starts, win, rate_hz, cfg, nm, method))
    if pairs is None or all(p is None for p in pairs):
        return fits
    segs = [(qt, cal_t, q_gyr, gyr, ok)]
    if second is not None:
        segs.append((second[0], second[1], second[2], second[3], second[4]))
    out = []
    for f, pair, seg in zip(fits, pairs, segs, strict=True):
        out.append(
            f if pair is None else _with_epochs(f, pair, qp, cal_p, seg, method, segment_axis)
        )
    return out


def _with_epochs(
    f: _HeadingFit,
    pair: npt.NDArray[np.int64],
    qp: FloatArray,
    cal_p: FloatArray,
    seg: tuple[FloatArray, FloatArray, FloatArray, FloatArray, BoolArray],
    method: str,
    segment_axis: tuple[float, float, float],
) -> _HeadingFit:
    """``f`` with its anchors split at the filter restarts of ``pair`` (``_epochs.reanchor``)."""
    from imuhip.orientation.heading import _epochs

    qt, cal_t, q_gyr, gyr, ok = seg

    def short_fit(a: int, b: int) -> float | None:
        cfg = _epochs._short_cfg(f.cfg, b - a, f.rate_hz)
        qg = q_gyr if not len(q_gyr) else q_gyr[a:b]
        (g,) = _heading_fit(
            qp[a:b], cal_p, qt[a:b], cal_t, qg, gyr[a:b], ok[a:b], f.rate_hz, cfg, "",
            method, segment_axis,
        )  # fmt: skip
        return None if g.off_rad is None or not len(g.off_rad) else float(g.off_rad[-1])

    starts, centres, off, reconv = _epochs.reanchor(
        f.starts,
        f.off_rad,
        f.win,
        max(1, round(f.cfg.hop_s * f.rate_hz)),
        pair,
        f.rate_hz,
        f.cfg,
        short_fit,
    )
    if not len(centres):
        return replace(f, starts=starts, centres=centres, off_rad=None, reconverging=reconv)
    return replace(f, starts=starts, centres=centres, off_rad=off, reconverging=reconv)


def _fit_from_sums(
    sums: FloatArray,
    starts: npt.NDArray[np.int64],
    win: int,
    rate_hz: float,
    cfg: HeadingConfig,
    name: str,
    method: str,
) -> _HeadingFit:
    keep_starts, offsets_arr = _offsets_from_sums(sums, starts, win, cfg, method)
    c = (keep_starts + 0.5 * win).astype(np.float64)
    if not len(keep_starts):
        note = f"6D: {name} relative heading unanchored (no walking with a clear flexion axis)"
        return _HeadingFit(keep_starts, win, c, None, float("nan"), note, rate_hz, cfg)
    off = np.unwrap(offsets_arr)
    drift = float(np.polyfit(c / rate_hz, off, 1)[0]) if len(c) > 1 else 0.0
    note = (
        f"6D: {name} heading anchored by walking-axis constraint in {len(c)} windows, "
        f"drift {np.rad2deg(drift) * 60:.1f} deg/min"
    )
    return _HeadingFit(keep_starts, win, c, off, drift, note, rate_hz, cfg)


def _window_layout(m: int, win: int, hop: int) -> tuple[npt.NDArray[np.int64], int]:
    """Window starts and the padded sample count ``L`` (whole blocks of ``gcd(win, hop)``
    samples covering every window) of the block sums."""
    starts = np.arange(0, max(1, m - win + 1), hop, dtype=np.int64)
    b = math.gcd(win, hop)
    return starts, -(-max(m, int(starts[-1]) + win) // b) * b


def _offsets_from_sums(
    sums: FloatArray,
    starts: npt.NDArray[np.int64],
    win: int,
    cfg: HeadingConfig,
    method: str,
) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """Anchor windows and their heading offsets (rad) from the per-window sums ``(windows, 11)``.

    The 2 x 2 horizontal angular velocity covariance's eigenvalues and principal axis in closed
    form (its third row and column are zero: the vertical angular velocity is dropped, so they
    are the 3 x 3 ``eigh`` of the per-window loop this replaced, within round-off).
    """
    n = sums[:, 0]
    keep = n >= 0.8 * win
    with np.errstate(divide="ignore", invalid="ignore"):
        rms = np.sqrt(sums[:, 1] / n)
        keep &= ~(rms < cfg.min_gyr_rms_rad_s)
        cxx, cyy, cxy = sums[:, 2] / n, sums[:, 3] / n, sums[:, 4] / n
        half_tr = 0.5 * (cxx + cyy)
        rad = np.hypot(0.5 * (cxx - cyy), cxy)
        w_hi = half_tr + rad
        w_lo = half_tr - rad
        # eigh of the 3 x 3 covariance sorts the 0 of its vertical row in: its middle value
        w_mid = np.maximum(w_lo, 0.0)
        keep &= ~(np.sqrt(w_hi / np.maximum(w_mid, 1e-12)) < cfg.min_axis_ratio)
    zt = sums[keep, 5:8] / n[keep, None]
    zp = sums[keep, 8:11] / n[keep, None]
    if method == "mean_axis":
        axis = zt
    else:
        a_, d_, b_, hi = cxx[keep], cyy[keep], cxy[keep], w_hi[keep]
        vx = np.where(a_ >= d_, hi - d_, b_)
        vy = np.where(a_ >= d_, b_, hi - a_)
        flip = (vx * zt[:, 0] + vy * zt[:, 1]) < 0
        axis = np.column_stack(
            [np.where(flip, -vx, vx), np.where(flip, -vy, vy), np.zeros(len(vx))]
        )
    return starts[keep], _signed_angle_about_up(zp, axis)
