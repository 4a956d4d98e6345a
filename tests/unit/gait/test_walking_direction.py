"""The walking direction and the pelvis heading oscillation against plain numpy and scipy.

The references are the straightforward computations: the period from the peak of a zero-padded
``np.fft.rfft`` of the unwrapped, detrended heading; the direction from ``uniform_filter1d`` of
the horizontal pelvis anterior axis weighted by validity, gaps filled from the nearest good
sample. The module computes the same numbers with compiled passes and a chirp-z band spectrum.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.ndimage import uniform_filter1d

from imuhip.conventions import as_unit_quat, quat_from_axis_angle, quat_rotate
from imuhip.gait.joints import segment_orientation
from imuhip.gait.walking_direction import (
    _band_power,
    heading_oscillation_period_s,
    walking_direction,
)
from tests.unit._walk_sessions import drifting_walk
from tests.unit._walk_synth import DEG, make_walk

_UP = np.array([0.0, 0.0, 1.0])


def _period_by_padded_rfft(
    q_world_pelvis: npt.ArrayLike,
    rate_hz: float,
    valid: npt.ArrayLike | None = None,
    band_hz: tuple[float, float] = (0.5, 2.5),
) -> float | None:
    qp = as_unit_quat("q_world_pelvis", q_world_pelvis)
    n = len(qp)
    if qp.ndim != 2 or n < 4 * rate_hz:
        return None
    fwd = quat_rotate(qp, np.array([1.0, 0.0, 0.0]))
    ok = np.hypot(fwd[:, 0], fwd[:, 1]) > 1e-3
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    if ok.sum() < 4 * rate_hz:
        return None
    idx = np.arange(n)
    psi = np.unwrap(np.arctan2(fwd[ok, 1], fwd[ok, 0]))
    psi = np.interp(idx, idx[ok], psi)
    # remove turns and drift (slower than any gait rhythm)
    psi = psi - uniform_filter1d(psi, max(1, round(3.0 * rate_hz)), mode="nearest")
    if np.std(psi) < np.deg2rad(0.25):  # standing still: no gait rhythm to lock onto
        return None
    nfft = 1 << int(np.ceil(np.log2(8 * n)))
    spec = np.abs(np.fft.rfft(psi * np.hanning(n), nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / rate_hz)
    band = (f >= band_hz[0]) & (f <= band_hz[1])
    if not band.any():
        return None
    k = np.argmax(np.where(band, spec, 0.0))
    if spec[k] < 10.0 * np.median(spec[band]) or spec[k] <= 0:
        return None
    return float(1.0 / f[k])


def _direction_by_uniform_filter(
    q_world_pelvis: npt.ArrayLike,
    rate_hz: float,
    window_s: float = 2.2,
    valid: npt.ArrayLike | None = None,
) -> np.ndarray:
    qp = as_unit_quat("q_world_pelvis", q_world_pelvis)
    fwd = quat_rotate(qp, np.array([1.0, 0.0, 0.0]))
    fwd[:, 2] = 0.0
    w = np.ones(len(qp)) if valid is None else np.asarray(valid, dtype=np.float64)
    size = max(1, round(window_s * rate_hz))
    num = uniform_filter1d(fwd * w[:, None], size=size, axis=0, mode="nearest")
    den = uniform_filter1d(w, size=size, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        avg = num / den[:, None]
    n = np.linalg.norm(avg, axis=1)
    bad = ~(np.isfinite(n) & (n > 1e-6))
    if np.all(bad):
        raise ValueError("no valid pelvis samples with a horizontal anterior axis")
    if np.any(bad):  # fill from the nearest good sample
        idx = np.where(~bad)[0]
        near = idx[np.clip(np.searchsorted(idx, np.arange(len(n))), 0, len(idx) - 1)]
        avg[bad] = avg[near[bad]]
        n[bad] = n[near[bad]]
    return np.asarray(avg / n[:, None], dtype=np.float64)


def test_walking_direction_and_period_equal_the_numpy_computations() -> None:
    ori, segcal = drifting_walk(3, with_mag=True, gaps=True, disturb=False)
    qp = segment_orientation(ori.q_world_sensor["pelvis"], segcal.q_sensor_segment["pelvis"])
    v = ori.valid["pelvis"]
    for valid in (None, v):
        p_got = heading_oscillation_period_s(qp, ori.rate_hz, valid)
        assert p_got is not None
        assert p_got == _period_by_padded_rfft(qp, ori.rate_hz, valid)
        for win in (2.2, 2 * p_got):
            np.testing.assert_array_equal(
                walking_direction(qp, ori.rate_hz, win, valid),
                _direction_by_uniform_filter(qp, ori.rate_hz, win, valid),
            )
    # all-invalid stretches longer than the window are filled from the next good sample
    v2 = v.copy()
    v2[:400] = False
    np.testing.assert_array_equal(
        walking_direction(qp, ori.rate_hz, 2.2, v2),
        _direction_by_uniform_filter(qp, ori.rate_hz, 2.2, v2),
    )
    with pytest.raises(ValueError, match="no valid pelvis"):
        walking_direction(qp, ori.rate_hz, 2.2, np.zeros(len(qp), bool))
    assert heading_oscillation_period_s(qp[:300], ori.rate_hz) is None  # too short
    still = np.tile(qp[:1], (2000, 1))
    assert heading_oscillation_period_s(still, ori.rate_hz) is None  # standing
    assert _period_by_padded_rfft(still, ori.rate_hz) is None


def _fft_band(x: np.ndarray, nfft: int, rate_hz: float, band_hz: tuple[float, float]):
    spec = np.abs(np.fft.rfft(x, nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / rate_hz)
    band = (f >= band_hz[0]) & (f <= band_hz[1])
    return f[band], spec[band]


@pytest.mark.parametrize("n", [800, 4097, 30_000])
def test_band_power_equals_padded_rfft(n: int) -> None:
    rng = np.random.default_rng(n)
    rate = 100.0
    t = np.arange(n) / rate
    x = np.sin(2 * np.pi * 0.93 * t) + 0.3 * np.sin(2 * np.pi * 1.86 * t) + rng.normal(size=n)
    x *= np.hanning(n)
    nfft = 1 << int(np.ceil(np.log2(8 * n)))
    for band in ((0.5, 2.5), (0.0, 50.0), (0.37, 0.41)):
        got = _band_power(x, nfft, rate, band)
        assert got is not None
        f_want, p_want = _fft_band(x, nfft, rate, band)
        np.testing.assert_array_equal(got[0], f_want)
        np.testing.assert_allclose(got[1], p_want, rtol=0, atol=1e-9 * p_want.max())
        assert np.argmax(got[1]) == np.argmax(p_want)
    assert _band_power(x, nfft, rate, (60.0, 70.0)) is None  # above Nyquist


@pytest.mark.parametrize("cadence_spm", [80, 96, 104, 112, 124, 140])
def test_oscillation_period_is_the_known_stride_period(cadence_spm: float) -> None:
    """Noisy pelvis yaw oscillation of a known stride period: the same period as the padded FFT
    and within half a bin (plus the window's leakage) of the truth."""
    rate = 100.0
    rng = np.random.default_rng(cadence_spm)
    stride_s = 120.0 / cadence_spm
    n = 12_000
    t = np.arange(n) / rate
    yaw = (
        0.3 * t / 60  # slow drift
        + 6 * DEG * np.sin(2 * np.pi * t / stride_s)
        + 1.5 * DEG * np.sin(4 * np.pi * t / stride_s + 1.0)
        + 1.0 * DEG * rng.normal(size=n)
    )
    q = quat_from_axis_angle(_UP, yaw)
    got = heading_oscillation_period_s(q, rate)
    assert got is not None
    assert got == _period_by_padded_rfft(q, rate)
    assert abs(got - stride_s) < 0.01 * stride_s


def test_oscillation_period_of_simulated_walks_is_their_stride_period() -> None:
    for seed, stride_s in ((0, 1.1), (1, 0.95), (2, 1.3)):
        _, _, truth = make_walk(rate_hz=100.0, walk_s=30.0, stride_s=stride_s, seed=seed)
        qp = truth["q_world_pelvis"]
        got = heading_oscillation_period_s(qp, 100.0)
        assert got == _period_by_padded_rfft(qp, 100.0)
        assert got is not None and abs(got - stride_s) < 0.02 * stride_s
