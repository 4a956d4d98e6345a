"""The speed-ups made for ``imuhip bench`` give exactly the results of the code they replaced."""

from __future__ import annotations

import binascii
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from imuhip.gait.metrics import asymmetry, stride_metrics, stride_metrics_many
from imuhip.ingest.align import _window_minima
from imuhip.ingest.decode import crc16_many
from imuhip.orientation.fusion._inputs import fill_invalid

REPO = Path(__file__).resolve().parents[3]


def _window_minima_lexsort(t: np.ndarray, r: np.ndarray, window_s: float) -> tuple:
    win = np.floor(t / window_s).astype(np.int64)
    order = np.lexsort((t, r, win))
    w_sorted = win[order]
    first = np.concatenate([[True], w_sorted[1:] != w_sorted[:-1]])
    pick = order[first]
    return win[pick], t[pick], r[pick]


def test_window_minima_fast_path_equals_lexsort() -> None:
    rng = np.random.default_rng(3)
    for _ in range(200):
        n = int(rng.integers(2, 2000))
        t = np.cumsum(rng.uniform(1e-4, 0.02, n))
        r = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # many ties
        ws = float(rng.uniform(0.01, 2.0))
        got = _window_minima(t, r, ws)
        want = _window_minima_lexsort(t, r, ws)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)
    # not increasing: the general path still answers
    t = np.array([0.0, 0.5, 0.4, 1.2])
    r = np.array([1.0, 0.0, 0.0, 2.0])
    for g, w in zip(_window_minima(t, r, 1.0), _window_minima_lexsort(t, r, 1.0), strict=True):
        np.testing.assert_array_equal(g, w)


def test_fill_invalid_interp_equals_full_interpolation() -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        x = rng.normal(size=(n, 3))
        valid = rng.uniform(size=n) < rng.uniform(0.05, 1.0)
        valid[int(rng.integers(0, n))] = True
        good = np.flatnonzero(valid)
        want = np.stack([np.interp(np.arange(n), good, x[good, k]) for k in range(3)], axis=1)
        np.testing.assert_array_equal(fill_invalid(x, valid, "interp"), want)


@pytest.mark.parametrize("rows", [0, 1, 3, 255, 256, 700])
@pytest.mark.parametrize("length", [11, 12, 189])
def test_crc16_many_equals_binascii(rows: int, length: int) -> None:
    data = np.random.default_rng(rows + length).integers(0, 256, (rows, length), dtype=np.uint8)
    want = [binascii.crc_hqx(r.tobytes(), 0xFFFF) for r in data]
    got = crc16_many(data)
    assert got.dtype == np.uint16
    np.testing.assert_array_equal(got, np.asarray(want, dtype=np.uint16))


def test_asymmetry_bootstrap_unchanged_for_normal_sessions() -> None:
    rng = np.random.default_rng(5)
    left, right = rng.normal(10, 1, 3000), rng.normal(10.5, 1, 3001)
    a = asymmetry("x", left, right)
    r = np.random.default_rng(0)
    bl = left[r.integers(0, len(left), size=(2000, len(left)))].mean(axis=1)
    br = right[r.integers(0, len(right), size=(2000, len(right)))].mean(axis=1)
    lo, hi = np.percentile(br - bl, [2.5, 97.5])
    assert (a.ci95_low, a.ci95_high) == (lo, hi)


def test_asymmetry_bootstrap_of_very_long_sessions_is_sane() -> None:
    rng = np.random.default_rng(6)
    left, right = rng.normal(10, 1, 9000), rng.normal(10.5, 1, 9000)  # 18 M draws: blocks
    a = asymmetry("x", left, right)
    se = np.sqrt(2 / 9000)
    assert a.ci95_low < a.right_minus_left < a.ci95_high
    assert a.ci95_high - a.ci95_low == pytest.approx(2 * 1.96 * se, rel=0.1)


@pytest.mark.parametrize("name", ["typical", "with_lumbar"])
def test_stride_metrics_many_equals_per_stride(name: str) -> None:
    from imuhip.pipeline import analyze_recording

    res = analyze_recording(REPO / "recordings" / f"{name}.imrec")
    strides = list(res.strides)
    # edge cases: an empty stride, one reaching the last sample, no toe-off
    n = len(res.angles.t_s)
    strides += [
        replace(strides[0], stop_idx=strides[0].start_idx),
        replace(strides[1], stop_idx=n),
        replace(strides[2], to_s=None),
    ]
    many = stride_metrics_many(res.angles, strides)
    one = [stride_metrics(res.angles, s) for s in strides]
    assert len(many) == len(one)
    for a, b in zip(many, one, strict=True):
        assert list(a) == list(b)
        for k in a:
            assert a[k] == b[k] or (np.isnan(a[k]) and np.isnan(b[k])), k
