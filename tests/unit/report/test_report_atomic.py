"""A report folder holding report.json holds one run's complete report, whenever it was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _killed_during_writing(out: Path, delay_s: float) -> subprocess.Popen[bytes]:
    rec = REPO / "recordings" / "typical.imrec"
    p = subprocess.Popen(
        [sys.executable, "-m", "imuhip", "analyze", str(rec), "--out", str(out), "--quiet"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # kill when the writing starts: the first temporary file appears (polls, no fixed sleep)
    deadline = time.monotonic() + 300
    while p.poll() is None and time.monotonic() < deadline:
        if any(f.name.endswith(".part") for f in out.glob(".*")) or (out / "report.json").exists():
            time.sleep(delay_s)
            break
        time.sleep(0.001)
    if p.poll() is None:
        os.kill(p.pid, signal.SIGKILL)
    p.wait()
    return p


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.0, 0.002, 0.01])
def test_kill_during_writing_never_leaves_an_incomplete_set_with_report_json(
    tmp_path: Path, delay_s: float
) -> None:
    out = tmp_path / "rep"
    out.mkdir()
    _killed_during_writing(out, delay_s)
    names = {f.name for f in out.iterdir() if not f.name.endswith(".part")}
    if "report.json" in names:
        assert names == {"report.json", "strides.csv", "report.html"}
        doc = json.loads((out / "report.json").read_text(encoding="utf-8"))
        assert doc["generated_by"].startswith("imuhip")


def test_write_report_replaces_the_whole_set(tmp_path: Path) -> None:
    from imuhip.pipeline import analyze_recording
    from imuhip.report.writer import write_report

    res = analyze_recording(REPO / "recordings" / "typical.imrec")
    out = tmp_path / "rep"
    out.mkdir()
    (out / "strides.csv").write_text("stale\n", encoding="utf-8")
    paths = write_report(res, out)
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json", "strides.csv"]
    assert paths["csv"].read_text(encoding="utf-8").startswith("side,stride,")
    umask = os.umask(0)
    os.umask(umask)
    for p in paths.values():  # a plain open()'s permissions, not mkstemp's private 0600
        assert p.stat().st_mode & 0o777 == 0o666 & ~umask
