"""Subcommands of the ``imuhip`` CLI, one module each (discovered by :mod:`imuhip.cli`)."""
