"""The realistic simulator (issue 13): soft-tissue artefact, sensor errors, walkway, variability."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from imuhip.conventions import quat_conj, quat_mul, quat_rotate
from imuhip.sim import SimParams, simulate_session
from imuhip.sim.presets import realistic_params, walkway_params
from imuhip.sim.realism import SENSOR_GRADES, Realism

STA = Realism(sta_thigh_deg=4.0, sta_shank_deg=1.5, axis_misalignment_deg=0.0)


def _sta_rotvec_deg(tr, pl: str) -> np.ndarray:
    """Sensor rotation against its bone, segment frame, from the truth alone (deg, (N, 3))."""
    q_seg_sensor = quat_mul(quat_conj(tr.q_world_segment[pl]), tr.q_world_sensor[pl])
    q_sta = quat_mul(q_seg_sensor, quat_conj(tr.q_segment_sensor[pl]))
    return np.degrees(Rotation.from_quat(q_sta, scalar_first=True).as_rotvec())


def _steady(tr) -> np.ndarray:
    s0, s1 = tr.info["timeline_s"]["steady"]
    sel = (tr.t_s > s0) & (tr.t_s < s1)
    turn = tr.info["timeline_s"]["turn"]
    if turn is not None:
        sel &= ~((tr.t_s > turn[0]) & (tr.t_s < turn[1]))
    return sel


@pytest.fixture(scope="module")
def walkway():
    p = realistic_params(
        5,
        speed_m_s=1.1,
        sensors=("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r", "foot_l", "foot_r"),
        realism=STA,
        rate_hz=100,
    )
    return simulate_session(p)


def test_clean_mode_has_no_artefact() -> None:
    r = simulate_session(SimParams(seed=3, duration_s=20.0, rate_hz=100))
    for pl in r.params.sensors:
        assert np.max(np.abs(_sta_rotvec_deg(r.truth, pl))) < 1e-6


def test_artefact_has_the_stated_rms_mostly_about_the_long_axis(walkway) -> None:
    tr = walkway.truth
    sel = _steady(tr)
    for pl, want in (("thigh_l", 4.0), ("thigh_r", 4.0), ("shank_l", 1.5), ("shank_r", 1.5)):
        rms = np.sqrt(np.mean(_sta_rotvec_deg(tr, pl)[sel] ** 2, axis=0))
        # long axis = segment Y; the others 0.4 of it (the heel-strike ringing adds a little)
        assert rms[1] == pytest.approx(want, rel=0.1), (pl, rms)
        assert rms[0] == pytest.approx(0.4 * want, rel=0.15), (pl, rms)
        assert rms[2] == pytest.approx(0.4 * want, rel=0.15), (pl, rms)
    assert np.max(np.abs(_sta_rotvec_deg(tr, "pelvis"))) < 1e-6  # sta_pelvis_deg = 0
    # standing: no artefact, so a standing calibration sees the bone
    stand = tr.t_s < tr.info["timeline_s"]["walk_on"] - 0.1
    assert np.max(np.abs(_sta_rotvec_deg(tr, "thigh_r")[stand])) < 1e-6


def test_artefact_moves_the_sensor_never_the_truth(walkway) -> None:
    p = walkway.params
    bone = simulate_session(
        SimParams(**{**p.to_dict(), "realism": Realism(sta_thigh_deg=0.0, sta_shank_deg=0.0)})
    )
    for side in ("left", "right"):
        np.testing.assert_array_equal(walkway.truth.hip_deg[side], bone.truth.hip_deg[side])


def test_thigh_jolts_in_extension_at_each_heel_strike(walkway) -> None:
    """The thigh sensor's sagittal jolt (``thigh_jolt_deg_per_g``): nothing before a heel
    strike, extension first after it (-A e^(-t/0.1 s) sin(2 pi 7 Hz t), A = 1 deg per g of the
    strike's peak, ~2 g), gone half a second later; the bone is unchanged."""
    p = walkway.params
    assert p.realism is not None and p.realism.thigh_jolt_deg_per_g == 1.0
    still = simulate_session(
        SimParams(**{**p.to_dict(), "realism": replace(p.realism, thigh_jolt_deg_per_g=0.0)})
    )
    tr = walkway.truth
    jolt = _sta_rotvec_deg(tr, "thigh_l")[:, 2] - _sta_rotvec_deg(still.truth, "thigh_l")[:, 2]
    ics = np.asarray(tr.ic_s["left"])
    ics = ics[(ics > tr.t_s[0] + 1.0) & (ics < tr.t_s[-1] - 1.0)]
    assert len(ics) > 10
    at = lambda s: np.interp(s, tr.t_s, jolt)  # noqa: E731
    # a quarter period after the strike: -A e^(-0.036/0.1) ~ -0.70 A, A ~ 1.4-2.6 deg
    assert np.all(at(ics + 0.036) < -0.8) and np.all(at(ics + 0.036) > -2.5), at(ics + 0.036)
    assert np.all(np.abs(at(ics - 0.02)) < 0.05)
    assert np.all(np.abs(at(ics + 0.5)) < 0.05)
    np.testing.assert_array_equal(tr.hip_deg["left"], still.truth.hip_deg["left"])
    assert (
        np.max(
            np.abs(
                _sta_rotvec_deg(tr, "shank_l")[:, 2] - _sta_rotvec_deg(still.truth, "shank_l")[:, 2]
            )
        )
        < 1e-9
    )  # thighs only


def test_walkway_turns_180_and_stands_at_both_ends(walkway) -> None:
    tr = walkway.truth
    x = quat_rotate(tr.q_world_segment["pelvis"], np.array([1.0, 0.0, 0.0]))
    heading = np.degrees(np.unwrap(np.arctan2(x[:, 1], x[:, 0])))
    t = tr.t_s
    tl = tr.info["timeline_s"]
    start = t < tl["walk_on"] - 0.2
    end = t > tl["walk_off"] + 0.2
    assert start.sum() > 100 and end.sum() > 100
    assert abs(np.mean(heading[end]) - np.mean(heading[start])) == pytest.approx(180.0, abs=2.0)
    for pl in ("pelvis", "thigh_r", "foot_l"):
        gyr = walkway.samples[pl].gyr_true_rad_s
        st = walkway.samples[pl].t_s
        for w in (st < tl["walk_on"] - 0.2, st > tl["walk_off"] + 0.2):
            assert np.max(np.linalg.norm(gyr[w], axis=1)) < 1e-3, pl


def test_walkway_covers_the_distance_each_way() -> None:
    p = walkway_params(1.2, distance_m=10.0)
    walking = p.walking_s - p.ramp_s - 0.35 * 0.375 * p.turn_duration_s
    assert walking * 1.2 == pytest.approx(20.0, rel=1e-9)


def test_feet_are_flat_in_mid_stance_and_pitch_at_toe_off(walkway) -> None:
    tr = walkway.truth
    for side, pl in (("right", "foot_r"), ("left", "foot_l")):
        x = quat_rotate(tr.q_world_segment[pl], np.array([1.0, 0.0, 0.0]))
        pitch = np.degrees(np.arcsin(np.clip(x[:, 2], -1, 1)))
        ics = tr.ic_s[side]
        tos = tr.to_s[side]
        flats, at_to = [], []
        for ic in ics[2:-2]:
            to = tos[tos > ic][0]
            mid = (t := tr.t_s)[(t > ic + 0.3 * (to - ic)) & (t < ic + 0.45 * (to - ic))]
            flats.append(np.max(np.abs(np.interp(mid, t, pitch))))
            at_to.append(np.interp(to, t, pitch))
        assert np.max(flats) < 1.0
        assert -70.0 < np.median(at_to) < -20.0  # plantarflexed, toes on the ground


def test_noise_and_bias_match_the_datasheet_grade() -> None:
    grade = SENSOR_GRADES["xsens_mtx"]
    sensors = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r", "lumbar")
    p = realistic_params(
        11,
        walkway=False,
        sensor_grade="xsens_mtx",
        duration_s=12.0,
        sensors=sensors,
        rate_hz=200,
        realism=Realism(axis_misalignment_deg=0.0),
        gyr_bias_walk_rad_s=0.0,
    )
    r = simulate_session(p)
    biases, noise = [], []
    for pl in sensors:
        s = r.samples[pl]
        still = s.t_s < s.t_s[0] + 3.0  # standing: ideal gyro is zero
        e = s.gyr_rad_s[still] - s.gyr_true_rad_s[still]
        biases.append(e.mean(axis=0))
        noise.append(e.std(axis=0))
        ea = s.acc_m_s2[still] - s.acc_true_m_s2[still] * 1.0
        # accelerometer noise: differences of neighbours remove bias and scale terms
        assert np.std(np.diff(ea, axis=0)) / np.sqrt(2) == pytest.approx(
            grade["acc_noise_m_s2"], rel=0.1
        )
    assert np.mean(noise) == pytest.approx(grade["gyr_noise_rad_s"], rel=0.05)
    sd_bias = np.sqrt(np.mean(np.square(biases)))  # 18 draws of N(0, sigma)
    assert 0.6 * grade["gyr_bias_rad_s"] < sd_bias < 1.5 * grade["gyr_bias_rad_s"]


def test_axis_misalignment_is_applied_with_its_sd() -> None:
    p = realistic_params(4, walkway=False, duration_s=12.0, rate_hz=100)
    r = simulate_session(p)
    offs = []
    for m in r.truth.info["axis_misalignment"].values():
        for triad in m.values():
            a = np.asarray(triad)
            offs.extend(a[~np.eye(3, dtype=bool)])
    sd = np.degrees(np.std(offs))
    want = SENSOR_GRADES["movesense"]["axis_misalignment_deg"]
    assert 0.7 * want < sd < 1.3 * want  # 5 sensors x 3 triads x 6 terms


def test_stride_time_cv_is_in_the_asked_range() -> None:
    p = realistic_params(
        21, walkway=False, duration_s=70.0, sensors=("pelvis",), stride_time_cv=0.03
    )
    tr = simulate_session(p).truth
    for side in ("left", "right"):
        st = [s["next_ic_s"] - s["ic_s"] for s in tr.strides if s["side"] == side and s["valid"]]
        cv = np.std(st) / np.mean(st)
        assert len(st) > 40
        assert 0.02 <= cv <= 0.04, cv
    # the clean simulator's three-sinusoid modulation is unchanged (not asserted to be in range)


def test_speed_changes_amplitude_and_timing() -> None:
    slow = realistic_params(2, speed_m_s=0.7, walkway=False, duration_s=20.0, sensors=("pelvis",))
    fast = realistic_params(2, speed_m_s=1.6, walkway=False, duration_s=20.0, sensors=("pelvis",))
    ts, tf = simulate_session(slow).truth, simulate_session(fast).truth
    assert ts.info["toe_off_phase"] > 0.62 > 0.6 > tf.info["toe_off_phase"]
    rs = ts.session_metrics["hip_flexion_range_deg"]["right"]
    rf = tf.session_metrics["hip_flexion_range_deg"]["right"]
    assert rf - rs > 8.0  # +25 %/(m/s) of 42 deg over 0.9 m/s, ~9.5 deg


def test_analysis_of_one_realistic_walker_stays_within_its_measured_bound(tmp_path) -> None:
    # measured (issue 13): excursion error left +3.67 deg, right -0.01 deg (STA-driven);
    # the bound leaves ~1.3 deg of margin. It documents what the artefact costs, not a target.
    from imuhip.pipeline import analyze_recording
    from imuhip.report.writer import report_dict
    from imuhip.sim import write_simulated_recording

    p = realistic_params(
        7,
        speed_m_s=1.2,
        rate_hz=100,
        misplacement_deg=5.0,
        sensors=("pelvis", "thigh_l", "thigh_r"),
    )
    sim = simulate_session(p)
    paths = write_simulated_recording(sim, tmp_path / "real7.imrec")
    rep = report_dict(analyze_recording(paths["imrec"]))
    truth = sim.truth.session_metrics["hip_rotation_excursion_deg"]
    for side in ("left", "right"):
        est = rep["metrics"]["per_side"][side]["hip_rotation_excursion_deg"]
        assert est["n"] >= 8
        assert abs(est["mean"] - truth[side]) <= 5.0, side
