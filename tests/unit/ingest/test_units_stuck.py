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


def _frozen_rows(walk: dict[str, SimSamples], p: str, stop: int) -> dict[str, SimSamples]:
    """``p`` frozen at a constant reading in its first ``stop`` rows only."""
    s = walk[p]
    acc = s.acc_m_s2.copy()
    gyr = s.gyr_rad_s.copy()
    acc[:stop] = [0.5, -9.7, 1.2]
    gyr[:stop] = 0.0
    return {**walk, p: dataclasses.replace(s, acc_m_s2=acc, gyr_rad_s=gyr)}


def test_frozen_start_that_moves_later_is_not_stuck(walk: dict[str, SimSamples]) -> None:
    # 15 s frozen (more rows than the first look covers), then 5 s of walking: not stuck
    n = len(walk["thigh_r"].t_s)
    out = check_session_gyro_units(_aligned(_frozen_rows(walk, "thigh_r", n - 500), {}))
    assert not [w for w in out["warnings"] if "stuck" in w]
    assert out["sensors"]["thigh_r"]["status"] != "dead"


def test_stuck_counts_only_valid_rows(walk: dict[str, SimSamples]) -> None:
    # the rows that differ are all invalid: every valid one is frozen, so stuck
    aligned = _aligned(_frozen_rows(walk, "lumbar", len(walk["lumbar"].t_s)), {})
    s = aligned.sensors["lumbar"]
    acc = s.acc_m_s2.copy()
    acc[:500] += np.linspace(0.0, 1.0, 500)[:, None]  # moving, but not real samples
    valid = np.ones(len(acc), bool)
    valid[:500] = False
    lumbar = dataclasses.replace(s, acc_m_s2=acc, valid=valid)
    out = check_session_gyro_units(
        dataclasses.replace(aligned, sensors={**aligned.sensors, "lumbar": lumbar})
    )
    stuck = [w for w in out["warnings"] if "stuck" in w]
    n_valid = len(acc) - 500
    assert len(stuck) == 1 and f"in all {n_valid} samples ({n_valid / 100:.1f} s" in stuck[0]
