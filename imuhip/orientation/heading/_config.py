"""Thresholds of the relative-heading stage and the vendor-heading flag."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["VENDOR_HEADING_KEY", "BoolArray", "FloatArray", "HeadingConfig"]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: ``OrientationSession.diagnostics[p][VENDOR_HEADING_KEY]``: (M,) bool, the vendor's own fusion
#: referenced this sensor's heading to the magnetometer (set by vendor imports, e.g. Xsens).
VENDOR_HEADING_KEY = "vendor_heading_anchored"


@dataclass(frozen=True, slots=True)
class HeadingConfig:
    """Thresholds and time constants of the heading module (units in the names).

    Parameters
    ----------
    max_norm_dev_frac : float
        Field norm within this fraction of the reference counts as clean.
    max_dip_dev_rad : float
        Dip angle within this of the reference counts as clean.
    mag_hold_tau_s : float
        After the field becomes disturbed the filter holds heading by gyro; confidence decays
        with this time constant.
    window_s : float
        Window of one walking-axis heading estimate (several strides).
    hop_s : float
        Step between windows.
    min_axis_ratio : float
        Window is an anchor when the first/second principal angular velocity ratio exceeds this.
    min_gyr_rms_rad_s : float
        ... and the thigh angular velocity RMS exceeds this (the subject walks).
    anchored_confidence : float
        Confidence right at a 6D walking-axis anchor (the constraint's own uncertainty).
    anchor_tau_s : float
        Confidence decay time constant away from the nearest anchor.
    reanchor_window_s : float
        After a filter restart (:data:`imuhip.orientation.fusion.session.RESET_GAP_S`) the
        relative heading is re-anchored on the first window this long with walking (tried every
        1 s from the restart on), unless a regular window completes first; until then the hip
        angles are invalid (re-converging), offline and live alike.
    vendor_anchored_confidence : float
        Confidence of a vendor orientation whose heading the vendor's fusion referenced to the
        magnetometer (:func:`vendor_heading_anchored`) when the raw field is not available to
        check: a common drift-free heading, but disturbances cannot be detected here, so below
        the 1.0 of a field this module checked clean.
    """

    max_norm_dev_frac: float = 0.10
    max_dip_dev_rad: float = float(np.deg2rad(5.0))
    mag_hold_tau_s: float = 30.0
    window_s: float = 8.0
    hop_s: float = 2.0
    min_axis_ratio: float = 2.0
    min_gyr_rms_rad_s: float = 0.6
    anchored_confidence: float = 0.7
    anchor_tau_s: float = 60.0
    vendor_anchored_confidence: float = 0.7
    reanchor_window_s: float = 4.75
