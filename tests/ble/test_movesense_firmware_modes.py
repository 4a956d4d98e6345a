"""The virtual Movesense in each firmware mode, raw GSP and through the imuhip driver."""

from __future__ import annotations

import asyncio
import contextlib
import math
import struct
from collections.abc import Callable

import numpy as np
import pytest
from bleak import BleakClient

from imuhip.sources.ble import BleSession, StreamConfig
from imuhip.sources.bumble_backend import (
    BumbleClient,
    BumbleScanner,
)
from imuhip.sources.movesense import decode_movesense_packets, gsp
from imuhip.sources.movesense.driver import MovesenseDriver
from imuhip.sources.movesense.virtual import SyntheticImu9, VirtualMovesense
from imuhip.types import ImuSamples, RawPacket, SessionEvent
from tests.ble._movesense_rig import movesense_rig

pytestmark = pytest.mark.timeout(60)

ADDR = "F0:00:00:00:AB:01"


def rig(**kw: object) -> contextlib.AbstractAsyncContextManager[VirtualMovesense]:
    return movesense_rig(ADDR, **kw)


async def _raw(commands: list[bytes], *, until: Callable[[list[bytes]], bool]) -> list[bytes]:
    """Write ``commands`` with a plain bleak client; notifications until ``until(got)``."""
    got: list[bytes] = []
    enough = asyncio.Event()

    def on(_c: object, d: bytearray) -> None:
        got.append(bytes(d))
        if until(got):
            enough.set()

    client = BleakClient(ADDR, backend=BumbleClient)
    await client.connect()
    try:
        assert client.mtu_size == 161  # the sensor's limit wins over the host's 247
        await client.start_notify(gsp.DATA_CHAR_UUID, on)
        for c in commands:
            await client.write_gatt_char(gsp.COMMAND_CHAR_UUID, c, response=True)
        async with asyncio.timeout(20):
            await enough.wait()
    finally:
        await client.disconnect()
    return got


def _values(rate: int, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    acc, gyr, mag = SyntheticImu9(float(rate)).values(0, int(idx[-1]) + 1)
    f4 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731 - float32 on the wire
    return f4(acc[idx]), f4(gyr[idx]) * math.pi / 180, f4(mag[idx])


def _check_values(ms: VirtualMovesense, s: ImuSamples) -> None:
    first = next(m.first_idx for m in ms.log if m.status == "sent")
    acc, gyr, mag = _values(int(ms.rate_hz or 0), first + s.sample_idx)
    np.testing.assert_allclose(s.acc_m_s2, acc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(s.gyr_rad_s, gyr, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(s.mag_ut, mag, rtol=0, atol=1e-6)


async def test_sample_firmware_dialect() -> None:
    async with rig(firmware="sample-2.2.1") as ms:
        got = await _raw(
            [b"\x00\x05", b"\x01\x63/meas/imu9/104"],  # lower-case path, as other clients send
            until=lambda g: sum(1 for d in g if d[0] == 3) >= 3,
        )
    assert got[0] == b"\x01\x05Hello"
    # no answer to SUBSCRIBE: the next notifications are data, 150 value bytes in DATA
    assert [d[0] for d in got[1:7]] == [2, 3] * 3
    assert {len(d) for d in got[1:7:2]} == {152} and {len(d) for d in got[2:7:2]} == {144}
    assert ms.rate_hz == 104 and ms.commands[1] == b"\x01\x63/meas/imu9/104"


async def test_default_firmware_dialect_answers_every_command() -> None:
    utc = struct.pack("<Q", 1_700_000_000_000_000)
    async with rig(firmware="default-2.3") as ms:
        got = await _raw(
            [
                b"\x00\x64",
                b"\x08\x6c" + utc,  # PUT_UTCTIME, as published clients send on connect
                b"\x04\x65/Mem/DataLogger/State\x00",
                b"\x01\x63/Meas/IMU9/52\x00",  # NUL-terminated path
            ],
            until=lambda g: sum(1 for d in g if d[0] == 2) >= 2,
        )
    results = [d for d in got if d[0] == 1]
    assert results[0][:3] == b"\x01\x64\x01"  # protocol version 1, then the device strings
    assert results[0][3:].split(b"\0")[:5] == [
        b"174630000192",
        b"Movesense",
        ms.address.encode(),
        b"Movesense",
        b"2.3.0",
    ]
    assert results[1:] == [b"\x01\x6c\xc8\x00", b"\x01\x65\xc8\x00\x02", b"\x01\x63\xc8\x00"]
    assert ms.utc_time_us == 1_700_000_000_000_000
    # 52 Hz: 4 samples, 148 value bytes, one DATA notification
    assert {len(d) for d in got if d[0] == 2} == {150}


async def test_full_subscription_slots_answer_507_big_endian() -> None:
    async with rig(firmware="sample-2.2.1", max_subscriptions=1):
        got = await _raw(
            [b"\x01\x07/Meas/IMU9/104", b"\x01\x08/Meas/IMU9/104"],
            until=lambda g: any(d[0] == 1 for d in g),
        )
    assert [d for d in got if d[0] == 1] == [b"\x01\x08\x01\xfb"]


async def test_firmware_2_2_0_sends_one_notification_cut_by_the_stack() -> None:
    async with rig(firmware="sample-2.2.0"):
        got = await _raw([b"\x01\x63/Meas/IMU9/104"], until=lambda g: len(g) >= 3)
    assert {(d[0], len(d)) for d in got} == {(2, 158)}  # 294 bytes cut at ATT MTU - 3


def _session(driver: MovesenseDriver, rate_hz: int = 100) -> BleSession:
    return BleSession(
        {"thigh_r": ADDR},
        StreamConfig(rate_hz=rate_hz),
        client_backend=BumbleClient,
        scanner_backend=BumbleScanner,
        driver=driver,  # type: ignore[arg-type]
    )


async def _stream(
    ms: VirtualMovesense, session: BleSession, n_messages: int, events: dict | None = None
) -> list[RawPacket]:
    """Packets until ``n_messages`` DATA arrived; ``events`` gets kind -> data."""
    await session.connect_all()
    await session.start_all()
    assert session.failed == {}
    out: list[RawPacket] = []

    def take(item: object) -> None:
        if isinstance(item, RawPacket):
            out.append(item)
        elif isinstance(item, SessionEvent) and events is not None:
            events.setdefault(item.kind, item.data)

    try:
        async with asyncio.timeout(40):  # a hang fails; progress is counted in messages
            while sum(1 for p in out if p.payload[0] == gsp.RESP_DATA) < n_messages:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        take(await session.queue.get())
    finally:
        await session.close()
    while not session.queue.empty():
        take(session.queue.get_nowait())
    return out


MATRIX = [
    ("sample-2.2.0", 52),
    ("sample-2.2.1", 52),
    ("sample-2.2.1", 104),
    ("sample-2.2.1", 208),
    ("default-2.3", 52),
    ("default-2.3", 104),
    ("default-2.3", 208),
]


@pytest.mark.parametrize(("firmware", "rate"), MATRIX)
async def test_driver_streams_each_firmware_mode(firmware: str, rate: int) -> None:
    async with rig(firmware=firmware, speed=40.0) as ms:
        session = _session(MovesenseDriver(rate))
        events: dict = {}
        packets = await _stream(ms, session, 12, events)
        meta, facts = session.meta["thigh_r"], events["sensor_info"]
    kind, version = firmware.split("-")
    assert (meta.rate_hz, meta.firmware) == (float(rate), version if kind == "sample" else "2.3.0")
    assert facts["firmware_kind"] == kind
    s = decode_movesense_packets(packets, meta)
    assert s.stats.lost_samples == 0 and s.stats.protocol_errors.get("count", 0) == 0
    assert len(s) >= 8 * ms.n
    # every message the sensor sent up to the last one decoded is there, none twice
    first_k = next(m.k for m in ms.log if m.status == "sent")
    last_k = first_k + int(s.sample_idx[-1]) // ms.n
    assert len(s) == sum(m.n for m in ms.log if m.status == "sent" and m.k <= last_k)
    _check_values(ms, s)


async def test_driver_refuses_104_hz_on_firmware_2_2_0() -> None:
    async with rig(firmware="sample-2.2.0"):
        session = _session(MovesenseDriver(104))
        await session.connect_all()
        await session.start_all()
        await session.close()
    msg = session.failed["thigh_r"]
    assert "firmware 2.2.0 sends an IMU9 message at 104 Hz (292 bytes)" in msg
    assert "DATA_PART2 needs firmware >= 2.2.1" in msg


async def test_driver_names_full_slots_not_the_mtu() -> None:
    async with rig(firmware="default-2.3", max_subscriptions=0):
        session = _session(MovesenseDriver())
        await session.connect_all()
        await session.start_all()
        await session.close()
    msg = session.failed["thigh_r"]
    assert "refused SUBSCRIBE /Meas/IMU9/104 (status 507: every subscription slot" in msg
    assert "MTU" not in msg


async def test_sample_firmware_subscription_is_confirmed_by_data() -> None:
    async with rig(firmware="sample-2.2.1", speed=40.0) as ms:
        session = _session(MovesenseDriver(path="/meas/imu9/104"))
        events: dict = {}
        await _stream(ms, session, 3, events)
        started = events["start"]
    assert ms.commands[-2:] == [b"\x01\x63/meas/imu9/104", b"\x02\x63"]
    assert (started.get("confirmed_by"), started.get("status")) == ("data", None)


@pytest.mark.parametrize(("firmware", "visible"), [("sample-2.2.1", False), ("default-2.3", True)])
async def test_loss_inside_the_sensor_shows_in_timestamps_from_2_3(
    firmware: str, visible: bool
) -> None:
    async with rig(firmware=firmware, speed=40.0, fifo_drop_every=5) as ms:
        session = _session(MovesenseDriver(104))
        packets = await _stream(ms, session, 16)
        meta = session.meta["thigh_r"]
    s = decode_movesense_packets(packets, meta)
    first_k = next(m.k for m in ms.log if m.status == "sent")
    if visible:  # the decoded index counts every message the sensor made
        last_k = first_k + int(s.sample_idx[-1]) // ms.n
    else:  # the indices close up over what the sensor lost: count the messages decoded
        sent_ks = [m.k for m in ms.log if m.status == "sent"]
        last_k = sent_ks[sent_ks.index(first_k) + len(s) // ms.n - 1]
    dropped = sum(m.n for m in ms.log if m.status == "fifo_lost" and first_k < m.k < last_k)
    assert dropped > 0
    assert s.stats.lost_samples == (dropped if visible else 0)
