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

Modules: :mod:`~imuhip.ingest.align.clock` (the clock fit, batch and online) and
:mod:`~imuhip.ingest.align.grid` (the session grid). Log messages go to the
``imuhip.ingest.align`` logger. The names this package offered before it was split stay
importable from it (``X as X`` below, outside ``__all__``).
"""

from __future__ import annotations

from imuhip.ingest.align.clock import ClockTracker, fit_clock
from imuhip.ingest.align.clock import _window_minima as _window_minima
from imuhip.ingest.align.grid import AlignConfig, align_session, session_t0_ns

__all__ = [
    "AlignConfig",
    "ClockTracker",
    "align_session",
    "fit_clock",
    "session_t0_ns",
]
