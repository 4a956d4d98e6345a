"""Supervision of a live BLE session: reconnects, periodic time sync, overflow reports.

A sensor whose link drops is reconnected with backoff by
``bleak_retry_connector.establish_connection`` (inside an outer backoff loop that keeps trying
until the session stops or ``give_up_after_s``), then re-configured in full and re-synced; the
other sensors keep streaming meanwhile. Every second the supervisor also reports notifications
dropped on a full queue (``queue_overflow`` events) and, every ``time_sync_interval_s``, asks each
connected sensor for a time-sync anchor.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError

from imuhip.errors import SensorConnectionError
from imuhip.sources.ble.config import LinkState, StreamConfig
from imuhip.sources.ble.driver import ImuhipDriver
from imuhip.types import SensorMeta, SessionEvent

log = logging.getLogger(__name__)

_SYNC_POLL_S = 0.01  # wall seconds between looks at what is due


class _Supervision:
    """The supervision half of :class:`~imuhip.sources.ble.session.BleSession` (a mixin).

    The attributes and the three methods declared here are the session's own.
    """

    cfg: StreamConfig
    targets: dict[str, str | BLEDevice]
    links: dict[str, LinkState]
    meta: dict[str, SensorMeta]
    failed: dict[str, str]
    driver: ImuhipDriver
    _clients: dict[str, BleakClient]
    _lost: dict[str, asyncio.Event]
    _overflow_reported: dict[str, int]
    #: TIME_SYNC scheduling per sensor: host-clock ns when the next is due, requests left of the
    #: burst after a (re)start, requests awaiting their reply
    _sync_at: dict[str, int]
    _sync_burst: dict[str, int]
    _sync_flying: dict[str, int]
    clock_ns: Callable[[], int]

    if TYPE_CHECKING:

        def _event(self, kind: str, sensor: str | None, **data: Any) -> None: ...

        async def _bring_up(self, sensor: str, *, first: bool) -> None: ...

        async def _sync(self, sensor: str) -> None: ...

    # -- supervision ---------------------------------------------------------------------------
    async def _watch(self, sensor: str, stop: asyncio.Event) -> None:
        lost = self._lost[sensor]
        link = self.links[sensor]
        while not stop.is_set():
            await _wait_any(lost, stop)
            if stop.is_set():
                return
            lost.clear()
            old = self._clients.pop(sensor, None)
            if old is not None:
                self.driver.forget(old)
            t_lost = time.monotonic()
            for attempt in itertools.count():
                if stop.is_set():
                    return
                wait = self.cfg.backoff_s[min(attempt, len(self.cfg.backoff_s) - 1)]
                await _sleep_or_stop(wait, stop)
                if stop.is_set():
                    return
                log.debug("%s: reconnect attempt %d", sensor, attempt + 1)
                try:
                    await self._bring_up(sensor, first=False)
                except (SensorConnectionError, BleakError, TimeoutError) as err:
                    log.debug("%s: reconnect attempt %d failed: %s", sensor, attempt + 1, err)
                    link.error = str(err)
                    elapsed = time.monotonic() - t_lost
                    if self.cfg.give_up_after_s is not None and elapsed > self.cfg.give_up_after_s:
                        link.state = "failed"
                        msg = f"{sensor} did not come back after {elapsed:.1f} s: {err}"
                        self.failed[sensor] = msg
                        self._event("gave_up", sensor, error=msg)
                        log.error("%s", msg)
                        return
                    continue
                link.reconnects += 1
                log.debug("%s: back after %.2f s", sensor, time.monotonic() - t_lost)
                break

    async def _periodic(self, stop: asyncio.Event) -> None:
        """Report queue drops every wall second; send TIME_SYNC requests as they fall due."""
        next_drops = time.monotonic() + 1.0
        rng = random.Random(0x5E7)  # request phases: any, but the same on every run
        tasks: set[asyncio.Task[None]] = set()
        try:
            while not stop.is_set():
                await _sleep_or_stop(_SYNC_POLL_S, stop)
                wall = time.monotonic()
                if wall >= next_drops:
                    next_drops = wall + 1.0
                    for ev in self.take_drops():
                        self._event(ev.kind, ev.sensor, **ev.data)
                now_ns = self.clock_ns()
                for sensor in list(self._clients):
                    if not self._sync_due(sensor, now_ns):
                        continue
                    self._sync_flying[sensor] = self._sync_flying.get(sensor, 0) + 1
                    left = self._sync_burst.get(sensor, 0)
                    if left > 0:
                        self._sync_burst[sensor] = left - 1
                    else:
                        wait_s = self.cfg.time_sync_interval_s * rng.uniform(0.5, 1.5)
                        self._sync_at[sensor] = now_ns + round(wait_s * 1e9)
                    t = asyncio.ensure_future(self._sync_one(sensor))
                    tasks.add(t)
                    t.add_done_callback(tasks.discard)
        finally:
            for t in tasks:
                t.cancel()

    def _sync_due(self, sensor: str, now_ns: int) -> bool:
        if self.links[sensor].state != "streaming":
            return False
        if self._sync_flying.get(sensor, 0) >= self.cfg.time_sync_in_flight:
            return False
        return self._sync_burst.get(sensor, 0) > 0 or now_ns >= self._sync_at.get(sensor, 0)

    async def _sync_one(self, sensor: str) -> None:
        try:
            with contextlib.suppress(SensorConnectionError, BleakError, TimeoutError):
                await self._sync(sensor)
        finally:
            self._sync_flying[sensor] = max(0, self._sync_flying.get(sensor, 0) - 1)

    def arm_sync_burst(self, sensor: str) -> None:
        """A link (re)started: send ``time_sync_burst`` TIME_SYNC requests once it streams."""
        self._sync_burst[sensor] = self.cfg.time_sync_burst
        self._sync_at[sensor] = 0

    def take_drops(self) -> list[SessionEvent]:
        """``queue_overflow`` events for the notifications dropped since the last call.

        Data: ``dropped`` (count), ``total`` (since the start), ``first_ns`` / ``last_ns`` (host
        stamps of the first and last dropped notification): readers count them as loss
        (:func:`imuhip.ingest.recording.dropped_notifications`).
        """
        out = []
        for sensor, link in self.links.items():
            n = link.queue_drops - self._overflow_reported[sensor]
            if n <= 0:
                continue
            self._overflow_reported[sensor] = link.queue_drops
            log.error("%s: %d notification(s) dropped: consumer queue full", sensor, n)
            first = link.drop_first_ns if link.drop_first_ns is not None else self.clock_ns()
            last = link.drop_last_ns if link.drop_last_ns is not None else first
            link.drop_first_ns = link.drop_last_ns = None
            data = {"dropped": n, "total": link.queue_drops, "first_ns": first, "last_ns": last}
            out.append(SessionEvent(last, "queue_overflow", sensor, data))
        return out

    async def supervise(self, stop: asyncio.Event) -> None:
        """Reconnect dropped sensors and emit periodic time-sync anchors until ``stop``."""
        async with asyncio.TaskGroup() as tg:
            for sensor in self.targets:
                if sensor in self.meta:
                    tg.create_task(self._watch(sensor, stop))
            tg.create_task(self._periodic(stop))


async def _wait_any(a: asyncio.Event, b: asyncio.Event) -> None:
    ta = asyncio.ensure_future(a.wait())
    tb = asyncio.ensure_future(b.wait())
    try:
        await asyncio.wait({ta, tb}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        ta.cancel()
        tb.cancel()


async def _sleep_or_stop(seconds: float, stop: asyncio.Event) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()
