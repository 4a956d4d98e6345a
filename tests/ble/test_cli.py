"""``imuhip scan`` and ``imuhip live`` end to end (subprocess), including a kill -9 mid-session."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imuhip.ingest.recording import read_recording
from tests.cli import run_cli

pytestmark = pytest.mark.timeout(120)


def _imuhip(*args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, timeout_s=timeout)


def test_scan_simulate_lists_virtual_sensors() -> None:
    r = _imuhip("scan", "--simulate")
    assert r.returncode == 0, r.stderr
    for name in ("imuhip-pelvis", "imuhip-thigh_l", "imuhip-thigh_r", "imuhip-lumbar"):
        assert name in r.stdout
    assert "90 %" in r.stdout and "dBm" in r.stdout


def test_live_simulate_with_faults_records_and_summarises(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    r = _imuhip(
        "live",
        "--simulate",
        "--faults",
        "--duration",
        "8",
        "--speed",
        "8",
        "--no-view",
        "--no-analysis",
        "--out",
        str(out),
    )
    assert r.returncode == 0, r.stderr
    assert f"recording: {out}.imrec" in r.stdout
    for p in ("pelvis", "thigh_l", "thigh_r"):
        assert f"  {p}: " in r.stdout
    assert "t=" in r.stdout  # plain status lines when stdout is not a TTY
    rec = read_recording(f"{out}.imrec")
    assert rec.complete
    assert {s.placement for s in rec.meta.sensors} == {"pelvis", "thigh_l", "thigh_r"}
    assert len(rec.packets) > 100


def test_live_needs_sensors_or_simulate(tmp_path: Path) -> None:
    r = _imuhip("live", "--out", str(tmp_path / "x"))
    assert r.returncode == 1
    assert "--sensor" in r.stderr
    r = _imuhip("live", "--sensor", "hip=AA", "--out", str(tmp_path / "x"))
    assert r.returncode == 2 and "unknown placement" in r.stderr


@pytest.mark.slow
def test_kill_9_mid_session_leaves_a_readable_recording(tmp_path: Path) -> None:
    out = tmp_path / "crash.imrec"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "imuhip",
            "live",
            "--simulate",
            "--duration",
            "600",
            "--speed",
            "5",
            "--no-view",
            "--no-analysis",
            "--out",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if out.exists() and out.stat().st_size > 60_000:
                break
            time.sleep(0.2)
        else:
            pytest.fail("the live session never wrote 60 kB")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    rec = read_recording(out)
    assert not rec.complete  # no stop event: the writer never closed
    assert len(rec.packets) > 100
    assert {e.kind for e in rec.events} >= {"connect", "sensor_info", "time_sync"}


@pytest.mark.slow
def test_live_simulate_shows_strides_and_writes_the_analyze_report(tmp_path: Path) -> None:
    out = tmp_path / "walk"
    report = tmp_path / "rep"
    r = _imuhip(
        "live", "--simulate", "--duration", "40", "--speed", "20", "--no-view",
        "--out", str(out), "--report", str(report),
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    # mid-session: time remaining, valid strides per side, and "enough data" once both sides
    # have 10 valid strides (the walk after the ~10 s calibration gives ~12 per side by 27 s)
    assert "remaining=" in r.stdout
    assert "strides_left=" in r.stdout and "enough_data=no" in r.stdout
    assert "enough_data=yes" in r.stdout
    assert "strides counted live (after the calibration period): left " in r.stdout
    # the end-of-session report is `imuhip analyze`'s: the same three files
    for name in ("report.json", "strides.csv", "report.html"):
        assert (report / name).is_file(), name
    assert (report / "strides.csv").read_text().startswith("side,stride,")
    ref = tmp_path / "ref"
    a = _imuhip("analyze", f"{out}.imrec", "--out", str(ref), "--quiet")
    assert a.returncode == 0, a.stderr
    assert (ref / "strides.csv").read_text() == (report / "strides.csv").read_text()
