"""Per-sensor threads of long sessions (decode, align, units check, events, compensation): the
same results as one thread, in the same order, with the same first error."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

import imuhip.ingest.decode.session as decode_session_mod
from imuhip.ingest import parallel
from imuhip.ingest.parallel import map_sensors, sensor_threads
from imuhip.pipeline import analyze_recording

REC = Path(__file__).resolve().parents[3] / "recordings" / "with_lumbar.imrec"


def test_threads_only_for_long_sessions_and_several_sensors(monkeypatch) -> None:
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    assert sensor_threads(4, 60_000, 60_000) == 2
    assert sensor_threads(4, 59_999, 60_000) == 1
    assert sensor_threads(1, 10**6, 60_000) == 1
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: set(range(8)))
    assert sensor_threads(3, 10**6, 60_000) == 3


def test_map_sensors_keeps_order_and_the_first_error(monkeypatch) -> None:
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    before = threading.active_count()  # other tests of this process may have left threads
    names: set[str] = set()

    def f(x: int) -> int:
        names.add(threading.current_thread().name)
        return x * x

    assert map_sensors(f, list(range(6)), 10, 1) == [0, 1, 4, 9, 16, 25]
    assert any(n != threading.main_thread().name for n in names)  # ran in worker threads

    def g(x: int) -> int:
        if x in (2, 4):
            raise ValueError(f"bad {x}")
        return x

    with pytest.raises(ValueError, match="bad 2"):
        map_sensors(g, list(range(6)), 10, 1)
    assert threading.active_count() == before  # none left behind (fusion forks only then)


def test_analysis_in_threads_equals_the_serial_one(monkeypatch) -> None:
    """The shipped 50-s recording with every per-sensor loop forced into threads: the same
    angles, events and metrics, bit for bit."""
    serial = analyze_recording(REC)
    monkeypatch.setattr(parallel.os, "sched_getaffinity", lambda _pid: {0, 1}, raising=False)
    # align, units, joint angles, events, compensation
    monkeypatch.setattr(parallel, "THREAD_MIN_ROWS", 1)
    monkeypatch.setattr(decode_session_mod, "_THREAD_MIN_PACKETS", 1)
    used: list[int] = []
    real = parallel.sensor_threads

    def spy(n: int, rows: int, min_rows: int) -> int:
        used.append(real(n, rows, min_rows))
        return used[-1]

    monkeypatch.setattr(parallel, "sensor_threads", spy)
    threaded = analyze_recording(REC)
    # decode, align, units check, joint angles, events, compensation: 2 threads
    assert used.count(2) >= 6
    for side in serial.angles.hip_rad:
        np.testing.assert_array_equal(threaded.angles.hip_rad[side], serial.angles.hip_rad[side])
    np.testing.assert_array_equal(threaded.angles.pelvis_rad, serial.angles.pelvis_rad)
    np.testing.assert_array_equal(threaded.angles.lumbar_rad, serial.angles.lumbar_rad)
    np.testing.assert_array_equal(
        threaded.angles.walking_heading_rad, serial.angles.walking_heading_rad
    )
    np.testing.assert_array_equal(threaded.angles.valid, serial.angles.valid)
    assert threaded.strides == serial.strides
    assert [sorted(m) for m in threaded.per_stride] == [sorted(m) for m in serial.per_stride]
    for a, b in zip(threaded.per_stride, serial.per_stride, strict=True):
        np.testing.assert_array_equal([a[k] for k in sorted(a)], [b[k] for k in sorted(b)])
    assert repr(threaded.quality) == repr(serial.quality)  # NaN-safe, order included
    assert repr(threaded.compensation) == repr(serial.compensation)
