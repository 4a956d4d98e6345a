"""Simulator foot contact: the stance shank rolls on a roll-over arc (Hansen et al. 2004).

Checks the physics, not the event detector: the hip truth is untouched by the contact model, the
rolling constraint holds in stance, the shank angle is continuous through heel strike and toe-off
and returns to the contact-free swing kinematics, and the shank's angular velocity carries the
contact features on real legs (a sharp drop at the heel strike, the fastest backward rotation at
the toe release).
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.sim.kinematics import (
    LEG_LENGTH_M,
    ROLLOVER_CENTRE_FROM_KNEE_M,
    ROLLOVER_RADIUS_RANGE_M,
    Body,
)
from imuhip.sim.params import SimParams
from imuhip.sim.sensors import ideal_imu, nominal_mounting


def _bodies(**kw: float) -> tuple[Body, Body, SimParams]:
    p = SimParams(duration_s=30.0, heel_strike_peak_g=0.0, **kw)  # type: ignore[arg-type]
    with_contact = Body(p, np.random.default_rng(3))
    free = Body(p, np.random.default_rng(3), foot_contact=False)
    return with_contact, free, p


@pytest.fixture(scope="module")
def bodies() -> tuple[Body, Body, SimParams]:
    return _bodies(speed_m_s=1.2, cadence_steps_min=105.0)


def _angle(body: Body, t: np.ndarray, side: str = "right") -> tuple[np.ndarray, np.ndarray]:
    st = body.state(t)
    return body._sagittal(st.q_world, st.origin, st.phase, side)


def test_hip_truth_unchanged(bodies) -> None:
    on, off, _ = bodies
    t = np.sort(np.random.default_rng(0).uniform(0.0, 30.0, 3000))
    a, b = on.state(t), off.state(t)
    for k in ("pelvis", "thigh_l", "thigh_r", "lumbar", "walk"):
        np.testing.assert_array_equal(a.q_world[k], b.q_world[k])
    for s in ("left", "right"):
        np.testing.assert_array_equal(a.hip[s], b.hip[s])
    np.testing.assert_array_equal(a.pelvis, b.pelvis)
    np.testing.assert_array_equal(a.origin, b.origin)


def test_rolling_constraint_holds_in_stance(bodies) -> None:
    on, _, _ = bodies
    for side in ("left", "right"):
        sc = on.contact[side]
        n = 0
        for k in range(len(sc.start)):
            t0, t1 = sc.start[k], sc.stop[k]
            if not (np.isfinite(t0) and np.isfinite(t1)) or t0 < 8.0 or t1 > 22.0:
                continue
            t = np.linspace(t0 + 0.06, t1 - 0.06, 50)
            x_k, th = _angle(on, t, side)
            # knee progression + d sin(theta) + R theta is constant: no slip on the arc (within
            # 1 mm: the contact angle is applied about the knee axis, which hip adduction and
            # rotation tilt slightly out of the sagittal plane)
            lhs = x_k + ROLLOVER_CENTRE_FROM_KNEE_M * np.sin(th) + sc.radius[k] * th
            np.testing.assert_allclose(lhs, sc.const[k], atol=1e-3)
            n += 1
        assert n >= 8


def test_angle_continuous_and_swing_returns_to_kinematics(bodies) -> None:
    on, off, _ = bodies
    sc = on.contact["right"]
    ok = np.isfinite(sc.start) & (sc.start > 8.0) & (sc.start < 22.0)
    for t_ic, t_to in zip(sc.start[ok], sc.stop[ok], strict=True):
        # at the heel strike the contact-free and the contact angle agree (the heel lands where
        # the swinging leg puts it) ...
        _, a_on = _angle(on, np.array([t_ic - 0.03, t_ic]))
        _, a_off = _angle(off, np.array([t_ic - 0.03, t_ic]))
        np.testing.assert_allclose(a_on, a_off, atol=1e-4)  # the 8 ms blend's tail at -30 ms
        # ... the rolling leg reaches toe-off in the contact-free configuration ...
        _, b_on = _angle(on, np.array([t_to]))
        _, b_off = _angle(off, np.array([t_to]))
        assert abs(b_on[0] - b_off[0]) < np.radians(0.5)
        # ... and the angle is continuous: no step larger than the motion over 1 ms
        t = np.arange(t_ic - 0.05, t_to + 0.1, 1e-3)
        _, th = _angle(on, t)
        assert np.max(np.abs(np.diff(th))) < 0.012  # rad per ms (12 rad/s)
    # in steady walking the chain closes without clipping the arc radius over the simulated
    # speed range (0.15-0.6 leg lengths; Hansen et al. report ~0.3)
    lo, hi = ROLLOVER_RADIUS_RANGE_M
    for speed, cadence in ((0.8, 95.0), (1.7, 130.0)):
        body, _, _ = _bodies(speed_m_s=speed, cadence_steps_min=cadence)
        c = body.contact["right"]
        steady = (c.start > body.tl.steady[0]) & (c.stop < body.tl.steady[1])
        assert steady.sum() >= 8
        r = c.radius[steady]
        assert np.all((r > lo) & (r < hi)), r / LEG_LENGTH_M
        np.testing.assert_allclose(c.mismatch[steady], 0.0, atol=1e-9)


def test_shank_gyro_has_the_contact_features(bodies) -> None:
    on, off, p = bodies
    t = np.arange(8.0, 22.0, 1e-3)
    w_on = ideal_imu(on, p, "shank_r", t, nominal_mounting("shank_r")).gyr_rad_s[:, 2]
    w_off = ideal_imu(off, p, "shank_r", t, nominal_mounting("shank_r")).gyr_rad_s[:, 2]
    sc = on.contact["right"]
    ok = np.isfinite(sc.start) & (sc.start > 8.5) & (sc.stop < 21.5)
    assert ok.sum() >= 8
    for t_ic, t_to in zip(sc.start[ok], sc.stop[ok], strict=True):
        # heel strike: within 30 ms the shank goes from swinging forward to rotating backward
        i = np.searchsorted(t, t_ic)
        j = np.searchsorted(t, t_ic + 0.03)
        assert w_on[i - 20] - w_on[i:j].min() > 1.5
        # toe-off: the fastest backward rotation of the late stance is at the release
        win = (t > t_to - 0.15) & (t < t_to + 0.1)
        assert abs(t[win][np.argmin(w_on[win])] - t_to) < 0.010
        # the contact-free kinematics had it earlier (the gap the contact model closes)
        assert t[win][np.argmin(w_off[win])] - t_to < -0.030
