"""Orientation: aligned samples -> sensor and segment orientations.

:mod:`~imuhip.orientation.sensor_calibration` (per-sensor gyro bias, accelerometer and
magnetometer corrections) -> :mod:`~imuhip.orientation.fusion` (vqf by default; ahrs filters as
cross-checks) -> :mod:`~imuhip.orientation.segment_calibration` (sensor-to-segment, static and
functional) and :mod:`~imuhip.orientation.heading` (relative heading between segments). Imports
the ground floor and :mod:`imuhip.ingest` only.
"""
