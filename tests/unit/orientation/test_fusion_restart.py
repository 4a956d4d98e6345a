"""Filter restarts at reconnect gaps (> RESET_GAP_S): the offline fusion restarts a sensor's
filter at the first sample after a gap, as the live path does, keeping the gyroscope bias."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.orientation.fusion import FuseConfig, estimate_orientation_full, fuse_session
from imuhip.orientation.fusion.session import FILTER_RESTART_KEY, filter_runs
from imuhip.types import AlignedSensor, AlignedSession, ClockModel, DecodeStats
from tests.unit._fusion_synth import heading_of_x_rad, inclination_rad

RATE_HZ = 100.0
G = 9.80665


def test_filter_runs_split_only_at_gaps_longer_than_half_a_second() -> None:
    m = 3000
    valid = np.ones(m, bool)
    valid[:40] = False  # a late start is no gap
    valid[1000:1049] = False  # 49 rows: 0.50 s between the samples around it: filled
    assert filter_runs(valid, RATE_HZ) == [(0, m)]
    valid[1049] = False  # 50 rows: 0.51 s
    valid[2000:2003] = False  # a lost packet
    assert filter_runs(valid, RATE_HZ) == [(0, 1000), (1050, m)]
    valid[2900:] = False  # the trailing rows stay with the last run
    assert filter_runs(valid, RATE_HZ) == [(0, 1000), (1050, m)]


def _still_then_tilted(gap_s: float, bias: np.ndarray) -> tuple[AlignedSession, int]:
    """20 s lying level, a gap, then 10 s tilted by 40 deg about x; constant gyroscope bias."""
    n1, ng, n2 = int(20 * RATE_HZ), int(gap_s * RATE_HZ), int(10 * RATE_HZ)
    m = n1 + ng + n2
    tilt = np.radians(40.0)
    acc = np.tile([0.0, 0.0, G], (m, 1))
    acc[n1 + ng :] = [0.0, G * np.sin(tilt), G * np.cos(tilt)]
    gyr = np.tile(bias, (m, 1))
    valid = np.ones(m, bool)
    valid[n1 : n1 + ng] = False
    acc[~valid] = acc[n1 - 1]  # what align_session fills in (nearest sample beyond 1 s)
    stats = DecodeStats(0, 0, m, {}, 0, 0, 0, 20, ())
    s = AlignedSensor("thigh_l", acc, gyr, None, valid, ClockModel(0.0, 0.0, 0.0), stats)
    return AlignedSession(np.arange(m) / RATE_HZ, RATE_HZ, {"thigh_l": s}), n1 + ng


@pytest.mark.parametrize("method", ["vqf", "vqf_online"])
def test_a_restarted_filter_knows_the_new_inclination_at_once(method: str) -> None:
    bias = np.array([0.01, -0.005, 0.008])
    aligned, k = _still_then_tilted(1.5, bias)
    ori = fuse_session(aligned, FuseConfig(method=method, use_mag=False))
    restart = ori.diagnostics["thigh_l"][FILTER_RESTART_KEY]
    assert np.flatnonzero(restart).tolist() == [k]
    assert not ori.valid["thigh_l"][k - 150 : k].any()  # the gap stays invalid
    # known answer: 40 deg, a quarter second after the sensor is back
    incl = np.degrees(inclination_rad(ori.q_world_sensor["thigh_l"][k + 25]))
    assert abs(incl - 40.0) < 1.0, incl
    # the filter run on through the filled gap (before): still far off, it converges with
    # tau_acc = 3 s from the old inclination
    s = aligned.sensors["thigh_l"]
    through = estimate_orientation_full(
        s.acc_m_s2, s.gyr_rad_s, rate_hz=RATE_HZ, method=method, valid=s.valid
    )
    assert abs(np.degrees(inclination_rad(through.q_world_sensor[k + 25])) - 40.0) > 10.0


def test_the_online_restart_keeps_the_gyroscope_bias() -> None:
    bias = np.array([0.01, -0.005, 0.008])
    aligned, k = _still_then_tilted(1.5, bias)
    ori = fuse_session(aligned, FuseConfig(method="vqf_online", use_mag=False))
    d = ori.diagnostics["thigh_l"]
    est = np.column_stack([d[f"gyr_bias_{a}_rad_s"] for a in "xyz"])
    # learnt in 20 s of rest before the gap, known right after it (a fresh filter starts at 0)
    np.testing.assert_allclose(est[k - 1], bias, atol=1e-3)
    np.testing.assert_allclose(est[k], bias, atol=1e-3)
    # heading (6D): the known bias does not turn the restarted filter about up
    yaw_deg = np.degrees(np.unwrap(heading_of_x_rad(ori.q_world_sensor["thigh_l"])))
    assert abs(yaw_deg[-1] - yaw_deg[k + 100]) < 0.5  # 9 s; uncorrected 0.008 rad/s: 4 deg
