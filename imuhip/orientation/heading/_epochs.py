"""Walking-axis anchors across filter restarts: never interpolated over a reconnect gap.

After a gap longer than :data:`imuhip.orientation.fusion.session.RESET_GAP_S` the fusion
restarts a sensor's filter (offline and live alike); the new filter's heading is unrelated to
the old one. The pelvis–thigh heading offset is then estimated per *filter epoch pair* (the
rows where neither filter restarted): a window that contains a gap row or a restart is no
anchor; within an epoch pair the offsets are interpolated as before and held up to its edges.
An epoch pair after a restart is re-anchored on the first short window with walking
(``HeadingConfig.reanchor_window_s``, tried every 1 s from the restart, as
:mod:`imuhip.live.hips` does causally) unless a regular window completes first; its rows up to
the end of that first anchor window are *re-converging*: the joint angles mark them invalid.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from imuhip.orientation.heading._config import BoolArray, FloatArray, HeadingConfig
from imuhip.types import OrientationSession

IntArray = npt.NDArray[np.int64]

__all__ = ["filter_epochs", "pair_epochs", "reanchor", "reconverging_without_anchor"]


def filter_epochs(ori: OrientationSession, placement: str) -> IntArray | None:
    """Filter epoch per row of one sensor (0, 1, ... after each restart; -1 on the gap rows
    before a restart), or ``None`` when its filter ran through (no restart)."""
    from imuhip.orientation.fusion.session import FILTER_RESTART_KEY

    restart = ori.diagnostics.get(placement, {}).get(FILTER_RESTART_KEY)
    if restart is None or not np.any(restart):
        return None
    restart = np.asarray(restart, dtype=bool)
    valid = np.asarray(ori.valid[placement], dtype=bool)
    ep = np.cumsum(restart).astype(np.int64)
    for c in np.flatnonzero(restart).tolist():
        a = c
        while a > 0 and not valid[a - 1]:
            a -= 1
        ep[a:c] = -1
    return ep


def pair_epochs(a: IntArray | None, b: IntArray | None, m: int) -> IntArray | None:
    """One id per row that changes whenever either epoch changes (-1 where either is -1);
    ``None`` when neither sensor restarted."""
    if a is None and b is None:
        return None
    ea = np.zeros(m, np.int64) if a is None else a
    eb = np.zeros(m, np.int64) if b is None else b
    out = ea * (int(eb.max()) + 2) + eb
    out[(ea < 0) | (eb < 0)] = -1
    return out


def _segments(pair: IntArray) -> list[tuple[int, int]]:
    """Row ranges ``[c, e)`` of each epoch pair, in order (they are contiguous)."""
    out = []
    ids = pair[pair >= 0]
    for v in np.unique(ids).tolist():
        rows = np.flatnonzero(pair == v)
        out.append((int(rows[0]), int(rows[-1]) + 1))
    return out


def reconverging_without_anchor(pair: IntArray, rate_hz: float, cfg: HeadingConfig) -> BoolArray:
    """Re-converging rows when no walking-axis anchor is fitted (9D): the first
    ``cfg.reanchor_window_s`` after each restart, and the gap rows before it."""
    out = pair < 0
    w = round(cfg.reanchor_window_s * rate_hz)
    for c, e in _segments(pair)[1:]:
        out[c : min(e, c + w)] = True
    return out


def reanchor(
    starts: IntArray,
    off_rad: FloatArray | None,
    win: int,
    hop: int,
    pair: IntArray,
    rate_hz: float,
    cfg: HeadingConfig,
    short_fit: Callable[[int, int], float | None],
) -> tuple[IntArray, FloatArray, FloatArray, BoolArray]:
    """Anchors of one segment against the pelvis with filter restarts.

    Parameters
    ----------
    starts, off_rad : the regular anchor windows (start rows) and their unwrapped offsets
    win, hop : regular window length and step (rows)
    pair : (M,) epoch pair id per row (:func:`pair_epochs`)
    short_fit : offset (rad) of the short window ``[a, b)``, ``None`` if it is no anchor

    Returns
    -------
    starts : the regular windows kept (inside one epoch pair)
    centres, off_rad : the anchor knots: window centres plus the first and last row of each
        epoch pair holding its first and last offset (so nothing is interpolated across a gap)
    reconverging : (M,) bool, the gap rows and each epoch pair's rows before its first anchor
    """
    reconv = pair < 0
    offs = np.zeros(0) if off_rad is None else off_rad
    inside = np.array(
        [pair[s] >= 0 and np.all(pair[s : s + win] == pair[s]) for s in starts.tolist()],
        dtype=bool,
    )
    keep_starts = starts[inside]
    keep_off = offs[inside] if len(offs) else np.zeros(0)
    w = round(cfg.reanchor_window_s * rate_hz)
    step = max(1, round(rate_hz))
    cen_all: list[float] = []
    off_all: list[float] = []
    for i, (c, e) in enumerate(_segments(pair)):
        sel = (keep_starts >= c) & (keep_starts < e)
        cen = list((keep_starts[sel] + 0.5 * win).astype(float))
        off = list(keep_off[sel])
        if i > 0:  # after a restart: a short window may anchor before the first regular one
            reg_end = int(keep_starts[sel][0]) + win if sel.any() else e + win
            end = None
            s = c
            while s + w <= e and s + w < reg_end:
                o = short_fit(s, s + w)
                if o is not None:
                    cen, off, end = [s + 0.5 * w, *cen], [o, *off], s + w
                    break
                s += step
            if end is None:
                end = min(reg_end, e)
            else:  # then windows growing by one hop from s until a regular one completes
                n = w + hop
                while n <= win and s + n <= e and s + n < reg_end:
                    o = short_fit(s, s + n)
                    if o is not None:
                        cen, off = [*cen, s + 0.5 * n], [*off, o]
                    n += hop
            reconv[c:end] = True
        if not cen:
            continue
        order = np.argsort(np.asarray(cen), kind="stable")
        cen = [cen[j] for j in order.tolist()]
        off = list(np.unwrap(np.asarray([off[j] for j in order.tolist()], dtype=float)))
        knots = [float(c), *cen, float(e - 1)]
        vals = [off[0], *off, off[-1]]
        if knots[1] <= knots[0]:
            knots, vals = knots[1:], vals[1:]
        if knots[-1] <= knots[-2]:
            knots, vals = knots[:-1], vals[:-1]
        cen_all += knots
        off_all += vals
    return (
        keep_starts,
        np.asarray(cen_all, dtype=np.float64),
        np.unwrap(np.asarray(off_all, dtype=np.float64)),
        reconv,
    )


def _short_cfg(cfg: HeadingConfig, w: int, rate_hz: float) -> HeadingConfig:
    return replace(cfg, window_s=w / rate_hz, hop_s=w / rate_hz)
