"""``imuhip bench-fusion``: BROAD accuracy and speed of every fusion method."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imuhip.orientation.fusion import METHODS
from imuhip.orientation.fusion.broad import (
    BENCH_METHODS,
    default_broad_folder,
    format_benchmark,
    rows_to_json,
    run_broad_benchmark,
)

NAME = "bench-fusion"
HELP = "BROAD benchmark: orientation RMSE (total/heading/inclination) and speed per fusion method"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``bench-fusion``."""
    parser.add_argument(
        "--data",
        type=Path,
        default=default_broad_folder(),
        help="folder with BROAD *.hdf5 trials (default: %(default)s)",
    )
    parser.add_argument(
        "--methods",
        nargs="+",
        default=list(BENCH_METHODS),
        choices=list(METHODS),
        metavar="METHOD",
        help="methods to run (default: %(default)s)",
    )
    parser.add_argument(
        "--dims", nargs="+", type=int, default=[9, 6], choices=[6, 9], help="6D and/or 9D"
    )
    parser.add_argument(
        "--trials", nargs="+", default=None, metavar="TEXT", help="only trials whose name contains"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines (per trial and filter) on stderr"
    )


def run(args: argparse.Namespace) -> int:
    """Run the benchmark (progress per trial and filter on stderr) and print the table."""

    def progress(line: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"imuhip bench-fusion: {line}\n")
            sys.stderr.flush()

    rows = run_broad_benchmark(args.data, args.methods, args.dims, args.trials, progress)
    sys.stdout.write(format_benchmark(rows) + "\n")
    if args.json is not None:
        args.json.write_text(rows_to_json(rows) + "\n", encoding="utf-8")
    return 0
