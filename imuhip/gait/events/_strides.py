"""Strides ``[ic_k, ic_{k+1})`` of one side and the reasons to exclude them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Final

import numpy as np

from imuhip.gait import _gait_kernels as _kg
from imuhip.gait.events._config import BoolArray, EventConfig, FloatArray, SideEvents, Stride

__all__ = [
    "MAX_HIP_ROTATION_EXCURSION_DEG",
    "PARTIAL_STEP_MIN_FRAC",
    "is_partial_step",
    "mark_implausible",
    "mark_partial_steps",
    "segment_strides",
]

# Beyond the hip's whole passive arc of rotation (internal + external ~80-90 deg, Roach & Miles
# 1991, doi:10.1093/ptj/71.9.656), a fraction of which walking uses (6-16 deg typical, ~21 deg
# by Xsens MVN on the real gaittoolbox trial): a stride above it is a broken calibration or a
# sensor that slipped, not a hip.
MAX_HIP_ROTATION_EXCURSION_DEG: Final = 60.0

PARTIAL_STEP_MIN_FRAC: Final = 0.7
"""A stride whose hip flexion range is below this fraction of the side's median (over its
otherwise valid strides) is a partial step: the last step into standing, a first step, a
shuffle. Steady walking varies by ~5 % (CV of sagittal hip range); the real gaittoolbox stops
read 0.3–0.64 of the median (``docs/validation.md``)."""


def segment_strides(
    events: SideEvents,
    t_s: FloatArray,
    valid: BoolArray,
    heading_rad: FloatArray | None = None,
    cfg: EventConfig | None = None,
) -> list[Stride]:
    """Cut one side's walk into strides ``[ic_k, ic_{k+1})`` and mark those to exclude.

    Parameters
    ----------
    events : SideEvents
    t_s : (M,) float64
        Session grid.
    valid : (M,) bool
        Samples usable for this side (all sensors the metrics need were valid).
    heading_rad : (M,) float64, optional
        Unwrapped pelvis heading; without it no stride is marked ``turning``.
    cfg : EventConfig, optional

    Returns
    -------
    list of Stride
        Every stride, valid or not; exclusion priority: gap, standing (starting at a first
        contact out of standing, ``events.bout_start_ic_s``), too_short, turning (also when
        longer than ``max_stride_s``: a turn with a contact missed), standing (longer than
        ``max_stride_s``), no_toe_off, outlier.
    """
    cfg = cfg or EventConfig()
    t_s = np.asarray(t_s, dtype=np.float64)
    valid = np.asarray(valid, dtype=bool)
    if valid.shape != t_s.shape:
        raise ValueError(f"valid must have shape {t_s.shape}, got {valid.shape}")
    ic = np.sort(events.ic_s)
    to = np.sort(events.to_s)
    rate_hz = 1.0 / float(np.median(np.diff(t_s))) if len(t_s) > 1 else 1.0
    max_gap_n = round(cfg.max_gap_s * rate_hz)
    n = len(ic) - 1
    if n <= 0:
        return []
    # every stride at once: sample range, first toe-off inside, heading change, gap length
    a_s = ic[:-1]
    b_s = ic[1:]
    i0 = np.searchsorted(t_s, a_s, side="left")
    i1 = np.minimum(np.searchsorted(t_s, b_s, side="left"), len(t_s))
    # first toe-off in the open interval (a, b): the first one after a, if it is before b
    j = np.searchsorted(to, a_s, side="right")
    has_to = j < len(to)
    has_to[has_to] = to[j[has_to]] < b_s[has_to]
    to_first = to[np.minimum(j, max(len(to) - 1, 0))] if len(to) else np.zeros(n)
    nonempty = i1 > i0
    dh = np.zeros(n)
    if heading_rad is not None and nonempty.any():
        h = np.asarray(heading_rad, dtype=np.float64)
        dh[nonempty] = np.degrees(h[i1[nonempty] - 1] - h[i0[nonempty]])
    gap = ~nonempty
    gap[nonempty] = (
        _kg.longest_false_runs(
            np.ascontiguousarray(valid),
            i0[nonempty].astype(np.int64),
            i1[nonempty].astype(np.int64),
        )
        > max_gap_n
    )
    dur = b_s - a_s
    # a stride from the first contact out of standing is gait initiation (thigh rule)
    starts = np.isin(a_s, np.asarray(events.bout_start_ic_s, dtype=np.float64))
    reason = np.full(n, None, dtype=object)
    conds = (
        (gap, "gap"),
        (starts, "standing"),
        (dur < cfg.min_stride_s, "too_short"),
        # a long "stride" whose heading turned is a turn whose contacts were not all found
        # (the inner foot pivots; gaittoolbox right, 2.9 s and -187 deg), not standing
        (np.abs(dh) > cfg.turn_max_deg, "turning"),
        (dur > cfg.max_stride_s, "standing"),
        (~has_to, "no_toe_off"),
    )
    undecided = np.ones(n, dtype=bool)
    for cond, name in conds:  # exclusion priority: the first that applies
        hit = undecided & cond
        reason[hit] = name
        undecided &= ~hit
    if undecided.any():
        ok = dur[undecided]  # the stride times of the valid strides, in order
        med = float(np.median(ok))
        outlier = undecided.copy()
        outlier[undecided] = np.abs(ok - med) > cfg.outlier_frac * med
        reason[outlier] = "outlier"
    side = events.side
    return [
        Stride(side, k, s0, s1, a, b, t if h_ else None, d, r)
        for k, (s0, s1, a, b, t, h_, d, r) in enumerate(
            zip(
                i0.tolist(),
                i1.tolist(),
                a_s.tolist(),
                b_s.tolist(),
                to_first.tolist(),
                has_to.tolist(),
                dh.tolist(),
                reason.tolist(),
                strict=True,
            )
        )
    ]


def partial_step_limit(
    reference_deg: Sequence[float] | FloatArray, min_frac: float = PARTIAL_STEP_MIN_FRAC
) -> float:
    """The hip flexion range below which a stride is a partial step: ``min_frac`` of the median
    of ``reference_deg`` (the side's valid strides), or NaN with fewer than 3 (nothing judged)."""
    if len(reference_deg) < 3:
        return float("nan")
    return min_frac * float(np.median(reference_deg))


def is_partial_step(
    flexion_range_deg: float,
    reference_deg: Sequence[float] | FloatArray,
    min_frac: float = PARTIAL_STEP_MIN_FRAC,
) -> bool:
    """A stride's hip flexion range is below ``min_frac`` of the median of ``reference_deg``
    (the side's valid strides; at least 3 needed, else nothing is judged)."""
    return bool(flexion_range_deg < partial_step_limit(reference_deg, min_frac))


def mark_partial_steps(
    strides: Sequence[Stride],
    per_stride: Sequence[Mapping[str, float]],
    min_frac: float = PARTIAL_STEP_MIN_FRAC,
) -> list[Stride]:
    """Mark valid strides of a partial step as ``outlier`` (session-level, like the stride time).

    Gait initiation and termination are not steady walking: the step into standing at the end of
    a walk swings the leg through a fraction of its usual range, and its hip rotation range with
    it (gaittoolbox: 8–11° against ~21° on the steady strides), so counting it drags the side's
    mean excursion down. The event rules find such steps (the shank and thigh rules do; the foot
    rule may not), and only the thigh rule marks the first step out of standing
    (``bout_start_ic_s``), so the check is made here on what every source gives alike: a stride
    whose ``hip_flexion_range_deg`` is below ``min_frac`` of the median of its side's valid
    strides (at least 3) is excluded as ``outlier``.

    Parameters
    ----------
    strides : sequence of Stride
    per_stride : sequence of mapping
        :func:`imuhip.gait.metrics.stride_metrics_many` of ``strides`` (same order).
    min_frac : float

    Returns
    -------
    list of Stride
        ``strides`` with the partial steps' ``exclusion`` set to ``"outlier"``.
    """
    if len(per_stride) != len(strides):
        raise ValueError(f"per_stride has {len(per_stride)} rows for {len(strides)} strides")
    if not 0 < min_frac < 1:
        raise ValueError(f"min_frac must be in (0, 1), got {min_frac}")
    out = list(strides)
    for side in ("left", "right"):
        rows = [
            k
            for k, s in enumerate(strides)
            if s.side == side
            and s.exclusion is None
            and np.isfinite(per_stride[k].get("hip_flexion_range_deg", np.nan))
        ]
        rng = [per_stride[k]["hip_flexion_range_deg"] for k in rows]
        limit = partial_step_limit(rng, min_frac)  # once per side: the median is over all of them
        for k, flex in zip(rows, rng, strict=True):
            if flex < limit:
                out[k] = replace(strides[k], exclusion="outlier")
    return out


def mark_implausible(
    strides: Sequence[Stride],
    per_stride: Sequence[Mapping[str, float]],
    max_excursion_deg: float = MAX_HIP_ROTATION_EXCURSION_DEG,
) -> list[Stride]:
    """Mark strides whose hip rotation excursion no hip can make as ``implausible``.

    A valid stride with ``hip_rotation_excursion_deg`` above ``max_excursion_deg`` gets
    ``exclusion="implausible"``: its numbers measure the sensor, not the joint, and must not
    reach a mean or a flag. The report counts them per side and names the thigh to check.
    Strides already excluded keep their reason (in a gap the angles are not data anyway).
    """
    if len(per_stride) != len(strides):
        raise ValueError(f"per_stride has {len(per_stride)} rows for {len(strides)} strides")
    return [
        replace(s, exclusion="implausible")
        if s.exclusion is None and m.get("hip_rotation_excursion_deg", 0.0) > max_excursion_deg
        else s
        for s, m in zip(strides, per_stride, strict=True)
    ]
