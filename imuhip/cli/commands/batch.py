"""``imuhip batch DIR --out cohort.parquet``: a study folder, one row per session and side."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "batch"
HELP = "analyse every recording of a folder into one table (local cores or a Dask cluster)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``imuhip batch``."""
    parser.add_argument("folder", type=Path, help="folder searched recursively for *.imrec")
    parser.add_argument("--out", type=Path, required=True, help="output table (.parquet)")
    parser.add_argument(
        "--jobs", type=int, default=None, help="local worker processes (default: all cores)"
    )
    parser.add_argument(
        "--dask", default=None, metavar="ADDR", help="run on this Dask scheduler (tcp://host:8786)"
    )
    parser.add_argument("--method", default="vqf", help="orientation filter (default vqf)")
    parser.add_argument("--no-mag", action="store_true", help="ignore magnetometers (6D fusion)")
    parser.add_argument(
        "--calibration", type=Path, default=None, help="folder of per-sensor calibration files"
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite --out even when it is not this command's earlier output (no manifest)",
    )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress on stderr (a bar on a terminal, a line per recording otherwise)",
    )


def run(args: argparse.Namespace) -> int:
    """Run the batch; list failures with their reason; exit 1 if any recording failed."""
    from imuhip.errors import ImuhipError, OptionError
    from imuhip.orientation.fusion._types import canonical_method
    from imuhip.pipeline import AnalysisConfig
    from imuhip.report.cohort import run_batch

    if args.jobs is not None and args.jobs < 1:
        raise OptionError(f"--jobs must be >= 1, got {args.jobs}")
    try:
        canonical_method(args.method)
    except ValueError as err:
        raise OptionError(f"--method: {err}") from err
    if not args.folder.is_dir():
        raise ImuhipError(f"{args.folder} is not a folder")
    if not any(args.folder.rglob("*.imrec")):
        raise ImuhipError(f"no recordings (*.imrec) found under {args.folder}")
    if args.calibration is not None and not args.calibration.is_dir():
        raise OptionError(f"--calibration {args.calibration} is not a folder")
    from imuhip.cli.commands._common import prepare_output_file

    prepare_output_file(args.out)
    from imuhip.report.cohort import manifest_path

    # a previous batch output (table + its .done.json) is updated in place and its cache reused;
    # any other existing file is not silently replaced
    if args.out.exists() and not manifest_path(args.out).exists() and not args.force:
        raise ImuhipError(
            f"refusing to overwrite existing file {args.out}: it has no batch manifest "
            f"{manifest_path(args.out).name} (use --force)"
        )
    cfg = AnalysisConfig(
        method=args.method,
        use_mag=not args.no_mag,
        calibration_folder=str(args.calibration) if args.calibration else None,
    )
    try:
        res = run_batch(
            args.folder,
            args.out,
            cfg,
            jobs=args.jobs,
            dask_address=args.dask,
            progress=not args.quiet,
        )
    except OSError as err:
        if args.dask is not None and "connect" in str(err).lower():
            raise ImuhipError(f"--dask {args.dask}: cannot reach the scheduler ({err})") from None
        raise
    out = sys.stdout
    out.write(
        f"{len(res.analysed)} analysed, {len(res.skipped)} already done, "
        f"{len(res.failures)} failed; {len(res.table)} rows in {res.out}\n"
    )
    if res.failures:
        out.write("failures:\n")
        for f, reason in res.failures:
            out.write(f"  {f}: {reason}\n")
    return 1 if res.failures else 0
