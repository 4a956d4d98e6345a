"""Segment axes in the sensor frames: vertical from gravity, mediolateral from flexion, anterior.

Steps 1 to 3 of :mod:`imuhip.orientation.segment_calibration`: every segment's Y (superior) axis
is the mean specific force of the static window; the thigh and shank Z (mediolateral) axis the
first principal axis of the angular velocity during walking or leg swings, orthogonalised against
Y (its sign comes from :mod:`~imuhip.orientation.segment_calibration._sign_cues`); the pelvis and
lumbar X (anterior) axis the walking direction (9D) or the pelvic obliquity cue (6D).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_rotate
from imuhip.errors import CalibrationError
from imuhip.orientation._calib_kernels import cov3, fwd_in_sensor_sum, hip_gyr
from imuhip.orientation.segment_calibration._config import (
    FloatArray,
    SegmentCalConfig,
    Window,
    _c,
)
from imuhip.orientation.segment_calibration._frames import q_sensor_segment_from_axes
from imuhip.types import OrientationSession


def _vertical_axes(
    ori: OrientationSession,
    static: Window,
    cfg: SegmentCalConfig,
    quality: dict[str, dict[str, float]],
    dropped: dict[str, str],
) -> dict[str, FloatArray]:
    """Step 1: each sensor's up axis (sensor frame) from gravity, and the still check.

    Records ``still_gyr_rms_rad_s`` in ``quality``; a sensor with no valid sample in the static
    window, or that moved during it, goes into ``dropped`` with the reason (the caller decides
    whether that is fatal).
    """
    up_s: dict[str, FloatArray] = {}
    for p in ori.q_world_sensor:
        sl = slice(*static)
        ok = np.asarray(ori.valid[p][sl], bool)
        if not np.any(ok):
            dropped[p] = "no valid samples in the static window"
            continue
        acc = ori.acc_m_s2[p][sl][ok]
        mean = np.mean(acc, axis=0)
        norm = float(np.linalg.norm(mean))
        if not (np.isfinite(norm) and norm > 1.0):  # gravity is 9.8 m/s2: a dead accelerometer
            dropped[p] = f"no gravity in the static window (mean specific force {norm:.2f} m/s2)"
            continue
        gyr = ori.gyr_rad_s.get(p)
        if gyr is not None:
            g = gyr[sl][ok]
            g = g - np.median(g, axis=0)  # a constant offset is bias, not motion
            rms = float(np.sqrt(np.mean(np.sum(g * g, axis=1))))
            quality[p]["still_gyr_rms_rad_s"] = rms
            if rms > cfg.max_static_gyr_rms_rad_s:
                t0, t1 = ori.t_s[static[0]], ori.t_s[static[1] - 1]
                dropped[p] = (
                    f"subject moved during the static window {t0:.1f}-{t1:.1f} s "
                    f"(gyro RMS {rms:.3f} rad/s > {cfg.max_static_gyr_rms_rad_s:g})"
                )
                continue
        up_s[p] = mean / norm
    return up_s


def _principal_axis(gyr: FloatArray) -> tuple[FloatArray, float]:
    """First principal axis of angular velocity samples (uncentred) and sqrt eigenvalue ratio."""
    cov = gyr.T @ gyr / max(1, len(gyr))
    w, v = np.linalg.eigh(cov)
    ratio = float(np.sqrt(w[2] / max(w[1], 1e-12)))
    return v[:, 2], ratio


def _principal_axis_rows(
    gyr: FloatArray, rows: npt.NDArray[np.intp], normal: FloatArray | None = None
) -> tuple[FloatArray, float]:
    """:func:`_principal_axis` of ``gyr[rows]`` without gathering the rows (compiled sums).

    With ``normal`` (unit), the principal axis within the plane orthogonal to it: the
    covariance of the angular velocity projected onto that plane, ``P C P`` with
    ``P = I - n nᵀ`` (the axis that maximises the flexion variance among axes orthogonal to
    ``normal``).
    """
    cov = np.empty((3, 3))
    cov3(_c(gyr), rows, cov)
    cov /= max(1, len(rows))
    if normal is not None:
        proj = np.eye(3) - np.outer(normal, normal)
        cov = proj @ cov @ proj
    w, v = np.linalg.eigh(cov)
    ratio = float(np.sqrt(w[2] / max(w[1], 1e-12)))
    return v[:, 2], ratio


def _flexion_angle(gyr_along: FloatArray, rate_hz: float, windows: Sequence[Window]) -> FloatArray:
    """Integrated angle about one axis, linearly detrended per window (removes gyro bias)."""
    parts = []
    for a, b in windows:
        seg = gyr_along[a:b]
        ang = np.cumsum(seg) / rate_hz
        m = len(ang)
        if m > 2:
            # least-squares line over t = 0..m-1 in closed form (was np.polyfit/polyval: the
            # same line up to round-off): sum(t - tc) = 0, sum((t - tc)**2) = m (m**2 - 1) / 12
            tc = 0.5 * (m - 1)
            tt = np.arange(m) - tc
            slope = float(np.dot(tt, ang)) / (m * (m * m - 1) / 12.0)
            ang = ang - (float(np.mean(ang)) + slope * tt)
        parts.append(ang)
    return np.concatenate(parts) if parts else np.zeros(0)


def _flexion_axes(
    ori: OrientationSession,
    cfg: SegmentCalConfig,
    up_s: dict[str, FloatArray],
    idx: npt.NDArray[np.intp],
    windows: Sequence[Window],
    functional: bool,
    common_heading: bool,
    quality: dict[str, dict[str, float]],
    dropped: dict[str, str],
) -> tuple[dict[str, FloatArray], dict[str, FloatArray]]:
    """Step 2: thigh and shank mediolateral axes from the flexion/extension movement.

    The axis is the first principal axis of the angular velocity within the plane orthogonal
    to the segment's Y axis (Z must be orthogonal to Y: rotation about the long axis, in turns
    above all, would otherwise pull the unconstrained principal axis towards Y; on the real
    gaittoolbox trial it put the thighs' axes 60° off).

    Returns ``z_s`` (unit Z axis per segment, sensor frame, sign not yet decided) and
    ``flex_rate`` (angular velocity about it, ``(M,)`` rad/s). Records ``axis_ratio`` and
    ``range_rad`` in ``quality``; a segment whose axis is ambiguous or whose movement is too
    small goes into ``dropped`` with the reason. ``functional``: the windows are dedicated
    swings (the stricter ``min_axis_ratio``), else walking.
    """
    n = len(ori.t_s)
    z_s: dict[str, FloatArray] = {}
    flex_rate: dict[str, FloatArray] = {}
    pel_gyr = ori.gyr_rad_s.get("pelvis")
    for p in ("thigh_l", "thigh_r", "shank_l", "shank_r"):
        gyr = ori.gyr_rad_s.get(p)
        if p not in ori.q_world_sensor or gyr is None or p not in up_s:
            continue
        if common_heading and pel_gyr is not None and p.startswith("thigh"):
            # hip angular velocity (thigh relative to pelvis) in the thigh sensor frame: removes
            # pelvic obliquity, which is correlated with flexion and would tilt the axis
            rel = np.empty((n, 3))
            hip_gyr(
                _c(ori.q_world_sensor[p]),
                _c(ori.q_world_sensor["pelvis"]),
                _c(gyr),
                _c(pel_gyr),
                rel,
            )
            gyr = rel
        valid = np.asarray(ori.valid[p], bool)
        ok = idx[valid[idx]]
        if len(ok) < cfg.min_movement_s * ori.rate_hz:  # it stopped sending, or started late
            have = np.flatnonzero(valid)
            t_s = np.maximum(ori.t_s, 0.0)
            cover = f"{t_s[have[0]]:.1f}–{t_s[have[-1]]:.1f} s" if len(have) else "none"
            dropped[p] = (
                f"no data during most of the walking ({len(ok) / ori.rate_hz:.1f} s of "
                f"{len(idx) / ori.rate_hz:.1f} s < {cfg.min_movement_s:g} s; its data: {cover})"
            )
            continue
        axis, ratio = _principal_axis_rows(gyr, ok, up_s[p])
        quality[p]["axis_ratio"] = ratio
        min_ratio = cfg.min_axis_ratio if functional else cfg.min_walking_axis_ratio
        if not ratio >= min_ratio:  # also NaN
            dropped[p] = (
                f"flexion axis ambiguous (first/second principal angular velocity ratio "
                f"{ratio:.2f} < {min_ratio:g})"
            )
            continue
        z = axis - np.dot(axis, up_s[p]) * up_s[p]
        z /= np.linalg.norm(z)
        along = gyr @ z
        ang = _flexion_angle(along, ori.rate_hz, windows)
        p1, p99 = np.percentile(ang, [1, 99])  # one partition for both
        rng = float(p99 - p1)
        quality[p]["range_rad"] = rng
        if rng < cfg.min_functional_range_rad:
            dropped[p] = (
                f"movement too small ({np.rad2deg(rng):.1f} deg flexion/extension range < "
                f"{np.rad2deg(cfg.min_functional_range_rad):.1f} deg)"
            )
            continue
        z_s[p] = z
        flex_rate[p] = along
    return z_s, flex_rate


def _anterior_from_obliquity(
    ori: OrientationSession,
    p: str,
    idx: npt.NDArray[np.intp],
    ok: npt.NDArray[np.intp],
    up: FloatArray,
    flex_rate: dict[str, FloatArray],
) -> FloatArray:
    """Anterior axis (sensor frame) from the pelvic obliquity cue (6D).

    The pelvis rises on the stance side: right hemipelvis up is greatest in the right loading
    response (~15-20 % of the right cycle), a quarter cycle after the right hip's greatest
    flexion (late swing, ~85-95 %; Perry & Burnfield, Gait Analysis, 2010; Kadaba et al. 1990,
    doi:10.1002/jor.1100080310). The obliquity *rate* is therefore in phase with the right-minus-
    left hip flexion *angle* (integrated flexion rates over each walking run, detrended like
    :func:`_flexion_angle`), and in quadrature with the flexion rates themselves. The horizontal
    part of the pelvis angular velocity that correlates with that angle points along −X (right
    side up is a rotation about −X); tilt (twice the stride frequency) does not correlate with it
    and rotation about Y is projected out. (Correlating with the flexion *rates* instead, as
    before, rests on a near-zero correlation whose sign depends on the subject's timing: it chose
    the backward axis on the real gaittoolbox trial, see ``docs/validation.md``.)

    ``idx``: the walking samples (contiguous runs), ``ok``: those where the pelvis is valid.
    """
    gyr = ori.gyr_rad_s.get(p)
    if gyr is None:
        raise CalibrationError(f"{p}: 6D calibration of the anterior axis needs a gyroscope")
    if "thigh_r" in flex_rate and "thigh_l" in flex_rate:
        s = flex_rate["thigh_r"] - flex_rate["thigh_l"]
    elif "thigh_r" in flex_rate:
        s = flex_rate["thigh_r"]
    else:
        s = -flex_rate["thigh_l"]
    runs = np.split(idx, np.flatnonzero(np.diff(idx) != 1) + 1) if len(idx) else []
    angle_at = np.zeros(len(s))
    angle_at[idx] = _flexion_angle(s, ori.rate_hz, [(int(r[0]), int(r[-1]) + 1) for r in runs])
    a = angle_at[ok]
    g = gyr[ok]
    g = g - np.outer(g @ up, up)
    c = (g * (a - np.mean(a))[:, None]).mean(axis=0)
    if np.linalg.norm(c) < 1e-9:
        raise CalibrationError(f"{p}: anterior axis ambiguous (no obliquity motion during walking)")
    return np.asarray(-c, dtype=np.float64)


def _anterior_axes(
    ori: OrientationSession,
    idx: npt.NDArray[np.intp],
    thighs: Sequence[str],
    common_heading: bool,
    label: str,
    up_s: dict[str, FloatArray],
    flex_rate: dict[str, FloatArray],
    q_sensor_segment: dict[str, FloatArray],
    method: dict[str, str],
    warnings: list[str],
    dropped: dict[str, str],
) -> None:
    """Step 3: pelvis and lumbar anterior axes, into ``q_sensor_segment`` and ``method``.

    With a common magnetometer heading the walking direction (the calibrated thighs' mean
    horizontal anterior axis; ``q_sensor_segment`` of ``thighs`` is already set); without one
    the pelvic obliquity cue (:func:`_anterior_from_obliquity`, with a warning).
    """
    for p in ("pelvis", "lumbar"):
        if p not in ori.q_world_sensor or p not in up_s:
            continue
        ok = idx[np.asarray(ori.valid[p], bool)[idx]]
        if common_heading:
            # walking direction in the world (the thighs' mean horizontal anterior axis),
            # expressed in this sensor's frame, averaged over the valid walking samples
            q_a, q_b = (_c(ori.q_world_sensor[t]) for t in (thighs[0], thighs[-1]))
            x_a, x_b = (
                quat_rotate(q_sensor_segment[t], [1.0, 0, 0]) for t in (thighs[0], thighs[-1])
            )
            total = np.zeros(3)
            fwd_in_sensor_sum(
                _c(ori.q_world_sensor[p]), q_a, x_a, q_b, x_b, len(thighs) == 2, ok, total
            )
            x_s = total / len(ok)
            method[p] = label + "+walking_direction"
        else:
            try:
                x_s = _anterior_from_obliquity(
                    ori, p, idx, ok, up_s[p], {t: flex_rate[t] for t in thighs}
                )
            except CalibrationError as err:
                if p == "pelvis":
                    raise CalibrationError(
                        f"{err}: check that the pelvis sensor is strapped tight over the sacrum "
                        "and walk straight for at least 10 s after standing still"
                    ) from err
                dropped[p] = str(err).removeprefix(f"{p}: ")  # lumbar: optional
                continue
            method[p] = label + "+obliquity"
            warnings.append(
                f"{p}: no common magnetometer heading (6D); anterior axis from the pelvic "
                "obliquity cue, relative heading anchored during walking"
            )
        q_sensor_segment[p] = q_sensor_segment_from_axes(x_s, up_s[p])
