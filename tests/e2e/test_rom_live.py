"""``imuhip rom-test --live --simulate``: guided test over virtual BLE sensors, end to end."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from imuhip.ingest.recording import read_recording


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_live_simulated_rom_test(tmp_path):
    out = tmp_path / "rom"
    js = tmp_path / "rom.json"
    cp = subprocess.run(
        [sys.executable, "-m", "imuhip", "rom-test", "--live", "--simulate", "--out", str(out),
         "--rom-ir-deg", "25,40", "--rom-er-deg", "40,40", "--speed", "20", "--json", str(js)],
        capture_output=True, text=True, timeout=80, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    assert cp.returncode == 0, cp.stderr[-2000:]
    # guided prompts for both sides, every repetition
    assert "Side LEFT, start: hold the leg in NEUTRAL" in cp.stderr
    assert "Side RIGHT, repetition 3/3: rotate maximally EXTERNAL" in cp.stderr
    rec = read_recording(tmp_path / "rom.imrec")
    assert rec.complete
    assert not (tmp_path / "rom.live.imrec").exists()
    starts = [e for e in rec.events if e.kind == "calibration_start"]
    assert len(starts) == 26
    assert {e.data["movement"] for e in starts} == {"rom_neutral", "rom_ir", "rom_er"}
    truth = {
        s: (float(ir), float(er))
        for s, ir, er in re.findall(r"(left|right) IR ([\d.]+)°, ER ([\d.]+)°", cp.stderr)
    }
    assert set(truth) == {"left", "right"}
    doc = json.loads(js.read_text())
    for side in ("left", "right"):
        r = doc["sides"][side]
        assert len(r["ir_deg"]) == 3 and len(r["er_deg"]) == 3
        assert r["ir_mean_deg"] == pytest.approx(truth[side][0], abs=2.0)
        assert r["er_mean_deg"] == pytest.approx(truth[side][1], abs=2.0)
    assert ("hip_ir_rom_below_norm", "left") in {(f["code"], f["side"]) for f in doc["flags"]}


def test_live_needs_out_and_both_thighs(tmp_path):
    base = [sys.executable, "-m", "imuhip", "rom-test", "--live"]
    cp = subprocess.run([*base, "--sensor", "thigh_l=AA:BB"], capture_output=True, text=True)
    assert cp.returncode == 1 and "--out" in cp.stderr
    cp = subprocess.run(
        [*base, "--sensor", "thigh_l=AA:BB", "--out", str(tmp_path / "x")],
        capture_output=True, text=True,
    )  # fmt: skip
    assert cp.returncode == 1 and "--sensor thigh_r=ADDRESS" in cp.stderr
