"""Joint angles through fusion (vqf offline) and segment calibration vs. simulator truth.

Comparison (documented in docs/joint_angles.md): the calibration is given the simulator's true
standing pose (pelvic tilt ~10°, femora vertical), as a lab would from a static trial. Hip
rotation neutral comes from the walking flexion axis, so absolute IR carries a small constant
offset; the issue's target "hip rotation RMSE ≤ 2°" is checked on the raw (offset included) IR.
Stride bounds are the true initial contacts, so only angles are under test.
"""

from __future__ import annotations

import numpy as np
import pytest

from imuhip.sim.params import SimParams

from ._sim_angles import DEG, hip_errors, run

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def run9d():
    p = SimParams(
        seed=7,
        duration_s=75.0,
        misplacement_deg=15.0,
        noise=True,
        has_mag=True,
        sensors=("pelvis", "thigh_l", "thigh_r", "lumbar"),
        lumbar_rotation_range_deg=8.0,
    )
    return run(p, use_mag=True)


def test_9d_hip_accuracy(run9d) -> None:
    err = hip_errors(run9d)
    for side, e in err.items():
        assert e["n_strides"] >= 40, side
        assert e["flex_rmse_deg"] <= 1.5, (side, e)
        assert e["ir_rmse_deg"] <= 2.0, (side, e)
        assert e["ir_excursion_err_mean_deg"] <= 1.0, (side, e)
        assert e["ir_excursion_err_max_deg"] <= 1.0, (side, e)
    assert run9d.segcal.warnings == ()


def test_9d_pelvis_lumbar_and_confidence(run9d) -> None:
    w = run9d.walk
    pel = (run9d.ja.pelvis_rad / DEG - run9d.truth_pelvis_deg)[w]
    assert np.sqrt(np.mean(pel**2, axis=0)).max() < 1.5
    assert run9d.ja.lumbar_rad is not None and run9d.truth_lumbar_deg is not None
    lum = (run9d.ja.lumbar_rad / DEG - run9d.truth_lumbar_deg)[w]
    lum = lum - lum.mean(axis=0)  # lumbar neutral: standing pose taken as zero
    assert np.sqrt(np.mean(lum**2, axis=0)).max() < 1.5
    assert run9d.ja.transverse_confidence is not None
    assert np.all(run9d.ja.transverse_confidence[w] > 0.99)  # clean field, 9D


def test_functional_calibration_from_events() -> None:
    p = SimParams(
        seed=3,
        duration_s=60.0,
        misplacement_deg=15.0,
        functional_calibration=True,
        sensors=("pelvis", "thigh_l", "thigh_r"),
    )
    r = run(p, use_mag=True, functional=True)
    assert r.segcal.method["thigh_r"] == "static+functional"
    for side, e in hip_errors(r).items():
        assert e["flex_rmse_deg"] <= 1.5, (side, e)
        assert e["ir_excursion_err_mean_deg"] <= 1.0, (side, e)


def test_6d_walking_axis_correction_removes_drift() -> None:
    p = SimParams(
        seed=2,
        duration_s=90.0,
        misplacement_deg=15.0,
        has_mag=False,
        sensors=("pelvis", "thigh_l", "thigh_r"),
    )
    r = run(p, use_mag=False)
    assert "obliquity" in r.segcal.method["pelvis"]
    tw = r.t_s[r.walk]
    for side, e in hip_errors(r).items():
        ir_err = (r.ja.hip_rad[side][:, 2] / DEG - r.truth_hip_deg[side][:, 2])[r.walk]
        assert abs(np.polyfit(tw, ir_err, 1)[0] * 60.0) < 0.5, side  # deg/min
        assert e["ir_rmse_offset_removed_deg"] <= 1.0, (side, e)
        assert e["ir_excursion_err_max_deg"] <= 1.0, (side, e)
        assert abs(e["ir_offset_deg"]) <= 4.0, (side, e)  # mean-rotation assumption
    conf = r.ja.transverse_confidence
    assert conf is not None and 0.5 < conf[r.walk].mean() < 0.9


def test_9d_magnetic_disturbance_lowers_confidence_with_reason() -> None:
    from imuhip.sim.params import MagDisturbance

    p = SimParams(
        seed=4,
        duration_s=75.0,
        misplacement_deg=15.0,
        mag_disturbances=(MagDisturbance(30.0, 40.0, (20.0, 0.0, -15.0)),),
    )
    r = run(p, use_mag=True)
    conf = r.ja.transverse_confidence
    assert conf is not None
    inside = (r.t_s > 31) & (r.t_s < 39)
    outside = r.walk & ((r.t_s < 29) | (r.t_s > 41))
    assert conf[inside].max() < 0.95 and conf[outside].min() > 0.99
    assert any(n.startswith("magnetic disturbance on thigh_r 30.") for n in r.ja.notes)
    for side, e in hip_errors(r).items():
        assert e["ir_rmse_deg"] <= 2.0, (side, e)
