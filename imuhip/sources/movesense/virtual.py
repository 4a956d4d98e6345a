"""A bumble virtual Movesense that behaves like the firmware versions in the field (GSP).

- GATT: the GSP service (command characteristic: write; data characteristic: notify), the
  Battery Service and the Device Information Service (serial, firmware revision).
- Advertises its name ``Movesense <serial>`` like the real sensor.
- ``firmware`` selects the behaviour (:mod:`imuhip.sources.movesense.firmware`):

  ============================  ===============  ===============  ===============
  behaviour                     ``sample-2.2.0``  ``sample-2.2.1``  ``default-2.3``
  ============================  ===============  ===============  ===============
  HELLO answer                  ``Hello``         ``Hello``         version + strings
  SUBSCRIBE / UNSUBSCRIBE       no answer         no answer         200 (LE)
  all slots taken               507 (``01 FB``)   507 (``01 FB``)   507 (LE)
  unknown path                  no answer         no answer         404
  value > 150 bytes             one notification  DATA + PART2      DATA + PART2
  PUT_UTCTIME, GET              ignored           ignored           200
  internal loss in timestamps   invisible         invisible         a jump
  ============================  ===============  ===============  ===============

  DATA carries the first 150 value bytes whatever the MTU; a notification longer than ATT MTU - 3
  is cut by the stack (as on hardware). Paths are accepted as the sensor does (``/Meas/IMU9/104``,
  ``/meas/imu9/104``, NUL-terminated or not).
- Data: one IMU9 message per ``samples_per_message`` samples (4 at 52 Hz, 8 from 104 Hz),
  timestamp = the device clock (ms, u32) at the first sample.

Time is virtual (:class:`~imuhip.sources.virtual.clock.VirtualClock`, shareable with a
:class:`~imuhip.sources.virtual.VirtualFleet`): message ``k`` is sent when the clock reaches its
due time; a scheduled outage loses exactly the messages due in its window, and the clock is held
until the host has subscribed again, whatever the CPU load. Every message is logged in
:attr:`VirtualMovesense.log` with its fate.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
from bumble import gatt
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService

from imuhip.sources.movesense import gsp
from imuhip.sources.movesense.firmware import (
    FIRMWARES,
    PART1_VALUE_BYTES,
    Firmware,
    HelloInfo,
    encode_hello_info,
    samples_per_message,
)
from imuhip.sources.movesense.imu9_sources import Imu9Source, SimImu9Source, SyntheticImu9
from imuhip.sources.virtual.clock import VirtualClock
from imuhip.sources.virtual.peripheral import BumblePeripheral

__all__ = [
    "Imu9Source",
    "SentMessage",
    "SimImu9Source",
    "SyntheticImu9",
    "VirtualMovesense",
    "samples_per_message",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One IMU9 message the device produced.

    ``status``: ``"sent"``, ``"lost"`` (whole message), ``"part2_lost"``, ``"down"`` (no link),
    ``"idle"`` (not subscribed), ``"fifo_lost"`` (lost inside the sensor).
    ``notifications`` are the values as they leave the stack (cut at ATT MTU - 3).
    """

    k: int
    first_idx: int
    n: int
    timestamp_ms: int
    t_virtual_s: float
    status: str
    notifications: tuple[bytes, ...] = ()


class VirtualMovesense(BumblePeripheral):
    """A virtual Movesense on a bumble link.

    Parameters
    ----------
    device : bumble.device.Device
        Powered off, on the hub's link (:func:`imuhip.sources.bumble_backend.make_device`).
    serial : str
        Advertised as ``Movesense <serial>``.
    firmware : Firmware or str
        ``"sample-2.2.0"``, ``"sample-2.2.1"`` (default) or ``"default-2.3"``, or a
        :class:`~imuhip.sources.movesense.firmware.Firmware`.
    source : Imu9Source or None
        ``None``: :class:`SyntheticImu9` at the subscribed rate.
    samples_per_message : int or None
        IMU9 samples per message; ``None``: :func:`samples_per_message` of the subscribed rate.
    clock_offset_ms, clock_drift_ppm : float
        Device clock ``offset + (1 + drift) * t_true`` (ms).
    speed : float or None
        Virtual seconds per wall second when no ``clock`` is given; ``None``: as fast as flow
        control allows.
    clock : VirtualClock or None
        A shared virtual time base (e.g. ``VirtualFleet.clock``).
    loss_prob, part2_loss_prob : float
        Probability that a whole message / only its DATA_PART2 is lost on the link (seeded).
    duplicate_every, garbage_every : int
        Re-send every n-th message; send a garbage notification after every n-th (0: never).
    fifo_drop_every : int
        Every n-th message is lost *inside* the sensor (0: never): from 2.3.0 the next timestamp
        jumps over it, before it does not (the loss cannot be seen).
    disconnects : tuple of (start_s, down_s)
        The sensor drops the link at virtual ``start_s`` and is unreachable for ``down_s``.
    max_mtu : int
        Largest ATT MTU the sensor accepts (the real sensor: 161).
    max_subscriptions : int
        Subscription slots; a SUBSCRIBE beyond them is answered 507.
    """

    _all_tasks: set[asyncio.Task[Any]] = set()  # noqa: RUF012 - one referenced set for all

    def __init__(
        self,
        device: Device,
        *,
        serial: str = "174630000192",
        firmware: Firmware | str = "sample-2.2.1",
        source: Imu9Source | None = None,
        samples_per_message: int | None = None,
        battery_pct: int = 77,
        clock_offset_ms: float = 123_456.0,
        clock_drift_ppm: float = 20.0,
        speed: float | None = 20.0,
        clock: VirtualClock | None = None,
        send_latency_s: float = 0.003,
        loss_prob: float = 0.0,
        part2_loss_prob: float = 0.0,
        duplicate_every: int = 0,
        garbage_every: int = 0,
        fifo_drop_every: int = 0,
        disconnects: tuple[tuple[float, float], ...] = (),
        max_mtu: int = 161,
        max_subscriptions: int = 4,
        seed: int = 0,
    ) -> None:
        if isinstance(firmware, str):
            if firmware not in FIRMWARES:
                raise ValueError(f"firmware must be one of {sorted(FIRMWARES)}, got {firmware!r}")
            firmware = FIRMWARES[firmware]
        if samples_per_message is not None and samples_per_message < 1:
            raise ValueError(f"samples_per_message must be >= 1, got {samples_per_message}")
        for p in (loss_prob, part2_loss_prob):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"loss probabilities must be in [0, 1), got {p}")
        self.device = device
        self.serial = serial
        self.name = f"{gsp.NAME_PREFIX} {serial}"
        self.firmware = firmware
        self.source = source
        self.samples_per_message = samples_per_message
        self.battery_pct = int(battery_pct)
        self.clock_offset_ms = float(clock_offset_ms)
        self.clock_drift = float(clock_drift_ppm) * 1e-6
        self.clock = clock if clock is not None else VirtualClock(speed)
        self.send_latency_s = float(send_latency_s)
        self.loss_prob = float(loss_prob)
        self.part2_loss_prob = float(part2_loss_prob)
        self.duplicate_every = int(duplicate_every)
        self.garbage_every = int(garbage_every)
        self.fifo_drop_every = int(fifo_drop_every)
        self.disconnects = tuple(disconnects)
        self.max_subscriptions = int(max_subscriptions)
        self.rate_hz: int | None = None
        self.n = 0  # samples per message of the stream (fixed at the first SUBSCRIBE)
        self.ref: int | None = None
        self.subscriptions: dict[int, str] = {}  # ref -> path
        self.streaming = False
        self.utc_time_us: int | None = None  # last PUT_UTCTIME (default firmware)
        self.log: list[SentMessage] = []
        self.commands: list[bytes] = []
        self.connections_accepted = 0
        self._rng = np.random.default_rng(seed)
        self._conn: Connection | None = None
        self._t0_v: float | None = None
        self._down_until_s = -math.inf
        self._outage = False
        self._next_disconnect = 0
        self._closing = False
        self._tasks = VirtualMovesense._all_tasks
        self._adv_lock = asyncio.Lock()
        self._build_gatt(max_mtu)
        device.on("connection", self._on_connection)

    # -- GATT -----------------------------------------------------------------------------------
    def _build_gatt(self, max_mtu: int) -> None:
        props = gatt.Characteristic.Properties
        self.command_char: gatt.Characteristic[Any] = gatt.Characteristic(
            gsp.COMMAND_CHAR_UUID,
            props.WRITE,
            gatt.Characteristic.WRITEABLE,
            gatt.CharacteristicValue(write=self._on_command),  # type: ignore[arg-type]
        )
        self.data_char = gatt.Characteristic(
            gsp.DATA_CHAR_UUID, props.NOTIFY, gatt.Characteristic.READABLE, b""
        )
        self.device.add_service(gatt.Service(gsp.SERVICE_UUID, [self.command_char, self.data_char]))
        self.device.add_service(BatteryService(lambda _c: self.battery_pct))
        self.device.add_service(
            DeviceInformationService(
                manufacturer_name="Movesense (virtual)",
                model_number="Movesense MD",
                serial_number=self.serial,
                firmware_revision=self.firmware.version,
            )
        )
        self.device.gatt_server.max_mtu = max_mtu

    def advertising_data(self) -> bytes:
        """Flags and the complete local name ``Movesense <serial>``."""
        return bytes(
            AdvertisingData(
                [
                    (AdvertisingData.FLAGS, bytes([0x06])),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.name.encode()),
                ]
            )
        )

    @property
    def address(self) -> str:
        """The public address (no ``/P`` suffix)."""
        return str(self.device.public_address).split("/")[0]

    # -- lifecycle ------------------------------------------------------------------------------
    def _on_connection(self, conn: Connection) -> None:
        if self._outage:
            self._spawn(conn.disconnect())
            return
        self.connections_accepted += 1
        self._conn = conn
        conn.on("disconnection", lambda _r: self._on_disconnection(conn))

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self.clock.link_lost(self.name)  # what was in flight on it will not arrive
        # the firmware unsubscribes every stream when the peer leaves
        self.streaming = False
        self.subscriptions.clear()
        if not self._outage:  # after an outage the stream loop advertises
            self._spawn(self._advertise_quietly())

    async def _advertise_quietly(self) -> None:
        try:
            await self._advertise()
        except Exception as err:
            log.debug("%s: re-advertising failed: %s", self.name, err)

    async def close(self) -> None:
        """Stop streaming, drop the link, stop advertising."""
        self._closing = True
        self.clock.release(self)
        self.clock.forget(self.name)
        self.clock.outages.discard(self)
        for t in [t for t in self._tasks if getattr(t, "_ms_owner", None) is self]:
            t.cancel()
        await self._drop_link_and_stop_advertising()

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = super()._spawn(coro)
        task._ms_owner = self  # type: ignore[attr-defined]
        return task

    # -- time -----------------------------------------------------------------------------------
    def virtual_now(self) -> float:
        """Virtual seconds since the first SUBSCRIBE (0 before)."""
        if self._t0_v is None:
            return 0.0
        return self.clock.now_s() - self._t0_v

    def device_time_ms(self, t_virtual_s: float) -> int:
        """The device clock (ms, u32) at virtual time ``t_virtual_s``."""
        t = self.clock_offset_ms + (1.0 + self.clock_drift) * t_virtual_s * 1e3
        return round(t) % gsp.TIME_MODULUS_MS

    def sent_at_ns(self, _payload: bytes = b"") -> int:
        """Virtual send time (ns) of this sensor's latest message (a host receive stamp)."""
        self.clock.delivered(self.name)
        return self.clock.sensor_ns(self.name)

    async def _wait_virtual(self, t_s: float) -> None:
        assert self._t0_v is not None
        if self.clock.speed is None:
            q = self.device.host.le_acl_packet_queue
            while q is not None and q.pending > 4:  # noqa: ASYNC110 - bumble has no event
                await asyncio.sleep(0)
            await asyncio.sleep(0)
        else:
            await self.clock.sleep_until(self._t0_v + t_s)
        self.clock.mark(self._t0_v + t_s, self.name)

    # -- commands -------------------------------------------------------------------------------
    def _reply(self, conn: Connection, value: bytes) -> None:
        self._spawn(self._notify(conn, value))

    def _status(self, conn: Connection, ref: int, status: int, data: bytes = b"") -> None:
        be = self.firmware.status_big_endian
        self._reply(conn, gsp.command_result(ref, status, data, big_endian=be))

    def _on_command(self, conn: Connection, value: bytes) -> None:
        value = bytes(value)
        self.commands.append(value)
        if len(value) < 2 or value[1] == 0:
            return  # the firmware ignores malformed commands
        cmd, ref, data = value[0], value[1], value[2:]
        answers = self.firmware.answers_commands
        if cmd == gsp.CMD_HELLO:
            if answers:
                info = HelloInfo(
                    "default",
                    1,
                    self.serial,
                    "Movesense",
                    self.address,
                    "Movesense",
                    self.firmware.version,
                )
                self._reply(conn, bytes([gsp.RESP_COMMAND_RESULT, ref]) + encode_hello_info(info))
            else:
                self._reply(conn, bytes([gsp.RESP_COMMAND_RESULT, ref]) + b"Hello")
        elif cmd == gsp.CMD_SUBSCRIBE:
            self._subscribe(conn, ref, data.decode("ascii", errors="replace"))
        elif cmd == gsp.CMD_UNSUBSCRIBE:
            if self.subscriptions.pop(ref, None) is not None and ref == self.ref:
                self.streaming = False
            if answers:
                self._status(conn, ref, 200)
        elif not answers:
            return  # the sample firmware knows HELLO, SUBSCRIBE, UNSUBSCRIBE only
        elif cmd == gsp.CMD_PUT_UTCTIME and len(data) == 8:
            (self.utc_time_us,) = struct.unpack("<Q", data)
            self._status(conn, ref, 200)
        elif cmd == gsp.CMD_GET:
            path = data.decode("ascii", errors="replace").rstrip("\0").lower()
            if path == "/system/energy/level":
                self._status(conn, ref, 200, bytes([self.battery_pct]))
            elif path == "/mem/datalogger/state":
                self._status(conn, ref, 200, b"\x02")  # Ready
            else:
                self._status(conn, ref, 404)
        else:
            self._status(conn, ref, 400)

    def _subscribe(self, conn: Connection, ref: int, path: str) -> None:
        answers = self.firmware.answers_commands
        if ref not in self.subscriptions and len(self.subscriptions) >= self.max_subscriptions:
            self._status(conn, ref, 507)  # every subscription slot is taken
            return
        rate = gsp.parse_imu9_path(path)
        if rate is None or (self.rate_hz is not None and rate != self.rate_hz):
            # an unknown resource (or, here only, a second IMU9 rate): the sample firmware frees
            # the slot without a word; the default firmware answers
            if answers:
                self._status(conn, ref, 404 if rate is None else 409)
            return
        self.subscriptions[ref] = path
        self.rate_hz, self.ref = rate, ref
        self.streaming = True
        if answers:
            self._status(conn, ref, 200)
        if self._t0_v is None:
            self.n = self.samples_per_message or samples_per_message(rate)
            self.clock.start()
            self._t0_v = self.clock.now_s()
            self.clock.mark(self._t0_v, self.name)
            self._spawn(self._stream())

    # -- streaming ------------------------------------------------------------------------------
    def _wire(self, ref: int, value: bytes, max_len: int) -> list[bytes]:
        """The notifications of one value as they leave the stack (cut at ATT MTU - 3)."""
        if self.firmware.sends_part2:
            parts = gsp.split_firmware(ref, value, PART1_VALUE_BYTES)
        else:
            parts = [bytes([gsp.RESP_DATA, ref]) + value]
        return [p[:max_len] for p in parts]

    async def _end_outage(self) -> None:
        """The outage is over: advertise and hold virtual time until the host subscribed again."""
        self._outage = False
        self.clock.outages.discard(self)
        await self._advertise_quietly()
        await self.clock.hold_until(
            self, lambda: self._conn is not None and self.streaming, lambda: self._closing
        )

    async def _disconnect_now(self, start_s: float, down_s: float) -> None:
        self._down_until_s = start_s + down_s
        conn = self._conn
        if conn is None:
            return
        self._outage = True
        self.clock.outages.add(self)
        self._conn = None
        try:
            await conn.disconnect()
        except Exception as err:
            log.debug("%s: disconnect failed: %s", self.name, err)
        self.clock.link_lost(self.name)

    async def _stream(self) -> None:
        assert self.rate_hz is not None
        rate, n = self.rate_hz, self.n
        source = self.source or SyntheticImu9(float(rate))
        hidden = 0  # samples lost inside the sensor (pre-2.3 timestamps do not count them)
        k = 0
        while not self._closing:
            first = k * n
            t_due = (first + n - 1) / rate + self.send_latency_s
            await self._wait_virtual(t_due)
            if self._outage and t_due >= self._down_until_s:
                await self._end_outage()
            while self._next_disconnect < len(self.disconnects) and (
                t_due >= self.disconnects[self._next_disconnect][0]
            ):
                await self._disconnect_now(*self.disconnects[self._next_disconnect])
                self._next_disconnect += 1
            stamp_idx = first if self.firmware.timestamps_reflect_loss else first - hidden
            ts = self.device_time_ms(stamp_idx / rate)
            conn = self._conn
            if conn is None or not self.streaming or self.ref is None:
                status = "down" if conn is None else "idle"
                self.log.append(SentMessage(k, first, n, ts, t_due, status))
                k += 1
                continue
            if self.fifo_drop_every and (k + 1) % self.fifo_drop_every == 0:
                hidden += n
                self.log.append(SentMessage(k, first, n, ts, t_due, "fifo_lost"))
                k += 1
                continue
            acc, gyr, mag = source.values(first, n)
            value = gsp.encode_imu9(ts, acc, gyr, mag)
            parts = self._wire(self.ref, value, conn.att_mtu - 3)
            status = "sent"
            if self.loss_prob and self._rng.random() < self.loss_prob:
                status, send = "lost", []
            elif (
                len(parts) == 2
                and self.part2_loss_prob
                and self._rng.random() < self.part2_loss_prob
            ):
                status, send = "part2_lost", parts[:1]
            else:
                send = list(parts)
            if self.duplicate_every and status == "sent" and (k + 1) % self.duplicate_every == 0:
                send += parts
            if self.garbage_every and (k + 1) % self.garbage_every == 0:
                m = int(self._rng.integers(1, 40))
                send.append(self._rng.integers(0, 256, m, dtype=np.uint8).tobytes())
            self.log.append(SentMessage(k, first, n, ts, t_due, status, tuple(parts)))
            for v in send:
                if not gsp.is_command_result(v):
                    # the host stamps every data notification (garbage that reads as a command
                    # result goes to its command path instead)
                    self.clock.sent(self.name)
                await self._notify(conn, v)
            k += 1
