"""A bumble virtual Movesense that follows the public GATT SensorData Protocol (GSP v1).

- GATT: the GSP service (command characteristic: write; data characteristic: notify), the
  Battery Service and the Device Information Service (serial, firmware).
- Advertises its name ``Movesense <serial>`` like the real sensor.
- HELLO is answered ``[1, ref] + b"Hello"`` (as the ``gatt_sensordata_app`` sample);
  SUBSCRIBE ``/Meas/IMU9/{rate}`` is answered ``[1, ref, 200 u16]`` and starts the stream
  (404 for another path, 507 when one message does not fit two notifications at the negotiated
  MTU); UNSUBSCRIBE stops it (no answer, as the sample firmware).
- Data: one IMU9 message per ``samples_per_message`` samples, timestamp = the device clock (ms,
  u32) at the first sample, split into DATA + DATA_PART2 when longer than ATT MTU - 3 bytes.
- Samples come from an :class:`Imu9Source` (a synthetic signal, or the walking simulator
  resampled to the Movesense rate).

Time is virtual as in :mod:`imuhip.sources.virtual.sensor`: message ``k`` is due at virtual second
``t_k`` and sent at wall time ``t_start + t_k / speed`` (``speed=None``: as fast as flow control
allows). Every message is logged in :attr:`VirtualMovesense.log` with its fate.
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from bumble import gatt
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService

from imuhip.sources.movesense import gsp
from imuhip.sources.virtual.peripheral import BumblePeripheral

__all__ = ["Imu9Source", "SentMessage", "SimImu9Source", "SyntheticImu9", "VirtualMovesense"]

log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]
_G = 9.80665


class Imu9Source(Protocol):
    """Samples ``start_idx`` .. ``start_idx + n``: acc m/s^2, gyro deg/s, magn uT, each (n, 3)."""

    def values(self, start_idx: int, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Three ``(n, 3)`` arrays in the sensor frame."""
        ...


@dataclass(frozen=True)
class SyntheticImu9:
    """Closed-form motion at ``rate_hz``: gravity on z, ~0.9 Hz sinusoids, a constant field."""

    rate_hz: float = 104.0
    phase: float = 0.0

    def values(self, start_idx: int, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Three ``(n, 3)`` arrays: acc m/s^2, gyro deg/s, magn uT."""
        t = (start_idx + np.arange(n)) / self.rate_hz
        w = 2 * np.pi * 0.9
        z = np.zeros(n)
        acc = np.column_stack([1.5 * np.sin(w * t + self.phase), 0.5 * np.cos(w * t), z + _G])
        gyr = np.column_stack(
            [
                35.0 * np.cos(w * t + self.phase),
                17.0 * np.sin(2 * w * t + self.phase),
                23.0 * np.sin(w * t + 0.5 + self.phase),
            ]
        )
        mag = np.column_stack([z + 20.0, 5.0 * np.sin(w * t), z - 40.0])
        return acc, gyr, mag


@dataclass(frozen=True)
class SimImu9Source:
    """Simulator samples (any rate) linearly resampled to the Movesense rate, looped."""

    acc_m_s2: FloatArray  # (M, 3) at rate_hz
    gyr_dps: FloatArray
    mag_ut: FloatArray

    @classmethod
    def from_sim(cls, samples: Any, rate_hz: float) -> SimImu9Source:
        """From :class:`imuhip.sim.SimSamples` (``t_s``, ``acc_m_s2``, ``gyr_rad_s``, ``mag_ut``).

        ``samples`` are at the simulator rate; the result is at ``rate_hz``.
        """
        t = np.asarray(samples.t_s, np.float64)
        grid = t[0] + np.arange(int((t[-1] - t[0]) * rate_hz) + 1) / rate_hz

        def res(a: FloatArray) -> FloatArray:
            a = np.asarray(a, np.float64)
            return np.column_stack([np.interp(grid, t, a[:, j]) for j in range(3)])

        return cls(
            res(samples.acc_m_s2),
            np.degrees(res(samples.gyr_rad_s)),
            res(samples.mag_ut),
        )

    def values(self, start_idx: int, n: int) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Rows ``start_idx`` .. ``start_idx + n`` (wrapping)."""
        idx = (start_idx + np.arange(n)) % len(self.acc_m_s2)
        return self.acc_m_s2[idx], self.gyr_dps[idx], self.mag_ut[idx]


@dataclass(frozen=True, slots=True)
class SentMessage:
    """One IMU9 message the device produced.

    ``status``: ``"sent"``, ``"lost"`` (whole message), ``"part2_lost"``, ``"down"`` (no link),
    ``"idle"`` (not subscribed). ``notifications`` are the values handed to the stack.
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
    source : Imu9Source or None
        ``None``: :class:`SyntheticImu9` at the subscribed rate.
    samples_per_message : int
        IMU9 samples per message (8 on the sensor at 104 Hz).
    clock_offset_ms, clock_drift_ppm : float
        Device clock ``offset + (1 + drift) * t_true`` (ms).
    speed : float or None
        Virtual seconds per wall second; ``None``: as fast as flow control allows.
    loss_prob, part2_loss_prob : float
        Probability that a whole message / only its DATA_PART2 is lost (seeded).
    duplicate_every, garbage_every : int
        Re-send every n-th message; send a garbage notification after every n-th (0: never).
    disconnects : tuple of (start_s, down_s)
        The sensor drops the link at virtual ``start_s`` and is unreachable for ``down_s``.
    max_mtu : int
        Largest ATT MTU the sensor accepts (the real sensor: 161).
    """

    def __init__(
        self,
        device: Device,
        *,
        serial: str = "174630000192",
        source: Imu9Source | None = None,
        samples_per_message: int = 8,
        battery_pct: int = 77,
        firmware: str = "2.2.1-virt",
        clock_offset_ms: float = 123_456.0,
        clock_drift_ppm: float = 20.0,
        speed: float | None = 20.0,
        send_latency_s: float = 0.003,
        loss_prob: float = 0.0,
        part2_loss_prob: float = 0.0,
        duplicate_every: int = 0,
        garbage_every: int = 0,
        disconnects: tuple[tuple[float, float], ...] = (),
        max_mtu: int = 161,
        seed: int = 0,
    ) -> None:
        if samples_per_message < 1:
            raise ValueError(f"samples_per_message must be >= 1, got {samples_per_message}")
        for p in (loss_prob, part2_loss_prob):
            if not 0.0 <= p < 1.0:
                raise ValueError(f"loss probabilities must be in [0, 1), got {p}")
        self.device = device
        self.serial = serial
        self.name = f"{gsp.NAME_PREFIX} {serial}"
        self.source = source
        self.n = int(samples_per_message)
        self.battery_pct = int(battery_pct)
        self.firmware = firmware
        self.clock_offset_ms = float(clock_offset_ms)
        self.clock_drift = float(clock_drift_ppm) * 1e-6
        self.speed = speed
        self.send_latency_s = float(send_latency_s)
        self.loss_prob = float(loss_prob)
        self.part2_loss_prob = float(part2_loss_prob)
        self.duplicate_every = int(duplicate_every)
        self.garbage_every = int(garbage_every)
        self.disconnects = tuple(disconnects)
        self.rate_hz: int | None = None
        self.ref: int | None = None
        self.streaming = False
        self.log: list[SentMessage] = []
        self.commands: list[bytes] = []
        self.connections_accepted = 0
        self._rng = np.random.default_rng(seed)
        self._conn: Connection | None = None
        self._t0_wall: float | None = None
        self._cursor_s = 0.0
        self._down_until_s = -math.inf
        self._next_disconnect = 0
        self._closing = False
        self._tasks: set[asyncio.Task[Any]] = set()
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
                firmware_revision=self.firmware,
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
        if self.virtual_now() < self._down_until_s:
            self._spawn(conn.disconnect())
            return
        self.connections_accepted += 1
        self._conn = conn
        conn.on("disconnection", lambda _r: self._on_disconnection(conn))

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
        self.streaming = False  # the firmware unsubscribes everything when the peer leaves
        delay = max(0.0, self._down_until_s - self.virtual_now())

        async def later() -> None:
            await asyncio.sleep(0.0 if self.speed is None else delay / self.speed)
            try:
                await self._advertise()
            except Exception as err:
                log.debug("%s: re-advertising failed: %s", self.name, err)

        self._spawn(later())

    async def close(self) -> None:
        """Stop streaming, drop the link, stop advertising."""
        self._closing = True
        for t in list(self._tasks):
            t.cancel()
        await self._drop_link_and_stop_advertising()

    # -- time -----------------------------------------------------------------------------------
    def virtual_now(self) -> float:
        """Virtual seconds since the first SUBSCRIBE (0 before)."""
        if self._t0_wall is None:
            return 0.0
        if self.speed is None:
            return self._cursor_s
        return (asyncio.get_running_loop().time() - self._t0_wall) * self.speed

    def device_time_ms(self, t_virtual_s: float) -> int:
        """The device clock (ms, u32) at virtual time ``t_virtual_s``."""
        t = self.clock_offset_ms + (1.0 + self.clock_drift) * t_virtual_s * 1e3
        return round(t) % gsp.TIME_MODULUS_MS

    async def _wait_virtual(self, t_s: float) -> None:
        if self.speed is None:
            self._cursor_s = max(self._cursor_s, t_s)
            q = self.device.host.le_acl_packet_queue
            while q is not None and q.pending > 4:  # noqa: ASYNC110 - bumble has no event
                await asyncio.sleep(0)
            await asyncio.sleep(0)
            return
        assert self._t0_wall is not None
        delay = self._t0_wall + t_s / self.speed - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    # -- commands -------------------------------------------------------------------------------
    def _reply(self, conn: Connection, value: bytes) -> None:
        self._spawn(self._notify(conn, value))

    def _on_command(self, conn: Connection, value: bytes) -> None:
        value = bytes(value)
        self.commands.append(value)
        if len(value) < 2 or value[1] == 0:
            return  # the sample firmware ignores malformed commands
        cmd, ref = value[0], value[1]
        if cmd == gsp.CMD_HELLO:
            self._reply(conn, bytes([gsp.RESP_COMMAND_RESULT, ref]) + b"Hello")
        elif cmd == gsp.CMD_SUBSCRIBE:
            path = value[2:].decode("ascii", errors="replace").rstrip("\0")
            parts = path.strip("/").split("/")
            rate = int(parts[2]) if len(parts) == 3 and parts[2].isdigit() else None
            if parts[:2] != ["Meas", "IMU9"] or rate not in gsp.IMU9_RATES_HZ:
                self._reply(conn, gsp.command_result(ref, 404))
                return
            size = gsp.TIMESTAMP_BYTES + gsp.IMU9_SAMPLE_BYTES * self.n
            try:
                gsp.split_notifications(ref, bytes(size), conn.att_mtu - 3)
            except ValueError:
                self._reply(conn, gsp.command_result(ref, 507))
                return
            if self.rate_hz is not None and rate != self.rate_hz:
                self._reply(conn, gsp.command_result(ref, 409))  # one stream per virtual sensor
                return
            self.rate_hz, self.ref = rate, ref
            self.streaming = True
            self._reply(conn, gsp.command_result(ref, 200))
            if self._t0_wall is None:
                self._t0_wall = asyncio.get_running_loop().time()
                self._spawn(self._stream())
        elif cmd == gsp.CMD_UNSUBSCRIBE and ref == self.ref:
            self.streaming = False

    # -- streaming ------------------------------------------------------------------------------
    async def _stream(self) -> None:
        assert self.rate_hz is not None
        rate = self.rate_hz
        source = self.source or SyntheticImu9(float(rate))
        k = 0
        while not self._closing:
            first = k * self.n
            t_due = (first + self.n - 1) / rate + self.send_latency_s
            await self._wait_virtual(t_due)
            while self._next_disconnect < len(self.disconnects) and (
                t_due >= self.disconnects[self._next_disconnect][0]
            ):
                start_s, down_s = self.disconnects[self._next_disconnect]
                self._next_disconnect += 1
                self._down_until_s = start_s + down_s
                conn = self._conn
                if conn is not None:
                    self._conn = None
                    try:
                        await conn.disconnect()
                    except Exception as err:
                        log.debug("%s: disconnect failed: %s", self.name, err)
            ts = self.device_time_ms(first / rate)
            conn = self._conn
            if conn is None or not self.streaming or self.ref is None:
                status = "down" if conn is None else "idle"
                self.log.append(SentMessage(k, first, self.n, ts, t_due, status))
                k += 1
                continue
            acc, gyr, mag = source.values(first, self.n)
            value = gsp.encode_imu9(ts, acc, gyr, mag)
            parts = gsp.split_notifications(self.ref, value, conn.att_mtu - 3)
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
            self.log.append(SentMessage(k, first, self.n, ts, t_due, status, tuple(parts)))
            for v in send:
                await self._notify(conn, v)
            k += 1
