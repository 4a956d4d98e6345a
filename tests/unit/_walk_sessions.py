"""Synthetic walks with the defects the joint-angle stage must handle (test helper only).

:func:`tests.unit._walk_synth.make_walk` sessions with per-sensor heading drift, lost samples,
magnetic disturbances (a 3 s one and a flicker) and an optional lumbar sensor, calibrated by
sensor-to-segment rotations a few degrees off the truth (not exactly unit).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from imuhip.conventions import quat_conj, quat_from_axis_angle, quat_mul
from imuhip.types import OrientationSession, SegmentCalibration
from tests.unit._walk_synth import DEG, make_walk


def near_truth_segcal(mount: dict[str, np.ndarray], seed: int) -> SegmentCalibration:
    """Sensor-to-segment rotations near the truth (a few degrees off, not exactly unit)."""
    rng = np.random.default_rng(seed)
    q = {}
    for p, q_seg_sensor in mount.items():
        err = quat_from_axis_angle(rng.normal(size=3), rng.uniform(0, 3) * DEG)
        q[p] = quat_mul(quat_conj(q_seg_sensor), err) * (1.0 + 1e-9 * rng.normal())
    return SegmentCalibration(q, dict.fromkeys(q, "test"), warnings=("w",))


def drifting_walk(
    seed: int, *, with_mag: bool, gaps: bool, disturb: bool, lumbar: bool = True
) -> tuple[OrientationSession, SegmentCalibration]:
    """A 40 s walk (a turn for odd seeds) whose thigh and lumbar headings drift."""
    ori, mount, _ = make_walk(
        rate_hz=100.0,
        walk_s=40.0,
        seed=seed,
        with_mag=with_mag,
        turn=seed % 2 == 1,
        heading_drift_deg_per_s={"thigh_l": 0.05, "thigh_r": -0.03, "lumbar": 0.02},
    )
    rng = np.random.default_rng(seed + 100)
    m = len(ori.t_s)
    valid = {p: v.copy() for p, v in ori.valid.items()}
    mag = dict(ori.mag_ut)
    if gaps:
        for p in valid:
            for _ in range(3):
                a = int(rng.integers(0, m - 50))
                valid[p][a : a + int(rng.integers(1, 40))] = False
    if disturb and with_mag:
        for p in ("pelvis", "thigh_r"):
            mg = np.array(mag[p], copy=True)
            a = int(rng.integers(m // 4, m // 2))
            mg[a : a + 300] *= 1.4  # norm off by 40 %: disturbed
            mg[a + 320 : a + 330] *= 1.4  # a flicker bridged by the closing
            mag[p] = mg
    q = dict(ori.q_world_sensor)
    if not lumbar:
        q.pop("lumbar")
        mount = {k: v for k, v in mount.items() if k != "lumbar"}
    ori = dataclasses.replace(
        ori,
        q_world_sensor=q,
        acc_m_s2={p: ori.acc_m_s2[p] for p in q},
        gyr_rad_s={p: ori.gyr_rad_s[p] for p in q},
        valid={p: valid[p] for p in q},
        mag_ut={p: mag[p] for p in q},
    )
    return ori, near_truth_segcal(mount, seed)
