"""The imuhip sensor protocol, version 1: layouts, constants and the Python reference encoder.

``firmware_protocol/SPEC.md`` is the normative text; this module mirrors it byte for byte and
``firmware_protocol/vectors/`` holds the vectors both this encoder and the C encoder must produce.

Data packet (notification on the data characteristic), little-endian::

    off  size  field
    0    u8    version            = 1
    1    u8    flags              bit0 MAG (9 channels, else 6), bit1 SATURATED,
                                  bit2 CLOCK_RESYNC, bits 3-7 reserved (0)
    2    u16   seq                packet counter, +1 per packet, wraps 65535 -> 0
    4    u32   t_first_us         device time of the first sample, µs, wraps at 2**32
    8    u8    n                  samples in this packet, 1..MAX_SAMPLES
    9    i16[] samples            n x ch, per sample: acc xyz, gyr xyz[, mag xyz] (raw counts)
    9+2*ch*n u16 crc              CRC-16/CCITT-FALSE over bytes [0, 9+2*ch*n)

Length = 11 + 2*ch*n. Sample k of a packet was taken at ``t_first_us + k * 1e6 / rate_hz``.
"""

from __future__ import annotations

import binascii
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.conventions import GRAVITY_M_S2
from imuhip.errors import ProtocolError

__all__ = [
    "CONTROL_CHAR_UUID",
    "DATA_CHAR_UUID",
    "HEADER_LEN",
    "INFO_CHAR_UUID",
    "PROTOCOL_VERSION",
    "SERVICE_UUID",
    "DeviceInfo",
    "PacketHeader",
    "crc16",
    "encode_packet",
    "max_samples_for_mtu",
    "parse_header",
    "samples_per_packet",
]

PROTOCOL_VERSION: Final = 1

SERVICE_UUID: Final = "8e7f1a00-4b2c-4d5e-9f60-1a2b3c4d5e6f"
DATA_CHAR_UUID: Final = "8e7f1a01-4b2c-4d5e-9f60-1a2b3c4d5e6f"
CONTROL_CHAR_UUID: Final = "8e7f1a02-4b2c-4d5e-9f60-1a2b3c4d5e6f"
INFO_CHAR_UUID: Final = "8e7f1a03-4b2c-4d5e-9f60-1a2b3c4d5e6f"

FLAG_MAG: Final = 0x01
FLAG_SATURATED: Final = 0x02
FLAG_CLOCK_RESYNC: Final = 0x04
FLAGS_RESERVED_MASK: Final = 0xF8

HEADER_LEN: Final = 9
CRC_LEN: Final = 2
OVERHEAD: Final = HEADER_LEN + CRC_LEN
MAX_SAMPLES: Final = 32
SEQ_MODULUS: Final = 1 << 16
TIME_MODULUS_US: Final = 1 << 32
ATT_HEADER_LEN: Final = 3  # opcode + handle of a Handle Value Notification
LATENCY_BUDGET_S: Final = 0.05  # a packet leaves at most every 50 ms at any rate

RATES_HZ: Final = (50, 100, 200, 400)
ACC_RANGES_G: Final = (2, 4, 8, 16)
GYR_RANGES_DPS: Final = (250, 500, 1000, 2000)
MAG_LSB_UT: Final = 0.1  # fixed: ±3276.7 µT


def acc_lsb_m_s2(range_g: float) -> float:
    """Accelerometer scale factor (m/s² per count) for a full-scale range of ±``range_g`` g."""
    return float(range_g) * GRAVITY_M_S2 / 32768.0


def gyr_lsb_rad_s(range_dps: float) -> float:
    """Gyroscope scale factor (rad/s per count) for a full-scale range of ±``range_dps`` °/s."""
    return float(range_dps) * np.pi / 180.0 / 32768.0


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xor-out)."""
    return binascii.crc_hqx(data, 0xFFFF)


def channels(has_mag: bool) -> int:
    """int16 channels per sample: 9 with magnetometer, else 6."""
    return 9 if has_mag else 6


def packet_len(n: int, has_mag: bool) -> int:
    """Bytes in a data packet carrying ``n`` samples."""
    return OVERHEAD + 2 * channels(has_mag) * n


def max_samples_for_mtu(att_mtu: int, has_mag: bool) -> int:
    """Samples that fit one notification at ``att_mtu`` (0 means streaming must be refused).

    MTU 23 -> 0 (6 or 9 ch); MTU 185 -> 14 (6 ch) / 9 (9 ch); MTU 247 -> 19 / 12.
    """
    room = att_mtu - ATT_HEADER_LEN - OVERHEAD
    return max(0, min(MAX_SAMPLES, room // (2 * channels(has_mag))))


def samples_per_packet(att_mtu: int, rate_hz: float, has_mag: bool) -> int:
    """How a sensor chooses n: as many as fit, but no more than 50 ms of samples (at least 1)."""
    fit = max_samples_for_mtu(att_mtu, has_mag)
    if fit == 0:
        return 0
    return max(1, min(fit, int(rate_hz * LATENCY_BUDGET_S)))


@dataclass(frozen=True, slots=True)
class PacketHeader:
    """The fixed fields of a data packet."""

    version: int
    flags: int
    seq: int
    t_first_us: int
    n: int

    @property
    def has_mag(self) -> bool:
        """The packet carries magnetometer channels."""
        return bool(self.flags & FLAG_MAG)


_HEADER = struct.Struct("<BBHIB")


def encode_packet(
    seq: int,
    t_first_us: int,
    samples: npt.ArrayLike,
    *,
    saturated: bool = False,
    clock_resync: bool = False,
) -> bytes:
    """Encode one data packet.

    Parameters
    ----------
    seq : int
        Packet counter; taken modulo 2**16.
    t_first_us : int
        Device time of the first sample in µs; taken modulo 2**32.
    samples : (n, 6) or (n, 9) int
        Raw counts per sample: acc xyz, gyr xyz[, mag xyz]; must fit int16.

    Returns
    -------
    bytes
        ``11 + 2 * ch * n`` bytes.
    """
    s = np.asarray(samples)
    if s.ndim != 2 or s.shape[1] not in (6, 9):
        raise ValueError(f"samples must have shape (n, 6) or (n, 9), got {s.shape}")
    n = s.shape[0]
    if not 1 <= n <= MAX_SAMPLES:
        raise ValueError(f"a packet carries 1..{MAX_SAMPLES} samples, got {n}")
    if s.size and (s.min() < -32768 or s.max() > 32767):
        raise ValueError("samples must fit int16 (saturate before encoding)")
    flags = (
        (FLAG_MAG if s.shape[1] == 9 else 0)
        | (FLAG_SATURATED if saturated else 0)
        | (FLAG_CLOCK_RESYNC if clock_resync else 0)
    )
    body = (
        _HEADER.pack(PROTOCOL_VERSION, flags, seq % SEQ_MODULUS, t_first_us % TIME_MODULUS_US, n)
        + s.astype("<i2").tobytes()
    )
    return body + struct.pack("<H", crc16(body))


def parse_header(payload: bytes) -> PacketHeader:
    """Validate one packet fully (length, version, flags, count, CRC) and return its header.

    Raises
    ------
    ProtocolError
        With ``reason`` one of ``short``, ``version``, ``flags``, ``count``, ``length``, ``crc``.
    """
    if len(payload) < OVERHEAD:
        raise ProtocolError(
            f"packet too short: {len(payload)} bytes, a packet has at least {OVERHEAD}", "short"
        )
    version, flags, seq, t_first_us, n = _HEADER.unpack_from(payload)
    if version != PROTOCOL_VERSION:
        raise ProtocolError(
            f"unknown protocol version {version} (this decoder reads {PROTOCOL_VERSION})",
            "version",
        )
    if flags & FLAGS_RESERVED_MASK:
        raise ProtocolError(f"reserved flag bits set: 0x{flags:02x}", "flags")
    if not 1 <= n <= MAX_SAMPLES:
        raise ProtocolError(f"impossible sample count {n} (must be 1..{MAX_SAMPLES})", "count")
    want = packet_len(n, bool(flags & FLAG_MAG))
    if len(payload) != want:
        raise ProtocolError(
            f"packet length {len(payload)} does not match {n} samples "
            f"({'9' if flags & FLAG_MAG else '6'} channels): expected {want}",
            "length",
        )
    (crc_rx,) = struct.unpack_from("<H", payload, want - CRC_LEN)
    crc_calc = crc16(payload[: want - CRC_LEN])
    if crc_rx != crc_calc:
        raise ProtocolError(
            f"integrity check failed: crc 0x{crc_rx:04x} received, 0x{crc_calc:04x} computed",
            "crc",
        )
    return PacketHeader(version, flags, seq, t_first_us, n)


# ---------------------------------------------------------------------------------------------
# Info characteristic (read), 64 bytes, little-endian
# ---------------------------------------------------------------------------------------------
_INFO = struct.Struct("<BBHHHfffBB16s16s10s")
INFO_LEN: Final = _INFO.size  # 64

CH_ACC: Final = 0x01
CH_GYR: Final = 0x02
CH_MAG: Final = 0x04


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    """Content of the info characteristic."""

    protocol_version: int
    has_mag: bool
    rate_hz: int
    acc_range_g: int
    gyr_range_dps: int
    acc_lsb_m_s2: float
    gyr_lsb_rad_s: float
    mag_lsb_ut: float
    samples_per_packet: int
    streaming: bool
    model: str
    serial: str
    firmware: str

    def encode(self) -> bytes:
        """The 64-byte characteristic value."""
        ch = CH_ACC | CH_GYR | (CH_MAG if self.has_mag else 0)
        return _INFO.pack(
            self.protocol_version,
            ch,
            self.rate_hz,
            self.acc_range_g,
            self.gyr_range_dps,
            self.acc_lsb_m_s2,
            self.gyr_lsb_rad_s,
            self.mag_lsb_ut,
            self.samples_per_packet,
            1 if self.streaming else 0,
            self.model.encode()[:16],
            self.serial.encode()[:16],
            self.firmware.encode()[:10],
        )

    @classmethod
    def decode(cls, value: bytes) -> DeviceInfo:
        """Parse the characteristic value; ``ProtocolError`` if it is not a v1 info record."""
        if len(value) != INFO_LEN:
            raise ProtocolError(
                f"info characteristic has {len(value)} bytes, expected {INFO_LEN}", "length"
            )
        f = _INFO.unpack(value)
        if f[0] != PROTOCOL_VERSION:
            raise ProtocolError(f"sensor speaks protocol version {f[0]}, expected 1", "version")
        if not (f[1] & CH_ACC and f[1] & CH_GYR):
            raise ProtocolError("sensor lacks accelerometer or gyroscope channels", "flags")

        def _s(b: bytes) -> str:
            return b.rstrip(b"\0").decode("utf-8", errors="replace")

        return cls(
            protocol_version=f[0],
            has_mag=bool(f[1] & CH_MAG),
            rate_hz=f[2],
            acc_range_g=f[3],
            gyr_range_dps=f[4],
            acc_lsb_m_s2=f[5],
            gyr_lsb_rad_s=f[6],
            mag_lsb_ut=f[7],
            samples_per_packet=f[8],
            streaming=bool(f[9]),
            model=_s(f[10]),
            serial=_s(f[11]),
            firmware=_s(f[12]),
        )


# ---------------------------------------------------------------------------------------------
# Control characteristic (write with response; responses as notifications on the same char)
# ---------------------------------------------------------------------------------------------
CMD_START: Final = 0x01
CMD_STOP: Final = 0x02
CMD_SET_RATE: Final = 0x03  # + u16 rate_hz
CMD_SET_RANGES: Final = 0x04  # + u16 acc_range_g + u16 gyr_range_dps
CMD_TIME_SYNC: Final = 0x05  # + u8 token; response carries the device time in µs
#: the host's TIME_SYNC schedule (SPEC §4.4): a burst after each (re)connect, then requests at
#: random intervals of this mean (``imuhip live``'s StreamConfig defaults; the simulator's host)
TIME_SYNC_BURST: Final = 8
TIME_SYNC_INTERVAL_S: Final = 0.25

STATUS_OK: Final = 0x00
STATUS_BAD_COMMAND: Final = 0x01
STATUS_BAD_VALUE: Final = 0x02
STATUS_BUSY: Final = 0x03
STATUS_MTU_TOO_SMALL: Final = 0x04


def cmd_start() -> bytes:
    """START streaming."""
    return bytes([CMD_START])


def cmd_stop() -> bytes:
    """STOP streaming."""
    return bytes([CMD_STOP])


def cmd_set_rate(rate_hz: int) -> bytes:
    """SET_RATE; ``ValueError`` outside 50–400 Hz."""
    if rate_hz not in RATES_HZ:
        raise ValueError(f"rate_hz must be one of {RATES_HZ}, got {rate_hz}")
    return struct.pack("<BH", CMD_SET_RATE, rate_hz)


def cmd_set_ranges(acc_range_g: int, gyr_range_dps: int) -> bytes:
    """SET_RANGES; ``ValueError`` for an unsupported range."""
    if acc_range_g not in ACC_RANGES_G:
        raise ValueError(f"acc_range_g must be one of {ACC_RANGES_G}, got {acc_range_g}")
    if gyr_range_dps not in GYR_RANGES_DPS:
        raise ValueError(f"gyr_range_dps must be one of {GYR_RANGES_DPS}, got {gyr_range_dps}")
    return struct.pack("<BHH", CMD_SET_RANGES, acc_range_g, gyr_range_dps)


def cmd_time_sync(token: int) -> bytes:
    """TIME_SYNC request with a one-byte token echoed in the response."""
    return struct.pack("<BB", CMD_TIME_SYNC, token & 0xFF)


def control_response(cmd: int, status: int, payload: bytes = b"") -> bytes:
    """A control response notification: ``[cmd | 0x80, status, payload...]``."""
    return bytes([cmd | 0x80, status]) + payload


def parse_control_response(value: bytes) -> tuple[int, int, bytes]:
    """``(cmd, status, payload)`` of a control response; ``ProtocolError`` if malformed."""
    if len(value) < 2 or not value[0] & 0x80:
        raise ProtocolError(f"malformed control response {value.hex()}", "short")
    return value[0] & 0x7F, value[1], bytes(value[2:])
