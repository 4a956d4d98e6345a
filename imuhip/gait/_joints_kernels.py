"""Fused per-sample quaternion kernels of the joint angles (:mod:`imuhip.gait.joints`).

The heading stage's kernels are in :mod:`imuhip.orientation._heading_kernels`; both use the
shared helpers of :mod:`imuhip.numeric`, compiled with numpy's error model.

Two kinds, each tested against the numpy expressions it stands for
(``tests/unit/gait/test_joints_kernels.py``, ``tests/unit/orientation/test_heading_kernels.py``):

* Kernels behind a discrete decision (walking-axis block sums and hence the anchor windows,
  the field-quality arguments and clean mask, the heading unwrap, the Hann window, the exact
  median, the run-level closing) repeat the replaced numpy operations per sample in the same
  order (``conventions.quat_normalize``/``quat_mul``/``quat_rotate``, numpy's pairwise
  summation -- the shared helpers of :mod:`imuhip.numeric` --, ``np.unwrap``/
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

import numpy as np

from imuhip.numeric import jit_numpy_errors as jit
from imuhip.numeric import quat_mul, quat_norm, quat_normalize_np, quat_rotate, segment_quat

__all__ = [
    "bluestein_inputs",
    "chirp",
    "first_bad_quat",
    "forward_xy",
    "hann_times",
    "unwrap_bridge",
    "usable_heading",
    "walking_unit_xy",
    "yxz_walk_args",
    "zxy_args",
]


@jit
def _segment_raw(q: np.ndarray, i: int, cal: np.ndarray) -> tuple[float, float, float, float]:
    # q ⊗ cal without normalising (callers scale by the norm); ``cal`` empty: q itself
    if cal.shape[0] == 0:
        return q[i, 0], q[i, 1], q[i, 2], q[i, 3]
    return quat_mul(q[i, 0], q[i, 1], q[i, 2], q[i, 3], cal[0], cal[1], cal[2], cal[3])


@jit
def first_bad_quat(q: np.ndarray) -> int:
    """Index of the first row of ``q`` (M, 4) with a zero or non-finite norm, else -1."""
    for i in range(q.shape[0]):
        n = quat_norm(q[i, 0], q[i, 1], q[i, 2], q[i, 3])
        if not (np.isfinite(n) and n != 0.0):
            return i
    return -1


_RESET = 64
"""Samples between exact cos/sin evaluations of the heading fix (rotation recurrence between
them: error below 1e-14 rad)."""


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
    :func:`imuhip.gait.joints.hip_angles` (sensor, segment, relative) unnecessary: the same angles
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
        w, x, y, z = segment_quat(qa, i, cal_a)
        w, x, y, z = quat_normalize_np(w, x, y, z)
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

    ``R_walk_seg = Rx(90°)^T Rz(psi)^T R_seg`` (:func:`imuhip.gait.joints.walking_frame`) with
    ``cos psi, sin psi = cx, sx`` (the unit walking direction: no trigonometry), ``R_seg`` from
    the unnormalised ``q_a ⊗ cal_a`` scaled by ``2 / |q|^2``; the same angles as
    :func:`imuhip.gait.joints.pelvis_angles` within 1e-14 rad. Rows ``[-r12, r02, r22, r10, r11]``:
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
