"""Configuration of the segment calibration and the types its steps share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

__all__ = ["STANDING_PELVIC_TILT_DEG", "FloatArray", "SegmentCalConfig", "Window"]

FloatArray = npt.NDArray[np.float64]
Window = tuple[int, int]

#: Population-typical standing anterior pelvic tilt (ASIS–PSIS line), degrees: Preece et al.
#: 2008, J Man Manip Ther 16(2):113–117, doi:10.1179/106698108790818459 (30 pelves, 13 ± 5°,
#: range 0–23°). The simulator's default standing pose uses the same value.
STANDING_PELVIC_TILT_DEG = 13.0


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
    standing_max_thigh_deg : float or None
        ``"standing"`` only: a still period is a standing pose when each thigh's gravity
        direction in it lies within this of the thigh's mean one over the straight walking
        (:func:`find_static_window`). Standing with the thigh vertical is ~5-15° from the
        walking mean (the hip is flexed ~10° on average over a stride, Perry & Burnfield 2010);
        a hip flexed 90° on a chair, or a thigh lying flat, ~70-90°. 40° lies between, with
        room for a stooped stance. ``None``: the first still period, whatever the posture.
    walking_posture_fallback : bool
        ``"standing"`` only: when no standing still period exists (a timed up-and-go that
        starts seated, a recording of walking only), each segment's vertical is taken from its
        mean attitude over the straight walking instead, with a warning that flexion,
        adduction, tilt and obliquity then read from the mean walking posture. ``False``: an
        error, as for a missing standing still period before.
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
        Movement (walking or functional) window in total for a firm calibration.
    short_movement_s : float
        Shortest movement accepted at all: between this and ``min_movement_s`` (a short walkway,
        a trial cut soon after the first turn) the calibration goes on with a warning that its
        axes rest on ~2 strides (live, :class:`imuhip.live.hips.LiveHips` sets it to
        ``min_movement_s``: more walking is coming). Cutting the real gaittoolbox trial to its
        first 3 s of straight walking moved the per-side hip rotation excursions by <= 0.3 deg
        (``tests/e2e/test_real_recording_variants.py``).
    max_turn_rate_rad_s : float
        Walking samples where the pelvis heading turns faster than this (world yaw rate averaged
        over ``turn_window_s``) are left out of the walking window: in a turn the legs rotate
        about the vertical, which is not flexion (the real gaittoolbox trial's 180° turn
        peaks at 186°/s; steady walking stays within about ±20°/s averaged over 0.5 s).
    turn_window_s : float
        Averaging window of that yaw rate (about one stride, so the pelvis's own rotation
        within the stride averages out).
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
    standing_max_thigh_deg: float | None = 40.0
    walking_posture_fallback: bool = True
    max_static_gyr_rms_rad_s: float = 0.1
    min_functional_range_rad: float = float(np.deg2rad(15.0))
    min_axis_ratio: float = 2.0
    min_walking_axis_ratio: float = 1.5
    walking_gyr_rms_rad_s: float = 0.6
    walking_window_s: float = 1.0
    min_movement_s: float = 4.0
    short_movement_s: float = 2.0
    max_turn_rate_rad_s: float = float(np.deg2rad(30.0))
    turn_window_s: float = 1.0
    max_bridged_gap_s: float = 0.3
    reference_pelvis_rad: tuple[float, float] = (0.0, 0.0)
    reference_hip_rad: tuple[tuple[float, float, float], tuple[float, float, float]] = (
        (0.0, 0.0, 0.0),
        (0.0, 0.0, 0.0),
    )
    reference_lumbar_rad: tuple[float, float, float] = (0.0, 0.0, 0.0)
    standing_pelvic_tilt_rad: float = float(np.deg2rad(STANDING_PELVIC_TILT_DEG))

    def __post_init__(self) -> None:
        if not (0 < self.short_movement_s <= self.min_movement_s):
            raise ValueError(
                "need 0 < short_movement_s <= min_movement_s, got "
                f"{self.short_movement_s} and {self.min_movement_s}"
            )
        if not (
            np.isfinite(self.standing_pelvic_tilt_rad) and abs(self.standing_pelvic_tilt_rad) < 1.0
        ):
            raise ValueError(
                "standing_pelvic_tilt_rad must be finite and within ±1 rad, got "
                f"{self.standing_pelvic_tilt_rad}"
            )


def _c(a: npt.ArrayLike) -> FloatArray:
    return np.ascontiguousarray(a, dtype=np.float64)
