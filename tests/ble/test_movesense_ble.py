"""The bleak front end (bumble backend) against a virtual Movesense speaking GSP."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from imuhip.ingest.recording import RecordingWriter, read_recording
from imuhip.sources.ble import BleSession, StreamConfig, scan
from imuhip.sources.bumble_backend import (
    BumbleClient,
    BumbleScanner,
    make_device,
)
from imuhip.sources.movesense import decode_movesense_packets, gsp
from imuhip.sources.movesense.driver import AutoDriver, MovesenseDriver
from imuhip.sources.movesense.virtual import SyntheticImu9, VirtualMovesense
from imuhip.sources.virtual.clock import VirtualClock
from imuhip.types import ImuSamples, RawPacket, SessionMeta
from tests.ble._movesense_rig import movesense_rig

pytestmark = pytest.mark.timeout(60)

ADDR = "F0:00:00:00:AA:01"


def rig(
    hub_mtu: int = 247, **kw: object
) -> contextlib.AbstractAsyncContextManager[VirtualMovesense]:
    return movesense_rig(ADDR, hub_mtu, **kw)


def expected(ms: VirtualMovesense, s: ImuSamples) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The source's values at the decoded samples (index 0 = first message that arrived)."""
    first = next(m.first_idx for m in ms.log if m.status in ("sent", "part2_lost"))
    src = SyntheticImu9(float(ms.rate_hz))
    acc, gyr, mag = src.values(0, int(first + s.sample_idx[-1] + 1))
    i = first + s.sample_idx
    f4 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731 - values travel as float32
    return f4(acc[i]), f4(gyr[i]) * math.pi / 180, f4(mag[i])


async def test_scan_finds_movesense_by_name() -> None:
    async with rig():
        found = await scan(0.2, scanner_backend=BumbleScanner)
    assert [(r.name, r.protocol) for r in found] == [("Movesense 174630000192", "movesense")]


def _meta(rate: int):  # type: ignore[no-untyped-def]
    from imuhip.sources.movesense import movesense_meta

    return movesense_meta("x", rate)


async def _run_session(
    session: BleSession, until: Callable[[], bool], *, wall_limit_s: float = 40.0
) -> list[RawPacket]:
    """Stream until ``until()`` holds (virtual progress of the sensor, never wall time)."""
    await session.connect_all()
    await session.start_all()
    stop = asyncio.Event()
    sup = asyncio.ensure_future(session.supervise(stop))
    items: list[object] = []
    try:
        async with asyncio.timeout(wall_limit_s):  # a hang fails instead of stalling
            while not until():
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.05):
                        items.append(await session.queue.get())
    finally:
        stop.set()
        await sup
        await session.close()
    while not session.queue.empty():
        items.append(session.queue.get_nowait())
    return [it for it in items if isinstance(it, RawPacket)]


def _sent(ms: VirtualMovesense) -> int:
    return sum(1 for m in ms.log if m.status == "sent")


async def test_ble_session_records_and_decodes_si_values_at_104_hz(tmp_path: Path) -> None:
    async with rig(speed=20.0) as ms:
        session = BleSession(
            {"pelvis": ADDR},
            StreamConfig(rate_hz=200),
            client_backend=BumbleClient,
            scanner_backend=BumbleScanner,
            driver=MovesenseDriver(),  # type: ignore[arg-type]
        )
        packets = await _run_session(session, lambda: _sent(ms) >= 8)
        meta = session.meta["pelvis"]
    # a 200 Hz session streams 104 Hz: no public source gives the 208 Hz message layout
    assert (meta.protocol, meta.rate_hz, meta.serial) == ("movesense", 104.0, "174630000192")
    assert meta.firmware == "2.2.1"
    assert ms.commands[-1] == b"\x02\x63"  # UNSUBSCRIBE at close
    # the recorder stores the notifications verbatim; decoding the file gives the SI values
    path = tmp_path / "ms.imrec"
    smeta = SessionMeta("t", "2024-01-01T00:00:00+00:00", "anon", (meta,))
    with contextlib.closing(RecordingWriter(path, smeta)) as w:
        for p in packets:
            w.write_packet(p)
    rec = read_recording(path)
    assert [p.payload for p in rec.packets] == [p.payload for p in packets]
    sent = [v for m in ms.log if m.status == "sent" for v in m.notifications]
    assert [p.payload for p in packets] == sent[: len(packets)]
    from imuhip.ingest.decode import decode_session

    s = decode_session(rec.packets, rec.meta)["pelvis"]
    # the session may end between a DATA and its DATA_PART2: that last half message is counted
    cut = packets[-1].payload[0] == gsp.RESP_DATA and len(packets[-1].payload) == 152
    assert s.stats.protocol_errors == ({"incomplete": 1} if cut else {})
    assert len(s) >= 8 * 5 and s.stats.lost_samples == 0
    acc, gyr, mag = expected(ms, s)
    np.testing.assert_allclose(s.acc_m_s2, acc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(s.gyr_rad_s, gyr, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(s.mag_ut, mag, rtol=0, atol=1e-6)


@pytest.mark.timeout(180)  # a bound for a machine under heavy load; nothing is timed
async def test_faults_loss_part2_duplicates_garbage_and_reconnect() -> None:
    # virtual time stands still while the host reconnects, however long that takes
    clock = VirtualClock(10.0, max_hold_wall_s=120.0)
    async with rig(
        clock=clock,
        loss_prob=0.1,
        part2_loss_prob=0.1,
        duplicate_every=7,
        garbage_every=11,
        disconnects=((1.5, 0.5),),
        seed=3,
    ) as ms:
        session = BleSession(
            {"pelvis": ADDR},
            StreamConfig(rate_hz=100, backoff_s=(0.02, 0.05)),
            client_backend=BumbleClient,
            scanner_backend=BumbleScanner,
            driver=AutoDriver(),  # type: ignore[arg-type]
        )
        # 1.5 virtual s before the drop, 0.5 s down (virtual time is held until the host has
        # subscribed again), then 1 s more: the same run whatever the CPU load
        packets = await _run_session(session, lambda: ms.virtual_now() >= 3.0, wall_limit_s=150.0)
        reconnects = session.links["pelvis"].reconnects
    assert reconnects == 1
    s = decode_movesense_packets(packets, session.meta["pelvis"])
    acc, gyr, mag = expected(ms, s)  # every decoded number is the right one
    np.testing.assert_allclose(s.acc_m_s2, acc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(s.gyr_rad_s, gyr, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(s.mag_ut, mag, rtol=0, atol=1e-6)
    # every sample the device did not deliver (lost, part 2 lost, link down) is a counted gap;
    # the count runs to the last message decoded (later ones may still be in flight at close)
    delivered = [m for m in ms.log if m.status == "sent"]
    first = delivered[0].k
    last = first + int(s.sample_idx[-1]) // ms.n
    delivered = [m for m in delivered if m.k <= last]
    missing = sum(m.n for m in ms.log if first < m.k < last and m.status != "sent")
    assert missing > 0
    assert s.stats.lost_samples == missing
    # a re-sent message is a duplicate once both its notifications arrived twice (the session
    # may close between a message and its copy)
    payloads = [p.payload for p in packets]
    assert s.stats.duplicates == sum(
        1
        for m in delivered
        if (m.k + 1) % 7 == 0 and all(payloads.count(v) == 2 for v in m.notifications)
    )
    kinds = [p.payload[0] for p in packets]
    lone_part1 = sum(
        1
        for i, p in enumerate(packets)
        if kinds[i] == 2 and len(p.payload) == 152 and (i + 1 == len(kinds) or kinds[i + 1] != 3)
    )
    assert sum(1 for m in ms.log if m.status == "part2_lost") > 0
    assert s.stats.protocol_errors.get("incomplete", 0) == lone_part1 > 0
    assert len(s) == sum(m.n for m in delivered)


@pytest.mark.slow
async def test_mixed_live_session_imuhip_sensors_and_one_movesense(tmp_path: Path) -> None:
    from imuhip.ingest.decode import decode_session
    from imuhip.live.session import LiveConfig, run_live
    from imuhip.sources.virtual import VirtualFleet

    fleet = VirtualFleet.create(("pelvis", "thigh_l"), use_simulator=False, speed=20.0)
    ms = VirtualMovesense(make_device(fleet.hub.link, ADDR, "Movesense"), clock=fleet.clock)
    hooks = fleet.host_hooks()  # the whole session on the fleet's virtual time
    hooks["packet_clock_ns"] = lambda p, d: (
        ms.sent_at_ns(d) if p == "thigh_r" else fleet.packet_ns(p, d)
    )
    await ms.start()
    try:
        async with fleet:
            targets = {**fleet.addresses, "thigh_r": ADDR}
            res = await run_live(
                targets,
                tmp_path / "mixed.imrec",
                LiveConfig(duration_s=6.0, time_scale=20.0),
                StreamConfig(rate_hz=200),
                client_backend=BumbleClient,
                scanner_backend=BumbleScanner,
                driver=AutoDriver(),
                **hooks,
            )
    finally:
        await ms.close()
    assert res.failed == {}
    rec = read_recording(res.path)
    protos = {s.placement: (s.protocol, s.rate_hz) for s in rec.meta.sensors}
    assert protos == {
        "pelvis": ("imuhip", 200.0),
        "thigh_l": ("imuhip", 200.0),
        "thigh_r": ("movesense", 104.0),
    }
    out = decode_session(rec.packets, rec.meta)
    s = out["thigh_r"]
    assert len(s) > 104 * 3 and s.stats.lost_samples == 0
    acc, gyr, mag = expected(ms, s)
    np.testing.assert_allclose(s.acc_m_s2, acc, rtol=0, atol=1e-6)
    np.testing.assert_allclose(s.gyr_rad_s, gyr, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(s.mag_ut, mag, rtol=0, atol=1e-6)
    assert len(out["pelvis"]) > 200 * 3
    # the live processor decoded the Movesense stream too (same numbers as the file)
    m = res.metrics["thigh_r"]
    assert m["protocol_errors"] == {} and m["lost_samples"] == 0
    assert abs(m["samples_decoded"] - len(s)) <= 8  # at most one message waiting for its part 2
    assert m["clock_offset_s"] is not None  # the device timestamps fed the clock model


async def test_mtu_23_is_refused_before_subscribing() -> None:
    async with rig(hub_mtu=23, speed=20.0):
        session = BleSession(
            {"pelvis": ADDR},
            StreamConfig(rate_hz=100),
            client_backend=BumbleClient,
            scanner_backend=BumbleScanner,
            driver=MovesenseDriver(104),  # type: ignore[arg-type]
        )
        await session.connect_all()
        await session.start_all()
        await session.close()
    msg = session.failed["pelvis"]
    assert "ATT MTU 23 is too small for Movesense IMU9 at 104 Hz" in msg
    assert "152-byte notifications (ATT MTU >= 155 needed)" in msg


async def test_movesense_driver_refuses_an_imuhip_sensor() -> None:
    from imuhip.sources.virtual import VirtualFleet

    fleet = VirtualFleet.create(("pelvis",), use_simulator=False)
    async with fleet:
        session = BleSession(
            fleet.addresses,
            client_backend=BumbleClient,
            scanner_backend=BumbleScanner,
            driver=MovesenseDriver(),  # type: ignore[arg-type]
        )
        await session.connect_all()
        await session.close()
    assert "no GATT SensorData service" in session.failed["pelvis"]
