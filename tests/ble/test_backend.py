"""The bleak front end over the bumble backend, against virtual imuhip sensors."""

from __future__ import annotations

import asyncio

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from imuhip.ingest import protocol
from imuhip.sources.ble import scan
from imuhip.sources.bumble_backend import BumbleClient, BumbleScanner
from imuhip.sources.virtual import Faults, VirtualFleet

pytestmark = pytest.mark.timeout(60)

CTRL = protocol.CONTROL_CHAR_UUID


async def test_scan_reports_protocol_sensors_with_rssi_and_battery() -> None:
    fleet = VirtualFleet.create(("pelvis", "thigh_l", "thigh_r"), use_simulator=False)
    async with fleet:
        found = await scan(0.2, scanner_backend=BumbleScanner)
    assert sorted(r.name for r in found) == ["imuhip-pelvis", "imuhip-thigh_l", "imuhip-thigh_r"]
    by_name = {r.name: r for r in found}
    # the fleet gives battery 90, 83, 76 % in placement order; advertised as 0x180F service data
    assert by_name["imuhip-pelvis"].battery_pct == 90
    assert by_name["imuhip-thigh_r"].battery_pct == 76
    assert all(r.protocol == "imuhip" and -127 < r.rssi_dbm < 20 for r in found)
    assert {r.address for r in found} == set(fleet.addresses.values())


async def test_scanner_service_filter_accepts_extra_kwargs() -> None:
    fleet = VirtualFleet.create(("pelvis",), use_simulator=False)
    async with fleet:
        found = await BleakScanner.discover(
            0.2,
            return_adv=True,
            backend=BumbleScanner,
            service_uuids=["0000feed-0000-1000-8000-00805f9b34fb"],
        )
        assert found == {}
        found = await BleakScanner.discover(
            0.2, return_adv=True, backend=BumbleScanner, service_uuids=[protocol.SERVICE_UUID]
        )
        assert list(found) == [fleet.addresses["pelvis"]]


async def _start(client: BleakClient, responses: list[bytes], data: list[object]) -> None:
    await client.start_notify(CTRL, lambda _c, d: responses.append(bytes(d)))
    await client.start_notify(protocol.DATA_CHAR_UUID, lambda _c, d: data.append(d))
    await client.write_gatt_char(CTRL, protocol.cmd_start(), response=True)


async def test_gatt_table_info_and_bytearray_notifications_at_mtu_247() -> None:
    fleet = VirtualFleet.create(("pelvis",), use_simulator=False, speed=40.0)
    async with fleet:
        client = BleakClient(fleet.addresses["pelvis"], backend=BumbleClient)
        await client.connect()
        try:
            assert client.mtu_size == 247
            info = protocol.DeviceInfo.decode(
                bytes(await client.read_gatt_char(protocol.INFO_CHAR_UUID))
            )
            assert (info.rate_hz, info.has_mag, info.samples_per_packet) == (200, False, 10)
            batt = await client.read_gatt_char("00002a19-0000-1000-8000-00805f9b34fb")
            assert batt[0] == 90
            serial = await client.read_gatt_char("00002a25-0000-1000-8000-00805f9b34fb")
            assert bytes(serial).decode() == info.serial
            responses: list[bytes] = []
            data: list[object] = []
            await _start(client, responses, data)
            for _ in range(200):
                if len(data) >= 5:
                    break
                await asyncio.sleep(0.01)
            assert responses[0] == protocol.control_response(protocol.CMD_START, protocol.STATUS_OK)
            assert len(data) >= 5
            assert all(type(d) is bytearray for d in data)
            hdr = [protocol.parse_header(bytes(d)) for d in data]  # type: ignore[arg-type]
            assert [h.seq for h in hdr] == list(range(len(hdr)))
            assert all(h.n == 10 for h in hdr)
        finally:
            await client.disconnect()


async def test_mtu_23_refuses_start_and_cuts_long_notifications() -> None:
    fleet = VirtualFleet.create(("pelvis",), use_simulator=False, hub_mtu=23)
    async with fleet:
        client = BleakClient(fleet.addresses["pelvis"], backend=BumbleClient)
        await client.connect()
        try:
            assert client.mtu_size == 23
            responses: list[bytes] = []
            data: list[bytearray] = []
            await _start(client, responses, data)
            await asyncio.sleep(0.05)
            assert protocol.parse_control_response(responses[0])[:2] == (
                protocol.CMD_START,
                protocol.STATUS_MTU_TOO_SMALL,
            )
            vs = fleet.sensors["pelvis"]
            conn = next(iter(vs.device.connections.values()))
            await vs.device.notify_subscriber(conn, vs.data_char, bytes(range(100)))
            await asyncio.sleep(0.05)
            assert data == [bytearray(range(20))]  # ATT MTU 23 leaves 20 bytes
        finally:
            await client.disconnect()


async def test_disconnected_callback_only_for_unrequested_disconnects() -> None:
    fleet = VirtualFleet.create(
        ("pelvis",),
        use_simulator=False,
        speed=50.0,
        faults={"pelvis": Faults(disconnects=((0.5, 60.0),))},
    )
    calls: list[object] = []
    async with fleet:
        client = BleakClient(
            fleet.addresses["pelvis"], disconnected_callback=calls.append, backend=BumbleClient
        )
        await client.connect()
        await client.disconnect()  # requested: no callback
        await asyncio.sleep(0.05)
        assert calls == []
        await client.connect()
        await _start(client, [], [])
        for _ in range(100):  # the sensor drops the link at virtual 0.5 s
            if calls:
                break
            await asyncio.sleep(0.01)
        assert calls == [client]  # bleak binds the client
        assert not client.is_connected


async def test_concurrent_connects_fail_like_on_linux() -> None:
    fleet = VirtualFleet.create(("pelvis", "thigh_l"), use_simulator=False)
    async with fleet:
        a = BleakClient(fleet.addresses["pelvis"], backend=BumbleClient)
        b = BleakClient(fleet.addresses["thigh_l"], backend=BumbleClient)
        res = await asyncio.gather(a.connect(), b.connect(), return_exceptions=True)
        errors = [r for r in res if isinstance(r, BaseException)]
        assert len(errors) == 1
        assert isinstance(errors[0], BleakError)
        for c in (a, b):
            await c.disconnect()


async def test_refusing_sensor_fails_connect_quickly() -> None:
    fleet = VirtualFleet.create(
        ("pelvis",), use_simulator=False, faults={"pelvis": Faults(refuse_connect=True)}
    )
    async with fleet:
        client = BleakClient(fleet.addresses["pelvis"], backend=BumbleClient)
        async with asyncio.timeout(5):
            with pytest.raises(BleakError, match="disconnected"):
                await client.connect()
