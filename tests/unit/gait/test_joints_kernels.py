"""The fused quaternion kernels of the joint angles (``imuhip/gait/_joints_kernels.py``) equal
the numpy expressions and public functions they stand for."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import uniform_filter1d

from imuhip.conventions import (
    HIP_SIGN,
    Side,
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_normalize,
    rotmat_entries,
)
from imuhip.gait import _joints_kernels as kq
from imuhip.gait.joints import (
    _LUMBAR_SIGN,
    _PELVIS_SIGN,
    _cardan_from_entries,
    hip_angles,
    lumbar_angles,
    pelvis_angles,
    walking_frame,
)

_UP = np.array([0.0, 0.0, 1.0])
_ONES = np.ones(3)


def _random_quats(rng: np.random.Generator, m: int) -> np.ndarray:
    return rng.normal(size=(m, 4)) * rng.uniform(0.5, 2.0, size=(m, 1))


def _run_zxy(qa, ca, qb, cb, cen, off, chunk):
    m = len(qa)
    out = np.empty((5, m))
    for a in range(0, m, chunk):
        kq.zxy_args(qa, ca, qb, cb, cen, off, _ONES, a, out[:, a : a + chunk])
    return out


def test_zxy_args_equal_normalised_quaternion_products() -> None:
    """The kernel skips hip_angles' three normalisations (scaled matrix instead) and turns the
    heading fix by a rotation recurrence: equal to the numpy expression within 1e-14."""
    rng = np.random.default_rng(0)
    m = 20_000
    qa, qb = _random_quats(rng, m), _random_quats(rng, m)
    ca, cb = rng.normal(size=4), rng.normal(size=4)
    sa = quat_mul(quat_normalize(qa), ca)
    sb = quat_mul(quat_normalize(qb), cb)
    # anchor centres with long gaps (thousands of samples between them) and outside the data
    cen = np.sort(rng.uniform(-500, m + 500, size=9))
    off = np.unwrap(rng.uniform(-3, 3, size=9))
    offset = np.interp(np.arange(m, dtype=np.float64), cen, off)
    sb_fix = quat_mul(quat_from_axis_angle(_UP, -offset), sb)
    for o, tb in (((np.zeros(0), np.zeros(0)), sb), ((cen, off), sb_fix)):
        rel = quat_normalize(quat_mul(quat_conj(quat_normalize(sa)), quat_normalize(tb)))
        r = rotmat_entries(rel)
        want = np.stack([r["21"], -r["01"], r["11"], -r["20"], r["22"]])
        for chunk in (m, 777):  # chunked calls give the same values
            got = _run_zxy(qa, ca, qb, cb, o[0], o[1], chunk)
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-14)
    # a single anchor: a constant fix
    sb1 = quat_mul(quat_from_axis_angle(_UP, -np.full(m, 0.3)), sb)
    rel = quat_normalize(quat_mul(quat_conj(quat_normalize(sa)), quat_normalize(sb1)))
    r = rotmat_entries(rel)
    got = _run_zxy(qa, ca, qb, cb, np.array([50.0]), np.array([0.3]), m)
    np.testing.assert_allclose(got[2], r["11"], rtol=0, atol=1e-14)


def test_yxz_walk_args_equal_pelvis_angles_expression() -> None:
    rng = np.random.default_rng(5)
    m = 5000
    qa, ca = _random_quats(rng, m), rng.normal(size=4)
    sa = quat_mul(quat_normalize(qa), ca)
    psi = rng.uniform(-np.pi, np.pi, size=m)
    out = np.empty((5, m))
    kq.yxz_walk_args(qa, ca, np.cos(psi), np.sin(psi), _ONES, 0, out)
    d = np.stack([np.cos(psi), np.sin(psi), np.zeros(m)], axis=1)
    rel = quat_normalize(quat_mul(quat_conj(walking_frame(d)), quat_normalize(sa)))
    r = rotmat_entries(rel)
    want = np.stack([-r["12"], r["02"], r["22"], r["10"], r["11"]])
    np.testing.assert_allclose(out, want, rtol=0, atol=1e-14)
    # with the pelvis signs folded into the numerators: pelvis_angles
    kq.yxz_walk_args(qa, ca, np.cos(psi), np.sin(psi), _PELVIS_SIGN, 0, out)
    ang = np.empty((m, 3))
    _cardan_from_entries(out, ang)
    np.testing.assert_allclose(ang, pelvis_angles(sa, d), rtol=0, atol=1e-13)


def test_zxy_signs_give_hip_and_lumbar_angles() -> None:
    rng = np.random.default_rng(8)
    m = 3000
    qa, qb = _random_quats(rng, m), _random_quats(rng, m)
    ca, cb = rng.normal(size=4), rng.normal(size=4)
    sa = quat_mul(quat_normalize(qa), ca)
    sb = quat_mul(quat_normalize(qb), cb)
    e = np.empty((5, m))
    ang = np.empty((m, 3))
    for side in (Side.LEFT, Side.RIGHT):
        kq.zxy_args(qa, ca, qb, cb, np.zeros(0), np.zeros(0), HIP_SIGN[side], 0, e)
        _cardan_from_entries(e, ang)
        np.testing.assert_allclose(ang, hip_angles(sa, sb, side), rtol=0, atol=1e-13)
    kq.zxy_args(qa, ca, qb, cb, np.zeros(0), np.zeros(0), _LUMBAR_SIGN, 0, e)
    _cardan_from_entries(e, ang)
    np.testing.assert_allclose(ang, lumbar_angles(sa, sb), rtol=0, atol=1e-13)


def test_unwrap_bridge_equals_unwrap_and_interp() -> None:
    rng = np.random.default_rng(6)
    m = 5000
    ang = np.angle(np.exp(1j * np.cumsum(rng.normal(0, 0.8, size=m))))  # many wraps
    ang[100] = np.pi  # jumps of exactly pi
    ang[101] = 0.0
    for ok in (
        np.ones(m, bool),
        rng.random(m) > 0.3,
        np.r_[np.zeros(50, bool), rng.random(m - 100) > 0.9, np.zeros(50, bool)],
    ):
        idx = np.arange(m)
        want = np.interp(idx, idx[ok], np.unwrap(ang[ok]))
        out = np.empty(m)
        kq.unwrap_bridge(ang, ok, out)
        np.testing.assert_array_equal(out, want)
        inplace = ang.copy()
        kq.unwrap_bridge(inplace, ok, inplace)
        np.testing.assert_array_equal(inplace, want)


def test_chirp_equals_exact_phase() -> None:
    nfft = 1 << 16
    j = np.arange(70_000, dtype=np.int64)
    want = np.exp(-1j * np.pi * ((j * j) % (2 * nfft)) / nfft)
    np.testing.assert_allclose(kq.chirp(len(j), nfft), want, rtol=0, atol=1e-13)


@pytest.mark.parametrize("size", [1, 2, 3, 10, 440, 5000])
def test_walking_unit_xy_equals_uniform_filter_expression(size: int) -> None:
    rng = np.random.default_rng(size)
    for m in (1, 7, 3000):
        fx, fy = rng.normal(size=m), rng.normal(size=m)
        w = (rng.random(m) > 0.2).astype(np.float64)
        w[m // 3 : m // 3 + 700] = 0.0  # a stretch longer than small windows: filled
        fxw, fyw = fx * w, fy * w
        with np.errstate(invalid="ignore", divide="ignore"):
            num = np.stack(
                [uniform_filter1d(a, size, mode="nearest") for a in (fxw, fyw, 0 * fxw)], axis=1
            )
            avg = num / uniform_filter1d(w, size, mode="nearest")[:, None]
        n = np.linalg.norm(avg, axis=1)
        bad = ~(np.isfinite(n) & (n > 1e-6))
        dx, dy, good = kq.walking_unit_xy(fxw, fyw, w, size)
        assert good == int((~bad).sum())
        if good == 0:
            continue
        idx = np.where(~bad)[0]
        near = idx[np.clip(np.searchsorted(idx, np.arange(m)), 0, len(idx) - 1)]
        avg[bad] = avg[near[bad]]
        n[bad] = n[near[bad]]
        np.testing.assert_array_equal(dx, avg[:, 0] / n)
        np.testing.assert_array_equal(dy, avg[:, 1] / n)


def test_hann_window_and_quaternion_check_equal_numpy() -> None:
    rng = np.random.default_rng(4)
    q = _random_quats(rng, 2000)
    for n in (1, 2, 7, 1000, 1001):
        x = rng.normal(size=n)
        y = x.copy()
        kq.hann_times(y)
        np.testing.assert_array_equal(y, x * np.hanning(n))
    # validity reduction
    assert kq.first_bad_quat(q) == -1
    q[1234] = 0.0
    q[1500, 2] = np.inf
    assert kq.first_bad_quat(q) == 1234
