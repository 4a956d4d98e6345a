"""One sensor's samples onto the session grid ``t_k = k / rate_hz``, causally.

The live counterpart of :func:`imuhip.ingest.align.align_session`: the same linear
interpolation between bracketing samples, the same ``valid`` rule (a grid point between two
consecutive real samples, or on a real sample), the same fill of gaps up to ``max_fill_gap_s``
(linear). A grid point is produced once the sample after it has arrived, so the fill of a short
gap is causal. A gap longer than ``reset_gap_s`` is not filled at all: the caller restarts the
sensor's filter after it (:attr:`GridRows.restart`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

__all__ = ["GridResampler", "GridRows"]

FloatArray = npt.NDArray[np.float64]

_EXACT_S = 1e-9  # as imuhip.ingest.align.grid: a grid point this close to a sample is on it


@dataclass(frozen=True, slots=True)
class GridRows:
    """Consecutive grid rows ``k0 .. k0 + len(valid) - 1`` of one sensor.

    ``restart``: the rows follow a gap longer than the reset limit (the filter starts afresh
    at ``k0``).
    """

    k0: int
    acc_m_s2: FloatArray
    gyr_rad_s: FloatArray
    mag_ut: FloatArray | None
    valid: npt.NDArray[np.bool_]
    restart: bool = False


class GridResampler:
    """Causal resampling of one sensor onto the session grid.

    Parameters
    ----------
    rate_hz : float
        Grid rate.
    max_fill_gap_s : float
        Gaps up to this long are filled by linear interpolation (rows invalid), as offline.
    reset_gap_s : float
        Gaps longer than this end the current run of rows: the next rows start with
        ``restart=True`` at the first grid point after the gap.
    """

    def __init__(self, rate_hz: float, *, max_fill_gap_s: float, reset_gap_s: float) -> None:
        self.rate_hz = float(rate_hz)
        self.max_fill_gap_s = float(max_fill_gap_s)
        self.reset_gap_s = float(reset_gap_s)
        self.next_k: int | None = None
        self._prev: tuple[float, int, FloatArray, FloatArray, FloatArray | None] | None = None

    def push(
        self,
        t_s: FloatArray,
        idx: npt.NDArray[np.int64],
        acc: FloatArray,
        gyr: FloatArray,
        mag: FloatArray | None,
    ) -> list[GridRows]:
        """Add samples (session seconds ``t_s``, increasing device ``idx``); return new rows."""
        if not len(t_s):
            return []
        out: list[GridRows] = []
        if self._prev is not None:
            pt, pi, pa, pg, pm = self._prev
            x = np.concatenate([[pt], t_s])
            ix = np.concatenate([[pi], idx])
            a = np.concatenate([pa[None], acc])
            g = np.concatenate([pg[None], gyr])
            m = None if mag is None or pm is None else np.concatenate([pm[None], mag])
        else:
            x, ix, a, g, m = t_s, idx, acc, gyr, mag
            self.next_k = math.ceil(float(t_s[0]) * self.rate_hz - 1e-6)
        # split at gaps too long to fill: each run of samples gives its own rows
        dt = np.diff(x)
        cut = np.flatnonzero((np.diff(ix) > 1) & (dt > self.reset_gap_s)) + 1
        bounds = [0, *cut.tolist(), len(x)]
        for r in range(len(bounds) - 1):
            lo, hi = bounds[r], bounds[r + 1]
            restart = r > 0
            if restart:
                self.next_k = math.ceil(float(x[lo]) * self.rate_hz - 1e-6)
            mm = None if m is None else m[lo:hi]
            rows = self._rows(x[lo:hi], ix[lo:hi], a[lo:hi], g[lo:hi], mm)
            if rows is not None:
                out.append(replace(rows, restart=restart))
        self._prev = (
            float(t_s[-1]),
            int(idx[-1]),
            acc[-1].copy(),
            gyr[-1].copy(),
            None if mag is None else mag[-1].copy(),
        )
        return out

    def _rows(
        self,
        x: FloatArray,
        ix: npt.NDArray[np.int64],
        a: FloatArray,
        g: FloatArray,
        m: FloatArray | None,
    ) -> GridRows | None:
        """Grid rows from ``next_k`` up to the last sample of the run (inclusive)."""
        assert self.next_k is not None
        k_hi = math.floor(float(x[-1]) * self.rate_hz + 1e-6)
        if k_hi < self.next_k:
            return None
        k = np.arange(self.next_k, k_hi + 1, dtype=np.int64)
        t = k / self.rate_hz
        n = len(x)
        j = np.searchsorted(x, t, side="right") - 1
        jc = np.clip(j, 0, max(n - 2, 0))
        if n == 1:
            w = np.zeros(len(t))
            valid = np.abs(t - x[0]) <= _EXACT_S
            j1 = jc
        else:
            x0, x1 = x[jc], x[jc + 1]
            span = np.where(x1 > x0, x1 - x0, 1.0)
            w = np.clip((t - x0) / span, 0.0, 1.0)
            valid = (j >= 0) & (j <= n - 2) & ((ix[jc + 1] - ix[jc]) == 1)
            on0 = np.abs(t - x0) <= _EXACT_S
            on1 = np.abs(t - x1) <= _EXACT_S
            valid |= on0 | on1
            w = np.where(on0, 0.0, np.where(on1, 1.0, w))
            long_gap = ((ix[jc + 1] - ix[jc]) > 1) & ((x1 - x0) > self.max_fill_gap_s)
            w = np.where(long_gap, np.rint(w), w)
            j1 = jc + 1
        ww = w[:, None]

        def interp(v: FloatArray) -> FloatArray:
            return np.asarray(v[jc] * (1.0 - ww) + v[j1] * ww, dtype=np.float64)

        self.next_k = k_hi + 1
        return GridRows(
            int(k[0]),
            interp(a),
            interp(g),
            None if m is None else interp(m),
            np.asarray(valid, dtype=bool),
        )
