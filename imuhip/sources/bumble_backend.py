"""A bleak backend whose transport is a bumble central on a :class:`bumble.link.LocalLink`.

``BleakScanner(backend=BumbleScanner)`` and ``BleakClient(addr, backend=BumbleClient)`` then run
the real bleak front end over real ATT/GATT traffic (MTU exchange, notifications, disconnects)
against bumble virtual peripherals (:mod:`imuhip.sources.virtual`). The central lives in a
:class:`BumbleHub`; the active hub is chosen with :func:`use_hub` (or the ``bumble_hub=`` keyword,
which bleak forwards to the backend).

Behaviour matches the pitfalls of real stacks on purpose: one LE connect at a time (bumble raises
on a second pending connect, like BlueZ), a disconnected callback only for unrequested
disconnects, notify callbacks get a ``bytearray``, at ATT MTU 23 notifications are cut to 20 bytes.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid as uuidlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bleak.args import SizedBuffer
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakDeviceNotFoundError, BleakError
from bumble import hci
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

__all__ = ["BumbleClient", "BumbleHub", "BumbleScanner", "current_hub", "use_hub"]

log = logging.getLogger(__name__)

_HUB: contextvars.ContextVar[BumbleHub | None] = contextvars.ContextVar("bumble_hub", default=None)


def make_device(link: LocalLink, address: str, name: str = "") -> Device:
    """A powered-off bumble device with its own virtual controller on ``link``."""
    controller = Controller(name or address, link=link, public_address=address)
    return Device(
        name=name or None,
        address=hci.Address(address),
        host=Host(controller, AsyncPipeSink(controller)),
    )


class BumbleHub:
    """One virtual radio: a :class:`LocalLink` and the bumble central that bleak drives.

    Parameters
    ----------
    link : LocalLink, optional
        The link the virtual peripherals are on (a new one by default).
    address : str
        The central's public address.
    att_mtu : int
        The MTU the central requests after connecting (247 like a modern phone; 23: none).
    connect_timeout_s : float
        Bumble's LE connect timeout when bleak passes none.
    """

    def __init__(
        self,
        link: LocalLink | None = None,
        *,
        address: str = "C0:FF:EE:00:00:01",
        att_mtu: int = 247,
        connect_timeout_s: float = 5.0,
    ) -> None:
        self.link = link or LocalLink()
        self.central = make_device(self.link, address, "imuhip-host")
        self.att_mtu = int(att_mtu)
        self.connect_timeout_s = float(connect_timeout_s)
        self._powered = False
        self.connecting = False  # one LE connect at a time
        self._scanners: set[BumbleScanner] = set()
        self._scan_refs = 0
        self.central.on("advertisement", self._on_advertisement)
        #: the radio's view of a GATT write: called with the peer's address when the central
        #: sends one (a simulation stamps its air time there; see VirtualClock.write_sent)
        self.on_write: Callable[[str], None] | None = None

    async def power_on(self) -> None:
        """Power the central on (idempotent)."""
        if not self._powered:
            await self.central.power_on()
            self._powered = True

    def _on_advertisement(self, adv: Advertisement) -> None:
        for scanner in list(self._scanners):
            scanner.on_bumble_advertisement(adv)

    def is_advertising(self, address: str) -> bool:
        """A peripheral on the link currently advertises (connectable) at ``address``.

        Checked before a connect: bumble's virtual controller does not recover from a cancelled
        LE connect (later connects fail with COMMAND_DISALLOWED), so an absent device is reported
        at once, the way a real stack reports it after its scan timeout.
        """
        target = hci.Address(address)
        for c in self.link.controllers:
            if target not in (c.public_address, c.random_address):
                continue
            if getattr(c.le_legacy_advertiser, "enabled", False):
                return True
            if any(getattr(a, "enabled", False) for a in c.advertising_sets.values()):
                return True
        return False

    async def add_scanner(self, scanner: BumbleScanner) -> None:
        """Start delivering advertisements to ``scanner``."""
        await self.power_on()
        self._scanners.add(scanner)
        if not self.central.is_scanning:
            await self.central.start_scanning(filter_duplicates=False)

    async def remove_scanner(self, scanner: BumbleScanner) -> None:
        """Stop delivering advertisements to ``scanner``."""
        self._scanners.discard(scanner)
        if not self._scanners and self.central.is_scanning:
            await self.central.stop_scanning()


def current_hub() -> BumbleHub:
    """The hub set by :func:`use_hub`; ``BleakError`` if none."""
    hub = _HUB.get()
    if hub is None:
        raise BleakError("no bumble hub is active: use imuhip.sources.bumble_backend.use_hub()")
    return hub


@contextmanager
def use_hub(hub: BumbleHub) -> Iterator[BumbleHub]:
    """Make ``hub`` the transport of every bumble-backed scanner and client in this context."""
    token = _HUB.set(hub)
    try:
        yield hub
    finally:
        _HUB.reset(token)


def _hub_from(kwargs: dict[str, Any]) -> BumbleHub:
    hub = kwargs.get("bumble_hub")
    return hub if isinstance(hub, BumbleHub) else current_hub()


def _uuid_str(u: Any) -> str:
    """bumble UUID -> bleak's lower-case 128-bit string."""
    s = u.to_hex_str() if hasattr(u, "to_hex_str") else str(u)
    s = s.replace("-", "").lower()
    if len(s) == 4:
        return f"0000{s}-0000-1000-8000-00805f9b34fb"
    return str(uuidlib.UUID(s))


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend fed by the hub's bumble central."""

    def __init__(
        self,
        detection_callback: Any = None,
        service_uuids: list[str] | None = None,
        scanning_mode: str = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._hub = _hub_from(kwargs)
        self._scanning_mode = scanning_mode

    async def start(self) -> None:
        """Start scanning (clears :attr:`seen_devices`)."""
        self.seen_devices = {}
        await self._hub.add_scanner(self)

    async def stop(self) -> None:
        """Stop scanning."""
        await self._hub.remove_scanner(self)

    def on_bumble_advertisement(self, adv: Advertisement) -> None:
        """Translate one bumble advertisement report into bleak's types."""
        data = adv.data
        uuids: list[str] = []
        for tag in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            for group in data.get_all(tag):
                uuids.extend(_uuid_str(u) for u in group)
        if not self.is_allowed_uuid(uuids):
            return
        name_raw = data.get(AdvertisingData.COMPLETE_LOCAL_NAME) or data.get(
            AdvertisingData.SHORTENED_LOCAL_NAME
        )
        name = name_raw.decode() if isinstance(name_raw, bytes) else name_raw
        service_data: dict[str, bytes] = {}
        for item in data.get_all(AdvertisingData.SERVICE_DATA_16_BIT_UUID):
            u, payload = item
            service_data[_uuid_str(u)] = bytes(payload)
        manufacturer: dict[int, bytes] = {}
        for mitem in data.get_all(AdvertisingData.MANUFACTURER_SPECIFIC_DATA):
            company, mpayload = mitem
            manufacturer[int(company)] = bytes(mpayload)
        address = str(adv.address).split("/")[0]
        tx = adv.tx_power if adv.tx_power != Advertisement.TX_POWER_NOT_AVAILABLE else None
        ad = AdvertisementData(
            local_name=name,
            manufacturer_data=manufacturer,
            service_data=service_data,
            service_uuids=uuids,
            tx_power=tx,
            rssi=int(adv.rssi),
            platform_data=(adv,),
        )
        device = self.create_or_update_device(address, address, name, {"bumble_hub": self._hub}, ad)
        self.call_detection_callbacks(device, ad)


class BumbleClient(BaseBleakClient):
    """bleak client backend: a GATT client over one bumble LE connection."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        details = getattr(address_or_ble_device, "details", None)
        hub = details.get("bumble_hub") if isinstance(details, dict) else None
        self._hub = hub if isinstance(hub, BumbleHub) else _hub_from(kwargs)
        self._name = getattr(address_or_ble_device, "name", None) or self.address
        self._conn: Connection | None = None
        self._peer: Peer | None = None
        self._requested_disconnect = False
        self._setup_task: asyncio.Future[None] | None = None
        self._ops: set[asyncio.Future[Any]] = set()

    @property
    def name(self) -> str:
        """Advertised name, else the address."""
        return str(self._name)

    @property
    def mtu_size(self) -> int:
        """The negotiated ATT MTU."""
        return int(self._conn.att_mtu) if self._conn is not None else 23

    @property
    def is_connected(self) -> bool:
        """The LE link is up."""
        return self._conn is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:  # noqa: ARG002 - bleak interface
        """Connect, exchange MTU, discover the whole GATT table."""
        hub = self._hub
        await hub.power_on()
        timeout = float(kwargs.get("timeout", self._timeout) or hub.connect_timeout_s)
        self._requested_disconnect = False
        if hub.connecting:
            # like BlueZ ("Operation already in progress"); letting bumble see two pending
            # connects corrupts the state of the first one, so refuse here, synchronously
            raise BleakError(f"{self.address}: another connection attempt is in progress")
        if not hub.is_advertising(self.address):
            # a plain BleakError: bleak-retry-connector then backs off briefly (0.1 s) instead
            # of assuming exhausted connection slots (4 s per attempt)
            raise BleakError(f"{self.address} is not advertising (out of range or busy)")
        hub.connecting = True
        try:
            conn = await hub.central.connect(
                hci.Address(self.address), timeout=min(timeout, hub.connect_timeout_s)
            )
        except TimeoutError as err:
            raise BleakDeviceNotFoundError(
                self.address, f"Device with address {self.address} was not found"
            ) from err
        except Exception as err:
            raise BleakError(f"connection to {self.address} failed: {err}") from err
        finally:
            hub.connecting = False
        self._conn = conn
        conn.on("disconnection", self._on_disconnection)
        setup = asyncio.ensure_future(
            asyncio.wait_for(self._setup(conn), min(timeout, hub.connect_timeout_s))
        )
        self._setup_task = setup
        try:
            await asyncio.wait({setup})
        finally:
            self._setup_task = None
            if not setup.done():
                setup.cancel()
        if setup.cancelled() or self._conn is None:
            raise BleakError(f"{self.address}: disconnected during connect")
        exc = setup.exception()
        if exc is not None:
            await self.disconnect()  # do not leave a half-set-up link behind
            raise BleakError(f"{self.address}: service discovery failed: {exc}") from exc

    async def _setup(self, conn: Connection) -> None:
        peer = Peer(conn)
        if self._hub.att_mtu > 23:
            await peer.request_mtu(self._hub.att_mtu)
        await peer.discover_services()
        for svc in peer.services:
            await svc.discover_characteristics()
            for ch in svc.characteristics:
                await ch.discover_descriptors()
        self._peer = peer
        self.services = self._build_services(peer)

    def _build_services(self, peer: Peer) -> BleakGATTServiceCollection:
        coll = BleakGATTServiceCollection()
        for svc in peer.services:
            bsvc = BleakGATTService(svc, svc.handle, _uuid_str(svc.uuid))
            coll.add_service(bsvc)
            for ch in svc.characteristics:
                props = [
                    name
                    for flag, name in (
                        (0x02, "read"),
                        (0x04, "write-without-response"),
                        (0x08, "write"),
                        (0x10, "notify"),
                        (0x20, "indicate"),
                    )
                    if int(ch.properties) & flag
                ]
                bch = BleakGATTCharacteristic(
                    ch,
                    ch.handle,
                    _uuid_str(ch.uuid),
                    props,  # type: ignore[arg-type]
                    lambda: self.mtu_size - 3,
                    bsvc,
                )
                coll.add_characteristic(bch)
                for d in ch.descriptors:
                    coll.add_descriptor(BleakGATTDescriptor(d, d.handle, _uuid_str(d.type), bch))
        return coll

    def _on_disconnection(self, reason: int) -> None:
        self._conn = None
        self._peer = None
        for op in list(self._ops):
            op.cancel()
        setup = self._setup_task
        if setup is not None and not setup.done():
            setup.cancel()  # a pending ATT request would otherwise wait for its 30 s timeout
            return
        if not self._requested_disconnect and self._disconnected_callback is not None:
            log.debug("%s: link lost (reason 0x%02x)", self.address, reason)
            self._disconnected_callback()

    async def disconnect(self) -> None:
        """Disconnect (no disconnected callback: it was requested)."""
        self._requested_disconnect = True
        conn = self._conn
        if conn is None:
            return
        try:
            await conn.disconnect()
        except Exception as err:
            log.debug("%s: disconnect: %s", self.address, err)
        self._conn = None
        self._peer = None

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        """Pairing is not part of the imuhip protocol."""
        raise NotImplementedError("pairing is not supported by the bumble test backend")

    async def unpair(self) -> None:
        """Pairing is not part of the imuhip protocol."""
        raise NotImplementedError("pairing is not supported by the bumble test backend")

    async def _guard(self, what: str, coro: Any) -> Any:
        """Run one GATT operation; fail it at once if the link drops (bumble would wait 30 s)."""
        task = asyncio.ensure_future(coro)
        self._ops.add(task)
        try:
            await asyncio.wait({task})
        finally:
            self._ops.discard(task)
            if not task.done():
                task.cancel()
        if task.cancelled():
            raise BleakError(f"{self.address}: {what}: disconnected")
        err = task.exception()
        if err is not None:
            raise BleakError(f"{self.address}: {what} failed: {err}") from err
        return task.result()

    def _require_peer(self) -> Peer:
        if self._peer is None:
            raise BleakError(f"{self.address}: not connected")
        return self._peer

    async def read_gatt_char(
        self,
        characteristic: BleakGATTCharacteristic,
        *,
        use_cached: bool = False,  # noqa: ARG002 - bleak interface
        **kwargs: Any,  # noqa: ARG002 - bleak interface
    ) -> bytearray:
        """Read a characteristic value."""
        peer = self._require_peer()
        value = await self._guard(
            f"read {characteristic.uuid}", peer.read_value(characteristic.obj)
        )
        return bytearray(value)

    async def read_gatt_descriptor(
        self,
        descriptor: BleakGATTDescriptor,
        *,
        use_cached: bool = False,  # noqa: ARG002 - bleak interface
        **kwargs: Any,  # noqa: ARG002 - bleak interface
    ) -> bytearray:
        """Read a descriptor value."""
        peer = self._require_peer()
        value = await self._guard(f"read {descriptor.uuid}", peer.read_value(descriptor.obj))
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        """Write a characteristic (with or without response)."""
        peer = self._require_peer()
        if self._hub.on_write is not None:
            self._hub.on_write(str(self.address).upper())
        await self._guard(
            f"write {characteristic.uuid}",
            peer.write_value(characteristic.obj, bytes(data), with_response=response),
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        """Write a descriptor."""
        peer = self._require_peer()
        await self._guard(
            f"write {descriptor.uuid}",
            peer.write_value(descriptor.obj, bytes(data), with_response=True),
        )

    async def start_notify(
        self,
        characteristic: BleakGATTCharacteristic,
        callback: NotifyCallback,
        **kwargs: Any,  # noqa: ARG002 - bleak interface
    ) -> None:
        """Subscribe; ``callback`` receives a ``bytearray`` per notification."""
        peer = self._require_peer()

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        await self._guard(
            f"subscribe {characteristic.uuid}",
            peer.subscribe(characteristic.obj, deliver, prefer_notify=True),
        )

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        """Unsubscribe."""
        peer = self._require_peer()
        await self._guard(
            f"unsubscribe {characteristic.uuid}", peer.unsubscribe(characteristic.obj)
        )
