"""A user's bad input gives one line on stderr naming what was wrong and a non-zero exit.

Regression tests from the fresh-user QA pass: each case once produced a traceback, a silent
success on wrong input, or an error only after minutes of work.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.cli import run_cli

REPO = Path(__file__).resolve().parents[2]
TYPICAL = REPO / "recordings" / "typical.imrec"


def _imuhip(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, cwd=cwd, env=env, timeout_s=timeout)


def _one_line_error(p: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Assert a non-zero exit, no traceback, and one error line containing every needle."""
    assert p.returncode != 0, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    errs = [ln for ln in p.stderr.splitlines() if ": error: " in ln]
    assert len(errs) == 1, p.stderr
    for n in needles:
        assert n in errs[0], errs[0]
    return errs[0]


def _write_csv(path: Path, gyr: np.ndarray, acc: np.ndarray, header: str) -> None:
    t = np.arange(len(gyr)) / 100.0
    rows = np.column_stack([t, acc, gyr])
    np.savetxt(path, rows, delimiter=",", header=header, comments="", fmt="%.6f")


HEADER_SI = "t_s,acc_x_m_s2,acc_y_m_s2,acc_z_m_s2,gyr_x_rad_s,gyr_y_rad_s,gyr_z_rad_s"


def _still(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    gyr = rng.normal(0.0, 0.01, (n, 3))
    acc = np.tile([0.0, 0.0, 9.81], (n, 1)) + rng.normal(0.0, 0.02, (n, 3))
    return gyr, acc


def test_analyze_out_is_a_file_fails_before_the_analysis(tmp_path: Path) -> None:
    f = tmp_path / "report"
    f.write_text("not a folder")
    p = _imuhip("analyze", TYPICAL, "--out", f, cwd=tmp_path)
    _one_line_error(p, "--out", "not a folder")
    assert "fusing" not in p.stderr  # refused up front, not after the whole analysis
    assert f.read_text() == "not a folder"


def test_analyze_missing_calibration_folder_is_an_error(tmp_path: Path) -> None:
    p = _imuhip(
        "analyze",
        TYPICAL,
        "--out",
        tmp_path / "o",
        "--calibration",
        tmp_path / "nope",
        cwd=tmp_path,
    )
    _one_line_error(p, "--calibration", "nope")


def test_calibrate_sensor_out_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "cal"
    f.write_text("x")
    p = _imuhip(
        "calibrate-sensor", TYPICAL, "--sensor", "thigh_l", "--kind", "gyro", "--out", f,
        cwd=tmp_path,
    )  # fmt: skip
    _one_line_error(p, "--out", "not a folder")


@pytest.mark.parametrize("value", ["nan", "inf", "-5"])
def test_simulate_duration_must_be_finite_positive(tmp_path: Path, value: str) -> None:
    p = _imuhip("simulate", tmp_path / "w", "--duration", value, cwd=tmp_path)
    _one_line_error(p, "--duration")
    assert not (tmp_path / "w.imrec").exists()


def test_batch_folder_without_recordings_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "study").mkdir()
    p = _imuhip("batch", tmp_path / "study", "--out", tmp_path / "c.parquet", cwd=tmp_path)
    _one_line_error(p, "no recordings", "study")
    assert not (tmp_path / "c.parquet").exists()


def test_batch_out_is_a_folder(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    (study / "typical.imrec").symlink_to(TYPICAL)
    p = _imuhip("batch", study, "--out", tmp_path, "--quiet", cwd=tmp_path)
    _one_line_error(p, "--out", "folder")


def test_batch_unreachable_dask_scheduler(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    (study / "typical.imrec").symlink_to(TYPICAL)
    env = dict(os.environ, DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT="1s")
    p = _imuhip(
        "batch", study, "--out", tmp_path / "c.parquet", "--dask", "tcp://127.0.0.1:1", "--quiet",
        cwd=tmp_path, env=env,
    )  # fmt: skip
    _one_line_error(p, "--dask", "scheduler")


def test_import_csv_deg_s_labelled_rad_s_is_refused(tmp_path: Path) -> None:
    gyr, acc = _still()
    t = np.arange(len(gyr)) / 100.0
    gyr_deg_s = np.column_stack([200.0 * np.sin(2 * math.pi * t), gyr[:, 1:]])  # deg/s values
    _write_csv(tmp_path / "p.csv", gyr_deg_s, acc, HEADER_SI)
    _write_csv(tmp_path / "ok.csv", gyr, acc, HEADER_SI)
    out = tmp_path / "s.imrec"
    p = _imuhip(
        "import", "csv", "--sensor", "pelvis=p.csv", "--sensor", "thigh_l=ok.csv",
        "--sensor", "thigh_r=ok.csv", "-o", out, cwd=tmp_path,
    )  # fmt: skip
    _one_line_error(p, "p.csv", "deg/s")
    assert not out.exists()  # never a recording with wrong numbers


def test_import_csv_g_labelled_m_s2_is_refused(tmp_path: Path) -> None:
    gyr, acc = _still()
    _write_csv(tmp_path / "p.csv", gyr, acc / 9.80665, HEADER_SI)
    out = tmp_path / "s.imrec"
    p = _imuhip("import", "csv", "--sensor", "pelvis=p.csv", "-o", out, cwd=tmp_path)
    _one_line_error(p, "p.csv", "looks like g")
    assert not out.exists()


def test_import_csv_non_monotonic_time_names_plain_numbers(tmp_path: Path) -> None:
    gyr, acc = _still()
    _write_csv(tmp_path / "p.csv", gyr, acc, HEADER_SI)
    lines = (tmp_path / "p.csv").read_text().splitlines()
    lines[11], lines[12] = lines[12], lines[11]
    (tmp_path / "p.csv").write_text("\n".join(lines) + "\n")
    p = _imuhip("import", "csv", "--sensor", "pelvis=p.csv", "-o", tmp_path / "s", cwd=tmp_path)
    line = _one_line_error(p, "p.csv", "does not increase")
    assert "np.float64" not in line


def test_import_summary_failure_is_one_line_and_keeps_the_file(tmp_path: Path) -> None:
    gyr, acc = _still()
    _write_csv(tmp_path / "p.csv", gyr, acc, HEADER_SI)
    out = tmp_path / "s.imrec"
    p = _imuhip(
        "import", "csv", "--sensor", "pelvis=p.csv", "--sensor", "thigh_l=p.csv",
        "--sensor", "thigh_r=p.csv", "-o", out, "--summary", cwd=tmp_path,
    )  # fmt: skip
    _one_line_error(p, "was written", "--summary")
    assert out.exists()


def test_simulate_does_not_replace_an_existing_recording(tmp_path: Path) -> None:
    rec = tmp_path / "session.imrec"
    rec.write_bytes(b"a real session")
    args = ("simulate", tmp_path / "session", "--duration", "12", "--rate", "50")
    p = _imuhip(*args, cwd=tmp_path)
    _one_line_error(p, "session.imrec", "--overwrite")
    assert rec.read_bytes() == b"a real session"
    p = _imuhip(*args, "--overwrite", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert rec.read_bytes()[:16] != b"a real session"[:16]


@pytest.mark.parametrize(
    "cmd",
    [
        ("export", TYPICAL, "--format", "sto", "--out", "f/x"),
        ("simulate", "f/x", "--duration", "12", "--rate", "50"),
        ("import", "csv", "--sensor", "pelvis=p.csv", "-o", "f/x.imrec"),
    ],
)
def test_output_under_a_file_is_one_line(tmp_path: Path, cmd: tuple[str | Path, ...]) -> None:
    (tmp_path / "f").write_text("a file, not a folder")
    gyr, acc = _still()
    _write_csv(tmp_path / "p.csv", gyr, acc, HEADER_SI)
    p = _imuhip(*cmd, cwd=tmp_path)
    _one_line_error(p, "not a directory", "f/x")


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_scan_timeout_must_be_positive(tmp_path: Path, value: str) -> None:
    p = _imuhip("scan", "--simulate", "--timeout", value, cwd=tmp_path)
    _one_line_error(p, "--timeout")


@pytest.mark.parametrize(
    ("option", "needle"),
    [(("--gyr-unit", "furlong"), "--gyr-unit"), (("--max-gap-s", "-1"), "--max-gap-s")],
)
def test_import_csv_bad_option_values(tmp_path: Path, option: tuple[str, str], needle: str) -> None:
    gyr, acc = _still()
    _write_csv(tmp_path / "p.csv", gyr, acc, HEADER_SI)  # units in the names: option unused
    out = tmp_path / "s.imrec"
    p = _imuhip("import", "csv", "--sensor", "pelvis=p.csv", "-o", out, *option, cwd=tmp_path)
    _one_line_error(p, needle)
    assert not out.exists()


@pytest.mark.parametrize("cmd", ["info", "replay"])
def test_orientation_session_is_named_not_called_corrupt(tmp_path: Path, cmd: str) -> None:
    f = tmp_path / "walk.imori.npz"
    np.savez(f, x=np.zeros(3))
    p = _imuhip(cmd, f, cwd=tmp_path)
    _one_line_error(p, "orientation session", "analyze")


def test_live_rejects_an_unsupported_rate(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "imuhip",
            "live",
            "--simulate",
            "--out",
            str(tmp_path / "l.imrec"),
            "--duration",
            "3",
            "--rate",
            "1000",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
    assert "--rate" in r.stderr and "1000" in r.stderr
    assert not (tmp_path / "l.imrec").exists()


def test_analyze_refuses_to_overwrite_a_report_unless_force(tmp_path: Path) -> None:
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.json").write_text("{}", encoding="utf-8")
    (out / "strides.csv").write_text("old\n", encoding="utf-8")
    p = _imuhip("analyze", TYPICAL, "--out", out, "--quiet", cwd=tmp_path, timeout=60)
    _one_line_error(p, "refusing to overwrite", "report.json", "strides.csv", "--force")
    assert (out / "strides.csv").read_text(encoding="utf-8") == "old\n"  # untouched
    # with --force the check passes: the (junk) recording is what fails now
    junk = tmp_path / "junk.imrec"
    junk.write_bytes(b"not a recording at all")
    p = _imuhip("analyze", junk, "--out", out, "--force", "--quiet", cwd=tmp_path, timeout=60)
    err = _one_line_error(p, "junk.imrec")
    assert "overwrite" not in err


def test_batch_refuses_to_replace_a_foreign_out_file(tmp_path: Path) -> None:
    study = tmp_path / "study"
    study.mkdir()
    (study / "a.imrec").write_bytes(b"junk")
    out = tmp_path / "cohort.parquet"
    out.write_bytes(b"someone else's table")
    p = _imuhip("batch", study, "--out", out, "--jobs", "1", "--quiet", cwd=tmp_path, timeout=60)
    _one_line_error(p, "refusing to overwrite", "cohort.parquet", "--force")
    assert out.read_bytes() == b"someone else's table"


def test_badly_bit_flipped_recording_warns_in_a_few_lines(tmp_path: Path) -> None:
    """Hundreds of damaged frames: every warning kept (``--json``), a handful printed."""
    import json

    data = bytearray(TYPICAL.read_bytes())
    for off in range(20_000, len(data) - 1000, 4_000):  # well past the header
        data[off] ^= 0x40
    bad = tmp_path / "flipped.imrec"
    bad.write_bytes(bytes(data))
    p = _imuhip("info", bad, cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    every = json.loads(_imuhip("info", bad, "--json", cwd=tmp_path, timeout=60).stdout)
    n = len(every["warnings"])
    assert n > 50  # the damage is really there, all of it recorded
    out_lines = [ln for ln in p.stdout.splitlines() if ln.startswith("warning:")]
    assert len(out_lines) <= 6, p.stdout
    assert f"and {n - 5} more damaged regions" in out_lines[-1]
    assert f"{every['size_bytes'] - every['valid_bytes']} bytes skipped in total" in out_lines[-1]
    assert len(p.stderr.splitlines()) <= 6, p.stderr
    assert "more warnings" in p.stderr.splitlines()[-1]


def test_rom_test_on_a_walking_recording_is_refused(tmp_path: Path) -> None:
    p = _imuhip("rom-test", TYPICAL, cwd=tmp_path, timeout=90)
    err = _one_line_error(p, "no ROM test found in", "typical.imrec", "not seated")
    assert "from horizontal" in err
    assert "IR" not in p.stdout and "FLAG" not in p.stdout  # no numbers, no clinical flags


def test_rom_test_with_off_axis_mounting_still_measures(tmp_path: Path) -> None:
    sim = _imuhip(
        "simulate", "rom", "--scenario", "rom-seated", "--misplacement-deg", "15", cwd=tmp_path
    )
    assert sim.returncode == 0, sim.stderr
    p = _imuhip("rom-test", "rom.imrec", cwd=tmp_path, timeout=90)
    assert p.returncode == 0, p.stderr
    for side in ("left", "right"):
        line = next(ln for ln in p.stdout.splitlines() if ln.strip().startswith(f"{side}:"))
        ir = float(line.split("IR ")[1].split()[0])
        assert 30.0 < ir < 46.0, line  # the simulator's default maximal IR is 38°


def test_import_real_xio_fusion_csv(tmp_path: Path, shared_data: Path) -> None:
    """x-io Fusion's example file: unit-in-parentheses headers and a 2.52 ms clock tick."""
    import json

    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording

    src = shared_data / "fusion" / "sensor_data.csv"
    p = _imuhip("import", "csv", "--sensor", f"pelvis={src}", "-o", "f.imrec", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    info = json.loads(_imuhip("info", "f.imrec", "--json", cwd=tmp_path, timeout=60).stdout)
    s = info["sensors"][0]
    assert s["nominal_rate_hz"] == pytest.approx(100.0, abs=0.05)
    assert s["duration_s"] == pytest.approx(135.3, abs=0.5)
    n_rows = sum(1 for _ in src.open(encoding="utf-8")) - 1
    assert s["samples"] >= 0.99 * n_rows  # only samples around its 10 real gaps may be lost
    rec = read_recording(tmp_path / "f.imrec")
    dec = decode_session(rec.packets, rec.meta)["pelvis"]
    rest = np.linalg.norm(dec.acc_m_s2[:200], axis=1)  # the file starts with the IMU at rest
    assert float(np.mean(rest)) == pytest.approx(9.81, abs=0.15)


@pytest.mark.parametrize(
    "args",
    [
        ("analyze", TYPICAL, "--out", "o", "--method", "foo"),
        ("analyze", TYPICAL, "--out", "o", "--standing-pelvic-tilt-deg", "60"),
        ("batch", ".", "--out", "c.parquet", "--jobs", "0"),
        ("live", "--simulate", "--out", "l.imrec", "--duration", "-3"),
        ("live", "--simulate", "--out", "l.imrec", "--speed", "0"),
        ("scan", "--simulate", "--timeout", "-1"),
        ("rom-test", "--live", "--simulate", "--out", "r.imrec", "--rom-ir-deg", "30"),
    ],
)
def test_bad_option_value_gives_usage_one_line_and_exit_2(
    tmp_path: Path, args: tuple[str | Path, ...]
) -> None:
    p = _imuhip(*args, cwd=tmp_path)
    assert p.returncode == 2, p.stderr
    assert p.stderr.startswith(f"usage: imuhip {args[0]}"), p.stderr
    _one_line_error(p, str([a for a in args if str(a).startswith("--")][-1]))
    assert not any(tmp_path.iterdir())  # nothing written


def test_analyze_twice_replaces_its_own_report(tmp_path: Path) -> None:
    """The README's main command run twice works: the earlier report is replaced as a whole."""
    out = tmp_path / "rep"
    for _ in range(2):
        p = _imuhip("analyze", TYPICAL, "--out", out, "--quiet", cwd=tmp_path, timeout=300)
        assert p.returncode == 0, p.stderr
    assert sorted(f.name for f in out.iterdir()) == ["report.html", "report.json", "strides.csv"]
