"""Numbers and time grid of a generic per-sensor CSV: numeric columns, missing-row runs, rate.

See :mod:`imuhip.interop.generic_csv` for the format.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imuhip.errors import ImportFormatError
from imuhip.interop._common import FloatArray, IntArray

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["grid_steps", "numeric_column", "runs"]


def numeric_column(path: Path, df: pd.DataFrame, col: str, first_line: int) -> FloatArray:
    """Column as float64 with NaN for empty cells; error naming the first non-number."""
    import pandas as pd

    s = df[col]
    if s.dtype.kind in "fiu":
        return s.to_numpy(dtype=np.float64)
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna() & (s.astype(str).str.strip() != "")
    bad &= ~s.astype(str).str.strip().str.lower().isin(["nan", "na", "n/a"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ImportFormatError(
            f"{path}: line {first_line + i}, column {col}: expected a number, got {s.iloc[i]!r}"
        )
    return num.to_numpy(dtype=np.float64)


def runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs of True in a boolean array."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


_STEP_TOL = 0.3
"""Largest deviation of a time step (and of a sample's time) from the fitted grid, in periods."""
_RATE_SNAP = 2e-4
"""A fitted rate within this relative distance of a whole number of Hz is that number."""


def grid_steps(
    path: Path,
    t_ok: FloatArray,
    ok: IntArray,
    first_line: int,
    tname: str,
    rate_decl: float | None,
) -> tuple[float, FloatArray]:
    """Nominal rate and whole-period steps between consecutive complete rows.

    Loggers stamp samples with jitter or a coarse clock (x-io Fusion files step 10.08 ms with an
    occasional 7.56 ms): the period is first the median step, then refined by a least-squares fit
    of the times to the sample indices; each step is rounded to a whole number of periods. Steps
    more than ``_STEP_TOL`` periods from a whole number, or samples drifting that far from the
    fitted grid, mean mixed or irregular rates and are refused.
    """
    dt = np.diff(t_ok)
    step0 = float(np.median(dt / np.maximum(np.diff(ok), 1)))
    idx = np.concatenate([[0.0], np.cumsum(np.maximum(1.0, np.rint(dt / step0)))])
    period = step0
    if idx[-1] > 0:
        a_mat = np.stack([np.ones_like(idx), idx], axis=1)
        (_, p_fit), *_ = np.linalg.lstsq(a_mat, t_ok - t_ok[0], rcond=None)
        if np.isfinite(p_fit) and p_fit > 0:
            period = float(p_fit)
    ratio = dt / period
    k = np.rint(ratio)
    idx = np.concatenate([[0.0], np.cumsum(np.maximum(k, 1.0))])
    resid = (t_ok - t_ok[0] - period * idx) / period
    resid -= float(np.median(resid))
    off = (k < 1) | (np.abs(ratio - k) > _STEP_TOL) | (np.abs(resid[1:]) > _STEP_TOL)
    rate = 1.0 / period
    if np.any(off):
        j = int(np.flatnonzero(off)[0])
        i = int(ok[j + 1])
        raise ImportFormatError(
            f"{path}: line {first_line + i}, column {tname}: step of {dt[j]:.6g} s from "
            f"the previous sample, expected a multiple of {period:.6g} s ({rate:.6g} Hz, "
            f"within {_STEP_TOL:g} of a period): mixed or irregular rates (resample to one "
            "rate before importing)"
        )
    if rate_decl is not None:
        if abs(rate - rate_decl) > 0.02 * rate_decl:
            raise ImportFormatError(
                f"{path}: declared rate {rate_decl:g} Hz but column {tname} steps at "
                f"{rate:.6g} Hz; expected them to agree within 2 %"
            )
        rate = float(rate_decl)
    elif abs(rate - round(rate)) <= _RATE_SNAP * rate and round(rate) > 0:
        rate = float(round(rate))
    return rate, k
