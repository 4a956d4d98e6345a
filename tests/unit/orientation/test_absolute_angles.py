"""Absolute angles: standing pelvic tilt assumption and the walking-anchored 9D relative heading."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import Side, quat_conj, quat_from_axis_angle, quat_mul
from imuhip.gait.joints import (
    JointsConfig,
    cardan_zxy,
    joint_angles,
    lumbar_angles,
    pelvis_angles,
    segment_orientation,
)
from imuhip.orientation.segment_calibration import (
    STANDING_PELVIC_TILT_DEG,
    SegmentCalConfig,
    calibrate_segments,
)
from imuhip.pipeline import AnalysisConfig
from tests.unit._walk_synth import DEG, make_walk

ROOT = Path(__file__).resolve().parents[3]
CLI = (sys.executable, "-m", "imuhip", "analyze")


@pytest.fixture(scope="module")
def walk9d():
    return make_walk(with_mag=True, seed=3, walk_s=16)


def test_population_default_is_documented_value() -> None:
    assert STANDING_PELVIC_TILT_DEG == 13.0  # Preece et al. 2008: 13 +- 5 deg
    assert SegmentCalConfig().standing_pelvic_tilt_rad == pytest.approx(13.0 * DEG)
    assert AnalysisConfig().standing_pelvic_tilt_deg == 13.0
    from imuhip.sim.params import SimParams

    assert SimParams().pelvis_tilt_mean_deg == STANDING_PELVIC_TILT_DEG  # agree by definition


def test_bad_options_rejected() -> None:
    with pytest.raises(ValueError, match="standing_pelvic_tilt_rad"):
        SegmentCalConfig(standing_pelvic_tilt_rad=float("nan"))
    with pytest.raises(ValueError, match="relative_heading"):
        AnalysisConfig(relative_heading="compass")


def test_pelvic_tilt_turns_only_the_pelvis_about_its_z(walk9d) -> None:
    ori, _, _ = walk9d
    tilt = 13.0 * DEG
    level = calibrate_segments(ori, SegmentCalConfig(standing_pelvic_tilt_rad=0.0))
    tilted = calibrate_segments(ori, SegmentCalConfig(standing_pelvic_tilt_rad=tilt))
    for p in ("thigh_l", "thigh_r", "lumbar"):
        np.testing.assert_allclose(tilted.q_sensor_segment[p], level.q_sensor_segment[p])
    # q_level_anatomical = Rz(-tilt): the anterior axis tips down (anterior tilt)
    d = quat_mul(quat_conj(level.q_sensor_segment["pelvis"]), tilted.q_sensor_segment["pelvis"])
    want = quat_from_axis_angle([0.0, 0.0, 1.0], -tilt)
    assert min(np.abs(d - want).max(), np.abs(d + want).max()) < 1e-9

    # decoupling: hip flexion +tilt, lumbar flexion -tilt, pelvic tilt +tilt; nothing else moves
    def seg(sc, p):
        return segment_orientation(ori.q_world_sensor[p], sc.q_sensor_segment[p])

    for side in (Side.LEFT, Side.RIGHT):
        th = f"thigh_{side.suffix}"
        a0 = cardan_zxy(quat_mul(quat_conj(seg(level, "pelvis")), seg(level, th)))
        a1 = cardan_zxy(quat_mul(quat_conj(seg(tilted, "pelvis")), seg(tilted, th)))
        np.testing.assert_allclose(a1[:, 0] - a0[:, 0], tilt, atol=1e-9)
        np.testing.assert_allclose(a1[:, 1:], a0[:, 1:], atol=1e-9)
    l0 = lumbar_angles(seg(level, "pelvis"), seg(level, "lumbar"))
    l1 = lumbar_angles(seg(tilted, "pelvis"), seg(tilted, "lumbar"))
    np.testing.assert_allclose(l1[:, 0] - l0[:, 0], -tilt, atol=1e-9)
    np.testing.assert_allclose(l1[:, 1:], l0[:, 1:], atol=1e-9)
    d_w = np.array([0.0, 1.0, 0.0])
    p0 = pelvis_angles(seg(level, "pelvis"), d_w)
    p1 = pelvis_angles(seg(tilted, "pelvis"), d_w)
    np.testing.assert_allclose(p1[:, 2] - p0[:, 2], tilt, atol=1e-9)
    np.testing.assert_allclose(p1[:, :2], p0[:, :2], atol=1e-9)


def test_walking_anchor_removes_a_9d_heading_error(walk9d) -> None:
    # a constant magnetometer heading error on one thigh (hard iron) turns its 9D heading by 4 deg
    ori, _, truth = walk9d
    sc = calibrate_segments(ori, SegmentCalConfig(standing_pelvic_tilt_rad=0.0))
    turn = quat_from_axis_angle([0.0, 0.0, 1.0], 4.0 * DEG)
    q = dict(ori.q_world_sensor)
    q["thigh_r"] = quat_mul(turn, q["thigh_r"])
    bad = dataclasses.replace(ori, q_world_sensor=q)
    w = ori.t_s > 6.0

    def ir_err(cfg: JointsConfig) -> tuple[float, float]:
        ja = joint_angles(bad, sc, cfg)
        e = (ja.hip_rad["right"][w, 2] - truth["hip_right"][w, 2]) / DEG
        ref = joint_angles(ori, sc, cfg)
        e0 = (ref.hip_rad["right"][w, 2] - truth["hip_right"][w, 2]) / DEG
        assert ja.transverse_confidence is not None
        assert np.all(ja.transverse_confidence == 1.0)  # clean field: 9D confidence kept
        return float(np.mean(e - e0)), float(np.std(e - e0))

    shift_mag, _ = ir_err(JointsConfig(heading_correction="auto"))
    shift_walk, sd_walk = ir_err(JointsConfig(heading_correction="always"))
    assert abs(abs(shift_mag) - 4.0) < 0.5  # the heading error goes straight into IR
    assert abs(shift_walk) < 0.2 and sd_walk < 0.2  # anchored: gone
    notes = joint_angles(bad, sc, JointsConfig(heading_correction="always")).notes
    assert any(n.startswith("9D: thigh_r heading anchored") for n in notes)


@pytest.mark.slow
def test_cli_pelvic_tilt_option_shifts_absolute_flexion_only(tmp_path: Path) -> None:
    rec = ROOT / "recordings" / "typical.imrec"
    out = {}
    for name, extra in (("default", []), ("tilt5", ["--standing-pelvic-tilt-deg", "5"])):
        r = subprocess.run(
            [*CLI, str(rec), "--out", str(tmp_path / name), "--quiet", *extra],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stderr
        out[name] = json.loads((tmp_path / name / "report.json").read_text())
    assert out["default"]["config"]["standing_pelvic_tilt_deg"] == 13.0
    assert out["tilt5"]["config"]["standing_pelvic_tilt_deg"] == 5.0
    a = out["tilt5"]["quality"]["angle_assumptions"]
    assert a["standing_pelvic_tilt_source"] == "set for this subject"
    assert any("5 deg" in s for s in out["tilt5"]["caveats"])
    assert (
        "population mean"
        in out["default"]["quality"]["angle_assumptions"]["standing_pelvic_tilt_source"]
    )
    # ranges and excursions do not depend on the assumed tilt
    for side in ("left", "right"):
        m0 = out["default"]["metrics"]["per_side"][side]
        m1 = out["tilt5"]["metrics"]["per_side"][side]
        for k in ("hip_rotation_excursion_deg", "hip_flexion_range_deg"):
            assert m1[k]["mean"] == pytest.approx(m0[k]["mean"], abs=1e-6)
    bad = subprocess.run(
        [*CLI, str(rec), "--out", str(tmp_path / "x"), "--standing-pelvic-tilt-deg", "60"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "--standing-pelvic-tilt-deg" in bad.stderr  # usage error
