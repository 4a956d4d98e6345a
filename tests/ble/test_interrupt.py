"""Ctrl-C (SIGINT) at any moment of ``imuhip live`` and ``imuhip rom-test --live`` leaves a
readable recording (issue 14).

Each case starts the command (the console script, as a user does) on virtual sensors and
interrupts it after a different delay: while the interpreter and the command line load, while
connecting, while streaming. Whatever the moment (and however fast the machine), the command
exits without a traceback (status 130, "interrupted", or 0 when the session ended cleanly; -2 if
the signal came before Python's own handler existed), and every recording it left behind reads
back completely with :func:`read_recording` (frames intact, the packets it holds decodable).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from imuhip.ingest.decode import decode_session
from imuhip.ingest.recording import read_recording

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]

# while the interpreter and the CLI load, while connecting, while streaming
DELAYS_S = (0.1, 0.4, 1.5, 5.0)


def _interrupt(cmd: list[str], delay_s: float) -> subprocess.CompletedProcess[str]:
    proc = subprocess.Popen(
        [str(Path(sys.executable).with_name("imuhip")), *cmd],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(delay_s)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    if "Fatal Python error: init_import_site" in err or _before_the_launcher(err):
        # the signal came while the interpreter itself was starting (its site module, before any
        # line of imuhip ran): Python's own report, nothing recorded. On a busy machine the first
        # delays can land there; the moments imuhip can answer for are the others.
        assert not list(Path(cmd[-1]).parent.glob("*.imrec")), err
        pytest.skip("interrupted during the interpreter's own start-up")
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _before_the_launcher(err: str) -> bool:
    """The KeyboardInterrupt traceback of the console script's first import (the bare package and
    the module body of :mod:`imuhip._launch`, which sets up the guard): before any guard exists."""
    if "from imuhip._launch import main" not in err:
        return False
    if not err.rstrip().endswith("KeyboardInterrupt"):
        return False
    ours = [ln.strip() for ln in err.splitlines() if ln.strip().startswith('File "/')]
    ours = [ln.split('"')[1] for ln in ours if "/imuhip/" in ln]
    return all(f.endswith(("imuhip/__init__.py", "imuhip/_launch.py")) for f in ours)


def _readable(path: Path) -> int:
    rec = read_recording(path)
    # every byte of it is intact frames (warnings about the session itself, e.g. a sensor whose
    # data end early when the stop came, are no damage)
    assert rec.valid_bytes == rec.size_bytes, (path, rec.warnings)
    samples = decode_session(rec.packets, rec.meta) if rec.packets else {}
    return sum(len(s) for s in samples.values())


@pytest.mark.parametrize("delay_s", DELAYS_S)
def test_ctrl_c_during_live_leaves_a_readable_recording(tmp_path: Path, delay_s: float) -> None:
    out = tmp_path / "s.imrec"
    r = _interrupt(
        ["live", "--simulate", "--faults", "--no-view", "--no-analysis", "--duration", "60",
         "--speed", "5", "--out", str(out)],
        delay_s,
    )  # fmt: skip
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode in (0, 130, -signal.SIGINT), (r.returncode, r.stderr)
    if out.exists():
        _readable(out)
        # a graceful stop: the session was closed with its stop record
        if r.returncode == 0:
            assert read_recording(out).complete


@pytest.mark.parametrize("delay_s", DELAYS_S)
def test_ctrl_c_during_a_live_rom_test_keeps_the_recording(tmp_path: Path, delay_s: float) -> None:
    out = tmp_path / "rom.imrec"
    r = _interrupt(["rom-test", "--live", "--simulate", "--out", str(out)], delay_s)
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode != 0 or out.exists(), (r.returncode, r.stderr)
    raw = tmp_path / "rom.live.imrec"  # the recording of an interrupted test
    for path in (raw, out):
        if path.exists():
            _readable(path)
    if r.returncode != 0 and raw.exists():
        assert "kept in" in r.stderr or "interrupted" in r.stderr, r.stderr
