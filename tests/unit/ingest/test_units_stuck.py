"""A stuck sensor (frozen accelerometer and gyroscope) is named before calibration can fail."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from imuhip.ingest.units_check import GyroUnitsError, check_session_gyro_units
from imuhip.sim import SimParams, SimSamples, simulate_session
from tests.unit.ingest.test_units_check import _aligned


@pytest.fixture(scope="module")
def walk() -> dict[str, SimSamples]:
    sensors = ("pelvis", "thigh_l", "thigh_r", "lumbar")
    return simulate_session(
        SimParams(duration_s=20.0, rate_hz=100, sensors=sensors, seed=5)
    ).samples


def _frozen(walk: dict[str, SimSamples], p: str) -> dict[str, SimSamples]:
    s = walk[p]
    n = len(s.t_s)
    acc = np.tile([0.5, -9.7, 1.2], (n, 1))
    return {**walk, p: dataclasses.replace(s, acc_m_s2=acc, gyr_rad_s=np.zeros((n, 3)))}


def test_working_sensors_are_not_stuck(walk: dict[str, SimSamples]) -> None:
    out = check_session_gyro_units(_aligned(walk, {}))
    assert not [w for w in out["warnings"] if "stuck" in w]


def test_stuck_thigh_refuses_naming_it(walk: dict[str, SimSamples]) -> None:
    with pytest.raises(GyroUnitsError, match=r"^sensor thigh_r is stuck: accelerometer and gyro"):
        check_session_gyro_units(_aligned(_frozen(walk, "thigh_r"), {}))


def test_stuck_optional_sensor_is_a_warning(walk: dict[str, SimSamples]) -> None:
    out = check_session_gyro_units(_aligned(_frozen(walk, "lumbar"), {}))
    stuck = [w for w in out["warnings"] if "stuck" in w]
    assert len(stuck) == 1 and stuck[0].startswith("lumbar: stuck: accelerometer and gyroscope")
    assert "acc [0.5, -9.7, 1.2] m/s^2" in stuck[0]
