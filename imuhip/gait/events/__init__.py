"""Gait events (initial contact, toe-off) and stride segmentation.

Sources
-------
Per side the best sensor present gives the events (:func:`session_events`,
:func:`event_source`): a **foot** sensor (Rampp et al. 2014, doi:10.1109/TBME.2014.2368211,
:mod:`._foot_rule`; its own gyroscope and accelerometer, axes from the data), else the shank,
else the thigh. Every rule's candidates then pass the physiological constraints
(:mod:`._constraints`: one IC and one TO per same-side stride of 0.7-2.5 s, stance 50-75 %,
left/right alternation), and the rejections are counted (``quality["event_checks"]``).
Validation on real sensors: ``docs/validation.md``.

Signals
-------
The mediolateral angular velocity of a leg segment, i.e. its angular velocity about the ISB segment
Z axis (to the subject's right on both sides), in rad/s. With the ISB frames a positive value swings
the distal end forward, so the swing phase is a large positive bump on both sides.

* **Shank** (preferred; Aminian et al. 2002, doi:10.1016/S0021-9290(02)00008-8; Salarian et al.
  2004, doi:10.1109/TBME.2004.827933), applied as published, with no offset: mid-swing is the
  large positive peak of the low-passed signal (``lowpass_hz``); initial contact (IC) is the first
  local minimum after the positive-to-negative zero crossing that follows mid-swing; toe-off (TO)
  is the deepest local minimum in the half stride before mid-swing. The minima are searched on a
  much less filtered signal (``minima_lowpass_hz``, 30 Hz: sensor noise removed, the contact
  features kept; published implementations search them on the unfiltered signal), because on
  real legs they are sharp: the heel strike arrests the shank (IC), and the shank rotates
  backward fastest until the toe releases (TO). On the OpenSense trial the detected IC coincide
  with the calcaneus sensor's impact and the stride count equals the calcaneus sensor's
  foot-flat count. The simulator's stance shank rolls on a roll-over arc from heel strike to toe
  release (``docs/gait_events.md``); there the rule finds IC ~+12 ms and TO ~+4 ms from the true
  events (``scripts/validate_events.py``; Aminian et al. report IC ~10 ms late against
  footswitches and no significant TO error).
* **Thigh** (fallback when no shank sensor): the thigh swings forward during swing; the
  positive-to-negative zero crossing after the swing peak is maximal thigh inclination, the
  negative-to-positive crossing before it maximal extension. IC follows maximal inclination, and
  TO follows maximal extension, by fixed fractions of the stride (:class:`EventConfig`
  ``thigh_*_offset_frac``) taken from normative kinematics, not fitted: hip flexion peaks at
  ~85-87 % of the cycle and extension at ~50-52 % (Kadaba et al. 1990,
  doi:10.1002/jor.1100080310; Perry & Burnfield 2010), the thigh's inclination (hip flexion
  minus the pelvic-tilt oscillation) at 85.2 % and 51.3 %, i.e. IC 0.148 and TO (at 60 %) 0.087
  of a stride later. The simulator is built on the same normative curves, so its agreement is
  by construction; on real subjects the between-subject spread of those phases (~2-3 % of the
  cycle, 25-35 ms) is the expected error of this path. On real legs the heel strike jolts the
  thigh (a sharp fall and rebound of its angular velocity, ~50 ms each way); where that jolt is
  clear, the IC is moved to its onset (:func:`_thigh_impact_ics`, ``thigh_impact_*``): on the
  real trials (``docs/validation.md``) this takes the thigh ICs from 18-60 ms to 15-30 ms of
  the foot sensors' (median per side). The first step out of standing has no
  maximal inclination before its contact (the thigh starts from the standing posture and swings
  forward slowly, with a fraction of the steady excursion, while the mean posture ramps to the
  walking one): when a forward lobe of at least ``thigh_first_step_min_frac`` of the bout's
  steady swing excursion precedes the first stance of a bout, its contact is where the thigh's
  forward rotation is arrested (:func:`_thigh_bout_start_ics`); that stride is marked
  ``standing`` (gait initiation).
* **Pelvis**: the pelvis heading (yaw of the pelvis segment X axis) marks turns; invalid samples
  mark gaps.

Strides are half-open ``[ic_k, ic_{k+1})`` per side (``docs/architecture.md``). A stride that is
not steady straight walking is kept but marked invalid with one reason: ``gap``, ``standing``,
``too_short``, ``turning``, ``no_toe_off`` or ``outlier`` (:func:`segment_strides`), then
``stance`` or ``alternation`` (:func:`check_strides`).

Modules: ``_config`` (:class:`EventConfig`, :class:`SideEvents`, :class:`Stride`), ``_signals``
(the angular velocity and heading the rules read), ``_detector`` (:func:`detect_gait_events`:
filtering, sign and swing peaks), the rules ``_foot_rule``, ``_shank_rule`` and ``_thigh_rule``,
``_constraints`` (physiological constraints on candidates), ``_strides``
(:func:`segment_strides` and the exclusion reasons) and ``_session`` (the source per side and
the session's events and strides).
"""

from __future__ import annotations

from imuhip.gait.events._config import EXCLUSION_REASONS as EXCLUSION_REASONS
from imuhip.gait.events._config import EXCLUSION_WORDS as EXCLUSION_WORDS
from imuhip.gait.events._config import EventConfig, SideEvents, Stride
from imuhip.gait.events._constraints import check_strides, reject_close_candidates
from imuhip.gait.events._detector import config_for_segment, detect_gait_events
from imuhip.gait.events._foot_rule import FootEvents, detect_foot_events, foot_axes
from imuhip.gait.events._session import (
    detect_foot_side_events,
    detect_side_events,
    event_source,
    session_events,
)
from imuhip.gait.events._signals import pelvis_heading_rad, segment_angular_velocity
from imuhip.gait.events._strides import (
    MAX_HIP_ROTATION_EXCURSION_DEG,
    PARTIAL_STEP_MIN_FRAC,
    is_partial_step,
    mark_implausible,
    mark_partial_steps,
    segment_strides,
)

__all__ = [
    "MAX_HIP_ROTATION_EXCURSION_DEG",
    "PARTIAL_STEP_MIN_FRAC",
    "EventConfig",
    "FootEvents",
    "SideEvents",
    "Stride",
    "check_strides",
    "config_for_segment",
    "detect_foot_events",
    "detect_foot_side_events",
    "detect_gait_events",
    "detect_side_events",
    "event_source",
    "foot_axes",
    "is_partial_step",
    "mark_implausible",
    "mark_partial_steps",
    "pelvis_heading_rad",
    "reject_close_candidates",
    "segment_angular_velocity",
    "segment_strides",
    "session_events",
]
