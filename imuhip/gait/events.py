"""Gait events (initial contact, toe-off) and stride segmentation.

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
  cycle, 25-35 ms) is the expected error of this path. The first step out of standing has no
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
``too_short``, ``turning``, ``no_toe_off`` or ``outlier``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt
from scipy.signal import butter, filtfilt, find_peaks

from imuhip.conventions import quat_conj, quat_mul, quat_rotate, to_rotation
from imuhip.gait import _gait_kernels as _kg
from imuhip.types import OrientationSession, SegmentCalibration

__all__ = [
    "EventConfig",
    "SideEvents",
    "Stride",
    "detect_gait_events",
    "pelvis_heading_rad",
    "segment_angular_velocity",
    "segment_strides",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

EXCLUSION_REASONS = ("gap", "standing", "too_short", "turning", "no_toe_off", "outlier")


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
        if self.thigh_first_step_shoulder_s <= 0:
            raise ValueError(
                "thigh_first_step_shoulder_s must be positive, got "
                f"{self.thigh_first_step_shoulder_s}"
            )


@dataclass(frozen=True, slots=True)
class SideEvents:
    """Gait events of one side, session seconds, sorted.

    ``source`` names the signal: ``"shank_gyro"``, ``"shank_orientation"``, ``"thigh_gyro"`` or
    ``"thigh_orientation"`` (orientation = angular velocity differentiated from orientations).
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


def segment_angular_velocity(
    ori: OrientationSession, segcal: SegmentCalibration | None, placement: str
) -> tuple[FloatArray, str]:
    """Angular velocity of a segment in its own (ISB) frame.

    Parameters
    ----------
    ori : OrientationSession
    segcal : SegmentCalibration or None
        Sensor-to-segment rotations; without one (or without ``placement`` in it) the sensor frame
        is used as is.
    placement : str

    Returns
    -------
    omega_rad_s : (M, 3) float64
        Segment-frame angular velocity. From the gyroscope when present, else differentiated from
        the orientations (central difference, ``conj(q[k-1]) ⊗ q[k+1]``).
    kind : str
        ``"gyro"`` or ``"orientation"``.
    """
    q_ss = None
    if segcal is not None and placement in segcal.q_sensor_segment:
        q_ss = np.asarray(segcal.q_sensor_segment[placement], dtype=np.float64)
    gyr = ori.gyr_rad_s.get(placement)
    if gyr is not None:
        omega = np.asarray(gyr, dtype=np.float64)
        kind = "gyro"
        if q_ss is not None:
            # ω_segment = conj(q_sensor_segment) ω_sensor q_sensor_segment
            omega = quat_rotate(quat_conj(q_ss), omega)
        return omega, kind
    q = ori.q_world_sensor[placement]
    if q_ss is not None:
        q = quat_mul(q, q_ss)
    m = len(q)
    omega = np.zeros((m, 3))
    if m >= 3:
        dq = quat_mul(quat_conj(q[:-2]), q[2:])
        omega[1:-1] = to_rotation(dq).as_rotvec() * (ori.rate_hz / 2.0)
        omega[0] = omega[1]
        omega[-1] = omega[-2]
    return omega, "orientation"


def pelvis_heading_rad(
    ori: OrientationSession, segcal: SegmentCalibration | None, placement: str = "pelvis"
) -> FloatArray:
    """Unwrapped heading (yaw about world up) of the pelvis segment X axis, rad, shape ``(M,)``."""
    q = ori.q_world_sensor[placement]
    if segcal is not None and placement in segcal.q_sensor_segment:
        q = quat_mul(q, segcal.q_sensor_segment[placement])
    x_world = quat_rotate(q, np.array([1.0, 0.0, 0.0]))
    return np.unwrap(np.arctan2(x_world[:, 1], x_world[:, 0]))


def _lowpass(x: FloatArray, rate_hz: float, cutoff_hz: float) -> FloatArray:
    wn = min(cutoff_hz / (rate_hz / 2.0), 0.95)
    b, a = butter(4, wn)
    if len(x) <= 3 * max(len(a), len(b)):
        return x.copy()
    return np.asarray(filtfilt(b, a, x), dtype=np.float64)


def _local_minima(x: FloatArray) -> npt.NDArray[np.int64]:
    return np.flatnonzero((x[1:-1] < x[:-2]) & (x[1:-1] <= x[2:])) + 1


def config_for_segment(cfg: EventConfig, segcal: SegmentCalibration, placement: str) -> EventConfig:
    """``cfg`` for detecting events on ``placement``: ``auto_sign`` off when the segment
    calibration decided that segment's flexion sign clearly (``trust_calibration_sign_score``).

    A calibration without a sign score (e.g. one stored in the recording, or an assumed one)
    leaves ``cfg`` as it is.
    """
    ts = cfg.trust_calibration_sign_score
    score = segcal.quality.get(placement, {}).get("sign_score")
    if not cfg.auto_sign or ts is None or score is None or not np.isfinite(score):
        return cfg
    return replace(cfg, auto_sign=False) if score >= ts else cfg


def detect_gait_events(
    t_s: FloatArray,
    omega_ml_rad_s: FloatArray,
    *,
    side: str,
    segment: str = "shank",
    source: str | None = None,
    cfg: EventConfig | None = None,
) -> SideEvents:
    """Initial contacts and toe-offs of one side from a leg segment's mediolateral angular velocity.

    Parameters
    ----------
    t_s : (M,) float64
        Uniform session grid, seconds.
    omega_ml_rad_s : (M,) float64
        Angular velocity about the segment Z axis (ISB, + swings the distal end forward), rad/s.
    side : str
        ``"left"`` or ``"right"`` (only recorded in the result).
    segment : {"shank", "thigh"}
        Which rule to apply (module docstring; Aminian 2002 / Salarian 2004 for the shank).
    source : str, optional
        Label stored in the result (default ``f"{segment}_gyro"``).
    cfg : EventConfig, optional

    Returns
    -------
    SideEvents
    """
    cfg = cfg or EventConfig()
    t_s = np.asarray(t_s, dtype=np.float64)
    w = np.asarray(omega_ml_rad_s, dtype=np.float64)
    if t_s.ndim != 1 or w.shape != t_s.shape:
        raise ValueError(f"omega_ml_rad_s must have shape {t_s.shape}, got {w.shape}")
    if segment not in ("shank", "thigh"):
        raise ValueError(f"segment must be 'shank' or 'thigh', got {segment!r}")
    empty = np.zeros(0)
    src = source or f"{segment}_gyro"
    if len(t_s) < 10:
        return SideEvents(side, src, empty, empty, empty)
    rate_hz = 1.0 / float(np.median(np.diff(t_s)))
    wf = _lowpass(np.nan_to_num(w), rate_hz, cfg.lowpass_hz)
    inverted = False
    if cfg.auto_sign:
        hi, lo = np.percentile(wf, [99.0, 1.0])
        if -lo > 1.5 * max(hi, 0.0):
            wf = -wf
            inverted = True
    # the shank's IC/TO minima are searched on a lightly filtered signal (sharp contact features
    # kept, sensor noise removed), as published; the swing peaks on the low-passed one
    wm = wf
    if segment == "shank" and cfg.minima_lowpass_hz is not None:
        wm = _lowpass(np.nan_to_num(w), rate_hz, cfg.minima_lowpass_hz)
        if inverted:
            wm = -wm
    min_peak = cfg.swing_peak_min_rad_s * (1.0 if segment == "shank" else 0.5)
    dist = max(1, int(0.6 * cfg.min_stride_s * rate_hz))
    peaks, _ = find_peaks(wf, height=min_peak, distance=dist, prominence=min_peak)
    if segment == "shank":
        # the thigh rule's zero crossings are shifted while the posture ramps from standing to
        # walking, so a weak bout-end thigh swing gives a wrong IC: shank only
        peaks = _bout_end_swings(wf, peaks, dist, rate_hz, cfg)
    if segment == "thigh":
        # the thigh rule's per-peak loop, compiled (same decisions and arithmetic)
        ic_a, to_a = _kg.thigh_events(
            t_s,
            np.ascontiguousarray(wf),
            np.asarray(peaks, dtype=np.int64),
            rate_hz,
            cfg.min_stride_s,
            cfg.max_stride_s,
            cfg.thigh_ic_offset_frac,
            cfg.thigh_to_offset_frac,
        )
        first = _thigh_bout_start_ics(t_s, wf, peaks, rate_hz, cfg)
        if len(first):
            ic_a = np.sort(np.concatenate([ic_a, first]))
        return SideEvents(
            side, src, ic_a, to_a, t_s[peaks].astype(np.float64), inverted, bout_start_ic_s=first
        )
    # shank rule (the thigh returned above)
    ic: list[float] = []
    to: list[float] = []
    n = len(wf)
    for k, p in enumerate(peaks):
        nxt = peaks[k + 1] if k + 1 < len(peaks) else n
        prv = peaks[k - 1] if k > 0 else -1
        # zero crossing + -> - after the swing peak, then the first local minimum
        after = np.flatnonzero(wf[p:nxt] <= 0)
        if len(after):
            zc = p + int(after[0])
            hi = min(n, zc + max(2, int(cfg.ic_search_s * rate_hz)) + 1)
            seg = wm[zc:hi]
            mins = _local_minima(seg)
            if len(mins) > 1 and cfg.ic_min_prominence_frac is not None:
                # a minimum, not a ripple: the filter's ringing ahead of a sharp heel-strike
                # dip (or noise on a flat terminal swing) makes shallow local minima
                keep = find_peaks(-seg, prominence=cfg.ic_min_prominence_frac * wf[p])[0]
                mins = keep if len(keep) else mins
            i_ic = zc + (int(mins[0]) if len(mins) else int(np.argmin(seg)))
            ic.append(float(t_s[i_ic]))
        # toe-off: the deepest local minimum before the swing peak, within half a stride
        period = _local_period(peaks, k, rate_hz, cfg)
        lo = max(prv + 1, p - int(0.5 * period * rate_hz), 0)
        if p - lo < 3:
            continue
        seg = wm[lo:p]
        mins = _local_minima(seg)
        if not len(mins):
            continue
        i_to = lo + int(mins[np.argmin(seg[mins])])
        if wm[i_to] >= 0:
            continue
        to.append(float(t_s[i_to]))
    return SideEvents(
        side,
        src,
        np.asarray(ic, dtype=np.float64),
        np.asarray(to, dtype=np.float64),
        t_s[peaks].astype(np.float64),
        inverted,
    )


def _positive_lobe(
    wf: FloatArray, i: int, lo: int, hi: int, open_start: bool = False
) -> tuple[int, int] | None:
    """``[a, b)``: the run of ``wf > 0`` containing index ``i``, limited to ``[lo, hi)``.

    ``None`` when the run is not closed by a sample ``<= 0`` before ``hi``, or before ``lo``
    (with ``open_start``: a run reaching ``lo > 0`` starts there; standing before a bout may
    sway slightly positive for seconds, which adds ~nothing to the lobe's integral; a run
    reaching the first sample of the recording is still rejected as truncated).
    """
    a = i
    while a > lo and wf[a - 1] > 0:
        a -= 1
    b = i
    while b < hi and wf[b] > 0:
        b += 1
    if b >= hi or a == 0 or (a <= lo and not open_start):
        return None
    return a, b


def _thigh_bout_start_ics(
    t_s: FloatArray, wf: FloatArray, peaks: npt.NDArray[np.intp], rate_hz: float, cfg: EventConfig
) -> FloatArray:
    """Initial contact of the first step of each walking bout, thigh rule (seconds, sorted).

    The thigh rule times IC from the maximal inclination of the swing before it. The first step
    out of standing has no such swing: the thigh starts from the standing posture, swings
    forward slowly and with a fraction of the steady excursion while the mean posture moves
    from standing to walking, so its zero crossing lies after the contact (by ~0.1 s in the
    simulator) and its peak is far below the swing-peak threshold.

    For each full swing peak ``p0`` that starts a bout (no full swing within ``max_stride_s``
    before it) the stance before ``p0`` (the negative lobe holding the minimum before ``p0``)
    is taken. When a positive lobe (forward rotation) precedes it within ``max_stride_s``,
    does not reach the start of the recording (a truncated swing), and its forward excursion
    (the lobe's integral) is at least ``thigh_first_step_min_frac`` of the median excursion of
    the bout's next (up to three) full swings, it is the first step. Its contact is where the
    thigh stops swinging forward and starts to rotate back over the planted foot: the last
    local maximum of the angular velocity between the lobe's peak and its end or, when the
    arrest shows only as a shoulder, the point of greatest concavity (most negative second
    difference over ``thigh_first_step_shoulder_s``). The standing leg (the one that does not
    step first) has no forward lobe before its first stance, so no contact is invented for
    it. Strides starting at these contacts are gait initiation, not steady walking
    (:func:`segment_strides` marks them ``standing``).

    Cost: a few short numpy operations per bout (not per stride).
    """
    frac = cfg.thigh_first_step_min_frac
    if frac is None or not len(peaks):
        return np.zeros(0)
    max_n = int(cfg.max_stride_s * rate_hz)
    n = len(wf)
    out: list[float] = []
    for k in range(len(peaks)):
        p0 = int(peaks[k])
        if k > 0 and p0 - int(peaks[k - 1]) <= max_n:
            continue  # not the first swing of a bout
        lo = max(0, p0 - max_n, int(peaks[k - 1]) + 1 if k > 0 else 0)
        if p0 - lo < 3:
            continue
        m = lo + int(np.argmin(wf[lo:p0]))  # deepest point of the stance before the swing
        i = m
        while i > lo and wf[i] <= 0:
            i -= 1
        if wf[i] <= 0:
            continue
        lobe = _positive_lobe(wf, i, lo, m, open_start=True)  # forward rotation before it
        if lobe is None:
            continue
        a, b = lobe
        exc = float(np.sum(wf[a:b])) / rate_hz
        ref = []
        for j in range(k, min(k + 3, len(peaks))):
            if j > k and int(peaks[j]) - int(peaks[j - 1]) > max_n:
                break
            full = _positive_lobe(wf, int(peaks[j]), 0, n)
            if full is not None:
                ref.append(float(np.sum(wf[full[0] : full[1]])) / rate_hz)
        if not ref or exc < frac * float(np.median(ref)):
            continue
        pk = a + int(np.argmax(wf[a:b]))
        seg = wf[pk:b]  # from the lobe's peak to its last positive sample
        if len(seg) < 3:
            continue
        maxima = np.flatnonzero((seg[1:-1] > seg[:-2]) & (seg[1:-1] >= seg[2:])) + 1
        if len(maxima):
            i_ic = pk + int(maxima[-1])
        else:
            h = max(1, round(cfg.thigh_first_step_shoulder_s * rate_hz))
            lo2, hi2 = max(pk, h), min(b - 1, n - 1 - h)
            if hi2 < lo2:
                continue
            idx = np.arange(lo2, hi2 + 1)
            i_ic = int(idx[np.argmin(wf[idx + h] - 2.0 * wf[idx] + wf[idx - h])])
        out.append(float(t_s[i_ic]))
    return np.asarray(out, dtype=np.float64)


def _bout_end_swings(
    wf: FloatArray, peaks: npt.NDArray[np.intp], dist: int, rate_hz: float, cfg: EventConfig
) -> npt.NDArray[np.intp]:
    """Add the weaker first/last swing of a walking bout to the full-size swing peaks.

    The first step out of standing (and the last one into it) swings the leg with a fraction of
    the steady amplitude, so it can miss the absolute threshold although its initial contact is
    real. A peak of at least ``bout_end_swing_frac`` of the median swing peak is added when it
    lies directly before the first or after the last full swing of a bout (within
    ``max_stride_s``, no full swing in between).
    """
    if len(peaks) < 3 or cfg.bout_end_swing_frac is None:
        return peaks
    level = cfg.bout_end_swing_frac * float(np.median(wf[peaks]))
    cand, _ = find_peaks(wf, height=level, distance=dist, prominence=level)
    max_gap = cfg.max_stride_s * rate_hz
    min_gap = cfg.min_stride_s * rate_hz
    extra = []
    for c in np.setdiff1d(cand, peaks):
        j = int(np.searchsorted(peaks, c))
        before = peaks[j - 1] if j > 0 else None
        after = peaks[j] if j < len(peaks) else None
        # a bout start: a full swing follows within a stride and none precedes within a stride
        starts = after is not None and min_gap <= after - c <= max_gap
        starts &= before is None or c - before > max_gap
        ends = before is not None and min_gap <= c - before <= max_gap
        ends &= after is None or after - c > max_gap
        if starts or ends:
            extra.append(c)
    if not extra:
        return peaks
    return np.sort(np.concatenate([peaks, np.asarray(extra, dtype=peaks.dtype)]))


def _local_period(peaks: npt.NDArray[np.intp], k: int, rate_hz: float, cfg: EventConfig) -> float:
    """Stride time around swing peak ``k`` (seconds) from neighbouring peaks, clipped."""
    d = []
    if k > 0:
        d.append(peaks[k] - peaks[k - 1])
    if k + 1 < len(peaks):
        d.append(peaks[k + 1] - peaks[k])
    period = min(d) / rate_hz if d else 1.1
    return float(np.clip(period, cfg.min_stride_s, cfg.max_stride_s))


def _longest_false_run(ok: BoolArray) -> int:
    """Length of the longest run of ``False`` in ``ok``."""
    if ok.all():
        return 0
    bad = np.concatenate([[0], (~ok).astype(np.int8), [0]])
    d = np.diff(bad)
    return int(np.max(np.flatnonzero(d == -1) - np.flatnonzero(d == 1)))


def segment_strides(
    events: SideEvents,
    t_s: FloatArray,
    valid: BoolArray,
    heading_rad: FloatArray | None = None,
    cfg: EventConfig | None = None,
) -> list[Stride]:
    """Cut one side's walk into strides ``[ic_k, ic_{k+1})`` and mark those to exclude.

    Parameters
    ----------
    events : SideEvents
    t_s : (M,) float64
        Session grid.
    valid : (M,) bool
        Samples usable for this side (all sensors the metrics need were valid).
    heading_rad : (M,) float64, optional
        Unwrapped pelvis heading; without it no stride is marked ``turning``.
    cfg : EventConfig, optional

    Returns
    -------
    list of Stride
        Every stride, valid or not; exclusion priority: gap, standing (longer than
        ``max_stride_s``, or starting at a first contact out of standing,
        ``events.bout_start_ic_s``), too_short, turning, no_toe_off, outlier.
    """
    cfg = cfg or EventConfig()
    t_s = np.asarray(t_s, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != t_s.shape:
        raise ValueError(f"valid must have shape {t_s.shape}, got {valid.shape}")
    ic = np.sort(events.ic_s)
    to = np.sort(events.to_s)
    rate_hz = 1.0 / float(np.median(np.diff(t_s))) if len(t_s) > 1 else 1.0
    max_gap_n = round(cfg.max_gap_s * rate_hz)
    n = len(ic) - 1
    if n <= 0:
        return []
    # every stride at once: sample range, first toe-off inside, heading change, gap length
    a_s = ic[:-1]
    b_s = ic[1:]
    i0 = np.searchsorted(t_s, a_s, side="left")
    i1 = np.minimum(np.searchsorted(t_s, b_s, side="left"), len(t_s))
    # first toe-off in the open interval (a, b): the first one after a, if it is before b
    j = np.searchsorted(to, a_s, side="right")
    has_to = j < len(to)
    has_to[has_to] = to[j[has_to]] < b_s[has_to]
    to_first = to[np.minimum(j, max(len(to) - 1, 0))] if len(to) else np.zeros(n)
    nonempty = i1 > i0
    dh = np.zeros(n)
    if heading_rad is not None and nonempty.any():
        h = np.asarray(heading_rad, dtype=np.float64)
        dh[nonempty] = np.degrees(h[i1[nonempty] - 1] - h[i0[nonempty]])
    gap = ~nonempty
    gap[nonempty] = (
        _kg.longest_false_runs(
            np.ascontiguousarray(valid),
            i0[nonempty].astype(np.int64),
            i1[nonempty].astype(np.int64),
        )
        > max_gap_n
    )
    dur = b_s - a_s
    # a stride from the first contact out of standing is gait initiation (thigh rule)
    starts = np.isin(a_s, np.asarray(events.bout_start_ic_s, dtype=np.float64))
    reason = np.full(n, None, dtype=object)
    conds = (
        (gap, "gap"),
        ((dur > cfg.max_stride_s) | starts, "standing"),
        (dur < cfg.min_stride_s, "too_short"),
        (np.abs(dh) > cfg.turn_max_deg, "turning"),
        (~has_to, "no_toe_off"),
    )
    undecided = np.ones(n, dtype=bool)
    for cond, name in conds:  # exclusion priority: the first that applies
        hit = undecided & cond
        reason[hit] = name
        undecided &= ~hit
    if undecided.any():
        ok = dur[undecided]  # the stride times of the valid strides, in order
        med = float(np.median(ok))
        outlier = undecided.copy()
        outlier[undecided] = np.abs(ok - med) > cfg.outlier_frac * med
        reason[outlier] = "outlier"
    side = events.side
    return [
        Stride(side, k, s0, s1, a, b, t if h_ else None, d, r)
        for k, (s0, s1, a, b, t, h_, d, r) in enumerate(
            zip(
                i0.tolist(),
                i1.tolist(),
                a_s.tolist(),
                b_s.tolist(),
                to_first.tolist(),
                has_to.tolist(),
                dh.tolist(),
                reason.tolist(),
                strict=True,
            )
        )
    ]
