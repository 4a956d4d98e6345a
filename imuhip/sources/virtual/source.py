"""Where virtual sensor samples come from: the :class:`SampleSource` interface, a synthetic one.

The walking simulator's sources are in :mod:`imuhip.sources.virtual.fleet`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from imuhip.ingest import protocol

__all__ = ["SampleSource", "SyntheticSource"]


class SampleSource(Protocol):
    """Raw int16 counts of sample ``start_idx`` .. ``start_idx + n`` (shape ``(n, 6|9)``)."""

    has_mag: bool

    def counts(self, start_idx: int, n: int) -> npt.NDArray[np.int16]:
        """Raw counts (acc xyz, gyr xyz[, mag xyz]) for ``n`` consecutive samples."""
        ...


@dataclass
class SyntheticSource:
    """A smooth synthetic motion: slow sinusoidal rotation about each axis plus gravity.

    Used when the walking simulator is not available; counts are at ±16 g / ±2000 °/s.
    """

    rate_hz: float = 200.0
    has_mag: bool = False
    phase: float = 0.0

    def counts(self, start_idx: int, n: int) -> npt.NDArray[np.int16]:
        """Raw counts for samples ``start_idx`` .. ``start_idx + n``."""
        t = (start_idx + np.arange(n)) / self.rate_hz
        ch = protocol.channels(self.has_mag)
        out = np.zeros((n, ch), np.float64)
        acc_lsb = protocol.acc_lsb_m_s2(16)
        gyr_lsb = protocol.gyr_lsb_rad_s(2000)
        w = 2 * np.pi * 0.9  # about one stride per second
        out[:, 2] = 9.80665 / acc_lsb
        out[:, 0] = 1.5 * np.sin(w * t + self.phase) / acc_lsb
        out[:, 3] = 0.6 * np.cos(w * t + self.phase) / gyr_lsb
        out[:, 4] = 0.3 * np.sin(2 * w * t + self.phase) / gyr_lsb
        out[:, 5] = 0.4 * np.sin(w * t + 0.5 + self.phase) / gyr_lsb
        if self.has_mag:
            out[:, 6] = 20.0 / protocol.MAG_LSB_UT
            out[:, 8] = -40.0 / protocol.MAG_LSB_UT
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)
