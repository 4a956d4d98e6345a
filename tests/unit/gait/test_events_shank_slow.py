"""Regression: slow walkers whose shank sides got no events at all (issue 6, shank path).

``python scripts/validate_events.py --n 12 --seed 1`` drew, as its 4th session, a slow walker
(0.84 m/s, 99 steps/min, 9D, 100 Hz, 7.6 deg misplacement, 2.3 % loss): both shanks got no
event matching truth (seeds 1 and 2: 84-93 % found overall). Cause: the simulated shank's
toe-off dip is deeper than its swing peak at slow speed (-7.6 vs +5.2 rad/s), so both sign cues
of the segment calibration (the swing skew and the thigh-rate correlation) pointed the wrong
way and the shank Z axis came out inverted (179 deg); the detector's ``auto_sign`` then saw
its inverted dip as the larger positive lobe and took the toe-offs for swings. The shank's sign
is now decided by the knee as a hinge (``segment_calibration._knee_hinge_score``: knee flexion
from the segments' inclinations never goes tens of degrees into hyperextension).

The walker here is that session's parameters, shortened to 20 s (~7 s of test).
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.conventions import quat_conj, quat_rotate
from imuhip.gait.events import detect_gait_events, segment_angular_velocity
from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig, fuse_session
from imuhip.orientation.segment_calibration import _inclination_sin
from imuhip.pipeline import _calibrate
from imuhip.sim.params import SimParams
from imuhip.sim.session import simulate_session

MATCH_S = 0.15
SENSORS = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r")
Z = np.array([0.0, 0.0, 1.0])

# validate_events --seed 1, session 4 (the draw's values, duration shortened)
SLOW_WALKER = {
    "seed": 872095,
    "rate_hz": 100,
    "has_mag": True,
    "speed_m_s": 0.8356335889977826,
    "cadence_steps_min": 98.62863354983088,
    "heading_deg": 230.878140890175,
    "hip_flexion_range_deg": 46.23159406176788,
    "knee_flexion_range_deg": 58.301174253459976,
    "asymmetry": -0.07197076567883304,
    "stride_time_cv": 0.035196445630942264,
    "misplacement_deg": 7.642438222822641,
    "gyr_noise_rad_s": 0.011685111035931062,
    "loss_prob": 0.022590906231065334,
}


@pytest.fixture(scope="module")
def slow_walker():
    p = SimParams(duration_s=20.0, sensors=SENSORS, **SLOW_WALKER)
    sim = simulate_session(p)
    ori = fuse_session(
        align_session(decode_session(sim.delivered, sim.meta), AlignConfig()), FuseConfig()
    )
    return sim, ori, _calibrate(ori, sim.events)


@pytest.mark.slow
@pytest.mark.parametrize("placement", ["shank_l", "shank_r"])
def test_slow_walker_shank_axis_not_inverted(slow_walker, placement: str) -> None:
    sim, _, segcal = slow_walker
    z_est = quat_rotate(segcal.q_sensor_segment[placement], Z)
    z_true = quat_rotate(quat_conj(sim.truth.q_segment_sensor[placement]), Z)
    angle_deg = float(np.degrees(np.arccos(np.clip(z_est @ z_true, -1.0, 1.0))))
    assert angle_deg < 10.0, f"{placement}: Z axis {angle_deg:.1f} deg from truth"
    assert not any(placement in w and "sign cues weak" in w for w in segcal.warnings)


@pytest.mark.slow
@pytest.mark.parametrize("side", ["left", "right"])
def test_slow_walker_shank_target(slow_walker, side: str) -> None:
    """>= 98 % of the true IC and TO found, median |error| <= 20 ms, no inverted fallback."""
    sim, ori, segcal = slow_walker
    omega, _ = segment_angular_velocity(ori, segcal, f"shank_{side[0]}")
    ev = detect_gait_events(ori.t_s, omega[:, 2], side=side, segment="shank")
    assert not ev.inverted
    for kind, found in (("ic", ev.ic_s), ("to", ev.to_s)):
        true_s = np.asarray(getattr(sim.truth, f"{kind}_s")[side])
        assert len(true_s) >= 8
        d = np.abs(found[None, :] - true_s[:, None]).min(axis=1) if len(found) else true_s * np.inf
        ok = d <= MATCH_S
        assert ok.sum() >= 0.98 * len(true_s), f"{side} {kind}: {ok.sum()}/{len(true_s)} found"
        assert np.median(d[ok]) <= 0.020, f"{side} {kind}: median {np.median(d[ok]):.3f} s"


def test_inclination_sin_matches_quat_rotate() -> None:
    """The hinge cue's vertical component equals ``quat_rotate(q, x)[:, 2]``."""
    rng = np.random.default_rng(5)
    q = rng.normal(size=(50, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    x = rng.normal(size=3)
    np.testing.assert_allclose(_inclination_sin(q, x), quat_rotate(q, x)[:, 2], atol=1e-12)
