"""The compiled loops of the gait stage (``imuhip/gait/_gait_kernels.py``) equal plain numpy."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from imuhip import numeric
from imuhip.gait import _gait_kernels as kg


def _longest_false_run(ok: np.ndarray) -> int:
    return max((len(list(g)) for v, g in itertools.groupby(ok.tolist()) if not v), default=0)


def test_pairwise_sums_and_prefix_means_equal_numpy() -> None:
    rng = np.random.default_rng(11)
    for n in [0, 1, 5, 8, 15, 16, 128, 129, 200, 1023, 4099, 70001]:
        x = rng.standard_normal(n) * 1e3 + 1.0
        assert kg._pairwise_sum(x, 0, n) == x.sum()
        d = rng.standard_normal((4, max(n, 1)))
        cnt = rng.integers(0, max(n, 1) + 1, 4)
        out = np.empty(4)
        kg.prefix_means(d, cnt, out)
        ref = [d[r, : cnt[r]].mean() if cnt[r] else np.nan for r in range(4)]
        np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("n", [1, 7, 8, 9, 127, 128, 129, 400, 1000, 1600, 4099])
def test_pairwise_sum_of_mixed_magnitudes_equals_numpy_sum(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) * 10.0 ** rng.integers(-6, 6, size=n)
    assert numeric.pairwise_sum(x, 0, n) == np.add.reduce(x)


def test_stride_extrema_interp_and_runs_equal_numpy() -> None:
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3000, 3))
    x[100, 1] = np.nan
    start = np.sort(rng.integers(0, 3000, 400))
    stop = np.minimum(start + rng.integers(0, 90, 400), 3000)
    hi, lo = np.empty(400), np.empty(400)
    kg.stride_extrema(x, 1, start, stop, hi, lo)
    for k in range(400):
        seg = x[start[k] : stop[k], 1]
        want = (np.max(seg), np.min(seg)) if len(seg) else (np.nan, np.nan)
        np.testing.assert_array_equal([hi[k], lo[k]], want)
    t = np.arange(3000) / 100.0
    xs = np.concatenate([rng.uniform(-1, 31, 300), t[::97], [t[0], t[-1]]])
    out = np.empty(len(xs))
    kg.interp_sorted(t, x, 0, xs, out)
    np.testing.assert_array_equal(out, [np.interp(v, t, x[:, 0]) for v in xs])
    ok = rng.uniform(size=3000) > 0.1
    runs = kg.longest_false_runs(ok, start, stop)
    np.testing.assert_array_equal(
        runs,
        [_longest_false_run(ok[a:b]) if b > a else 0 for a, b in zip(start, stop, strict=True)],
    )
