"""``imuhip rom-test REC``: seated 90/90 hip IR/ER range of motion from the thigh sensors."""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

NAME = "rom-test"
HELP = "hip internal/external rotation ROM test (seated 90/90): from a recording or --live guided"

GUIDE = """Seated 90/90 hip rotation test, per side:
  1. sit, hips and knees at 90°, thigh sensors on the lateral mid-thigh; hold still 2 s (neutral)
  2. turn the foot outward as far as it goes (internal rotation), back to neutral
  3. turn the foot inward as far as it goes (external rotation), back to neutral
  4. repeat steps 2-3 three times, then do the other side

Writes rom_report.html and rom_report.json (--report-dir; replaced as a set, the JSON last).
Exit status: 0 done; 3 measured but "repeat the test" (a side or a repetition is missing, or a
repetition is an outlier); 1 error; 2 bad option."""

REPEAT_EXIT = 3
"""Exit status when the test must be repeated (the report is still written)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``imuhip rom-test``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = GUIDE
    parser.add_argument("recording", type=Path, nargs="?", help="recording file (.imrec)")
    parser.add_argument("--live", action="store_true", help="guided test with live sensors")
    parser.add_argument("--json", type=Path, default=None, help="also write the result as JSON")
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder for rom_report.html/.json (created; default: the recording's folder)",
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        default=None,
        metavar="DIR",
        help="folder of per-sensor calibration files (imuhip calibrate-sensor) to apply",
    )
    parser.add_argument(
        "--sensor",
        action="append",
        default=[],
        metavar="PLACEMENT=ADDRESS",
        help="--live: thigh_l, thigh_r (required) and optionally pelvis, shank_l, shank_r",
    )
    parser.add_argument("--out", type=Path, default=None, help="--live: recording to write")
    parser.add_argument(
        "--simulate",
        action="store_true",
        help="--live with virtual sensors driven by the simulated ROM test (no hardware)",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=None,
        metavar="X",
        help="--simulate: session seconds per wall second (default 1 with a terminal, else 20)",
    )
    parser.add_argument(
        "--rom-ir-deg", default="38,38", metavar="L,R", help="--simulate: simulated maximal IR"
    )
    parser.add_argument(
        "--rom-er-deg", default="40,40", metavar="L,R", help="--simulate: simulated maximal ER"
    )
    parser.add_argument("--seed", type=int, default=0, help="--simulate: simulator seed")
    parser.add_argument("--overwrite", action="store_true", help="--live: replace --out")


@dataclass
class RomAnalysis:
    """What :func:`analyze_rom_session` found: results per side, flags, not-measured reasons,
    the recording's session metadata and the sensor-calibration provenance (``None`` without a
    calibration folder)."""

    results: dict[str, Any]
    flags: list[Any]
    errors: list[str]
    meta: Any
    sensor_calibration: dict[str, Any] | None


def analyze_rom_recording(path: Path) -> tuple[dict[str, Any], list[Any], list[str]]:
    """ROM analysis of one recording: ``(results per side, flags, not-measured reasons)``."""
    a = analyze_rom_session(path)
    return a.results, a.flags, a.errors


def analyze_rom_session(path: Path, calibration_folder: Path | None = None) -> RomAnalysis:
    """ROM analysis of one recording, sensor calibrations of ``calibration_folder`` applied.

    Marked phases (``rom_*`` calibration markers) are used when the recording has them, else
    phases are detected automatically.
    """
    from imuhip.conventions import quat_rotate
    from imuhip.errors import InsufficientDataError
    from imuhip.gait.rom import RomSide, rom_flags, rom_phases_from_events, rom_side
    from imuhip.ingest.align import AlignConfig, align_session
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording
    from imuhip.ingest.units_check import check_session_gyro_units
    from imuhip.orientation.fusion import FuseConfig, fuse_session
    from imuhip.pipeline import _recorded_segcal

    rec = read_recording(path)
    aligned = align_session(decode_session(rec.packets, rec.meta), AlignConfig(), events=rec.events)
    provenance = None
    if calibration_folder is not None:
        from imuhip.orientation.sensor_calibration import (
            apply_sensor_calibrations,
            calibration_provenance,
        )

        provenance = {
            "folder": str(calibration_folder),
            "sensors": calibration_provenance(rec.meta, calibration_folder),
        }
        aligned = apply_sensor_calibrations(aligned, rec.meta, calibration_folder)
    check_session_gyro_units(aligned)  # a gyroscope off by 57.3 is refused, ambiguous logged
    ori = fuse_session(aligned, FuseConfig())
    segcal = _recorded_segcal(rec.events)
    results: dict[str, RomSide] = {}
    errors: list[str] = []
    for side, placement in (("left", "thigh_l"), ("right", "thigh_r")):
        if placement not in ori.q_world_sensor:
            continue
        gyr = ori.gyr_rad_s.get(placement)
        if gyr is None:
            errors.append(f"{side}: no gyroscope")
            continue
        axis = None
        if segcal is not None and placement in segcal.q_sensor_segment:
            # segment Y (proximal) expressed in the sensor frame
            axis = quat_rotate(segcal.q_sensor_segment[placement], [0.0, 1.0, 0.0])
        try:
            r = rom_side(
                ori.t_s,
                ori.q_world_sensor[placement],
                gyr,
                side,
                long_axis_sensor=axis,
                phases=rom_phases_from_events(rec.events, side),
            )
        except InsufficientDataError as err:
            errors.append(f"{side}: {err}")
            continue
        if r.ir_deg or r.er_deg:
            results[side] = r
        else:
            errors.append(f"{side}: no rotation repetitions found")
    if not results:
        raise InsufficientDataError(
            f"no ROM test found in {path}: " + "; ".join(errors or ["no thigh sensor"])
        )
    return RomAnalysis(results, rom_flags(results), errors, rec.meta, provenance)


def write_rom_result(
    name: str, results: dict[str, Any], flags: list[Any], errors: list[str], json_path: Path | None
) -> None:
    """Print the result (and write it as JSON to ``json_path`` if given)."""
    out = sys.stdout

    def f(v: float) -> str:
        return f"{v:.1f}" if math.isfinite(v) else "–"

    out.write(f"{name}: seated 90/90 hip rotation, degrees from neutral\n")
    for side, r in results.items():
        out.write(
            f"  {side:>5}: IR {f(r.ir_mean_deg)} ± {f(r.ir_sd_deg)} "
            f"(reps {', '.join(f(x) for x in r.ir_deg)}), "
            f"ER {f(r.er_mean_deg)} ± {f(r.er_sd_deg)} "
            f"(reps {', '.join(f(x) for x in r.er_deg)})\n"
        )
        for n in r.notes:
            out.write(f"         note: {n}\n")
    for e in errors:
        out.write(f"  not measured: {e}\n")
    out.write("  norm: passive IR 30–45° (Roach & Miles 1991); side difference > 10° flagged\n")
    for fl in flags:
        out.write(f"  FLAG: {fl.message}\n")
    if not flags:
        out.write("  no flags\n")
    if json_path is not None:
        payload = {
            "sides": {s: r.to_dict() for s, r in results.items()},
            "flags": [fl.to_dict() for fl in flags],
            "not_measured": errors,
        }
        from imuhip.report.writer import json_ready

        text = json.dumps(json_ready(payload), indent=2, allow_nan=False)
        json_path.write_text(text, encoding="utf-8")


def write_rom_report_files(a: RomAnalysis, recording: Path, out_dir: Path) -> tuple[Path, bool]:
    """Write the ROM report into ``out_dir``; ``(html path, repeat the test?)``."""
    from imuhip.report.rom import rom_report_dict, write_rom_report

    doc = rom_report_dict(
        a.results,
        a.flags,
        a.errors,
        recording=recording.name,
        meta=a.meta,
        sensor_calibration=a.sensor_calibration,
    )
    paths = write_rom_report(doc, out_dir)
    out = sys.stdout
    for reason in doc["repeat_reasons"]:
        out.write(f"  REPEAT: {reason}\n")
    if doc["repeat_test"]:
        out.write("  => repeat the test\n")
    out.write(f"report: {paths['html']}\n")
    return paths["html"], bool(doc["repeat_test"])


def _check_report_dir(args: argparse.Namespace, default: Path) -> Path:
    from imuhip.cli.commands._common import prepare_output_dir
    from imuhip.errors import OptionError

    if args.calibration is not None and not args.calibration.is_dir():
        raise OptionError(f"--calibration {args.calibration} is not a folder")
    out: Path = args.report_dir if args.report_dir is not None else default
    prepare_output_dir(out, "--report-dir")  # a bad folder fails before the analysis
    for name in ("rom_report.html", "rom_report.json"):
        if (out / name).is_dir():
            raise OptionError(f"--report-dir: {out / name} is a directory")
    return out


def run(args: argparse.Namespace) -> int:
    """Measure maximal IR and ER from neutral per side, print them with flags, write the report.

    Returns :data:`REPEAT_EXIT` when the test must be repeated.
    """
    from imuhip.errors import ImuhipError

    if args.live:
        from imuhip.live.rom_guide import run_guided_rom_test

        if args.out is not None:
            _check_report_dir(args, Path(args.out).parent)
        path = run_guided_rom_test(args)
    else:
        if args.recording is None:
            raise ImuhipError("give a recording (or --live)")
        path = args.recording
        if not path.exists():
            raise FileNotFoundError(2, "no such file", str(path))
    out_dir = _check_report_dir(args, path.parent)
    a = analyze_rom_session(path, args.calibration)
    write_rom_result(path.name, a.results, a.flags, a.errors, args.json)
    _, repeat = write_rom_report_files(a, path, out_dir)
    return REPEAT_EXIT if repeat else 0
