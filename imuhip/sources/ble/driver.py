"""Sensor drivers of the BLE session: the :class:`SensorDriver` interface and the imuhip protocol.

:class:`ImuhipDriver` reads and checks a sensor's info, configures rate and ranges, starts and
stops streaming and runs TIME_SYNC exchanges, all as request/response over the control
characteristic (:mod:`imuhip.ingest.protocol`). Movesense plugs in its own driver
(:mod:`imuhip.sources.movesense.driver`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from bleak import BleakClient
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from imuhip.errors import ProtocolError, SensorConnectionError
from imuhip.ingest import protocol
from imuhip.sources.ble.config import BATTERY_LEVEL_UUID, StreamConfig
from imuhip.types import SensorMeta

__all__ = ["ImuhipDriver", "SensorDriver"]

log = logging.getLogger(__name__)


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
        # pending requests by (command, token): TIME_SYNC replies echo their token, so several may
        # be in flight; every other command has one at a time (token None)
        self._waiting: dict[tuple[int, int | None], asyncio.Future[tuple[int, bytes, int]]] = {}

    def on_notify(self, _char: Any, data: bytearray) -> None:
        rx_ns = self.clock_ns()
        try:
            cmd, status, payload = protocol.parse_control_response(bytes(data))
        except ProtocolError:
            log.warning("malformed control response %s", bytes(data).hex())
            return
        token = payload[0] if cmd == protocol.CMD_TIME_SYNC and payload else None
        fut = self._waiting.pop((cmd, token), None)
        if fut is None and cmd == protocol.CMD_TIME_SYNC and token is None:
            # a TIME_SYNC refused without its token echoed: it answers the oldest one pending
            # (a reply whose token matches nothing pending is late and answers none)
            fut = next((self._waiting.pop(k) for k in list(self._waiting) if k[0] == cmd), None)
        if fut is not None and not fut.done():
            fut.set_result((status, payload, rx_ns))

    async def request(
        self, client: BleakClient, command: bytes, *, response: bool = True
    ) -> tuple[int, bytes, int]:
        cmd = command[0]
        key = (cmd, command[1] if cmd == protocol.CMD_TIME_SYNC and len(command) > 1 else None)
        fut: asyncio.Future[tuple[int, bytes, int]] = asyncio.get_running_loop().create_future()
        self._waiting[key] = fut
        try:
            async with asyncio.timeout(self.timeout_s):
                await client.write_gatt_char(protocol.CONTROL_CHAR_UUID, command, response=response)
                return await fut
        except TimeoutError as err:
            raise SensorConnectionError(
                f"{client.address}: no response to control command 0x{cmd:02x} "
                f"within {self.timeout_s} s"
            ) from err
        finally:
            self._waiting.pop(key, None)


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
        # a write without response (SPEC §5): no ATT round trip in between, so several requests
        # can be on the air at once and each leaves at the host's send stamp
        status, payload, t_recv = await self._control(client).request(
            client, protocol.cmd_time_sync(token), response=False
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
