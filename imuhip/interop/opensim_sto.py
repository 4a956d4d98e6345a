"""OpenSim OpenSense orientation tables (``*_orientations.sto``): write and read.

The layout OpenSim's ``TimeSeriesTableQuaternion`` reads and its ``IMUPlacer`` /
``IMUInverseKinematicsTool`` consume (OpenSim 4.x, Delp et al. 2007,
doi:10.1109/TBME.2007.901024; OpenSense: Al Borno et al. 2022, doi:10.1186/s12984-022-01001-x)::

    DataRate=100.000000
    DataType=Quaternion
    version=3
    OpenSimVersion=4.5
    endheader
    time<TAB>pelvis_imu<TAB>femur_r_imu<TAB>...
    0<TAB>w,x,y,z<TAB>w,x,y,z<TAB>...

Each cell is one scalar-first quaternion of the IMU frame relative to the world. Column names are
OpenSim frame names: ``pelvis_imu``, ``femur_r_imu``, ``femur_l_imu``, ``tibia_r_imu``,
``tibia_l_imu``, ``calcn_r_imu``, ``calcn_l_imu`` (feet), ``torso_imu`` (imuhip's ``lumbar``
placement, see ``docs/interop.md``). Every sensor of a session is written.

World frame (``world=``). imuhip's world is ENU (Z up); OpenSim's ground is Y up.

* ``"zup"`` (default for imuhip's own sessions): imuhip's ENU world unchanged; set
  ``<sensor_to_opensim_rotations>-1.5707963267949 0 0</sensor_to_opensim_rotations>`` in the IMU
  Placer and IK setups (OpenSense's own setting for Z-up data: -90° about X maps Z up to Y up).
* ``"xsens_nwu"`` (Xsens imports made with ``world="nwu"``): the import's +90° turn about Z is
  undone, so the table holds exactly what OpenSim's ``XsensDataReader`` reads from the same
  files (its world is the MTw's NWU frame). Same setup as ``"zup"``. This matters: OpenSim's
  heading correction (``OpenSenseUtilities::computeHeadingCorrection``) turns the model by
  ``acos`` of the *tilted* base-IMU axis against ground X, which is not a pure heading angle, so
  a world turned about the vertical does not cancel out (84° instead of 90° on the OpenSense
  trial, hip rotation off by 7°).
* ``"opensim"``: the -90° X rotation is applied here (``q_opensim_enu ⊗ q``); the setup's
  ``sensor_to_opensim_rotations`` must then be ``0 0 0``.

:func:`write_session_sto` picks the world from the session (``docs/interop.md`` gives the
IMU Placer settings per mounting: ``base_imu_label``, ``base_heading_axis``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

import numpy as np

from imuhip.conventions import quat_conj, quat_from_axis_angle, quat_mul
from imuhip.errors import ImportFormatError
from imuhip.interop._common import FloatArray

__all__ = [
    "PLACEMENT_TO_OPENSIM",
    "Q_OPENSIM_ENU",
    "StoTable",
    "read_orientations_sto",
    "write_orientations_sto",
]

PLACEMENT_TO_OPENSIM: Final[dict[str, str]] = {
    "pelvis": "pelvis_imu",
    "thigh_r": "femur_r_imu",
    "thigh_l": "femur_l_imu",
    "shank_r": "tibia_r_imu",
    "shank_l": "tibia_l_imu",
    "lumbar": "torso_imu",
    "foot_r": "calcn_r_imu",
    "foot_l": "calcn_l_imu",
}
"""imuhip placement -> OpenSim IMU frame name (Rajagopal/OpenSense models)."""

Q_OPENSIM_ENU: Final = quat_from_axis_angle([1.0, 0.0, 0.0], -math.pi / 2)
"""-90° about X: ENU (Z up) world vectors -> OpenSim ground (Y up); x stays east."""

Q_NWU_ENU: Final = quat_from_axis_angle([0.0, 0.0, 1.0], -math.pi / 2)
"""-90° about Z: ENU world vectors -> the Xsens MTw world (X north, Y west, Z up); the inverse of
:data:`imuhip.interop.xsens.Q_ENU_NWU`."""

World = Literal["zup", "opensim", "xsens_nwu"]
_WORLDS: Final = ("zup", "opensim", "xsens_nwu")

OPENSIM_VERSION: Final = "4.5"


@dataclass(frozen=True, slots=True)
class StoTable:
    """A parsed orientation table: ``t_s (N,)``, ``q[name] (N, 4)`` scalar-first, header."""

    t_s: FloatArray
    q: dict[str, FloatArray]
    header: dict[str, str]

    @property
    def rate_hz(self) -> float:
        """``DataRate`` from the header."""
        return float(self.header["DataRate"])


def _world_rotation(world: str) -> FloatArray | None:
    """``q_<file world>_enu`` for ``world``, None for ENU itself."""
    if world not in _WORLDS:
        raise ValueError(f"world must be one of {', '.join(_WORLDS)}, got {world!r}")
    if world == "opensim":
        return Q_OPENSIM_ENU
    if world == "xsens_nwu":
        return Q_NWU_ENU
    return None


def write_orientations_sto(
    path: str | Path,
    t_s: FloatArray,
    q_world_sensor: Mapping[str, FloatArray],
    rate_hz: float,
    *,
    world: World = "zup",
    names: Mapping[str, str] | None = None,
    decimals: int = 10,
    header: Mapping[str, str] | None = None,
) -> Path:
    """Write an OpenSense orientation table.

    Parameters
    ----------
    path : str or Path
    t_s : (N,) float64
        Time of each row, seconds (written as given).
    q_world_sensor : mapping placement -> (N, 4) float64
        Scalar-first, world ENU (imuhip's convention). Placements are renamed with ``names``
        (default :data:`PLACEMENT_TO_OPENSIM`; unknown keys are written as ``<key>_imu``).
    rate_hz : float
        ``DataRate`` header value.
    world : {"zup", "xsens_nwu", "opensim"}
        See the module docstring.
    decimals : int
        Digits after the decimal point of each quaternion component.
    header : mapping str -> str, optional
        Extra ``key=value`` header lines (OpenSim keeps them as table metadata).
    """
    for k, v in (header or {}).items():
        if not k or any(c in k for c in "=\n\t") or "\n" in v:
            raise ValueError(f"header entry {k!r}={v!r}: keys need no '=', tab or newline")
    q_out_enu = _world_rotation(world)
    path = Path(path)
    t = np.asarray(t_s, np.float64)
    rename = dict(PLACEMENT_TO_OPENSIM if names is None else names)
    cols: list[str] = []
    cells: list[list[str]] = []
    for key, q in q_world_sensor.items():
        q = np.asarray(q, np.float64)
        if q.shape != (len(t), 4):
            raise ValueError(
                f"q_world_sensor[{key!r}] must have shape ({len(t)}, 4), got {q.shape}"
            )
        if q_out_enu is not None:
            q = quat_mul(q_out_enu, q)
        cols.append(rename.get(key, key if key.endswith("_imu") else f"{key}_imu"))
        fmt = f"%.{decimals}f"
        strs = np.char.mod(fmt, q)
        cells.append([",".join(row) for row in strs])
    lines = [
        f"DataRate={rate_hz:.6f}",
        "DataType=Quaternion",
        "version=3",
        f"OpenSimVersion={OPENSIM_VERSION}",
        *(f"{k}={v}" for k, v in (header or {}).items()),
        "endheader",
        "\t".join(["time", *cols]),
    ]
    times = np.char.mod("%.6f", t)
    body = ["\t".join([times[i]] + [c[i] for c in cells]) for i in range(len(t))]
    path.write_text("\n".join(lines + body) + "\n", encoding="utf-8")
    return path


def read_orientations_sto(path: str | Path, *, world: World = "zup") -> StoTable:
    """Read an OpenSense orientation table (the inverse of :func:`write_orientations_sto`).

    ``world="opensim"`` / ``"xsens_nwu"`` undo that world's rotation, returning ENU quaternions.

    Raises
    ------
    ImportFormatError
        No ``endheader``, ``DataType`` not Quaternion, no ``time`` column, or a cell that is not
        four comma-separated numbers (line and column named).
    """
    q_file_enu = _world_rotation(world)
    path = Path(path)
    text = path.read_text(encoding="utf-8").splitlines()
    header: dict[str, str] = {}
    try:
        end = next(i for i, ln in enumerate(text) if ln.strip() == "endheader")
    except StopIteration:
        raise ImportFormatError(
            f"{path}: no 'endheader' line (not an OpenSim .sto table)"
        ) from None
    for ln in text[:end]:
        if "=" in ln:
            k, v = ln.split("=", 1)
            header[k.strip()] = v.strip()
    if header.get("DataType", "Quaternion") != "Quaternion":
        raise ImportFormatError(
            f"{path}: DataType={header['DataType']}, expected DataType=Quaternion"
        )
    if end + 1 >= len(text):
        raise ImportFormatError(f"{path}: no column-label line after 'endheader'")
    labels = text[end + 1].split("\t")
    if labels[0].strip() != "time":
        raise ImportFormatError(
            f"{path}: line {end + 2}: first column is {labels[0]!r}, expected 'time'"
        )
    names = [lb.strip() for lb in labels[1:]]
    rows = [ln for ln in text[end + 2 :] if ln.strip()]
    n = len(rows)
    t = np.empty(n)
    q = {name: np.empty((n, 4)) for name in names}
    for i, ln in enumerate(rows):
        lineno = end + 3 + i
        parts = ln.split("\t")
        if len(parts) != len(labels):
            raise ImportFormatError(
                f"{path}: line {lineno}: {len(parts)} cells, expected {len(labels)} (time + "
                f"{len(names)} quaternion columns)"
            )
        try:
            t[i] = float(parts[0])
        except ValueError:
            raise ImportFormatError(
                f"{path}: line {lineno}, column time: expected a number, got {parts[0]!r}"
            ) from None
        for name, cell in zip(names, parts[1:], strict=True):
            comps = cell.split(",")
            try:
                if len(comps) != 4:
                    raise ValueError
                q[name][i] = [float(c) for c in comps]
            except ValueError:
                raise ImportFormatError(
                    f"{path}: line {lineno}, column {name}: expected 'w,x,y,z', got {cell!r}"
                ) from None
    if q_file_enu is not None:
        q = {k: quat_mul(quat_conj(q_file_enu), v) for k, v in q.items()}
    return StoTable(t_s=t, q=q, header=header)
