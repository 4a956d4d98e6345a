"""TIME_SYNC requests in flight together are paired with their replies by token."""

from __future__ import annotations

import asyncio
import struct

from imuhip.ingest import protocol
from imuhip.sources.ble.driver import _Control


class _Client:
    address = "F0:00:00:00:00:01"

    def __init__(self) -> None:
        self.written: list[bytes] = []

    async def write_gatt_char(self, _uuid: str, data: bytes, response: bool) -> None:
        self.written.append(bytes(data))


def _reply(token: int | None, t_dev_us: int = 0, status: int = protocol.STATUS_OK) -> bytearray:
    payload = b"" if token is None else bytes([token]) + struct.pack("<I", t_dev_us)
    return bytearray(protocol.control_response(protocol.CMD_TIME_SYNC, status, payload))


def test_replies_find_their_requests_and_a_late_one_takes_none() -> None:
    async def run() -> list[tuple[int, bytes, int]]:
        ctl, client = _Control(timeout_s=1.0, clock_ns=lambda: 7), _Client()
        a = asyncio.ensure_future(ctl.request(client, protocol.cmd_time_sync(1), response=False))
        b = asyncio.ensure_future(ctl.request(client, protocol.cmd_time_sync(2), response=False))
        c = asyncio.ensure_future(ctl.request(client, protocol.cmd_time_sync(3), response=False))
        await asyncio.sleep(0)
        assert len(client.written) == 3
        ctl.on_notify(None, _reply(9, 111))  # late: token 9 is no longer pending
        assert not (a.done() or b.done() or c.done())
        ctl.on_notify(None, _reply(2, 222))  # out of order
        ctl.on_notify(None, _reply(None, status=protocol.STATUS_BAD_COMMAND))  # no token: oldest
        ctl.on_notify(None, _reply(3, 333))
        return [await a, await b, await c]

    a, b, c = asyncio.run(run())
    assert a == (protocol.STATUS_BAD_COMMAND, b"", 7)
    assert b[1][0] == 2 and struct.unpack("<I", b[1][1:])[0] == 222
    assert c[1][0] == 3 and struct.unpack("<I", c[1][1:])[0] == 333
