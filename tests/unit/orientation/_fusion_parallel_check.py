"""Run by ``test_fusion_parallel.py`` in a fresh interpreter (no thread another test left alive,
which would keep the fusion in-process): parallel fusion against one-after-the-other."""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import sys
import threading
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from imuhip.ingest.align import AlignConfig, align_session
from imuhip.ingest.decode import decode_session
from imuhip.orientation.fusion import FuseConfig, fuse_session, fuse_session_degrading
from imuhip.orientation.fusion.session import fusion_workers
from imuhip.pipeline import _REQUIRED
from imuhip.sim import SimParams, simulate_session


def _workers_in_a_child(aligned):  # type: ignore[no-untyped-def]
    return fusion_workers(aligned, FuseConfig(workers=2))


def _die(placement: str) -> None:
    os._exit(9)  # a worker killed (e.g. by the kernel's out-of-memory killer)


def main() -> None:
    assert threading.active_count() == 1
    sim = simulate_session(
        SimParams(duration_s=12.0, rate_hz=100, sensors=("pelvis", "thigh_l", "thigh_r", "shank_r"))
    )
    aligned = align_session(decode_session(sim.delivered, sim.meta), AlignConfig())
    assert fusion_workers(aligned, FuseConfig(workers=2)) == 2
    for method in ("vqf", "vqf_online", "madgwick"):
        one = fuse_session(aligned, FuseConfig(method=method, workers=1))
        two = fuse_session(aligned, FuseConfig(method=method, workers=2))
        assert list(two.q_world_sensor) == list(one.q_world_sensor), method
        for p in one.q_world_sensor:
            np.testing.assert_array_equal(two.q_world_sensor[p], one.q_world_sensor[p])
            assert set(two.diagnostics[p]) == set(one.diagnostics[p]), (method, p)
            for k, v in one.diagnostics[p].items():
                np.testing.assert_array_equal(two.diagnostics[p][k], v)
        sys.stdout.write(f"{method}: parallel == sequential" + "\n")
    # a sensor failing inside a worker: dropped with its reason, as in-process
    s = aligned.sensors["shank_r"]
    dead = dataclasses.replace(s, valid=np.zeros_like(s.valid))
    broken = dataclasses.replace(aligned, sensors={**aligned.sensors, "shank_r": dead})
    ori, dropped = fuse_session_degrading(broken, FuseConfig(workers=2), required=_REQUIRED)
    assert set(ori.q_world_sensor) == {"pelvis", "thigh_l", "thigh_r"}
    assert "invalid" in dropped["shank_r"]["reason"]
    sys.stdout.write("failing sensor dropped" + "\n")
    # a worker process (e.g. a cohort's pool) does not start workers of its own
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        assert pool.submit(_workers_in_a_child, aligned).result() == 1
    sys.stdout.write("no nested pool" + "\n")
    # a worker that dies (killed, out of memory): the sensors are fused in-process instead
    from imuhip.orientation.fusion import session

    ref = fuse_session(aligned, FuseConfig(workers=1))
    real = session._fuse_into
    session._fuse_into = _die  # type: ignore[assignment]
    try:
        got = fuse_session(aligned, FuseConfig(workers=2))
    finally:
        session._fuse_into = real
    for p in ref.q_world_sensor:
        np.testing.assert_array_equal(got.q_world_sensor[p], ref.q_world_sensor[p])
    sys.stdout.write("dead worker: fused in-process" + "\n")


if __name__ == "__main__":
    main()
