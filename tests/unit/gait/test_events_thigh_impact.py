"""Thigh rule: the heel strike's jolt in the thigh's angular velocity (known answers).

A synthetic thigh rate (a sine: flexion positive, one stride per period) puts the normative IC at
maximal inclination + ``thigh_ic_offset_frac`` of the stride. A heel-strike jolt (a 1.5 rad/s
Gaussian dip, sigma 15 ms) placed 60 ms before that normative IC must move the IC to the jolt's
steepest fall; without a jolt, or with one below the sharpness gate, the normative IC stays.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.gait import _gait_kernels as _kg
from imuhip.gait.events import EventConfig, detect_gait_events

RATE = 100.0
T = 1.2  # stride, s
A = 2.5  # swing peak, rad/s
SIGMA = 0.015


def _signal(jolt_depth: float, lead_s: float = 0.06) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Time, thigh rate, and the true contacts (the jolt's steepest falls)."""
    t = np.arange(0.0, 30.0, 1.0 / RATE)
    w = A * np.sin(2.0 * np.pi * t / T)
    # + to - zero crossings of the sine (maximal inclination) at T/2 + k T
    zc = np.arange(T / 2, t[-1] - T, T)
    ic_norm = zc + EventConfig().thigh_ic_offset_frac * T
    ic_true = ic_norm - lead_s
    # a Gaussian dip falls fastest sigma/sqrt(2) before its centre
    centres = ic_true + SIGMA / np.sqrt(2.0)
    for c in centres:
        w = w - jolt_depth * np.exp(-0.5 * ((t - c) / SIGMA) ** 2)
    return t, w, ic_true


def _steady(ic: np.ndarray) -> np.ndarray:
    return ic[(ic > 2.0) & (ic < 27.0)]


def test_the_jolt_moves_the_contact_to_its_steepest_fall() -> None:
    t, w, truth = _signal(1.5)
    ev = detect_gait_events(t, w, side="left", segment="thigh")
    got = _steady(ev.ic_s)
    want = _steady(truth)
    assert len(got) == len(want) > 15
    err = got - want
    assert np.max(np.abs(err)) <= 0.011, err  # one sample at 100 Hz (+ rounding)


def test_without_a_jolt_the_normative_contact_stays() -> None:
    t, w, truth = _signal(0.0)
    on = detect_gait_events(t, w, side="left", segment="thigh")
    off = detect_gait_events(
        t,
        w,
        side="left",
        segment="thigh",
        cfg=dataclasses.replace(EventConfig(), thigh_impact_min_sharpness=None),
    )
    np.testing.assert_array_equal(on.ic_s, off.ic_s)
    # and the normative IC is 60 ms after where the jolt would have been
    np.testing.assert_allclose(_steady(on.ic_s) - _steady(truth), 0.06, atol=0.011)


def test_a_jolt_below_the_gate_is_not_taken() -> None:
    # 0.05 rad/s over ~20 ms: ~2.5 rad/s^2, one per second of a 2.5 rad/s swing, below the
    # gate of 5 per second
    t, w, _ = _signal(0.05)
    on = detect_gait_events(t, w, side="left", segment="thigh")
    t0, w0, _ = _signal(0.0)
    ref = detect_gait_events(t0, w0, side="left", segment="thigh")
    np.testing.assert_allclose(on.ic_s, ref.ic_s, atol=0.011)


def test_a_narrow_spike_is_not_a_swing() -> None:
    """A 3 rad/s spike with sigma 12 ms (a knock on the sensor; a jolt's rebound on a weak
    step) in 5 s of standing before the walk is not a swing peak: after the 8 Hz low-pass it is
    ~0.07 s wide at half prominence, a swing >= 0.14 s. Without the width limit it is taken
    for a swing and an IC is made of it (at 2.89 s)."""
    t, w, _ = _signal(1.5)
    w = np.where(t < 5.0, 0.0, w)  # standing, then walking
    w = w + 3.0 * np.exp(-0.5 * ((t - 2.5) / 0.012) ** 2)
    on = detect_gait_events(t, w, side="left", segment="thigh")
    off = detect_gait_events(
        t,
        w,
        side="left",
        segment="thigh",
        cfg=dataclasses.replace(EventConfig(), thigh_swing_min_width_s=None),
    )
    # the sine's swing peaks (T/4 + k T) and nothing in the standing
    np.testing.assert_allclose(on.swing_peak_s[:4], [5.1, 6.3, 7.5, 8.7], atol=0.05)
    assert on.ic_s.min() > 5.0
    assert abs(off.swing_peak_s[0] - 2.5) < 0.05 and off.ic_s.min() < 5.0


def test_a_late_jolt_of_a_slow_step_is_found_in_the_extended_search() -> None:
    # the jolt 0.55 s after maximal inclination (a thigh held forward in a slow step): past
    # thigh_impact_search_s (0.45 s), within thigh_impact_search_frac of the 1.2-s stride (0.6 s)
    late = EventConfig().thigh_ic_offset_frac * T - 0.55
    t, w, truth = _signal(1.5, lead_s=late)
    ev = detect_gait_events(t, w, side="left", segment="thigh")
    np.testing.assert_allclose(_steady(ev.ic_s), _steady(truth), atol=0.011)
    short = dataclasses.replace(EventConfig(), thigh_impact_search_frac=0.3)  # 0.36 s: none
    ev = detect_gait_events(t, w, side="left", segment="thigh", cfg=short)
    t0, w0, _ = _signal(0.0)
    ref = detect_gait_events(t0, w0, side="left", segment="thigh")
    np.testing.assert_allclose(ev.ic_s, ref.ic_s, atol=0.011)  # the normative contacts


def test_a_jolt_in_the_first_window_wins_over_a_sharper_one_after_it() -> None:
    # the heel strike (1.5 rad/s, 60 ms before the normative IC) and a sharper dip 0.55 s after
    # maximal inclination (the loading response out-ranked a heel strike once on a real trial
    # when the whole longer window was searched): the first window's jolt is the contact
    t, w, truth = _signal(1.5)
    late_c = np.arange(T / 2, t[-1] - T, T) + 0.55
    for c in late_c:
        w = w - 3.0 * np.exp(-0.5 * ((t - c) / SIGMA) ** 2)
    ev = detect_gait_events(t, w, side="left", segment="thigh")
    np.testing.assert_allclose(_steady(ev.ic_s), _steady(truth), atol=0.011)


def _two_vs(second_at: int = 51) -> tuple[np.ndarray, ...]:
    """A thigh rate at 100 Hz (piecewise linear, rad/s): maximal inclination at sample 10 after a
    1.0 rad/s swing; the heel strike's V (0.3 -> -0.8 over samples 40-44), its rebound's
    overshoot (+0.9 at 48) and the overshoot's fall into a second V (-1.9) at ``second_at``,
    which recovers to the stance's -1.0 over 5 samples (real gaittoolbox right thigh at 17.02
    s: V -0.3, spike +0.9, second V -1.9, back to -1.0 within 50 ms)."""
    n = 140
    t = np.arange(n) / RATE
    wf = np.full(n, -1.0)
    wf[:10] = np.linspace(1.0, 0.1, 10)
    pts = [(10, 0.3), (40, 0.3), (44, -0.8), (48, 0.9), (second_at, -1.9)]
    pts += [(second_at + 5, -1.0), (n - 1, -1.0)]
    wm = np.interp(np.arange(n), [i for i, _ in pts], [v for _, v in pts])
    return t, wf, wm, np.gradient(wm)


def _impact(t, wf, wm, dm, rebound_n: int) -> float:
    """The kernel on one normative IC at 0.9 s (gate 5 x the 1.0 rad/s swing; V half-width 10
    samples; search 45, extended 60), rebound fraction 0.5."""
    out = _kg.thigh_impact_ics(
        t,
        wf,
        wm,
        dm,
        np.array([10]),
        np.array([0.9]),
        10,
        45,
        np.array([60]),
        RATE,
        5.0,
        rebound_n,
        0.5,
    )
    return float(out[0])


def test_the_heel_strikes_v_wins_over_the_sharper_fall_of_its_rebound() -> None:
    """Sharpness (the smaller mean slope into and out of a V, rad/s^2): the heel strike's V 11
    (1.1 over 10 samples in, 42 out), the overshoot's V 18 (93 in, 18 out). Without the rule
    the sharpest is taken: its steepest fall at 0.49-0.50 s (~+80 ms, what the real trial
    gave). With it (thigh_impact_rebound_s 0.1 s = 10 samples) the first V passes the gate (5)
    and half the best (9), 7 samples earlier: the contact is its steepest fall at 0.41 s. With
    a window of 5 samples it is outside, and the sharpest stays the choice."""
    t, wf, wm, dm = _two_vs()
    assert _impact(t, wf, wm, dm, 0) in (0.49, 0.50)
    assert _impact(t, wf, wm, dm, 10) == 0.41
    assert _impact(t, wf, wm, dm, 5) in (0.49, 0.50)  # 7 samples apart: outside 5
    # through the detector's config: the rule's defaults, and off
    cfg = EventConfig()
    assert cfg.thigh_impact_rebound_s == 0.1 and cfg.thigh_impact_rebound_frac == 0.5
    with pytest.raises(ValueError, match="thigh_impact_rebound_s"):
        dataclasses.replace(cfg, thigh_impact_rebound_s=0.5)
