"""Left–right asymmetry of a gait metric: right − left difference of side means with a 95 % CI.

The CI is the percentile bootstrap over strides (resampled within each side, Efron & Tibshirani
1993, *An Introduction to the Bootstrap*, ch. 13) when both sides have at least
:data:`BOOTSTRAP_MIN_STRIDES` valid strides, else Welch's t interval. With a handful of strides
the percentile bootstrap is far too narrow: the spread of its resampled means is ``(n - 1) / n``
of the sample's, and it has normal rather than Student tails, so for normal strides a nominal 95 %
interval covers the true difference in ~66 % of sessions with 2 strides a side, ~82 % with 3,
~87 % with 5 and ~91 % with 10 (simulated, 2000 sessions each). A short
real walkway trial has 2-4 valid strides per side; an asymmetry flag from such an interval
would be a finding made of noise. Welch's interval (Welch 1947; the range-of-motion report uses
it for its repetitions) has the right width for few strides.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.gait import _gait_kernels as _k

__all__ = [
    "BOOTSTRAP_MIN_STRIDES",
    "Asymmetry",
    "asymmetry",
    "t_quantile_975",
    "welch_interval",
]

FloatArray = npt.NDArray[np.float64]

BOOTSTRAP_MIN_STRIDES: Final = 10
"""Valid strides a side needs for the percentile bootstrap CI; below, Welch's t interval (module
docstring). Ten is also where the report stops calling the numbers uncertain
(``imuhip.report.summary.MIN_VALID_STRIDES``); at 10 a side the bootstrap's interval is still
~11 % narrower than Welch's for normal strides (coverage ~91 %), and from there on strides are
rarely few enough to matter."""


def t_quantile_975(df: float) -> float:
    """The 97.5 % quantile of Student's t with ``df`` degrees of freedom (95 % two-sided)."""
    from scipy.special import stdtrit  # only for few strides: not on every analysis' import path

    return float(stdtrit(df, 0.975))


def welch_interval(left: FloatArray, right: FloatArray) -> tuple[float, float]:
    """Welch's 95 % interval of ``mean(right) - mean(left)`` (at least 2 values a side).

    Welch–Satterthwaite degrees of freedom; with no spread on either side the interval is the
    difference itself.
    """
    d = float(np.mean(right) - np.mean(left))
    vl = float(np.var(left, ddof=1)) / len(left)
    vr = float(np.var(right, ddof=1)) / len(right)
    if vl + vr <= 0:
        return d, d
    df = (vl + vr) ** 2 / (vl**2 / (len(left) - 1) + vr**2 / (len(right) - 1))
    h = t_quantile_975(df) * math.sqrt(vl + vr)
    return d - h, d + h


@dataclass(frozen=True, slots=True)
class Asymmetry:
    """Right minus left difference of side means with a 95 % CI (percentile bootstrap, or
    Welch's t interval below :data:`BOOTSTRAP_MIN_STRIDES` strides a side).

    ``significant`` is True when the CI excludes 0.
    """

    metric: str
    right_minus_left: float
    ci95_low: float
    ci95_high: float
    n_left: int
    n_right: int

    @property
    def significant(self) -> bool:
        """CI excludes zero."""
        return bool(self.ci95_low > 0 or self.ci95_high < 0)

    @property
    def ci_method(self) -> str:
        """How the CI was made: ``"percentile bootstrap"``, ``"Welch t"`` or ``"none"`` (fewer
        than 2 strides on a side)."""
        n = min(self.n_left, self.n_right)
        if n < 2:
            return "none"
        return "Welch t" if n < BOOTSTRAP_MIN_STRIDES else "percentile bootstrap"


def asymmetry(
    metric: str,
    left: Sequence[float],
    right: Sequence[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> Asymmetry:
    """Right − left difference of means with a 95 % CI: Welch's t interval when a side has fewer
    than :data:`BOOTSTRAP_MIN_STRIDES` values, else the percentile bootstrap.

    Strides are resampled with replacement within each side independently (Efron & Tibshirani
    1993, *An Introduction to the Bootstrap*, ch. 13), ``n_boot`` times, fixed ``seed`` so a report
    is reproducible.
    """
    return _asymmetry(metric, left, right, n_boot, seed, None)


def _finite(values: Sequence[float] | FloatArray) -> FloatArray:
    v = np.asarray(values, dtype=np.float64)
    return v[np.isfinite(v)]


def _without_bootstrap(metric: str, lv: FloatArray, rv: FloatArray) -> Asymmetry | None:
    """The asymmetry of finite ``lv``, ``rv`` when a side has fewer than
    :data:`BOOTSTRAP_MIN_STRIDES` values (no CI below 2, else Welch's); ``None``: bootstrap it."""
    if len(lv) < 2 or len(rv) < 2:
        d = float(np.mean(rv) - np.mean(lv)) if len(lv) and len(rv) else float("nan")
        return Asymmetry(metric, d, float("nan"), float("nan"), len(lv), len(rv))
    if min(len(lv), len(rv)) < BOOTSTRAP_MIN_STRIDES:
        lo, hi = welch_interval(lv, rv)
        return Asymmetry(metric, float(rv.mean() - lv.mean()), lo, hi, len(lv), len(rv))
    return None


_BootCache = dict[tuple[int, int, int, int], tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]]


def _asymmetry(
    metric: str,
    left: Sequence[float],
    right: Sequence[float],
    n_boot: int,
    seed: int,
    cache: _BootCache | None,
) -> Asymmetry:
    """:func:`asymmetry`; ``cache`` shares the resampling indices between metrics with the same
    stride counts (same seed, same indices: identical results, drawn once)."""
    lv, rv = _finite(left), _finite(right)
    few = _without_bootstrap(metric, lv, rv)
    if few is not None:
        return few
    key = (seed, n_boot, len(lv), len(rv))
    if cache is not None and n_boot * max(len(lv), len(rv)) <= _BOOT_MAX_DRAWS:
        if key not in cache:
            rng = np.random.default_rng(seed)
            cache[key] = (
                rng.integers(0, len(lv), size=(n_boot, len(lv))),
                rng.integers(0, len(rv), size=(n_boot, len(rv))),
            )
        il, ir = cache[key]
        bl = np.empty((n_boot, 1))
        br = np.empty((n_boot, 1))
        _k.boot_means(lv[:, None], il, bl)
        _k.boot_means(rv[:, None], ir, br)
        diff = br[:, 0] - bl[:, 0]
    else:
        rng = np.random.default_rng(seed)
        bl1 = _boot_means(rng, lv[:, None], n_boot)  # left first: the order of the draws
        br1 = _boot_means(rng, rv[:, None], n_boot)
        diff = br1[:, 0] - bl1[:, 0]
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return Asymmetry(metric, float(rv.mean() - lv.mean()), float(lo), float(hi), len(lv), len(rv))


def _asymmetries(
    pairs: dict[str, tuple[Sequence[float] | FloatArray, Sequence[float] | FloatArray]],
    n_boot: int,
    seed: int,
) -> dict[str, Asymmetry]:
    """:func:`asymmetry` of several metrics (``metric -> (left, right)``), the same results.

    Metrics with the same finite stride counts per side draw the same indices from the same
    seed; here they are drawn once, in blocks, and every metric's resampled mean is summed by
    :func:`imuhip.gait._gait_kernels.boot_means` straight from the drawn indices (no ``(B, n)``
    index or value array is kept).
    """
    finite: dict[str, tuple[FloatArray, FloatArray]] = {}
    out: dict[str, Asymmetry] = {}
    groups: dict[tuple[int, int], list[str]] = {}
    for metric, (left, right) in pairs.items():
        lv, rv = finite[metric] = (_finite(left), _finite(right))
        few = _without_bootstrap(metric, lv, rv)
        if few is not None:
            out[metric] = few
        else:
            groups.setdefault((len(lv), len(rv)), []).append(metric)
    for names in groups.values():
        lvals = np.column_stack([finite[m][0] for m in names])
        rvals = np.column_stack([finite[m][1] for m in names])
        rng = np.random.default_rng(seed)
        bl = _boot_means(rng, lvals, n_boot)  # left first, then right: the draws of asymmetry()
        br = _boot_means(rng, rvals, n_boot)
        for j, metric in enumerate(names):
            lv, rv = finite[metric]
            lo, hi = np.percentile(br[:, j] - bl[:, j], [2.5, 97.5])
            out[metric] = Asymmetry(
                metric, float(rv.mean() - lv.mean()), float(lo), float(hi), len(lv), len(rv)
            )
    return {m: out[m] for m in pairs}


_BOOT_MAX_DRAWS = 1 << 24  # _asymmetry's cache holds index arrays only up to this many draws
_BOOT_BLOCK_DRAWS = 1 << 18  # indices drawn per block (2 MB)


def _boot_means(rng: np.random.Generator, vals: FloatArray, n_boot: int) -> FloatArray:
    """Means of ``n_boot`` resamples (with replacement) of the rows of ``vals``, per column.

    Parameters
    ----------
    rng : numpy.random.Generator
    vals : (n, m) float64
        ``m`` metrics over the same ``n`` strides; every column is resampled with the same rows.
    n_boot : int

    Returns
    -------
    (n_boot, m) float64
        ``out[b, c]`` equals ``vals[:, c][idx[b]].mean()`` with ``idx = rng.integers(0, n,
        (n_boot, n))``: drawn in blocks of rows, which consumes the generator exactly as the
        single call does; the means are numpy's (pairwise sums).
    """
    vals = np.ascontiguousarray(vals, dtype=np.float64)
    n = vals.shape[0]
    out = np.empty((n_boot, vals.shape[1]))
    rows = max(1, _BOOT_BLOCK_DRAWS // n)
    for a in range(0, n_boot, rows):
        b = min(n_boot, a + rows)
        _k.boot_means(vals, rng.integers(0, n, size=(b - a, n)), out[a:b])
    return out
