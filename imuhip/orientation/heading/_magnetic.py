"""Magnetic field quality: the field norm and dip angle against their session reference.

A magnetometer heading is trusted where the field is clean (de Vries et al. 2009,
doi:10.1016/j.gaitpost.2009.07.100: field disturbances indoors).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.orientation import _heading_kernels as _kq
from imuhip.orientation.heading._config import BoolArray, FloatArray, HeadingConfig

__all__ = ["MagQuality", "mag_field_quality"]


@dataclass(frozen=True, slots=True)
class MagQuality:
    """Per-sample field quality of one sensor.

    ``norm_ut`` and ``dip_rad`` are ``(M,)``; ``clean`` is ``(M,)`` bool; ``ref_*`` the session
    reference (median over the reference window).
    """

    norm_ut: FloatArray
    dip_rad: FloatArray
    clean: BoolArray
    ref_norm_ut: float
    ref_dip_rad: float


def mag_field_quality(
    q_world_sensor: npt.ArrayLike,
    mag_ut: npt.ArrayLike,
    ref_window: tuple[int, int] | None = None,
    cfg: HeadingConfig | None = None,
) -> MagQuality:
    """Magnetic field norm and dip angle per sample versus their reference.

    Parameters
    ----------
    q_world_sensor : (M, 4) float
        Sensor orientation (its inclination is what matters for the dip).
    mag_ut : (M, 3) float
        Magnetometer, sensor frame, µT.
    ref_window : (start_idx, stop_idx), optional
        Reference window (e.g. the static calibration window); default the whole session
        (median, robust to short disturbances).
    cfg : HeadingConfig, optional

    Returns
    -------
    MagQuality
        Dip is positive when the field points below the horizon (northern hemisphere).
    """
    return _mag_field_quality(q_world_sensor, mag_ut, ref_window, cfg, None)


def _mag_field_quality(
    q_world_sensor: npt.ArrayLike,
    mag_ut: npt.ArrayLike,
    ref_window: tuple[int, int] | None,
    cfg: HeadingConfig | None,
    scratch: FloatArray | None,
) -> MagQuality:
    """:func:`mag_field_quality`; ``scratch`` (3, M) holds the norm and dip arrays (reused
    across sensors: no fresh pages), else they are new."""
    cfg = cfg or HeadingConfig()
    q = np.asarray(q_world_sensor, dtype=np.float64)
    m = np.asarray(mag_ut, dtype=np.float64)
    if m.ndim != 2 or m.shape[1] != 3 or q.shape != (len(m), 4):
        raise ValueError(
            f"mag_ut must be (M, 3) and q_world_sensor (M, 4), got {m.shape}, {q.shape}"
        )
    # one pass: field norm and the world field's vertical and horizontal parts (the operations
    # of quat_rotate and the row norms, in their order); numpy's arctan2 for the dip
    norm, dip, hor = np.empty((3, len(m))) if scratch is None else scratch
    _kq.mag_args(np.ascontiguousarray(q), np.ascontiguousarray(m), norm, dip, hor)
    np.arctan2(dip, hor, out=dip)
    sl = slice(*ref_window) if ref_window is not None else slice(None)
    # exact order statistic (the np.median value) by histogram selection, O(M)
    ref_n = float(_kq.median_exact(norm[sl]))
    ref_d = float(_kq.median_exact(dip[sl]))
    clean = _kq.mag_clean(
        norm, dip, ref_n, cfg.max_norm_dev_frac * ref_n, ref_d, float(cfg.max_dip_dev_rad)
    )
    return MagQuality(norm, dip, clean, ref_n, ref_d)
