"""The sample clock of an Xsens MT Manager text export: counters, ticks and the rate.

Split from :mod:`imuhip.interop.xsens`: unwrapping the u16
``PacketCounter`` / u32 ``SampleTimeFine``, and the checks that the rows are consecutive
samples at the rate the file is read at (a wrong rate or an export of every n-th sample would
stretch every stride with no word).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from imuhip.errors import ImportFormatError
from imuhip.interop._common import FloatArray, IntArray

__all__ = ["check_counter_steps", "check_rate_against_ticks", "unwrap"]


def unwrap(values: np.ndarray, modulus: int) -> IntArray:
    v = values.astype(np.int64)
    d = np.diff(v)
    d = np.where(d < -modulus // 2, d + modulus, d)
    return np.concatenate([[v[0]], v[0] + np.cumsum(d)]).astype(np.int64)


def check_rate_against_ticks(path: Path, counter: IntArray, ticks: FloatArray, rate: float) -> None:
    """The rate the file is read at against its SampleTimeFine (10-kHz device ticks).

    Between rows with both values, ticks per counter step give the device's sample rate; a
    header (or ``--rate-hz``) more than 10 % off it would stretch every stride. Rows without
    ticks (many exports leave the column empty) are not judged.
    """
    ok = np.isfinite(ticks)
    if int(np.sum(ok)) < 10:
        return
    t = unwrap(ticks[ok], 1 << 32)
    dc = np.diff(counter[ok]).astype(np.float64)
    dt = np.diff(t)
    use = dc > 0
    if not use.any():
        return
    per = float(np.median(dt[use] / dc[use]))  # ticks per sample
    if per <= 0:
        return
    implied = 10_000.0 / per
    if abs(implied / rate - 1.0) > 0.1:
        raise ImportFormatError(
            f"{path}: read at {rate:g} Hz, but its SampleTimeFine advances {per:g} ticks of "
            f"10 kHz per sample, i.e. {implied:.4g} Hz: give the rate the sensor recorded at "
            "(--rate-hz), or check the '// Update Rate' line"
        )


def check_counter_steps(path: Path, col: str, steps: IntArray, rate: float) -> None:
    """Most rows must be the next sample: sporadic losses leave the median step at 1; a constant
    step is another rate, not loss (read at the header's rate, every stride would be that many
    times too long)."""
    if len(steps) and float(np.median(steps)) != 1.0:
        raise ImportFormatError(
            f"{path}: column {col} advances a median {float(np.median(steps)):g} samples per "
            f"row at {rate:g} Hz, not 1: the rows are not consecutive samples at that rate "
            "(an export of every n-th sample, or a counter of another rate): export every "
            "sample"
        )
