"""Segment calibration's fast paths give what their plain definitions give.

The static window is searched on growing prefixes of the session: it equals the first long
enough still run of the whole-session mask. The walking statistics are compiled sums
(``imuhip.orientation._calib_kernels``): each equals its quaternion / numpy formula. The closed-form
detrending equals ``np.polyfit``; the skewness equals the third standardised moment.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from scipy.ndimage import uniform_filter1d

from imuhip.conventions import quat_conj, quat_mul, quat_rotate
from imuhip.errors import CalibrationError
from imuhip.orientation._calib_kernels import fwd_in_sensor_sum, hip_gyr, rot_z, rot_z_const_sum
from imuhip.orientation.segment_calibration import (
    SegmentCalConfig,
    _bridge_short_gaps,
    _principal_axis,
    _runs,
    _skew,
    find_static_window,
)
from imuhip.orientation.segment_calibration._axes import _flexion_angle, _principal_axis_rows
from imuhip.orientation.segment_calibration._windows import _movement_windows, _still_mask
from imuhip.types import OrientationSession
from tests.unit._walk_synth import make_walk

Window = tuple[int, int]


def _walk(with_mag: bool, seed: int, **kw) -> OrientationSession:
    ori, _, _ = make_walk(rate_hz=100.0, with_mag=with_mag, seed=seed, **kw)
    rng = np.random.default_rng(seed)
    for v in ori.valid.values():  # packet loss: short invalid runs everywhere
        for a in rng.integers(0, len(v) - 5, 40):
            v[a : a + int(rng.integers(1, 5))] = False
    return ori


WALKS = [(True, 0), (True, 1), (False, 2)]


# ---------------------------------------------------------------------------------------------
# static window: the prefix search equals the whole session's first still run
# ---------------------------------------------------------------------------------------------
def _static_window_whole_session(ori: OrientationSession, cfg: SegmentCalConfig) -> Window:
    still = np.ones(len(ori.t_s), dtype=bool)
    for p in ori.q_world_sensor:
        still &= _still_mask(ori, p, cfg)  # over the whole session
    need = round(cfg.min_static_s * ori.rate_hz)
    for a, b in _runs(still):
        if b - a >= need:
            return a, b
    never = [
        p
        for p in sorted(ori.q_world_sensor)
        if not any(b - a >= need for a, b in _runs(_still_mask(ori, p, cfg)))
    ]
    which = f"; {', '.join(never)}: never still that long" if never else ""
    raise CalibrationError(
        f"no still period of {cfg.min_static_s:g} s found in which all sensors "
        f"({', '.join(sorted(ori.q_world_sensor))}) are still{which}: stand still for at least "
        f"{cfg.min_static_s:g} s at the start of the recording"
    )


def _outcome(f):
    try:
        return f()
    except CalibrationError as err:
        return str(err)


@pytest.mark.parametrize(("with_mag", "seed"), WALKS)
def test_static_window_equals_whole_session_search(with_mag: bool, seed: int) -> None:
    ori = _walk(with_mag, seed, walk_s=30.0)
    assert find_static_window(ori) == _static_window_whole_session(ori, SegmentCalConfig())


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


def test_static_window_search_on_prefixes_equals_whole_session() -> None:
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
        got = _outcome(lambda: find_static_window(o, cfg))  # noqa: B023
        want = _outcome(lambda: _static_window_whole_session(o, cfg))  # noqa: B023
        assert got == want


# ---------------------------------------------------------------------------------------------
# walking statistics: compiled sums against the quaternion and numpy formulas
# ---------------------------------------------------------------------------------------------
def _movement_windows_numpy(
    ori: OrientationSession, static: Window, cfg: SegmentCalConfig
) -> list[Window]:
    thighs = [p for p in ("thigh_l", "thigh_r") if ori.gyr_rad_s.get(p) is not None]
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


@pytest.mark.parametrize(("with_mag", "seed"), WALKS)
def test_movement_windows_equal_numpy_rms(with_mag: bool, seed: int) -> None:
    ori = _walk(with_mag, seed, walk_s=30.0)
    cfg = SegmentCalConfig()
    static = find_static_window(ori, cfg)
    windows = _movement_windows(ori, static, cfg)
    assert windows == _movement_windows_numpy(ori, static, cfg)
    assert windows  # the walk was found


def _rows(ori: OrientationSession, p: str) -> npt.NDArray[np.intp]:
    """Valid rows of the walking part, as the calibration takes them."""
    cfg = SegmentCalConfig()
    idx = np.concatenate(
        [np.arange(a, b) for a, b in _movement_windows(ori, find_static_window(ori, cfg), cfg)]
    )
    rows = idx[np.asarray(ori.valid[p], bool)[idx]]
    assert len(rows) > 1000
    return rows


@pytest.mark.parametrize(("with_mag", "seed"), WALKS)
def test_hip_angular_velocity_kernel_equals_quaternion_formula(with_mag: bool, seed: int) -> None:
    ori = _walk(with_mag, seed, walk_s=30.0)
    for p in ("thigh_l", "thigh_r"):
        q_t, q_p = ori.q_world_sensor[p], ori.q_world_sensor["pelvis"]
        g_t, g_p = ori.gyr_rad_s[p], ori.gyr_rad_s["pelvis"]
        assert g_t is not None and g_p is not None
        out = np.empty((len(q_t), 3))
        hip_gyr(q_t, q_p, g_t, g_p, out)
        want = g_t - quat_rotate(quat_mul(quat_conj(q_t), q_p), g_p)
        np.testing.assert_allclose(out, want, rtol=0, atol=1e-12)


@pytest.mark.parametrize(("with_mag", "seed"), WALKS)
def test_principal_axis_of_rows_equals_numpy_covariance(with_mag: bool, seed: int) -> None:
    ori = _walk(with_mag, seed, walk_s=30.0)
    for p in ("thigh_l", "thigh_r"):
        gyr = ori.gyr_rad_s[p]
        assert gyr is not None
        rows = _rows(ori, p)
        axis, ratio = _principal_axis_rows(gyr, rows)
        want_axis, want_ratio = _principal_axis(gyr[rows])
        np.testing.assert_allclose(axis, want_axis, rtol=0, atol=1e-9)
        assert ratio == pytest.approx(want_ratio, rel=1e-9)


@pytest.mark.parametrize(("with_mag", "seed"), WALKS)
def test_vertical_rotation_kernels_equal_quat_rotate(with_mag: bool, seed: int) -> None:
    ori = _walk(with_mag, seed, walk_s=30.0)
    q = ori.q_world_sensor["pelvis"]
    g = ori.gyr_rad_s["pelvis"]
    assert g is not None
    out = np.empty(len(q))
    rot_z(q, g, out)
    np.testing.assert_allclose(out, quat_rotate(q, g)[:, 2], rtol=0, atol=1e-12)
    rows = _rows(ori, "thigh_r")
    x_s = np.array([0.3, -0.2, 0.93])
    want = float(np.sum(quat_rotate(ori.q_world_sensor["thigh_r"][rows], x_s)[:, 2]))
    got = rot_z_const_sum(ori.q_world_sensor["thigh_r"], rows, x_s)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-9)


def _walking_direction_in_sensor_numpy(q_s, q_thighs, x_thighs, rows) -> np.ndarray:
    """Sum over ``rows`` of the thighs' mean horizontal anterior axis, in sensor ``q_s``."""
    fwd = np.zeros((len(q_s), 3))
    for q_t, x_t in zip(q_thighs, x_thighs, strict=True):
        fwd += quat_rotate(q_t, x_t)
    fwd[:, 2] = 0.0
    fwd /= np.linalg.norm(fwd, axis=1, keepdims=True)
    return np.sum(quat_rotate(quat_conj(q_s[rows]), fwd[rows]), axis=0)


@pytest.mark.parametrize(("with_mag", "seed"), WALKS)
def test_walking_direction_kernel_equals_quaternion_formula(with_mag: bool, seed: int) -> None:
    ori = _walk(with_mag, seed, walk_s=30.0)
    rows = _rows(ori, "pelvis")
    q_s = ori.q_world_sensor["pelvis"]
    q_l, q_r = ori.q_world_sensor["thigh_l"], ori.q_world_sensor["thigh_r"]
    x_l, x_r = np.array([0.9, 0.1, -0.3]), np.array([0.95, -0.2, 0.1])
    for two in (True, False):
        total = np.zeros(3)
        fwd_in_sensor_sum(q_s, q_l, x_l, q_r, x_r, two, rows, total)
        thighs = ([q_l, q_r], [x_l, x_r]) if two else ([q_l], [x_l])
        want = _walking_direction_in_sensor_numpy(q_s, *thighs, rows)
        np.testing.assert_allclose(total / len(rows), want / len(rows), rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# closed forms
# ---------------------------------------------------------------------------------------------
def _flexion_angle_polyfit(gyr_along, rate_hz: float, windows) -> np.ndarray:
    parts = []
    for a, b in windows:
        ang = np.cumsum(gyr_along[a:b]) / rate_hz
        t = np.arange(len(ang))
        if len(ang) > 2:
            ang = ang - np.polyval(np.polyfit(t, ang, 1), t)
        parts.append(ang)
    return np.concatenate(parts) if parts else np.zeros(0)


@pytest.mark.parametrize(("with_mag", "seed"), WALKS)
def test_closed_form_detrending_equals_polyfit(with_mag: bool, seed: int) -> None:
    ori = _walk(with_mag, seed, walk_s=30.0)
    cfg = SegmentCalConfig()
    windows = _movement_windows(ori, find_static_window(ori, cfg), cfg)
    n = len(ori.t_s)
    for w in (windows, [(n // 3, n // 2), (n // 2 + 50, n - 10)], [(5, 7), (10, 13)], []):
        g = ori.gyr_rad_s["thigh_r"]
        assert g is not None
        along = g @ np.array([0.1, 0.2, 0.97])
        got = _flexion_angle(along, ori.rate_hz, w)
        want = _flexion_angle_polyfit(along, ori.rate_hz, w)
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-9)


def test_skew_equals_third_standardised_moment() -> None:
    rng = np.random.default_rng(13)
    for x in (rng.normal(size=50_000), rng.gamma(2.0, size=50_000), -rng.gamma(3.0, size=999)):
        d = x - np.mean(x)
        want = float(np.mean(d**3) / float(np.std(x)) ** 3)
        assert _skew(x) == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert _skew(np.full(10, 2.0)) == 0.0
