"""``imuhip ARGS...`` as a user runs it: a new process, output captured (the end-to-end tests)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def run_cli(
    *args: str | Path,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 300.0,
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m imuhip ARGS...``; the exit status is the caller's to check."""
    return subprocess.run(
        [sys.executable, "-m", "imuhip", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        cwd=cwd,
        env=None if env is None else dict(env),
        check=False,
    )
