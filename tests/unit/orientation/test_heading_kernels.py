"""The compiled loops of the relative heading (``imuhip/orientation/_heading_kernels.py``) equal
plain numpy and scipy."""

from __future__ import annotations

import math

import numpy as np
from scipy.ndimage import binary_closing

from imuhip.conventions import quat_mul, quat_normalize, quat_rotate
from imuhip.orientation import _heading_kernels as hk
from imuhip.orientation.heading._walking_axis import _window_layout


def _random_quats(rng: np.random.Generator, m: int) -> np.ndarray:
    return rng.normal(size=(m, 4)) * rng.uniform(0.5, 2.0, size=(m, 1))


def _window_sums(x: np.ndarray, starts: np.ndarray, win: int, hop: int) -> np.ndarray:
    """Window sums of the rows of ``x`` as sums of numpy block sums of ``gcd(win, hop)``."""
    b = math.gcd(win, hop)
    blocks = x.reshape(len(x), -1, b).sum(axis=2).T
    first = starts // b
    out = np.zeros((len(starts), len(x)), dtype=np.float64)
    for j in range(win // b):
        out += blocks[first + j]
    return out


def _intervals(mask: np.ndarray, t_s: np.ndarray) -> list[tuple[float, float]]:
    m = np.concatenate([[False], mask, [False]]).astype(np.int8)
    d = np.diff(m)
    return [
        (float(t_s[a]), float(t_s[b - 1]))
        for a, b in zip(np.where(d == 1)[0], np.where(d == -1)[0], strict=True)
    ]


def test_heading_block_sums_equal_numpy_block_sums() -> None:
    rng = np.random.default_rng(1)
    m, win, hop = 3001, 800, 200
    qp, qt, qg = _random_quats(rng, m), _random_quats(rng, m), _random_quats(rng, m)
    cp, ct = rng.normal(size=4), rng.normal(size=4)
    gyr = rng.normal(size=(m, 3))
    ok = rng.random(m) > 0.1
    axis = np.array([0.0, 0.0, 1.0])
    starts, length = _window_layout(m, win, hop)
    b = math.gcd(win, hop)
    none = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 4)), np.zeros((0, 3)), np.zeros(0, bool))
    (got,) = hk.heading_block_sums(qp, cp, qt, ct, qg, gyr, ok, *none, False, axis, b, length // b)
    # two distal segments in one pass: each equals its own pass
    qt2, ct2, ok2 = _random_quats(rng, m), rng.normal(size=4), rng.random(m) > 0.5
    pair = hk.heading_block_sums(
        qp, cp, qt, ct, qg, gyr, ok, qt2, ct2, qt2, gyr, ok2, True, axis, b, length // b
    )
    np.testing.assert_array_equal(pair[0], got)
    np.testing.assert_array_equal(
        pair[1],
        hk.heading_block_sums(qp, cp, qt2, ct2, qt2, gyr, ok2, *none, False, axis, b, length // b)[
            0
        ],
    )
    # the old numpy construction of the quantity rows and their block sums
    g = quat_rotate(qg, gyr)
    z_pel = quat_rotate(quat_mul(quat_normalize(qp), cp), axis)
    z_thi = quat_rotate(quat_mul(quat_normalize(qt), ct), axis)
    cols = np.zeros((11, length))
    cols[0, :m] = ok
    gx, gy, gz = (np.where(ok, g[:, k], 0.0) for k in range(3))
    cols[2, :m], cols[3, :m], cols[4, :m] = gx * gx, gy * gy, gx * gy
    cols[1, :m] = cols[2, :m] + cols[3, :m] + gz * gz
    for k in range(3):
        cols[5 + k, :m] = np.where(ok, z_thi[:, k], 0.0)
        cols[8 + k, :m] = np.where(ok, z_pel[:, k], 0.0)
    np.testing.assert_array_equal(got, cols.reshape(11, -1, b).sum(axis=2).T)
    np.testing.assert_array_equal(
        _window_sums(cols, starts, win, hop),
        sum(got[starts // b + j] for j in range(win // b)) + np.zeros((len(starts), 11)),
    )


def test_disturbed_runs_equal_scipy_closing() -> None:
    rng = np.random.default_rng(2)
    for size in range(1, 13):
        for _ in range(40):
            clean = rng.random(int(rng.integers(1, 80))) > rng.uniform(0.05, 0.95)
            dirty = ~clean
            want = binary_closing(dirty, structure=np.ones(size, dtype=bool)) | dirty
            idx = np.arange(len(clean), dtype=np.float64)
            starts, stops = hk.disturbed_runs(clean, size)
            got = [(float(a), float(b - 1)) for a, b in zip(starts, stops, strict=True)]
            assert got == _intervals(want, idx)


def test_median_exact_equals_numpy_median() -> None:
    rng = np.random.default_rng(3)
    cases = [rng.normal(size=n) for n in (1, 2, 3, 10, 11, 1000, 1001, 200_000)] + [
        np.round(rng.normal(size=5001), 1),  # many ties
        np.full(10, 3.5),
        np.r_[np.zeros(500), np.full(500, 1e6)],  # the middle pair in far-apart bins
        np.r_[rng.normal(size=600), np.full(601, 7.0)],
        np.array([1.0, np.inf, 2.0, -np.inf]),
        np.array([1.0, np.inf, 2.0]),
        np.array([-np.inf, np.inf]),  # inf + -inf: NaN, as numpy
        np.array([np.inf, 5.0, np.inf, np.inf]),
        np.array([-np.inf, -np.inf, 3.0, 4.0, np.inf]),
        np.array([-np.inf, 1.0, 2.0, 3.0, 4.0, np.inf]),
        np.array([-np.inf, -np.inf, np.inf]),
        np.array([-1e308, 1e308, 0.0, 5.0]),  # max - min overflows a float
        np.r_[rng.normal(size=1000) * 1e307, [-1.7e308, 1.7e308]],
        np.array([0.0, 5e-324, 1e-323, 5e-324]),  # a subnormal spread
        2.0 ** -np.arange(1000.0),  # geometric: the bins narrow step by step
        np.r_[np.zeros(3), np.ones(3)],  # the middle pair split across bins
        np.array([1.0, np.nan, 2.0]),
        np.concatenate([rng.normal(size=999), [1e300]]),  # one far outlier
    ]
    for a in cases:
        with np.errstate(invalid="ignore"):  # numpy's own inf + -inf
            want = np.median(a)
        got = hk.median_exact(a)
        assert got == want or (np.isnan(want) and np.isnan(got))


def test_median_exact_on_random_mixtures_equals_numpy() -> None:
    # sizes, ties, clusters, outliers and infinities drawn at random: the value is always
    # np.median's, bit for bit
    rng = np.random.default_rng(11)
    for _ in range(400):
        n = int(rng.integers(1, 3000))
        kind = rng.integers(0, 4)
        if kind == 0:
            a = rng.normal(size=n)
        elif kind == 1:
            a = rng.integers(-3, 4, size=n).astype(np.float64)  # heavy ties
        elif kind == 2:
            a = np.r_[rng.normal(size=n), rng.normal(1e9, 1.0, size=int(rng.integers(0, 5)))]
        else:
            a = rng.exponential(size=n) ** rng.uniform(1, 30)  # long tail, far outliers
        m = int(rng.integers(0, 3))
        if m:
            a = np.r_[a, rng.choice([-np.inf, np.inf], size=m)]
        rng.shuffle(a)
        with np.errstate(invalid="ignore"):
            want = np.median(a)
        got = hk.median_exact(a)
        assert got == want or (np.isnan(want) and np.isnan(got)), (kind, len(a))


def test_small_heading_kernels_equal_numpy() -> None:
    rng = np.random.default_rng(4)
    m = 2000
    q = _random_quats(rng, m)
    mag = rng.normal(size=(m, 3)) * 40
    norm, negz, hor = np.empty((3, m))
    hk.mag_args(q, mag, norm, negz, hor)
    mw = quat_rotate(q, mag)
    np.testing.assert_array_equal(norm, np.linalg.norm(mag, axis=1))
    np.testing.assert_array_equal(negz, -mw[:, 2])
    np.testing.assert_array_equal(hor, np.sqrt(mw[:, 0] * mw[:, 0] + mw[:, 1] * mw[:, 1]))
    # anchor mask
    starts = np.array([0, 150, 900, 1950], dtype=np.int64)
    edges = np.zeros(m + 1, dtype=np.int64)
    np.add.at(edges, starts, 1)
    np.add.at(edges, np.minimum(starts + 200, m), -1)
    np.testing.assert_array_equal(hk.anchor_mask(starts, 200, m), np.cumsum(edges[:m]) > 0)
    # distance to the nearest window centre
    cs = np.sort(rng.uniform(-100, m + 100, size=7))
    t = np.arange(m, dtype=np.float64)
    j = np.searchsorted(cs, t)
    lo, hi = cs[np.clip(j - 1, 0, len(cs) - 1)], cs[np.clip(j, 0, len(cs) - 1)]
    dist = np.maximum(np.minimum(np.abs(t - lo), np.abs(t - hi)) / 100.0 - 4.0, 0.0)
    np.testing.assert_array_equal(hk.heading_conf_args(cs, m, 100.0, 4.0, 60.0), -dist / 60.0)
    # time since the last clean sample, on the samples that are not clean
    clean = rng.random(m) > 0.3
    clean[:5] = False
    idx = np.arange(m)
    last = np.maximum.accumulate(np.where(clean, idx, -1))
    since = np.where(last >= 0, (idx - last) / 100.0, np.inf)
    got_idx, got_args = hk.hold_args(clean, 100.0, 30.0)
    np.testing.assert_array_equal(got_idx, np.flatnonzero(~clean))
    np.testing.assert_array_equal(got_args, (-since / 30.0)[~clean])
    # clean mask
    dip = rng.normal(size=m)
    want = (np.abs(norm - 40.0) < 4.0) & (np.abs(dip - 0.1) < 0.08)
    np.testing.assert_array_equal(hk.mag_clean(norm, dip, 40.0, 4.0, 0.1, 0.08), want)
