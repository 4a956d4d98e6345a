"""The ``imuhip`` command line. Each subcommand lives in :mod:`imuhip.cli.commands`.

A command module defines ``NAME``, ``HELP``, ``add_arguments(parser)`` and ``run(args) -> int``.
User errors (:class:`~imuhip.errors.ImuhipError`, missing files, bad values) print one line on
stderr and exit non-zero; they never show a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import pkgutil
import sys
from collections.abc import Sequence
from types import ModuleType

from imuhip import __version__
from imuhip.cli import commands
from imuhip.errors import ImuhipError, OptionError

__all__ = ["build_parser", "main"]

log = logging.getLogger("imuhip")


def _command_modules() -> list[ModuleType]:
    mods: list[ModuleType] = []
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        mods.append(importlib.import_module(f"{commands.__name__}.{info.name}"))
    return mods


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="imuhip",
        description="Hip rotation and lumbar compensation from wearable IMUs.",
    )
    parser.add_argument("--version", action="version", version=f"imuhip {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)  # type: ignore[attr-defined]
        mod.add_arguments(p)  # type: ignore[attr-defined]
        p.set_defaults(_run=mod.run, _parser=p)  # type: ignore[attr-defined]
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``imuhip`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
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
        sys.stderr.write(f"imuhip {args.command}: error: no such file: {err.filename}\n")
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
