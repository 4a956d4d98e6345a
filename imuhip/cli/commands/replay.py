"""``imuhip replay REC``: a recording through the live decode path, unpaced or paced.

The packets go through :func:`imuhip.sources.replay.replay_packets` into one
:class:`imuhip.ingest.decode.StreamDecoder` per sensor in chunks, exactly as a live session would
feed
them; ``--verify`` also decodes the recording in one batch and checks that the streamed result is
identical (arrays and statistics).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from imuhip.cli.commands._common import load_recording, positive_float, sensor_summary
from imuhip.errors import ImuhipError, OptionError
from imuhip.ingest.decode import StreamDecoder, decode_session, empty_samples, stream_decoder_for
from imuhip.ingest.recording import warning_lines
from imuhip.sources.replay import replay_packets
from imuhip.types import ImuSamples, RawPacket

NAME = "replay"
HELP = "replay a recording through the decoder (unpaced, or --realtime at --speed X)"

_CHUNK_S = 0.1  # push to the decoders every 100 ms of recorded time (live: per notification batch)
_PROGRESS_S = 1.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``REC [--realtime] [--speed X] [--verify] [--json]``."""
    parser.add_argument("recording", metavar="REC", help="recording file (.imrec)")
    parser.add_argument(
        "--realtime", action="store_true", help="pace packets at their recorded receive times"
    )
    parser.add_argument(
        "--speed",
        type=positive_float,
        default=1.0,
        metavar="X",
        help="speed factor for --realtime (2 = twice as fast; default 1)",
    )
    parser.add_argument(
        "--verify",
        action="store_true",
        help="also decode in one batch and check the streamed result is identical",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")


def _concat(parts: list[ImuSamples], final: ImuSamples) -> dict[str, Any]:
    """Concatenate streamed chunks into arrays (for the batch comparison)."""
    keep = [p for p in parts if len(p)]
    out: dict[str, Any] = {}
    for name in ("sample_idx", "t_dev_s", "host_rx_ns", "acc_m_s2", "gyr_rad_s", "saturated"):
        arrs = [getattr(p, name) for p in keep]
        out[name] = np.concatenate(arrs) if arrs else getattr(final, name)[:0]
    if final.mag_ut is not None:
        arrs = [p.mag_ut for p in keep if p.mag_ut is not None]
        out["mag_ut"] = np.concatenate(arrs) if arrs else final.mag_ut[:0]
    return out


def _identical(streamed: dict[str, Any], batch: ImuSamples) -> list[str]:
    bad = []
    for name, arr in streamed.items():
        ref = getattr(batch, name)
        if ref is None or not np.array_equal(arr, ref):
            bad.append(name)
    return bad


def run(args: argparse.Namespace) -> int:
    """Replay, print progress on stderr and per-sensor counts on stdout."""
    rec = load_recording(args.recording)
    meta = rec.meta
    if not args.realtime and args.speed != 1.0:
        raise OptionError("--speed only applies with --realtime")
    decoders = {s.placement: stream_decoder_for(s) for s in meta.sensors}
    parts: dict[str, list[ImuSamples]] = {k: [] for k in decoders}
    pending: dict[str, list[RawPacket]] = {k: [] for k in decoders}
    unknown = 0
    n_total = len(rec.packets)
    ns0 = rec.packets[0].host_rx_ns if rec.packets else 0
    span_s = (rec.packets[-1].host_rx_ns - ns0) * 1e-9 if rec.packets else 0.0
    chunk_ns = int(_CHUNK_S * 1e9)
    next_push = ns0 + chunk_ns
    tty = sys.stderr.isatty()
    lead, tail = ("\r", "") if tty else ("", "\n")
    t_start = time.monotonic()
    next_progress = t_start + _PROGRESS_S
    progress_shown = False

    def push_all() -> None:
        for k, lst in pending.items():
            if lst:
                parts[k].append(decoders[k].push(lst))
                pending[k] = []

    for i, pkt in enumerate(replay_packets(rec, realtime=args.realtime, speed=args.speed)):
        lst = pending.get(pkt.sensor)
        if lst is None:
            unknown += 1
            continue
        lst.append(pkt)
        if pkt.host_rx_ns >= next_push:
            push_all()
            next_push = pkt.host_rx_ns + chunk_ns
            now = time.monotonic()
            if now >= next_progress:
                t_rec = (pkt.host_rx_ns - ns0) * 1e-9
                sys.stderr.write(
                    f"{lead}replay: {t_rec:.1f} / {span_s:.1f} s recorded, "
                    f"{i + 1} / {n_total} packets ({100 * (i + 1) / max(n_total, 1):.0f}%){tail}"
                )
                sys.stderr.flush()
                progress_shown = True
                next_progress = now + _PROGRESS_S
    push_all()
    if progress_shown and tty:
        sys.stderr.write("\n")
    wall_s = time.monotonic() - t_start

    sensors = []
    streamed: dict[str, ImuSamples] = {}
    mismatches: list[str] = []
    batch = decode_session(rec.packets, meta) if args.verify else None
    for s in meta.sensors:
        dec = decoders[s.placement]
        final_stats = dec.stats
        merged = _concat(parts[s.placement], _empty_like(dec))
        samples = ImuSamples(
            placement=s.placement,
            rate_hz=s.rate_hz,
            mag_ut=merged.get("mag_ut"),
            stats=final_stats,
            **{k: v for k, v in merged.items() if k != "mag_ut"},
        )
        streamed[s.placement] = samples
        sensors.append(sensor_summary(s, samples))
        if batch is not None:
            ref = batch[s.placement]
            bad = _identical(merged, ref)
            if final_stats != ref.stats:
                bad.append("stats")
            mismatches.extend(f"{s.placement}.{b}" for b in bad)
    aligned = _align(streamed, sensors)
    out: dict[str, Any] = {
        "file": str(args.recording),
        "align": aligned,
        "realtime": bool(args.realtime),
        "speed": args.speed,
        "packets": n_total,
        "recorded_s": round(span_s, 6),
        "wall_s": round(wall_s, 3),
        "unknown_sensor_packets": unknown,
        "warnings": list(rec.warnings),
        "skipped_bytes": rec.size_bytes - rec.valid_bytes,
        "sensors": sensors,
    }
    if args.verify:
        out["verify"] = mismatches if mismatches else "identical"
    if args.json:
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        sys.stdout.write(_render(out))
    if mismatches:
        sys.stderr.write(f"imuhip replay: streamed decode differs from batch: {mismatches}\n")
        return 3
    return 0


def _align(samples: dict[str, ImuSamples], sensors: list[dict[str, Any]]) -> dict[str, Any]:
    """Put the streamed samples on the session grid (:mod:`imuhip.ingest.align`); add per-sensor
    ``grid_valid_pct`` and clock numbers to ``sensors``. Returns the grid summary or the reason
    it could not be built."""
    try:
        from imuhip.ingest.align import align_session
    except ImportError:
        return {"status": "unavailable"}
    try:
        session = align_session(samples)
    except ImuhipError as err:
        return {"status": f"failed: {err}"}
    for row in sensors:
        a = session.sensors[row["placement"]]
        row["grid_valid_pct"] = round(100.0 * float(np.mean(a.valid)), 3)
        row["clock_drift_ppm"] = round(a.clock.drift_ppm, 3)
        row["clock_jitter_ms"] = round(a.clock.residual_jitter_s * 1e3, 3)
    return {
        "status": "ok",
        "rate_hz": session.rate_hz,
        "grid_samples": len(session.t_s),
        "t_start_s": round(float(session.t_s[0]), 6) if len(session.t_s) else None,
        "t_stop_s": round(float(session.t_s[-1]), 6) if len(session.t_s) else None,
    }


def _empty_like(dec: StreamDecoder) -> ImuSamples:
    return empty_samples(dec.meta)


def _render(out: dict[str, Any]) -> str:
    lines = [
        f"replayed {out['packets']} packets ({out['recorded_s']:.1f} s recorded) in "
        f"{out['wall_s']:.2f} s" + (f" (realtime x{out['speed']:g})" if out["realtime"] else ""),
    ]
    head = f"{'sensor':<10}{'packets':>9}{'samples':>9}{'lost pkts':>11}{'lost %':>8}"
    head += f"{'gaps':>6}{'dups':>6}{'errors':>8}"
    lines.append(head)
    for s in out["sensors"]:
        lines.append(
            f"{s['placement']:<10}{s['packets_received']:>9}{s['samples']:>9}"
            f"{s['packets_lost']:>11}{s['packets_lost_pct']:>8.2f}{s['gaps']:>6}"
            f"{s['duplicates']:>6}{s['protocol_errors_total']:>8}"
        )
    al = out["align"]
    if al["status"] == "ok":
        lines.append(
            f"session grid: {al['grid_samples']} samples at {al['rate_hz']:g} Hz "
            f"({al['t_start_s']:.3f} .. {al['t_stop_s']:.3f} s); valid: "
            + ", ".join(f"{s['placement']} {s['grid_valid_pct']:.1f}%" for s in out["sensors"])
        )
    else:
        lines.append(f"session grid: {al['status']}")
    if out["unknown_sensor_packets"]:
        lines.append(f"packets of unknown sensors ignored: {out['unknown_sensor_packets']}")
    if "verify" in out:
        v = out["verify"]
        lines.append(
            "verify: streamed decode identical to batch decode"
            if v == "identical"
            else f"verify: MISMATCH in {', '.join(v)}"
        )
    for w in warning_lines(out["warnings"], skipped_bytes=out.get("skipped_bytes")):
        lines.append(f"warning: {w}")
    return "\n".join(lines) + "\n"
