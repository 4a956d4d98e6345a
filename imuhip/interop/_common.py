"""Shared pieces of the importers: the per-sensor hand-off and small parsing helpers."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from imuhip.conventions import GRAVITY_M_S2, Placement
from imuhip.errors import ImportFormatError
from imuhip.types import check_shape

__all__ = ["UNIT_FACTORS", "ImportedSensor", "unit_factor"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# unit spelling (lower case, as written in column names or options) -> factor to SI
UNIT_FACTORS: Final[dict[str, dict[str, float]]] = {
    "acc": {
        "m_s2": 1.0,
        "m/s2": 1.0,
        "m/s^2": 1.0,
        "m/s²": 1.0,
        "g": GRAVITY_M_S2,
        "mg": GRAVITY_M_S2 * 1e-3,
    },
    "gyr": {
        "rad_s": 1.0,
        "rad/s": 1.0,
        "deg_s": np.pi / 180.0,
        "deg/s": np.pi / 180.0,
        "dps": np.pi / 180.0,
    },
    "mag": {
        "ut": 1.0,
        "µt": 1.0,
        "nt": 1e-3,
        "mt": 1e3,
        "gauss": 100.0,
        "mgauss": 0.1,
    },
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9},
}
"""Accepted unit spellings per quantity and their factor to SI (m/s², rad/s, µT, s)."""


def unit_factor(quantity: str, unit: str, *, where: str) -> float:
    """Factor converting ``unit`` of ``quantity`` (acc, gyr, mag, time) to SI.

    Raises
    ------
    ImportFormatError
        Naming ``where`` (file and column or option) and the accepted spellings.
    """
    table = UNIT_FACTORS[quantity]
    key = unit.strip().lower()
    if key not in table:
        raise ImportFormatError(
            f"{where}: unknown {quantity} unit {unit!r} (expected one of {', '.join(table)})"
        )
    return table[key]


@dataclass(frozen=True, slots=True)
class ImportedSensor:
    """One foreign sensor file, read and converted to SI, before it becomes a session.

    Parameters
    ----------
    placement : str
        A :class:`~imuhip.conventions.Placement` value.
    rate_hz : float
        Nominal sample rate.
    sample_idx : (N,) int64
        Sample index from the first sample, on the nominal grid; gaps skip indices.
    t_s : (N,) float64
        The file's own time of each sample (device clock), seconds.
    acc_m_s2 : (N, 3) float64, sensor frame
    gyr_rad_s : (N, 3) float64 or None, sensor frame
    mag_ut : (N, 3) float64 or None, sensor frame
    q_world_sensor : (N, 4) float64 or None
        Vendor orientation, scalar-first, already converted to the imuhip ENU world.
    source : str
        The file it came from (for messages and provenance).
    serial, model, firmware : str
        Device id, model name (never the firmware version) and firmware version, if known.
    body_site : str
        Where the sensor really sat when that differs from what ``placement`` implies (an
        OpenSense ``torso_imu`` on the chest imported as ``lumbar``: ``"chest"``), else ``""``.
    notes : tuple of str
        Human-readable remarks made while reading (dropped columns, filled gaps, ...).
    heading_reference : {"magnetometer", "none"} or None
        What anchors the heading of the vendor orientation: ``"magnetometer"`` (the vendor's
        fusion used the magnetometer: a common, drift-free heading across sensors), ``"none"``
        (gyroscope only, e.g. Xsens VRU profiles or AHS), ``None`` unknown or no orientation.
    """

    placement: str
    rate_hz: float
    sample_idx: IntArray
    t_s: FloatArray
    acc_m_s2: FloatArray
    gyr_rad_s: FloatArray | None
    mag_ut: FloatArray | None
    q_world_sensor: FloatArray | None
    source: str
    serial: str = ""
    model: str = ""
    notes: tuple[str, ...] = field(default=())
    heading_reference: str | None = None
    firmware: str = ""
    body_site: str = ""

    def __post_init__(self) -> None:
        if self.placement not in {p.value for p in Placement}:
            known = ", ".join(p.value for p in Placement)
            raise ValueError(f"unknown placement {self.placement!r} (known: {known})")
        if not (np.isfinite(self.rate_hz) and self.rate_hz > 0):
            raise ValueError(f"rate_hz must be positive, got {self.rate_hz}")
        n = len(self.sample_idx)
        check_shape("sample_idx", self.sample_idx, (n,))
        check_shape("t_s", self.t_s, (n,))
        check_shape("acc_m_s2", self.acc_m_s2, (n, 3))
        if self.gyr_rad_s is not None:
            check_shape("gyr_rad_s", self.gyr_rad_s, (n, 3))
        if self.mag_ut is not None:
            check_shape("mag_ut", self.mag_ut, (n, 3))
        if self.q_world_sensor is not None:
            check_shape("q_world_sensor", self.q_world_sensor, (n, 4))
        if self.heading_reference not in (None, "magnetometer", "none"):
            raise ValueError(
                "heading_reference must be 'magnetometer', 'none' or None, "
                f"got {self.heading_reference!r}"
            )

    def __len__(self) -> int:
        return len(self.sample_idx)


def sniff_delimiter(header_line: str) -> str:
    """Tab if the header has tabs, else semicolon if it has semicolons and no commas, else comma."""
    if "\t" in header_line:
        return "\t"
    if ";" in header_line and "," not in header_line:
        return ";"
    return ","


def display(path: str | Path) -> str:
    """How a file is named in messages."""
    return str(path)
