"""Hip–lumbar compensation index: ingredients with known answers, side attribution."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import hilbert

from imuhip.gait.compensation import (
    CompensationReference,
    absorption_phase_deg,
    compensation_index,
    side_index,
)
from imuhip.gait.events import Stride
from imuhip.gait.metrics import stride_metrics, stride_metrics_many
from imuhip.types import JointAngles
from tests.unit.gait._synthetic_walk import synthetic_walk

RATE = 100.0


def test_absorption_phase_known_answers():
    t = np.arange(0, 1, 1 / RATE)
    p = np.sin(2 * np.pi * t)
    stance = np.ones_like(t, bool)
    # right: absorbed when hip IR = -pelvis rotation (in phase after the side sign)
    assert absorption_phase_deg(p, -p, "right", stance) == pytest.approx(0, abs=3)
    assert absorption_phase_deg(p, p, "right", stance) == pytest.approx(180, abs=3)
    assert absorption_phase_deg(p, p, "left", stance) == pytest.approx(0, abs=3)
    q = np.cos(2 * np.pi * t)
    assert absorption_phase_deg(p, q, "left", stance) == pytest.approx(90, abs=8)
    assert np.isnan(absorption_phase_deg(p, np.zeros_like(p), "left", stance))


def _session(hip_exc=(10.0, 10.0), pelvis_rot=10.0, lumbar_rot=None, n=10):
    t = np.arange(0, n + 2, 1 / RATE)
    ph = 2 * np.pi * t
    hip = {
        side: np.stack(
            [np.zeros_like(t), np.zeros_like(t), np.radians(e / 2) * np.sin(ph + 1.9)], axis=1
        )
        for side, e in zip(("left", "right"), hip_exc, strict=True)
    }
    pel = np.stack([np.radians(pelvis_rot / 2) * np.sin(ph), 0 * t, 0 * t], axis=1)
    lum = None
    if lumbar_rot is not None:
        lum = np.stack([0 * t, 0 * t, np.radians(lumbar_rot / 2) * np.sin(ph)], axis=1)
    ang = JointAngles(t, hip, pel, lum, np.ones_like(t, bool))
    strides = [
        Stride(
            side, k, int((1 + k) * RATE), int((2 + k) * RATE), 1.0 + k, 2.0 + k, 1.6 + k, 0.0, None
        )
        for side in ("left", "right")
        for k in range(n)
    ]
    return ang, strides, [stride_metrics(ang, s) for s in strides]


def test_ratio_ingredient_and_side_attribution():
    # phase ingredient neutralised (huge SD) to test the ratio ingredient alone
    ref = CompensationReference(ratio_mean=0.0, ratio_sd=0.35, phase_sd_deg=1e9)
    ang, st, per = _session(hip_exc=(10.0, 10.0), pelvis_rot=10.0)
    typical = compensation_index(ang, st, per, ref)
    assert typical["left"].ratio == pytest.approx(0.0, abs=0.01)
    assert typical["left"].z_ratio == pytest.approx(0.0, abs=0.05)
    ang, st, per = _session(hip_exc=(10.0, 4.0), pelvis_rot=16.0)
    comp = compensation_index(ang, st, per, ref)
    assert comp["right"].ratio == pytest.approx(np.log(16 / 4), abs=0.01)
    assert comp["right"].index > comp["left"].index > typical["left"].index
    assert comp["right"].flagged
    assert comp["right"].n_strides == 10


def test_lumbar_adds_to_trunk_range():
    ang, st, per = _session(pelvis_rot=10.0, lumbar_rot=8.0)
    res = compensation_index(ang, st, per)
    assert res["left"].with_lumbar
    assert res["left"].ratio == pytest.approx(np.log(18 / 10), abs=0.01)


def test_invalid_strides_ignored_and_no_pelvis_gives_nothing():
    ang, st, per = _session()
    st = [
        Stride(s.side, s.number, s.start_idx, s.stop_idx, s.ic_s, s.next_ic_s, s.to_s, 0.0, "gap")
        for s in st
    ]
    assert compensation_index(ang, st, per) == {}
    ang2 = JointAngles(ang.t_s, ang.hip_rad, None, None, ang.valid)
    assert compensation_index(ang2, st, per) == {}


# ---------------------------------------------------------------------------------------------
# a long walk: the batch index against scipy's Hilbert transform, one stride at a time
# ---------------------------------------------------------------------------------------------
_SIGN = {"right": -1.0, "left": 1.0}


def _absorption_phase_scipy(p_rad, h_rad, side, stance):
    """Mean |relative phase| in stance from :func:`scipy.signal.hilbert` (Lamb & Stöckl 2014)."""
    if len(p_rad) < 8 or not stance.any():
        return float("nan")
    p = p_rad - np.mean(p_rad)
    h = _SIGN[side] * (h_rad - np.mean(h_rad))
    if np.ptp(p) < 1e-6 or np.ptp(h) < 1e-6:
        return float("nan")
    phi_p, phi_h = np.angle(hilbert(np.stack([p, h])))
    d = np.angle(np.exp(1j * (phi_p - phi_h)))
    return float(np.degrees(np.mean(np.abs(d[stance]))))


def _compensation_index_per_stride(angles, strides, per_stride, ref):
    """The index from per-stride log ratios and scipy Hilbert phases, one stride at a time."""
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
                _absorption_phase_scipy(angles.pelvis_rad[a:b, 0], hip[a:b, 2], side, stance)
            )
        res = side_index(side, ratios, phases, with_lumbar, ref)
        if res is not None:
            out[side] = res
    return out


@pytest.mark.parametrize("seed", [1, 2])
def test_compensation_index_equals_per_stride_scipy_hilbert(seed: int) -> None:
    _, _, angles, *_, strides = synthetic_walk(seed)
    per = stride_metrics_many(angles, strides)
    ref = CompensationReference()
    got = compensation_index(angles, strides, per, ref)
    want = _compensation_index_per_stride(angles, strides, per, ref)
    assert set(got) == set(want) == {"left", "right"}
    for side in got:
        g, w_ = got[side], want[side]
        assert (g.n_strides, g.flagged, g.with_lumbar) == (w_.n_strides, w_.flagged, w_.with_lumbar)
        for f in ("index", "ratio", "z_ratio", "phase_deg", "z_phase"):
            assert getattr(g, f) == pytest.approx(getattr(w_, f), abs=1e-9, rel=0), f
