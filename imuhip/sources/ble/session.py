"""The live BLE session: connect, configure, stream and close a set of sensors.

:class:`BleSession` connects the named sensors **one at a time** (concurrent connects fail on
Linux), reads and checks their info, configures rate and ranges, subscribes and starts them. The
notify callback only stamps ``time.monotonic_ns()`` and enqueues a :class:`~imuhip.types.RawPacket`
on a bounded :class:`asyncio.Queue`; a full queue drops the packet and counts it (a flooding peer
cannot grow memory). Session events (connect, disconnect, reconnect, sensor_info, time_sync,
refused, queue_overflow) go through the same queue, so the consumer sees one ordered stream.
Reconnects and periodic duties are in :mod:`imuhip.sources.ble.supervision`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError

from imuhip.errors import SensorConnectionError
from imuhip.ingest import protocol
from imuhip.sources.ble.config import _EVENT_RESERVE, Item, LinkState, StreamConfig
from imuhip.sources.ble.driver import ImuhipDriver
from imuhip.sources.ble.supervision import _Supervision
from imuhip.types import RawPacket, SensorMeta, SessionEvent

__all__ = ["BleSession", "stream_packets"]

log = logging.getLogger(__name__)


class BleSession(_Supervision):
    """Connect, configure, stream and supervise a set of sensors.

    Parameters
    ----------
    targets : mapping placement -> address or BLEDevice
        Only these devices are ever connected.
    cfg : StreamConfig
    client_backend, scanner_backend : bleak backend classes or None
        ``None`` uses the platform's (real hardware); the simulator passes the bumble backend.
    driver : SensorDriver
    clock_ns : callable or None
        Host receive clock in ns for packets, events and time-sync anchors (default
        ``time.monotonic_ns``; the simulator passes
        :meth:`imuhip.sources.virtual.VirtualClock.host_ns`
        so that stamps are in virtual time).
    packet_clock_ns : callable or None
        ``packet_clock_ns(placement, data)``: receive stamp (ns) of data notification ``data``
        of that sensor (default: ``clock_ns()``; the simulator passes
        :meth:`imuhip.sources.virtual.VirtualFleet.packet_ns`).
    use_retry_connector : bool
        Connect through ``bleak_retry_connector.establish_connection`` (default).

    Notes
    -----
    Usage: ``await connect_all()`` -> metadata of the sensors that are usable; create the
    recorder; ``await start_all()``; run :meth:`supervise` as a task; consume :attr:`queue`;
    ``await close()``.
    """

    def __init__(
        self,
        targets: Mapping[str, str | BLEDevice],
        cfg: StreamConfig | None = None,
        *,
        client_backend: type[BaseBleakClient] | None = None,
        scanner_backend: type[BaseBleakScanner] | None = None,
        driver: ImuhipDriver | None = None,
        use_retry_connector: bool = True,
        clock_ns: Callable[[], int] | None = None,
        packet_clock_ns: Callable[[str, bytes], int] | None = None,
    ) -> None:
        if not targets:
            raise ValueError("targets must name at least one sensor")
        self.cfg = cfg or StreamConfig()
        self.targets = dict(targets)
        self.client_backend = client_backend
        self.scanner_backend = scanner_backend
        # host receive clock (ns): time.monotonic_ns, or a simulator's virtual clock
        self.clock_ns: Callable[[], int] = clock_ns or time.monotonic_ns
        self.packet_clock_ns = packet_clock_ns
        self.driver = driver or ImuhipDriver(self.cfg.command_timeout_s, self.clock_ns)
        self.use_retry_connector = use_retry_connector
        # packets may fill queue_maxsize; events have a reserve on top so none is ever lost
        self.queue: asyncio.Queue[Item] = asyncio.Queue(
            maxsize=self.cfg.queue_maxsize + _EVENT_RESERVE
        )
        self.links = {
            s: LinkState(s, t if isinstance(t, str) else t.address) for s, t in self.targets.items()
        }
        self.meta: dict[str, SensorMeta] = {}
        self.failed: dict[str, str] = {}
        self._clients: dict[str, BleakClient] = {}
        self._devices: dict[str, BLEDevice] = {
            s: t for s, t in self.targets.items() if isinstance(t, BLEDevice)
        }
        self._lost: dict[str, asyncio.Event] = {s: asyncio.Event() for s in self.targets}
        self._connect_lock = asyncio.Lock()  # one connect at a time (Linux)
        self._closing = False
        self._overflow_reported: dict[str, int] = dict.fromkeys(self.targets, 0)
        self._sync_at: dict[str, int] = {}
        self._sync_burst: dict[str, int] = {}
        self._sync_flying: dict[str, int] = {}
        self._events_overflowed = 0

    # -- events --------------------------------------------------------------------------------
    def _event(self, kind: str, sensor: str | None, **data: Any) -> None:
        ev = SessionEvent(self.clock_ns(), kind, sensor, data)
        try:
            self.queue.put_nowait(ev)
        except asyncio.QueueFull:
            self._events_overflowed += 1
            log.error("event queue full; %s event of %s not recorded", kind, sensor)

    def _data_callback(self, sensor: str) -> Callable[[Any, bytearray], None]:
        link = self.links[sensor]
        q = self.queue
        put = q.put_nowait
        limit = self.cfg.max_notification_bytes
        room = self.cfg.queue_maxsize
        clock_ns = self.clock_ns
        per_sensor = self.packet_clock_ns

        def on_data(_char: Any, data: bytearray) -> None:
            ns = clock_ns() if per_sensor is None else per_sensor(sensor, bytes(data))
            if len(data) > limit:
                link.oversized += 1
                return
            link.notifications += 1
            link.last_rx_ns = ns
            if q.qsize() >= room:
                link.queue_drops += 1  # marked in the recording: take_drops / queue_overflow
                if link.drop_first_ns is None:
                    link.drop_first_ns = ns
                link.drop_last_ns = ns
                return
            put(RawPacket(sensor, ns, bytes(data)))

        return on_data

    # -- connecting ----------------------------------------------------------------------------
    async def _resolve(self, sensor: str, timeout_s: float) -> BLEDevice:
        dev = self._devices.get(sensor)
        if dev is not None:
            return dev
        kwargs: dict[str, Any] = {}
        if self.scanner_backend is not None:
            kwargs["backend"] = self.scanner_backend
        address = self.links[sensor].address
        try:
            dev = await BleakScanner.find_device_by_address(address, timeout_s, **kwargs)
        except FileNotFoundError as err:
            raise SensorConnectionError(
                "no Bluetooth adapter is available here (no BlueZ); try --simulate"
            ) from err
        if dev is None:
            raise SensorConnectionError(
                f"{sensor}: no device with address {address} is advertising"
            )
        self._devices[sensor] = dev
        return dev

    def _on_disconnect(self, sensor: str) -> Callable[[BleakClient], None]:
        def cb(_client: BleakClient) -> None:
            link = self.links[sensor]
            if self._closing or link.state != "streaming":
                # a drop while (re)connecting fails that attempt (its GATT operations raise)
                # and the watcher retries: it is not a new loss of a streaming link
                return
            link.state = "lost"
            link.disconnects += 1
            self._event("disconnect", sensor, reason="link lost", n=link.disconnects)
            self._lost[sensor].set()

        return cb

    async def _open(self, sensor: str) -> BleakClient:
        """Connect (retrying) to one sensor; the caller holds the connect lock."""
        dev = await self._resolve(sensor, 5.0)
        kwargs: dict[str, Any] = {}
        if self.client_backend is not None:
            kwargs["backend"] = self.client_backend
        cb = self._on_disconnect(sensor)
        try:
            if self.use_retry_connector:
                from bleak_retry_connector import establish_connection

                return await establish_connection(
                    BleakClient,
                    dev,
                    sensor,
                    disconnected_callback=cb,
                    max_attempts=self.cfg.connect_attempts,
                    use_services_cache=False,
                    **kwargs,
                )
            client = BleakClient(dev, disconnected_callback=cb, timeout=10.0, **kwargs)
            await client.connect()
            return client
        except FileNotFoundError as err:
            raise SensorConnectionError(
                "no Bluetooth adapter is available here (no BlueZ); try --simulate"
            ) from err
        except (BleakError, TimeoutError) as err:
            raise SensorConnectionError(f"{sensor} ({dev.address}): {err}") from err

    async def _bring_up(self, sensor: str, *, first: bool) -> None:
        """Connect, read info, configure, time-sync (and start unless this is the first time)."""
        link = self.links[sensor]
        link.state = "connecting" if first else "reconnecting"
        async with self._connect_lock:
            client = await self._open(sensor)
        try:
            meta, facts = await self.driver.read_info(client, sensor)
            meta = await self.driver.configure(client, sensor, self.cfg)
            prev = self.meta.get(sensor)
            if prev is not None and (prev.rate_hz, prev.has_mag, prev.acc_lsb_m_s2) != (
                meta.rate_hz,
                meta.has_mag,
                meta.acc_lsb_m_s2,
            ):
                raise SensorConnectionError(
                    f"{sensor} came back with a different configuration ({meta}) than before"
                )
            self.meta.setdefault(sensor, meta)
            link.battery_pct = facts.get("battery_pct")
            link.att_mtu = client.mtu_size
            self._clients[sensor] = client
            self._event("connect" if first else "reconnect", sensor, address=client.address)
            self._event("sensor_info", sensor, **facts)
            await self._sync(sensor)
            self.arm_sync_burst(sensor)  # the new link's anchors, once it streams
            if not first:
                await self._start(sensor)
        except BaseException:
            self._clients.pop(sensor, None)
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise

    async def _start(self, sensor: str) -> None:
        client = self._clients[sensor]
        facts = await self.driver.start(client, self._data_callback(sensor))
        link = self.links[sensor]
        meta = self.meta[sensor]
        link.samples_per_packet = protocol.samples_per_packet(
            client.mtu_size, meta.rate_hz, meta.has_mag
        )
        link.state = "streaming"
        link.error = None
        self._event("start", sensor, **facts)

    async def _sync(self, sensor: str) -> None:
        client = self._clients.get(sensor)
        if client is None or not client.is_connected:
            return
        anchor = await self.driver.time_sync(client)
        if anchor is not None:
            self._event("time_sync", sensor, **anchor)

    async def connect_all(self) -> dict[str, SensorMeta]:
        """Connect and configure every target, one at a time; failures go to :attr:`failed`."""
        for sensor in self.targets:
            try:
                await self._bring_up(sensor, first=True)
            except SensorConnectionError as err:
                self.failed[sensor] = str(err)
                self.links[sensor].state = "failed"
                self.links[sensor].error = str(err)
                self._event("refused", None, sensor_name=sensor, error=str(err))
                log.error("%s", err)
        return dict(self.meta)

    async def start_all(self) -> None:
        """START every configured sensor, all at once; one that refuses is marked failed.

        The STARTs go out together (each link has its own GATT queue), so the sensors' data
        begin within one request's round trip of each other. One after the other, the last
        sensor began three round trips after the first: 2.3 s of the session on a loaded
        machine running the virtual sensors at 12x, which the recording then reports as that
        sensor's data starting late.
        """
        sensors = list(self._clients)
        outcomes = await asyncio.gather(
            *(self._start(sensor) for sensor in sensors), return_exceptions=True
        )
        for sensor, err in zip(sensors, outcomes, strict=True):
            if err is None:
                continue
            if not isinstance(err, SensorConnectionError | BleakError):
                raise err
            self.failed[sensor] = str(err)
            link = self.links[sensor]
            link.state, link.error = "failed", str(err)
            self._event("refused", sensor, error=str(err))
            log.error("%s", err)
            client = self._clients.pop(sensor)
            with contextlib.suppress(Exception):
                await client.disconnect()

    async def close(self) -> None:
        """STOP and disconnect every sensor (requested disconnects: no callbacks)."""
        self._closing = True
        for sensor, client in list(self._clients.items()):
            if client.is_connected:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(2.0):
                        await self.driver.stop(client)
                with contextlib.suppress(Exception):
                    await client.disconnect()
            self.links[sensor].state = "stopped"
            self._event("disconnect", sensor, reason="session end")
        self._clients.clear()


async def stream_packets(
    devices: Mapping[str, str | BLEDevice],
    stop: asyncio.Event,
    cfg: StreamConfig | None = None,
    **session_kwargs: Any,
) -> AsyncIterator[Item]:
    """Connect ``devices`` and yield every packet and event until ``stop`` is set.

    The first items are the ``connect``/``sensor_info``/``time_sync`` events of each sensor.
    """
    session = BleSession(devices, cfg, **session_kwargs)
    await session.connect_all()
    if not session.meta:
        raise SensorConnectionError(
            "no sensor could be connected: " + "; ".join(session.failed.values())
        )
    await session.start_all()
    sup = asyncio.ensure_future(session.supervise(stop))
    try:
        while not (stop.is_set() and session.queue.empty()):
            try:
                async with asyncio.timeout(0.1):
                    item = await session.queue.get()
            except TimeoutError:
                continue
            yield item
    finally:
        stop.set()
        await sup
        await session.close()
        while not session.queue.empty():
            yield session.queue.get_nowait()
