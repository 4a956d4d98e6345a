"""Ground truth of a simulated session: angle extraction, gait events, strides, metrics.

The angle extraction here is written from the convention table in :mod:`imuhip.conventions`
only (it is deliberately independent of :mod:`imuhip.gait.joints`, so tests can cross-check the
two):

* hip = thigh relative to pelvis, intrinsic Cardan Z–X′–Y″, ``R = Rz(a) Rx(b) Ry(c)``;
  right side ``(flexion, adduction, IR) = (a, b, c)``, left mirrored ``(a, -b, -c)``;
* pelvis relative to the walking-direction frame (X forward, Y up, Z right), Y–X′–Z″ (Baker
  2001, doi:10.1016/S0966-6362(01)00105-3), ``R = Ry(a) Rx(b) Rz(c)``:
  ``(rotation, obliquity, tilt) = (a, -b, -c)`` (rotation + counter-clockwise from above,
  obliquity + right hemipelvis up, tilt + anterior);
* lumbar relative to pelvis, Z–X′–Y″: ``(flexion, lateral bending, axial rotation) = (-a, b, -c)``
  (flexion + forward, bending + toward the right, axial rotation + toward the right).

Metric definitions follow ``docs/architecture.md`` ("Shared definitions"): a stride of side S is
``[IC_k, IC_k+1)`` of that side; per-stride values are computed over the truth samples inside it;
session values are means over valid strides (per side for hip values, both sides for pelvis and
lumbar). Valid strides lie entirely in steady straight walking: a stride that touches the
standing/ramp periods is excluded with reason ``"standing"``, one that touches the turn with
``"turn"``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from imuhip.conventions import quat_conj, quat_mul, quat_rotate

__all__ = [
    "HIP_METRICS",
    "LUMBAR_METRICS",
    "PELVIS_METRICS",
    "Truth",
    "cardan_yxz",
    "cardan_zxy",
    "hip_angles",
    "lumbar_angles",
    "pelvis_angles",
    "stride_metrics",
]

FloatArray = npt.NDArray[np.float64]
RAD2DEG: Final = 180.0 / np.pi

HIP_METRICS: Final = (
    "hip_rotation_excursion_deg",
    "hip_ir_peak_deg",
    "hip_er_peak_deg",
    "hip_ir_at_toe_off_deg",
    "hip_flexion_range_deg",
)
PELVIS_METRICS: Final = (
    "pelvis_rotation_range_deg",
    "pelvis_obliquity_range_deg",
    "pelvis_tilt_range_deg",
)
LUMBAR_METRICS: Final = (
    "lumbar_rotation_range_deg",
    "lumbar_lateral_bending_range_deg",
    "lumbar_flexion_range_deg",
)


def _matrix(q: npt.ArrayLike) -> FloatArray:
    """Rotation matrices ``(N, 3, 3)`` of unit quaternions ``(N, 4)`` (columns = rotated axes)."""
    qa = np.atleast_2d(np.asarray(q, dtype=np.float64))
    qa = qa / np.linalg.norm(qa, axis=-1, keepdims=True)
    eye = np.eye(3)
    cols = [quat_rotate(qa, np.broadcast_to(eye[i], (len(qa), 3))) for i in range(3)]
    return np.stack(cols, axis=-1)


def cardan_zxy(q: npt.ArrayLike) -> FloatArray:
    """Intrinsic Z–X′–Y″ angles ``(a, b, c)`` rad, ``(N, 3)``, with ``R = Rz(a) Rx(b) Ry(c)``."""
    r = _matrix(q)
    b = np.arcsin(np.clip(r[:, 2, 1], -1.0, 1.0))
    a = np.arctan2(-r[:, 0, 1], r[:, 1, 1])
    c = np.arctan2(-r[:, 2, 0], r[:, 2, 2])
    return np.stack([a, b, c], axis=-1)


def cardan_yxz(q: npt.ArrayLike) -> FloatArray:
    """Intrinsic Y–X′–Z″ angles ``(a, b, c)`` rad, ``(N, 3)``, with ``R = Ry(a) Rx(b) Rz(c)``."""
    r = _matrix(q)
    b = np.arcsin(np.clip(-r[:, 1, 2], -1.0, 1.0))
    a = np.arctan2(r[:, 0, 2], r[:, 2, 2])
    c = np.arctan2(r[:, 1, 0], r[:, 1, 1])
    return np.stack([a, b, c], axis=-1)


def hip_angles(
    q_world_pelvis: npt.ArrayLike, q_world_thigh: npt.ArrayLike, side: str
) -> FloatArray:
    """Hip flexion, adduction, internal rotation (rad, ``(N, 3)``), left side mirrored."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    ang = cardan_zxy(quat_mul(quat_conj(q_world_pelvis), q_world_thigh))
    if side == "left":
        ang[:, 1:] *= -1.0
    return ang


def pelvis_angles(q_world_walk: npt.ArrayLike, q_world_pelvis: npt.ArrayLike) -> FloatArray:
    """Pelvis rotation, obliquity, tilt (rad, ``(N, 3)``) relative to the walking frame."""
    ang = cardan_yxz(quat_mul(quat_conj(q_world_walk), q_world_pelvis))
    ang[:, 1:] *= -1.0
    return ang


def lumbar_angles(q_world_pelvis: npt.ArrayLike, q_world_lumbar: npt.ArrayLike) -> FloatArray:
    """Lumbar flexion, lateral bending, axial rotation (rad, ``(N, 3)``) relative to the pelvis."""
    ang = cardan_zxy(quat_mul(quat_conj(q_world_pelvis), q_world_lumbar))
    ang[:, 0] *= -1.0
    ang[:, 2] *= -1.0
    return ang


def _ptp(x: FloatArray) -> float:
    return float(np.max(x) - np.min(x))


def stride_metrics(
    t_s: FloatArray,
    hip_deg: FloatArray,
    pelvis_deg: FloatArray,
    lumbar_deg: FloatArray | None,
    ic_s: float,
    next_ic_s: float,
    to_s: float | None,
) -> dict[str, float | None]:
    """Per-stride metrics (``docs/architecture.md`` names) over samples in ``[ic_s, next_ic_s)``.

    ``hip_deg`` is the stride's side, ``(M, 3)`` flexion, adduction, IR in degrees on ``t_s``.
    """
    sel = (t_s >= ic_s) & (t_s < next_ic_s)
    if not np.any(sel):
        raise ValueError(f"no truth samples in stride [{ic_s}, {next_ic_s})")
    ir = hip_deg[sel, 2]
    out: dict[str, float | None] = {
        "hip_rotation_excursion_deg": _ptp(ir),
        "hip_ir_peak_deg": float(np.max(ir)),
        "hip_er_peak_deg": float(-np.min(ir)),
        "hip_ir_at_toe_off_deg": None
        if to_s is None
        else float(np.interp(to_s, t_s, hip_deg[:, 2])),
        "hip_flexion_range_deg": _ptp(hip_deg[sel, 0]),
        "pelvis_rotation_range_deg": _ptp(pelvis_deg[sel, 0]),
        "pelvis_obliquity_range_deg": _ptp(pelvis_deg[sel, 1]),
        "pelvis_tilt_range_deg": _ptp(pelvis_deg[sel, 2]),
    }
    if lumbar_deg is not None:
        out["lumbar_rotation_range_deg"] = _ptp(lumbar_deg[sel, 2])
        out["lumbar_lateral_bending_range_deg"] = _ptp(lumbar_deg[sel, 1])
        out["lumbar_flexion_range_deg"] = _ptp(lumbar_deg[sel, 0])
    return out


def session_metrics(strides: list[dict[str, Any]], with_lumbar: bool) -> dict[str, Any]:
    """Means over valid strides: hip values per side, pelvis and lumbar over both sides."""
    out: dict[str, Any] = {}
    valid = [s for s in strides if s["valid"]]
    for name in HIP_METRICS:
        per: dict[str, float | None] = {}
        for side in ("left", "right"):
            vals = [s[name] for s in valid if s["side"] == side and s[name] is not None]
            per[side] = float(np.mean(vals)) if vals else None
        out[name] = per
    names = PELVIS_METRICS + (LUMBAR_METRICS if with_lumbar else ())
    for name in names:
        vals = [s[name] for s in valid]
        out[name] = float(np.mean(vals)) if vals else None
    out["n_valid_strides"] = {
        side: sum(1 for s in valid if s["side"] == side) for side in ("left", "right")
    }
    return out


@dataclass(frozen=True)
class Truth:
    """Everything the simulator knows, on a uniform grid in session seconds.

    Attributes
    ----------
    t_s : (M,) float
        Session seconds (0 = first host receive time of the delivered packets).
    q_world_segment : dict
        ISB segment orientations ``(M, 4)`` for ``pelvis``, ``thigh_l/r``, ``shank_l/r``,
        ``lumbar`` and the walking-direction frame ``walk``.
    q_world_sensor : dict
        True sensor orientations ``(M, 4)`` (mounting and wobble included), simulated sensors.
    q_segment_sensor : dict
        Static mounting ``(4,)`` per simulated sensor (soft-tissue wobble is on top of it).
    hip_deg : dict
        ``"left"``/``"right"`` -> ``(M, 3)`` flexion, adduction, internal rotation.
    pelvis_deg, lumbar_deg : (M, 3)
        Rotation, obliquity, tilt; flexion, lateral bending, axial rotation.
    ic_s, to_s : dict
        Initial contact and toe-off times per side, session seconds.
    strides : list of dict
        Per stride: side, ic_s, next_ic_s, to_s, valid, excluded_reason, data_loss, metrics.
    session_metrics : dict
        Session means (see :func:`session_metrics`).
    info : dict
        Timeline, clocks, link losses, sensor errors (JSON-serialisable).
    """

    t_s: FloatArray
    q_world_segment: dict[str, FloatArray]
    q_world_sensor: dict[str, FloatArray]
    q_segment_sensor: dict[str, FloatArray]
    hip_deg: dict[str, FloatArray]
    pelvis_deg: FloatArray
    lumbar_deg: FloatArray
    knee_deg: dict[str, FloatArray]
    ic_s: dict[str, FloatArray]
    to_s: dict[str, FloatArray]
    strides: list[dict[str, Any]]
    session_metrics: dict[str, Any]
    info: dict[str, Any] = field(default_factory=dict)

    def arrays(self, dtype: type = np.float64) -> dict[str, npt.NDArray[Any]]:
        """The time series as the ``.truth.npz`` stores them (names from architecture.md)."""
        out: dict[str, npt.NDArray[Any]] = {"t_s": self.t_s.astype(np.float64)}
        for k, q in self.q_world_segment.items():
            out[f"q_world_{k}"] = q.astype(dtype)
        for k, q in self.q_world_sensor.items():
            out[f"q_world_sensor_{k}"] = q.astype(dtype)
        for k, q in self.q_segment_sensor.items():
            out[f"q_segment_sensor_{k}"] = q.astype(np.float64)
        for side, a in self.hip_deg.items():
            out[f"hip_{side}_deg"] = a.astype(dtype)
        for side, a in self.knee_deg.items():
            out[f"knee_{side}_deg"] = a.astype(dtype)
        out["pelvis_deg"] = self.pelvis_deg.astype(dtype)
        out["lumbar_deg"] = self.lumbar_deg.astype(dtype)
        for side in ("left", "right"):
            out[f"ic_{side}_s"] = self.ic_s[side].astype(np.float64)
            out[f"to_{side}_s"] = self.to_s[side].astype(np.float64)
        return out
