"""Round 3 (issue 9): compiled events / stride metrics / bootstrap / absorption phase.

The implementations these replaced are kept below as references (``_old_*``) and every new path
is checked against them: bit-identical (``==``), the same strides, exclusions and flags.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.signal import find_peaks, hilbert

from imuhip.gait import _gait_kernels as kg
from imuhip.gait.compensation import CompensationReference, compensation_index, side_index
from imuhip.gait.events import (
    EventConfig,
    Stride,
    _lowpass,
    detect_gait_events,
    segment_strides,
)
from imuhip.gait.metrics import (
    HIP_METRICS,
    TIMING_METRICS,
    _boot_means,
    asymmetry,
    session_metrics,
    stride_metrics,
    stride_metrics_many,
)
from imuhip.types import JointAngles

RATE = 100.0


# --------------------------------------------------------------------------------------------
# references: the code before round 3
# --------------------------------------------------------------------------------------------
def _old_local_period(peaks, k, rate_hz, cfg):
    d = []
    if k > 0:
        d.append(peaks[k] - peaks[k - 1])
    if k + 1 < len(peaks):
        d.append(peaks[k + 1] - peaks[k])
    period = min(d) / rate_hz if d else 1.1
    return float(np.clip(period, cfg.min_stride_s, cfg.max_stride_s))


def _old_thigh_events(t_s, w, cfg):
    """detect_gait_events(segment="thigh") before round 3 (per-peak Python loop)."""
    rate_hz = 1.0 / float(np.median(np.diff(t_s)))
    wf = _lowpass(np.nan_to_num(w), rate_hz, cfg.lowpass_hz)
    hi, lo = np.percentile(wf, [99.0, 1.0])
    if -lo > 1.5 * max(hi, 0.0):
        wf = -wf
    min_peak = cfg.swing_peak_min_rad_s * 0.5
    dist = max(1, int(0.6 * cfg.min_stride_s * rate_hz))
    peaks, _ = find_peaks(wf, height=min_peak, distance=dist, prominence=min_peak)
    ic, to = [], []
    n = len(wf)
    for k, p in enumerate(peaks):
        nxt = peaks[k + 1] if k + 1 < len(peaks) else n
        prv = peaks[k - 1] if k > 0 else -1
        after = np.flatnonzero(wf[p:nxt] <= 0)
        if len(after):
            zc = p + int(after[0])
            t_zc = float(np.interp(0.0, [wf[zc], wf[zc - 1]], [t_s[zc], t_s[zc - 1]]))
            period = _old_local_period(peaks, k, rate_hz, cfg)
            ic.append(t_zc + cfg.thigh_ic_offset_frac * period)
        period = _old_local_period(peaks, k, rate_hz, cfg)
        lo = max(prv + 1, p - int(0.5 * period * rate_hz), 0)
        if p - lo < 3:
            continue
        seg = wf[lo:p]
        before = np.flatnonzero(seg <= 0)
        if not len(before):
            continue
        zc = lo + int(before[-1])
        t_zc = float(np.interp(0.0, [wf[zc], wf[zc + 1]], [t_s[zc], t_s[zc + 1]]))
        to.append(t_zc + cfg.thigh_to_offset_frac * period)
    return np.asarray(ic), np.asarray(to), t_s[peaks]


def _runs(mask):
    """(start, stop) of the runs of True in ``mask``, half-open."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def _ref_first_step_ics(t_s, wf, peaks, rate_hz, cfg):
    """Independent reference of the thigh rule's first step out of standing (round 4).

    Written from the rule's description (``imuhip.gait.events._thigh_bout_start_ics``) with run
    tables instead of the implementation's index walks: a full swing that starts a bout; the
    deepest point before it (within one maximal stride); the run of positive samples before
    the negative run holding it (may begin at the window start, not at the recording start);
    its integral against ``thigh_first_step_min_frac`` x the median integral of the positive
    runs of the bout's next (up to 3) full swings; the contact: the last strict local maximum
    after the run's peak, else the most negative second difference over 30 ms.
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


def _old_longest_false_run(ok):
    if ok.all():
        return 0
    bad = np.concatenate([[0], (~ok).astype(np.int8), [0]])
    d = np.diff(bad)
    return int(np.max(np.flatnonzero(d == -1) - np.flatnonzero(d == 1)))


def _old_segment_strides(events, t_s, valid, heading_rad, cfg):
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
        if i1 <= i0 or _old_longest_false_run(valid[i0:i1]) > max_gap_n:
            reason = "gap"
        elif b - a > cfg.max_stride_s:
            reason = "standing"
        elif b - a < cfg.min_stride_s:
            reason = "too_short"
        elif abs(dh) > cfg.turn_max_deg:
            reason = "turning"
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


def _old_asymmetry(left, right, n_boot=2000, seed=0):
    """(right - left, CI low, CI high) with the fresh (n_boot, n) draws of the old code."""
    lv = np.asarray(left, float)
    rv = np.asarray(right, float)
    lv, rv = lv[np.isfinite(lv)], rv[np.isfinite(rv)]
    rng = np.random.default_rng(seed)
    bl = lv[rng.integers(0, len(lv), size=(n_boot, len(lv)))].mean(axis=1)
    br = rv[rng.integers(0, len(rv), size=(n_boot, len(rv)))].mean(axis=1)
    lo, hi = np.percentile(br - bl, [2.5, 97.5])
    return float(rv.mean() - lv.mean()), float(lo), float(hi)


_SIGN = {"right": -1.0, "left": 1.0}


def _old_absorption_phase(p_rad, h_rad, side, stance):
    if len(p_rad) < 8 or not stance.any():
        return float("nan")
    p = p_rad - np.mean(p_rad)
    h = _SIGN[side] * (h_rad - np.mean(h_rad))
    if np.ptp(p) < 1e-6 or np.ptp(h) < 1e-6:
        return float("nan")
    phi_p, phi_h = np.angle(hilbert(np.stack([p, h])))
    d = np.angle(np.exp(1j * (phi_p - phi_h)))
    return float(np.degrees(np.mean(np.abs(d[stance]))))


def _old_compensation_index(angles, strides, per_stride, ref):
    """compensation_index before round 3: per-stride masks, phases and log ratios."""
    out = {}
    with_lumbar = angles.lumbar_rad is not None
    for side in ("left", "right"):
        hip = angles.hip_rad[side]
        ratios, phases = [], []
        for s, m in zip(strides, per_stride, strict=True):
            if s.side != side or not s.valid or s.to_s is None:
                continue
            h = m["hip_rotation_excursion_deg"]
            trunk = m["pelvis_rotation_range_deg"]
            if with_lumbar:
                trunk += m["lumbar_rotation_range_deg"]
            if np.isfinite(h) and np.isfinite(trunk) and h > 0.1 and trunk > 0.1:
                ratios.append(float(np.log(trunk / h)))
            a, b = s.start_idx, max(s.start_idx, s.stop_idx)
            stance = angles.t_s[a:b] < s.to_s
            phases.append(
                _old_absorption_phase(angles.pelvis_rad[a:b, 0], hip[a:b, 2], side, stance)
            )
        res = side_index(side, ratios, phases, with_lumbar, ref)
        if res is not None:
            out[side] = res
    return out


# --------------------------------------------------------------------------------------------
# a synthetic walk: varying cadence, standing pauses, turns, lost samples, noise
# --------------------------------------------------------------------------------------------
def _walk(seed: int, dur_s: float = 240.0):
    rng = np.random.default_rng(seed)
    t = np.arange(int(dur_s * RATE)) / RATE
    period = 1.05 + 0.08 * np.sin(2 * np.pi * t / 37.0) + 0.02 * rng.standard_normal(len(t))
    phase = 2 * np.pi * np.cumsum(1.0 / period) / RATE
    walking = np.ones(len(t), bool)
    for a in rng.uniform(0, dur_s - 10, 4):  # standing pauses
        walking[int(a * RATE) : int((a + rng.uniform(2, 5)) * RATE)] = False
    amp = np.where(walking, 1.0, 0.05)
    w = {
        side: amp * (3.0 * np.maximum(np.sin(phase + off), -0.3) - 0.4)
        + 0.15 * rng.standard_normal(len(t))
        for side, off in (("left", 0.0), ("right", np.pi))
    }
    hip = {
        side: np.column_stack(
            [
                0.4 * np.sin(phase + off),
                0.05 * np.cos(phase + off),
                (0.09 + 0.02 * k) * np.sin(phase + off + 0.7) + 0.01 * rng.standard_normal(len(t)),
            ]
        )
        for k, (side, off) in enumerate((("left", 0.0), ("right", np.pi)))
    }
    pel = np.column_stack(
        [0.08 * np.sin(phase + 0.3), 0.05 * np.sin(2 * phase), 0.03 * np.cos(2 * phase)]
    ) + 0.005 * rng.standard_normal((len(t), 3))
    lum = 0.04 * np.column_stack([np.sin(phase), np.cos(phase), np.sin(phase + 1.0)])
    hip["right"][4000:4003, 2] = np.nan  # NaN angles inside a stride
    valid = np.ones(len(t), bool)
    for a in rng.integers(0, len(t) - 100, 12):
        valid[a : a + int(rng.integers(5, 60))] = False
    heading = np.cumsum(np.where(rng.uniform(size=len(t)) < 0.002, 1.0, 0.0)) * 0.6
    heading = np.convolve(heading, np.ones(150) / 150, mode="same")  # turns of ~35 deg
    angles = JointAngles(t, hip, pel, lum, valid)
    return t, w, angles, valid, heading


@pytest.fixture(scope="module", params=[1, 2])
def walk(request):
    t, w, angles, valid, heading = _walk(request.param)
    cfg = EventConfig()
    strides = []
    events = {}
    for side in ("left", "right"):
        events[side] = detect_gait_events(t, w[side], side=side, segment="thigh", cfg=cfg)
        strides += segment_strides(events[side], t, valid, heading, cfg)
    strides.sort(key=lambda s: (s.ic_s, s.side))
    return t, w, angles, valid, heading, cfg, events, strides


# --------------------------------------------------------------------------------------------
# events
# --------------------------------------------------------------------------------------------
def test_thigh_events_equal_python_loop(walk) -> None:
    t, w, *_, cfg, events, _ = walk
    for side in ("left", "right"):
        ic, to, peaks_s = _old_thigh_events(t, w[side], cfg)
        ev = events[side]
        assert len(ic) > 150 and len(to) > 150
        np.testing.assert_array_equal(ev.ic_s, ic)
        np.testing.assert_array_equal(ev.to_s, to)
        np.testing.assert_array_equal(ev.swing_peak_s, peaks_s)


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


@pytest.mark.parametrize("seed", [3, 4])
def test_thigh_first_steps_equal_reference(seed: int) -> None:
    t, w = _bouts(seed)
    cfg = EventConfig()
    n_first = 0
    for side in ("left", "right"):
        ev = detect_gait_events(t, w[side], side=side, segment="thigh", cfg=cfg)
        ic, to, peaks_s = _old_thigh_events(t, w[side], cfg)
        wf = _lowpass(np.nan_to_num(w[side]), RATE, cfg.lowpass_hz)
        peaks = np.searchsorted(t, peaks_s)
        first = _ref_first_step_ics(t, wf, peaks, RATE, cfg)
        np.testing.assert_array_equal(ev.bout_start_ic_s, first)
        np.testing.assert_array_equal(ev.ic_s, np.sort(np.concatenate([ic, first])))
        np.testing.assert_array_equal(ev.to_s, to)
        np.testing.assert_array_equal(ev.swing_peak_s, peaks_s)
        if side == "right":
            assert len(first) == 0  # the standing leg does not step first
        n_first += len(first)
        # the stride from a first step is gait initiation
        strides = segment_strides(ev, t, np.ones(len(t), bool), None, cfg)
        for s_ in strides:
            if s_.ic_s in set(first.tolist()):
                assert s_.exclusion == "standing"
    assert n_first >= 4  # every bout's first step (4-6 bouts)


def test_segment_strides_equal_loop(walk) -> None:
    t, _, _, valid, heading, cfg, events, _ = walk
    for side in ("left", "right"):
        ev = events[side]
        # drop some toe-offs (no_toe_off) and squeeze two ICs (too_short)
        ev2 = replace(
            ev, to_s=ev.to_s[::7].copy(), ic_s=np.sort(np.append(ev.ic_s, ev.ic_s[9] + 0.3))
        )
        for e in (ev, ev2):
            for h in (heading, None):
                got = segment_strides(e, t, valid, h, cfg)
                want = _old_segment_strides(e, t, valid, h, cfg)
                assert got == want
                reasons = {s.exclusion for s in got}
                if e is ev2 and h is not None:
                    assert {"gap", "standing", "turning", "no_toe_off", "too_short"} <= reasons
    one = replace(events["left"], ic_s=events["left"].ic_s[:1])
    assert segment_strides(one, t, valid, heading, cfg) == []


# --------------------------------------------------------------------------------------------
# stride metrics, session statistics, bootstrap
# --------------------------------------------------------------------------------------------
def test_stride_metrics_many_equals_per_stride_reference(walk) -> None:
    t, _, angles, *_, strides = walk
    n = len(t)
    extra = [
        replace(strides[0], stop_idx=strides[0].start_idx),  # empty
        replace(strides[1], stop_idx=n),  # to the last sample
        replace(strides[2], to_s=None),
        replace(strides[3], to_s=float(t[-1]) + 1.0),  # toe-off beyond the grid
        replace(strides[4], to_s=float(t[0]) - 1.0),
        replace(strides[5], to_s=float(t[100])),  # exactly on a sample
    ]
    allx = strides + extra
    got = stride_metrics_many(angles, allx)
    want = [stride_metrics(angles, s) for s in allx]
    assert len(got) == len(want)
    for g, w_ in zip(got, want, strict=True):
        assert list(g) == list(w_)  # same keys, same order
        np.testing.assert_array_equal(np.array(list(g.values())), np.array(list(w_.values())))


def test_session_asymmetry_equals_fresh_numpy_draws(walk) -> None:
    *_, strides = walk
    _, angles = walk[0], walk[2]
    per = stride_metrics_many(angles, strides)
    sm = session_metrics(strides, per, seed=3)
    assert len(sm.asymmetry) == len(HIP_METRICS) + len(TIMING_METRICS)
    for k, a in sm.asymmetry.items():
        left = [m[k] for s, m in zip(strides, per, strict=True) if s.valid and s.side == "left"]
        right = [m[k] for s, m in zip(strides, per, strict=True) if s.valid and s.side == "right"]
        assert (a.right_minus_left, a.ci95_low, a.ci95_high) == _old_asymmetry(left, right, seed=3)
        assert asymmetry(k, left, right, seed=3) == a


@pytest.mark.parametrize("n", [2, 7, 8, 9, 127, 128, 129, 136, 300, 1000, 3192])
def test_boot_means_blocks_equal_one_draw(n: int) -> None:
    rng = np.random.default_rng(n)
    vals = rng.normal(3.0, 2.0, (n, 3)) * np.array([1.0, 1e3, 1e-3])
    got = _boot_means(np.random.default_rng(7), vals, 500)
    idx = np.random.default_rng(7).integers(0, n, size=(500, n))
    for c in range(3):
        np.testing.assert_array_equal(got[:, c], vals[:, c][idx].mean(axis=1))


def test_pairwise_kernels_equal_numpy_sums() -> None:
    rng = np.random.default_rng(11)
    for n in [0, 1, 5, 8, 15, 16, 128, 129, 200, 1023, 4099, 70001]:
        x = rng.standard_normal(n) * 1e3 + 1.0
        assert kg._pairwise_sum(x, 0, n) == x.sum()
        d = rng.standard_normal((4, max(n, 1)))
        cnt = rng.integers(0, max(n, 1) + 1, 4)
        out = np.empty(4)
        kg.prefix_means(d, cnt, out)
        ref = [d[r, : cnt[r]].mean() if cnt[r] else np.nan for r in range(4)]
        np.testing.assert_array_equal(out, ref)


def test_stride_extrema_interp_and_runs_equal_numpy() -> None:
    rng = np.random.default_rng(12)
    x = rng.standard_normal((3000, 3))
    x[100, 1] = np.nan
    start = np.sort(rng.integers(0, 3000, 400))
    stop = np.minimum(start + rng.integers(0, 90, 400), 3000)
    hi, lo = np.empty(400), np.empty(400)
    kg.stride_extrema(x, 1, start, stop, hi, lo)
    for k in range(400):
        seg = x[start[k] : stop[k], 1]
        want = (np.max(seg), np.min(seg)) if len(seg) else (np.nan, np.nan)
        np.testing.assert_array_equal([hi[k], lo[k]], want)
    t = np.arange(3000) / 100.0
    xs = np.concatenate([rng.uniform(-1, 31, 300), t[::97], [t[0], t[-1]]])
    out = np.empty(len(xs))
    kg.interp_sorted(t, x, 0, xs, out)
    np.testing.assert_array_equal(out, [np.interp(v, t, x[:, 0]) for v in xs])
    ok = rng.uniform(size=3000) > 0.1
    runs = kg.longest_false_runs(ok, start, stop)
    np.testing.assert_array_equal(
        runs,
        [_old_longest_false_run(ok[a:b]) if b > a else 0 for a, b in zip(start, stop, strict=True)],
    )


# --------------------------------------------------------------------------------------------
# compensation
# --------------------------------------------------------------------------------------------
def test_compensation_index_equals_reference(walk) -> None:
    *_, strides = walk
    angles = walk[2]
    per = stride_metrics_many(angles, strides)
    ref = CompensationReference()
    got = compensation_index(angles, strides, per, ref)
    want = _old_compensation_index(angles, strides, per, ref)
    assert set(got) == set(want) == {"left", "right"}
    for side in got:
        g, w_ = got[side], want[side]
        assert (g.n_strides, g.flagged, g.with_lumbar) == (w_.n_strides, w_.flagged, w_.with_lumbar)
        for f in ("index", "ratio", "z_ratio", "phase_deg", "z_phase"):
            assert getattr(g, f) == pytest.approx(getattr(w_, f), abs=1e-9, rel=0), f
