"""Fused per-sample quaternion kernels of the joint-angle stage (:mod:`imuhip.joints`,
:mod:`imuhip.heading`).

Each kernel repeats, per sample and in the same order, the floating-point operations of the numpy
expressions it replaces (``conventions.quat_normalize``, ``quat_mul``, ``quat_rotate``,
``joints._rotmat_entries``, the block sums of ``heading._window_sums``), so its results are
bit-identical to them (IEEE arithmetic, no ``fastmath``, no FMA contraction). The inverse
trigonometric functions are NOT evaluated here: the kernels write their arguments and the caller
applies numpy's ``arctan2``/``arcsin`` (SIMD, ~8x faster than libm in a compiled loop and the same
values as before). ``cos``/``sin`` of the heading correction are evaluated here (libm; the same
values as numpy's on this platform, checked by the tests).

Quaternions are scalar first ``[w, x, y, z]`` (Hamilton), see :mod:`imuhip.conventions`.
Argument checks stay in the Python callers.
"""

from __future__ import annotations

import numpy as np

from imuhip.kernels import jit

__all__ = [
    "anchor_mask",
    "closing_1d",
    "first_bad_quat",
    "forward_xy",
    "heading_block_sums",
    "heading_conf_args",
    "heading_fix",
    "interleave3",
    "mag_args",
    "mag_hold_confidence",
    "median_exact",
    "yxz_walk_entries",
    "zxy_entries",
]


@jit
def _normalize(w: float, x: float, y: float, z: float) -> tuple[float, float, float, float]:
    # conventions._quat_normalize: the sum of squares in np.linalg.norm's order, then q / n
    n2 = w * w
    n2 += x * x
    n2 += y * y
    n2 += z * z
    n = np.sqrt(n2)
    return w / n, x / n, y / n, z / n


@jit
def _mul(
    pw: float, px: float, py: float, pz: float, qw: float, qx: float, qy: float, qz: float
) -> tuple[float, float, float, float]:
    # conventions._quat_mul, same expression order
    return (
        pw * qw - px * qx - py * qy - pz * qz,
        pw * qx + px * qw + py * qz - pz * qy,
        pw * qy - px * qz + py * qw + pz * qx,
        pw * qz + px * qy - py * qx + pz * qw,
    )


@jit
def _rotate(
    w: float, ux: float, uy: float, uz: float, vx: float, vy: float, vz: float
) -> tuple[float, float, float]:
    # conventions._quat_rotate_into: v + w t + u x t with t = 2 u x v
    tx = 2.0 * (uy * vz - uz * vy)
    ty = 2.0 * (uz * vx - ux * vz)
    tz = 2.0 * (ux * vy - uy * vx)
    return (
        vx + w * tx + (uy * tz - uz * ty),
        vy + w * ty + (uz * tx - ux * tz),
        vz + w * tz + (ux * ty - uy * tx),
    )


@jit
def _segment(q: np.ndarray, i: int, cal: np.ndarray) -> tuple[float, float, float, float]:
    # joints.segment_orientation: normalize(q_world_sensor) ⊗ q_sensor_segment; an empty
    # ``cal`` means ``q`` already holds the segment orientation (used as given)
    if cal.shape[0] == 0:
        return q[i, 0], q[i, 1], q[i, 2], q[i, 3]
    w, x, y, z = _normalize(q[i, 0], q[i, 1], q[i, 2], q[i, 3])
    return _mul(w, x, y, z, cal[0], cal[1], cal[2], cal[3])


@jit
def _heading_fixed(
    w: float, x: float, y: float, z: float, offset: float
) -> tuple[float, float, float, float]:
    # heading.correct_thigh_heading: quat_from_axis_angle(up, -offset) ⊗ q
    half = 0.5 * -offset
    c = np.cos(half)
    s = np.sin(half)
    return _mul(c, s * 0.0, s * 0.0, s * 1.0, w, x, y, z)


@jit
def first_bad_quat(q: np.ndarray) -> int:
    """Index of the first row of ``q`` (M, 4) with a zero or non-finite norm, else -1."""
    for i in range(q.shape[0]):
        n2 = q[i, 0] * q[i, 0]
        n2 += q[i, 1] * q[i, 1]
        n2 += q[i, 2] * q[i, 2]
        n2 += q[i, 3] * q[i, 3]
        n = np.sqrt(n2)
        if not (np.isfinite(n) and n != 0.0):
            return i
    return -1


@jit
def _pairwise_base(a: np.ndarray, lo: int, n: int) -> float:
    # numpy's pairwise_sum for n <= 128: a plain loop below 8, else 8 partial sums
    if n < 8:
        res = 0.0
        for i in range(n):
            res += a[lo + i]
        return res
    r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
    r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
    i = 8
    stop = n - (n % 8)
    while i < stop:
        r0 += a[lo + i]
        r1 += a[lo + i + 1]
        r2 += a[lo + i + 2]
        r3 += a[lo + i + 3]
        r4 += a[lo + i + 4]
        r5 += a[lo + i + 5]
        r6 += a[lo + i + 6]
        r7 += a[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += a[lo + i]
        i += 1
    return res


@jit
def _pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:
    # numpy's pairwise summation (``np.add.reduce`` over a contiguous axis), same tree: above
    # 128 values split at n // 2 rounded down to a multiple of 8. An explicit stack (recursion
    # and numba's on-disk cache do not mix).
    if n <= 128:
        return _pairwise_base(a, lo, n)
    s_lo = np.empty(64, dtype=np.int64)
    s_n = np.empty(64, dtype=np.int64)
    s_stage = np.empty(64, dtype=np.int64)
    s_left = np.empty(64)
    sp = 0
    s_lo[0], s_n[0], s_stage[0] = lo, n, 0
    ret = 0.0
    while sp >= 0:
        cl, cn = s_lo[sp], s_n[sp]
        if cn <= 128:
            ret = _pairwise_base(a, cl, cn)
            sp -= 1
            continue
        n2 = cn // 2
        n2 -= n2 % 8
        stage = s_stage[sp]
        if stage == 0:  # left half first
            s_stage[sp] = 1
            sp += 1
            s_lo[sp], s_n[sp], s_stage[sp] = cl, n2, 0
        elif stage == 1:  # then the right half
            s_left[sp] = ret
            s_stage[sp] = 2
            sp += 1
            s_lo[sp], s_n[sp], s_stage[sp] = cl + n2, cn - n2, 0
        else:
            ret = s_left[sp] + ret
            sp -= 1
    return ret


@jit
def heading_block_sums(
    qp: np.ndarray,
    cal_p: np.ndarray,
    qt: np.ndarray,
    cal_t: np.ndarray,
    qg: np.ndarray,
    gyr: np.ndarray,
    ok: np.ndarray,
    axis: np.ndarray,
    block: int,
    nblocks: int,
) -> np.ndarray:
    """Per-block sums of the 11 walking-axis quantities (``heading._walking_window_offsets``).

    Rows of the old ``cols`` array, per sample (zero where not ``ok`` and past the end):
    ``ok, |g|^2, gx^2, gy^2, gx gy, z_thigh (3), z_pelvis (3)`` with ``g`` the world angular
    velocity (``gyr`` rotated by ``qg``, or ``gyr`` itself when ``qg`` is empty) and ``z_*`` the
    segment ``axis`` in the world (segments from :func:`_segment`). Each block of ``block``
    samples is summed pairwise as numpy does. Returns ``(nblocks, 11)``.
    """
    m = ok.shape[0]
    out = np.zeros((nblocks, 11))
    buf = np.zeros((11, block))
    vx, vy, vz = axis[0], axis[1], axis[2]
    for j in range(nblocks):
        for k in range(block):
            i = j * block + k
            if i >= m or not ok[i]:
                for c in range(11):
                    buf[c, k] = 0.0
                continue
            if qg.shape[0] == 0:
                gx, gy, gz = gyr[i, 0], gyr[i, 1], gyr[i, 2]
            else:
                gx, gy, gz = _rotate(
                    qg[i, 0], qg[i, 1], qg[i, 2], qg[i, 3], gyr[i, 0], gyr[i, 1], gyr[i, 2]
                )
            buf[0, k] = 1.0
            xx = gx * gx
            yy = gy * gy
            buf[2, k] = xx
            buf[3, k] = yy
            buf[4, k] = gx * gy
            buf[1, k] = xx + yy + gz * gz
            tw, tx, ty, tz = _segment(qt, i, cal_t)
            a0, a1, a2 = _rotate(tw, tx, ty, tz, vx, vy, vz)
            buf[5, k] = a0
            buf[6, k] = a1
            buf[7, k] = a2
            pw, px, py, pz = _segment(qp, i, cal_p)
            b0, b1, b2 = _rotate(pw, px, py, pz, vx, vy, vz)
            buf[8, k] = b0
            buf[9, k] = b1
            buf[10, k] = b2
        for c in range(11):
            out[j, c] = _pairwise_sum(buf[c], 0, block)
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
def zxy_entries(
    qa: np.ndarray, cal_a: np.ndarray, qb: np.ndarray, cal_b: np.ndarray, off_b: np.ndarray
) -> np.ndarray:
    """Arguments of the Z–X′–Y″ Cardan angles of ``conj(seg_a) ⊗ fix(seg_b)``, (5, M).

    Per sample: segment orientations (:func:`_segment`), ``b`` turned back by its heading
    offset when ``off_b`` is not empty, both normalised (``joints.hip_angles``), the relative
    rotation, normalised again (``joints.cardan_zxy``), and the rotation-matrix entries
    ``[r21, -r01, r11, -r20, r22]``: ``b = arcsin(clip(row0))``, ``a = arctan2(row1, row2)``,
    ``c = arctan2(row3, row4)``.
    """
    m = qa.shape[0]
    out = np.empty((5, m))
    fix = off_b.shape[0] != 0
    for i in range(m):
        pw, px, py, pz = _segment(qa, i, cal_a)
        tw, tx, ty, tz = _segment(qb, i, cal_b)
        if fix:
            tw, tx, ty, tz = _heading_fixed(tw, tx, ty, tz, off_b[i])
        pw, px, py, pz = _normalize(pw, px, py, pz)
        tw, tx, ty, tz = _normalize(tw, tx, ty, tz)
        w, x, y, z = _mul(pw * 1.0, px * -1.0, py * -1.0, pz * -1.0, tw, tx, ty, tz)
        w, x, y, z = _normalize(w, x, y, z)
        out[0, i] = 2 * (y * z + w * x)
        out[1, i] = -(2 * (x * y - w * z))
        out[2, i] = 1 - 2 * (x * x + z * z)
        out[3, i] = -(2 * (x * z - w * y))
        out[4, i] = 1 - 2 * (x * x + y * y)
    return out


@jit
def forward_xy(qa: np.ndarray, cal_a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal components of the normalised segment's X axis in the world, two (M,)."""
    m = qa.shape[0]
    fx = np.empty(m)
    fy = np.empty(m)
    for i in range(m):
        w, x, y, z = _segment(qa, i, cal_a)
        w, x, y, z = _normalize(w, x, y, z)
        a0, a1, _ = _rotate(w, x, y, z, 1.0, 0.0, 0.0)
        fx[i] = a0
        fy[i] = a1
    return fx, fy


@jit
def yxz_walk_entries(
    qa: np.ndarray, cal_a: np.ndarray, psi: np.ndarray, c_fix: float, s_fix: float
) -> np.ndarray:
    """Arguments of the Y–X′–Z″ angles of ``conj(q_world_walk) ⊗ seg_a``, (5, M).

    ``q_world_walk = qz(psi) ⊗ qx(pi/2)`` (``joints.walking_frame``; ``c_fix, s_fix`` = cos and
    sin of pi/4); entries ``[-r12, r02, r22, r10, r11]``: ``b = arcsin(clip(row0))``,
    ``a = arctan2(row1, row2)``, ``c = arctan2(row3, row4)``.
    """
    m = qa.shape[0]
    out = np.empty((5, m))
    for i in range(m):
        pw, px, py, pz = _segment(qa, i, cal_a)
        pw, px, py, pz = _normalize(pw, px, py, pz)
        h = 0.5 * psi[i]
        ww, wx, wy, wz = _mul(np.cos(h), 0.0, 0.0, np.sin(h), c_fix, s_fix, 0.0, 0.0)
        w, x, y, z = _mul(ww * 1.0, wx * -1.0, wy * -1.0, wz * -1.0, pw, px, py, pz)
        w, x, y, z = _normalize(w, x, y, z)
        out[0, i] = -(2 * (y * z - w * x))
        out[1, i] = 2 * (x * z + w * y)
        out[2, i] = 1 - 2 * (x * x + y * y)
        out[3, i] = 2 * (x * y + w * z)
        out[4, i] = 1 - 2 * (x * x + z * z)
    return out


@jit
def interleave3(
    r0: np.ndarray, r1: np.ndarray, r2: np.ndarray, s0: float, s1: float, s2: float
) -> np.ndarray:
    """``np.stack([r0, r1, r2], axis=-1) * [s0, s1, s2]``, (M, 3)."""
    m = r0.shape[0]
    out = np.empty((m, 3))
    for i in range(m):
        out[i, 0] = r0[i] * s0
        out[i, 1] = r1[i] * s1
        out[i, 2] = r2[i] * s2
    return out


@jit
def mag_args(q: np.ndarray, mag: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Field norm, ``-mw_z`` and horizontal norm of the world field ``mw = q mag q*``.

    ``heading.mag_field_quality``: ``dip = arctan2(-mw_z, horizontal)`` (done by the caller).
    """
    m = q.shape[0]
    norm = np.empty(m)
    negz = np.empty(m)
    hor = np.empty(m)
    for i in range(m):
        m0, m1, m2 = mag[i, 0], mag[i, 1], mag[i, 2]
        norm[i] = np.sqrt(m0 * m0 + m1 * m1 + m2 * m2)
        a0, a1, a2 = _rotate(q[i, 0], q[i, 1], q[i, 2], q[i, 3], m0, m1, m2)
        negz[i] = -a2
        hor[i] = np.sqrt(a0 * a0 + a1 * a1)
    return norm, negz, hor


@jit
def mag_hold_confidence(clean: np.ndarray, rate_hz: float, tau_s: float) -> np.ndarray:
    """``-since_s / tau_s`` per sample, ``since_s`` the time since the last clean sample
    (``-inf`` before the first; 0 on clean samples: the caller takes ``exp`` of it)."""
    m = clean.shape[0]
    out = np.empty(m)
    last = -1
    for i in range(m):
        if clean[i]:
            last = i
            out[i] = 0.0
        elif last >= 0:
            out[i] = -((i - last) / rate_hz) / tau_s
        else:
            out[i] = -np.inf
    return out


@jit
def closing_1d(x: np.ndarray, size: int) -> np.ndarray:
    """``scipy.ndimage.binary_closing(x, structure=np.ones(size, bool))`` of a 1-D mask.

    Dilation: any of ``x[i - (size - 1) // 2 : ... + size]`` (outside = False); erosion: all of
    the dilated ``[i - size // 2 : ... + size]`` with the window inside the array (scipy's
    ``border_value=0``). Running counts: O(M) for any ``size``.
    """
    n = x.shape[0]
    cx = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        cx[i + 1] = cx[i] + (1 if x[i] else 0)
    lo_d = (size - 1) // 2
    cd = np.zeros(n + 1, dtype=np.int64)
    for i in range(n):
        a = max(0, i - lo_d)
        b = min(n, i - lo_d + size)
        d = a < b and cx[b] - cx[a] > 0
        cd[i + 1] = cd[i] + (1 if d else 0)
    lo_e = size // 2
    out = np.zeros(n, dtype=np.bool_)
    for i in range(n):
        a = i - lo_e
        b = a + size
        out[i] = a >= 0 and b <= n and cd[b] - cd[a] == size
    return out


@jit
def _select_kth(a: np.ndarray, k: int, nbins: int) -> float:
    # k-th smallest (0-based) of a finite array: histogram over [min, max], then the values of
    # the bin holding rank k, sorted (exact: an order statistic does not depend on the method)
    lo = a[0]
    hi = a[0]
    for v in a:
        lo = min(lo, v)
        hi = max(hi, v)
    if lo == hi:
        return lo
    scale = nbins / (hi - lo)
    counts = np.zeros(nbins + 1, dtype=np.int64)
    for v in a:
        counts[min(int((v - lo) * scale), nbins)] += 1
    acc = 0
    b = 0
    while acc + counts[b] <= k:
        acc += counts[b]
        b += 1
    sel = np.empty(counts[b])
    j = 0
    for v in a:
        if min(int((v - lo) * scale), nbins) == b:
            sel[j] = v
            j += 1
    sel.sort()
    return sel[k - acc]


@jit
def median_exact(a: np.ndarray) -> float:
    """``np.median`` of a 1-D array (NaN if any NaN; the same value: an order statistic, and
    for even sizes the mean of the two middle values in numpy's order ``(0 + lo + hi) / 2``)."""
    n = a.shape[0]
    for v in a:
        if np.isnan(v):
            return np.nan
        if not np.isfinite(v):
            return np.median(a)
    nbins = max(16, min(1 << 16, n // 8))
    if n % 2 == 1:
        return _select_kth(a, n // 2, nbins)
    lo = _select_kth(a, n // 2 - 1, nbins)
    hi = _select_kth(a, n // 2, nbins)
    res = 0.0
    res += lo
    res += hi
    return res / 2.0
