"""Storage of a calibration as a recording event (``SessionEvent(kind="segment_calibration")``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from imuhip.types import SegmentCalibration, SessionEvent

__all__ = ["EVENT_KIND", "segcal_from_event_data", "segcal_to_event", "segcal_to_event_data"]

EVENT_KIND = "segment_calibration"


def segcal_to_event_data(segcal: SegmentCalibration) -> dict[str, Any]:
    """JSON-serialisable dict of a calibration (``SessionEvent(kind="segment_calibration")``)."""
    return {
        "version": 1,
        "q_sensor_segment": {k: [float(v) for v in q] for k, q in segcal.q_sensor_segment.items()},
        "method": dict(segcal.method),
        "quality": {k: {m: float(v) for m, v in d.items()} for k, d in segcal.quality.items()},
        "warnings": list(segcal.warnings),
        "dropped": dict(segcal.dropped),
    }


def segcal_from_event_data(data: dict[str, Any]) -> SegmentCalibration:
    """Inverse of :func:`segcal_to_event_data`; ``ValueError`` naming what is malformed."""
    if not isinstance(data, dict) or data.get("version") != 1:
        raise ValueError("segment calibration event data must be a dict with version 1")
    try:
        q = {k: np.asarray(v, dtype=np.float64) for k, v in data["q_sensor_segment"].items()}
        method = {str(k): str(v) for k, v in data["method"].items()}
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(f"segment calibration event data malformed: {err}") from err
    for k, v in q.items():
        if v.shape != (4,) or not np.all(np.isfinite(v)) or abs(np.linalg.norm(v) - 1) > 1e-6:
            raise ValueError(
                f"q_sensor_segment[{k!r}] must be a finite unit quaternion of 4 values"
            )
    return SegmentCalibration(
        q_sensor_segment=q,
        method=method,
        quality={
            k: {m: float(x) for m, x in d.items()} for k, d in data.get("quality", {}).items()
        },
        warnings=tuple(str(w) for w in data.get("warnings", [])),
        dropped={str(k): str(v) for k, v in data.get("dropped", {}).items()},
    )


def segcal_to_event(segcal: SegmentCalibration, host_rx_ns: int) -> SessionEvent:
    """A ``SessionEvent(kind="segment_calibration")`` carrying the calibration."""
    return SessionEvent(host_rx_ns=host_rx_ns, kind=EVENT_KIND, data=segcal_to_event_data(segcal))
