"""Decoded samples -> pandas tables for export (the edge of the package: pandas lives here).

One table per sensor, one row per device sample index from the sensor's first to its last sample,
so lost samples are explicit rows with ``valid == False`` (values NaN), never silently absent or
interpolated. Columns (units in the names, from :mod:`imuhip.conventions`)::

    t_s          session seconds (see ``time_basis``); lost rows: linear in sample_idx
    t_dev_s      device clock seconds (unwrapped); lost rows: linear in sample_idx
    sample_idx   device sample index (int64)
    valid        bool: the sample was received
    saturated    bool: its packet flagged sensor saturation
    host_rx_ns   host receive time of the carrying notification (nullable Int64)
    acc_x_m_s2 acc_y_m_s2 acc_z_m_s2      sensor frame
    gyr_x_rad_s gyr_y_rad_s gyr_z_rad_s   sensor frame
    mag_x_ut mag_y_ut mag_z_ut            sensor frame, only for sensors with a magnetometer

Time bases (``time_basis`` in the export metadata):

``"session_clock"``
    ``t_s = ClockModel.to_session(t_dev_s)`` from :mod:`imuhip.ingest.align` (device clock mapped
    onto
    the session clock, seconds from the first host receive time of the recording).
``"device_clock"``
    fallback when no clock model is available: ``t_s = t_dev_s - t_dev_s[0] + (host_rx_ns[0] -
    t0_ns) * 1e-9``, i.e. the sensor's own clock, placed at its first packet's arrival (the BLE
    latency of that packet is not removed; drift is not corrected).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from imuhip.conventions import acc_columns, gyr_columns, mag_columns
from imuhip.errors import ImuhipError
from imuhip.types import ClockModel, DecodeStats, ImuSamples, SessionEvent

__all__ = [
    "TIME_BASES",
    "sensor_table",
    "session_t0_ns",
    "session_times",
    "stats_dict",
]

log = logging.getLogger(__name__)

TIME_BASES: Final = ("session_clock", "device_clock")
FloatArray = npt.NDArray[np.float64]


def _fit_clocks(
    samples: Mapping[str, ImuSamples], t0_ns: int, events: Iterable[SessionEvent] = ()
) -> dict[str, ClockModel] | None:
    """Clock models as :func:`imuhip.ingest.align.align_session` fits them, or ``None`` if
    unavailable."""
    try:
        from imuhip.ingest import align
    except ImportError:
        return None
    try:
        return align.session_clocks(
            samples, t0_ns, events, window_s=align.AlignConfig().clock_window_s
        )
    except (ImuhipError, ValueError) as err:  # fall back to the device clock, say so
        log.warning("clock model unavailable (%s): using the device clock", err)
        return None


def session_t0_ns(samples: Mapping[str, ImuSamples], default_ns: int) -> int:
    """Session time zero as the pipeline defines it: the smallest host receive time of any
    decoded sample (same rule as :func:`imuhip.ingest.align.session_t0_ns`), or ``default_ns``
    (e.g. the
    first host receive time of the recording) when no sensor has samples.
    """
    firsts = [int(s.host_rx_ns.min()) for s in samples.values() if len(s)]
    return min(firsts) if firsts else int(default_ns)


def session_times(
    samples: Mapping[str, ImuSamples],
    t0_ns: int,
    *,
    use_align: bool = True,
    events: Iterable[SessionEvent] = (),
) -> tuple[dict[str, FloatArray], str]:
    """Session seconds of every decoded sample, per sensor, and the time basis used.

    Parameters
    ----------
    samples : mapping placement -> ImuSamples
    t0_ns : int
        Session time zero: the first host receive time of the recording (all sensors).
    use_align : bool
        Try :mod:`imuhip.ingest.align`'s clock model first.
    events : iterable of SessionEvent
        The recording's events (``time_sync`` replies: see
        :func:`imuhip.ingest.align.session_clocks`).

    Returns
    -------
    times : dict placement -> (N,) float64 seconds
    time_basis : str
        ``"session_clock"`` or ``"device_clock"`` (see the module docstring).
    """
    clocks = _fit_clocks(samples, t0_ns, events) if use_align else None
    out: dict[str, FloatArray] = {}
    if clocks is not None:
        for k, s in samples.items():
            c = clocks.get(k)
            out[k] = c.to_session(s.t_dev_s) if c is not None else _device_times(s, t0_ns)
        return out, "session_clock"
    for k, s in samples.items():
        out[k] = _device_times(s, t0_ns)
    return out, "device_clock"


def _device_times(s: ImuSamples, t0_ns: int) -> FloatArray:
    if len(s) == 0:
        return np.zeros(0)
    first = int(np.argmin(s.sample_idx))
    return (s.t_dev_s - s.t_dev_s[first]) + (int(s.host_rx_ns[first]) - t0_ns) * 1e-9


def _fill(idx_all: npt.NDArray[np.int64], idx: npt.NDArray[np.int64], v: FloatArray) -> FloatArray:
    """Values at ``idx_all``: exact at ``idx``, linear in the index in between."""
    if len(idx) == 1:
        return np.full(len(idx_all), v[0])
    return np.interp(idx_all.astype(np.float64), idx.astype(np.float64), v)


def sensor_table(samples: ImuSamples, t_s: FloatArray) -> pd.DataFrame:
    """One sensor's samples as a table with explicit lost rows.

    Parameters
    ----------
    samples : ImuSamples
        Decoded, sorted by ``sample_idx`` (as :func:`imuhip.ingest.decode.decode_sensor_packets`
        gives).
    t_s : (N,) float64
        Session seconds of each decoded sample (:func:`session_times`).

    Returns
    -------
    DataFrame
        ``sample_idx[-1] - sample_idx[0] + 1`` rows (0 when there are no samples); columns as
        in the module docstring.
    """
    n = len(samples)
    t_s = np.asarray(t_s, dtype=np.float64)
    if t_s.shape != (n,):
        raise ValueError(f"t_s must have shape ({n},), got {t_s.shape}")
    idx = samples.sample_idx
    if n and np.any(np.diff(idx) <= 0):
        raise ValueError("samples must be sorted by strictly increasing sample_idx")
    idx_all = np.arange(idx[0], idx[-1] + 1, dtype=np.int64) if n else np.zeros(0, np.int64)
    m = len(idx_all)
    rows = (idx - idx[0]) if n else np.zeros(0, np.int64)
    valid = np.zeros(m, dtype=bool)
    valid[rows] = True
    cols: dict[str, Any] = {
        "t_s": _fill(idx_all, idx, t_s) if n else np.zeros(0),
        "t_dev_s": _fill(idx_all, idx, samples.t_dev_s) if n else np.zeros(0),
        "sample_idx": idx_all,
        "valid": valid,
    }
    sat = np.zeros(m, dtype=bool)
    sat[rows] = samples.saturated
    cols["saturated"] = sat
    host = pd.array(np.zeros(m, dtype=np.int64), dtype="Int64")
    host[~valid] = pd.NA
    host[valid] = samples.host_rx_ns
    cols["host_rx_ns"] = host
    blocks = [(acc_columns(), samples.acc_m_s2), (gyr_columns(), samples.gyr_rad_s)]
    if samples.mag_ut is not None:
        blocks.append((mag_columns(), samples.mag_ut))
    for names, data in blocks:
        full = np.full((m, 3), np.nan)
        full[rows] = data
        for j, name in enumerate(names):
            cols[name] = full[:, j]
    return pd.DataFrame(cols)


def stats_dict(stats: DecodeStats) -> dict[str, Any]:
    """JSON-ready decode statistics (gaps as ``[start_idx, stop_idx)`` pairs)."""
    out: dict[str, Any] = {}
    for name in type(stats).__dataclass_fields__:
        v = getattr(stats, name)
        if name == "gaps":
            v = [[g.start_idx, g.stop_idx] for g in v]
        elif isinstance(v, tuple):
            v = list(v)
        elif isinstance(v, dict):
            v = dict(v)
        out[name] = v
    out["loss_fraction"] = stats.loss_fraction
    return out
