"""Compiled block means for :mod:`imuhip.ingest.units_check` (decimation of acc/gyro to ~25 Hz)."""

from __future__ import annotations

import numpy as np

from imuhip.numeric import jit


@jit
def block_means(x: np.ndarray, q: int) -> np.ndarray:  # pragma: no cover - compiled
    """Means of consecutive blocks of ``q`` rows of ``x`` (``(N, C)``): ``(N // q, C)``.

    Each block is summed in row order, then divided by ``q`` (the trailing ``N % q`` rows are
    dropped).
    """
    nb = x.shape[0] // q
    c = x.shape[1]
    out = np.empty((nb, c), np.float64)
    for b in range(nb):
        for k in range(c):
            acc = 0.0
            for j in range(b * q, b * q + q):
                acc += x[j, k]
            out[b, k] = acc / q
    return out


@jit
def block_all(m: np.ndarray, q: int) -> np.ndarray:  # pragma: no cover - compiled
    """``True`` for each block of ``q`` consecutive entries of ``m`` that are all ``True``."""
    nb = m.shape[0] // q
    out = np.empty(nb, np.bool_)
    for b in range(nb):
        v = True
        for j in range(b * q, b * q + q):
            if not m[j]:
                v = False
                break
        out[b] = v
    return out
