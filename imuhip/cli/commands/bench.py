"""``imuhip bench``: end-to-end speed and memory on a simulated long session, JSON + table."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "bench"
HELP = "benchmark decode/fusion/analyze throughput, memory, live cost vs vqf and Madgwick"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``imuhip bench``."""
    parser.add_argument("--duration-s", type=float, default=3600.0, help="session length (3600)")
    parser.add_argument("--sensors", type=int, default=4, help="number of sensors (4)")
    parser.add_argument("--rate", type=int, default=200, help="sample rate, Hz (200)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (3)")
    parser.add_argument(
        "--long", action="store_true", help="also analyse a 10-hour session in bounded memory"
    )
    parser.add_argument(
        "--long-duration-s", type=float, default=36000.0, help="length for --long (36000)"
    )
    parser.add_argument(
        "--cache",
        type=Path,
        default=None,
        help="keep generated recordings in this folder between runs (default: temporary)",
    )
    parser.add_argument(
        "--end-to-end",
        action="store_true",
        help="time `imuhip analyze` as a process (start, imports, read, analysis, report), the "
        "pipeline alone and raw offlineVQF per session size, and the first run after install",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=(50.0,),
        metavar="S[,S...]",
        help="--end-to-end session lengths in seconds, e.g. 50,600,3600 (default 50)",
    )
    parser.add_argument(
        "--no-first-run",
        action="store_true",
        help="--end-to-end without the empty-cache first run and `imuhip warmup`",
    )
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _sizes(text: str) -> tuple[float, ...]:
    """argparse type: comma-separated session lengths in seconds, each >= 15."""
    try:
        sizes = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a comma-separated list of seconds: {text!r}"
        ) from None
    bad = [v for v in sizes if not (v >= 15.0 and v < float("inf"))]
    if bad:
        raise argparse.ArgumentTypeError(f"each size must be >= 15 s, got {bad[0]:g}")
    return sizes


def _run_end_to_end(args: argparse.Namespace) -> int:
    from imuhip.cli.bench_command import format_end_to_end, run_end_to_end
    from imuhip.errors import OptionError

    if not 1 <= args.sensors <= 6:
        raise OptionError(f"bench: --sensors must be 1..6, got {args.sensors}")
    if args.repeats < 1:
        raise OptionError(f"bench: --repeats must be >= 1, got {args.repeats}")

    def progress(label: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"imuhip bench: {label}...\n")
            sys.stderr.flush()

    res = run_end_to_end(
        args.sizes,
        sensors=args.sensors,
        rate_hz=args.rate,
        repeats=args.repeats,
        first_run=not args.no_first_run,
        cache_dir=str(args.cache) if args.cache else None,
        progress=progress,
    )
    sys.stdout.write(format_end_to_end(res) + "\n")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


def run(args: argparse.Namespace) -> int:
    """Run the benchmark; print the table (stdout) and write the JSON."""
    from imuhip.cli.bench import BenchConfig, format_bench, run_bench
    from imuhip.errors import ImuhipError, OptionError

    if args.rate not in (50, 100, 200, 400):
        raise OptionError(f"bench: --rate must be 50, 100, 200 or 400, got {args.rate}")
    if args.end_to_end:
        return _run_end_to_end(args)

    try:
        cfg = BenchConfig(
            duration_s=args.duration_s,
            sensors=args.sensors,
            rate_hz=args.rate,
            repeats=args.repeats,
            long=args.long,
            long_duration_s=args.long_duration_s,
            live_s=min(60.0, args.duration_s),
            madgwick_slice_s=min(30.0, args.duration_s),
            tile_s=min(300.0, max(15.0, args.duration_s)),
            cache_dir=str(args.cache) if args.cache else None,
        )
    except ValueError as err:
        raise ImuhipError(f"bench: {err}") from err
    if args.rate not in (50, 100, 200, 400):
        raise OptionError(f"bench: --rate must be 50, 100, 200 or 400, got {args.rate}")

    def progress(label: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"imuhip bench: {label}...\n")
            sys.stderr.flush()

    res = run_bench(cfg, progress)
    sys.stdout.write(format_bench(res) + "\n")
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0
