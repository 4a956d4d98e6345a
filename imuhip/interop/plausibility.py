"""Physically impossible imported samples are quarantined as gaps, never turned into numbers.

A foreign file can hold a row no body-worn IMU can have produced: a non-finite value, or an
acceleration, angular rate or field beyond any gait sensor's measuring range (a logger glitch,
a merged column, a wrong unit). Left in, one such row decides the int16 scale of the whole
channel when the samples are re-encoded (:mod:`imuhip.interop.native`), or swings a filter off
for seconds: one 1e5 m/s² row gave a hip rotation of 89 ± 129° and two false flags. Here each
impossible sample is removed (it becomes a recorded gap, like a lost packet) and counted with
the row and value named; when more than :data:`MAX_QUARANTINED_FRACTION` of a sensor's samples
are impossible, the file is refused instead (most often a unit mistake: a deg/s column read as
rad/s), naming the column and the largest value.

Limits (:data:`LIMITS`): 32 g, 4000 °/s and 5000 µT per axis, at least twice the largest range
of the gait IMUs imuhip reads (Xsens MTx/MTw ±18 g / ±1200–2000 °/s, Movesense ±16 g / ±2000 °/s,
magnetometers saturating at ±4900 µT).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Final

import numpy as np

from imuhip.conventions import GRAVITY_M_S2
from imuhip.errors import ImportFormatError
from imuhip.interop._common import ImportedSensor

__all__ = ["LIMITS", "MAX_QUARANTINED_FRACTION", "quarantine_impossible"]

LIMITS: Final = {
    "acc_m_s2": 32.0 * GRAVITY_M_S2,
    "gyr_rad_s": math.radians(4000.0),
    "mag_ut": 5000.0,
}
"""Largest physically possible magnitude per axis, SI (see the module docstring)."""

MAX_QUARANTINED_FRACTION: Final = 0.01
"""Above this fraction of impossible samples a sensor file is refused, not repaired."""

_UNIT = {"acc_m_s2": "m/s²", "gyr_rad_s": "rad/s", "mag_ut": "µT"}
_NAME = {"acc_m_s2": "accelerometer", "gyr_rad_s": "gyroscope", "mag_ut": "magnetometer"}
_LIKELY = {
    "acc_m_s2": "mm/s² or another unit in an m/s² column?",
    "gyr_rad_s": "deg/s values in a rad/s column?",
    "mag_ut": "nT or raw counts in a µT column?",
}


def quarantine_impossible(sensor: ImportedSensor) -> ImportedSensor:
    """``sensor`` without its impossible samples (non-finite or beyond :data:`LIMITS`).

    The removed samples leave holes in ``sample_idx``, so the recording reports them as a gap;
    one note per quantity names how many, the first row (0-based sample index) and the worst
    value.

    Raises
    ------
    ImportFormatError
        More than :data:`MAX_QUARANTINED_FRACTION` of the samples are impossible.
    """
    n = len(sensor)
    if n == 0:
        return sensor
    bad = np.zeros(n, dtype=bool)
    notes: list[str] = []
    for field_name, limit in LIMITS.items():
        values = getattr(sensor, field_name)
        if values is None:
            continue
        arr = np.asarray(values, dtype=np.float64)
        finite = np.isfinite(arr).all(axis=1)
        with np.errstate(invalid="ignore"):
            over = finite & (np.abs(arr) > limit).any(axis=1)
        this = ~finite | over
        k = int(this.sum())
        if k == 0:
            continue
        first = int(np.flatnonzero(this)[0])
        worst = float(np.nanmax(np.abs(np.where(np.isfinite(arr), arr, np.nan))[this], initial=0))
        what = (
            f"{k} {_NAME[field_name]} sample(s) beyond the physical range "
            f"(|value| > {limit:.4g} {_UNIT[field_name]}, largest {worst:.3g}) or not finite"
        )
        if k > MAX_QUARANTINED_FRACTION * n:
            raise ImportFormatError(
                f"{sensor.source}: {what}, {100.0 * k / n:.1f} % of {n} samples (first at "
                f"sample {int(sensor.sample_idx[first])}): not a glitch to repair; check the "
                f"column's unit ({_LIKELY[field_name]} the {_NAME[field_name]} must be in "
                f"{_UNIT[field_name]})"
            )
        notes.append(
            f"{sensor.source}: {what}, first at sample {int(sensor.sample_idx[first])}: "
            "quarantined as a gap"
        )
        bad |= this
    if not bad.any():
        return sensor
    keep = ~bad

    def cut(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else np.ascontiguousarray(a[keep])

    return replace(
        sensor,
        sample_idx=np.ascontiguousarray(sensor.sample_idx[keep]),
        t_s=np.ascontiguousarray(sensor.t_s[keep]),
        acc_m_s2=np.ascontiguousarray(sensor.acc_m_s2[keep]),
        gyr_rad_s=cut(sensor.gyr_rad_s),
        mag_ut=cut(sensor.mag_ut),
        q_world_sensor=cut(sensor.q_world_sensor),
        notes=(*sensor.notes, *notes),
    )
