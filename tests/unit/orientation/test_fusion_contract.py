"""Contract every fusion method passes (6D and 9D): static, 180° turn, norms, ENU, q/-q."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.conventions import quat_from_axis_angle
from imuhip.orientation.fusion import estimate_orientation, estimate_orientation_full
from tests.unit._fusion_synth import (
    heading_of_x_rad,
    imu_from_trajectory,
    inclination_rad,
    yaw_trajectory,
)

RATE_HZ = 100.0
METHODS = ["vqf", "vqf_online", "madgwick", "mahony", "ekf"]


def _wrap(a: np.ndarray | float) -> np.ndarray:
    return (np.asarray(a) + np.pi) % (2 * np.pi) - np.pi


def _cmean(a: np.ndarray) -> float:
    return float(np.arctan2(np.sin(a).mean(), np.cos(a).mean()))


@pytest.fixture(params=METHODS)
def method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=[6, 9], ids=["6D", "9D"])
def dims(request: pytest.FixtureRequest) -> int:
    return int(request.param)


class TestFusionContract:
    def _run(self, method: str, dims: int, q_true: np.ndarray, noise: float = 1.0) -> np.ndarray:
        acc, gyr, mag = imu_from_trajectory(q_true, RATE_HZ, noise=noise)
        return estimate_orientation(
            acc, gyr, mag if dims == 9 else None, rate_hz=RATE_HZ, method=method
        )

    def test_static_stays_constant_and_level(self, method: str, dims: int) -> None:
        n = int(20 * RATE_HZ)
        q = self._run(method, dims, yaw_trajectory(np.full(n, 0.3)))
        tail = q[int(10 * RATE_HZ) :]
        assert np.degrees(inclination_rad(tail)).max() < 1.0
        drift = np.degrees(np.ptp(np.unwrap(heading_of_x_rad(tail))))
        assert drift < 1.0

    def test_shape_and_unit_norm(self, method: str, dims: int) -> None:
        n = 500
        q_true = yaw_trajectory(np.linspace(0, 1, n), quat_from_axis_angle([1, 1, 0], 0.4))
        q = self._run(method, dims, q_true)
        assert q.shape == (n, 4)
        assert q.dtype == np.float64
        np.testing.assert_allclose(np.linalg.norm(q, axis=1), 1.0, atol=1e-9)

    def test_turn_180_about_vertical(self, method: str, dims: int) -> None:
        still_s, turn_s = 8.0, 2.0
        n_still, n_turn = int(still_s * RATE_HZ), int(turn_s * RATE_HZ)
        yaw = np.concatenate(
            [np.zeros(n_still), np.linspace(0, np.pi, n_turn), np.full(n_still, np.pi)]
        )
        q = self._run(method, dims, yaw_trajectory(yaw))
        h = heading_of_x_rad(q)
        before = _cmean(h[n_still - 50 : n_still])
        after = _cmean(h[-50:])
        assert abs(abs(np.degrees(_wrap(after - before))) - 180.0) < 3.0
        # the turn went the right way: halfway through, heading is +90° (counter-clockwise)
        mid = h[n_still + n_turn // 2]
        assert abs(np.degrees(_wrap(mid - before)) - 90.0) < 5.0
        if dims == 9:  # absolute: started with x east, ends with x west
            assert abs(np.degrees(_wrap(after - np.pi))) < 3.0
        assert np.degrees(inclination_rad(q[-50:])).max() < 2.0

    def test_enu_flat_x_north(self, method: str) -> None:
        n = int(15 * RATE_HZ)
        q = self._run(method, 9, yaw_trajectory(np.full(n, np.pi / 2)))
        h_deg = np.degrees(heading_of_x_rad(q[-100:]))
        assert np.all(np.abs(h_deg - 90.0) < 2.0), "x north must give ENU heading 90°"

    def test_q_and_minus_q_same_angles(self, method: str, dims: int) -> None:
        n = 300
        q_true = yaw_trajectory(np.linspace(0, 2, n), quat_from_axis_angle([0, 1, 0], 0.5))
        acc, gyr, mag = imu_from_trajectory(q_true, RATE_HZ)
        res = estimate_orientation_full(
            acc, gyr, mag if dims == 9 else None, rate_hz=RATE_HZ, method=method
        )
        q = res.q_world_sensor
        np.testing.assert_allclose(heading_of_x_rad(q), heading_of_x_rad(-q), atol=1e-12)
        np.testing.assert_allclose(inclination_rad(q), inclination_rad(-q), atol=1e-12)
        assert res.uses_mag is (dims == 9)
        assert res.rest.shape == (n,)
        assert (res.mag_disturbed is None) is (dims == 6)
