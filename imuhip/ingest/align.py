"""Device clocks -> one session clock, and all sensors onto one uniform grid with a gap mask.

Clock model
-----------
A notification cannot reach the host before its last sample was taken, and BLE adds a one-sided,
bursty latency (connection intervals of 7.5–50 ms, missed connection events, host scheduling).
So host receive times lie *above* the line ``host = offset + (1 + drift) * t_dev`` and the line is
the **lower envelope** of the ``(t_dev, host_rx)`` cloud. :func:`fit_clock` estimates it with the
linear-programming estimator of Moon, Skelly & Towsley (1999, "Estimation and removal of clock skew
from network delay measurements", doi:10.1109/INFCOM.1999.752178): the line below every point that
maximises the sum of its ordinates, which touches the lower convex hull on the edge spanning the
mean device time. Points are first reduced to per-window minima (``window_s`` of device time), and
window minima far below a robust median-slope line (impossible under causality: host clock glitches)
are discarded so one bad point cannot tilt the fit. :class:`ClockTracker` maintains the same window
minima online and gives the same model.

Session clock: seconds from ``t0_ns``, by default the smallest host receive time over all sensors.
The fitted offset absorbs the (unknowable) minimum BLE latency, so session times of samples are
slightly earlier than their receive times, as they should be.

Grid
----
:func:`align_session` maps each sensor's samples to session time, then linearly interpolates them
onto ``t_s = k / rate_hz`` (integer ``k``) covering the union of the sensors' spans. ``valid`` is
True only where a grid point lies between two consecutive real samples (no lost sample between)
or on a real sample; everything else is filled (linear inside gaps up to ``max_fill_gap_s``,
nearest sample beyond, edge hold outside a sensor's span) so fixed-rate filters can run.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.errors import AlignmentError
from imuhip.ingest._align_kernels import (
    all_finite,
    lower_hull,
    resample_sensor,
    window_minima_increasing,
)
from imuhip.types import AlignedSensor, AlignedSession, ClockModel, ImuSamples

__all__ = [
    "AlignConfig",
    "ClockTracker",
    "align_session",
    "fit_clock",
    "session_t0_ns",
]

_LOG = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

_MAD_TO_SD = 1.4826
_OUTLIER_FLOOR_S = 0.005  # window minima this far below the robust line (and 6 SD) are glitches
_EXACT_S = 1e-9  # a grid point this close to a sample is "on" it


# ---------------------------------------------------------------------------------------------
# clock fit
# ---------------------------------------------------------------------------------------------
def _window_minima(
    t: FloatArray, r: FloatArray, window_s: float
) -> tuple[npt.NDArray[np.int64], FloatArray, FloatArray]:
    """Per device-time window ``floor(t / window_s)``: the point with the smallest ``r``."""
    n = len(t)
    if n > 1:
        # usual case, t strictly increasing: windows are runs, one compiled pass picks each
        # run's first smallest r (the same pick as the lexsort below)
        win_o = np.empty(n, np.int64)
        t_o = np.empty(n, np.float64)
        r_o = np.empty(n, np.float64)
        m = window_minima_increasing(
            np.ascontiguousarray(t, np.float64),
            np.ascontiguousarray(r, np.float64),
            float(window_s),
            win_o,
            t_o,
            r_o,
        )
        if m >= 0:
            return win_o[:m].copy(), t_o[:m].copy(), r_o[:m].copy()
    win = np.floor(t / window_s).astype(np.int64)
    order = np.lexsort((t, r, win))  # by window, then r, ties by t: deterministic
    w_sorted = win[order]
    first = np.concatenate([[True], w_sorted[1:] != w_sorted[:-1]])
    pick = order[first]
    return win[pick], t[pick], r[pick]


def _lower_hull(x: FloatArray, y: FloatArray) -> list[int]:
    """Indices of the lower convex hull of points sorted by ``x`` (Andrew's monotone chain)."""
    out = np.empty(len(x), np.int64)
    h = lower_hull(np.ascontiguousarray(x, np.float64), np.ascontiguousarray(y, np.float64), out)
    return out[:h].tolist()


def _fit_minima(
    t: FloatArray,
    r: FloatArray,
    t_mean: float,
    min_span_s: float,
    drift_prior: float,
) -> tuple[float, float, float, int]:
    """Lower-envelope line ``r = a + b * (t - t_mean)`` through window minima.

    Returns ``(a, b, jitter_s, n_used)`` with ``a`` at ``t_mean``.
    """
    order = np.argsort(t, kind="stable")
    t, r = t[order] - t_mean, r[order]
    span = float(t[-1] - t[0]) if len(t) else 0.0
    if len(t) >= 4 and span >= min_span_s:
        # robust pre-fit: slope between the medians of the two halves
        h = len(t) // 2
        b0 = (np.median(r[h:]) - np.median(r[:h])) / (np.median(t[h:]) - np.median(t[:h]))
        e = r - b0 * t
        med = float(np.median(e))
        mad = float(np.median(np.abs(e - med))) * _MAD_TO_SD
        keep = e >= med - max(6.0 * mad, _OUTLIER_FLOOR_S)
        t, r = t[keep], r[keep]
        hull = _lower_hull(t, r)
        xs, ys = t[hull], r[hull]
        if len(hull) == 1:
            b, a = 0.0, float(ys[0])
        else:
            k = int(np.clip(np.searchsorted(xs, 0.0, side="right") - 1, 0, len(hull) - 2))
            b = float((ys[k + 1] - ys[k]) / (xs[k + 1] - xs[k]))
            a = float(ys[k] - b * xs[k])
    else:
        b = drift_prior
        a = float(np.min(r - b * t))
    res = r - (a + b * t)
    jitter = float(np.median(np.abs(res - np.median(res)))) * _MAD_TO_SD if len(res) else 0.0
    return a, b, jitter, len(t)


def fit_clock(
    t_dev_s: npt.ArrayLike,
    host_rx_s: npt.ArrayLike,
    *,
    window_s: float = 0.5,
    min_span_s: float = 10.0,
) -> ClockModel:
    """Fit ``host ≈ offset + (1 + drift) * t_dev`` to the lower envelope of BLE receive times.

    Parameters
    ----------
    t_dev_s : (N,) float
        Device time of each sample (or packet), seconds, unwrapped.
    host_rx_s : (N,) float
        Host receive time of the notification carrying it, session seconds.
    window_s : float
        Device-time window for the per-window minima, seconds.
    min_span_s : float
        Below this span of device time the drift is not estimated (taken as 0 ppm).

    Returns
    -------
    ClockModel
        ``offset_s``, ``drift_ppm``, ``residual_jitter_s`` (robust SD of the window minima about the
        envelope) and ``n_anchors`` (window minima used).

    Raises
    ------
    AlignmentError
        No finite point pair.
    """
    t = np.asarray(t_dev_s, np.float64).ravel()
    h = np.asarray(host_rx_s, np.float64).ravel()
    if t.shape != h.shape:
        raise ValueError(
            f"t_dev_s and host_rx_s must have the same shape, got {t.shape}, {h.shape}"
        )
    if not window_s > 0:
        raise ValueError(f"window_s must be > 0, got {window_s}")
    ok = np.isfinite(t) & np.isfinite(h)
    if not ok.any():
        raise AlignmentError("cannot fit a device clock: no finite (t_dev, host_rx) pair")
    if not ok.all():
        t, h = t[ok], h[ok]
    _, tw, rw = _window_minima(t, h - t, window_s)
    t_mean = float(np.mean(t))
    a, b, jitter, n_used = _fit_minima(tw, rw, t_mean, min_span_s, 0.0)
    return ClockModel(
        offset_s=a - b * t_mean, drift_ppm=b * 1e6, residual_jitter_s=jitter, n_anchors=n_used
    )


class ClockTracker:
    """Online version of :func:`fit_clock` for the live path, in bounded memory.

    Feed it ``update(t_dev_s, host_rx_s)`` per packet or chunk (scalars or arrays); ``model`` is the
    current :class:`ClockModel` (``None`` before the first point). It keeps at most
    ``max_anchors`` window minima in preallocated arrays (its memory does not grow with the
    session). Until they are full it equals :func:`fit_clock` on the same points (same windows,
    same estimator); when they are full, the windows are coarsened by 2 (each pair of adjacent
    windows keeps its lower minimum), so from then on it equals :func:`fit_clock` with
    ``window_s = self.window_s * 2**self.level`` on the same points (with the defaults: exact for
    the first 2048 x 0.5 s ≈ 17 min, then 1 s windows up to ≈ 34 min, and so on). Coarser windows
    only drop points above the lower envelope (Moon et al. 1999, doi:10.1109/INFCOM.1999.752178);
    the reported jitter (spread of the window minima about it) gets smaller.

    ``reanchor()`` after a reconnect or a device clock step: the anchors collected so far are
    dropped; the last drift estimate is kept as the drift until the new anchors span
    ``min_span_s`` again.
    """

    def __init__(
        self, *, window_s: float = 0.5, min_span_s: float = 10.0, max_anchors: int = 2048
    ) -> None:
        if not window_s > 0:
            raise ValueError(f"window_s must be > 0, got {window_s}")
        if max_anchors < 16:
            raise ValueError(f"max_anchors must be >= 16, got {max_anchors}")
        self.window_s = float(window_s)
        self.min_span_s = float(min_span_s)
        self.max_anchors = int(max_anchors)
        self._drift_prior = 0.0
        self.reanchors = 0
        # window minima sorted by window key: key, device time t, r = host - t (preallocated)
        self._win = np.empty(self.max_anchors, np.int64)
        self._t = np.empty(self.max_anchors, np.float64)
        self._r = np.empty(self.max_anchors, np.float64)
        self._reset()

    def _reset(self) -> None:
        self._n = 0
        #: current windows are ``window_s * 2**level`` seconds of device time
        self.level = 0
        self._sum_t = 0.0
        self._count = 0
        self._model: ClockModel | None = None
        self._dirty = False

    @property
    def n_anchors(self) -> int:
        """Window minima currently held (at most ``max_anchors``)."""
        return self._n

    def update(self, t_dev_s: npt.ArrayLike, host_rx_s: npt.ArrayLike) -> None:
        """Add points (device seconds, session seconds); non-finite pairs are ignored."""
        t = np.atleast_1d(np.asarray(t_dev_s, np.float64)).ravel()
        h = np.atleast_1d(np.asarray(host_rx_s, np.float64)).ravel()
        if t.shape != h.shape:
            raise ValueError(
                f"t_dev_s and host_rx_s must have the same shape, got {t.shape}, {h.shape}"
            )
        ok = np.isfinite(t) & np.isfinite(h)
        t, h = t[ok], h[ok]
        if not len(t):
            return
        # base windows; floor(t / (w * 2**L)) == floor(t / w) >> L exactly, and the minimum of a
        # coarse window is the minimum of its base windows' minima
        win, tw, rw = _window_minima(t, h - t, self.window_s)
        for w, tt, rr in zip(win.tolist(), tw.tolist(), rw.tolist(), strict=True):
            self._insert(w, tt, rr)
        self._sum_t += float(np.sum(t))
        self._count += len(t)
        self._dirty = True

    def _insert(self, w_base: int, t: float, r: float) -> None:
        while True:
            w = w_base >> self.level
            n = self._n
            wins = self._win[:n]
            i = n if n == 0 or w > wins[-1] else int(np.searchsorted(wins, w))
            if i < n and wins[i] == w:
                if (r, t) < (self._r[i], self._t[i]):
                    self._r[i], self._t[i] = r, t
                return
            if n < self.max_anchors:
                break
            self._coarsen()
        if i < n:  # out-of-order window (rare): shift the tail
            self._win[i + 1 : n + 1] = self._win[i:n].copy()
            self._t[i + 1 : n + 1] = self._t[i:n].copy()
            self._r[i + 1 : n + 1] = self._r[i:n].copy()
        self._win[i], self._t[i], self._r[i] = w, t, r
        self._n = n + 1

    def _coarsen(self) -> None:
        """Double the window length: adjacent windows keep their smaller (r, t) minimum."""
        n = self._n
        key = self._win[:n] >> 1
        r, t = self._r[:n], self._t[:n]
        order = np.lexsort((t, r, key))  # by window, then r, ties by t (as _window_minima)
        k_sorted = key[order]
        pick = order[np.concatenate([[True], k_sorted[1:] != k_sorted[:-1]])]
        m = len(pick)
        self._win[:m], self._t[:m], self._r[:m] = key[pick], t[pick], r[pick]
        self._n = m
        self.level += 1

    def reanchor(self) -> None:
        """Start a new anchor set (after a reconnect or CLOCK_RESYNC), keeping the drift."""
        m = self.model
        if m is not None and m.n_anchors and self._span() >= self.min_span_s:
            self._drift_prior = m.drift_ppm * 1e-6
        self.reanchors += 1
        self._reset()

    def _span(self) -> float:
        if not self._n:
            return 0.0
        ts = self._t[: self._n]
        return float(ts.max() - ts.min())

    @property
    def model(self) -> ClockModel | None:
        """The current clock model, or ``None`` before any point."""
        if self._dirty:
            n = self._n
            t_mean = self._sum_t / self._count
            a, b, jitter, n_used = _fit_minima(
                self._t[:n].copy(), self._r[:n].copy(), t_mean, self.min_span_s, self._drift_prior
            )
            self._model = ClockModel(a - b * t_mean, b * 1e6, jitter, n_used)
            self._dirty = False
        return self._model


# ---------------------------------------------------------------------------------------------
# session grid
# ---------------------------------------------------------------------------------------------
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


def align_session(
    samples: dict[str, ImuSamples], cfg: AlignConfig | None = None, t0_ns: int | None = None
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

    prepared: dict[str, tuple[ImuSamples, npt.NDArray[np.bool_], FloatArray, ClockModel]] = {}
    lo, hi = math.inf, -math.inf
    for name in sorted(samples):
        s = samples[name]
        ok = _finite_rows(s)
        if not ok.any():
            raise AlignmentError(f"sensor {name!r} has no finite samples (all NaN or inf)")
        host_s = (s.host_rx_ns - np.int64(t0_ns)) * 1e-9
        keep = slice(None) if ok.all() else ok  # usual case: views, no masked copies
        clock = fit_clock(s.t_dev_s[keep], host_s[keep], window_s=cfg.clock_window_s)
        t_sess = clock.to_session(s.t_dev_s[keep])
        prepared[name] = (s, ok, t_sess, clock)
        lo, hi = min(lo, float(t_sess[0])), max(hi, float(t_sess[-1]))
    k_lo = math.ceil(lo * rate - 1e-6)
    k_hi = math.floor(hi * rate + 1e-6)
    t_s = np.arange(k_lo, k_hi + 1, dtype=np.float64) / rate

    out: dict[str, AlignedSensor] = {}
    for name, (s, ok, t_sess, clock) in prepared.items():
        sel = slice(None) if ok.all() else ok  # usual case: a view, no masked copy
        idx = s.sample_idx[sel]
        bad = s.saturated[sel] if cfg.saturated_invalid else np.zeros(len(idx), np.bool_)
        acc, gyr, mag, valid = _grid_values(
            t_sess,
            idx,
            bad,
            t_s,
            cfg.max_fill_gap_s,
            s.acc_m_s2[sel],
            s.gyr_rad_s[sel],
            None if s.mag_ut is None else s.mag_ut[sel],
        )
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
