"""Tiny synthetic standing + walking session with known segment frames (test helper only).

Hip, pelvis and mounting are prescribed; gyroscope = exact body angular velocity of the sensor,
accelerometer = gravity only (plus optional noise), magnetometer = a constant world field.
"""

from __future__ import annotations

import numpy as np

from imuhip.conventions import (
    Side,
    from_rotation,
    quat_conj,
    quat_from_axis_angle,
    quat_mul,
    quat_rotate,
    to_rotation,
)
from imuhip.gait.joints import hip_angles_to_quat, quat_from_cardan_yxz, walking_frame
from imuhip.types import OrientationSession

DEG = np.pi / 180
MAG_WORLD_UT = np.array([0.0, 20.0, -40.0])


def mountings(rng: np.random.Generator, max_deg: float = 15.0) -> dict[str, np.ndarray]:
    """Nominal mounting (pelvis on the back, thighs lateral) times a random misplacement."""
    nominal = {
        "pelvis": quat_from_axis_angle([0, 1, 0], np.pi),  # sensor faces backwards
        "thigh_r": quat_from_axis_angle([0, 1, 0], np.pi / 2),  # sensor on the right, lateral
        "thigh_l": quat_from_axis_angle([0, 1, 0], -np.pi / 2),
        "lumbar": quat_from_axis_angle([0, 1, 0], np.pi),
    }
    out = {}
    for k, q in nominal.items():
        err = quat_from_axis_angle(rng.normal(size=3), rng.uniform(0, max_deg) * DEG)
        out[k] = quat_mul(q, err)  # q_segment_sensor
    return out


def make_walk(
    *,
    rate_hz: float = 100.0,
    static_s: float = 3.0,
    walk_s: float = 20.0,
    stride_s: float = 1.1,
    ir_mean_deg: float = 0.0,
    heading_offsets_deg: dict[str, float] | None = None,
    heading_drift_deg_per_s: dict[str, float] | None = None,
    with_mag: bool = True,
    seed: int = 0,
    turn: bool = False,
    obliquity_peak_cycle: float = 0.15,
) -> tuple[OrientationSession, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Return (ori, q_segment_sensor truth, truth arrays: hip_<side>, q_world_<segment>).

    ``obliquity_peak_cycle``: where in the right cycle the right hemipelvis is highest (early
    right stance; the right hip flexion's fundamental peaks at 0).
    """
    rng = np.random.default_rng(seed)
    n = round((static_s + walk_s) * rate_hz)
    t = np.arange(n) / rate_hz
    ramp = np.clip((t - static_s) / 1.0, 0, 1)
    phi = 2 * np.pi * np.clip(t - static_s, 0, None) / stride_s  # right IC at phi = 0
    heading = np.full(n, np.pi / 2)  # north
    if turn:
        heading = heading + np.clip((t - static_s - walk_s / 2) / 2.0, 0, 1) * np.pi / 2
    d = np.stack([np.cos(heading), np.sin(heading), 0 * t], axis=1)
    pel = ramp[:, None] * np.stack(
        [
            5 * DEG * np.cos(phi),  # rotation: right side forward at right IC
            4 * DEG * np.cos(phi - obliquity_peak_cycle * 2 * np.pi),  # right up in early stance
            2 * DEG * np.cos(2 * phi),  # tilt
        ],
        axis=1,
    )
    q_world_pelvis = quat_mul(walking_frame(d), quat_from_cardan_yxz(pel * [1, -1, -1]))
    truth: dict[str, np.ndarray] = {"q_world_pelvis": q_world_pelvis, "t_s": t}
    q_seg: dict[str, np.ndarray] = {"pelvis": q_world_pelvis}
    for side, off in ((Side.RIGHT, 0.0), (Side.LEFT, np.pi)):
        ph = phi + off
        # faster swing than stance: add a second harmonic
        flex = 10 * DEG + 22 * DEG * np.cos(ph) - 6 * DEG * np.sin(2 * ph)  # max 94 %, min 56 %
        add = 2 * DEG * np.sin(ph)
        ir = ir_mean_deg * DEG + 5 * DEG * np.sin(ph + 0.5)
        hip = np.stack([flex, add, ir], axis=1) * ramp[:, None]
        truth[f"hip_{side.value}"] = hip
        q_seg[f"thigh_{side.suffix}"] = quat_mul(q_world_pelvis, hip_angles_to_quat(hip, side))
    lum = ramp[:, None] * np.stack(
        [3 * DEG * np.cos(2 * phi), 3 * DEG * np.sin(phi), -4 * DEG * np.cos(phi)], axis=1
    )
    q_seg["lumbar"] = quat_mul(
        q_world_pelvis,
        quat_mul(
            quat_from_axis_angle([0, 0, 1], -lum[:, 0]),
            quat_mul(
                quat_from_axis_angle([1, 0, 0], lum[:, 1]),
                quat_from_axis_angle([0, 1, 0], -lum[:, 2]),
            ),
        ),
    )
    truth["lumbar"] = lum
    truth["pelvis"] = pel
    mount = mountings(rng)
    q_ws: dict[str, np.ndarray] = {}
    gyr: dict[str, np.ndarray | None] = {}
    acc: dict[str, np.ndarray] = {}
    mag: dict[str, np.ndarray | None] = {}
    for p, qs in q_seg.items():
        truth[f"q_world_{p}"] = qs
        q = quat_mul(qs, mount[p])  # q_world_sensor = q_world_segment ⊗ q_segment_sensor
        # body angular velocity from consecutive orientations (central differences)
        rel = quat_mul(quat_conj(q[:-1]), q[1:])
        w = to_rotation(rel).as_rotvec() * rate_hz
        w_mid = np.vstack([w[:1], 0.5 * (w[1:] + w[:-1]), w[-1:]])
        gyr[p] = w_mid
        acc[p] = quat_rotate(quat_conj(q), np.array([0, 0, 9.80665])) + 0.02 * rng.normal(
            size=(n, 3)
        )
        mag[p] = quat_rotate(quat_conj(q), MAG_WORLD_UT) if with_mag else None
        off = (heading_offsets_deg or {}).get(p, 0.0) * DEG
        drift = (heading_drift_deg_per_s or {}).get(p, 0.0) * DEG
        yaw = quat_from_axis_angle([0, 0, 1], off + drift * t)
        q_ws[p] = from_rotation(to_rotation(quat_mul(yaw, q)))
    ori = OrientationSession(
        t_s=t,
        rate_hz=rate_hz,
        q_world_sensor=q_ws,
        acc_m_s2=acc,
        gyr_rad_s=gyr,
        valid={p: np.ones(n, bool) for p in q_ws},
        source="synthetic",
        mag_ut=mag,
    )
    return ori, mount, truth
