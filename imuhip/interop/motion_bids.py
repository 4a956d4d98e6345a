"""Motion-BIDS export (BIDS motion modality, BEP029; Jeung et al. 2024, Sci Data 11:716).

One tracking system per recording (``tracksys-imu`` by default) holding the channels chosen:
raw sensor channels (ACCEL, GYRO, MAGN; sensor frame), orientations (ORNT, quaternion components
``quat_w/x/y/z``; world ENU) and joint angles (JNTANG, degrees, ISB). Files written::

    <root>/dataset_description.json    (Name, BIDSVersion, DatasetType, License, Authors)
    <root>/README.md                   (what the files hold, frames, acq_time rule)
    <root>/participants.tsv            (participant_id)
    <root>/sub-<s>/[ses-<x>/]sub-<s>[_ses-<x>]_scans.tsv  (filename, acq_time: UTC or n/a)
    <root>/sub-<s>/[ses-<x>/]motion/sub-<s>[_ses-<x>]_task-<t>_tracksys-<k>_motion.tsv
        no header row; one column per channel; missing samples "n/a"
    ..._channels.tsv   name, component, type, tracked_point, units (required), placement,
                       reference_frame, sampling_frequency, description
    ..._channels.json  reference_frame levels with SpatialAxes / RotationOrder / RotationRule
                       (:mod:`imuhip.interop._motion_bids_meta`; these fields belong here, not
                       in motion.json)
    ..._motion.json    TaskName, SamplingFrequency, TrackingSystemName (= the tracksys label,
                       as the validator's TRACKSYS_MISMATCH check demands), channel counts per
                       type, TrackedPointsCount, RecordingDuration, MissingValues, device, ...
    ..._events.tsv     onset, duration, trial_type (gait events), when given

Both the BIDS validator 3 (``bids-validator-deno``) and the legacy validator 1.15 report 0
errors on an export (``tests/unit/interop/test_bids_validators.py``). :func:`check_motion_bids`
re-reads a dataset and lists violations of the rules a program can check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from imuhip import __version__
from imuhip.conventions import AXES
from imuhip.interop._common import FloatArray
from imuhip.interop._motion_bids_check import (
    CHANNEL_TYPES,
    COMPONENTS,
    COUNT_FIELD,
    REQUIRED_COLUMNS,
    UNITS,
    check_motion_bids,
)
from imuhip.interop._motion_bids_meta import (
    REFERENCE_FRAMES,
    SIDECAR_KEYS,
    bids_datetime,
    bids_session_fields,
    write_dataset_files,
)
from imuhip.types import JointAngles, OrientationSession

__all__ = [
    "BIDS_VERSION",
    "CHANNEL_TYPES",
    "COMPONENTS",
    "BidsChannel",
    "MotionBidsFiles",
    "bids_session_fields",
    "check_motion_bids",
    "motion_channels",
    "write_motion_bids",
]

BIDS_VERSION: Final = "1.10.0"
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")

# ISB joint coordinate system: flexion about Z, adduction/obliquity about X', rotation about Y''
_HIP_NAMES: Final = (("flexion", "z"), ("adduction", "x"), ("internal_rotation", "y"))
_PELVIS_NAMES: Final = (("rotation", "y"), ("obliquity", "x"), ("tilt", "z"))
_LUMBAR_NAMES: Final = (("flexion", "z"), ("lateral_bending", "x"), ("axial_rotation", "y"))
_SITES: Final = {
    "pelvis": "pelvis",
    "thigh_l": "left thigh",
    "thigh_r": "right thigh",
    "lumbar": "lower back",
    "shank_l": "left shank",
    "shank_r": "right shank",
    "foot_l": "left foot",
    "foot_r": "right foot",
}
"""imuhip placement -> the body site it stands for (DESIGN.md), the ``placement`` column."""


@dataclass(frozen=True, slots=True)
class BidsChannel:
    """One row of ``_channels.tsv`` (see the module docstring for the keyword lists)."""

    name: str
    component: str
    type: str
    tracked_point: str
    units: str
    reference_frame: str = "n/a"
    placement: str = "n/a"
    description: str = "n/a"

    def __post_init__(self) -> None:
        if self.type not in CHANNEL_TYPES:
            raise ValueError(f"channel {self.name}: type {self.type!r} not in {CHANNEL_TYPES}")
        if self.component not in COMPONENTS:
            raise ValueError(
                f"channel {self.name}: component {self.component!r} not in {COMPONENTS}"
            )


@dataclass(frozen=True, slots=True)
class MotionBidsFiles:
    """Paths written by :func:`write_motion_bids`."""

    root: Path
    motion_tsv: Path
    channels_tsv: Path
    channels_json: Path
    motion_json: Path
    events_tsv: Path | None
    scans_tsv: Path


def _label(name: str, value: str) -> str:
    if not _LABEL_RE.match(value):
        raise ValueError(f"BIDS {name} label must be alphanumeric (no '_' or '-'), got {value!r}")
    return value


def _site(p: str, body_sites: Mapping[str, str]) -> tuple[str, str]:
    """(tracked-point label, placement text) of sensor ``p``; a real site overrides ``p``."""
    real = body_sites.get(p)
    if real:
        label = re.sub(r"[^A-Za-z0-9_]", "", real.replace(" ", "_")) or p
        return label, f"{real} (analysed as imuhip placement '{p}')"
    return p, _SITES.get(p, p)


def motion_channels(
    ori: OrientationSession,
    angles: JointAngles | None = None,
    *,
    raw: bool = True,
    orientation: bool = True,
    joint_angles: bool = True,
    body_sites: Mapping[str, str] | None = None,
) -> tuple[FloatArray, list[BidsChannel]]:
    """Channel table and data ``(M, C)`` for an orientation session (+ joint angles).

    Invalid samples of a sensor (``ori.valid[p] == False``) become NaN (written ``n/a``); joint
    angles are NaN where ``angles.valid`` is False. Raw channels are in the sensor frame
    (``reference_frame`` ``local``), orientations in the world ENU frame (``global``; their
    ``description`` names ``ori.source``, the filter or vendor that produced them), joint
    angles in degrees in the ISB frames ``hip_right``/``hip_left``/``pelvis``/``lumbar``.
    ``body_sites`` (placement -> real site, e.g. ``{"lumbar": "chest"}``) renames that sensor's
    channels and tracked point and fills its ``placement``; its upper-body angles become
    ``trunk_*`` when the site is not the lower back.
    """
    sites = dict(body_sites or {})
    cols: list[FloatArray] = []
    chans: list[BidsChannel] = []
    for p in ori.q_world_sensor:
        bad = ~ori.valid[p]
        point, where = _site(p, sites)
        if raw:
            blocks = [("acc", "ACCEL", ori.acc_m_s2[p]), ("gyr", "GYRO", ori.gyr_rad_s.get(p))]
            blocks.append(("mag", "MAGN", ori.mag_ut.get(p)))
            for short, typ, arr in blocks:
                if arr is None:
                    continue
                for j, a in enumerate(AXES):
                    v = np.array(arr[:, j], dtype=np.float64)
                    v[bad] = np.nan
                    cols.append(v)
                    chans.append(
                        BidsChannel(
                            f"{point}_{short}_{a}", a, typ, point, UNITS[typ], "local", where
                        )
                    )
        if orientation:
            q = ori.q_world_sensor[p]
            src = f"orientation from {ori.source}"
            for j, comp in enumerate(("quat_w", "quat_x", "quat_y", "quat_z")):
                v = np.array(q[:, j], dtype=np.float64)
                v[bad] = np.nan
                cols.append(v)
                chans.append(
                    BidsChannel(f"{point}_{comp}", comp, "ORNT", point, "n/a", "global", where, src)
                )
    if joint_angles and angles is not None:
        if len(angles.t_s) != len(ori.t_s):
            raise ValueError("joint angles and orientations must share the session grid")
        invalid = ~np.asarray(angles.valid, bool)

        def add(
            prefix: str, frame: str, arr: FloatArray, names: Sequence[tuple[str, str]], what: str
        ) -> None:
            for j, (nm, comp) in enumerate(names):
                v = np.degrees(np.array(arr[:, j], dtype=np.float64))
                v[invalid] = np.nan
                cols.append(v)
                chans.append(
                    BidsChannel(f"{prefix}_{nm}", comp, "JNTANG", prefix, "deg", frame, "n/a", what)
                )

        for side, arr in angles.hip_rad.items():
            add(
                f"hip_{side[0]}", f"hip_{side}", arr, _HIP_NAMES, f"{side} thigh relative to pelvis"
            )
        if angles.pelvis_rad is not None:
            add("pelvis", "pelvis", angles.pelvis_rad, _PELVIS_NAMES, "pelvis to walking direction")
        if angles.lumbar_rad is not None:
            upper, _ = _site("lumbar", sites)
            prefix = "lumbar" if upper == "lumbar" else "trunk"
            what = f"{upper} sensor segment relative to pelvis"
            add(prefix, "lumbar", angles.lumbar_rad, _LUMBAR_NAMES, what)
    if not cols:
        raise ValueError("no channels selected")
    return np.stack(cols, axis=1), chans


def _tsv(rows: Sequence[Sequence[str]]) -> str:
    return "".join("\t".join(r) + "\n" for r in rows)


def write_motion_bids(
    root: str | Path,
    data: FloatArray,
    channels: Sequence[BidsChannel],
    *,
    rate_hz: float,
    subject: str,
    task: str = "walking",
    tracksys: str = "imu",
    session: str | None = None,
    acq_time: str | None = None,
    task_description: str = "",
    manufacturer: str = "",
    model: str = "",
    serials: str = "",
    firmware: str = "",
    authors: Sequence[str] = (),
    license_: str = "",
    events: Sequence[tuple[float, float, str]] = (),
    dataset_name: str = "imuhip export",
    extra_json: Mapping[str, object] | None = None,
) -> MotionBidsFiles:
    """Write one recording as a Motion-BIDS tracking system (see the module docstring).

    Parameters
    ----------
    root : str or Path
        Dataset root (created; an existing ``dataset_description.json`` is kept).
    data : (M, C) float64
        One column per channel, NaN for missing samples.
    channels : sequence of BidsChannel, length C
    rate_hz : float
        ``SamplingFrequency``.
    subject, task, tracksys, session : str
        BIDS labels (alphanumeric).
    acq_time : str, optional
        ISO 8601 start time; ``_scans.tsv`` gets it in UTC without offset (``n/a`` if None:
        never put an import time here).
    manufacturer, model, serials, firmware : str
        Device fields of the sidecar (``n/a`` if empty); ``model`` is a model name, the
        firmware version goes to ``SoftwareVersions``.
    authors, license_ : sequence of str, str
        ``dataset_description.json`` ``Authors`` and ``License`` (``n/a`` if not given; the
        README then asks to fill them in).
    events : sequence of (onset_s, duration_s, trial_type)
        Written to ``_events.tsv`` (onsets from the first sample).
    extra_json : mapping, optional
        More ``_motion.json`` fields; a key that is not a motion.json field is refused
        (``ValueError``), the legacy validator would reject the file.
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != len(channels):
        raise ValueError(f"data must have shape (M, {len(channels)}), got {data.shape}")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
    if extra_json and (unknown := sorted(set(extra_json) - SIDECAR_KEYS)):
        raise ValueError(f"extra_json keys {unknown} are not motion.json fields")
    acq = bids_datetime(acq_time)
    names = [c.name for c in channels]
    if len(set(names)) != len(names):
        raise ValueError("channel names must be unique")
    sub = _label("subject", subject)
    tsk = _label("task", task)
    sys_ = _label("tracksys", tracksys)
    ses = _label("session", session) if session is not None else None
    root = Path(root)
    subdir = root / f"sub-{sub}" / (f"ses-{ses}" if ses else "")
    mdir = subdir / "motion"
    mdir.mkdir(parents=True, exist_ok=True)
    stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
    base = f"{stem}_task-{tsk}_tracksys-{sys_}"

    write_dataset_files(
        root,
        name=dataset_name,
        authors=tuple(authors) or ("n/a",),
        license_=license_ or "n/a",
        bids_version=BIDS_VERSION,
    )
    parts = root / "participants.tsv"
    existing = parts.read_text(encoding="utf-8").splitlines() if parts.exists() else []
    if not existing:
        existing = ["participant_id"]
    if f"sub-{sub}" not in {ln.split("\t")[0] for ln in existing}:
        existing.append(f"sub-{sub}")
    parts.write_text("\n".join(existing) + "\n", encoding="utf-8")

    motion_tsv = mdir / f"{base}_motion.tsv"
    text = np.char.mod("%.7g", data)
    text = np.where(np.isfinite(data), text, "n/a")
    motion_tsv.write_text(_tsv(text.tolist()), encoding="utf-8")

    channels_tsv = mdir / f"{base}_channels.tsv"
    head = [*REQUIRED_COLUMNS, "placement", "reference_frame", "sampling_frequency", "description"]
    rows = [head] + [
        [
            c.name,
            c.component,
            c.type,
            c.tracked_point,
            c.units,
            c.placement,
            c.reference_frame,
            f"{rate_hz:g}",
            c.description,
        ]
        for c in channels
    ]
    channels_tsv.write_text(_tsv(rows), encoding="utf-8")

    channels_json = mdir / f"{base}_channels.json"
    used = [f for f in REFERENCE_FRAMES if any(c.reference_frame == f for c in channels)]
    frames = {
        "Description": "Frame in which a channel's values are expressed",
        "Levels": {f: REFERENCE_FRAMES[f] for f in used},
    }
    channels_json.write_text(
        json.dumps({"reference_frame": frames}, indent=2) + "\n", encoding="utf-8"
    )

    counts = {t: sum(1 for c in channels if c.type == t) for t in CHANNEL_TYPES}
    sidecar: dict[str, object] = {
        "TaskName": task,
        "TaskDescription": task_description or "n/a",
        "SamplingFrequency": float(rate_hz),
        "SamplingFrequencyEffective": float(rate_hz),
        "TrackingSystemName": tracksys,
        "Manufacturer": manufacturer or "n/a",
        "ManufacturersModelName": model or "n/a",
        "DeviceSerialNumber": serials or "n/a",
        "SoftwareVersions": f"imuhip {__version__}"
        + (f"; sensor firmware {firmware}" if firmware else ""),
        "MotionChannelCount": len(channels),
        "TrackedPointsCount": len({c.tracked_point for c in channels}),
        "RecordingDuration": round(len(data) / float(rate_hz), 6),
        "MissingValues": "n/a",
        "SubjectArtefactDescription": "n/a",
    }
    for t, n in counts.items():
        sidecar[COUNT_FIELD[t]] = n
    if extra_json:
        sidecar.update(extra_json)
    motion_json = mdir / f"{base}_motion.json"
    motion_json.write_text(json.dumps(sidecar, indent=2) + "\n", encoding="utf-8")

    events_tsv = None
    if events:
        events_tsv = mdir / f"{stem}_task-{tsk}_tracksys-{sys_}_events.tsv"
        ev_rows = [["onset", "duration", "trial_type"]] + [
            [f"{on:.4f}", f"{du:.4f}", tt] for on, du, tt in sorted(events)
        ]
        events_tsv.write_text(_tsv(ev_rows), encoding="utf-8")

    scans_tsv = subdir / f"{stem}_scans.tsv"
    rel = f"motion/{motion_tsv.name}"
    scan_rows = (
        scans_tsv.read_text(encoding="utf-8").splitlines()
        if scans_tsv.exists()
        else ["filename\tacq_time"]
    )
    scan_rows = [r for r in scan_rows if not r.startswith(rel + "\t")]
    scan_rows.append(f"{rel}\t{acq}")
    scans_tsv.write_text("\n".join(scan_rows) + "\n", encoding="utf-8")
    return MotionBidsFiles(
        root, motion_tsv, channels_tsv, channels_json, motion_json, events_tsv, scans_tsv
    )
