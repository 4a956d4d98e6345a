"""Motion-BIDS metadata: reference frames, sidecar keys, dataset files, session fields.

Reference frames (``_channels.json`` ``reference_frame`` levels). Both validators are satisfied:
the BIDS 1.10 schema (validator 3) and the BEP029 schema of the legacy validator 1.15, whose
``SpatialAxes`` must match ``^[APLRSI_]{3}$`` (anterior/posterior, left/right,
superior/inferior), ``RotationOrder`` is one of the six extrinsic sequences and ``RotationRule``
``left-hand``/``right-hand`` (no ``n/a``):

``global``
    world ENU (x east, y north, z up): ``SpatialAxes`` ``RAS`` read for a subject facing north
    (x right, y anterior, z superior; the heading of a 6-axis world frame is arbitrary, only
    "z up" is absolute), ``right-hand``; no ``RotationOrder`` (quaternions, no Euler sequence).
``local``
    each sensor's own frame, ``right-hand``; no ``SpatialAxes`` (sensor axes are not body axes).
``hip_right`` / ``hip_left`` / ``lumbar`` / ``pelvis``
    ISB frames (X anterior, Y superior, Z right: ``ASR``). The spec's ``RotationOrder`` is
    *extrinsic*; imuhip's angles are *intrinsic* Cardan sequences, and an intrinsic sequence is the
    extrinsic one in reverse: hip and lumbar Z-X'-Y'' = extrinsic ``YXZ``, pelvis Y-X'-Z'' =
    extrinsic ``ZXY``. ``RotationRule`` ``right-hand`` only where every angle is a right-hand
    angle (right hip); the mirrored left hip and the sign-adjusted lumbar and pelvis angles have
    none, their signs are in ``Description``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from imuhip import __version__
from imuhip.types import SessionMeta

__all__ = [
    "REFERENCE_FRAMES",
    "SIDECAR_KEYS",
    "bids_datetime",
    "bids_session_fields",
    "write_dataset_files",
]

_ISB = "ISB (Wu et al. 2002, doi:10.1016/S0021-9290(01)00222-6)"
REFERENCE_FRAMES: Final[dict[str, dict[str, str]]] = {
    "global": {
        "Description": "Earth-fixed world frame ENU: x east, y north, z up (gravity along -z; "
        "heading arbitrary without a magnetometer). SpatialAxes RAS = the body directions of a "
        "subject facing north (+y). Quaternions are scalar-first, Hamilton, unit norm, and "
        "rotate sensor-frame vectors into this frame (q_world_sensor).",
        "SpatialAxes": "RAS",
        "RotationRule": "right-hand",
    },
    "local": {
        "Description": "Sensor frame of each IMU (its own x, y, z axes, as printed on the "
        "housing); not aligned with body axes.",
        "RotationRule": "right-hand",
    },
    "hip_right": {
        "Description": f"Right hip joint coordinate system, {_ISB}: thigh relative to pelvis, "
        "pelvis frame X anterior, Y superior, Z right. Intrinsic Cardan Z-X'-Y'' (flexion, "
        "adduction, internal rotation), i.e. extrinsic Y, X, Z; all three right-hand.",
        "SpatialAxes": "ASR",
        "RotationOrder": "YXZ",
        "RotationRule": "right-hand",
    },
    "hip_left": {
        "Description": f"Left hip joint coordinate system, {_ISB}: as hip_right (intrinsic "
        "Z-X'-Y'' = extrinsic Y, X, Z) but mirrored so + is the same anatomical motion on both "
        "sides: flexion right-hand about Z, adduction and internal rotation negated (left-hand "
        "about X' and Y'').",
        "SpatialAxes": "ASR",
        "RotationOrder": "YXZ",
    },
    "lumbar": {
        "Description": "Upper sensor segment (lumbar or chest, see placement) relative to the "
        f"pelvis, {_ISB} frames. Intrinsic Z-X'-Y'' (extrinsic Y, X, Z): flexion = -angle about "
        "Z (+ forward lean), lateral bending = +angle about X' (+ toward the right), axial "
        "rotation = -angle about Y'' (+ turning to the right).",
        "SpatialAxes": "ASR",
        "RotationOrder": "YXZ",
    },
    "pelvis": {
        "Description": "Pelvis relative to the walking direction (Baker 2001, "
        "doi:10.1016/S0966-6362(01)00105-3): walking frame X forward, Y up, Z right. Intrinsic "
        "Y-X'-Z'' (extrinsic Z, X, Y): rotation = +angle about Y (right hemipelvis forward), "
        "obliquity = -angle about X' (+ right hemipelvis up), tilt = -angle about Z'' "
        "(+ anterior tilt).",
        "SpatialAxes": "ASR",
        "RotationOrder": "ZXY",
    },
}
"""``reference_frame`` levels written to every ``_channels.json`` (see the module docstring)."""

SIDECAR_KEYS: Final = frozenset(
    {
        "TaskName",
        "TaskDescription",
        "Instructions",
        "CogAtlasID",
        "CogPOID",
        "InstitutionName",
        "InstitutionAddress",
        "InstitutionalDepartmentName",
        "EpochLength",
        "RecordingType",
        "SubjectArtefactDescription",
        "MotionChannelCount",
        "TrackingSystemName",
        "DeviceSerialNumber",
        "SoftwareVersions",
        "Manufacturer",
        "ManufacturersModelName",
        "TrackedPointsCount",
        "RecordingDuration",
        "SamplingFrequency",
        "SamplingFrequencyEffective",
        "SoftwareFilters",
        "MissingValues",
        *(
            f"{t}ChannelCount"
            for t in ("ACCEL", "ANGACCEL", "GYRO", "JNTANG", "MAGN", "MISC", "ORNT", "POS", "VEL")
        ),
        "LATENCYChannelCount",
    }
)
"""Keys a ``_motion.json`` may hold (the legacy validator refuses any other)."""

_README = """\
# {name}

Motion-BIDS dataset written by imuhip {version} (wearable IMUs: hip rotation and lumbar
compensation in gait). One tracking system `tracksys-imu` per recording.

- `*_motion.tsv`: one column per row of `*_channels.tsv`, no header, `n/a` for samples that
  were not measured (lost packets, quarantined values, sensors outside the common time).
- Raw channels (ACCEL m/s^2, GYRO rad/s, MAGN uT) are in each sensor's own frame
  (`reference_frame` `local`); orientations (ORNT, quaternion w, x, y, z) rotate sensor
  vectors into the world frame ENU (`global`); joint angles (JNTANG, degrees) are ISB Cardan
  angles, the `reference_frame` levels of `*_channels.json` give each sequence and sign.
- `placement` says where each sensor sat; `description` of ORNT channels says which filter
  produced the orientation.
- `acq_time` in `*_scans.tsv` is UTC; it is `n/a` when the source did not record a start
  time (imported files: the import time is not the recording time).
- Authors and License: {authors_note}
"""


def bids_datetime(text: str | None) -> str:
    """``acq_time`` form ``YYYY-MM-DDThh:mm:ss[.ffffff]`` in UTC, no offset; ``n/a`` for None.

    Raises ``ValueError`` naming the value for text that is not an ISO 8601 time.
    """
    if text is None or text == "n/a":
        return "n/a"
    try:
        t = datetime.fromisoformat(text)
    except ValueError as err:
        raise ValueError(f"acq_time must be an ISO 8601 time, got {text!r}") from err
    if t.tzinfo is not None:
        t = t.astimezone(UTC).replace(tzinfo=None)
    return t.isoformat(timespec="microseconds" if t.microsecond else "seconds")


def _manufacturer(protocols: set[str], models: set[str], fmt: str) -> str:
    if "xsens" in protocols or fmt == "xsens" or any(m.lower().startswith("xsens") for m in models):
        return "Xsens"
    if "movesense" in protocols or any(m.lower().startswith("movesense") for m in models):
        return "Movesense"
    if models and all(m == "imuhip-sim" for m in models):
        return "imuhip simulator (synthetic data)"
    return ""


def bids_session_fields(meta: SessionMeta) -> dict[str, Any]:
    """What a session header says for Motion-BIDS: acquisition time, device, body sites.

    Returns ``acq_time`` (None for an imported session whose source had no start time: its
    ``start_wall_time`` is the import time), ``manufacturer``, ``model`` (model names, never a
    firmware version), ``serials``, ``firmware`` and ``body_sites`` (placement -> where the
    sensor really sat, e.g. ``{"lumbar": "chest"}``); empty strings where unknown.
    """
    imported = meta.extra.get("import")
    acq: str | None = meta.start_wall_time
    if isinstance(imported, dict):
        acq = imported.get("source_start_time")
    fmt = str(imported.get("format", imported.get("vendor", ""))) if imported else ""
    models = {s.model for s in meta.sensors if s.model and not s.model.startswith("imported:")}
    firmware = sorted({s.firmware for s in meta.sensors if s.firmware})
    sites = imported.get("body_sites", {}) if isinstance(imported, dict) else {}
    return {
        "acq_time": acq,
        "manufacturer": _manufacturer({s.protocol for s in meta.sensors}, models, fmt),
        "model": ", ".join(sorted(models)),
        "serials": ", ".join(f"{s.placement} {s.serial}" for s in meta.sensors if s.serial),
        "firmware": ", ".join(firmware),
        "body_sites": {str(k): str(v) for k, v in dict(sites).items()},
    }


def write_dataset_files(
    root: Path, *, name: str, authors: tuple[str, ...], license_: str, bids_version: str
) -> None:
    """``dataset_description.json`` and ``README.md`` at ``root`` (existing ones are kept)."""
    desc = root / "dataset_description.json"
    if not desc.exists():
        body = {
            "Name": name,
            "BIDSVersion": bids_version,
            "DatasetType": "raw",
            "License": license_,
            "Authors": list(authors),
            "GeneratedBy": [{"Name": "imuhip", "Version": __version__}],
        }
        desc.write_text(json.dumps(body, indent=2) + "\n", encoding="utf-8")
    readme = root / "README.md"
    if not readme.exists() and not any(root.glob("README*")):
        note = (
            "as given at export."
            if authors != ("n/a",)
            else "not known to the exporter (`n/a`): fill in `Authors` and `License` in "
            "`dataset_description.json` before sharing."
        )
        readme.write_text(
            _README.format(name=name, version=__version__, authors_note=note), encoding="utf-8"
        )
