"""IMU9 sample sources for the virtual Movesense: a closed-form signal or the walking simulator."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

__all__ = ["Imu9Source", "SimImu9Source", "SyntheticImu9"]

FloatArray = npt.NDArray[np.float64]
_G = 9.80665


class Imu9Source(Protocol):
    """Samples ``start_idx`` .. ``start_idx + n``: acc m/s^2, gyro deg/s, magn uT, each (n, 3)."""

    def values(self, start_idx: int, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Three ``(n, 3)`` arrays in the sensor frame."""
        ...


@dataclass(frozen=True)
class SyntheticImu9:
    """Closed-form motion at ``rate_hz``: gravity on z, ~0.9 Hz sinusoids, a constant field."""

    rate_hz: float = 104.0
    phase: float = 0.0

    def values(self, start_idx: int, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Three ``(n, 3)`` arrays: acc m/s^2, gyro deg/s, magn uT."""
        t = (start_idx + np.arange(n)) / self.rate_hz
        w = 2 * np.pi * 0.9
        z = np.zeros(n)
        acc = np.column_stack([1.5 * np.sin(w * t + self.phase), 0.5 * np.cos(w * t), z + _G])
        gyr = np.column_stack(
            [
                35.0 * np.cos(w * t + self.phase),
                17.0 * np.sin(2 * w * t + self.phase),
                23.0 * np.sin(w * t + 0.5 + self.phase),
            ]
        )
        mag = np.column_stack([z + 20.0, 5.0 * np.sin(w * t), z - 40.0])
        return acc, gyr, mag


@dataclass(frozen=True)
class SimImu9Source:
    """Simulator samples (any rate) linearly resampled to the Movesense rate, looped."""

    acc_m_s2: FloatArray  # (M, 3) at rate_hz
    gyr_dps: FloatArray
    mag_ut: FloatArray

    @classmethod
    def from_sim(cls, samples: Any, rate_hz: float) -> SimImu9Source:
        """From :class:`imuhip.sim.SimSamples` (``t_s``, ``acc_m_s2``, ``gyr_rad_s``, ``mag_ut``).

        ``samples`` are at the simulator rate; the result is at ``rate_hz``.
        """
        t = np.asarray(samples.t_s, np.float64)
        grid = t[0] + np.arange(int((t[-1] - t[0]) * rate_hz) + 1) / rate_hz

        def res(a: FloatArray) -> FloatArray:
            a = np.asarray(a, np.float64)
            return np.column_stack([np.interp(grid, t, a[:, j]) for j in range(3)])

        return cls(
            res(samples.acc_m_s2),
            np.degrees(res(samples.gyr_rad_s)),
            res(samples.mag_ut),
        )

    def values(self, start_idx: int, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Rows ``start_idx`` .. ``start_idx + n`` (wrapping)."""
        idx = (start_idx + np.arange(n)) % len(self.acc_m_s2)
        return self.acc_m_s2[idx], self.gyr_dps[idx], self.mag_ut[idx]
