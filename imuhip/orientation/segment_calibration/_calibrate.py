"""The entry point: :func:`calibrate_segments` runs the steps, standing or seated."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_mul, quat_positive_w, quat_rotate
from imuhip.errors import CalibrationError
from imuhip.ingest.recording.clock_check import COVERAGE_TOLERANCE_S
from imuhip.orientation.segment_calibration._axes import (
    _anterior_axes,
    _flexion_axes,
    _principal_axis,
    _vertical_axes,
)
from imuhip.orientation.segment_calibration._config import FloatArray, SegmentCalConfig, Window
from imuhip.orientation.segment_calibration._frames import (
    _reference_pose_offsets,
    q_sensor_segment_from_axes,
)
from imuhip.orientation.segment_calibration._sign_cues import _sign_flexion_axes
from imuhip.orientation.segment_calibration._windows import (
    _index,
    _movement_windows,
    _walking_up,
    find_static_window,
)
from imuhip.types import OrientationSession, SegmentCalibration

__all__ = ["calibrate_segments"]


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
    warnings: list[str] = []
    skipped: list[str] = []
    quality: dict[str, dict[str, float]] = {p: {} for p in ori.q_world_sensor}
    dropped: dict[str, str] = {}
    walking_posture = False
    no_standing = ""
    if static_window is not None:
        static = static_window
    else:
        try:
            static = _static_window(ori, cfg, skipped)
        except CalibrationError as err:
            if not (cfg.method == "standing" and cfg.walking_posture_fallback):
                raise
            if _thighs_stood_still(ori, cfg):
                raise  # the subject stood; a sensor that never kept still is the problem
            static = (0, 0)  # no standing: the walking anywhere in the session
            walking_posture = True
            no_standing = (
                "no standing still period (the still ones are seated or lying)"
                if str(err).startswith("no standing still period")
                else f"no still period of {cfg.min_static_s:g} s"
            )
    if not walking_posture and not (0 <= static[0] < static[1] <= n):
        raise ValueError(f"static_window {static} outside the session (0, {n})")
    # (the retry over the pelvis and thighs may pass over the same still period again)
    warnings.extend(f"static window: fallback: {s}" for s in dict.fromkeys(skipped))

    # ---- 1. vertical axis from gravity, and the still check ----------------------------------
    if walking_posture:
        up_s, walk_s = _walking_vertical_axes(ori, cfg, dropped, no_standing)
        warnings.append(
            f"static window: fallback: {no_standing}; each segment's vertical is its mean "
            f"attitude over {walk_s:.1f} s of straight walking, so hip flexion and adduction, "
            "pelvic tilt and obliquity and lumbar angles read from the mean walking posture, not "
            "from standing (hip flexion ~10 deg lower); rotation excursions change little "
            "(±10 deg of thigh calibration moves them by <= 1.6 deg on the real trial). "
            "Stand still for 2 s before or after walking for a standing reference"
        )
    else:
        up_s = _vertical_axes(ori, static, cfg, quality, dropped)
    _raise_if_required_dropped(ori, dropped, _REDO_STATIC)

    if cfg.method == "seated":
        return _calibrate_seated(ori, cfg, up_s, functional_windows, prior, quality, dropped)

    # ---- 2. thigh/shank mediolateral axis from the flexion/extension movement ---------------
    windows = (
        list(functional_windows)
        if functional_windows is not None
        else _movement_windows(ori, static, cfg)
    )
    idx = _index(windows, n)
    functional = functional_windows is not None
    need = cfg.min_movement_s * ori.rate_hz
    if functional and len(idx) < need:
        walk = _movement_windows(ori, static, cfg)
        if len(_index(walk, n)) >= need:  # too short marked swings: the walking instead
            warnings.append(
                f"legs: fallback: marked leg swings too short ({len(idx) / ori.rate_hz:.1f} s "
                f"< {cfg.min_movement_s:g} s); flexion axes and their signs from the walking"
            )
            windows, functional = walk, False
            idx = _index(windows, n)
    what = "of marked leg swings" if functional else "of straight walking (turns left out)"
    # a short walk is enough for the flexion axes beside a standing pose, not for the posture too
    short = cfg.min_movement_s if walking_posture else cfg.short_movement_s
    if len(idx) < short * ori.rate_hz:
        raise CalibrationError(
            f"movement too short for the functional calibration: {len(idx) / ori.rate_hz:.1f} s "
            f"{what} < {short:g} s{_early_ends(ori)}: walk straight for at least "
            f"{cfg.min_movement_s:g} s, or swing the legs, before or after standing still"
        )
    if len(idx) < need:
        warnings.append(_short_movement(len(idx) / ori.rate_hz, what, cfg))
        cfg = dataclasses.replace(cfg, min_movement_s=cfg.short_movement_s)
    common_heading = all(ori.mag_ut.get(p) is not None for p in ori.q_world_sensor)
    z_s, flex_rate = _flexion_axes(
        ori, cfg, up_s, idx, windows, functional, common_heading, quality, dropped
    )
    label = "static+functional" if functional else "static+walking"
    if walking_posture:
        label = "walking posture+walking"
    method: dict[str, str] = {}
    idx_anterior = idx
    if functional:
        walk_idx = _walking_axis_fallback(
            ori, cfg, static, up_s, common_heading, quality, dropped, z_s, flex_rate, method,
            warnings,
        )  # fmt: skip
        if len(walk_idx):  # a leg fell back: the pelvis's anterior axis from the walking too
            idx_anterior = np.union1d(idx, walk_idx)

    _raise_if_required_dropped(ori, dropped, _REDO_MOVEMENT)
    thighs = [p for p in _THIGHS if p in z_s]
    if not thighs:
        raise CalibrationError("functional calibration needs at least one thigh sensor with gyro")

    # ---- sign of Z: flexion positive ----------------------------------------------------------
    _sign_flexion_axes(ori, static, cfg, idx, functional, up_s, z_s, flex_rate, quality, warnings)

    q_sensor_segment: dict[str, FloatArray] = {}
    for p, z in z_s.items():
        x = np.cross(up_s[p], z)
        q_sensor_segment[p] = q_sensor_segment_from_axes(x, up_s[p])
        method.setdefault(p, label)

    # ---- 3. pelvis / lumbar anterior axis ------------------------------------------------------
    _anterior_axes(
        ori,
        idx_anterior,
        thighs,
        common_heading,
        label,
        up_s,
        flex_rate,
        q_sensor_segment,
        method,
        warnings,
        dropped,
    )

    for p in ori.q_world_sensor:
        if p not in q_sensor_segment and p not in dropped:
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
        dropped=dropped,
    )


_THIGHS = ("thigh_l", "thigh_r")


def _early_ends(ori: OrientationSession) -> str:
    """``"; pelvis: its data end at 15.0 s of 25.0 s"`` for the pelvis and thighs whose data
    stop more than :data:`~imuhip.ingest.recording.clock_check.COVERAGE_TOLERANCE_S` before the
    session's end (a flat battery, a sensor out of range; reading the recording names them by
    the same measure), else ``""``: the walking is only counted where they have data."""
    end = float(ori.t_s[-1]) if len(ori.t_s) else 0.0
    notes = []
    for p in ("pelvis", *_THIGHS):
        if p not in ori.valid:
            continue
        have = np.flatnonzero(np.asarray(ori.valid[p], bool))
        last = float(ori.t_s[have[-1]]) if len(have) else float("nan")
        if not last > end - COVERAGE_TOLERANCE_S:  # also no data at all
            at = "it has no data" if len(have) == 0 else f"its data end at {last:.1f} s"
            notes.append(f"{p}: {at} of {end:.1f} s")
    return "; " + "; ".join(notes) if notes else ""


_REDO_STATIC = "stand still for at least 2 s at the start of the recording"
_REDO_MOVEMENT = (
    "repeat the leg swings in the sagittal plane, or walk straight for at least 10 s "
    "(check that the sensor is strapped tight)"
)


def _raise_if_required_dropped(ori: OrientationSession, dropped: dict[str, str], redo: str) -> None:
    """Raise when the pelvis, or every thigh present, could not be calibrated.

    The pelvis and at least one thigh carry the hip angles; any other sensor is optional and
    stays in ``dropped`` (one thigh lost leaves the other side's analysis).
    """
    if "pelvis" in dropped:
        raise CalibrationError(f"pelvis: {dropped['pelvis']}: {redo}")
    present = [p for p in _THIGHS if p in ori.q_world_sensor]
    if present and all(p in dropped for p in present):
        reasons = "; ".join(f"{p}: {dropped[p]}" for p in present)
        raise CalibrationError(f"{reasons}: {redo}")


def _thighs_stood_still(ori: OrientationSession, cfg: SegmentCalConfig) -> bool:
    """Whether the thighs alone were ever still, standing, for ``min_static_s``: then the
    subject stood and a missing static window is a sensor's fault (loose, flapping), which the
    walking posture must not hide."""
    thighs = {p: q for p, q in ori.q_world_sensor.items() if p in _THIGHS}
    if not thighs:
        return False
    try:
        find_static_window(dataclasses.replace(ori, q_world_sensor=thighs), cfg)
    except CalibrationError:
        return False
    return True


def _short_movement(have_s: float, what: str, cfg: SegmentCalConfig) -> str:
    """The warning of a calibration on a movement between ``short_movement_s`` and
    ``min_movement_s`` long."""
    return (
        f"legs: fallback: only {have_s:.1f} s {what} (< {cfg.min_movement_s:g} s): the flexion "
        "axes rest on little movement (about two strides or swings a side) and are less "
        f"certain; walk straight, or swing the legs, for at least {cfg.min_movement_s:g} s for "
        "a firmer calibration"
    )


def _walking_vertical_axes(
    ori: OrientationSession, cfg: SegmentCalConfig, dropped: dict[str, str], why: str
) -> tuple[dict[str, FloatArray], float]:
    """Step 1 without a standing window: each sensor's up axis = its mean gravity direction over
    the straight walking (:func:`_walking_up`), and the walking's length (s).

    Raises
    ------
    CalibrationError
        Less than ``min_movement_s`` of straight walking either (nothing to calibrate on).
    """
    up_s, walk_s = _walking_up(ori, cfg, list(ori.q_world_sensor))
    if walk_s < cfg.min_movement_s:  # no standing: the short-movement floor does not apply
        raise CalibrationError(
            f"{why}, and {walk_s:.1f} s of straight walking (< {cfg.min_movement_s:g} s) to take "
            f"the posture from: stand still for at least {cfg.min_static_s:g} s and walk "
            f"straight for at least {cfg.min_movement_s:g} s"
        )
    for p in ori.q_world_sensor:
        if p not in up_s:
            dropped[p] = "no gravity during the walking (no valid accelerometer rows there)"
    return up_s, walk_s


def _static_window(ori: OrientationSession, cfg: SegmentCalConfig, skipped: list[str]) -> Window:
    """:func:`find_static_window` over all sensors, else over the pelvis and thighs only.

    An optional sensor that never keeps still (loose, or dangling) must not hide the standing
    start; it is then checked (and dropped) by the still check of step 1.
    """
    try:
        return find_static_window(ori, cfg, skipped)
    except CalibrationError:
        required = [p for p in ("pelvis", *_THIGHS) if p in ori.q_world_sensor]
        if len(required) == len(ori.q_world_sensor):
            raise
        sub = dataclasses.replace(ori, q_world_sensor={p: ori.q_world_sensor[p] for p in required})
        return find_static_window(sub, cfg, skipped)


def _walking_axis_fallback(
    ori: OrientationSession,
    cfg: SegmentCalConfig,
    static: Window,
    up_s: dict[str, FloatArray],
    common_heading: bool,
    quality: dict[str, dict[str, float]],
    dropped: dict[str, str],
    z_s: dict[str, FloatArray],
    flex_rate: dict[str, FloatArray],
    method: dict[str, str],
    warnings: list[str],
) -> npt.NDArray[np.intp]:
    """Leg segments whose swings were ambiguous: the principal axis over the walking instead.

    The static pose plus the walking flexion axis (its sign then comes from the walking cues,
    as in the walking-only calibration), with a warning; in place. Returns the walking samples
    used (empty when no leg fell back).
    """
    none = np.zeros(0, dtype=np.intp)
    failed = [p for p in dropped if p.startswith(("thigh", "shank"))]
    if not failed:
        return none
    walk = _movement_windows(ori, static, cfg)
    walk_idx = _index(walk, len(ori.t_s))
    if len(walk_idx) < cfg.min_movement_s * ori.rate_hz:
        return none
    retry = {p: up_s[p] for p in failed if p in up_s}
    again: dict[str, str] = {}
    z2, rate2 = _flexion_axes(
        ori, cfg, retry, walk_idx, walk, False, common_heading, quality, again
    )
    for p in z2:
        warnings.append(
            f"{p}: fallback: leg swings unusable ({dropped.pop(p)}); flexion axis and its sign "
            "from the walking instead"
        )
        z_s[p] = z2[p]
        flex_rate[p] = rate2[p]
        method[p] = "static+walking"
    return walk_idx if z2 else none


def _calibrate_seated(
    ori: OrientationSession,
    cfg: SegmentCalConfig,
    up_s: dict[str, FloatArray],
    functional_windows: Sequence[Window] | None,
    prior: SegmentCalibration | None,
    quality: dict[str, dict[str, float]],
    dropped: dict[str, str],
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
        if p in dropped:
            continue
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
        dropped=dropped,
    )
