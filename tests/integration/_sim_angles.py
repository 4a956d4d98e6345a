"""Simulator → fusion (vqf offline) → segment calibration → joint angles, vs. truth.

Shared by ``tests/integration/test_angles_vs_sim.py`` and ``benchmarks/heading_6d.py``. The sensor
samples are interpolated from each device's own sample times onto one session grid (a stand-in
for decode/align, so only fusion, calibration and angles are under test).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from imuhip.gait.joints import JointsConfig, joint_angles
from imuhip.orientation.fusion import estimate_orientation
from imuhip.orientation.segment_calibration import (
    SegmentCalConfig,
    calibrate_segments,
    functional_windows_from_events,
)
from imuhip.sim.params import SimParams
from imuhip.sim.session import simulate_session
from imuhip.types import JointAngles, OrientationSession, SegmentCalibration

DEG = np.pi / 180


@dataclass(frozen=True)
class AngleRun:
    t_s: np.ndarray
    ja: JointAngles
    segcal: SegmentCalibration
    ori: OrientationSession
    truth_hip_deg: dict[str, np.ndarray]
    truth_pelvis_deg: np.ndarray
    truth_lumbar_deg: np.ndarray | None
    ic_s: dict[str, np.ndarray]
    walk: np.ndarray  # (M,) bool: between first and last IC of any side


def run(
    params: SimParams, *, use_mag: bool, reference_pose: bool = True, functional: bool = False
) -> AngleRun:
    """Simulate, fuse and compute angles.

    ``reference_pose``: give the calibration the simulator's true standing pose (pelvic tilt
    10°, femora vertical), as a lab would from a static trial; without it the standing pose is
    taken as anatomical zero and the angles differ from the truth by that pose.
    ``functional``: calibrate the thigh axes from the marked hip-flexion swings (sim events).
    """
    sim = simulate_session(params)
    tr = sim.truth
    rate = float(params.rate_hz)
    t0 = max(s.t_s[0] for s in sim.samples.values())
    t1 = min(s.t_s[-1] for s in sim.samples.values())
    t = np.arange(t0, t1, 1.0 / rate)

    def interp(x: np.ndarray, tx: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(t, tx, x[:, k]) for k in range(x.shape[1])], axis=1)

    q, acc, gyr, mag, valid = {}, {}, {}, {}, {}
    for p, s in sim.samples.items():
        acc[p] = interp(s.acc_m_s2, s.t_s)
        gyr[p] = interp(s.gyr_rad_s, s.t_s)
        mag[p] = interp(s.mag_ut, s.t_s) if use_mag else None
        q[p] = estimate_orientation(acc[p], gyr[p], mag[p], rate_hz=rate, method="vqf")
        valid[p] = np.ones(len(t), bool)
    ori = OrientationSession(
        t_s=t,
        rate_hz=rate,
        q_world_sensor=q,
        acc_m_s2=acc,
        gyr_rad_s=gyr,
        valid=valid,
        source="vqf_offline",
        mag_ut=mag,
    )
    hip = {s: interp(tr.hip_deg[s], tr.t_s) for s in ("left", "right")}
    pel = interp(tr.pelvis_deg, tr.t_s)
    cfg = SegmentCalConfig()
    if reference_pose:
        st = (t > 0.5) & (t < params.stand_start_s - 1.0)
        hl = tuple(float(v) for v in hip["left"][st].mean(0) * DEG)
        hr = tuple(float(v) for v in hip["right"][st].mean(0) * DEG)
        pp = pel[st].mean(0) * DEG
        cfg = SegmentCalConfig(
            reference_pelvis_rad=(float(pp[1]), float(pp[2])),
            reference_hip_rad=(hl, hr),
            standing_pelvic_tilt_rad=0.0,  # the complete true pose is given above
        )
    windows = functional_windows_from_events(sim.events, t) if functional else None
    segcal = calibrate_segments(ori, cfg, functional_windows=windows)
    ja = joint_angles(ori, segcal, JointsConfig())
    lum = interp(tr.lumbar_deg, tr.t_s) if "lumbar" in sim.samples else None
    ics = np.concatenate([tr.ic_s["left"], tr.ic_s["right"]])
    walk = (t >= ics.min()) & (t < ics.max())
    return AngleRun(t, ja, segcal, ori, hip, pel, lum, dict(tr.ic_s), walk)


def hip_errors(r: AngleRun) -> dict[str, dict[str, float]]:
    """Per side: RMSE (deg) of flexion/adduction/IR over walking, IR RMSE after removing the mean
    offset, mean IR offset, and mean |per-stride IR excursion error| (true IC stride bounds)."""
    out = {}
    for side in ("left", "right"):
        est = r.ja.hip_rad[side] / DEG
        tru = r.truth_hip_deg[side]
        e = (est - tru)[r.walk]
        rmse = np.sqrt(np.mean(e**2, axis=0))
        off = float(np.mean(e[:, 2]))
        ics = r.ic_s[side]
        exc = []
        for a, b in itertools.pairwise(ics):
            m = (r.t_s >= a) & (r.t_s < b)
            if m.sum() < 10 or not r.walk[m].all():
                continue
            exc.append(np.ptp(est[m, 2]) - np.ptp(tru[m, 2]))
        exc_a = np.abs(np.asarray(exc))
        out[side] = {
            "flex_rmse_deg": float(rmse[0]),
            "add_rmse_deg": float(rmse[1]),
            "ir_rmse_deg": float(rmse[2]),
            "ir_offset_deg": off,
            "ir_rmse_offset_removed_deg": float(np.sqrt(np.mean((e[:, 2] - off) ** 2))),
            "ir_excursion_err_mean_deg": float(np.mean(exc_a)) if len(exc_a) else float("nan"),
            "ir_excursion_err_max_deg": float(np.max(exc_a)) if len(exc_a) else float("nan"),
            "n_strides": float(len(exc_a)),
        }
    return out
