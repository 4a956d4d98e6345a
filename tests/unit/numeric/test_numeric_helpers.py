"""`imuhip.numeric`: the helpers the kernel modules share, and their cache stamp."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

import imuhip.numeric as kc
from imuhip.conventions import quat_mul, quat_rotate
from imuhip.gait import _gait_kernels as kg
from imuhip.ingest import _align_kernels as ka
from imuhip.ingest import _decode_kernels as kd
from imuhip.ingest import _units_kernels as ku
from imuhip.orientation import _calib_kernels as kcal
from imuhip.orientation import _heading_kernels as hk


def test_quaternion_helpers_equal_conventions_bit_for_bit() -> None:
    rng = np.random.default_rng(3)
    p = rng.normal(size=(200, 4))
    q = rng.normal(size=(200, 4))
    q /= np.linalg.norm(q, axis=1)[:, None]
    v = rng.normal(size=(200, 3)) * 9.81
    want_mul = quat_mul(p, q)
    want_rot = quat_rotate(q, v)
    want_norm = np.linalg.norm(p, axis=1)  # row norms (conventions.quat_normalize's order)
    want_sq = np.sum(v * v, axis=1)
    for i in range(200):
        assert kc.quat_mul(*p[i], *q[i]) == tuple(want_mul[i])
        assert kc.quat_rotate(*q[i], *v[i]) == tuple(want_rot[i])
        assert kc.quat_norm(*p[i]) == want_norm[i]
        assert kc.sum_sq3(*v[i]) == want_sq[i]
    assert np.isnan(kc.quat_norm(np.nan, 0.0, 0.0, 1.0))
    assert kc.quat_norm(0.0, 0.0, 0.0, 0.0) == 0.0


@pytest.mark.parametrize("n", [0, 1, 7, 8, 128, 129, 136, 1000, 4099, 70001])
def test_pairwise_sum_and_plan_follow_numpy(n: int) -> None:
    rng = np.random.default_rng(n)
    x = rng.normal(size=n) * 1e3 + 0.1
    assert kc.pairwise_sum(x, 0, n) == x.sum()
    pad = np.concatenate([[1e300], x, [-1e300]])  # an offset run
    assert kc.pairwise_sum(pad, 1, n) == x.sum()
    if n > kc.PW_BLOCK:
        plan = kc.pairwise_plan(n)
        leaves = plan[plan[:, 1] > 0]
        # leaves in order, covering [0, n) once, each 64..128 long; one join per pair of them
        np.testing.assert_array_equal(
            leaves[:, 0], np.concatenate([[0], np.cumsum(leaves[:-1, 1])])
        )
        assert leaves[:, 1].sum() == n
        assert leaves[:, 1].min() >= 64 and leaves[:, 1].max() <= kc.PW_BLOCK
        assert len(plan) == 2 * len(leaves) - 1
    y = x.copy()
    if n > 3:
        y[n // 2] = np.inf
        assert kc.pairwise_sum(y, 0, n) == y.sum()
        y[n // 3] = np.nan
        assert np.isnan(kc.pairwise_sum(y, 0, n))


def test_interp2_equals_np_interp_including_edges() -> None:
    cases = [
        (0.5, 0.0, 1.0, 2.0, 4.0),
        (-1.0, 0.0, 1.0, 2.0, 4.0),
        (2.0, 0.0, 1.0, 2.0, 4.0),
        (1.0, 0.0, 1.0, 2.0, 4.0),
        (0.0, 0.0, 1.0, 2.0, 4.0),
        (0.3, 0.0, 1.0, np.inf, np.inf),
        (0.3, 0.0, 1.0, -np.inf, np.inf),
        (0.3, 0.0, 1.0, 5.0, np.nan),
        (np.nan, 0.0, 1.0, 2.0, 4.0),
        (1.0, 1.0, 1.0, 2.0, 4.0),  # x0 == x1: no division
        (0.7, 1e-300, 1e300, -1.0, 1.0),
    ]
    for x, x0, x1, y0, y1 in cases:
        want = np.interp(x, [x0, x1], [y0, y1])
        got = kc.interp2(x, x0, x1, y0, y1)
        assert got == want or (np.isnan(got) and np.isnan(want)), (x, x0, x1, y0, y1)


def test_every_kernel_module_is_cached_with_the_core_hash_in_its_stamp() -> None:
    # numba's cache would otherwise keep loading a caller compiled with an older helper
    core_hash = hashlib.sha256(Path(kc.__file__).read_bytes()).hexdigest()
    for kernel in (
        hk.median_exact,
        kg.prefix_means,
        kcal.sq_norm_rows,
        ka.all_finite,
        kd.crc32_ranges,
        ku.block_means,
        kc.pairwise_sum,
    ):
        locator = kernel._cache._impl.locator  # type: ignore[union-attr]
        assert type(locator).__name__.startswith("ImuhipKernels"), kernel
        stamp = locator.get_source_stamp()
        assert stamp[1] == core_hash
