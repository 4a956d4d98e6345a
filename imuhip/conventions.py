"""Units, frames, quaternion order, placements and column names: defined here and nowhere else.

Units
-----
SI inside the package: seconds, m/s², rad/s, µT, rad. Degrees appear only at the edge (metrics,
report, CLI) and then always with ``_deg`` in the name. Names carry their unit where it could be
doubted: ``t_s``, ``host_rx_ns``, ``rate_hz``, ``gyr_rad_s``, ``acc_m_s2``, ``mag_ut``,
``hip_ir_deg``. Index ranges are half-open ``[start_idx, stop_idx)``.

Quaternions
-----------
Scalar-first ``[w, x, y, z]``, Hamilton product, unit norm, shape ``(N, 4)`` (or ``(4,)``).
``q_world_sensor`` rotates sensor-frame vectors into the world frame:
``v_world = q_world_sensor * v_sensor * conj(q_world_sensor)``. Names read ``q_<to>_<from>`` and
adjacent names cancel: ``q_pelvis_thigh = quat_mul(quat_conj(q_world_pelvis), q_world_thigh)``.
At the scipy boundary use :func:`to_rotation` / :func:`from_rotation` (``scalar_first=True``).

World frame
-----------
ENU: x east, y north, z up (vqf's convention). Gravity is ``[0, 0, -9.80665]`` m/s²; an
accelerometer at rest reads the specific force ``+9.80665`` along world z.

Segment frames and joint angles (ISB, Wu et al. 2002, doi:10.1016/S0021-9290(01)00222-6)
-----------------------------------------------------------------------------------------
Every segment frame: X anterior, Y superior (proximal along the long axis), Z to the subject's
right. Hip = thigh relative to pelvis, Cardan sequence Z–X′–Y″ (intrinsic):

========== ======== ============================ ======================================
angle      axis     + on the right side          left side
========== ======== ============================ ======================================
flexion    Z (1st)  flexion                      same sign (Z right is the flexion axis)
adduction  X′ (2nd) adduction                    X′ angle negated (mirrored)
internal   Y″ (3rd) internal rotation            Y″ angle negated (mirrored)
========== ======== ============================ ======================================

so that ``+`` means the same anatomical motion on both sides. Lumbar = lumbar sensor segment
relative to pelvis, same sequence: flexion (+ forward), lateral bending (+ to the right, i.e.
toward the subject's right side), axial rotation (+ towards the right, about Y).
Pelvis relative to the walking direction uses the rotation–obliquity–tilt order (Baker 2001,
doi:10.1016/S0966-6362(01)00105-3), angles of the pelvis frame relative to a walking-direction
frame (X along the walking direction, Y up, Z to the right):

============ ============================================================================
rotation     about vertical; + = counter-clockwise seen from above (right hemipelvis forward)
obliquity    about the rotated anterior axis; + = right hemipelvis up
tilt         about the rotated mediolateral axis; + = anterior tilt
============ ============================================================================

Time
----
Each sensor's device clock is mapped onto one session clock (seconds) by an offset + drift model
fitted against host receive times. Lost samples are an explicit boolean ``valid`` mask.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Final

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:  # scipy is imported on first use: `imuhip info` and `--help` never need it
    from scipy.spatial.transform import Rotation

__all__ = [
    "GRAVITY_M_S2",
    "HIP_SIGN",
    "NORMAL_GRAVITY_WORLD_M_S2",
    "Placement",
    "Side",
    "acc_columns",
    "as_unit_quat",
    "axis_quat",
    "cardan_yxz",
    "cardan_zxy",
    "from_rotation",
    "gyr_columns",
    "hip_angles_to_quat",
    "mag_columns",
    "quat_conj",
    "quat_from_cardan_yxz",
    "quat_from_cardan_zxy",
    "quat_from_rotmat",
    "quat_identity",
    "quat_mul",
    "quat_normalize",
    "quat_positive_w",
    "quat_rotate",
    "rotmat_entries",
    "to_rotation",
]

GRAVITY_M_S2: Final = 9.80665
"""Standard gravity, also the accelerometer unit ``g``."""

NORMAL_GRAVITY_WORLD_M_S2: Final = np.array([0.0, 0.0, GRAVITY_M_S2])
"""Specific force read by a resting accelerometer, in the world (ENU) frame."""

DEG: Final = np.pi / 180.0
"""Radians per degree (multiply degrees by it)."""


class Placement(StrEnum):
    """Where a sensor sits. The value is the sensor's key throughout a session."""

    PELVIS = "pelvis"
    THIGH_L = "thigh_l"
    THIGH_R = "thigh_r"
    LUMBAR = "lumbar"
    SHANK_L = "shank_l"
    SHANK_R = "shank_r"
    FOOT_L = "foot_l"
    FOOT_R = "foot_r"

    @property
    def side(self) -> Side | None:
        """The body side of a paired segment, else ``None``."""
        if self.value.endswith("_l"):
            return Side.LEFT
        if self.value.endswith("_r"):
            return Side.RIGHT
        return None


class Side(StrEnum):
    """Body side; ``LEFT`` results are mirrored so that + means the same motion on both sides."""

    LEFT = "left"
    RIGHT = "right"

    @property
    def suffix(self) -> str:
        """``"l"`` or ``"r"``, as used in placement names."""
        return self.value[0]


THIGH_OF: Final = {Side.LEFT: Placement.THIGH_L, Side.RIGHT: Placement.THIGH_R}
SHANK_OF: Final = {Side.LEFT: Placement.SHANK_L, Side.RIGHT: Placement.SHANK_R}
FOOT_OF: Final = {Side.LEFT: Placement.FOOT_L, Side.RIGHT: Placement.FOOT_R}

AXES: Final = ("x", "y", "z")


def acc_columns() -> list[str]:
    """Column names of accelerometer data in tables: ``acc_x_m_s2`` ..."""
    return [f"acc_{a}_m_s2" for a in AXES]


def gyr_columns() -> list[str]:
    """Column names of gyroscope data in tables: ``gyr_x_rad_s`` ..."""
    return [f"gyr_{a}_rad_s" for a in AXES]


def mag_columns() -> list[str]:
    """Column names of magnetometer data in tables: ``mag_x_ut`` ..."""
    return [f"mag_{a}_ut" for a in AXES]


QUAT_COLUMNS: Final = ("q_w", "q_x", "q_y", "q_z")

# ---------------------------------------------------------------------------------------------
# Quaternion helpers (scalar-first, Hamilton). Vectorised over a leading axis.
# ---------------------------------------------------------------------------------------------

FloatArray = npt.NDArray[np.float64]


def quat_identity(n: int | None = None) -> FloatArray:
    """Identity quaternion, shape ``(4,)`` or ``(n, 4)``."""
    q = np.array([1.0, 0.0, 0.0, 0.0])
    return q if n is None else np.tile(q, (n, 1))


def quat_mul(p: npt.ArrayLike, q: npt.ArrayLike) -> FloatArray:
    """Hamilton product ``p ⊗ q`` for arrays of shape ``(..., 4)`` (broadcasting)."""
    p = np.asarray(p, dtype=np.float64)
    q = np.asarray(q, dtype=np.float64)
    rows = _row_blocks(p, q, 4)
    if rows is not None:  # long (M, 4) arrays: in row blocks, temporaries stay in cache
        out = np.empty((rows, 4))
        for a in range(0, rows, _BLOCK_ROWS):
            b = a + _BLOCK_ROWS
            out[a:b] = _quat_mul(p[a:b] if p.ndim == 2 else p, q[a:b] if q.ndim == 2 else q)
        return out
    return _quat_mul(p, q)


def _quat_mul(p: FloatArray, q: FloatArray) -> FloatArray:
    pw, px, py, pz = np.moveaxis(p, -1, 0)
    qw, qx, qy, qz = np.moveaxis(q, -1, 0)
    return np.stack(
        [
            pw * qw - px * qx - py * qy - pz * qz,
            pw * qx + px * qw + py * qz - pz * qy,
            pw * qy - px * qz + py * qw + pz * qx,
            pw * qz + px * qy - py * qx + pz * qw,
        ],
        axis=-1,
    )


_BLOCK_ROWS = 8192
"""Row block of the quaternion helpers on long arrays (element-wise: the same values, ~2x faster
than whole-array temporaries that do not fit in cache)."""


def _row_blocks(a: FloatArray, b: FloatArray, b_last: int) -> int | None:
    """Row count ``M`` when ``a`` is ``(M, 4)`` or ``(4,)`` and ``b`` ``(M, b_last)`` or
    ``(b_last,)``, at least one of them 2-D and ``M`` above two blocks; else ``None``."""
    if a.ndim not in (1, 2) or b.ndim not in (1, 2) or a.shape[-1] != 4 or b.shape[-1] != b_last:
        return None
    if a.ndim == 2 and b.ndim == 2 and len(a) != len(b):
        return None
    m = len(a) if a.ndim == 2 else len(b) if b.ndim == 2 else 0
    return m if m > 2 * _BLOCK_ROWS else None


def quat_conj(q: npt.ArrayLike) -> FloatArray:
    """Conjugate (the inverse of a unit quaternion), shape ``(..., 4)``."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([1.0, -1.0, -1.0, -1.0])


def quat_normalize(q: npt.ArrayLike) -> FloatArray:
    """Scale to unit norm, shape ``(..., 4)``; raises ``ValueError`` on a zero or non-finite row."""
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1:] != (4,):
        n = np.linalg.norm(q, axis=-1, keepdims=True)
        if not np.all(np.isfinite(n)) or np.any(n == 0):
            raise ValueError("quaternion must be finite and non-zero")
        return q / n
    if q.ndim == 2 and len(q) > 2 * _BLOCK_ROWS:  # long arrays: in row blocks (same values)
        out = np.empty(q.shape)
        for a in range(0, len(q), _BLOCK_ROWS):
            out[a : a + _BLOCK_ROWS] = _quat_normalize(q[a : a + _BLOCK_ROWS])
        return out
    return _quat_normalize(q)


def _quat_normalize(q: FloatArray) -> FloatArray:
    # written out: the sum of squares in np.linalg.norm's order (bit-identical), 2x faster
    n2 = q[..., 0] * q[..., 0]
    n2 += q[..., 1] * q[..., 1]
    n2 += q[..., 2] * q[..., 2]
    n2 += q[..., 3] * q[..., 3]
    n = np.sqrt(n2)[..., None]
    if not np.all(np.isfinite(n)) or np.any(n == 0):
        raise ValueError("quaternion must be finite and non-zero")
    return q / n


def quat_positive_w(q: npt.ArrayLike) -> FloatArray:
    """Pick the sign with ``w >= 0`` (q and -q are the same rotation)."""
    q = np.asarray(q, dtype=np.float64)
    return np.where(q[..., :1] < 0, -q, q)


def quat_rotate(q: npt.ArrayLike, v: npt.ArrayLike) -> FloatArray:
    """Rotate vectors ``v`` (``(..., 3)``) by unit quaternions ``q`` (``(..., 4)``): ``q v q*``."""
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if q.shape[-1:] != (4,) or v.shape[-1:] != (3,):
        raise ValueError(f"quat_rotate needs q (..., 4) and v (..., 3), got {q.shape}, {v.shape}")
    out = np.empty((*np.broadcast_shapes(q.shape[:-1], v.shape[:-1]), 3))
    rows = _row_blocks(q, v, 3)
    if rows is not None:  # long (M, ...) arrays: in row blocks, temporaries stay in cache
        for a in range(0, rows, _BLOCK_ROWS):
            b = a + _BLOCK_ROWS
            _quat_rotate_into(q[a:b] if q.ndim == 2 else q, v[a:b] if v.ndim == 2 else v, out[a:b])
        return out
    _quat_rotate_into(q, v, out)
    return out


def _quat_rotate_into(q: FloatArray, v: FloatArray, out: FloatArray) -> None:
    # v + w t + u x t with t = 2 u x v, written out per component (the same operations in the
    # same order as with np.cross, so bit-identical, without its temporaries: 1.7-2.7x faster)
    w = q[..., 0]
    ux, uy, uz = q[..., 1], q[..., 2], q[..., 3]
    vx, vy, vz = v[..., 0], v[..., 1], v[..., 2]
    tx = 2.0 * (uy * vz - uz * vy)
    ty = 2.0 * (uz * vx - ux * vz)
    tz = 2.0 * (ux * vy - uy * vx)
    out[..., 0] = vx + w * tx + (uy * tz - uz * ty)
    out[..., 1] = vy + w * ty + (uz * tx - ux * tz)
    out[..., 2] = vz + w * tz + (ux * ty - uy * tx)


def to_rotation(q: npt.ArrayLike) -> Rotation:
    """scipy ``Rotation`` from scalar-first quaternions (the only scipy entry point)."""
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat(np.asarray(q, dtype=np.float64), scalar_first=True)


def from_rotation(r: Rotation) -> FloatArray:
    """Scalar-first quaternions from a scipy ``Rotation`` (the only scipy exit point)."""
    return np.asarray(r.as_quat(scalar_first=True), dtype=np.float64)


def quat_from_rotmat(mat: npt.ArrayLike) -> FloatArray:
    """Scalar-first unit quaternion of one rotation matrix (``(3, 3)``, orthonormal): the
    largest of ``w, x, y, z`` taken from the diagonal first (Shepperd 1978, as
    ``scipy``'s ``Rotation.from_matrix``), so no component is found by a small difference."""
    m = np.asarray(mat, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"rotation matrix must have shape (3, 3), got {m.shape}")
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    xyzw = np.empty(4)
    i = int(np.argmax([m[0, 0], m[1, 1], m[2, 2], trace]))
    if i == 3:
        xyzw[:] = (m[2, 1] - m[1, 2], m[0, 2] - m[2, 0], m[1, 0] - m[0, 1], 1.0 + trace)
    else:
        j, k = (i + 1) % 3, (i + 2) % 3
        xyzw[i] = 1.0 - trace + 2.0 * m[i, i]
        xyzw[j] = m[j, i] + m[i, j]
        xyzw[k] = m[k, i] + m[i, k]
        xyzw[3] = m[k, j] - m[j, k]
    xyzw /= np.linalg.norm(xyzw)
    return np.array([xyzw[3], xyzw[0], xyzw[1], xyzw[2]])


def quat_from_axis_angle(axis: npt.ArrayLike, angle_rad: npt.ArrayLike) -> FloatArray:
    """Quaternion(s) for a rotation by ``angle_rad`` about ``axis`` (``(3,)`` or ``(..., 3)``)."""
    axis = np.asarray(axis, dtype=np.float64)
    axis = axis / np.linalg.norm(axis, axis=-1, keepdims=True)
    half = 0.5 * np.asarray(angle_rad, dtype=np.float64)[..., None]
    return np.concatenate([np.cos(half), np.sin(half) * axis], axis=-1)


# ---------------------------------------------------------------------------------------------
# Cardan angles, closed form (cross-checked against scipy in the tests). The joint-angle
# sequences (hip and lumbar Z–X′–Y″, pelvis Y–X′–Z″) and the hip's side mirroring are
# conventions: every stage that turns angles into orientations or back uses these.
# ---------------------------------------------------------------------------------------------

HIP_SIGN = {Side.RIGHT: np.array([1.0, 1.0, 1.0]), Side.LEFT: np.array([1.0, -1.0, -1.0])}
"""Hip angle signs per side: the left side is mirrored so + is the same anatomical motion."""


def as_unit_quat(name: str, q: npt.ArrayLike) -> FloatArray:
    """``q`` as float64 unit quaternions; shape ``(N, 4)`` or ``(4,)`` checked (``ValueError``)."""
    arr = np.asarray(q, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[-1] != 4:
        raise ValueError(f"{name} must have shape (N, 4) or (4,), got {arr.shape}")
    return quat_normalize(arr)


def rotmat_entries(q: FloatArray) -> dict[str, FloatArray]:
    """Rotation-matrix entries ``"rc"`` (row, column) of unit quaternions ``q`` (..., 4)."""
    w, x, y, z = np.moveaxis(q, -1, 0)
    return {
        "00": 1 - 2 * (y * y + z * z),
        "01": 2 * (x * y - w * z),
        "02": 2 * (x * z + w * y),
        "10": 2 * (x * y + w * z),
        "11": 1 - 2 * (x * x + z * z),
        "12": 2 * (y * z - w * x),
        "20": 2 * (x * z - w * y),
        "21": 2 * (y * z + w * x),
        "22": 1 - 2 * (x * x + y * y),
    }


def cardan_zxy(q: npt.ArrayLike) -> FloatArray:
    """Intrinsic Z–X′–Y″ angles ``[a, b, c]`` with ``R(q) = Rz(a) Rx(b) Ry(c)``.

    Parameters
    ----------
    q : (N, 4) or (4,) float
        Unit quaternions, scalar first (``q`` and ``-q`` give the same angles).

    Returns
    -------
    (N, 3) or (3,) float
        Radians; ``b`` in [-π/2, π/2] (gimbal lock at ``|b| = π/2``).
    """
    r = rotmat_entries(as_unit_quat("q", q))
    b = np.arcsin(np.clip(r["21"], -1.0, 1.0))
    a = np.arctan2(-r["01"], r["11"])
    c = np.arctan2(-r["20"], r["22"])
    return np.stack([a, b, c], axis=-1)


def cardan_yxz(q: npt.ArrayLike) -> FloatArray:
    """Intrinsic Y–X′–Z″ angles ``[a, b, c]`` with ``R(q) = Ry(a) Rx(b) Rz(c)``."""
    r = rotmat_entries(as_unit_quat("q", q))
    b = np.arcsin(np.clip(-r["12"], -1.0, 1.0))
    a = np.arctan2(r["02"], r["22"])
    c = np.arctan2(r["10"], r["11"])
    return np.stack([a, b, c], axis=-1)


def axis_quat(axis: int, angle: FloatArray) -> FloatArray:
    """Rotation by ``angle`` (rad) about frame axis ``axis`` (0 x, 1 y, 2 z), shape (..., 4)."""
    q = np.zeros((*angle.shape, 4))
    q[..., 0] = np.cos(0.5 * angle)
    q[..., 1 + axis] = np.sin(0.5 * angle)
    return q


def quat_from_cardan_zxy(angles: npt.ArrayLike) -> FloatArray:
    """Inverse of :func:`cardan_zxy`: ``q = qz(a) ⊗ qx(b) ⊗ qy(c)``, shape ``(..., 4)``."""
    ang = np.asarray(angles, dtype=np.float64)
    a, b, c = np.moveaxis(ang, -1, 0)
    return quat_mul(quat_mul(axis_quat(2, a), axis_quat(0, b)), axis_quat(1, c))


def quat_from_cardan_yxz(angles: npt.ArrayLike) -> FloatArray:
    """Inverse of :func:`cardan_yxz`: ``q = qy(a) ⊗ qx(b) ⊗ qz(c)``, shape ``(..., 4)``."""
    ang = np.asarray(angles, dtype=np.float64)
    a, b, c = np.moveaxis(ang, -1, 0)
    return quat_mul(quat_mul(axis_quat(1, a), axis_quat(0, b)), axis_quat(2, c))


def hip_angles_to_quat(angles_rad: npt.ArrayLike, side: Side | str) -> FloatArray:
    """``q_pelvis_thigh`` from hip angles (inverse of :func:`hip_angles`), shape ``(..., 4)``."""
    side = Side(side)
    return quat_from_cardan_zxy(np.asarray(angles_rad, dtype=np.float64) * HIP_SIGN[side])
