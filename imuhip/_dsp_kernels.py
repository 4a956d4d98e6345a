"""Compiled loops of :mod:`imuhip.dsp` (the rules of :mod:`imuhip.numeric` apply)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.numeric import jit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@jit
def lfilter(b: FloatArray, a: FloatArray, x: FloatArray, z: FloatArray) -> FloatArray:
    """Direct form II transposed, state ``z`` updated in place (scipy's ``lfilter`` loop)."""
    n_z = len(z)
    y = np.empty(len(x))
    for i in range(len(x)):
        xi = x[i]
        yi = z[0] + b[0] * xi
        for k in range(n_z - 1):
            z[k] = z[k + 1] + xi * b[k + 1] - yi * a[k + 1]
        z[n_z - 1] = xi * b[n_z] - yi * a[n_z]
        y[i] = yi
    return y


@jit
def sosfilt(sos: FloatArray, x: FloatArray, zi: FloatArray) -> FloatArray:
    """Cascade of second-order sections, state ``zi`` ``(n_sections, 2)`` updated in place."""
    ns = sos.shape[0]
    y = np.empty(len(x))
    for i in range(len(x)):
        cur = x[i]
        for s in range(ns):
            new = sos[s, 0] * cur + zi[s, 0]
            zi[s, 0] = sos[s, 1] * cur - sos[s, 4] * new + zi[s, 1]
            zi[s, 1] = sos[s, 2] * cur - sos[s, 5] * new
            cur = new
        y[i] = cur
    return y


@jit
def local_maxima(x: FloatArray) -> IntArray:
    """Indices of local maxima; a flat top gives its middle sample (rounded down)."""
    n = len(x)
    out = np.empty(max(n // 2, 1), dtype=np.int64)
    m = 0
    i = 1
    i_max = n - 1
    while i < i_max:
        if x[i - 1] < x[i]:
            i_ahead = i + 1
            while i_ahead < i_max and x[i_ahead] == x[i]:
                i_ahead += 1
            if x[i_ahead] < x[i]:
                out[m] = (i + i_ahead - 1) // 2
                m += 1
                i = i_ahead
        i += 1
    return out[:m].copy()


@jit
def select_by_distance(peaks: IntArray, order: IntArray, distance: int) -> npt.NDArray[np.bool_]:
    """Keep the highest peak (``order``: ascending height) and drop its neighbours closer
    than ``distance`` samples, then the next highest still kept, ..."""
    n = len(peaks)
    keep = np.ones(n, dtype=np.bool_)
    for i in range(n - 1, -1, -1):
        j = order[i]
        if not keep[j]:
            continue
        k = j - 1
        while k >= 0 and peaks[j] - peaks[k] < distance:
            keep[k] = False
            k -= 1
        k = j + 1
        while k < n and peaks[k] - peaks[j] < distance:
            keep[k] = False
            k += 1
    return keep


@jit
def prominences(x: FloatArray, peaks: IntArray) -> tuple[FloatArray, IntArray, IntArray]:
    """Prominence and bases of each peak over the whole signal (no window)."""
    n = len(peaks)
    prom = np.empty(n)
    left = np.empty(n, dtype=np.int64)
    right = np.empty(n, dtype=np.int64)
    i_max = len(x) - 1
    for r in range(n):
        peak = peaks[r]
        left[r] = peak
        i = peak
        left_min = x[peak]
        while i >= 0 and x[i] <= x[peak]:
            if x[i] < left_min:
                left_min = x[i]
                left[r] = i
            i -= 1
        right[r] = peak
        i = peak
        right_min = x[peak]
        while i <= i_max and x[i] <= x[peak]:
            if x[i] < right_min:
                right_min = x[i]
                right[r] = i
            i += 1
        prom[r] = x[peak] - max(left_min, right_min)
    return prom, left, right


@jit
def widths(
    x: FloatArray, peaks: IntArray, prom: FloatArray, left: IntArray, right: IntArray
) -> FloatArray:
    """Width of each peak at half its prominence (interpolated crossings, samples)."""
    n = len(peaks)
    w = np.empty(n)
    for r in range(n):
        i_min = left[r]
        i_max = right[r]
        peak = peaks[r]
        height = x[peak] - prom[r] * 0.5
        i = peak
        while i_min < i and height < x[i]:
            i -= 1
        left_ip = float(i)
        if x[i] < height:
            left_ip += (height - x[i]) / (x[i + 1] - x[i])
        i = peak
        while i < i_max and height < x[i]:
            i += 1
        right_ip = float(i)
        if x[i] < height:
            right_ip -= (height - x[i]) / (x[i - 1] - x[i])
        w[r] = right_ip - left_ip
    return w


@jit
def moving_average_1d(x: FloatArray, size: int) -> FloatArray:
    """Centred running mean, edges extended with the end samples, in ``uniform_filter1d``'s
    arithmetic: a running sum kept undivided (``sum += entering - leaving``), each output
    ``sum / size``; the window of sample ``i`` is ``[i - size // 2, i - size // 2 + size)``."""
    m = len(x)
    out = np.empty(m)
    if m == 0:
        return out
    r1 = size // 2
    acc = 0.0
    for k in range(size):
        acc += x[min(max(k - r1, 0), m - 1)]
    for i in range(m):
        if i > 0:
            enter = min(max(i + size - 1 - r1, 0), m - 1)
            leave = min(max(i - 1 - r1, 0), m - 1)
            acc += x[enter] - x[leave]
        out[i] = acc / size
    return out
