"""Interoperability: import other systems' data, export to the field's formats.

Import: generic per-sensor CSV (:mod:`.generic_csv`), Xsens MT Manager exports and OpenSense
mappings (:mod:`.xsens`) -> a native ``.imrec`` recording (:mod:`.native`) or, for
orientation-only data, an :class:`~imuhip.types.OrientationSession` saved as ``.imori.npz``
(:mod:`.orientation_file`). Export: OpenSim orientation tables (:mod:`.opensim_sto`) and
Motion-BIDS (:mod:`.motion_bids`). Formats and mappings: ``docs/interop.md``.
"""

from __future__ import annotations

from imuhip.interop._common import ImportedSensor
from imuhip.interop.generic_csv import CsvOptions, read_sensor_csv, write_sensor_csv
from imuhip.interop.native import write_native_recording
from imuhip.interop.orientation_file import (
    load_orientation_session,
    orientation_session_from_imported,
    save_orientation_session,
)
from imuhip.interop.xsens import import_xsens_trial, read_imu_mappings, read_xsens_txt

__all__ = [
    "CsvOptions",
    "ImportedSensor",
    "import_xsens_trial",
    "load_orientation_session",
    "orientation_session_from_imported",
    "read_imu_mappings",
    "read_sensor_csv",
    "read_xsens_txt",
    "save_orientation_session",
    "write_native_recording",
    "write_sensor_csv",
]
