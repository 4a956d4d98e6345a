"""A whole orientation session as an OpenSense ``.sto``, with the IMU Placer settings it needs.

:func:`write_session_sto` is what ``imuhip export --format sto`` runs. It

* writes every sensor (feet as ``calcn_r_imu`` / ``calcn_l_imu``; an unknown placement is written
  as ``<placement>_imu`` with a warning, never dropped);
* keeps the session clock: the ``time`` column is ``OrientationSession.t_s`` itself, so an event
  at 3.21 s in imuhip's report is at 3.21 s in OpenSim;
* picks the world so that OpenSim's own tools see what OpenSim's own reader would see
  (:func:`sto_world`): an Xsens import is written in the MTw's NWU world, exactly as
  ``XsensDataReader`` reads the same files; imuhip's own sessions in ENU;
* writes the settings into the header as ``imuhip_*`` keys (OpenSim keeps them as table
  metadata): ``imuhip_world``, ``imuhip_sensor_to_opensim_rotations``, ``imuhip_base_imu_label``
  and, when a segment calibration names it, ``imuhip_base_heading_axis`` (the pelvis sensor axis
  closest to the pelvis's anterior axis in the static pose).

See ``docs/interop.md`` (OpenSim section) for the setup per mounting and the sign table.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Final

import numpy as np

from imuhip.conventions import quat_rotate
from imuhip.interop.opensim_sto import PLACEMENT_TO_OPENSIM, World, write_orientations_sto
from imuhip.types import OrientationSession, SegmentCalibration, SessionMeta

__all__ = ["SENSOR_TO_OPENSIM_ZUP", "base_heading_axis", "sto_world", "write_session_sto"]

log = logging.getLogger(__name__)

SENSOR_TO_OPENSIM_ZUP: Final = "-1.5707963267949 0 0"
"""``<sensor_to_opensim_rotations>`` for Z-up worlds (ENU, Xsens NWU): -90° about X."""

_AXES: Final = {
    "x": (1.0, 0.0, 0.0),
    "y": (0.0, 1.0, 0.0),
    "z": (0.0, 0.0, 1.0),
}


def sto_world(ori: OrientationSession, meta: SessionMeta | None) -> World:
    """The world an exported table is written in.

    ``"xsens_nwu"`` for orientations from the Xsens filter imported from the NWU world (the
    import's default, recorded as ``meta.extra["import"]["world"]``; an older session without
    that entry is taken as the default ``"nwu"``, with a log line); ``"zup"`` (imuhip's ENU)
    for everything else, including Xsens data that imuhip fused itself.
    """
    imp = (meta.extra.get("import") if meta is not None else None) or {}
    if ori.source != "vendor:xsens" or imp.get("vendor") != "xsens":
        return "zup"
    world = imp.get("world")
    if world is None:
        log.info(
            "Xsens session without a recorded import world: taken as 'nwu' (the import's "
            "default); the .sto is written in the Xsens NWU world like OpenSim's reader"
        )
        world = "nwu"
    return "xsens_nwu" if world == "nwu" else "zup"


def base_heading_axis(segcal: SegmentCalibration | None) -> tuple[str | None, float]:
    """The pelvis sensor axis (``"x"``, ``"-z"``, ...) nearest the pelvis's anterior axis.

    Returns the axis and the angle between them in degrees (``(None, nan)`` without a pelvis
    calibration). OpenSense's ``base_heading_axis`` must be a sensor axis; OpenSim's heading
    correction is off by about this angle's vertical part (it takes ``acos`` of the 3-D axis).
    """
    if segcal is None or "pelvis" not in segcal.q_sensor_segment:
        return None, math.nan
    fwd = np.asarray(quat_rotate(segcal.q_sensor_segment["pelvis"], [1.0, 0.0, 0.0]), np.float64)
    fwd = fwd.reshape(3)
    k = int(np.argmax(np.abs(fwd)))
    name = "xyz"[k]
    sign = "" if fwd[k] >= 0 else "-"
    angle = math.degrees(math.acos(min(1.0, abs(float(fwd[k])) / float(np.linalg.norm(fwd)))))
    return sign + name, angle


def write_session_sto(
    target: str | Path,
    ori: OrientationSession,
    meta: SessionMeta | None = None,
    segcal: SegmentCalibration | None = None,
) -> Path:
    """Write ``ori`` as an OpenSense orientation table (see the module docstring).

    Parameters
    ----------
    target : str or Path
        The ``.sto`` file to write.
    ori : OrientationSession
        Orientations on the session grid (``t_s`` session seconds, ENU world).
    meta : SessionMeta, optional
        Tells where the orientations came from (Xsens import world).
    segcal : SegmentCalibration, optional
        Gives the pelvis sensor's forward axis for ``imuhip_base_heading_axis``.
    """
    target = Path(target)
    world = sto_world(ori, meta)
    for p in ori.q_world_sensor:
        if p not in PLACEMENT_TO_OPENSIM:
            log.warning(
                "%s: placement %r has no OpenSim body; written as column %s_imu (add an IMU "
                "frame of that name to the model or rename the column)",
                target.name,
                p,
                p,
            )
    header = {
        "imuhip_world": world,
        "imuhip_sensor_to_opensim_rotations": SENSOR_TO_OPENSIM_ZUP,
        "imuhip_base_imu_label": PLACEMENT_TO_OPENSIM["pelvis"],
    }
    axis, off_deg = base_heading_axis(segcal)
    if axis is not None:
        header["imuhip_base_heading_axis"] = axis
        if off_deg > 20.0:
            log.warning(
                "%s: no pelvis sensor axis points forward (nearest %s is %.0f° off): OpenSim's "
                "heading correction will be off by up to that much; see docs/interop.md",
                target.name,
                axis,
                off_deg,
            )
    write_orientations_sto(
        target, ori.t_s, ori.q_world_sensor, ori.rate_hz, world=world, header=header
    )
    for p, valid in ori.valid.items():
        n_bad = int(np.count_nonzero(~np.asarray(valid, bool)))
        if n_bad:  # the format has no validity column: say how many rows are not measured
            log.warning(
                "%s: %d of %d %s orientations in the .sto are gap-filled (lost samples, the "
                "filter ran on interpolated data); the format has no validity column",
                target.name,
                n_bad,
                len(valid),
                p,
            )
    return target
