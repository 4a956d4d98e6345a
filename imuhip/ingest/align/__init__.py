"""Device clocks -> one session clock, and all sensors onto one uniform grid with a gap mask.

Clock model: the lower envelope of the BLE receive times against device time (Moon, Skelly &
Towsley 1999), fitted offline by :func:`fit_clock` and online by :class:`ClockTracker`; the
derivation is in :mod:`imuhip.ingest.align.clock`.

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

Clocks from TIME_SYNC replies (lower bounds; used when every sensor has enough of them):
:mod:`imuhip.ingest.align.syncs`.

Modules: :mod:`~imuhip.ingest.align.clock` (the clock fit, batch and online),
:mod:`~imuhip.ingest.align.syncs` (TIME_SYNC anchors, batch and online) and
:mod:`~imuhip.ingest.align.grid` (the session grid). Log messages go to the
``imuhip.ingest.align`` logger. The names this package offered before it was split stay
importable from it (``X as X`` below, outside ``__all__``).
"""

from __future__ import annotations

from imuhip.ingest.align.clock import ClockTracker, fit_clock
from imuhip.ingest.align.clock import _window_minima as _window_minima
from imuhip.ingest.align.grid import AlignConfig, align_session, session_clocks, session_t0_ns

__all__ = [
    "AlignConfig",
    "ClockTracker",
    "align_session",
    "fit_clock",
    "session_clocks",
    "session_t0_ns",
]
