"""Live BLE source (bleak): the only async module of the pipeline.

:class:`BleSession` connects the named sensors **one at a time** (concurrent connects fail on
Linux), reads and checks their info, configures rate and ranges, subscribes and starts them. The
notify callback only stamps ``time.monotonic_ns()`` and enqueues a :class:`~imuhip.types.RawPacket`
on a bounded :class:`asyncio.Queue`; a full queue drops the packet and counts it (a flooding peer
cannot grow memory). Session events (connect, disconnect, reconnect, sensor_info, time_sync,
refused, queue_overflow) go through the same queue, so the consumer sees one ordered stream.

Supervision: a sensor whose link drops is reconnected with backoff by
``bleak_retry_connector.establish_connection`` (inside an outer backoff loop that keeps trying
until the session stops or ``give_up_after_s``), then re-configured in full and re-synced; the
other sensors keep streaming meanwhile.

Sensor families plug in through :class:`SensorDriver` (the imuhip protocol is
:class:`ImuhipDriver`; Movesense can add its own).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bleak import BleakClient, BleakScanner
from bleak.backends.client import BaseBleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.exc import BleakError

from imuhip.errors import ProtocolError, SensorConnectionError
from imuhip.ingest import protocol
from imuhip.types import RawPacket, SensorMeta, SessionEvent

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BleSession",
    "ImuhipDriver",
    "LinkState",
    "ScanResult",
    "SensorDriver",
    "StreamConfig",
    "scan",
    "stream_packets",
]

log = logging.getLogger(__name__)

BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
MOVESENSE_NAME_PREFIX = "Movesense"

Item = RawPacket | SessionEvent
_EVENT_RESERVE = 256


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How a live session talks to its sensors.

    Parameters
    ----------
    rate_hz, acc_range_g, gyr_range_dps : int
        Configuration sent to every sensor (and re-sent after a reconnect).
    queue_maxsize : int
        Bound of the callback -> consumer queue; overflow drops packets and counts them.
    max_notification_bytes : int
        Longer notifications are dropped and counted as oversized (the largest valid packet).
    connect_attempts : int
        Attempts per ``establish_connection`` call (bleak-retry-connector).
    backoff_s : tuple of float
        Outer reconnect backoff sequence (the last value repeats).
    give_up_after_s : float or None
        Stop reconnecting a sensor after this long without a link (``None``: until the end).
    command_timeout_s : float
        Timeout for a control command's response.
    time_sync_interval_s : float
        Period of TIME_SYNC anchors per sensor (wall seconds).
    """

    rate_hz: int = 200
    acc_range_g: int = 16
    gyr_range_dps: int = 2000
    queue_maxsize: int = 4096
    max_notification_bytes: int = protocol.packet_len(protocol.MAX_SAMPLES, True)
    connect_attempts: int = 2
    backoff_s: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
    give_up_after_s: float | None = None
    command_timeout_s: float = 3.0
    time_sync_interval_s: float = 5.0

    def __post_init__(self) -> None:
        protocol.cmd_set_rate(self.rate_hz)  # ValueError naming the allowed values
        protocol.cmd_set_ranges(self.acc_range_g, self.gyr_range_dps)
        if self.queue_maxsize < 16:
            raise ValueError(f"queue_maxsize must be >= 16, got {self.queue_maxsize}")
        if not self.backoff_s or min(self.backoff_s) < 0:
            raise ValueError("backoff_s must be a non-empty sequence of non-negative seconds")


@dataclass
class LinkState:
    """What the session knows about one sensor's link (read by the live view)."""

    sensor: str
    address: str
    state: str = "idle"  # idle, connecting, streaming, lost, reconnecting, failed, stopped
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    att_mtu: int | None = None
    samples_per_packet: int | None = None
    notifications: int = 0
    queue_drops: int = 0
    oversized: int = 0
    disconnects: int = 0
    reconnects: int = 0
    error: str | None = None
    last_rx_ns: int | None = None


class SensorDriver(Protocol):
    """How to talk to one family of sensors (imuhip protocol, Movesense, ...)."""

    protocol_name: str

    def recognises(self, device: BLEDevice, adv: AdvertisementData | None) -> bool:
        """The advertisement belongs to a sensor of this family."""
        ...

    async def read_info(
        self, client: BleakClient, sensor: str
    ) -> tuple[SensorMeta, dict[str, Any]]:
        """Read and check the sensor's identity; ``SensorConnectionError`` if it does not match."""
        ...

    async def configure(self, client: BleakClient, sensor: str, cfg: StreamConfig) -> SensorMeta:
        """Send rate and ranges; return the resulting metadata."""
        ...

    async def start(
        self, client: BleakClient, on_data: Callable[[Any, bytearray], None]
    ) -> dict[str, Any]:
        """Subscribe to data and start streaming; returns facts worth logging."""
        ...

    async def stop(self, client: BleakClient) -> None:
        """Stop streaming (best effort)."""
        ...

    async def time_sync(self, client: BleakClient) -> dict[str, Any] | None:
        """One time-sync exchange: host send/receive ns and device µs, or ``None``."""
        ...


class _Control:
    """Request/response over the imuhip control characteristic."""

    def __init__(self, timeout_s: float, clock_ns: Callable[[], int] = time.monotonic_ns) -> None:
        self.timeout_s = timeout_s
        self.clock_ns = clock_ns
        self._waiting: dict[int, asyncio.Future[tuple[int, bytes, int]]] = {}

    def on_notify(self, _char: Any, data: bytearray) -> None:
        rx_ns = self.clock_ns()
        try:
            cmd, status, payload = protocol.parse_control_response(bytes(data))
        except ProtocolError:
            log.warning("malformed control response %s", bytes(data).hex())
            return
        fut = self._waiting.pop(cmd, None)
        if fut is not None and not fut.done():
            fut.set_result((status, payload, rx_ns))

    async def request(self, client: BleakClient, command: bytes) -> tuple[int, bytes, int]:
        cmd = command[0]
        fut: asyncio.Future[tuple[int, bytes, int]] = asyncio.get_running_loop().create_future()
        self._waiting[cmd] = fut
        try:
            async with asyncio.timeout(self.timeout_s):
                await client.write_gatt_char(protocol.CONTROL_CHAR_UUID, command, response=True)
                return await fut
        except TimeoutError as err:
            raise SensorConnectionError(
                f"{client.address}: no response to control command 0x{cmd:02x} "
                f"within {self.timeout_s} s"
            ) from err
        finally:
            self._waiting.pop(cmd, None)


_STATUS_TEXT = {
    protocol.STATUS_BAD_COMMAND: "bad command",
    protocol.STATUS_BAD_VALUE: "bad value",
    protocol.STATUS_BUSY: "busy",
    protocol.STATUS_MTU_TOO_SMALL: "ATT MTU too small for one sample",
}


class ImuhipDriver:
    """The project's own protocol (:mod:`imuhip.ingest.protocol`)."""

    protocol_name = "imuhip"

    def __init__(
        self, command_timeout_s: float = 3.0, clock_ns: Callable[[], int] = time.monotonic_ns
    ) -> None:
        self._controls: dict[int, _Control] = {}
        self._timeout = command_timeout_s
        self.clock_ns = clock_ns  # host clock of time-sync anchors
        self._tokens = itertools.count(1)

    def recognises(self, device: BLEDevice, adv: AdvertisementData | None) -> bool:  # noqa: ARG002 - driver interface
        """The advertisement lists the imuhip service UUID."""
        return adv is not None and protocol.SERVICE_UUID in [u.lower() for u in adv.service_uuids]

    def _control(self, client: BleakClient) -> _Control:
        return self._controls.setdefault(id(client), _Control(self._timeout, self.clock_ns))

    async def read_info(
        self, client: BleakClient, sensor: str
    ) -> tuple[SensorMeta, dict[str, Any]]:
        """Read the info characteristic (and battery); refuse a non-protocol device."""
        svc = client.services.get_service(protocol.SERVICE_UUID)
        if svc is None:
            raise SensorConnectionError(
                f"{sensor} ({client.address}) has no imuhip service: not a protocol sensor"
            )
        try:
            info = protocol.DeviceInfo.decode(
                bytes(await client.read_gatt_char(protocol.INFO_CHAR_UUID))
            )
        except ProtocolError as err:
            raise SensorConnectionError(
                f"{sensor} ({client.address}) refused: its info does not match the imuhip "
                f"protocol ({err})"
            ) from err
        facts: dict[str, Any] = {
            "model": info.model,
            "serial": info.serial,
            "firmware": info.firmware,
            "protocol_version": info.protocol_version,
            "has_mag": info.has_mag,
            "rate_hz": info.rate_hz,
            "acc_range_g": info.acc_range_g,
            "gyr_range_dps": info.gyr_range_dps,
            "samples_per_packet": info.samples_per_packet,
            "att_mtu": client.mtu_size,
        }
        if client.services.get_characteristic(BATTERY_LEVEL_UUID) is not None:
            with contextlib.suppress(BleakError):
                facts["battery_pct"] = int((await client.read_gatt_char(BATTERY_LEVEL_UUID))[0])
        return _meta_from_info(sensor, client.address, info), facts

    async def configure(self, client: BleakClient, sensor: str, cfg: StreamConfig) -> SensorMeta:
        """Subscribe to control responses, set rate and ranges, re-read the info."""
        ctl = self._control(client)
        await client.start_notify(protocol.CONTROL_CHAR_UUID, ctl.on_notify)
        for cmd in (
            protocol.cmd_set_rate(cfg.rate_hz),
            protocol.cmd_set_ranges(cfg.acc_range_g, cfg.gyr_range_dps),
        ):
            status, _payload, _ns = await ctl.request(client, cmd)
            if status != protocol.STATUS_OK:
                raise SensorConnectionError(
                    f"{sensor} ({client.address}) rejected command 0x{cmd[0]:02x}: "
                    f"{_STATUS_TEXT.get(status, hex(status))}"
                )
        meta, _ = await self.read_info(client, sensor)
        return meta

    async def start(
        self, client: BleakClient, on_data: Callable[[Any, bytearray], None]
    ) -> dict[str, Any]:
        """Subscribe to the data characteristic and send START."""
        await client.start_notify(protocol.DATA_CHAR_UUID, on_data)
        status, _payload, _ns = await self._control(client).request(client, protocol.cmd_start())
        if status != protocol.STATUS_OK:
            raise SensorConnectionError(
                f"{client.address} refuses to stream: {_STATUS_TEXT.get(status, hex(status))}"
                + (
                    f" (negotiated ATT MTU {client.mtu_size}; the sensor needs at least "
                    f"{protocol.OVERHEAD + protocol.ATT_HEADER_LEN + 12})"
                    if status == protocol.STATUS_MTU_TOO_SMALL
                    else ""
                )
            )
        return {"att_mtu": client.mtu_size}

    async def stop(self, client: BleakClient) -> None:
        """Send STOP (best effort)."""
        with contextlib.suppress(BleakError, SensorConnectionError, TimeoutError):
            await self._control(client).request(client, protocol.cmd_stop())

    async def time_sync(self, client: BleakClient) -> dict[str, Any] | None:
        """TIME_SYNC: host send time, device time, host receive time (for an NTP-like anchor)."""
        token = next(self._tokens) & 0xFF
        t_send = self.clock_ns()
        status, payload, t_recv = await self._control(client).request(
            client, protocol.cmd_time_sync(token)
        )
        if status != protocol.STATUS_OK or len(payload) != 5 or payload[0] != token:
            return None
        t_dev_us = int.from_bytes(payload[1:5], "little")
        return {"token": token, "t_send_ns": t_send, "t_recv_ns": t_recv, "t_dev_us": t_dev_us}

    def forget(self, client: BleakClient) -> None:
        """Drop per-client state."""
        self._controls.pop(id(client), None)


def _meta_from_info(sensor: str, address: str, info: protocol.DeviceInfo) -> SensorMeta:
    return SensorMeta(
        placement=sensor,
        rate_hz=float(info.rate_hz),
        acc_lsb_m_s2=float(info.acc_lsb_m_s2),
        gyr_lsb_rad_s=float(info.gyr_lsb_rad_s),
        mag_lsb_ut=float(info.mag_lsb_ut),
        has_mag=bool(info.has_mag),
        address=address,
        model=info.model,
        serial=info.serial,
        firmware=info.firmware,
        protocol="imuhip",
        protocol_version=info.protocol_version,
        acc_range_g=float(info.acc_range_g),
        gyr_range_dps=float(info.gyr_range_dps),
    )


# ---------------------------------------------------------------------------------------------
# scanning
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ScanResult:
    """One nearby sensor."""

    address: str
    name: str | None
    rssi_dbm: int
    protocol: str  # "imuhip" or "movesense"
    battery_pct: int | None
    device: BLEDevice = field(compare=False, repr=False)


async def scan(
    timeout_s: float = 3.0,
    *,
    scanner_backend: type[BaseBleakScanner] | None = None,
    **scanner_kwargs: Any,
) -> list[ScanResult]:
    """Nearby imuhip-protocol and Movesense sensors, strongest first."""
    kwargs: dict[str, Any] = dict(scanner_kwargs)
    if scanner_backend is not None:
        kwargs["backend"] = scanner_backend
    try:
        found = await BleakScanner.discover(timeout_s, return_adv=True, **kwargs)
    except FileNotFoundError as err:  # bleak on a machine without BlueZ
        raise SensorConnectionError(
            "no Bluetooth adapter is available here (no BlueZ); try --simulate"
        ) from err
    except BleakError as err:
        raise SensorConnectionError(f"Bluetooth scan failed: {err}") from err
    out = []
    driver = ImuhipDriver()
    for device, adv in found.values():
        name = adv.local_name or device.name
        if driver.recognises(device, adv):
            proto = "imuhip"
        elif name and name.startswith(MOVESENSE_NAME_PREFIX):
            proto = "movesense"
        else:
            continue
        batt = adv.service_data.get(BATTERY_SERVICE_UUID)
        out.append(
            ScanResult(
                address=device.address,
                name=name,
                rssi_dbm=int(adv.rssi),
                protocol=proto,
                battery_pct=int(batt[0]) if batt else None,
                device=device,
            )
        )
    out.sort(key=lambda r: -r.rssi_dbm)
    return out


# ---------------------------------------------------------------------------------------------
# the session
# ---------------------------------------------------------------------------------------------
def _ns() -> int:
    return time.monotonic_ns()


class BleSession:
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
                link.queue_drops += 1
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
        """START every configured sensor; one that refuses is marked failed."""
        for sensor in list(self._clients):
            try:
                await self._start(sensor)
            except (SensorConnectionError, BleakError) as err:
                self.failed[sensor] = str(err)
                link = self.links[sensor]
                link.state, link.error = "failed", str(err)
                self._event("refused", sensor, error=str(err))
                log.error("%s", err)
                client = self._clients.pop(sensor)
                with contextlib.suppress(Exception):
                    await client.disconnect()

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
        while not stop.is_set():
            await _sleep_or_stop(min(1.0, self.cfg.time_sync_interval_s), stop)
            for sensor, link in self.links.items():
                if link.queue_drops > self._overflow_reported[sensor]:
                    n = link.queue_drops - self._overflow_reported[sensor]
                    self._overflow_reported[sensor] = link.queue_drops
                    log.error("%s: %d notification(s) dropped: consumer queue full", sensor, n)
                    self._event("queue_overflow", sensor, dropped=n, total=link.queue_drops)
            now = time.monotonic()
            if now - getattr(self, "_last_sync", 0.0) >= self.cfg.time_sync_interval_s:
                self._last_sync = now
                for sensor in list(self._clients):
                    with contextlib.suppress(SensorConnectionError, BleakError, TimeoutError):
                        await self._sync(sensor)

    async def supervise(self, stop: asyncio.Event) -> None:
        """Reconnect dropped sensors and emit periodic time-sync anchors until ``stop``."""
        self._last_sync = time.monotonic()
        async with asyncio.TaskGroup() as tg:
            for sensor in self.targets:
                if sensor in self.meta:
                    tg.create_task(self._watch(sensor, stop))
            tg.create_task(self._periodic(stop))

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
