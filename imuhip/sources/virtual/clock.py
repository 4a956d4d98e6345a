"""The virtual time base shared by a fleet of virtual sensors and (optionally) the host.

Virtual seconds advance at ``speed`` x wall seconds, except while the clock is *held*: a virtual
sensor whose injected outage is over holds the clock until the host has reconnected and started
it again. The reconnect then takes no virtual time, so an outage scheduled for ``down_s``
virtual seconds loses exactly the packets due in that window, whatever the CPU load, and the
next scheduled outage cannot fall inside a reconnect (the fault schedule is deterministic in
virtual time).

Back-pressure: a host that reports what it has handled (:meth:`VirtualClock.consumed`, passed to
``run_live(..., on_consumed=...)`` by :meth:`imuhip.sources.virtual.VirtualFleet.host_hooks`) keeps
virtual time at most ``max_backlog_s`` ahead of it. A host stalled by a busy CPU, a garbage
collection or a one-off kernel compile then slows the simulation down instead of seeing its
queue overflow: what a test measures does not depend on how fast the machine is. Notifications
still inside the (in-process) BLE stack count as not handled: a host whose queue is empty because
the stack cannot deliver at ``speed`` is behind too (the sensors report :meth:`VirtualClock.sent`,
the host's receive stamp :meth:`VirtualClock.delivered`). The time
virtual time stood still for the host counts as held (it resumes smoothly, without a burst).

The host can stamp events with :meth:`VirtualClock.host_ns` (the latest virtual time at which
any sensor of the fleet produced a packet) and each sensor's notifications with
:meth:`VirtualClock.sensor_ns` (the virtual time of that sensor's latest packet) instead of
``time.monotonic_ns``. A packet is then stamped at its virtual send time (or that of a packet
of the same burst), never with the wall clock's scheduling noise multiplied by ``speed``, and
never ahead because the machine could not keep up: clock drift and offset fitted on these
stamps are those of the simulated device oscillators.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque

__all__ = ["VirtualClock"]

log = logging.getLogger(__name__)

_POLL_WALL_S = 0.002
_IN_FLIGHT_MAX = 100_000  # notifications remembered per sensor (a host that never reads them)
_WRITES_MAX = 64  # GATT writes on the air per peer (a device that never handles them)
_SESSION_END = "session end"


class VirtualClock:
    """Virtual seconds = (wall seconds since :meth:`start` - held seconds) x ``speed``.

    Parameters
    ----------
    speed : float or None
        Virtual seconds per wall second; ``None``: as fast as possible (time is then the largest
        value passed to :meth:`mark`).
    max_hold_wall_s : float
        A hold not released after this many wall seconds is released anyway (a host that never
        comes back must not stop the fleet's time); likewise notifications counted in flight
        while nothing at all arrived for this long are taken as lost.
    max_lead_s : float
        Virtual time runs at most this far ahead of the slowest sensor that has marked a packet
        (so the fault schedules of different sensors keep their order on a slow machine).
    max_backlog_s : float
        Once the host reports progress (:meth:`consumed`), virtual time runs at most this far
        ahead of what it has handled and of the oldest notification still in flight between a
        sensor and the host (:meth:`sent`, :meth:`delivered`).
    """

    def __init__(
        self,
        speed: float | None,
        *,
        max_hold_wall_s: float = 15.0,
        max_lead_s: float = 1.0,
        max_backlog_s: float = 0.5,
    ) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 or None, got {speed}")
        self.speed = speed
        self.max_hold_wall_s = float(max_hold_wall_s)
        self.max_lead_s = float(max_lead_s)
        if not max_backlog_s > 0:
            raise ValueError(f"max_backlog_s must be > 0, got {max_backlog_s}")
        self.max_backlog_s = float(max_backlog_s)
        self._consumed_s: float | None = None  # None: no host reports progress
        self.backpressure_wall_s = 0.0  # wall seconds virtual time waited for the host
        self._last_now_s = 0.0
        self._t0_wall: float | None = None
        self._held_total_s = 0.0
        self._held_since: float | None = None
        self._holders: set[object] = set()
        self._mark_s = 0.0
        self._marks: dict[object, float] = {}
        #: per sensor: send times of the notifications handed to the stack, not yet received
        self._in_flight: dict[object, deque[float]] = {}
        #: per peer address: host-clock times (s) of the GATT writes on the air, not yet taken
        self._writes: dict[str, deque[float]] = {}
        self._last_delivery_wall = time.monotonic()
        self.in_flight_resets = 0  # times nothing arrived for max_hold_wall_s (see now_s)
        self.outages: set[object] = set()  # sensors in a scheduled outage right now
        self.holds = 0
        self.hold_timeouts = 0

    def start(self) -> None:
        """Virtual time 0 is now (idempotent)."""
        if self._t0_wall is None:
            self._t0_wall = time.monotonic()

    @property
    def held(self) -> bool:
        """True while some sensor holds the clock."""
        return bool(self._holders)

    def now_s(self) -> float:
        """Virtual seconds since :meth:`start` (0 before)."""
        if self.speed is None:
            return self._mark_s
        if self._t0_wall is None:
            return 0.0
        wall = self._held_since if self._held_since is not None else time.monotonic()
        t = (wall - self._t0_wall - self._held_total_s) * self.speed
        if self._marks:
            # never run ahead of the slowest streaming sensor: on a machine too slow for
            # ``speed`` the simulation slows down instead of letting sensors lag each other
            t = min(t, min(self._marks.values()) + self.max_lead_s)
        if self._consumed_s is not None and self._held_since is None:
            # what the host has handled: its report, but no later than the oldest notification
            # still inside the BLE stack (a host whose queue is empty may still be far behind)
            done = self._consumed_s
            for sent in self._in_flight.values():
                if sent and sent[0] < done:
                    done = sent[0]
            if done < self._consumed_s and wall - self._last_delivery_wall > self.max_hold_wall_s:
                # nothing arrived for that long: what is counted in flight was lost on the way
                # (a notification the host swallowed); time must not wait for it forever
                log.warning(
                    "no notification delivered for %.1f wall s; in-flight count reset",
                    self.max_hold_wall_s,
                )
                self._in_flight.clear()
                self.in_flight_resets += 1
                done = self._consumed_s
            cap = max(done + self.max_backlog_s, self._last_now_s)
            if t > cap:
                # the host is behind: the excess wall time is held time, so virtual time
                # resumes from here (no burst of overdue packets when the host catches up)
                over_wall_s = (t - cap) / self.speed
                self._held_total_s += over_wall_s
                self.backpressure_wall_s += over_wall_s
                t = cap
        self._last_now_s = max(self._last_now_s, t)
        return self._last_now_s

    def hold(self, key: object) -> None:
        """Stop virtual time until every holder has called :meth:`release`."""
        if not self._holders:
            self._held_since = time.monotonic()
        self._holders.add(key)
        self.holds += 1

    def release(self, key: object) -> None:
        """Release a hold (no-op if ``key`` does not hold the clock)."""
        if key not in self._holders:
            return
        self._holders.discard(key)
        if not self._holders and self._held_since is not None:
            self._held_total_s += time.monotonic() - self._held_since
            self._held_since = None

    async def sleep_until(self, t_s: float) -> None:
        """Wait until virtual time reaches ``t_s`` (returns at once with ``speed=None``)."""
        if self.speed is None:
            return
        while True:
            delay = (t_s - self.now_s()) / self.speed
            if delay <= 0:
                return
            # while held, time stands still: poll until it moves again
            await asyncio.sleep(_POLL_WALL_S if self._holders else delay)

    async def hold_until(self, key: object, done: object, closing: object) -> bool:
        """Hold the clock while ``done()`` is false; ``False`` if the hold timed out.

        ``done`` and ``closing`` are zero-argument callables polled every few milliseconds.
        """
        self.hold(key)
        t_end = time.monotonic() + self.max_hold_wall_s
        try:
            while not done() and not closing():  # type: ignore[operator]
                if time.monotonic() > t_end:
                    self.hold_timeouts += 1
                    log.warning("virtual clock held %.1f wall s; released", self.max_hold_wall_s)
                    return False
                await asyncio.sleep(_POLL_WALL_S)
            return True
        finally:
            self.release(key)

    def end_session(self) -> None:
        """The host's session is over: stop virtual time (sensors produce nothing more).

        Pass it as ``run_live(..., on_end=clock.end_session)``: the links are then closed
        without the sensors streaming on (at ``speed`` x the wall time closing takes).
        """
        self.hold(_SESSION_END)

    def mark(self, t_s: float, key: object = None) -> None:
        """Sensor ``key`` produced a packet at virtual ``t_s`` (advances :meth:`host_ns`)."""
        if t_s > self._mark_s:
            self._mark_s = t_s
        if t_s > self._marks.get(key, -1.0):
            self._marks[key] = t_s

    def consumed(self, t_ns: int) -> None:
        """The host has handled everything it received up to virtual ``t_ns`` (back-pressure).

        Pass it as ``run_live(..., on_consumed=clock.consumed)``.
        """
        t_s = t_ns * 1e-9
        if self._consumed_s is None or t_s > self._consumed_s:
            self._consumed_s = t_s

    def forget(self, key: object) -> None:
        """Sensor ``key`` stopped streaming: time no longer waits for it."""
        self._marks.pop(key, None)
        self._in_flight.pop(key, None)

    def sent(self, key: object) -> None:
        """Sensor ``key`` handed a data notification to its BLE stack (at its latest mark).

        With :meth:`delivered` this is the back-pressure of the notifications in flight: the
        host's report (:meth:`consumed`) counts only what reached its queue.
        """
        q = self._in_flight.get(key)
        if q is None:
            q = self._in_flight[key] = deque(maxlen=_IN_FLIGHT_MAX)
        q.append(self._marks.get(key, self._last_now_s))

    def delivered(self, key: object) -> None:
        """The host received sensor ``key``'s oldest notification in flight (links keep order)."""
        self._last_delivery_wall = time.monotonic()
        q = self._in_flight.get(key)
        if q:
            q.popleft()

    def link_lost(self, key: object) -> None:
        """Sensor ``key``'s link dropped: its notifications in flight will never arrive."""
        self._in_flight.pop(key, None)

    def write_sent(self, address: str) -> None:
        """The host sent a GATT write to ``address`` now (:attr:`BumbleHub.on_write`).

        The simulated radio carries it at the host's clock (:meth:`host_ns`) of that moment, so the
        device can tell when it arrived however long the in-process stack takes to deliver it.
        """
        q = self._writes.get(address)
        if q is None:
            q = self._writes[address] = deque(maxlen=_WRITES_MAX)
        q.append(self.host_ns() * 1e-9)

    def take_write(self, address: str) -> float | None:
        """Host-clock send time (s) of the oldest write to ``address`` not taken yet, else None."""
        q = self._writes.get(address)
        return q.popleft() if q else None

    def forget_writes(self, address: str) -> None:
        """A link to ``address`` went up or down: writes still on the air are gone."""
        self._writes.pop(address, None)

    def sensor_ns(self, key: object) -> int:
        """Virtual time (ns) of the latest packet sensor ``key`` produced (0 before any).

        The stamp of a notification from that sensor: on a machine too slow to run the fleet
        at ``speed``, a sensor lags the others, and its packets must not be stamped with their
        (later) times.
        """
        return round(self._marks.get(key, 0.0) * 1e9)

    def host_ns(self) -> int:
        """Host receive clock in simulated mode: the latest marked virtual time, in ns."""
        return round(self._mark_s * 1e9)
