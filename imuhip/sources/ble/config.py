"""Settings and link state of a live BLE session (plain data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from imuhip.ingest import protocol
from imuhip.types import RawPacket, SessionEvent

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BATTERY_SERVICE_UUID",
    "MOVESENSE_NAME_PREFIX",
    "Item",
    "LinkState",
    "StreamConfig",
]

BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"
BATTERY_LEVEL_UUID = "00002a19-0000-1000-8000-00805f9b34fb"
MOVESENSE_NAME_PREFIX = "Movesense"

Item = RawPacket | SessionEvent
_EVENT_RESERVE = 256


@dataclass(frozen=True, slots=True)
class StreamConfig:
    """How a live session talks to its sensors.

    Parameters
    ----------
    rate_hz, acc_range_g, gyr_range_dps : int
        Configuration sent to every sensor (and re-sent after a reconnect).
    queue_maxsize : int
        Bound of the callback -> consumer queue; overflow drops packets and counts them.
    max_notification_bytes : int
        Longer notifications are dropped and counted as oversized (the largest valid packet).
    connect_attempts : int
        Attempts per ``establish_connection`` call (bleak-retry-connector).
    backoff_s : tuple of float
        Outer reconnect backoff sequence (the last value repeats).
    give_up_after_s : float or None
        Stop reconnecting a sensor after this long without a link (``None``: until the end).
    command_timeout_s : float
        Timeout for a control command's response.
    time_sync_interval_s : float
        Mean period of TIME_SYNC requests per sensor, on the session's host clock (each wait is
        drawn uniformly from 0.5-1.5 x this, so the requests fall at every phase of the connection
        events: the tightest of them bound the device clock, SPEC §4.4).
    time_sync_burst : int
        TIME_SYNC requests sent as fast as allowed after each (re)connect, so the clock of a new
        link is bounded within its first second.
    time_sync_in_flight : int
        TIME_SYNC requests per sensor awaiting their reply at once (their tokens pair them).
    """

    rate_hz: int = 200
    acc_range_g: int = 16
    gyr_range_dps: int = 2000
    queue_maxsize: int = 4096
    max_notification_bytes: int = protocol.packet_len(protocol.MAX_SAMPLES, True)
    connect_attempts: int = 2
    backoff_s: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)
    give_up_after_s: float | None = None
    command_timeout_s: float = 3.0
    time_sync_interval_s: float = protocol.TIME_SYNC_INTERVAL_S
    time_sync_burst: int = protocol.TIME_SYNC_BURST
    time_sync_in_flight: int = 8

    def __post_init__(self) -> None:
        protocol.cmd_set_rate(self.rate_hz)  # ValueError naming the allowed values
        protocol.cmd_set_ranges(self.acc_range_g, self.gyr_range_dps)
        if self.queue_maxsize < 16:
            raise ValueError(f"queue_maxsize must be >= 16, got {self.queue_maxsize}")
        if not self.time_sync_interval_s > 0:
            raise ValueError(f"time_sync_interval_s must be > 0, got {self.time_sync_interval_s}")
        if self.time_sync_burst < 0 or self.time_sync_in_flight < 1:
            raise ValueError("time_sync_burst must be >= 0 and time_sync_in_flight >= 1")
        if not self.backoff_s or min(self.backoff_s) < 0:
            raise ValueError("backoff_s must be a non-empty sequence of non-negative seconds")


@dataclass
class LinkState:
    """What the session knows about one sensor's link (read by the live view)."""

    sensor: str
    address: str
    state: str = "idle"  # idle, connecting, streaming, lost, reconnecting, failed, stopped
    battery_pct: int | None = None
    rssi_dbm: int | None = None
    att_mtu: int | None = None
    samples_per_packet: int | None = None
    notifications: int = 0
    queue_drops: int = 0
    #: host stamps of the first and last drop not yet marked by a ``queue_overflow`` event
    drop_first_ns: int | None = None
    drop_last_ns: int | None = None
    oversized: int = 0
    disconnects: int = 0
    reconnects: int = 0
    error: str | None = None
    last_rx_ns: int | None = None
