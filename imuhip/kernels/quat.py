"""Fused per-sample quaternion kernels of the joint-angle stage (:mod:`imuhip.joints`,
:mod:`imuhip.heading`).

Two kinds, each tested against the numpy code it replaced (``tests/unit/
test_perf_round3_joints.py`` keeps that code as reference):

* Kernels behind a discrete decision (walking-axis block sums and hence the anchor windows,
  the field-quality arguments and clean mask, the heading unwrap, the Hann window, the exact
  median, the run-level closing) repeat the replaced numpy operations per sample in the same
  order (``conventions.quat_normalize``/``quat_mul``/``quat_rotate``, numpy's pairwise
  summation -- the shared helpers of :mod:`imuhip.kernels._core` --, ``np.unwrap``/
  ``np.interp``): bit-identical results (IEEE arithmetic, no
  ``fastmath``, no FMA contraction).
* The angle kernels (:func:`zxy_args`, :func:`yxz_walk_args`) compute the rotation matrix of
  the unnormalised quaternion product scaled by ``2 / |q|^2`` instead of normalising three
  times, turn the heading fix by a rotation recurrence with exact resets, and take the walking
  frame from the unit direction: the same angles within 1e-14 rad.

Inverse trigonometric functions are not evaluated here: the kernels write their arguments and
the caller applies numpy's ``arctan2``/``arcsin`` (SIMD, ~8x faster than libm in a compiled
loop). Quaternions are scalar first ``[w, x, y, z]`` (Hamilton), see :mod:`imuhip.conventions`.
Argument checks stay in the Python callers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numba
import numpy as np

from imuhip.kernels._core import pairwise_sum as _pairwise_sum
from imuhip.kernels._core import quat_mul, quat_norm, quat_rotate, sum_sq3

F = TypeVar("F", bound=Callable[..., Any])


def jit(func: F) -> F:
    """:func:`imuhip.kernels.jit`'s settings (cached, GIL released, no fastmath) with numpy's
    error model: a float division by zero gives inf/nan as in numpy instead of raising, so the
    divisions need no per-element check and the loops vectorise (1.6x faster here). Results are
    otherwise the same IEEE operations."""
    return numba.njit(cache=True, nogil=True, error_model="numpy")(func)  # type: ignore[return-value]


__all__ = [
    "anchor_mask",
    "bluestein_inputs",
    "chirp",
    "disturbed_runs",
    "first_bad_quat",
    "forward_xy",
    "hann_times",
    "heading_block_sums",
    "heading_conf_args",
    "heading_fix",
    "hold_args",
    "mag_args",
    "mag_clean",
    "median_exact",
    "unwrap_bridge",
    "usable_heading",
    "walking_unit_xy",
    "yxz_walk_args",
    "zxy_args",
]


@jit
def _normalize(w: float, x: float, y: float, z: float) -> tuple[float, float, float, float]:
    # conventions._quat_normalize: the norm in np.linalg.norm's order, then q / n (numpy's
    # error model here: a zero norm gives inf/nan, no exception)
    n = quat_norm(w, x, y, z)
    return w / n, x / n, y / n, z / n


@jit
def _segment(q: np.ndarray, i: int, cal: np.ndarray) -> tuple[float, float, float, float]:
    # joints.segment_orientation: normalize(q_world_sensor) ⊗ q_sensor_segment; an empty
    # ``cal`` means ``q`` already holds the segment orientation (used as given)
    if cal.shape[0] == 0:
        return q[i, 0], q[i, 1], q[i, 2], q[i, 3]
    w, x, y, z = _normalize(q[i, 0], q[i, 1], q[i, 2], q[i, 3])
    return quat_mul(w, x, y, z, cal[0], cal[1], cal[2], cal[3])


@jit
def _segment_raw(q: np.ndarray, i: int, cal: np.ndarray) -> tuple[float, float, float, float]:
    # q ⊗ cal without normalising (callers scale by the norm); ``cal`` empty: q itself
    if cal.shape[0] == 0:
        return q[i, 0], q[i, 1], q[i, 2], q[i, 3]
    return quat_mul(q[i, 0], q[i, 1], q[i, 2], q[i, 3], cal[0], cal[1], cal[2], cal[3])


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
def first_bad_quat(q: np.ndarray) -> int:
    """Index of the first row of ``q`` (M, 4) with a zero or non-finite norm, else -1."""
    for i in range(q.shape[0]):
        n = quat_norm(q[i, 0], q[i, 1], q[i, 2], q[i, 3])
        if not (np.isfinite(n) and n != 0.0):
            return i
    return -1


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
    segment ``axis`` in the world (segments from :func:`_segment`). Each block of ``block``
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
                pw, px, py, pz = _segment(qp, i, cal_p)
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
                tw, tx, ty, tz = _segment(qs, i, cs)
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
def _piece(t: float, cen: np.ndarray, j: int) -> int:
    # linear piece of np.interp(t, cen, ...): -1 before cen[0], k - 1 from cen[-1] on (both
    # constant), else j with cen[j] <= t < cen[j + 1]; ``j`` carried between increasing t
    k = cen.shape[0]
    if t < cen[0]:
        return -1
    if t >= cen[k - 1]:
        return k - 1
    j = max(j, 0)
    while cen[j + 1] <= t:
        j += 1
    return j


_RESET = 64
"""Samples between exact cos/sin evaluations of the heading fix (rotation recurrence between
them: error below 1e-14 rad)."""


@jit
def zxy_args(
    qa: np.ndarray,
    cal_a: np.ndarray,
    qb: np.ndarray,
    cal_b: np.ndarray,
    cen: np.ndarray,
    off: np.ndarray,
    sign: np.ndarray,
    start: int,
    out: np.ndarray,
) -> None:
    """Arguments of the Z–X′–Y″ Cardan angles of ``q_a_b = conj(seg_a) ⊗ fix ⊗ seg_b`` into
    ``out`` (5, n), for the samples ``[start, start + n)`` (chunks that stay in cache).

    ``seg_p = q_p ⊗ cal_p`` (sensor orientation and sensor-to-segment rotation; ``cal`` empty:
    ``q`` is the segment orientation); ``fix`` turns ``b`` about world up by minus the heading
    offset ``np.interp(t_idx, cen, off)`` (``cen`` empty: no fix). The rotation matrix of the
    unnormalised product is scaled by ``2 / |q|^2``, which makes every normalisation of
    :func:`imuhip.joints.hip_angles` (sensor, segment, relative) unnecessary: the same angles
    within 1e-14 rad, one division per sample. Rows ``[r21, -r01, r11, -r20, r22]``:
    ``b = arcsin(clip(row0))``, ``a = arctan2(row1, row2)``, ``c = arctan2(row3, row4)``; the
    numerators times ``sign`` (3,) of the angles ``[a, b, c]`` (the functions are odd).
    """
    k = cen.shape[0]
    ch, sh, cd, sd = 1.0, 0.0, 1.0, 0.0
    cur = -2
    j = -1
    last = 0
    for r in range(out.shape[1]):
        i = start + r
        pw, px, py, pz = _segment_raw(qa, i, cal_a)
        tw, tx, ty, tz = _segment_raw(qb, i, cal_b)
        if k != 0:
            j = _piece(float(i), cen, j)
            if j != cur or i - last >= _RESET:  # exact cos/sin, then the rotation recurrence
                if j < 0 or j == k - 1:
                    o = off[max(j, 0)]
                    slope = 0.0
                else:
                    slope = (off[j + 1] - off[j]) / (cen[j + 1] - cen[j])
                    o = slope * (float(i) - cen[j]) + off[j]
                ch, sh = np.cos(-0.5 * o), np.sin(-0.5 * o)
                cd, sd = np.cos(-0.5 * slope), np.sin(-0.5 * slope)
                cur = j
                last = i
            else:
                ch, sh = ch * cd - sh * sd, sh * cd + ch * sd
            tw, tx, ty, tz = quat_mul(ch, 0.0, 0.0, sh, tw, tx, ty, tz)
        w, x, y, z = quat_mul(pw, -px, -py, -pz, tw, tx, ty, tz)
        s = 2.0 / (w * w + x * x + y * y + z * z)
        out[0, r] = sign[1] * (s * (y * z + w * x))
        out[1, r] = sign[0] * (-s * (x * y - w * z))
        out[2, r] = 1.0 - s * (x * x + z * z)
        out[3, r] = sign[2] * (-s * (x * z - w * y))
        out[4, r] = 1.0 - s * (x * x + y * y)


@jit
def forward_xy(
    qa: np.ndarray, cal_a: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Horizontal components of the normalised segment's X axis in the world, two (M,), times
    ``weight`` (M,) when it is not empty (``fwd * w`` of ``joints.walking_direction``)."""
    m = qa.shape[0]
    fx = np.empty(m)
    fy = np.empty(m)
    weigh = weight.shape[0] != 0
    for i in range(m):
        w, x, y, z = _segment(qa, i, cal_a)
        w, x, y, z = _normalize(w, x, y, z)
        a0, a1, _ = quat_rotate(w, x, y, z, 1.0, 0.0, 0.0)
        if weigh:
            a0 = a0 * weight[i]
            a1 = a1 * weight[i]
        fx[i] = a0
        fy[i] = a1
    return fx, fy


@jit
def yxz_walk_args(
    qa: np.ndarray,
    cal_a: np.ndarray,
    cx: np.ndarray,
    sx: np.ndarray,
    sign: np.ndarray,
    start: int,
    out: np.ndarray,
) -> None:
    """Arguments of the Y–X′–Z″ angles of the segment relative to the walking frame into
    ``out`` (5, n), samples ``[start, start + n)``.

    ``R_walk_seg = Rx(90°)^T Rz(psi)^T R_seg`` (:func:`imuhip.joints.walking_frame`) with
    ``cos psi, sin psi = cx, sx`` (the unit walking direction: no trigonometry), ``R_seg`` from
    the unnormalised ``q_a ⊗ cal_a`` scaled by ``2 / |q|^2``; the same angles as
    :func:`imuhip.joints.pelvis_angles` within 1e-14 rad. Rows ``[-r12, r02, r22, r10, r11]``:
    ``b = arcsin(clip(row0))``, ``a = arctan2(row1, row2)``, ``c = arctan2(row3, row4)``; the
    numerators times ``sign`` (3,) of the angles ``[a, b, c]`` (the functions are odd).
    """
    for r in range(out.shape[1]):
        i = start + r
        w, x, y, z = _segment_raw(qa, i, cal_a)
        s = 2.0 / (w * w + x * x + y * y + z * z)
        r02 = s * (x * z + w * y)
        r12 = s * (y * z - w * x)
        c, sn = cx[i], sx[i]
        out[0, r] = sign[1] * -(1.0 - s * (x * x + y * y))  # -(R_walk_seg)12 = -R22
        out[1, r] = sign[0] * (c * r02 + sn * r12)  # (R_walk_seg)02
        out[2, r] = sn * r02 - c * r12  # (R_walk_seg)22
        out[3, r] = sign[2] * (s * (x * z - w * y))  # (R_walk_seg)10 = R20
        out[4, r] = s * (y * z + w * x)  # (R_walk_seg)11 = R21


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
def hann_times(x: np.ndarray) -> None:
    """``x *= np.hanning(len(x))`` in place (its expression; half the cosines: symmetric)."""
    m = x.shape[0]
    if m == 1:
        return
    for k in range((m + 1) // 2):
        w = 0.5 + 0.5 * np.cos(np.pi * float(1 - m + 2 * k) / (m - 1))
        x[k] *= w
        if m - 1 - k != k:
            x[m - 1 - k] *= w


@jit
def _select_pair(a: np.ndarray, k: int) -> tuple[float, float]:
    # the k-th and (k+1)-th smallest (0-based) of a finite array (k + 1 < len): histogram over
    # [min, max], then the values of the bins holding those ranks, sorted (exact: an order
    # statistic does not depend on the method). Bin index is monotone in the value.
    n = a.shape[0]
    lo = a[0]
    hi = a[0]
    for v in a:
        lo = min(lo, v)
        hi = max(hi, v)
    if lo == hi:
        return lo, lo
    nbins = max(16, min(1 << 16, n // 8))
    scale = nbins / (hi - lo)
    counts = np.zeros(nbins + 1, dtype=np.int64)
    for v in a:
        counts[min(int((v - lo) * scale), nbins)] += 1
    acc = 0
    b1 = 0
    while acc + counts[b1] <= k:
        acc += counts[b1]
        b1 += 1
    b2 = b1
    if acc + counts[b1] <= k + 1:  # rank k + 1 is in a later (the next non-empty) bin
        b2 = b1 + 1
        while counts[b2] == 0:
            b2 += 1
    sel = np.empty(counts[b1] + (counts[b2] if b2 != b1 else 0))
    j = 0
    for v in a:
        b = min(int((v - lo) * scale), nbins)
        if b in (b1, b2):
            sel[j] = v
            j += 1
    sel.sort()
    return sel[k - acc], sel[k + 1 - acc]


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
    if n == 1:
        return a[0]
    lo, hi = _select_pair(a, (n - 1) // 2)
    if n % 2 == 1:
        return lo
    res = 0.0
    res += lo
    res += hi
    return res / 2.0


@jit
def unwrap_bridge(ang: np.ndarray, ok: np.ndarray, out: np.ndarray) -> None:
    """``np.interp(idx, idx[ok], np.unwrap(ang[ok]))`` in one pass into ``out`` (M,).

    ``np.unwrap``'s steps (period 2 pi: ``mod(dd + pi, 2 pi) - pi``, ``+pi`` for a positive
    jump of exactly pi, no correction below pi, the corrections summed in order) over the
    ``ok`` samples; the others linearly between their ``ok`` neighbours (``np.interp``'s
    expression), held before the first and after the last. ``out`` may be ``ang`` itself
    (each sample is read before it or a later one is written). ``ok`` must have a True.
    """
    m = ang.shape[0]
    pi = np.pi
    two_pi = 2.0 * np.pi
    first = -1
    prev_i = -1
    prev_p = 0.0
    prev_v = 0.0
    cum = 0.0
    for i in range(m):
        if not ok[i]:
            continue
        p = ang[i]
        if prev_i < 0:
            v = p
            first = i
        else:
            dd = p - prev_p
            r = np.fmod(dd + pi, two_pi)  # np.mod: fmod, then the sign of the divisor
            if r != 0.0:
                if r < 0.0:
                    r += two_pi
            else:
                r = 0.0
            ddmod = r - pi
            if ddmod == -pi and dd > 0:
                ddmod = pi
            corr = ddmod - dd
            if abs(dd) < pi:
                corr = 0.0
            cum += corr
            v = p + cum
            if i - prev_i > 1:
                slope = (v - prev_v) / (float(i) - float(prev_i))
                for k in range(prev_i + 1, i):
                    out[k] = slope * (float(k) - float(prev_i)) + prev_v
        out[i] = v
        prev_i = i
        prev_p = p
        prev_v = v
    for k in range(first):
        out[k] = out[first]
    for k in range(prev_i + 1, m):
        out[k] = prev_v


@jit
def chirp(count: int, nfft: int) -> np.ndarray:
    """``exp(-i pi (j^2 mod 2 nfft) / nfft)`` for ``j < count``, (count,) complex.

    Exact phases (integers) with ``cos``/``sin`` every 64 samples and the rotation recurrence
    ``c[j + 1] = c[j] d[j]``, ``d[j + 1] = d[j] exp(-2 pi i / nfft)`` between them (error below
    1e-13).
    """
    out = np.empty(count, dtype=np.complex128)
    two_n = 2 * nfft
    scale = np.pi / nfft
    rc = np.cos(2.0 * scale)
    rs = -np.sin(2.0 * scale)
    cr = 1.0
    ci = 0.0
    dr = 1.0
    di = 0.0
    for j in range(count):
        if j % 64 == 0:
            ph = float((j * j) % two_n) * scale
            cr, ci = np.cos(ph), -np.sin(ph)
            ph = float((2 * j + 1) % two_n) * scale
            dr, di = np.cos(ph), -np.sin(ph)
        out[j] = complex(cr, ci)
        cr, ci = cr * dr - ci * di, cr * di + ci * dr
        dr, di = dr * rc - di * rs, dr * rs + di * rc
    return out


@jit
def _nearest(x: np.ndarray, k: int) -> float:
    # x[k] with the ends repeated (scipy.ndimage mode "nearest")
    if k < 0:
        return x[0]
    if k >= x.shape[0]:
        return x[x.shape[0] - 1]
    return x[k]


@jit
def walking_unit_xy(
    fx_w: np.ndarray, fy_w: np.ndarray, w: np.ndarray, size: int
) -> tuple[np.ndarray, np.ndarray, int]:
    """Unit horizontal walking direction from validity-weighted moving averages; good count.

    The three centred moving sums of ``joints.walking_direction`` (``fwd * w`` per component and
    ``w``) with scipy's ``uniform_filter1d(..., mode="nearest")`` arithmetic (a running sum kept
    undivided, ``sum += entering - leaving``, each output ``sum / size``), then
    ``avg = num / den`` (the vertical part is 0, or 0/0 where ``den == 0``), ``n = |avg|``;
    samples without a finite ``n > 1e-6`` take the direction of the next good sample (the last
    good one at the end); then ``avg / n``. Returns ``(dx, dy, good)``.
    """
    m = fx_w.shape[0]
    dx = np.empty(m)
    dy = np.empty(m)
    if m == 0:
        return dx, dy, 0
    r1 = size // 2
    sx = 0.0
    sy = 0.0
    sw = 0.0
    for k in range(size):
        sx += _nearest(fx_w, k - r1)
        sy += _nearest(fy_w, k - r1)
        sw += _nearest(w, k - r1)
    good = 0
    last_good = -1
    for i in range(m):
        if i > 0:
            enter = i + size - 1 - r1
            leave = i - 1 - r1
            sx += _nearest(fx_w, enter) - _nearest(fx_w, leave)
            sy += _nearest(fy_w, enter) - _nearest(fy_w, leave)
            sw += _nearest(w, enter) - _nearest(w, leave)
        den = sw / size
        ax = (sx / size) / den
        ay = (sy / size) / den
        n = np.sqrt(ax * ax + ay * ay)
        if den != 0.0 and np.isfinite(n) and n > 1e-6:
            dx[i] = ax / n
            dy[i] = ay / n
            good += 1
            last_good = i
        else:
            dx[i] = np.nan  # marks a bad sample for the backward pass
    if good == 0:
        return dx, dy, 0
    nxt = last_good
    for i in range(m - 1, -1, -1):
        if np.isnan(dx[i]):
            dx[i] = dx[nxt]
            dy[i] = dy[nxt]
        else:
            nxt = i
    return dx, dy, good


@jit
def usable_heading(fx: np.ndarray, fy: np.ndarray, valid: np.ndarray) -> tuple[np.ndarray, int]:
    """``ok = (hypot(fx, fy) > 1e-3) & valid`` (``valid`` empty: all) and its count."""
    m = fx.shape[0]
    ok = np.empty(m, dtype=np.bool_)
    count = 0
    use_valid = valid.shape[0] != 0
    for i in range(m):
        o = np.hypot(fx[i], fy[i]) > 1e-3
        if use_valid:
            o = o and valid[i]
        ok[i] = o
        count += 1 if o else 0
    return ok, count


@jit
def bluestein_inputs(
    x: np.ndarray, chirp: np.ndarray, k0: int, nb: int, length: int
) -> tuple[np.ndarray, np.ndarray]:
    """Zero-padded ``x[n] c[n]`` and ``conj(c[|k0 - N + 1 + m|])`` of length ``length``."""
    n = x.shape[0]
    a = np.zeros(length, dtype=np.complex128)
    b = np.zeros(length, dtype=np.complex128)
    for i in range(n):
        a[i] = x[i] * chirp[i]
    for j in range(n + nb - 1):
        b[j] = np.conj(chirp[abs(k0 - n + 1 + j)])
    return a, b
