"""Segment calibration of shank sensors on simulated walkers: the mediolateral axis and its sign.

The simulator mounts each shank sensor with a known ``q_segment_sensor`` (plus a random
misplacement), so the calibrated shank Z axis (ISB: to the subject's right, + knee flexion swings
the distal end backward) is checked against truth. Earlier the shank's sign was decided with the
thigh's inclination cue; the shank's mean walking posture is inclined backward, so the axis came
out inverted (176 deg from truth, "flexion sign cues weak").
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.conventions import quat_conj, quat_rotate
from imuhip.gait.events import detect_gait_events, segment_angular_velocity
from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig, fuse_session
from imuhip.pipeline import _calibrate
from imuhip.sim.params import SimParams
from imuhip.sim.session import simulate_session

SENSORS = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r")
Z = np.array([0.0, 0.0, 1.0])


@pytest.fixture(scope="module", params=[(31, True), (32, False)], ids=["9d", "6d"])
def calibrated(request):
    seed, mag = request.param
    p = SimParams(
        seed=seed, duration_s=24.0, rate_hz=100, sensors=SENSORS, has_mag=mag,
        misplacement_deg=10.0, speed_m_s=1.2, cadence_steps_min=108.0,
    )  # fmt: skip
    sim = simulate_session(p)
    ori = fuse_session(
        align_session(decode_session(sim.delivered, sim.meta), AlignConfig()), FuseConfig()
    )
    return sim, ori, _calibrate(ori, sim.events)


@pytest.mark.parametrize("placement", ["shank_l", "shank_r", "thigh_l", "thigh_r"])
def test_leg_z_axis_matches_truth(calibrated, placement: str) -> None:
    sim, _, segcal = calibrated
    z_est = quat_rotate(segcal.q_sensor_segment[placement], Z)
    z_true = quat_rotate(quat_conj(sim.truth.q_segment_sensor[placement]), Z)
    angle_deg = float(np.degrees(np.arccos(np.clip(z_est @ z_true, -1.0, 1.0))))
    assert angle_deg < 10.0, f"{placement}: Z axis {angle_deg:.1f} deg from truth"
    assert not any("sign cues weak" in w for w in segcal.warnings), segcal.warnings


@pytest.mark.parametrize("side", ["left", "right"])
def test_shank_events_need_no_sign_workaround(calibrated, side: str) -> None:
    """With the axis right, the swing is already the positive lobe: no ``inverted`` fallback."""
    _, ori, segcal = calibrated
    omega, _ = segment_angular_velocity(ori, segcal, f"shank_{side[0]}")
    ev = detect_gait_events(ori.t_s, omega[:, 2], side=side, segment="shank")
    assert not ev.inverted
    assert len(ev.ic_s) >= 10
