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
time stamps of one rate are placed on the inferred nominal grid (see
:func:`imuhip.interop._csv_grid.grid_steps`). Comma, semicolon and tab separators are recognised
from the header line. The header is parsed in :mod:`imuhip.interop._csv_header`.

Rows with an empty or NaN value in a used column are missing samples: short runs become a gap
(as a lost packet would), runs longer than ``max_gap_s`` are refused. Every refusal is one
:class:`~imuhip.errors.ImportFormatError` line naming the file, the line or column, and what was
expected.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from imuhip.conventions import AXES, Placement
from imuhip.errors import ImportFormatError
from imuhip.interop._common import (
    UNIT_FACTORS,
    FloatArray,
    ImportedSensor,
    IntArray,
    sniff_delimiter,
)
from imuhip.interop._csv_grid import grid_steps, numeric_column, runs
from imuhip.interop._csv_header import find_columns, read_preamble, time_column

__all__ = ["CsvOptions", "read_sensor_csv", "write_sensor_csv"]

log = logging.getLogger(__name__)

# body-worn IMUs sample at ~10 Hz (activity loggers) to ~2 kHz (impact studies); a time column
# giving a rate outside this is in another unit than read (ms read as s gives 0.1 Hz at 100 Hz)
MIN_RATE_HZ = 5.0
MAX_RATE_HZ = 5000.0


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
    decl, n_comment, header = read_preamble(path)
    sep = sniff_delimiter(header)
    names = [c.strip() for c in header.split(sep)]

    def _decl(key: str, given: str | None) -> str | None:
        return given if given is not None else decl.get(key)

    acc = find_columns(path, names, "acc", _decl("acc_unit", opt.acc_unit))
    if acc is None:
        raise ImportFormatError(
            f"{path}: missing accelerometer columns: expected acc_x_m_s2, acc_y_m_s2, acc_z_m_s2 "
            f"(or acc_x_g ..., or acc_x ... with a declared unit); header has {names}"
        )
    gyr = find_columns(path, names, "gyr", _decl("gyr_unit", opt.gyr_unit))
    mag = find_columns(path, names, "mag", _decl("mag_unit", opt.mag_unit))
    tcol = time_column(path, names, _decl("time_unit", opt.time_unit))
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
        return np.stack([numeric_column(path, df, c, first_line) for c in cols], axis=1) * factor

    acc_v = _block(acc)
    assert acc_v is not None
    gyr_v = _block(gyr)
    mag_v = _block(mag)
    t_raw = numeric_column(path, df, tcol[0], first_line) * tcol[1] if tcol is not None else None

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
        rate, k = grid_steps(path, t_ok, ok, first_line, tname, rate_decl)
        if not MIN_RATE_HZ <= rate <= MAX_RATE_HZ:
            assert tcol is not None
            unit = next(
                (
                    u
                    for u, f in UNIT_FACTORS["time"].items()
                    if u in ("s", "ms", "us") and MIN_RATE_HZ <= rate * tcol[1] / f <= MAX_RATE_HZ
                ),
                None,
            )
            raise ImportFormatError(
                f"{path}: column {tname} steps by a median {float(np.median(dt)):.6g} s, i.e. "
                f"{rate:.6g} Hz, outside the {MIN_RATE_HZ:g}-{MAX_RATE_HZ:g} Hz of body-worn "
                "IMUs: "
                + (
                    f"the column looks like {unit} (--time-unit {unit}, or name it t_{unit})"
                    if unit
                    else "check its unit (--time-unit s|ms|us)"
                )
            )
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
    for a, b in runs(missing):
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
