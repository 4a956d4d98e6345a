"""Sensors fused in forked processes give exactly the orientations of one-after-the-other."""

from __future__ import annotations

import dataclasses
import sys
import threading

import numpy as np
import pytest

from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig, fuse_session, fuse_session_degrading
from imuhip.orientation.fusion.session import PARALLEL_MIN_ROWS, fusion_workers
from imuhip.pipeline import _REQUIRED
from imuhip.sim import SimParams, simulate_session

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="forked workers: Linux only")


@pytest.fixture(scope="module")
def aligned():
    sim = simulate_session(
        SimParams(duration_s=12.0, rate_hz=100, sensors=("pelvis", "thigh_l", "thigh_r", "shank_r"))
    )
    return align_session(decode_session(sim.delivered, sim.meta), AlignConfig())


@pytest.fixture
def no_other_thread():
    # a thread an earlier test left running (e.g. a BLE stack) would keep fusion in-process
    if threading.active_count() > 1:
        pytest.skip(f"{threading.active_count() - 1} other thread(s) alive in this process")


@pytest.mark.parametrize("method", ["vqf", "vqf_online", "madgwick"])
def test_parallel_fusion_equals_sequential(aligned, method, no_other_thread):
    assert fusion_workers(aligned, FuseConfig(workers=2)) == 2
    one = fuse_session(aligned, FuseConfig(method=method, workers=1))
    two = fuse_session(aligned, FuseConfig(method=method, workers=2))
    assert list(two.q_world_sensor) == list(one.q_world_sensor)
    for p in one.q_world_sensor:
        np.testing.assert_array_equal(two.q_world_sensor[p], one.q_world_sensor[p])
        assert set(two.diagnostics[p]) == set(one.diagnostics[p])
        for k, v in one.diagnostics[p].items():
            np.testing.assert_array_equal(two.diagnostics[p][k], v)


def test_a_failing_sensor_in_a_worker_is_dropped_with_its_reason(aligned, no_other_thread):
    assert fusion_workers(aligned, FuseConfig(workers=2)) == 2
    s = aligned.sensors["shank_r"]
    dead = dataclasses.replace(s, valid=np.zeros_like(s.valid))
    broken = dataclasses.replace(aligned, sensors={**aligned.sensors, "shank_r": dead})
    ori, dropped = fuse_session_degrading(broken, FuseConfig(workers=2), required=_REQUIRED)
    assert set(ori.q_world_sensor) == {"pelvis", "thigh_l", "thigh_r"}
    assert "invalid" in dropped["shank_r"]["reason"]


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


def _workers_in_a_child(aligned):
    return fusion_workers(aligned, FuseConfig(workers=2))


def test_a_worker_process_does_not_start_workers_of_its_own(aligned, no_other_thread):
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:  # e.g. a cohort's pool
        assert pool.submit(_workers_in_a_child, aligned).result() == 1


def test_workers_must_be_positive():
    with pytest.raises(ValueError, match="workers"):
        FuseConfig(workers=0)
