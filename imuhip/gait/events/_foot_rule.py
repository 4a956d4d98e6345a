"""The foot rule (Rampp et al. 2014): TO, IC and mid-stance from a foot-mounted IMU.

Rampp, Barth, Schülein, Gaßmann, Klucken & Eskofier (2014), "Inertial sensor-based stride
parameter calculation from gait sequences in geriatric patients", IEEE Trans Biomed Eng 62(4),
doi:10.1109/TBME.2014.2368211; reference implementation: gaitmap's ``RamppEventDetection``
(mad-lab-fau/gaitmap). Per swing of the foot, on its mediolateral angular velocity ``gyr_ml``
(+ = toes up, so the swing is the large positive lobe) and its anterior specific force
``acc_pa``:

* **terminal contact (toe-off)**: the first negative-to-positive zero crossing of ``gyr_ml``
  after the push-off minimum (the foot stops plantar-flexing and starts its swing rotation);
* **initial contact**: after the swing peak, the minimum of ``gyr_ml`` between its steepest
  negative slope (terminal swing) and the steepest positive slope that follows (the rebound of
  the heel-strike dip), refined as the maximum of ``acc_pa`` from 80 ms before to 50 ms after
  that minimum (the impact);
* **mid-stance** (``min_vel``): the centre of the 100 ms window of least gyroscope energy
  ``|gyr|^2`` between two swings (the foot at rest).

Published parameters, not fitted. Differences from the reference implementation, stated:
strides are not segmented by DTW template matching (Barth et al. 2015) but between consecutive
rest windows (mid-stance) around each swing peak, found on the 8 Hz low-passed ``gyr_ml``; the
IC search runs from the swing peak to the next mid-stance (gaitmap: to 60 % of a DTW stride,
which ends at about the same point of the stance); the zero crossing is interpolated between
samples; the slopes and minima are taken on a 30 Hz low-passed signal (sensor noise, which the
gradient amplifies at 100 Hz); the steepest negative slope is searched from where the swing has
fallen below half its peak (8 Hz signal), not from the peak itself: on a slow step a wiggle of
the swing plateau can be steeper than the terminal-swing descent (OpenSense trial, left foot,
8.4-9.3 s: IC put at mid-swing, 0.6 s early). The foot's mediolateral axis and its sign come
from the data (:func:`foot_axes`), so no sensor-to-segment calibration is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.dsp import find_peaks
from imuhip.errors import InsufficientDataError
from imuhip.gait.events._config import EventConfig, FloatArray
from imuhip.gait.events._signals import _lowpass

__all__ = ["FootEvents", "detect_foot_events", "foot_axes"]


@dataclass(frozen=True, slots=True)
class FootEvents:
    """Events of one foot, session seconds.

    ``ic_s``/``to_s``/``swing_peak_s``/``min_vel_s`` sorted; ``ic_support`` and ``to_support``
    (rad/s, same length as ``ic_s``/``to_s``) are the peaks of the swings that produced them;
    ``ml_axis_s`` and ``ap_axis_s`` are the foot's mediolateral (+ right, + = toes up) and
    anterior axes in the sensor frame.
    """

    ic_s: FloatArray
    to_s: FloatArray
    swing_peak_s: FloatArray
    min_vel_s: FloatArray
    ic_support: FloatArray
    to_support: FloatArray
    ml_axis_s: FloatArray
    ap_axis_s: FloatArray


def foot_axes(
    gyr_rad_s: FloatArray, acc_m_s2: FloatArray, rate_hz: float, cfg: EventConfig | None = None
) -> tuple[FloatArray, FloatArray]:
    """The foot's mediolateral and anterior axes in its sensor frame, from walking data.

    The mediolateral axis is the principal axis of the angular velocity while the foot moves
    (``|gyr| > foot_moving_rad_s``): in walking the foot rotates mostly in the sagittal plane.
    Its sign makes the swing positive: the swing (toes up from toe-off to heel strike) is the
    largest-magnitude lobe of the foot's sagittal angular velocity (Rampp et al. 2014, Fig. 2):
    the foot turns by 60-80 deg in it, against 20-40 deg in the push-off before it and the
    heel-strike dip after it. Its *peak* is not always the largest (on the gaittoolbox trial the
    push-off minimum reaches -6 rad/s against a flat +5 rad/s swing), so the lobes are compared
    by area (:func:`_lobe_sign`). The vertical axis is
    the mean specific force while the foot rests (``|gyr| < foot_rest_rad_s``: standing and
    foot-flat), and anterior = up x mediolateral (ISB: X = Y x Z).

    Parameters
    ----------
    gyr_rad_s, acc_m_s2 : (M, 3) float64
        Sensor frame.
    rate_hz : float
    cfg : EventConfig, optional

    Returns
    -------
    ml_axis_s, ap_axis_s : (3,) float64
        Unit vectors in the sensor frame, orthogonal.

    Raises
    ------
    InsufficientDataError
        Too few moving or resting samples to tell the axes.
    """
    cfg = cfg or EventConfig()
    g = np.nan_to_num(np.asarray(gyr_rad_s, dtype=np.float64))
    a = np.nan_to_num(np.asarray(acc_m_s2, dtype=np.float64))
    speed = np.linalg.norm(g, axis=1)
    moving = speed > cfg.foot_moving_rad_s
    resting = speed < cfg.foot_rest_rad_s
    if moving.sum() < rate_hz or resting.sum() < 0.2 * rate_hz:
        raise InsufficientDataError(
            f"foot axes need >= 1 s of movement (|gyr| > {cfg.foot_moving_rad_s} rad/s) and "
            f">= 0.2 s at rest (|gyr| < {cfg.foot_rest_rad_s} rad/s); got "
            f"{moving.sum() / rate_hz:.2f} s and {resting.sum() / rate_hz:.2f} s"
        )
    gm = g[moving]
    _, vecs = np.linalg.eigh(gm.T @ gm)
    ml = vecs[:, -1]
    if _lobe_sign(_lowpass(g @ ml, rate_hz, cfg.lowpass_hz)) < 0:
        ml = -ml
    up = a[resting].mean(axis=0)
    up = up / np.linalg.norm(up)
    ml = ml - np.dot(ml, up) * up
    ml = ml / np.linalg.norm(ml)
    ap = np.cross(up, ml)
    return ml, ap / np.linalg.norm(ap)


def detect_foot_events(
    t_s: FloatArray,
    gyr_rad_s: FloatArray,
    acc_m_s2: FloatArray,
    cfg: EventConfig | None = None,
) -> FootEvents:
    """Toe-offs, initial contacts and mid-stances of one foot (Rampp et al. 2014).

    Parameters
    ----------
    t_s : (M,) float64
        Uniform session grid, seconds.
    gyr_rad_s, acc_m_s2 : (M, 3) float64
        The foot sensor's angular velocity (rad/s) and specific force (m/s^2), sensor frame.
    cfg : EventConfig, optional
        ``lowpass_hz`` (swing peaks), ``minima_lowpass_hz`` (slopes and minima),
        ``foot_swing_peak_min_rad_s``, ``foot_ic_search_ms``, ``foot_min_vel_win_ms``,
        ``min_stride_s``, ``max_stride_s``.

    Returns
    -------
    FootEvents

    Raises
    ------
    InsufficientDataError
        The foot axes cannot be told (:func:`foot_axes`).
    """
    cfg = cfg or EventConfig()
    t_s = np.asarray(t_s, dtype=np.float64)
    g = np.nan_to_num(np.asarray(gyr_rad_s, dtype=np.float64))
    a = np.nan_to_num(np.asarray(acc_m_s2, dtype=np.float64))
    if g.shape != (len(t_s), 3) or a.shape != (len(t_s), 3):
        raise ValueError(
            f"gyr_rad_s and acc_m_s2 must have shape ({len(t_s)}, 3), got {g.shape}, {a.shape}"
        )
    empty = np.zeros(0)
    rate_hz = 1.0 / float(np.median(np.diff(t_s)))
    ml, ap = foot_axes(g, a, rate_hz, cfg)
    w_raw = g @ ml
    acc_pa = a @ ap
    wf = _lowpass(w_raw, rate_hz, cfg.lowpass_hz)
    wm = w_raw if cfg.minima_lowpass_hz is None else _lowpass(w_raw, rate_hz, cfg.minima_lowpass_hz)
    h = cfg.foot_swing_peak_min_rad_s
    dist = max(1, int(0.6 * cfg.min_stride_s * rate_hz))
    peaks, _ = find_peaks(wf, height=h, distance=dist, prominence=h)
    if not len(peaks):
        return FootEvents(empty, empty, empty, empty, empty, empty, ml, ap)
    energy = _window_energy(g, max(2, round(cfg.foot_min_vel_win_ms * 1e-3 * rate_hz)))
    before, after = _rest_points(peaks, energy, rate_hz, cfg)
    grad = np.gradient(wm)
    pre = round(cfg.foot_ic_search_ms[0] * 1e-3 * rate_hz)
    post = round(cfg.foot_ic_search_ms[1] * 1e-3 * rate_hz)
    n = len(t_s)
    ic: list[float] = []
    ic_sup: list[float] = []
    to: list[float] = []
    to_sup: list[float] = []
    for k, p in enumerate(peaks):
        lo, hi = before[k], after[k]
        sup = float(wf[p])
        # terminal contact: zero crossing after the push-off minimum
        if p - lo >= 2:
            m = lo + int(np.argmin(wm[lo:p]))
            if wm[m] < 0:
                up = np.flatnonzero(wm[m:p] >= 0)
                if len(up):
                    i = m + int(up[0])  # first sample >= 0; wm[i-1] < 0
                    frac = -wm[i - 1] / (wm[i] - wm[i - 1])
                    to.append(float(t_s[i - 1] + frac * (t_s[i] - t_s[i - 1])))
                    to_sup.append(sup)
        # initial contact: the heel-strike minimum between the steepest slopes, then the impact
        if hi - p < 3:
            continue
        # terminal swing: from where the swing has lost half its peak (a slow step's plateau
        # wiggles can be steeper than its terminal descent)
        half = np.flatnonzero(wf[p:hi] < 0.5 * wf[p])
        s0 = p + int(half[0]) if len(half) else p
        if hi - s0 < 3:
            continue
        s1 = s0 + int(np.argmin(grad[s0:hi]))
        if hi - s1 < 2:
            continue
        s2 = s1 + int(np.argmax(grad[s1:hi]))
        if s2 <= s1:
            continue
        c = s1 + int(np.argmin(wm[s1:s2]))
        a0, a1 = max(0, c - pre), min(n, c + post)
        i_ic = a0 + int(np.argmax(acc_pa[a0:a1]))
        ic.append(float(t_s[i_ic]))
        ic_sup.append(sup)
    mv = np.unique(np.asarray(before + after, dtype=np.int64))
    return FootEvents(
        ic_s=np.asarray(ic, dtype=np.float64),
        to_s=np.asarray(to, dtype=np.float64),
        swing_peak_s=t_s[peaks].astype(np.float64),
        min_vel_s=t_s[np.clip(mv, 0, n - 1)].astype(np.float64),
        ic_support=np.asarray(ic_sup, dtype=np.float64),
        to_support=np.asarray(to_sup, dtype=np.float64),
        ml_axis_s=ml,
        ap_axis_s=ap,
    )


def _lobe_sign(w: FloatArray) -> float:
    """+1 when the largest lobes (runs of one sign, by area) of ``w`` are positive, else -1.

    The lobes of at least half the largest area are one or two per stride (swings, and
    push-offs when they are strong); the median area of the ``max(1, n // 2)`` largest
    positive lobes is compared with that of the largest negative ones (``n`` = number of such
    lobes), so many small lobes of either sign (standing, turning) do not decide.
    """
    s = np.sign(w)
    edges = np.flatnonzero(np.diff(s) != 0) + 1
    bounds = np.concatenate([[0], edges])
    areas = np.add.reduceat(w, bounds) if len(w) else np.zeros(0)
    if not len(areas) or not np.any(areas):
        return 1.0
    big = np.abs(areas) >= 0.5 * float(np.max(np.abs(areas)))
    k = max(1, int(big.sum()) // 2)
    pos = np.sort(areas[areas > 0])[-k:]
    neg = np.sort(-areas[areas < 0])[-k:]
    top_pos = float(np.median(pos)) if len(pos) else 0.0
    top_neg = float(np.median(neg)) if len(neg) else 0.0
    return 1.0 if top_pos >= top_neg else -1.0


def _window_energy(g: FloatArray, win: int) -> FloatArray:
    """Summed ``|gyr|^2`` over the ``win`` samples centred on each sample (edges: partial)."""
    e = np.sum(g * g, axis=1)
    c = np.concatenate([[0.0], np.cumsum(e)])
    n = len(e)
    i = np.arange(n)
    a = np.clip(i - win // 2, 0, n)
    b = np.clip(a + win, 0, n)
    out = (c[b] - c[a]) * (win / np.maximum(b - a, 1))
    return np.asarray(out, dtype=np.float64)


def _rest_points(
    peaks: npt.NDArray[np.intp], energy: FloatArray, rate_hz: float, cfg: EventConfig
) -> tuple[list[int], list[int]]:
    """Mid-stance (least gyroscope energy) before and after each swing peak.

    Between two swings of one walking bout (less than ``max_stride_s`` apart) it is the
    least-energy point between them (the after-point of one is the before-point of the next);
    at the start or the end of a bout the least-energy point within one typical stride before
    the first (after the last) swing.
    """
    n = len(energy)
    d = np.diff(peaks)
    max_n = cfg.max_stride_s * rate_hz
    in_bout = d[d <= max_n]
    period = int(np.median(in_bout)) if len(in_bout) else int(1.1 * rate_hz)

    def least(lo: int, hi: int) -> int:
        lo, hi = max(lo, 0), min(hi, n)
        return lo + int(np.argmin(energy[lo:hi])) if hi > lo else min(max(lo, 0), n - 1)

    before: list[int] = []
    after: list[int] = []
    for k, p in enumerate(peaks):
        p = int(p)
        if k > 0 and p - int(peaks[k - 1]) <= max_n:
            before.append(after[-1])
        else:
            before.append(least(p - period, p))
        if k + 1 < len(peaks) and int(peaks[k + 1]) - p <= max_n:
            after.append(least(p + 1, int(peaks[k + 1])))
        else:
            after.append(least(p + 1, p + period))
    return before, after
