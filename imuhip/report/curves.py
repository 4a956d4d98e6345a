"""Signals time-normalised to the gait cycle (0–100 % of each valid stride), for the plots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from imuhip.pipeline import SessionResult

FloatArray = npt.NDArray[np.float64]

__all__ = ["CycleSampler", "cycle_curves", "stride_bounds_s", "toe_off_pct"]


def stride_bounds_s(res: SessionResult, side: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """``(ic_s, next_ic_s, toe_off_s)`` of the valid strides of ``side``, each ``(S,)``.

    ``toe_off_s`` is NaN where a stride has no toe-off.
    """
    sel = [s for s in res.strides if s.side == side and s.valid]
    ic = np.fromiter((s.ic_s for s in sel), np.float64, len(sel))
    nxt = np.fromiter((s.next_ic_s for s in sel), np.float64, len(sel))
    to = np.fromiter((np.nan if s.to_s is None else s.to_s for s in sel), np.float64, len(sel))
    return ic, nxt, to


def toe_off_pct(res: SessionResult, side: str) -> float | None:
    """Mean toe-off of ``side``'s valid strides in % of the gait cycle (``None``: no toe-off)."""
    ic, nxt, to = stride_bounds_s(res, side)
    pct = 100.0 * (to - ic) / (nxt - ic)
    pct = pct[np.isfinite(pct)]
    return float(np.mean(pct)) if len(pct) else None


class CycleSampler:
    """Time-normalise many signals over the same strides: the interpolation weights once.

    ``sampler(signal)`` equals :func:`cycle_curves` ``(res, signal, side, n_points)`` (linear
    interpolation in ``res.angles.t_s``, ends clamped like :func:`numpy.interp`).
    """

    def __init__(self, res: SessionResult, side: str, n_points: int = 101) -> None:
        ic, nxt, _ = stride_bounds_s(res, side)
        t = np.asarray(res.angles.t_s, dtype=np.float64)
        frac = np.linspace(0.0, 1.0, n_points)
        tt = (ic[:, None] + (nxt - ic)[:, None] * frac[None, :]).ravel()
        self.shape = (len(ic), n_points)
        if len(t) < 2 or not len(tt):
            self._i = np.zeros(len(tt), dtype=np.intp)
            self._w = np.zeros(len(tt))
            return
        tt = np.clip(tt, t[0], t[-1])
        i = np.clip(np.searchsorted(t, tt, side="right") - 1, 0, len(t) - 2)
        dt = t[i + 1] - t[i]
        with np.errstate(invalid="ignore", divide="ignore"):
            w = np.where(dt > 0, (tt - t[i]) / dt, 0.0)
        self._i, self._w = i, w

    def __call__(self, signal: FloatArray) -> FloatArray:
        """``(n_strides, n_points)`` curves of ``signal`` (shape ``(N,)`` on ``t_s``)."""
        if not self.shape[0]:
            return np.empty(self.shape, dtype=np.float64)
        y = np.asarray(signal, dtype=np.float64)
        if len(y) < 2:
            return np.full(self.shape, y[0] if len(y) else np.nan)
        out = y[self._i] + self._w * (y[self._i + 1] - y[self._i])
        return out.reshape(self.shape)


def cycle_curves(
    res: SessionResult, signal: FloatArray, side: str | None = None, n_points: int = 101
) -> FloatArray:
    """Signal time-normalised to 0–100 % of each valid stride, shape ``(n_strides, n_points)``.

    ``side`` selects that side's strides (``None``: the right side's, else the left's). One
    vectorised interpolation for all strides (linear in the session time ``res.angles.t_s``).
    """
    want = side or ("right" if any(s.side == "right" for s in res.strides) else "left")
    ic, nxt, _ = stride_bounds_s(res, want)
    if not len(ic):
        return np.empty((0, n_points), dtype=np.float64)
    frac = np.linspace(0.0, 1.0, n_points)
    tt = ic[:, None] + (nxt - ic)[:, None] * frac[None, :]
    out = np.interp(tt.ravel(), res.angles.t_s, np.asarray(signal, dtype=np.float64))
    return out.reshape(len(ic), n_points)
