"""Round 3 of the ``imuhip bench`` speed-ups (H3): clock alignment, fusion overhead around vqf,
segment calibration. Each gives the results of the code it replaced, kept here as the reference.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from imuhip.align import AlignConfig, _window_minima, align_session, fit_clock
from imuhip.types import AlignedSensor, AlignedSession, ClockModel, DecodeStats, ImuSamples

# ---------------------------------------------------------------------------------------------
# references: imuhip.align before round 3 (numpy searchsorted/take, Python hull loop)
# ---------------------------------------------------------------------------------------------
_EXACT_S = 1e-9


def _window_minima_ref(t, r, window_s):
    win = np.floor(t / window_s).astype(np.int64)
    if len(t) > 1 and bool(np.all(np.diff(t) > 0)):
        starts = np.flatnonzero(np.concatenate([[True], win[1:] != win[:-1]]))
        mins = np.minimum.reduceat(r, starts)
        hit = np.flatnonzero(r == np.repeat(mins, np.diff(np.append(starts, len(r)))))
        run_of_hit = np.searchsorted(starts, hit, side="right") - 1
        first_hit = np.concatenate([[True], run_of_hit[1:] != run_of_hit[:-1]])
        pick = hit[first_hit]
        return win[pick], t[pick], r[pick]
    order = np.lexsort((t, r, win))
    w_sorted = win[order]
    first = np.concatenate([[True], w_sorted[1:] != w_sorted[:-1]])
    pick = order[first]
    return win[pick], t[pick], r[pick]


def _lower_hull_ref(x, y):
    hull: list[int] = []
    for i in range(len(x)):
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            cross = (x[b] - x[a]) * (y[i] - y[a]) - (y[b] - y[a]) * (x[i] - x[a])
            if cross <= 0:
                hull.pop()
            else:
                break
        hull.append(i)
    return hull


def _fit_minima_ref(t, r, t_mean, min_span_s, drift_prior):
    order = np.argsort(t, kind="stable")
    t, r = t[order] - t_mean, r[order]
    span = float(t[-1] - t[0]) if len(t) else 0.0
    if len(t) >= 4 and span >= min_span_s:
        h = len(t) // 2
        b0 = (np.median(r[h:]) - np.median(r[:h])) / (np.median(t[h:]) - np.median(t[:h]))
        e = r - b0 * t
        med = float(np.median(e))
        mad = float(np.median(np.abs(e - med))) * 1.4826
        keep = e >= med - max(6.0 * mad, 0.005)
        t, r = t[keep], r[keep]
        hull = _lower_hull_ref(t, r)
        xs, ys = t[hull], r[hull]
        if len(hull) == 1:
            b, a = 0.0, float(ys[0])
        else:
            k = int(np.clip(np.searchsorted(xs, 0.0, side="right") - 1, 0, len(hull) - 2))
            b = float((ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]))
            a = float(ys[k] - b * xs[k])
    else:
        b = drift_prior
        a = float(np.min(r - b * t))
    res = r - (a + b * t)
    jitter = float(np.median(np.abs(res - np.median(res)))) * 1.4826 if len(res) else 0.0
    return a, b, jitter, len(t)


def _fit_clock_ref(t_dev_s, host_rx_s, window_s=0.5, min_span_s=10.0):
    t = np.asarray(t_dev_s, np.float64).ravel()
    h = np.asarray(host_rx_s, np.float64).ravel()
    ok = np.isfinite(t) & np.isfinite(h)
    t, h = t[ok], h[ok]
    _, tw, rw = _window_minima_ref(t, h - t, window_s)
    t_mean = float(np.mean(t))
    a, b, jitter, n_used = _fit_minima_ref(tw, rw, t_mean, min_span_s, 0.0)
    return ClockModel(
        offset_s=a - b * t_mean, drift_ppm=b * 1e6, residual_jitter_s=jitter, n_anchors=n_used
    )


def _finite_rows_ref(s):
    ok = np.isfinite(s.t_dev_s)
    for a in (s.acc_m_s2, s.gyr_rad_s, s.mag_ut):
        if a is not None:
            ok &= np.isfinite(a).all(axis=1)
    return ok


def _resample_ref(x, idx, bad, t, max_fill_gap_s):
    n = len(x)
    j = np.searchsorted(x, t, side="right") - 1
    jc = np.clip(j, 0, max(n - 2, 0))
    if n == 1:
        return np.zeros(len(t), np.int64), np.zeros(len(t)), np.abs(t - x[0]) <= _EXACT_S
    x0, x1 = x[jc], x[jc + 1]
    w = np.clip((t - x0) / (x1 - x0), 0.0, 1.0)
    inside = (j >= 0) & (j <= n - 2)
    consecutive = (idx[jc + 1] - idx[jc]) == 1
    good_pair = ~bad[jc] & ~bad[jc + 1]
    valid = inside & consecutive & good_pair
    on0 = (np.abs(t - x0) <= _EXACT_S) & ~bad[jc]
    on1 = (np.abs(t - x1) <= _EXACT_S) & ~bad[jc + 1]
    valid |= on0 | on1
    w = np.where(on0, 0.0, np.where(on1, 1.0, w))
    long_gap = inside & ~consecutive & ((x1 - x0) > max_fill_gap_s)
    w = np.where(long_gap, np.rint(w), w)
    return jc, w, valid


def _interp_ref(v, j, w):
    if len(v) == 1:
        return np.repeat(v, len(j), axis=0)
    return v[j] * (1.0 - w)[:, None] + v[j + 1] * w[:, None]


def _align_session_ref(samples, cfg, t0_ns=None):
    if t0_ns is None:
        t0_ns = min(int(s.host_rx_ns.min()) for s in samples.values())
    rates = [s.rate_hz for s in samples.values()]
    rate = float(cfg.rate_hz) if cfg.rate_hz is not None else max(rates)
    prepared = {}
    lo, hi = math.inf, -math.inf
    for name in sorted(samples):
        s = samples[name]
        ok = _finite_rows_ref(s)
        host_s = (s.host_rx_ns - np.int64(t0_ns)) * 1e-9
        clock = _fit_clock_ref(s.t_dev_s[ok], host_s[ok], window_s=cfg.clock_window_s)
        t_sess = clock.to_session(s.t_dev_s[ok])
        prepared[name] = (s, ok, t_sess, clock)
        lo, hi = min(lo, float(t_sess[0])), max(hi, float(t_sess[-1]))
    k_lo = math.ceil(lo * rate - 1e-6)
    k_hi = math.floor(hi * rate + 1e-6)
    t_s = np.arange(k_lo, k_hi + 1, dtype=np.float64) / rate
    out = {}
    for name, (s, ok, t_sess, clock) in prepared.items():
        idx = s.sample_idx[ok]
        bad = s.saturated[ok] if cfg.saturated_invalid else np.zeros(len(idx), np.bool_)
        j, w, valid = _resample_ref(t_sess, idx, bad, t_s, cfg.max_fill_gap_s)
        out[name] = AlignedSensor(
            placement=s.placement,
            acc_m_s2=_interp_ref(s.acc_m_s2[ok], j, w),
            gyr_rad_s=_interp_ref(s.gyr_rad_s[ok], j, w),
            mag_ut=_interp_ref(s.mag_ut[ok], j, w) if s.mag_ut is not None else None,
            valid=valid,
            clock=clock,
            stats=s.stats,
        )
    return AlignedSession(t_s=t_s, rate_hz=rate, sensors=out)


# ---------------------------------------------------------------------------------------------
# synthetic decoded sensors: jittered device clocks, bursty BLE, gaps, saturation, NaN rows
# ---------------------------------------------------------------------------------------------
_STATS = DecodeStats(0, 0, 0, {}, 0, 0, 0, 0, ())


def _sensor(rng, name, n, *, mag=True, lose=0.02, nan_rows=0, sat=0.01, rate=200.0, t0=3.0):
    idx = np.arange(n + int(n * lose) + 5)
    idx = np.sort(rng.choice(idx, size=n, replace=False)).astype(np.int64)
    drift = rng.uniform(-80e-6, 80e-6)
    t_dev = t0 + idx / rate * (1 + drift) + rng.normal(0, 2e-5, n)
    t_dev = np.maximum.accumulate(t_dev + np.arange(n) * 1e-12)
    lat = rng.exponential(0.01, n) + rng.uniform(0, 0.003)
    host = ((1.5 + t_dev + lat) * 1e9).astype(np.int64)
    acc = rng.normal(0, 3, (n, 3)) + np.array([0.0, 0.0, 9.81])
    gyr = rng.normal(0, 1, (n, 3))
    mg = rng.normal(20, 10, (n, 3)) if mag else None
    for _ in range(nan_rows):
        k = int(rng.integers(0, n))
        arr = [acc, gyr, mg if mg is not None else gyr][int(rng.integers(0, 3))]
        arr[k, int(rng.integers(0, 3))] = np.nan if rng.uniform() < 0.7 else np.inf
    return ImuSamples(
        placement=name,
        rate_hz=rate,
        sample_idx=idx,
        t_dev_s=t_dev,
        host_rx_ns=host,
        acc_m_s2=acc,
        gyr_rad_s=gyr,
        mag_ut=mg,
        saturated=rng.uniform(size=n) < sat,
        stats=_STATS,
    )


def _assert_sessions_equal(got: AlignedSession, want: AlignedSession) -> None:
    np.testing.assert_array_equal(got.t_s, want.t_s)
    assert got.rate_hz == want.rate_hz
    assert list(got.sensors) == list(want.sensors)
    for k, g in got.sensors.items():
        w = want.sensors[k]
        assert g.clock == w.clock, k
        np.testing.assert_array_equal(g.valid, w.valid)
        for f in ("acc_m_s2", "gyr_rad_s", "mag_ut"):
            a, b = getattr(g, f), getattr(w, f)
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b, err_msg=f"{k} {f}")
                assert a.flags.c_contiguous and a.dtype == np.float64


@pytest.mark.parametrize("seed", range(6))
def test_align_session_equals_numpy_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = {
        "pelvis": _sensor(rng, "pelvis", 6000, mag=bool(seed % 2), nan_rows=seed),
        "thigh_l": _sensor(rng, "thigh_l", 5000, lose=0.2, t0=4.0),
        "thigh_r": _sensor(rng, "thigh_r", 7000, mag=False, sat=0.2, t0=2.5),
    }
    cfg = AlignConfig(max_fill_gap_s=float(rng.choice([0.0, 0.02, 1.0])))
    _assert_sessions_equal(align_session(samples, cfg), _align_session_ref(samples, cfg))
    cfg = AlignConfig(rate_hz=173.0, saturated_invalid=False)
    _assert_sessions_equal(align_session(samples, cfg), _align_session_ref(samples, cfg))


def test_align_session_fallbacks_equal_reference() -> None:
    rng = np.random.default_rng(11)
    one = _sensor(rng, "lumbar", 1)
    back = _sensor(rng, "pelvis", 3000)  # device time stepping back: the numpy path answers
    t_dev = back.t_dev_s.copy()
    t_dev[1500:] -= 0.3
    back = dataclasses.replace(back, t_dev_s=t_dev)
    dup = _sensor(rng, "thigh_l", 3000)  # repeated device times (not strictly increasing)
    t_dup = dup.t_dev_s.copy()
    t_dup[100:110] = t_dup[100]
    dup = dataclasses.replace(dup, t_dev_s=t_dup)
    for samples in ({"lumbar": one, "thigh_l": dup}, {"pelvis": back, "thigh_l": dup}):
        cfg = AlignConfig()
        _assert_sessions_equal(align_session(samples, cfg), _align_session_ref(samples, cfg))


def test_window_minima_and_fit_clock_equal_reference() -> None:
    rng = np.random.default_rng(4)
    for _ in range(100):
        n = int(rng.integers(1, 3000))
        t = np.cumsum(rng.uniform(1e-4, 0.05, n))
        r = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # ties
        ws = float(rng.uniform(0.01, 2.0))
        for g, w in zip(_window_minima(t, r, ws), _window_minima_ref(t, r, ws), strict=True):
            np.testing.assert_array_equal(g, w)
        host = t + 1.0 + 30e-6 * t + rng.exponential(0.01, n)
        assert fit_clock(t, host, window_s=ws) == _fit_clock_ref(t, host, window_s=ws)


# ---------------------------------------------------------------------------------------------
# fusion inputs: checks, fill, normalisation (references: the numpy code before round 3)
# ---------------------------------------------------------------------------------------------
def _check_inputs_ref(acc, gyr, mag, valid):
    """The finiteness and unit checks of ``check_inputs`` before round 3 (same messages)."""
    from imuhip.fusion._inputs import _check_units

    mask = None if valid is None else np.asarray(valid)
    for name, arr in (("acc_m_s2", acc), ("gyr_rad_s", gyr), ("mag_ut", mag)):
        if arr is None:
            continue
        bad = ~np.isfinite(arr).all(axis=1)
        if mask is not None:
            bad &= mask
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            hint = "" if mask is not None else " (pass valid=... to mark missing samples)"
            raise ValueError(
                f"{name} has {int(bad.sum())} non-finite rows, first at row {first}: "
                f"{arr[first].tolist()}{hint}"
            )
    if mask is None or mask.all():
        if len(acc) >= 10:
            _check_units(acc, gyr, mag)
    elif np.count_nonzero(mask) >= 10:
        _check_units(acc[mask], gyr[mask], None if mag is None else mag[mask])


def _outcome(f):
    try:
        f()
    except ValueError as err:
        return str(err)
    return None


def _scaled_rows(rng, n, centre, spread):
    """Rows whose norms are ``centre * exp(spread * N(0, 1))``, random directions."""
    d = rng.normal(size=(n, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    return d * (centre * np.exp(spread * rng.normal(size=n)))[:, None]


@pytest.mark.parametrize("seed", range(4))
def test_check_inputs_decisions_equal_reference(seed: int) -> None:
    from imuhip.fusion._inputs import check_inputs

    rng = np.random.default_rng(seed)
    seen: set[bool] = set()
    for _ in range(150):
        n = int(rng.integers(1, 400))
        # norms straddling every threshold: acc 3 / 200, gyr p99 40, mag 2 / 2000
        acc = _scaled_rows(rng, n, float(rng.choice([1.0, 3.0, 9.81, 200.0, 900.0])), 0.3)
        gyr = _scaled_rows(rng, n, float(rng.choice([0.5, 20.0, 40.0])), float(rng.uniform(0, 1)))
        mag = None
        if rng.uniform() < 0.6:
            mag = _scaled_rows(rng, n, float(rng.choice([0.05, 2.0, 45.0, 2000.0, 5e4])), 0.2)
        if rng.uniform() < 0.2:  # exactly on a threshold
            acc[: n // 2 + 1] *= (3.0 / np.linalg.norm(acc[: n // 2 + 1], axis=1))[:, None]
        valid = None
        if rng.uniform() < 0.6:
            valid = rng.uniform(size=n) < rng.uniform(0.3, 1.0)
            valid[0] = True
        if rng.uniform() < 0.3:  # non-finite rows, some in valid rows
            k = rng.integers(0, n, int(rng.integers(1, 4)))
            (acc if rng.uniform() < 0.5 else gyr)[k, int(rng.integers(0, 3))] = np.nan
        want = _outcome(lambda: _check_inputs_ref(acc, gyr, mag, valid))  # noqa: B023
        got = _outcome(lambda: check_inputs(acc, gyr, mag, 200.0, valid))  # noqa: B023
        assert got == want
        seen.add(want is None)
    assert seen == {True, False}


def test_fill_invalid_with_non_finite_rows_equals_np_interp() -> None:
    from imuhip.fusion._inputs import fill_invalid

    rng = np.random.default_rng(1)
    for _ in range(300):
        n = int(rng.integers(1, 200))
        x = rng.normal(size=(n, 3)) * 10.0 ** rng.integers(-3, 4)
        valid = rng.uniform(size=n) < rng.uniform(0.05, 1.0)
        valid[int(rng.integers(0, n))] = True
        x[~valid] = np.nan  # invalid rows may hold NaN
        if rng.uniform() < 0.3:  # inf among valid rows: the NaN fallbacks of np.interp
            x[rng.integers(0, n), int(rng.integers(0, 3))] = float(rng.choice([np.inf, -np.inf]))
        good = np.flatnonzero(valid)
        want = np.stack([np.interp(np.arange(n), good, x[good, k]) for k in range(3)], axis=1)
        got = fill_invalid(x, valid, "interp")
        np.testing.assert_array_equal(got, want)
        assert got is not x


def test_normalized_equals_quat_normalize_in_place() -> None:
    from imuhip.conventions import quat_normalize
    from imuhip.fusion.core import _normalized

    rng = np.random.default_rng(2)
    q = rng.normal(size=(50_000, 4)) * rng.uniform(0.5, 2.0, (50_000, 1))
    want = quat_normalize(q)
    got = _normalized(q)
    assert got is q  # the filter's fresh output is scaled in place
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="finite and non-zero"):
        _normalized(np.zeros((3, 4)))
    ro = rng.normal(size=(10, 4))
    ro.flags.writeable = False
    np.testing.assert_array_equal(_normalized(ro), quat_normalize(ro))
