"""Xsens MT Manager text exports (``.txt``, tab/comma/semicolon separated) and OpenSense mappings.

An export starts with ``//`` lines (``// Update Rate: 100.0Hz``, firmware, filter profile), then a
header row and one row per sample. Recognised columns:

============================== =================================================================
``PacketCounter``              sample counter (u16, wraps); aligns the sensors of one trial
``SampleTimeFine``             10 kHz device ticks (u32, wraps); used when there is no counter
``Acc_X/Y/Z``                  m/s², sensor frame
``Gyr_X/Y/Z``                  rad/s (``gyr_unit="deg/s"`` for exports set to deg/s)
``Mag_X/Y/Z``                  arbitrary units normalised to the local field: imported only with
                               ``mag_ut_per_au`` given (else dropped, with a note)
``Quat_q0..q3``                orientation quaternion, scalar first, sensor -> Xsens world
``Mat[i][j]``                  orientation matrix R (row i, column j), ``v_world = R v_sensor``
``Roll/Pitch/Yaw``             Euler angles (deg), aerospace sequence Z-Y'-X''
============================== =================================================================

Xsens world frame: the MTw/MTx generation (MT Manager 4.x, the OpenSense trial) uses a local
tangent plane with X to magnetic north, Y west, Z up (NWU); MTi 4th generation and later default
to ENU. Both are Z up, so converting to imuhip's ENU is a rotation about the vertical:
``q_enu_nwu`` = +90° about z (north -> y, west -> -x). ``world="nwu"`` (default) applies it,
``world="enu"`` does not. No joint angle depends on this choice (only the common heading of
all sensors changes; pelvis angles are taken relative to the walking direction).
"""

from __future__ import annotations

import logging
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import numpy as np

from imuhip.conventions import (
    from_rotation,
    quat_from_axis_angle,
    quat_mul,
    quat_normalize,
)
from imuhip.errors import ImportFormatError

if TYPE_CHECKING:
    pass
from imuhip.interop._common import FloatArray, ImportedSensor, IntArray, sniff_delimiter
from imuhip.interop._common import unit_factor as _unit_factor
from imuhip.interop._csv_grid import numeric_column
from imuhip.interop._xsens_clock import (
    check_counter_steps,
    check_rate_against_ticks,
    unwrap,
)
from imuhip.interop._xsens_rows import repair_row_order as _repair_row_order

__all__ = [
    "OPENSIM_TO_PLACEMENT",
    "XsensFile",
    "import_xsens_trial",
    "read_imu_mappings",
    "read_xsens_txt",
    "xsens_heading_reference",
    "xsens_to_imported",
]

log = logging.getLogger(__name__)

OPENSIM_TO_PLACEMENT: Final[dict[str, str]] = {
    "pelvis": "pelvis",
    "femur_r": "thigh_r",
    "femur_l": "thigh_l",
    "tibia_r": "shank_r",
    "tibia_l": "shank_l",
    "torso": "lumbar",
    "calcn_r": "foot_r",
    "calcn_l": "foot_l",
}
"""OpenSim body (IMU frame name without ``_imu``) -> imuhip placement. ``torso`` is a chest
sensor in OpenSense setups, not a lumbar one: its "lumbar" angles are trunk-relative-to-pelvis.
Feet (``calcn_*``) are ``foot_*``; arms have no placement and are skipped (with a note)."""

Q_ENU_NWU: Final = quat_from_axis_angle([0.0, 0.0, 1.0], math.pi / 2)
"""Rotation taking NWU world vectors to ENU (x north -> y, y west -> -x)."""

_RATE_RE = re.compile(r"update\s*rate\s*:\s*([0-9.]+)\s*hz", re.IGNORECASE)
_MAT_RE = re.compile(r"^mat\[(\d)\]\[(\d)\]$", re.IGNORECASE)
_SERIAL_RE = re.compile(r"_([0-9A-Fa-f]{8})\.txt$")


@dataclass(frozen=True, slots=True)
class XsensFile:
    """One MT Manager export, columns in SI, orientation still in the Xsens world frame.

    ``counter`` is the unwrapped ``PacketCounter`` (or ticks-derived index), ``(N,)``;
    ``q_xsens_sensor`` is ``(N, 4)`` scalar-first or None; ``mag_au`` in Xsens arbitrary units.
    """

    path: Path
    rate_hz: float
    header: dict[str, str]
    counter: IntArray
    acc_m_s2: FloatArray | None
    gyr_rad_s: FloatArray | None
    mag_au: FloatArray | None
    q_xsens_sensor: FloatArray | None
    serial: str = ""
    notes: tuple[str, ...] = field(default=())


def read_xsens_txt(
    path: str | Path, *, rate_hz: float | None = None, gyr_unit: str = "rad/s"
) -> XsensFile:
    """Read one MT Manager text export.

    Parameters
    ----------
    path : str or Path
    rate_hz : float, optional
        Overrides/completes ``// Update Rate:``.
    gyr_unit : str
        Unit of ``Gyr_*`` columns (MT Manager default rad/s).

    Raises
    ------
    ImportFormatError
        No header row, no rate, no acceleration, neither orientation nor gyroscope, a
        non-number, a counter that jumps back (a few rows swapped locally are sorted and exact
        duplicate rows dropped, with a note), or one counter on two different rows.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    header: dict[str, str] = {}
    n_pre = 0
    header_line = None
    with path.open("r", encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            if line.startswith("//"):
                body = line[2:].strip()
                if ":" in body:
                    k, v = body.split(":", 1)
                    header[k.strip()] = v.strip()
                n_pre += 1
                continue
            if not line.strip():
                n_pre += 1
                continue
            header_line = line.rstrip("\r\n")
            break
    if header_line is None:
        raise ImportFormatError(f"{path}: no header row after the '//' lines (not an MT export?)")
    sep = sniff_delimiter(header_line)
    names = [c.strip() for c in header_line.split(sep)]
    lower = {c.lower(): c for c in names}
    rate = rate_hz
    for k, v in header.items():
        m = _RATE_RE.search(f"{k}: {v}")
        if m is None:
            continue
        if rate_hz is None:
            rate = float(m.group(1))
        elif abs(float(m.group(1)) / rate_hz - 1.0) > 1e-3:
            raise ImportFormatError(
                f"{path}: its header says '{k}: {v}' but the rate given is {rate_hz:g} Hz: "
                "the rate is for files whose header lacks it; drop it or correct it"
            )
    import pandas as pd

    try:
        df = pd.read_csv(path, sep=sep, skiprows=n_pre, dtype=None, skipinitialspace=True)
    except (pd.errors.ParserError, ValueError) as err:
        raise ImportFormatError(f"{path}: not a readable MT Manager export: {err}") from err
    df.columns = [str(c).strip() for c in df.columns]
    first_line = n_pre + 2
    if len(df) < 2:
        raise ImportFormatError(f"{path}: {len(df)} data rows; at least 2 are needed")
    notes: list[str] = []

    def trio(prefix: str) -> FloatArray | None:
        cols = [lower.get(f"{prefix}_{a}".lower()) for a in "XYZ"]
        if all(c is None for c in cols):
            return None
        if any(c is None for c in cols):
            raise ImportFormatError(
                f"{path}: incomplete {prefix}_* columns: expected {prefix}_X, {prefix}_Y, "
                f"{prefix}_Z"
            )
        return np.stack([numeric_column(path, df, str(c), first_line) for c in cols], axis=1)

    acc = trio("Acc")
    gyr = trio("Gyr")
    if gyr is not None:
        gyr = gyr * _unit_factor("gyr", gyr_unit, where=f"{path}: gyr_unit")
    mag = trio("Mag")

    q: FloatArray | None = None
    quat_cols = [lower.get(f"quat_q{i}") for i in range(4)]
    mat_cols = {(int(m.group(1)), int(m.group(2))): c for c in names if (m := _MAT_RE.match(c))}
    euler_cols = [lower.get(n) for n in ("roll", "pitch", "yaw")]
    if all(c is not None for c in quat_cols):
        q = np.stack([numeric_column(path, df, str(c), first_line) for c in quat_cols], axis=1)
    elif len(mat_cols) == 9:
        r = np.empty((len(df), 3, 3))
        for (i, j), c in mat_cols.items():
            r[:, i - 1, j - 1] = numeric_column(path, df, c, first_line)
        ok = np.all(np.isfinite(r), axis=(1, 2))
        q = np.full((len(df), 4), np.nan)
        if ok.any():
            from scipy.spatial.transform import Rotation

            q[ok] = from_rotation(Rotation.from_matrix(r[ok]))
    elif len(mat_cols):
        raise ImportFormatError(
            f"{path}: {len(mat_cols)} of the 9 Mat[i][j] orientation columns; expected all of "
            "Mat[1][1] ... Mat[3][3]"
        )
    elif all(c is not None for c in euler_cols):
        from scipy.spatial.transform import Rotation

        e = np.stack([numeric_column(path, df, str(c), first_line) for c in euler_cols], axis=1)
        ok = np.all(np.isfinite(e), axis=1)
        q = np.full((len(df), 4), np.nan)
        if ok.any():
            q[ok] = from_rotation(Rotation.from_euler("ZYX", e[ok][:, ::-1], degrees=True))
    if acc is None:
        raise ImportFormatError(
            f"{path}: missing column Acc_X (expected Acc_X, Acc_Y, Acc_Z in m/s²); "
            f"header has {names[:12]}{'...' if len(names) > 12 else ''}"
        )
    if q is None and gyr is None:
        raise ImportFormatError(
            f"{path}: neither orientation (Quat_q0..q3, Mat[i][j] or Roll/Pitch/Yaw) nor "
            "gyroscope (Gyr_X..Z) columns: nothing to compute orientation from"
        )
    if q is not None:
        finite = np.all(np.isfinite(q), axis=1)
        if finite.any():
            q[finite] = quat_normalize(q[finite])

    stf: FloatArray | None = None  # SampleTimeFine beside a PacketCounter
    if "PacketCounter" in df.columns or "packetcounter" in lower:
        col = lower["packetcounter"]
        raw = numeric_column(path, df, col, first_line)
        if not np.all(np.isfinite(raw)):
            i = int(np.flatnonzero(~np.isfinite(raw))[0])
            raise ImportFormatError(f"{path}: line {first_line + i}, column {col}: empty counter")
        counter = unwrap(raw, 1 << 16)
        if "sampletimefine" in lower:  # both: the ticks tell the rate the counter counts at
            stf = numeric_column(path, df, lower["sampletimefine"], first_line)
    elif "sampletimefine" in lower:
        col = lower["sampletimefine"]
        if rate is None:
            raise ImportFormatError(f"{path}: no '// Update Rate:' line; pass the rate")
        ticks = unwrap(numeric_column(path, df, col, first_line), 1 << 32)
        counter = np.rint((ticks - ticks[0]) * rate / 10_000.0).astype(np.int64)
        step = float(np.median(np.diff(ticks))) if len(ticks) > 1 else 10_000.0 / rate
        if len(ticks) > 1 and not 0.5 < step * rate / 10_000.0 < 1.5:
            raise ImportFormatError(
                f"{path}: column {col} advances a median {step:g} per row, but at the file's "
                f"{rate:g} Hz a row is {10_000.0 / rate:g} ticks of 10 kHz (Xsens "
                "SampleTimeFine): the column is in other units, or the rate is wrong"
            )
    else:
        col = "row"
        counter = np.arange(len(df), dtype=np.int64)
        notes.append(f"{path.name}: no PacketCounter/SampleTimeFine: rows taken as consecutive")
    if col != "row":
        keep, fixed = _repair_row_order(path, counter, (acc, gyr, mag, q), col, first_line)
        if fixed:
            notes.extend(fixed)
            counter = counter[keep]
            acc, gyr, mag, q = (None if b is None else b[keep] for b in (acc, gyr, mag, q))
            stf = None if stf is None else stf[keep]
    steps = np.diff(counter)
    if rate is None:
        raise ImportFormatError(
            f"{path}: no '// Update Rate: <Hz>' header line and no rate given (--rate-hz)"
        )
    if stf is not None:
        check_rate_against_ticks(path, counter, stf, float(rate))
    check_counter_steps(path, col, steps, float(rate))
    n_lost = int(np.sum(steps - 1))
    if n_lost:
        notes.append(f"{path.name}: {n_lost} sample(s) missing from the counter sequence")
    m = _SERIAL_RE.search(path.name)
    return XsensFile(
        path=path,
        rate_hz=float(rate),
        header=header,
        counter=counter,
        acc_m_s2=acc,
        gyr_rad_s=gyr,
        mag_au=mag,
        q_xsens_sensor=q,
        serial=m.group(1).upper() if m else "",
        notes=tuple(notes),
    )


def xsens_to_imported(
    xf: XsensFile,
    placement: str,
    *,
    world: Literal["nwu", "enu"] = "nwu",
    mag_ut_per_au: float | None = None,
    counter0: int | None = None,
) -> ImportedSensor:
    """Convert a read export to an :class:`ImportedSensor` (ENU world, SI, rows with NaN dropped).

    ``counter0`` is the trial's common first counter (sample index 0), default this file's own.
    """
    if world not in ("nwu", "enu"):
        raise ValueError(f"world must be 'nwu' or 'enu', got {world!r}")
    assert xf.acc_m_s2 is not None
    blocks = [xf.acc_m_s2] + [b for b in (xf.gyr_rad_s, xf.q_xsens_sensor) if b is not None]
    ok = np.all(np.stack([np.all(np.isfinite(b), axis=1) for b in blocks]), axis=0)
    notes = list(xf.notes)
    if not ok.all():
        notes.append(f"{xf.path.name}: {int((~ok).sum())} row(s) with empty values dropped")
    q = None
    if xf.q_xsens_sensor is not None:
        q = xf.q_xsens_sensor[ok]
        if world == "nwu":
            q = quat_mul(Q_ENU_NWU, q)
    mag = None
    if xf.mag_au is not None:
        if mag_ut_per_au is None:
            notes.append(
                f"{xf.path.name}: Mag_* columns (arbitrary units) dropped: give mag_ut_per_au"
            )
        else:
            mag = xf.mag_au[ok] * mag_ut_per_au
    c0 = int(xf.counter[0]) if counter0 is None else int(counter0)
    idx = xf.counter[ok] - c0
    heading_ref = xsens_heading_reference(xf) if q is not None else None
    return ImportedSensor(
        placement=placement,
        rate_hz=xf.rate_hz,
        sample_idx=idx.astype(np.int64),
        t_s=idx / xf.rate_hz,
        acc_m_s2=xf.acc_m_s2[ok],
        gyr_rad_s=None if xf.gyr_rad_s is None else xf.gyr_rad_s[ok],
        mag_ut=mag,
        q_world_sensor=q,
        source=str(xf.path),
        serial=xf.serial,
        model="MTw" if xf.serial.startswith("00B") else "",  # Xsens ids 00B... are MTw units
        firmware=xf.header.get("Firmware Version", "").strip() if xf.header else "",
        notes=tuple(notes),
        heading_reference=heading_ref,
    )


def xsens_heading_reference(xf: XsensFile) -> str | None:
    """What anchors the heading of an export's on-board orientation, from its header.

    Xsens' filter profiles reference heading to the magnetic field except the ``VRU`` profiles
    (vertical reference unit: gyroscope heading), and Active Heading Stabilization, when enabled,
    replaces magnetic heading tracking (Xsens knowledge base, "Use of Active Heading
    Stabilization (AHS) in MTi"; MTw Awinda user manual, filter profiles). The OpenSense trial
    says ``// Filter Profile: human (46.1)`` and ``// Option Flags: AHS Disabled ...``:
    magnetometer-referenced.

    Returns
    -------
    ``"magnetometer"``, ``"none"`` (VRU profile or AHS enabled), or ``None`` when the header
    names no filter profile and the file has no ``Mag_*`` columns (unknown).
    """
    profile = xf.header.get("Filter Profile", "").strip().lower()
    flags = xf.header.get("Option Flags", "").lower()
    if profile.startswith("vru") or "ahs enabled" in flags:
        return "none"
    if profile or xf.mag_au is not None:
        return "magnetometer"
    return None


def read_imu_mappings(path: str | Path) -> tuple[str, dict[str, str]]:
    """Read an OpenSense ``XsensDataReaderSettings`` XML (``myIMUMappings.xml``).

    Returns
    -------
    trial_prefix : str
    sensors : dict
        Sensor id (``"00B42279"``, no leading underscore) -> OpenSim frame name
        (``"pelvis_imu"``).
    """
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as err:
        raise ImportFormatError(f"{path}: not valid XML: {err}") from err
    prefix_el = root.find(".//trial_prefix")
    prefix = (prefix_el.text or "").strip() if prefix_el is not None else ""
    out: dict[str, str] = {}
    for el in root.iter("ExperimentalSensor"):
        sid = (el.get("name") or "").strip().lstrip("_")
        name_el = el.find("name_in_model")
        if not sid or name_el is None or not (name_el.text or "").strip():
            raise ImportFormatError(
                f"{path}: an ExperimentalSensor lacks its name attribute or <name_in_model>"
            )
        out[sid.upper()] = name_el.text.strip()  # type: ignore[union-attr]
    if not out:
        raise ImportFormatError(f"{path}: no <ExperimentalSensor> entries (not an IMU mapping?)")
    return prefix, out


def opensim_name_to_placement(name: str) -> str | None:
    """``"femur_r_imu"`` -> ``"thigh_r"``; None for bodies without a placement (arms)."""
    body = name[:-4] if name.endswith("_imu") else name
    return OPENSIM_TO_PLACEMENT.get(body)


def import_xsens_trial(
    files: Sequence[str | Path] | None = None,
    *,
    mapping: str | Path | None = None,
    folder: str | Path | None = None,
    placements: Mapping[str, str] | None = None,
    world: Literal["nwu", "enu"] = "nwu",
    rate_hz: float | None = None,
    gyr_unit: str = "rad/s",
    mag_ut_per_au: float | None = None,
) -> tuple[list[ImportedSensor], list[str]]:
    """Read the sensors of one Xsens trial and put them on a common counter.

    Either ``mapping`` (an OpenSense ``myIMUMappings.xml``; files are found in ``folder``, default
    the mapping's folder, as ``<trial_prefix>_<sensor id>.txt``) or ``files`` with
    ``placements`` (file path -> placement) must be given.

    Returns
    -------
    sensors : list of ImportedSensor
        Sample index 0 is the latest first counter of all files (the common start).
    notes : list of str
        Skipped sensors (feet, arms), dropped magnetometer, the chest-as-lumbar remark, ...
    """
    notes: list[str] = []
    chosen: list[tuple[Path, str]] = []
    chest: set[str] = set()  # torso_imu files: a chest sensor, whatever placement it gets
    if mapping is not None:
        mapping = Path(mapping)
        prefix, ids = read_imu_mappings(mapping)
        base = Path(folder) if folder is not None else mapping.parent
        for sid, name in ids.items():
            placement = opensim_name_to_placement(name)
            if placement is None:
                notes.append(f"sensor {sid} ({name}): no imuhip placement, skipped")
                continue
            cands = sorted(base.glob(f"{prefix}_{sid}.txt")) or sorted(base.glob(f"*{sid}*.txt"))
            if not cands:
                raise ImportFormatError(
                    f"{mapping}: sensor {sid} ({name}) has no export file "
                    f"{base / f'{prefix}_{sid}.txt'}"
                )
            chosen.append((cands[0], placement))
            if name.startswith("torso"):
                chest.add(str(cands[0]))
                notes.append(
                    f"sensor {sid} (torso_imu) is a chest/trunk sensor imported as 'lumbar': "
                    "lumbar angles are trunk relative to pelvis"
                )
    elif files is not None and placements is not None:
        for f in files:
            p = placements.get(str(f))
            if p is None:
                raise ImportFormatError(f"{f}: no placement given for this file")
            chosen.append((Path(f), p))
    else:
        raise ValueError("give either mapping= or files= with placements=")
    if not chosen:
        raise ImportFormatError("no sensor of the trial maps to an imuhip placement")
    seen: dict[str, Path] = {}
    for path, placement in chosen:
        if placement in seen:
            raise ImportFormatError(
                f"{path}: placement {placement!r} already given by {seen[placement]}"
            )
        seen[placement] = path
    read = [(read_xsens_txt(p, rate_hz=rate_hz, gyr_unit=gyr_unit), pl) for p, pl in chosen]
    r0 = read[0][0].rate_hz
    for xf, _ in read[1:]:
        if abs(xf.rate_hz - r0) > 0.01 * r0:
            raise ImportFormatError(
                f"{xf.path}: update rate {xf.rate_hz:g} Hz differs from {read[0][0].path} "
                f"({r0:g} Hz): mixed rates in one trial"
            )
    c0 = max(int(xf.counter[0]) for xf, _ in read)
    sensors = [
        xsens_to_imported(xf, pl, world=world, mag_ut_per_au=mag_ut_per_au, counter0=c0)
        for xf, pl in read
    ]
    sensors = [replace(s, body_site="chest") if s.source in chest else s for s in sensors]
    for s in sensors:
        notes.extend(s.notes)
    return sensors, notes
