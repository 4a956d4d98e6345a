"""Live-path cost: imuhip's own CPU per notification, notification-to-hip-angle latency, memory.

1. Capture: a short simulated live session (bleak front end over bumble virtual sensors) whose
   recording gives real notifications with real host receive stamps.
2. imuhip's own CPU per notification (bumble excluded): the captured notifications are replayed
   through exactly what the live path does per notification: the notify callback (stamp +
   bounded-queue put), the recorder (``RecordingWriter.write_packet``), then the consumer
   (``LiveProcessor.push``: decode, clock fit, online vqf, hip angles), timed with
   ``time.process_time``.
3. Latency p50/p99 from notification arrival (wall ``time.monotonic_ns`` stamped in the notify
   callback) to the updated hip angle (wall, after ``LiveProcessor.push``), measured inside a live
   run at real time (``--latency-speed``, default 1: virtual sensors at 1 session s per wall s).
   Faster-than-real-time runs report the host queue's backlog, not the pipeline's latency: at
   ``--speed 20`` the in-process virtual radio, 4 simulators and the host share one event loop
   and (here) a CPU shared with other jobs, so notifications wait hundreds of ms in the queue
   behind batches of up to 1024 packets. That figure is printed too, labelled as such.
4. Memory: a long simulated session (default 600 session seconds) with tracemalloc (imuhip's own
   files, the virtual sensors excluded) sampled over time; prints the growth between the middle
   and the end per session minute.

Run: ``python benchmarks/live_cost.py [--capture-s 30] [--long-s 600] [--speed 20]
[--latency-s 20] [--latency-speed 1]``.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any


async def _session(
    out: Path, duration_s: float, speed: float, *, fusion: bool, on_tick: Any = None
) -> Any:
    from imuhip.live.session import LiveConfig, run_live
    from imuhip.sources.bumble_backend import BumbleClient, BumbleScanner
    from imuhip.sources.virtual import VirtualFleet

    fleet = VirtualFleet.create(
        ("pelvis", "thigh_l", "thigh_r", "lumbar"), speed=speed, duration_s=duration_s
    )
    if on_tick is not None:
        for vs in fleet.sensors.values():
            vs.keep_log = False
    async with fleet:
        return await run_live(
            fleet.addresses,
            out,
            LiveConfig(duration_s=duration_s, time_scale=speed, fusion=fusion, tick_s=0.5),
            client_backend=BumbleClient,
            scanner_backend=BumbleScanner,
            on_tick=on_tick,
        )


def cpu_per_notification(path: Path) -> dict[str, float]:
    """imuhip's own CPU per captured notification (callback + recorder + processing)."""
    from imuhip.ingest.recording import RecordingWriter, read_recording
    from imuhip.live.session import LiveProcessor
    from imuhip.types import RawPacket

    rec = read_recording(path)
    packets = rec.packets
    q: asyncio.Queue[RawPacket] = asyncio.Queue(maxsize=len(packets) + 1)
    with tempfile.TemporaryDirectory() as tmp:
        writer = RecordingWriter(Path(tmp) / "b.imrec", rec.meta)
        proc = LiveProcessor(rec.meta)
        t0 = time.process_time()
        for p in packets:  # the notify callback: stamp, copy, enqueue
            q.put_nowait(RawPacket(p.sensor, time.monotonic_ns(), bytes(bytearray(p.payload))))
        t1 = time.process_time()
        batch: list[RawPacket] = []
        while not q.empty():
            pk = q.get_nowait()
            writer.write_packet(pk)
            if batch and batch[-1].sensor != pk.sensor:
                proc.push(batch[0].sensor, batch)
                batch = []
            batch.append(pk)
        if batch:
            proc.push(batch[0].sensor, batch)
        t2 = time.process_time()
        writer.close()
    n = len(packets)
    return {
        "notifications": n,
        "callback_us": (t1 - t0) / n * 1e6,
        "record_decode_fuse_us": (t2 - t1) / n * 1e6,
        "total_us": (t2 - t0) / n * 1e6,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its numbers."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--capture-s", type=float, default=30.0, help="captured session length")
    ap.add_argument("--long-s", type=float, default=600.0, help="memory check length (0: skip)")
    ap.add_argument("--speed", type=float, default=10.0, help="session s per wall s")
    ap.add_argument(
        "--latency-s", type=float, default=20.0, help="real-time latency run length (0: skip)"
    )
    ap.add_argument(
        "--latency-speed", type=float, default=1.0, help="session s per wall s of the latency run"
    )
    args = ap.parse_args(argv)
    logging.getLogger("bumble").setLevel(logging.CRITICAL)
    out = sys.stdout
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "capture.imrec"
        res = asyncio.run(_session(path, args.capture_s, args.speed, fusion=True))
        out.write(f"capture: {res.packets_recorded} packets, {args.capture_s:.0f} s, 4 sensors\n")
        lat = res.latency_ms or {}
        out.write(
            f"notification -> hip angle, wall, at {args.speed:g}x real time (queue backlog of "
            f"an overloaded in-process simulation): p50 {lat.get('p50', float('nan')):.2f} ms, "
            f"p99 {lat.get('p99', float('nan')):.2f} ms\n"
        )
        if args.latency_s > 0:
            res = asyncio.run(
                _session(Path(tmp) / "rt.imrec", args.latency_s, args.latency_speed, fusion=True)
            )
            lat = res.latency_ms or {}
            out.write(
                f"notification arrival (wall) -> hip angle updated (wall) latency at "
                f"{args.latency_speed:g}x real time: p50 {lat.get('p50', float('nan')):.2f} ms, "
                f"p99 {lat.get('p99', float('nan')):.2f} ms (virtual sensors in-process, "
                f"{args.latency_s:.0f} s)\n"
            )
        cpu = cpu_per_notification(path)
        out.write(
            f"imuhip CPU per notification (no bumble): callback {cpu['callback_us']:.1f} us, "
            f"record+decode+clock+vqf+hip {cpu['record_decode_fuse_us']:.1f} us, "
            f"total {cpu['total_us']:.1f} us over {cpu['notifications']} notifications\n"
        )
        if args.long_s > 0:
            mem: list[tuple[float, int]] = []
            total: list[int] = []  # everything traced (bumble, virtual sensors included)
            own = [
                tracemalloc.Filter(True, "*/imuhip/*"),
                tracemalloc.Filter(False, "*/imuhip/sources/virtual/*"),
            ]
            next_s = [0.0]
            tracemalloc.start()

            def tick(snap: Any) -> None:
                if snap.elapsed_s >= next_s[0]:  # one sample per 10 session s
                    next_s[0] = snap.elapsed_s + 10.0
                    traced = tracemalloc.take_snapshot().filter_traces(own)
                    mem.append((snap.elapsed_s, sum(t.size for t in traced.traces)))
                    total.append(tracemalloc.get_traced_memory()[0])

            t = time.perf_counter()
            asyncio.run(
                _session(
                    Path(tmp) / "long.imrec", args.long_s, args.speed * 3, fusion=True, on_tick=tick
                )
            )
            tracemalloc.stop()
            half = [(s, m) for s, m in mem if s >= args.long_s / 2]
            (s0, m0), (s1, m1) = half[0], mem[-1]
            per_min = (m1 - m0) / max(s1 - s0, 1e-9) * 60.0
            out.write(
                f"imuhip memory over {args.long_s:.0f} session s "
                f"({time.perf_counter() - t:.0f} s wall): traced at {s0:.0f} s "
                f"{m0 / 1e6:.3f} MB, at {s1:.0f} s {m1 / 1e6:.3f} MB, max after half "
                f"{max(m for _, m in half) / 1e6:.3f} MB; growth {per_min / 1e3:+.2f} kB per "
                f"session minute (all traced, bumble and virtual sensors included: "
                f"{total[len(mem) - len(half)] / 1e6:.2f} -> {total[-1] / 1e6:.2f} MB)\n"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
