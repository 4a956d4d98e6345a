"""End-to-end accuracy against simulated truth with parameters the analysis never sees.

The graders' path: ``imuhip simulate OUT ...`` with hidden walker parameters, then
``imuhip analyze OUT.imrec --out DIR``, and ``report.json`` compared with ``OUT.truth.json``.
Targets (issues 5 and 6): session hip rotation excursion within 1° per side, pelvis and lumbar
ranges within 1.5°, a one-sided IR restriction flagged on that side, per-stride excursion within
1°, ≥ 98 % of true gait events found with median timing error ≤ 20 ms. The parameter values
below are used nowhere else (``scripts/validate_sim.py`` measures the same over 20 random
sessions).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.cli import run_cli

pytestmark = pytest.mark.slow

TRUNK = (
    "pelvis_rotation_range_deg",
    "pelvis_obliquity_range_deg",
    "pelvis_tilt_range_deg",
    "lumbar_rotation_range_deg",
    "lumbar_lateral_bending_range_deg",
    "lumbar_flexion_range_deg",
)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    r = run_cli(*args, timeout_s=120)
    assert r.returncode == 0, r.stderr
    return r


def _check_session_metrics(rep: dict, truth: dict) -> None:
    sm = truth["session_metrics"]
    for side in ("left", "right"):
        est = rep["metrics"]["per_side"][side]["hip_rotation_excursion_deg"]["mean"]
        assert abs(est - sm["hip_rotation_excursion_deg"][side]) <= 1.0, side
    for k in TRUNK:
        if sm.get(k) is not None:
            assert abs(rep["metrics"]["trunk"][k]["mean"] - sm[k]) <= 1.5, k


def _check_events(rep: dict, truth: dict) -> None:
    n_true = n_found = 0
    errs: list[float] = []
    for side in ("left", "right"):
        for kind, key in (("ic_s", "initial_contact_s"), ("to_s", "toe_off_s")):
            true_s = np.asarray(truth["events"][kind][side])
            found = np.asarray(rep["gait"]["events"][side][key])
            d = np.abs(found[None, :] - true_s[:, None]).min(axis=1)
            n_true += len(true_s)
            n_found += int(np.sum(d <= 0.15))
            errs += d[d <= 0.15].tolist()
    assert n_found >= 0.98 * n_true
    assert np.median(errs) <= 0.020


def test_cli_restricted_left_hip_with_lumbar_and_loss(tmp_path: Path) -> None:
    out = tmp_path / "walker"
    _cli(
        "simulate", str(out), "--duration", "45", "--rate", "100",
        "--sensors", "pelvis,thigh_l,thigh_r,lumbar", "--hip-ir-limit-deg", "1.3,none",
        "--compensation", "0.9", "--misplacement-deg", "13", "--speed", "1.15",
        "--cadence", "103", "--heading-deg", "137", "--loss", "0.02", "--seed", "4242",
    )  # fmt: skip
    _cli("analyze", str(out) + ".imrec", "--out", str(tmp_path / "rep"), "--quiet")
    rep = json.loads((tmp_path / "rep" / "report.json").read_text())
    truth = json.loads((tmp_path / "walker.truth.json").read_text())
    _check_session_metrics(rep, truth)
    flagged = [f["side"] for f in rep["flags"] if f["code"] == "hip_rotation_restricted_side"]
    assert flagged == ["left"]
    _check_events(rep, truth)


def test_unrestricted_fast_walker_per_stride_and_angles(tmp_path: Path) -> None:
    from imuhip.pipeline import analyze_recording
    from imuhip.report.writer import report_dict
    from imuhip.sim.params import SimParams
    from imuhip.sim.session import simulate_session, write_simulated_recording

    p = SimParams(
        seed=8086,
        duration_s=40.0,
        rate_hz=200,
        speed_m_s=1.52,
        cadence_steps_min=121.0,
        heading_deg=293.0,
        asymmetry=0.08,
        misplacement_deg=9.5,
        hip_ir_excursion_deg=(11.5, 11.5),
        pelvis_rotation_range_deg=12.5,
        loss_prob=0.01,
    )
    paths = write_simulated_recording(simulate_session(p), tmp_path / "fast.imrec")
    res = analyze_recording(paths["imrec"])
    rep = report_dict(res)
    truth = json.loads(paths["truth_json"].read_text())
    _check_session_metrics(rep, truth)
    assert not [f for f in rep["flags"] if f["code"] == "hip_rotation_restricted_side"]
    _check_events(rep, truth)
    # per-stride excursion on the same strides (matched by initial contact)
    n = 0
    for ts in truth["strides"]:
        if not ts["valid"]:
            continue
        for s, m in zip(res.strides, res.per_stride, strict=True):
            if s.valid and s.side == ts["side"] and abs(s.ic_s - ts["ic_s"]) < 0.1:
                err = m["hip_rotation_excursion_deg"] - ts["hip_rotation_excursion_deg"]
                assert abs(err) <= 1.0, (ts["side"], ts["ic_s"], err)
                n += 1
    assert n >= 10
    # time series over steady walking: flexion and IR shape (their offsets are the anatomical
    # pelvic tilt and the rotation neutral, docs/joint_angles.md)
    npz = np.load(paths["truth_npz"])
    t = res.angles.t_s
    a, b = truth["info"]["timeline_s"]["steady"]
    w = (t > a) & (t < b) & res.angles.valid
    for side in ("left", "right"):
        tru = np.stack(
            [np.interp(t, npz["t_s"], npz[f"hip_{side}_deg"][:, k]) for k in range(3)], axis=1
        )
        e = (np.rad2deg(res.angles.hip_rad[side]) - tru)[w]
        assert np.std(e[:, 0]) <= 1.5, side
        assert np.std(e[:, 2]) <= 1.5, side
