"""Where the calibration looks: the static standing window and the movement windows.

The static window is the first period in which every sensor is still (step 1 of
:mod:`imuhip.orientation.segment_calibration`); the movement windows are the walking after it, or
dedicated leg swings marked by calibration events (step 2).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from imuhip.dsp import moving_average, moving_std
from imuhip.errors import CalibrationError
from imuhip.orientation._calib_kernels import rot_z, sq_norm_rows
from imuhip.orientation.segment_calibration._config import FloatArray, SegmentCalConfig, Window, _c
from imuhip.types import OrientationSession, SessionEvent

__all__ = ["find_static_window", "functional_windows_from_events"]


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
    still = np.all(moving_std(acc, n_win, axis=0) < cfg.still_acc_std_m_s2, axis=1)
    gyr = ori.gyr_rad_s.get(placement)
    if gyr is not None:
        gn = moving_average(np.linalg.norm(gyr[sl], axis=1), n_win)
        still &= gn < cfg.still_gyr_rad_s
    return still & _bridge_short_gaps(ori.valid[placement][sl], ori.rate_hz, cfg.max_bridged_gap_s)


def find_static_window(
    ori: OrientationSession,
    cfg: SegmentCalConfig | None = None,
    skipped: list[str] | None = None,
) -> Window:
    """First period of at least ``cfg.min_static_s`` where every sensor is still, standing.

    Only a prefix of the session is examined, growing (x4) until the first long enough still
    period is complete inside its exact part (see :func:`_still_mask`): the same window as
    over the whole session, at a fraction of the cost when the subject stands at the start.

    For the standing calibration (``cfg.method == "standing"``) a still period counts only when
    it is a standing pose: each thigh's gravity direction in it lies within
    ``cfg.standing_max_thigh_deg`` of its mean one over the straight walking (walking swings the
    thigh ±20-25° about near-vertical; sitting or lying holds it ~90° away). A recording that
    starts seated (a timed up-and-go, a subject waiting on a chair) is then calibrated on its
    standing, not on the chair (:func:`_posture_offsets`).

    Parameters
    ----------
    skipped : list, optional
        Receives one line per still period passed over as not standing.

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
    limit_deg = cfg.standing_max_thigh_deg if cfg.method == "standing" else None
    walking_up: dict[str, FloatArray] | None = None
    not_standing: dict[Window, str] = {}
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
                if limit_deg is not None:
                    if walking_up is None:
                        # judged once the thighs walked as long as a calibration needs
                        # (seated is ~90 deg off the walking attitude, standing ~10 deg)
                        up, walk_s = _walking_up(ori, cfg, ("thigh_l", "thigh_r"))
                        walking_up = up if walk_s >= cfg.short_movement_s else {}
                    off = _posture_offsets(ori, (a, b), walking_up, limit_deg)
                    if off:
                        not_standing[(a, b)] = off
                        continue
                if skipped is not None:
                    skipped.extend(
                        f"the still period at {_span(ori, (a0, b0))} is not standing ({off}: "
                        f"seated or lying); the standing at {_span(ori, (a, b))} calibrates"
                        for (a0, b0), off in not_standing.items()
                    )
                return a, b
        else:
            if stop == n:
                break
        length *= 4
    if not_standing:
        where = "; ".join(f"{_span(ori, w)}: {off}" for w, off in not_standing.items())
        raise CalibrationError(
            f"no standing still period: every still period of {cfg.min_static_s:g} s holds a "
            f"thigh far from its walking posture (> {cfg.standing_max_thigh_deg:g} deg; {where}): "
            f"seated or lying, not standing. The standing calibration needs the subject to stand "
            f"still for at least {cfg.min_static_s:g} s, before or after walking"
        )
    never = [
        p
        for p in sorted(ori.q_world_sensor)
        if not any(b - a >= need for a, b in _runs(_still_mask(ori, p, cfg)))
    ]
    which = f"; {', '.join(never)}: never still that long" if never else ""
    raise CalibrationError(
        f"no still period of {cfg.min_static_s:g} s found in which all sensors "
        f"({', '.join(sorted(ori.q_world_sensor))}) are still{which}: stand still for at least "
        f"{cfg.min_static_s:g} s at the start of the recording"
    )


def _span(ori: OrientationSession, win: Window) -> str:
    """``"0.0–4.7 s"``: a window in session seconds (a clock that starts a few ms before 0
    reads 0.0, not -0.0)."""

    def sec(i: int) -> float:
        x = float(ori.t_s[i])
        return 0.0 if -0.05 < x < 0.0 else x

    return f"{sec(win[0]):.1f}–{sec(win[1] - 1):.1f} s"


def _walking_up(
    ori: OrientationSession, cfg: SegmentCalConfig, placements: Sequence[str]
) -> tuple[dict[str, FloatArray], float]:
    """Each placement's mean gravity direction (sensor frame, unit) over the straight walking of
    the whole session (:func:`_movement_windows`, the walking the calibration uses), and that
    walking's length (s).

    Over whole strides the specific force averages to gravity in the segment's mean attitude
    (the linear and centripetal parts are ~0.1 g and oscillate). Placements without an
    accelerometer, valid rows in the walking, or gravity there are left out; without a thigh
    gyroscope there is no walking to take (``({}, 0.0)``).
    """
    if not any(ori.gyr_rad_s.get(p) is not None for p in ("thigh_l", "thigh_r")):
        return {}, 0.0
    idx = _index(_movement_windows(ori, (0, 0), cfg), len(ori.t_s))
    out: dict[str, FloatArray] = {}
    for p in placements:
        acc = ori.acc_m_s2.get(p)
        if acc is None or p not in ori.q_world_sensor:
            continue
        rows = idx[np.asarray(ori.valid[p], bool)[idx]]
        if not len(rows):
            continue
        m = np.mean(acc[rows], axis=0)
        norm = float(np.linalg.norm(m))
        if np.isfinite(norm) and norm > 1.0:
            out[p] = m / norm
    return out, len(idx) / ori.rate_hz


def _posture_offsets(
    ori: OrientationSession, win: Window, walking_up: dict[str, FloatArray], limit_deg: float
) -> str:
    """The thighs held more than ``limit_deg`` from their walking posture in ``win``
    (``"thigh_l 88 deg"``, ...), or ``""`` when the still period is a standing pose."""
    far = []
    for p, up_walk in walking_up.items():
        sl = slice(*win)
        ok = np.asarray(ori.valid[p][sl], bool)
        acc = ori.acc_m_s2[p][sl][ok]
        if not len(acc):
            continue
        m = np.mean(acc, axis=0)
        norm = float(np.linalg.norm(m))
        if not norm > 1.0:
            continue
        ang = float(np.degrees(np.arccos(np.clip(np.dot(m / norm, up_walk), -1.0, 1.0))))
        if ang > limit_deg:
            far.append(f"{p} {ang:.0f} deg")
    return ", ".join(far)


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


def _movement_windows(
    ori: OrientationSession, static: Window, cfg: SegmentCalConfig
) -> list[Window]:
    """Walking: after the static window, thigh gyro RMS over ``walking_window_s`` high enough.

    When there is less than ``min_movement_s`` of it after the static window (a recording that
    starts while walking and stands only at its end), the walking before the window is used too.

    Turns are left out (pelvis yaw rate averaged over ``turn_window_s`` above
    ``max_turn_rate_rad_s``): there the legs rotate about the vertical, which is not flexion.
    """
    thighs = [p for p in ("thigh_l", "thigh_r") if ori.gyr_rad_s.get(p) is not None]
    if not thighs:
        raise CalibrationError("functional calibration needs a thigh gyroscope (thigh_l/thigh_r)")
    n = len(ori.t_s)
    size = max(3, round(cfg.walking_window_s * ori.rate_hz))
    # every thigh with data walks, and at least one has data: a thigh that stops sending (a
    # flat battery) leaves the other side's walking to calibrate it (it is dropped itself:
    # :func:`~imuhip.orientation.segment_calibration._axes._flexion_axes` uses its valid rows)
    moving = np.ones(n, dtype=bool)
    any_data = np.zeros(n, dtype=bool)
    for p in thighs:
        g = ori.gyr_rad_s[p]
        assert g is not None
        sq = np.empty(n)
        sq_norm_rows(_c(g), sq)  # = np.sum(g * g, axis=1), one pass
        # a running mean of squares can round a hair below 0 after a run of zeros
        rms = np.sqrt(np.maximum(moving_average(sq, size), 0.0))
        has = _bridge_short_gaps(ori.valid[p], ori.rate_hz, cfg.max_bridged_gap_s)
        moving &= (rms > cfg.walking_gyr_rms_rad_s) | ~has
        any_data |= has
    moving &= any_data
    pel_gyr = ori.gyr_rad_s.get("pelvis")
    if pel_gyr is not None and "pelvis" in ori.q_world_sensor:
        # the turns are seen by the pelvis, and its anterior axis comes from this walking: only
        # where it has data
        moving &= _bridge_short_gaps(ori.valid["pelvis"], ori.rate_hz, cfg.max_bridged_gap_s)
        yaw_rate = np.empty(n)
        rot_z(_c(ori.q_world_sensor["pelvis"]), _c(pel_gyr), yaw_rate)
        turn_size = max(3, round(cfg.turn_window_s * ori.rate_hz))
        moving &= np.abs(moving_average(yaw_rate, turn_size)) <= (cfg.max_turn_rate_rad_s)
    after = moving.copy()
    after[: static[1]] = False
    windows = [w for w in _runs(after) if w[1] - w[0] >= size]
    if sum(b - a for a, b in windows) >= cfg.min_movement_s * ori.rate_hz:
        return windows
    # A recording that starts while walking stands still only at its end: the walking before
    # the standing is as good (the sensors are the same on the same segments).
    moving[static[0] : static[1]] = False
    return [w for w in _runs(moving) if w[1] - w[0] >= size]
