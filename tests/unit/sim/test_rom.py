"""Seated 90/90 ROM simulator: schedule, known-answer truth, clinical direction, determinism."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from imuhip.conventions import quat_rotate
from imuhip.sim import SimParams
from imuhip.sim.kinematics import DEG
from imuhip.sim.rom import (
    RomBody,
    RomSimParams,
    rom_schedule,
    simulate_rom_session,
    write_rom_recording,
)
from imuhip.sim.truth import hip_angles

SMALL = SimParams(sensors=("thigh_l", "thigh_r"), rate_hz=100, seed=3)


def test_schedule_three_reps_per_side_neutral_ir_neutral_er():
    ph = rom_schedule(RomSimParams())
    for side in ("left", "right"):
        kinds = [p.kind for p in ph if p.side == side]
        assert kinds == ["neutral"] + ["ir", "neutral", "er", "neutral"] * 3
    assert all(a.stop_s <= b.start_s + 1e-12 for a, b in itertools.pairwise(ph))
    assert max(p.stop_s for p in ph if p.side == "left") < min(
        p.start_s for p in ph if p.side == "right"
    )


def test_pure_rotation_truth_equals_commanded_amplitude():
    p = RomSimParams(base=SMALL, flexion_coupling_deg=0.0, adduction_coupling=0.0, tremor_deg=0.0)
    body = RomBody(p, np.random.default_rng(0))
    t = np.arange(0, p.duration_s, 0.005)
    st = body.state(t)
    for side in ("left", "right"):
        ang = hip_angles(st.q_world["pelvis"], st.q_world[f"thigh_{side[0]}"], side) / DEG
        assert ang[:, 0] == pytest.approx(90.0, abs=1e-6)  # hip flexion 90
        assert ang[:, 1] == pytest.approx(0.0, abs=1e-6)
        ir = ang[:, 2] - body.neutral_rad[side] / DEG
        for ph in body.phases:
            if ph.side != side or ph.kind == "neutral":
                continue
            w = ir[(t >= ph.start_s) & (t < ph.stop_s)]
            got = w.max() if ph.kind == "ir" else -w.min()
            want = body.targets_rad[(side, ph.repetition, ph.kind)] / DEG
            assert got == pytest.approx(want, abs=1e-6)


@pytest.mark.parametrize("side", ["left", "right"])
def test_internal_rotation_moves_the_foot_laterally(side):
    p = RomSimParams(base=SMALL)
    body = RomBody(p, np.random.default_rng(1))
    ir = next(ph for ph in body.phases if ph.side == side and ph.kind == "ir")
    er = next(ph for ph in body.phases if ph.side == side and ph.kind == "er")
    n0 = next(ph for ph in body.phases if ph.side == side and ph.kind == "neutral")
    t = np.array(
        [(n0.start_s + n0.stop_s) / 2, (ir.start_s + ir.stop_s) / 2, (er.start_s + er.stop_s) / 2]
    )
    st = body.state(t)
    foot = quat_rotate(st.q_world[f"shank_{side[0]}"], [0.0, -1.0, 0.0])  # distal shank axis
    lateral = quat_rotate(st.q_world["pelvis"], [0.0, 0.0, 1.0 if side == "right" else -1.0])
    lat = np.sum(foot * lateral, axis=1)
    assert foot[0, 2] < -0.99  # neutral: shank hangs down
    assert lat[1] > lat[0] + 0.4  # IR: foot out
    assert lat[2] < lat[0] - 0.4  # ER: foot in


def test_truth_markers_and_determinism(tmp_path):
    p = RomSimParams(base=SMALL, ir_deg=(25.0, 40.0))
    a = simulate_rom_session(p)
    rom = a.truth["rom"]
    for side, target in (("left", 25.0), ("right", 40.0)):
        assert len(rom[side]["ir_deg"]) == 3 and len(rom[side]["er_deg"]) == 3
        assert rom[side]["ir_mean_deg"] == pytest.approx(target, rel=0.15)
        assert rom[side]["ir_sd_deg"] == pytest.approx(np.std(rom[side]["ir_deg"], ddof=1))
    starts = [e for e in a.events if e.kind == "calibration_start"]
    assert len(starts) == len(a.phases) == 26
    assert {e.data["movement"] for e in starts} == {"rom_neutral", "rom_ir", "rom_er"}
    pa = write_rom_recording(a, tmp_path / "a")
    pb = write_rom_recording(simulate_rom_session(p), tmp_path / "b")
    assert pa["imrec"].read_bytes() == pb["imrec"].read_bytes()
    no = simulate_rom_session(RomSimParams(base=SMALL, markers=False))
    assert not [e for e in no.events if e.kind == "calibration_start"]


def test_bad_params():
    with pytest.raises(ValueError, match="ir_deg"):
        RomSimParams(ir_deg=(0.0, 30.0))
    with pytest.raises(ValueError, match="repetitions"):
        RomSimParams(repetitions=0)
