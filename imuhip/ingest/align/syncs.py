"""Device clock from TIME_SYNC anchors: Cristian lower bounds (SPEC §4.4).

A TIME_SYNC request the host sent at host time ``t_send`` reaches the device no earlier than
``t_send``, so the device time ``t_dev`` in its reply maps to a host time ``>= t_send``: every
reply is a *floor* point ``f = t_send - t_dev`` below the line
``host - t_dev = offset + drift * t_dev``. The data packets' receive times are the matching
*ceilings* (:func:`imuhip.ingest.align.clock.fit_clock`: a packet cannot arrive before its last
sample was taken).

Why floors: on a link whose packet period and connection interval are commensurate (50-ms packets,
30-ms connection events, the BlueZ default) a packet waits 0, 10 or 20 ms for its event, and as
the device clock drifts the three waits shift together: the ceiling stays flat and the offset open
by up to 10 ms until the drift has moved it by a whole step (~250 s at 40 ppm; docs/live.md).
Requests sent at random phases of the connection events instead wait anywhere within one
interval, and the tightest of a few dozen pin the line to a millisecond or less. Live and offline
then agree: both map with the floor line (the offline one over the whole session, the live one
over what has arrived so far), where the ceiling leaves the live mapping up to one wait level away
from the offline one.

* :func:`sync_anchors` reads the ``time_sync`` events of a recording as floor points, the reply's
  u32 device time unwrapped against the sensor's samples; replies from before the sensor's first
  sample are left out (a device clock may be re-based at START).
* :func:`fit_floor` (offline): the line on the upper envelope of the floor points, the linear
  program of Moon et al. (1999) mirrored; points above the data ceiling by more than
  :data:`CEILING_TOLERANCE_S` cannot be (causality) and are dropped.
* :class:`SyncFloor` (live): the highest floor point of the last ``window_s``, carried to the
  present with the drift of the floors so far.
* The rule, offline and live alike (:func:`every_sensor_has_floor`): floors only when every sensor
  has at least :data:`MIN_SYNCS` usable ones; otherwise the ceiling for all. The two bounds differ
  by the links' latencies (several ms), so a session mapped half by floors and half by ceilings
  would shift its sensors against each other.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.ingest.align.clock import FloatArray, _fit_minima
from imuhip.types import ClockModel, ImuSamples, SessionEvent

__all__ = [
    "CEILING_TOLERANCE_S",
    "MIN_SYNCS",
    "SyncAnchors",
    "SyncFloor",
    "every_sensor_has_floor",
    "fit_floor",
    "sync_anchors",
    "unwrap_device_us",
]

#: usable TIME_SYNC replies a sensor needs before its clock is taken from them
MIN_SYNCS = 8
#: a floor point may lie this far above the data ceiling (host stamp jitter) before it is dropped
CEILING_TOLERANCE_S = 0.005
_TIME_MODULUS_US = 1 << 32
#: a drift beyond this (100 ppm) is a short-span fit, not a crystal (typically +-20-50 ppm)
PLAUSIBLE_DRIFT = 100e-6


@dataclass(frozen=True, slots=True)
class SyncAnchors:
    """One sensor's TIME_SYNC floor points: device seconds and ``t_send - t_dev`` (session s)."""

    t_dev_s: FloatArray
    floor_s: FloatArray

    def __len__(self) -> int:
        return len(self.t_dev_s)


def unwrap_device_us(t_dev_us: npt.ArrayLike, ref_t_dev_s: npt.ArrayLike) -> FloatArray:
    """u32 device microseconds -> the unwrapped device seconds nearest ``ref_t_dev_s``.

    ``ref_t_dev_s`` is the (unwrapped) device time of a sample received close to each reply; the
    reply lies within half a wrap (~36 min) of it.
    """
    us = np.asarray(t_dev_us, np.int64)
    ref = np.asarray(ref_t_dev_s, np.float64)
    ref_us = np.round(ref * 1e6).astype(np.int64)
    half = _TIME_MODULUS_US // 2
    delta = (us - ref_us % _TIME_MODULUS_US + half) % _TIME_MODULUS_US - half
    return ref + delta * 1e-6


def sync_anchors(
    events: Iterable[SessionEvent], samples: Mapping[str, ImuSamples], t0_ns: int
) -> dict[str, SyncAnchors]:
    """The ``time_sync`` events of a session as floor points per sensor (session seconds).

    A reply counts from the sensor's first sample on; its device time is unwrapped against the
    sample received last before the reply.
    """
    raw: dict[str, list[tuple[int, int, int]]] = {}
    for ev in events:
        if ev.kind != "time_sync" or ev.sensor not in samples:
            continue
        d = ev.data
        try:
            item = (int(d["t_send_ns"]), int(d["t_recv_ns"]), int(d["t_dev_us"]))
        except (KeyError, TypeError, ValueError):
            continue
        raw.setdefault(str(ev.sensor), []).append(item)
    out: dict[str, SyncAnchors] = {}
    for name, items in raw.items():
        s = samples[name]
        ok = np.isfinite(s.t_dev_s)
        if not ok.any():
            continue
        rx = s.host_rx_ns[ok]
        td = s.t_dev_s[ok]
        send, recv, dev = (np.array(c, np.int64) for c in zip(*items, strict=True))
        keep = send >= rx.min()
        if not keep.any():
            continue
        send, recv, dev = send[keep], recv[keep], dev[keep]
        j = np.clip(np.searchsorted(rx, recv, side="right") - 1, 0, len(rx) - 1)
        t_dev = unwrap_device_us(dev, td[j])
        floor = (send - np.int64(t0_ns)) * 1e-9 - t_dev
        order = np.argsort(t_dev, kind="stable")
        out[name] = SyncAnchors(t_dev[order], floor[order])
    return out


def _consistent(t: FloatArray, f: FloatArray, ceiling: ClockModel) -> npt.NDArray[np.bool_]:
    """Floor points not above the data ceiling (``ceiling.to_session(t) - t``) + tolerance."""
    return f <= ceiling.to_session(t) - t + CEILING_TOLERANCE_S


def _floor_line(
    t: FloatArray, f: FloatArray, min_span_s: float, drift_prior: float
) -> tuple[float, float, float, int]:
    """``(offset_s, drift, jitter_s, n)`` of the line on the upper envelope of ``(t, f)``."""
    t_mean = float(np.mean(t))
    # the lower envelope of -f is the upper envelope of f: the same estimator, mirrored
    a, b, jitter, n = _fit_minima(t.copy(), -f, t_mean, min_span_s, -drift_prior)
    return -a + b * t_mean, -b, jitter, n


def fit_floor(
    anchors: SyncAnchors, ceiling: ClockModel, *, min_span_s: float = 10.0
) -> ClockModel | None:
    """The sensor's clock from its floor points, or ``None`` with fewer than :data:`MIN_SYNCS`.

    ``ceiling`` is the data packets' fit (:func:`fit_clock`): floor points above it cannot be and
    are dropped. While the floors span less than ``min_span_s`` the drift is taken as 0.
    """
    ok = _consistent(anchors.t_dev_s, anchors.floor_s, ceiling)
    if int(ok.sum()) < MIN_SYNCS:
        return None
    offset, drift, jitter, n = _floor_line(
        anchors.t_dev_s[ok], anchors.floor_s[ok], min_span_s, 0.0
    )
    return ClockModel(offset_s=offset, drift_ppm=drift * 1e6, residual_jitter_s=jitter, n_anchors=n)


def every_sensor_has_floor(floors: Mapping[str, ClockModel | None], sensors: Iterable[str]) -> bool:
    """Floors for all or for none: ``True`` when every one of ``sensors`` has a floor clock."""
    return all(floors.get(s) is not None for s in sensors)


class SyncFloor:
    """Live floor clock of one sensor, in bounded memory.

    ``add(t_dev_s, floor_s, ceiling)`` per TIME_SYNC reply; ``model(t_dev_now, ceiling)`` maps
    with the highest floor point of the last ``window_s`` device seconds, carried to ``t_dev_now``
    with the drift of the floor line of everything held; while that spans less than
    ``min_span_s``, the drift of ``ceiling`` (the packets' clock) if within
    :data:`PLAUSIBLE_DRIFT`, else 0 (a short span of floors, or of a freshly re-anchored ceiling,
    can give hundreds of ppm; a crystal's drift is tens). ``None`` with fewer than
    :data:`MIN_SYNCS` points.
    """

    def __init__(
        self, *, window_s: float = 45.0, min_span_s: float = 60.0, max_points: int = 4096
    ) -> None:
        if max_points < MIN_SYNCS:
            raise ValueError(f"max_points must be >= {MIN_SYNCS}, got {max_points}")
        self.window_s = float(window_s)
        self.min_span_s = float(min_span_s)
        # a ring of the newest points, preallocated (memory does not grow with the session)
        self._t = np.empty(max_points, np.float64)
        self._f = np.empty(max_points, np.float64)
        self._n = 0  # points held
        self._next = 0  # ring index of the next point
        self._drift: float | None = None  # floor-line drift of the points held (cached)
        self.refused = 0  # replies above the packets' clock when they came

    def __len__(self) -> int:
        return self._n

    def add(self, t_dev_s: float, floor_s: float, ceiling: ClockModel | None = None) -> bool:
        """One reply's floor point (device seconds, session seconds); ``False`` if refused.

        A point above the packets' clock ``ceiling`` (+ :data:`CEILING_TOLERANCE_S`) at its own
        time cannot be and is refused: checked now, where the packets' clock rests on the latest
        packets (extrapolated far back, a freshly re-anchored one can be off by tens of ms).
        """
        if not (np.isfinite(t_dev_s) and np.isfinite(floor_s)):
            return False
        if (
            ceiling is not None
            and not _consistent(np.array([t_dev_s]), np.array([floor_s]), ceiling)[0]
        ):
            self.refused += 1
            return False
        self._t[self._next] = t_dev_s
        self._f[self._next] = floor_s
        self._next = (self._next + 1) % len(self._t)
        self._n = min(self._n + 1, len(self._t))
        self._drift = None
        return True

    def reset(self) -> None:
        """The device clock restarted: its earlier points are on another time base."""
        self._n = self._next = 0
        self._drift = None

    def model(self, t_dev_now: float, ceiling: ClockModel) -> ClockModel | None:
        """The clock at device time ``t_dev_now`` (see the class docstring)."""
        if self._n < MIN_SYNCS:
            return None
        t, f = self._t[: self._n], self._f[: self._n]  # ring order: the fits do not need time order
        if float(t.max() - t.min()) >= self.min_span_s:
            if self._drift is None:
                self._drift = _floor_line(t, f, self.min_span_s, 0.0)[1]
            drift = self._drift
        else:
            # the packets' clock's drift if a crystal could have it, else none yet
            drift = ceiling.drift_ppm * 1e-6
            if not abs(drift) <= PLAUSIBLE_DRIFT:
                drift = 0.0
        recent = t >= t_dev_now - self.window_s
        if not recent.any():
            recent = np.ones(len(t), bool)
        level = float(np.max(f[recent] + drift * (t_dev_now - t[recent])))
        return ClockModel(
            offset_s=level - drift * t_dev_now,
            drift_ppm=drift * 1e6,
            residual_jitter_s=0.0,
            n_anchors=int(recent.sum()),
        )
