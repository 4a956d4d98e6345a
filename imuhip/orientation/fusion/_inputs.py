"""Input checks, gap filling and resampling shared by every fusion method.

Fixed-rate filters (vqf in particular) need one sample per grid step and finite values. Rows that
are missing (``valid == False``) are filled before filtering and stay flagged; they never become
silent data. Unit heuristics catch the common mix-ups (g instead of m/s², deg/s instead of rad/s,
mT or nT instead of µT) before they produce confidently wrong orientations.
"""

from __future__ import annotations

import logging
import math
from typing import Literal

import numpy as np
import numpy.typing as npt

from imuhip.conventions import GRAVITY_M_S2
from imuhip.ingest._align_kernels import fill_interp, row_checks

__all__ = ["check_inputs", "fill_invalid", "resample_to_grid"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

# Unit heuristics (robust statistics over the whole input, so single spikes do not trigger them).
_ACC_NORM_MIN_M_S2 = 3.0  # a median |acc| below this is g (≈1) or a broken sensor
_ACC_NORM_MAX_M_S2 = 200.0  # above this: mg (≈1000)
_GYR_P99_MAX_RAD_S = 40.0  # ≈ 2300 deg/s: beyond the widest MEMS range, so the data is deg/s
_MAG_NORM_MIN_UT = 2.0  # Earth's field is 22–67 µT; 0.02–0.07 means mT (or gauss ≈ 0.2–0.7)
_MAG_NORM_MAX_UT = 2000.0  # 22 000–67 000 means nT
_MIN_ROWS_FOR_UNIT_CHECK = 10


def _as_float_array(name: str, x: npt.ArrayLike, n: int | None) -> FloatArray:
    if x is None:
        raise TypeError(f"{name} must be an array of shape (N, 3), got None")
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 3 or (n is not None and arr.shape[0] != n):
        want = "(N, 3)" if n is None else f"({n}, 3)"
        raise ValueError(f"{name} must have shape {want}, got {arr.shape}")
    return arr


def check_inputs(
    acc_m_s2: npt.ArrayLike,
    gyr_rad_s: npt.ArrayLike,
    mag_ut: npt.ArrayLike | None,
    rate_hz: float,
    valid: npt.ArrayLike | None,
    *,
    check_units: bool = True,
) -> tuple[FloatArray, FloatArray, FloatArray | None, BoolArray | None]:
    """Validate shapes, finiteness, rate and units; return float64 copies and the valid mask.

    Parameters
    ----------
    acc_m_s2, gyr_rad_s : array_like, (N, 3), sensor frame
    mag_ut : array_like, (N, 3), sensor frame, or None
    rate_hz : float
        Must be finite and > 0.
    valid : array_like of bool, (N,), or None
        Without it every row must be finite; with it, non-finite values are allowed only in
        invalid rows (they are filled later by :func:`fill_invalid`).
    check_units : bool
        Run the unit heuristics (skipped automatically for fewer than 10 valid rows).

    Raises
    ------
    ValueError
        Naming the argument: wrong shape, non-finite row (with its index), bad rate, or values
        that look like the wrong unit.
    """
    if not (isinstance(rate_hz, int | float | np.floating | np.integer)) or isinstance(
        rate_hz, bool
    ):
        raise TypeError(f"rate_hz must be a number, got {type(rate_hz).__name__}")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be a finite number > 0, got {rate_hz}")
    acc = _as_float_array("acc_m_s2", acc_m_s2, None)
    n = acc.shape[0]
    gyr = _as_float_array("gyr_rad_s", gyr_rad_s, n)
    mag = None if mag_ut is None else _as_float_array("mag_ut", mag_ut, n)
    if n == 0:
        raise ValueError("acc_m_s2 and gyr_rad_s must hold at least one sample, got 0 rows")

    mask: BoolArray | None = None
    if valid is not None:
        mask = np.asarray(valid)
        if mask.dtype != np.bool_:
            raise TypeError(f"valid must be a boolean array, got dtype {mask.dtype}")
        if mask.shape != (n,):
            raise ValueError(f"valid must have shape ({n},), got {mask.shape}")
        if not mask.any():
            raise ValueError("valid marks every sample invalid: nothing to fuse")

    # one compiled pass per array over the rows that count (the valid ones, or all): non-finite
    # rows, and the counts that decide the unit checks in the usual, clear-cut case
    rows = _ALL_ROWS if mask is None or mask.all() else mask
    counts: dict[str, npt.NDArray[np.int64]] = {}
    for name, arr in (("acc_m_s2", acc), ("gyr_rad_s", gyr), ("mag_ut", mag)):
        if arr is None:
            continue
        lo, hi = _CLEAR_BOUNDS[name]
        c = np.zeros(4, np.int64)
        row_checks(np.ascontiguousarray(arr), rows, lo, hi, c)
        counts[name] = c
        if c[1] == 0:  # the common case: no row to look at
            continue
        fin = np.isfinite(arr)
        bad = ~fin.all(axis=1)
        if mask is not None:
            bad &= mask
        if bad.any():
            first = int(np.flatnonzero(bad)[0])
            hint = "" if mask is not None else " (pass valid=... to mark missing samples)"
            raise ValueError(
                f"{name} has {int(bad.sum())} non-finite rows, first at row {first}: "
                f"{arr[first].tolist()}{hint}"
            )

    if check_units:
        n_rows = int(counts["acc_m_s2"][0])
        if n_rows >= _MIN_ROWS_FOR_UNIT_CHECK and not all(
            _clearly_plausible(k, c) for k, c in counts.items()
        ):
            # near a threshold (or wrong): the exact medians and percentile, with the messages
            if rows is _ALL_ROWS:  # every row: no copies
                _check_units(acc, gyr, mag)
            else:
                _check_units(acc[mask], gyr[mask], None if mag is None else mag[mask])
    return acc, gyr, mag, mask


_ALL_ROWS = np.zeros(0, np.bool_)
_REL = 1e-9  # margin around each threshold: inside it the exact statistic decides
# per array: (norm <= lo counts toward "too small", norm < hi toward "not too large")
_CLEAR_BOUNDS = {
    "acc_m_s2": (_ACC_NORM_MIN_M_S2 * (1 + _REL), _ACC_NORM_MAX_M_S2 * (1 - _REL)),
    "gyr_rad_s": (-1.0, _GYR_P99_MAX_RAD_S * (1 - _REL)),
    "mag_ut": (_MAG_NORM_MIN_UT * (1 + _REL), _MAG_NORM_MAX_UT * (1 - _REL)),
}


def _clearly_plausible(name: str, c: npt.NDArray[np.int64]) -> bool:
    """True when the counts of :func:`row_checks` prove :func:`_check_units` passes ``name``.

    With the norms sorted (``s``, ``n`` rows): ``np.median`` lies between ``s[(n - 1) // 2]``
    and ``s[n // 2]``; ``np.percentile(., 99)`` between ``s[k]`` and ``s[min(k + 1, n - 1)]``,
    ``k = floor(0.99 (n - 1))``. Those order statistics are clear of the thresholds (by a
    relative 1e-9) exactly when enough norms are counted on the right side of them.
    """
    n, _, n_le, n_lt = (int(v) for v in c)
    if name == "gyr_rad_s":
        k = math.floor(0.99 * (n - 1))
        return n_lt >= min(k + 1, n - 1) + 1
    return n_le <= (n - 1) // 2 and n_lt >= n // 2 + 1


def _row_norm(x: FloatArray) -> FloatArray:
    """``np.linalg.norm(x, axis=1)`` of ``(N, 3)`` rows, written out (the same sums, faster)."""
    s = x[:, 0] * x[:, 0]
    s += x[:, 1] * x[:, 1]
    s += x[:, 2] * x[:, 2]
    return np.sqrt(s)


def _check_units(acc: FloatArray, gyr: FloatArray, mag: FloatArray | None) -> None:
    acc_norm = float(np.median(_row_norm(acc)))
    if acc_norm < _ACC_NORM_MIN_M_S2:
        raise ValueError(
            f"acc_m_s2 looks like g, not m/s²: median norm {acc_norm:.3g} "
            f"(expected ≈ {GRAVITY_M_S2:.2f}); multiply by {GRAVITY_M_S2}"
        )
    if acc_norm > _ACC_NORM_MAX_M_S2:
        raise ValueError(
            f"acc_m_s2 looks like mg, not m/s²: median norm {acc_norm:.4g} "
            f"(expected ≈ {GRAVITY_M_S2:.2f})"
        )
    gyr_p99 = float(np.percentile(_row_norm(gyr), 99))
    if gyr_p99 > _GYR_P99_MAX_RAD_S:
        raise ValueError(
            f"gyr_rad_s looks like deg/s, not rad/s: 99th percentile norm {gyr_p99:.4g} "
            f"(> {_GYR_P99_MAX_RAD_S} rad/s); multiply by pi/180"
        )
    if mag is not None:
        mag_norm = float(np.median(_row_norm(mag)))
        if mag_norm < _MAG_NORM_MIN_UT:
            raise ValueError(
                f"mag_ut looks like mT or gauss, not µT: median norm {mag_norm:.3g} "
                "(Earth's field is 22–67 µT)"
            )
        if mag_norm > _MAG_NORM_MAX_UT:
            raise ValueError(
                f"mag_ut looks like nT, not µT: median norm {mag_norm:.4g} "
                "(Earth's field is 22–67 µT)"
            )


def fill_invalid(
    x: FloatArray, valid: BoolArray, how: Literal["interp", "hold"], last: FloatArray | None = None
) -> FloatArray:
    """Fill the rows of ``x`` where ``valid`` is False.

    Parameters
    ----------
    x : (N, 3) float64
    valid : (N,) bool
    how : {"interp", "hold"}
        ``"interp"``: linear interpolation between the neighbouring valid rows (acausal, for
        offline filters), holding the nearest valid row at the ends. ``"hold"``: repeat the
        last valid row (causal, for online filters; ``last`` seeds it, else the first valid row).
    last : (3,) float64 or None
        For ``"hold"``: the last valid row seen before this chunk.

    Returns
    -------
    (N, 3) float64, a copy; valid rows unchanged.
    """
    shape = np.shape(x)
    if how == "interp" and shape[1:] == (3,) and np.shape(valid) == shape[:1] and np.any(valid):
        # one compiled pass: copy, and only the invalid rows interpolated (usually a few rows at
        # the session's edges); equal to np.interp over the valid rows, bit for bit
        src = np.ascontiguousarray(x, dtype=np.float64)
        filled = np.empty(src.shape, np.float64)
        fill_interp(src, np.ascontiguousarray(valid, np.bool_), filled)
        return filled
    out = np.array(x, dtype=np.float64, copy=True)
    if valid.all():
        return out
    good = np.flatnonzero(valid)
    if how == "interp":
        bad = np.flatnonzero(~valid)
        for k in range(3):
            out[bad, k] = np.interp(bad, good, x[good, k])
        return out
    # hold: index of the last valid row at or before each row (-1 before the first valid row)
    pos = np.where(valid, np.arange(len(x)), -1)
    pos = np.maximum.accumulate(pos)
    seed = x[good[0]] if last is None else last
    held = np.where((pos >= 0)[:, None], x[np.maximum(pos, 0)], seed[None, :])
    out[~valid] = held[~valid]
    return out


def resample_to_grid(
    t_s: npt.ArrayLike,
    rate_hz: float,
    acc_m_s2: npt.ArrayLike,
    gyr_rad_s: npt.ArrayLike,
    mag_ut: npt.ArrayLike | None = None,
    *,
    max_gap_samples: float = 1.5,
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None, BoolArray]:
    """Put irregularly timed samples onto the nominal grid ``t0 + k / rate_hz``, keeping a gap mask.

    vqf (and every fixed-step filter) assumes one sample per ``1 / rate_hz``. Samples are linearly
    interpolated onto the grid; a grid point is ``valid`` only if real samples lie within
    ``max_gap_samples / rate_hz`` on both sides, so a gap is a gap, not an invented motion.

    Parameters
    ----------
    t_s : (N,) float64, seconds, strictly increasing
    rate_hz : float
        Nominal rate of the sensor.
    acc_m_s2, gyr_rad_s : (N, 3)
    mag_ut : (N, 3) or None
    max_gap_samples : float
        Largest spacing (in nominal samples) bridged without flagging the grid point.

    Returns
    -------
    t_grid_s : (M,) float64
    acc_m_s2, gyr_rad_s : (M, 3) float64
    mag_ut : (M, 3) float64 or None
    valid : (M,) bool
    """
    t = np.asarray(t_s, dtype=np.float64)
    if t.ndim != 1 or len(t) < 2:
        raise ValueError(f"t_s must have shape (N,) with N >= 2, got {t.shape}")
    if not np.all(np.isfinite(t)) or not np.all(np.diff(t) > 0):
        raise ValueError("t_s must be finite and strictly increasing")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be a finite number > 0, got {rate_hz}")
    acc = _as_float_array("acc_m_s2", acc_m_s2, len(t))
    gyr = _as_float_array("gyr_rad_s", gyr_rad_s, len(t))
    mag = None if mag_ut is None else _as_float_array("mag_ut", mag_ut, len(t))
    m = int(np.floor((t[-1] - t[0]) * rate_hz + 1e-9)) + 1
    grid = t[0] + np.arange(m) / rate_hz
    right = np.clip(np.searchsorted(t, grid, side="left"), 1, len(t) - 1)
    spacing = t[right] - t[right - 1]
    exact = np.isclose(t[right], grid, rtol=0, atol=1e-9) | np.isclose(
        t[right - 1], grid, rtol=0, atol=1e-9
    )
    valid = exact | (spacing <= max_gap_samples / rate_hz)

    def interp(x: FloatArray) -> FloatArray:
        return np.stack([np.interp(grid, t, x[:, k]) for k in range(3)], axis=1)

    return grid, interp(acc), interp(gyr), None if mag is None else interp(mag), valid
