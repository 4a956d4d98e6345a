"""The measurements of ``imuhip bench``, each run in its own child process.

``python -m imuhip.cli.bench STAGE PATH REPEATS OPTS_JSON`` runs :func:`child_main`, which runs
one function of :data:`CHILDREN` and writes its result as one JSON line on stdout (the stages are
described in :mod:`imuhip.cli.bench`).
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from imuhip.cli.bench_recording import BENCH_PLACEMENTS, make_bench_recording

__all__ = ["CHILDREN", "child_main"]


def _cpu_s() -> float:
    t = os.times()  # children: clock ticks; this process: process_time's finer clock
    return time.process_time() + t.children_user + t.children_system


def _timed(fn: Callable[[], Any], repeats: int, warmup: bool) -> dict[str, Any]:
    """Run ``fn`` (one warm-up if asked, then ``repeats`` times); CPU and wall seconds (CPU of
    this process and of the worker processes it waited for, e.g. parallel fusion)."""
    if warmup:
        fn()
    cpu: list[float] = []
    wall: list[float] = []
    for _ in range(repeats):
        c0, w0 = _cpu_s(), time.perf_counter()
        fn()
        cpu.append(_cpu_s() - c0)
        wall.append(time.perf_counter() - w0)
    return {
        "cpu_s": statistics.median(cpu),
        "wall_s": statistics.median(wall),
        "cpu_s_all": cpu,
        "wall_s_all": wall,
    }


def _aligned(path: str) -> tuple[Any, Any, Any]:
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording

    rec = read_recording(path)
    samples = decode_session(rec.packets, rec.meta)
    return rec, samples, align_session(samples, AlignConfig(), events=rec.events)


def _child_decode(path: str, repeats: int, _: dict[str, Any]) -> dict[str, Any]:
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording

    rec = read_recording(path)
    n = sum(len(s.sample_idx) for s in decode_session(rec.packets, rec.meta).values())
    out = _timed(lambda: decode_session(rec.packets, rec.meta), repeats, warmup=True)
    out["samples"] = n
    out["packets"] = len(rec.packets)
    read = _timed(lambda: read_recording(path), 1, warmup=False)
    out["read_cpu_s"] = read["cpu_s"]
    # the columnar path analyze_recording uses: read_packet_arrays + decode_session_arrays
    from imuhip.ingest.decode import decode_session_arrays
    from imuhip.ingest.recording import read_packet_arrays

    rec.packets.clear()  # memory: one copy of the session at a time
    arr = read_packet_arrays(path)
    cols = _timed(
        lambda: decode_session_arrays(arr.payloads, arr.host_rx_ns, arr.meta), repeats, True
    )
    out["arrays_cpu_s"] = cols["cpu_s"]
    out["arrays_samples_per_s"] = n / cols["cpu_s"] if cols["cpu_s"] else None
    out["read_arrays_cpu_s"] = _timed(lambda: read_packet_arrays(path), 1, warmup=False)["cpu_s"]
    return out


def _child_fusion(path: str, repeats: int, _: dict[str, Any]) -> dict[str, Any]:
    from imuhip.orientation.fusion import FuseConfig, fuse_session

    _, _, aligned = _aligned(path)
    out = _timed(lambda: fuse_session(aligned, FuseConfig()), repeats, warmup=True)
    out["samples"] = len(aligned.t_s) * len(aligned.sensors)
    return out


def _child_vqf_ref(path: str, repeats: int, _: dict[str, Any]) -> dict[str, Any]:
    from vqf import offlineVQF

    _, _, aligned = _aligned(path)
    dt = 1.0 / aligned.rate_hz
    arrays = [
        (
            np.ascontiguousarray(s.gyr_rad_s),
            np.ascontiguousarray(s.acc_m_s2),
            None if s.mag_ut is None else np.ascontiguousarray(s.mag_ut),
        )
        for s in aligned.sensors.values()
    ]

    def run() -> None:
        for gyr, acc, mag in arrays:
            offlineVQF(gyr, acc, mag, dt, None)

    out = _timed(run, repeats, warmup=True)
    out["samples"] = len(aligned.t_s) * len(aligned.sensors)
    return out


def _child_madgwick_ref(path: str, repeats: int, opts: dict[str, Any]) -> dict[str, Any]:
    from ahrs.filters import Madgwick

    _, _, aligned = _aligned(path)
    s = next(iter(aligned.sensors.values()))
    n = min(len(aligned.t_s), int(opts["slice_s"] * aligned.rate_hz))
    gyr = np.ascontiguousarray(s.gyr_rad_s[:n])
    acc = np.ascontiguousarray(s.acc_m_s2[:n])
    mag = None if s.mag_ut is None else np.ascontiguousarray(s.mag_ut[:n]) * 1e-3  # ahrs: mT
    out = _timed(
        lambda: Madgwick(gyr=gyr, acc=acc, mag=mag, frequency=aligned.rate_hz),
        max(1, min(repeats, 2)),
        warmup=False,
    )
    out["samples"] = n
    return out


def _child_analyze(path: str, repeats: int, opts: dict[str, Any]) -> dict[str, Any]:
    import imuhip.pipeline as pipeline_mod
    from imuhip.pipeline import analyze_recording

    # pay the lazy imports of every stage before timing
    for mod in (
        "ingest.align",
        "ingest.decode",
        "orientation.fusion",
        "gait.joints",
        "orientation.segment_calibration",
        "ingest.recording",
    ):
        __import__(f"imuhip.{mod}")
    # One untimed analysis of a short session first: it loads (or, on a fresh checkout,
    # compiles) the numba kernels of imuhip.numeric, a fixed per-process cost that is not
    # throughput. Its CPU seconds are reported as ``first_call_cpu_s`` (what a one-off
    # ``imuhip analyze`` pays on top of the steady-state figure).
    with tempfile.TemporaryDirectory(prefix="imuhip-bench-warm-") as tmp:
        warm = Path(tmp) / "warm.imrec"
        make_bench_recording(warm, float(opts.get("warmup_s", 30.0)), sensors=4, tile_s=30.0)
        c0 = _cpu_s()
        analyze_recording(warm)
        first_call_cpu_s = _cpu_s() - c0
        c0 = _cpu_s()
        analyze_recording(warm)
        warm_cpu_s = _cpu_s() - c0
    stages: list[dict[str, float]] = []
    last: dict[str, Any] = {}

    def run() -> None:
        marks: list[tuple[str, float]] = []
        res = analyze_recording(path, progress=lambda label: marks.append((label, _cpu_s())))
        marks.append(("end", _cpu_s()))
        stages.append({marks[i][0]: marks[i + 1][1] - marks[i][1] for i in range(len(marks) - 1)})
        last["strides"] = len(res.strides)
        last["samples"] = len(res.angles.t_s)

    out = _timed(run, repeats, warmup=False)
    # median CPU seconds per pipeline stage (labels are the pipeline's progress messages)
    keys = list(stages[0])
    out["stages_cpu_s"] = {k: statistics.median(s.get(k, 0.0) for s in stages) for k in keys}
    out["strides"] = last["strides"]
    out["grid_samples"] = last["samples"]
    out["first_call_cpu_s"] = first_call_cpu_s
    out["first_call_extra_cpu_s"] = first_call_cpu_s - warm_cpu_s
    out["samples"] = int(opts["samples"])
    del pipeline_mod
    return out


def _child_analyze_long(path: str, _: int, opts: dict[str, Any]) -> dict[str, Any]:
    from imuhip.report.cohort import analyze_recording_chunked

    c0, w0 = _cpu_s(), time.perf_counter()
    res = analyze_recording_chunked(path, window_s=float(opts.get("window_s", 600.0)))
    return {
        "cpu_s": _cpu_s() - c0,
        "wall_s": time.perf_counter() - w0,
        "strides": len(res.strides),
        "windows": res.windows,
        "samples": int(opts["samples"]),
    }


def _child_write(_: str, repeats: int, opts: dict[str, Any]) -> dict[str, Any]:
    from imuhip.ingest import protocol
    from imuhip.ingest.recording import RecordingWriter
    from imuhip.sim import SimParams, simulate_session
    from imuhip.types import RawPacket

    sensors, rate = int(opts["sensors"]), int(opts["rate_hz"])
    pp = protocol.samples_per_packet(247, rate, True)
    # packets of a real session: 6 placements exist, the writer's cost is per packet
    sim = simulate_session(
        SimParams(duration_s=15.0, rate_hz=rate, sensors=BENCH_PLACEMENTS, loss_prob=0.0)
    )
    pkts = [RawPacket(p.sensor, p.host_rx_ns, p.payload) for p in sim.delivered]
    packets_per_s = sensors * rate / pp
    folder = Path(tempfile.mkdtemp(prefix="imuhip-bench-write-"))

    def run() -> None:
        with RecordingWriter(folder / "w.imrec", sim.meta, overwrite=True) as w:
            for p in pkts:
                w.write_packet(p)

    out = _timed(run, repeats, warmup=True)
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    per_packet = out["cpu_s"] / len(pkts)
    out.update(
        {
            "packets": len(pkts),
            "cpu_per_packet_us": per_packet * 1e6,
            "sensors": sensors,
            "rate_hz": rate,
            "packets_per_s": packets_per_s,
            "core_fraction": per_packet * packets_per_s,
        }
    )
    return out


def _child_live(path: str, _: int, opts: dict[str, Any]) -> dict[str, Any]:
    from imuhip.ingest.recording import RecordingWriter, read_recording
    from imuhip.live.session import LiveProcessor
    from imuhip.types import RawPacket

    rec = read_recording(path)
    t_end = rec.packets[0].host_rx_ns + int(float(opts["live_s"]) * 1e9)
    pkts = [p for p in rec.packets if p.host_rx_ns < t_end]
    folder = Path(tempfile.mkdtemp(prefix="imuhip-bench-live-"))
    proc = LiveProcessor(rec.meta)
    cost_ns = np.empty(len(pkts), np.int64)
    with RecordingWriter(folder / "live.imrec", rec.meta, overwrite=True) as w:
        c0 = time.process_time()
        for i, p in enumerate(pkts):
            t0 = time.perf_counter_ns()
            # the recording's own receive stamps: the live clock model and grid see the
            # session's real pacing although the notifications are replayed back to back;
            # recorded before anything decodes them (the live order)
            pk = RawPacket(p.sensor, p.host_rx_ns, p.payload)
            w.write_packet(pk)
            proc.push(pk.sensor, [pk])
            cost_ns[i] = time.perf_counter_ns() - t0
        cpu = time.process_time() - c0
    for f in folder.iterdir():
        f.unlink()
    folder.rmdir()
    # back to back, a notification's latency to its updated hip angle is its processing
    # time (the processor's own wall-clock latency needs wall-clock receive stamps)
    lat = {
        "p50": float(np.percentile(cost_ns, 50) / 1e6),
        "p99": float(np.percentile(cost_ns, 99) / 1e6),
    }
    return {
        "notifications": len(pkts),
        "cpu_s": cpu,
        "cpu_per_notification_us": cpu / max(1, len(pkts)) * 1e6,
        "cost_p50_us": float(np.percentile(cost_ns, 50) / 1e3),
        "cost_p99_us": float(np.percentile(cost_ns, 99) / 1e3),
        "latency_p50_ms": lat.get("p50"),
        "latency_p99_ms": lat.get("p99"),
        "calibrated": bool(proc.calibrated),
    }


CHILDREN: dict[str, Callable[[str, int, dict[str, Any]], dict[str, Any]]] = {
    "decode": _child_decode,
    "fusion": _child_fusion,
    "vqf_ref": _child_vqf_ref,
    "madgwick_ref": _child_madgwick_ref,
    "analyze": _child_analyze,
    "analyze_long": _child_analyze_long,
    "write": _child_write,
    "live": _child_live,
}


def child_main(argv: list[str]) -> int:
    """``python -m imuhip.cli.bench STAGE PATH REPEATS OPTS_JSON``: one measurement, JSON on
    stdout."""
    import resource

    stage, path, repeats, opts = argv[0], argv[1], int(argv[2]), json.loads(argv[3])
    out = CHILDREN[stage](path, repeats, opts)
    out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    sys.stdout.write(json.dumps(out) + "\n")
    return 0
