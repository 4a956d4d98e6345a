"""Sources: where ``RawPacket`` s come from.

:mod:`~imuhip.sources.ble` (bleak; the only async code), :mod:`~imuhip.sources.bumble_backend`
(a bleak backend over a bumble central, for tests without hardware), :mod:`~imuhip.sources.replay`
(recordings, paced or not), :mod:`~imuhip.sources.movesense` (the Movesense GATT sensor-data
protocol) and :mod:`~imuhip.sources.virtual` (virtual sensors speaking real BLE over bumble).
Sources use the packet and recording formats of :mod:`imuhip.ingest`.
"""
