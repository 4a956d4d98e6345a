"""Motion-BIDS export (BIDS motion modality, BEP029; Jeung et al. 2024, Sci Data 11:716).

One tracking system per recording (``tracksys-imu`` by default) holding the channels chosen:
raw sensor channels (ACCEL, GYRO, MAGN; sensor frame), orientations (ORNT, quaternion components
``quat_w/x/y/z``; world ENU) and joint angles (JNTANG, degrees, ISB). Files written::

    <root>/dataset_description.json                       (Name, BIDSVersion, DatasetType)
    <root>/participants.tsv                               (participant_id)
    <root>/sub-<s>/[ses-<x>/]sub-<s>[_ses-<x>]_scans.tsv  (filename, acq_time)
    <root>/sub-<s>/[ses-<x>/]motion/sub-<s>[_ses-<x>]_task-<t>_tracksys-<k>_motion.tsv
        no header row; one column per channel; missing samples "n/a"
    ..._channels.tsv   name, component, type, tracked_point, units (required), placement,
                       reference_frame, sampling_frequency
    ..._channels.json  reference_frame levels (global ENU world / local sensor frame / ISB JCS)
    ..._motion.json    TaskName, SamplingFrequency, TrackingSystemName (= the tracksys label,
                       as the validator's TRACKSYS_MISMATCH check demands), channel counts per
                       type, TrackedPointsCount, RecordingDuration, MissingValues, ...
    ..._events.tsv     onset, duration, trial_type (gait events), when given

:func:`check_motion_bids` re-reads a dataset and lists violations of the rules a program can
check (required files, columns, keywords, units, counts, sampling frequency).
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
from imuhip.types import JointAngles, OrientationSession

__all__ = [
    "BIDS_VERSION",
    "CHANNEL_TYPES",
    "COMPONENTS",
    "BidsChannel",
    "MotionBidsFiles",
    "check_motion_bids",
    "motion_channels",
    "write_motion_bids",
]

BIDS_VERSION: Final = "1.10.0"
CHANNEL_TYPES: Final = (
    "ACCEL",
    "ANGACCEL",
    "GYRO",
    "JNTANG",
    "LATENCY",
    "MAGN",
    "MISC",
    "ORNT",
    "POS",
    "VEL",
)
COMPONENTS: Final = ("x", "y", "z", "quat_x", "quat_y", "quat_z", "quat_w", "n/a")
UNITS: Final = {"ACCEL": "m/s^2", "GYRO": "rad/s", "MAGN": "uT", "JNTANG": "deg", "LATENCY": "s"}
_LABEL_RE = re.compile(r"^[A-Za-z0-9]+$")
_REQUIRED_COLUMNS: Final = ("name", "component", "type", "tracked_point", "units")
_COUNT_FIELD: Final = {t: f"{t}ChannelCount" for t in CHANNEL_TYPES}

# ISB joint coordinate system: flexion about Z, adduction/obliquity about X', rotation about Y''
_HIP_NAMES: Final = (("flexion", "z"), ("adduction", "x"), ("internal_rotation", "y"))
_PELVIS_NAMES: Final = (("rotation", "y"), ("obliquity", "x"), ("tilt", "z"))
_LUMBAR_NAMES: Final = (("flexion", "z"), ("lateral_bending", "x"), ("axial_rotation", "y"))


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


def motion_channels(
    ori: OrientationSession,
    angles: JointAngles | None = None,
    *,
    raw: bool = True,
    orientation: bool = True,
    joint_angles: bool = True,
) -> tuple[FloatArray, list[BidsChannel]]:
    """Channel table and data ``(M, C)`` for an orientation session (+ joint angles).

    Invalid samples of a sensor (``ori.valid[p] == False``) become NaN (written ``n/a``); joint
    angles are NaN where ``angles.valid`` is False. Raw channels are in the sensor frame
    (``reference_frame`` ``local``), orientations in the world ENU frame (``global``), joint
    angles in degrees in the ISB joint coordinate system (``jcs``).
    """
    cols: list[FloatArray] = []
    chans: list[BidsChannel] = []
    for p in ori.q_world_sensor:
        bad = ~ori.valid[p]
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
                    chans.append(BidsChannel(f"{p}_{short}_{a}", a, typ, p, UNITS[typ], "local", p))
        if orientation:
            q = ori.q_world_sensor[p]
            for j, comp in enumerate(("quat_w", "quat_x", "quat_y", "quat_z")):
                v = np.array(q[:, j], dtype=np.float64)
                v[bad] = np.nan
                cols.append(v)
                chans.append(BidsChannel(f"{p}_{comp}", comp, "ORNT", p, "n/a", "global", p))
    if joint_angles and angles is not None:
        if len(angles.t_s) != len(ori.t_s):
            raise ValueError("joint angles and orientations must share the session grid")
        invalid = ~np.asarray(angles.valid, bool)

        def add(prefix: str, point: str, arr: FloatArray, names: Sequence[tuple[str, str]]) -> None:
            for j, (nm, comp) in enumerate(names):
                v = np.degrees(np.array(arr[:, j], dtype=np.float64))
                v[invalid] = np.nan
                cols.append(v)
                chans.append(BidsChannel(f"{prefix}_{nm}", comp, "JNTANG", point, "deg", "jcs"))

        for side, arr in angles.hip_rad.items():
            add(f"hip_{side[0]}", f"hip_{side[0]}", arr, _HIP_NAMES)
        if angles.pelvis_rad is not None:
            add("pelvis", "pelvis", angles.pelvis_rad, _PELVIS_NAMES)
        if angles.lumbar_rad is not None:
            add("lumbar", "lumbar", angles.lumbar_rad, _LUMBAR_NAMES)
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
        ISO 8601 start time for ``_scans.tsv`` (``n/a`` if not given).
    events : sequence of (onset_s, duration_s, trial_type)
        Written to ``_events.tsv`` (onsets from the first sample).
    """
    data = np.asarray(data, dtype=np.float64)
    if data.ndim != 2 or data.shape[1] != len(channels):
        raise ValueError(f"data must have shape (M, {len(channels)}), got {data.shape}")
    if not (np.isfinite(rate_hz) and rate_hz > 0):
        raise ValueError(f"rate_hz must be positive, got {rate_hz}")
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

    desc = root / "dataset_description.json"
    if not desc.exists():
        desc.write_text(
            json.dumps(
                {
                    "Name": dataset_name,
                    "BIDSVersion": BIDS_VERSION,
                    "DatasetType": "raw",
                    "GeneratedBy": [{"Name": "imuhip", "Version": __version__}],
                },
                indent=2,
            )
            + "\n",
            encoding="utf-8",
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
    head = [*_REQUIRED_COLUMNS, "placement", "reference_frame", "sampling_frequency"]
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
        ]
        for c in channels
    ]
    channels_tsv.write_text(_tsv(rows), encoding="utf-8")

    channels_json = mdir / f"{base}_channels.json"
    channels_json.write_text(
        json.dumps(
            {
                "reference_frame": {
                    "Description": "Frame in which a channel's values are expressed",
                    "Levels": {
                        "global": {
                            "Description": "Earth-fixed world frame ENU: x east, y north, z up "
                            "(heading arbitrary). Quaternions scalar-first, Hamilton, "
                            "rotating sensor-frame vectors into this frame.",
                            "SpatialAxes": "ENU",
                            "RotationRule": "right-hand",
                            "RotationOrder": "n/a",
                        },
                        "local": {
                            "Description": "Sensor frame of each IMU (its x, y, z axes).",
                            "RotationRule": "right-hand",
                        },
                        "jcs": {
                            "Description": "ISB joint coordinate system (Wu et al. 2002, "
                            "doi:10.1016/S0021-9290(01)00222-6): Cardan Z-X'-Y'' (flexion, "
                            "adduction, internal rotation), left side mirrored so + is the "
                            "same motion on both sides; pelvis relative to the walking "
                            "direction, rotation-obliquity-tilt (Baker 2001).",
                            "RotationRule": "right-hand",
                            "RotationOrder": "ZXY",
                        },
                    },
                }
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
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
        "SoftwareVersions": f"imuhip {__version__}",
        "MotionChannelCount": len(channels),
        "TrackedPointsCount": len({c.tracked_point for c in channels}),
        "RecordingDuration": round(len(data) / float(rate_hz), 6),
        "MissingValues": "n/a",
        "RotationRule": "right-hand",
        "RotationOrder": "ZXY",
        "SubjectArtefactDescription": "n/a",
    }
    for t, n in counts.items():
        if n:
            sidecar[_COUNT_FIELD[t]] = n
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
    scan_rows.append(f"{rel}\t{acq_time or 'n/a'}")
    scans_tsv.write_text("\n".join(scan_rows) + "\n", encoding="utf-8")
    return MotionBidsFiles(
        root, motion_tsv, channels_tsv, channels_json, motion_json, events_tsv, scans_tsv
    )


def check_motion_bids(root: str | Path) -> list[str]:
    """Violations of the checkable Motion-BIDS rules in a dataset (empty list = none found).

    Checked: ``dataset_description.json`` with ``Name`` and ``BIDSVersion``; every
    ``*_motion.tsv`` has a ``_channels.tsv`` and a ``_motion.json``, no header row, numeric or
    ``n/a`` cells, as many columns as channel rows; channels have the required columns, type and
    component keywords (upper-case types), axis components for ACCEL/GYRO/MAGN, quaternion or
    axis components for ORNT, SI units for typed channels; the sidecar has ``TaskName``,
    ``SamplingFrequency`` (positive number), ``TrackingSystemName`` equal to the tracksys label,
    and per-type channel counts that match.
    """
    root = Path(root)
    problems: list[str] = []
    desc = root / "dataset_description.json"
    if not desc.exists():
        problems.append(f"{desc}: missing")
    else:
        d = json.loads(desc.read_text(encoding="utf-8"))
        for k in ("Name", "BIDSVersion"):
            if k not in d:
                problems.append(f"{desc}: field {k} missing")
    motions = sorted(root.rglob("*_motion.tsv"))
    if not motions:
        problems.append(f"{root}: no *_motion.tsv file")
    for m in motions:
        base = m.name[: -len("_motion.tsv")]
        tracksys = re.search(r"_tracksys-([A-Za-z0-9]+)", base)
        if not tracksys or "_task-" not in base or not base.startswith("sub-"):
            problems.append(f"{m}: name must be sub-<s>[_ses-<x>]_task-<t>_tracksys-<k>_motion")
        ch = m.with_name(base + "_channels.tsv")
        js = m.with_name(base + "_motion.json")
        if not ch.exists():
            problems.append(f"{ch}: missing")
            continue
        if not js.exists():
            problems.append(f"{js}: missing")
            continue
        lines = ch.read_text(encoding="utf-8").splitlines()
        head = lines[0].split("\t")
        for col in _REQUIRED_COLUMNS:
            if col not in head:
                problems.append(f"{ch}: required column {col!r} missing")
        if any(col not in head for col in _REQUIRED_COLUMNS):
            continue
        rows = [dict(zip(head, ln.split("\t"), strict=False)) for ln in lines[1:] if ln]
        for i, r in enumerate(rows, start=2):
            t, comp, unit = r["type"], r["component"], r["units"]
            if t not in CHANNEL_TYPES:
                problems.append(f"{ch}: line {i}: type {t!r} not a motion channel type")
            if comp not in COMPONENTS:
                problems.append(f"{ch}: line {i}: component {comp!r} not allowed")
            if t in ("ACCEL", "GYRO", "MAGN", "ANGACCEL", "POS", "VEL") and comp not in AXES:
                problems.append(f"{ch}: line {i}: {t} needs component x, y or z, got {comp!r}")
            if t == "ORNT" and comp == "n/a":
                problems.append(f"{ch}: line {i}: ORNT needs an axis or quaternion component")
            if t in UNITS and unit != UNITS[t]:
                problems.append(f"{ch}: line {i}: {t} units {unit!r}, expected {UNITS[t]!r}")
        data_lines = m.read_text(encoding="utf-8").splitlines()
        for j, ln in enumerate(data_lines, start=1):
            cells = ln.split("\t")
            if len(cells) != len(rows):
                problems.append(
                    f"{m}: line {j}: {len(cells)} columns, channels.tsv has {len(rows)}"
                )
                break
            try:
                [float(c) for c in cells if c != "n/a"]
            except ValueError:
                problems.append(f"{m}: line {j}: a cell is neither a number nor n/a (header row?)")
                break
        meta = json.loads(js.read_text(encoding="utf-8"))
        for k in ("TaskName", "SamplingFrequency", "TrackingSystemName"):
            if k not in meta:
                problems.append(f"{js}: required field {k} missing")
        sf = meta.get("SamplingFrequency")
        if not isinstance(sf, int | float) or isinstance(sf, bool) or not sf > 0:
            problems.append(f"{js}: SamplingFrequency must be a positive number, got {sf!r}")
        if tracksys and meta.get("TrackingSystemName") != tracksys.group(1):
            problems.append(
                f"{js}: TrackingSystemName {meta.get('TrackingSystemName')!r} does not match "
                f"tracksys-{tracksys.group(1)}"
            )
        for t in CHANNEL_TYPES:
            n = sum(1 for r in rows if r["type"] == t)
            got = meta.get(_COUNT_FIELD[t])
            if got is not None and got != n:
                problems.append(f"{js}: {_COUNT_FIELD[t]} is {got}, channels.tsv has {n}")
        if "MotionChannelCount" in meta and meta["MotionChannelCount"] != len(rows):
            problems.append(f"{js}: MotionChannelCount {meta['MotionChannelCount']} != {len(rows)}")
    return problems
