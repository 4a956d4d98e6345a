"""Pelvis–thigh relative heading: magnetic field quality, 6D drift correction, confidence.

Hip rotation turns about a near-vertical axis, so its accuracy is decided by how well the heading
of the thigh is known relative to the pelvis. Two sources (derivation in ``docs/joint_angles.md``):

* **Magnetometer (9D)** where the field is clean: its norm and dip angle stay within thresholds
  of their session reference (de Vries et al. 2009, doi:10.1016/j.gaitpost.2009.07.100: field
  disturbances indoors; Laidig & Seel 2023 VQF, doi:10.1016/j.inffus.2022.10.014).
* **Walking-axis constraint (6D)**: each filter's heading drifts on its own. During walking the
  thigh's flexion axis (principal axis of its angular velocity over a window of several strides)
  must lie along the pelvis mediolateral axis, i.e. the mean hip rotation over a window is
  assumed constant (zero after calibration). Estimating that heading offset per window and
  removing its slow part keeps the within-stride excursion and removes drift; it cannot see a real
  slow change of the mean rotation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from imuhip.orientation import _heading_kernels as _kq
from imuhip.types import OrientationSession

__all__ = [
    "VENDOR_HEADING_KEY",
    "HeadingConfig",
    "HeadingCorrection",
    "MagQuality",
    "correct_thigh_heading",
    "mag_field_quality",
    "transverse_confidence",
    "vendor_heading_anchored",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
_UP = np.array([0.0, 0.0, 1.0])

#: ``OrientationSession.diagnostics[p][VENDOR_HEADING_KEY]``: (M,) bool, the vendor's own fusion
#: referenced this sensor's heading to the magnetometer (set by vendor imports, e.g. Xsens).
VENDOR_HEADING_KEY = "vendor_heading_anchored"


@dataclass(frozen=True, slots=True)
class HeadingConfig:
    """Thresholds and time constants of the heading module (units in the names).

    Parameters
    ----------
    max_norm_dev_frac : float
        Field norm within this fraction of the reference counts as clean.
    max_dip_dev_rad : float
        Dip angle within this of the reference counts as clean.
    mag_hold_tau_s : float
        After the field becomes disturbed the filter holds heading by gyro; confidence decays
        with this time constant.
    window_s : float
        Window of one walking-axis heading estimate (several strides).
    hop_s : float
        Step between windows.
    min_axis_ratio : float
        Window is an anchor when the first/second principal angular velocity ratio exceeds this.
    min_gyr_rms_rad_s : float
        ... and the thigh angular velocity RMS exceeds this (the subject walks).
    anchored_confidence : float
        Confidence right at a 6D walking-axis anchor (the constraint's own uncertainty).
    anchor_tau_s : float
        Confidence decay time constant away from the nearest anchor.
    vendor_anchored_confidence : float
        Confidence of a vendor orientation whose heading the vendor's fusion referenced to the
        magnetometer (:func:`vendor_heading_anchored`) when the raw field is not available to
        check: a common drift-free heading, but disturbances cannot be detected here, so below
        the 1.0 of a field this module checked clean.
    """

    max_norm_dev_frac: float = 0.10
    max_dip_dev_rad: float = float(np.deg2rad(5.0))
    mag_hold_tau_s: float = 30.0
    window_s: float = 8.0
    hop_s: float = 2.0
    min_axis_ratio: float = 2.0
    min_gyr_rms_rad_s: float = 0.6
    anchored_confidence: float = 0.7
    anchor_tau_s: float = 60.0
    vendor_anchored_confidence: float = 0.7


@dataclass(frozen=True, slots=True)
class MagQuality:
    """Per-sample field quality of one sensor.

    ``norm_ut`` and ``dip_rad`` are ``(M,)``; ``clean`` is ``(M,)`` bool; ``ref_*`` the session
    reference (median over the reference window).
    """

    norm_ut: FloatArray
    dip_rad: FloatArray
    clean: BoolArray
    ref_norm_ut: float
    ref_dip_rad: float


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


def mag_field_quality(
    q_world_sensor: npt.ArrayLike,
    mag_ut: npt.ArrayLike,
    ref_window: tuple[int, int] | None = None,
    cfg: HeadingConfig | None = None,
) -> MagQuality:
    """Magnetic field norm and dip angle per sample versus their reference.

    Parameters
    ----------
    q_world_sensor : (M, 4) float
        Sensor orientation (its inclination is what matters for the dip).
    mag_ut : (M, 3) float
        Magnetometer, sensor frame, µT.
    ref_window : (start_idx, stop_idx), optional
        Reference window (e.g. the static calibration window); default the whole session
        (median, robust to short disturbances).
    cfg : HeadingConfig, optional

    Returns
    -------
    MagQuality
        Dip is positive when the field points below the horizon (northern hemisphere).
    """
    return _mag_field_quality(q_world_sensor, mag_ut, ref_window, cfg, None)


def _mag_field_quality(
    q_world_sensor: npt.ArrayLike,
    mag_ut: npt.ArrayLike,
    ref_window: tuple[int, int] | None,
    cfg: HeadingConfig | None,
    scratch: FloatArray | None,
) -> MagQuality:
    """:func:`mag_field_quality`; ``scratch`` (3, M) holds the norm and dip arrays (reused
    across sensors: no fresh pages), else they are new."""
    cfg = cfg or HeadingConfig()
    q = np.asarray(q_world_sensor, dtype=np.float64)
    m = np.asarray(mag_ut, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 3 or q.shape != (len(m), 4):
        raise ValueError(
            f"mag_ut must be (M, 3) and q_world_sensor (M, 4), got {m.shape}, {q.shape}"
        )
    # one pass: field norm and the world field's vertical and horizontal parts (the operations
    # of quat_rotate and the row norms, in their order); numpy's arctan2 for the dip
    norm, dip, hor = np.empty((3, len(m))) if scratch is None else scratch
    _kq.mag_args(np.ascontiguousarray(q), np.ascontiguousarray(m), norm, dip, hor)
    np.arctan2(dip, hor, out=dip)
    sl = slice(*ref_window) if ref_window is not None else slice(None)
    # exact order statistic (the np.median value) by histogram selection, O(M)
    ref_n = float(_kq.median_exact(norm[sl]))
    ref_d = float(_kq.median_exact(dip[sl]))
    clean = _kq.mag_clean(
        norm, dip, ref_n, cfg.max_norm_dev_frac * ref_n, ref_d, float(cfg.max_dip_dev_rad)
    )
    return MagQuality(norm, dip, clean, ref_n, ref_d)


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
) -> list[_HeadingFit]:
    """Walking-axis heading offsets per sample, from segment or sensor orientations.

    ``qp``/``qt`` are segment orientations (``cal_* = _NO_CAL``) or sensor orientations with
    their sensor-to-segment rotations ``cal_*`` (4,) (``normalize(q) ⊗ cal``, as
    :func:`imuhip.gait.joints.segment_orientation`); ``gyr`` is the world angular velocity
    (``q_gyr = _NO_QUAT``) or the sensor-frame one with ``q_gyr`` its sensor orientation.
    ``second`` = ``(qt, cal_t, q_gyr, gyr, ok, name)`` of another segment against the same
    pelvis (both thighs in one pass). Inputs checked by the callers; the same numbers as the
    numpy version before it (tests). One fit per segment.
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
    return fits


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


def vendor_heading_anchored(ori: OrientationSession, placement: str) -> bool:
    """True when a vendor import says its fusion referenced ``placement``'s heading to the
    magnetometer on every sample (``diagnostics[placement][VENDOR_HEADING_KEY]``)."""
    flag = ori.diagnostics.get(placement, {}).get(VENDOR_HEADING_KEY)
    return (
        ori.source.startswith("vendor:")
        and flag is not None
        and len(flag) == len(ori.t_s)
        and bool(np.all(flag))
    )


def transverse_confidence(
    ori: OrientationSession,
    corrections: dict[str, HeadingCorrection] | None = None,
    cfg: HeadingConfig | None = None,
    ref_window: tuple[int, int] | None = None,
) -> tuple[FloatArray, tuple[str, ...]]:
    """How well the pelvis–thigh relative heading is known, per sample, and why.

    Parameters
    ----------
    ori : OrientationSession
    corrections : dict, optional
        6D walking-axis corrections per thigh placement (:func:`correct_thigh_heading`).
    cfg : HeadingConfig, optional
    ref_window : (start_idx, stop_idx), optional
        Magnetic reference window (e.g. the static calibration window).

    Returns
    -------
    confidence : (M,) float in [0, 1]
        Minimum over the thighs (and pelvis): 1 with a clean magnetometer on every involved sensor;
        decaying with ``mag_hold_tau_s`` after a disturbance; 6D: the correction's confidence
        (anchored value decaying away from anchors); ``vendor_anchored_confidence`` for a vendor
        orientation referenced to the magnetometer by the vendor (field not available); 0
        without any heading anchor.
    reasons : tuple of str
    """
    return _transverse_confidence(
        ori, {p: c.confidence for p, c in (corrections or {}).items()}, cfg, ref_window
    )


def _transverse_confidence(
    ori: OrientationSession,
    anchor_conf: dict[str, FloatArray],
    cfg: HeadingConfig | None = None,
    ref_window: tuple[int, int] | None = None,
) -> tuple[FloatArray, tuple[str, ...]]:
    """:func:`transverse_confidence` from the corrections' confidences only (``(M,)`` each)."""
    cfg = cfg or HeadingConfig()
    m = len(ori.t_s)
    conf = np.ones(m)
    scratch: FloatArray | None = None
    reasons: list[str] = []
    involved = [p for p in ("pelvis", "thigh_l", "thigh_r") if p in ori.q_world_sensor]
    for p in involved:
        if p in anchor_conf:
            np.minimum(conf, anchor_conf[p], out=conf)
            continue
        mag = ori.mag_ut.get(p)
        if mag is None and vendor_heading_anchored(ori, p):
            np.minimum(conf, cfg.vendor_anchored_confidence, out=conf)
            reasons.append(
                f"{p}: heading from the vendor's magnetometer-referenced fusion ({ori.source}); "
                f"the field itself is not in the file, so disturbances cannot be checked "
                f"(confidence {cfg.vendor_anchored_confidence:g})"
            )
            continue
        if mag is None:
            if p == "pelvis":
                continue  # 6D pelvis: the thighs' heading is judged relative to it
            conf = np.zeros(m)
            reasons.append(f"6D: {p} heading not anchored (no magnetometer, no correction)")
            continue
        if scratch is None:
            scratch = np.empty((3, m))
        mq = _mag_field_quality(ori.q_world_sensor[p], mag, ref_window, cfg, scratch)
        clean = mq.clean & np.asarray(ori.valid[p], bool)
        if np.all(clean):
            continue
        # held by the gyroscope since the last clean sample: 0.9 exp(-since_s / tau); clean
        # samples hold 1 (no update of a confidence <= 1), so only the others are touched
        idx, c = _kq.hold_args(clean, float(ori.rate_hz), float(cfg.mag_hold_tau_s))
        np.exp(c, out=c)
        c *= 0.9
        conf[idx] = np.minimum(conf[idx], c)
        # report disturbances, bridging flickers shorter than 0.5 s (binary closing, 1-D)
        gap = max(1, round(0.5 * ori.rate_hz))
        t_s = np.asarray(ori.t_s)
        for a, b in zip(*_kq.disturbed_runs(clean, gap), strict=True):
            reasons.append(
                f"magnetic disturbance on {p} {float(t_s[a]):.1f}-{float(t_s[b - 1]):.1f} s"
            )
    return np.clip(conf, 0.0, 1.0), tuple(reasons)
