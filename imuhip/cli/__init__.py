"""The ``imuhip`` command line. Each subcommand lives in :mod:`imuhip.cli.commands`.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
User errors (:class:`~imuhip.errors.ImuhipError`, missing files, bad values) print one line on
stderr and exit non-zero; they never show a traceback.

Start-up stays instant because no command module is imported to build the parser: the table
below names each command's module and help line, and only the module of the command being run
is imported (``imuhip --help`` imports none; ``tests/unit/cli/test_startup.py`` checks the
table against the modules and that ``--help`` loads no scipy, pandas, matplotlib or numba).
A module in ``commands/`` missing from the table still works (it is imported to be listed).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from imuhip import __version__
from imuhip.cli import commands
from imuhip.errors import ImuhipError, OptionError
from imuhip.interrupts import noted_interrupts

__all__ = ["COMMANDS", "build_parser", "main"]

log = logging.getLogger("imuhip")

# command name -> (module in imuhip.cli.commands, its HELP line), one entry per command
COMMANDS: dict[str, tuple[str, str]] = {
    "analyze": (
        "analyze",
        "analyse a recording: gait events, hip/pelvis/lumbar metrics, report.json/csv/html",
    ),
    "batch": (
        "batch",
        "analyse every recording of a folder into one table (local cores or a Dask cluster)",
    ),
    "bench": (
        "bench",
        "benchmark decode/fusion/analyze throughput, memory, live cost vs vqf and Madgwick",
    ),
    "bench-fusion": (
        "bench_fusion",
        "BROAD benchmark: orientation RMSE (total/heading/inclination) and speed per fusion method",
    ),
    "calibrate-sensor": (
        "calibrate_sensor",
        "guided sensor calibration (gyro bias, accelerometer 6-position, magnetometer "
        "figure-eight)",
    ),
    "compare": (
        "compare",
        "follow-up: one subject's sessions side by side over time",
    ),
    "export": (
        "export",
        "export a recording: per-sensor csv/parquet sample tables + meta.json, or other formats",
    ),
    "import": (
        "import_",
        "import generic CSV or Xsens exports as a recording or an orientation session",
    ),
    "info": (
        "info",
        "summarise a recording: sensors, duration, rates, packet loss, gaps, errors, events",
    ),
    "live": (
        "live",
        "stream sensors over BLE into a recording (--simulate: virtual sensors, no hardware)",
    ),
    "replay": (
        "replay",
        "replay a recording through the decoder (unpaced, or --realtime at --speed X)",
    ),
    "rom-test": (
        "rom_test",
        "hip internal/external rotation ROM test (seated 90/90): from a recording or --live guided",
    ),
    "scan": ("scan", "list nearby imuhip-protocol and Movesense sensors with RSSI and battery"),
    "simulate": (
        "simulate",
        "simulate a walking session: OUT.imrec plus OUT.truth.json/.truth.npz ground truth",
    ),
    "warmup": (
        "warmup",
        "compile and cache the numba kernels once after installing (first run then fast)",
    ),
}


def _command_module(module: str) -> ModuleType:
    return importlib.import_module(f"{commands.__name__}.{module}")


def _unlisted_modules() -> list[ModuleType]:
    """Command modules in ``commands/`` that :data:`COMMANDS` does not name (imported to list)."""
    listed = {module for module, _ in COMMANDS.values()}
    return [
        _command_module(info.name)
        for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name)
        if not info.name.startswith("_") and info.name not in listed
    ]


def _selected_command(argv: Sequence[str]) -> str | None:
    """The subcommand named in ``argv`` (the first word that is not an option), if any."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; with ``argv``, only the command it names gets its arguments.

    Without ``argv`` every command module is imported and fully set up (the whole parser);
    with it, only the module of the command being run is imported, the others are listed by
    their help line.
    """
    parser = argparse.ArgumentParser(
        prog="imuhip",
        description="Hip rotation and lumbar compensation from wearable IMUs.",
    )
    parser.add_argument("--version", action="version", version=f"imuhip {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = None if argv is None else _selected_command(argv)
    entries: list[tuple[str, str, ModuleType | None]] = [
        (name, help_, _command_module(module) if argv is None or name == chosen else None)
        for name, (module, help_) in COMMANDS.items()
    ]
    entries += [(mod.NAME, mod.HELP, mod) for mod in _unlisted_modules()]  # type: ignore[attr-defined]
    for name, help_, mod in sorted(entries, key=lambda e: e[0]):
        p = sub.add_parser(name, help=help_, description=help_)
        if mod is not None:
            mod.add_arguments(p)  # type: ignore[attr-defined]
            p.set_defaults(_run=mod.run, _parser=p)  # type: ignore[attr-defined]
    return parser


def _no_hugepage_advice() -> None:
    """Ask numpy not to ``madvise`` its large arrays into transparent huge pages (this process).

    numpy advises huge pages for every allocation of 4 MB or more unless
    ``NUMPY_MADVISE_HUGEPAGE=0`` (read once, when numpy is first imported). Where the kernel's
    THP ``defrag`` setting is ``madvise`` (a common default), each first touch of such an array
    then compacts and zeroes 2 MB pages synchronously: for a 1-hour recording, reading, decoding
    and aligning (arrays used once, a few passes each) cost ~1.1 s of system CPU that way
    against ~0.25 s with ordinary pages (docs/performance.md). A value the user set is kept,
    and nothing changes once numpy is imported (a caller's own process, e.g. the tests).
    """
    if "numpy" not in sys.modules:
        os.environ.setdefault("NUMPY_MADVISE_HUGEPAGE", "0")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imuhip`` console script; returns the exit status."""
    _no_hugepage_advice()
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        with noted_interrupts():  # Ctrl-C while the command's module loads: answered after
            parser = build_parser(words)
    except KeyboardInterrupt:
        sys.stderr.write("imuhip: interrupted\n")
        return 130
    args = parser.parse_args(words)
    logging.basicConfig(
        level=logging.WARNING - 10 * min(args.verbose, 2),
        format="imuhip: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "_run", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args._run(args) or 0)
    except OptionError as err:  # a bad option value: as argparse does, usage + one line, exit 2
        args._parser.print_usage(sys.stderr)
        sys.stderr.write(f"imuhip {args.command}: error: {err}\n")
        return 2
    except ImuhipError as err:
        sys.stderr.write(f"imuhip {args.command}: error: {err}\n")
        return 1
    except FileNotFoundError as err:
        sys.stderr.write(
            f"imuhip {args.command}: error: no such file: {err.filename}{_did_you_mean(err)}\n"
        )
        return 1
    except IsADirectoryError as err:
        sys.stderr.write(f"imuhip {args.command}: error: is a directory: {err.filename}\n")
        return 1
    except PermissionError as err:
        sys.stderr.write(f"imuhip {args.command}: error: permission denied: {err.filename}\n")
        return 1
    except NotADirectoryError as err:
        sys.stderr.write(
            f"imuhip {args.command}: error: not a directory (a path component is a file): "
            f"{err.filename}\n"
        )
        return 1
    except FileExistsError as err:
        sys.stderr.write(f"imuhip {args.command}: error: already exists: {err.filename}\n")
        return 1
    except OSError as err:  # disk full, read-only file system, ...: the OS's own words, one line
        where = f": {err.filename}" if err.filename else ""
        sys.stderr.write(f"imuhip {args.command}: error: {err.strerror or err}{where}\n")
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"imuhip {args.command}: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())


def _did_you_mean(err: FileNotFoundError) -> str:
    """`` (did you mean X?)`` when the name plus one of imuhip's suffixes exists, else ``""``.

    ``imuhip import xsens ... -o rec`` of vendor orientations writes ``rec.imori.npz`` (a
    recording keeps the name given, often ``rec.imrec``); ``analyze rec`` then names the file
    that is there.
    """
    if not err.filename:
        return ""
    from pathlib import Path

    base = Path(str(err.filename))
    for suffix in (".imrec", ".imori.npz"):
        cand = base.with_name(base.name + suffix)
        if cand.exists():
            return f" (did you mean {cand}?)"
    return ""
