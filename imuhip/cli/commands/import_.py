"""``imuhip import``: other systems' data -> a native recording or an orientation session.

``imuhip import csv --sensor pelvis=P.csv --sensor thigh_l=L.csv ... -o OUT.imrec``
    Generic per-sensor CSV (``docs/interop.md``), re-encoded into the packet protocol.
``imuhip import xsens --mapping myIMUMappings.xml -o OUT``
    Xsens MT Manager exports. With gyroscope columns -> ``OUT.imrec`` (fusion runs as for native
    data); orientation-only exports -> ``OUT.imori.npz`` analysed from the vendor orientation.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from imuhip.conventions import Placement
from imuhip.errors import ImportFormatError, OptionError

NAME = "import"
HELP = "import generic CSV or Xsens exports as a recording or an orientation session"


def _sensor_arg(text: str) -> tuple[str, str]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"expected PLACEMENT=FILE, got {text!r}")
    p, f = text.split("=", 1)
    p = p.strip()
    if p not in {x.value for x in Placement}:
        known = ", ".join(x.value for x in Placement)
        raise argparse.ArgumentTypeError(f"unknown placement {p!r} (known: {known})")
    return p, f


def _window_arg(text: str) -> tuple[float, float]:
    try:
        a, b = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected START:STOP in seconds, got {text!r}") from None
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"need 0 <= START < STOP, got {text!r}")
    return a, b


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register ``imuhip import csv`` and ``imuhip import xsens``."""
    sub = parser.add_subparsers(dest="format", metavar="FORMAT", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-o", "--output", required=True, help="file to create")
    common.add_argument("--subject", default="imported", help="subject pseudonym (never a name)")
    common.add_argument("--session-id", default=None)
    common.add_argument("--overwrite", action="store_true", help="replace an existing output")
    common.add_argument(
        "--summary", action="store_true", help="analyse the result and print key numbers"
    )

    c = sub.add_parser("csv", parents=[common], help="generic per-sensor CSV files")
    c.add_argument(
        "--sensor",
        action="append",
        type=_sensor_arg,
        required=True,
        metavar="PLACEMENT=FILE",
        help="one per sensor, e.g. pelvis=pelvis.csv",
    )
    c.add_argument("--rate-hz", type=float, default=None, help="sample rate (no time column)")
    c.add_argument("--acc-unit", default=None, help="unit of bare acc_x.. columns: m/s2, g, mg")
    c.add_argument("--gyr-unit", default=None, help="unit of bare gyr_x.. columns: rad/s, deg/s")
    c.add_argument("--mag-unit", default=None, help="unit of bare mag_x.. columns: ut, nt, gauss")
    c.add_argument("--time-unit", default=None, help="unit of a bare t/time column: s, ms, us")
    c.add_argument(
        "--max-gap-s", type=float, default=0.5, help="longest run of empty rows kept as a gap"
    )

    x = sub.add_parser("xsens", parents=[common], help="Xsens MT Manager text exports")
    x.add_argument("--mapping", default=None, help="OpenSense myIMUMappings.xml")
    x.add_argument("--folder", default=None, help="folder of the .txt files (default: mapping's)")
    x.add_argument(
        "--sensor",
        action="append",
        type=_sensor_arg,
        default=None,
        metavar="PLACEMENT=FILE",
        help="instead of --mapping: one per sensor",
    )
    x.add_argument("--world", choices=("nwu", "enu"), default="nwu", help="Xsens world frame")
    x.add_argument(
        "--use",
        choices=("auto", "vendor", "fusion"),
        default="auto",
        help="orientation source: vendor quaternions or imuhip fusion (needs Gyr_*); auto = "
        "fusion when gyroscopes are present",
    )
    x.add_argument("--rate-hz", type=float, default=None, help="if the '//' header lacks it")
    x.add_argument("--gyr-unit", default="rad/s", help="unit of Gyr_* columns")
    x.add_argument("--mag-ut-per-au", type=float, default=None, help="µT per Xsens mag unit")
    x.add_argument(
        "--static-s",
        type=_window_arg,
        default=None,
        metavar="START:STOP",
        help="standing pose for the vendor path (default: first still second)",
    )
    x.add_argument(
        "--base-heading-axis",
        default="z",
        help="pelvis sensor axis pointing forward in the static pose (OpenSense example: z); "
        "a sign the walking contradicts is reversed with a warning",
    )


def _summary(result: object) -> None:
    from imuhip.pipeline import SessionResult

    assert isinstance(result, SessionResult)
    out = sys.stdout.write
    n_ic = {s: len(e.ic_s) for s, e in result.events.items()}
    out(f"orientation source: {result.orientation_source}\n")
    out(f"initial contacts: {n_ic}\n")
    for side in ("left", "right"):
        pairs = zip(result.strides, result.per_stride, strict=True)
        mine = [(s, m) for s, m in pairs if s.side == side]
        valid = [m for s, m in mine if s.exclusion is None]
        exc = np.array([m["hip_rotation_excursion_deg"] for m in valid])
        txt = f"{np.mean(exc):.1f}" if len(exc) else "n/a"
        out(f"{side}: {len(mine)} strides, {len(valid)} valid, hip rotation excursion {txt} deg\n")
    for k, v in result.session.trunk.items():
        out(f"{k}: {v.mean:.1f}\n")


def _check_units(sensors: list, files: list[str]) -> None:
    """Refuse samples whose magnitudes give away a wrong unit (deg/s read as rad/s, g as m/s²).

    The same plausibility test the fusion applies
    (:func:`imuhip.orientation.fusion._inputs._check_units`),
    run before anything is written so a mislabelled column never becomes a recording.
    """
    from imuhip.orientation.fusion._inputs import _check_units as check

    for s, f in zip(sensors, files, strict=True):
        acc = np.asarray(s.acc_m_s2, dtype=np.float64)
        ok = np.all(np.isfinite(acc), axis=1)
        gyr = None
        if s.gyr_rad_s is not None:
            gyr = np.asarray(s.gyr_rad_s, dtype=np.float64)
            ok &= np.all(np.isfinite(gyr), axis=1)
        mag = None
        if s.mag_ut is not None:
            mag = np.asarray(s.mag_ut, dtype=np.float64)
            ok &= np.all(np.isfinite(mag), axis=1)
        if not np.any(ok):
            raise ImportFormatError(f"{f}: no complete finite sample rows")
        try:
            check(
                acc[ok],
                gyr[ok] if gyr is not None else np.zeros((int(ok.sum()), 3)),
                mag[ok] if mag is not None else None,
            )
        except ValueError as err:
            raise ImportFormatError(
                f"{f}: {err} (declare the unit in the column name or with --acc-unit/"
                "--gyr-unit/--mag-unit)"
            ) from None


def _summary_or_error(out: Path, analyse: object) -> None:
    """Print the ``--summary`` of the written file; an analysis failure is a one-line error."""
    from imuhip.errors import ImuhipError

    try:
        _summary(analyse(out))  # type: ignore[operator]
    except (ValueError, ImuhipError) as err:
        raise ImuhipError(f"{out} was written, but --summary could not analyse it: {err}") from err


def run(args: argparse.Namespace) -> int:
    """Run the import."""
    from imuhip.interop import (
        CsvOptions,
        import_xsens_trial,
        orientation_session_from_imported,
        read_sensor_csv,
        save_orientation_session,
        write_native_recording,
    )
    from imuhip.interop.orientation_file import (
        ORIENTATION_SUFFIX,
        analyze_orientation_file,
        meta_for_vendor_session,
        trim_notes,
    )
    from imuhip.interop.plausibility import quarantine_impossible

    out = Path(args.output)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if args.format == "csv":
        from imuhip.interop._common import unit_factor

        for quantity in ("acc", "gyr", "mag", "time"):  # a typo is refused even when unused
            declared = getattr(args, f"{quantity}_unit")
            if declared is not None:
                unit_factor(quantity, declared, where=f"--{quantity}-unit")
        if not (math.isfinite(args.max_gap_s) and args.max_gap_s >= 0):
            raise OptionError(f"--max-gap-s must be a finite number >= 0, got {args.max_gap_s}")
        opt = CsvOptions(
            rate_hz=args.rate_hz,
            acc_unit=args.acc_unit,
            gyr_unit=args.gyr_unit,
            mag_unit=args.mag_unit,
            time_unit=args.time_unit,
            max_gap_s=args.max_gap_s,
        )
        # impossible rows become counted gaps before anything scales or checks units on them
        sensors = [quarantine_impossible(read_sensor_csv(f, p, opt)) for p, f in args.sensor]
        _check_units(sensors, [str(f) for _, f in args.sensor])
        for s in sensors:  # missing rows and time gaps, with their counts
            for n in s.notes:
                sys.stderr.write(f"imuhip import: note: {n}\n")
        write_native_recording(
            sensors,
            out,
            subject=args.subject,
            session_id=args.session_id,
            start_wall_time=now,
            overwrite=args.overwrite,
        )
        sys.stdout.write(f"wrote {out} ({len(sensors)} sensors, protocol imuhip)\n")
        if args.summary:
            from imuhip.pipeline import analyze_recording

            _summary_or_error(out, analyze_recording)
        return 0

    if args.mapping is None and not args.sensor:
        raise ImportFormatError("give --mapping myIMUMappings.xml or --sensor PLACEMENT=FILE")
    if args.sensor:
        files = [f for _, f in args.sensor]
        sensors, notes = import_xsens_trial(
            files,
            placements={f: p for p, f in args.sensor},
            world=args.world,
            rate_hz=args.rate_hz,
            gyr_unit=args.gyr_unit,
            mag_ut_per_au=args.mag_ut_per_au,
        )
    else:
        sensors, notes = import_xsens_trial(
            mapping=args.mapping,
            folder=args.folder,
            world=args.world,
            rate_hz=args.rate_hz,
            gyr_unit=args.gyr_unit,
            mag_ut_per_au=args.mag_ut_per_au,
        )
    sensors = [quarantine_impossible(s) for s in sensors]
    notes = [*notes, *(n for s in sensors for n in s.notes if "quarantined" in n)]
    for n in notes:
        sys.stderr.write(f"imuhip import: note: {n}\n")
    has_gyr = all(s.gyr_rad_s is not None for s in sensors)
    use = args.use
    if use == "auto":
        use = "fusion" if has_gyr else "vendor"
    if use == "fusion":
        if not has_gyr:
            missing = [s.source for s in sensors if s.gyr_rad_s is None]
            raise ImportFormatError(f"{missing[0]}: no Gyr_* columns; use --use vendor")
        write_native_recording(
            sensors,
            out,
            subject=args.subject,
            session_id=args.session_id,
            start_wall_time=now,
            source_format="xsens",
            notes="\n".join(notes),
            overwrite=args.overwrite,
        )
        sys.stdout.write(f"wrote {out} ({len(sensors)} sensors, re-encoded; fusion on analysis)\n")
        if args.summary:
            from imuhip.pipeline import analyze_recording

            _summary_or_error(out, analyze_recording)
        return 0

    from imuhip.interop.vendor_calibration import assumed_pose_calibration

    if not str(out).endswith(ORIENTATION_SUFFIX):
        out = out.with_name(out.name + ORIENTATION_SUFFIX)
    ori = orientation_session_from_imported(sensors, source="vendor:xsens")
    for n in trim_notes(sensors):  # the longer files' ends (and earlier starts) are not used
        sys.stderr.write(f"imuhip import: note: {n}\n")
        notes.append(n)
    window = None
    if args.static_s is not None:
        a, b = (round(v * ori.rate_hz) for v in args.static_s)
        window = (a, min(b, len(ori.t_s)))
    segcal = assumed_pose_calibration(
        ori, static_window=window, base_heading_axis=args.base_heading_axis
    )
    meta = meta_for_vendor_session(
        sensors,
        subject=args.subject,
        session_id=args.session_id or f"xsens-{out.name.split('.')[0]}",
        start_wall_time=now,
        vendor="xsens",
        notes=notes,
    )
    meta.extra["import"]["world"] = args.world  # the .sto export writes this world back
    save_orientation_session(out, ori, meta, segcal=segcal, overwrite=args.overwrite)
    sys.stdout.write(
        f"wrote {out} ({len(sensors)} sensors, {len(ori.t_s) / ori.rate_hz:.2f} s at "
        f"{ori.rate_hz:g} Hz, orientation from the vendor filter; no gyroscope: fusion skipped)\n"
    )
    if args.summary:
        _summary_or_error(out, analyze_orientation_file)
    return 0
