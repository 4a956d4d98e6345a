"""Per-sensor calibration: gyroscope bias, accelerometer six-position, magnetometer ellipsoid.

Models (raw → calibrated, sensor frame, SI units)::

    gyr = gyr_raw - gyr_bias_rad_s
    acc = acc_matrix @ (acc_raw - acc_offset_m_s2)
    mag = mag_soft_iron @ (mag_raw - mag_hard_iron_ut)

Calibrations are stored per sensor serial in ``calibration/<serial>.json`` (format in
``calibration/README.md``) and applied on load by :func:`apply_sensor_calibrations`.

References
----------
- Six-position accelerometer calibration (12-parameter linear model): STMicroelectronics AN3182,
  "Tilt measurement using a low-g 3-axis accelerometer", 2010, §5.
- Ellipsoid fit for hard/soft iron: Q. Li, J. G. Griffiths, "Least squares ellipsoid specific
  fitting", GMAP 2004, doi:10.1109/GMAP.2004.1290055; Vasconcelos et al. 2011,
  doi:10.1109/TIM.2010.2085370 (hard/soft iron model).
- Still-period detection: moving standard deviation thresholds, as in Skog et al. 2010,
  doi:10.1109/TBME.2010.2060723.
"""

from __future__ import annotations

from imuhip.orientation.sensor_calibration._fits import (
    AccFit,
    GyroBiasFit,
    MagFit,
    detect_still,
    estimate_gyro_bias,
    fit_mag_ellipsoid,
    six_position_calibration,
)
from imuhip.orientation.sensor_calibration._store import (
    SCHEMA_VERSION,
    SensorCalibration,
    apply_calibration,
    apply_sensor_calibrations,
    calibration_path,
    calibration_provenance,
    load_calibration,
    load_for_sensor,
    save_calibration,
)

__all__ = [
    "SCHEMA_VERSION",
    "AccFit",
    "GyroBiasFit",
    "MagFit",
    "SensorCalibration",
    "apply_calibration",
    "apply_sensor_calibrations",
    "calibration_path",
    "calibration_provenance",
    "detect_still",
    "estimate_gyro_bias",
    "fit_mag_ellipsoid",
    "load_calibration",
    "load_for_sensor",
    "save_calibration",
    "six_position_calibration",
]
