"""Magnetic field quality, 6D relative heading correction and transverse confidence."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.conventions import Side, quat_from_axis_angle, quat_mul, quat_normalize, quat_rotate
from imuhip.gait.joints import hip_angles
from imuhip.orientation.heading import (
    HeadingConfig,
    MagQuality,
    correct_thigh_heading,
    mag_field_quality,
    transverse_confidence,
)
from tests.unit._walk_sessions import drifting_walk
from tests.unit._walk_synth import DEG, MAG_WORLD_UT, make_walk

_UP = np.array([0.0, 0.0, 1.0])


@pytest.fixture(scope="module")
def walk():
    return make_walk(with_mag=True, walk_s=40, seed=11)


def test_dip_and_norm_known_answer(walk) -> None:
    ori, _, _ = walk
    mq = mag_field_quality(ori.q_world_sensor["thigh_r"], ori.mag_ut["thigh_r"])
    np.testing.assert_allclose(mq.norm_ut, np.linalg.norm(MAG_WORLD_UT), rtol=1e-9)
    np.testing.assert_allclose(mq.dip_rad, np.arctan2(40, 20), atol=1e-9)
    assert mq.clean.all()


def test_disturbance_detected_and_reported(walk) -> None:
    ori, _, _ = walk
    mag = dict(ori.mag_ut)
    m = np.array(mag["thigh_r"], copy=True)
    sl = slice(int(12 * ori.rate_hz), int(18.5 * ori.rate_hz))
    m[sl] += quat_rotate(ori.q_world_sensor["thigh_r"][sl], [0.0, 0.0, -15.0])  # iron nearby
    mag["thigh_r"] = m
    mq = mag_field_quality(ori.q_world_sensor["thigh_r"], m)
    assert not mq.clean[sl].any()
    assert mq.clean[: sl.start].all() and mq.clean[sl.stop :].all()
    conf, reasons = transverse_confidence(dataclasses.replace(ori, mag_ut=mag))
    assert np.all(conf[: sl.start] == 1.0)
    assert np.all(conf[sl] < 1.0)
    assert any("magnetic disturbance on thigh_r 12.0-18.5 s" in r for r in reasons)


def test_clean_9d_confidence_is_one(walk) -> None:
    ori, _, _ = walk
    conf, reasons = transverse_confidence(ori)
    assert np.all(conf == 1.0) and reasons == ()


def test_drift_removed_excursion_kept(walk) -> None:
    ori, _, truth = walk
    rate = ori.rate_hz
    qp = truth["q_world_pelvis"]
    qt_true = truth["q_world_thigh_r"]
    t = ori.t_s
    drift = quat_from_axis_angle(np.tile([0, 0, 1.0], (len(t), 1)), 25 * DEG + 0.2 * DEG * t)
    qt = quat_mul(drift, qt_true)  # the thigh filter's heading drifts by 12 deg/min
    # thigh angular velocity in its (drifting) world frame
    gyr_world = quat_rotate(ori.q_world_sensor["thigh_r"], ori.gyr_rad_s["thigh_r"])
    gyr_world = quat_rotate(drift, gyr_world)
    corr = correct_thigh_heading(qp, qt, gyr_world, rate, name="thigh_r")
    w = t > 5
    err = (hip_angles(qp, corr.q_world_thigh, Side.RIGHT) - truth["hip_right"])[w] / DEG
    assert np.sqrt(np.mean(err[:, 2] ** 2)) < 1.0
    assert corr.drift_rad_per_s == pytest.approx(0.2 * DEG, rel=0.2)
    assert "deg/min" in corr.note
    # per-stride excursion untouched: compare peak-to-peak per 1.1 s stride
    ir = hip_angles(qp, corr.q_world_thigh, Side.RIGHT)[:, 2]
    ir_true = truth["hip_right"][:, 2]
    n = int(1.1 * rate)
    for a in range(int(6 * rate), len(t) - n, n):
        assert np.ptp(ir[a : a + n]) == pytest.approx(np.ptp(ir_true[a : a + n]), abs=0.5 * DEG)


def test_unanchored_when_standing() -> None:
    ori, _, truth = make_walk(with_mag=False, static_s=5, walk_s=0.1)
    g = quat_rotate(ori.q_world_sensor["thigh_r"], ori.gyr_rad_s["thigh_r"])
    corr = correct_thigh_heading(truth["q_world_pelvis"], truth["q_world_thigh_r"], g, ori.rate_hz)
    assert np.all(corr.confidence == 0.0)
    assert "unanchored" in corr.note


def test_confidence_decays_from_the_last_clean_sample(walk) -> None:
    """A disturbed field is held by the gyroscope: 0.9 exp(-t / mag_hold_tau_s) after the last
    clean sample, 1 again once the field is clean, and the disturbance is reported once."""
    ori, _, _ = walk
    a, b = int(20 * ori.rate_hz), int(23 * ori.rate_hz)
    mag = dict(ori.mag_ut)
    mag["thigh_r"] = np.array(mag["thigh_r"], copy=True)
    mag["thigh_r"][a:b] *= 1.4  # norm off by 40 %
    cfg = HeadingConfig()
    conf, reasons = transverse_confidence(dataclasses.replace(ori, mag_ut=mag), cfg=cfg)
    since_s = (np.arange(a, b) - (a - 1)) / ori.rate_hz
    np.testing.assert_allclose(conf[a:b], 0.9 * np.exp(-since_s / cfg.mag_hold_tau_s), rtol=1e-12)
    assert np.all(conf[:a] == 1.0) and np.all(conf[b:] == 1.0)
    t = ori.t_s
    assert reasons == (f"magnetic disturbance on thigh_r {t[a]:.1f}-{t[b - 1]:.1f} s",)


# ---------------------------------------------------------------------------------------------
# field quality against numpy; the walking-axis fit against a window-by-window numpy fit
# ---------------------------------------------------------------------------------------------


def _mag_quality_numpy(q_world_sensor, mag_ut, ref_window=None, cfg=None) -> MagQuality:
    """Norm, dip of the world field below the horizon, their ``np.median`` references."""
    cfg = cfg or HeadingConfig()
    q = np.asarray(q_world_sensor, dtype=np.float64)
    m = np.asarray(mag_ut, dtype=np.float64)
    mw = quat_rotate(q, m)
    norm = np.sqrt(m[:, 0] * m[:, 0] + m[:, 1] * m[:, 1] + m[:, 2] * m[:, 2])
    dip = np.arctan2(-mw[:, 2], np.sqrt(mw[:, 0] * mw[:, 0] + mw[:, 1] * mw[:, 1]))
    sl = slice(*ref_window) if ref_window is not None else slice(None)
    ref_n = float(np.median(norm[sl]))
    ref_d = float(np.median(dip[sl]))
    clean = (np.abs(norm - ref_n) < cfg.max_norm_dev_frac * ref_n) & (
        np.abs(dip - ref_d) < cfg.max_dip_dev_rad
    )
    return MagQuality(norm, dip, clean, ref_n, ref_d)


def test_mag_field_quality_equals_numpy_norm_dip_and_median() -> None:
    ori, _ = drifting_walk(7, with_mag=True, gaps=True, disturb=True)
    for p in ("pelvis", "thigh_r", "thigh_l"):
        for ref_window in (None, (0, 250), (0, 251)):  # odd and even median sizes
            got = mag_field_quality(ori.q_world_sensor[p], ori.mag_ut[p], ref_window)
            want = _mag_quality_numpy(ori.q_world_sensor[p], ori.mag_ut[p], ref_window)
            for f in ("norm_ut", "dip_rad", "clean"):
                np.testing.assert_array_equal(getattr(got, f), getattr(want, f))
            assert (got.ref_norm_ut, got.ref_dip_rad) == (want.ref_norm_ut, want.ref_dip_rad)
    _, reasons = transverse_confidence(ori)
    assert any("magnetic disturbance on thigh_r" in r for r in reasons)


def _fit_window_by_window(qp, qt, g, rate_hz, valid, method, segment_axis, cfg):
    """The walking-axis fit as :func:`correct_thigh_heading` describes it, one window at a time:
    a window is an anchor with >= 80 % valid samples, the thigh angular velocity RMS and the
    first/second principal ratio of its horizontal angular velocity (``np.linalg.eigh``) above
    the thresholds; its offset is the angle about up from the mean pelvis axis to the mean
    segment axis (``mean_axis``) or to the principal axis signed like it (``flexion_axis``)."""
    m = len(qt)
    win = max(2, round(cfg.window_s * rate_hz))
    hop = max(1, round(cfg.hop_s * rate_hz))
    z_p = quat_rotate(qp, np.asarray(segment_axis))
    z_t = quat_rotate(qt, np.asarray(segment_axis))
    starts, offsets = [], []
    for s in range(0, max(1, m - win + 1), hop):
        ok = valid[s : s + win]
        n = int(ok.sum())
        if n < 0.8 * win:
            continue
        gw = g[s : s + win][ok]
        if np.sqrt(np.mean(np.sum(gw * gw, axis=1))) < cfg.min_gyr_rms_rad_s:
            continue
        h = gw.copy()
        h[:, 2] = 0.0
        w, v = np.linalg.eigh(h.T @ h / n)
        if np.sqrt(w[2] / max(w[1], 1e-12)) < cfg.min_axis_ratio:
            continue
        zt = z_t[s : s + win][ok].mean(axis=0)
        zp = z_p[s : s + win][ok].mean(axis=0)
        axis = zt
        if method == "flexion_axis":
            axis = v[:, 2] if v[0, 2] * zt[0] + v[1, 2] * zt[1] >= 0 else -v[:, 2]
        cross = zp[0] * axis[1] - zp[1] * axis[0]
        offsets.append(np.arctan2(cross, zp[0] * axis[0] + zp[1] * axis[1]))
        starts.append(s)
    return np.asarray(starts), np.asarray(offsets), win


@pytest.mark.parametrize("seed", [0, 2])
@pytest.mark.parametrize("method", ["mean_axis", "flexion_axis"])
def test_correct_thigh_heading_equals_a_window_by_window_fit(seed: int, method: str) -> None:
    ori, segcal = drifting_walk(seed, with_mag=False, gaps=True, disturb=False)
    cfg = HeadingConfig()
    rate = ori.rate_hz
    cal = segcal.q_sensor_segment
    qp = quat_normalize(quat_mul(ori.q_world_sensor["pelvis"], cal["pelvis"]))
    g = quat_rotate(ori.q_world_sensor["thigh_r"], ori.gyr_rad_s["thigh_r"])
    for seg, axis in (("thigh_r", (0.0, 0.0, 1.0)), ("lumbar", (1.0, 0.0, 0.0))):
        qt = quat_normalize(quat_mul(ori.q_world_sensor[seg], cal[seg]))
        ok = ori.valid[seg] & ori.valid["pelvis"]
        got = correct_thigh_heading(
            qp, qt, g, rate, valid=ok, method=method, segment_axis=axis, name=seg
        )
        starts, off, win = _fit_window_by_window(qp, qt, g, rate, ok, method, axis, cfg)
        assert len(starts) > 1
        m = len(qt)
        anchor = np.zeros(m, bool)
        for s in starts:
            anchor[s : s + win] = True
        np.testing.assert_array_equal(got.anchor, anchor)
        centres = starts + 0.5 * win
        off = np.unwrap(off)
        offset = np.interp(np.arange(m, dtype=np.float64), centres, off)
        np.testing.assert_allclose(got.offset_rad, offset, rtol=0, atol=1e-12)
        q_fix = quat_mul(quat_from_axis_angle(_UP, -offset), qt)
        np.testing.assert_allclose(got.q_world_thigh, q_fix, rtol=0, atol=1e-12)
        drift = np.polyfit(centres / rate, off, 1)[0]
        assert got.drift_rad_per_s == pytest.approx(drift, rel=1e-9, abs=1e-15)
        dist = np.min(np.abs(np.arange(m)[:, None] - centres[None, :]), axis=1) / rate
        conf = cfg.anchored_confidence * np.exp(
            -np.maximum(dist - 0.5 * cfg.window_s, 0.0) / cfg.anchor_tau_s
        )
        np.testing.assert_allclose(got.confidence, conf, rtol=1e-12, atol=0)
        assert got.note == (
            f"6D: {seg} heading anchored by walking-axis constraint in {len(starts)} windows, "
            f"drift {np.rad2deg(got.drift_rad_per_s) * 60:.1f} deg/min"
        )


def test_correct_thigh_heading_leaves_standing_unanchored_and_checks_shapes() -> None:
    ori, _ = drifting_walk(1, with_mag=False, gaps=False, disturb=False)
    n = 600  # the standing part only: no anchor window
    qp = ori.q_world_sensor["pelvis"][:n]
    qt = ori.q_world_sensor["thigh_l"][:n]
    g = ori.gyr_rad_s["thigh_l"][:n]
    got = correct_thigh_heading(qp, qt, g, ori.rate_hz)
    assert not got.anchor.any()
    np.testing.assert_array_equal(got.q_world_thigh, qt)
    np.testing.assert_array_equal(got.offset_rad, np.zeros(n))
    np.testing.assert_array_equal(got.confidence, np.zeros(n))
    assert np.isnan(got.drift_rad_per_s)
    assert (
        got.note == "6D: thigh relative heading unanchored (no walking with a clear flexion axis)"
    )
    with pytest.raises(ValueError, match="same M"):
        correct_thigh_heading(qp, qt[:-1], g, ori.rate_hz)
