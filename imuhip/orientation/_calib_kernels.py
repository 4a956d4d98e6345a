"""Compiled inner loops of :mod:`imuhip.orientation.segment_calibration` (walking-window
statistics).

The per-sample quaternion products and rotations (:mod:`imuhip.numeric`) follow the
operation order of ``conventions._quat_mul`` / ``conventions._quat_rotate_into`` (bit-identical
per sample); the sums over windows are plain sequential sums (they differ from numpy's pairwise
sums and BLAS by round-off only, tested to 1e-9 in ``tests/unit/ingest/test_perf_round3_align.py``).
"""

from __future__ import annotations

import numpy as np

from imuhip.numeric import jit, quat_mul, quat_rotate, sum_sq3

__all__ = ["cov3", "fwd_in_sensor_sum", "hip_gyr", "rot_z", "rot_z_const_sum", "sq_norm_rows"]


@jit
def hip_gyr(  # pragma: no cover - compiled
    q_t: np.ndarray, q_p: np.ndarray, g_t: np.ndarray, g_p: np.ndarray, out: np.ndarray
) -> None:
    """``out = g_t - quat_rotate(quat_mul(quat_conj(q_t), q_p), g_p)`` row by row, ``(M, 3)``.

    Thigh angular velocity relative to the pelvis, in the thigh sensor frame.
    """
    for i in range(q_t.shape[0]):
        w, x, y, z = quat_mul(
            q_t[i, 0],
            -q_t[i, 1],
            -q_t[i, 2],
            -q_t[i, 3],
            q_p[i, 0],
            q_p[i, 1],
            q_p[i, 2],
            q_p[i, 3],
        )
        rx, ry, rz = quat_rotate(w, x, y, z, g_p[i, 0], g_p[i, 1], g_p[i, 2])
        out[i, 0] = g_t[i, 0] - rx
        out[i, 1] = g_t[i, 1] - ry
        out[i, 2] = g_t[i, 2] - rz


@jit
def rot_z(q: np.ndarray, v: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out = quat_rotate(q, v)[:, 2]`` (``q`` ``(M, 4)``, ``v`` ``(M, 3)``)."""
    for i in range(q.shape[0]):
        out[i] = quat_rotate(q[i, 0], q[i, 1], q[i, 2], q[i, 3], v[i, 0], v[i, 1], v[i, 2])[2]


@jit
def rot_z_const_sum(q: np.ndarray, rows: np.ndarray, v: np.ndarray) -> float:  # pragma: no cover
    """``sum(quat_rotate(q[rows], v)[:, 2])`` for one vector ``v`` (3,)."""
    s = 0.0
    for r in rows:
        s += quat_rotate(q[r, 0], q[r, 1], q[r, 2], q[r, 3], v[0], v[1], v[2])[2]
    return s


@jit
def cov3(g: np.ndarray, rows: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover
    """``out = g[rows].T @ g[rows]`` (``(3, 3)``, sequential sums)."""
    for a in range(3):
        for b in range(3):
            out[a, b] = 0.0
    for r in rows:
        for a in range(3):
            for b in range(a, 3):
                out[a, b] += g[r, a] * g[r, b]
    for a in range(3):
        for b in range(a):
            out[a, b] = out[b, a]


@jit
def sq_norm_rows(g: np.ndarray, out: np.ndarray) -> None:  # pragma: no cover - compiled
    """``out = np.sum(g * g, axis=1)`` for ``(M, 3)`` rows (the same sum order)."""
    for i in range(g.shape[0]):
        out[i] = sum_sq3(g[i, 0], g[i, 1], g[i, 2])


@jit
def fwd_in_sensor_sum(  # pragma: no cover - compiled
    q_s: np.ndarray,
    q_a: np.ndarray,
    x_a: np.ndarray,
    q_b: np.ndarray,
    x_b: np.ndarray,
    two: bool,
    rows: np.ndarray,
    out: np.ndarray,
) -> None:
    """Sum over ``rows`` of the walking direction in the frame of sensor ``q_s``.

    Per row: ``fwd = quat_rotate(q_a, x_a) (+ quat_rotate(q_b, x_b) if two)`` (the thighs'
    anterior axes in the world), its vertical component dropped and the rest normalised, then
    rotated by ``quat_conj(q_s)``; ``out`` (3,) receives the sum.
    """
    out[0] = 0.0
    out[1] = 0.0
    out[2] = 0.0
    for r in rows:
        ax, ay, _ = quat_rotate(q_a[r, 0], q_a[r, 1], q_a[r, 2], q_a[r, 3], x_a[0], x_a[1], x_a[2])
        fx = 0.0
        fy = 0.0
        fx += ax
        fy += ay
        if two:
            bx, by, _ = quat_rotate(
                q_b[r, 0], q_b[r, 1], q_b[r, 2], q_b[r, 3], x_b[0], x_b[1], x_b[2]
            )
            fx += bx
            fy += by
        nrm = np.sqrt(fx * fx + fy * fy + 0.0 * 0.0)
        fx = fx / nrm
        fy = fy / nrm
        cx, cy, cz = quat_rotate(q_s[r, 0], -q_s[r, 1], -q_s[r, 2], -q_s[r, 3], fx, fy, 0.0)
        out[0] += cx
        out[1] += cy
        out[2] += cz
