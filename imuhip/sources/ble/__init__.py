"""Live BLE source (bleak): the only async module of the pipeline.

:class:`BleSession` connects the named sensors **one at a time** (concurrent connects fail on
Linux), reads and checks their info, configures rate and ranges, subscribes and starts them. The
notify callback only stamps ``time.monotonic_ns()`` and enqueues a :class:`~imuhip.types.RawPacket`
on a bounded :class:`asyncio.Queue`; a full queue drops the packet and counts it (a flooding peer
cannot grow memory). Session events (connect, disconnect, reconnect, sensor_info, time_sync,
refused, queue_overflow) go through the same queue, so the consumer sees one ordered stream.

Supervision: a sensor whose link drops is reconnected with backoff by
``bleak_retry_connector.establish_connection`` (inside an outer backoff loop that keeps trying
until the session stops or ``give_up_after_s``), then re-configured in full and re-synced; the
other sensors keep streaming meanwhile.

Sensor families plug in through :class:`SensorDriver` (the imuhip protocol is
:class:`ImuhipDriver`; Movesense can add its own).

Modules: :mod:`~imuhip.sources.ble.config` (:class:`StreamConfig`, :class:`LinkState`),
:mod:`~imuhip.sources.ble.driver` (:class:`SensorDriver`, :class:`ImuhipDriver`),
:mod:`~imuhip.sources.ble.scanning` (:func:`scan`), :mod:`~imuhip.sources.ble.session`
(:class:`BleSession`, the notify callback, :func:`stream_packets`) and
:mod:`~imuhip.sources.ble.supervision` (reconnects, periodic time sync).
"""

from imuhip.sources.ble.config import BATTERY_LEVEL_UUID, LinkState, StreamConfig
from imuhip.sources.ble.config import BATTERY_SERVICE_UUID as BATTERY_SERVICE_UUID
from imuhip.sources.ble.config import MOVESENSE_NAME_PREFIX as MOVESENSE_NAME_PREFIX
from imuhip.sources.ble.config import Item as Item
from imuhip.sources.ble.driver import ImuhipDriver, SensorDriver
from imuhip.sources.ble.scanning import ScanResult, scan
from imuhip.sources.ble.session import BleSession, stream_packets

__all__ = [
    "BATTERY_LEVEL_UUID",
    "BleSession",
    "ImuhipDriver",
    "LinkState",
    "ScanResult",
    "SensorDriver",
    "StreamConfig",
    "scan",
    "stream_packets",
]
