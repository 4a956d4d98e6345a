"""Pelvis–thigh relative heading: magnetic field quality, 6D drift correction, confidence.

Hip rotation turns about a near-vertical axis, so its accuracy is decided by how well the heading
of the thigh is known relative to the pelvis. Two sources (derivation in ``docs/joint_angles.md``):

* **Magnetometer (9D)** where the field is clean: its norm and dip angle stay within thresholds
  of their session reference (de Vries et al. 2009, doi:10.1016/j.gaitpost.2009.07.100: field
  disturbances indoors; Laidig & Seel 2023 VQF, doi:10.1016/j.inffus.2022.10.014).
* **Walking-axis constraint (6D)**: each filter's heading drifts on its own. During walking the
  thigh's flexion axis (principal axis of its angular velocity over a window of several strides)
  must lie along the pelvis mediolateral axis, i.e. the mean hip rotation over a window is
  assumed constant (zero after calibration). Estimating that heading offset per window and
  removing its slow part keeps the within-stride excursion and removes drift; it cannot see a real
  slow change of the mean rotation.

Modules: ``_config`` (:class:`HeadingConfig`), ``_magnetic`` (field quality), ``_walking_axis``
(the 6D drift correction) and ``_confidence`` (the transverse confidence that combines them);
their compiled loops are in :mod:`imuhip.orientation._heading_kernels`.
"""

from __future__ import annotations

# ``_x as _x``: the walking-axis fit and the confidence that imuhip.gait.joints drives directly
from imuhip.orientation.heading._confidence import (
    _transverse_confidence as _transverse_confidence,
)
from imuhip.orientation.heading._confidence import transverse_confidence, vendor_heading_anchored
from imuhip.orientation.heading._config import VENDOR_HEADING_KEY, HeadingConfig
from imuhip.orientation.heading._magnetic import MagQuality, mag_field_quality
from imuhip.orientation.heading._walking_axis import HeadingCorrection, correct_thigh_heading
from imuhip.orientation.heading._walking_axis import _heading_fit as _heading_fit
from imuhip.orientation.heading._walking_axis import _HeadingFit as _HeadingFit

__all__ = [
    "VENDOR_HEADING_KEY",
    "HeadingConfig",
    "HeadingCorrection",
    "MagQuality",
    "correct_thigh_heading",
    "mag_field_quality",
    "transverse_confidence",
    "vendor_heading_anchored",
]
