"""Simulated IMUs: mounting on the segment, ideal signals, MEMS errors, raw counts.

Default mountings (``q_segment_sensor``; columns of the rotation matrix are the sensor axes in
segment coordinates, segment X anterior, Y superior, Z right):

============ ==================================================================
pelvis       flat on the sacrum: sensor x superior, y to the left, z posterior
lumbar       flat on L1–L3: same as pelvis
thigh_r      lateral mid-thigh: x superior, y posterior, z lateral (= right)
thigh_l      lateral mid-thigh: x superior, y anterior, z lateral (= left)
shank_r/l    lateral mid-shank: as the thigh of that side
foot_r/l     instep (dorsum): x anterior, y to the left, z superior
thigh, anter anterior mid-thigh (``Realism.thigh_placement``): x superior, y right, z anterior
============ ==================================================================

plus a misplacement: a rotation by ``U(0, misplacement_deg)`` about a uniformly random axis
(seeded), applied in the segment frame: ``q_segment_sensor = q_mis ⊗ q_nominal``.

Ideal signals: gyroscope = angular velocity of the sensor frame in sensor coordinates,
``ω = 2 vec(q* ⊗ dq/dt)``; accelerometer = specific force ``R_ws^T (a_world + [0, 0, g])`` at the
sensor site; magnetometer = ``R_ws^T B_world`` with ``B = F (0, cos dip, -sin dip)`` (ENU, pointing
north and down) plus disturbance windows. Derivatives are 4th-order central differences with a
0.2 ms step on the analytic kinematics (truncation and round-off both < 1e-6 rad/s, < 1e-5 m/s²).
Errors (Woodman 2007, *An introduction to inertial navigation*, UCAM-CL-TR-696): per-axis scale
factor, constant bias, random-walk bias drift, white noise, then quantisation and saturation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from imuhip.conventions import (
    GRAVITY_M_S2,
    from_rotation,
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
)
from imuhip.ingest.protocol import MAG_LSB_UT
from imuhip.sim.kinematics import DEG, Body
from imuhip.sim.params import SimParams
from imuhip.sim.soft_tissue import SoftTissue

__all__ = ["IdealImu", "SensorErrors", "apply_errors", "ideal_imu", "mountings", "to_counts"]

FloatArray = npt.NDArray[np.float64]
FD_STEP_S = 2e-4

_X = (1.0, 0.0, 0.0)
_Y = (0.0, 1.0, 0.0)
_Z = (0.0, 0.0, 1.0)
_NEG = {a: tuple(-v for v in a) for a in (_X, _Y, _Z)}
# sensor axes (x, y, z) expressed in the segment frame
_NOMINAL_AXES = {
    "pelvis": (_Y, _NEG[_Z], _NEG[_X]),
    "lumbar": (_Y, _NEG[_Z], _NEG[_X]),
    "thigh_r": (_Y, _NEG[_X], _Z),
    "thigh_l": (_Y, _X, _NEG[_Z]),
    "shank_r": (_Y, _NEG[_X], _Z),
    "shank_l": (_Y, _X, _NEG[_Z]),
    "foot_r": (_X, _NEG[_Z], _Y),
    "foot_l": (_X, _NEG[_Z], _Y),
    "thigh_anterior": (_Y, _Z, _X),
}


def nominal_mounting(placement: str) -> FloatArray:
    """The documented default ``q_segment_sensor`` of a placement, shape ``(4,)``."""
    from scipy.spatial.transform import Rotation

    m = np.array(_NOMINAL_AXES[placement], dtype=np.float64).T  # columns = sensor axes
    return from_rotation(Rotation.from_matrix(m))


def mountings(params: SimParams, rng: np.random.Generator) -> dict[str, FloatArray]:
    """``q_segment_sensor`` per simulated sensor: nominal plus a seeded misplacement."""
    out = {}
    r = params.realism
    anterior = r is not None and r.thigh_placement == "anterior"
    for pl in params.sensors:
        axis = rng.normal(size=3)
        angle = rng.uniform(0.0, params.misplacement_deg) * DEG
        q_mis = quat_from_axis_angle(axis, angle)
        nominal = "thigh_anterior" if anterior and pl.startswith("thigh") else pl
        out[pl] = quat_mul(q_mis, nominal_mounting(nominal))
    return out


@dataclass(frozen=True, slots=True)
class Wobble:
    """Soft-tissue wobble: small sensor rotation (sensor frame) driven by gait, rad."""

    amp_rad: float
    th: FloatArray  # (2, 3) phases

    def rotvec(self, t: FloatArray, a: FloatArray, phi: FloatArray) -> FloatArray:
        """Rotation vector ``(N, 3)`` of the wobble."""
        s1 = np.sin(4 * np.pi * phi[:, None] + self.th[0])
        s2 = np.sin(2 * np.pi * 11.0 * t[:, None] + self.th[1])
        return self.amp_rad * a[:, None] * (0.6 * s1 + 0.4 * s2)


def _rotvec_quat(v: FloatArray) -> FloatArray:
    ang = np.linalg.norm(v, axis=-1)
    half = 0.5 * ang
    k = np.where(ang > 1e-12, np.sin(half) / np.where(ang > 1e-12, ang, 1.0), 0.5)
    return np.concatenate([np.cos(half)[:, None], v * k[:, None]], axis=-1)


@dataclass(frozen=True, slots=True)
class IdealImu:
    """Error-free signals of one sensor at times ``t`` (simulation s)."""

    t: FloatArray  # (N,)
    q_world_sensor: FloatArray  # (N, 4)
    gyr_rad_s: FloatArray  # (N, 3) sensor frame
    acc_m_s2: FloatArray  # (N, 3) sensor frame, specific force
    mag_ut: FloatArray  # (N, 3) sensor frame


def mag_world_ut(params: SimParams, t: FloatArray) -> FloatArray:
    """Magnetic field in the world (ENU) frame, ``(N, 3)`` µT: earth field plus disturbances."""
    dip = params.mag_dip_deg * DEG
    b = np.tile(params.mag_field_ut * np.array([0.0, np.cos(dip), -np.sin(dip)]), (len(t), 1))
    for d in params.mag_disturbances:
        edge = min(0.5, 0.5 * (d.stop_s - d.start_s))
        w = np.clip((t - d.start_s) / edge, 0, 1) * np.clip((d.stop_s - t) / edge, 0, 1)
        w = w * w * (3 - 2 * w)
        b = b + w[:, None] * np.asarray(d.field_world_ut)
    return b


def sensor_orientation(
    body: Body,
    placement: str,
    t: FloatArray,
    q_segment_sensor: FloatArray,
    wobble: Wobble | SoftTissue | None,
) -> tuple[FloatArray, FloatArray]:
    """``(q_world_sensor (N,4), site position minus walkway progression (N,3))``.

    A :class:`Wobble` (clean simulator's ``soft_tissue_deg``) turns the sensor in its own frame;
    a :class:`~imuhip.sim.soft_tissue.SoftTissue` artefact turns it against the bone, in the
    segment frame: ``q_world_sensor = q_world_segment ⊗ q_sta ⊗ q_segment_sensor``.
    """
    st = body.state(t, (placement,))
    site: dict[str, tuple[float, float, float]] = getattr(body, "site_m", {})  # RomBody: none
    if isinstance(wobble, SoftTissue):
        q_seg = quat_mul(st.q_world[placement], _rotvec_quat(wobble.rotvec(st)))
        return quat_mul(q_seg, q_segment_sensor), st.point(placement, site.get(placement))
    pos = st.point(placement) if placement not in site else st.point(placement, site[placement])
    q = quat_mul(st.q_world[placement], q_segment_sensor)
    if wobble is not None:
        q = quat_mul(q, _rotvec_quat(wobble.rotvec(t, st.activation, st.phase)))
    return q, pos


def ideal_imu(
    body: Body,
    params: SimParams,
    placement: str,
    t: npt.ArrayLike,
    q_segment_sensor: FloatArray,
    wobble: Wobble | SoftTissue | None = None,
    h: float = FD_STEP_S,
) -> IdealImu:
    """Ideal gyroscope, accelerometer and magnetometer of the sensor at ``placement``.

    Parameters
    ----------
    t : (N,) float
        True sample times, simulation seconds.
    q_segment_sensor : (4,) float
        Static mounting of the sensor on its segment.
    """
    t = np.asarray(t, dtype=np.float64)
    n = len(t)
    offs = np.array([-2.0, -1.0, 0.0, 1.0, 2.0]) * h
    tt = (offs[:, None] + t[None, :]).ravel()
    q, pos = sensor_orientation(body, placement, tt, q_segment_sensor, wobble)
    q = q.reshape(5, n, 4)
    pos = pos.reshape(5, n, 3)
    dq = (-q[4] + 8 * q[3] - 8 * q[1] + q[0]) / (12 * h)
    gyr = 2.0 * quat_mul(quat_conj(q[2]), dq)[:, 1:]
    acc_w = (-pos[4] + 16 * pos[3] - 30 * pos[2] + 16 * pos[1] - pos[0]) / (12 * h * h)
    acc_w = acc_w + body.path_acc(t)
    acc_w[:, 2] += GRAVITY_M_S2
    q0 = q[2] / np.linalg.norm(q[2], axis=-1, keepdims=True)
    acc = quat_rotate(quat_conj(q0), acc_w)
    mag = quat_rotate(quat_conj(q0), mag_world_ut(params, t))
    return IdealImu(t, q0, gyr, acc, mag)


@dataclass(frozen=True, slots=True)
class SensorErrors:
    """Drawn error parameters of one sensor (all zero with ``noise=False``)."""

    acc_scale: FloatArray  # (3,)
    acc_bias_m_s2: FloatArray  # (3,)
    gyr_scale: FloatArray
    gyr_bias_rad_s: FloatArray
    mag_scale: FloatArray
    mag_bias_ut: FloatArray

    @classmethod
    def draw(cls, params: SimParams, rng: np.random.Generator) -> SensorErrors:
        """Random per-sensor errors from the params' standard deviations."""
        p = params
        g = rng.normal(size=(6, 3))
        if not p.noise:
            g = np.zeros((6, 3))
        return cls(
            acc_scale=1.0 + p.scale_error * g[0],
            acc_bias_m_s2=p.acc_bias_m_s2 * g[1],
            gyr_scale=1.0 + p.scale_error * g[2],
            gyr_bias_rad_s=p.gyr_bias_rad_s * g[3],
            mag_scale=1.0 + 2 * p.scale_error * g[4],
            mag_bias_ut=p.mag_bias_ut * g[5],
        )

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-friendly copy."""
        return {
            k: [float(x) for x in getattr(self, k)]
            for k in (
                "acc_scale",
                "acc_bias_m_s2",
                "gyr_scale",
                "gyr_bias_rad_s",
                "mag_scale",
                "mag_bias_ut",
            )
        }


def apply_errors(
    ideal: IdealImu,
    errors: SensorErrors,
    params: SimParams,
    rng: np.random.Generator,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Measured ``(acc_m_s2, gyr_rad_s, mag_ut)`` (float, before quantisation), each ``(N, 3)``."""
    p = params
    n = len(ideal.t)
    acc = ideal.acc_m_s2 * errors.acc_scale + errors.acc_bias_m_s2
    gyr = ideal.gyr_rad_s * errors.gyr_scale + errors.gyr_bias_rad_s
    mag = ideal.mag_ut * errors.mag_scale + errors.mag_bias_ut
    if p.noise:
        k = np.sqrt(p.rate_hz / 200.0)
        dt = 1.0 / p.rate_hz
        walk = np.cumsum(rng.normal(0.0, p.gyr_bias_walk_rad_s * np.sqrt(dt), (n, 3)), axis=0)
        gyr = gyr + walk + rng.normal(0.0, p.gyr_noise_rad_s * k, (n, 3))
        acc = acc + rng.normal(0.0, p.acc_noise_m_s2 * k, (n, 3))
        mag = mag + rng.normal(0.0, p.mag_noise_ut, (n, 3))
    return acc, gyr, mag


def to_counts(
    acc_m_s2: FloatArray,
    gyr_rad_s: FloatArray,
    mag_ut: FloatArray | None,
    acc_lsb: float,
    gyr_lsb: float,
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.bool_]]:
    """Raw int16 counts ``(N, 6|9)`` and the per-sample saturation flag (full scale clipping)."""
    parts = [acc_m_s2 / acc_lsb, gyr_rad_s / gyr_lsb]
    if mag_ut is not None:
        parts.append(mag_ut / MAG_LSB_UT)
    raw = np.rint(np.concatenate(parts, axis=1))
    sat = np.any((raw > 32767) | (raw < -32768), axis=1)
    return np.clip(raw, -32768, 32767).astype(np.int16), sat
