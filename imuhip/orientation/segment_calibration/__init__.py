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
   velocity that correlates with the right-minus-left thigh flexion angle lies along −X (the
   hemipelvis is highest in early stance, a quarter cycle after its hip's greatest flexion).
4. Orthonormalise keeping Y exact: ``Z = normalise(Z − (Z·Y) Y)``, ``X = Y × Z``.

Functional calibration in the spirit of Favre et al. 2009 (doi:10.1016/j.jbiomech.2009.07.005),
Seel et al. 2014 (doi:10.3390/s140406891) and the OpenSense/Xsens N-pose + walk procedures.

Modules, in the order of the procedure: ``_config`` (:class:`SegmentCalConfig`), ``_windows``
(static and movement windows), ``_axes`` (steps 1-3), ``_sign_cues`` (the sign of the flexion
axis), ``_frames`` (frames from axes, reference-pose offsets), ``_calibrate``
(:func:`calibrate_segments`, standing and seated) and ``_store`` (the recording event).
"""

from __future__ import annotations

# ``_x as _x``: helpers that tests import from this path
from imuhip.orientation.segment_calibration._axes import _principal_axis as _principal_axis
from imuhip.orientation.segment_calibration._calibrate import calibrate_segments
from imuhip.orientation.segment_calibration._config import (
    STANDING_PELVIC_TILT_DEG,
    SegmentCalConfig,
)
from imuhip.orientation.segment_calibration._frames import q_sensor_segment_from_axes
from imuhip.orientation.segment_calibration._sign_cues import _inclination_sin as _inclination_sin
from imuhip.orientation.segment_calibration._sign_cues import _skew as _skew
from imuhip.orientation.segment_calibration._store import (
    EVENT_KIND,
    segcal_from_event_data,
    segcal_to_event,
    segcal_to_event_data,
)
from imuhip.orientation.segment_calibration._windows import (
    _bridge_short_gaps as _bridge_short_gaps,
)
from imuhip.orientation.segment_calibration._windows import _runs as _runs
from imuhip.orientation.segment_calibration._windows import (
    find_static_window,
    functional_windows_from_events,
)

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
