"""The GATT table and advertising payload of a virtual imuhip sensor.

The imuhip service (data: notify; control: write + notify; info: read), the Battery Service
(level) and the Device Information Service (model, serial, firmware); the advertisement carries
the name, the imuhip service UUID and the battery level (service data 0x180F). The behaviour
behind the characteristics is :class:`~imuhip.sources.virtual.sensor.VirtualSensor`'s.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from bumble import gatt
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device
from bumble.profiles.battery_service import BatteryService
from bumble.profiles.device_information_service import DeviceInformationService

from imuhip.ingest import protocol

__all__ = ["add_imuhip_services", "advertising_payload"]

_BATTERY_UUID16 = 0x180F

Chars = tuple[gatt.Characteristic[bytes], gatt.Characteristic[bytes], gatt.Characteristic[bytes]]


def add_imuhip_services(
    device: Device,
    *,
    serial: str,
    battery_pct: Callable[[], int],
    max_mtu: int,
    on_control_write: Callable[[Connection, bytes], None],
    read_info: Callable[[Connection], bytes],
) -> Chars:
    """Add the services to ``device``; return the data, control and info characteristics.

    ``battery_pct()`` is read on every Battery Level read; ``max_mtu`` is the largest ATT MTU
    the device negotiates.
    """
    props = gatt.Characteristic.Properties
    data_char = gatt.Characteristic(
        protocol.DATA_CHAR_UUID, props.NOTIFY, gatt.Characteristic.READABLE, b""
    )
    control_char: gatt.Characteristic[bytes] = gatt.Characteristic(
        protocol.CONTROL_CHAR_UUID,
        props.WRITE | props.WRITE_WITHOUT_RESPONSE | props.NOTIFY,
        gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
        gatt.CharacteristicValue(read=lambda _c: b"", write=on_control_write),  # type: ignore[arg-type]
    )
    info_char: gatt.Characteristic[bytes] = gatt.Characteristic(
        protocol.INFO_CHAR_UUID,
        props.READ,
        gatt.Characteristic.READABLE,
        gatt.CharacteristicValue(read=read_info),  # type: ignore[arg-type]
    )
    device.add_service(gatt.Service(protocol.SERVICE_UUID, [data_char, control_char, info_char]))
    device.add_service(BatteryService(lambda _c: battery_pct()))
    device.add_service(
        DeviceInformationService(
            manufacturer_name="imuhip virtual",
            model_number="imuhip-v1",
            serial_number=serial,
            firmware_revision="1.0.0-virt",
        )
    )
    device.gatt_server.max_mtu = max_mtu
    return data_char, control_char, info_char


def advertising_payload(name: str, battery_pct: int) -> bytes:
    """Name, the imuhip service UUID and the battery level as service data."""
    return bytes(
        AdvertisingData(
            [
                (AdvertisingData.FLAGS, bytes([0x06])),
                (
                    AdvertisingData.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
                    bytes(UUID(protocol.SERVICE_UUID)),
                ),
                (
                    AdvertisingData.SERVICE_DATA_16_BIT_UUID,
                    struct.pack("<HB", _BATTERY_UUID16, battery_pct),
                ),
                (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
            ]
        )
    )
