"""Physiological constraints on event candidates, for every event source.

A rule proposes candidates; walking constrains them. A same-side stride lasts 0.7-2.5 s at
walking speeds (cadence ~48-170 steps/min; ``EventConfig.candidate_min_stride_s``), so two IC
candidates (or two TO candidates) of one side closer than 0.7 s are one contact detected twice
(a double-humped swing, a turning step's wobble): the one produced by the larger swing is kept.
Stance fraction and left/right alternation act on the strides :func:`segment_strides` left
valid (:func:`check_strides`); stops are strides longer than ``max_stride_s`` (``standing``).
Every rejection is counted (``SideEvents.rejected`` -> ``quality["event_checks"]``).
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from imuhip.gait.events._config import EventConfig, FloatArray, Stride

__all__ = ["check_strides", "reject_close_candidates", "swing_support"]


def swing_support(
    t_s: FloatArray, wf: FloatArray, times: FloatArray, max_s: float, *, after: bool = False
) -> FloatArray:
    """Peak of ``wf`` (the swing) that produced each event candidate, rad/s.

    For an IC the swing before it: the maximum of ``wf`` from the previous candidate (or
    ``max_s`` before) to the candidate; for a TO (``after=True``) the swing after it, up to the
    next candidate (or ``max_s`` after).

    Parameters
    ----------
    t_s : (M,) float64
    wf : (M,) float64
        Low-passed mediolateral angular velocity, swing positive.
    times : (K,) float64
        Sorted candidate times, seconds.
    max_s : float
    after : bool

    Returns
    -------
    (K,) float64
    """
    times = np.asarray(times, dtype=np.float64)
    idx = np.searchsorted(t_s, times)
    n = len(t_s)
    width = max(1, round(max_s / float(np.median(np.diff(t_s))))) if n > 1 else 1
    out = np.zeros(len(times))
    for k, i in enumerate(idx.tolist()):
        if after:
            lo = i
            hi = int(idx[k + 1]) if k + 1 < len(idx) else i + width
            hi = min(hi, i + width, n)
        else:
            hi = min(i + 1, n)
            lo = int(idx[k - 1]) + 1 if k > 0 else i - width
            lo = max(lo, i - width, 0)
        out[k] = float(np.max(wf[lo:hi])) if hi > lo else 0.0
    return out


def reject_close_candidates(
    times: FloatArray, support: FloatArray, min_gap_s: float
) -> tuple[FloatArray, FloatArray, int]:
    """Drop candidates closer than ``min_gap_s`` to the previous accepted one.

    Candidates are taken in time order; when one lies within ``min_gap_s`` of the last accepted
    one, the better-supported of the two (larger ``support``; the earlier one on a tie) stays.

    Parameters
    ----------
    times : (K,) float64
        Candidate times, seconds (sorted here).
    support : (K,) float64
        Evidence of each candidate (the peak of the swing that produced it).
    min_gap_s : float

    Returns
    -------
    kept_times, kept_support : float64 arrays
    n_rejected : int
    """
    times = np.asarray(times, dtype=np.float64)
    support = np.asarray(support, dtype=np.float64)
    if times.shape != support.shape:
        raise ValueError(f"support must have shape {times.shape}, got {support.shape}")
    order = np.argsort(times, kind="stable")
    kept_t: list[float] = []
    kept_s: list[float] = []
    rejected = 0
    for t, s in zip(times[order].tolist(), support[order].tolist(), strict=True):
        if kept_t and t - kept_t[-1] < min_gap_s:
            rejected += 1
            if s > kept_s[-1]:
                kept_t[-1], kept_s[-1] = t, s
            continue
        kept_t.append(t)
        kept_s.append(s)
    return np.asarray(kept_t), np.asarray(kept_s), rejected


def check_strides(
    strides: list[Stride], other_ic_s: FloatArray | None, cfg: EventConfig
) -> list[Stride]:
    """Exclude valid strides whose stance fraction or left/right alternation is not walking.

    Applied after :func:`segment_strides` (its reasons come first): a valid stride whose stance
    (IC to TO) is outside ``stance_frac_min``-``stance_frac_max`` of it becomes ``stance``; with
    the other side's initial contacts ``other_ic_s`` (and ``cfg.check_alternation``), a valid
    stride inside the other side's walking (an other-side IC within ``max_stride_s`` before its
    start and after its end) that does not hold exactly one of them becomes ``alternation``.

    Parameters
    ----------
    strides : list of Stride
        One side's strides.
    other_ic_s : (K,) float64 or None
    cfg : EventConfig

    Returns
    -------
    list of Stride
    """
    odd = np.zeros(len(strides), dtype=bool)  # alternation broken, per stride
    if other_ic_s is not None and cfg.check_alternation and len(other_ic_s) >= 2 and strides:
        o = np.sort(np.asarray(other_ic_s, dtype=np.float64))
        a = np.array([s.ic_s for s in strides], dtype=np.float64)
        b = np.array([s.next_ic_s for s in strides], dtype=np.float64)
        w = cfg.max_stride_s
        # counts of the other side's ICs in [a, b), [a - w, a] and [b, b + w] (sorted: by
        # bisection, the same comparisons as masks over o, per stride)
        inside = np.searchsorted(o, b, "left") - np.searchsorted(o, a, "left")
        before = np.searchsorted(o, a, "right") - np.searchsorted(o, a - w, "left") > 0
        after = np.searchsorted(o, b + w, "right") - np.searchsorted(o, b, "left") > 0
        odd = (inside != 1) & before & after
    out = []
    for s, broken in zip(strides, odd, strict=True):
        reason = None
        frac = s.stance_frac
        if s.valid and frac is not None and not cfg.stance_frac_min <= frac <= cfg.stance_frac_max:
            reason = "stance"
        elif s.valid and broken:
            reason = "alternation"
        out.append(replace(s, exclusion=reason) if reason else s)
    return out
