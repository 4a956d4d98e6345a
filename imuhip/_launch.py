"""The ``imuhip`` console script and ``python -m imuhip``: the CLI, quiet on Ctrl-C from the start.

Ctrl-C while the command line is still loading ends the program with "interrupted" and exit
status 130, as it does later (:func:`imuhip.cli.main`), not with a traceback of whichever import
it interrupted (:func:`imuhip.interrupts.noted_interrupts`). Only this module, the bare package
and :mod:`imuhip.interrupts` are imported before the guard.
"""

from __future__ import annotations

import sys

from imuhip.interrupts import noted_interrupts


def main() -> int:
    """Run the CLI; exit status 130 on Ctrl-C at any moment."""
    try:
        with noted_interrupts():
            from imuhip.cli import main as cli_main
        return cli_main()
    except KeyboardInterrupt:
        sys.stderr.write("imuhip: interrupted\n")
        return 130
