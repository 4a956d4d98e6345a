"""ISB joint angles: hip, pelvis (relative to the walking direction) and lumbar.

Conventions (sign tables in :mod:`imuhip.conventions` and ``docs/joint_angles.md``): segment
frames X anterior, Y superior, Z right (Wu et al. 2002, doi:10.1016/S0021-9290(01)00222-6).
Hip and lumbar are Cardan Z–X′–Y″ of the distal segment relative to the pelvis (Grood & Suntay
1983, doi:10.1115/1.3138397); the pelvis uses the rotation–obliquity–tilt order Y–X′–Z″ relative
to a walking-direction frame (Baker 2001, doi:10.1016/S0966-6362(01)00105-3).

All functions are pointwise in time (except :func:`walking_direction`), so processing a session in
chunks gives the same angles as one batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from imuhip.conventions import (
    HIP_SIGN,
    Side,
    as_unit_quat,
    axis_quat,
    cardan_yxz,
    cardan_zxy,
    hip_angles_to_quat,
    quat_conj,
    quat_from_cardan_yxz,
    quat_from_cardan_zxy,
    quat_mul,
)
from imuhip.gait import _joints_kernels as _kq
from imuhip.gait.walking_direction import (
    _NO_CAL,
    _oscillation_period,
    _walking_unit,
    _walking_xy,
    heading_oscillation_period_s,
    walking_direction,
)
from imuhip.ingest.parallel import map_sensors
from imuhip.types import JointAngles, OrientationSession, SegmentCalibration

__all__ = [
    "JointsConfig",
    "cardan_yxz",
    "cardan_zxy",
    "heading_oscillation_period_s",
    "hip_angles",
    "hip_angles_to_quat",
    "joint_angles",
    "lumbar_angles",
    "pelvis_angles",
    "quat_from_cardan_yxz",
    "quat_from_cardan_zxy",
    "segment_orientation",
    "walking_direction",
    "walking_frame",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class JointsConfig:
    """Options of :func:`joint_angles`.

    Parameters
    ----------
    walking_window_s : float
        Centred moving-average window of the pelvis heading that defines the walking direction
        when no gait rhythm is found; otherwise the window is two periods of the dominant pelvis
        heading oscillation (:func:`heading_oscillation_period_s`), so that the pelvic rotation
        oscillation (and every harmonic of it) averages out exactly.
    heading_correction : {"auto", "always", "never"}
        Remove slow pelvis–thigh relative heading drift (see :mod:`imuhip.orientation.heading`).
        ``"auto"``
        corrects only sensors fused without a magnetometer (6D). ``"always"`` anchors the 9D
        relative heading the same way (the mean hip rotation over walking windows is held at
        zero), which removes the magnetometer's per-sensor heading errors (hard-iron bias,
        tilt errors coupled through the dip) from hip rotation; the analysis pipeline uses it
        by default (``AnalysisConfig.relative_heading="walking"``).
    """

    walking_window_s: float = 2.2
    heading_correction: Literal["auto", "always", "never"] = "auto"


# ---------------------------------------------------------------------------------------------
# Anatomical angles
# ---------------------------------------------------------------------------------------------

_LUMBAR_SIGN = np.array([-1.0, 1.0, -1.0])
_PELVIS_SIGN = np.array([1.0, -1.0, -1.0])


def hip_angles(
    q_world_pelvis: npt.ArrayLike, q_world_thigh: npt.ArrayLike, side: Side | str
) -> FloatArray:
    """Hip angles of the thigh segment relative to the pelvis segment (ISB, Wu 2002).

    Parameters
    ----------
    q_world_pelvis, q_world_thigh : (N, 4) or (4,) float
        Segment (not sensor) orientations in the world frame, scalar first.
    side : Side
        Which hip; the left side is mirrored so + is the same anatomical motion on both sides.

    Returns
    -------
    (N, 3) or (3,) float
        ``[flexion, adduction, internal rotation]`` in radians, Cardan Z–X′–Y″ of
        ``q_pelvis_thigh = conj(q_world_pelvis) ⊗ q_world_thigh``; for the left side the X′ and Y″
        angles are negated.
    """
    side = Side(side)
    qp = as_unit_quat("q_world_pelvis", q_world_pelvis)
    qt = as_unit_quat("q_world_thigh", q_world_thigh)
    q_pelvis_thigh = quat_mul(quat_conj(qp), qt)
    return cardan_zxy(q_pelvis_thigh) * HIP_SIGN[side]


def lumbar_angles(q_world_pelvis: npt.ArrayLike, q_world_lumbar: npt.ArrayLike) -> FloatArray:
    """Lumbar angles of the lumbar segment relative to the pelvis segment.

    Parameters
    ----------
    q_world_pelvis, q_world_lumbar : (N, 4) or (4,) float
        Segment orientations in the world frame, scalar first.

    Returns
    -------
    (N, 3) or (3,) float
        ``[flexion, lateral bending, axial rotation]`` radians from the Z–X′–Y″ Cardan angles
        ``[a, b, c]`` of ``q_pelvis_lumbar``: flexion = ``-a`` (trunk leaning forward; a positive
        rotation about Z right tips the superior axis backwards), lateral bending = ``b`` (toward
        the subject's right), axial rotation = ``-c`` (trunk turning to the right, clockwise seen
        from above).
    """
    qp = as_unit_quat("q_world_pelvis", q_world_pelvis)
    ql = as_unit_quat("q_world_lumbar", q_world_lumbar)
    return cardan_zxy(quat_mul(quat_conj(qp), ql)) * _LUMBAR_SIGN


def walking_frame(walking_dir_world: npt.ArrayLike) -> FloatArray:
    """``q_world_walk`` of the walking-direction frame (X forward horizontal, Y up, Z right).

    Parameters
    ----------
    walking_dir_world : (N, 3) or (3,) float
        Direction of walking in the world (ENU) frame; the vertical part is ignored.

    Returns
    -------
    (N, 4) or (4,) float
    """
    d = np.asarray(walking_dir_world, dtype=np.float64)
    if d.shape[-1] != 3 or d.ndim not in (1, 2):
        raise ValueError(f"walking_dir_world must have shape (N, 3) or (3,), got {d.shape}")
    dh = d.copy()
    dh[..., 2] = 0.0
    n = np.linalg.norm(dh, axis=-1, keepdims=True)
    if np.any(n < 1e-9) or not np.all(np.isfinite(n)):
        raise ValueError("walking_dir_world must have a non-zero finite horizontal component")
    x = dh / n
    # heading angle of X (from east, counter-clockwise); the frame is the yaw rotation that maps
    # the canonical frame (X east, Y north, Z up) to (X forward, Y up, Z right): first turn the
    # canonical axes so that X->forward, then Y->up, Z->right (a fixed +90° rotation about X).
    psi = np.arctan2(x[..., 1], x[..., 0])
    q_yaw = axis_quat(2, psi)
    q_fix = axis_quat(0, np.full(psi.shape, 0.5 * np.pi))  # Y_walk = up, Z_walk = -north = right
    return quat_mul(q_yaw, q_fix)


def pelvis_angles(q_world_pelvis: npt.ArrayLike, walking_dir_world: npt.ArrayLike) -> FloatArray:
    """Pelvis angles relative to the walking direction (Baker 2001 rotation–obliquity–tilt).

    Parameters
    ----------
    q_world_pelvis : (N, 4) or (4,) float
        Pelvis segment orientation in the world frame.
    walking_dir_world : (N, 3) or (3,) float
        Walking direction in the world frame (see :func:`walking_direction`).

    Returns
    -------
    (N, 3) or (3,) float
        ``[rotation, obliquity, tilt]`` radians from the Y–X′–Z″ Cardan angles ``[a, b, c]`` of
        ``q_walk_pelvis``: rotation = ``a`` (+ counter-clockwise from above, right hemipelvis
        forward), obliquity = ``-b`` (+ right hemipelvis up), tilt = ``-c`` (+ anterior tilt).
    """
    qp = as_unit_quat("q_world_pelvis", q_world_pelvis)
    q_world_walk = walking_frame(walking_dir_world)
    return cardan_yxz(quat_mul(quat_conj(q_world_walk), qp)) * _PELVIS_SIGN


def segment_orientation(
    q_world_sensor: npt.ArrayLike, q_sensor_segment: npt.ArrayLike
) -> FloatArray:
    """``q_world_segment = q_world_sensor ⊗ q_sensor_segment``, shape ``(N, 4)``."""
    return quat_mul(as_unit_quat("q_world_sensor", q_world_sensor), q_sensor_segment)


def _unanchored(ori: OrientationSession, placement: str) -> bool:
    """No magnetometer and no vendor magnetometer-referenced heading (6D heading drifts)."""
    from imuhip.orientation.heading import vendor_heading_anchored

    return ori.mag_ut.get(placement) is None and not vendor_heading_anchored(ori, placement)


def joint_angles(
    ori: OrientationSession,
    segcal: SegmentCalibration,
    cfg: JointsConfig | None = None,
) -> JointAngles:
    """All joint angles the session's sensors allow.

    Parameters
    ----------
    ori : OrientationSession
        Sensor orientations (world ENU) on the session grid.
    segcal : SegmentCalibration
        Sensor-to-segment rotations (see :mod:`imuhip.orientation.segment_calibration`).
    cfg : JointsConfig, optional

    Returns
    -------
    JointAngles
        Hip angles per side with a thigh sensor, pelvis angles, lumbar angles with a lumbar
        sensor; ``valid`` = every sensor the available angles need is valid;
        ``transverse_confidence`` from :func:`imuhip.orientation.heading.transverse_confidence`.
    """
    from imuhip.orientation import heading

    cfg = cfg or JointsConfig()
    if "pelvis" not in ori.q_world_sensor:
        raise ValueError(
            "joint angles need a pelvis sensor; session has: "
            + ", ".join(sorted(ori.q_world_sensor))
        )
    have = [p for p in ori.q_world_sensor if p in segcal.q_sensor_segment]
    if "pelvis" not in have:
        raise ValueError("segment calibration has no pelvis entry")
    # Fused per-sample kernels (imuhip.gait._joints_kernels): segment orientation = normalised
    # sensor orientation ⊗ calibration, heading fix, relative rotation and Cardan arguments in
    # one pass each, no whole-session quaternion temporaries; the same angles as hip_angles,
    # lumbar_angles, pelvis_angles after correct_thigh_heading (tests/unit/gait/test_joints.py)
    raw: dict[str, FloatArray] = {}
    q_in: dict[str, FloatArray] = {}
    cal: dict[str, FloatArray] = {}
    for p in have:
        raw[p] = np.ascontiguousarray(ori.q_world_sensor[p], dtype=np.float64)
        if _kq.first_bad_quat(raw[p]) >= 0:
            raise ValueError("quaternion must be finite and non-zero")
        c = np.asarray(segcal.q_sensor_segment[p], dtype=np.float64)
        if c.shape == (4,) and np.all(np.isfinite(c)) and np.any(c != 0):
            q_in[p], cal[p] = raw[p], np.ascontiguousarray(c)
        else:  # per-sample or defective calibration: the general path
            q_in[p] = np.ascontiguousarray(segment_orientation(raw[p], c))
            cal[p] = _NO_CAL
            if _kq.first_bad_quat(q_in[p]) >= 0:
                raise ValueError("quaternion must be finite and non-zero")
    valid = np.asarray(ori.valid["pelvis"], dtype=bool).copy()
    offsets, anchor_conf, notes, reconverging = _heading_offsets(ori, cfg, raw, q_in, cal)
    # a segment's rows count when it is valid and not re-converging after a filter restart
    # (docs/live.md); restarts of the pelvis are in every segment's re-convergence
    seg_ok = {
        p: np.asarray(ori.valid[p], dtype=bool) & ~reconverging.get(p, np.zeros(len(valid), bool))
        for p in q_in
        if p.startswith("thigh_") or p == "lumbar"
    }
    m = len(ori.t_s)

    def zxy(seg: str, sign: FloatArray) -> FloatArray:
        cen, off = offsets.get(seg, (_NO_CAL, _NO_CAL))
        out = np.empty((m, 3))
        buf = np.empty((5, min(m, _CHUNK)))  # kernel outputs of one chunk, in cache
        for a in range(0, m, _CHUNK):
            e = buf[:, : min(_CHUNK, m - a)]
            _kq.zxy_args(q_in["pelvis"], cal["pelvis"], q_in[seg], cal[seg], cen, off, sign, a, e)
            _cardan_from_entries(e, out[a : a + e.shape[1]])
        return out

    # the chains are independent (each hip, the lumbar joint, the pelvis against the walking
    # direction): threads on a long session (their kernels and numpy's loops release the GIL;
    # the pelvis chain, the longest, first)
    chains: dict[str, Callable[[], Any]] = {
        "pelvis": partial(_pelvis_chain, ori, q_in["pelvis"], cal["pelvis"], cfg)
    }
    for side in (Side.LEFT, Side.RIGHT):
        thigh = f"thigh_{side.suffix}"
        if thigh in q_in:
            chains[side.value] = partial(zxy, thigh, HIP_SIGN[side])
    if "lumbar" in q_in:
        chains["lumbar"] = partial(zxy, "lumbar", _LUMBAR_SIGN)
    done = dict(zip(chains, map_sensors(lambda f: f(), list(chains.values()), m), strict=True))
    pelvis, walking_heading = done.pop("pelvis")
    lumbar = done.pop("lumbar", None)
    hip: dict[str, FloatArray] = done
    # per side: pelvis, that side's thigh and the lumbar sensor (trunk metrics of its strides);
    # a gap of the other thigh does not cost this side its strides
    trunk_ok = valid & seg_ok.get("lumbar", True)
    side_valid = {s: trunk_ok & seg_ok[f"thigh_{Side(s).suffix}"] for s in hip}
    for ok in seg_ok.values():
        valid &= ok
    conf, reasons = heading._transverse_confidence(ori, anchor_conf)
    return JointAngles(
        t_s=np.asarray(ori.t_s, dtype=np.float64),
        hip_rad=hip,
        pelvis_rad=pelvis,
        lumbar_rad=lumbar,
        valid=valid,
        transverse_confidence=conf,
        notes=(*segcal.warnings, *notes, *reasons),
        side_valid=side_valid,
        walking_heading_rad=walking_heading,
    )


def _pelvis_chain(
    ori: OrientationSession, q_pelvis: FloatArray, cal_pelvis: FloatArray, cfg: JointsConfig
) -> tuple[FloatArray, FloatArray]:
    """Pelvis angles against the walking direction (found here from the pelvis' heading
    oscillation) and the unwrapped walking heading, both ``(M,)``-rowed."""
    m = len(ori.t_s)
    w = np.asarray(ori.valid["pelvis"], dtype=np.float64)
    fx, fy = _kq.forward_xy(q_pelvis, cal_pelvis, w)  # weighted by validity
    period = _oscillation_period(fx, fy, ori.rate_hz, ori.valid["pelvis"], (0.5, 2.5))
    win_s = cfg.walking_window_s if period is None else 2.0 * period
    dx, dy = _walking_xy(fx, fy, w, ori.rate_hz, win_s)
    del fx, fy
    cx, sx = _walking_unit(dx, dy)
    pelvis = np.empty((m, 3))
    buf = np.empty((5, min(m, _CHUNK)))
    for a in range(0, m, _CHUNK):
        e = buf[:, : min(_CHUNK, m - a)]
        _kq.yxz_walk_args(q_pelvis, cal_pelvis, cx, sx, _PELVIS_SIGN, a, e)
        _cardan_from_entries(e, pelvis[a : a + e.shape[1]])
    return pelvis, np.unwrap(np.arctan2(dy, dx))


def _heading_offsets(
    ori: OrientationSession,
    cfg: JointsConfig,
    raw: dict[str, FloatArray],
    q_in: dict[str, FloatArray],
    cal: dict[str, FloatArray],
) -> tuple[
    dict[str, tuple[FloatArray, FloatArray]],
    dict[str, FloatArray],
    list[str],
    dict[str, npt.NDArray[np.bool_]],
]:
    """Walking-axis heading anchors of the thighs and the lumbar segment against the pelvis.

    Which segments are anchored follows ``cfg.heading_correction`` (:class:`JointsConfig`);
    ``q_in``/``cal`` are the orientations and calibrations :func:`joint_angles` hands to the
    kernels, ``raw`` the sensor orientations (the gyroscope frames). Returns the anchors per
    segment (window centres, unwrapped heading offsets in rad) for the angle kernels, the 6D
    anchor confidences ``(M,)`` per thigh (for the transverse confidence), the notes and, per
    segment, the rows re-converging after a filter restart of it or of the pelvis
    (``imuhip.orientation.heading._epochs``).
    """
    from imuhip.orientation import heading
    from imuhip.orientation.heading import _epochs

    notes: list[str] = []
    m = len(ori.t_s)
    ep_pelvis = _epochs.filter_epochs(ori, "pelvis")
    pairs = {
        p: _epochs.pair_epochs(ep_pelvis, _epochs.filter_epochs(ori, p), m)
        for p in q_in
        if p != "pelvis"
    }
    reconverging: dict[str, npt.NDArray[np.bool_]] = {}
    done: set[str] = set()

    def fit(
        segs: list[str], gyros: list[str], axis: tuple[float, float, float]
    ) -> list[heading._HeadingFit]:
        """Walking-axis fits of one or two segments against the pelvis (one kernel pass)."""
        args = []
        for seg, gyro in zip(segs, gyros, strict=True):
            gyr = ori.gyr_rad_s[gyro]
            assert gyr is not None  # checked by the callers
            ok = np.asarray(ori.valid[seg], bool) & np.asarray(ori.valid["pelvis"], bool)
            args.append((q_in[seg], cal[seg], raw[gyro], np.asarray(gyr, np.float64), ok, seg))
        return heading._heading_fit(
            q_in["pelvis"],
            cal["pelvis"],
            *args[0][:5],
            ori.rate_hz,
            heading.HeadingConfig(),
            segs[0],
            "mean_axis",
            axis,
            second=args[1] if len(args) > 1 else None,
            pairs=[pairs[s] for s in segs],
        )

    offsets: dict[str, tuple[FloatArray, FloatArray]] = {}
    anchor_conf: dict[str, FloatArray] = {}
    plan: list[tuple[str, bool, bool]] = []  # (thigh, no_mag, fit) in side order
    for side in (Side.LEFT, Side.RIGHT):
        thigh = f"thigh_{side.suffix}"
        if thigh not in q_in:
            continue
        no_mag = _unanchored(ori, thigh) or _unanchored(ori, "pelvis")
        if cfg.heading_correction == "always" or (cfg.heading_correction == "auto" and no_mag):
            plan.append((thigh, no_mag, ori.gyr_rad_s.get(thigh) is not None))
    todo = [t for t, _, do in plan if do]
    fits = dict(zip(todo, fit(todo, todo, (0.0, 0.0, 1.0)) if todo else [], strict=True))
    for thigh, no_mag, do in plan:
        if not do:
            if no_mag:  # a magnetometer-referenced heading does not drift: nothing to say
                notes.append(f"{thigh}: no gyroscope, relative heading not drift-corrected")
            continue
        corr = fits[thigh]
        if corr.reconverging is not None:
            reconverging[thigh] = corr.reconverging
            done.add(thigh)
        if corr.off_rad is not None:
            offsets[thigh] = (corr.centres, corr.off_rad)
        if no_mag:
            # with magnetometers the confidence stays the field-quality one: the walking
            # anchor then only replaces the magnetometer's relative heading error
            anchor_conf[thigh] = corr.confidence(m)
        notes.append(corr.note if no_mag else corr.note.replace("6D: ", "9D: ", 1))

    if "lumbar" in q_in:
        no_mag = _unanchored(ori, "lumbar") or _unanchored(ori, "pelvis")
        t_gate = next(
            (t for t in ("thigh_r", "thigh_l") if t in q_in and ori.gyr_rad_s.get(t) is not None),
            None,
        )
        want = cfg.heading_correction == "always" or (cfg.heading_correction == "auto" and no_mag)
        if want and t_gate is not None:
            (corr,) = fit(["lumbar"], [t_gate], (1.0, 0.0, 0.0))
            if corr.reconverging is not None:
                reconverging["lumbar"] = corr.reconverging
                done.add("lumbar")
            if corr.off_rad is not None:
                offsets["lumbar"] = (corr.centres, corr.off_rad)
            notes.append(corr.note)
    for p, pair in pairs.items():  # no walking-axis fit (9D): a fixed re-convergence window
        if pair is not None and p not in done:
            cfg_h = heading.HeadingConfig()
            reconverging[p] = _epochs.reconverging_without_anchor(pair, ori.rate_hz, cfg_h)
    return offsets, anchor_conf, notes, reconverging


_CHUNK = 32768
"""Samples per chunk of the angle kernels: their (5, chunk) arguments stay in cache."""


def _cardan_from_entries(e: FloatArray, out: FloatArray) -> None:
    """Angles ``[a, b, c]`` into ``out`` (n, 3) from the kernels' ``(5, n)`` arguments (numpy's
    SIMD ``arcsin``/``arctan2``: the functions :func:`cardan_zxy`/:func:`cardan_yxz` call)."""
    np.arctan2(e[1], e[2], out=out[:, 0])
    np.clip(e[0], -1.0, 1.0, out=e[0])
    np.arcsin(e[0], out=out[:, 1])
    np.arctan2(e[3], e[4], out=out[:, 2])
