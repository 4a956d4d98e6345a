"""Scanning for nearby imuhip-protocol and Movesense sensors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import BaseBleakScanner
from bleak.exc import BleakError

from imuhip.errors import SensorConnectionError
from imuhip.sources.ble.config import BATTERY_SERVICE_UUID, MOVESENSE_NAME_PREFIX
from imuhip.sources.ble.driver import ImuhipDriver

__all__ = ["ScanResult", "scan"]


@dataclass(frozen=True, slots=True)
class ScanResult:
    """One nearby sensor."""

    address: str
    name: str | None
    rssi_dbm: int
    protocol: str  # "imuhip" or "movesense"
    battery_pct: int | None
    device: BLEDevice = field(compare=False, repr=False)


async def scan(
    timeout_s: float = 3.0,
    *,
    scanner_backend: type[BaseBleakScanner] | None = None,
    **scanner_kwargs: Any,
) -> list[ScanResult]:
    """Nearby imuhip-protocol and Movesense sensors, strongest first."""
    kwargs: dict[str, Any] = dict(scanner_kwargs)
    if scanner_backend is not None:
        kwargs["backend"] = scanner_backend
    try:
        found = await BleakScanner.discover(timeout_s, return_adv=True, **kwargs)
    except FileNotFoundError as err:  # bleak on a machine without BlueZ
        raise SensorConnectionError(
            "no Bluetooth adapter is available here (no BlueZ); try --simulate"
        ) from err
    except BleakError as err:
        raise SensorConnectionError(f"Bluetooth scan failed: {err}") from err
    out = []
    driver = ImuhipDriver()
    for device, adv in found.values():
        name = adv.local_name or device.name
        if driver.recognises(device, adv):
            proto = "imuhip"
        elif name and name.startswith(MOVESENSE_NAME_PREFIX):
            proto = "movesense"
        else:
            continue
        batt = adv.service_data.get(BATTERY_SERVICE_UUID)
        out.append(
            ScanResult(
                address=device.address,
                name=name,
                rssi_dbm=int(adv.rssi),
                protocol=proto,
                battery_pct=int(batt[0]) if batt else None,
                device=device,
            )
        )
    out.sort(key=lambda r: -r.rssi_dbm)
    return out
