"""``imuhip compare REPORT... --out DIR``: one subject's sessions side by side over time."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

NAME = "compare"
HELP = "follow-up: one subject's sessions side by side over time"

EPILOG = """Each REPORT is a report folder (imuhip analyze --out, imuhip rom-test --report-dir) or
its report.json / rom_report.json. Sessions are ordered by recording date; each measure is shown
with its 95% CI and its change from the first session. Writes compare.html and compare.json
into --out (replaced as a set, the JSON last) and prints the table. Reports of different
subject pseudonyms are refused (exit 2) unless --force."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``imuhip compare``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument(
        "reports", type=Path, nargs="+", metavar="REPORT", help="report folder or JSON"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument(
        "--force", action="store_true", help="compare reports of different subjects anyway"
    )


def run(args: argparse.Namespace) -> int:
    """Load the reports, check they are one subject's, write and print the comparison."""
    from imuhip.cli.commands._common import prepare_output_dir
    from imuhip.errors import OptionError
    from imuhip.report.compare import (
        SubjectMismatchError,
        compare_dict,
        compare_lines,
        load_reports,
        write_compare,
    )

    reports = load_reports(args.reports)
    if len(reports) < 2:
        raise OptionError(
            f"compare needs at least two reports, got {len(reports)} ({reports[0][0]})"
        )
    try:
        doc = compare_dict(reports, force=args.force)
    except SubjectMismatchError as err:
        raise OptionError(str(err)) from None
    prepare_output_dir(args.out)
    for name in ("compare.html", "compare.json"):
        if (args.out / name).is_dir():
            raise OptionError(f"--out: {args.out / name} is a directory")
    paths = write_compare(doc, args.out)
    out = sys.stdout
    for line in compare_lines(doc):
        out.write(line + "\n")
    out.write(f"comparison: {paths['html']}\n")
    return 0
