"""Simulator heel-strike transient: shank axial acceleration spike and angular dip at each IC."""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.sim.kinematics import Body
from imuhip.sim.params import SimParams
from imuhip.sim.sensors import ideal_imu, nominal_mounting

G = 9.80665


def _shank(peak_g: float, cv: float = 0.0):
    p = SimParams(duration_s=20.0, heel_strike_peak_g=peak_g, heel_strike_cv=cv)
    body = Body(p, np.random.default_rng(0))
    t = np.arange(8.0, 14.0, 1e-3)
    imu = ideal_imu(body, p, "shank_r", t, nominal_mounting("shank_r"))
    return body, t, imu


def test_axial_acceleration_spike_at_each_initial_contact() -> None:
    body, t, on = _shank(2.0)
    _, _, off = _shank(0.0)
    ic = body.impacts["right"][0]
    ic = ic[(ic > 8.2) & (ic < 13.8)]
    assert len(ic) >= 4
    # nominal shank mounting: sensor x = segment Y (the shank's long axis)
    extra = on.acc_m_s2[:, 0] - off.acc_m_s2[:, 0]
    for t_ic in ic:
        w = np.abs(t - t_ic) < 0.05
        k = int(np.argmax(extra[w]))
        assert abs(t[w][k] - t_ic) < 0.003
        assert extra[w][k] / G == pytest.approx(2.0, rel=0.1)  # full activation, cv = 0
    # the angular part: the shank's flexion-axis velocity dips sharply right at IC
    dgyr = on.gyr_rad_s[:, 2] - off.gyr_rad_s[:, 2]  # sensor z = +/- segment Z (right: +)
    for t_ic in ic:
        w = np.abs(t - t_ic) < 0.05
        assert abs(t[w][int(np.argmin(dgyr[w]))] - t_ic) < 0.005
        assert dgyr[w].min() < -0.4
    # away from the heel strikes nothing changes
    far = np.min(np.abs(t[:, None] - ic[None, :]), axis=1) > 0.4
    assert np.max(np.abs(extra[far])) < 1e-3


def test_magnitude_varies_per_stride_and_validates() -> None:
    body, _, _ = _shank(2.0, cv=0.2)
    amp = body.impacts["left"][1]
    steady = amp[amp > 0.5]
    assert 0.05 < np.std(steady) / np.mean(steady) < 0.4
    with pytest.raises(ValueError, match="heel_strike_peak_g"):
        SimParams(heel_strike_peak_g=-1.0)
