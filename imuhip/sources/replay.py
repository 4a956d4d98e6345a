"""Recording -> the same :class:`~imuhip.types.RawPacket` stream a live session produced.

Replay is synchronous. Unpaced (the default) it yields as fast as the consumer takes packets;
paced (``realtime=True``) it reproduces the recorded host receive timing, scaled by ``speed``, so a
live view can be driven from a file (mne-lsl ``Player`` does the same for LSL streams).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

from imuhip.ingest.recording import Recording
from imuhip.types import RawPacket

__all__ = ["replay_packets"]

_MAX_LAG_S = 0.5  # a consumer this far behind does not get a burst to "catch up" silently


def replay_packets(
    rec: Recording,
    *,
    realtime: bool = False,
    speed: float = 1.0,
    sleep: Callable[[float], object] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Iterator[RawPacket]:
    """Yield the recorded packets, in recorded order, byte-identical.

    Parameters
    ----------
    rec : Recording
        From :func:`imuhip.ingest.recording.read_recording`.
    realtime : bool
        Pace the packets at their recorded ``host_rx_ns`` spacing (divided by ``speed``).
        Otherwise yield without waiting.
    speed : float
        Replay speed factor for ``realtime`` (2.0 = twice as fast); finite and > 0.
    sleep, clock : callables
        Injected for tests: ``sleep(seconds)`` and a monotonic ``clock() -> seconds``.

    Yields
    ------
    RawPacket
        The very objects of ``rec.packets`` (``host_rx_ns`` keeps the recorded value, so the
        downstream clock model sees exactly what the live run saw).

    Raises
    ------
    ValueError
        ``speed`` not finite and positive.

    Notes
    -----
    Pacing is against the start of the replay: packet ``k`` is released at
    ``t0 + (host_rx_ns[k] - host_rx_ns[0]) / 1e9 / speed``, so timing errors do not accumulate.
    If the consumer falls behind by more than 0.5 s, the schedule is shifted instead of releasing
    a burst (the replay then runs late, never faster than ``speed``).
    """
    if isinstance(speed, bool) or not isinstance(speed, int | float):
        raise TypeError(f"speed must be a number, got {type(speed).__name__}")
    if not (math.isfinite(speed) and speed > 0):
        raise ValueError(f"speed must be a finite number > 0, got {speed}")
    packets = rec.packets
    if not realtime:
        yield from packets
        return
    if not packets:
        return
    ns0 = packets[0].host_rx_ns
    t0 = clock()
    scale = 1e-9 / float(speed)
    for pkt in packets:
        due = t0 + (pkt.host_rx_ns - ns0) * scale
        wait = due - clock()
        if wait > 0:
            sleep(wait)
        elif wait < -_MAX_LAG_S:
            t0 -= wait  # shift the schedule: the consumer is too slow
        yield pkt
