"""Known answers for the thigh-on-the-labelled-leg check (peak hip flexion phase vs IC)."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.gait.events import SideEvents, Stride
from imuhip.gait.leg_check import MAX_FLEXION_PEAK_OFFSET_PCT, thigh_side_check
from imuhip.types import JointAngles

RATE_HZ, STRIDE_S, N_STRIDES = 100.0, 1.2, 6


def _walk(peak_pct: dict[str, float], source: str = "shank_gyro"):
    """Hip flexion a cosine peaking at ``peak_pct`` % of each stride (IC at k * STRIDE_S)."""
    t = np.arange(round(N_STRIDES * STRIDE_S * RATE_HZ)) / RATE_HZ
    hips = {}
    for side, pct in peak_pct.items():
        flex = np.deg2rad(20.0) * np.cos(2 * np.pi * (t / STRIDE_S - pct / 100.0))
        hips[side] = np.column_stack([flex, np.zeros_like(t), np.zeros_like(t)])
    angles = JointAngles(
        t_s=t, hip_rad=hips, pelvis_rad=None, lumbar_rad=None, valid=np.ones(len(t), bool)
    )
    n = round(STRIDE_S * RATE_HZ)
    strides = [
        Stride(side, k, k * n, (k + 1) * n, k * STRIDE_S, (k + 1) * STRIDE_S, None, 0.0, None)
        for side in peak_pct
        for k in range(N_STRIDES - 1)
    ]
    ic = np.arange(N_STRIDES) * STRIDE_S
    events = {s: SideEvents(s, source, ic, ic + 0.7, ic + 0.9) for s in peak_pct}
    return angles, strides, events


@pytest.mark.parametrize("pct", [0.0, 5.0, 92.0, 97.0])
def test_peak_flexion_near_initial_contact_is_on_the_labelled_leg(pct: float) -> None:
    checks, warnings = thigh_side_check(*_walk({"left": pct, "right": pct}))
    assert warnings == []
    for side in ("left", "right"):
        assert checks[side]["on_labelled_leg"]
        assert checks[side]["n_strides"] == N_STRIDES - 1
        got = checks[side]["hip_flexion_peak_pct"]
        assert min(abs(got - pct), 100 - abs(got - pct)) < 1.0  # one sample = 0.83 %


def test_peak_flexion_half_a_stride_off_names_the_thigh() -> None:
    checks, warnings = thigh_side_check(*_walk({"left": 55.0, "right": 2.0}))
    assert checks["left"]["hip_flexion_peak_pct"] == pytest.approx(55.0, abs=1.0)
    assert not checks["left"]["on_labelled_leg"] and checks["right"]["on_labelled_leg"]
    assert len(warnings) == 1 and warnings[0].startswith("thigh_l: hip flexion peaks at 55 %")
    assert "events from shank_l" in warnings[0]


def test_threshold_and_thigh_events_are_not_checked() -> None:
    off = MAX_FLEXION_PEAK_OFFSET_PCT
    checks, _ = thigh_side_check(*_walk({"left": off - 2.0, "right": off + 2.0}))
    assert checks["left"]["on_labelled_leg"] and not checks["right"]["on_labelled_leg"]
    # events from the thighs themselves: peak flexion is at IC by construction, no check
    checks, warnings = thigh_side_check(*_walk({"left": 50.0}, source="thigh_gyro"))
    assert checks == {} and warnings == []
