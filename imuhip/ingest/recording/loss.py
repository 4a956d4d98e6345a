"""Notifications the host dropped before they reached the recorder, counted from its events.

A live session whose consumer falls behind (a flooding peer, a stalled disk, CPU load) drops
notifications at the BLE callback (:class:`imuhip.sources.ble.BleSession`'s queue is bounded).
Those packets never reach the file, and when the drops come at the end of a stream no sequence
gap shows them; the session marks them with ``queue_overflow`` events (``dropped``: count,
``first_ns`` / ``last_ns``: host stamps of the first and last one). Every reader turns them into
a warning, so ``imuhip info`` and the report name the loss instead of calling the file complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

from imuhip.types import SessionEvent

__all__ = ["DROP_EVENT", "dropped_notifications", "dropped_warnings"]

DROP_EVENT: Final = "queue_overflow"


def _int(v: Any) -> int | None:
    return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def dropped_notifications(events: Iterable[SessionEvent]) -> dict[str, dict[str, int]]:
    """Per sensor: ``count`` of dropped notifications and ``first_ns`` / ``last_ns`` (host clock).

    Events written before the span was recorded (only ``dropped``) span their own stamp.
    """
    out: dict[str, dict[str, int]] = {}
    for ev in events:
        if ev.kind != DROP_EVENT or ev.sensor is None:
            continue
        n = _int(ev.data.get("dropped"))
        if n is None or n <= 0:
            continue
        first = _int(ev.data.get("first_ns"))
        last = _int(ev.data.get("last_ns"))
        first = ev.host_rx_ns if first is None else first
        last = ev.host_rx_ns if last is None else last
        d = out.setdefault(ev.sensor, {"count": 0, "first_ns": first, "last_ns": last})
        d["count"] += n
        d["first_ns"] = min(d["first_ns"], first)
        d["last_ns"] = max(d["last_ns"], last)
    return out


def dropped_warnings(events: Iterable[SessionEvent], t0_ns: int | None) -> list[str]:
    """One warning per sensor with dropped notifications (times in session seconds from
    ``t0_ns``, the first packet's host stamp; host-clock ns when ``None``)."""
    lines = []
    for sensor, d in sorted(dropped_notifications(events).items()):
        if t0_ns is None:
            span = f"host clock {d['first_ns']} to {d['last_ns']} ns"
        else:
            span = f"{(d['first_ns'] - t0_ns) * 1e-9:.1f} to {(d['last_ns'] - t0_ns) * 1e-9:.1f} s"
        lines.append(
            f"{sensor}: {d['count']} notification(s) DROPPED by the host while recording "
            f"(receive queue full), {span}: that data was lost and is not in the file"
        )
    return lines
