"""Live Movesense driver for :class:`imuhip.sources.ble.BleSession` (bleak, async).

:class:`MovesenseDriver` implements the session's ``SensorDriver`` protocol over the GATT
SensorData Protocol (:mod:`imuhip.sources.movesense.gsp`): it recognises a Movesense by its
advertised
name or service, says HELLO, subscribes ``/Meas/IMU9/{rate}`` and hands every *data*
notification (DATA, DATA_PART2 and anything unrecognised) verbatim to the session's callback,
which stamps and records it; COMMAND_RESULT notifications are answers to the driver's own commands
and stay inside the driver. The device timestamps in every message anchor the clock fit (the
default firmware's PUT_UTCTIME sets a wall clock the IMU9 timestamps do not use).

At connect the driver reads the firmware (HELLO answer, Device Information) and refuses what the
firmware or the link cannot carry, with a message saying why (see ``docs/movesense.md``).

:class:`AutoDriver` lets one session mix imuhip-protocol sensors and Movesense sensors: each call is
routed by the services the connected device serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from imuhip.errors import ProtocolError, SensorConnectionError
from imuhip.sources.movesense import gsp
from imuhip.sources.movesense.decode import movesense_meta
from imuhip.sources.movesense.firmware import (
    MIN_FIRMWARE,
    MIN_FIRMWARE_PART2,
    PART1_VALUE_BYTES,
    parse_hello,
    parse_version,
    samples_per_message,
)
from imuhip.types import SensorMeta

__all__ = ["AutoDriver", "MovesenseDriver"]

log = logging.getLogger(__name__)

BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
SERIAL_NUMBER_UUID = "00002a25-0000-1000-8000-00805f9b34fb"
FIRMWARE_UUID = "00002a26-0000-1000-8000-00805f9b34fb"

DataCallback = Callable[[Any, bytearray], None]

DEFAULT_MAX_RATE_HZ = 104
"""Highest rate chosen from the session rate: 104 Hz until a source gives the 208 Hz layout."""


def _version_text(v: tuple[int, int, int]) -> str:
    return ".".join(map(str, v))


@dataclass
class _Link:
    """Per-client state: the notify dispatcher, pending command answers, the data target."""

    subscribed: bool = False
    on_data: DataCallback | None = None
    waiting: dict[int, asyncio.Future[tuple[int | None, bytes]]] = field(default_factory=dict)
    first_data: asyncio.Future[None] | None = None
    rate_hz: int = 104
    meta: SensorMeta | None = None
    firmware_kind: str = ""  # "sample" / "default" (from the HELLO answer)
    firmware_version: tuple[int, int, int] | None = None

    def on_notify(self, char: Any, data: bytearray) -> None:
        if gsp.is_command_result(data):
            try:
                ref, status, payload = gsp.parse_command_result(bytes(data))
            except ProtocolError:  # pragma: no cover - the check above makes it one
                return
            fut = self.waiting.pop(ref, None)
            if fut is not None and not fut.done():
                fut.set_result((status, payload))
            return
        if self.first_data is not None and not self.first_data.done():
            self.first_data.set_result(None)
        if self.on_data is not None:
            self.on_data(char, data)


class MovesenseDriver:
    """Movesense over GSP, streaming ``/Meas/IMU9/{rate_hz}``.

    Parameters
    ----------
    rate_hz : int or None
        IMU9 rate (13 ... 1666 Hz). ``None``: the Movesense rate nearest to the session's
        ``StreamConfig.rate_hz``, at most 104 Hz (200 -> 104, 100 -> 104, 50 -> 52): no public
        source gives the message layout above 104 Hz, so a higher rate must be asked for.
    path : str or None
        The subscription path as sent (``"/meas/imu9/104"`` is accepted as the sensor accepts
        it); overrides ``rate_hz``.
    command_timeout_s : float
        How long to wait for a command's answer (and, after SUBSCRIBE, for the first data).
    ref : int
        GSP client reference of the IMU9 subscription (1..255; HELLO uses ``ref + 1``).
    """

    protocol_name = "movesense"

    def __init__(
        self,
        rate_hz: int | None = None,
        *,
        path: str | None = None,
        command_timeout_s: float = 3.0,
        ref: int = 99,
    ) -> None:
        if path is not None:
            rate_hz = gsp.parse_imu9_path(path)
            if rate_hz is None:
                raise ValueError(
                    f"path must be an IMU9 path such as '/Meas/IMU9/104' with a rate in "
                    f"{gsp.IMU9_RATES_HZ}, got {path!r}"
                )
            path = path.rstrip("\0")
        if rate_hz is not None:
            gsp.imu9_path(rate_hz)  # ValueError naming the allowed rates
        gsp.cmd_hello(ref)
        gsp.cmd_hello(ref % 255 + 1)
        self.rate_hz = rate_hz
        self.path = path
        self.command_timeout_s = float(command_timeout_s)
        self.ref = ref
        self._links: dict[int, _Link] = {}

    # -- helpers -------------------------------------------------------------------------------
    def _link(self, client: BleakClient) -> _Link:
        return self._links.setdefault(id(client), _Link())

    async def _ensure_notify(self, client: BleakClient) -> _Link:
        link = self._link(client)
        if not link.subscribed:
            await client.start_notify(gsp.DATA_CHAR_UUID, link.on_notify)
            link.subscribed = True
        return link

    async def _request(
        self, client: BleakClient, command: bytes, *, wait_data: bool = False
    ) -> tuple[int | None, bytes] | None:
        """Write a command; its COMMAND_RESULT, or ``None`` if data came first (``wait_data``)."""
        link = await self._ensure_notify(client)
        ref = command[1]
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[tuple[int | None, bytes]] = loop.create_future()
        link.waiting[ref] = fut
        waits: set[asyncio.Future[Any]] = {fut}
        if wait_data:
            link.first_data = loop.create_future()
            waits.add(link.first_data)
        try:
            async with asyncio.timeout(self.command_timeout_s):
                await client.write_gatt_char(gsp.COMMAND_CHAR_UUID, command, response=True)
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError as err:
            raise SensorConnectionError(
                f"{client.address}: no answer to GSP command {command[0]} within "
                f"{self.command_timeout_s} s"
            ) from err
        finally:
            link.waiting.pop(ref, None)
        return fut.result() if fut.done() else None

    # -- SensorDriver --------------------------------------------------------------------------
    def recognises(self, device: BLEDevice, adv: AdvertisementData | None) -> bool:
        """Advertised name ``Movesense ...`` or the GSP service UUID."""
        name = (adv.local_name if adv is not None else None) or device.name or ""
        uuids = [u.lower() for u in adv.service_uuids] if adv is not None else []
        return name.startswith(gsp.NAME_PREFIX) or gsp.SERVICE_UUID in uuids

    async def read_info(
        self, client: BleakClient, sensor: str
    ) -> tuple[SensorMeta, dict[str, Any]]:
        """Check the GSP service, say HELLO, read serial/firmware/battery when served."""
        if client.services.get_service(gsp.SERVICE_UUID) is None:
            raise SensorConnectionError(
                f"{sensor} ({client.address}) has no GATT SensorData service: not a Movesense "
                "running the gatt_sensordata firmware"
            )
        t0 = time.monotonic_ns()
        answer = await self._request(client, gsp.cmd_hello(self.ref % 255 + 1))
        hello = b"" if answer is None else answer[1]
        try:
            info = parse_hello(hello)
        except ProtocolError as err:
            raise SensorConnectionError(
                f"{sensor} ({client.address}): {err}; not a Movesense GSP server"
            ) from err
        name = getattr(client, "name", "") or ""
        serial = name[len(gsp.NAME_PREFIX) :].strip() if name.startswith(gsp.NAME_PREFIX) else ""
        facts: dict[str, Any] = {
            "model": "Movesense",
            "protocol": "movesense",
            "hello": hello.hex(),
            "hello_rtt_ms": (time.monotonic_ns() - t0) * 1e-6,
            "att_mtu": client.mtu_size,
        }
        for key, uuid in (("serial", SERIAL_NUMBER_UUID), ("firmware", FIRMWARE_UUID)):
            if client.services.get_characteristic(uuid) is not None:
                with contextlib.suppress(BleakError):
                    facts[key] = bytes(await client.read_gatt_char(uuid)).decode(errors="replace")
        if info.kind == "default":
            facts["firmware"] = info.app_version
            if info.serial:
                facts["serial"] = info.serial
        facts.setdefault("serial", serial)
        facts["firmware_kind"] = info.kind
        version = parse_version(str(facts.get("firmware", "")))
        if version is not None and version < MIN_FIRMWARE:
            raise SensorConnectionError(
                f"{sensor} ({client.address}): Movesense firmware {facts['firmware']} is older "
                f"than {_version_text(MIN_FIRMWARE)}, the oldest imuhip supports; update the "
                "sensor's firmware"
            )
        if client.services.get_characteristic(BATTERY_LEVEL_UUID) is not None:
            with contextlib.suppress(BleakError):
                facts["battery_pct"] = int((await client.read_gatt_char(BATTERY_LEVEL_UUID))[0])
        link = self._link(client)
        link.firmware_kind, link.firmware_version = info.kind, version
        meta = movesense_meta(
            sensor,
            link.rate_hz if self.rate_hz is None else self.rate_hz,
            address=client.address,
            serial=str(facts["serial"]),
            firmware=str(facts.get("firmware", "")),
        )
        link.meta = meta
        facts["rate_hz"] = meta.rate_hz
        return meta, facts

    async def configure(self, client: BleakClient, sensor: str, cfg: Any) -> SensorMeta:
        """Choose the IMU9 rate (nothing is sent: the rate is part of the SUBSCRIBE path)."""
        link = self._link(client)
        want = getattr(cfg, "rate_hz", 104)
        if self.rate_hz is not None:
            link.rate_hz = self.rate_hz
        else:
            link.rate_hz = min(gsp.nearest_imu9_rate(want), DEFAULT_MAX_RATE_HZ)
        old = link.meta
        link.meta = movesense_meta(
            sensor,
            link.rate_hz,
            address=client.address,
            serial=old.serial if old else "",
            firmware=old.firmware if old else "",
        )
        return link.meta

    def _check_link(self, client: BleakClient, link: _Link) -> None:
        """Refuse a stream the link or the firmware cannot carry, before subscribing."""
        rate = link.rate_hz
        value_bytes = gsp.TIMESTAMP_BYTES + gsp.IMU9_SAMPLE_BYTES * samples_per_message(rate)
        need = gsp.HEADER_BYTES + min(value_bytes, PART1_VALUE_BYTES)
        mtu = client.mtu_size
        if mtu - 3 < need:
            raise SensorConnectionError(
                f"{client.address}: ATT MTU {mtu} is too small for Movesense IMU9 at {rate} Hz: "
                f"the sensor sends {need}-byte notifications (ATT MTU >= {need + 3} needed) and "
                "the BLE stack would cut them; use a host whose stack negotiates a larger MTU"
            )
        v = link.firmware_version
        if value_bytes > PART1_VALUE_BYTES and v is not None and v < MIN_FIRMWARE_PART2:
            raise SensorConnectionError(
                f"{client.address}: Movesense firmware {_version_text(v)} sends an IMU9 message "
                f"at {rate} Hz ({value_bytes} bytes) in one notification the BLE stack cuts; "
                f"DATA_PART2 needs firmware >= {_version_text(MIN_FIRMWARE_PART2)}: update the "
                "sensor or stream at 52 Hz"
            )

    async def start(self, client: BleakClient, on_data: DataCallback) -> dict[str, Any]:
        """Route data notifications to ``on_data`` and SUBSCRIBE ``/Meas/IMU9/{rate}``.

        The sample firmware never answers SUBSCRIBE: the first data notification confirms it.
        """
        link = await self._ensure_notify(client)
        self._check_link(client, link)
        link.on_data = on_data
        path = self.path or gsp.imu9_path(link.rate_hz)
        answer = await self._request(client, gsp.cmd_subscribe(self.ref, path), wait_data=True)
        status = None if answer is None else answer[0]
        if status is not None and status >= 300:
            link.on_data = None
            raise SensorConnectionError(
                f"{client.address} refused SUBSCRIBE {path} (status {status}"
                + {
                    507: ": every subscription slot of the sensor is in use; disconnect other "
                    "clients or restart the sensor",
                    404: ": the sensor does not offer this resource",
                }.get(status, "")
                + ")"
            )
        return {
            "path": path,
            "status": status,
            "confirmed_by": "data" if answer is None else "command_result",
            "att_mtu": client.mtu_size,
            "firmware_kind": link.firmware_kind,
        }

    async def stop(self, client: BleakClient) -> None:
        """UNSUBSCRIBE (best effort; GSP sends no answer to it)."""
        link = self._links.get(id(client))
        if link is not None:
            link.on_data = None
        with contextlib.suppress(BleakError, TimeoutError):
            await client.write_gatt_char(
                gsp.COMMAND_CHAR_UUID, gsp.cmd_unsubscribe(self.ref), response=True
            )

    async def time_sync(self, client: BleakClient) -> dict[str, Any] | None:  # noqa: ARG002
        """GSP has no time query: ``None`` (message timestamps anchor the clock)."""
        return None

    def forget(self, client: BleakClient) -> None:
        """Drop per-client state (after a link loss)."""
        self._links.pop(id(client), None)


class AutoDriver:
    """Routes every call to the imuhip or the Movesense driver by the device's services.

    Parameters
    ----------
    imuhip : SensorDriver or None
        Default :class:`imuhip.sources.ble.ImuhipDriver`.
    movesense : MovesenseDriver or None
        Default ``MovesenseDriver()`` (rate nearest to the session rate).
    """

    protocol_name = "auto"

    def __init__(self, imuhip: Any | None = None, movesense: MovesenseDriver | None = None) -> None:
        if imuhip is None:
            from imuhip.sources.ble import ImuhipDriver

            imuhip = ImuhipDriver()
        self.imuhip = imuhip
        self.movesense = movesense or MovesenseDriver()

    def _for(self, client: BleakClient) -> Any:
        services = getattr(client, "services", None)
        if services is not None and services.get_service(gsp.SERVICE_UUID) is not None:
            return self.movesense
        return self.imuhip

    def recognises(self, device: BLEDevice, adv: AdvertisementData | None) -> bool:
        """Either family."""
        return bool(self.imuhip.recognises(device, adv) or self.movesense.recognises(device, adv))

    async def read_info(
        self, client: BleakClient, sensor: str
    ) -> tuple[SensorMeta, dict[str, Any]]:
        """See the chosen driver."""
        driver = self._for(client)
        result: tuple[SensorMeta, dict[str, Any]] = await driver.read_info(client, sensor)
        return result

    async def configure(self, client: BleakClient, sensor: str, cfg: Any) -> SensorMeta:
        """See the chosen driver."""
        meta: SensorMeta = await self._for(client).configure(client, sensor, cfg)
        return meta

    async def start(self, client: BleakClient, on_data: DataCallback) -> dict[str, Any]:
        """See the chosen driver."""
        facts: dict[str, Any] = await self._for(client).start(client, on_data)
        return facts

    async def stop(self, client: BleakClient) -> None:
        """See the chosen driver."""
        await self._for(client).stop(client)

    async def time_sync(self, client: BleakClient) -> dict[str, Any] | None:
        """See the chosen driver."""
        anchor: dict[str, Any] | None = await self._for(client).time_sync(client)
        return anchor

    def forget(self, client: BleakClient) -> None:
        """Both drivers drop the client's state."""
        for d in (self.imuhip, self.movesense):
            forget = getattr(d, "forget", None)
            if forget is not None:
                forget(client)
