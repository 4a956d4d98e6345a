"""All sensors onto one uniform session grid with a gap mask (:func:`align_session`).

:func:`align_session` maps each sensor's samples to session time, then linearly interpolates them
onto ``t_s = k / rate_hz`` (integer ``k``) covering the union of the sensors' spans. ``valid`` is
True only where a grid point lies between two consecutive real samples (no lost sample between)
or on a real sample; everything else is filled (linear inside gaps up to ``max_fill_gap_s``,
nearest sample beyond, edge hold outside a sensor's span) so fixed-rate filters can run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.errors import AlignmentError
from imuhip.ingest._align_kernels import all_finite, resample_sensor
from imuhip.ingest.align.clock import FloatArray, fit_clock
from imuhip.ingest.align.syncs import every_sensor_has_floor, fit_floor, sync_anchors
from imuhip.ingest.parallel import map_sensors
from imuhip.types import AlignedSensor, AlignedSession, ClockModel, ImuSamples, SessionEvent

_LOG = logging.getLogger("imuhip.ingest.align")  # the stage's documented logger name

_EXACT_S = 1e-9  # a grid point this close to a sample is "on" it


@dataclass(frozen=True, slots=True)
class AlignConfig:
    """How samples go onto the session grid.

    Parameters
    ----------
    rate_hz : float or None
        Grid rate; ``None`` = the sensors' nominal rate (the highest if they differ).
    max_fill_gap_s : float
        Gaps up to this long are filled by linear interpolation, longer ones with the nearest real
        sample (both ``valid == False``).
    clock_window_s : float
        Window of the clock fit's per-window minima, device seconds.
    saturated_invalid : bool
        Grid points touching a saturated (clipped) sample are marked invalid.
    """

    rate_hz: float | None = None
    max_fill_gap_s: float = 1.0
    clock_window_s: float = 0.5
    saturated_invalid: bool = True

    def __post_init__(self) -> None:
        if self.rate_hz is not None and not (
            math.isfinite(self.rate_hz) and 0 < self.rate_hz <= 10_000
        ):
            raise ValueError(f"rate_hz must be in (0, 10000] or None, got {self.rate_hz}")
        if not (math.isfinite(self.max_fill_gap_s) and self.max_fill_gap_s >= 0):
            raise ValueError(f"max_fill_gap_s must be >= 0, got {self.max_fill_gap_s}")
        if not self.clock_window_s > 0:
            raise ValueError(f"clock_window_s must be > 0, got {self.clock_window_s}")


def session_t0_ns(samples: dict[str, ImuSamples]) -> int:
    """Session time zero: the smallest host receive time over all sensors (ns)."""
    firsts = [int(s.host_rx_ns.min()) for s in samples.values() if len(s)]
    if not firsts:
        raise AlignmentError("no sensor has any sample: cannot define session time zero")
    return min(firsts)


def _finite_rows(s: ImuSamples) -> npt.NDArray[np.bool_]:
    ok = np.isfinite(s.t_dev_s)
    for a in (s.acc_m_s2, s.gyr_rad_s, s.mag_ut):
        if a is None:
            continue
        if not all_finite(np.ascontiguousarray(a, np.float64)):  # usual case: one early-exit pass
            ok &= np.isfinite(a).all(axis=1)
    return ok


def _resample(
    x: FloatArray,
    idx: npt.NDArray[np.int64],
    bad: npt.NDArray[np.bool_],
    t: FloatArray,
    max_fill_gap_s: float,
) -> tuple[npt.NDArray[np.int64], FloatArray, npt.NDArray[np.bool_]]:
    """Bracketing sample ``j``, weight ``w`` of ``j + 1`` and validity per grid point."""
    n = len(x)
    j = np.searchsorted(x, t, side="right") - 1
    jc = np.clip(j, 0, max(n - 2, 0))
    if n == 1:
        return np.zeros(len(t), np.int64), np.zeros(len(t)), np.abs(t - x[0]) <= _EXACT_S
    x0, x1 = x[jc], x[jc + 1]
    w = np.clip((t - x0) / (x1 - x0), 0.0, 1.0)
    inside = (j >= 0) & (j <= n - 2)
    consecutive = (idx[jc + 1] - idx[jc]) == 1
    good_pair = ~bad[jc] & ~bad[jc + 1]
    valid = inside & consecutive & good_pair
    # exactly on a real sample (also the last one, or one next to a gap)
    on0 = (np.abs(t - x0) <= _EXACT_S) & ~bad[jc]
    on1 = (np.abs(t - x1) <= _EXACT_S) & ~bad[jc + 1]
    valid |= on0 | on1
    w = np.where(on0, 0.0, np.where(on1, 1.0, w))
    long_gap = inside & ~consecutive & ((x1 - x0) > max_fill_gap_s)
    w = np.where(long_gap, np.rint(w), w)
    return jc, w, valid


def _interp(v: FloatArray, j: npt.NDArray[np.int64], w: FloatArray) -> FloatArray:
    """``(1 - w) * v[j] + w * v[j + 1]`` per grid point; ``v`` is ``(n, 3)``."""
    if len(v) == 1:
        return np.repeat(v, len(j), axis=0)
    # same arithmetic as v[j] * (1 - w) + v[j + 1] * w, with np.take and in-place products
    # (fewer (M, 3) temporaries: about 2x faster on long sessions)
    out = np.take(v, j, axis=0)
    out *= (1.0 - w)[:, None]
    nxt = np.take(v, j + 1, axis=0)
    nxt *= w[:, None]
    out += nxt
    return out


def _grid_values(
    x: FloatArray,
    idx: npt.NDArray[np.int64],
    bad: npt.NDArray[np.bool_],
    t: FloatArray,
    max_fill_gap_s: float,
    acc: FloatArray,
    gyr: FloatArray,
    mag: FloatArray | None,
) -> tuple[FloatArray, FloatArray, FloatArray | None, npt.NDArray[np.bool_]]:
    """One sensor's ``(M, 3)`` channels and ``valid`` on the grid ``t``.

    One compiled pass per sensor (:func:`imuhip.ingest._align_kernels.resample_sensor`) writes all
    channels into fresh C-contiguous arrays (the layout the filters take without a copy); the
    result equals :func:`_resample` + :func:`_interp` bit for bit, which still serve a sensor
    with a single sample or with session times that go backwards.
    """
    m = len(t)
    if len(x) >= 2:
        out_acc = np.empty((m, 3), np.float64)
        out_gyr = np.empty((m, 3), np.float64)
        out_mag = np.empty((m if mag is not None else 0, 3), np.float64)
        valid = np.empty(m, np.bool_)
        c = np.ascontiguousarray
        done = resample_sensor(
            c(x, np.float64),
            c(idx, np.int64),
            c(bad, np.bool_),
            c(t, np.float64),
            float(max_fill_gap_s),
            _EXACT_S,
            c(acc, np.float64),
            c(gyr, np.float64),
            c(mag, np.float64) if mag is not None else _NO_ROWS,
            out_acc,
            out_gyr,
            out_mag,
            valid,
        )
        if done:
            return out_acc, out_gyr, (out_mag if mag is not None else None), valid
    j, w, valid = _resample(x, idx, bad, t, max_fill_gap_s)
    return (
        _interp(acc, j, w),
        _interp(gyr, j, w),
        None if mag is None else _interp(mag, j, w),
        valid,
    )


_NO_ROWS = np.empty((0, 3), np.float64)


def session_clocks(
    samples: Mapping[str, ImuSamples],
    t0_ns: int,
    events: Iterable[SessionEvent] = (),
    *,
    window_s: float = 0.5,
    rows: Mapping[str, npt.NDArray[np.bool_]] | None = None,
) -> dict[str, ClockModel]:
    """Each sensor's device clock -> session seconds, as :func:`align_session` maps it.

    The envelope of its packets' receive times (:func:`fit_clock`, over ``rows``, default the
    samples with a finite device time); when every sensor has enough ``time_sync`` replies in
    ``events``, the line on their lower bounds instead (:mod:`imuhip.ingest.align.syncs`). A
    sensor without a usable sample is left out.
    """
    fitted: dict[str, ClockModel] = {}
    for name in sorted(samples):
        s = samples[name]
        ok = rows[name] if rows is not None else np.isfinite(s.t_dev_s)
        if not ok.any():
            continue
        host_s = (s.host_rx_ns - np.int64(t0_ns)) * 1e-9
        keep = slice(None) if ok.all() else ok  # usual case: views, no masked copies
        fitted[name] = fit_clock(s.t_dev_s[keep], host_s[keep], window_s=window_s)
    anchors = sync_anchors(events, samples, t0_ns)
    if not anchors:
        return fitted
    floors = {n: fit_floor(anchors[n], c) if n in anchors else None for n, c in fitted.items()}
    if every_sensor_has_floor(floors, fitted):
        return {n: floors[n] or c for n, c in fitted.items()}
    _LOG.info(
        "time-sync anchors on %s only: every sensor keeps its packets' clock",
        ", ".join(sorted(n for n, f in floors.items() if f is not None)) or "no sensor",
    )
    return fitted


def align_session(
    samples: dict[str, ImuSamples],
    cfg: AlignConfig | None = None,
    t0_ns: int | None = None,
    events: Iterable[SessionEvent] = (),
) -> AlignedSession:
    """Map every sensor onto the session clock and one uniform grid.

    Parameters
    ----------
    samples : dict of str to ImuSamples
        Decoded samples per placement (device clock).
    cfg : AlignConfig, optional
    t0_ns : int, optional
        Session time zero (host ns); default the smallest host receive time over all sensors.
        Pass it explicitly when aligning chunks so that they agree.
    events : iterable of SessionEvent
        The session's events: when every sensor has enough ``time_sync`` replies, its clock is
        the line on their lower bounds (:mod:`imuhip.ingest.align.syncs`), else the envelope of
        its packets' receive times (:func:`fit_clock`), as the live path maps them.

    Returns
    -------
    AlignedSession
        ``t_s = k / rate_hz``; per sensor ``valid`` marks grid points bracketed by two consecutive
        real (finite, unsaturated) samples.

    Raises
    ------
    AlignmentError
        A sensor without (finite) samples, named in the message.
    """
    cfg = cfg or AlignConfig()
    if not isinstance(samples, dict) or not samples:
        raise TypeError("samples must be a non-empty dict of placement -> ImuSamples")
    for name, s in samples.items():
        if not isinstance(s, ImuSamples):
            raise TypeError(f"samples[{name!r}] must be ImuSamples, got {type(s).__name__}")
        if len(s) == 0:
            raise AlignmentError(
                f"sensor {name!r} has no decoded samples "
                f"({s.stats.packets_received} packets received, errors {s.stats.protocol_errors})"
            )
    if t0_ns is None:
        t0_ns = session_t0_ns(samples)
    rates = sorted({float(s.rate_hz) for s in samples.values()})
    rate = float(cfg.rate_hz) if cfg.rate_hz is not None else rates[-1]
    if cfg.rate_hz is None and len(rates) > 1:
        _LOG.warning("sensors run at different rates %s Hz; session grid uses %s Hz", rates, rate)

    rows: dict[str, npt.NDArray[np.bool_]] = {}
    for name in sorted(samples):
        ok = _finite_rows(samples[name])
        if not ok.any():
            raise AlignmentError(f"sensor {name!r} has no finite samples (all NaN or inf)")
        rows[name] = ok
    clocks = session_clocks(samples, t0_ns, events, window_s=cfg.clock_window_s, rows=rows)
    prepared: dict[str, tuple[ImuSamples, npt.NDArray[np.bool_], FloatArray, ClockModel]] = {}
    lo, hi = math.inf, -math.inf
    for name, ok in rows.items():
        s, clock = samples[name], clocks[name]
        keep = slice(None) if ok.all() else ok  # usual case: a view, no masked copy
        t_sess = clock.to_session(s.t_dev_s[keep])
        prepared[name] = (s, ok, t_sess, clock)
        lo, hi = min(lo, float(t_sess[0])), max(hi, float(t_sess[-1]))
    k_lo = math.ceil(lo * rate - 1e-6)
    k_hi = math.floor(hi * rate + 1e-6)
    t_s = np.arange(k_lo, k_hi + 1, dtype=np.float64) / rate

    def grid(
        name: str,
    ) -> tuple[FloatArray, FloatArray, FloatArray | None, npt.NDArray[np.bool_]]:
        s, ok, t_sess, _ = prepared[name]
        sel = slice(None) if ok.all() else ok  # usual case: a view, no masked copy
        idx = s.sample_idx[sel]
        bad = s.saturated[sel] if cfg.saturated_invalid else np.zeros(len(idx), np.bool_)
        return _grid_values(
            t_sess,
            idx,
            bad,
            t_s,
            cfg.max_fill_gap_s,
            s.acc_m_s2[sel],
            s.gyr_rad_s[sel],
            None if s.mag_ut is None else s.mag_ut[sel],
        )

    names = list(prepared)
    # one thread per sensor on a long session: the resampling kernel releases the GIL, and most
    # of its time there is the first touch of the fresh output pages
    values = dict(zip(names, map_sensors(grid, names, len(t_s)), strict=True))
    out: dict[str, AlignedSensor] = {}
    for name, (s, _, _, clock) in prepared.items():
        acc, gyr, mag, valid = values.pop(name)
        out[name] = AlignedSensor(
            placement=s.placement,
            acc_m_s2=acc,
            gyr_rad_s=gyr,
            mag_ut=mag,
            valid=valid,
            clock=clock,
            stats=s.stats,
        )
    return AlignedSession(t_s=t_s, rate_hz=rate, sensors=out)
