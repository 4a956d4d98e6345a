"""Gait events from shank sensors: simulated walkers against truth, and the real OpenSense trial.

Simulated: the shank path is the published Aminian/Salarian rule without offsets; the simulator's
stance shank rolls on a roll-over arc from the heel strike to the toe release
(``imuhip/sim/kinematics.py``, ``docs/gait_events.md``), so the rule's minima mark the contact
events: IC ~+12 ms, TO ~+4 ms (``scripts/validate_events.py``), target median |error| <= 20 ms.

Real: the OpenSense trial's calcaneus sensors (not imported by imuhip, read here as an independent
reference) give the stances: a foot-flat period (foot angular speed < 1 rad/s for >= 0.2 s right
after a swing) per stance. Counted this way, and by eye on the shank signal (one swing bump per
stride): 11 stances right (8.2-23.0 s), 12 left (7.3-23.5 s), stride time ~1.44 s right and
~1.38 s left (a slow loop walk, ~85 steps/min).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from imuhip.gait.events import detect_gait_events, segment_angular_velocity
from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig, fuse_session
from imuhip.pipeline import _calibrate
from imuhip.sim.params import SimParams
from imuhip.sim.session import simulate_session

MATCH_S = 0.15
SHANK_SENSORS = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r")


def _match(true_s: np.ndarray, found_s: np.ndarray) -> tuple[int, np.ndarray]:
    """Number of true events with a detection within MATCH_S, and those signed errors (s)."""
    err = []
    for x in true_s:
        if len(found_s):
            d = found_s - x
            j = int(np.argmin(np.abs(d)))
            if abs(d[j]) <= MATCH_S:
                err.append(d[j])
    return len(err), np.asarray(err)


@pytest.fixture(scope="module")
def sim_paths() -> dict[tuple[str, str], tuple[int, int, np.ndarray]]:
    """Two walkers (slow/fast, misplaced sensors, noisy gyro, packet loss): per (path, kind)."""
    out: dict[tuple[str, str], list] = {}
    for p in (
        SimParams(
            seed=11, duration_s=30.0, rate_hz=100, sensors=SHANK_SENSORS, speed_m_s=0.9,
            cadence_steps_min=95.0, misplacement_deg=12.0, gyr_noise_rad_s=0.015,
            loss_prob=0.02, has_mag=False,
        ),
        SimParams(
            seed=12, duration_s=30.0, rate_hz=200, sensors=SHANK_SENSORS, speed_m_s=1.6,
            cadence_steps_min=125.0, misplacement_deg=6.0, knee_flexion_range_deg=62.0,
        ),
    ):  # fmt: skip
        sim = simulate_session(p)
        ori = fuse_session(
            align_session(decode_session(sim.delivered, sim.meta), AlignConfig()), FuseConfig()
        )
        segcal = _calibrate(ori, sim.events)
        for side, sfx in (("left", "l"), ("right", "r")):
            for seg in ("shank", "thigh"):
                omega, kind = segment_angular_velocity(ori, segcal, f"{seg}_{sfx}")
                assert kind == "gyro"
                ev = detect_gait_events(ori.t_s, omega[:, 2], side=side, segment=seg)
                # (segment_calibration signs the shank Z by the knee hinge; the detector's
                # auto_sign remains a fallback for a wrong sign)
                for k, found in (("ic", ev.ic_s), ("to", ev.to_s)):
                    true_s = getattr(sim.truth, f"{k}_s")[side]
                    n_ok, err = _match(true_s, found)
                    acc = out.setdefault((seg, k), [0, 0, []])
                    acc[0] += len(true_s)
                    acc[1] += n_ok
                    acc[2].append(err)
    return {key: (n, k, np.concatenate(e)) for key, (n, k, e) in out.items()}


@pytest.mark.parametrize("kind", ["ic", "to"])
@pytest.mark.parametrize("path", ["shank", "thigh"])
def test_sim_events_found(sim_paths, path: str, kind: str) -> None:
    n, k, _ = sim_paths[(path, kind)]
    assert n > 60
    # both paths, including the thigh path's weak first step out of standing
    assert k >= 0.98 * n, f"{path} {kind}: {k}/{n} true events found"


@pytest.mark.parametrize("kind", ["ic", "to"])
def test_sim_thigh_timing(sim_paths, kind: str) -> None:
    _, _, err = sim_paths[("thigh", kind)]
    assert np.median(np.abs(err)) <= 0.020
    assert np.percentile(np.abs(err), 90) <= 0.040


@pytest.mark.parametrize("kind", ["ic", "to"])
def test_sim_shank_timing_is_stable(sim_paths, kind: str) -> None:
    """The published rule on the contact model: a consistent timing, not scatter."""
    _, _, err = sim_paths[("shank", kind)]
    assert abs(float(np.median(err))) <= 0.020
    assert float(np.std(err)) <= 0.025


@pytest.mark.parametrize("kind", ["ic", "to"])
def test_sim_shank_timing_target(sim_paths, kind: str) -> None:
    _, _, err = sim_paths[("shank", kind)]
    assert np.median(np.abs(err)) <= 0.020


# --------------------------------------------------------------------------- real trial
CALCN = {"right": "00B421EF", "left": "00B421E6"}
KNOWN_STANCES = {"right": 11, "left": 12}


def _foot_stance_onsets(path: Path) -> np.ndarray:
    """Session times (s, sample 0 = packet 472) where a foot-flat period follows a swing."""
    a = np.genfromtxt(path, skip_header=5, names=True, delimiter="\t")
    from scipy.spatial.transform import Rotation

    r = Rotation.from_matrix(
        np.stack([[a[f"Mat{i}{j}"] for j in range(1, 4)] for i in range(1, 4)]).transpose(2, 0, 1)
    )
    w = np.zeros(len(a))
    w[1:-1] = np.linalg.norm((r[:-2].inv() * r[2:]).as_rotvec(), axis=1) * 50.0
    still = np.r_[0, (w < 1.0).astype(np.int8), 0]
    d = np.diff(still)
    on, off = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    t0 = a["PacketCounter"][0]
    keep = [
        i
        for i, j in zip(on, off, strict=False)
        if j - i >= 20 and i >= 40 and w[i - 40 : i].max() > 3.0
    ]
    return (a["PacketCounter"][keep] - t0) / 100.0


SHARED_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data"


@pytest.fixture(scope="module")
def opensense():
    from imuhip.interop.orientation_file import orientation_session_from_imported
    from imuhip.interop.vendor_calibration import assumed_pose_calibration
    from imuhip.interop.xsens import import_xsens_trial
    from imuhip.pipeline import analyze_orientations
    from imuhip.types import SessionMeta

    folder = SHARED_DATA / "opensense"
    if not folder.is_dir():
        pytest.fail(f"shared data folder missing: {folder}")
    sensors, _ = import_xsens_trial(mapping=folder / "myIMUMappings.xml")
    sensors = [s for s in sensors if not s.placement.startswith("foot")]  # the shank rules
    ori = orientation_session_from_imported(sensors, source="vendor:xsens")
    res = analyze_orientations(
        ori, SessionMeta("os", "", "OS01", ()), segcal=assumed_pose_calibration(ori)
    )
    feet = {
        side: _foot_stance_onsets(folder / f"MT_012005D6_009-001_{sid}.txt")
        for side, sid in CALCN.items()
    }
    return res, feet


def test_opensense_reference_counts(opensense) -> None:
    """The independent reference (calcaneus sensors) agrees with the counts stated above."""
    _, feet = opensense
    for side, n in KNOWN_STANCES.items():
        assert len(feet[side]) == n


@pytest.mark.parametrize("side", ["left", "right"])
def test_opensense_shank_events_plausible(opensense, side: str) -> None:
    res, feet = opensense
    ev = res.events[side]
    assert ev.source == "shank_orientation"
    # one IC per stance of the calcaneus sensor, each shortly before its foot-flat onset
    assert abs(len(ev.ic_s) - KNOWN_STANCES[side]) <= 1
    for t_flat in feet[side]:
        assert np.any((ev.ic_s > t_flat - 0.25) & (ev.ic_s < t_flat + 0.15)), t_flat
    # a toe-off in every stride (found from orientation-derived angular velocity)
    st = [s for s in res.strides if s.side == side]
    assert len(st) == len(ev.ic_s) - 1
    assert sum(s.to_s is None for s in st) <= 1
    # stride time and cadence: same as the calcaneus sensor's stance-to-stance interval
    t_ref = float(np.median(np.diff(feet[side])))
    t_est = float(np.median([s.stride_time_s for s in st]))
    assert t_est == pytest.approx(t_ref, rel=0.05)
    assert 75.0 < 120.0 / t_est < 95.0  # steps/min
    stance = [s.stance_frac for s in st if s.stance_frac is not None]
    assert 0.55 <= float(np.median(stance)) <= 0.66
    # the loop: most strides turn; the straight ones stay valid
    reasons = [s.exclusion for s in st]
    assert reasons.count("turning") >= len(st) // 2
    assert reasons.count(None) >= 2
