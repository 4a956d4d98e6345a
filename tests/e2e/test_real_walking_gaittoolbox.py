"""Real walking (gaittoolbox S02, 9 Xsens MTx at 100 Hz, a 180-degree turn) through the CLI.

``imuhip import xsens`` with pelvis, both thighs and both shanks, then ``imuhip analyze``, as a
user runs them. The data are read in place from ``../shared/data/gaittoolbox`` (skipped when
absent). Before the calibration looked for the flexion axis within the plane orthogonal to
each segment's long axis and left turns out of the walking window, the 180-degree turn made
``shank_r``'s axis "ambiguous" (ratio 1.31) and aborted the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from imuhip.gait.norms import NORM_FLAG_MIN_STRIDES
from tests.real_data import GAITTOOLBOX_IDS, GAITTOOLBOX_IMU, GAITTOOLBOX_TRIAL, run_cli

DATA = GAITTOOLBOX_IMU
TRIAL = GAITTOOLBOX_TRIAL
IDS = {p: GAITTOOLBOX_IDS[p] for p in ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r")}
STANDING_ROWS = 1000  # the subject stands still for the first ~11 s (10.8 s found)

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args)


def _file(placement: str) -> Path:
    return DATA / f"{TRIAL}_{IDS[placement]}.txt"


def _tampered(src: Path, dst: Path, first_row: int = STANDING_ROWS, seed: int = 0) -> Path:
    """``src`` with isotropic 2 rad/s gyro noise from ``first_row`` on (a test-only copy).

    A sensor flapping loose on the body.
    """
    lines = src.read_text(encoding="utf-8").splitlines()
    head = next(i for i, s in enumerate(lines) if s.startswith("PacketCounter"))
    cols = lines[head].split(",")
    gi = [cols.index(c) for c in ("Gyr_X", "Gyr_Y", "Gyr_Z")]
    rng = np.random.default_rng(seed)
    out = lines[: head + 1 + first_row]
    for s in lines[head + 1 + first_row :]:
        f = s.split(",")
        for k in gi:
            f[k] = f"{rng.normal(scale=2.0):.6f}"
        out.append(",".join(f))
    dst.write_text("\n".join(out) + "\n", encoding="utf-8")
    return dst


def _import_analyze(
    tmp: Path, files: dict[str, Path]
) -> tuple[subprocess.CompletedProcess[str], Path]:
    rec = tmp / "rec"
    sensors = [a for p, f in files.items() for a in ("--sensor", f"{p}={f}")]
    imp = _cli("import", "xsens", *sensors, "-o", str(rec), "--overwrite", "--rate-hz", "100")
    assert imp.returncode == 0, imp.stderr
    out = tmp / "out"
    return _cli("analyze", str(rec), "--out", str(out), "--force", "--quiet"), out


@pytest.fixture(scope="module")
def five(tmp_path_factory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any], Path]:
    tmp = tmp_path_factory.mktemp("gtb5")
    run, out = _import_analyze(tmp, {p: _file(p) for p in IDS})
    assert run.returncode == 0, run.stderr
    return run, json.loads((out / "report.json").read_text(encoding="utf-8")), out


def test_all_five_sensors_calibrate_and_both_hips_are_analysed(five) -> None:
    _, rep, _ = five
    q = rep["quality"]
    assert q["dropped_sensors"] == {}
    cal = q["segment_calibration"]["quality"]
    # the flexion axis is clear on every leg segment (the old unconstrained axis: shank_r 1.31,
    # thighs 1.5-1.6 with the axis 60 deg off); measured 3.3-6.9
    for p in ("thigh_l", "thigh_r", "shank_l", "shank_r"):
        assert cal[p]["axis_ratio"] > 2.5, (p, cal[p])
    assert q["event_sources"] == {"left": "shank_gyro", "right": "shank_gyro"}
    for side in ("left", "right"):
        assert rep["gait"]["strides"][side]["valid"] >= 3
        assert "hip_rotation_excursion_deg" in rep["metrics"]["per_side"][side]


def test_turning_strides_are_excluded_counted_and_steady_ones_kept(five) -> None:
    run, rep, _ = five
    n_turn = sum(s["excluded"].get("turning", 0) for s in rep["gait"]["strides"].values())
    # the 180-degree turn spans two strides per side (net pelvis heading change 45-140 deg)
    assert n_turn >= 4
    assert rep["quality"]["turning_strides"] == n_turn
    assert f"turning: {n_turn} stride(s) excluded" in run.stdout
    # steady strides before the turn and after it are kept on both sides
    ev = rep["gait"]["events"]
    for side in ("left", "right"):
        assert rep["gait"]["strides"][side]["valid"] >= 3
        assert ev[side]["n_initial_contacts"] >= 5


def test_few_strides_make_no_flag_and_no_index_and_the_summary_says_so(five) -> None:
    """A short walk, a 180° turn and back: 3 valid strides a side, few of them straight
    enough for a pelvis rotation range. No number standing on one or two strides is compared
    with a norm, no compensation index is made of them, and the asymmetry's interval is
    Welch's (wide)."""
    run, rep, out = five
    trunk = rep["metrics"]["trunk"]["pelvis_rotation_range_deg"]
    codes = {f["code"] for f in rep["flags"]}
    assert 0 < trunk["n"] < NORM_FLAG_MIN_STRIDES  # 1 stride (19.6 deg, above the 4-16 band)
    assert "pelvis_rotation_range_deg_above_norm" not in codes
    assert "pelvis_rotation_range_deg_below_norm" not in codes
    assert f"({trunk['n']} stride" in run.stdout and "not compared with the norm" in run.stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    assert f"(not compared: fewer than {NORM_FLAG_MIN_STRIDES} strides)" in page
    assert "No index for left and right" in page
    assert "absorption phase (°)" not in page  # no header-only index table
    assert "Compensation: not assessed (needs 5 valid strides a side" in page  # first screen
    assert "(1 stride: not compared with the typical range)" in page
    assert rep["compensation"]["per_side"] == {}  # printed from 1 stride before
    assert run.stdout.count("compensation index – (needs 5 usable strides)") == 2
    # each side's line says why its other strides were left out, in words
    for side in ("left", "right"):
        n = rep["gait"]["strides"][side]
        line = next(x for x in run.stdout.splitlines() if x.strip().startswith(f"{side}:"))
        assert f"{n['valid']}/{n['total']} valid strides (excluded: " in line, line
        assert "turning" in line, line
    a = rep["asymmetry"]["hip_rotation_excursion_deg"]
    assert min(a["n_left"], a["n_right"]) < 10 and a["ci_method"] == "Welch t"
    assert a["ci95_low"] < 0 < a["ci95_high"]  # -1.9 deg, CI -5.0 to +1.1 (3 vs 3 strides)
    assert not any(f["code"] == "hip_rotation_restricted_side" for f in rep["flags"])


def test_turning_strides_lie_between_kept_steady_strides(five) -> None:
    """In strides.csv the turning strides have |heading change| > 20 deg; valid steady strides
    come before the turn and after it on each side."""
    import csv

    _, _, out = five
    with (out / "strides.csv").open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for side in ("left", "right"):
        mine = [r for r in rows if r["side"] == side]
        turning = [i for i, r in enumerate(mine) if r["exclusion"] == "turning"]
        assert turning
        assert all(abs(float(mine[i]["heading_change_deg"])) > 20.0 for i in turning)
        before = [r for r in mine[: turning[0]] if r["valid"] == "True"]
        after = [r for r in mine[turning[-1] + 1 :] if r["valid"] == "True"]
        assert before and after, side
        assert all(abs(float(r["heading_change_deg"])) < 20.0 for r in before + after)


def test_loose_shank_is_dropped_with_its_reason_and_both_hips_go_on(tmp_path) -> None:
    files = {p: _file(p) for p in IDS}
    files["shank_r"] = _tampered(files["shank_r"], tmp_path / "shank_r.txt")
    run, out = _import_analyze(tmp_path, files)
    assert run.returncode == 0, run.stderr
    rep = json.loads((out / "report.json").read_text(encoding="utf-8"))
    d = rep["quality"]["dropped_sensors"]
    assert set(d) == {"shank_r"}
    assert d["shank_r"]["stage"] == "calibration"
    assert "flexion axis ambiguous" in d["shank_r"]["reason"]
    assert "DROPPED shank_r (calibration): flexion axis ambiguous" in run.stdout
    # right-side events from the thigh now; both hips analysed
    assert rep["quality"]["event_sources"] == {"left": "shank_gyro", "right": "thigh_gyro"}
    for side in ("left", "right"):
        assert rep["gait"]["strides"][side]["valid"] >= 2, side
        assert "hip_rotation_excursion_deg" in rep["metrics"]["per_side"][side]
    html = (out / "report.html").read_text(encoding="utf-8")
    top = html[: html.index("<h2>")]  # before the first section: the header of the page
    assert "Sensors dropped:" in top and "shank_r" in top


def test_pelvis_failure_is_still_an_error_naming_the_pelvis(tmp_path) -> None:
    files = {p: _file(p) for p in ("pelvis", "thigh_l", "thigh_r")}
    # the pelvis sensor flaps loose all through: never still, no standing pose for it
    files["pelvis"] = _tampered(files["pelvis"], tmp_path / "pelvis.txt", first_row=0)
    run, out = _import_analyze(tmp_path, files)
    assert run.returncode != 0
    assert "Traceback" not in run.stderr  # a user error with a message, not a crash
    assert "pelvis:" in run.stderr
    assert "pelvis: never still" in run.stderr
    assert "stand still for at least 2 s" in run.stderr  # what to redo
    assert not (out / "report.json").exists()


@pytest.fixture(scope="module")
def angles(five, tmp_path_factory) -> list[dict[str, str]]:
    """The five-sensor analysis exported as ``angles-csv`` (rows: session time and hip angles)."""
    import csv

    _, _, out = five
    dst = tmp_path_factory.mktemp("gtb5_angles")
    exp = _cli("export", str(out.parent / "rec"), "--format", "angles-csv", "--out", str(dst))
    assert exp.returncode == 0, exp.stderr
    with next(dst.glob("*_angles.csv")).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _compare_mvn(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``scripts/compare_mvn.py`` as a module (its BVH reader and ISB mapping)."""
    import importlib.util

    script = Path(__file__).resolve().parents[2] / "scripts" / "compare_mvn.py"
    spec = importlib.util.spec_from_file_location("compare_mvn", script)
    assert spec is not None and spec.loader is not None
    cm = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "compare_mvn", cm)  # its dataclass looks itself up there
    spec.loader.exec_module(cm)
    return cm


def test_per_stride_rotation_excursion_is_near_xsens_mvns(five, angles, monkeypatch) -> None:
    """Per valid stride, imuhip's hip rotation excursion against MVN's max - min over the same
    frames (MVN: a commercial estimate from the same sensors, not optical truth; Xsens' fusion
    is within ~2 deg of this trial's optical reference per issue 13). Measured: median |delta|
    1.7 / 0.7 deg, side means +1.2 / -0.5 deg (left / right); before the 6-Hz low-pass of the
    rotation metrics 2.6 / 1.9 deg and +2.8 / +2.0 deg (docs/validation.md)."""
    import csv

    _, _, out = five
    cm = _compare_mvn(monkeypatch)
    bvh = cm.read_bvh(DATA.parent / "xsens" / "S02-Trial-Walk-1.bvh")
    m = cm.isb_from_bvh(bvh)
    with (out / "strides.csv").open(encoding="utf-8") as fh:
        strides = [r for r in csv.DictReader(fh) if r["valid"] == "True"]
    assert len(angles) == len(bvh.data)  # sample k of the text files = BVH frame k
    t = np.array([float(r["t_s"]) for r in angles])
    for side in ("left", "right"):
        mvn = cm.mvn_hip_angles(bvh, side, m)[:, 2]
        d = []
        for s in (x for x in strides if x["side"] == side):
            k = np.flatnonzero((t >= float(s["ic_s"]) - 1e-9) & (t < float(s["next_ic_s"]) - 1e-9))
            d.append(float(s["hip_rotation_excursion_deg"]) - float(np.ptp(mvn[k])))
        assert len(d) >= 3, side
        assert np.median(np.abs(d)) <= 2.5, (side, d)
        assert abs(np.mean(d)) <= 2.0, (side, d)


def test_hip_angles_follow_xsens_mvn_on_the_steady_strides(five, angles, monkeypatch) -> None:
    """Flexion, adduction and rotation curves against Xsens MVN's estimate from the same sensors
    (the BVH of the data set; MVN is not ground truth, but a backward pelvis axis shows at once).

    With the 6D pelvis anterior axis from the flexion-*rate* obliquity cue the axis pointed
    backwards on this trial: adduction r = -0.23 / -0.03 (left/right), flexion 0.95 and a 1-2
    frame lag; with the flexion-angle cue r = 0.94 / 0.94, 0.997 (docs/validation.md)."""
    import csv

    _, _, out = five
    cm = _compare_mvn(monkeypatch)
    bvh = cm.read_bvh(DATA.parent / "xsens" / "S02-Trial-Walk-1.bvh")
    m = cm.isb_from_bvh(bvh)
    rows = angles
    assert len(rows) == len(bvh.data)  # sample k of the text files = BVH frame k
    t = np.array([float(r["t_s"]) for r in rows])
    with (out / "strides.csv").open(encoding="utf-8") as fh:
        strides = [r for r in csv.DictReader(fh) if r["valid"] == "True"]
    for side, c in (("left", "l"), ("right", "r")):
        mine = [s for s in strides if s["side"] == side]
        k = np.concatenate(
            [
                np.flatnonzero((t >= float(s["ic_s"]) - 1e-9) & (t < float(s["next_ic_s"]) - 1e-9))
                for s in mine
            ]
        )
        mvn = cm.mvn_hip_angles(bvh, side, m)[k]
        r = [
            float(np.corrcoef([float(rows[i][f"hip_{a}_{c}_deg"]) for i in k], mvn[:, q])[0, 1])
            for q, a in enumerate(("flexion", "adduction", "internal_rotation"))
        ]
        assert r[0] > 0.98 and r[1] > 0.8 and r[2] > 0.85, (side, r)
