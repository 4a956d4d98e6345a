"""Compiled per-stride loops of the tail of the pipeline: events, stride metrics, bootstrap, phase.

Every kernel reproduces the arithmetic of the numpy expression it replaced, in the same order, so
the results are bit-identical (tests: ``tests/unit/gait/test_gait_kernels.py`` and the stage's):

- sums and means follow numpy's pairwise summation of a contiguous run
  (``numpy/_core/src/umath/loops_utils.h.src``: blocks of <= 128 summed with 8 interleaved
  accumulators, longer runs split in two at a multiple of 8), so ``pairwise_sum(x) == x.sum()``
  and a mean is that sum divided by the count, as ``ndarray.mean`` does
  (:func:`imuhip.numeric.pairwise_sum`; the gathered variant for the bootstrap is here);
- two-point linear interpolation follows ``np.interp`` (C ``arr_interp``) including its edge
  and NaN fall-backs (:func:`imuhip.numeric.interp2`).

Argument checks live in the Python callers (``imuhip.gait.events``, ``imuhip.gait.metrics``,
``imuhip.gait.compensation``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.numeric import PW_BLOCK as _PW_BLOCK
from imuhip.numeric import PW_DEPTH as _PW_DEPTH
from imuhip.numeric import interp2 as _interp2
from imuhip.numeric import jit
from imuhip.numeric import pairwise_plan as _pairwise_plan
from imuhip.numeric import pairwise_sum as _pairwise_sum

__all__ = [
    "boot_means",
    "interp_sorted",
    "longest_false_runs",
    "prefix_means",
    "stride_extrema",
    "thigh_events",
    "thigh_impact_ics",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@jit
def _block_gather(
    vals: FloatArray, idx: IntArray, lo: int, n: int, res: FloatArray, r: FloatArray
) -> None:
    """``res[c] = pairwise_sum(vals[idx[lo:lo + n], c])`` for ``n <= 128`` (a leaf), every
    column c; ``r`` is (8, m) scratch for the 8 accumulators."""
    m = vals.shape[1]
    if n < 8:
        for c in range(m):
            res[c] = 0.0
        for i in range(n):
            row = idx[lo + i]
            for c in range(m):
                res[c] += vals[row, c]
        return
    for k in range(8):
        row = idx[lo + k]
        for c in range(m):
            r[k, c] = vals[row, c]
    i = 8
    stop8 = n - (n % 8)
    while i < stop8:
        for k in range(8):
            row = idx[lo + i + k]
            for c in range(m):
                r[k, c] += vals[row, c]
        i += 8
    for c in range(m):
        res[c] = ((r[0, c] + r[1, c]) + (r[2, c] + r[3, c])) + (
            (r[4, c] + r[5, c]) + (r[6, c] + r[7, c])
        )
    while i < n:
        row = idx[lo + i]
        for c in range(m):
            res[c] += vals[row, c]
        i += 1


@jit
def _pairwise_gather(
    vals: FloatArray,
    idx: IntArray,
    lo: int,
    n: int,
    plan: IntArray,
    res: FloatArray,
    r: FloatArray,
    acc: FloatArray,
) -> None:
    """``res[c] = pairwise_sum(vals[idx[lo:lo + n], c])`` for every column c, numpy's order.

    The pairwise tree ``plan`` of :func:`imuhip.numeric.pairwise_plan` (``n``; unused
    when ``n <= 128``) with the leaves of :func:`_block_gather`; scratch: ``r`` (8, m), ``acc``
    (_PW_DEPTH + 1, m).
    """
    m = vals.shape[1]
    if n <= _PW_BLOCK:
        _block_gather(vals, idx, lo, n, res, r)
        return
    vp = 0
    for k in range(plan.shape[0]):
        if plan[k, 1] > 0:
            _block_gather(vals, idx, lo + plan[k, 0], plan[k, 1], acc[vp], r)
            vp += 1
        else:
            for c in range(m):
                acc[vp - 2, c] = acc[vp - 2, c] + acc[vp - 1, c]
            vp -= 1
    for c in range(m):
        res[c] = acc[0, c]


@jit
def boot_means(vals: FloatArray, idx: IntArray, out: FloatArray) -> None:
    """Bootstrap means of several metrics at once, without the ``(B, n)`` value arrays.

    ``out[b, c] = vals[idx[b], c].mean()``, bit-identical to
    ``vals[:, c][idx].mean(axis=1)`` (numpy's pairwise sum of the row, divided by ``n``).

    Parameters
    ----------
    vals : (n, m) float64, C-contiguous
        The values of ``m`` metrics (one column each) over the same ``n`` strides.
    idx : (B, n) int64
        Resampling indices, one bootstrap replicate per row (``rng.integers(0, n, (B, n))``).
    out : (B, m) float64
        Filled in place.
    """
    n = idx.shape[1]
    m = vals.shape[1]
    r = np.empty((8, m))
    plan = _pairwise_plan(n) if n > _PW_BLOCK else np.empty((0, 2), np.int64)  # one tree for all
    acc = np.empty((_PW_DEPTH + 1, m))
    res = np.empty(m)
    flat = idx.reshape(-1)
    for b in range(idx.shape[0]):
        _pairwise_gather(vals, flat, b * n, n, plan, res, r, acc)
        for c in range(m):
            out[b, c] = res[c] / n


@jit
def prefix_means(d: FloatArray, count: IntArray, out: FloatArray) -> None:
    """``out[r] = d[r, :count[r]].mean()`` (numpy's pairwise sum / count; NaN for count 0).

    Parameters
    ----------
    d : (R, K) float64, C-contiguous
    count : (R,) int64, ``0 <= count[r] <= K``
    out : (R,) float64, filled in place
    """
    k = d.shape[1]
    flat = d.reshape(-1)
    for r in range(d.shape[0]):
        c = count[r]
        if c == 0:
            out[r] = np.nan
        else:
            out[r] = _pairwise_sum(flat, r * k, c) / c


@jit
def _line_extrema(x: FloatArray, col: int, a: int, b: int, slope: float) -> tuple[float, float]:
    """Max and min of ``x[i, col] - slope * (i - a)`` over ``[a, b)`` (``b > a``), NaN-propagating
    as ``np.maximum.reduce`` / ``np.minimum.reduce`` (subtracting ``0.0 * k`` is exact)."""
    mx = x[a, col]
    mn = mx
    for i in range(a + 1, b):
        v = x[i, col] - slope * (i - a)
        if (v > mx or v != v) and mx == mx:  # NaN sticks, as in np.maximum
            mx = v
        if (v < mn or v != v) and mn == mn:
            mn = v
    return mx, mn


@jit
def stride_extrema(
    x: FloatArray, col: int, start: IntArray, stop: IntArray, hi: FloatArray, lo: FloatArray
) -> None:
    """Maximum and minimum of ``x[start_k:stop_k, col]`` per stride, NaN-propagating
    (as ``np.maximum.reduce`` / ``np.minimum.reduce``), NaN for an empty range.

    Parameters
    ----------
    x : (M, C) float64
    col : int
    start, stop : (S,) int64, ``0 <= start <= stop <= M``
    hi, lo : (S,) float64, filled in place
    """
    for k in range(len(start)):
        if stop[k] <= start[k]:
            hi[k] = np.nan
            lo[k] = np.nan
        else:
            hi[k], lo[k] = _line_extrema(x, col, start[k], stop[k], 0.0)


@jit
def stride_extrema_detrended(
    x: FloatArray, col: int, start: IntArray, stop: IntArray, hi: FloatArray, lo: FloatArray
) -> None:
    """:func:`stride_extrema` of ``x[:, col]`` minus the straight line from the stride's initial
    contact sample to the next one (``x[stop_k]``, or the last sample at the end), so that a
    heading that drifts across a stride does not add to its range. NaN-propagating."""
    n = x.shape[0]
    for k in range(len(start)):
        a = start[k]
        b = stop[k]
        if b <= a:
            hi[k] = np.nan
            lo[k] = np.nan
            continue
        e = b if b < n else n - 1
        slope = (x[e, col] - x[a, col]) / (e - a) if e > a else 0.0
        hi[k], lo[k] = _line_extrema(x, col, a, b, slope)


@jit
def interp_sorted(t: FloatArray, y: FloatArray, col: int, x: FloatArray, out: FloatArray) -> None:
    """``out[k] = np.interp(x[k], t, y[:, col])`` for a sorted grid ``t`` (same values).

    The value comes from the two samples bracketing ``x[k]`` (``np.searchsorted`` side left),
    or the end sample outside the grid, exactly as ``np.interp`` on that bracket.
    """
    n = len(t)
    for k in range(len(x)):
        xv = x[k]
        i = np.searchsorted(t, xv)
        if n == 0:
            out[k] = np.nan
        elif i <= 0:
            out[k] = y[0, col]
        elif i >= n:
            out[k] = y[n - 1, col]
        else:
            out[k] = _interp2(xv, t[i - 1], t[i], y[i - 1, col], y[i, col])


@jit
def longest_false_runs(ok: npt.NDArray[np.bool_], start: IntArray, stop: IntArray) -> IntArray:
    """Length of the longest run of ``False`` in ``ok[start_k:stop_k]`` for every k."""
    out = np.zeros(len(start), dtype=np.int64)
    for k in range(len(start)):
        best = 0
        run = 0
        for i in range(start[k], stop[k]):
            if ok[i]:
                run = 0
            else:
                run += 1
                if run > best:
                    best = run
        out[k] = best
    return out


@jit
def _local_period(
    peaks: IntArray, k: int, rate_hz: float, min_stride_s: float, max_stride_s: float
) -> float:
    """Stride time around swing peak ``k`` from its neighbours (s), clipped; 1.1 s alone."""
    have = False
    d = 0
    if k > 0:
        d = peaks[k] - peaks[k - 1]
        have = True
    if k + 1 < len(peaks):
        d2 = peaks[k + 1] - peaks[k]
        if not have or d2 < d:
            d = d2
        have = True
    period = d / rate_hz if have else 1.1
    return min(max(period, min_stride_s), max_stride_s)


@jit
def thigh_events(
    t_s: FloatArray,
    wf: FloatArray,
    peaks: IntArray,
    rate_hz: float,
    min_stride_s: float,
    max_stride_s: float,
    ic_frac: float,
    to_frac: float,
) -> tuple[FloatArray, FloatArray, IntArray, FloatArray]:
    """Initial contacts and toe-offs of the thigh rule (``imuhip.gait.events`` module docstring).

    Per swing peak ``p``: IC = the + to - zero crossing after ``p`` (linear sub-sample time)
    plus ``ic_frac`` of the local stride time; TO = the last - to + crossing in the half stride
    before ``p`` plus ``to_frac`` of it. Same decisions and arithmetic as the Python loop.

    Returns
    -------
    ic_s, to_s : float64 arrays
    ic_zc : int64 array
        Per IC, the grid index of its zero crossing (maximal inclination: the first sample
        ``<= 0`` after the swing peak), where the heel-strike search starts.
    ic_period : float64 array
        Per IC, the local stride time (s) its normative offset was scaled by.
    """
    n = len(wf)
    npk = len(peaks)
    ic = np.empty(npk)
    to = np.empty(npk)
    ic_zc = np.empty(npk, dtype=np.int64)
    ic_period = np.empty(npk)
    n_ic = 0
    n_to = 0
    for k in range(npk):
        p = peaks[k]
        nxt = peaks[k + 1] if k + 1 < npk else n
        prv = peaks[k - 1] if k > 0 else -1
        period = _local_period(peaks, k, rate_hz, min_stride_s, max_stride_s)
        zc = -1
        for i in range(p, nxt):
            if wf[i] <= 0:
                zc = i
                break
        if zc >= 0:
            t_zc = _interp2(0.0, wf[zc], wf[zc - 1], t_s[zc], t_s[zc - 1])
            ic[n_ic] = t_zc + ic_frac * period
            ic_zc[n_ic] = zc
            ic_period[n_ic] = period
            n_ic += 1
        lo = max(prv + 1, p - int(0.5 * period * rate_hz), 0)
        if p - lo < 3:
            continue
        zc = -1
        for i in range(p - 1, lo - 1, -1):
            if wf[i] <= 0:
                zc = i
                break
        if zc < 0:
            continue
        t_zc = _interp2(0.0, wf[zc], wf[zc + 1], t_s[zc], t_s[zc + 1])
        to[n_to] = t_zc + to_frac * period
        n_to += 1
    return ic[:n_ic].copy(), to[:n_to].copy(), ic_zc[:n_ic].copy(), ic_period[:n_ic].copy()


@jit
def thigh_impact_ics(
    t_s: FloatArray,
    wf: FloatArray,
    wm: FloatArray,
    dm: FloatArray,
    zc_idx: IntArray,
    ic_s: FloatArray,
    h: int,
    span: int,
    span_ext: IntArray,
    rate_hz: float,
    min_sharpness: float,
    rebound_n: int,
    rebound_frac: float,
) -> FloatArray:
    """The heel-strike jolt search of :func:`imuhip.gait.events._thigh_rule._thigh_impact_ics`.

    ``zc_idx`` are the grid indices of the normative ICs' zero crossings (maximal inclination,
    from :func:`thigh_events`), ``dm`` the gradient of ``wm``; ``h``, the search length ``span``
    and the per-IC extended one ``span_ext`` (used only when no V within ``span`` passes the
    gate) in samples.
    ``rebound_n`` (samples; 0: off) and ``rebound_frac``: a V that passes the gate, is at least
    ``rebound_frac`` times as sharp as the sharpest and lies up to ``rebound_n`` samples before
    it is taken instead (the first such): the heel strike's own V, whose rebound overshot.
    Returns the ICs ``ic_s``, each moved to the steepest fall into the chosen V when the
    sharpest V passes the gate, else unchanged (unsorted).
    """
    n = len(wm)
    out = ic_s.copy()
    for j in range(len(zc_idx)):
        z = min(zc_idx[j], n - 1)
        if z <= 0:
            continue
        top = -np.inf
        for q in range(max(0, z - span), z):
            if wf[q] > top:
                top = wf[q]
        if top <= 0.0:
            continue
        hi1 = min(n - 1, z + span)
        hi = min(n - 1, z + max(span, span_ext[j]))
        best = 0.0
        k_best = -1
        b_best = -1
        n_c = 0
        cand_k = np.empty(max(hi - z, 1), dtype=np.int64)
        cand_b = np.empty(max(hi - z, 1), dtype=np.int64)
        cand_s = np.empty(max(hi - z, 1))
        for k in range(z + 1, hi):
            if k == hi1 and k_best >= 0 and best >= min_sharpness * top:
                break  # a V within the first span passes: the extension is not searched
            if not (wm[k] < wm[k - 1] and wm[k] <= wm[k + 1]):
                continue
            lo_b = max(z, k - h)
            b = lo_b
            for q in range(lo_b + 1, k + 1):  # first maximum, as np.argmax
                if wm[q] > wm[b]:
                    b = q
            r = k
            for q in range(k + 1, min(n, k + h + 1)):
                if wm[q] > wm[r]:
                    r = q
            if b == k or r == k:
                continue
            sharp = min((wm[b] - wm[k]) / (k - b), (wm[r] - wm[k]) / (r - k)) * rate_hz
            cand_k[n_c] = k
            cand_b[n_c] = b
            cand_s[n_c] = sharp
            n_c += 1
            if sharp > best:
                best = sharp
                k_best = k
                b_best = b
        if k_best < 0 or best < min_sharpness * top:
            continue
        if rebound_n > 0:
            need = max(rebound_frac * best, min_sharpness * top)
            for c in range(n_c):  # in time order: the first one that qualifies
                if k_best - rebound_n <= cand_k[c] < k_best and cand_s[c] >= need:
                    k_best = cand_k[c]
                    b_best = cand_b[c]
                    break
        f = b_best
        for q in range(b_best + 1, k_best + 1):  # first minimum, as np.argmin
            if dm[q] < dm[f]:
                f = q
        out[j] = t_s[f]
    return out
