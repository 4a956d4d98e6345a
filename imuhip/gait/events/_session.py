"""Which sensor gives a side's events, and the events and strides of a whole session.

Per side the best available source is used: a foot sensor (Rampp et al. 2014,
:mod:`._foot_rule`), else a shank (Aminian et al. 2002 / Salarian et al. 2004), else the thigh
(fallback, normative phases). A foot whose events cannot be found (axes not identifiable, no
swing) falls back to the next source, and the fallback is reported.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from imuhip.errors import InsufficientDataError
from imuhip.gait.events._config import BoolArray, EventConfig, FloatArray, SideEvents, Stride
from imuhip.gait.events._constraints import check_strides, reject_close_candidates
from imuhip.gait.events._detector import config_for_segment, detect_gait_events
from imuhip.gait.events._foot_rule import detect_foot_events
from imuhip.gait.events._signals import segment_angular_velocity
from imuhip.gait.events._strides import segment_strides
from imuhip.ingest.parallel import map_sensors
from imuhip.types import OrientationSession, SegmentCalibration

__all__ = ["detect_foot_side_events", "detect_side_events", "event_source", "session_events"]

SIDES = (("left", "l"), ("right", "r"))


def event_source(ori: OrientationSession, suffix: str) -> str:
    """The preferred event segment of one side: ``"foot"``, ``"shank"`` or ``"thigh"``."""
    for seg in ("foot", "shank"):
        if f"{seg}_{suffix}" in ori.q_world_sensor:
            return seg
    return "thigh"


def detect_foot_side_events(
    ori: OrientationSession, side: str, cfg: EventConfig | None = None
) -> SideEvents:
    """Events of one side from its foot sensor (Rampp et al. 2014), constraints applied.

    The foot sensor's own gyroscope (else the angular velocity differentiated from its
    orientation) and accelerometer, in its sensor frame: the foot's axes come from the data
    (:func:`imuhip.gait.events._foot_rule.foot_axes`), no segment calibration is needed.

    Raises
    ------
    KeyError
        No foot sensor on that side.
    InsufficientDataError
        The foot's axes cannot be told.
    """
    cfg = cfg or EventConfig()
    p = f"foot_{side[0]}"
    omega, kind = segment_angular_velocity(ori, None, p)
    fe = detect_foot_events(ori.t_s, omega, np.asarray(ori.acc_m_s2[p]), cfg)
    gap = cfg.candidate_min_stride_s
    ic, _, n_ic = reject_close_candidates(fe.ic_s, fe.ic_support, gap)
    to, _, n_to = reject_close_candidates(fe.to_s, fe.to_support, gap)
    return SideEvents(
        side,
        f"foot_{kind}",
        ic,
        to,
        fe.swing_peak_s,
        rejected={"ic_too_close": n_ic, "to_too_close": n_to},
    )


def detect_side_events(
    ori: OrientationSession,
    segcal: SegmentCalibration | None,
    side: str,
    cfg: EventConfig | None = None,
) -> tuple[SideEvents, str, list[str]]:
    """Events of one side from the best available sensor (foot, shank, thigh).

    Returns
    -------
    events : SideEvents
    placement : str
        The sensor the events come from.
    notes : list of str
        Fallbacks taken (e.g. a foot sensor whose events could not be found).
    """
    cfg = cfg or EventConfig()
    suffix = side[0]
    notes: list[str] = []
    order = [g for g in ("foot", "shank") if f"{g}_{suffix}" in ori.q_world_sensor] + ["thigh"]
    for k, seg in enumerate(order):
        p = f"{seg}_{suffix}"
        last = k == len(order) - 1
        try:
            if seg == "foot":
                ev = detect_foot_side_events(ori, side, cfg)
            else:
                omega, kind = segment_angular_velocity(ori, segcal, p)
                seg_cfg = config_for_segment(cfg, segcal, p) if segcal is not None else cfg
                ev = detect_gait_events(
                    ori.t_s, omega[:, 2], side=side, segment=seg, source=f"{seg}_{kind}",
                    cfg=seg_cfg,
                )  # fmt: skip
        except InsufficientDataError as err:
            if last:
                raise
            notes.append(f"{side}: {seg} events not found ({err}); events from the {order[k + 1]}")
            continue
        if len(ev.ic_s) >= 2 or last:
            return ev, p, notes
        notes.append(
            f"{side}: {seg} sensor gave {len(ev.ic_s)} initial contacts; "
            f"events from the {order[k + 1]}"
        )
    raise AssertionError("unreachable: the thigh is always the last source")


def session_events(
    ori: OrientationSession,
    segcal: SegmentCalibration | None,
    valid: BoolArray | Mapping[str, BoolArray],
    sides: tuple[str, ...],
    heading_rad: FloatArray | None = None,
    cfg: EventConfig | None = None,
) -> tuple[dict[str, SideEvents], list[Stride], dict[str, Any]]:
    """Events and strides of every side, with the cross-side checks, and their counts.

    Parameters
    ----------
    ori : OrientationSession
    segcal : SegmentCalibration or None
    valid : (M,) bool, or side -> (M,) bool
        Samples where the angles are valid (per side: ``JointAngles.side_valid``, so that a gap
        of one thigh does not invalidate the other side's strides); a side's strides also need
        its event sensor.
    sides : tuple of str
        The sides to detect (``"left"``, ``"right"``).
    heading_rad : (M,) float64, optional
        Unwrapped pelvis heading (turning strides).
    cfg : EventConfig, optional

    Returns
    -------
    events : dict side -> SideEvents
    strides : list of Stride
        Sorted by IC, then side.
    checks : dict
        ``quality["event_checks"]``: per side the source, the candidates each constraint
        dropped, and the strides each exclusion reason removed; plus fallback notes.
    """
    cfg = cfg or EventConfig()
    events: dict[str, SideEvents] = {}
    placement: dict[str, str] = {}
    notes: list[str] = []
    todo = [side for side, _ in SIDES if side in sides]

    def detect(side: str) -> tuple[SideEvents, str, list[str]]:
        return detect_side_events(ori, segcal, side, cfg)

    found = map_sensors(detect, todo, len(ori.t_s))  # independent sides
    for side, (ev, p, n) in zip(todo, found, strict=True):
        events[side] = ev
        placement[side] = p
        notes += n
    strides: list[Stride] = []
    checks: dict[str, Any] = {"notes": notes}
    for side, ev in events.items():
        other = [e.ic_s for s, e in events.items() if s != side]
        v = valid[side] if isinstance(valid, Mapping) else valid
        ok = np.asarray(v, dtype=bool) & np.asarray(ori.valid[placement[side]], dtype=bool)
        mine = segment_strides(ev, ori.t_s, ok, heading_rad, cfg)
        mine = check_strides(mine, other[0] if other else None, cfg)
        strides += mine
        excluded: dict[str, int] = {}
        for s in mine:
            if s.exclusion is not None:
                excluded[s.exclusion] = excluded.get(s.exclusion, 0) + 1
        checks[side] = {
            "source": ev.source,
            "sensor": placement[side],
            "candidates_rejected": dict(ev.rejected),
            "strides": len(mine),
            "strides_valid": sum(1 for s in mine if s.valid),
            "strides_excluded": excluded,
        }
    strides.sort(key=lambda s: (s.ic_s, s.side))
    return events, strides, checks
