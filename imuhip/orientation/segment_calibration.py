"""Sensor-to-segment calibration: static pose for the vertical axes, movement for the headings.

Procedure (derivation and geometry in ``docs/joint_angles.md``):

1. **Static standing window** (found automatically: the first period of at least
   ``min_static_s`` where every sensor is still). Each segment's Y (superior) axis in its sensor
   frame is the mean specific force there (it points up).
2. **Thigh and shank Z** (mediolateral, right) = principal axis of the segment's angular velocity
   during walking or dedicated hip flexion/extension swings (flexion/extension dominates),
   orthogonalised against Y. Its sign makes flexion positive, decided by cues: the swing
   phase is faster than stance (positive skew of the flexion velocity); for a thigh, the pelvis
   turns forward on the side of the leg that swings forward (pelvis yaw correlates with that
   thigh's flexion) and flexion goes further than extension (anterior axis tips up on average);
   for a shank, it swings forward together with its thigh (flexion rates correlate positively;
   its mean walking posture is inclined backward, so the inclination cue does not apply).
3. **Pelvis and lumbar X** (anterior): with a magnetometer on every sensor (a common world
   heading), the mean horizontal anterior axis of both calibrated thighs during walking is the
   walking direction; without one (6D), the pelvic obliquity cue: the horizontal pelvis angular
   velocity that correlates with the right-minus-left thigh flexion velocity lies along −X.
4. Orthonormalise keeping Y exact: ``Z = normalise(Z − (Z·Y) Y)``, ``X = Y × Z``.

Functional calibration in the spirit of Favre et al. 2009 (doi:10.1016/j.jbiomech.2009.07.005),
Seel et al. 2014 (doi:10.3390/s140406891) and the OpenSense/Xsens N-pose + walk procedures.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from scipy.ndimage import uniform_filter1d

from imuhip.conventions import (
    from_rotation,
    quat_mul,
    quat_positive_w,
    quat_rotate,
)
from imuhip.errors import CalibrationError
from imuhip.orientation._calib_kernels import (
    cov3,
    fwd_in_sensor_sum,
    hip_gyr,
    rot_z,
    rot_z_const_sum,
    sq_norm_rows,
)
from imuhip.types import OrientationSession, SegmentCalibration, SessionEvent

__all__ = [
    "EVENT_KIND",
    "STANDING_PELVIC_TILT_DEG",
    "SegmentCalConfig",
    "calibrate_segments",
    "find_static_window",
    "functional_windows_from_events",
    "q_sensor_segment_from_axes",
    "segcal_from_event_data",
    "segcal_to_event",
    "segcal_to_event_data",
]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
Window = tuple[int, int]

EVENT_KIND = "segment_calibration"
#: Population-typical standing anterior pelvic tilt (ASIS–PSIS line), degrees: Preece et al.
#: 2008, J Man Manip Ther 16(2):113–117, doi:10.1179/106698108790818459 (30 pelves, 13 ± 5°,
#: range 0–23°). The simulator's default standing pose uses the same value.
STANDING_PELVIC_TILT_DEG = 13.0
_UP = np.array([0.0, 0.0, 1.0])


@dataclass(frozen=True, slots=True)
class SegmentCalConfig:
    """Thresholds of :func:`calibrate_segments` (units in the names).

    Parameters
    ----------
    method : {"standing", "seated"}
        ``"standing"``: static standing + walking/functional swings. ``"seated"``: thighs
        horizontal, see :func:`calibrate_segments`.
    still_gyr_rad_s : float
        Smoothed gyro norm below which a sample counts as still (static-window search).
    still_acc_std_m_s2 : float
        Moving standard deviation of each accelerometer axis below which a sample counts as still.
    min_static_s : float
        Shortest acceptable static window.
    max_static_gyr_rms_rad_s : float
        Quality check: gyro RMS in the static window above this = subject moved (rejected).
    min_functional_range_rad : float
        Quality check: flexion/extension range in the movement window below this = movement too
        small (rejected).
    min_axis_ratio : float
        Quality check: ratio of the first to the second principal RMS angular velocity below
        this = axis ambiguous (rejected), for dedicated flexion/extension swings.
    min_walking_axis_ratio : float
        The same check when the axis comes from walking: hip adduction and rotation and the
        pelvis's own motion make the second principal component larger (ratios 2.2–2.9 measured on
        simulated walkers with 0–15° misplacement, 1.9 for some 6D walkers), so walking is
        accepted down to this ratio.
    walking_gyr_rms_rad_s : float
        A sample after the static window belongs to the walking window when the thigh gyro RMS over
        ``walking_window_s`` exceeds this.
    walking_window_s : float
        Window of that RMS.
    min_movement_s : float
        Shortest usable movement (walking or functional) window in total.
    max_bridged_gap_s : float
        Runs of lost samples up to this long do not interrupt a still or walking window (their
        samples are still left out of every statistic).
    reference_pelvis_rad : (obliquity, tilt)
        Pelvis angles the subject holds during the static window (default: level, 0), with the
        thighs following through ``reference_hip_rad``. A lab that knows the whole standing pose
        (a static optical trial) enters it here and sets ``standing_pelvic_tilt_rad=0``; for the
        pelvis-only anatomical tilt use ``standing_pelvic_tilt_rad``.
    reference_hip_rad : ((flex, add, IR) left, (flex, add, IR) right)
        Hip angles held during the static window; flexion and adduction are applied (rotation
        neutral comes from the walking flexion axis, see ``docs/joint_angles.md``).
    reference_lumbar_rad : (flexion, lateral bending, axial rotation)
        Lumbar angles held during the static window (flexion and bending are applied).
    standing_pelvic_tilt_rad : float
        Anatomical anterior tilt of the pelvis (ASIS–PSIS line, ISB X axis, + anterior) in the
        static standing window, with the femora vertical and the trunk upright (the levelled
        thigh and lumbar frames stay as they are; only the pelvis frame is turned about its Z
        axis). Gravity cannot see it. Default :data:`STANDING_PELVIC_TILT_DEG` (13°, the
        population mean of Preece et al. 2008, doi:10.1179/106698108790818459: 13 ± 5°, range
        0–23°), so absolute hip flexion, pelvic tilt and lumbar flexion assume a typical pelvis
        unless the subject's own value is entered. It adds to the tilt of
        ``reference_pelvis_rad`` (set this to 0 when giving a complete measured pose there).
    """

    method: Literal["standing", "seated"] = "standing"
    still_gyr_rad_s: float = 0.12
    still_acc_std_m_s2: float = 0.25
    min_static_s: float = 2.0
    max_static_gyr_rms_rad_s: float = 0.1
    min_functional_range_rad: float = float(np.deg2rad(15.0))
    min_axis_ratio: float = 2.0
    min_walking_axis_ratio: float = 1.5
    walking_gyr_rms_rad_s: float = 0.6
    walking_window_s: float = 1.0
    min_movement_s: float = 4.0
    max_bridged_gap_s: float = 0.3
    reference_pelvis_rad: tuple[float, float] = (0.0, 0.0)
    reference_hip_rad: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
    )
    reference_lumbar_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    standing_pelvic_tilt_rad: float = float(np.deg2rad(STANDING_PELVIC_TILT_DEG))

    def __post_init__(self) -> None:
        if not (
            np.isfinite(self.standing_pelvic_tilt_rad) and abs(self.standing_pelvic_tilt_rad) < 1.0
        ):
            raise ValueError(
                "standing_pelvic_tilt_rad must be finite and within ±1 rad, got "
                f"{self.standing_pelvic_tilt_rad}"
            )


# ---------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------


def q_sensor_segment_from_axes(x_s: npt.ArrayLike, y_s: npt.ArrayLike) -> FloatArray:
    """``q_sensor_segment`` from the segment X and Y axes expressed in the sensor frame.

    Y is kept exactly (normalised); X is orthogonalised against it; Z = X × Y.

    Parameters
    ----------
    x_s, y_s : (3,) float
        Segment anterior and superior axes in sensor coordinates.

    Returns
    -------
    (4,) float
        Unit quaternion with ``w >= 0``.
    """
    y = np.asarray(y_s, dtype=np.float64)
    y = y / np.linalg.norm(y)
    x = np.asarray(x_s, dtype=np.float64)
    x = x - np.dot(x, y) * y
    nx = np.linalg.norm(x)
    if nx < 1e-6:
        raise CalibrationError("anterior axis is parallel to the vertical axis")
    x = x / nx
    z = np.cross(x, y)
    mat = np.stack([x, y, z], axis=1)  # columns: segment axes in sensor coordinates
    from scipy.spatial.transform import Rotation

    return np.asarray(quat_positive_w(from_rotation(Rotation.from_matrix(mat))), dtype=np.float64)


def _runs(mask: npt.NDArray[np.bool_]) -> list[Window]:
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    starts = np.where(d == 1)[0]
    stops = np.where(d == -1)[0]
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def _bridge_short_gaps(
    valid: npt.ArrayLike, rate_hz: float, max_gap_s: float
) -> npt.NDArray[np.bool_]:
    """``valid`` with invalid runs of at most ``max_gap_s`` marked usable.

    Packet loss leaves short runs of lost (filled) samples all through a session; a still or a
    walking period is not interrupted by them (the statistics themselves use only valid samples),
    only by longer gaps such as a disconnect.
    """
    ok = np.asarray(valid, dtype=bool).copy()
    limit = max(1, round(max_gap_s * rate_hz))
    for a, b in _runs(~ok):
        if b - a <= limit:
            ok[a:b] = True
    return ok


def _still_mask(
    ori: OrientationSession, placement: str, cfg: SegmentCalConfig, stop: int | None = None
) -> npt.NDArray[np.bool_]:
    """Still samples of one sensor in ``[0, stop)`` (moving RMS of acc and gyro, bridged gaps).

    On a prefix the mask equals the whole session's except in its last ``n_win + limit + 2``
    samples: the moving means are running sums from the start (scipy), and a bridged gap run
    cut by the prefix end is wrong only within ``limit`` samples of it.
    """
    sl = slice(0, stop)
    n_win = max(3, round(0.5 * ori.rate_hz))
    acc = ori.acc_m_s2[placement][sl]
    mean = uniform_filter1d(acc, n_win, axis=0, mode="nearest")
    var = uniform_filter1d(acc * acc, n_win, axis=0, mode="nearest") - mean * mean
    still = np.all(np.sqrt(np.maximum(var, 0.0)) < cfg.still_acc_std_m_s2, axis=1)
    gyr = ori.gyr_rad_s.get(placement)
    if gyr is not None:
        gn = uniform_filter1d(np.linalg.norm(gyr[sl], axis=1), n_win, mode="nearest")
        still &= gn < cfg.still_gyr_rad_s
    return still & _bridge_short_gaps(ori.valid[placement][sl], ori.rate_hz, cfg.max_bridged_gap_s)


def find_static_window(ori: OrientationSession, cfg: SegmentCalConfig | None = None) -> Window:
    """First period of at least ``cfg.min_static_s`` where every sensor is still.

    Only a prefix of the session is examined, growing (x4) until the first long enough still
    period is complete inside its exact part (see :func:`_still_mask`): the same window as
    over the whole session, at a fraction of the cost when the subject stands at the start.

    Returns
    -------
    (start_idx, stop_idx)
        Half-open sample range on the session grid.

    Raises
    ------
    CalibrationError
        No such period.
    """
    cfg = cfg or SegmentCalConfig()
    n = len(ori.t_s)
    need = round(cfg.min_static_s * ori.rate_hz)
    pad = max(3, round(0.5 * ori.rate_hz)) + max(1, round(cfg.max_bridged_gap_s * ori.rate_hz))
    pad += 2
    length = max(4 * (need + pad), 4096)
    while True:
        stop = min(n, length)
        still = np.ones(stop, dtype=bool)
        for p in ori.q_world_sensor:
            still &= _still_mask(ori, p, cfg, stop)
        exact = stop if stop == n else stop - pad  # samples [0, exact) equal the full mask
        for a, b in _runs(still):
            if b >= exact and stop < n:
                break  # this still period may go on past the prefix: look further
            if b - a >= need:
                return a, b
        else:
            if stop == n:
                break
        length *= 4
    raise CalibrationError(
        f"no still period of {cfg.min_static_s:g} s found in which all sensors "
        f"({', '.join(sorted(ori.q_world_sensor))}) are still: stand still for the calibration"
    )


def functional_windows_from_events(
    events: Sequence[SessionEvent], t_s: npt.ArrayLike, movement: str = "hip_flexion"
) -> list[Window]:
    """Sample windows of calibration-marker events (``calibration_start`` with ``movement``).

    Parameters
    ----------
    events : sequence of SessionEvent
        ``data`` carries ``movement``, ``start_s``, ``stop_s`` (session seconds).
    t_s : (M,) float
        Session grid.
    movement : str
        ``"hip_flexion"`` (default), ``"hip_rotation"`` or ``"static"``.

    Returns
    -------
    list of (start_idx, stop_idx)
    """
    t = np.asarray(t_s, dtype=np.float64)
    out = []
    for ev in events:
        if ev.kind != "calibration_start" or ev.data.get("movement") != movement:
            continue
        a = int(np.searchsorted(t, float(ev.data["start_s"])))
        b = int(np.searchsorted(t, float(ev.data["stop_s"])))
        if b > a:
            out.append((a, b))
    return out


def _index(windows: Sequence[Window], n: int) -> npt.NDArray[np.intp]:
    idx = [np.arange(max(0, a), min(n, b)) for a, b in windows]
    return np.concatenate(idx) if idx else np.zeros(0, dtype=np.intp)


def _principal_axis(gyr: FloatArray) -> tuple[FloatArray, float]:
    """First principal axis of angular velocity samples (uncentred) and sqrt eigenvalue ratio."""
    cov = gyr.T @ gyr / max(1, len(gyr))
    w, v = np.linalg.eigh(cov)
    ratio = float(np.sqrt(w[2] / max(w[1], 1e-12)))
    return v[:, 2], ratio


def _c(a: npt.ArrayLike) -> FloatArray:
    return np.ascontiguousarray(a, dtype=np.float64)


def _principal_axis_rows(gyr: FloatArray, rows: npt.NDArray[np.intp]) -> tuple[FloatArray, float]:
    """:func:`_principal_axis` of ``gyr[rows]`` without gathering the rows (compiled sums)."""
    cov = np.empty((3, 3))
    cov3(_c(gyr), rows, cov)
    cov /= max(1, len(rows))
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


def _skew(x: FloatArray) -> float:
    s = float(np.std(x))
    if not s > 0:
        return 0.0
    d = x - np.mean(x)
    return float(np.mean(d * d * d) / s**3)  # d * d * d: 13x faster than d ** 3 (pow)


#: Knee-hinge sign cue: samples used at most (evenly spaced over the walking), and the
#: difference of the 5th-percentile knee flexion between the two signs that counts as clear.
_HINGE_MAX_SAMPLES = 20_000
_HINGE_SCALE_RAD = np.deg2rad(20.0)


def _inclination_sin(q: FloatArray, x_s: FloatArray) -> FloatArray:
    """Vertical (world z) component of the sensor-frame vector ``x_s`` rotated by ``q`` (N, 4).

    The third row of the rotation matrix of each quaternion times ``x_s``: the sine of the
    angle by which that axis tips above the horizontal.
    """
    w, x, y, z = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return (
        2.0 * (x * z - w * y) * x_s[0]
        + 2.0 * (y * z + w * x) * x_s[1]
        + (1.0 - 2.0 * (x * x + y * y)) * x_s[2]
    )


def _knee_hinge_score(
    ori: OrientationSession,
    thigh: str,
    shank: str,
    up_s: dict[str, FloatArray],
    z_s: dict[str, FloatArray],
    rows: npt.NDArray[np.intp],
) -> float:
    """Sign cue for a shank's Z axis from the knee as a hinge that does not hyperextend.

    Both segments' vertical axes come from the same standing pose, so the sagittal inclination
    of each segment's anterior axis (``X = Y x Z``) above the horizontal is its angle from
    standing, and the knee flexion is the thigh's minus the shank's (the shank is the thigh
    rotated by minus the knee flexion about Z). Only gravity enters (no heading: 6D and 9D
    alike). With the right shank sign the knee flexion stays above about -10 deg all along
    (physiological hyperextension); with the wrong one the shank's angle enters with the
    opposite sign and the "knee" reaches minus the shank's backward inclination at toe-off
    (about -40 deg). Score: ``tanh`` of the difference of the 5th percentiles (this sign minus
    the other) over 20 deg, in (-1, 1); > 0 means the current Z is right. The thigh's Z must
    already be signed.

    The knee joint's sagittal angle from segment inclinations: Winter 2009 (Biomechanics and
    Motor Control of Human Movement, 4th ed., doi:10.1002/9780470549148), ch. 2; the hinge
    model of the knee for IMU axis identification: Seel et al. 2014 (doi:10.3390/s140406891).
    """
    if len(rows) > _HINGE_MAX_SAMPLES:
        rows = rows[:: -(-len(rows) // _HINGE_MAX_SAMPLES)]
    ok = np.asarray(ori.valid[thigh], bool)[rows] & np.asarray(ori.valid[shank], bool)[rows]
    rows = rows[ok]
    if len(rows) < 10:
        return 0.0
    alpha = {}
    for p in (thigh, shank):
        x_s = np.cross(up_s[p], z_s[p])
        s = _inclination_sin(np.asarray(ori.q_world_sensor[p], np.float64)[rows], x_s)
        alpha[p] = np.arcsin(np.clip(s, -1.0, 1.0))
    p_this, p_other = (
        float(np.percentile(alpha[thigh] - sgn * alpha[shank], 5.0)) for sgn in (1.0, -1.0)
    )
    return float(np.tanh((p_this - p_other) / _HINGE_SCALE_RAD))


# ---------------------------------------------------------------------------------------------
# main entry
# ---------------------------------------------------------------------------------------------


def _movement_windows(
    ori: OrientationSession, static: Window, cfg: SegmentCalConfig
) -> list[Window]:
    """Walking: after the static window, thigh gyro RMS over ``walking_window_s`` high enough."""
    thighs = [p for p in ("thigh_l", "thigh_r") if ori.gyr_rad_s.get(p) is not None]
    if not thighs:
        raise CalibrationError("functional calibration needs a thigh gyroscope (thigh_l/thigh_r)")
    n = len(ori.t_s)
    size = max(3, round(cfg.walking_window_s * ori.rate_hz))
    moving = np.ones(n, dtype=bool)
    for p in thighs:
        g = ori.gyr_rad_s[p]
        assert g is not None
        sq = np.empty(n)
        sq_norm_rows(_c(g), sq)  # = np.sum(g * g, axis=1), one pass
        rms = np.sqrt(uniform_filter1d(sq, size, mode="nearest"))
        moving &= (rms > cfg.walking_gyr_rms_rad_s) & _bridge_short_gaps(
            ori.valid[p], ori.rate_hz, cfg.max_bridged_gap_s
        )
    moving[: static[1]] = False
    return [w for w in _runs(moving) if w[1] - w[0] >= size]


def calibrate_segments(
    ori: OrientationSession,
    cfg: SegmentCalConfig | None = None,
    *,
    static_window: Window | None = None,
    functional_windows: Sequence[Window] | None = None,
    prior: SegmentCalibration | None = None,
) -> SegmentCalibration:
    """Sensor-to-segment rotations from a static pose and walking or functional movements.

    Parameters
    ----------
    ori : OrientationSession
        Fused sensor orientations (world ENU) with accelerometer and gyroscope, sensor frame.
    cfg : SegmentCalConfig, optional
    static_window : (start_idx, stop_idx), optional
        Standing (or, for ``method="seated"``, sitting) still window; found automatically if
        omitted (:func:`find_static_window`).
    functional_windows : sequence of (start_idx, stop_idx), optional
        Dedicated hip flexion/extension swings (or walking); default: the walking detected after
        the static window.
    prior : SegmentCalibration, optional
        Only for ``method="seated"``: a previous calibration (or the nominal mounting) that fixes
        the sign of the thigh long axis.

    Returns
    -------
    SegmentCalibration
        ``q_sensor_segment`` for every sensor that could be calibrated, the method, quality
        numbers (``still_gyr_rms_rad_s``, ``axis_ratio``, ``range_rad``, ``sign_score``) and
        warnings.

    Raises
    ------
    CalibrationError
        Subject moved during the static window, movement too small, axis ambiguous, no static
        window, no movement, no pelvis or thigh sensor.
    """
    cfg = cfg or SegmentCalConfig()
    if "pelvis" not in ori.q_world_sensor:
        raise CalibrationError("segment calibration needs a pelvis sensor")
    n = len(ori.t_s)
    static = static_window if static_window is not None else find_static_window(ori, cfg)
    if not (0 <= static[0] < static[1] <= n):
        raise ValueError(f"static_window {static} outside the session (0, {n})")
    quality: dict[str, dict[str, float]] = {p: {} for p in ori.q_world_sensor}
    warnings: list[str] = []

    # ---- 1. vertical axis from gravity, and the still check ----------------------------------
    up_s: dict[str, FloatArray] = {}
    for p in ori.q_world_sensor:
        sl = slice(*static)
        ok = np.asarray(ori.valid[p][sl], bool)
        if not np.any(ok):
            raise CalibrationError(f"{p}: no valid samples in the static window")
        acc = ori.acc_m_s2[p][sl][ok]
        up_s[p] = np.mean(acc, axis=0) / np.linalg.norm(np.mean(acc, axis=0))
        gyr = ori.gyr_rad_s.get(p)
        if gyr is not None:
            g = gyr[sl][ok]
            g = g - np.median(g, axis=0)  # a constant offset is bias, not motion
            rms = float(np.sqrt(np.mean(np.sum(g * g, axis=1))))
            quality[p]["still_gyr_rms_rad_s"] = rms
            if rms > cfg.max_static_gyr_rms_rad_s:
                t0, t1 = ori.t_s[static[0]], ori.t_s[static[1] - 1]
                raise CalibrationError(
                    f"{p}: subject moved during the static window {t0:.1f}-{t1:.1f} s "
                    f"(gyro RMS {rms:.3f} rad/s > {cfg.max_static_gyr_rms_rad_s:g})"
                )

    if cfg.method == "seated":
        return _calibrate_seated(ori, cfg, up_s, functional_windows, prior, quality)

    # ---- 2. thigh/shank mediolateral axis from the flexion/extension movement ---------------
    windows = (
        list(functional_windows)
        if functional_windows is not None
        else _movement_windows(ori, static, cfg)
    )
    idx = _index(windows, n)
    if len(idx) < cfg.min_movement_s * ori.rate_hz:
        raise CalibrationError(
            f"movement too short for the functional calibration: {len(idx) / ori.rate_hz:.1f} s "
            f"< {cfg.min_movement_s:g} s (walk or swing the legs after standing still)"
        )
    z_s: dict[str, FloatArray] = {}
    flex_rate: dict[str, FloatArray] = {}
    common_heading = all(ori.mag_ut.get(p) is not None for p in ori.q_world_sensor)
    pel_gyr = ori.gyr_rad_s.get("pelvis")
    for p in ("thigh_l", "thigh_r", "shank_l", "shank_r"):
        gyr = ori.gyr_rad_s.get(p)
        if p not in ori.q_world_sensor or gyr is None:
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
        ok = idx[np.asarray(ori.valid[p], bool)[idx]]
        axis, ratio = _principal_axis_rows(gyr, ok)
        quality[p]["axis_ratio"] = ratio
        min_ratio = (
            cfg.min_axis_ratio if functional_windows is not None else (cfg.min_walking_axis_ratio)
        )
        if ratio < min_ratio:
            raise CalibrationError(
                f"{p}: flexion axis ambiguous (first/second principal angular velocity ratio "
                f"{ratio:.2f} < {min_ratio:g}); repeat the leg swings in the sagittal plane"
            )
        z = axis - np.dot(axis, up_s[p]) * up_s[p]
        z /= np.linalg.norm(z)
        along = gyr @ z
        ang = _flexion_angle(along, ori.rate_hz, windows)
        p1, p99 = np.percentile(ang, [1, 99])  # one partition for both
        rng = float(p99 - p1)
        quality[p]["range_rad"] = rng
        if rng < cfg.min_functional_range_rad:
            raise CalibrationError(
                f"{p}: movement too small ({np.rad2deg(rng):.1f} deg flexion/extension range < "
                f"{np.rad2deg(cfg.min_functional_range_rad):.1f} deg)"
            )
        z_s[p] = z
        flex_rate[p] = along

    thighs = [p for p in ("thigh_l", "thigh_r") if p in z_s]
    if not thighs:
        raise CalibrationError("functional calibration needs at least one thigh sensor with gyro")

    # ---- sign of Z: flexion positive ----------------------------------------------------------
    yaw_rate = None
    if pel_gyr is not None:
        yaw_rate = np.empty(n)
        rot_z(_c(ori.q_world_sensor["pelvis"]), _c(pel_gyr), yaw_rate)
    # functional swings may be symmetric: add any walking after the static window to the cues
    sign_idx = idx
    if functional_windows is not None:
        walk = _movement_windows(ori, static, cfg)
        sign_idx = np.union1d(idx, _index(walk, n))
    # thighs first: a shank's sign is then read off its (signed) thigh
    for p in sorted(z_s, key=lambda q: not q.startswith("thigh")):
        along = flex_rate[p][sign_idx]
        score_skew = float(np.tanh(_skew(along)))
        if p.startswith("thigh"):
            # flexion goes further than extension from standing: anterior axis tips up on average
            x_s_p = np.cross(up_s[p], z_s[p])
            x_w_z = rot_z_const_sum(_c(ori.q_world_sensor[p]), sign_idx, x_s_p) / len(sign_idx)
            score_incl = float(np.tanh(x_w_z / np.sin(np.deg2rad(5.0))))
            score = score_skew + score_incl
            cues = f"swing skew {score_skew:+.2f}, inclination {score_incl:+.2f}"
            score_yaw = 0.0
            if yaw_rate is not None:
                # pelvis turns counter-clockwise (right side forward) while the right thigh flexes
                side_sign = 1.0 if p.endswith("_r") else -1.0
                c = np.corrcoef(yaw_rate[sign_idx], along)[0, 1]
                score_yaw = float(side_sign * c) if np.isfinite(c) else 0.0
                score = score + 2.0 * score_yaw
            cues += f", pelvis yaw correlation {score_yaw:+.2f}"
        else:
            # The shank's mean walking posture is inclined backward (knee flexion exceeds the
            # thigh's inclination), so the thigh's inclination cue would point the wrong way.
            # Knee as a hinge: the shank swings forward with the thigh (hip flexion and the
            # shank's forward swing share swing phase; the knee extends in terminal swing while
            # both still rotate forward), so its flexion rate correlates positively with the
            # signed flexion rate of the thigh of the same side.
            thigh = f"thigh_{p[-1]}"
            score_knee = 0.0
            score_hinge = 0.0
            if thigh in flex_rate:
                c = np.corrcoef(flex_rate[thigh][sign_idx], along)[0, 1]
                score_knee = float(c) if np.isfinite(c) else 0.0
                score_hinge = _knee_hinge_score(ori, thigh, p, up_s, z_s, sign_idx)
            # the hinge cue is anatomical (a knee does not hyperextend by tens of degrees) and
            # decisive when it is clear; the rate cues depend on the shape of the signal
            score = score_skew + 2.0 * score_knee + 4.0 * score_hinge
            cues = (
                f"swing skew {score_skew:+.2f}, thigh correlation {score_knee:+.2f}, "
                f"knee hinge {score_hinge:+.2f}"
            )
        quality[p]["sign_score"] = abs(score)
        if score < 0:
            z_s[p] = -z_s[p]
            flex_rate[p] = -flex_rate[p]
        if abs(score) < 0.3:
            warnings.append(f"{p}: flexion sign cues weak ({cues})")

    q_sensor_segment: dict[str, FloatArray] = {}
    method: dict[str, str] = {}
    label = "static+functional" if functional_windows is not None else "static+walking"
    for p, z in z_s.items():
        x = np.cross(up_s[p], z)
        q_sensor_segment[p] = q_sensor_segment_from_axes(x, up_s[p])
        method[p] = label

    # ---- 3. pelvis / lumbar anterior axis ------------------------------------------------------
    for p in ("pelvis", "lumbar"):
        if p not in ori.q_world_sensor:
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
            x_s = _anterior_from_obliquity(ori, p, ok, up_s[p], {t: flex_rate[t] for t in thighs})
            method[p] = label + "+obliquity"
            warnings.append(
                f"{p}: no common magnetometer heading (6D); anterior axis from the pelvic "
                "obliquity cue, relative heading anchored during walking"
            )
        q_sensor_segment[p] = q_sensor_segment_from_axes(x_s, up_s[p])

    for p in ori.q_world_sensor:
        if p not in q_sensor_segment:
            warnings.append(f"{p}: not calibrated (no gyroscope or unsupported placement)")
    # levelled frames (Y = up in the static pose) -> anatomical frames of the reference pose
    for p, q_lev_anat in _reference_pose_offsets(cfg).items():
        if p in q_sensor_segment:
            q_sensor_segment[p] = quat_positive_w(quat_mul(q_sensor_segment[p], q_lev_anat))
    return SegmentCalibration(
        q_sensor_segment=q_sensor_segment,
        method=method,
        quality={k: v for k, v in quality.items() if k in q_sensor_segment},
        warnings=tuple(warnings),
    )


def _reference_pose_offsets(cfg: SegmentCalConfig) -> dict[str, FloatArray]:
    """Per segment ``q_level_anatomical``: the anatomical frame relative to a levelled frame.

    The reference pose gives each segment's orientation in the walking frame W (pelvis from
    obliquity and tilt, thighs from the pelvis and the hip angles); dropping its heading (the
    first angle of a Y–X′–Z″ decomposition, heading comes from the movement) leaves the
    inclination the levelled calibration frame lacks.
    """
    from imuhip.conventions import (
        cardan_yxz,
        hip_angles_to_quat,
        quat_from_cardan_yxz,
        quat_from_cardan_zxy,
    )

    obl, tilt = cfg.reference_pelvis_rad
    q_w_pelvis = quat_from_cardan_yxz([0.0, -obl, -tilt])
    # the standing anatomical pelvic tilt turns only the pelvis frame (femora vertical, trunk
    # upright): a rotation about the pelvis's own Z, appended intrinsically
    segs = {
        "pelvis": quat_mul(
            q_w_pelvis, quat_from_cardan_yxz([0.0, 0.0, -cfg.standing_pelvic_tilt_rad])
        )
    }
    for side, ref in zip(("left", "right"), cfg.reference_hip_rad, strict=True):
        flex, add, _ir = ref
        segs[f"thigh_{side[0]}"] = quat_mul(q_w_pelvis, hip_angles_to_quat([flex, add, 0.0], side))
    lf, lb, _lr = cfg.reference_lumbar_rad
    segs["lumbar"] = quat_mul(q_w_pelvis, quat_from_cardan_zxy([-lf, lb, 0.0]))
    out = {}
    for p, q in segs.items():
        _, b, c = cardan_yxz(q)
        out[p] = quat_from_cardan_yxz([0.0, b, c])
    return out


def _anterior_from_obliquity(
    ori: OrientationSession,
    p: str,
    ok: npt.NDArray[np.intp],
    up: FloatArray,
    flex_rate: dict[str, FloatArray],
) -> FloatArray:
    """Anterior axis (sensor frame) from the pelvic obliquity cue (6D).

    The pelvis drops on the swing side, so its angular velocity about the anterior axis follows
    the right-minus-left thigh flexion velocity (right side up, a rotation about −X, while the
    right leg is in early stance after swinging forward). The horizontal part of the pelvis
    angular velocity that correlates with that signal therefore points along −X; tilt (twice the
    stride frequency) does not correlate with it and rotation about Y is projected out.
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
    g = gyr[ok]
    g = g - np.outer(g @ up, up)
    c = (g * (s[ok] - np.mean(s[ok]))[:, None]).mean(axis=0)
    if np.linalg.norm(c) < 1e-9:
        raise CalibrationError(f"{p}: anterior axis ambiguous (no obliquity motion during walking)")
    return np.asarray(-c, dtype=np.float64)


def _calibrate_seated(
    ori: OrientationSession,
    cfg: SegmentCalConfig,
    up_s: dict[str, FloatArray],
    functional_windows: Sequence[Window] | None,
    prior: SegmentCalibration | None,
    quality: dict[str, dict[str, float]],
) -> SegmentCalibration:
    """Seated: thighs horizontal, pelvis and shanks upright.

    Gravity gives the pelvis (and shank, lumbar) Y axis as when standing, but the thigh's X
    (anterior) axis, because the hip is flexed 90°. The thigh long axis Y is the principal axis
    of seated hip internal/external rotation swings (``functional_windows``), orthogonalised
    against X; its sign and the headings of the upright segments come from ``prior``.
    """
    if prior is None:
        raise CalibrationError(
            "seated calibration needs a prior calibration (a previous standing calibration or "
            "the nominal mounting) to fix the long-axis sign and the upright segments' heading"
        )
    n = len(ori.t_s)
    idx = _index(functional_windows or [], n)
    q: dict[str, FloatArray] = {}
    method: dict[str, str] = {}
    warnings: list[str] = []
    for p in ori.q_world_sensor:
        if p not in prior.q_sensor_segment:
            warnings.append(f"{p}: not in the prior calibration, skipped")
            continue
        qp = prior.q_sensor_segment[p]
        x_prior = quat_rotate(qp, [1.0, 0, 0])
        y_prior = quat_rotate(qp, [0, 1.0, 0])
        if p.startswith("thigh"):
            x = up_s[p]
            gyr = ori.gyr_rad_s.get(p)
            if gyr is not None and len(idx) >= ori.rate_hz:
                axis, ratio = _principal_axis(gyr[idx])
                quality[p]["axis_ratio"] = ratio
                if ratio < cfg.min_axis_ratio:
                    raise CalibrationError(
                        f"{p}: long axis ambiguous (principal ratio {ratio:.2f} < "
                        f"{cfg.min_axis_ratio:g}); rotate the thigh about its long axis"
                    )
                y = axis if np.dot(axis, y_prior) >= 0 else -axis
                method[p] = "seated+functional"
            else:
                y = y_prior
                method[p] = "seated+prior"
            # keep the gravity axis (X) exact: build with Y orthogonalised against X
            y = y - np.dot(y, x) * x
            y /= np.linalg.norm(y)
            z = np.cross(x, y)
            q[p] = q_sensor_segment_from_axes(np.cross(y, z), y)
        else:
            q[p] = q_sensor_segment_from_axes(x_prior, up_s[p])
            method[p] = "seated+prior"
    return SegmentCalibration(
        q_sensor_segment=q,
        method=method,
        quality={k: v for k, v in quality.items() if k in q},
        warnings=tuple(warnings),
    )


# ---------------------------------------------------------------------------------------------
# storage as a recording event
# ---------------------------------------------------------------------------------------------


def segcal_to_event_data(segcal: SegmentCalibration) -> dict[str, Any]:
    """JSON-serialisable dict of a calibration (``SessionEvent(kind="segment_calibration")``)."""
    return {
        "version": 1,
        "q_sensor_segment": {k: [float(v) for v in q] for k, q in segcal.q_sensor_segment.items()},
        "method": dict(segcal.method),
        "quality": {k: {m: float(v) for m, v in d.items()} for k, d in segcal.quality.items()},
        "warnings": list(segcal.warnings),
    }


def segcal_from_event_data(data: dict[str, Any]) -> SegmentCalibration:
    """Inverse of :func:`segcal_to_event_data`; ``ValueError`` naming what is malformed."""
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError("segment calibration event data must be a dict with version 1")
    try:
        q = {k: np.asarray(v, dtype=np.float64) for k, v in data["q_sensor_segment"].items()}
        method = {str(k): str(v) for k, v in data["method"].items()}
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"segment calibration event data malformed: {err}") from err
    for k, v in q.items():
        if v.shape != (4,) or not np.all(np.isfinite(v)) or abs(np.linalg.norm(v) - 1) > 1e-6:
            raise ValueError(
                f"q_sensor_segment[{k!r}] must be a finite unit quaternion of 4 values"
            )
    return SegmentCalibration(
        q_sensor_segment=q,
        method=method,
        quality={
            k: {m: float(x) for m, x in d.items()} for k, d in data.get("quality", {}).items()
        },
        warnings=tuple(str(w) for w in data.get("warnings", [])),
    )


def segcal_to_event(segcal: SegmentCalibration, host_rx_ns: int) -> SessionEvent:
    """A ``SessionEvent(kind="segment_calibration")`` carrying the calibration."""
    return SessionEvent(host_rx_ns=host_rx_ns, kind=EVENT_KIND, data=segcal_to_event_data(segcal))
