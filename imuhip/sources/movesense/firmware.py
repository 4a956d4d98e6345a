"""Movesense firmware versions in the field and what each does on the GSP link.

Two families serve the GATT SensorData Protocol (see ``docs/movesense.md`` for the sources):

- the **sample firmware** ``gatt_sensordata_app`` (movesense-device-lib 2.2.x): answers HELLO with
  ``b"Hello"``, never answers SUBSCRIBE or UNSUBSCRIBE (only 507 when every subscription slot is
  taken, written big-endian ``01 FB``), puts a whole value into one DATA notification up to 2.2.0
  and splits a longer value into DATA (first 150 value bytes) + DATA_PART2 from 2.2.1 on;
- the **default firmware** from 2.3.0 on: HELLO is answered with a protocol version and the
  device strings (serial, product, DFU address, app name, app version), every command gets a
  COMMAND_RESULT with a little-endian status (SUBSCRIBE 200, PUT_UTCTIME 200, ...), and the IMU9
  timestamps reflect samples the sensor lost internally (before 2.3.0 they are counted from the
  samples delivered, so an internal loss is invisible).

This module is pure (no BLE): version parsing, the HELLO answers of both families, and the
per-version facts the virtual sensor and the driver share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal

from imuhip.errors import ProtocolError

__all__ = [
    "DEFAULT_2_3",
    "FIRMWARES",
    "MIN_FIRMWARE",
    "MIN_FIRMWARE_PART2",
    "SAMPLE_2_2_0",
    "SAMPLE_2_2_1",
    "Firmware",
    "HelloInfo",
    "encode_hello_info",
    "parse_hello",
    "parse_version",
    "samples_per_message",
]

Version = tuple[int, int, int]

MIN_FIRMWARE: Final[Version] = (2, 2, 0)
"""Oldest firmware imuhip talks to (the first with the GSP sample as published)."""
MIN_FIRMWARE_PART2: Final[Version] = (2, 2, 1)
"""Oldest firmware that sends DATA_PART2: needed for any value over 150 bytes (IMU9 >= 104 Hz)."""
TIMESTAMPS_REFLECT_LOSS: Final[Version] = (2, 3, 0)
PART1_VALUE_BYTES: Final = 150  # value bytes in DATA; the rest goes in DATA_PART2


def samples_per_message(rate_hz: int) -> int:
    """IMU9 samples per message: 4 up to 52 Hz (a captured 52 Hz message holds 4), else 8.

    8 at 104 Hz is the official sample client's layout; above 104 Hz no public source gives the
    size, and 8 is the most that fits DATA + DATA_PART2 (4 + 36 x 8 = 292 value bytes).
    """
    return 4 if rate_hz <= 52 else 8


_VERSION_RE = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?")


def parse_version(text: str) -> Version | None:
    """``"2.2.1"`` / ``"2.3.0.abc"`` / ``"v2.3"`` -> ``(2, 2, 1)`` ...; ``None`` if no version."""
    m = _VERSION_RE.search(text or "")
    if m is None:
        return None
    return int(m.group(1)), int(m.group(2)), int(m.group(3) or 0)


@dataclass(frozen=True, slots=True)
class Firmware:
    """What a Movesense firmware does on the GSP link.

    ``kind``: ``"sample"`` (gatt_sensordata_app) or ``"default"`` (the default firmware).
    """

    kind: Literal["sample", "default"]
    version: str

    def __post_init__(self) -> None:
        if self.kind not in ("sample", "default"):
            raise ValueError(f"firmware kind must be 'sample' or 'default', got {self.kind!r}")
        if parse_version(self.version) is None:
            raise ValueError(f"firmware version must look like '2.2.1', got {self.version!r}")

    @property
    def version_tuple(self) -> Version:
        """``(major, minor, patch)``."""
        v = parse_version(self.version)
        assert v is not None  # checked in __post_init__
        return v

    @property
    def sends_part2(self) -> bool:
        """DATA_PART2 exists (from 2.2.1); before, a value is one notification, cut at MTU - 3."""
        return self.version_tuple >= MIN_FIRMWARE_PART2

    @property
    def answers_commands(self) -> bool:
        """Every command gets a COMMAND_RESULT (default firmware); the sample answers HELLO only."""
        return self.kind == "default"

    @property
    def timestamps_reflect_loss(self) -> bool:
        """IMU9 timestamps jump over samples lost inside the sensor (from 2.3.0)."""
        return self.version_tuple >= TIMESTAMPS_REFLECT_LOSS

    @property
    def status_big_endian(self) -> bool:
        """The sample firmware writes its one status (507) as ``01 FB``; the default LE."""
        return self.kind == "sample"


SAMPLE_2_2_0: Final = Firmware("sample", "2.2.0")
SAMPLE_2_2_1: Final = Firmware("sample", "2.2.1")
DEFAULT_2_3: Final = Firmware("default", "2.3.0")
FIRMWARES: Final = {
    "sample-2.2.0": SAMPLE_2_2_0,
    "sample-2.2.1": SAMPLE_2_2_1,
    "default-2.3": DEFAULT_2_3,
}


@dataclass(frozen=True, slots=True)
class HelloInfo:
    """The HELLO answer of the default firmware (empty strings for the sample's ``b"Hello"``)."""

    kind: Literal["sample", "default"]
    protocol_version: int = 0
    serial: str = ""
    product: str = ""
    dfu_mac: str = ""
    app_name: str = ""
    app_version: str = ""


def encode_hello_info(info: HelloInfo) -> bytes:
    """HELLO answer data of the default firmware: protocol u8, then NUL-terminated strings."""
    strings = (info.serial, info.product, info.dfu_mac, info.app_name, info.app_version)
    return bytes([info.protocol_version]) + b"".join(s.encode() + b"\0" for s in strings)


def parse_hello(data: bytes) -> HelloInfo:
    """Classify the data of a HELLO COMMAND_RESULT (after ``[1, ref]``).

    ``b"Hello"``: the sample firmware. A protocol byte and NUL-terminated strings: the default
    firmware. ``ProtocolError`` for anything else (a device that is not a Movesense GSP server).
    """
    data = bytes(data)
    if data == b"Hello":
        return HelloInfo("sample")
    if len(data) >= 2 and data.endswith(b"\0"):
        parts = data[1:-1].decode("utf-8", errors="replace").split("\0")
        parts += [""] * (5 - len(parts))
        return HelloInfo("default", data[0], *parts[:5])
    raise ProtocolError(f"unrecognised GSP HELLO answer {data[:24].hex()}", "flags")
