"""``imuhip live``: stream sensors over BLE into a recording, with a live view.

``--simulate`` runs the whole live path (bleak front end, bumble transport, virtual sensors driven
by the walking simulator) without hardware; ``--faults`` injects disconnects, loss, bursts and
garbage notifications.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
from pathlib import Path
from typing import Any

from imuhip.conventions import Placement
from imuhip.errors import ImuhipError, OptionError
from imuhip.ingest.protocol import RATES_HZ

NAME = "live"
HELP = "stream sensors over BLE into a recording (--simulate: virtual sensors, no hardware)"

_PLACEMENTS = [p.value for p in Placement]


def _sensor_arg(text: str) -> tuple[str, str]:
    name, sep, addr = text.partition("=")
    if not sep or not addr:
        raise argparse.ArgumentTypeError(f"--sensor wants PLACEMENT=ADDRESS, got {text!r}")
    if name not in _PLACEMENTS:
        raise argparse.ArgumentTypeError(
            f"unknown placement {name!r} (known: {', '.join(_PLACEMENTS)})"
        )
    return name, addr


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``imuhip live``."""
    parser.add_argument(
        "--sensor",
        action="append",
        type=_sensor_arg,
        default=[],
        metavar="PLACEMENT=ADDRESS",
        help="a sensor to connect (repeat: pelvis, thigh_l, thigh_r, optional lumbar)",
    )
    parser.add_argument("--out", required=True, help="recording to write (SESSION[.imrec])")
    parser.add_argument("--subject", default="anon", help="subject pseudonym (never a name)")
    parser.add_argument("--duration", type=float, default=None, help="session length in s")
    parser.add_argument(
        "--rate",
        type=int,
        default=200,
        choices=RATES_HZ,
        help="sampling rate in Hz (default 200)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing recording")
    parser.add_argument("--no-view", action="store_true", help="plain status lines, no live view")
    parser.add_argument("--simulate", action="store_true", help="virtual sensors (no hardware)")
    parser.add_argument(
        "--faults", action="store_true", help="with --simulate: inject disconnects, loss, bursts"
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="with --simulate: session seconds per wall second (default 1 = real time)",
    )
    parser.add_argument(
        "--no-analysis", action="store_true", help="do not analyse the recording at the end"
    )
    parser.add_argument(
        "--report",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for the end-of-session report (report.html/json, strides.csv, as "
        "`imuhip analyze` writes them; default: next to the recording, NAME_report/)",
    )


def _out_path(text: str) -> Path:
    p = Path(text)
    return p if p.suffix == ".imrec" else p.with_name(p.name + ".imrec")


async def _session(args: argparse.Namespace, out: Path, noted: threading.Event) -> Any:
    from imuhip.interrupts import interrupt_event

    stop = interrupt_event(noted)  # Ctrl-C / SIGTERM, or one noted before the loop: stop
    from imuhip.live.session import LiveConfig, run_live
    from imuhip.live.view import LiveView
    from imuhip.sources.ble import StreamConfig

    stream_cfg = StreamConfig(rate_hz=args.rate)
    view_on = not args.no_view and sys.stdout.isatty()
    cfg = LiveConfig(
        duration_s=args.duration,
        time_scale=args.speed if args.simulate else 1.0,
        subject=args.subject,
    )
    with LiveView(enabled=view_on, stream=sys.stdout) as view:
        if not args.simulate:
            return await run_live(
                dict(args.sensor),
                out,
                cfg,
                stream_cfg,
                stop=stop,
                on_tick=view.update,
                overwrite=args.overwrite,
            )
        import logging

        from imuhip.sources.bumble_backend import BumbleClient, BumbleScanner
        from imuhip.sources.virtual import VirtualFleet, default_faults

        logging.getLogger("bumble").setLevel(logging.CRITICAL)
        placements = [p for p, _a in args.sensor] or ["pelvis", "thigh_l", "thigh_r"]
        horizon = args.duration or 600.0
        fleet = VirtualFleet.create(
            placements,
            rate_hz=args.rate,
            duration_s=horizon,
            faults=default_faults(placements, horizon) if args.faults else None,
            speed=args.speed,
        )
        async with fleet:
            return await run_live(
                fleet.addresses,
                out,
                cfg,
                stream_cfg,
                client_backend=BumbleClient,
                scanner_backend=BumbleScanner,
                stop=stop,
                on_tick=view.update,
                overwrite=args.overwrite,
                # stamps, session length and clock drift in virtual time, whatever the CPU load
                **fleet.host_hooks(),
            )


def _gap_context(res: Any, err: Exception) -> str:
    """Why a calibration window may be missing: gaps too long to bridge at the session start."""
    if "still period" not in str(err) and "movement" not in str(err):
        return ""
    try:
        from imuhip.orientation.segment_calibration import SegmentCalConfig

        limit_s = SegmentCalConfig().max_bridged_gap_s
    except ImportError:
        return ""
    rates = {m.placement: m.rate_hz for m in (res.meta.sensors if res.meta else ())}
    found = []
    for p, m in res.metrics.items():
        rate = rates.get(p)
        if not rate:
            continue
        for start, n in m["gaps"]:
            if n / rate > limit_s and start / rate < 15.0:
                found.append(f"{p} {start / rate:.1f}-{(start + n) / rate:.1f} s")
    if not found:
        return ""
    return (
        f"; gaps longer than the {limit_s:g} s a calibration window may bridge, in the first "
        f"15 s: {', '.join(found)}"
    )


def run(args: argparse.Namespace) -> int:
    """Run the session, then print the summary (and the analysis if possible)."""
    from imuhip.live.view import summary_text

    if not args.simulate and not args.sensor:
        raise ImuhipError("name at least one --sensor PLACEMENT=ADDRESS (or use --simulate)")
    if args.faults and not args.simulate:
        raise OptionError("--faults only applies to --simulate")
    if args.speed <= 0:
        raise OptionError(f"--speed must be > 0, got {args.speed}")
    if args.duration is not None and args.duration <= 0:
        raise OptionError(f"--duration must be > 0, got {args.duration}")
    names = [p for p, _a in args.sensor]
    if len(set(names)) != len(names):
        raise ImuhipError(f"a placement is named twice in --sensor: {names}")
    out = _out_path(args.out)
    report_dir = args.report or out.with_name(out.stem + "_report")
    if not args.no_analysis:
        from imuhip.cli.commands._common import prepare_output_dir

        prepare_output_dir(
            report_dir, "--report"
        )  # a bad folder fails before the session, not after it
    from imuhip.interrupts import noted_interrupts

    # Ctrl-C from here on ends the session cleanly (before it started: at once), never inside
    # an import or the loop's set-up
    with noted_interrupts(raise_at_end=False) as noted:
        res = asyncio.run(_session(args, out, noted))
    sys.stdout.write(summary_text(res) + "\n")
    if not args.no_analysis:
        sys.stdout.write("analysis:\n")
        sys.stdout.flush()
        try:
            _write_report(out, report_dir)
        except (ImportError, ImuhipError, ValueError) as err:
            sys.stdout.write(f"analysis: skipped ({err}{_gap_context(res, err)})\n")
    return 1 if res.failed and len(res.failed) == len(res.links) else 0


def _write_report(rec: Path, out_dir: Path) -> None:
    """The full report of ``rec`` into ``out_dir``: exactly ``imuhip analyze REC --out DIR``."""
    from imuhip.cli.commands import analyze

    ns = argparse.Namespace(
        recording=rec,
        out=out_dir,
        method="vqf",
        no_mag=False,
        calibration=None,
        standing_pelvic_tilt_deg=None,
        relative_heading="walking",
        force=False,
        quiet=True,
    )
    analyze.run(ns)
