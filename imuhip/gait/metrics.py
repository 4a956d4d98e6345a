"""Per-stride and session gait metrics; left–right asymmetry (:mod:`imuhip.gait.asymmetry`).

Definitions are those of ``docs/architecture.md`` (shared with the simulator's truth): every
per-stride value is computed over the samples ``[start_idx, stop_idx)`` of that stride; session
values per side are means over that side's valid strides; pelvis and lumbar session values are
means over all valid strides of both sides. Degrees appear here for the first time (``_deg``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import numpy as np
import numpy.typing as npt

from imuhip.gait import _gait_kernels as _k
from imuhip.gait.asymmetry import Asymmetry, _asymmetries, asymmetry
from imuhip.gait.events import Stride
from imuhip.gait.smoothing import ROTATION_LOWPASS_HZ, rotation_lowpassed
from imuhip.gait.walking_direction import WALKING_TURN_MAX_DEG, beside_turn
from imuhip.types import JointAngles

__all__ = [
    "HIP_METRICS",
    "LUMBAR_METRICS",
    "PELVIS_METRICS",
    "TIMING_METRICS",
    "WALKING_TURN_MAX_DEG",
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


def _detrended_range(x: FloatArray, start: int, stop: int) -> float:
    """Range of ``x[start:stop]`` after subtracting the straight line from ``x[start]`` (initial
    contact) to ``x[stop]`` (the next one; the last sample at the end of the data); radians.

    Hip rotation excursion per stride is measured this way: in steady walking the rotation at
    two consecutive contacts is the same to within the stride-to-stride variability, but the
    relative heading of two IMUs drifts (6D, a disturbed magnetometer, the walking-axis anchor
    near turns) and a drift across a stride adds to max − min one for one
    (``docs/validation.md``, "Per-stride excursion: drift line removed").
    """
    if stop <= start:
        return float("nan")
    end = min(stop, len(x) - 1)
    slope = (x[end] - x[start]) / (end - start) if end > start else 0.0
    d = x[start:stop] - slope * np.arange(stop - start)
    return float(np.max(d) - np.min(d))


def stride_metrics(
    angles: JointAngles, stride: Stride, *, rotation_lowpass_hz: float | None = ROTATION_LOWPASS_HZ
) -> dict[str, float]:
    """All metrics of one stride, degrees (and seconds / percent for timing).

    Parameters
    ----------
    angles : JointAngles
        Radians on the session grid.
    stride : Stride
    rotation_lowpass_hz : float or None
        Cut-off of the rotation the hip rotation metrics use (:mod:`imuhip.gait.smoothing`).

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
        rot = rotation_lowpassed(angles.t_s, hip, rotation_lowpass_hz)[:, 2]
        ir = np.degrees(rot[sl])
        out["hip_rotation_excursion_deg"] = float(
            np.degrees(_detrended_range(rot, stride.start_idx, min(stride.stop_idx, len(hip))))
        )
        out["hip_ir_peak_deg"] = float(np.max(ir)) if len(ir) else float("nan")
        out["hip_er_peak_deg"] = float(-np.min(ir)) if len(ir) else float("nan")
        if stride.to_s is not None:
            # interpolate between the two bracketing samples only (np.interp over the whole
            # session per stride made this O(N) per stride); same value as the full interp
            i = int(np.searchsorted(angles.t_s, stride.to_s))
            lo, hi = max(i - 1, 0), min(i + 1, len(angles.t_s))
            out["hip_ir_at_toe_off_deg"] = float(
                np.degrees(np.interp(stride.to_s, angles.t_s[lo:hi], rot[lo:hi]))
            )
        else:
            out["hip_ir_at_toe_off_deg"] = float("nan")
        out["hip_flexion_range_deg"] = _range(np.degrees(hip[sl, 0]))
    if angles.pelvis_rad is not None:
        for name, col in _PELVIS_COL.items():
            out[name] = _range(np.degrees(angles.pelvis_rad[sl, col]))
        wh = angles.walking_heading_rad
        if wh is not None and beside_turn(wh, [stride.start_idx], [stride.stop_idx])[0]:
            out["pelvis_rotation_range_deg"] = float("nan")
    if angles.lumbar_rad is not None:
        for name, col in _LUMBAR_COL.items():
            out[name] = _range(np.degrees(angles.lumbar_rad[sl, col]))
    out["stride_time_s"] = stride.stride_time_s
    out["cadence_steps_min"] = 120.0 / stride.stride_time_s
    frac = stride.stance_frac
    out["stance_pct"] = 100.0 * frac if frac is not None else float("nan")
    return out


def stride_metrics_many(
    angles: JointAngles,
    strides: Sequence[Stride],
    *,
    rotation_lowpass_hz: float | None = ROTATION_LOWPASS_HZ,
) -> list[dict[str, float]]:
    """:func:`stride_metrics` of every stride, vectorised over strides (equal values).

    Per-stride extrema come from one compiled pass (:func:`imuhip.gait._gait_kernels.
    stride_extrema`; degrees applied to the extrema, exact as rounding is monotone), the
    dictionaries from plain lists (a 1-hour session has ~6,400 strides).
    """
    if not strides:
        return []
    n_t = len(angles.t_s)
    ns = len(strides)
    start = np.clip(np.fromiter((s.start_idx for s in strides), np.int64, ns), 0, n_t)
    stop = np.clip(np.fromiter((s.stop_idx for s in strides), np.int64, ns), 0, n_t)
    stop = np.maximum(stop, start)
    t_s = np.ascontiguousarray(angles.t_s, dtype=np.float64)

    def extrema(
        x: FloatArray, col: int, sel: npt.NDArray[np.intp]
    ) -> tuple[list[float], list[float], list[float]]:
        hi = np.empty(len(sel))
        lo = np.empty(len(sel))
        _k.stride_extrema(x, col, start[sel], stop[sel], hi, lo)
        hi = np.degrees(hi)
        lo = np.degrees(lo)
        return hi.tolist(), (hi - lo).tolist(), (-lo).tolist()

    # per-stride columns (lists, stride order); hip columns only for the strides of that side
    cols: dict[str, list[float]] = {}
    side_of = [s.side for s in strides]
    hip_rows: dict[str, npt.NDArray[np.intp]] = {}
    for side in ("left", "right"):
        hip = angles.hip_rad.get(side)
        if hip is None:
            continue
        rows = np.flatnonzero(np.fromiter((x == side for x in side_of), bool, ns))
        hip_rows[side] = rows
        hip = np.asarray(hip, dtype=np.float64)
        rot = np.ascontiguousarray(rotation_lowpassed(t_s, hip, rotation_lowpass_hz))
        ir_hi, _, ir_er = extrema(rot, 2, rows)
        hi_d = np.empty(len(rows))
        lo_d = np.empty(len(rows))
        _k.stride_extrema_detrended(rot, 2, start[rows], stop[rows], hi_d, lo_d)
        ir_exc = np.degrees(hi_d - lo_d).tolist()  # drift line removed (_detrended_range)
        _, fl_rng, _ = extrema(hip, 0, rows)
        to_rows = [r for r in rows.tolist() if strides[r].to_s is not None]
        to_x = np.fromiter((strides[r].to_s for r in to_rows), np.float64, len(to_rows))
        ir_to = np.empty(len(to_rows))
        _k.interp_sorted(t_s, rot, 2, to_x, ir_to)
        ir_to_deg = dict(zip(to_rows, np.degrees(ir_to).tolist(), strict=True))
        cols[f"{side}_ir_hi"] = ir_hi
        cols[f"{side}_ir_exc"] = ir_exc
        cols[f"{side}_ir_er"] = ir_er
        cols[f"{side}_flex"] = fl_rng
        cols[f"{side}_ir_to"] = [ir_to_deg.get(r, float("nan")) for r in rows.tolist()]
    everyone = np.arange(ns)
    trunk: list[tuple[str, list[float]]] = []
    for arr, names in ((angles.pelvis_rad, _PELVIS_COL), (angles.lumbar_rad, _LUMBAR_COL)):
        if arr is None:
            continue
        arr = np.asarray(arr, dtype=np.float64)
        for name, col in names.items():
            trunk.append((name, extrema(arr, col, everyone)[1]))
    out: list[dict[str, float]] = [{} for _ in range(ns)]
    for side, rows in hip_rows.items():
        for j, r in enumerate(rows.tolist()):
            m = out[r]
            m["hip_rotation_excursion_deg"] = cols[f"{side}_ir_exc"][j]
            m["hip_ir_peak_deg"] = cols[f"{side}_ir_hi"][j]
            m["hip_er_peak_deg"] = cols[f"{side}_ir_er"][j]
            m["hip_ir_at_toe_off_deg"] = cols[f"{side}_ir_to"][j]
            m["hip_flexion_range_deg"] = cols[f"{side}_flex"][j]
    for name, vals in trunk:
        for m, v in zip(out, vals, strict=True):
            m[name] = v
    if angles.pelvis_rad is not None and angles.walking_heading_rad is not None:
        for r in np.flatnonzero(beside_turn(angles.walking_heading_rad, start, stop)).tolist():
            out[r]["pelvis_rotation_range_deg"] = float("nan")
    for m, stride in zip(out, strides, strict=True):
        st = stride.next_ic_s - stride.ic_s
        m["stride_time_s"] = st
        m["cadence_steps_min"] = 120.0 / st
        to_s = stride.to_s
        m["stance_pct"] = 100.0 * ((to_s - stride.ic_s) / st) if to_s is not None else float("nan")
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


def summarize(values: Sequence[float] | FloatArray) -> MetricSummary:
    """Mean, SD, median and count of the finite values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not len(v):
        return MetricSummary(float("nan"), float("nan"), float("nan"), 0)
    sd = float(np.std(v, ddof=1)) if len(v) > 1 else float("nan")
    return MetricSummary(float(np.mean(v)), sd, float(np.median(v)), len(v))


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
    values: dict[str, dict[str, list[float] | FloatArray]] = {}
    n_strides: dict[str, dict[str, object]] = {}
    for side in ("left", "right"):
        rows = [m for s, m in zip(strides, per_stride, strict=True) if s.side == side and s.valid]
        names = [k for k in (*HIP_METRICS, *TIMING_METRICS) if any(k in r for r in rows)]
        values[side] = _columns(rows, names)
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
    trunk_names = [k for k in (*PELVIS_METRICS, *LUMBAR_METRICS) if any(k in r for r in all_valid)]
    trunk_cols = _columns(all_valid, trunk_names, missing_ok=False)
    trunk = {k: summarize(trunk_cols[k]) for k in trunk_names}
    asym = _asymmetries(
        {
            k: (values["left"][k], values["right"][k])
            for k in (*HIP_METRICS, *TIMING_METRICS)
            if k in values["left"] and k in values["right"]
        },
        2000,
        seed,
    )
    return SessionMetrics(per_side, trunk, asym, n_strides)


def _columns(
    rows: Sequence[dict[str, float]], names: Sequence[str], *, missing_ok: bool = True
) -> dict[str, list[float] | FloatArray]:
    """``{name: [row[name] for row in rows]}`` (``nan`` for a missing key when ``missing_ok``,
    else ``KeyError``), one ``itemgetter`` call per row instead of one lookup per value."""
    if not names:
        return {}
    try:
        get = itemgetter(*names)
        table = np.array([get(r) for r in rows], dtype=np.float64).reshape(len(rows), len(names))
    except KeyError:
        if not missing_ok:
            raise
        return {k: [r.get(k, float("nan")) for r in rows] for k in names}
    return {k: table[:, j] for j, k in enumerate(names)}
