"""Plumbing shared by the bumble virtual peripherals (imuhip sensor, Movesense).

Both virtual devices advertise with one HCI command at a time, notify a data characteristic,
spawn background tasks that must stay referenced, and on close drop the link and stop
advertising. The protocol-specific parts (GATT table, commands, streaming, fault injection) stay
in :mod:`imuhip.sources.virtual.sensor` and :mod:`imuhip.sources.movesense.virtual`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from bumble import gatt
from bumble.device import Connection, Device

__all__ = ["BumblePeripheral"]


class BumblePeripheral:
    """Base of a bumble virtual peripheral; subclasses set the attributes below in ``__init__``.

    Attributes
    ----------
    device : bumble.device.Device
    name : str
        For log messages.
    data_char : bumble.gatt.Characteristic
        The characteristic :meth:`_notify` notifies.
    _conn : Connection or None
        The current link (None while disconnected).
    _closing : bool
    _adv_lock : asyncio.Lock
        One HCI advertising command at a time.
    _tasks : set of asyncio.Task
        Background tasks kept referenced until done (a subclass may share one set per class).
    """

    device: Device
    name: str
    data_char: gatt.Characteristic[Any]
    _conn: Connection | None
    _closing: bool
    _adv_lock: asyncio.Lock
    _tasks: set[asyncio.Task[Any]]

    def _log(self) -> logging.Logger:
        """The logger of the subclass's module (messages keep their origin)."""
        return logging.getLogger(type(self).__module__)

    def advertising_data(self) -> bytes:
        """The advertising payload (subclasses)."""
        raise NotImplementedError

    async def start(self) -> None:
        """Power on and advertise."""
        await self.device.power_on()
        await self._advertise()

    async def _advertise(self) -> None:
        async with self._adv_lock:  # one HCI advertising command at a time
            if self._closing or self.device.is_advertising or self._conn is not None:
                return
            await self.device.start_advertising(
                advertising_data=self.advertising_data(),
                advertising_interval_min=20,
                advertising_interval_max=20,
                auto_restart=False,
            )

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        tasks = self._tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        return task

    async def _notify(self, conn: Connection, value: bytes) -> None:
        try:
            await self.device.notify_subscriber(conn, self.data_char, value)
        except Exception as err:
            self._log().debug("%s: notify failed: %s", self.name, err)

    async def _drop_link_and_stop_advertising(self) -> None:
        """The end of ``close()``: disconnect the current link, stop advertising."""
        if self._conn is not None:
            try:
                await self._conn.disconnect()
            except Exception as err:
                self._log().debug("%s: disconnect on close failed: %s", self.name, err)
        async with self._adv_lock:
            try:
                await self.device.stop_advertising()
            except Exception as err:
                self._log().debug("%s: stop advertising failed: %s", self.name, err)
