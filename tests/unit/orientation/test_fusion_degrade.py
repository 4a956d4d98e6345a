"""An optional sensor whose orientation fusion fails is dropped with its reason; pelvis is not."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig, fuse_session_degrading
from imuhip.pipeline import _REQUIRED
from imuhip.sim import SimParams, simulate_session


@pytest.fixture(scope="module")
def aligned():
    sim = simulate_session(
        SimParams(duration_s=12.0, rate_hz=100, sensors=("pelvis", "thigh_l", "thigh_r", "shank_r"))
    )
    return align_session(decode_session(sim.delivered, sim.meta), AlignConfig())


def _without_valid_data(aligned, placement):
    s = aligned.sensors[placement]
    dead = dataclasses.replace(s, valid=np.zeros_like(s.valid))
    return dataclasses.replace(aligned, sensors={**aligned.sensors, placement: dead})


def test_an_optional_sensor_without_valid_data_is_dropped_with_its_reason(aligned):
    ori, dropped = fuse_session_degrading(
        _without_valid_data(aligned, "shank_r"), FuseConfig(), required=_REQUIRED
    )
    assert set(ori.q_world_sensor) == {"pelvis", "thigh_l", "thigh_r"}
    assert dropped == {"shank_r": {"stage": "fusion", "reason": dropped["shank_r"]["reason"]}}
    assert "invalid" in dropped["shank_r"]["reason"]


def test_a_clean_session_drops_nothing(aligned):
    ori, dropped = fuse_session_degrading(aligned, FuseConfig(), required=_REQUIRED)
    assert dropped == {} and set(ori.q_world_sensor) == set(aligned.sensors)


def test_the_pelvis_failing_is_an_error_naming_it(aligned):
    with pytest.raises(ValueError, match="pelvis"):
        fuse_session_degrading(
            _without_valid_data(aligned, "pelvis"), FuseConfig(), required=_REQUIRED
        )
