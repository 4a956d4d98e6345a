"""Header of a generic per-sensor CSV: comment declarations, axis and time columns, their units.

See :mod:`imuhip.interop.generic_csv` for the format.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from imuhip.conventions import AXES
from imuhip.errors import ImportFormatError
from imuhip.interop._common import UNIT_FACTORS, unit_factor

__all__ = ["find_columns", "read_preamble", "time_column"]

_COMMENT_RE = re.compile(r"^\s*#\s*([A-Za-z_]+)\s*[:=]\s*(.*?)\s*$")
_TIME_NAMES = ("t", "time", "timestamp")
_QUANTITY_WORDS = {
    "acc": ("accelerometer", "acceleration", "accel", "acc"),
    "gyr": ("gyroscope", "angular velocity", "angular rate", "gyro", "gyr"),
    "mag": ("magnetometer", "magnetic field", "mag"),
}
# "Gyroscope X (deg/s)", "Accelerometer_Y [g]", "mag z (uT)": words, axis, unit in brackets
_PAREN_RE = re.compile(r"^\s*([a-z ]+?)[\s_.-]*([xyz])\s*[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*$")
_PAREN_TIME_RE = re.compile(r"^\s*(t|time|timestamp)\s*[(\[]\s*([^()\[\]]+?)\s*[)\]]\s*$")


def _unit_key(quantity: str, unit: str) -> str | None:
    """The :data:`UNIT_FACTORS` spelling of a unit written in brackets (``uT`` -> ``ut``)."""
    u = unit.strip().lower().replace("°", "deg").replace(" ", "")
    u = {"deg/sec": "deg/s", "rad/sec": "rad/s", "sec": "s", "m/s/s": "m/s2"}.get(u, u)
    return u if u in UNIT_FACTORS[quantity] else None


def _paren_columns(
    path: Path, names: Sequence[str], quantity: str
) -> tuple[list[str], float] | None:
    """Axis columns written as ``<Quantity> <X|Y|Z> (<unit>)`` (x-io, many loggers), or None."""
    found: dict[str, tuple[str, str]] = {}
    for c in names:
        m = _PAREN_RE.match(c.lower())
        if m and m.group(1).strip() in _QUANTITY_WORDS[quantity]:
            found[m.group(2)] = (c, m.group(3))
    if not found:
        return None
    if set(found) != set(AXES):
        raise ImportFormatError(
            f"{path}: incomplete {quantity} columns {[c for c, _ in found.values()]}: "
            "expected X, Y and Z"
        )
    units = {found[a][1].strip().lower() for a in AXES}
    keys = {_unit_key(quantity, u) for u in units}
    if len(keys) != 1 or None in keys:
        raise ImportFormatError(
            f"{path}: {quantity} columns {[found[a][0] for a in AXES]}: unknown or differing "
            f"units {sorted(units)} (expected one of {', '.join(UNIT_FACTORS[quantity])})"
        )
    key = keys.pop()
    assert key is not None
    return [found[a][0] for a in AXES], UNIT_FACTORS[quantity][key]


def read_preamble(path: Path) -> tuple[dict[str, str], int, str]:
    """Comment declarations, number of comment lines, header line."""
    decl: dict[str, str] = {}
    n = 0
    with path.open("r", encoding="utf-8-sig", errors="replace") as f:
        for line in f:
            stripped = line.strip()
            if stripped.startswith("#") or not stripped:
                m = _COMMENT_RE.match(line)
                if m:
                    decl[m.group(1).lower()] = m.group(2)
                n += 1
                continue
            return decl, n, line.rstrip("\r\n")
    raise ImportFormatError(f"{path}: no header row (expected column names such as t_s,acc_x_m_s2)")


def find_columns(
    path: Path, names: Sequence[str], quantity: str, declared_unit: str | None
) -> tuple[list[str], float] | None:
    """The three axis columns of ``quantity`` and their factor to SI, or None if absent."""
    lower = {c.strip().lower(): c for c in names}
    for unit in UNIT_FACTORS[quantity]:
        cols = [f"{quantity}_{a}_{unit}" for a in AXES]
        if all(c in lower for c in cols):
            return [lower[c] for c in cols], UNIT_FACTORS[quantity][unit]
    bare = [f"{quantity}_{a}" for a in AXES]
    if all(c in lower for c in bare):
        if declared_unit is None:
            raise ImportFormatError(
                f"{path}: columns {', '.join(bare)} carry no unit: write it in the name "
                f"({quantity}_x_{next(iter(UNIT_FACTORS[quantity]))}) or declare it "
                f"('# {quantity}_unit: ...' line or --{quantity}-unit)"
            )
        where = f"{path}: {quantity}_unit"
        return [lower[c] for c in bare], unit_factor(quantity, declared_unit, where=where)
    paren = _paren_columns(path, names, quantity)
    if paren is not None:
        return paren
    present = [c for c in names if c.strip().lower().startswith(f"{quantity}_")]
    if present:
        raise ImportFormatError(
            f"{path}: incomplete {quantity} columns {present}: expected {quantity}_x_<unit>, "
            f"{quantity}_y_<unit>, {quantity}_z_<unit> with one of the units "
            f"{', '.join(UNIT_FACTORS[quantity])}"
        )
    return None


def time_column(
    path: Path, names: Sequence[str], declared_unit: str | None
) -> tuple[str, float] | None:
    lower = {c.strip().lower(): c for c in names}
    for unit, factor in UNIT_FACTORS["time"].items():
        if f"t_{unit}" in lower:
            return lower[f"t_{unit}"], factor
    for c in names:
        m = _PAREN_TIME_RE.match(c.strip().lower())
        if m:
            key = _unit_key("time", m.group(2))
            if key is None:
                raise ImportFormatError(
                    f"{path}: time column {c!r}: unknown unit {m.group(2)!r} (expected one of "
                    f"{', '.join(UNIT_FACTORS['time'])})"
                )
            return c.strip(), UNIT_FACTORS["time"][key]
    for n in _TIME_NAMES:
        if n in lower:
            unit = declared_unit or "s"
            return lower[n], unit_factor("time", unit, where=f"{path}: time_unit")
    return None
