"""The shank rule (Aminian et al. 2002, Salarian et al. 2004): IC and TO from the minima.

Mid-swing is the large positive peak of the low-passed mediolateral angular velocity; the IC is
the first local minimum after the positive-to-negative zero crossing that follows it, the TO the
deepest local minimum in the half stride before it (details and validation in the docstring of
:mod:`imuhip.gait.events`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.dsp import find_peaks
from imuhip.gait.events._config import EventConfig, FloatArray
from imuhip.gait.events._signals import _local_minima


def _shank_events(
    t_s: FloatArray,
    wf: FloatArray,
    wm: FloatArray,
    peaks: npt.NDArray[np.intp],
    rate_hz: float,
    cfg: EventConfig,
) -> tuple[FloatArray, FloatArray]:
    """Initial contacts and toe-offs (session seconds) around the swing peaks ``peaks``.

    ``wf`` is the low-passed signal (swing peaks, zero crossings), ``wm`` the lightly filtered
    one the minima are searched on (``minima_lowpass_hz``), both with flexion positive.
    """
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
    return np.asarray(ic, dtype=np.float64), np.asarray(to, dtype=np.float64)


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
