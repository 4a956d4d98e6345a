"""Is each thigh sensor on the leg it is labelled for? Checks on the detected gait events.

The hip flexes most in terminal swing and stays near that peak until initial contact: over
strides from initial contact (IC) to the next IC of the same side, peak hip flexion lies within
about 10 % of the cycle of IC (Perry & Burnfield 2010, *Gait Analysis*, ch. 7; measured on the
gaittoolbox trial: 0-7 % and 93-100 %). When the events of a side come from its shank or foot
and that side's "thigh" is really the other leg (left and right thigh files swapped, a sensor
strapped to the wrong leg), the peak comes half a cycle off (55-60 % on the same trial with the
thigh files swapped). With the events from the thighs themselves the check cannot tell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from imuhip.gait.events import SideEvents, Stride, segment_angular_velocity
from imuhip.types import JointAngles, OrientationSession

__all__ = [
    "MAX_FLEXION_PEAK_OFFSET_PCT",
    "event_warnings",
    "thigh_shank_check",
    "thigh_side_check",
]

MIN_SHANK_SWING_RAD_S: Final = 2.0
"""A shank turning slower than this at its 99th percentile did not walk: nothing to judge."""

MAX_FLEXION_PEAK_OFFSET_PCT: Final = 25.0
"""Largest circular distance (% of the stride) of the mean peak-flexion phase from IC for the
thigh to count as on the labelled leg: normal 0-10 %, a thigh on the other leg about 50 %."""


def thigh_side_check(
    angles: JointAngles, strides: Sequence[Stride], events: Mapping[str, SideEvents]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Phase of peak hip flexion in each side's valid strides, and warnings where it is off.

    Parameters
    ----------
    angles : JointAngles
        ``hip_rad[side][:, 0]`` is hip flexion (rad).
    strides : sequence of Stride
    events : mapping side -> SideEvents
        ``source`` names the event segment (``"shank_gyro"``, ``"foot_gyro"``, ``"thigh_..."``).

    Returns
    -------
    checks : dict
        Per side checked: ``event_source``, ``hip_flexion_peak_pct`` (circular mean phase of peak
        flexion, % of the stride after IC, in [0, 100)), ``n_strides`` and ``on_labelled_leg``.
    warnings : list of str
        One per side whose thigh looks like it is on the other leg.
    """
    checks: dict[str, dict[str, Any]] = {}
    warnings: list[str] = []
    for side, ev in events.items():
        if side not in angles.hip_rad or ev.source.startswith("thigh"):
            continue  # the thigh's own events: peak flexion is at IC by construction
        flex = angles.hip_rad[side][:, 0]
        ok = angles.side_valid.get(side, angles.valid)
        phases = []
        for s in strides:
            if s.side != side or not s.valid or s.stop_idx - s.start_idx < 3:
                continue
            f = np.where(ok[s.start_idx : s.stop_idx], flex[s.start_idx : s.stop_idx], np.nan)
            if np.isfinite(f).any():
                phases.append(2.0 * np.pi * float(np.nanargmax(f)) / len(f))
        if len(phases) < 2:
            continue
        mean = float(np.angle(np.mean(np.exp(1j * np.asarray(phases)))))
        pct = 100.0 * (mean % (2.0 * np.pi)) / (2.0 * np.pi)
        offset = min(pct, 100.0 - pct)
        on_leg = offset <= MAX_FLEXION_PEAK_OFFSET_PCT
        checks[side] = {
            "event_source": ev.source,
            "hip_flexion_peak_pct": pct,
            "n_strides": len(phases),
            "on_labelled_leg": on_leg,
        }
        if not on_leg:
            thigh = f"thigh_{side[0]}"
            warnings.append(
                f"{thigh}: hip flexion peaks at {pct:.0f} % of the {side} strides (expected "
                f"within {MAX_FLEXION_PEAK_OFFSET_PCT:g} % of initial contact; events from "
                f"{ev.source.split('_')[0]}_{side[0]}): {thigh} seems to be on the other leg "
                "(left and right thigh files swapped?); the "
                f"{side} hip angles are not trustworthy: check the sensor placements"
            )
    return checks, warnings


def event_warnings(events: Mapping[str, SideEvents]) -> list[str]:
    """Warnings on sides whose event signal looked inverted (swing negative)."""
    return [
        f"{s}: the {e.source.split('_')[0]} mediolateral angular velocity looked inverted "
        "(swing negative); events were detected on the negated signal - check the segment "
        "calibration of that side"
        for s, e in events.items()
        if e.inverted
    ]


def thigh_shank_check(ori: OrientationSession) -> list[str]:
    """Warnings on sides whose "thigh" turns faster than its "shank" (labels swapped).

    In walking the shank swings through about twice the thigh's angle in the same time: the
    99th percentile of the angular velocity's magnitude is 0.59-0.65 of the shank's for the
    thigh on both real trials (gaittoolbox, OpenSense), about 1.6 with the two files swapped
    (the analysis then found no valid stride on that side, with no word on why). A thigh
    faster than its shank is flagged. Sides without both sensors, or whose shank did not walk
    (below :data:`MIN_SHANK_SWING_RAD_S`), are not judged.
    """
    out = []
    for s in ("l", "r"):
        thigh, shank = f"thigh_{s}", f"shank_{s}"
        if thigh not in ori.q_world_sensor or shank not in ori.q_world_sensor:
            continue
        p99 = {}
        for p in (thigh, shank):
            w, _ = segment_angular_velocity(ori, None, p)
            mag = np.linalg.norm(w[np.asarray(ori.valid[p], dtype=bool)], axis=1)
            mag = mag[np.isfinite(mag)]
            p99[p] = float(np.percentile(mag, 99)) if len(mag) else float("nan")
        if not p99[shank] >= MIN_SHANK_SWING_RAD_S:
            continue
        if p99[thigh] > p99[shank]:
            out.append(
                f"{thigh} turns faster than {shank} ({p99[thigh]:.1f} against "
                f"{p99[shank]:.1f} rad/s, 99th percentile; a thigh turns ~0.6 times its shank "
                f"in walking): the two sensors' files or labels are probably swapped"
            )
    return out
