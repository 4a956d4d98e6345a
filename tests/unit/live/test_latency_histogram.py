"""LatencyHistogram: fixed memory, percentiles within its bin resolution of the exact ones."""

from __future__ import annotations

import math

import numpy as np

from imuhip.live.session import LatencyHistogram


def test_percentiles_match_exact_within_bin_resolution() -> None:
    rng = np.random.default_rng(3)
    ns = (rng.lognormal(math.log(2e6), 0.8, 50_000)).astype(np.int64)  # ~2 ms, heavy tail
    h = LatencyHistogram()
    size = h.counts.nbytes
    for v in ns.tolist():
        h.add(v)
    assert h.count == len(ns) and h.counts.nbytes == size  # nothing grows
    for q in (50, 90, 99):
        exact = float(np.percentile(ns, q, method="inverted_cdf"))
        assert abs(h.percentile(q) / exact - 1) < 10 ** (1 / 100) - 1 + 1e-9, q


def test_extremes_are_clamped_and_empty_is_nan() -> None:
    h = LatencyHistogram()
    assert math.isnan(h.percentile(50))
    h.add(0)
    h.add(10**15)  # 11.6 days
    assert h.counts[0] == 1 and h.counts[-1] == 1
    assert h.percentile(1) < 1.1e3 and h.percentile(100) > 0.9e12
