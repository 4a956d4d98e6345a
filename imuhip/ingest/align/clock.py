"""Device clock -> session clock: the lower envelope of BLE receive times (:func:`fit_clock`).

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
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.errors import AlignmentError
from imuhip.ingest._align_kernels import lower_hull, window_minima_increasing
from imuhip.types import ClockModel

FloatArray = npt.NDArray[np.float64]

_MAD_TO_SD = 1.4826
_OUTLIER_FLOOR_S = 0.005  # window minima this far below the robust line (and 6 SD) are glitches


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
