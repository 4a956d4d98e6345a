"""What the session's numbers assume: the absolute angles' references, the sensors' real sites.

Both end up in ``report.json`` ``quality`` and in the report's notes. A sensor imported at a
placement whose anatomy it does not sit on (an OpenSense ``torso_imu`` on the chest imported as
``lumbar``, :mod:`imuhip.interop.xsens`) still gives its angles, but they are not what the
placement's norms and the compensation index were made for.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from imuhip.gait.metrics import LUMBAR_METRICS
from imuhip.orientation.segment_calibration import STANDING_PELVIC_TILT_DEG
from imuhip.types import SegmentCalibration, SessionMeta

__all__ = ["angle_assumptions", "off_site_metrics", "off_site_note", "off_site_sensors"]

_METRICS_OF = {"lumbar": LUMBAR_METRICS}


def off_site_sensors(meta: SessionMeta) -> dict[str, str]:
    """``placement -> real body site`` of the sensors imported off their placement's site.

    From the import's ``body_sites`` (``meta.extra["import"]``), e.g. ``{"lumbar": "chest"}``;
    empty for recordings (a placement there is where the sensor was strapped).
    """
    sites = (meta.extra.get("import") or {}).get("body_sites") or {}
    return {str(p): str(s) for p, s in sites.items() if s and str(s) != str(p)}


def off_site_metrics(off_site: Mapping[str, str]) -> frozenset[str]:
    """The metrics of those sensors: not compared with norms (their norms are another site's)."""
    return frozenset(m for p in off_site for m in _METRICS_OF.get(p, ()))


def off_site_note(placement: str, site: str) -> str:
    """One plain line on what an off-site sensor's angles are and what they are not used for."""
    what = "trunk" if site == "chest" else site
    return (
        f"{placement} sensor on the {site} (as imported): its angles are {what} relative to "
        f"pelvis, not compared with the {placement} norms nor used in the compensation index"
    )


def angle_assumptions(
    standing_pelvic_tilt_deg: float,
    relative_heading: str,
    segcal: SegmentCalibration,
    given: bool,
) -> dict[str, Any]:
    """What the absolute angles assume (``report.json`` ``quality.angle_assumptions``)."""
    typical = standing_pelvic_tilt_deg == STANDING_PELVIC_TILT_DEG
    source = (
        "given segment calibration (its own standing pose)"
        if given
        else "population mean, Preece et al. 2008 (13 +- 5 deg)"
        if typical
        else "set for this subject"
    )
    statements = [
        f"absolute hip flexion, pelvic tilt and lumbar flexion assume a standing anterior pelvic "
        f"tilt (ASIS-PSIS) of {standing_pelvic_tilt_deg:g} deg ({source}); a subject who "
        "stands differently reads off by the difference (ranges and excursions are unaffected)",
    ]
    six_d = any(m.endswith("+obliquity") for m in segcal.method.values())
    if relative_heading == "walking" or six_d:
        zero = "mean over walking = 0 (walking-axis anchor of the relative heading)"
        statements.append(
            "absolute hip rotation is relative to the subject's own mean rotation during walking "
            "(taken as 0); excursion, peaks relative to it and left-right differences do not "
            "depend on this"
        )
    else:
        zero = "walking flexion axis, 9D magnetometer relative heading"
        statements.append(
            "absolute hip rotation: neutral from the walking flexion axis; the relative heading "
            "comes from the magnetometers (hard-iron bias turns it by 1-3 deg unless the "
            "sensors' magnetometer calibration is applied)"
        )
    return {
        "standing_pelvic_tilt_deg": float(standing_pelvic_tilt_deg),
        "standing_pelvic_tilt_source": source,
        "hip_rotation_zero": zero,
        "statements": statements,
    }
