"""``imuhip simulate``: write a simulated walking session with its ground truth."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from imuhip.cli.commands._common import positive_float
from imuhip.errors import ImuhipError
from imuhip.sim.params import Disconnect

NAME = "simulate"
HELP = "simulate a walking session: OUT.imrec plus OUT.truth.json/.truth.npz ground truth"


class SimulateArgumentError(ImuhipError):
    """A simulator option with an unusable value."""


def _limits(text: str) -> tuple[float | None, float | None]:
    parts = [s.strip().lower() for s in text.split(",")]
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"expected L,R (degrees or 'none'), got {text!r}")
    out: list[float | None] = []
    for s in parts:
        if s in ("", "none", "-"):
            out.append(None)
        else:
            try:
                out.append(float(s))
            except ValueError as err:
                raise argparse.ArgumentTypeError(f"not a number of degrees: {s!r}") from err
    return out[0], out[1]


def _disconnect(text: str) -> tuple[str | None, float, float]:
    parts = text.split(":")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected SENSOR:START_S:DURATION_S, got {text!r}")
    sensor = None if parts[0] in ("", "all", "*") else parts[0]
    try:
        return sensor, float(parts[1]), float(parts[2])
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"bad disconnect times in {text!r}") from err


def _iso_date(text: str) -> str:
    """``--date``: an ISO 8601 date (09:00 UTC that day) or date-time (UTC without an offset).

    Returns the recording header's ``start_wall_time`` (ISO 8601 with offset), the date
    ``imuhip compare`` and the cohort table order sessions by.
    """
    try:
        if "T" not in text and " " not in text:
            day = dt.date.fromisoformat(text)
            return dt.datetime(day.year, day.month, day.day, 9, tzinfo=dt.UTC).isoformat()
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO date YYYY-MM-DD (or date-time YYYY-MM-DDTHH:MM[:SS][+HH:MM]), "
            f"got {text!r}"
        ) from None
    return (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).isoformat()


def _pair_deg(text: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        a, b = (float(x) for x in parts)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected L,R degrees, got {text!r}") from err
    return a, b


DEFAULT_SENSORS = "pelvis,thigh_l,thigh_r"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``imuhip simulate`` (all have the simulator's defaults)."""
    parser.add_argument("out", metavar="OUT", help="output recording (.imrec is appended)")
    parser.add_argument(
        "--scenario",
        choices=("walking", "rom-seated", "rom-seated-nomarkers"),
        default="walking",
        help="walking (default) or a seated 90/90 hip rotation ROM test (with or without "
        "phase markers; --duration and the gait options are ignored)",
    )
    parser.add_argument(
        "--rom-ir-deg", type=_pair_deg, default=(38.0, 38.0), metavar="L,R",
        help="rom-seated: maximal internal rotation per side",
    )  # fmt: skip
    parser.add_argument(
        "--rom-er-deg", type=_pair_deg, default=(40.0, 40.0), metavar="L,R",
        help="rom-seated: maximal external rotation per side",
    )  # fmt: skip
    parser.add_argument(
        "--duration", type=positive_float, default=60.0, metavar="S", help="seconds"
    )
    parser.add_argument("--rate", type=int, default=200, metavar="HZ", help="50, 100, 200, 400")
    parser.add_argument(
        "--sensors",
        default=None,
        help="comma-separated placements: pelvis,thigh_l,thigh_r,lumbar,shank_l,shank_r,foot_l,"
        "foot_r (default pelvis,thigh_l,thigh_r; with --realistic also shanks and feet)",
    )
    parser.add_argument(
        "--realistic",
        action="store_true",
        help="the realistic simulator (docs/validation.md): soft-tissue artefact on every "
        "segment (thigh 3.5 deg RMS about its long axis; --soft-tissue-deg sets it), datasheet "
        "sensor errors (--sensor-grade), stride variability, speed-dependent joint curves; a "
        "10-m walkway from standing with a 180 deg turn (--duration ignored; --straight for a "
        "straight walk of --duration)",
    )
    parser.add_argument(
        "--sensor-grade",
        choices=("movesense", "xsens_mtx"),
        default="movesense",
        help="--realistic: whose datasheet errors (noise, bias, scale, axis misalignment)",
    )
    parser.add_argument(
        "--thigh-placement",
        choices=("lateral", "anterior"),
        default="lateral",
        help="--realistic: thigh sensors on the side (default) or the front of the thigh",
    )
    parser.add_argument(
        "--straight", action="store_true", help="--realistic: a straight walk, no walkway"
    )
    parser.add_argument(
        "--hip-ir-limit-deg",
        type=_limits,
        default=(None, None),
        metavar="L,R",
        help="peak hip internal rotation cap per side, e.g. none,3",
    )
    parser.add_argument("--hip-ir-excursion-deg", type=float, default=10.0, metavar="DEG")
    parser.add_argument(
        "--compensation", type=float, default=0.0, metavar="G", help="lumbar/pelvic gain (0-1)"
    )
    parser.add_argument("--asymmetry", type=float, default=0.0, help="right/left hip amplitude")
    parser.add_argument("--misplacement-deg", type=float, default=5.0, metavar="D")
    parser.add_argument(
        "--soft-tissue-deg",
        type=float,
        default=None,
        metavar="D",
        help="soft-tissue artefact: with --realistic the thigh's RMS rotation about its long "
        "axis against the femur (default 3.5; joint-angle driven, plus ringing after each heel "
        "strike); without, a gait-driven wobble of this amplitude (default 0)",
    )
    parser.add_argument("--speed", type=float, default=1.3, metavar="M_S")
    parser.add_argument(
        "--cadence",
        type=float,
        default=None,
        metavar="STEPS_MIN",
        help="default 110; with --realistic 85 + 20 x speed, within 90-130 (cadence follows "
        "walking speed, Grieve & Gear 1966)",
    )
    parser.add_argument("--heading-deg", type=float, default=0.0, help="CCW from east")
    parser.add_argument("--turn", action="store_true", help="180° turn halfway")
    parser.add_argument(
        "--functional", action="store_true", help="functional hip calibration movements"
    )
    parser.add_argument("--no-noise", action="store_true", help="error-free sensors")
    parser.add_argument("--no-mag", action="store_true", help="6-channel sensors")
    parser.add_argument("--mag-dip-deg", type=float, default=60.0)
    parser.add_argument("--loss", type=float, default=0.0, metavar="P", help="packet loss prob")
    parser.add_argument(
        "--burst-loss", type=float, default=0.0, metavar="P", help="burst start prob per packet"
    )
    parser.add_argument(
        "--disconnect",
        type=_disconnect,
        action="append",
        default=[],
        metavar="SENSOR:START:DUR",
        help="link down for a window (SENSOR 'all' for every sensor); repeatable",
    )
    parser.add_argument(
        "--time-sync",
        action="store_true",
        help="record the host's TIME_SYNC exchanges as imuhip live does (the clock then comes "
        "from them, live and offline: docs/live.md)",
    )
    parser.add_argument("--mtu", type=int, default=247, help="ATT MTU")
    parser.add_argument("--seed", type=int, default=0, metavar="N")
    parser.add_argument("--subject", default="SIM01", help="pseudonym")
    parser.add_argument(
        "--date",
        type=_iso_date,
        default=None,
        metavar="YYYY-MM-DD",
        help="recording date in the header (ISO date, 09:00 UTC; or an ISO date-time); "
        "imuhip compare orders sessions by it (default 2024-01-01T09:00:00+00:00)",
    )
    parser.add_argument(
        "--quiet", action="store_true", help="no progress lines on stderr (simulating, writing)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an existing OUT.imrec (and its truth)"
    )


def _check_target(out: Path, overwrite: bool) -> None:
    """Refuse (before simulating) to replace an existing recording unless ``overwrite``.

    ``OUT`` may name a real session (``imuhip simulate session`` next to a live ``session.imrec``):
    like ``live`` and ``import``, nothing is replaced without ``--overwrite``.
    """
    rec = out if out.suffix == ".imrec" else out.with_name(out.name + ".imrec")
    if rec.is_dir():
        raise ImuhipError(f"{rec} is a folder, not a recording file")
    if rec.exists() and not overwrite:
        raise ImuhipError(
            f"{rec} already exists; refusing to overwrite a recording (use --overwrite)"
        )


def _common_params(args: argparse.Namespace, sensors: str) -> dict[str, Any]:
    """The :class:`~imuhip.sim.SimParams` fields both scenarios take from the same options."""
    return {
        "seed": args.seed,
        "rate_hz": args.rate,
        "sensors": tuple(s.strip() for s in sensors.split(",") if s.strip()),
        "has_mag": not args.no_mag,
        "subject": args.subject,
        "misplacement_deg": args.misplacement_deg,
        "noise": not args.no_noise,
        "mag_dip_deg": args.mag_dip_deg,
        "loss_prob": args.loss,
        "burst_start_prob": args.burst_loss,
        "disconnects": tuple(Disconnect(a, d, s) for s, a, d in args.disconnect),
        "time_sync": bool(args.time_sync),
        "att_mtu": args.mtu,
    }


def _realistic_params(args: argparse.Namespace) -> Any:
    """``--realistic``: :func:`imuhip.sim.presets.realistic_params` with the walker's options."""
    from imuhip.sim.presets import REALISTIC_SENSORS, realistic_params
    from imuhip.sim.realism import SENSOR_GRADES, Realism

    sta = {} if args.soft_tissue_deg is None else {"sta_thigh_deg": args.soft_tissue_deg}
    real = Realism(
        axis_misalignment_deg=SENSOR_GRADES[args.sensor_grade]["axis_misalignment_deg"],
        thigh_placement=args.thigh_placement,
        **sta,
    )
    fields = _common_params(args, args.sensors or ",".join(REALISTIC_SENSORS))
    if args.no_noise:
        real = dataclasses.replace(real, axis_misalignment_deg=0.0)
    extra = {} if not args.straight else {"duration_s": args.duration, "turn": args.turn}
    return realistic_params(
        args.seed,
        speed_m_s=args.speed,
        sensor_grade=args.sensor_grade,
        realism=real,
        walkway=not args.straight,
        hip_ir_limit_deg=args.hip_ir_limit_deg,
        hip_ir_excursion_deg=(args.hip_ir_excursion_deg, args.hip_ir_excursion_deg),
        compensation_gain=args.compensation,
        asymmetry=args.asymmetry,
        cadence_steps_min=(
            min(max(85.0 + 20.0 * args.speed, 90.0), 130.0)
            if args.cadence is None
            else args.cadence
        ),
        heading_deg=args.heading_deg,
        functional_calibration=args.functional,
        **{k: v for k, v in fields.items() if k != "seed"},
        **extra,
    )


def _say(args: argparse.Namespace, text: str) -> None:
    """A progress line on stderr (a long session takes ~35 s of CPU per simulated 20 min)."""
    if not getattr(args, "quiet", False):
        sys.stderr.write(f"imuhip simulate: {text}...\n")
        sys.stderr.flush()


def _dated(result: Any, date: str | None) -> Any:
    """``result`` with the header date ``date`` (``start_wall_time``), if one was given."""
    if date is None:
        return result
    return dataclasses.replace(result, meta=dataclasses.replace(result.meta, start_wall_time=date))


def _out_path(args: argparse.Namespace) -> Path:
    """``OUT`` as a path; its folder must exist."""
    out = Path(args.out)
    if out.parent and not out.parent.exists():
        raise FileNotFoundError(2, "no such directory", str(out.parent))
    return out


def run(args: argparse.Namespace) -> int:
    """Simulate, write the three files, print a one-screen summary."""
    from imuhip.sim import SimParams, simulate_session, write_simulated_recording

    if args.scenario != "walking":
        return _run_rom(args)
    t0 = time.perf_counter()
    try:
        params = (
            _realistic_params(args)
            if args.realistic
            else SimParams(
                **_common_params(args, args.sensors or DEFAULT_SENSORS),
                duration_s=args.duration,
                hip_ir_limit_deg=args.hip_ir_limit_deg,
                hip_ir_excursion_deg=(args.hip_ir_excursion_deg, args.hip_ir_excursion_deg),
                compensation_gain=args.compensation,
                asymmetry=args.asymmetry,
                soft_tissue_deg=args.soft_tissue_deg or 0.0,
                speed_m_s=args.speed,
                cadence_steps_min=110.0 if args.cadence is None else args.cadence,
                heading_deg=args.heading_deg,
                turn=args.turn,
                functional_calibration=args.functional,
            )
        )
        _check_target(Path(args.out), bool(args.overwrite))  # options first, then the target
        out = _out_path(args)
        _say(
            args,
            f"simulating {round(params.duration_s, 1):g} s of walking, "
            f"{len(params.sensors)} sensors at {params.rate_hz} Hz",
        )
        result = _dated(simulate_session(params), getattr(args, "date", None))
    except ValueError as err:
        raise SimulateArgumentError(str(err)) from err
    _say(args, f"writing {out.name.removesuffix('.imrec')}.imrec and its ground truth")
    paths = write_simulated_recording(result, out)
    total = time.perf_counter() - t0
    sm = result.truth.session_metrics
    lines = [
        f"simulated {round(params.duration_s, 1):g} s, {len(params.sensors)} sensors at "
        f"{params.rate_hz} Hz "
        f"in {result.elapsed_s:.2f} s (with writing {total:.2f} s)",
        f"packets: {sum(len(v) for v in result.packets.values())} sent, "
        f"{len(result.delivered)} delivered",
    ]
    for side in ("left", "right"):
        exc = sm["hip_rotation_excursion_deg"][side]
        ir = sm["hip_ir_peak_deg"][side]
        n = sm["n_valid_strides"][side]
        if exc is not None:
            lines.append(
                f"true {side} hip rotation excursion {exc:.1f}°, IR peak {ir:.1f}° ({n} strides)"
            )
    if sm.get("pelvis_rotation_range_deg") is not None:
        lines.append(f"true pelvis rotation range {sm['pelvis_rotation_range_deg']:.1f}°")
    if sm.get("lumbar_rotation_range_deg") is not None:
        lines.append(f"true lumbar rotation range {sm['lumbar_rotation_range_deg']:.1f}°")
    lines += [f"wrote {p}" for p in paths.values()]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def _run_rom(args: argparse.Namespace) -> int:
    """``--scenario rom-seated[-nomarkers]``: a simulated ROM test with its truth."""
    from imuhip.sim import SimParams
    from imuhip.sim.rom import RomSimParams, simulate_rom_session, write_rom_recording

    t0 = time.perf_counter()
    sensors = args.sensors or DEFAULT_SENSORS
    if sensors == DEFAULT_SENSORS:
        sensors = "pelvis,thigh_l,thigh_r,shank_l,shank_r"
    try:
        base = SimParams(**_common_params(args, sensors))
        params = RomSimParams(
            base=base,
            ir_deg=args.rom_ir_deg,
            er_deg=args.rom_er_deg,
            markers=args.scenario == "rom-seated",
        )
        _check_target(Path(args.out), bool(args.overwrite))
        out = _out_path(args)
        _say(
            args, f"simulating a seated ROM test, {len(base.sensors)} sensors at {base.rate_hz} Hz"
        )
        result = _dated(simulate_rom_session(params), getattr(args, "date", None))
    except ValueError as err:
        raise SimulateArgumentError(str(err)) from err
    _say(args, f"writing {out.name.removesuffix('.imrec')}.imrec and its ground truth")
    paths = write_rom_recording(result, out)
    lines = [
        f"simulated seated 90/90 ROM test, {params.duration_s:.0f} s, {len(base.sensors)} sensors "
        f"at {base.rate_hz} Hz, markers {'on' if params.markers else 'off'} "
        f"in {time.perf_counter() - t0:.2f} s"
    ]
    for side, r in result.truth["rom"].items():
        lines.append(
            f"true {side}: IR {r['ir_mean_deg']:.1f}° (reps "
            + ", ".join(f"{x:.1f}" for x in r["ir_deg"])
            + f"), ER {r['er_mean_deg']:.1f}° (reps "
            + ", ".join(f"{x:.1f}" for x in r["er_deg"])
            + ")"
        )
    lines += [f"wrote {p}" for p in paths.values()]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
