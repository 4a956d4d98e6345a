"""Per-stride and session gait metrics, left–right asymmetry with bootstrap confidence intervals.

Definitions are those of ``docs/architecture.md`` (shared with the simulator's truth): every
per-stride value is computed over the samples ``[start_idx, stop_idx)`` of that stride; session
values per side are means over that side's valid strides; pelvis and lumbar session values are
means over all valid strides of both sides. Degrees appear here for the first time (``_deg``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from imuhip.events import Stride
from imuhip.types import JointAngles

__all__ = [
    "HIP_METRICS",
    "LUMBAR_METRICS",
    "PELVIS_METRICS",
    "TIMING_METRICS",
    "Asymmetry",
    "MetricSummary",
    "SessionMetrics",
    "asymmetry",
    "session_metrics",
    "stride_metrics",
    "stride_metrics_many",
    "summarize",
]

FloatArray = npt.NDArray[np.float64]

HIP_METRICS = (
    "hip_rotation_excursion_deg",
    "hip_ir_peak_deg",
    "hip_er_peak_deg",
    "hip_ir_at_toe_off_deg",
    "hip_flexion_range_deg",
)
PELVIS_METRICS = (
    "pelvis_rotation_range_deg",
    "pelvis_obliquity_range_deg",
    "pelvis_tilt_range_deg",
)
LUMBAR_METRICS = (
    "lumbar_rotation_range_deg",
    "lumbar_lateral_bending_range_deg",
    "lumbar_flexion_range_deg",
)
TIMING_METRICS = ("stride_time_s", "cadence_steps_min", "stance_pct")

# column of each range metric in JointAngles arrays (pelvis: rotation, obliquity, tilt;
# lumbar: flexion, lateral bending, axial rotation)
_PELVIS_COL = {
    "pelvis_rotation_range_deg": 0,
    "pelvis_obliquity_range_deg": 1,
    "pelvis_tilt_range_deg": 2,
}
_LUMBAR_COL = {
    "lumbar_rotation_range_deg": 2,
    "lumbar_lateral_bending_range_deg": 1,
    "lumbar_flexion_range_deg": 0,
}


def _range(x: FloatArray) -> float:
    return float(np.max(x) - np.min(x)) if len(x) else float("nan")


def stride_metrics(angles: JointAngles, stride: Stride) -> dict[str, float]:
    """All metrics of one stride, degrees (and seconds / percent for timing).

    Parameters
    ----------
    angles : JointAngles
        Radians on the session grid.
    stride : Stride

    Returns
    -------
    dict
        Keys from :data:`HIP_METRICS`, :data:`PELVIS_METRICS`, :data:`LUMBAR_METRICS` (the latter
        only with a lumbar sensor) and :data:`TIMING_METRICS`; ``nan`` where undefined (e.g. no
        toe-off).
    """
    sl = slice(stride.start_idx, stride.stop_idx)
    out: dict[str, float] = {}
    hip = angles.hip_rad.get(stride.side)
    if hip is not None:
        ir = np.degrees(hip[sl, 2])
        out["hip_rotation_excursion_deg"] = _range(ir)
        out["hip_ir_peak_deg"] = float(np.max(ir)) if len(ir) else float("nan")
        out["hip_er_peak_deg"] = float(-np.min(ir)) if len(ir) else float("nan")
        if stride.to_s is not None:
            # interpolate between the two bracketing samples only (np.interp over the whole
            # session per stride made this O(N) per stride); same value as the full interp
            i = int(np.searchsorted(angles.t_s, stride.to_s))
            lo, hi = max(i - 1, 0), min(i + 1, len(angles.t_s))
            out["hip_ir_at_toe_off_deg"] = float(
                np.degrees(np.interp(stride.to_s, angles.t_s[lo:hi], hip[lo:hi, 2]))
            )
        else:
            out["hip_ir_at_toe_off_deg"] = float("nan")
        out["hip_flexion_range_deg"] = _range(np.degrees(hip[sl, 0]))
    if angles.pelvis_rad is not None:
        for name, col in _PELVIS_COL.items():
            out[name] = _range(np.degrees(angles.pelvis_rad[sl, col]))
    if angles.lumbar_rad is not None:
        for name, col in _LUMBAR_COL.items():
            out[name] = _range(np.degrees(angles.lumbar_rad[sl, col]))
    out["stride_time_s"] = stride.stride_time_s
    out["cadence_steps_min"] = 120.0 / stride.stride_time_s
    frac = stride.stance_frac
    out["stance_pct"] = 100.0 * frac if frac is not None else float("nan")
    return out


def _ranges_per_stride(
    x: FloatArray, start: npt.NDArray[np.int64], stop: npt.NDArray[np.int64]
) -> tuple[FloatArray, FloatArray]:
    """Max and min of ``x[start_k:stop_k]`` for every k (NaN for an empty range), vectorised."""
    padded = np.append(x, x[-1:] if len(x) else [np.nan])  # reduceat indices must be < len
    idx = np.empty(2 * len(start), np.int64)
    idx[0::2], idx[1::2] = start, stop
    hi = np.maximum.reduceat(padded, idx)[0::2]
    lo = np.minimum.reduceat(padded, idx)[0::2]
    empty = stop <= start
    hi[empty] = np.nan
    lo[empty] = np.nan
    return hi, lo


def stride_metrics_many(angles: JointAngles, strides: Sequence[Stride]) -> list[dict[str, float]]:
    """:func:`stride_metrics` of every stride, vectorised over strides (equal values).

    The per-stride maxima and minima come from ``np.maximum.reduceat`` / ``np.minimum.reduceat``
    over each angle column once, instead of a dozen numpy calls per stride (a 1-hour session has
    ~6,400 strides).
    """
    if not strides:
        return []
    n_t = len(angles.t_s)
    start = np.clip(np.array([s.start_idx for s in strides], np.int64), 0, n_t)
    stop = np.clip(np.array([s.stop_idx for s in strides], np.int64), 0, n_t)
    stop = np.maximum(stop, start)
    cols: dict[str, tuple[FloatArray, FloatArray]] = {}
    for side in ("left", "right"):
        hip = angles.hip_rad.get(side)
        if hip is not None:
            cols[f"{side}_ir"] = _ranges_per_stride(np.degrees(hip[:, 2]), start, stop)
            cols[f"{side}_flex"] = _ranges_per_stride(np.degrees(hip[:, 0]), start, stop)
    if angles.pelvis_rad is not None:
        for name, col in _PELVIS_COL.items():
            cols[name] = _ranges_per_stride(np.degrees(angles.pelvis_rad[:, col]), start, stop)
    if angles.lumbar_rad is not None:
        for name, col in _LUMBAR_COL.items():
            cols[name] = _ranges_per_stride(np.degrees(angles.lumbar_rad[:, col]), start, stop)
    out: list[dict[str, float]] = []
    for k, stride in enumerate(strides):
        m: dict[str, float] = {}
        hip = angles.hip_rad.get(stride.side)
        if hip is not None:
            hi, lo = cols[f"{stride.side}_ir"]
            m["hip_rotation_excursion_deg"] = float(hi[k] - lo[k])
            m["hip_ir_peak_deg"] = float(hi[k])
            m["hip_er_peak_deg"] = float(-lo[k])
            if stride.to_s is not None:
                i = int(np.searchsorted(angles.t_s, stride.to_s))
                a, b = max(i - 1, 0), min(i + 1, n_t)
                m["hip_ir_at_toe_off_deg"] = float(
                    np.degrees(np.interp(stride.to_s, angles.t_s[a:b], hip[a:b, 2]))
                )
            else:
                m["hip_ir_at_toe_off_deg"] = float("nan")
            fh, fl = cols[f"{stride.side}_flex"]
            m["hip_flexion_range_deg"] = float(fh[k] - fl[k])
        for name in (*_PELVIS_COL, *_LUMBAR_COL):
            if name in cols:
                hi, lo = cols[name]
                m[name] = float(hi[k] - lo[k])
        m["stride_time_s"] = stride.stride_time_s
        m["cadence_steps_min"] = 120.0 / stride.stride_time_s
        frac = stride.stance_frac
        m["stance_pct"] = 100.0 * frac if frac is not None else float("nan")
        out.append(m)
    return out


@dataclass(frozen=True, slots=True)
class MetricSummary:
    """Summary of one metric over valid strides: mean, SD (ddof=1), median, count."""

    mean: float
    sd: float
    median: float
    n: int

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready mapping (``nan`` becomes ``None`` in the report)."""
        return {"mean": self.mean, "sd": self.sd, "median": self.median, "n": self.n}


def summarize(values: Sequence[float]) -> MetricSummary:
    """Mean, SD, median and count of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return MetricSummary(float("nan"), float("nan"), float("nan"), 0)
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
    return MetricSummary(float(np.mean(v)), sd, float(np.median(v)), len(v))


@dataclass(frozen=True, slots=True)
class Asymmetry:
    """Right minus left difference of side means with a percentile bootstrap 95 % CI.

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


def asymmetry(
    metric: str,
    left: Sequence[float],
    right: Sequence[float],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> Asymmetry:
    """Right − left difference of means with a percentile bootstrap 95 % CI.

    Strides are resampled with replacement within each side independently (Efron & Tibshirani
    1993, *An Introduction to the Bootstrap*, ch. 13), ``n_boot`` times, fixed ``seed`` so a report
    is reproducible.
    """
    return _asymmetry(metric, left, right, n_boot, seed, None)


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
    stride counts (the same seed draws the same indices: identical results, drawn once)."""
    lv = np.asarray(left, dtype=np.float64)
    rv = np.asarray(right, dtype=np.float64)
    lv = lv[np.isfinite(lv)]
    rv = rv[np.isfinite(rv)]
    if len(lv) < 2 or len(rv) < 2:
        d = float(np.mean(rv) - np.mean(lv)) if len(lv) and len(rv) else float("nan")
        return Asymmetry(metric, d, float("nan"), float("nan"), len(lv), len(rv))
    key = (seed, n_boot, len(lv), len(rv))
    if cache is not None and n_boot * max(len(lv), len(rv)) <= _BOOT_MAX_DRAWS:
        if key not in cache:
            rng = np.random.default_rng(seed)
            cache[key] = (
                rng.integers(0, len(lv), size=(n_boot, len(lv))),
                rng.integers(0, len(rv), size=(n_boot, len(rv))),
            )
        il, ir = cache[key]
        bl = np.asarray(lv[il].mean(axis=1))
        br = np.asarray(rv[ir].mean(axis=1))
    else:
        rng = np.random.default_rng(seed)
        bl = _boot_means(rng, lv, n_boot)
        br = _boot_means(rng, rv, n_boot)
    diff = br - bl
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return Asymmetry(metric, float(rv.mean() - lv.mean()), float(lo), float(hi), len(lv), len(rv))


_BOOT_MAX_DRAWS = 1 << 24  # above this many draws per side, resample in blocks of rows


def _boot_means(rng: np.random.Generator, v: FloatArray, n_boot: int) -> FloatArray:
    """Means of ``n_boot`` resamples (with replacement) of ``v``.

    Up to ``_BOOT_MAX_DRAWS`` draws (every session of a few hours) this is one
    ``rng.integers(0, n, (n_boot, n))`` call as always; longer sessions draw blocks of rows so
    that memory stays bounded (``n_boot * n`` int64 indices would be 0.5 GB at 30,000 strides).
    """
    n = len(v)
    if n_boot * n <= _BOOT_MAX_DRAWS:
        return np.asarray(v[rng.integers(0, n, size=(n_boot, n))].mean(axis=1))
    rows = max(1, (1 << 22) // n)
    out = np.empty(n_boot)
    for a in range(0, n_boot, rows):
        b = min(n_boot, a + rows)
        out[a:b] = v[rng.integers(0, n, size=(b - a, n))].mean(axis=1)
    return out


@dataclass(frozen=True, slots=True)
class SessionMetrics:
    """Session statistics.

    ``per_side[side][metric]``: hip and timing metrics of that side's valid strides.
    ``trunk[metric]``: pelvis and lumbar metrics over all valid strides of both sides.
    ``asymmetry[metric]``: right − left for the hip and timing metrics.
    ``n_strides[side]``: ``{"total": ..., "valid": ..., "excluded": {reason: count}}``.
    """

    per_side: dict[str, dict[str, MetricSummary]]
    trunk: dict[str, MetricSummary]
    asymmetry: dict[str, Asymmetry]
    n_strides: dict[str, dict[str, object]] = field(default_factory=dict)


def session_metrics(
    strides: Sequence[Stride], per_stride: Sequence[dict[str, float]], *, seed: int = 0
) -> SessionMetrics:
    """Aggregate per-stride metrics into session values (definitions in the module docstring).

    Parameters
    ----------
    strides : sequence of Stride
    per_stride : sequence of dict
        ``stride_metrics`` output, same order as ``strides``.
    seed : int
        Bootstrap seed.
    """
    if len(strides) != len(per_stride):
        raise ValueError("strides and per_stride must have the same length")
    per_side: dict[str, dict[str, MetricSummary]] = {}
    values: dict[str, dict[str, list[float]]] = {}
    n_strides: dict[str, dict[str, object]] = {}
    for side in ("left", "right"):
        rows = [m for s, m in zip(strides, per_stride, strict=True) if s.side == side and s.valid]
        names = [k for k in (*HIP_METRICS, *TIMING_METRICS) if any(k in r for r in rows)]
        values[side] = {k: [r.get(k, float("nan")) for r in rows] for k in names}
        per_side[side] = {k: summarize(v) for k, v in values[side].items()}
        excl: dict[str, int] = {}
        for s in strides:
            if s.side == side and s.exclusion is not None:
                excl[s.exclusion] = excl.get(s.exclusion, 0) + 1
        n_strides[side] = {
            "total": sum(1 for s in strides if s.side == side),
            "valid": len(rows),
            "excluded": excl,
        }
    all_valid = [m for s, m in zip(strides, per_stride, strict=True) if s.valid]
    trunk = {
        k: summarize([r[k] for r in all_valid])
        for k in (*PELVIS_METRICS, *LUMBAR_METRICS)
        if any(k in r for r in all_valid)
    }
    boot_cache: _BootCache = {}
    asym = {
        k: _asymmetry(k, values["left"][k], values["right"][k], 2000, seed, boot_cache)
        for k in (*HIP_METRICS, *TIMING_METRICS)
        if k in values["left"] and k in values["right"]
    }
    boot_cache.clear()
    return SessionMetrics(per_side, trunk, asym, n_strides)
