"""Fused per-sample quaternion kernels of the relative heading (:mod:`imuhip.orientation.heading`).

Walking-axis block sums and the anchor windows, the magnetic field-quality arguments and clean
mask, the hold and the run-level closing, the exact median: each repeats the numpy operations
it replaced per sample in the same order (the shared helpers of :mod:`imuhip.numeric`, numpy's
pairwise summation): bit-identical results (IEEE arithmetic, no ``fastmath``, no FMA
contraction), compiled with numpy's error model (a zero norm gives inf/nan, no exception).
Quaternions are scalar first ``[w, x, y, z]`` (Hamilton), see :mod:`imuhip.conventions`.
Argument checks stay in the Python callers.
"""

from __future__ import annotations

import numpy as np

from imuhip.numeric import jit_numpy_errors as jit
from imuhip.numeric import pairwise_sum as _pairwise_sum
from imuhip.numeric import quat_mul, quat_rotate, segment_quat, sum_sq3

__all__ = [
    "anchor_mask",
    "disturbed_runs",
    "heading_block_sums",
    "heading_conf_args",
    "heading_fix",
    "hold_args",
    "mag_args",
    "mag_clean",
    "median_exact",
]


@jit
def _heading_fixed(
    w: float, x: float, y: float, z: float, offset: float
) -> tuple[float, float, float, float]:
    # heading.correct_thigh_heading: quat_from_axis_angle(up, -offset) ⊗ q
    half = 0.5 * -offset
    c = np.cos(half)
    s = np.sin(half)
    return quat_mul(c, s * 0.0, s * 0.0, s * 1.0, w, x, y, z)


@jit
def heading_block_sums(
    qp: np.ndarray,
    cal_p: np.ndarray,
    qt: np.ndarray,
    cal_t: np.ndarray,
    qg: np.ndarray,
    gyr: np.ndarray,
    ok: np.ndarray,
    qt2: np.ndarray,
    cal_t2: np.ndarray,
    qg2: np.ndarray,
    gyr2: np.ndarray,
    ok2: np.ndarray,
    two: bool,
    axis: np.ndarray,
    block: int,
    nblocks: int,
) -> np.ndarray:
    """Per-block sums of the 11 walking-axis quantities (the old ``cols`` of the heading
    module's per-window sums).

    Rows of the old ``cols`` array, per sample (zero where not ``ok`` and past the end):
    ``ok, |g|^2, gx^2, gy^2, gx gy, z_thigh (3), z_pelvis (3)`` with ``g`` the world angular
    velocity (``gyr`` rotated by ``qg``, or ``gyr`` itself when ``qg`` is empty) and ``z_*`` the
    segment ``axis`` in the world (segments from :func:`segment_quat`). Each block of ``block``
    samples is summed pairwise as numpy does. A second distal segment (``qt2 ... ok2``, used
    when ``two``) shares the pelvis axis (both thighs in one pass). Returns
    ``(1 or 2, nblocks, 11)``.
    """
    m = ok.shape[0]
    ns = 2 if two else 1
    out = np.zeros((ns, nblocks, 11))
    buf = np.zeros((11, block))
    pel = np.zeros((3, block))
    vx, vy, vz = axis[0], axis[1], axis[2]
    for j in range(nblocks):
        for k in range(block):  # the pelvis axis, where any segment uses it
            i = j * block + k
            if i < m and (ok[i] or (two and ok2[i])):
                pw, px, py, pz = segment_quat(qp, i, cal_p)
                b0, b1, b2 = quat_rotate(pw, px, py, pz, vx, vy, vz)
                pel[0, k] = b0
                pel[1, k] = b1
                pel[2, k] = b2
        for t in range(ns):
            if t == 0:
                qs, cs, qgs, gs, oks = qt, cal_t, qg, gyr, ok
            else:
                qs, cs, qgs, gs, oks = qt2, cal_t2, qg2, gyr2, ok2
            for k in range(block):
                i = j * block + k
                if i >= m or not oks[i]:
                    for c in range(11):
                        buf[c, k] = 0.0
                    continue
                if qgs.shape[0] == 0:
                    gx, gy, gz = gs[i, 0], gs[i, 1], gs[i, 2]
                else:
                    gx, gy, gz = quat_rotate(
                        qgs[i, 0], qgs[i, 1], qgs[i, 2], qgs[i, 3], gs[i, 0], gs[i, 1], gs[i, 2]
                    )
                buf[0, k] = 1.0
                xx = gx * gx
                yy = gy * gy
                buf[2, k] = xx
                buf[3, k] = yy
                buf[4, k] = gx * gy
                buf[1, k] = xx + yy + gz * gz
                tw, tx, ty, tz = segment_quat(qs, i, cs)
                a0, a1, a2 = quat_rotate(tw, tx, ty, tz, vx, vy, vz)
                buf[5, k] = a0
                buf[6, k] = a1
                buf[7, k] = a2
                buf[8, k] = pel[0, k]
                buf[9, k] = pel[1, k]
                buf[10, k] = pel[2, k]
            for c in range(11):
                out[t, j, c] = _pairwise_sum(buf[c], 0, block)
    return out


@jit
def anchor_mask(starts: np.ndarray, win: int, m: int) -> np.ndarray:
    """(m,) bool, True inside any ``[start, start + win)`` (clipped to ``m``)."""
    out = np.zeros(m, dtype=np.bool_)
    for s in starts:
        for i in range(max(s, 0), min(s + win, m)):
            out[i] = True
    return out


@jit
def heading_conf_args(
    cs: np.ndarray, m: int, rate_hz: float, half_window_s: float, tau_s: float
) -> np.ndarray:
    """``-dist_s / tau_s`` per sample (``exp`` of it is the anchor confidence decay).

    ``dist_s``: distance (s) of sample index ``t`` to the nearest of the sorted window centres
    ``cs`` (its neighbours in sorted order, as ``np.searchsorted`` gives them), less half a
    window, at least 0; the same operations as ``heading.correct_thigh_heading``.
    """
    out = np.empty(m)
    nc = cs.shape[0]
    j = 0  # number of centres < t
    for i in range(m):
        t = float(i)
        while j < nc and cs[j] < t:
            j += 1
        lo = cs[min(max(j - 1, 0), nc - 1)]
        hi = cs[min(j, nc - 1)]
        d = min(abs(t - lo), abs(t - hi)) / rate_hz
        d = max(d - half_window_s, 0.0)
        out[i] = -d / tau_s
    return out


@jit
def heading_fix(qt: np.ndarray, offset: np.ndarray) -> np.ndarray:
    """``quat_from_axis_angle(up, -offset) ⊗ qt`` per row, (M, 4)."""
    m = qt.shape[0]
    out = np.empty((m, 4))
    for i in range(m):
        a = _heading_fixed(qt[i, 0], qt[i, 1], qt[i, 2], qt[i, 3], offset[i])
        out[i, 0] = a[0]
        out[i, 1] = a[1]
        out[i, 2] = a[2]
        out[i, 3] = a[3]
    return out


@jit
def mag_args(
    q: np.ndarray, mag: np.ndarray, norm: np.ndarray, negz: np.ndarray, hor: np.ndarray
) -> None:
    """Field norm, ``-mw_z`` and horizontal norm of the world field ``mw = q mag q*`` into
    ``norm``, ``negz``, ``hor`` (M,) (``heading.mag_field_quality``: ``dip = arctan2(-mw_z,
    horizontal)`` is done by the caller)."""
    for i in range(q.shape[0]):
        m0, m1, m2 = mag[i, 0], mag[i, 1], mag[i, 2]
        norm[i] = np.sqrt(sum_sq3(m0, m1, m2))
        a0, a1, a2 = quat_rotate(q[i, 0], q[i, 1], q[i, 2], q[i, 3], m0, m1, m2)
        negz[i] = -a2
        hor[i] = np.sqrt(a0 * a0 + a1 * a1)


@jit
def mag_clean(
    norm: np.ndarray, dip: np.ndarray, ref_n: float, tol_n: float, ref_d: float, tol_d: float
) -> np.ndarray:
    """``(|norm - ref_n| < tol_n) & (|dip - ref_d| < tol_d)``, (M,) bool."""
    m = norm.shape[0]
    out = np.empty(m, dtype=np.bool_)
    for i in range(m):
        out[i] = abs(norm[i] - ref_n) < tol_n and abs(dip[i] - ref_d) < tol_d
    return out


@jit
def hold_args(clean: np.ndarray, rate_hz: float, tau_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the samples that are not ``clean`` and ``-since_s / tau_s`` there.

    ``since_s``: time since the last clean sample (``inf`` before the first), the operations of
    ``heading.transverse_confidence``'s ``(idx - last_clean) / rate_hz``; the caller takes
    ``0.9 exp(...)`` (clean samples hold confidence 1: no update).
    """
    m = clean.shape[0]
    k = 0
    for i in range(m):
        if not clean[i]:
            k += 1
    idx = np.empty(k, dtype=np.int64)
    args = np.empty(k)
    last = -1
    j = 0
    for i in range(m):
        if clean[i]:
            last = i
            continue
        idx[j] = i
        args[j] = -((i - last) / rate_hz) / tau_s if last >= 0 else -np.inf
        j += 1
    return idx, args


@jit
def _runs(x: np.ndarray, value: bool) -> tuple[np.ndarray, np.ndarray]:
    # [start, stop) of the runs of ``x == value``
    n = x.shape[0]
    k = 0
    for i in range(n):
        if x[i] == value and (i == 0 or x[i - 1] != value):
            k += 1
    starts = np.empty(k, dtype=np.int64)
    stops = np.empty(k, dtype=np.int64)
    j = 0
    for i in range(n):
        if x[i] == value and (i == 0 or x[i - 1] != value):
            starts[j] = i
        if x[i] == value and (i == n - 1 or x[i + 1] != value):
            stops[j] = i + 1
            j += 1
    return starts, stops


@jit
def _add_run(starts: np.ndarray, stops: np.ndarray, k: int, a: int, b: int) -> int:
    # append run [a, b) to the k runs so far (sorted by start), merged into the last one when
    # they touch or overlap; returns the new count
    if k > 0 and a <= stops[k - 1]:
        stops[k - 1] = max(stops[k - 1], b)
        return k
    starts[k] = a
    stops[k] = b
    return k + 1


@jit
def disturbed_runs(clean: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Runs ``[start, stop)`` of ``binary_closing(~clean, np.ones(size)) | ~clean``.

    ``scipy.ndimage.binary_closing`` of a 1-D mask at run level: the dilation extends each run
    by ``size - 1 - (size - 1) // 2`` to the left and ``(size - 1) // 2`` to the right (within
    the array) and merges what touches; the erosion (outside counts False) shrinks each merged
    run by ``size // 2`` on the left and ``size - 1 - size // 2`` on the right; then the union
    with the original runs. One pass over the mask, then O(runs).
    """
    n = clean.shape[0]
    s0, e0 = _runs(clean, False)
    k = s0.shape[0]
    lo_d = (size - 1) // 2
    lo_e = size // 2
    ds = np.empty(k, dtype=np.int64)
    de = np.empty(k, dtype=np.int64)
    nd = 0
    for r in range(k):
        a = max(0, s0[r] + lo_d - size + 1)
        b = min(n, e0[r] + lo_d)
        nd = _add_run(ds, de, nd, a, b)
    es = np.empty(nd, dtype=np.int64)
    ee = np.empty(nd, dtype=np.int64)
    ne = 0
    for r in range(nd):
        a = ds[r] + lo_e
        b = de[r] + lo_e - size + 1
        if a < b:
            es[ne] = a
            ee[ne] = b
            ne += 1
    out_s = np.empty(k + ne, dtype=np.int64)
    out_e = np.empty(k + ne, dtype=np.int64)
    no = 0
    i = 0
    j = 0
    while i < k or j < ne:
        if j >= ne or (i < k and s0[i] <= es[j]):
            a, b = s0[i], e0[i]
            i += 1
        else:
            a, b = es[j], ee[j]
            j += 1
        no = _add_run(out_s, out_e, no, a, b)
    return out_s[:no], out_e[:no]


@jit
def _bin_of(v: float, lo: float, width: float, scale: float, mode: int, nbins: int) -> int:
    # histogram bin of v in [lo, max]: monotone in v, within [0, nbins]
    if mode == 0:  # width and nbins / width finite: the usual case
        return min(int((v - lo) * scale), nbins)
    if mode == 1:  # nbins / width overflows (a subnormal width): divide
        return min(int((v - lo) / width * nbins), nbins)
    return min(int((v * 0.5 - lo * 0.5) / width * nbins), nbins)  # max - min overflows: halves


@jit
def _select_pair(a: np.ndarray, k: int) -> tuple[float, float]:
    # the k-th and (k+1)-th smallest (0-based) of a finite array (k + 1 < len), exactly (an order
    # statistic does not depend on the method): a histogram over [min, max] finds the bin of
    # rank k. If rank k + 1 lies in a later bin, rank k is the largest value of its bin and
    # rank k + 1 the smallest of the next non-empty bin. Otherwise both lie in one bin, and the
    # search goes on among that bin's values (fewer: the minimum and the maximum fall in
    # different bins). No sort: numba's compiles for ~1 s of the warm-up.
    cur = a
    while True:
        n = cur.shape[0]
        lo = cur[0]
        hi = cur[0]
        for v in cur:
            lo = min(lo, v)
            hi = max(hi, v)
        if lo == hi:
            return lo, lo
        nbins = max(16, min(1 << 16, n // 8))
        width = hi - lo
        mode = 0
        if not np.isfinite(width):
            width = hi * 0.5 - lo * 0.5
            mode = 2
        scale = nbins / width
        if mode == 0 and not np.isfinite(scale):
            mode = 1
        counts = np.zeros(nbins + 1, dtype=np.int64)
        for v in cur:
            counts[_bin_of(v, lo, width, scale, mode, nbins)] += 1
        acc = 0
        b1 = 0
        while acc + counts[b1] <= k:
            acc += counts[b1]
            b1 += 1
        if acc + counts[b1] == k + 1:  # rank k is the last of bin b1
            b2 = b1 + 1
            while counts[b2] == 0:
                b2 += 1
            top = -np.inf
            nxt = np.inf
            for v in cur:
                b = _bin_of(v, lo, width, scale, mode, nbins)
                if b == b1:
                    top = max(top, v)
                elif b == b2:
                    nxt = min(nxt, v)
            return top, nxt
        if (
            counts[b1] == n
        ):  # cannot happen (min and max fall in bin 0 and bin >= nbins - 1): a guard
            sel = cur.copy()  # against looping forever, sorted by insertion
            for i in range(1, n):
                v = sel[i]
                j = i - 1
                while j >= 0 and sel[j] > v:
                    sel[j + 1] = sel[j]
                    j -= 1
                sel[j + 1] = v
            return sel[k], sel[k + 1]
        sel = np.empty(counts[b1])
        j = 0
        for v in cur:
            if _bin_of(v, lo, width, scale, mode, nbins) == b1:
                sel[j] = v
                j += 1
        cur = sel
        k -= acc


@jit
def _rank_with_infs(fin: np.ndarray, r: int, n_neg: int) -> float:
    # the r-th smallest of fin plus n_neg -inf (first) and any number of +inf (last)
    m = fin.shape[0]
    if r < n_neg:
        return -np.inf
    if r - n_neg >= m:
        return np.inf
    if r - n_neg + 1 < m:
        return _select_pair(fin, r - n_neg)[0]
    top = -np.inf
    for v in fin:  # the largest finite value
        top = max(top, v)
    return top


@jit
def median_exact(a: np.ndarray) -> float:
    """``np.median`` of a 1-D array (NaN if any NaN; the same value: an order statistic, and
    for even sizes the mean of the two middle values in numpy's order ``(0 + lo + hi) / 2``).

    Infinite values are counted, not searched: the middle ranks fall among the ``-inf``, the
    finite values (:func:`_select_pair`) or the ``+inf``."""
    n = a.shape[0]
    n_neg = 0
    n_pos = 0
    for v in a:
        if np.isnan(v):
            return np.nan
        if v == -np.inf:
            n_neg += 1
        elif v == np.inf:
            n_pos += 1
    if n == 1:
        return a[0]
    k = (n - 1) // 2
    if n_neg == 0 and n_pos == 0:
        lo, hi = _select_pair(a, k)
    else:
        fin = np.empty(n - n_neg - n_pos)
        j = 0
        for v in a:
            if np.isfinite(v):
                fin[j] = v
                j += 1
        lo = _rank_with_infs(fin, k, n_neg)
        hi = _rank_with_infs(fin, k + 1, n_neg)
    if n % 2 == 1:
        return lo
    res = 0.0
    res += lo
    res += hi
    return res / 2.0
