"""Compiled inner loops of :mod:`imuhip.align` (clock-fit window minima, grid resampling).

Both kernels reproduce the numpy expressions they replace operation for operation (same
divisions, products and sums in the same order), so their results are bit-identical; the tests
in ``tests/unit/test_perf_round3_align.py`` keep the numpy versions as references.
"""

from __future__ import annotations

import numpy as np

from imuhip.kernels import jit

__all__ = ["all_finite", "lower_hull", "resample_sensor", "window_minima_increasing"]


@jit
def window_minima_increasing(  # pragma: no cover - compiled
    t: np.ndarray,
    r: np.ndarray,
    window_s: float,
    win_out: np.ndarray,
    t_out: np.ndarray,
    r_out: np.ndarray,
) -> int:
    """Per window ``floor(t / window_s)`` the first sample with the smallest ``r``.

    ``t`` must be strictly increasing (windows are then runs); returns the number of windows
    written to the ``*_out`` arrays (length >= ``len(t)``), or -1 when ``t`` is not strictly
    increasing (nothing written: the caller takes the general path).
    """
    n = t.shape[0]
    for i in range(1, n):
        if not t[i] > t[i - 1]:
            return -1
    if n == 0:
        return 0
    m = 0
    cur = np.int64(np.floor(t[0] / window_s))
    best = 0
    for i in range(1, n):
        w = np.int64(np.floor(t[i] / window_s))
        if w != cur:
            win_out[m] = cur
            t_out[m] = t[best]
            r_out[m] = r[best]
            m += 1
            cur = w
            best = i
        elif r[i] < r[best]:
            best = i
    win_out[m] = cur
    t_out[m] = t[best]
    r_out[m] = r[best]
    return m + 1


@jit
def resample_sensor(  # pragma: no cover - compiled
    x: np.ndarray,
    idx: np.ndarray,
    bad: np.ndarray,
    t: np.ndarray,
    max_fill_gap_s: float,
    exact_s: float,
    acc: np.ndarray,
    gyr: np.ndarray,
    mag: np.ndarray,
    out_acc: np.ndarray,
    out_gyr: np.ndarray,
    out_mag: np.ndarray,
    out_valid: np.ndarray,
) -> bool:
    """Linear interpolation of one sensor onto the grid ``t`` in one pass, with validity.

    For every grid point: the bracketing sample ``j`` (``searchsorted(x, t, "right") - 1``
    clipped to ``[0, n - 2]``), the weight ``w`` of ``j + 1`` (clipped to [0, 1]; 0 or 1 on a
    real sample; rounded to the nearest sample across a gap longer than ``max_fill_gap_s``), and
    ``valid`` (inside the span, consecutive sample indices, neither sample ``bad``, or exactly
    on a good sample). Values ``v[j] * (1 - w) + v[j + 1] * w`` per channel. ``mag`` and
    ``out_mag`` may have 0 rows (no magnetometer). ``x`` (n >= 2) and ``t`` must be
    non-decreasing; returns False, with nothing defined in the outputs, when ``x`` is not.
    """
    n = x.shape[0]
    for i in range(1, n):
        if not x[i] >= x[i - 1]:
            return False
    has_mag = mag.shape[0] > 0
    p = 0
    for i in range(t.shape[0]):
        ti = t[i]
        while p < n and x[p] <= ti:
            p += 1
        j = p - 1
        jc = min(max(j, 0), n - 2)
        x0 = x[jc]
        x1 = x[jc + 1]
        w = (ti - x0) / (x1 - x0)
        if w < 0.0:
            w = 0.0
        elif w > 1.0:
            w = 1.0
        inside = j >= 0 and j <= n - 2
        consecutive = (idx[jc + 1] - idx[jc]) == 1
        valid = inside and consecutive and not bad[jc] and not bad[jc + 1]
        on0 = abs(ti - x0) <= exact_s and not bad[jc]
        on1 = abs(ti - x1) <= exact_s and not bad[jc + 1]
        if on0:
            w = 0.0
        elif on1:
            w = 1.0
        out_valid[i] = valid or on0 or on1
        if inside and not consecutive and (x1 - x0) > max_fill_gap_s:
            w = np.rint(w)
        a = 1.0 - w
        for c in range(3):
            out_acc[i, c] = acc[jc, c] * a + acc[jc + 1, c] * w
            out_gyr[i, c] = gyr[jc, c] * a + gyr[jc + 1, c] * w
        if has_mag:
            for c in range(3):
                out_mag[i, c] = mag[jc, c] * a + mag[jc + 1, c] * w
    return True


@jit
def lower_hull(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover
    """Andrew's monotone chain over points sorted by ``x``: lower-hull indices into ``out``.

    Returns the hull length. Same cross products and pops as the Python loop it replaced.
    """
    h = 0
    for i in range(x.shape[0]):
        while h >= 2:
            a = out[h - 2]
            b = out[h - 1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross <= 0:  # b is not below the chord a-i
                h -= 1
            else:
                break
        out[h] = i
        h += 1
    return h


@jit
def all_finite(a: np.ndarray) -> bool:  # pragma: no cover - compiled
    """True when every element of the 2-D array ``a`` is finite (stops at the first that is not)."""
    for i in range(a.shape[0]):
        for k in range(a.shape[1]):
            if not np.isfinite(a[i, k]):
                return False
    return True
