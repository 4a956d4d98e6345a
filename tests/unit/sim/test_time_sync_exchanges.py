"""The offline simulator's TIME_SYNC exchanges (``SimParams.time_sync``, ``simulate --time-sync``):
known answers from a hand-made link and device clock."""

from __future__ import annotations

import numpy as np

from imuhip.sim.link import SYNC_BURST, DeviceClock, LinkOutcome, time_sync_exchanges

CI = 0.015
DRIFT_PPM = 30.0
CLOCK = DeviceClock(t_start_s=0.01, drift_ppm=DRIFT_PPM, t_dev_start_us=4_290_000_000, seq0=0)


def _true_time(dev_us: int) -> float:
    """True (host) seconds at which the device clock read ``dev_us`` (unwrapped past 2**32)."""
    us = dev_us if dev_us >= CLOCK.t_dev_start_us else dev_us + 2**32
    return CLOCK.t_start_s + (us - CLOCK.t_dev_start_us) * 1e-6 / (1.0 + DRIFT_PPM * 1e-6)


def test_requests_are_stamped_at_the_next_connection_event_of_their_connection() -> None:
    rx = np.arange(0.06, 20.0, 0.05)
    down = (8.0, 9.0)
    rx[(rx >= down[0]) & (rx < down[1])] = np.nan
    anchors = (0.004, down[1] + 0.007)
    out = LinkOutcome(rx, np.full(len(rx), "", dtype="<U10"), CI, (down,), anchors)
    got = time_sync_exchanges(out, CLOCK, np.random.default_rng(1))
    sends = np.array([g[0] for g in got])
    assert not np.any((sends >= down[0]) & (sends < down[1]))  # nothing while the link is down
    for first in (0.06, float(np.nanmin(rx[rx >= down[1]]))):  # a burst on each connection
        assert np.sum((sends >= first) & (sends < first + 0.01)) == SYNC_BURST
    # 4 per second after the bursts, at random phases
    assert 60 <= len(got) - 2 * SYNC_BURST <= 90
    for send, dev_us, recv in got:
        anchor = anchors[0] if send < down[0] else anchors[1]
        event = anchor + np.ceil((send - anchor) / CI + 1e-9) * CI  # sent on an event: the next
        t = _true_time(dev_us)
        assert abs(t - event) < 1e-6  # the device read its clock at that event (1-us counts)
        assert send <= t <= send + CI + 1e-6  # a lower bound, at most one interval loose
        assert recv >= t + CI  # the reply rides the following event
    # the clock wraps past 2**32 us within the session and the stamps wrap with it
    assert min(g[1] for g in got) < 1_000_000_000 < max(g[1] for g in got)
