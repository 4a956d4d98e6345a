"""Re-read a Motion-BIDS dataset and list what breaks the rules a program can check.

The keyword lists and units are the BIDS motion modality's (``_channels.tsv``); the sidecar keys
and frame fields are those both validators accept (:mod:`imuhip.interop._motion_bids_meta`).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Final

from imuhip.conventions import AXES
from imuhip.interop._motion_bids_meta import SIDECAR_KEYS

__all__ = [
    "CHANNEL_TYPES",
    "COMPONENTS",
    "COUNT_FIELD",
    "REQUIRED_COLUMNS",
    "UNITS",
    "check_motion_bids",
]

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
REQUIRED_COLUMNS: Final = ("name", "component", "type", "tracked_point", "units")
COUNT_FIELD: Final = {t: f"{t}ChannelCount" for t in CHANNEL_TYPES}
_ACQ_TIME_RE = re.compile(r"^(n/a|\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?)$")
_ROTATION_ORDERS: Final = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def _check_frames(path: Path, problems: list[str]) -> None:
    if not path.exists():
        return
    levels = (
        json.loads(path.read_text(encoding="utf-8")).get("reference_frame", {}).get("Levels", {})
    )
    for name, lv in levels.items():
        axes = lv.get("SpatialAxes")
        if axes is not None and not re.fullmatch(r"[APLRSI_]{3}", str(axes)):
            problems.append(f"{path}: {name}: SpatialAxes {axes!r} does not match ^[APLRSI_]{{3}}$")
        order = lv.get("RotationOrder")
        if order is not None and order not in _ROTATION_ORDERS:
            problems.append(f"{path}: {name}: RotationOrder {order!r} not in {_ROTATION_ORDERS}")
        rule = lv.get("RotationRule")
        if rule is not None and rule not in ("left-hand", "right-hand"):
            problems.append(f"{path}: {name}: RotationRule {rule!r} not left-hand/right-hand")


def _check_scans(root: Path, problems: list[str]) -> None:
    for scans in sorted(root.rglob("*_scans.tsv")):
        for i, ln in enumerate(scans.read_text(encoding="utf-8").splitlines()[1:], start=2):
            cells = ln.split("\t")
            if len(cells) > 1 and not _ACQ_TIME_RE.match(cells[1]):
                problems.append(
                    f"{scans}: line {i}: acq_time {cells[1]!r} not YYYY-MM-DDThh:mm:ss[.f] or n/a"
                )


def check_motion_bids(root: str | Path) -> list[str]:
    """Violations of the checkable Motion-BIDS rules in a dataset (empty list = none found).

    Checked: ``dataset_description.json`` with ``Name`` and ``BIDSVersion``; every
    ``*_motion.tsv`` has a ``_channels.tsv`` and a ``_motion.json``, no header row, numeric or
    ``n/a`` cells, as many columns as channel rows; channels have the required columns, type and
    component keywords (upper-case types), axis components for ACCEL/GYRO/MAGN, quaternion or
    axis components for ORNT, SI units for typed channels; the sidecar has ``TaskName``,
    ``SamplingFrequency`` (positive number), ``TrackingSystemName`` equal to the tracksys label,
    per-type channel counts that match and no key outside the motion.json fields; the
    ``reference_frame`` levels' ``SpatialAxes``/``RotationOrder``/``RotationRule`` values;
    ``acq_time`` without a UTC offset (``YYYY-MM-DDThh:mm:ss``) or ``n/a``.
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
    _check_scans(root, problems)
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
        for col in REQUIRED_COLUMNS:
            if col not in head:
                problems.append(f"{ch}: required column {col!r} missing")
        if any(col not in head for col in REQUIRED_COLUMNS):
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
        _check_frames(m.with_name(base + "_channels.json"), problems)
        meta = json.loads(js.read_text(encoding="utf-8"))
        for k in sorted(set(meta) - SIDECAR_KEYS):
            problems.append(f"{js}: key {k!r} is not a motion.json field")
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
            got = meta.get(COUNT_FIELD[t])
            if got is not None and got != n:
                problems.append(f"{js}: {COUNT_FIELD[t]} is {got}, channels.tsv has {n}")
        if "MotionChannelCount" in meta and meta["MotionChannelCount"] != len(rows):
            problems.append(f"{js}: MotionChannelCount {meta['MotionChannelCount']} != {len(rows)}")
    return problems
