"""Realistic variants of real recordings through ``imuhip import xsens`` + ``imuhip analyze``.

imuhip is judged on recordings of the same kind as ``../shared/data/gaittoolbox`` (MT Manager
text exports, overground walking with a turn) that it has never seen: other cuts, other
sensor sets, other export settings, damaged rows. Each variant is derived in ``tmp_path`` from
the shipped trial (read in place; skipped when absent) and run as a user would. The variants
that found a defect have their own test (what happened before is in each docstring); the rest
are a parametrised smoke test (marked slow). docs/validation.md, "Robustness on real
recordings", lists them all with what imuhip does.
"""

from __future__ import annotations

import csv
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.real_data import (
    GAITTOOLBOX_IDS,
    GAITTOOLBOX_IMU,
    GAITTOOLBOX_TRIAL,
    SHARED_DATA,
    run_cli,
)

SHARED = SHARED_DATA
DATA = GAITTOOLBOX_IMU
OPENSENSE = SHARED / "opensense"
TRIAL = GAITTOOLBOX_TRIAL
IDS = GAITTOOLBOX_IDS
FIVE = ("pelvis", "thigh_l", "thigh_r", "shank_l", "shank_r")

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason=f"{DATA} not present")

Rows = list[str]
Tweak = Callable[[Rows, str, Rows], tuple[Rows, str, Rows]]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args)


def _split(path: Path) -> tuple[Rows, str, Rows]:
    lines = path.read_text(encoding="utf-8").splitlines()
    h = next(i for i, s in enumerate(lines) if s.startswith("PacketCounter"))
    return lines[:h], lines[h], lines[h + 1 :]


def _variant(
    tmp: Path,
    placements: tuple[str, ...] = FIVE,
    tweak: Tweak | None = None,
    only: tuple[str, ...] | None = None,
    source: dict[str, str] | None = None,
    newline: str = "\n",
) -> dict[str, Path]:
    """The trial's files for ``placements``, ``tweak`` applied to (``only``) some, in ``tmp``."""
    d = tmp / "in"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for p in placements:
        src = DATA / f"{TRIAL}_{IDS[(source or {}).get(p, p)]}.txt"
        pre, head, rows = _split(src)
        if tweak is not None and (only is None or p in only):
            pre, head, rows = tweak(pre, head, rows)
        dst = d / f"{p}.txt"
        dst.write_bytes(newline.join([*pre, head, *rows, ""]).encode("utf-8"))
        out[p] = dst
    return out


def _run(tmp: Path, files: dict[str, Path]) -> dict[str, Any]:
    rec, out = tmp / "rec", tmp / "out"
    sensors = [a for p, f in files.items() for a in ("--sensor", f"{p}={f}")]
    imp = _cli("import", "xsens", *sensors, "-o", str(rec), "--overwrite")
    res: dict[str, Any] = {"import": imp}
    if imp.returncode == 0:
        res["analyze"] = _cli("analyze", str(rec), "--out", str(out), "--force", "--quiet")
        if (out / "report.json").exists():
            res["report"] = json.loads((out / "report.json").read_text(encoding="utf-8"))
            with (out / "strides.csv").open(encoding="utf-8") as fh:
                res["strides"] = list(csv.DictReader(fh))
    return res


def _ok(res: dict[str, Any]) -> dict[str, Any]:
    assert res["import"].returncode == 0, res["import"].stderr
    assert res["analyze"].returncode == 0, res["analyze"].stderr
    return res


def _excursions(res: dict[str, Any]) -> dict[tuple[str, str], float]:
    return {
        (r["side"], r["ic_s"]): float(r["hip_rotation_excursion_deg"])
        for r in res["strides"]
        if r["valid"] == "True"
    }


def _session(res: dict[str, Any], side: str) -> float:
    return float(res["report"]["metrics"]["per_side"][side]["hip_rotation_excursion_deg"]["mean"])


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("base")
    return _ok(_run(tmp, _variant(tmp)))


def test_duplicated_and_locally_swapped_rows_give_the_unmodified_result(base, tmp_path) -> None:
    """Before: ``counter 29126 does not increase``, the import aborted on one repeated row (or
    two rows exported out of order). Exact duplicates are dropped and a local swap is sorted,
    with a note; the analysis equals the unmodified trial's stride for stride."""

    def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        rows = list(rows)
        rows[1500], rows[1501] = rows[1501], rows[1500]
        rows.insert(1800, rows[1800])
        rows.insert(2000, rows[2000])
        return pre, head, rows

    res = _ok(_run(tmp_path, _variant(tmp_path, tweak=tweak, only=("thigh_r",))))
    err = res["import"].stderr
    assert "thigh_r.txt: 1 row(s) out of counter order: sorted by PacketCounter" in err
    assert "thigh_r.txt: 2 duplicated row(s) dropped" in err
    assert _excursions(res) == pytest.approx(_excursions(base), abs=1e-9)


def test_a_counter_that_jumps_back_far_or_repeats_with_other_values_is_a_clear_error(
    tmp_path,
) -> None:
    """Sorting must not interleave two recordings in one file (a counter reset), nor pick one of
    two different rows with the same counter: both stop the import with the line named."""

    def appended(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        return pre, head, rows + rows[:200]  # a second recording appended

    res = _run(tmp_path / "a", _variant(tmp_path / "a", tweak=appended, only=("thigh_l",)))
    err = res["import"].stderr
    assert res["import"].returncode != 0 and "Traceback" not in err
    assert "jumps back" in err and "two recordings in one file" in err and "thigh_l.txt" in err

    def conflict(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        f = rows[1000].split(",")
        f[2] = "1.0"  # Acc_X differs, same PacketCounter
        return pre, head, [*rows[:1001], ",".join(f), *rows[1001:]]

    res = _run(tmp_path / "b", _variant(tmp_path / "b", tweak=conflict, only=("thigh_l",)))
    err = res["import"].stderr
    assert res["import"].returncode != 0 and "Traceback" not in err
    assert "on two rows with different values" in err


def test_rows_missing_from_one_file_are_a_gap_of_exactly_those_samples(base, tmp_path) -> None:
    """Before: 30 rows (0.3 s) missing from one export aborted the import with "the re-encoded
    samples do not decode to the imported ones": the decoder dropped the first packet after a
    device-time jump of 0.25-1.5 s as an outlier. Now the gap is exactly the 30 samples and the
    other side is untouched."""

    def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        return pre, head, rows[:1500] + rows[1530:]

    res = _ok(_run(tmp_path, _variant(tmp_path, tweak=tweak, only=("thigh_r",))))
    q = res["report"]["quality"]
    assert q["sensors"]["thigh_r"]["lost_samples"] == 30
    assert q["sensors"]["thigh_r"]["n_gaps"] == 1
    assert all(q["sensors"][p]["lost_samples"] == 0 for p in FIVE if p != "thigh_r")
    assert any("30 sample(s) missing from the imported file" in w for w in q["recording_warnings"])
    left = {k: v for k, v in _excursions(res).items() if k[0] == "left"}
    assert left == pytest.approx({k: v for k, v in _excursions(base).items() if k[0] == "left"})


def test_a_trial_starting_while_walking_calibrates_on_the_standing_at_its_end(
    base, tmp_path
) -> None:
    """Before: ``movement too short for the functional calibration: 0.0 s``: the only standing
    is at the end, and the walking was looked for after it only. Now the walking before the
    standing calibrates; the same strides give the same excursions within 2 deg (a different
    standing pose and heading anchor; measured |d| <= 1.9 deg per stride, <= 1.3 deg per side)."""
    cut = 1150  # rows: 11.5 s, the subject walks from 10.8 s on

    def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        return pre, head, rows[cut:]

    res = _ok(_run(tmp_path, _variant(tmp_path, tweak=tweak)))
    mine = {(s, f"{float(t) + cut / 100:.4f}"): v for (s, t), v in _excursions(res).items()}
    ref = _excursions(base)
    assert set(mine) == set(ref)  # the same valid strides, 11.5 s later on the original clock
    assert max(abs(mine[k] - ref[k]) for k in ref) < 2.5
    for side in ("left", "right"):
        assert abs(_session(res, side) - _session(base, side)) < 2.0


def _cut(rows_kept: int) -> Tweak:
    def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        return pre, head, rows[:rows_kept]

    return tweak


def test_a_trial_cut_soon_after_the_first_turn_calibrates_on_its_short_walk(base, tmp_path) -> None:
    """Cut at 17 s: 3.0 s of straight walking before the turn (about two strides a side).
    Before, the analysis aborted ("movement too short ... < 4 s"); a short walkway is a real
    trial. Now it calibrates on those 3 s with a warning in the summary and report.json, and its
    first strides' hip rotation excursions are the whole trial's (measured |d| <= 0.3 deg)."""
    res = _ok(_run(tmp_path, _variant(tmp_path, tweak=_cut(1700))))
    warn = "legs: fallback: only 3.0 s of straight walking (turns left out) (< 4 s)"
    assert f"CALIBRATION: {warn}" in res["analyze"].stdout
    assert any(
        w.startswith(warn) for w in res["report"]["quality"]["segment_calibration"]["warnings"]
    )
    # one valid stride a side: no SD and no CI, said as such (it printed "± nan", "CI +nan")
    out = res["analyze"].stdout
    assert "nan" not in out
    assert "° (1 stride)" in out and "[95% CI – (needs 2 strides a side)]" in out
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "No side difference to act on: no 95 % CI without 2 strides a side" in html
    mine, ref = _excursions(res), _excursions(base)
    assert {"left", "right"} <= {side for side, _ in mine}
    assert set(mine) <= set(ref)  # the same contacts: the clock and the events are unchanged
    assert max(abs(mine[k] - ref[k]) for k in mine) < 1.0


def test_a_trial_cut_in_its_first_strides_names_the_straight_walking_it_lacks(tmp_path) -> None:
    """Cut at 12.5 s: 1.1 s of straight walking. Before, the error said "walk or swing the legs
    after standing still" to a subject who had walked; now it says how much straight walking
    there was (turns are left out), the least that works and that before or after standing
    works."""
    res = _run(tmp_path, _variant(tmp_path, tweak=_cut(1250)))
    err = res["analyze"].stderr
    assert res["analyze"].returncode != 0 and "Traceback" not in err
    assert "1.1 s of straight walking (turns left out) < 2 s" in err
    assert "walk straight for at least 4 s" in err
    assert "before or after standing still" in err


def test_a_counter_that_steps_by_two_is_refused_not_read_as_lost_samples(tmp_path) -> None:
    """Before: a PacketCounter advancing 2 per row (every 2nd sample exported) imported as 50 %
    packet loss at 100 Hz, so every stride read twice as long; advancing 100 per row failed an
    internal check ("re-encoded samples do not decode"). Sporadic losses leave most steps at 1:
    a median step other than 1 is an error naming the column and what to do."""

    def every_second(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        out = []
        for k, r in enumerate(rows):
            f = r.split(",")
            f[0] = str((1000 + 2 * k) % 65536)
            out.append(",".join(f))
        return pre, head, out

    res = _run(tmp_path, _variant(tmp_path, placements=FIVE[:3], tweak=every_second))
    err = res["import"].stderr
    assert res["import"].returncode != 0 and "Traceback" not in err
    assert "column PacketCounter advances a median 2 samples per row at 100 Hz, not 1" in err
    assert "export every sample" in err


def test_sample_time_fine_in_other_units_is_refused(tmp_path) -> None:
    """An export timed by SampleTimeFine only (10-kHz ticks: 100 per row at 100 Hz) imports
    as the counter does, across the u32 wrap; the same column counting 10000 per row (another
    unit) is an error naming it (before: the internal "re-encoded samples do not decode")."""

    def stf(per_row: int) -> Tweak:
        def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
            out = []
            for k, r in enumerate(rows):
                f = r.split(",")
                f[1] = str((4294960000 + per_row * k) % (1 << 32))
                out.append(",".join(f[1:]))
            return pre, ",".join(head.split(",")[1:]), out

        return tweak

    (tmp_path / "ok").mkdir()
    ok = _ok(_run(tmp_path / "ok", _variant(tmp_path / "ok", placements=FIVE[:3], tweak=stf(100))))
    assert {r["side"] for r in ok["strides"] if r["valid"] == "True"} == {"left", "right"}
    (tmp_path / "bad").mkdir()
    bad = _run(tmp_path / "bad", _variant(tmp_path / "bad", placements=FIVE[:3], tweak=stf(10_000)))
    err = bad["import"].stderr
    assert bad["import"].returncode != 0 and "Traceback" not in err
    assert "column SampleTimeFine advances a median 10000 per row" in err
    assert "a row is 100 ticks of 10 kHz" in err


def test_a_rate_its_sample_time_fine_contradicts_is_refused(tmp_path) -> None:
    """PacketCounter and SampleTimeFine both filled: the ticks per counter step give the rate
    the sensor recorded at. Ticks of a 60-Hz recording under the header's 100 Hz (a wrong
    '// Update Rate' line or --rate-hz) would stretch every stride by 1.67 with no word; now
    an error saying both rates. Ticks matching 100 Hz import as before."""

    def ticks(hz: float) -> Tweak:
        def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
            out = []
            for k, r in enumerate(rows):
                f = r.split(",")
                f[1] = str(int(5000 + k * 10_000 / hz))
                out.append(",".join(f))
            return pre, head, out

        return tweak

    (tmp_path / "ok").mkdir()
    _ok(_run(tmp_path / "ok", _variant(tmp_path / "ok", placements=FIVE[:3], tweak=ticks(100))))
    (tmp_path / "bad").mkdir()
    bad = _run(tmp_path / "bad", _variant(tmp_path / "bad", placements=FIVE[:3], tweak=ticks(60)))
    err = bad["import"].stderr
    assert bad["import"].returncode != 0 and "Traceback" not in err
    assert "read at 100 Hz, but its SampleTimeFine advances 167 ticks" in err
    assert "i.e. 59.88 Hz" in err


def _first_rows(n: int) -> Tweak:
    def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        return pre, head, rows[:n]

    return tweak


def test_a_thigh_that_stops_sending_leaves_the_other_hip_analysed(base, tmp_path) -> None:
    """thigh_r's file ends at 12 s, a second into the walking (a flat battery). Before, the
    walking windows needed both thighs' data and the whole analysis was refused ("0.0 s of
    straight walking"), silently about why; now reading names thigh_r's early end, thigh_r is
    dropped with what happened and the left hip is analysed as with both thighs."""
    res = _ok(_run(tmp_path, _variant(tmp_path, tweak=_first_rows(1200), only=("thigh_r",))))
    run, rep = res["analyze"], res["report"]
    assert "thigh_r: its data end at 11.9 s" in run.stderr
    d = rep["quality"]["dropped_sensors"]
    assert set(d) == {"thigh_r"}
    assert d["thigh_r"]["reason"].startswith("no data during most of the walking")
    assert "its data: 0.0–11.9 s" in d["thigh_r"]["reason"]
    assert "hip_rotation_excursion_deg" not in rep["metrics"]["per_side"].get("right", {})
    left = [k for k in _excursions(res) if k[0] == "left"]
    assert left == [k for k in _excursions(base) if k[0] == "left"]  # the same left strides
    assert abs(_session(res, "left") - _session(base, "left")) < 1.0


def test_a_pelvis_that_stops_sending_leaves_the_strides_it_covered(base, tmp_path) -> None:
    """The pelvis carries both hips and its file ends at 15 s. Before, that was an error
    ("3.0 s of straight walking < 4 s", then naming the pelvis's end); the 3 s of walking before
    it calibrate now (with the short-walk warning), the strides the pelvis covered are analysed
    as in the whole trial, the later ones are gaps, and the early end is said."""
    res = _ok(_run(tmp_path, _variant(tmp_path, tweak=_first_rows(1500), only=("pelvis",))))
    assert "pelvis: its data end at 14.9 s" in res["analyze"].stderr
    q = res["report"]["quality"]
    assert any("pelvis: its data end at 14.9 s" in w for w in q["recording_warnings"])
    assert any("only 3.0 s of straight walking" in w for w in q["calibration_fallbacks"])
    valid = [r for r in res["strides"] if r["valid"] == "True"]
    assert {r["side"] for r in valid} == {"left", "right"}
    assert all(float(r["next_ic_s"]) <= 14.9 for r in valid)
    assert {r["exclusion"] for r in res["strides"] if float(r["next_ic_s"]) > 15.0} == {"gap"}
    mine, ref = _excursions(res), _excursions(base)
    assert set(mine) <= set(ref)
    assert max(abs(mine[k] - ref[k]) for k in mine) < 1.0


def _rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * (kx @ kx)


def _seated_start(tmp: Path, keep: slice = slice(None)) -> dict[str, Path]:
    """The trial's five files with 5 s of sitting still and a 1-s sit-to-stand put before it.

    Sitting: each thigh's first 5 s of standing with gravity turned 90 deg about its flexion
    axis (the horizontal part of the principal axis of its gyroscope over 11.5-14 s, straight
    walking), the pelvis's by 15 deg (posterior tilt on a chair), the shanks unchanged (upright
    with the knee at 90 deg); the sit-to-stand turns gravity back over 1 s with the matching
    rate. ``keep``: the original rows kept after it.
    """
    d = tmp / "in"
    d.mkdir(parents=True, exist_ok=True)
    out = {}
    for p in FIVE:
        pre, head, rows = _split(DATA / f"{TRIAL}_{IDS[p]}.txt")
        cols = head.split(",")
        ia = [cols.index(f"Acc_{c}") for c in "XYZ"]
        ig = [cols.index(f"Gyr_{c}") for c in "XYZ"]
        a = np.array([[float(x) if x else np.nan for x in r.split(",")] for r in rows])
        up = np.mean(a[:500][:, ia], axis=0)
        up /= np.linalg.norm(up)
        g = a[1150:1400][:, ig]
        axis = np.linalg.svd(g - g.mean(axis=0))[2][0]
        axis -= (axis @ up) * up
        angle = {"thigh_l": np.pi / 2, "thigh_r": np.pi / 2, "pelvis": np.radians(15.0)}
        ang = angle.get(p, 0.0)
        seat = a[:500].copy()
        seat[:, ia] = seat[:, ia] @ _rotation(axis, ang).T
        rise = a[:100].copy()
        for k in range(100):
            rise[k, ia] = a[k, ia] @ _rotation(axis, ang * (1.0 - (k + 1) / 101.0)).T
            rise[k, ig] = a[k, ig] - axis * ang  # 1 s of turning back at ang rad/s
        new = np.vstack([seat, rise, a[keep]])
        new[:, 0] = np.arange(len(new)) + a[0, 0] - 600
        text = [
            ",".join(
                "" if np.isnan(v) else (str(int(v)) if j == 0 else f"{v:.6f}")
                for j, v in enumerate(r)
            )
            for r in new
        ]
        dst = d / f"{p}.txt"
        dst.write_text("\n".join([*pre, head, *text, ""]), encoding="utf-8")
        out[p] = dst
    return out


def test_a_seated_start_is_passed_over_for_the_standing(base, tmp_path) -> None:
    """Before: the first still period calibrated whatever the posture: with 5 s of sitting
    before the trial, thigh_l was dropped ("flexion axis ambiguous", ratio 1.42), the right hip
    was flagged as on the other leg and its numbers were garbage; with a slightly different
    sitting the whole analysis was refused the same way. Now a still period whose thighs lie
    > 40 deg from their walking posture (here 72 / 75 deg) is passed over, said in the summary,
    and the standing after it calibrates: the unmodified trial's strides and excursions."""
    res = _ok(_run(tmp_path, _seated_start(tmp_path)))
    warn = res["report"]["quality"]["segment_calibration"]["warnings"]
    assert any("is not standing" in w and "seated or lying" in w for w in warn), warn
    shift = 6.0  # 600 rows before the trial's first
    mine = {(s, f"{float(t) - shift:.4f}"): v for (s, t), v in _excursions(res).items()}
    ref = {(s, f"{float(t):.4f}"): v for (s, t), v in _excursions(base).items()}
    assert set(mine) == set(ref)
    assert max(abs(mine[k] - ref[k]) for k in ref) < 0.5


def test_a_seated_start_without_standing_calibrates_on_the_walking_posture(base, tmp_path) -> None:
    """Sitting, sit-to-stand, then walking from 10.6 s to 20 s: no still period is standing.
    Before: calibrated on the chair (exit 0): both thighs "on the other leg" and an asymmetry
    flag of -6.3 deg made of it. Now each segment's vertical is its mean attitude over the
    straight walking, said in the summary and report.json; the strides are the unmodified
    trial's, their rotation excursions within 2.5 deg of it (a thigh frame tilted by the mean
    walking flexion; measured: the same 6 valid strides, <= 1.9 deg per stride, -0.9 / +0.2 deg
    per side)."""
    res = _ok(_run(tmp_path, _seated_start(tmp_path, slice(1060, 2000))))
    seg = res["report"]["quality"]["segment_calibration"]
    assert all(m.startswith("walking posture+walking") for m in seg["method"].values()), seg
    fall = [w for w in seg["warnings"] if "no standing still period" in w]
    assert fall and "mean walking posture" in fall[0], seg["warnings"]
    assert "CALIBRATION: static window: fallback: no standing still period" in (
        res["analyze"].stdout + res["analyze"].stderr
    )
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    top = html[: html.index("<h2>")]  # the report's first screen
    assert "Calibration fallback:" in top and "mean walking posture" in top
    shift = 6.0 - 10.6  # 600 rows before the trial's row 1060
    mine = {(s_, f"{float(t) - shift:.4f}"): v for (s_, t), v in _excursions(res).items()}
    ref = {(s_, f"{float(t):.4f}"): v for (s_, t), v in _excursions(base).items()}
    common = set(mine) & set(ref)
    assert len(common) == 6, (sorted(mine), sorted(ref))
    assert max(abs(mine[k] - ref[k]) for k in common) < 2.5
    for side in ("left", "right"):
        assert abs(_session(res, side) - _session(base, side)) < 2.5


def test_a_walk_that_never_stands_still_calibrates_on_the_walking_posture(base, tmp_path) -> None:
    """Walking only (11-19 s, the turn included: never still). Before: "no still period of 2 s
    found in which all sensors are still", an error. Now the walking posture calibrates, with
    the warning; 4 of the whole trial's 6 valid strides, within 2.5 deg (measured <= 1.3 deg)."""
    res = _ok(_run(tmp_path, _variant(tmp_path, tweak=lambda p, h, r: (p, h, r[1100:1900]))))
    seg = res["report"]["quality"]["segment_calibration"]
    assert all(m.startswith("walking posture+walking") for m in seg["method"].values()), seg
    mine = {(s_, f"{float(t) + 11.0:.4f}"): v for (s_, t), v in _excursions(res).items()}
    ref = _excursions(base)
    common = set(mine) & set(ref)
    assert len(common) >= 4, (sorted(mine), sorted(ref))
    assert max(abs(mine[k] - ref[k]) for k in common) < 2.5


def test_too_little_walking_after_sitting_is_a_clear_error(tmp_path) -> None:
    """Sitting, sit-to-stand and 3 s of walking (10.6-13.6 s). The walking is long enough to see
    that the still period is seated (not standing), too short to take the posture from: an
    error saying so and what is needed, no report. (Calibrating on the sitting as if standing
    gave 5.2 / 11.4 deg excursions; on 3.7 s of walking posture, one hip read 568 deg.)"""
    res = _run(tmp_path, _seated_start(tmp_path, slice(1060, 1360)))
    err = res["analyze"].stderr
    assert res["analyze"].returncode != 0 and "Traceback" not in err
    assert "no standing still period (the still ones are seated or lying)" in err
    assert "3.7 s of straight walking (< 4 s) to take the posture from" in err
    assert not (tmp_path / "out" / "report.json").exists()


def test_a_thigh_and_its_shank_swapped_are_flagged(base, tmp_path) -> None:
    """thigh_l's and shank_l's files swapped. Before: the left side had 0 of 4 valid strides
    and nothing said why. The shank swings through about twice the thigh's angle: the "thigh"
    now turns faster than its "shank" (99th percentile 5.8 against 3.7 rad/s; 0.59-0.65 times
    on the unswapped real trials), which the summary, report.json and the first screen say;
    the right side keeps its strides."""
    swap = {"thigh_l": "shank_l", "shank_l": "thigh_l"}
    res = _ok(_run(tmp_path, _variant(tmp_path, source=swap)))
    warn = [w for w in res["report"]["quality"]["placement_warnings"] if "shank_l" in w]
    assert len(warn) == 1 and warn[0].startswith("thigh_l turns faster than shank_l"), warn
    assert "probably swapped" in warn[0]
    assert "PLACEMENT: thigh_l turns faster than shank_l" in res["analyze"].stdout
    assert base["report"]["quality"]["placement_warnings"] == []  # the real labels: no word
    # the right side: the same strides; the "thigh" on the left shank still feeds the pelvis's
    # walking-based axes, which moved the right excursions by <= 1.0 deg (measured)
    right = {k: v for k, v in _excursions(res).items() if k[0] == "right"}
    ref = {k: v for k, v in _excursions(base).items() if k[0] == "right"}
    assert set(right) == set(ref)
    assert max(abs(right[k] - ref[k]) for k in ref) < 1.5


def test_left_and_right_thigh_files_swapped_are_flagged(base, tmp_path) -> None:
    """Before: swapped thigh files gave plausible numbers (20.5 / 23.8 deg) with no word. With
    shank events, each side's peak hip flexion sits half a stride from its initial contacts
    (52 / 57 % against 1 / 100 % on the right files): flagged in the summary, report.json and
    the report's first screen."""
    swap = {"thigh_l": "thigh_r", "thigh_r": "thigh_l"}
    res = _ok(_run(tmp_path, _variant(tmp_path, source=swap)))
    checks = res["report"]["quality"]["thigh_side_check"]
    ref = base["report"]["quality"]["thigh_side_check"]
    for side in ("left", "right"):
        assert ref[side]["on_labelled_leg"], ref
        assert min(ref[side]["hip_flexion_peak_pct"], 100 - ref[side]["hip_flexion_peak_pct"]) < 10
        assert not checks[side]["on_labelled_leg"], checks
        assert 35 < checks[side]["hip_flexion_peak_pct"] < 65, checks
    assert base["report"]["quality"]["placement_warnings"] == []
    warn = res["report"]["quality"]["placement_warnings"]
    assert len(warn) == 2 and all("seems to be on the other leg" in w for w in warn)
    out = res["analyze"].stdout
    assert "PLACEMENT: thigh_l: hip flexion peaks at" in out
    assert "PLACEMENT: thigh_r: hip flexion peaks at" in out
    html = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "Sensor placement suspect" in html[: html.index("<h2>")]


def _rows_at(rate_hz: float) -> Tweak:
    """Resample every column linearly to ``rate_hz`` (an export at another rate)."""

    def tweak(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
        a = np.array([[float(x) if x else np.nan for x in r.split(",")] for r in rows])
        t = np.arange(len(a)) / 100.0
        tn = np.arange(0.0, t[-1], 1.0 / rate_hz)
        b = np.column_stack([np.interp(tn, t, c) for c in a.T])
        b[:, 1] = np.nan  # SampleTimeFine is empty in these exports
        q = slice(11, 15)
        b[:, q] /= np.linalg.norm(b[:, q], axis=1, keepdims=True)
        b[:, 0] = (a[0, 0] + np.arange(len(tn))) % 65536
        pre = [f"// Update Rate: {rate_hz:.1f}Hz" if "Update Rate" in s else s for s in pre]
        out = [
            ",".join(
                "" if np.isnan(v) else (str(int(v)) if j == 0 else f"{v:.6f}")
                for j, v in enumerate(r)
            )
            for r in b
        ]
        return pre, head, out

    return tweak


def _columns_reordered(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
    order = [0, 1, 11, 12, 13, 14, 5, 6, 7, 2, 3, 4, 8, 9, 10]
    cols = head.split(",")
    new_head = "\t".join([cols[i] for i in order] + ["Temperature", "StatusWord"])
    out = ["\t".join([r.split(",")[i] for i in order] + ["31.2", "3"]) for r in rows]
    return pre, new_head, out


def _empty_rows(pre: Rows, head: str, rows: Rows) -> tuple[Rows, str, Rows]:
    rows = list(rows)
    for i in (1500, 1501, 2000):
        f = rows[i].split(",")
        f[2:8] = ["NaN"] * 6 if i < 2000 else [""] * 6
        rows[i] = ",".join(f)
    rows[-1] = rows[-1][: len(rows[-1]) // 2]  # and a truncated last line
    return pre, head, rows


SAME = "same"  # the unmodified trial's strides and excursions, exactly
CLOSE = "close"  # session excursion within 1.5 deg of the unmodified trial's
SMOKE: dict[str, dict[str, Any]] = {
    "windows_line_endings": {"newline": "\r\n", "expect": SAME},
    "tabs_reordered_extra_columns": {"tweak": _columns_reordered, "expect": SAME},
    "empty_rows_truncated_last_line": {"tweak": _empty_rows, "only": ("thigh_r",), "expect": CLOSE},
    "exported_at_60_hz": {"tweak": _rows_at(60.0), "expect": CLOSE},
    "exported_at_120_hz": {"tweak": _rows_at(120.0), "expect": CLOSE},
    # another event source, the same session excursion: the steps into standing the shank and
    # thigh rules find (hip range 0.3-0.64 of the median) are partial steps, not steady strides
    "pelvis_thighs": {
        "placements": ("pelvis", "thigh_l", "thigh_r"),
        "sources": "thigh",
        "expect": CLOSE,
    },
    "pelvis_thighs_feet": {
        "placements": ("pelvis", "thigh_l", "thigh_r", "foot_l", "foot_r"),
        "sources": "foot",
        "expect": CLOSE,
    },
    "one_foot_missing": {"placements": (*FIVE, "foot_r"), "sources": "mixed", "expect": CLOSE},
    "short_8_s_walk": {"tweak": lambda p, h, r: (p, h, r[:1900])},
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SMOKE))
def test_variant_smoke(name: str, base, tmp_path) -> None:
    v = SMOKE[name]
    files = _variant(
        tmp_path,
        placements=v.get("placements", FIVE),
        tweak=v.get("tweak"),
        only=v.get("only"),
        newline=v.get("newline", "\n"),
    )
    res = _ok(_run(tmp_path, files))
    assert "Traceback" not in res["import"].stderr + res["analyze"].stderr
    rep = res["report"]
    for side in ("left", "right"):
        assert rep["gait"]["strides"][side]["valid"] >= 2, (side, rep["gait"]["strides"])
    assert rep["quality"]["placement_warnings"] == []
    if v.get("expect") == SAME:
        assert _excursions(res) == pytest.approx(_excursions(base), abs=1e-9)
    elif v.get("expect") == CLOSE:
        for side in ("left", "right"):
            assert abs(_session(res, side) - _session(base, side)) < 1.5, side
    src = rep["quality"]["event_sources"]
    if v.get("sources") == "thigh":
        assert set(src.values()) == {"thigh_gyro"}
    elif v.get("sources") == "foot":
        assert set(src.values()) == {"foot_gyro"}
    elif v.get("sources") == "mixed":
        assert src == {"left": "shank_gyro", "right": "foot_gyro"}


@pytest.mark.skipif(not OPENSENSE.is_dir(), reason=f"{OPENSENSE} not present")
def test_opensense_trial_imported_as_orientations_is_analysed(tmp_path) -> None:
    """The OpenSense trial (no gyroscope: the vendor orientations) through the mapping file:
    foot events, the turning strides of its loops excluded, both hips analysed."""
    out = tmp_path / "os.imori.npz"
    imp = _cli("import", "xsens", "--mapping", str(OPENSENSE / "myIMUMappings.xml"), "-o", str(out))
    assert imp.returncode == 0, imp.stderr
    assert "no gyroscope: fusion skipped" in imp.stdout
    run = _cli("analyze", str(out), "--out", str(tmp_path / "out"), "--quiet")
    assert run.returncode == 0, run.stderr
    rep = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    q = rep["quality"]
    assert q["event_sources"] == {"left": "foot_orientation", "right": "foot_orientation"}
    assert q["turning_strides"] >= 10  # the subject walks loops: most strides turn
    assert q["placement_warnings"] == []
    for side in ("left", "right"):
        assert rep["gait"]["strides"][side]["valid"] >= 2
        assert q["thigh_side_check"][side]["on_labelled_leg"]
