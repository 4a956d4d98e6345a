"""The thigh heading correction equals its per-window definition; magnetic field quality its
formulas.

``correct_thigh_heading`` finds its anchor windows and offsets in compiled passes; here they are
computed window by window in plain numpy (walking RMS, principal-axis ratio, mean axes, signed
angle about up) and interpolated with ``np.interp``.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from imuhip.conventions import quat_from_axis_angle, quat_mul, quat_rotate
from imuhip.orientation.heading import HeadingConfig, correct_thigh_heading
from tests.unit._walk_synth import DEG, make_walk

_UP = np.array([0.0, 0.0, 1.0])


def _signed_angle_about_up(a, b) -> float:
    """Angle that turns the horizontal part of ``a`` onto that of ``b`` about world up."""
    return math.atan2(a[0] * b[1] - a[1] * b[0], a[0] * b[0] + a[1] * b[1])


def _thigh_heading_per_window(
    qp, qt, g, rate_hz, valid=None, cfg=None, method="mean_axis", segment_axis=(0.0, 0.0, 1.0)
):
    """The definition, window by window in plain numpy: anchor windows and their offsets."""
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
        offsets.append(_signed_angle_about_up(zp, axis))
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
def test_thigh_heading_offsets_equal_per_window_definition(seed: int, method: str) -> None:
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
                want_off, want_anchor = _thigh_heading_per_window(
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


def test_short_and_standing_sessions_equal_per_window_definition() -> None:
    # shorter than one window (one truncated window), and standing only (no anchor)
    qp, qt, g, rate = _drifting_thigh(3, walk_s=6.0, static_s=0.5)
    for cfg in (HeadingConfig(window_s=8.0), HeadingConfig(window_s=7.0, min_gyr_rms_rad_s=0.1)):
        want_off, want_anchor = _thigh_heading_per_window(qp, qt, g, rate, cfg=cfg)
        got = correct_thigh_heading(qp, qt, g, rate, cfg=cfg)
        np.testing.assert_array_equal(got.anchor, want_anchor)
        if want_off is not None:
            np.testing.assert_allclose(got.offset_rad, want_off, rtol=0, atol=1e-9)
    still = dataclasses.replace(HeadingConfig(), min_gyr_rms_rad_s=100.0)
    got = correct_thigh_heading(qp, qt, g, rate, cfg=still)
    assert not got.anchor.any() and "unanchored" in got.note


def _quat_rotate_cross(q, v):
    """The textbook rotation ``v + 2 w (u x v) + 2 u x (u x v)``: two ``np.cross`` calls."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    w = q[..., :1]
    u = q[..., 1:]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def test_mag_field_quality_and_heading_fix_equal_their_formulas() -> None:
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
