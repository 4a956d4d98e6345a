"""``imuhip scan``: nearby sensors that speak the imuhip protocol or Movesense."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys

from imuhip.errors import OptionError

NAME = "scan"
HELP = "list nearby imuhip-protocol and Movesense sensors with RSSI and battery"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``imuhip scan``."""
    parser.add_argument("--timeout", type=float, default=3.0, help="scan time in s (default 3)")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="scan virtual sensors (bumble) instead of the Bluetooth adapter",
    )


async def _scan(args: argparse.Namespace) -> list[object]:
    from imuhip.sources.ble import scan

    if not args.simulate:
        return list(await scan(args.timeout))
    from imuhip.sources.bumble_backend import BumbleScanner
    from imuhip.sources.virtual import VirtualFleet

    async with VirtualFleet.create(("pelvis", "thigh_l", "thigh_r", "lumbar"), use_simulator=False):
        return list(await scan(min(args.timeout, 0.5), scanner_backend=BumbleScanner))


def run(args: argparse.Namespace) -> int:
    """Scan and print one line per sensor, strongest first."""
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        raise OptionError(f"--timeout must be a finite number of seconds > 0, got {args.timeout}")
    found = asyncio.run(_scan(args))
    if not found:
        sys.stdout.write("no imuhip or Movesense sensor found\n")
        return 0
    sys.stdout.write(f"{'address':<20} {'name':<20} {'protocol':<10} {'rssi':>6} {'battery':>8}\n")
    for r in found:
        batt = "–" if r.battery_pct is None else f"{r.battery_pct} %"  # type: ignore[attr-defined]
        sys.stdout.write(
            f"{r.address:<20} {(r.name or '?'):<20} {r.protocol:<10} "  # type: ignore[attr-defined]
            f"{r.rssi_dbm:>4} dBm {batt:>8}\n"  # type: ignore[attr-defined]
        )
    return 0
