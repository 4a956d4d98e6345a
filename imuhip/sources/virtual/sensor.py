"""A bumble virtual peripheral that serves the imuhip GATT table and streams packets.

The virtual sensor behaves like the firmware described by :mod:`imuhip.ingest.protocol`:

- GATT: the imuhip service (data: notify; control: write + notify; info: read), the Battery
  Service (level) and the Device Information Service (model, serial, firmware).
- It advertises its name, the imuhip service UUID and its battery level (service data 0x180F).
- Control commands START / STOP / SET_RATE / SET_RANGES / TIME_SYNC are honoured; START is refused
  with ``STATUS_MTU_TOO_SMALL`` when the negotiated ATT MTU leaves room for 0 samples.
- Samples come from a :class:`SampleSource` (the walking simulator, or a synthetic signal).

Time is *virtual* (:class:`~imuhip.sources.virtual.clock.VirtualClock`, shared by a fleet): packet
``k`` is due at virtual second ``t_k`` and is sent when the clock reaches it, i.e. at wall time
``t_start + t_k / speed`` plus the time the clock was held for reconnects (``speed=None``: as
fast as the stack's flow control allows). The host stamps ``time.monotonic_ns()`` on receipt, as
with real hardware, or the clock's :meth:`~imuhip.sources.virtual.clock.VirtualClock.host_ns`.

Every packet the device produces is logged in :attr:`VirtualSensor.log` with whether it was
delivered to the stack or why not (injected loss, link down, not streaming) so tests can account
for every packet exactly.

The GATT table and advertisement are built in :mod:`~imuhip.sources.virtual.gatt`; sample sources
are in :mod:`~imuhip.sources.virtual.source`, :class:`Faults` and :class:`SentRecord` in
:mod:`~imuhip.sources.virtual.faults`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import struct
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
from bumble import hci
from bumble.device import Connection, Device

from imuhip.ingest import protocol
from imuhip.sources.virtual.clock import VirtualClock
from imuhip.sources.virtual.faults import Faults, SentRecord
from imuhip.sources.virtual.gatt import add_imuhip_services, advertising_payload
from imuhip.sources.virtual.peripheral import BumblePeripheral
from imuhip.sources.virtual.source import SampleSource, SyntheticSource

__all__ = ["Faults", "SampleSource", "SentRecord", "SyntheticSource", "VirtualSensor"]

log = logging.getLogger(__name__)

_SENT_AT_MAX = 4096  # send times kept for stamps not yet taken (bounded)


@dataclass
class _State:
    rate_hz: int = 200
    acc_range_g: int = 16
    gyr_range_dps: int = 2000
    streaming: bool = False
    spp: int = 0


class VirtualSensor(BumblePeripheral):
    """A virtual imuhip sensor on a bumble :class:`~bumble.link.LocalLink`.

    Parameters
    ----------
    device : bumble.device.Device
        A powered-off device attached to the link (see
        :class:`~imuhip.sources.virtual.VirtualFleet`).
    name : str
        Advertised local name (e.g. ``"imuhip-pelvis"``).
    source : SampleSource
    serial : str
    battery_pct : int
    faults : Faults
    clock_offset_s, clock_drift_ppm : float
        The device clock reads ``clock_offset_s + (1 + drift) * t_true``.
    speed : float or None
        Virtual seconds per wall second; ``None``: as fast as flow control allows.
    send_latency_s : float
        Virtual delay between the last sample of a packet and its transmission.
    clock : VirtualClock or None
        The fleet's shared time base (a private one at ``speed`` if ``None``).
    """

    def __init__(
        self,
        device: Device,
        *,
        name: str,
        source: SampleSource,
        serial: str = "VS0001",
        battery_pct: int = 87,
        faults: Faults | None = None,
        clock_offset_s: float = 12.345,
        clock_drift_ppm: float = 30.0,
        speed: float | None = 20.0,
        send_latency_s: float = 0.004,
        clock: VirtualClock | None = None,
    ) -> None:
        self.device = device
        self.name = name
        self.source = source
        self.serial = serial
        self.battery_pct = int(battery_pct)
        self.faults = faults or Faults()
        self.clock_offset_s = float(clock_offset_s)
        self.clock_drift = float(clock_drift_ppm) * 1e-6
        self.speed = speed
        self.clock = clock if clock is not None else VirtualClock(speed)
        self.send_latency_s = float(send_latency_s)
        self.state = _State()
        self.log: list[SentRecord] = []
        self.connections_accepted = 0
        self.commands: list[bytes] = []
        self.garbage_sent = 0
        self.keep_log = True  # False: only counters (long sessions measuring host memory)
        self.counts: dict[str, int] = {}
        self.disconnects_done = 0
        self.disconnects_skipped = 0  # scheduled while the link was down (host gave up)
        self.reconnect_timeouts = 0  # outages after which the host did not START in time
        self._fault_outage = False  # a scheduled outage is in progress (until the next START)
        self._src0 = 0  # source sample shown as this sensor's sample 0
        self._sent_at: dict[bytes, float] = {}  # payload -> fleet virtual send time (s)
        self._rng = np.random.default_rng(self.faults.seed)
        # the phase of the connection events a host's write waits for (its own stream: the
        # loss pattern of a seed stays what it was)
        self._radio_rng = np.random.default_rng((self.faults.seed or 0, 0x5E7))
        self._conn: Connection | None = None
        self._down_until_s = -math.inf
        self._t0_v: float | None = None  # fleet virtual time of this sensor's t = 0 (first START)
        self._stream_task: asyncio.Task[None] | None = None
        self._adv_task: asyncio.Task[None] | None = None
        self._closing = False
        self._next_disconnect = 0
        self._adv_lock = asyncio.Lock()
        self._tasks = VirtualSensor._all_tasks
        self._build_gatt()
        device.on("connection", self._on_connection)

    # -- GATT table ---------------------------------------------------------------------------
    def _build_gatt(self) -> None:
        self.data_char, self.control_char, self.info_char = add_imuhip_services(
            self.device,
            serial=self.serial,
            battery_pct=lambda: self.battery_pct,
            max_mtu=self.faults.max_mtu,
            on_control_write=self._on_control_write,
            read_info=self._read_info,
        )

    def info(self, att_mtu: int | None = None) -> protocol.DeviceInfo:
        """The current info record (``samples_per_packet`` for ``att_mtu``, else the last START)."""
        s = self.state
        has_mag = self.source.has_mag
        spp = s.spp if att_mtu is None else protocol.samples_per_packet(att_mtu, s.rate_hz, has_mag)
        return protocol.DeviceInfo(
            protocol_version=protocol.PROTOCOL_VERSION,
            has_mag=has_mag,
            rate_hz=s.rate_hz,
            acc_range_g=s.acc_range_g,
            gyr_range_dps=s.gyr_range_dps,
            acc_lsb_m_s2=protocol.acc_lsb_m_s2(s.acc_range_g),
            gyr_lsb_rad_s=protocol.gyr_lsb_rad_s(s.gyr_range_dps),
            mag_lsb_ut=protocol.MAG_LSB_UT,
            samples_per_packet=spp,
            streaming=s.streaming,
            model="imuhip-v1",
            serial=self.serial,
            firmware="1.0.0-virt",
        )

    def _read_info(self, conn: Connection) -> bytes:
        if self.faults.bad_info:
            return b"NOT-AN-IMUHIP-SENSOR"
        return self.info(conn.att_mtu).encode()

    # -- advertising & connections ------------------------------------------------------------
    def advertising_data(self) -> bytes:
        """Name, the imuhip service UUID and the battery level as service data."""
        return advertising_payload(self.name, self.battery_pct)

    def _on_connection(self, conn: Connection) -> None:
        if self.faults.refuse_connect or self.virtual_now() < self._down_until_s:
            self._spawn(conn.disconnect(hci.HCI_CONNECTION_REJECTED_DUE_TO_LIMITED_RESOURCES_ERROR))
            conn.on("disconnection", lambda _r: self._schedule_advertise(0.0))
            return
        self.connections_accepted += 1
        self._conn = conn
        self.clock.forget_writes(self.address)  # nothing of an earlier link is still on the air
        conn.on("disconnection", lambda _r: self._on_disconnection(conn))

    def _on_disconnection(self, conn: Connection) -> None:
        if self._conn is conn:
            self._conn = None
            self.clock.link_lost(self.name)  # what was in flight on it will not arrive
            self.clock.forget_writes(self.address)
        # A sensor that lost its host stops streaming and waits for a new START.
        self.state.streaming = False
        if self._fault_outage and self.virtual_now() < self._down_until_s:
            return  # the stream loop advertises when the outage is over
        self._schedule_advertise(0.0)

    def _schedule_advertise(self, delay_virtual_s: float) -> None:
        t_at = self.clock.now_s() + delay_virtual_s

        async def later() -> None:
            await self.clock.sleep_until(t_at)
            try:
                await self._advertise()
            except Exception as err:
                log.debug("%s: re-advertising failed: %s", self.name, err)

        self._adv_task = self._spawn(later())

    _all_tasks: ClassVar[set[asyncio.Task[Any]]] = set()  # one task set for all sensors

    # -- virtual time ---------------------------------------------------------------------------
    def virtual_now(self) -> float:
        """Virtual seconds since the first START (0 before)."""
        if self._t0_v is None:
            return 0.0
        return self.clock.now_s() - self._t0_v

    def device_time_us(self, t_virtual_s: float) -> int:
        """The device clock (µs, wrapped to u32) at virtual time ``t_virtual_s``."""
        t_dev = self.clock_offset_s + (1.0 + self.clock_drift) * t_virtual_s
        return round(t_dev * 1e6) % protocol.TIME_MODULUS_US

    @property
    def started_at_s(self) -> float | None:
        """Fleet virtual time of this sensor's first START (its device clock's zero), or None."""
        return self._t0_v

    @property
    def address(self) -> str:
        """This device's address on the link (as the host writes it, upper case)."""
        return str(self.device.public_address).split("/")[0].upper()

    def write_arrival_s(self, t_send_s: float | None) -> float:
        """Virtual time (as :meth:`virtual_now`) at which a write the host sent at host-clock
        ``t_send_s`` (fleet seconds) reached this device.

        The radio carries a write at the first connection event after it was sent, then
        ``send_latency_s`` of radio and stack: with connection events modelled
        (``Faults.burst_interval_s``), a wait drawn uniformly within one interval (the host's
        send time has no relation to the events). Without a send time (a device outside a fleet)
        or before this sensor's first START (its clock reads its offset until then): now.
        """
        if t_send_s is None or self._t0_v is None:
            return self.virtual_now()
        b = self.faults.burst_interval_s
        wait = float(self._radio_rng.uniform(0.0, b)) if b else 0.0
        return t_send_s - self._t0_v + wait + self.send_latency_s

    # -- control --------------------------------------------------------------------------------
    def _on_control_write(self, conn: Connection, value: bytes) -> None:
        value = bytes(value)
        t_send = self.clock.take_write(self.address)  # every control write is one on the air
        self.commands.append(value)
        cmd = value[0] if value else 0
        status = protocol.STATUS_OK
        payload = b""
        s = self.state
        if cmd == protocol.CMD_START and len(value) == 1:
            spp = protocol.samples_per_packet(conn.att_mtu, s.rate_hz, self.source.has_mag)
            if spp == 0:
                status = protocol.STATUS_MTU_TOO_SMALL
            else:
                s.spp = s.spp or spp  # the packet timeline is fixed at the first START
                s.streaming = True
                if self._stream_task is None:
                    self.clock.start()  # the fleet's t = 0 is the first START of any sensor
                    self._t0_v = self.clock.now_s()
                    # the body moves whether or not this sensor streams yet: sample k shows the
                    # motion at fleet time t0 + k / rate, the same moment as the other sensors
                    self._src0 = round(self._t0_v * s.rate_hz)
                    self.clock.mark(self._t0_v, self.name)  # time waits for this sensor too
                    self._stream_task = self._spawn(self._stream())
        elif cmd == protocol.CMD_STOP and len(value) == 1:
            s.streaming = False
        elif cmd == protocol.CMD_SET_RATE and len(value) == 3:
            (rate,) = struct.unpack_from("<H", value, 1)
            if rate not in protocol.RATES_HZ:
                status = protocol.STATUS_BAD_VALUE
            elif rate != s.rate_hz and self._stream_task is not None:
                status = protocol.STATUS_BUSY
            else:
                s.rate_hz = rate
        elif cmd == protocol.CMD_SET_RANGES and len(value) == 5:
            acc, gyr = struct.unpack_from("<HH", value, 1)
            if acc not in protocol.ACC_RANGES_G or gyr not in protocol.GYR_RANGES_DPS:
                status = protocol.STATUS_BAD_VALUE
            else:
                s.acc_range_g, s.gyr_range_dps = acc, gyr
        elif cmd == protocol.CMD_TIME_SYNC and len(value) == 2:
            t_dev = self.device_time_us(self.write_arrival_s(t_send))
            payload = bytes([value[1]]) + struct.pack("<I", t_dev)
        else:
            status = protocol.STATUS_BAD_COMMAND
        resp = protocol.control_response(cmd & 0x7F, status, payload)
        self._spawn(self.device.notify_subscriber(conn, self.control_char, resp))

    # -- streaming ------------------------------------------------------------------------------
    def _packet_due_s(self, k: int) -> float:
        s = self.state
        last_sample = (k + 1) * s.spp - 1
        # device seconds -> true (virtual) seconds: a fast device clock samples early
        t = last_sample / s.rate_hz / (1.0 + self.clock_drift) + self.send_latency_s
        b = self.faults.burst_interval_s
        if b:
            t = math.ceil(t / b) * b
        return t

    async def _wait_virtual(self, t_s: float) -> None:
        assert self._t0_v is not None
        if self.clock.speed is None:
            q = self.device.host.le_acl_packet_queue
            while q is not None and q.pending > 4:  # noqa: ASYNC110 - polls bumble state that has no event
                await asyncio.sleep(0)
            await asyncio.sleep(0)
        else:
            await self.clock.sleep_until(self._t0_v + t_s)
        self.clock.mark(self._t0_v + t_s, self.name)

    async def _end_outage(self) -> None:
        """The scheduled outage is over: advertise and hold virtual time until START."""
        self._fault_outage = False
        self.clock.outages.discard(self)
        self._schedule_advertise(0.0)
        ok = await self.clock.hold_until(
            self, lambda: self._conn is not None and self.state.streaming, lambda: self._closing
        )
        if not ok:
            self.reconnect_timeouts += 1

    async def _drain(self) -> None:
        q = self.device.host.le_acl_packet_queue
        while q is not None and q.pending > 0 and self._conn is not None:  # noqa: ASYNC110 - polls bumble state that has no event
            await asyncio.sleep(0)
        for _ in range(8):  # let the central's transport deliver what is in flight
            await asyncio.sleep(0)

    async def _stream(self) -> None:
        s = self.state
        k = 0
        f = self.faults
        while not self._closing:
            t_due = self._packet_due_s(k)
            await self._wait_virtual(t_due)
            if self._fault_outage and t_due >= self._down_until_s:
                await self._end_outage()
            while (
                self._next_disconnect < len(f.disconnects)
                and t_due >= f.disconnects[self._next_disconnect][0]
            ):
                start_s, down_s = f.disconnects[self._next_disconnect]
                self._next_disconnect += 1
                self._down_until_s = start_s + down_s
                if self._conn is None:
                    self.disconnects_skipped += 1
                else:
                    self.disconnects_done += 1
                    self._fault_outage = True
                    self.clock.outages.add(self)
                    await self._drain()
                    conn = self._conn
                    self._conn = None
                    try:
                        await conn.disconnect()
                    except Exception as err:
                        log.debug("%s: disconnect failed: %s", self.name, err)
                    self.clock.link_lost(self.name)
            first = k * s.spp
            link = self._conn
            if link is None:
                self._record(SentRecord(k, first, s.spp, t_due, "down"))
            elif not s.streaming:
                self._record(SentRecord(k, first, s.spp, t_due, "idle"))
            else:
                # samples are clocked by the device oscillator: exact in device time
                t_first_us = round((self.clock_offset_s + first / s.rate_hz) * 1e6)
                t_first_us %= protocol.TIME_MODULUS_US
                payload = protocol.encode_packet(k, t_first_us, self._counts(first, s.spp))
                if f.loss_prob and self._rng.random() < f.loss_prob:
                    self._record(SentRecord(k, first, s.spp, t_due, "lost", payload))
                else:
                    self._record(SentRecord(k, first, s.spp, t_due, "sent", payload))
                    assert self._t0_v is not None
                    # keyed by the header (counter + device time: unique), allocated here: the
                    # harness's bookkeeping, popped when the host takes the stamp
                    self._sent_at[payload[: protocol.HEADER_LEN]] = self._t0_v + t_due
                    if len(self._sent_at) > _SENT_AT_MAX:  # a host that never reads them
                        del self._sent_at[next(iter(self._sent_at))]
                    self.clock.sent(self.name)
                    await self._notify(link, payload)
                    n_bad = f.flood + (
                        1 if f.garbage_every and (k + 1) % f.garbage_every == 0 else 0
                    )
                    for _ in range(n_bad):
                        self.garbage_sent += 1
                        self.clock.sent(self.name)  # the host stamps it like data
                        await self._notify(link, self._garbage())
            k += 1

    def _counts(self, first: int, n: int) -> npt.NDArray[np.int16]:
        # sources produce counts at ±16 g / ±2000 °/s; rescale to the configured ranges
        raw = self.source.counts(self._src0 + first, n)
        s = self.state
        if s.acc_range_g == 16 and s.gyr_range_dps == 2000:
            return raw
        out = raw.astype(np.float64)
        out[:, 0:3] *= 16.0 / s.acc_range_g
        out[:, 3:6] *= 2000.0 / s.gyr_range_dps
        return np.clip(np.round(out), -32768, 32767).astype(np.int16)

    def _record(self, rec: SentRecord) -> None:
        self.counts[rec.status] = self.counts.get(rec.status, 0) + 1
        if self.keep_log:
            self.log.append(rec)

    def _garbage(self) -> bytes:
        n = int(self._rng.integers(1, 60))
        return self._rng.integers(0, 256, n, dtype=np.uint8).tobytes()

    async def close(self) -> None:
        """Stop streaming, drop the link and power off."""
        self._closing = True
        self.clock.release(self)
        self.clock.forget(self.name)
        self.clock.outages.discard(self)
        if self._stream_task is not None and not self._stream_task.done():
            self._stream_task.cancel()
        await self._drop_link_and_stop_advertising()

    def sent_at_ns(self, payload: bytes) -> int:
        """Fleet virtual time (ns) at which this notification was sent (latest packet's if unknown).

        The simulator's host receive stamp: the radio of the virtual link is ideal (no latency),
        however long the machine takes to deliver the notification.
        """
        self.clock.delivered(self.name)
        t = self._sent_at.pop(bytes(payload[: protocol.HEADER_LEN]), None)
        if t is None:
            return self.clock.sensor_ns(self.name)
        return round(t * 1e9)

    # -- accounting ---------------------------------------------------------------------------
    def sent_payloads(self) -> list[bytes]:
        """Payloads handed to the stack, in order (garbage excluded)."""
        return [r.payload for r in self.log if r.status == "sent"]

    def unsent_between_sent(self) -> list[SentRecord]:
        """Packets not delivered whose counter lies between the first and last delivered one."""
        sent = [r.seq for r in self.log if r.status == "sent"]
        if not sent:
            return []
        lo, hi = sent[0], sent[-1]
        return [r for r in self.log if r.status != "sent" and lo < r.seq < hi]
