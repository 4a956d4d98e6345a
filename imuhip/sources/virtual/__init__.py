"""Virtual BLE sensors (bumble) serving the imuhip GATT table, with fault injection."""

from imuhip.sources.virtual.clock import VirtualClock
from imuhip.sources.virtual.fleet import RecordedSource, VirtualFleet, default_faults, sim_sources
from imuhip.sources.virtual.sensor import (
    Faults,
    SampleSource,
    SentRecord,
    SyntheticSource,
    VirtualSensor,
)

__all__ = [
    "Faults",
    "RecordedSource",
    "SampleSource",
    "SentRecord",
    "SyntheticSource",
    "VirtualClock",
    "VirtualFleet",
    "VirtualSensor",
    "default_faults",
    "sim_sources",
]
