"""Sensors fused in forked processes give exactly the orientations of one-after-the-other."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig
from imuhip.orientation.fusion.session import PARALLEL_MIN_ROWS, fusion_workers
from imuhip.sim import SimParams, simulate_session

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def aligned():
    sim = simulate_session(SimParams(duration_s=12.0, rate_hz=100))
    return align_session(decode_session(sim.delivered, sim.meta), AlignConfig())


@pytest.mark.skipif(sys.platform != "linux", reason="forked workers: Linux only")
def test_parallel_fusion_equals_sequential_in_a_fresh_process():
    # a fresh interpreter: this one may hold a thread an earlier test left alive, which keeps
    # the fusion in-process (by design)
    r = subprocess.run(
        [sys.executable, "-m", "tests.unit.orientation._fusion_parallel_check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    for line in (
        "vqf: parallel == sequential",
        "vqf_online: parallel == sequential",
        "madgwick: parallel == sequential",
        "failing sensor dropped",
        "no nested pool",
        "dead worker: fused in-process",
    ):
        assert line in r.stdout


def test_short_sessions_and_threaded_callers_stay_in_one_process(aligned):
    assert len(aligned.t_s) < PARALLEL_MIN_ROWS
    assert fusion_workers(aligned, FuseConfig()) == 1  # too short to gain from processes
    stop = threading.Event()
    t = threading.Thread(target=stop.wait)
    t.start()
    try:  # another thread alive (a live session): no fork, whatever was asked
        assert fusion_workers(aligned, FuseConfig(workers=2)) == 1
    finally:
        stop.set()
        t.join()


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        FuseConfig(workers=0)
