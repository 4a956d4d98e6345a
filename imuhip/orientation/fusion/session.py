"""``fuse_session``: every sensor of an aligned session through one fusion method."""

from __future__ import annotations

import dataclasses
import logging
import mmap
import multiprocessing
import os
import re
import sys
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import numpy as np
import numpy.typing as npt

from imuhip.orientation.fusion._types import FuseConfig, FusionResult, canonical_method
from imuhip.orientation.fusion.core import estimate_orientation_full
from imuhip.types import AlignedSession, OrientationSession

__all__ = [
    "FILTER_RESTART_KEY",
    "RESET_GAP_S",
    "filter_runs",
    "fuse_session",
    "fuse_session_degrading",
    "fusion_workers",
]

log = logging.getLogger(__name__)

BoolArray = npt.NDArray[np.bool_]

#: A gap (no sample) longer than this restarts the sensor's filter at the first sample after it,
#: offline (:func:`fuse_session`) and live (``imuhip.live``) alike: after seconds without data
#: (a reconnect) nothing is known about the orientation, and a filter run through filled
#: samples was tens of degrees off for seconds (``docs/live.md``, "Gaps and reconnects").
RESET_GAP_S = 0.5
#: ``OrientationSession.diagnostics[p][FILTER_RESTART_KEY]``: (M,) bool, True on the first row
#: of each filter run after a gap longer than :data:`RESET_GAP_S` (the rows of the gap before
#: it are invalid and hold the last orientation).
FILTER_RESTART_KEY = "filter_restart"
#: Rows per sensor from which :func:`fusion_workers` fuses sensors in parallel by default (5 min
#: at 200 Hz: the filter then takes ~0.2 s per sensor, well above the ~10 ms a forked process
#: costs).
PARALLEL_MIN_ROWS = 60_000
_JOB: tuple[AlignedSession, FuseConfig, str] | None = None  # what forked workers fuse
_OUTS: dict[str, _SharedOut] = {}  # where they write it


def fusion_workers(aligned: AlignedSession, cfg: FuseConfig) -> int:
    """Processes :func:`fuse_session` uses for ``aligned``: ``cfg.workers``, or by default one per
    sensor up to the CPUs this process may use once every sensor has
    :data:`PARALLEL_MIN_ROWS` rows. Only where a worker can be forked safely (Linux, no other
    thread in this process, e.g. not inside a live session) and not inside a worker process (a
    cohort's: its pool already uses the cores); 1 otherwise."""
    n = len(aligned.sensors)
    if n < 2 or sys.platform != "linux" or threading.active_count() > 1:
        return 1
    if multiprocessing.parent_process() is not None:
        return 1
    if cfg.workers is not None:
        return min(cfg.workers, n)
    if len(aligned.t_s) < PARALLEL_MIN_ROWS:
        return 1
    return max(1, min(n, len(os.sched_getaffinity(0))))


def _fuse_one(placement: str) -> tuple[FusionResult, BoolArray]:
    assert _JOB is not None
    aligned, cfg, method = _JOB
    s = aligned.sensors[placement]
    mag = s.mag_ut if cfg.use_mag else None
    try:
        return _fuse_runs(s.acc_m_s2, s.gyr_rad_s, mag, s.valid, aligned.rate_hz, method, cfg)
    except ValueError as err:
        raise ValueError(f"sensor {placement!r}: {err}") from err


def _fuse_all(
    aligned: AlignedSession, cfg: FuseConfig, method: str
) -> dict[str, tuple[FusionResult, BoolArray]]:
    """Every sensor through :func:`_fuse_runs`, in :func:`fusion_workers` forked processes: they
    read the session from this process's memory and write their results into shared memory
    (:class:`_SharedOut`); only a few flags travel back."""
    global _JOB, _OUTS
    names = list(aligned.sensors)
    workers = fusion_workers(aligned, cfg)
    _JOB = (aligned, cfg, method)
    try:
        if workers <= 1:
            return {p: _fuse_one(p) for p in names}
        log.info("fusing %d sensors in %d processes", len(names), workers)
        _OUTS = {p: _SharedOut(len(aligned.t_s)) for p in names}
        ctx = multiprocessing.get_context("fork")
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                flags = list(pool.map(_fuse_into, names))
        except BrokenProcessPool as err:  # a worker died (out of memory, killed): in-process
            log.warning("parallel fusion failed (%s); fusing the sensors one after the other", err)
            return {p: _fuse_one(p) for p in names}
        return {p: _OUTS[p].result(f) for p, f in zip(names, flags, strict=True)}
    finally:
        _JOB, _OUTS = None, {}


class _SharedOut:
    """One sensor's fusion outputs in anonymous shared memory, written by a forked worker."""

    def __init__(self, m: int) -> None:
        self.buf = mmap.mmap(-1, max(1, m * (4 * 8 + 3 * 8 + 4)))  # MAP_SHARED | MAP_ANONYMOUS
        f64 = np.frombuffer(self.buf, np.float64, m * 7)
        self.q = f64[: 4 * m].reshape(m, 4)
        self.bias = f64[4 * m :].reshape(m, 3)
        flags = np.frombuffer(self.buf, np.bool_, 4 * m, offset=56 * m).reshape(4, m)
        self.valid, self.rest, self.mag_disturbed, self.restart = flags

    def result(self, flags: tuple[str, bool, bool, bool]) -> tuple[FusionResult, BoolArray]:
        method, uses_mag, has_dist, has_bias = flags
        res = FusionResult(
            q_world_sensor=self.q,
            valid=self.valid,
            rest=self.rest,
            mag_disturbed=self.mag_disturbed if has_dist else None,
            gyr_bias_rad_s=self.bias if has_bias else None,
            method=method,
            uses_mag=uses_mag,
        )
        return res, self.restart


def _fuse_into(placement: str) -> tuple[str, bool, bool, bool]:
    out = _OUTS[placement]
    res, restart = _fuse_one(placement)
    out.q[:] = res.q_world_sensor
    out.valid[:] = res.valid
    out.rest[:] = res.rest
    out.restart[:] = restart
    if res.mag_disturbed is not None:
        out.mag_disturbed[:] = res.mag_disturbed
    if res.gyr_bias_rad_s is not None:
        out.bias[:] = res.gyr_bias_rad_s
    return res.method, res.uses_mag, res.mag_disturbed is not None, res.gyr_bias_rad_s is not None


def filter_runs(valid: npt.NDArray[np.bool_], rate_hz: float) -> list[tuple[int, int]]:
    """Row ranges ``[start, stop)`` of one filter run each, split at gaps > :data:`RESET_GAP_S`.

    A gap is an interior run of ``n`` invalid rows between two valid ones; it spans
    ``(n + 1) / rate_hz`` seconds between the samples around it (the live grid's measure). A
    run ends at its last valid row; the rows of a gap belong to no run. Leading and trailing
    invalid rows stay with the first and last run (the filter fills them as before).
    """
    m = len(valid)
    ok = np.flatnonzero(valid)
    if len(ok) < 2:
        return [(0, m)]
    step = np.diff(ok)  # n + 1 between consecutive valid rows
    cut = np.flatnonzero(step > RESET_GAP_S * rate_hz + 1e-6)
    if not len(cut):
        return [(0, m)]
    starts = [0, *(ok[cut + 1]).tolist()]
    stops = [*(ok[cut] + 1).tolist(), m]
    return list(zip(starts, stops, strict=True))


def fuse_session(aligned: AlignedSession, cfg: FuseConfig | None = None) -> OrientationSession:
    """Estimate ``q_world_sensor`` for every sensor of ``aligned``.

    Parameters
    ----------
    aligned : AlignedSession
        Sensors on one uniform grid with their ``valid`` masks (filled rows are refilled here
        by interpolation, or causal hold for ``vqf_online``, and stay invalid). After a gap
        longer than :data:`RESET_GAP_S` the filter restarts at the next valid row (``vqf_online``
        keeps its gyroscope bias estimate, as live); the gap rows hold the last orientation.
    cfg : FuseConfig, optional
        Method, magnetometer use and tuning (default: vqf offline, 9D where a sensor has a
        magnetometer). Sensors are independent: long sessions fuse them in parallel processes
        (:func:`fusion_workers`), with the same result.

    Returns
    -------
    OrientationSession
        ``source`` is the canonical method name. ``diagnostics[placement]`` holds ``(M,)``
        arrays: ``rest``, ``uses_mag`` (constant), and where available ``mag_disturbed`` and
        ``gyr_bias_x_rad_s`` / ``_y_`` / ``_z_``, and :data:`FILTER_RESTART_KEY` (True on the
        first row of each run after a restart).
    """
    cfg = FuseConfig() if cfg is None else cfg
    if not isinstance(aligned, AlignedSession):
        raise TypeError(f"aligned must be an AlignedSession, got {type(aligned).__name__}")
    method = canonical_method(cfg.method)
    m = len(aligned.t_s)
    q: dict[str, npt.NDArray[np.float64]] = {}
    # only the magnetometer data the filter actually used: downstream stages read its presence
    # as "orientations share a magnetic heading" (9D); with use_mag=False they do not
    mag_used: dict[str, npt.NDArray[np.float64] | None] = {}
    diagnostics: dict[str, dict[str, npt.NDArray[Any]]] = {}
    for placement, (res, restart) in _fuse_all(aligned, cfg, method).items():
        s = aligned.sensors[placement]
        q[placement] = res.q_world_sensor
        mag_used[placement] = s.mag_ut if res.uses_mag else None
        d: dict[str, npt.NDArray[Any]] = {
            "rest": res.rest,
            "uses_mag": np.full(m, res.uses_mag, dtype=bool),
            FILTER_RESTART_KEY: restart,
        }
        if res.mag_disturbed is not None:
            d["mag_disturbed"] = res.mag_disturbed
        if res.gyr_bias_rad_s is not None:
            for k, axis in enumerate("xyz"):
                d[f"gyr_bias_{axis}_rad_s"] = res.gyr_bias_rad_s[:, k]
        diagnostics[placement] = d
        log.info(
            "fused %s with %s (%s), %d samples, %.1f %% invalid",
            placement,
            method,
            "9D" if res.uses_mag else "6D",
            m,
            100.0 * (1.0 - float(np.mean(s.valid))) if m else 0.0,
        )
    return OrientationSession(
        t_s=aligned.t_s,
        rate_hz=aligned.rate_hz,
        q_world_sensor=q,
        acc_m_s2={k: s.acc_m_s2 for k, s in aligned.sensors.items()},
        gyr_rad_s={k: s.gyr_rad_s for k, s in aligned.sensors.items()},
        valid={k: s.valid for k, s in aligned.sensors.items()},
        source=method,
        diagnostics=diagnostics,
        mag_ut=mag_used,
    )


def _fuse_runs(
    acc: npt.NDArray[np.float64],
    gyr: npt.NDArray[np.float64],
    mag: npt.NDArray[np.float64] | None,
    valid: npt.NDArray[np.bool_],
    rate_hz: float,
    method: str,
    cfg: FuseConfig,
) -> tuple[FusionResult, npt.NDArray[np.bool_]]:
    """One sensor through the filter, restarted after every gap > :data:`RESET_GAP_S`.

    Returns the result over all rows (gap rows: invalid, last orientation and diagnostics
    held) and the ``(M,)`` restart mask.
    """
    m = len(valid)
    runs = filter_runs(valid, rate_hz)
    restart = np.zeros(m, dtype=bool)
    if len(runs) == 1:
        res = estimate_orientation_full(
            acc, gyr, mag, rate_hz=rate_hz, method=method, valid=valid, params=cfg.params
        )
        return res, restart
    parts = []
    online = None
    if method == "vqf_online":  # one filter, restarted with its bias kept (as live)
        from imuhip.orientation.fusion.online import OnlineFusion

        online = OnlineFusion(rate_hz=rate_hz, use_mag=mag is not None, params=cfg.params)
    for a, b in runs:
        mag_ab = None if mag is None else mag[a:b]
        if online is not None:
            if a > 0:
                online.restart()
            parts.append(online.update(acc[a:b], gyr[a:b], mag_ab, valid=valid[a:b]))
            continue
        parts.append(
            estimate_orientation_full(
                acc[a:b],
                gyr[a:b],
                mag_ab,
                rate_hz=rate_hz,
                method=method,
                valid=valid[a:b],
                params=cfg.params,
            )
        )
    # every row from the runs; gap rows hold the last row of the run before them
    offset = 0
    pos = np.zeros(m, dtype=np.int64)
    for (a, b), nxt in zip(runs, [*(r[0] for r in runs[1:]), m], strict=True):
        pos[a:b] = offset + np.arange(b - a)
        pos[b:nxt] = offset + (b - a) - 1
        offset += b - a
    restart[[a for a, _ in runs[1:]]] = True

    def cat(name: str) -> npt.NDArray[Any] | None:
        vals = [getattr(p, name) for p in parts]
        if any(v is None for v in vals):
            return None
        return np.concatenate(vals)[pos]

    q = cat("q_world_sensor")
    rest = cat("rest")
    assert q is not None and rest is not None
    run_valid = np.zeros(m, dtype=bool)
    for a, b in runs:
        run_valid[a:b] = True
    res = FusionResult(
        q_world_sensor=q,
        valid=valid & run_valid,
        rest=rest & run_valid,
        mag_disturbed=cat("mag_disturbed"),
        gyr_bias_rad_s=cat("gyr_bias_rad_s"),
        method=parts[0].method,
        uses_mag=parts[0].uses_mag,
    )
    return res, restart


def fuse_session_degrading(
    aligned: AlignedSession, cfg: FuseConfig, *, required: tuple[str, ...]
) -> tuple[OrientationSession, dict[str, dict[str, str]]]:
    """:func:`fuse_session`, leaving out a sensor not in ``required`` whose fusion fails.

    Returns the orientations and ``{placement: {"stage": "fusion", "reason": ...}}`` of the
    sensors left out. A failure of a ``required`` sensor stays a ``ValueError`` naming it.
    """
    dropped: dict[str, dict[str, str]] = {}
    while True:
        try:
            return fuse_session(aligned, cfg), dropped
        except ValueError as err:
            m = re.match(r"sensor '([A-Za-z0-9_]+)': (.*)", str(err), re.DOTALL)
            if m is None or m.group(1) in required or m.group(1) not in aligned.sensors:
                raise
            placement, reason = m.group(1), m.group(2)
            dropped[placement] = {"stage": "fusion", "reason": reason}
            log.warning("%s dropped: orientation fusion failed (%s)", placement, reason)
            rest = {p: a for p, a in aligned.sensors.items() if p != placement}
            aligned = dataclasses.replace(aligned, sensors=rest)
