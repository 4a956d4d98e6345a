"""From axes to frames: ``q_sensor_segment`` from two axes, and the reference-pose offsets.

The calibration steps find each segment's axes in its sensor frame with the segment *levelled*
(Y = up in the static pose); :func:`_reference_pose_offsets` then turns the levelled frames into
the anatomical frames of the pose the subject held (pelvic tilt, hip and lumbar angles).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from imuhip.conventions import (
    cardan_yxz,
    hip_angles_to_quat,
    quat_from_cardan_yxz,
    quat_from_cardan_zxy,
    quat_from_rotmat,
    quat_mul,
    quat_positive_w,
)
from imuhip.errors import CalibrationError
from imuhip.orientation.segment_calibration._config import FloatArray, SegmentCalConfig

__all__ = ["q_sensor_segment_from_axes"]


def q_sensor_segment_from_axes(x_s: npt.ArrayLike, y_s: npt.ArrayLike) -> FloatArray:
    """``q_sensor_segment`` from the segment X and Y axes expressed in the sensor frame.

    Y is kept exactly (normalised); X is orthogonalised against it; Z = X × Y.

    Parameters
    ----------
    x_s, y_s : (3,) float
        Segment anterior and superior axes in sensor coordinates.

    Returns
    -------
    (4,) float
        Unit quaternion with ``w >= 0``.
    """
    y = np.asarray(y_s, dtype=np.float64)
    y = y / np.linalg.norm(y)
    x = np.asarray(x_s, dtype=np.float64)
    x = x - np.dot(x, y) * y
    nx = np.linalg.norm(x)
    if nx < 1e-6:
        raise CalibrationError("anterior axis is parallel to the vertical axis")
    x = x / nx
    z = np.cross(x, y)
    mat = np.stack([x, y, z], axis=1)  # columns: segment axes in sensor coordinates
    return np.asarray(quat_positive_w(quat_from_rotmat(mat)), dtype=np.float64)


def _reference_pose_offsets(cfg: SegmentCalConfig) -> dict[str, FloatArray]:
    """Per segment ``q_level_anatomical``: the anatomical frame relative to a levelled frame.

    The reference pose gives each segment's orientation in the walking frame W (pelvis from
    obliquity and tilt, thighs from the pelvis and the hip angles); dropping its heading (the
    first angle of a Y–X′–Z″ decomposition, heading comes from the movement) leaves the
    inclination the levelled calibration frame lacks.
    """
    obl, tilt = cfg.reference_pelvis_rad
    q_w_pelvis = quat_from_cardan_yxz([0.0, -obl, -tilt])
    # the standing anatomical pelvic tilt turns only the pelvis frame (femora vertical, trunk
    # upright): a rotation about the pelvis's own Z, appended intrinsically
    segs = {
        "pelvis": quat_mul(
            q_w_pelvis, quat_from_cardan_yxz([0.0, 0.0, -cfg.standing_pelvic_tilt_rad])
        )
    }
    for side, ref in zip(("left", "right"), cfg.reference_hip_rad, strict=True):
        flex, add, _ir = ref
        segs[f"thigh_{side[0]}"] = quat_mul(q_w_pelvis, hip_angles_to_quat([flex, add, 0.0], side))
    lf, lb, _lr = cfg.reference_lumbar_rad
    segs["lumbar"] = quat_mul(q_w_pelvis, quat_from_cardan_zxy([-lf, lb, 0.0]))
    out = {}
    for p, q in segs.items():
        _, b, c = cardan_yxz(q)
        out[p] = quat_from_cardan_yxz([0.0, b, c])
    return out
