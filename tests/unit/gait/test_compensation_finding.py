"""The compensation finding belongs to the restricted hip, not to each side above the band."""

from __future__ import annotations

import pytest

from imuhip.gait.compensation import compensation_finding
from imuhip.gait.norms import gait_flags


@pytest.mark.parametrize(
    ("indices", "restricted", "pattern", "side"),
    [
        # README walker (right hip capped): both sides above the band -> the right hip
        ({"left": 2.04, "right": 2.65}, "right", "restricted_side", "right"),
        # only the unrestricted side crosses the band (issue 16): still the right hip
        ({"left": 2.04, "right": 1.90}, "right", "restricted_side", "right"),
        ({"left": 2.30, "right": 2.10}, None, "whole_trunk", None),
        ({"left": 0.50, "right": 2.10}, None, "one_side", "right"),
        ({"left": 1.92, "right": 1.50}, "right", "none", None),
        ({}, None, "none", None),
    ],
)
def test_compensation_finding_patterns(indices, restricted, pattern, side):
    f = compensation_finding(indices, 1.96, restricted)
    assert (f.pattern, f.side) == (pattern, side)
    if side is not None:
        assert f.index == indices[side]


def test_gait_flags_give_one_compensation_flag_on_the_restricted_side():
    flags = gait_flags(
        {"left": {"hip_rotation_excursion_deg": 9.7}, "right": {"hip_rotation_excursion_deg": 5.6}},
        {"pelvis_rotation_range_deg": 12.1},
        {"hip_rotation_excursion_deg": (-4.0, -4.2, -3.9)},
        {"left": (2.04, 1.96), "right": (2.65, 1.96)},
    )
    comp = [f for f in flags if f.code == "hip_lumbar_compensation"]
    assert len(comp) == 1
    assert comp[0].side == "right"
    assert comp[0].value == pytest.approx(2.65)
    assert "restricted right hip" in comp[0].message
    assert "left 2.04, right 2.65" in comp[0].message


def test_gait_flags_whole_trunk_flag_has_no_side():
    flags = gait_flags(
        {"left": {"hip_rotation_excursion_deg": 7.0}, "right": {"hip_rotation_excursion_deg": 7.1}},
        {},
        {"hip_rotation_excursion_deg": (0.1, -0.3, 0.5)},
        {"left": (2.3, 1.96), "right": (2.1, 1.96)},
    )
    comp = [f for f in flags if f.code == "hip_lumbar_compensation"]
    assert [(f.side, f.value) for f in comp] == [(None, 2.3)]
    assert "whole trunk" in comp[0].message


def test_a_mean_of_one_or_two_strides_is_not_compared_with_its_norm() -> None:
    """flaggable_means keeps the means of NORM_FLAG_MIN_STRIDES strides or more: a pelvis
    rotation range of 19.6 deg from 1 stride makes no flag, from 3 strides it does."""
    from imuhip.gait.metrics import MetricSummary
    from imuhip.gait.norms import NORM_FLAG_MIN_STRIDES, flaggable_means

    assert NORM_FLAG_MIN_STRIDES == 3

    def flags(n: int) -> set[str]:
        trunk = {"pelvis_rotation_range_deg": MetricSummary(19.6, 0.5, 19.6, n)}
        per_side = {"left": {"hip_rotation_excursion_deg": MetricSummary(30.0, 1.0, 30.0, n)}}
        got = gait_flags(
            {s: flaggable_means(m) for s, m in per_side.items()}, flaggable_means(trunk), {}, {}
        )
        return {f.code for f in got}

    assert flags(1) == flags(2) == set()
    assert flags(3) == {
        "pelvis_rotation_range_deg_above_norm",
        "hip_rotation_excursion_deg_above_norm",
    }
