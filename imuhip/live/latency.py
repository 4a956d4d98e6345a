"""Constant-memory live statistics: a log-binned latency histogram and a ring of recent values."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["LatencyHistogram"]


class _TimedRing:
    """Preallocated ring of ``(t_s, value)``: recent values in constant memory."""

    def __init__(self, capacity: int) -> None:
        self.t = np.full(capacity, -np.inf)
        self.v = np.zeros(capacity)
        self.i = 0
        self.n = 0

    def append(self, t_s: float, value: float) -> None:
        self.t[self.i], self.v[self.i] = t_s, value
        self.i = (self.i + 1) % len(self.t)
        self.n = min(self.n + 1, len(self.t))

    def range_since_last(self, window_s: float) -> float | None:
        """Max - min of the values with ``t`` within ``window_s`` of the latest one."""
        if not self.n:
            return None
        last = self.t[(self.i - 1) % len(self.t)]
        sel = self.v[(self.t >= last - window_s) & (self.t <= last)]
        return float(sel.max() - sel.min())


class LatencyHistogram:
    """Fixed-size histogram of latencies (ns): 50 log-spaced bins per decade, 1 µs to 1000 s.

    Constant memory over any session length; a percentile is the geometric middle of its bin
    (relative error at most ``10**(1/100) - 1`` ≈ 2.3 %). Values below 1 µs count in the first bin,
    above 1000 s in the last.
    """

    BINS_PER_DECADE = 50
    LO_NS = 1e3
    DECADES = 9

    def __init__(self) -> None:
        self.counts = np.zeros(self.BINS_PER_DECADE * self.DECADES, np.int64)
        self.count = 0

    def add(self, ns: int) -> None:
        """Count one latency in nanoseconds."""
        x = max(float(ns), self.LO_NS)
        i = int(math.log10(x / self.LO_NS) * self.BINS_PER_DECADE)
        self.counts[min(i, len(self.counts) - 1)] += 1
        self.count += 1

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile (0..100) in nanoseconds (NaN when empty)."""
        if not self.count:
            return float("nan")
        rank = max(1, math.ceil(q / 100.0 * self.count))
        i = int(np.searchsorted(np.cumsum(self.counts), rank))
        return float(self.LO_NS * 10.0 ** ((i + 0.5) / self.BINS_PER_DECADE))
