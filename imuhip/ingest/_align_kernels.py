"""Compiled inner loops of :mod:`imuhip.ingest.align` (clock-fit window minima, grid resampling).

Both kernels reproduce the numpy expressions they replace operation for operation (same
divisions, products and sums in the same order), so their results are bit-identical;
``tests/unit/ingest/test_align.py`` checks them against plain numpy.
"""

from __future__ import annotations

import numpy as np

from imuhip.numeric import interp2, jit, quat_norm, sum_sq3

__all__ = [
    "all_finite",
    "fill_interp",
    "lower_hull",
    "normalize_rows_inplace",
    "resample_sensor",
    "row_checks",
    "window_minima_increasing",
]


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


# ---------------------------------------------------------------------------------------------
# the grid arrays handed to the filters (imuhip.orientation.fusion._inputs / core)
# ---------------------------------------------------------------------------------------------
@jit
def row_checks(  # pragma: no cover - compiled
    x: np.ndarray, mask: np.ndarray, lo: float, hi: float, out: np.ndarray
) -> None:
    """Counts over the rows of ``x`` (``(N, 3)``) where ``mask`` (``(N,)``, or 0-length = all):

    ``out[0]`` rows counted, ``out[1]`` rows with a non-finite value, ``out[2]`` finite rows
    whose norm ``sqrt(x0*x0 + x1*x1 + x2*x2)`` is ``<= lo``, ``out[3]`` finite rows whose norm
    is ``< hi``. (The norm is summed in the order of ``_inputs._row_norm``.)
    """
    all_rows = mask.shape[0] == 0
    n_rows = 0
    n_bad = 0
    n_le = 0
    n_lt = 0
    for i in range(x.shape[0]):
        if not all_rows and not mask[i]:
            continue
        n_rows += 1
        a = x[i, 0]
        b = x[i, 1]
        c = x[i, 2]
        if not (np.isfinite(a) and np.isfinite(b) and np.isfinite(c)):
            n_bad += 1
            continue
        nrm = np.sqrt(sum_sq3(a, b, c))
        if nrm <= lo:
            n_le += 1
        if nrm < hi:
            n_lt += 1
    out[0] = n_rows
    out[1] = n_bad
    out[2] = n_le
    out[3] = n_lt


@jit
def fill_interp(x: np.ndarray, valid: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out = x`` with every invalid row linearly interpolated between valid rows (by index).

    Per column exactly ``np.interp(bad, good, x[good, k])``: ``slope * (i - p) + y[p]`` with
    ``slope = (y[q] - y[p]) / (q - p)`` between the neighbouring valid rows ``p < i < q`` (the
    other side when that gives NaN, and ``y[p]`` if both do and ``y[p] == y[q]``), the first
    or last valid row beyond the ends. At least one row must be valid.
    """
    n = x.shape[0]
    first = -1
    last = -1
    for i in range(n):
        if valid[i]:
            if first < 0:
                first = i
            last = i
    p = -1  # last valid row before i
    q = -1  # next valid row after i (searched lazily)
    for i in range(n):
        if valid[i]:
            for k in range(3):
                out[i, k] = x[i, k]
            p = i
            continue
        if p < 0:
            for k in range(3):
                out[i, k] = x[first, k]
            continue
        if i > last:
            for k in range(3):
                out[i, k] = x[last, k]
            continue
        if q < i:
            q = i + 1
            while not valid[q]:
                q += 1
        for k in range(3):  # p < i < q: np.interp's arithmetic and NaN fall-backs
            out[i, k] = interp2(float(i), float(p), float(q), x[p, k], x[q, k])


@jit
def normalize_rows_inplace(q: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Scale each ``(N, 4)`` row to unit norm in place, as ``conventions.quat_normalize``.

    The sum of squares in the same order, then one division per component. Returns False (rows
    before it already scaled) at the first zero or non-finite norm.
    """
    for i in range(q.shape[0]):
        nrm = quat_norm(q[i, 0], q[i, 1], q[i, 2], q[i, 3])
        if not np.isfinite(nrm) or nrm == 0.0:
            return False
        for k in range(4):
            q[i, k] = q[i, k] / nrm
    return True
