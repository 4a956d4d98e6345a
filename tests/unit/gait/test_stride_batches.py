"""Batched stride computations equal the per-stride ones.

The absorption phase of many strides at once equals ``absorption_phase_deg`` stride by stride; the
asymmetry bootstrap with indices shared between metrics equals fresh draws per metric.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.parametrize("side", ["left", "right"])
def test_absorption_phases_grouped_equal_per_stride(side: str) -> None:
    from imuhip.gait.compensation import _absorption_phases_deg, absorption_phase_deg

    rng = np.random.default_rng(4 if side == "left" else 5)
    n = 20_000
    t = np.arange(n) / 100.0
    pel = np.column_stack([0.1 * np.sin(2 * np.pi * t / 1.1) + 0.01 * rng.normal(size=n)] * 3)
    hip = 0.2 * np.sin(2 * np.pi * t / 1.1 + 1.0) + 0.02 * rng.normal(size=n)
    pel[5000:5200, 0] = 0.3  # flat pelvis: nan
    hip[9000:9010] = np.nan  # invalid samples inside a stride
    bounds, stances = [], []
    a = 0
    while a < n - 200:
        k = int(rng.choice([4, 9, 105, 110, 110, 111, 140]))  # many equal lengths, some short
        bounds.append((a, min(a + k, n)))
        stance = np.zeros(bounds[-1][1] - a, bool)
        stance[: int(rng.integers(0, len(stance) + 1))] = True  # some with no stance
        stances.append(stance)
        a += k
    got = _absorption_phases_deg(pel[:, 0].copy(), hip, side, bounds, stances)
    want = [
        absorption_phase_deg(pel[a:b, 0], hip[a:b], side, st)
        for (a, b), st in zip(bounds, stances, strict=True)
    ]
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert np.isfinite(want).sum() > 100 and np.isnan(want).sum() > 5


def test_asymmetry_shared_bootstrap_indices_equal_fresh_draws() -> None:
    from imuhip.gait.asymmetry import _asymmetry, asymmetry

    rng = np.random.default_rng(2)
    cache: dict = {}
    for k in range(12):
        left = rng.normal(10, 2, 300 + 40 * (k % 3))
        right = rng.normal(11, 2, 280)
        if k % 4 == 1:
            left[::17] = np.nan  # fewer finite strides: another key
        got = _asymmetry(f"m{k}", left, right, 2000, 0, cache)
        assert got == asymmetry(f"m{k}", left, right, seed=0)
    assert 1 < len(cache) < 12  # indices were shared between metrics
