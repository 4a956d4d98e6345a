"""BROAD metric (Laidig et al. 2021) known answers, and the default fusion's accuracy on BROAD."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from imuhip.conventions import quat_from_axis_angle, quat_mul
from imuhip.orientation.fusion import estimate_orientation
from imuhip.orientation.fusion.broad import broad_errors, list_broad_trials, load_broad_trial
from tests.unit._fusion_synth import random_rotation_q


@pytest.fixture(scope="module")
def q_ref() -> np.ndarray:
    return np.array([random_rotation_q(s) for s in range(400)])


def test_reference_against_itself_is_zero(q_ref: np.ndarray) -> None:
    e = broad_errors(q_ref, q_ref, np.ones(len(q_ref), bool))
    assert e.total_rmse_deg < 1e-5
    assert e.heading_rmse_deg < 1e-5
    assert e.inclination_rmse_deg < 1e-5
    e_neg = broad_errors(-q_ref, q_ref, np.ones(len(q_ref), bool))  # q and -q are one rotation
    assert e_neg.total_rmse_deg < 1e-5


@pytest.mark.parametrize(
    ("axis", "total", "heading", "incl"),
    [([0, 0, 1], 10.0, 10.0, 0.0), ([1, 0, 0], 10.0, 0.0, 10.0), ([0, 1, 0], 25.0, 0.0, 25.0)],
)
def test_constant_world_offset_known_value(
    q_ref: np.ndarray, axis: list[float], total: float, heading: float, incl: float
) -> None:
    off = quat_from_axis_angle(axis, np.radians(total))
    q_est = quat_mul(off, q_ref)  # estimate rotated in the world frame by a fixed offset
    e = broad_errors(q_est, q_ref, np.ones(len(q_ref), bool))
    assert e.total_rmse_deg == pytest.approx(total, abs=1e-6)
    assert e.heading_rmse_deg == pytest.approx(heading, abs=1e-6)
    assert e.inclination_rmse_deg == pytest.approx(incl, abs=1e-6)


def test_heading_offset_removal_for_6d(q_ref: np.ndarray) -> None:
    q_est = quat_mul(quat_from_axis_angle([0, 0, 1], np.radians(170.0)), q_ref)
    mv = np.ones(len(q_ref), bool)
    assert broad_errors(q_est, q_ref, mv).total_rmse_deg == pytest.approx(170.0, abs=1e-6)
    assert broad_errors(q_est, q_ref, mv, remove_heading_offset=True).total_rmse_deg < 1e-5


def test_movement_mask_and_nan_reference(q_ref: np.ndarray) -> None:
    q_est = q_ref.copy()
    q_est[:100] = quat_mul(quat_from_axis_angle([1, 0, 0], np.radians(30.0)), q_ref[:100])
    mv = np.ones(len(q_ref), bool)
    mv[:100] = False
    assert broad_errors(q_est, q_ref, mv).total_rmse_deg < 1e-5
    ref_nan = q_ref.copy()
    ref_nan[:100] = np.nan  # lost optical markers are ignored, as in the authors' nanmean
    assert broad_errors(q_est, ref_nan, np.ones(len(q_ref), bool)).total_rmse_deg < 1e-5
    # half the samples 30° off: RMSE = sqrt(0.25 * 30²) over the 400 samples
    half = np.ones(len(q_ref), bool)
    e = broad_errors(q_est, q_ref, half)
    assert e.total_rmse_deg == pytest.approx(np.sqrt(100 / 400 * 30.0**2), abs=1e-6)


def test_default_fusion_meets_accuracy_on_shared_broad(shared_data: Path) -> None:
    """vqf offline 9D (the default) must average <= 2.3° total RMSE on the shared trials."""
    paths = list_broad_trials(shared_data / "broad")
    assert len(paths) == 4
    totals = []
    for p in paths:
        tr = load_broad_trial(p)
        q = estimate_orientation(tr.acc_m_s2, tr.gyr_rad_s, tr.mag_ut, rate_hz=tr.rate_hz)
        totals.append(broad_errors(q, tr.q_ref, tr.movement).total_rmse_deg)
    assert np.mean(totals) <= 2.3, totals
    assert max(totals) < 3.0, totals


def test_bench_fusion_cli(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "imuhip",
            "bench-fusion",
            "--data",
            str(shared_data / "broad"),
            "--methods",
            "vqf",
            "vqf_online",
            "--trials",
            "02_",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    assert "MEAN" in r.stdout and "vqf_online" in r.stdout
    import json

    doc = json.loads(out.read_text())
    rows = {(m["method"], m["dims"]): m for m in doc["mean"]}
    assert rows[("vqf_offline", 9)]["total_rmse_deg"] < 2.3
    assert set(rows) == {
        ("vqf_offline", 9),
        ("vqf_offline", 6),
        ("vqf_online", 9),
        ("vqf_online", 6),
    }
    bad = subprocess.run(
        [sys.executable, "-m", "imuhip", "bench-fusion", "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert bad.returncode == 1
    assert "no such file" in bad.stderr
