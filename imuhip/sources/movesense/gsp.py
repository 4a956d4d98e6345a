"""Movesense GATT SensorData Protocol (GSP v1): constants, commands, IMU9 messages.

Wire format (Movesense ``gatt_sensordata_app`` sample of movesense-device-lib and the GSP
specification, https://www.movesense.com/docs/esw/gatt_sensordata_protocol/):

- GATT service ``34802252-7185-4d5d-b431-630e7050e8f0`` with a *write* characteristic
  ``34800001-...`` (client -> sensor commands) and a *notify* characteristic ``34800002-...``
  (command results and data, sensor -> client).
- Command: ``[command u8, client reference u8 (not 0), command data]``. HELLO = 0 (no data),
  SUBSCRIBE = 1 (data: the resource path in ASCII, e.g. ``"/Meas/IMU9/104"``), UNSUBSCRIBE = 2
  (no data; the reference of the subscription).
- Notification: ``[response u8, reference u8, data]``. COMMAND_RESULT = 1 (data: a 16-bit HTTP-like
  status, or ``b"Hello"`` for HELLO in the sample firmware), DATA = 2 (data: the SBEM-serialised
  resource value), DATA_PART2 = 3 (the continuation of the previous DATA of the same reference when
  the value does not fit one notification: the client concatenates ``part1 + part2[2:]``).
- ``/Meas/IMU9/{rate}`` value: ``Timestamp`` u32 (ms, the sensor's own clock, time of the *first*
  sample), then ``ArrayAcc`` (N x float32 xyz, m/s^2), ``ArrayGyro`` (N x xyz, deg/s),
  ``ArrayMagn`` (N x xyz, uT), little endian; N is implied by the length (36 bytes per sample).
  Sample ``k`` was taken at ``Timestamp + k * 1000 / rate`` ms.

The status of COMMAND_RESULT is read little-endian first (the GSP documentation) and big-endian if
that is not a status code (the sample firmware writes 507 as ``0x01 0xFB``).
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.errors import ProtocolError
from imuhip.types import RawPacket

__all__ = [
    "CMD_GET",
    "CMD_HELLO",
    "CMD_PUT_UTCTIME",
    "CMD_SUBSCRIBE",
    "CMD_UNSUBSCRIBE",
    "COMMAND_CHAR_UUID",
    "DATA_CHAR_UUID",
    "IMU9_RATES_HZ",
    "IMU9_SAMPLE_BYTES",
    "NAME_PREFIX",
    "RESP_COMMAND_RESULT",
    "RESP_DATA",
    "RESP_DATA_PART2",
    "SERVICE_UUID",
    "Imu9Message",
    "cmd_hello",
    "cmd_subscribe",
    "cmd_unsubscribe",
    "command_result",
    "encode_imu9",
    "imu9_path",
    "is_command_result",
    "most_common_sample_count",
    "nearest_imu9_rate",
    "parse_command_result",
    "parse_imu9",
    "parse_imu9_path",
    "split_firmware",
    "split_notifications",
]

SERVICE_UUID: Final = "34802252-7185-4d5d-b431-630e7050e8f0"
COMMAND_CHAR_UUID: Final = "34800001-7185-4d5d-b431-630e7050e8f0"
DATA_CHAR_UUID: Final = "34800002-7185-4d5d-b431-630e7050e8f0"
NAME_PREFIX: Final = "Movesense"

CMD_HELLO: Final = 0
CMD_SUBSCRIBE: Final = 1
CMD_UNSUBSCRIBE: Final = 2
CMD_GET: Final = 4  # default firmware >= 2.3 (sensein/movesense-py); data: path
CMD_PUT_UTCTIME: Final = 8  # default firmware >= 2.3; data: u64 LE microseconds since 1970

RESP_COMMAND_RESULT: Final = 1
RESP_DATA: Final = 2
RESP_DATA_PART2: Final = 3

IMU9_RATES_HZ: Final = (13, 26, 52, 104, 208, 416, 833, 1666)
"""Sample rates of ``/Meas/IMU9/{rate}`` (Movesense API ``meas/imu.yaml``)."""

IMU9_SAMPLE_BYTES: Final = 36  # acc, gyro, magn: 3 x 3 float32
TIMESTAMP_BYTES: Final = 4
HEADER_BYTES: Final = 2  # response code, reference
TIME_MODULUS_MS: Final = 2**32


def nearest_imu9_rate(rate_hz: float) -> int:
    """The IMU9 rate closest to ``rate_hz`` (ties to the higher one): 200 -> 208, 100 -> 104."""
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be a positive number, got {rate_hz}")
    return min(IMU9_RATES_HZ, key=lambda r: (abs(r - rate_hz), -r))


def imu9_path(rate_hz: int) -> str:
    """``/Meas/IMU9/{rate}``; ``ValueError`` for a rate Movesense does not offer."""
    if rate_hz not in IMU9_RATES_HZ:
        raise ValueError(f"IMU9 rate must be one of {IMU9_RATES_HZ}, got {rate_hz}")
    return f"/Meas/IMU9/{rate_hz}"


def parse_imu9_path(path: str) -> int | None:
    """The rate of an IMU9 subscription path, or ``None`` if ``path`` is not one.

    Spelled as the sensor accepts it: ``/Meas/IMU9/104``, ``/meas/imu9/104`` (resource paths are
    case-insensitive on the sensor), with or without the leading ``/`` and a trailing NUL (the
    default-firmware clients NUL-terminate paths).
    """
    parts = path.rstrip("\0").strip().strip("/").split("/")
    if len(parts) != 3 or [p.lower() for p in parts[:2]] != ["meas", "imu9"]:
        return None
    if not parts[2].isdigit() or int(parts[2]) not in IMU9_RATES_HZ:
        return None
    return int(parts[2])


def _check_ref(ref: int) -> None:
    if not (isinstance(ref, int) and 1 <= ref <= 255):
        raise ValueError(f"client reference must be an int in 1..255, got {ref!r}")


def cmd_hello(ref: int) -> bytes:
    """HELLO ``[0, ref]``."""
    _check_ref(ref)
    return bytes([CMD_HELLO, ref])


def cmd_subscribe(ref: int, path: str) -> bytes:
    """SUBSCRIBE ``[1, ref, path...]`` (path ASCII, e.g. ``"/Meas/IMU9/104"``)."""
    _check_ref(ref)
    if not path or not path.isascii():
        raise ValueError(f"path must be a non-empty ASCII resource path, got {path!r}")
    return bytes([CMD_SUBSCRIBE, ref]) + path.encode("ascii")


def cmd_unsubscribe(ref: int) -> bytes:
    """UNSUBSCRIBE ``[2, ref]``."""
    _check_ref(ref)
    return bytes([CMD_UNSUBSCRIBE, ref])


def command_result(ref: int, status: int, data: bytes = b"", *, big_endian: bool = False) -> bytes:
    """COMMAND_RESULT notification ``[1, ref, status u16, data]``.

    Little endian (GSP doc, default firmware); ``big_endian`` as the sample firmware writes 507.
    """
    _check_ref(ref)
    return (
        bytes([RESP_COMMAND_RESULT, ref]) + struct.pack(">H" if big_endian else "<H", status) + data
    )


def is_command_result(value: bytes | bytearray) -> bool:
    """The notification goes to the command path (``[1, ref, ...]``), not the data path: the
    host driver's routing, which the virtual sensor's in-flight count must match."""
    return len(value) >= 2 and value[0] == RESP_COMMAND_RESULT


def parse_command_result(value: bytes) -> tuple[int, int | None, bytes]:
    """``(ref, status, data)`` of a COMMAND_RESULT notification.

    ``status`` is the HTTP-like code (LE, else BE, see the module notes) or ``None`` when the data
    is not a status (e.g. the ``b"Hello"`` answer to HELLO). ``ProtocolError`` if ``value`` is not
    a COMMAND_RESULT.
    """
    value = bytes(value)
    if len(value) < HEADER_BYTES or value[0] != RESP_COMMAND_RESULT:
        raise ProtocolError(f"not a GSP COMMAND_RESULT: {value[:8].hex()}", "flags")
    data = value[HEADER_BYTES:]
    status: int | None = None
    if len(data) >= 2 and data != b"Hello":
        le, be = struct.unpack_from("<H", data)[0], struct.unpack_from(">H", data)[0]
        status = le if 100 <= le <= 599 else (be if 100 <= be <= 599 else None)
    return value[1], status, data


@dataclass(frozen=True, slots=True)
class Imu9Message:
    """One decoded ``/Meas/IMU9`` value (units as sent: m/s^2, deg/s, uT; sensor frame).

    ``acc_m_s2``, ``gyr_dps``, ``mag_ut`` are ``(n, 3)`` float64 (from float32).
    """

    timestamp_ms: int
    acc_m_s2: npt.NDArray[np.float64]
    gyr_dps: npt.NDArray[np.float64]
    mag_ut: npt.NDArray[np.float64]

    @property
    def n(self) -> int:
        """Samples in the message."""
        return len(self.acc_m_s2)


def encode_imu9(
    timestamp_ms: int,
    acc_m_s2: npt.ArrayLike,
    gyr_dps: npt.ArrayLike,
    mag_ut: npt.ArrayLike,
) -> bytes:
    """The ``/Meas/IMU9`` value bytes (no GSP header): u32 timestamp, then the three arrays.

    Parameters
    ----------
    timestamp_ms : int
        Device time of the first sample, ms (wrapped to u32).
    acc_m_s2, gyr_dps, mag_ut : (n, 3) array_like
        Stored as float32.
    """
    arrays = [np.asarray(a, np.float64) for a in (acc_m_s2, gyr_dps, mag_ut)]
    n = len(arrays[0])
    for name, a in zip(("acc_m_s2", "gyr_dps", "mag_ut"), arrays, strict=True):
        if a.shape != (n, 3):
            raise ValueError(f"{name} must have shape ({n}, 3), got {a.shape}")
    if n < 1:
        raise ValueError("an IMU9 message needs at least one sample")
    body = b"".join(np.ascontiguousarray(a, "<f4").tobytes() for a in arrays)
    return struct.pack("<I", int(timestamp_ms) % TIME_MODULUS_MS) + body


def parse_imu9(value: bytes) -> Imu9Message:
    """Decode a reassembled ``/Meas/IMU9`` value (no GSP header).

    Raises
    ------
    ProtocolError
        ``"length"`` if the length is not ``4 + 36 n`` with ``n >= 1``; ``"value"`` if a number is
        not finite.
    """
    value = bytes(value)
    body = len(value) - TIMESTAMP_BYTES
    if body < IMU9_SAMPLE_BYTES or body % IMU9_SAMPLE_BYTES:
        raise ProtocolError(
            f"IMU9 value of {len(value)} bytes is not 4 + 36 n bytes (n >= 1)", "length"
        )
    n = body // IMU9_SAMPLE_BYTES
    (ts,) = struct.unpack_from("<I", value, 0)
    f = np.frombuffer(value, "<f4", offset=TIMESTAMP_BYTES).astype(np.float64).reshape(3, n, 3)
    if not np.all(np.isfinite(f)):
        raise ProtocolError("IMU9 value holds a non-finite number", "value")
    return Imu9Message(int(ts), f[0], f[1], f[2])


def split_firmware(ref: int, value: bytes, part1_value_bytes: int = 150) -> list[bytes]:
    """The notifications the firmware (>= 2.2.1) sends for one value, whatever the MTU.

    ``[DATA, ref] + value[:150]`` and, for a longer value, ``[DATA_PART2, ref] + value[150:]``.
    """
    _check_ref(ref)
    value = bytes(value)
    first = [bytes([RESP_DATA, ref]) + value[:part1_value_bytes]]
    if len(value) <= part1_value_bytes:
        return first
    return [*first, bytes([RESP_DATA_PART2, ref]) + value[part1_value_bytes:]]


def split_notifications(ref: int, value: bytes, max_len: int) -> list[bytes]:
    """Notifications of at most ``max_len`` bytes each for one value (a generic GSP sender).

    ``[DATA, ref] + value`` if it fits ``max_len`` (= ATT MTU - 3); otherwise the first ``max_len``
    bytes as DATA and ``[DATA_PART2, ref] + rest``. ``ValueError`` if two do not suffice. (The
    Movesense firmware splits at a fixed 150 value bytes instead: :func:`split_firmware`.)
    """
    _check_ref(ref)
    msg = bytes([RESP_DATA, ref]) + bytes(value)
    if len(msg) <= max_len:
        return [msg]
    rest = bytes([RESP_DATA_PART2, ref]) + msg[max_len:]
    if len(rest) > max_len or max_len <= HEADER_BYTES:
        raise ValueError(
            f"a {len(value)}-byte value does not fit two notifications of {max_len} bytes"
        )
    return [msg[:max_len], rest]


def most_common_sample_count(packets: Sequence[RawPacket]) -> int | None:
    """Most common sample count of the messages (pairs preferred), from lengths only."""
    pairs: Counter[int] = Counter()
    lone: Counter[int] = Counter()
    prev: bytes | None = None
    for p in packets:
        b = bytes(p.payload)
        if len(b) >= HEADER_BYTES and b[0] == RESP_DATA_PART2 and prev is not None:
            if prev[1] == b[1]:
                pairs[len(prev) + len(b) - 2 * HEADER_BYTES] += 1
                lone[len(prev) - HEADER_BYTES] -= 1
            prev = None
            continue
        if len(b) >= HEADER_BYTES and b[0] == RESP_DATA:
            lone[len(b) - HEADER_BYTES] += 1
            prev = b
        else:
            prev = None
    counts = pairs if pairs else lone
    for length, c in counts.most_common():
        body = length - TIMESTAMP_BYTES
        if c > 0 and body >= IMU9_SAMPLE_BYTES and body % IMU9_SAMPLE_BYTES == 0:
            return body // IMU9_SAMPLE_BYTES
    return None
