"""The ``imuhip`` console script and ``python -m imuhip``: the CLI, quiet on Ctrl-C from the start.

Ctrl-C while the command line is still loading ends the program with "interrupted" and exit
status 130, as it does later (:func:`imuhip.cli.main`), not with a traceback of whichever import
it interrupted (:func:`imuhip.interrupts.noted_interrupts`). Only this module, the bare package
and :mod:`imuhip.interrupts` are imported before the guard.
"""

from __future__ import annotations

import gc
import sys

from imuhip.interrupts import noted_interrupts


def main() -> int:
    """Run the CLI; exit status 130 on Ctrl-C at any moment."""
    try:
        with noted_interrupts():
            from imuhip.cli import main as cli_main
        status = cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("imuhip: interrupted\n")
        return 130
    _quick_exit()
    return status


def _quick_exit() -> None:
    """Spare the interpreter's shutdown its garbage collections over every object still alive.

    At exit Python runs full collections while it tears the modules down; with numba's
    compiler and typing objects (and scipy, which numba imports) loaded they walk hundreds of
    thousands of objects: ~0.1-0.3 s of every command that ran a compiled kernel, measured as
    the whole process' wall time (docs/performance.md). :func:`gc.freeze` moves them to the
    permanent generation, which those collections skip. Everything else of the shutdown still
    happens: ``atexit`` handlers (temporary folders, logging), flushing and closing the
    standard streams; the command's own files are closed by then.
    """
    gc.freeze()
