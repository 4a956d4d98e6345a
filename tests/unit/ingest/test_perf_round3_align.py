"""Round 3 of the ``imuhip bench`` speed-ups (H3): clock alignment, fusion overhead around vqf,
segment calibration. Each gives the results of the code it replaced, kept here as the reference.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pytest

from imuhip.ingest.align import AlignConfig, _window_minima, align_session, fit_clock
from imuhip.types import (
    AlignedSensor,
    AlignedSession,
    ClockModel,
    DecodeStats,
    ImuSamples,
    OrientationSession,
    SegmentCalibration,
)

FloatArray = np.ndarray
Window = tuple[int, int]

# ---------------------------------------------------------------------------------------------
# references: imuhip.ingest.align before round 3 (numpy searchsorted/take, Python hull loop)
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
    from imuhip.orientation.fusion._inputs import _check_units

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
    from imuhip.orientation.fusion._inputs import check_inputs

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
    from imuhip.orientation.fusion._inputs import fill_invalid

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
    from imuhip.orientation.fusion.core import _normalized

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


# ---------------------------------------------------------------------------------------------
# segment calibration: references are the functions before round 3 (whole-session numpy)
# ---------------------------------------------------------------------------------------------
from scipy.ndimage import uniform_filter1d  # noqa: E402

from imuhip.conventions import quat_conj, quat_mul, quat_positive_w, quat_rotate  # noqa: E402
from imuhip.errors import CalibrationError  # noqa: E402
from imuhip.orientation.segment_calibration import (  # noqa: E402
    SegmentCalConfig,
    _anterior_from_obliquity,
    _bridge_short_gaps,
    _calibrate_seated,
    _index,
    _principal_axis,
    _reference_pose_offsets,
    _runs,
    _skew,
    q_sensor_segment_from_axes,
)


def _still_mask_ref(
    ori: OrientationSession, placement: str, cfg: SegmentCalConfig
) -> npt.NDArray[np.bool_]:
    n_win = max(3, round(0.5 * ori.rate_hz))
    acc = ori.acc_m_s2[placement]
    mean = uniform_filter1d(acc, n_win, axis=0, mode="nearest")
    var = uniform_filter1d(acc * acc, n_win, axis=0, mode="nearest") - mean * mean
    still = np.all(np.sqrt(np.maximum(var, 0.0)) < cfg.still_acc_std_m_s2, axis=1)
    gyr = ori.gyr_rad_s.get(placement)
    if gyr is not None:
        gn = uniform_filter1d(np.linalg.norm(gyr, axis=1), n_win, mode="nearest")
        still &= gn < cfg.still_gyr_rad_s
    return still & _bridge_short_gaps(ori.valid[placement], ori.rate_hz, cfg.max_bridged_gap_s)


def find_static_window_ref(ori: OrientationSession, cfg: SegmentCalConfig | None = None) -> Window:
    cfg = cfg or SegmentCalConfig()
    still = np.ones(len(ori.t_s), dtype=bool)
    for p in ori.q_world_sensor:
        still &= _still_mask_ref(ori, p, cfg)
    need = round(cfg.min_static_s * ori.rate_hz)
    for a, b in _runs(still):
        if b - a >= need:
            return a, b
    raise CalibrationError(
        f"no still period of {cfg.min_static_s:g} s found in which all sensors "
        f"({', '.join(sorted(ori.q_world_sensor))}) are still: stand still for the calibration"
    )


def _flexion_angle_ref(
    gyr_along: FloatArray, rate_hz: float, windows: Sequence[Window]
) -> FloatArray:
    parts = []
    for a, b in windows:
        seg = gyr_along[a:b]
        ang = np.cumsum(seg) / rate_hz
        t = np.arange(len(ang))
        if len(ang) > 2:
            ang = ang - np.polyval(np.polyfit(t, ang, 1), t)
        parts.append(ang)
    return np.concatenate(parts) if parts else np.zeros(0)


def _movement_windows_ref(
    ori: OrientationSession, static: Window, cfg: SegmentCalConfig
) -> list[Window]:
    thighs = [p for p in ("thigh_l", "thigh_r") if ori.gyr_rad_s.get(p) is not None]
    if not thighs:
        raise CalibrationError("functional calibration needs a thigh gyroscope (thigh_l/thigh_r)")
    n = len(ori.t_s)
    size = max(3, round(cfg.walking_window_s * ori.rate_hz))
    moving = np.ones(n, dtype=bool)
    for p in thighs:
        g = ori.gyr_rad_s[p]
        assert g is not None
        rms = np.sqrt(uniform_filter1d(np.sum(g * g, axis=1), size, mode="nearest"))
        moving &= (rms > cfg.walking_gyr_rms_rad_s) & _bridge_short_gaps(
            ori.valid[p], ori.rate_hz, cfg.max_bridged_gap_s
        )
    moving[: static[1]] = False
    return [w for w in _runs(moving) if w[1] - w[0] >= size]


def calibrate_segments_ref(
    ori: OrientationSession,
    cfg: SegmentCalConfig | None = None,
    *,
    static_window: Window | None = None,
    functional_windows: Sequence[Window] | None = None,
    prior: SegmentCalibration | None = None,
) -> SegmentCalibration:
    cfg = cfg or SegmentCalConfig()
    if "pelvis" not in ori.q_world_sensor:
        raise CalibrationError("segment calibration needs a pelvis sensor")
    n = len(ori.t_s)
    static = static_window if static_window is not None else find_static_window_ref(ori, cfg)
    if not (0 <= static[0] < static[1] <= n):
        raise ValueError(f"static_window {static} outside the session (0, {n})")
    quality: dict[str, dict[str, float]] = {p: {} for p in ori.q_world_sensor}
    warnings: list[str] = []

    # ---- 1. vertical axis from gravity, and the still check ----------------------------------
    up_s: dict[str, FloatArray] = {}
    for p in ori.q_world_sensor:
        sl = slice(*static)
        ok = np.asarray(ori.valid[p][sl], bool)
        if not np.any(ok):
            raise CalibrationError(f"{p}: no valid samples in the static window")
        acc = ori.acc_m_s2[p][sl][ok]
        up_s[p] = np.mean(acc, axis=0) / np.linalg.norm(np.mean(acc, axis=0))
        gyr = ori.gyr_rad_s.get(p)
        if gyr is not None:
            g = gyr[sl][ok]
            g = g - np.median(g, axis=0)  # a constant offset is bias, not motion
            rms = float(np.sqrt(np.mean(np.sum(g * g, axis=1))))
            quality[p]["still_gyr_rms_rad_s"] = rms
            if rms > cfg.max_static_gyr_rms_rad_s:
                t0, t1 = ori.t_s[static[0]], ori.t_s[static[1] - 1]
                raise CalibrationError(
                    f"{p}: subject moved during the static window {t0:.1f}-{t1:.1f} s "
                    f"(gyro RMS {rms:.3f} rad/s > {cfg.max_static_gyr_rms_rad_s:g})"
                )

    if cfg.method == "seated":
        return _calibrate_seated(ori, cfg, up_s, functional_windows, prior, quality)

    # ---- 2. thigh/shank mediolateral axis from the flexion/extension movement ---------------
    windows = (
        list(functional_windows)
        if functional_windows is not None
        else _movement_windows_ref(ori, static, cfg)
    )
    idx = _index(windows, n)
    if len(idx) < cfg.min_movement_s * ori.rate_hz:
        raise CalibrationError(
            f"movement too short for the functional calibration: {len(idx) / ori.rate_hz:.1f} s "
            f"< {cfg.min_movement_s:g} s (walk or swing the legs after standing still)"
        )
    z_s: dict[str, FloatArray] = {}
    flex_rate: dict[str, FloatArray] = {}
    common_heading = all(ori.mag_ut.get(p) is not None for p in ori.q_world_sensor)
    pel_gyr = ori.gyr_rad_s.get("pelvis")
    for p in ("thigh_l", "thigh_r", "shank_l", "shank_r"):
        gyr = ori.gyr_rad_s.get(p)
        if p not in ori.q_world_sensor or gyr is None:
            continue
        if common_heading and pel_gyr is not None and p.startswith("thigh"):
            # hip angular velocity (thigh relative to pelvis) in the thigh sensor frame: removes
            # pelvic obliquity, which is correlated with flexion and would tilt the axis
            q_ts_ps = quat_mul(quat_conj(ori.q_world_sensor[p]), ori.q_world_sensor["pelvis"])
            gyr = gyr - quat_rotate(q_ts_ps, pel_gyr)
        ok = idx[np.asarray(ori.valid[p], bool)[idx]]
        axis, ratio = _principal_axis(gyr[ok])
        quality[p]["axis_ratio"] = ratio
        min_ratio = (
            cfg.min_axis_ratio if functional_windows is not None else (cfg.min_walking_axis_ratio)
        )
        if ratio < min_ratio:
            raise CalibrationError(
                f"{p}: flexion axis ambiguous (first/second principal angular velocity ratio "
                f"{ratio:.2f} < {min_ratio:g}); repeat the leg swings in the sagittal plane"
            )
        z = axis - np.dot(axis, up_s[p]) * up_s[p]
        z /= np.linalg.norm(z)
        along = gyr @ z
        ang = _flexion_angle_ref(along, ori.rate_hz, windows)
        rng = float(np.percentile(ang, 99) - np.percentile(ang, 1))
        quality[p]["range_rad"] = rng
        if rng < cfg.min_functional_range_rad:
            raise CalibrationError(
                f"{p}: movement too small ({np.rad2deg(rng):.1f} deg flexion/extension range < "
                f"{np.rad2deg(cfg.min_functional_range_rad):.1f} deg)"
            )
        z_s[p] = z
        flex_rate[p] = along

    thighs = [p for p in ("thigh_l", "thigh_r") if p in z_s]
    if not thighs:
        raise CalibrationError("functional calibration needs at least one thigh sensor with gyro")

    # ---- sign of Z: flexion positive ----------------------------------------------------------
    yaw_rate = None
    if pel_gyr is not None:
        yaw_rate = quat_rotate(ori.q_world_sensor["pelvis"], pel_gyr)[:, 2]
    # functional swings may be symmetric: add any walking after the static window to the cues
    sign_idx = idx
    if functional_windows is not None:
        walk = _movement_windows_ref(ori, static, cfg)
        sign_idx = np.union1d(idx, _index(walk, n))
    # thighs first: a shank's sign is then read off its (signed) thigh
    for p in sorted(z_s, key=lambda q: not q.startswith("thigh")):
        along = flex_rate[p][sign_idx]
        score_skew = float(np.tanh(_skew(along)))
        if p.startswith("thigh"):
            # flexion goes further than extension from standing: anterior axis tips up on average
            x_w = quat_rotate(ori.q_world_sensor[p][sign_idx], np.cross(up_s[p], z_s[p]))
            score_incl = float(np.tanh(np.mean(x_w[:, 2]) / np.sin(np.deg2rad(5.0))))
            score = score_skew + score_incl
            cues = f"swing skew {score_skew:+.2f}, inclination {score_incl:+.2f}"
            score_yaw = 0.0
            if yaw_rate is not None:
                # pelvis turns counter-clockwise (right side forward) while the right thigh flexes
                side_sign = 1.0 if p.endswith("_r") else -1.0
                c = np.corrcoef(yaw_rate[sign_idx], along)[0, 1]
                score_yaw = float(side_sign * c) if np.isfinite(c) else 0.0
                score = score + 2.0 * score_yaw
            cues += f", pelvis yaw correlation {score_yaw:+.2f}"
        else:
            # The shank's mean walking posture is inclined backward (knee flexion exceeds the
            # thigh's inclination), so the thigh's inclination cue would point the wrong way.
            # Knee as a hinge: the shank swings forward with the thigh (hip flexion and the
            # shank's forward swing share swing phase; the knee extends in terminal swing while
            # both still rotate forward), so its flexion rate correlates positively with the
            # signed flexion rate of the thigh of the same side.
            thigh = f"thigh_{p[-1]}"
            score_knee = 0.0
            if thigh in flex_rate:
                c = np.corrcoef(flex_rate[thigh][sign_idx], along)[0, 1]
                score_knee = float(c) if np.isfinite(c) else 0.0
            score = score_skew + 2.0 * score_knee
            cues = f"swing skew {score_skew:+.2f}, thigh correlation {score_knee:+.2f}"
        quality[p]["sign_score"] = abs(score)
        if score < 0:
            z_s[p] = -z_s[p]
            flex_rate[p] = -flex_rate[p]
        if abs(score) < 0.3:
            warnings.append(f"{p}: flexion sign cues weak ({cues})")

    q_sensor_segment: dict[str, FloatArray] = {}
    method: dict[str, str] = {}
    label = "static+functional" if functional_windows is not None else "static+walking"
    for p, z in z_s.items():
        x = np.cross(up_s[p], z)
        q_sensor_segment[p] = q_sensor_segment_from_axes(x, up_s[p])
        method[p] = label

    # ---- 3. pelvis / lumbar anterior axis ------------------------------------------------------
    for p in ("pelvis", "lumbar"):
        if p not in ori.q_world_sensor:
            continue
        ok = idx[np.asarray(ori.valid[p], bool)[idx]]
        if common_heading:
            fwd = np.zeros((n, 3))
            for t in thighs:
                fwd += quat_rotate(
                    ori.q_world_sensor[t], quat_rotate(q_sensor_segment[t], [1.0, 0, 0])
                )
            fwd[:, 2] = 0.0
            fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
            # walking direction in the world, expressed in this sensor's frame, averaged
            x_s = np.mean(quat_rotate(quat_conj(ori.q_world_sensor[p][ok]), fwd[ok]), axis=0)
            method[p] = label + "+walking_direction"
        else:
            x_s = _anterior_from_obliquity(ori, p, ok, up_s[p], {t: flex_rate[t] for t in thighs})
            method[p] = label + "+obliquity"
            warnings.append(
                f"{p}: no common magnetometer heading (6D); anterior axis from the pelvic "
                "obliquity cue, relative heading anchored during walking"
            )
        q_sensor_segment[p] = q_sensor_segment_from_axes(x_s, up_s[p])

    for p in ori.q_world_sensor:
        if p not in q_sensor_segment:
            warnings.append(f"{p}: not calibrated (no gyroscope or unsupported placement)")
    # levelled frames (Y = up in the static pose) -> anatomical frames of the reference pose
    for p, q_lev_anat in _reference_pose_offsets(cfg).items():
        if p in q_sensor_segment:
            q_sensor_segment[p] = quat_positive_w(quat_mul(q_sensor_segment[p], q_lev_anat))
    return SegmentCalibration(
        q_sensor_segment=q_sensor_segment,
        method=method,
        quality={k: v for k, v in quality.items() if k in q_sensor_segment},
        warnings=tuple(warnings),
    )


def _cat_ori(ori: OrientationSession, order: npt.NDArray[np.intp]) -> OrientationSession:
    """``ori`` with its samples taken in ``order`` (to move the still period around)."""

    def take(d):
        return {k: (None if v is None else np.ascontiguousarray(v[order])) for k, v in d.items()}

    return OrientationSession(
        t_s=np.arange(len(order)) / ori.rate_hz,
        rate_hz=ori.rate_hz,
        q_world_sensor=take(ori.q_world_sensor),
        acc_m_s2=take(ori.acc_m_s2),
        gyr_rad_s=take(ori.gyr_rad_s),
        valid=take(ori.valid),
        source=ori.source,
        mag_ut=take(ori.mag_ut),
    )


def _assert_segcal_close(got: SegmentCalibration, want: SegmentCalibration) -> None:
    assert got.method == want.method
    assert got.warnings == want.warnings
    assert got.q_sensor_segment.keys() == want.q_sensor_segment.keys()
    for k, q in want.q_sensor_segment.items():
        np.testing.assert_allclose(got.q_sensor_segment[k], q, rtol=0, atol=1e-9, err_msg=k)
    assert got.quality.keys() == want.quality.keys()
    for k, d in want.quality.items():
        assert got.quality[k].keys() == d.keys()
        for m, v in d.items():
            assert got.quality[k][m] == pytest.approx(v, rel=1e-9, abs=1e-12), (k, m)


def _calibration_outcome(f):
    try:
        return f()
    except CalibrationError as err:
        return str(err)


@pytest.mark.parametrize(("with_mag", "seed"), [(True, 0), (True, 1), (False, 2)])
def test_calibrate_segments_equals_whole_session_reference(with_mag: bool, seed: int) -> None:
    from imuhip.orientation.segment_calibration import calibrate_segments, find_static_window
    from tests.unit._walk_synth import make_walk

    ori, _, _ = make_walk(rate_hz=100.0, walk_s=30.0, with_mag=with_mag, seed=seed)
    rng = np.random.default_rng(seed)
    for v in ori.valid.values():  # packet loss: short invalid runs everywhere
        for a in rng.integers(0, len(v) - 5, 40):
            v[a : a + int(rng.integers(1, 5))] = False
    assert find_static_window(ori) == find_static_window_ref(ori)
    _assert_segcal_close(calibrate_segments(ori), calibrate_segments_ref(ori))
    # dedicated swings given: the walking after the static window adds the sign cues
    n = len(ori.t_s)
    fw = [(n // 3, n // 2), (n // 2 + 50, n - 10)]
    _assert_segcal_close(
        calibrate_segments(ori, functional_windows=fw),
        calibrate_segments_ref(ori, functional_windows=fw),
    )


def test_static_window_search_on_prefixes_equals_whole_session() -> None:
    from imuhip.orientation.segment_calibration import find_static_window
    from tests.unit._walk_synth import make_walk

    ori, _, _ = make_walk(rate_hz=100.0, static_s=3.0, walk_s=60.0, seed=3)
    n = len(ori.t_s)
    rng = np.random.default_rng(3)
    walk = np.arange(400, n)
    cases = [
        np.concatenate([walk, np.arange(n)]),  # still period after 60 s of walking
        np.concatenate([walk, np.arange(0, 150), walk, np.arange(n)]),  # a short one first
        np.concatenate([walk[: 4096 - 150], np.arange(0, 300), walk]),  # across a prefix end
        walk,  # none at all
    ]
    for order in cases:
        o = _cat_ori(ori, order)
        for v in o.valid.values():
            for a in rng.integers(0, len(v) - 40, 30):
                v[a : a + int(rng.integers(1, 40))] = False  # bridged and unbridged gaps
        cfg = SegmentCalConfig(min_static_s=float(rng.choice([1.0, 2.0])))
        got = _calibration_outcome(lambda: find_static_window(o, cfg))  # noqa: B023
        want = _calibration_outcome(lambda: find_static_window_ref(o, cfg))  # noqa: B023
        assert got == want
