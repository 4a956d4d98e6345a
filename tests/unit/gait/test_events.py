"""Gait events and strides on synthetic angular-velocity signals with known events."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.gait.events import (
    EventConfig,
    SideEvents,
    detect_gait_events,
    segment_strides,
)

RATE = 100.0


def _shank_signal(stride_s: float, n_strides: int, stance: float = 0.6, seed: int = 0):
    """Shank ML angular velocity: dips exactly at IC and TO, a swing bump between TO and IC."""
    t = np.arange(0, stride_s * n_strides + 1.0, 1 / RATE)
    phase = (t % stride_s) / stride_s
    w = np.zeros_like(t)
    sw = (phase > stance + 0.02) & (phase < 0.98)
    w[sw] = 5.0 * np.sin(np.pi * (phase[sw] - stance - 0.02) / (0.96 - stance))
    for centre, depth in ((0.0, 2.0), (1.0, 2.0), (stance, 2.5)):
        w -= depth * np.exp(-(((phase - centre) * stride_s / 0.025) ** 2))
    w += np.random.default_rng(seed).normal(0, 0.05, len(t))
    ic = np.arange(n_strides + 1) * stride_s
    to = ic[:-1] + stance * stride_s
    return t, w, ic, to


def _match(found: np.ndarray, truth: np.ndarray, tol_s: float = 0.1) -> np.ndarray:
    err = []
    for x in truth:
        if len(found):
            d = found - x
            j = np.argmin(np.abs(d))
            if abs(d[j]) <= tol_s:
                err.append(d[j])
    return np.asarray(err)


def test_shank_events_found_with_timing():
    t, w, ic, to = _shank_signal(1.1, 12)
    ev = detect_gait_events(t, w, side="right", segment="shank")
    inner_ic = ic[(ic > 0.5) & (ic < t[-1] - 0.5)]
    inner_to = to[(to > 0.5) & (to < t[-1] - 0.5)]
    e_ic = _match(ev.ic_s, inner_ic)
    e_to = _match(ev.to_s, inner_to)
    assert len(e_ic) >= 0.98 * len(inner_ic)
    assert len(e_to) >= 0.98 * len(inner_to)
    assert np.median(np.abs(e_ic)) <= 0.02
    assert np.median(np.abs(e_to)) <= 0.02
    # no spurious events
    assert len(ev.ic_s) <= len(ic)
    assert ev.source == "shank_gyro"


def test_thigh_fallback_offsets_applied():
    stride = 1.0
    t = np.arange(0, 12, 1 / RATE)
    # thigh flexion angle peaks at 0.88 of the cycle, minimum at 0.5
    theta = 0.35 * np.cos(2 * np.pi * ((t / stride) - 0.88))
    w = np.gradient(theta, t)
    cfg = EventConfig(thigh_ic_offset_frac=0.12, thigh_to_offset_frac=0.1)
    ev = detect_gait_events(t, w, side="left", segment="thigh", cfg=cfg)
    ic_truth = np.arange(1, 12) * stride  # IC = max flexion + 0.12 T = 1.0 T
    to_truth = np.arange(0, 12) * stride + 0.38 + 0.1
    assert np.median(np.abs(_match(ev.ic_s, ic_truth))) < 0.02
    assert np.median(np.abs(_match(ev.to_s, to_truth))) < 0.02


def test_standing_yields_no_events_and_long_stride_excluded():
    t, w, _, _ = _shank_signal(1.0, 20)
    still = (t > 8) & (t < 12)
    w[still] = np.random.default_rng(1).normal(0, 0.05, still.sum())
    ev = detect_gait_events(t, w, side="right")
    assert not np.any((ev.ic_s > 8.5) & (ev.ic_s < 11.5))
    strides = segment_strides(ev, t, np.ones_like(t, bool))
    reasons = [s.exclusion for s in strides]
    assert "standing" in reasons
    valid = [s for s in strides if s.valid]
    assert all(0.9 < s.stride_time_s < 1.1 for s in valid)
    assert all(s.stance_frac is not None and 0.55 < s.stance_frac < 0.65 for s in valid)


def test_exclusion_reasons_gap_turn_outlier():
    t = np.arange(0, 12, 0.01)
    ic = np.array([0.5, 1.5, 2.5, 3.5, 4.5, 6.5, 7.5, 8.5, 9.5])
    ev = SideEvents("left", "test", ic, ic[:-1] + 0.6, ic[:-1] + 0.8)
    valid = np.ones_like(t, bool)
    valid[(t > 1.7) & (t < 2.1)] = False  # 400 ms gap in stride 1 (several lost packets)
    valid[(t > 3.7) & (t < 3.72)] = False  # 20 ms: tolerated
    heading = np.where(t > 7.5, np.radians(60) * np.clip(t - 7.5, 0, 1), 0.0)
    s = segment_strides(ev, t, valid, heading, EventConfig(max_stride_s=3.0))
    got = [x.exclusion for x in s]
    assert got[1] == "gap"
    assert got[3] is None
    assert got[4] == "outlier"  # 2.0 s vs median 1.0 s
    assert got[6] == "turning"
    assert got[0] is None and got[7] is None
    assert s[6].heading_change_deg == pytest.approx(60, abs=1.5)


def test_bad_input_named():
    with pytest.raises(ValueError, match="omega_ml_rad_s"):
        detect_gait_events(np.arange(10.0), np.zeros(9), side="left")
    with pytest.raises(ValueError, match="segment"):
        detect_gait_events(np.arange(10.0), np.zeros(10), side="left", segment="foot")
    with pytest.raises(ValueError, match="outlier_frac"):
        EventConfig(outlier_frac=1.5)


def _gait_initiation(first_phase: float, rate: float = RATE, ramp_s: float = 1.5):
    """Thigh ML angular velocity of a walk out of standing: amplitude and mean posture ramp
    in over ``ramp_s`` (smoothstep), the phase rate with the amplitude (the simulator's model),
    so the leg that starts near maximal flexion makes a slow, weak first forward swing."""
    t = np.arange(0, 20, 1 / rate)
    x = np.clip((t - 3.0) / ramp_s, 0, 1)
    a = x * x * (3 - 2 * x)
    phase = first_phase + np.cumsum(a) / rate / 1.1  # 1.1 s strides once walking
    theta = a * (0.35 * np.sin(2 * np.pi * phase) + 0.12)
    w = np.gradient(theta, t) + np.random.default_rng(5).normal(0, 0.01, len(t))
    # IC 0.147 cycles after maximal flexion (phase 0.25 of the sine): the thigh rule's phases
    k = np.arange(0, 30)
    ic_phase = 0.25 + 0.147 + k
    ic = np.interp(ic_phase, phase, t, left=np.nan, right=np.nan)
    ic = ic[np.isfinite(ic) & (np.interp(ic, t, a) > 0.05)]
    return t, w, ic


@pytest.mark.parametrize("rate", [100.0, 200.0])
def test_thigh_first_step_out_of_standing_found(rate: float):
    # the left thigh starts just before maximal flexion: its first contact comes after a
    # weak forward swing that the swing-peak threshold does not see
    t, w, ic = _gait_initiation(0.22, rate)
    ev = detect_gait_events(t, w, side="left", segment="thigh")
    assert len(ev.bout_start_ic_s) == 1
    assert abs(ev.bout_start_ic_s[0] - ic[0]) < 0.15
    assert ev.bout_start_ic_s[0] in ev.ic_s
    found = _match(ev.ic_s, ic, tol_s=0.15)
    assert len(found) == len(ic)  # every contact, the first included
    off = EventConfig(thigh_first_step_min_frac=None)
    ev_off = detect_gait_events(t, w, side="left", segment="thigh", cfg=off)
    assert len(_match(ev_off.ic_s, ic, tol_s=0.15)) == len(ic) - 1  # what the rule adds
    # steady strides: the same contacts with and without the rule
    np.testing.assert_array_equal(np.setdiff1d(ev.ic_s, ev.bout_start_ic_s), ev_off.ic_s)
    np.testing.assert_array_equal(ev.to_s, ev_off.to_s)
    # the first stride is gait initiation, not steady walking
    strides = segment_strides(ev, t, np.ones_like(t, bool))
    assert strides[0].ic_s == ev.bout_start_ic_s[0]
    assert strides[0].exclusion == "standing"
    assert all(s.valid for s in strides[1:-1])


def test_thigh_standing_leg_gets_no_first_step():
    # the other leg starts near maximal extension: it stands, then swings; no contact before
    # its first stance is invented
    t, w, ic = _gait_initiation(0.72)
    ev = detect_gait_events(t, w, side="right", segment="thigh")
    assert len(ev.bout_start_ic_s) == 0
    assert ev.ic_s[0] > ev.to_s[0]  # the first event is the first toe-off
    assert len(_match(ev.ic_s, ic, tol_s=0.15)) == len(ic) == len(ev.ic_s)


def test_thigh_no_events_while_standing_with_sway():
    # quiet standing with slow postural sway (0.2 Hz, ~1 deg) and noise: no events at all
    t = np.arange(0, 60, 1 / RATE)
    rng = np.random.default_rng(2)
    w = 0.02 * np.cos(2 * np.pi * 0.2 * t) + rng.normal(0, 0.02, len(t))
    ev = detect_gait_events(t, w, side="left", segment="thigh")
    assert len(ev.ic_s) == 0 and len(ev.to_s) == 0 and len(ev.bout_start_ic_s) == 0


def test_thigh_first_step_config_checked():
    with pytest.raises(ValueError, match="thigh_first_step_min_frac"):
        EventConfig(thigh_first_step_min_frac=0.0)
    with pytest.raises(ValueError, match="thigh_first_step_shoulder_s"):
        EventConfig(thigh_first_step_shoulder_s=0.0)


def test_config_for_segment_trusts_a_clear_calibration_sign() -> None:
    from imuhip.gait.events import config_for_segment
    from imuhip.types import SegmentCalibration

    def segcal(quality: dict) -> SegmentCalibration:
        return SegmentCalibration(q_sensor_segment={}, method={}, quality=quality, warnings=())

    cfg = EventConfig()
    clear = segcal({"shank_r": {"sign_score": 4.2}})
    weak = segcal({"shank_r": {"sign_score": 0.8}})
    assert config_for_segment(cfg, clear, "shank_r").auto_sign is False
    assert config_for_segment(cfg, weak, "shank_r").auto_sign is True
    # no score (a stored or assumed calibration) or the option off: unchanged
    assert config_for_segment(cfg, segcal({}), "shank_r") is cfg
    off = EventConfig(trust_calibration_sign_score=None)
    assert config_for_segment(off, clear, "shank_r") is off
    with pytest.raises(ValueError, match="trust_calibration_sign_score"):
        EventConfig(trust_calibration_sign_score=0.0)


def test_trusted_sign_keeps_a_correct_signal_with_a_deep_toe_off_dip() -> None:
    """A slow walker's toe-off dip can exceed the swing peak by > 1.5x: auto_sign would negate
    the (correct) signal and find no events; a clear calibration sign keeps it."""
    from imuhip.gait.events import detect_gait_events

    rate, stride_s = 200.0, 1.2
    t = np.arange(0, 30, 1 / rate)
    ph = (t % stride_s) / stride_s

    # swing peak +5 rad/s at 80 %, toe-off dip -10 rad/s at 60 %, a sharp heel-strike dip at
    # 0 % on the descent into the loading-response trough (10 %)
    def bump(c: float, sd: float) -> np.ndarray:
        d = (ph - c + 0.5) % 1.0 - 0.5  # periodic distance in phase
        return np.exp(-((d / sd) ** 2))

    w = 5.0 * bump(0.8, 0.06) - 10.0 * bump(0.6, 0.04) - 3.0 * bump(0.0, 0.008)
    w -= 1.5 * bump(0.08, 0.1)
    flipped = detect_gait_events(t, w, side="right", segment="shank")
    kept = detect_gait_events(t, w, side="right", segment="shank", cfg=EventConfig(auto_sign=False))
    assert flipped.inverted
    assert not kept.inverted
    n_strides = int(30 / stride_s)
    assert len(kept.ic_s) >= n_strides - 2
    # the IC is the heel-strike dip at the stride boundary, the TO the dip at 60 %
    ic = kept.ic_s[kept.ic_s < t[-1] - 0.2]  # the last dip is cut off by the record's end
    ic_phase = (ic % stride_s) / stride_s
    assert np.all(np.minimum(ic_phase, 1 - ic_phase) < 0.03)
    to_phase = (kept.to_s % stride_s) / stride_s
    assert np.all(np.abs(to_phase - 0.6) < 0.03)
