"""imuhip.ingest.align: clock recovery from bursty BLE receive times, session grid, gap mask.

Known answers from synthetic streams; the compiled window minima, lower hull and grid resampling
against plain numpy (and Andrew's monotone chain), bit for bit.
"""

from __future__ import annotations

import dataclasses
import logging
import math

import numpy as np
import pytest

from imuhip.errors import AlignmentError
from imuhip.ingest.align import AlignConfig, ClockTracker, align_session, fit_clock, session_t0_ns
from imuhip.ingest.align.clock import _lower_hull, _window_minima
from imuhip.ingest.align.grid import _resample
from imuhip.ingest.decode import decode_sensor_packets, empty_samples
from imuhip.types import DecodeStats, ImuSamples
from tests.unit.synth_packets import GYR_LSB, make_meta, make_stream

HOST_ZERO_NS = 5_000_000_000


def _clock_case(seed: int, ci_s: float, n_packets: int = 1200):
    rng = np.random.default_rng(seed)
    drift = float(rng.uniform(-50, 50))
    off = float(rng.uniform(-3, 3))
    st = make_stream(
        n_packets=n_packets,
        offset_s=off,
        drift_ppm=drift,
        conn_interval_s=ci_s,
        miss_prob=0.3,
        host_jitter_s=0.0003,
        seed=seed,
    )
    s = decode_sensor_packets(st.packets, make_meta())
    host_s = (s.host_rx_ns - HOST_ZERO_NS) * 1e-9
    return s, host_s, off, drift


# Drift tolerance: the envelope is only touched by the few packets delivered with (nearly) no
# latency, so over 60 s the drift is known to about CI / (packets near the envelope) / span. With
# 30 % missed connection events and 0.3 ms host jitter, 30 seeds gave a drift error p95 of 4.8, 8.2,
# 13.9 and 33 ppm at CI 7.5, 15, 30 and 50 ms (offset always < 2 ms): the tolerance scales with CI.
@pytest.mark.parametrize("seed", [1, 2])
@pytest.mark.parametrize(
    ("ci_s", "drift_tol_ppm"), [(0.0075, 5.0), (0.015, 10.0), (0.03, 20.0), (0.05, 35.0)]
)
def test_fit_clock_recovers_offset_and_drift(seed: int, ci_s: float, drift_tol_ppm: float) -> None:
    s, host_s, off, drift = _clock_case(seed, ci_s)  # 60 s at 200 Hz, 10 samples per packet
    m = fit_clock(s.t_dev_s, host_s)
    lat = host_s - (off + (1 + drift * 1e-6) * s.t_dev_s)
    assert lat.min() >= 0 and lat.max() > 0.05  # the simulated latency really is bursty
    assert abs(m.offset_s - off) < 0.002
    mid = float(np.mean(s.t_dev_s))
    assert abs(m.to_session(mid) - (off + (1 + drift * 1e-6) * mid)) < 0.002
    assert abs(m.drift_ppm - drift) < drift_tol_ppm
    assert 0 < m.residual_jitter_s < ci_s
    assert m.n_anchors >= 100


def test_fit_clock_ignores_an_impossible_early_timestamp() -> None:
    s, host_s, off, drift = _clock_case(4, 0.0075)
    host_s = host_s.copy()
    host_s[3000] -= 0.5  # a host clock glitch: received before it was sent
    m = fit_clock(s.t_dev_s, host_s)
    assert abs(m.offset_s - off) < 0.002 and abs(m.drift_ppm - drift) < 5.0


def test_fit_clock_short_span_no_drift_and_errors() -> None:
    m = fit_clock([0.0, 0.1, 0.2], [1.01, 1.11, 1.2])
    assert m.drift_ppm == 0.0 and m.offset_s == pytest.approx(1.0)
    with pytest.raises(AlignmentError):
        fit_clock([np.nan], [1.0])
    with pytest.raises(ValueError, match="same shape"):
        fit_clock([0.0, 1.0], [1.0])


def test_clock_tracker_matches_batch_and_reanchors() -> None:
    s, host_s, off, drift = _clock_case(5, 0.015)
    tr = ClockTracker()
    assert tr.model is None
    for k in range(0, len(s), 10):  # packet by packet
        tr.update(s.t_dev_s[k : k + 10], host_s[k : k + 10])
    batch = fit_clock(s.t_dev_s, host_s)
    m = tr.model
    assert m is not None
    assert m.offset_s == pytest.approx(batch.offset_s, abs=1e-9)
    assert m.drift_ppm == pytest.approx(batch.drift_ppm, abs=1e-6)
    tr.reanchor()
    assert tr.model is None and tr.reanchors == 1
    # a reconnect 2 s later: few new anchors, the drift is carried over
    tr.update(s.t_dev_s[-400:-380], host_s[-400:-380])
    m2 = tr.model
    assert m2 is not None and m2.drift_ppm == pytest.approx(batch.drift_ppm, abs=1e-6)
    mid = float(s.t_dev_s[-390])
    assert abs(m2.to_session(mid) - (off + (1 + drift * 1e-6) * mid)) < 0.008


def _two_sensors(lose_thigh=(), n_packets=200):
    pel = make_stream(n_packets=n_packets, offset_s=0.3, drift_ppm=20, seed=1, sensor="pelvis")
    thi = make_stream(
        n_packets=n_packets,
        offset_s=-3999.2,  # device clock far from the host's: 4000 s of uptime
        t0_us=4_000_000_000,
        drift_ppm=-35,
        seed=2,
        sensor="thigh_l",
        lose=lose_thigh,
    )
    samples = {
        "pelvis": decode_sensor_packets(pel.packets, make_meta("pelvis")),
        "thigh_l": decode_sensor_packets(thi.packets, make_meta("thigh_l")),
    }
    return samples, pel, thi


def test_align_grid_matches_true_signal() -> None:
    samples, _, _ = _two_sensors()
    t0 = session_t0_ns(samples)
    sess = align_session(samples, AlignConfig())
    assert sess.rate_hz == 200.0
    k = np.rint(sess.t_s * 200.0)
    np.testing.assert_allclose(sess.t_s, k / 200.0, rtol=0, atol=0)
    np.testing.assert_array_equal(np.diff(k), 1)
    for name, off, drift in (("pelvis", 0.3, 20), ("thigh_l", -3999.2, -35)):
        a = sess.sensors[name]
        assert a.valid.mean() > 0.9
        # truth: session time -> device time -> the generating sine (gyro x, counts * lsb)
        t_host = sess.t_s + (t0 - HOST_ZERO_NS) * 1e-9
        t_dev = (t_host - off) / (1 + drift * 1e-6)
        truth = 8000 * np.sin(2 * np.pi * 1.3 * t_dev) * GYR_LSB
        err = np.abs(a.gyr_rad_s[a.valid, 0] - truth[a.valid])
        # 1 ms of clock error on the 1.3 Hz sine is 0.8 % of its amplitude; interpolation 0.02 %
        assert err.max() < 0.01 * 8000 * GYR_LSB
        assert np.isfinite(a.gyr_rad_s).all() and np.isfinite(a.acc_m_s2).all()
        mid = float(np.mean(samples[name].t_dev_s))
        assert (
            abs(
                a.clock.to_session(mid)
                + (t0 - HOST_ZERO_NS) * 1e-9
                - (off + (1 + drift * 1e-6) * mid)
            )
            < 0.002
        )
    # each sensor is invalid outside its own span
    for a in sess.sensors.values():
        idx = np.flatnonzero(a.valid)
        assert not a.valid[: idx[0]].any() and not a.valid[idx[-1] + 1 :].any()


def test_align_gap_is_masked_and_filled() -> None:
    samples, _, _ = _two_sensors(lose_thigh=(50, 51, 52))
    gap = samples["thigh_l"].stats.gaps[0]
    assert (gap.start_idx, gap.stop_idx) == (500, 530)
    sess = align_session(samples, AlignConfig())
    a = sess.sensors["thigh_l"]
    s = samples["thigh_l"]
    t_before = a.clock.to_session(s.t_dev_s[s.sample_idx == 499])[0]
    t_after = a.clock.to_session(s.t_dev_s[s.sample_idx == 530])[0]
    inside = (sess.t_s > t_before + 1e-6) & (sess.t_s < t_after - 1e-6)
    assert inside.sum() >= 29
    assert not a.valid[inside].any()
    near = (sess.t_s > t_before - 0.1) & (sess.t_s < t_after + 0.1) & ~inside
    assert a.valid[near].all()
    # filled linearly between the bracketing real samples (gap 155 ms < max_fill_gap_s)
    g0 = s.gyr_rad_s[s.sample_idx == 499][0]
    g1 = s.gyr_rad_s[s.sample_idx == 530][0]
    w = (sess.t_s[inside] - t_before) / (t_after - t_before)
    np.testing.assert_allclose(a.gyr_rad_s[inside], g0 + w[:, None] * (g1 - g0), atol=1e-12)


def test_long_gap_filled_with_nearest_sample() -> None:
    samples, _, _ = _two_sensors(lose_thigh=tuple(range(50, 80)))  # 1.5 s
    sess = align_session(samples, AlignConfig(max_fill_gap_s=1.0))
    a = sess.sensors["thigh_l"]
    s = samples["thigh_l"]
    t_before = a.clock.to_session(s.t_dev_s[s.sample_idx == 499])[0]
    first_in = np.flatnonzero(sess.t_s > t_before + 1e-6)[0]
    np.testing.assert_array_equal(a.gyr_rad_s[first_in], s.gyr_rad_s[s.sample_idx == 499][0])
    assert not a.valid[first_in]


def test_nan_samples_invalid_never_propagated() -> None:
    samples, _, _ = _two_sensors()
    s = samples["pelvis"]
    gyr = s.gyr_rad_s.copy()
    gyr[100:103, 1] = np.nan
    samples["pelvis"] = dataclasses.replace(s, gyr_rad_s=gyr)
    sess = align_session(samples)
    a = sess.sensors["pelvis"]
    assert np.isfinite(a.gyr_rad_s).all()
    t_bad = a.clock.to_session(s.t_dev_s[100:103])
    for t in t_bad:
        j = np.argmin(np.abs(sess.t_s - t))
        assert not a.valid[j]
    assert a.valid.sum() > 0.9 * len(a.valid)


def test_saturated_samples_invalid() -> None:
    samples, _, _ = _two_sensors()
    s = samples["pelvis"]
    sat = s.saturated.copy()
    sat[400:410] = True
    samples["pelvis"] = dataclasses.replace(s, saturated=sat)
    a = align_session(samples).sensors["pelvis"]
    b = align_session(samples, AlignConfig(saturated_invalid=False)).sensors["pelvis"]
    assert b.valid.sum() - a.valid.sum() >= 10


def test_empty_sensor_raises_naming_it() -> None:
    samples, _, _ = _two_sensors()
    samples["shank_r"] = empty_samples(make_meta("shank_r"))
    with pytest.raises(AlignmentError, match="shank_r"):
        align_session(samples)


def test_different_rates_use_highest_and_say_so(caplog: pytest.LogCaptureFixture) -> None:
    slow = make_stream(n_packets=50, rate_hz=100.0, n=5, sensor="thigh_r")
    samples, _, _ = _two_sensors()
    samples["thigh_r"] = decode_sensor_packets(slow.packets, make_meta("thigh_r", rate_hz=100.0))
    with caplog.at_level(logging.WARNING, logger="imuhip.ingest.align"):
        sess = align_session(samples)
    assert sess.rate_hz == 200.0 and "different rates" in caplog.text
    assert align_session(samples, AlignConfig(rate_hz=50.0)).rate_hz == 50.0


def test_explicit_t0_shifts_the_grid() -> None:
    samples, _, _ = _two_sensors()
    t0 = session_t0_ns(samples)
    a = align_session(samples, t0_ns=t0)
    b = align_session(samples, t0_ns=t0 - 1_000_000_000)
    assert b.t_s[0] == pytest.approx(a.t_s[0] + 1.0, abs=1e-9)
    np.testing.assert_allclose(
        b.sensors["pelvis"].gyr_rad_s, a.sensors["pelvis"].gyr_rad_s, atol=1e-6
    )


def test_config_validation() -> None:
    with pytest.raises(ValueError, match="rate_hz"):
        AlignConfig(rate_hz=0)
    with pytest.raises(ValueError, match="max_fill_gap_s"):
        AlignConfig(max_fill_gap_s=-1)
    with pytest.raises(TypeError):
        align_session({})


# ---------------------------------------------------------------------------------------------
# the compiled paths (window minima, lower hull, grid resampling) against plain numpy
# ---------------------------------------------------------------------------------------------
def _window_minima_numpy(t, r, window_s):
    """Per window ``floor(t / window_s)`` the first point with the smallest ``r`` (plain numpy)."""
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


def _lower_hull_monotone_chain(x, y) -> list[int]:
    """Andrew's monotone chain, lower half, in Python (points sorted by ``x``)."""
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


def test_window_minima_pick_each_windows_first_lowest_point() -> None:
    rng = np.random.default_rng(4)
    for _ in range(100):
        n = int(rng.integers(1, 3000))
        t = np.cumsum(rng.uniform(1e-4, 0.05, n))
        r = np.round(rng.normal(size=n), int(rng.integers(0, 3)))  # ties
        ws = float(rng.uniform(0.01, 2.0))
        for g, w in zip(_window_minima(t, r, ws), _window_minima_numpy(t, r, ws), strict=True):
            np.testing.assert_array_equal(g, w)


def test_lower_hull_kernel_equals_monotone_chain() -> None:
    rng = np.random.default_rng(4)
    for _ in range(100):
        # the clock fit's input: window minima of bursty receive times, centred device time
        n = int(rng.integers(1, 3000))
        t = np.cumsum(rng.uniform(1e-4, 0.05, n))
        host = t + 1.0 + 30e-6 * t + rng.exponential(0.01, n)
        _, tw, rw = _window_minima(t, host - t, float(rng.uniform(0.01, 2.0)))
        x = tw - float(np.mean(t))
        assert _lower_hull(x, rw) == _lower_hull_monotone_chain(x, rw)
    # collinear and repeated points, a single point, none
    x = np.arange(12, dtype=np.float64)
    for y in (np.zeros(12), x.copy(), np.round(np.sin(x), 1), np.repeat([1.0, 0.0, 1.0], 4)):
        assert _lower_hull(x, y) == _lower_hull_monotone_chain(x, y)
    assert _lower_hull(x[:1], x[:1]) == [0] and _lower_hull(x[:0], x[:0]) == []


_STATS = DecodeStats(0, 0, 0, {}, 0, 0, 0, 0, ())


def _sensor(rng, name, n, *, mag=True, lose=0.02, nan_rows=0, sat=0.01, rate=200.0, t0=3.0):
    """Decoded samples with a jittered drifting device clock, bursty BLE latency, lost samples,
    saturated samples and non-finite rows."""
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


def _interp_formula(v, j, w):
    if len(v) == 1:
        return np.repeat(v, len(j), axis=0)
    return v[j] * (1.0 - w)[:, None] + v[j + 1] * w[:, None]


def _assert_grid_equals_numpy_interpolation(samples: dict, cfg: AlignConfig) -> None:
    """``align_session`` equals, bit for bit, each sensor's finite samples mapped by
    ``fit_clock`` and interpolated with ``_resample`` (numpy) and the linear formula."""
    got = align_session(samples, cfg)
    t0_ns = min(int(s.host_rx_ns.min()) for s in samples.values())
    rate = (
        float(cfg.rate_hz) if cfg.rate_hz is not None else max(s.rate_hz for s in samples.values())
    )
    assert got.rate_hz == rate
    assert list(got.sensors) == sorted(samples)
    lo, hi = math.inf, -math.inf
    for name, s in samples.items():
        ok = np.isfinite(s.t_dev_s)
        for a in (s.acc_m_s2, s.gyr_rad_s, s.mag_ut):
            if a is not None:
                ok &= np.isfinite(a).all(axis=1)
        host_s = (s.host_rx_ns - np.int64(t0_ns)) * 1e-9
        clock = fit_clock(s.t_dev_s[ok], host_s[ok], window_s=cfg.clock_window_s)
        t_sess = clock.to_session(s.t_dev_s[ok])
        lo, hi = min(lo, float(t_sess[0])), max(hi, float(t_sess[-1]))
        a = got.sensors[name]
        assert a.clock == clock, name
        bad = s.saturated[ok] if cfg.saturated_invalid else np.zeros(int(ok.sum()), np.bool_)
        j, w, valid = _resample(t_sess, s.sample_idx[ok], bad, got.t_s, cfg.max_fill_gap_s)
        np.testing.assert_array_equal(a.valid, valid)
        for f in ("acc_m_s2", "gyr_rad_s", "mag_ut"):
            x, v = getattr(a, f), getattr(s, f)
            assert (x is None) == (v is None)
            if x is not None:
                np.testing.assert_array_equal(
                    x, _interp_formula(v[ok], j, w), err_msg=f"{name} {f}"
                )
                assert x.flags.c_contiguous and x.dtype == np.float64
    k_lo, k_hi = math.ceil(lo * rate - 1e-6), math.floor(hi * rate + 1e-6)
    np.testing.assert_array_equal(got.t_s, np.arange(k_lo, k_hi + 1, dtype=np.float64) / rate)


@pytest.mark.parametrize("seed", range(6))
def test_compiled_grid_equals_numpy_interpolation(seed: int) -> None:
    rng = np.random.default_rng(seed)
    samples = {
        "pelvis": _sensor(rng, "pelvis", 6000, mag=bool(seed % 2), nan_rows=seed),
        "thigh_l": _sensor(rng, "thigh_l", 5000, lose=0.2, t0=4.0),
        "thigh_r": _sensor(rng, "thigh_r", 7000, mag=False, sat=0.2, t0=2.5),
    }
    cfg = AlignConfig(max_fill_gap_s=float(rng.choice([0.0, 0.02, 1.0])))
    _assert_grid_equals_numpy_interpolation(samples, cfg)
    _assert_grid_equals_numpy_interpolation(
        samples, AlignConfig(rate_hz=173.0, saturated_invalid=False)
    )


def test_one_sample_and_non_increasing_times_interpolate_as_numpy() -> None:
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
        _assert_grid_equals_numpy_interpolation(samples, AlignConfig())
