"""Configuration and results of event detection: :class:`EventConfig`, :class:`SideEvents`,
:class:`Stride`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

__all__ = ["EXCLUSION_REASONS", "EXCLUSION_WORDS", "EventConfig", "SideEvents", "Stride"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

EXCLUSION_REASONS = (
    "gap",
    "standing",
    "too_short",
    "turning",
    "no_toe_off",
    "stance",
    "alternation",
    "outlier",
    "implausible",
)
"""Every ``Stride.exclusion`` (``None``: valid); :data:`EXCLUSION_WORDS` says each in words."""

EXCLUSION_WORDS = {
    "gap": "data gap",
    "standing": "standing or first step",
    "too_short": "too short",
    "turning": "turning",
    "no_toe_off": "no toe-off",
    "stance": "stance outside 50-75 %",
    "alternation": "left/right contacts out of turn",
    "outlier": "outlier or partial step",
    "implausible": "implausible rotation",
}


@dataclass(frozen=True, slots=True)
class EventConfig:
    """Thresholds of event detection and stride exclusion.

    Parameters
    ----------
    lowpass_hz : float
        Zero-lag Butterworth (4th order) low-pass applied to the angular velocity.
    swing_peak_min_rad_s : float
        Minimum mid-swing angular velocity (shank); the thigh uses half of it.
    min_stride_s, max_stride_s : float
        Strides outside are ``too_short`` / ``standing``.
    ic_search_s : float
        Window after the post-swing zero crossing in which the shank IC minimum is searched.
    thigh_ic_offset_frac, thigh_to_offset_frac : float
        Delay from maximal thigh inclination to IC, and from maximal thigh extension to TO, as a
        fraction of the local stride time (thigh fallback only); normative gait phases
        (module docstring), not fitted to a data set.
    turn_max_deg : float
        A stride whose net pelvis heading change exceeds this is ``turning``.
    outlier_frac : float
        A stride whose duration deviates from the median valid stride time by more than this
        fraction is an ``outlier``.
    max_gap_s : float
        A stride containing a run of invalid (lost, filled) samples longer than this is ``gap``.
        One lost BLE notification at 100 Hz is 0.12 s (9D) to 0.19 s (6D) of samples; fusion
        runs on the linearly filled samples and the stride metrics stay within 1° of truth
        across such a gap (``scripts/validate_sim.py``), whereas a 50 ms limit excluded 75–95 %
        of the strides at 2–3 % packet loss (no confidence interval, no asymmetry flag).
    auto_sign : bool
        Swing is the largest, shortest lobe of the signal and must be positive; when the negative
        lobes are clearly larger (1st percentile beyond 1.5 x the 99th) the segment's Z axis is
        taken as inverted (a calibration problem), the signal is negated and
        ``SideEvents.inverted`` is set so the report says so.
    trust_calibration_sign_score : float or None
        :func:`config_for_segment`: when the segment calibration decided the sign of this
        segment's flexion axis with at least this score (``SegmentCalibration.quality[p]
        ["sign_score"]``: the weighted sum of its sign cues — swing skew, thigh correlation and
        the knee-hinge cue for a shank, max ~7; skew, inclination and pelvis-yaw coupling for a
        thigh, max ~4; < 0.3 is reported as weak), ``auto_sign`` is turned off for it. The
        calibration's cues (a knee does not hyperextend by tens of degrees) are anatomical,
        whereas ``auto_sign`` compares lobe sizes, which a slow walker's deep toe-off dip can
        invert. 2.0 is about half the largest cue's weight; simulated walkers of 0.8-1.7 m/s
        score 3.5-5 (shanks) and 2.6-2.8 (thighs). ``None``: never.
    ic_min_prominence_frac : float or None
        Shank rule: the IC is the first local minimum after the swing (zero crossing) whose
        prominence is at least this fraction of that swing's peak (``None``: the first local
        minimum). The 4th-order low-pass rings ahead of a sharp heel-strike dip (side lobe
        ~1/``minima_lowpass_hz`` before it, a few % of its depth) and sensor noise ripples a
        flat terminal swing; the heel-strike dip and the loading-response trough are tens of %
        of the swing peak (Aminian et al. 2002, Fig. 2).
    bout_end_swing_frac : float or None
        The first swing out of standing and the last one into it are weaker than steady swings
        (in the simulator's ramp about a quarter of the steady peak); a swing peak of at least
        this fraction of the median swing peak directly before the first (after the last) full
        swing of a bout still marks a stride, so that step's IC/TO are found (shank rule only:
        the thigh's zero crossings are displaced while the mean posture ramps from standing to
        walking, so the thigh path uses its own first-step rule instead,
        ``thigh_first_step_min_frac``). ``None``: off.
    minima_lowpass_hz : float or None
        Zero-lag Butterworth (4th order) low-pass of the signal on which the shank rule searches
        the IC and TO minima (the swing peaks stay on ``lowpass_hz``); ``None``: the
        ``lowpass_hz`` signal, as before.
    thigh_first_step_min_frac : float or None
        Thigh rule: the forward rotation (integral of the positive lobe, rad) before the first
        stance of a bout is the first step when it is at least this fraction of the median
        excursion of the bout's next full swings; its contact is then found as described in
        :func:`_thigh_bout_start_ics`. 0.1 (a thigh swinging forward by ~4° for a ~40° steady
        swing) separates a step from postural sway: the simulator's first steps sweep 0.24-0.35
        of the steady excursion, the standing leg's drift before its first swing < 0.05.
        ``None``: off (the first step out of standing is then not detected).
    thigh_first_step_shoulder_s : float
        Half-width of the second difference that locates the contact of a first step when it
        shows as a shoulder rather than a local maximum (~ the time scale of the 8 Hz
        low-pass, 1/(4 x 8 Hz)).
    thigh_swing_min_width_s : float or None
        Thigh rule: a swing peak must be at least this wide at half its prominence
        (``scipy.signal.find_peaks`` ``width``). A swing's forward rotation lasts ~0.3-0.6 s
        at half height (real trials: 0.16-0.61 s); the rebound after a heel strike's jolt and
        the wiggles of a turn make peaks of 0.08-0.12 s, which the thigh rule took for swings
        (then the 0.7-s constraint dropped them, or a first step was lost). ``None``: no
        width limit.
    thigh_impact_min_sharpness : float or None
        Thigh rule: the normative IC is moved to the heel strike's jolt in the thigh's
        angular velocity (:func:`_thigh_impact_ics`: a sharp V, a fall and a rebound of ~1-2
        rad/s within ~50 ms each) when the sharpest V between maximal inclination and
        ``thigh_impact_search_s`` after it (then ``thigh_impact_search_frac``) is at least this
        many times the swing's peak rate per second (the jolt scales with walking speed). On
        the real gaittoolbox and OpenSense trials the heel strikes' V reach 5-37 (median ~20)
        times the swing peak per second, weak first and last steps and turning steps 3-4; the
        clean simulator's legs, which have no such jolt, 0-4. ``None``: off (normative phases
        only).
    thigh_impact_search_s : float
        How long after maximal thigh inclination the jolt is searched: the contact follows it
        by ~0.15-0.3 s at walking cadences, and mid-stance comes later.
    thigh_impact_search_frac : float
        Where no V within ``thigh_impact_search_s`` passes the gate, the search goes on to this
        fraction of the local stride time after maximal inclination (a slow step: the real
        OpenSense trial has thighs held forward ~0.6 s in slow curving steps). Maximal
        inclination lies at ~85 % of the cycle, the other leg's contact ~65 % of a stride after
        it; 0.5 ends the search well before that. Only as a second stage: over the longer
        window from the start, a normal step's loading response out-ranked its heel strike
        once on that trial (+125 ms).
    thigh_impact_rebound_s : float or None
        A V that passes the gate and lies up to this long before the sharpest one is the heel
        strike's (the sharpest is then the fall of its rebound's overshoot), if it is at least
        ``thigh_impact_rebound_frac`` times as sharp (:func:`_thigh_impact_ics`). On the real
        gaittoolbox trial the overshoot's V came 50-80 ms after the heel strike's; a V 0.1 s
        before is still the same contact's. ``None``: the sharpest V always.
    thigh_impact_rebound_frac : float
        See ``thigh_impact_rebound_s``; 0.5 (0.3 took an earlier wiggle on one real step, 0.5-0.7
        gave the same contacts on both real trials and on the simulator).
    thigh_impact_half_s : float
        Half-width of a V (how far before and after its lowest point its two tops are taken):
        the jolt's fall and rebound take ~30-60 ms; the terminal-swing deceleration before it
        and the loading response after it take ~100 ms or more, so their slopes are lower.
    foot_swing_peak_min_rad_s : float
        Foot rule (Rampp et al. 2014): least mid-swing peak of the foot's 8 Hz low-passed
        mediolateral angular velocity. Foot swing peaks are 5-9 rad/s in walking (about twice
        the shank's toe-off dip); 2.0 keeps slow walking and rejects shuffling.
    foot_ic_search_ms : tuple of float
        Foot rule: window before/after the heel-strike minimum of the angular velocity in which
        the IC is the maximum of the anterior specific force (Rampp et al.: 80 ms / 50 ms).
    foot_min_vel_win_ms : float
        Foot rule: window of the least gyroscope energy, whose centre is mid-stance (100 ms).
    foot_moving_rad_s, foot_rest_rad_s : float
        Foot axes (:func:`foot_axes`): samples with ``|gyr|`` above the first give the
        principal (mediolateral) axis, samples below the second (standing, foot-flat) the
        vertical axis.
    candidate_min_stride_s : float
        Shortest same-side stride at walking speeds (0.7 s; strides last 0.7-2.5 s, cadence
        ~48-170 steps/min): an IC candidate (a TO candidate) closer than this to the previous
        accepted one is a double detection of one stride; of the two, the one produced by the
        larger swing peak is kept (:func:`reject_close_candidates`). The upper end is
        ``max_stride_s`` (a longer stride is a stop, ``standing``).
    stance_frac_min, stance_frac_max : float
        A stride whose stance (IC to TO) is outside this fraction of the stride is excluded as
        ``stance`` (:func:`check_strides`, after the other reasons): normal walking has ~60 %
        stance (Perry & Burnfield 2010), slow walking up
        to ~70 %; outside 50-75 % the IC or the TO is wrong or the stride is not walking.
    check_alternation : bool
        With both sides detected, a stride ``[IC_k, IC_k+1)`` of one side must hold exactly one
        IC of the other side; one holding none or several (inside the other side's bout) is
        excluded as ``alternation``.
    """

    lowpass_hz: float = 8.0
    swing_peak_min_rad_s: float = 1.5
    min_stride_s: float = 0.6
    max_stride_s: float = 2.2
    ic_search_s: float = 0.15
    thigh_ic_offset_frac: float = 0.147
    thigh_to_offset_frac: float = 0.088
    turn_max_deg: float = 20.0
    outlier_frac: float = 0.25
    max_gap_s: float = 0.25
    auto_sign: bool = True
    trust_calibration_sign_score: float | None = 2.0
    ic_min_prominence_frac: float | None = 0.05
    bout_end_swing_frac: float | None = 0.15
    minima_lowpass_hz: float | None = 30.0
    thigh_first_step_min_frac: float | None = 0.1
    thigh_first_step_shoulder_s: float = 0.03
    thigh_swing_min_width_s: float | None = 0.14
    thigh_impact_min_sharpness: float | None = 5.0
    thigh_impact_search_s: float = 0.45
    thigh_impact_search_frac: float = 0.5
    thigh_impact_half_s: float = 0.1
    thigh_impact_rebound_s: float | None = 0.1
    thigh_impact_rebound_frac: float = 0.5
    foot_swing_peak_min_rad_s: float = 2.0
    foot_ic_search_ms: tuple[float, float] = (80.0, 50.0)
    foot_min_vel_win_ms: float = 100.0
    foot_moving_rad_s: float = 1.0
    foot_rest_rad_s: float = 0.5
    candidate_min_stride_s: float = 0.7
    stance_frac_min: float = 0.5
    stance_frac_max: float = 0.75
    check_alternation: bool = True

    def __post_init__(self) -> None:
        if not 0 < self.min_stride_s < self.max_stride_s:
            raise ValueError("need 0 < min_stride_s < max_stride_s")
        if self.lowpass_hz <= 0 or self.swing_peak_min_rad_s <= 0:
            raise ValueError("lowpass_hz and swing_peak_min_rad_s must be positive")
        if self.bout_end_swing_frac is not None and not 0 < self.bout_end_swing_frac < 1:
            raise ValueError(
                f"bout_end_swing_frac must be in (0, 1) or None, got {self.bout_end_swing_frac}"
            )
        pf = self.ic_min_prominence_frac
        if pf is not None and not 0 < pf < 1:
            raise ValueError(f"ic_min_prominence_frac must be in (0, 1) or None, got {pf}")
        ts = self.trust_calibration_sign_score
        if ts is not None and not (np.isfinite(ts) and ts > 0):
            raise ValueError(f"trust_calibration_sign_score must be > 0 or None, got {ts}")
        if not 0 < self.outlier_frac < 1:
            raise ValueError(f"outlier_frac must be in (0, 1), got {self.outlier_frac}")
        ml = self.minima_lowpass_hz
        if ml is not None and not (np.isfinite(ml) and ml > 0):
            raise ValueError(f"minima_lowpass_hz must be a finite number > 0 or None, got {ml}")
        if (
            self.thigh_first_step_min_frac is not None
            and not 0 < self.thigh_first_step_min_frac < 1
        ):
            raise ValueError(
                "thigh_first_step_min_frac must be in (0, 1) or None, got "
                f"{self.thigh_first_step_min_frac}"
            )
        if not 0 < self.candidate_min_stride_s < self.max_stride_s:
            raise ValueError("need 0 < candidate_min_stride_s < max_stride_s")
        if not 0 < self.stance_frac_min < self.stance_frac_max < 1:
            raise ValueError("need 0 < stance_frac_min < stance_frac_max < 1")
        if self.foot_swing_peak_min_rad_s <= 0 or self.foot_min_vel_win_ms <= 0:
            raise ValueError("foot_swing_peak_min_rad_s and foot_min_vel_win_ms must be positive")
        if min(self.foot_ic_search_ms) < 0 or max(self.foot_ic_search_ms) <= 0:
            raise ValueError(f"foot_ic_search_ms must be >= 0, got {self.foot_ic_search_ms}")
        tm = self.thigh_impact_min_sharpness
        if tm is not None and not (np.isfinite(tm) and tm > 0):
            raise ValueError(f"thigh_impact_min_sharpness must be > 0 or None, got {tm}")
        if not (0 < self.thigh_impact_half_s < self.thigh_impact_search_s):
            raise ValueError(
                "need 0 < thigh_impact_half_s < thigh_impact_search_s, got "
                f"{self.thigh_impact_half_s} and {self.thigh_impact_search_s}"
            )
        rb = self.thigh_impact_rebound_s
        if rb is not None and not (0 < rb < self.thigh_impact_search_s):
            raise ValueError(
                f"thigh_impact_rebound_s must be in (0, thigh_impact_search_s) or None, got {rb}"
            )
        if not (0 < self.thigh_impact_rebound_frac <= 1):
            raise ValueError(
                f"thigh_impact_rebound_frac must be in (0, 1], got {self.thigh_impact_rebound_frac}"
            )
        if not (0 < self.thigh_impact_search_frac < 0.65):
            raise ValueError(
                "thigh_impact_search_frac must be in (0, 0.65) (the other leg's contact comes "
                f"~0.65 of a stride after maximal inclination), got {self.thigh_impact_search_frac}"
            )
        if self.thigh_first_step_shoulder_s <= 0:
            raise ValueError(
                "thigh_first_step_shoulder_s must be positive, got "
                f"{self.thigh_first_step_shoulder_s}"
            )


@dataclass(frozen=True, slots=True)
class SideEvents:
    """Gait events of one side, session seconds, sorted.

    ``source`` names the signal: ``"foot_gyro"``, ``"foot_orientation"``, ``"shank_gyro"``,
    ``"shank_orientation"``, ``"thigh_gyro"`` or ``"thigh_orientation"`` (orientation = angular
    velocity differentiated from orientations). ``rejected`` counts the candidates the
    physiological constraints dropped, by reason (``ic_too_close``, ``to_too_close``).
    ``bout_start_ic_s`` holds the initial contacts (also in ``ic_s``) of the first step out of
    standing found by the thigh rule; a stride starting at one is gait initiation, not steady
    walking.
    """

    side: str
    source: str
    ic_s: FloatArray
    to_s: FloatArray
    swing_peak_s: FloatArray
    inverted: bool = False
    bout_start_ic_s: FloatArray = field(default_factory=lambda: np.zeros(0))
    rejected: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Stride:
    """One stride of one side, ``[start_idx, stop_idx)`` on the session grid.

    ``exclusion`` is ``None`` for a valid stride, else one of ``gap``, ``standing``,
    ``too_short``, ``turning``, ``no_toe_off``, ``outlier``.
    """

    side: str
    number: int
    start_idx: int
    stop_idx: int
    ic_s: float
    next_ic_s: float
    to_s: float | None
    heading_change_deg: float
    exclusion: str | None

    @property
    def valid(self) -> bool:
        """True when the stride is steady walking and enters the session statistics."""
        return self.exclusion is None

    @property
    def stride_time_s(self) -> float:
        """IC to next IC, seconds."""
        return self.next_ic_s - self.ic_s

    @property
    def stance_frac(self) -> float | None:
        """Stance as a fraction of the stride (IC to TO), or ``None`` without a toe-off."""
        if self.to_s is None:
            return None
        return (self.to_s - self.ic_s) / self.stride_time_s
