"""Signals time-normalised to the gait cycle (0–100 % of each valid stride), for the plots."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from imuhip.pipeline import SessionResult

FloatArray = npt.NDArray[np.float64]

__all__ = ["cycle_curves"]


def cycle_curves(
    res: SessionResult, signal: FloatArray, side: str | None = None, n_points: int = 101
) -> FloatArray:
    """Signal time-normalised to 0–100 % of each valid stride, shape ``(n_strides, n_points)``.

    ``side`` selects that side's strides (``None``: the right side's, else the left's).
    """
    want = side or ("right" if any(s.side == "right" for s in res.strides) else "left")
    t = res.angles.t_s
    out = []
    for s in res.strides:
        if s.side != want or not s.valid:
            continue
        tt = np.linspace(s.ic_s, s.next_ic_s, n_points)
        out.append(np.interp(tt, t, signal))
    return np.asarray(out, dtype=np.float64).reshape(-1, n_points)
