"""``imuhip calibrate-sensor``: guided gyroscope / accelerometer / magnetometer calibration.

Explains the procedure, analyses a recording of it (or, with ``--live``, a live capture), prints
the result and its quality, and stores it per sensor serial in ``calibration/<serial>.json``
(see ``calibration/README.md``), merged with the parts already stored for that sensor.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import sys
from pathlib import Path

import numpy as np

from imuhip.errors import (
    CalibrationError,
    ImuhipError,
    InsufficientDataError,
    SensorConnectionError,
)
from imuhip.orientation.sensor_calibration import (
    SensorCalibration,
    calibration_path,
    estimate_gyro_bias,
    fit_mag_ellipsoid,
    load_for_sensor,
    save_calibration,
    six_position_calibration,
)
from imuhip.types import ImuSamples

NAME = "calibrate-sensor"
HELP = "guided sensor calibration (gyro bias, accelerometer 6-position, magnetometer figure-eight)"

KINDS = ("gyro", "acc6", "mag")

INSTRUCTIONS = {
    "gyro": (
        "Gyroscope bias",
        [
            "Place the sensor on a table, any face down, where nothing vibrates.",
            "Start recording, do not touch the sensor for at least 10 s, stop recording.",
            "The bias is the mean gyroscope reading over the still part (at least 3 s).",
        ],
    ),
    "acc6": (
        "Accelerometer six-position",
        [
            "Place the sensor still on each of its six faces in turn, so that +x, -x, +y, -y, "
            "+z and -z each point straight up once (a box or a square block helps).",
            "Hold each face still for at least 3 s; move between faces in any way.",
            "Scale, cross-axis misalignment and offset are fitted so every face reads 1 g.",
        ],
    ),
    "mag": (
        "Magnetometer hard/soft iron",
        [
            "Mount the sensor as it will be worn (strap, housing and battery distort the field).",
            "Away from steel, magnets and electronics, draw a large, slow figure-eight in the air "
            "for 30-60 s while turning the sensor so it points up, down and to every side.",
            "An ellipsoid fitted to the readings gives the hard-iron offset and soft-iron matrix.",
        ],
    ),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``calibrate-sensor``."""
    parser.add_argument(
        "recording", nargs="?", default=None, help="recording (.imrec) of the procedure"
    )
    parser.add_argument(
        "--sensor", required=True, metavar="PLACEMENT", help="which sensor (e.g. pelvis)"
    )
    parser.add_argument("--kind", required=True, choices=KINDS, help="what to calibrate")
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("calibration"),
        help="calibration folder (default: %(default)s)",
    )
    parser.add_argument(
        "--serial", default=None, help="sensor serial, if the recording does not carry it"
    )
    parser.add_argument(
        "--live", metavar="ADDR", default=None, help="capture from a live sensor at this address"
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        metavar="S",
        help="live capture length in seconds (default: gyro 15, acc6 60, mag 45)",
    )
    parser.add_argument(
        "--no-save", action="store_true", help="analyse and print only, store nothing"
    )


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def _print_instructions(kind: str) -> None:
    title, steps = INSTRUCTIONS[kind]
    _say(f"== {title} calibration ==")
    for i, s in enumerate(steps, 1):
        _say(f"  {i}. {s}")
    _say()


def _live_unavailable() -> ImuhipError:
    return ImuhipError(
        "live calibration needs the BLE source module (imuhip.sources.ble), which this "
        "installation does not have: record the procedure first (imuhip live ... / record) and "
        "pass the recording file instead of --live"
    )


DEFAULT_LIVE_S = {"gyro": 15.0, "acc6": 60.0, "mag": 45.0}


async def _capture(addr: str, placement: str, duration_s: float) -> tuple[ImuSamples, str]:
    from imuhip.ingest.decode import decode_sensor
    from imuhip.sources.ble import BleSession
    from imuhip.types import RawPacket

    session = BleSession({placement: addr})
    try:
        meta = await session.connect_all()
        if placement not in meta:
            raise SensorConnectionError(
                f"could not connect {addr}: {session.failed.get(placement, 'no response')}"
            )
        await session.start_all()
        _say(f"connected; capturing {duration_s:.0f} s: follow the steps now")
        stop = asyncio.Event()
        sup = asyncio.ensure_future(session.supervise(stop))
        packets: list[RawPacket] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + duration_s
        try:
            while (left := deadline - loop.time()) > 0:
                try:
                    async with asyncio.timeout(min(left, 0.2)):
                        item = await session.queue.get()
                except TimeoutError:
                    continue
                if isinstance(item, RawPacket) and item.sensor == placement:
                    packets.append(item)
        finally:
            stop.set()
            await sup
    finally:
        await session.close()
    samples = decode_sensor(packets, meta[placement])
    if len(samples) == 0:
        raise InsufficientDataError(f"no samples received from {addr} in {duration_s:.0f} s")
    return samples, meta[placement].serial


def _live_samples(addr: str, placement: str, duration_s: float) -> tuple[ImuSamples, str]:
    if importlib.util.find_spec("imuhip.sources.ble") is None:
        raise _live_unavailable()
    try:
        return asyncio.run(_capture(addr, placement, duration_s))
    except ImuhipError:
        raise
    except (OSError, RuntimeError) as err:  # no adapter: bleak raises FileNotFoundError etc.
        raise SensorConnectionError(
            f"live calibration could not reach {addr} ({type(err).__name__}: {err}); check the "
            "Bluetooth adapter, or record the procedure and pass the recording file"
        ) from err


def _load_samples(path: str, placement: str) -> tuple[ImuSamples, str]:
    from imuhip.ingest.decode import decode_session
    from imuhip.ingest.recording import read_recording

    p = Path(path)
    if p.is_dir():
        raise ImuhipError(f"{p} is a directory, not a recording (.imrec) file")
    rec = read_recording(p)
    try:
        meta = rec.meta.sensor(placement)
    except KeyError as err:
        raise ImuhipError(str(err.args[0])) from None
    samples = decode_session(rec.packets, rec.meta)[placement]
    if len(samples) == 0:
        raise InsufficientDataError(f"no decodable samples of sensor {placement!r} in {p}")
    return samples, meta.serial


def run(args: argparse.Namespace) -> int:
    """Explain, analyse, print, store."""
    kind: str = args.kind
    if not args.no_save:  # a bad --out fails before the user records or waits
        from imuhip.cli.commands._common import prepare_output_dir

        prepare_output_dir(args.out)
    elif args.out.exists() and not args.out.is_dir():
        raise ImuhipError(f"--out {args.out} exists and is not a folder")
    _print_instructions(kind)
    if args.live is not None:
        duration = args.duration if args.duration is not None else DEFAULT_LIVE_S[kind]
        samples, rec_serial = _live_samples(args.live, args.sensor, duration)
    elif args.recording is None:
        raise ImuhipError(
            "no data: record the procedure above, then run "
            f"`imuhip calibrate-sensor REC --sensor {args.sensor} --kind {kind}` "
            "(or capture it live with --live ADDR)"
        )
    else:
        samples, rec_serial = _load_samples(args.recording, args.sensor)
    serial = args.serial or rec_serial
    if not serial:
        raise ImuhipError(
            f"sensor {args.sensor!r} has no serial in the recording: pass --serial SERIAL"
        )
    rate = float(samples.rate_hz)
    duration_s = len(samples) / rate
    _say(f"sensor {args.sensor} (serial {serial}): {len(samples)} samples, {duration_s:.1f} s")

    existing = load_for_sensor(serial, args.out)
    cal = existing if existing is not None else SensorCalibration.empty(serial)
    if kind == "gyro":
        g = estimate_gyro_bias(samples.gyr_rad_s, samples.acc_m_s2, rate)
        cal = cal.with_gyro(g)
        b_dps = np.degrees(g.bias_rad_s)
        _say(f"still for {g.still_s:.1f} s of {duration_s:.1f} s")
        _say(f"gyro bias: [{b_dps[0]:+.3f}, {b_dps[1]:+.3f}, {b_dps[2]:+.3f}] deg/s")
        _say(f"noise while still: {np.degrees(np.max(g.noise_rad_s)):.3f} deg/s")
    elif kind == "acc6":
        a = six_position_calibration(samples.acc_m_s2, rate, samples.gyr_rad_s)
        cal = cal.with_acc(a)
        _say(
            "still time per face (s): "
            + ", ".join(
                f"{f} {t:.1f}"
                for f, t in zip(("+x", "-x", "+y", "-y", "+z", "-z"), a.pose_s, strict=True)
            )
        )
        scale = np.linalg.norm(a.matrix, axis=0)
        _say(f"scale factors: [{scale[0]:.4f}, {scale[1]:.4f}, {scale[2]:.4f}]")
        o = a.offset_m_s2
        _say(f"offset: [{o[0]:+.3f}, {o[1]:+.3f}, {o[2]:+.3f}] m/s²")
        _say(f"residual |acc| - g: {a.residual_rms_m_s2:.4f} m/s² RMS")
    else:
        if samples.mag_ut is None:
            raise CalibrationError(f"sensor {args.sensor!r} has no magnetometer")
        m = fit_mag_ellipsoid(samples.mag_ut)
        cal = cal.with_mag(m)
        h = m.hard_iron_ut
        _say(f"hard iron: [{h[0]:+.2f}, {h[1]:+.2f}, {h[2]:+.2f}] µT")
        _say(f"field strength: {m.field_ut:.1f} µT (Earth: 22-67 µT)")
        _say(
            f"residual: {m.residual_rms_ut:.2f} µT RMS; coverage {m.coverage:.2f} (sphere 0.33), "
            f"{m.octants}/8 octants"
        )
    part = {"gyro": "gyro", "acc6": "acc", "mag": "mag"}[kind]
    _say(f"quality: {cal.quality[part]}")
    if cal.quality[part] == "poor":
        _say("  -> poor: repeat the procedure more carefully before relying on it")
    if args.no_save:
        _say(f"not saved (--no-save); would write {calibration_path(serial, args.out)}")
        return 0
    path = save_calibration(cal, args.out)
    _say(f"saved {path}")
    return 0
