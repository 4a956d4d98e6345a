"""Round 2 of the ``imuhip bench`` speed-ups: each gives the results of the code it replaced.

The replaced implementations are kept here, private, as the references.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.conventions import quat_from_axis_angle, quat_mul, quat_rotate
from imuhip.orientation.heading import HeadingConfig, _signed_angle_about_up, correct_thigh_heading
from tests.unit._walk_synth import DEG, make_walk

_UP = np.array([0.0, 0.0, 1.0])


def _correct_thigh_heading_loop(
    qp, qt, g, rate_hz, valid=None, cfg=None, method="mean_axis", segment_axis=(0.0, 0.0, 1.0)
):
    """The per-window loop ``heading.correct_thigh_heading`` used before (offsets and windows)."""
    cfg = cfg or HeadingConfig()
    m = len(qt)
    ok = np.ones(m, bool) if valid is None else np.asarray(valid, dtype=bool)
    z_pel = quat_rotate(qp, np.asarray(segment_axis))
    z_thi = quat_rotate(qt, np.asarray(segment_axis))
    win = max(2, round(cfg.window_s * rate_hz))
    hop = max(1, round(cfg.hop_s * rate_hz))
    centres: list[float] = []
    offsets: list[float] = []
    anchor = np.zeros(m, dtype=bool)
    for a in range(0, max(1, m - win + 1), hop):
        sl = slice(a, a + win)
        k = ok[sl]
        if k.sum() < 0.8 * win:
            continue
        gw = g[sl][k]
        if np.sqrt(np.mean(np.sum(gw * gw, axis=1))) < cfg.min_gyr_rms_rad_s:
            continue
        gh = gw.copy()
        gh[:, 2] = 0.0
        cov = gh.T @ gh / len(gh)
        w, v = np.linalg.eigh(cov)
        if np.sqrt(w[2] / max(w[1], 1e-12)) < cfg.min_axis_ratio:
            continue
        zt = z_thi[sl][k].mean(axis=0)
        if method == "mean_axis":
            axis = zt
        else:
            axis = v[:, 2]
            if np.dot(axis[:2], zt[:2]) < 0:
                axis = -axis
        zp = z_pel[sl][k].mean(axis=0)
        offsets.append(float(_signed_angle_about_up(zp, axis)))
        centres.append(a + 0.5 * win)
        anchor[sl] = True
    if not offsets:
        return None, anchor
    off = np.unwrap(np.asarray(offsets))
    offset = np.interp(np.arange(m, dtype=np.float64), np.asarray(centres), off)
    return offset, anchor


def _drifting_thigh(seed: int, walk_s: float, static_s: float = 3.0):
    ori, _, truth = make_walk(with_mag=False, walk_s=walk_s, static_s=static_s, seed=seed)
    t = ori.t_s
    drift = quat_from_axis_angle(np.tile(_UP, (len(t), 1)), 25 * DEG + 0.2 * DEG * t)
    qt = quat_mul(drift, truth["q_world_thigh_r"])
    g = quat_rotate(drift, quat_rotate(ori.q_world_sensor["thigh_r"], ori.gyr_rad_s["thigh_r"]))
    return truth["q_world_pelvis"], qt, g, ori.rate_hz


@pytest.mark.parametrize("seed", [1, 2, 5])
@pytest.mark.parametrize("method", ["mean_axis", "flexion_axis"])
def test_correct_thigh_heading_vectorised_equals_loop(seed: int, method: str) -> None:
    qp, qt, g, rate = _drifting_thigh(seed, walk_s=30.0 + 7 * seed)
    rng = np.random.default_rng(seed)
    valid = np.ones(len(qt), bool)
    for _ in range(4):  # gaps: some windows lose > 20 % of their rows, some fewer
        a = int(rng.integers(0, len(qt) - 400))
        valid[a : a + int(rng.integers(20, 400))] = False
    cfgs = [
        HeadingConfig(),
        HeadingConfig(window_s=5.0, hop_s=1.5),  # hop does not divide the window
        HeadingConfig(window_s=3.0, hop_s=3.0, min_axis_ratio=1.5),
        HeadingConfig(window_s=4.0, hop_s=0.5, min_axis_ratio=6.8),  # ratio 6.5-7.1: some pass
    ]
    axes = [(0.0, 0.0, 1.0), (1.0, 0.0, 0.0)]
    for cfg in cfgs:
        for axis in axes:
            for v in (None, valid):
                want_off, want_anchor = _correct_thigh_heading_loop(
                    qp, qt, g, rate, v, cfg, method, axis
                )
                got = correct_thigh_heading(
                    qp, qt, g, rate, v, cfg, method=method, segment_axis=axis
                )
                np.testing.assert_array_equal(got.anchor, want_anchor)
                if want_off is None:
                    assert "unanchored" in got.note
                    continue
                assert want_anchor.any()
                np.testing.assert_allclose(got.offset_rad, want_off, rtol=0, atol=1e-9)


def test_correct_thigh_heading_short_and_standing_sessions_equal_loop() -> None:
    # shorter than one window (one truncated window), and standing only (no anchor)
    qp, qt, g, rate = _drifting_thigh(3, walk_s=6.0, static_s=0.5)
    for cfg in (HeadingConfig(window_s=8.0), HeadingConfig(window_s=7.0, min_gyr_rms_rad_s=0.1)):
        want_off, want_anchor = _correct_thigh_heading_loop(qp, qt, g, rate, cfg=cfg)
        got = correct_thigh_heading(qp, qt, g, rate, cfg=cfg)
        np.testing.assert_array_equal(got.anchor, want_anchor)
        if want_off is not None:
            np.testing.assert_allclose(got.offset_rad, want_off, rtol=0, atol=1e-9)
    still = dataclasses.replace(HeadingConfig(), min_gyr_rms_rad_s=100.0)
    got = correct_thigh_heading(qp, qt, g, rate, cfg=still)
    assert not got.anchor.any() and "unanchored" in got.note


# --------------------------------------------------------------------------------------------
# conventions.quat_rotate written out per component
# --------------------------------------------------------------------------------------------
def _quat_rotate_cross(q, v):
    """``conventions.quat_rotate`` before: two ``np.cross`` calls."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


_SHAPES = [((4,), (3,)), ((7, 4), (3,)), ((4,), (7, 3)), ((7, 4), (7, 3)), ((5, 1, 4), (1, 6, 3))]


@pytest.mark.parametrize(("q_shape", "v_shape"), _SHAPES)
def test_quat_rotate_componentwise_equals_cross_and_scipy(q_shape, v_shape) -> None:
    from imuhip.conventions import quat_normalize, to_rotation

    rng = np.random.default_rng(len(q_shape) * 10 + len(v_shape))
    for scale in (1e-3, 1.0, 1e3):
        q = quat_normalize(rng.normal(size=q_shape))
        v = scale * rng.normal(size=v_shape)
        got = quat_rotate(q, v)
        want = _quat_rotate_cross(q, v)
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_array_equal(got, want)  # bit-identical
        qb, vb = np.broadcast_arrays(q[..., :1], v[..., :1])
        qf = np.array(np.broadcast_to(q, (*qb.shape[:-1], 4)).reshape(-1, 4))
        vf = np.array(np.broadcast_to(v, (*vb.shape[:-1], 3)).reshape(-1, 3))
        np.testing.assert_allclose(
            got.reshape(-1, 3), to_rotation(qf).apply(vf), rtol=0, atol=1e-12 * scale
        )
    # list input and non-unit quaternions: the same formula
    np.testing.assert_array_equal(
        quat_rotate([1.0, 2.0, 0.5, -1.0], [0.3, 0.1, 2.0]),
        _quat_rotate_cross([1.0, 2.0, 0.5, -1.0], [0.3, 0.1, 2.0]),
    )


def test_quat_rotate_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="quat_rotate"):
        quat_rotate(np.ones((3, 3)), np.ones((3, 3)))
    with pytest.raises(ValueError, match="quat_rotate"):
        quat_rotate(np.ones((3, 4)), np.ones((3, 4)))


def _quat_normalize_norm(q):
    """``conventions.quat_normalize`` before: ``np.linalg.norm``."""
    q = np.asarray(q, dtype=np.float64)
    n = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(n)) or np.any(n == 0):
        raise ValueError("quaternion must be finite and non-zero")
    return q / n


@pytest.mark.parametrize("shape", [(4,), (1000, 4), (3, 5, 4), (40_000, 4)])
def test_quat_normalize_written_out_equals_linalg_norm(shape) -> None:
    from imuhip.conventions import quat_normalize

    rng = np.random.default_rng(len(shape))
    for scale in (1e-150, 1e-3, 1.0, 1e3, 1e150):
        q = scale * rng.normal(size=shape)
        np.testing.assert_array_equal(quat_normalize(q), _quat_normalize_norm(q))
    for bad in (np.zeros(shape), np.full(shape, np.nan), 1e-200 * np.ones(shape)):
        with pytest.raises(ValueError, match="finite and non-zero"):
            quat_normalize(bad)
        with pytest.raises(ValueError):
            _quat_normalize_norm(bad)


# --------------------------------------------------------------------------------------------
# compensation: absorption phase of many strides at once
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("side", ["left", "right"])
def test_absorption_phases_grouped_equal_per_stride(side: str) -> None:
    from imuhip.gait.compensation import _absorption_phases_deg, absorption_phase_deg

    rng = np.random.default_rng(4 if side == "left" else 5)
    n = 20_000
    t = np.arange(n) / 100.0
    pel = np.column_stack([0.1 * np.sin(2 * np.pi * t / 1.1) + 0.01 * rng.normal(size=n)] * 3)
    hip = 0.2 * np.sin(2 * np.pi * t / 1.1 + 1.0) + 0.02 * rng.normal(size=n)
    pel[5000:5200, 0] = 0.3  # flat pelvis: nan
    hip[9000:9010] = np.nan  # invalid samples inside a stride
    bounds, stances = [], []
    a = 0
    while a < n - 200:
        k = int(rng.choice([4, 9, 105, 110, 110, 111, 140]))  # many equal lengths, some short
        bounds.append((a, min(a + k, n)))
        stance = np.zeros(bounds[-1][1] - a, bool)
        stance[: int(rng.integers(0, len(stance) + 1))] = True  # some with no stance
        stances.append(stance)
        a += k
    got = _absorption_phases_deg(pel[:, 0].copy(), hip, side, bounds, stances)
    want = [
        absorption_phase_deg(pel[a:b, 0], hip[a:b], side, st)
        for (a, b), st in zip(bounds, stances, strict=True)
    ]
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    assert np.isfinite(want).sum() > 100 and np.isnan(want).sum() > 5


def test_fusion_row_norm_equals_linalg_norm() -> None:
    from imuhip.orientation.fusion._inputs import _row_norm

    rng = np.random.default_rng(9)
    for scale in (1e-100, 1e-3, 1.0, 1e5, 1e100):
        x = scale * rng.normal(size=(5000, 3))
        np.testing.assert_array_equal(_row_norm(x), np.linalg.norm(x, axis=1))


def test_asymmetry_shared_bootstrap_indices_equal_fresh_draws() -> None:
    from imuhip.gait.metrics import _asymmetry, asymmetry

    rng = np.random.default_rng(2)
    cache: dict = {}
    for k in range(12):
        left = rng.normal(10, 2, 300 + 40 * (k % 3))
        right = rng.normal(11, 2, 280)
        if k % 4 == 1:
            left[::17] = np.nan  # fewer finite strides: another key
        got = _asymmetry(f"m{k}", left, right, 2000, 0, cache)
        assert got == asymmetry(f"m{k}", left, right, seed=0)
    assert 1 < len(cache) < 12  # indices were shared between metrics


def test_mag_field_quality_and_heading_fix_unchanged() -> None:
    """Written-out norms and the broadcast up axis give the values of the general calls."""
    from imuhip.conventions import quat_normalize
    from imuhip.orientation.heading import mag_field_quality

    rng = np.random.default_rng(12)
    q = quat_normalize(rng.normal(size=(3000, 4)))
    mag = 45.0 * rng.normal(size=(3000, 3))
    mq = mag_field_quality(q, mag)
    mw = _quat_rotate_cross(q, mag)
    np.testing.assert_array_equal(mq.norm_ut, np.linalg.norm(mag, axis=1))
    np.testing.assert_array_equal(
        mq.dip_rad, np.arctan2(-mw[:, 2], np.linalg.norm(mw[:, :2], axis=1))
    )
    off = rng.uniform(-4, 4, 3000)
    np.testing.assert_array_equal(
        quat_from_axis_angle(_UP, -off), quat_from_axis_angle(np.tile(_UP, (3000, 1)), -off)
    )


def _quat_mul_stack(p, q):
    """``conventions.quat_mul`` before (whole arrays)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    pw, px, py, pz = np.moveaxis(p, -1, 0)
    qw, qx, qy, qz = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ],
        axis=-1,
    )


@pytest.mark.parametrize("rows", [16_383, 16_385, 50_001])
def test_quat_helpers_in_row_blocks_equal_whole_arrays(rows: int) -> None:
    from imuhip.conventions import quat_normalize

    rng = np.random.default_rng(rows)
    q = quat_normalize(rng.normal(size=(rows, 4)))
    p = rng.normal(size=(rows, 4))
    v = rng.normal(size=(rows, 3))
    for a, b in ((q, v), (q, v[7]), (q[3], v)):
        np.testing.assert_array_equal(quat_rotate(a, b), _quat_rotate_cross(a, b))
    for a, b in ((p, q), (p, q[5]), (p[2], q)):
        np.testing.assert_array_equal(quat_mul(a, b), _quat_mul_stack(a, b))
    with pytest.raises(ValueError):
        quat_mul(p, q[:-1])  # rows that do not broadcast still fail
    with pytest.raises(ValueError):
        quat_rotate(q, v[:-1])


def test_segment_calibration_skew_equals_power_form() -> None:
    from imuhip.orientation.segment_calibration import _skew

    rng = np.random.default_rng(13)
    for x in (rng.normal(size=50_000), rng.gamma(2.0, size=50_000), -rng.gamma(3.0, size=999)):
        d = x - np.mean(x)
        want = float(np.mean(d**3) / float(np.std(x)) ** 3)
        assert _skew(x) == pytest.approx(want, rel=1e-12, abs=1e-15)
    assert _skew(np.full(10, 2.0)) == 0.0
