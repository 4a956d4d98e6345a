"""``imuhip rom-test REC``: seated 90/90 hip IR/ER range of motion from the thigh sensors."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

NAME = "rom-test"
HELP = "hip internal/external rotation ROM test (seated 90/90) from a recording"

GUIDE = """Seated 90/90 hip rotation test, per side:
  1. sit, hips and knees at 90°, thigh sensors on the lateral mid-thigh; hold still 2 s (neutral)
  2. turn the foot outward as far as it goes (internal rotation), back to neutral
  3. turn the foot inward as far as it goes (external rotation), back to neutral
  4. repeat steps 2-3 three times, then do the other side"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of ``imuhip rom-test``."""
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = GUIDE
    parser.add_argument("recording", type=Path, nargs="?", help="recording file (.imrec)")
    parser.add_argument("--live", action="store_true", help="guided test with live sensors")
    parser.add_argument("--json", type=Path, default=None, help="also write the result as JSON")


def run(args: argparse.Namespace) -> int:
    """Measure maximal IR and ER from neutral per side and print them with flags."""
    from imuhip.errors import ImuhipError, InsufficientDataError

    if args.live:
        raise ImuhipError(
            "the guided live ROM test is not available yet: record the test with "
            "'imuhip live ... --out FILE' following the steps of 'imuhip rom-test --help', "
            "then run 'imuhip rom-test FILE'"
        )
    if args.recording is None:
        raise ImuhipError("give a recording (or --live)")
    from imuhip.align import AlignConfig, align_session
    from imuhip.conventions import quat_rotate
    from imuhip.decode import decode_session
    from imuhip.fusion import FuseConfig, fuse_session
    from imuhip.pipeline import _recorded_segcal
    from imuhip.recording import read_recording
    from imuhip.rom import RomSide, rom_flags, rom_side

    rec = read_recording(args.recording)
    aligned = align_session(decode_session(rec.packets, rec.meta), AlignConfig())
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
            r = rom_side(ori.t_s, ori.q_world_sensor[placement], gyr, side, long_axis_sensor=axis)
        except InsufficientDataError as err:
            errors.append(f"{side}: {err}")
            continue
        if r.ir_deg or r.er_deg:
            results[side] = r
        else:
            errors.append(f"{side}: no rotation repetitions found")
    if not results:
        raise InsufficientDataError(
            "no ROM test found in the recording (" + "; ".join(errors or ["no thigh sensor"]) + ")"
        )
    flags = rom_flags(results)
    out = sys.stdout

    def f(v: float) -> str:
        return f"{v:.1f}" if math.isfinite(v) else "–"

    out.write(f"{args.recording.name}: seated 90/90 hip rotation, degrees from neutral\n")
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
    if args.json is not None:
        payload = {
            "sides": {s: r.to_dict() for s, r in results.items()},
            "flags": [fl.to_dict() for fl in flags],
            "not_measured": errors,
        }
        from imuhip.report import json_ready

        text = json.dumps(json_ready(payload), indent=2, allow_nan=False)
        args.json.write_text(text, encoding="utf-8")
    return 0
