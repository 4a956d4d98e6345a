"""``imuhip analyze REC --out DIR``: full analysis of a recording, report files and a summary."""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

NAME = "analyze"
HELP = "analyse a recording: gait events, hip/pelvis/lumbar metrics, report.json/csv/html"

REPORT_FILES = ("report.json", "strides.csv", "report.html")
"""Files ``write_report`` puts into ``--out``: an earlier imuhip report there is replaced (as a
whole); a file of the same name that imuhip did not write is kept unless ``--force``."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``imuhip analyze``."""
    parser.add_argument(
        "recording", type=Path, help="recording (.imrec) or orientation session (.imori.npz)"
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder (created)")
    parser.add_argument(
        "--method",
        default="vqf",
        help="orientation filter: vqf (default), vqf_online, madgwick, mahony, ekf",
    )
    parser.add_argument("--no-mag", action="store_true", help="ignore magnetometers (6D fusion)")
    parser.add_argument(
        "--calibration", type=Path, default=None, help="folder of per-sensor calibration files"
    )
    parser.add_argument(
        "--standing-pelvic-tilt-deg",
        type=float,
        default=None,
        metavar="DEG",
        help="the subject's anterior pelvic tilt (ASIS-PSIS) in the calibration stance; default "
        "the population mean 13 deg (Preece et al. 2008): absolute hip flexion, pelvic tilt and "
        "lumbar flexion assume it unless set",
    )
    parser.add_argument(
        "--relative-heading",
        choices=("walking", "magnetometer"),
        default="walking",
        help="hip rotation heading: anchored by walking (default; mean rotation over walking = "
        "0, immune to magnetometer errors) or the 9D magnetometer headings as fused",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="also overwrite report.json/strides.csv/report.html in --out that imuhip did not "
        "write (an earlier imuhip report there is always replaced)",
    )
    parser.add_argument(
        "--pdf",
        action="store_true",
        help="also write report.pdf (the page printed by headless Chromium, Debian 'chromium')",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def run(args: argparse.Namespace) -> int:
    """Analyse, write the report, print a short summary and the report path."""
    from imuhip.errors import ImuhipError, OptionError
    from imuhip.orientation.fusion._types import canonical_method
    from imuhip.pipeline import AnalysisConfig, analyze_recording
    from imuhip.report.writer import summary_lines, write_report

    rec: Path = args.recording
    if not rec.exists():
        raise FileNotFoundError(2, "no such file", str(rec))
    if rec.is_dir():
        raise IsADirectoryError(21, "is a directory", str(rec))
    try:
        canonical_method(args.method)
    except ValueError as err:
        raise OptionError(f"--method: {err}") from err
    tilt = args.standing_pelvic_tilt_deg
    if tilt is not None and not (math.isfinite(tilt) and abs(tilt) <= 45.0):
        raise OptionError(f"--standing-pelvic-tilt-deg must be within ±45 deg, got {tilt}")
    from imuhip.cli.commands._common import prepare_output_dir

    if args.calibration is not None and not args.calibration.is_dir():
        raise OptionError(f"--calibration {args.calibration} is not a folder")
    prepare_output_dir(args.out)  # before the analysis: a bad --out fails in a second, not after
    existing = [n for n in REPORT_FILES if (args.out / n).exists()]
    foreign = [n for n in existing if not _from_imuhip(args.out / n)]
    if foreign and not getattr(args, "force", False):
        # an earlier imuhip report in --out is replaced (as a whole, report.json last); any
        # other file of those names is not
        raise ImuhipError(
            f"refusing to overwrite existing file(s) in {args.out}: {', '.join(foreign)} "
            "(not an imuhip report; use --force)"
        )
    for n in existing:
        if (args.out / n).is_dir():
            raise ImuhipError(f"{args.out / n} is a directory; cannot write a file there")
    cfg = AnalysisConfig(
        method=args.method,
        use_mag=not args.no_mag,
        calibration_folder=str(args.calibration) if args.calibration else None,
        relative_heading=args.relative_heading,
    )
    if tilt is not None:
        cfg = dataclasses.replace(cfg, standing_pelvic_tilt_deg=float(tilt))

    def progress(label: str) -> None:
        if not args.quiet:
            sys.stderr.write(f"imuhip analyze: {label}...\n")
            sys.stderr.flush()

    from imuhip.numeric import cache_is_cold

    if cache_is_cold():
        progress(
            "first run of this installation: compiling the numeric kernels on every core (once, "
            "~20 s of CPU; `imuhip warmup` does it at install time)"
        )
        from imuhip.cli.kernels import compile_parallel

        compile_parallel()  # what the run would compile one at a time, shared over the cores

    try:
        if rec.name.endswith(".imori.npz"):  # orientation-only session (imuhip import xsens)
            from imuhip.interop.orientation_file import analyze_orientation_file

            res = analyze_orientation_file(rec, cfg, progress=progress)
        else:
            res = analyze_recording(rec, cfg, progress=progress)
    except ValueError as err:
        # stage input checks raise ValueError on unusable data; report it as a user error
        raise ImuhipError(f"{rec}: {err}") from err
    progress("writing report")
    paths = write_report(res, args.out, pdf=getattr(args, "pdf", False))
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    console.print(
        f"[bold]{escape(rec.name)}[/bold]: subject {escape(res.meta.subject)}, "
        f"session {escape(res.meta.session_id)}"
    )
    for line in summary_lines(res):
        loud = line.startswith(("FLAG", "DROPPED", "CALIBRATION", "PLACEMENT"))
        style = "bold yellow" if loud else ""
        console.print(f"  [{style}]{escape(line)}[/{style}]" if style else f"  {escape(line)}")
    console.print(f"report: {escape(str(paths['html']))}")
    if "pdf" in paths:
        console.print(f"pdf: {escape(str(paths['pdf']))}")
    return 0


def _from_imuhip(path: Path) -> bool:
    """Whether ``path`` (one of :data:`REPORT_FILES`) was written by ``imuhip analyze``."""
    import json

    try:
        if path.is_dir():
            return False
        if path.name == "report.json":
            doc = json.loads(path.read_text(encoding="utf-8"))
            return isinstance(doc, dict) and str(doc.get("generated_by", "")).startswith("imuhip")
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(4096)
    except (OSError, ValueError):
        return False
    if path.name == "strides.csv":
        return head.startswith("side,stride,")
    return "imuhip" in head
