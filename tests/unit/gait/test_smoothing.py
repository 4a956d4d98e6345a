"""The 6-Hz low-pass the per-stride hip rotation metrics are measured on (known answers).

Expected values come from the Butterworth magnitude response, not from the filter code: a
2nd-order digital Butterworth (bilinear transform) passes ``1 / sqrt(1 + (tan(pi f / fs) /
tan(pi fc / fs))**4)`` of a sinusoid's amplitude per pass, and forwards + backwards squares it.
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.gait.events import Stride
from imuhip.gait.metrics import stride_metrics, stride_metrics_many
from imuhip.gait.smoothing import ROTATION_LOWPASS_HZ, lowpass_finite_runs
from imuhip.types import JointAngles

RATE = 100.0


def _gain(f_hz: float, fc_hz: float = ROTATION_LOWPASS_HZ, fs: float = RATE) -> float:
    """Amplitude gain of the zero-phase (two-pass) 2nd-order Butterworth at ``f_hz``."""
    w = np.tan(np.pi * f_hz / fs) / np.tan(np.pi * fc_hz / fs)
    return float(1.0 / (1.0 + w**4))


def test_gain_matches_the_butterworth_response_in_pass_and_stop_band():
    t = np.arange(0, 20, 1 / RATE)
    for f in (1.0, 3.0, 6.0, 15.0):
        y = lowpass_finite_runs(np.sin(2 * np.pi * f * t), RATE, ROTATION_LOWPASS_HZ)
        mid = slice(500, 1500)  # away from the edges
        amp = (np.max(y[mid]) - np.min(y[mid])) / 2
        assert amp == pytest.approx(_gain(f), abs=0.01), f
    assert _gain(6.0) == pytest.approx(0.5)  # -6 dB at the cut-off after two passes


def test_each_finite_run_is_filtered_on_its_own():
    """A gap (NaN) splits the signal: a constant on each side stays that constant, nothing of
    one run leaks into the other, the gap stays NaN, and a run too short to pad is copied."""
    x = np.concatenate([np.zeros(300), np.full(50, np.nan), np.full(300, 10.0)])
    x = np.concatenate([x, [np.nan], [1.0, 5.0, 2.0], [np.nan]])
    y = lowpass_finite_runs(x, RATE, ROTATION_LOWPASS_HZ)
    np.testing.assert_allclose(y[:300], 0.0, atol=1e-9)
    assert np.isnan(y[300:350]).all()
    np.testing.assert_allclose(y[350:650], 10.0, atol=1e-9)
    np.testing.assert_array_equal(y[651:654], [1.0, 5.0, 2.0])
    assert np.isnan(y[650]) and np.isnan(y[654])
    np.testing.assert_array_equal(lowpass_finite_runs(x, RATE, 49.0)[:300], x[:300])  # ≥ Nyquist


def test_bad_rate_or_cutoff_is_refused():
    with pytest.raises(ValueError, match="rate_hz and cutoff_hz"):
        lowpass_finite_runs(np.zeros(100), 0.0, 6.0)


def _walk_with_wobble(wobble_deg: float) -> tuple[JointAngles, list[Stride]]:
    """1-s strides, hip rotation 2 + 5 sin(2 pi t) deg (excursion 10 deg) plus a 15-Hz wobble."""
    t = np.arange(0, 10, 1 / RATE)
    ir = np.radians(2.0 + 5.0 * np.sin(2 * np.pi * t) + wobble_deg * np.sin(2 * np.pi * 15 * t))
    flex = np.radians(20 * np.cos(2 * np.pi * t))
    hip = {"left": np.stack([flex, np.zeros_like(t), ir], axis=1)}
    ang = JointAngles(t, hip, None, None, np.ones_like(t, bool))
    strides = [
        Stride(
            "left",
            k,
            int((1 + k) * RATE),
            int((2 + k) * RATE),
            1.0 + k,
            2.0 + k,
            1.25 + k,
            0.0,
            None,
        )
        for k in range(7)
    ]
    return ang, strides


def test_a_soft_tissue_wobble_does_not_inflate_the_excursion():
    """A 3-deg 15-Hz wobble on a 10-deg rotation: the raw range reads ~16 deg, the metric the
    1-Hz rotation's 10 deg times the filter gain at 1 Hz (peaks likewise)."""
    ang, strides = _walk_with_wobble(3.0)
    many = stride_metrics_many(ang, strides)
    want = 10.0 * _gain(1.0) + 2 * 3.0 * _gain(15.0)  # at most the wobble's remnant on top
    for m in many:
        assert 10.0 * _gain(1.0) - 0.05 <= m["hip_rotation_excursion_deg"] <= want + 0.05
        assert m["hip_ir_peak_deg"] == pytest.approx(2.0 + 5.0, abs=0.15)
        assert m["hip_er_peak_deg"] == pytest.approx(5.0 - 2.0, abs=0.15)
        assert m["hip_ir_at_toe_off_deg"] == pytest.approx(7.0, abs=0.15)
        assert m["hip_flexion_range_deg"] == pytest.approx(40.0, abs=0.05)  # flexion as computed
    raw = stride_metrics_many(ang, strides, rotation_lowpass_hz=None)
    assert all(m["hip_rotation_excursion_deg"] > 15.0 for m in raw)
    one = [stride_metrics(ang, s) for s in strides]
    assert one == many  # the scalar and the vectorised path agree exactly
