"""ClockTracker in bounded memory: equal to fit_clock on the same points at its window length."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.ingest.align import ClockTracker, fit_clock


def _points(duration_s: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    # 20 packets/s, host = 3.2 s + (1 + 35 ppm) t + one-sided bursty BLE latency
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, duration_s, 0.05) + 1234.0
    lat = 0.0075 + rng.exponential(0.012, len(t)) + (rng.random(len(t)) < 0.05) * 0.1
    return t, 3.2 + (1 + 35e-6) * t + lat


def test_tracker_is_exact_until_full_then_equals_coarser_windows() -> None:
    t, h = _points(600.0)  # 1200 base windows of 0.5 s
    full = ClockTracker()
    small = ClockTracker(max_anchors=100)
    for k in range(0, len(t), 3):  # chunk by chunk, as the live path feeds it
        full.update(t[k : k + 3], h[k : k + 3])
        small.update(t[k : k + 3], h[k : k + 3])
    ref = fit_clock(t, h)
    m = full.model
    assert m is not None and full.level == 0 and full.n_anchors == 1200
    assert m == ref  # same windows, same estimator: identical
    # 1200 windows into 100 slots: coarsened 4 times (8 s windows; 600 s from t = 1234 s
    # touch 76 of them)
    assert small.level == 4
    assert small.n_anchors == len(np.unique(np.floor(t / 8.0))) == 76
    ms = small.model
    coarse = fit_clock(t, h, window_s=0.5 * 2**4)
    assert ms is not None
    assert ms.offset_s == pytest.approx(coarse.offset_s, abs=1e-12)
    assert ms.drift_ppm == pytest.approx(coarse.drift_ppm, abs=1e-9)
    assert ms.n_anchors == coarse.n_anchors
    # and the coarse envelope is the same clock within the BLE latency floor
    assert abs(ms.drift_ppm - 35.0) < 2.0 and abs(ref.drift_ppm - 35.0) < 2.0
    assert abs(ms.offset_s - ref.offset_s) < 1e-3


def test_tracker_storage_does_not_grow_and_handles_out_of_order_windows() -> None:
    t, h = _points(300.0, seed=1)
    perm = np.arange(len(t))
    perm[100:110] = perm[100:110][::-1]  # reordered packets: older windows arrive late
    tr = ClockTracker(max_anchors=64)
    arrays = (tr._win, tr._t, tr._r)
    for k in perm:
        tr.update(t[k], h[k])
        assert tr.n_anchors <= 64
    assert (tr._win, tr._t, tr._r) == arrays  # the same preallocated buffers
    m, ref = tr.model, fit_clock(t, h, window_s=0.5 * 2**tr.level)
    assert m is not None and m.offset_s == pytest.approx(ref.offset_s, abs=1e-12)
    assert m.drift_ppm == pytest.approx(ref.drift_ppm, abs=1e-9)
    with pytest.raises(ValueError, match="max_anchors"):
        ClockTracker(max_anchors=4)
