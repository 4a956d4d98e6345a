"""Threads for the per-sensor (or per-side) loops of a long session: decoding, resampling onto
the grid, the gyroscope-unit check, gait events, the compensation index.

Those loops are independent from sensor to sensor, and the compiled kernels
that do most of the work release the GIL (``nogil``, :func:`imuhip.numeric.jit`), so a thread per
sensor runs them on the cores this process may use; on a long session much of a stage's time is
also the first touch of fresh output pages, which threads share out too. Short sessions stay in
one thread: starting threads costs more than the few milliseconds per sensor they would save.
The results are those of the serial loop (each sensor's computation is unchanged).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Final, TypeVar

__all__ = ["THREAD_MIN_ROWS", "map_sensors", "sensor_threads"]

THREAD_MIN_ROWS: Final = 60_000
"""Rows per sensor (5 min at 200 Hz) from which the loops use threads: below, starting them
costs more than the ~10 ms per sensor they would save."""

T = TypeVar("T")
R = TypeVar("R")


def sensor_threads(n_sensors: int, rows: int, min_rows: int | None = None) -> int:
    """Threads for ``n_sensors`` independent jobs of about ``rows`` rows each: one per sensor up
    to the CPUs this process may use once ``rows >= min_rows`` (default
    :data:`THREAD_MIN_ROWS`), else 1."""
    if n_sensors < 2 or rows < (THREAD_MIN_ROWS if min_rows is None else min_rows):
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(n_sensors, cpus or 1))


def map_sensors(
    fn: Callable[[T], R], items: Sequence[T], rows: int, min_rows: int | None = None
) -> list[R]:
    """``[fn(x) for x in items]``, in :func:`sensor_threads` threads when there are that many;
    the results (and the first exception raised) in the order of ``items``."""
    threads = sensor_threads(len(items), rows, min_rows)
    if threads <= 1:
        return [fn(x) for x in items]
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))
