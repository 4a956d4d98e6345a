"""A published third-party Movesense client against the virtual Movesense (issue 15, item 4).

The client is sensein/movesense-py (``movesense.sensor.SensorCommand``, the code behind its
``movesense status`` / ``movesense live`` commands). It is not published on PyPI (neither as
``movesense`` nor as ``movensense``), so this test runs only where it was installed from its
repository (``pip install --no-deps <checkout>``) and skips otherwise.

Its own code does everything: it scans with ``BleakScanner(detection_callback=...)`` for a name
ending in the serial, connects with ``BleakClient(address, disconnected_callback=...)``, enables
notifications, sends PUT_UTCTIME on connect, HELLO + GET ``/Mem/DataLogger/State``
(``get_status``), GET ``/System/Energy/Level``, SUBSCRIBE (NUL-terminated path), UNSUBSCRIBE,
and routes notifications with its async handler into ``data_queue``. The client creates
its scanner and client without ``backend=``, so the test makes bumble bleak's platform backend;
nothing of the client is replaced. The IMU9 values are read with the client's ``DataView``
(``get_uint_32`` / ``get_float_32``) from the payloads its handler queued, and must equal what
the virtual sensor sent, float32 for float32.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import struct
from types import ModuleType
from typing import Any

import bleak
import numpy as np
import pytest

from imuhip.sources.bumble_backend import (
    BumbleClient,
    BumbleScanner,
)
from imuhip.sources.movesense.virtual import SentMessage, SyntheticImu9, VirtualMovesense
from tests.ble._movesense_rig import movesense_rig

# the project ships its package as ``movesense`` and, in some versions, ``movensense``
PACKAGES = ("movesense", "movensense")


def _client_module(name: str) -> ModuleType | None:
    for package in PACKAGES:
        with contextlib.suppress(ModuleNotFoundError):
            return importlib.import_module(f"{package}.{name}")
    return None


sensor_mod = _client_module("sensor")
if sensor_mod is None or not hasattr(sensor_mod, "SensorCommand"):
    pytest.skip(
        "sensein/movesense-py is not on PyPI; install it from its repository to run this test",
        allow_module_level=True,
    )

pytestmark = pytest.mark.timeout(60)

ADDR = "F0:00:00:00:AB:31"
SERIAL = "174630000192"
RATE_HZ = 104
N_MESSAGES = 12


@pytest.fixture
def bumble_is_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    """bleak's front end picks bumble when no ``backend=`` is given (as the client calls it)."""
    monkeypatch.setattr(bleak, "get_platform_client_backend_type", lambda: (BumbleClient, "bumble"))
    monkeypatch.setattr(
        bleak, "get_platform_scanner_backend_type", lambda: (BumbleScanner, "bumble")
    )


def rig(firmware: str) -> contextlib.AbstractAsyncContextManager[VirtualMovesense]:
    # a desktop host offers an ATT MTU of 247, more than the sensor's 161
    return movesense_rig(ADDR, serial=SERIAL, firmware=firmware)


async def _messages(sensor: Any, ref: int, n: int) -> list[bytes]:
    """``n`` IMU9 values from the client's ``data_queue``: DATA payload + DATA_PART2 payload."""
    out: list[bytes] = []
    part1: bytes | None = None
    async with asyncio.timeout(30):  # a hang fails; progress is counted in messages
        while len(out) < n:
            item = await sensor.data_queue.get()
            assert item["reference"] == ref
            payload = bytes(item["data_payload"])
            if item["response_code"] == sensor_mod.GSP_RESP_DATA:
                if part1 is not None:  # a DATA that needed no part 2
                    out.append(part1)
                part1 = payload
                if len(payload) < 150:  # the firmware splits only past 150 value bytes
                    out.append(part1)
                    part1 = None
            else:
                assert item["response_code"] == sensor_mod.GSP_RESP_DATA_PART2
                assert part1 is not None, "DATA_PART2 without its DATA"
                out.append(part1 + payload)
                part1 = None
    return out[:n]


def _decode_with_client(value: bytes) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """Timestamp and the acc/gyro/magn blocks, read with the client's own ``DataView``."""
    dv = sensor_mod.DataView(value)
    n = (len(value) - 4) // 36
    floats = np.array([dv.get_float_32(4 + 4 * i) for i in range(9 * n)])
    acc, gyr, mag = (floats[b * 3 * n : (b + 1) * 3 * n].reshape(n, 3) for b in range(3))
    return dv.get_uint_32(0), acc, gyr, mag


def _sent(ms: VirtualMovesense, timestamp_ms: int) -> SentMessage:
    hits = [m for m in ms.log if m.timestamp_ms == timestamp_ms and m.status == "sent"]
    assert len(hits) == 1, f"no single sent message with timestamp {timestamp_ms}"
    return hits[0]


@pytest.mark.usefixtures("bumble_is_the_platform")
async def test_sensein_client_streams_imu9_from_the_default_firmware() -> None:
    async with rig("default-2.3") as ms:
        async with sensor_mod.SensorCommand(SERIAL[-6:]) as sensor:  # PUT_UTCTIME on connect
            status = await sensor.get_status()
            battery = await sensor.get_battery_level()
            sub = await sensor.subscribe_to_resource(f"/Meas/IMU9/{RATE_HZ}", reference=10)
            values = await _messages(sensor, 10, N_MESSAGES)
            unsub = await sensor.unsubscribe_from_resource(10)
            mtu = sensor.client.mtu_size
        commands = list(ms.commands)

    # what the client asked, byte for byte, and that every command got its answer
    assert [c[:2] for c in commands] == [
        b"\x08\x6c",  # PUT_UTCTIME ref 108
        b"\x00\x64",  # HELLO ref 100
        b"\x04\x65",  # GET ref 101 /Mem/DataLogger/State (no NUL)
        b"\x04\x69",  # GET ref 105 /System/Energy/Level\0
        b"\x01\x0a",  # SUBSCRIBE ref 10 /Meas/IMU9/104\0
        b"\x02\x0a",  # UNSUBSCRIBE ref 10
    ]
    assert commands[4] == b"\x01\x0a/Meas/IMU9/104\x00"
    utc_us = struct.unpack("<Q", commands[0][2:])[0]
    assert ms.utc_time_us == utc_us
    assert status == {
        "success": True,
        "protocol_version": 1,
        "serial_number": SERIAL,
        "product_name": "Movesense",
        "dfu_mac": ADDR,
        "app_name": "Movesense",
        "app_version": "2.3.0",
        "dlstate": 2,  # Ready
    }
    assert battery == {"battery_level": ms.battery_pct}
    assert (sub["success"], sub["status_code"]) == (True, 200)
    assert (unsub["success"], unsub["status_code"]) == (True, 200)
    assert mtu == 161

    # 104 Hz: 8 samples, 292 value bytes, DATA (150) + DATA_PART2 (142) reassembled by the test
    assert {len(v) for v in values} == {4 + 36 * 8}
    source = SyntheticImu9(float(RATE_HZ))
    f4 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731 - float32 on the wire
    ks = []
    for value in values:
        timestamp_ms, acc, gyr, mag = _decode_with_client(value)
        m = _sent(ms, timestamp_ms)
        ks.append(m.k)
        acc_sent, gyr_sent, mag_sent = source.values(m.first_idx, m.n)
        np.testing.assert_array_equal(acc, f4(acc_sent))
        np.testing.assert_array_equal(gyr, f4(gyr_sent))  # deg/s, as the sensor sends
        np.testing.assert_array_equal(mag, f4(mag_sent))
    assert ks == list(range(ks[0], ks[0] + N_MESSAGES))  # in order, none lost or doubled


@pytest.mark.usefixtures("bumble_is_the_platform")
async def test_sensein_live_command_runs_against_the_default_firmware(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``movesense live`` (its ``_live`` coroutine): the command issue 15 saw fail."""
    cli = _client_module("cli")
    if cli is None:
        pytest.skip("movesense-py's CLI module (movesense.cli, needs click) is not importable")
    async with rig("default-2.3") as ms:
        # streams for 1 s of wall time, its own loop; only what it counted is asserted
        result = await cli._live(SERIAL, [f"/Meas/IMU9/{RATE_HZ}"], 1)
        commands = list(ms.commands)
    out = capsys.readouterr().out.splitlines()
    assert result["success"] is True, result
    assert f"  Subscribed to /Meas/IMU9/{RATE_HZ} (ref=10)" in out
    assert f"  Unsubscribed from /Meas/IMU9/{RATE_HZ}" in out
    sizes = [int(line.split()[1]) for line in out if line.startswith(f"  [/Meas/IMU9/{RATE_HZ}]")]
    assert result["samples"] == len(sizes) > 0  # its "samples" are notifications
    # DATA carries 150 value bytes, DATA_PART2 the other 142 of the 292-byte message
    assert sizes[0] == 150 and set(sizes) <= {150, 142}
    assert [c[:2] for c in commands] == [b"\x08\x6c", b"\x01\x0a", b"\x02\x0a"]
