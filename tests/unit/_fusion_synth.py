"""Synthetic IMU data from a known orientation trajectory (no linear acceleration)."""

from __future__ import annotations

import numpy as np

from imuhip.conventions import (
    GRAVITY_M_S2,
    from_rotation,
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    to_rotation,
)

MAG_WORLD_UT = np.array([0.0, 20.0, -40.0])  # ENU: north and down (northern hemisphere)


def imu_from_trajectory(
    q_world_sensor: np.ndarray, rate_hz: float, noise: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """acc (m/s², specific force), gyr (rad/s), mag (µT), all sensor frame, from q_world_sensor."""
    q = np.asarray(q_world_sensor, float)
    q_inv = quat_conj(q)
    acc = quat_rotate(q_inv, np.array([0.0, 0.0, GRAVITY_M_S2]))
    mag = quat_rotate(q_inv, MAG_WORLD_UT)
    dq = quat_mul(quat_conj(q[:-1]), q[1:])  # body-frame increment from k to k+1
    w = to_rotation(dq).as_rotvec() * rate_hz
    gyr = np.vstack([w[:1], w])  # sample k holds the rate that led to it
    if noise:
        rng = np.random.default_rng(seed)
        acc = acc + rng.normal(0, 0.02 * noise, acc.shape)
        gyr = gyr + rng.normal(0, 0.002 * noise, gyr.shape)
        mag = mag + rng.normal(0, 0.2 * noise, mag.shape)
    return acc, gyr, mag


def yaw_trajectory(yaw_rad: np.ndarray, tilt: np.ndarray | None = None) -> np.ndarray:
    """q_world_sensor for a heading profile about world z (then an optional fixed tilt)."""
    q = quat_from_axis_angle([0.0, 0.0, 1.0], yaw_rad)
    if tilt is not None:
        q = quat_mul(q, tilt)
    return q


def heading_of_x_rad(q: np.ndarray) -> np.ndarray:
    """ENU heading of the sensor x axis: atan2(north, east) (0 = east, pi/2 = north)."""
    x = quat_rotate(q, np.array([1.0, 0.0, 0.0]))
    return np.arctan2(x[..., 1], x[..., 0])


def inclination_rad(q: np.ndarray) -> np.ndarray:
    """Angle between the sensor z axis and world up."""
    z = quat_rotate(q, np.array([0.0, 0.0, 1.0]))
    return np.arccos(np.clip(z[..., 2], -1.0, 1.0))


def random_rotation_q(seed: int) -> np.ndarray:
    from scipy.spatial.transform import Rotation

    return from_rotation(Rotation.random(random_state=seed))
