"""imuhip.dsp against scipy.signal, the implementation it is written after.

Known answers from scipy itself (the reference library, imported here only): filter designs
to 1e-12 relative, filtered signals to 1e-9 of their scale, and the very same peaks (and
properties) on fixed and random signals: smooth noise, plateaus and ties (rounded values),
NaN gaps, every combination of the conditions the analysis uses.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.signal as ss

from imuhip import dsp


@pytest.mark.parametrize("order", [1, 2, 3, 4, 6])
@pytest.mark.parametrize("wn", [0.01, 0.06, 0.3, 0.5, 0.9])
def test_butter_lowpass_is_scipys_design(order: int, wn: float) -> None:
    b, a = dsp.butter_lowpass(order, wn)
    b_ref, a_ref = ss.butter(order, wn)
    np.testing.assert_allclose(b, b_ref, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(a, a_ref, rtol=1e-12, atol=1e-14)
    if order == 2:
        np.testing.assert_allclose(
            dsp.butter_lowpass_sos(wn), ss.butter(2, wn, output="sos"), rtol=1e-12
        )


def test_butter_lowpass_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="cut-off"):
        dsp.butter_lowpass(2, 1.0)
    with pytest.raises(ValueError, match="order"):
        dsp.butter_lowpass(0, 0.2)


def _signals(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    t = np.arange(n) / 100.0
    return [
        np.sin(2 * np.pi * 1.1 * t) + 0.2 * rng.normal(size=n),
        np.cumsum(rng.normal(size=n)),
        np.where(t > t[n // 2], 5.0, 0.0) + 0.01 * rng.normal(size=n),  # a step
        rng.normal(size=n) * 1e3,
    ]


@pytest.mark.parametrize("n", [16, 17, 50, 2001])
def test_filtfilt_is_scipys(n: int) -> None:
    for wn, x in itertools.product((0.05, 0.3, 0.95), _signals(n)):
        b, a = ss.butter(4, wn)
        ref = ss.filtfilt(b, a, x)
        got = dsp.filtfilt(b, a, x)
        assert np.max(np.abs(got - ref)) <= 1e-9 * max(1.0, np.max(np.abs(x)))


@pytest.mark.parametrize("n", [16, 50, 2001])
def test_sosfiltfilt_is_scipys_in_1d_and_along_axis_0(n: int) -> None:
    for wn in (0.02, 0.3, 0.9):
        sos = ss.butter(2, wn, output="sos")
        for x in _signals(n):
            ref = ss.sosfiltfilt(sos, x)
            assert np.max(np.abs(dsp.sosfiltfilt(sos, x) - ref)) <= 1e-9 * max(1.0, np.abs(x).max())
        x2 = np.stack(_signals(n)[:3], axis=1)  # (n, 3), filtered along time
        ref2 = ss.sosfiltfilt(sos, x2, axis=0)
        assert np.max(np.abs(dsp.sosfiltfilt(sos, x2, axis=0) - ref2)) <= 1e-9 * 1e3


def test_too_short_signals_are_refused_as_scipy_does() -> None:
    b, a = ss.butter(4, 0.2)
    with pytest.raises(ValueError, match="longer than 15"):
        dsp.filtfilt(b, a, np.zeros(15))
    with pytest.raises(ValueError):
        ss.filtfilt(b, a, np.zeros(15))
    sos = ss.butter(2, 0.2, output="sos")  # one section: 3 taps, 9 samples of padding
    with pytest.raises(ValueError, match="longer than 9"):
        dsp.sosfiltfilt(sos, np.zeros(9))
    with pytest.raises(ValueError):
        ss.sosfiltfilt(sos, np.zeros(9))
    assert dsp.sosfiltfilt(sos, np.ones(10)).shape == (10,)
    assert dsp.sosfiltfilt_padlen(sos) == 9 and dsp.filtfilt_padlen(b, a) == 15
    with pytest.raises(ValueError, match="a0 = 1"):
        dsp.sosfiltfilt(2.0 * sos, np.ones(50))


def _peak_signals() -> list[np.ndarray]:
    rng = np.random.default_rng(11)
    out = []
    for k in range(60):
        n = int(rng.integers(3, 600))
        x = np.convolve(rng.normal(size=n + 20), np.ones(int(rng.integers(1, 20))), "same")[:n]
        if k % 3 == 1:
            x = np.round(x)  # plateaus and ties of equal height
        if k % 5 == 2 and n > 10:
            x[rng.integers(0, n, 3)] = np.nan  # gaps
        out.append(x)
    out += [np.zeros(10), np.array([0.0, 1.0, 1.0, 1.0, 0.0]), np.array([1.0, 0.0, 1.0])]
    return out


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"height": 0.5},
        {"distance": 7},
        {"distance": 2.5},
        {"prominence": 1.0},
        {"height": 0.2, "distance": 5, "prominence": 0.2},
        {"height": 0.0, "distance": 10, "prominence": 0.0, "width": 3.0},
        {"width": 2.0},
    ],
)
def test_find_peaks_are_scipys(kw: dict) -> None:
    for x in _peak_signals():
        got, props = dsp.find_peaks(x, **kw)
        ref, ref_props = ss.find_peaks(x, **kw)
        np.testing.assert_array_equal(got, ref)
        for key in ("peak_heights", "prominences", "left_bases", "right_bases", "widths"):
            if key in ref_props:
                np.testing.assert_allclose(props[key], ref_props[key], rtol=1e-12, err_msg=key)


def test_find_peaks_refuses_bad_input() -> None:
    with pytest.raises(ValueError, match="distance"):
        dsp.find_peaks(np.zeros(10), distance=0.5)
    with pytest.raises(ValueError, match="1-D"):
        dsp.find_peaks(np.zeros((3, 3)))


@pytest.mark.parametrize("size", [1, 2, 3, 10, 301, 5000])
def test_moving_average_is_uniform_filter1d_nearest(size: int) -> None:
    from scipy.ndimage import uniform_filter1d

    for x in _signals(2001) + _peak_signals()[:10]:
        ref = uniform_filter1d(x, size, mode="nearest")
        np.testing.assert_array_equal(dsp.moving_average(x, size), ref)
    x2 = np.stack(_signals(500)[:3], axis=1)
    np.testing.assert_array_equal(
        dsp.moving_average(x2, size, axis=0), uniform_filter1d(x2, size, axis=0, mode="nearest")
    )
    with pytest.raises(ValueError, match="size"):
        dsp.moving_average(x2, 0)


def test_moving_std_is_the_windowed_population_std() -> None:
    """Away from the edges, each output is np.std of its centred window (odd and even sizes);
    a constant signal gives exact zeros (the clip), and 2-D runs per column."""
    rng = np.random.default_rng(5)
    x = rng.normal(0.0, 2.0, 400).cumsum()
    for size in (5, 8):
        got = dsp.moving_std(x, size)
        lo = size // 2
        for i in range(lo, len(x) - size):
            assert got[i] == pytest.approx(np.std(x[i - lo : i - lo + size]), rel=1e-6, abs=1e-9)
    assert np.all(dsp.moving_std(np.full(50, 9.81), 7) == 0.0)
    two = np.column_stack([x, -x])
    np.testing.assert_array_equal(dsp.moving_std(two, 5, axis=0)[:, 0], dsp.moving_std(x, 5))
