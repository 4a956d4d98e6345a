"""``imuhip rom-test`` against the seated 90/90 simulator's truth (markers and automatic phases)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from imuhip.cli.commands.rom_test import analyze_rom_recording
from imuhip.sim import SimParams
from imuhip.sim.rom import RomSimParams, simulate_rom_session, write_rom_recording

TOL_REP_DEG = 2.0


def _sim(tmp_path, name, **kw):
    base = kw.pop("base", SimParams(sensors=("pelvis", "thigh_l", "thigh_r"), rate_hz=100))
    res = simulate_rom_session(RomSimParams(base=base, **kw))
    return write_rom_recording(res, tmp_path / name)["imrec"], res.truth["rom"]


def _check(results, truth):
    errs = []
    for side in ("left", "right"):
        r, tr = results[side], truth[side]
        assert len(r.ir_deg) == 3 and len(r.er_deg) == 3
        errs += list(np.subtract(r.ir_deg, tr["ir_deg"])) + list(
            np.subtract(r.er_deg, tr["er_deg"])
        )
        assert r.ir_deg == pytest.approx(tr["ir_deg"], abs=TOL_REP_DEG)
        assert r.er_deg == pytest.approx(tr["er_deg"], abs=TOL_REP_DEG)
        assert r.ir_mean_deg == pytest.approx(tr["ir_mean_deg"], abs=1.0)
        assert r.er_mean_deg == pytest.approx(tr["er_mean_deg"], abs=1.0)
        assert r.ir_sd_deg == pytest.approx(tr["ir_sd_deg"], abs=1.0)
        assert r.er_sd_deg == pytest.approx(tr["er_sd_deg"], abs=1.0)
    return float(np.max(np.abs(errs)))


@pytest.mark.parametrize("markers", [True, False])
def test_rom_matches_truth_and_flags_low_ir(tmp_path, markers):
    path, truth = _sim(tmp_path, "low", ir_deg=(24.0, 40.0), er_deg=(42.0, 38.0), markers=markers)
    results, flags, errors = analyze_rom_recording(path)
    assert not errors
    _check(results, truth)
    assert any("markers" in n for n in results["left"].notes) is markers
    codes = {(f.code, f.side) for f in flags}
    assert ("hip_ir_rom_below_norm", "left") in codes
    assert ("hip_ir_rom_side_difference", "left") in codes
    assert all(f.side != "right" for f in flags)
    low = next(f for f in flags if f.code == "hip_ir_rom_below_norm")
    assert "Roach & Miles 1991" in low.source


def test_rom_no_flags_within_norm_with_misplacement_noise_and_loss(tmp_path):
    base = SimParams(
        sensors=("thigh_l", "thigh_r"), rate_hz=100, seed=7, misplacement_deg=10.0, loss_prob=0.01
    )
    path, truth = _sim(tmp_path, "ok", base=base, ir_deg=(36.0, 40.0), er_deg=(40.0, 44.0))
    results, flags, _ = analyze_rom_recording(path)
    _check(results, truth)
    assert flags == []


def test_cli_json(tmp_path):
    path, truth = _sim(tmp_path, "cli", ir_deg=(35.0, 35.0), er_deg=(30.0, 45.0))
    out = tmp_path / "rom.json"
    cp = subprocess.run(
        [sys.executable, "-m", "imuhip", "rom-test", str(path), "--json", str(out)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr
    doc = json.loads(out.read_text())
    for side in ("left", "right"):
        assert doc["sides"][side]["er_mean_deg"] == pytest.approx(truth[side]["er_mean_deg"], abs=1)
    # ER differs by 15° between sides: flagged on the left (smaller)
    assert [(f["code"], f["side"]) for f in doc["flags"]] == [
        ("hip_er_rom_side_difference", "left")
    ]
    assert "FLAG: maximal ER differs" in cp.stdout
