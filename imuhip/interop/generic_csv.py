"""Generic per-sensor CSV: one file per sensor, a documented header, SI or declared units.

Format (``docs/interop.md`` is the full description)::

    # rate_hz: 100            <- optional comment lines "# key: value" (or key=value) at the top
    # acc_unit: g             <- unit of unit-less columns (acc_x, gyr_x, mag_x, t)
    t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s[,mag_x_ut,...]
    0.00,0.12,0.03,9.79,0.001,-0.002,0.000
    ...

Columns are matched case-insensitively; the unit is the suffix (``acc_x_g``, ``gyr_x_deg_s``,
``mag_x_nt``, ``t_ms``) or declared (comment line or option) for bare names (``acc_x``). Either a
time column or a rate (comment line or option) is required. Other columns are ignored.
Headers with the unit in brackets (``Time (s)``, ``Accelerometer X (g)``, ``Gyroscope X (deg/s)``,
``Magnetometer X (uT)``: x-io Fusion and many loggers) are recognised too. Slightly irregular
time stamps of one rate are placed on the inferred nominal grid (see :func:`_grid_steps`).
Comma, semicolon and tab separators are recognised from the header line.

Rows with an empty or NaN value in a used column are missing samples: short runs become a gap
(as a lost packet would), runs longer than ``max_gap_s`` are refused. Every refusal is one
:class:`~imuhip.errors.ImportFormatError` line naming the file, the line or column, and what was
expected.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from imuhip.conventions import AXES, Placement

if TYPE_CHECKING:
    import pandas as pd
from imuhip.errors import ImportFormatError
from imuhip.interop._common import (
    UNIT_FACTORS,
    FloatArray,
    ImportedSensor,
    IntArray,
    sniff_delimiter,
    unit_factor,
)

__all__ = ["CsvOptions", "read_sensor_csv", "write_sensor_csv"]

log = logging.getLogger(__name__)

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


@dataclass(frozen=True, slots=True)
class CsvOptions:
    """Declarations that override or complete a file's header.

    Units are spellings from :data:`imuhip.interop._common.UNIT_FACTORS` (``"g"``, ``"deg/s"``,
    ``"nt"``, ``"ms"``...). They apply to bare column names (``acc_x``) only; a unit written in a
    column name always wins. ``rate_hz`` is the nominal rate (required without a time column; with
    one it must agree with the time steps within 2 %). ``max_gap_s``: the longest run of missing
    rows, or time jump, accepted as a gap.
    """

    rate_hz: float | None = None
    acc_unit: str | None = None
    gyr_unit: str | None = None
    mag_unit: str | None = None
    time_unit: str | None = None
    max_gap_s: float = 0.5


def _read_preamble(path: Path) -> tuple[dict[str, str], int, str]:
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


def _find_columns(
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


def _time_column(
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


def _numeric(path: Path, df: pd.DataFrame, col: str, first_line: int) -> FloatArray:
    """Column as float64 with NaN for empty cells; error naming the first non-number."""
    import pandas as pd

    s = df[col]
    if s.dtype.kind in "fiu":
        return s.to_numpy(dtype=np.float64)
    num = pd.to_numeric(s, errors="coerce")
    bad = num.isna() & s.notna() & (s.astype(str).str.strip() != "")
    bad &= ~s.astype(str).str.strip().str.lower().isin(["nan", "na", "n/a"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ImportFormatError(
            f"{path}: line {first_line + i}, column {col}: expected a number, got {s.iloc[i]!r}"
        )
    return num.to_numpy(dtype=np.float64)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open runs of True in a boolean array."""
    d = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(d == 1).tolist(), np.flatnonzero(d == -1).tolist(), strict=True))


_STEP_TOL = 0.3
"""Largest deviation of a time step (and of a sample's time) from the fitted grid, in periods."""
_RATE_SNAP = 2e-4
"""A fitted rate within this relative distance of a whole number of Hz is that number."""


def _grid_steps(
    path: Path,
    t_ok: FloatArray,
    ok: IntArray,
    first_line: int,
    tname: str,
    rate_decl: float | None,
) -> tuple[float, FloatArray]:
    """Nominal rate and whole-period steps between consecutive complete rows.

    Loggers stamp samples with jitter or a coarse clock (x-io Fusion files step 10.08 ms with an
    occasional 7.56 ms): the period is first the median step, then refined by a least-squares fit
    of the times to the sample indices; each step is rounded to a whole number of periods. Steps
    more than ``_STEP_TOL`` periods from a whole number, or samples drifting that far from the
    fitted grid, mean mixed or irregular rates and are refused.
    """
    dt = np.diff(t_ok)
    step0 = float(np.median(dt / np.maximum(np.diff(ok), 1)))
    idx = np.concatenate([[0.0], np.cumsum(np.maximum(1.0, np.rint(dt / step0)))])
    period = step0
    if idx[-1] > 0:
        a_mat = np.stack([np.ones_like(idx), idx], axis=1)
        (_, p_fit), *_ = np.linalg.lstsq(a_mat, t_ok - t_ok[0], rcond=None)
        if np.isfinite(p_fit) and p_fit > 0:
            period = float(p_fit)
    ratio = dt / period
    k = np.rint(ratio)
    idx = np.concatenate([[0.0], np.cumsum(np.maximum(k, 1.0))])
    resid = (t_ok - t_ok[0] - period * idx) / period
    resid -= float(np.median(resid))
    off = (k < 1) | (np.abs(ratio - k) > _STEP_TOL) | (np.abs(resid[1:]) > _STEP_TOL)
    rate = 1.0 / period
    if np.any(off):
        j = int(np.flatnonzero(off)[0])
        i = int(ok[j + 1])
        raise ImportFormatError(
            f"{path}: line {first_line + i}, column {tname}: step of {dt[j]:.6g} s from "
            f"the previous sample, expected a multiple of {period:.6g} s ({rate:.6g} Hz, "
            f"within {_STEP_TOL:g} of a period): mixed or irregular rates (resample to one "
            "rate before importing)"
        )
    if rate_decl is not None:
        if abs(rate - rate_decl) > 0.02 * rate_decl:
            raise ImportFormatError(
                f"{path}: declared rate {rate_decl:g} Hz but column {tname} steps at "
                f"{rate:.6g} Hz; expected them to agree within 2 %"
            )
        rate = float(rate_decl)
    elif abs(rate - round(rate)) <= _RATE_SNAP * rate and round(rate) > 0:
        rate = float(round(rate))
    return rate, k


def read_sensor_csv(
    path: str | Path, placement: str, options: CsvOptions | None = None
) -> ImportedSensor:
    """Read one generic per-sensor CSV file into SI units.

    Parameters
    ----------
    path : str or Path
    placement : str
        Where the sensor sat (a :class:`~imuhip.conventions.Placement` value).
    options : CsvOptions, optional
        Rate and units for files whose header does not state them.

    Returns
    -------
    ImportedSensor
        ``acc_m_s2`` / ``gyr_rad_s`` / ``mag_ut`` in the sensor frame; ``sample_idx`` on the
        nominal grid (gaps skip indices); ``gyr_rad_s`` is ``None`` if the file has none.

    Raises
    ------
    ImportFormatError
        Missing columns, unknown units, non-numbers, time that does not increase, steps that
        do not fit one rate (mixed rates), or a run of empty/NaN rows longer than ``max_gap_s``.
    """
    opt = options or CsvOptions()
    path = Path(path)
    if placement not in {p.value for p in Placement}:
        known = ", ".join(p.value for p in Placement)
        raise ImportFormatError(f"{path}: unknown placement {placement!r} (known: {known})")
    if not path.exists():
        raise FileNotFoundError(2, "No such file", str(path))
    decl, n_comment, header = _read_preamble(path)
    sep = sniff_delimiter(header)
    names = [c.strip() for c in header.split(sep)]

    def _decl(key: str, given: str | None) -> str | None:
        return given if given is not None else decl.get(key)

    acc = _find_columns(path, names, "acc", _decl("acc_unit", opt.acc_unit))
    if acc is None:
        raise ImportFormatError(
            f"{path}: missing accelerometer columns: expected acc_x_m_s2, acc_y_m_s2, acc_z_m_s2 "
            f"(or acc_x_g ..., or acc_x ... with a declared unit); header has {names}"
        )
    gyr = _find_columns(path, names, "gyr", _decl("gyr_unit", opt.gyr_unit))
    mag = _find_columns(path, names, "mag", _decl("mag_unit", opt.mag_unit))
    tcol = _time_column(path, names, _decl("time_unit", opt.time_unit))
    rate_decl: float | None = opt.rate_hz
    if rate_decl is None and "rate_hz" in decl:
        try:
            rate_decl = float(decl["rate_hz"])
        except ValueError:
            raise ImportFormatError(
                f"{path}: header line '# rate_hz: {decl['rate_hz']}': expected a number"
            ) from None
    if rate_decl is not None and not (math.isfinite(rate_decl) and rate_decl > 0):
        raise ImportFormatError(f"{path}: rate_hz must be a positive number, got {rate_decl}")
    if tcol is None and rate_decl is None:
        raise ImportFormatError(
            f"{path}: no time column (t_s, t_ms, ...) and no sample rate: add a t_s column, "
            "a '# rate_hz: <Hz>' line, or pass --rate-hz"
        )

    import pandas as pd

    used = [c for grp in (acc, gyr, mag) if grp is not None for c in grp[0]]
    if tcol is not None:
        used.append(tcol[0])
    try:
        df = pd.read_csv(
            path,
            sep=sep,
            skiprows=n_comment,
            usecols=lambda c: c.strip() in used,
            skipinitialspace=True,
            encoding="utf-8-sig",
        )
    except (pd.errors.ParserError, ValueError) as err:
        raise ImportFormatError(f"{path}: not a readable CSV table: {err}") from err
    df.columns = [c.strip() for c in df.columns]
    first_line = n_comment + 2  # 1-based line number of the first data row
    if len(df) < 2:
        raise ImportFormatError(f"{path}: {len(df)} data rows; at least 2 are needed")

    def _block(grp: tuple[list[str], float] | None) -> FloatArray | None:
        if grp is None:
            return None
        cols, factor = grp
        return np.stack([_numeric(path, df, c, first_line) for c in cols], axis=1) * factor

    acc_v = _block(acc)
    assert acc_v is not None
    gyr_v = _block(gyr)
    mag_v = _block(mag)
    t_raw = _numeric(path, df, tcol[0], first_line) * tcol[1] if tcol is not None else None

    # missing rows: any used value empty/NaN/inf
    blocks = [b for b in (acc_v, gyr_v, mag_v) if b is not None]
    missing = np.zeros(len(df), dtype=bool)
    for blk_v in blocks:
        missing |= ~np.all(np.isfinite(blk_v), axis=1)
    if t_raw is not None:
        missing |= ~np.isfinite(t_raw)

    # rate and sample index
    n_rows = len(df)
    tname = tcol[0] if tcol is not None else "t"
    if t_raw is not None:
        ok = np.flatnonzero(~missing)
        if len(ok) < 2:
            raise ImportFormatError(f"{path}: fewer than 2 complete rows")
        t_ok = t_raw[ok]
        dt = np.diff(t_ok)
        bad = np.flatnonzero(dt <= 0)
        if len(bad):
            i = int(ok[bad[0] + 1])
            raise ImportFormatError(
                f"{path}: line {first_line + i}, column {tname}: time {float(t_raw[i])!r} does "
                f"not increase (previous sample at {float(t_ok[bad[0]])!r}); time must increase "
                "strictly"
            )
        rate, k = _grid_steps(path, t_ok, ok, first_line, tname, rate_decl)
        max_jump = max(0, math.floor(opt.max_gap_s * rate + 1e-9))
        absent = k - np.diff(ok)  # samples missing from the file (empty rows are checked below)
        big = np.flatnonzero(absent > max_jump)
        if len(big):
            j = int(big[0])
            i = int(ok[j + 1])
            raise ImportFormatError(
                f"{path}: line {first_line + i}, column {tname}: time jumps by {dt[j]:.6g} s "
                f"({int(absent[j])} missing samples at {rate:.6g} Hz); at most {max_jump} "
                f"missing samples ({opt.max_gap_s:g} s, --max-gap-s) are accepted as a gap"
            )
        idx_ok = np.concatenate([[0], np.cumsum(k.astype(np.int64))])
        sample_idx_full = np.full(n_rows, -1, dtype=np.int64)
        sample_idx_full[ok] = idx_ok
        t_full = t_raw.copy()
    else:
        assert rate_decl is not None
        rate = float(rate_decl)
        sample_idx_full = np.arange(n_rows, dtype=np.int64)
        t_full = sample_idx_full.astype(np.float64) / rate

    max_gap = max(0, math.floor(opt.max_gap_s * rate + 1e-9))
    for a, b in _runs(missing):
        if b - a > max_gap:
            cols = []
            for name, blk in (("acc", acc), ("gyr", gyr), ("mag", mag)):
                if blk is None:
                    continue
                vals = {"acc": acc_v, "gyr": gyr_v, "mag": mag_v}[name]
                assert vals is not None
                for c, col in zip(blk[0], vals.T, strict=True):
                    if not np.all(np.isfinite(col[a:b])):
                        cols.append(c)
            if t_raw is not None and not np.all(np.isfinite(t_raw[a:b])):
                cols.append(tname)
            raise ImportFormatError(
                f"{path}: lines {first_line + a}-{first_line + b - 1}: {b - a} consecutive rows "
                f"with empty or NaN values (columns {', '.join(cols)}); at most {max_gap} "
                f"missing rows ({opt.max_gap_s:g} s, --max-gap-s) are accepted as a gap"
            )
    keep = ~missing  # without a time column a missing row is a lost sample at its position
    sample_idx: IntArray = sample_idx_full[keep]
    sample_idx = sample_idx - sample_idx[0]
    notes: list[str] = []
    n_missing = int(missing.sum())
    kept_rows = np.flatnonzero(keep)
    outside = int(kept_rows[0] + (n_rows - 1 - kept_rows[-1]))  # rows before/after the data
    if n_missing:
        where = (
            f" ({outside} before the first or after the last complete row: outside the recording)"
            if outside
            else ""
        )
        notes.append(
            f"{path.name}: {n_missing} row(s) with empty/NaN values treated as lost samples{where}"
        )
    if t_raw is not None:
        steps = np.diff(sample_idx)
        n_skipped = int(np.sum(steps - 1)) - (n_missing - outside)
        if n_skipped > 0:
            notes.append(
                f"{path.name}: {n_skipped} sample(s) missing from the time column (time steps "
                f"of more than one period at {rate:.6g} Hz), recorded as gaps"
            )
    if gyr_v is None:
        notes.append(f"{path.name}: no gyroscope columns")
    return ImportedSensor(
        placement=placement,
        rate_hz=float(rate),
        sample_idx=sample_idx,
        t_s=np.asarray(t_full[keep], dtype=np.float64),
        acc_m_s2=acc_v[keep],
        gyr_rad_s=None if gyr_v is None else gyr_v[keep],
        mag_ut=None if mag_v is None else mag_v[keep],
        q_world_sensor=None,
        source=str(path),
        serial=decl.get("serial", ""),
        model=decl.get("model", ""),
        notes=tuple(notes),
    )


def write_sensor_csv(
    path: str | Path,
    t_s: FloatArray,
    acc_m_s2: FloatArray,
    gyr_rad_s: FloatArray | None,
    mag_ut: FloatArray | None = None,
    *,
    rate_hz: float | None = None,
    valid: np.ndarray | None = None,
    comments: dict[str, str] | None = None,
) -> Path:
    """Write one sensor in the generic CSV format (SI units, ``%.9g``), the inverse of the reader.

    Invalid samples (``valid == False``) are written as empty cells, so the reader sees them
    as lost samples again.
    """
    import pandas as pd

    path = Path(path)
    n = len(t_s)
    cols: dict[str, FloatArray] = {"t_s": np.asarray(t_s, np.float64)}
    for name, arr in (("acc", acc_m_s2), ("gyr", gyr_rad_s), ("mag", mag_ut)):
        if arr is None:
            continue
        unit = {"acc": "m_s2", "gyr": "rad_s", "mag": "ut"}[name]
        for j, a in enumerate(AXES):
            cols[f"{name}_{a}_{unit}"] = np.asarray(arr[:, j], np.float64)
    df = pd.DataFrame(cols)
    if valid is not None:
        df.loc[~np.asarray(valid, bool), [c for c in df.columns if c != "t_s"]] = np.nan
    lines = []
    if rate_hz is not None:
        lines.append(f"# rate_hz: {rate_hz:g}")
    for k, v in (comments or {}).items():
        lines.append(f"# {k}: {v}")
    with path.open("w", encoding="utf-8", newline="") as f:
        for ln in lines:
            f.write(ln + "\n")
        df.to_csv(f, index=False, float_format="%.9g", na_rep="")
    log.debug("wrote %d samples to %s", n, path)
    return path
