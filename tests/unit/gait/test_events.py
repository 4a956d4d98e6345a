"""Gait events and strides on synthetic angular-velocity signals with known events."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import butter, filtfilt

from imuhip.gait.events import (
    EventConfig,
    SideEvents,
    Stride,
    detect_gait_events,
    segment_strides,
)
from tests.unit.gait._synthetic_walk import synthetic_walk

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


def test_thigh_first_step_cut_by_the_heel_strike_jolt_is_found():
    # the first step's heel strike jolts the thigh while it still swings forward: the jolt's
    # fall (extension first, a damped 7 Hz rotation as on real legs) dips below zero and its
    # rebound leaves a short positive run before the stance. That run is no swing; the step's
    # forward lobe is the one before it (realistic simulator: 3 of 12 walkers lost their first
    # left contact to this)
    t, w, ic = _gait_initiation(0.22, 200.0)
    i0 = int(np.searchsorted(t, ic[0]))
    pk = i0 - 200 + int(np.argmax(w[i0 - 200 : i0]))
    k = pk + int(np.argmax(w[pk:i0] < 0.6 * w[pk]))  # on the lobe's way down
    d = t - t[k]
    w = w + np.where(d >= 0, -0.4 * np.sin(2 * np.pi * 7 * d) * np.exp(-d / 0.08), 0.0)
    assert (w[k : k + 14] < 0).any() and (w[k + 14 : k + 26] > 0).any()  # dip, then rebound
    ev = detect_gait_events(t, w, side="left", segment="thigh")
    assert len(ev.bout_start_ic_s) == 1
    assert abs(ev.bout_start_ic_s[0] - t[k]) < 0.05  # at the jolt, the contact


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


# ---------------------------------------------------------------------------------------------
# the first step out of standing against an independent reading of the rule
# ---------------------------------------------------------------------------------------------


def _bouts(seed: int, dur_s: float = 120.0):
    """Thigh signals of walks that start from and end in standing (smooth 1.5 s ramps of the
    amplitude and of the mean posture), the left leg stepping first, noise, varying cadence."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur_s * RATE)) / RATE
    a = np.zeros(len(t))
    phase = np.zeros(len(t))
    f = 1.0 / rng.uniform(0.95, 1.2)
    on = 3.0
    while on < dur_s - 20.0:
        off = on + rng.uniform(12.0, 20.0)
        x1 = np.clip((t - on) / 1.5, 0, 1)
        x2 = np.clip((t - off + 1.5) / 1.5, 0, 1)
        ab = x1 * x1 * (3 - 2 * x1) - x2 * x2 * (3 - 2 * x2)
        a += ab
        # each bout: the left thigh starts near maximal flexion (phase 0.25)
        phase += np.where((t >= on) & (t < off + 0.5), 0.25 + f * np.cumsum(ab) / RATE, 0.0)
        on = off + rng.uniform(3.0, 6.0)
    w = {}
    for side, off in (("left", 0.0), ("right", 0.5)):
        theta = a * (0.35 * np.sin(2 * np.pi * (phase + off)) + 0.12)
        w[side] = np.gradient(theta, t) + 0.01 * rng.standard_normal(len(t))
    return t, w


def _runs(mask):
    """(start, stop) of the runs of True in ``mask``, half-open."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _first_step_ics_from_runs(t_s, wf, peaks, rate_hz, cfg):
    """The thigh rule's first step out of standing, written from its description with run
    tables (``EventConfig.thigh_first_step_min_frac``, ``imuhip.gait.events._thigh_rule``), not
    from the implementation's index walks.

    A full swing that starts a bout; the deepest point before it (within one maximal stride);
    the run of positive samples before the negative run holding it (may begin at the window
    start, not at the recording start); its integral against ``thigh_first_step_min_frac`` x the
    median integral of the positive runs of the bout's next (up to 3) full swings; the contact:
    the last strict local maximum after the run's peak, else the most negative second difference
    over ``thigh_first_step_shoulder_s``.
    """
    max_n = int(cfg.max_stride_s * rate_hz)
    pos_a, pos_b = _runs(wf > 0)
    out = []
    for k, p0 in enumerate(peaks):
        if k > 0 and p0 - peaks[k - 1] <= max_n:
            continue
        lo = max(0, p0 - max_n, peaks[k - 1] + 1 if k > 0 else 0)
        if p0 - lo < 3:
            continue
        m = lo + int(np.argmin(wf[lo:p0]))
        if wf[m] > 0:
            continue
        # positive runs that end before m, inside the window; the last one, if only <= 0
        # samples lie between its end and m
        j = np.flatnonzero((pos_b <= m) & (pos_b > lo))
        if not len(j):
            continue
        a, b = int(pos_a[j[-1]]), int(pos_b[j[-1]])
        if np.any(wf[b:m] > 0) or a == 0:
            continue
        a = max(a, lo)
        ref = []
        for i in range(k, min(k + 3, len(peaks))):
            if i > k and peaks[i] - peaks[i - 1] > max_n:
                break
            r = np.flatnonzero((pos_a <= peaks[i]) & (pos_b > peaks[i]))
            ra, rb = int(pos_a[r[0]]), int(pos_b[r[0]])
            if ra > 0 and rb < len(wf):
                ref.append(wf[ra:rb].sum() / rate_hz)
        if not ref or wf[a:b].sum() / rate_hz < cfg.thigh_first_step_min_frac * np.median(ref):
            continue
        pk = a + int(np.argmax(wf[a:b]))
        x = wf[pk:b]
        if len(x) < 3:
            continue
        is_max = [i for i in range(1, len(x) - 1) if x[i] > x[i - 1] and x[i] >= x[i + 1]]
        if is_max:
            out.append(t_s[pk + is_max[-1]])
            continue
        h = max(1, round(cfg.thigh_first_step_shoulder_s * rate_hz))
        cand = list(range(max(pk, h), min(b - 1, len(wf) - 1 - h) + 1))
        if not cand:
            continue
        c2 = [wf[i + h] - 2.0 * wf[i] + wf[i - h] for i in cand]
        out.append(t_s[cand[int(np.argmin(c2))]])
    return np.asarray(out, dtype=np.float64)


@pytest.mark.parametrize("seed", [3, 4])
def test_thigh_first_step_contacts_follow_the_documented_rule(seed: int) -> None:
    t, w = _bouts(seed)
    cfg = EventConfig()
    off = replace(cfg, thigh_first_step_min_frac=None)
    b, a = butter(4, min(cfg.lowpass_hz / (RATE / 2.0), 0.95))  # the rule's zero-lag low-pass
    n_first = 0
    for side in ("left", "right"):
        ev = detect_gait_events(t, w[side], side=side, segment="thigh", cfg=cfg)
        ev_off = detect_gait_events(t, w[side], side=side, segment="thigh", cfg=off)
        peaks = np.searchsorted(t, ev.swing_peak_s)
        first = _first_step_ics_from_runs(t, filtfilt(b, a, w[side]), peaks, RATE, cfg)
        np.testing.assert_array_equal(ev.bout_start_ic_s, first)
        # the first-step contacts are added to the steady contacts, nothing else changes
        np.testing.assert_array_equal(ev.ic_s, np.sort(np.concatenate([ev_off.ic_s, first])))
        np.testing.assert_array_equal(ev.to_s, ev_off.to_s)
        np.testing.assert_array_equal(ev.swing_peak_s, ev_off.swing_peak_s)
        if side == "right":
            assert len(first) == 0  # the standing leg does not step first
        n_first += len(first)
        # the stride from a first step is gait initiation
        strides = segment_strides(ev, t, np.ones(len(t), bool), None, cfg)
        for s_ in strides:
            if s_.ic_s in set(first.tolist()):
                assert s_.exclusion == "standing"
    assert n_first >= 4  # every bout's first step (4-6 bouts)


# ---------------------------------------------------------------------------------------------
# strides against the exclusion rules applied one stride at a time
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=[1, 2])
def walk(request):
    return synthetic_walk(request.param)


def _longest_false_run(ok):
    if ok.all():
        return 0
    bad = np.concatenate([[0], (~ok).astype(np.int8), [0]])
    d = np.diff(bad)
    return int(np.max(np.flatnonzero(d == -1) - np.flatnonzero(d == 1)))


def _strides_one_at_a_time(events, t_s, valid, heading_rad, cfg):
    """``segment_strides`` as its docstring states it, one stride after the other: the first
    toe-off inside, the heading change, the exclusion priority gap > standing (starting at a
    bout's first contact) > too_short > turning > standing (longer than ``max_stride_s``) >
    no_toe_off, then outliers against the median valid stride time."""
    ic = np.sort(events.ic_s)
    to = np.sort(events.to_s)
    rate_hz = 1.0 / float(np.median(np.diff(t_s))) if len(t_s) > 1 else 1.0
    max_gap_n = round(cfg.max_gap_s * rate_hz)
    out = []
    for k in range(len(ic) - 1):
        a, b = float(ic[k]), float(ic[k + 1])
        i0 = int(np.searchsorted(t_s, a, side="left"))
        i1 = min(int(np.searchsorted(t_s, b, side="left")), len(t_s))
        inside = to[(to > a) & (to < b)]
        to_k = float(inside[0]) if len(inside) else None
        dh = 0.0
        if heading_rad is not None and i1 > i0:
            h = heading_rad[i0:i1]
            dh = float(np.degrees(h[-1] - h[0]))
        reason = None
        if i1 <= i0 or _longest_false_run(valid[i0:i1]) > max_gap_n:
            reason = "gap"
        elif a in set(events.bout_start_ic_s):
            reason = "standing"  # gait initiation (the first step out of standing)
        elif b - a < cfg.min_stride_s:
            reason = "too_short"
        elif abs(dh) > cfg.turn_max_deg:
            reason = "turning"  # also a long one: a turn with a contact missed
        elif b - a > cfg.max_stride_s:
            reason = "standing"  # a stop
        elif to_k is None:
            reason = "no_toe_off"
        out.append(Stride(events.side, k, i0, i1, a, b, to_k, dh, reason))
    ok = [s.stride_time_s for s in out if s.valid]
    if ok:
        med = float(np.median(ok))
        out = [
            replace(s, exclusion="outlier")
            if s.valid and abs(s.stride_time_s - med) > cfg.outlier_frac * med
            else s
            for s in out
        ]
    return out


def test_segment_strides_equal_the_rules_applied_one_stride_at_a_time(walk) -> None:
    t, _, _, valid, heading, cfg, events, _ = walk
    for side in ("left", "right"):
        ev = events[side]
        # drop some toe-offs (no_toe_off), squeeze two ICs (too_short) and mark a first step
        # out of standing (standing, whatever the stops of the walk turned)
        ev2 = replace(
            ev,
            to_s=ev.to_s[::7].copy(),
            ic_s=np.sort(np.append(ev.ic_s, ev.ic_s[9] + 0.3)),
            bout_start_ic_s=np.array([ev.ic_s[4]]),
        )
        for e in (ev, ev2):
            for h in (heading, None):
                got = segment_strides(e, t, valid, h, cfg)
                want = _strides_one_at_a_time(e, t, valid, h, cfg)
                assert got == want
                reasons = {s.exclusion for s in got}
                if e is ev2 and h is not None:
                    assert {"gap", "standing", "turning", "no_toe_off", "too_short"} <= reasons
    one = replace(events["left"], ic_s=events["left"].ic_s[:1])
    assert segment_strides(one, t, valid, heading, cfg) == []
